"""The daily indicators as CSV rows, read back through the sink."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from .agents.core.daily import day_start, epoch_ms
from .sink.influx import InfluxClient
from .sink.stored import days_between
from .runtime.settings import Settings
from .streams.contract import DailyField as F

DAILY_COLUMNS = ("date", "project_id", "kwh", "baseline_kwh", "activity_index", "state")


async def daily_rows(settings: Settings, start: date, end: date) -> list[dict[str, object]]:
    """One row per project and local day in [start, end], ordered by day then project.
    Baseline, index and state stay empty until the day is complete and judged."""
    first = epoch_ms(day_start(start, settings.tz))
    after_last = epoch_ms(day_start(end + timedelta(days=1), settings.tz))
    async with InfluxClient(settings) as client:
        stored = await days_between(client.query, first, after_last)
    return rows_of_days(stored, settings.tz)


def rows_of_days(stored: Iterable[tuple[str, dict[str, Any]]], tz: ZoneInfo) -> list[dict[str, object]]:
    """``daily_rows`` of stored (project, point) rows. A point is stamped at the local
    midnight that opens its day: a row read while the worker writes the point may not
    have every field yet (InfluxDB 1.x can return part of a point being written), so the
    day comes from the time when the ``date`` field is not there."""
    rows = []
    for project_id, point in stored:
        rows.append(
            {
                "date": point.get(F.DATE) or datetime.fromtimestamp(point["time"] / 1000, tz).date().isoformat(),
                "project_id": project_id,
                # A day judged with no reading at all has no energy point: it drew nothing we know of.
                "kwh": point[F.KWH] if point.get(F.KWH) is not None else 0.0,
                "baseline_kwh": rounded_or_blank(point.get(F.BASELINE_KWH)),
                # A day judged offline has no index, even if an earlier judgement wrote one.
                "activity_index": rounded_or_blank(point.get(F.ACTIVITY_INDEX)) if point.get(F.STATE) != "offline" else "",
                "state": point.get(F.STATE) or "",
            }
        )
    rows.sort(key=lambda row: (row["date"], row["project_id"]))
    return rows


def rounded_or_blank(value: float | None, digits: int = 4) -> object:
    """A CSV cell: the number rounded, or empty where it is undefined."""
    return "" if value is None else round(float(value), digits)


def write_daily_csv(rows: list[dict[str, object]], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=DAILY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
