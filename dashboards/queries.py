"""Every InfluxQL query the boards and alert rules send, and Grafana's macro and
variable substitution, so that tests and the benchmark run them as Grafana would."""

from __future__ import annotations

import json
from datetime import datetime

from .alerting import rule_group_file
from .boards import all_boards, board_json


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


def alert_queries() -> list[tuple[str, str]]:
    """(rule uid, InfluxQL of its data query) of every alert rule."""
    return [
        (rule["uid"], query["model"]["query"])
        for rule in rule_group_file()["groups"][0]["rules"]
        for query in rule["data"]
        if query["datasourceUid"] != "__expr__"
    ]


def substitute(query: str, first: datetime, last: datetime, variables: dict[str, str]) -> str:
    """The query as Grafana sends it for the time range ``first``..``last``."""
    text = query.replace("$timeFilter", f"time >= {int(first.timestamp() * 1000)}ms AND time <= {int(last.timestamp() * 1000)}ms")
    for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
        text = text.replace(f"${name}", value)
    if "$" in text.replace("$tag_", ""):
        raise ValueError(f"unsubstituted variable in {text}")
    return text
