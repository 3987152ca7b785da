"""Daily energy per project in the project's local day, counted once per reading.

A reading's ``kwh`` is the energy of the interval that *ends* at ``ts``. It belongs to
the local day that holds the middle of that interval: for meters aligned to the quarter
hour that is the day the interval starts in (the reading stamped 00:00 closes the
previous day), and an interval that straddles midnight goes to the day that holds most
of it.

Readings are kept per (project, day) and meter, by time, so a reading that is re-sent
or replayed replaces itself instead of counting twice; totals use ``math.fsum`` so they
do not depend on arrival order.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache, reduce
from itertools import chain
from operator import add
from typing import NamedTuple
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy

from ...streams.contract import PowerReading
from .suspicion import HOUR_MS, UNKNOWN_SHAPE, MeterFingerprint, day_shape, hourly_shape

DayKey = tuple[str, date]  # (project_id, local day)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down. Once per reading: a whole-millisecond
    moment takes the C ``timestamp()`` (exact once rounded: a float holds today's
    milliseconds to ~0.2 µs), anything finer the exact timedelta arithmetic."""
    if moment.microsecond % 1000 == 0 and moment.tzinfo is not None:
        return round(moment.timestamp() * 1000)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def local_day(ts_ms: int, interval_s: int, tz: ZoneInfo) -> date:
    """The local day that holds the middle of the interval ending at ``ts_ms``."""
    return _quarter_hour_day((ts_ms - interval_s * 500) // _QUARTER_HOUR_MS, tz)


# Every time zone in use today is offset from UTC by whole quarter hours, so a local
# midnight never falls inside a UTC quarter hour and one date serves all of it. This is
# the hot path (once per reading): the cache spares a time-zone conversion per reading.
_QUARTER_HOUR_MS = 900_000


@lru_cache(maxsize=1 << 16)
def _quarter_hour_day(quarter_hour: int, tz: ZoneInfo) -> date:
    return (_EPOCH + timedelta(milliseconds=quarter_hour * _QUARTER_HOUR_MS)).astimezone(tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight that opens ``day``, as an aware datetime."""
    return datetime.combine(day, time(), tz)


@lru_cache(maxsize=4096)
def day_start_ms(day: date, tz: ZoneInfo) -> int:
    """``day_start`` as epoch milliseconds, cached: it is asked for every pending day
    and every daily point."""
    return epoch_ms(day_start(day, tz))


class MeterReading(NamedTuple):
    """A power reading as a worker holds it (a tuple: one per reading). Daily energy
    needs the first five fields; the register and demand are only carried to the store
    and to the register's watch."""

    project_id: str
    meter_id: str
    ts_ms: int
    interval_s: int
    kwh: float
    kwh_total: float | None = None
    kw: float | None = None


def to_meter_reading(reading: PowerReading) -> MeterReading:
    # Every message decodes its own copy of the ids, and the open days, pending totals,
    # meter watch and timelines keep them: one string per project and meter instead.
    return MeterReading(
        sys.intern(reading.project_id), sys.intern(reading.meter_id), epoch_ms(reading.ts), reading.interval_s, float(reading.kwh), reading.kwh_total, reading.kw
    )


@dataclass(frozen=True, slots=True)
class MeterRun:
    """One meter's readings at consecutive intervals, as columns (a series as a worker
    holds it): reading ``i`` ends at ``first_ms + i × interval``; a None in ``kwh`` is no
    reading. Taken as a whole by the day book, the judge and the store, so that a day of
    readings costs a few calls rather than a few objects per reading."""

    project_id: str
    meter_id: str
    first_ms: int
    interval_s: int
    kwh: list[float | None]
    kwh_total: list[float | None] | None = None
    kw: list[float | None] | None = None

    def ts_ms(self, index: int) -> int:
        return self.first_ms + index * self.interval_s * 1000

    def reading(self, index: int) -> MeterReading | None:
        kwh = self.kwh[index]
        if kwh is None:
            return None
        total = None if self.kwh_total is None else self.kwh_total[index]
        demand = None if self.kw is None else self.kw[index]
        return MeterReading(self.project_id, self.meter_id, self.ts_ms(index), self.interval_s, kwh, total, demand)

    def readings(self) -> list[MeterReading]:
        """Each reading on its own: what the run stands for (the reference for tests)."""
        return [reading for index in range(len(self.kwh)) if (reading := self.reading(index)) is not None]

    def bounds(self) -> tuple[int, int] | None:
        """The times of its first and last readings (None: it holds none)."""
        kwh = self.kwh
        first = next((index for index, value in enumerate(kwh) if value is not None), None)
        if first is None:
            return None
        last = next(index for index in range(len(kwh) - 1, -1, -1) if kwh[index] is not None)
        return self.ts_ms(first), self.ts_ms(last)

    def present(self) -> list[int]:
        """The places that hold a reading."""
        if None not in self.kwh:
            return list(range(len(self.kwh)))
        return [index for index, kwh in enumerate(self.kwh) if kwh is not None]

    def without(self, places: Iterable[int]) -> MeterRun:
        """The same run with no reading at ``places``."""
        kwh = list(self.kwh)
        for index in places:
            kwh[index] = None
        return MeterRun(self.project_id, self.meter_id, self.first_ms, self.interval_s, kwh, self.kwh_total, self.kw)


@dataclass(frozen=True, slots=True)
class DailyEnergy:
    """What the meters said about one project's local day."""

    project_id: str
    day: date
    kwh: float
    readings: int
    meters: int
    max_gap_s: int  # longest stretch of the day that no reading covers, any meter
    interval_s: int  # the shortest reporting interval among the meters
    flat_load: bool  # a meter reported the same non-zero energy every interval for 24 h
    # The day's shape (``suspicion.day_shape``; None: not covered in full): the hourly
    # load's coefficient of variation, working hours over night, and each whole meter's
    # quantised profile
    load_cv: float | None = None
    day_night: float | None = None
    fingerprints: tuple[MeterFingerprint, ...] = ()


def gaps_and_flatness(readings: Iterable[tuple[str, int, float, int]], day_start_ms: int, day_end_ms: int) -> tuple[int, bool]:
    """(max_gap_s, flat_load) of one day from (meter_id, ts_ms, kwh, interval_s) readings.

    A reading covers (ts - interval, ts]; a gap is any stretch of the day that no reading
    of a meter covers. Flat load: one meter, a full day of readings, all the same energy
    (idle machines run to fake activity draw a constant load).
    """
    by_meter: dict[str, list[tuple[int, float, int]]] = {}
    for meter, ts_ms, kwh, interval_s in readings:
        by_meter.setdefault(meter, []).append((ts_ms, kwh, interval_s))
    max_gap_ms, flat = 0, False
    for series in by_meter.values():
        series.sort()
        covered_until = day_start_ms
        for ts_ms, _kwh, interval_s in series:
            max_gap_ms = max(max_gap_ms, ts_ms - interval_s * 1000 - covered_until)
            covered_until = max(covered_until, ts_ms)
        max_gap_ms = max(max_gap_ms, day_end_ms - covered_until)
        energies = {kwh for _ts, kwh, _interval in series}
        covered_s = sum(interval_s for _ts, _kwh, interval_s in series)
        if len(energies) == 1 and next(iter(energies)) > 0 and covered_s >= 86_400:
            flat = True
    return max_gap_ms // 1000, flat


class MeterDay(array):
    """One meter's readings of one day, held compactly: readings on the meter's regular
    grid (the day's start plus whole intervals) in the float array itself (slot n holds
    the reading at origin + (n + 1) intervals, NaN: none), anything else (another
    interval, an off-grid time) in a small dict. A dict entry per reading cost ~250
    bytes, the array costs 8; being the array (not holding one) saves another object per
    meter and day — at 100k projects the open days are most of a worker's memory."""

    __slots__ = ("meter_id", "origin_ms", "interval_s", "_off_grid")

    def __new__(cls, meter_id: str, origin_ms: int, interval_s: int) -> MeterDay:
        return super().__new__(cls, "d")

    def __init__(self, meter_id: str, origin_ms: int, interval_s: int) -> None:
        self.meter_id = meter_id
        self.origin_ms = origin_ms
        self.interval_s = interval_s
        self._off_grid: dict[int, tuple[float, int]] | None = None  # ts_ms -> (kwh, interval_s)

    def _slot(self, ts_ms: int) -> int | None:
        step = self.interval_s * 1000
        offset = ts_ms - self.origin_ms
        return offset // step - 1 if offset > 0 and offset % step == 0 else None

    def reading_at(self, ts_ms: int) -> tuple[float, int] | None:
        if self._off_grid is not None and ts_ms in self._off_grid:
            return self._off_grid[ts_ms]
        slot = self._slot(ts_ms)
        if slot is not None and slot < len(self) and not math.isnan(kwh := self[slot]):
            return kwh, self.interval_s
        return None

    def set_reading(self, ts_ms: int, kwh: float, interval_s: int) -> None:
        """The reading of ``ts_ms`` (replacing the one held for that time, if any)."""
        slot = self._slot(ts_ms)
        if self._off_grid is not None:
            self._off_grid.pop(ts_ms, None)
        if slot is not None and interval_s == self.interval_s:
            if slot >= len(self):
                self.extend([math.nan] * (slot + 1 - len(self)))
            self[slot] = kwh
            return
        if slot is not None and slot < len(self):
            self[slot] = math.nan
        if self._off_grid is None:
            self._off_grid = {}
        self._off_grid[ts_ms] = (kwh, interval_s)

    def put(self, ts_ms: int, kwh: float, interval_s: int) -> bool:
        """``set_reading``, in one step for the commonest case (a reading on the grid);
        True when that very reading was held already."""
        if self._off_grid is None and interval_s == self.interval_s:
            step = interval_s * 1000
            offset = ts_ms - self.origin_ms
            if offset > 0 and offset % step == 0:
                slot = offset // step - 1
                if slot < len(self):
                    held = self[slot]
                    self[slot] = kwh
                    return held == kwh
                if slot > len(self):
                    self.extend([math.nan] * (slot - len(self)))
                self.append(kwh)
                return False
        held = self.reading_at(ts_ms) == (kwh, interval_s)
        self.set_reading(ts_ms, kwh, interval_s)
        return held

    def put_run(self, first_ms: int, values: list[float | None], interval_s: int) -> int:
        """``put`` of consecutive readings (None: none at that place) from ``first_ms`` on;
        returns how many were held already. Readings that go on from the last one held,
        the usual case, extend the array at once."""
        step = interval_s * 1000
        if self._off_grid is None and interval_s == self.interval_s:
            offset = first_ms - self.origin_ms
            slot = offset // step - 1
            if offset > 0 and offset % step == 0 and slot >= len(self) and None not in values:
                if slot > len(self):
                    self.extend([math.nan] * (slot - len(self)))
                self.extend(values)
                return 0
        return sum(self.put(first_ms + index * step, kwh, interval_s) for index, kwh in enumerate(values) if kwh is not None)

    def readings(self) -> Iterable[tuple[int, float, int]]:
        """(ts_ms, kwh, interval_s) of every reading held."""
        step = self.interval_s * 1000
        for slot, kwh in enumerate(self):
            if not math.isnan(kwh):
                yield self.origin_ms + (slot + 1) * step, kwh, self.interval_s
        if self._off_grid:
            for ts_ms, (kwh, interval_s) in self._off_grid.items():
                yield ts_ms, kwh, interval_s


def _readings_of(meters: Iterable[MeterDay]) -> list[tuple[str, int, float, int]]:
    return [(meter.meter_id, ts_ms, kwh, interval_s) for meter in meters for ts_ms, kwh, interval_s in meter.readings()]


def _hourly_on_grid(meters: Iterable[MeterDay], hours: int) -> dict[str, list[float]] | None:
    """Each meter's energy by hour, as ``day_shape`` adds it up, for meters whose arrays
    hold the whole day on their grid (``_on_grid_summary`` found no gap): slot n is the
    n-th interval of the day, so an hour is a slice of the array. None: an interval that
    does not divide an hour, or an array not the day's length (``day_shape`` decides)."""
    by_meter = {}
    for meter in meters:
        if not len(meter):
            continue
        interval_s = meter.interval_s
        per_hour = 3600 // interval_s if interval_s > 0 else 0
        if not per_hour or 3600 % interval_s or len(meter) != hours * per_hour:
            return None
        # Added in reading order from 0.0, as day_shape does: the same float, to the bit.
        by_meter[meter.meter_id] = [reduce(add, meter[hour * per_hour : (hour + 1) * per_hour], 0.0) for hour in range(hours)]
    return by_meter


def _on_grid_summary(meters: Iterable[MeterDay], day_end_ms: int) -> tuple[float, int, int, int, int, bool] | None:
    """(kWh, readings, meters, shortest interval, longest gap in s, flat load) of a day
    whose meters hold only readings on their grid (the array, no off-grid dict); None
    otherwise. A meter's grid starts at the day's start, so slot n covers the n-th
    interval of the day, and a gap is a run of empty slots (or the end of the day).

    Live readings arrive in order, so a meter's array is usually its slots from the
    first interval on without a hole: that case is read with C loops over the array
    (``fsum``, ``count``); a meter with holes takes numpy's."""
    kwh_parts: list[Iterable[float]] = []
    meter_kwhs: list[float] = []
    count, meter_count, interval_s, max_gap_ms, flat = 0, 0, 0, 0, False
    for meter in meters:
        if meter._off_grid:
            return None
        step = meter.interval_s * 1000
        meter_kwh = math.fsum(meter)
        if not math.isnan(meter_kwh):  # no empty slot: readings from the first interval on
            if not len(meter):
                continue
            held, present = len(meter), meter
            max_gap_ms = max(max_gap_ms, day_end_ms - (meter.origin_ms + held * step))
        else:
            values = numpy.frombuffer(meter, dtype=numpy.float64)
            slots = numpy.flatnonzero(~numpy.isnan(values))
            if not len(slots):
                continue
            held, present = len(slots), values[slots].tolist()
            meter_kwh = math.fsum(present)
            empty_runs = int(numpy.diff(slots).max()) - 1 if held > 1 else 0
            last = int(slots[-1])
            max_gap_ms = max(max_gap_ms, int(slots[0]) * step, empty_runs * step, day_end_ms - (meter.origin_ms + (last + 1) * step))
            del values  # the array cannot grow while numpy holds its buffer
        kwh_parts.append(present)
        meter_kwhs.append(meter_kwh)
        count += held
        meter_count += 1
        interval_s = meter.interval_s if not interval_s else min(interval_s, meter.interval_s)
        if not flat and held * meter.interval_s >= 86_400 and present[0] > 0 and present.count(present[0]) == held:
            flat = True
    if not count:
        return None
    # One fsum over every reading: the meters' own sums, added, could round differently.
    kwh = meter_kwhs[0] if len(meter_kwhs) == 1 else math.fsum(chain.from_iterable(kwh_parts))
    return kwh, count, meter_count, interval_s, max_gap_ms // 1000, flat


class DailyEnergyBook:
    """The open days of the projects one worker owns.

    A day that is not in memory (first sight, after a restart, a rebalance, or a reading
    later than ``keep_days``) must be loaded from the store of raw readings before new
    readings are added, so the total always covers every reading ever written.
    """

    def __init__(self, tz: ZoneInfo, keep_days: int) -> None:
        self.tz = tz
        self.keep_days = keep_days
        # A day's meters, usually one: a tuple costs a third of a dict.
        self._days: dict[DayKey, tuple[MeterDay, ...]] = {}
        self._newest_day: date | None = None
        self._evicted_before: date | None = None

    def day_of(self, reading: MeterReading) -> DayKey:
        return reading.project_id, local_day(reading.ts_ms, reading.interval_s, self.tz)

    def segments(self, run: MeterRun) -> list[tuple[DayKey, int, int]]:
        """The days a run's readings belong to (``day_of`` each), each with the places
        ``[start, stop)`` of the run that fall in it; a day with no reading is left out."""
        step, half, count = run.interval_s * 1000, run.interval_s * 500, len(run.kwh)
        found, start = [], 0
        while start < count:
            day = local_day(run.ts_ms(start), run.interval_s, self.tz)
            end_ms = day_start_ms(day + timedelta(days=1), self.tz)
            # Place i belongs to the day while its interval's middle is before the day's end.
            # (Always past ``start``: place ``start`` is in the day; max() keeps the loop
            # finite whatever the arithmetic.)
            stop = min(count, max(start + 1, -(-(end_ms + half - run.first_ms) // step)))
            part = run.kwh[start:stop]
            if part.count(None) < len(part):
                found.append(((run.project_id, day), start, stop))
            start = stop
        return found

    def add_run(self, run: MeterRun, segments: Iterable[tuple[DayKey, int, int]]) -> int:
        """``add_all`` of a run's readings, a day's part at once (``segments``)."""
        duplicates, newest, days, step = 0, self._newest_day, self._days, run.interval_s * 1000
        for key, start, stop in segments:
            if key not in days:
                raise KeyError(f"day {key} must be loaded before readings are added")
            meter = self._meter_day(key, run.meter_id, run.interval_s)
            duplicates += meter.put_run(run.first_ms + start * step, run.kwh[start:stop], run.interval_s)
            if newest is None or key[1] > newest:
                newest = key[1]
        self._newest_day = newest
        return duplicates

    def missing(self, keys: Iterable[DayKey]) -> set[DayKey]:
        return {key for key in keys if key not in self._days}

    def load(self, key: DayKey, stored: Iterable[MeterReading]) -> None:
        """Open ``key`` with the readings already stored for it (possibly none)."""
        self._days.setdefault(key, ())
        for reading in stored:
            if self.day_of(reading) == key:
                self._meter_day(key, reading.meter_id, reading.interval_s).set_reading(reading.ts_ms, reading.kwh, reading.interval_s)

    def _meter_day(self, key: DayKey, meter_id: str, interval_s: int) -> MeterDay:
        meters = self._days[key]
        for meter in meters:
            if meter.meter_id == meter_id:
                return meter
        meter = MeterDay(sys.intern(meter_id), day_start_ms(key[1], self.tz), interval_s)
        self._days[key] = (*meters, meter)
        return meter

    def add(self, reading: MeterReading, key: DayKey | None = None) -> DayKey:
        """Count ``reading`` (replacing an earlier one of the same meter and time); returns
        its day, ``key`` if the caller gives it."""
        key = key or self.day_of(reading)
        self.add_all([reading], [key])
        return key

    def add_all(self, readings: Iterable[MeterReading], keys: Iterable[DayKey]) -> int:
        """``add`` each reading with its day (``day_of``); returns how many were held
        already with the same value (re-sent or re-delivered)."""
        duplicates, newest, days = 0, self._newest_day, self._days
        for reading, key in zip(readings, keys):
            if key not in days:
                raise KeyError(f"day {key} must be loaded before readings are added")
            duplicates += self._meter_day(key, reading.meter_id, reading.interval_s).put(reading.ts_ms, reading.kwh, reading.interval_s)
            if newest is None or key[1] > newest:
                newest = key[1]
        self._newest_day = newest
        return duplicates

    def total(self, key: DayKey) -> DailyEnergy:
        """What the meters said about the day so far. The live path asks at every batch
        for every day the batch touched (a few hundred days, each with up to a day of
        readings), so meters whose readings all sit on their grid, the usual case, are
        summed with array operations; the general walk over readings is the reference
        (a property test holds the two equal)."""
        meters = self._days[key]
        start_ms = day_start_ms(key[1], self.tz)
        end_ms = day_start_ms(key[1] + timedelta(days=1), self.tz)
        on_grid = _on_grid_summary(meters, end_ms)
        readings = _readings_of(meters) if on_grid is None else None
        if readings is not None:
            kwh, count, meter_count = math.fsum(r[2] for r in readings), len(readings), len({r[0] for r in readings})
            interval_s = min((r[3] for r in readings), default=0)
            max_gap_s, flat_load = gaps_and_flatness(readings, start_ms, end_ms)
        else:
            kwh, count, meter_count, interval_s, max_gap_s, flat_load = on_grid
        # Only a day without gaps has a shape: the live path totals a day at every batch.
        if max_gap_s == 0 and count:
            hours = (end_ms - start_ms) // HOUR_MS
            hourly = None if readings is not None else _hourly_on_grid(meters, hours)
            if hourly is not None:
                shape = hourly_shape(hourly, len(hourly), hours)
            else:
                shape = day_shape(_readings_of(meters) if readings is None else readings, start_ms, end_ms)
        else:
            shape = UNKNOWN_SHAPE
        return DailyEnergy(
            project_id=key[0],
            day=key[1],
            kwh=kwh,
            readings=count,
            meters=meter_count,
            max_gap_s=max_gap_s,
            interval_s=interval_s,
            flat_load=flat_load,
            load_cv=shape.load_cv,
            day_night=shape.day_night,
            fingerprints=shape.fingerprints,
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

    def open_days(self) -> list[DayKey]:
        return list(self._days)

    def forget_all(self) -> None:
        """Drop every open day, e.g. when partitions move to another worker."""
        self._days.clear()

    def __len__(self) -> int:
        return len(self._days)
