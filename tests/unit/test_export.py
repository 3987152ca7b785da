"""The daily export's rows, from what InfluxDB returns (tested here without it)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sitepulse.export import rows_of_days

SHANGHAI = ZoneInfo("Asia/Shanghai")


def midnight_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp() * 1000)


def test_a_day_read_while_its_point_is_being_written_keeps_its_date():
    """InfluxDB 1.x can return part of a point that is being written: a day whose
    ``date`` field is not there yet is still that day (the point is stamped at its local
    midnight), and the rows sort by day and project instead of failing."""
    stored = [
        ("NB-0002", {"time": midnight_ms(date(2026, 2, 11)), "kwh": 120.5, "date": None, "baseline_kwh": None, "activity_index": None, "state": None}),
        ("NB-0001", {"time": midnight_ms(date(2026, 2, 11)), "kwh": 80.0, "date": "2026-02-11", "baseline_kwh": 100.0, "activity_index": 0.8, "state": "started"}),
        ("NB-0001", {"time": midnight_ms(date(2026, 2, 10)), "kwh": None, "date": "2026-02-10", "baseline_kwh": 100.0, "activity_index": None, "state": "offline"}),
    ]
    rows = rows_of_days(stored, SHANGHAI)
    assert [(row["date"], row["project_id"], row["kwh"], row["state"]) for row in rows] == [
        ("2026-02-10", "NB-0001", 0.0, "offline"),
        ("2026-02-11", "NB-0001", 80.0, "started"),
        ("2026-02-11", "NB-0002", 120.5, ""),
    ]
    assert rows[0]["activity_index"] == "" and rows[1]["activity_index"] == 0.8
