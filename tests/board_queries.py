"""Run every query of every board (panels and variables) against a real influxd, with
Grafana's macros and the board variables substituted, the way Grafana would send them."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

from sitepulse.dashboards.boards import all_boards, board_json


def board_queries() -> list[tuple[str, str, str]]:
    """(board uid, panel or variable title, InfluxQL) for everything the boards ask."""
    found = []
    for board in all_boards():
        model = json.loads(board_json(board))
        for panel in model.get("panels", []):
            for target in panel.get("targets", []):
                found.append((model["uid"], panel["title"], target["query"]))
        for variable in model.get("templating", {}).get("list", []):
            found.append((model["uid"], f"${variable['name']}", variable["query"]))
    return found


def substitute(query: str, first: datetime, last: datetime, variables: dict[str, str]) -> str:
    text = query.replace("$timeFilter", f"time >= {int(first.timestamp() * 1000)}ms AND time <= {int(last.timestamp() * 1000)}ms")
    for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
        text = text.replace(f"${name}", value)
    assert "$" not in text.replace("$tag_", ""), f"unsubstituted variable in {text}"
    return text


def alert_queries() -> list[tuple[str, str]]:
    """(rule uid, InfluxQL of its data query) of every alert rule."""
    from sitepulse.dashboards.alerting import rule_group_file

    return [
        (rule["uid"], query["model"]["query"])
        for rule in rule_group_file()["groups"][0]["rules"]
        for query in rule["data"]
        if query["datasourceUid"] != "__expr__"
    ]


def run_series(url: str, database: str, statement: str) -> list[dict]:
    """The series of a statement (name, tags, columns, values)."""
    params = urllib.parse.urlencode({"db": database, "q": statement, "epoch": "ms"})
    try:
        with urllib.request.urlopen(f"{url}/query?{params}", timeout=10) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"influxd refused ({exc.code}: {exc.read().decode()}): {statement}") from None
    result = payload["results"][0]
    assert "error" not in result, f"{result['error']}: {statement}"
    return result.get("series", [])


def run_influxql(url: str, database: str, statement: str) -> list[list]:
    """The rows of a statement; an InfluxQL error fails loudly with the statement."""
    return [row for series in run_series(url, database, statement) for row in series.get("values", [])]
