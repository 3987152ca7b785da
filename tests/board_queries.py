"""Run the boards' queries (``sitepulse.dashboards.queries``) against a real influxd."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from sitepulse.dashboards.queries import alert_queries, board_queries, substitute
from sitepulse.embedded import InfluxUser

__all__ = ["alert_queries", "board_queries", "substitute", "run_series", "run_influxql"]


def run_series(url: str, database: str, statement: str, user: InfluxUser | None = None) -> list[dict]:
    """The series of a statement (name, tags, columns, values), read as ``user`` (the
    read-only account Grafana's datasource uses)."""
    fields = {"db": database, "q": statement, "epoch": "ms"}
    if user is not None:
        fields |= {"u": user.name, "p": user.password}
    params = urllib.parse.urlencode(fields)
    try:
        with urllib.request.urlopen(f"{url}/query?{params}", timeout=10) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"influxd refused ({exc.code}: {exc.read().decode()}): {statement}") from None
    result = payload["results"][0]
    assert "error" not in result, f"{result['error']}: {statement}"
    return result.get("series", [])


def run_influxql(url: str, database: str, statement: str, user: InfluxUser | None = None) -> list[list]:
    """The rows of a statement; an InfluxQL error fails loudly with the statement."""
    return [row for series in run_series(url, database, statement, user) for row in series.get("values", [])]
