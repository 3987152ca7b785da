"""Daily energy per project in the project's local day, counted once per reading.

A reading's ``kwh`` is the energy of the interval that *ends* at ``ts``. It belongs to
the local day that holds the middle of that interval: for meters aligned to the quarter
hour that is the day the interval starts in (the reading stamped 00:00 closes the
previous day), and an interval that straddles midnight goes to the day that holds most
of it.

Readings are kept per (project, day) keyed by (meter, ts), so a reading that is re-sent
or replayed replaces itself instead of counting twice; totals use ``math.fsum`` so they
do not depend on arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

DayKey = tuple[str, date]  # (project_id, local day)
ReadingKey = tuple[str, int]  # (meter_id, ts as epoch milliseconds)


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def local_day(ts_ms: int, interval_s: int, tz: ZoneInfo) -> date:
    """The local day that holds the middle of the interval ending at ``ts_ms``."""
    midpoint = _EPOCH + timedelta(milliseconds=ts_ms - interval_s * 500)
    return midpoint.astimezone(tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight that opens ``day``, as an aware datetime."""
    return datetime.combine(day, time(), tz)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """The part of a power reading that daily energy needs."""

    project_id: str
    meter_id: str
    ts_ms: int
    interval_s: int
    kwh: float


@dataclass(frozen=True, slots=True)
class DailyEnergy:
    project_id: str
    day: date
    kwh: float
    readings: int
    meters: int


class DailyEnergyBook:
    """The open days of the projects one worker owns.

    A day that is not in memory (first sight, after a restart, a rebalance, or a reading
    later than ``keep_days``) must be loaded from the store of raw readings before new
    readings are added, so the total always covers every reading ever written.
    """

    def __init__(self, tz: ZoneInfo, keep_days: int) -> None:
        self.tz = tz
        self.keep_days = keep_days
        self._days: dict[DayKey, dict[ReadingKey, float]] = {}
        self._newest_day: date | None = None
        self._evicted_before: date | None = None

    def day_of(self, reading: MeterReading) -> DayKey:
        return reading.project_id, local_day(reading.ts_ms, reading.interval_s, self.tz)

    def missing(self, keys: Iterable[DayKey]) -> set[DayKey]:
        return {key for key in keys if key not in self._days}

    def load(self, key: DayKey, stored: Iterable[MeterReading]) -> None:
        """Open ``key`` with the readings already stored for it (possibly none)."""
        day = self._days.setdefault(key, {})
        for reading in stored:
            if self.day_of(reading) == key:
                day[(reading.meter_id, reading.ts_ms)] = reading.kwh

    def add(self, reading: MeterReading) -> DayKey:
        key = self.day_of(reading)
        day = self._days.get(key)
        if day is None:
            raise KeyError(f"day {key} must be loaded before readings are added")
        day[(reading.meter_id, reading.ts_ms)] = reading.kwh
        if self._newest_day is None or key[1] > self._newest_day:
            self._newest_day = key[1]
        return key

    def total(self, key: DayKey) -> DailyEnergy:
        day = self._days[key]
        return DailyEnergy(
            project_id=key[0],
            day=key[1],
            kwh=math.fsum(day.values()),
            readings=len(day),
            meters=len({meter for meter, _ in day}),
        )

    def evict_old_days(self) -> int:
        """Forget days older than ``keep_days`` behind the newest day seen."""
        if self._newest_day is None:
            return 0
        oldest_kept = self._newest_day - timedelta(days=self.keep_days)
        if oldest_kept == self._evicted_before:
            return 0
        self._evicted_before = oldest_kept
        stale = [key for key in self._days if key[1] < oldest_kept]
        for key in stale:
            del self._days[key]
        return len(stale)

    def forget_all(self) -> None:
        """Drop every open day, e.g. when partitions move to another worker."""
        self._days.clear()

    def __len__(self) -> int:
        return len(self._days)
