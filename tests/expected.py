"""Independent reference computations for the tests: written from the contract's
definitions with the standard library only, not with sitepulse's core."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo


def expected_daily_kwh(lines: list[bytes], tz: str = "Asia/Shanghai") -> dict[tuple[str, str], float]:
    """{(date, project_id): kWh}: each (project, meter, ts) counted once (the last copy
    wins), in the local day holding the middle of the interval that ends at ts."""
    zone = ZoneInfo(tz)
    latest: dict[tuple[str, str, datetime], tuple[float, int]] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("type") != "power":
            continue
        ts = datetime.fromisoformat(record["ts"])
        latest[(record["project_id"], record["meter_id"], ts)] = (record["kwh"], record["interval_s"])
    per_day: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (project_id, _meter, ts), (kwh, interval_s) in latest.items():
        day = (ts - timedelta(seconds=interval_s / 2)).astimezone(zone).date().isoformat()
        per_day[(day, project_id)].append(kwh)
    return {key: math.fsum(values) for key, values in per_day.items()}


def read_lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def parse_daily_csv(text: str) -> dict[tuple[str, str], float]:
    lines = text.strip().splitlines()
    assert lines[0] == "date,project_id,kwh,baseline_kwh,activity_index,state", lines[0]
    result = {}
    for line in lines[1:]:
        day, project_id, kwh, *_ = line.split(",")
        result[(day, project_id)] = float(kwh)
    return result
