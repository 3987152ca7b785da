"""Read indicators back from InfluxDB (InfluxQL, so the same on 1.x and 2.x)."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from typing import TextIO

from .agents.core.daily import day_start, epoch_ms
from .sink.influx import InfluxClient, quote_identifier
from .runtime.settings import Settings
from .streams.contract import Measurement

DAILY_COLUMNS = ("date", "project_id", "kwh", "baseline_kwh", "activity_index", "state")


async def daily_rows(settings: Settings, start: date, end: date) -> list[dict[str, object]]:
    """One row per project and local day in [start, end], ordered by day then project.
    Baseline, index and state stay empty until the day is complete and judged."""
    first = epoch_ms(day_start(start, settings.tz))
    after_last = epoch_ms(day_start(end + timedelta(days=1), settings.tz))
    query = (
        f"SELECT kwh, {quote_identifier('date')}, baseline_kwh, activity_index, state FROM {Measurement.POWER_DAILY} "
        f"WHERE time >= {first}ms AND time < {after_last}ms GROUP BY {Measurement.TAG_PROJECT}"
    )
    async with InfluxClient(settings) as client:
        (series_list,) = await client.query(query)
    rows = []
    for series in series_list:
        for point in series.rows():
            rows.append(
                {
                    "date": point["date"],
                    "project_id": series.tags[Measurement.TAG_PROJECT],
                    # A day judged with no reading at all has no energy point: it drew nothing we know of.
                    "kwh": point["kwh"] if point["kwh"] is not None else 0.0,
                    "baseline_kwh": rounded_or_blank(point.get("baseline_kwh")),
                    # A day judged offline has no index, even if an earlier judgement wrote one.
                    "activity_index": rounded_or_blank(point.get("activity_index")) if point.get("state") != "offline" else "",
                    "state": point.get("state") or "",
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
