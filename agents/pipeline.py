"""What the worker does with one batch, apart from Kafka: count each reading once per
local day, store raw readings then daily totals, then let the activity tracker judge
the days that are complete. The Faust agents in ``app.py`` only feed batches in, send
rejections to the dead-letter topic and publish the events."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from ..streams.contract import InvestmentReport, PowerReading, ProjectEvent
from ..sink.worker_store import WorkerStore
from .core.calendar import Stoppage
from .core.daily import DailyEnergyBook, DayKey, MeterReading, epoch_ms
from .activity import ActivityTracker


def to_meter_reading(reading: PowerReading) -> MeterReading:
    # Every message decodes its own copy of the ids, and the open days, pending totals,
    # meter watch and timelines keep them: one string per project and meter instead.
    return MeterReading(sys.intern(reading.project_id), sys.intern(reading.meter_id), epoch_ms(reading.ts), reading.interval_s, float(reading.kwh))


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    too_late: list[int]  # positions in the batch of records beyond the grace period
    events: list[ProjectEvent]
    duplicates: int = 0  # readings already counted (re-sent or re-delivered), absorbed

    @classmethod
    def nothing(cls) -> BatchOutcome:
        return cls([], [])


class PowerHandler:
    """The power path of a worker: its open days and its judge change under one lock,
    taken here only — by a batch, the clock's timer, a stoppage or a rebalance."""

    def __init__(self, store: WorkerStore, tz: ZoneInfo, keep_days: int, tracker: ActivityTracker) -> None:
        self.store = store
        self.book = DailyEnergyBook(tz, keep_days)
        self.tracker = tracker
        self.registers: dict[tuple[str, str], tuple[int, float]] = {}  # meter -> (ts_ms, kwh_total)
        self.lock = asyncio.Lock()

    async def handle(
        self, readings: Sequence[PowerReading], sources: Sequence[object], wall_s: float, messages: Sequence[object] | None = None
    ) -> BatchOutcome:
        """Store a batch of valid readings (``sources``: each one's partition;
        ``messages``: the message each came in, by default one message per reading) and
        judge the days it completes."""
        if messages is None:
            messages = range(len(readings))
        judge = self.tracker.judge
        async with self.lock:
            too_late, fresh, meter_readings, observed = [], [], [], []
            converted = [to_meter_reading(reading) for reading in readings]
            late = judge.too_late(converted, sources)
            for position, (reading, meter_reading, source, message) in enumerate(zip(readings, converted, sources, messages)):
                if late[position]:
                    too_late.append(position)
                else:
                    fresh.append(reading)
                    meter_readings.append(meter_reading)
                    observed.append((meter_reading, source, message))
            day_of = self.book.day_of
            keys = [day_of(reading) for reading in meter_readings]
            touched = sorted(set(keys))
            await self._open_days(self.book.missing(touched))
            duplicates = self.book.add_all(meter_readings, keys)
            energies = [self.book.total(key) for key in touched]
            # Raw readings first: they are what a restarted worker rebuilds its days from.
            await self.store.write_readings(fresh, [m.ts_ms for m in meter_readings])
            await self.store.write_days(energies)
            self.book.evict_old_days()
            resets = self._register_resets(fresh, meter_readings)
            await self.tracker.observe(observed, zip(touched, energies), wall_s)
        return BatchOutcome(too_late, resets, duplicates)

    def _register_resets(self, readings: Sequence[PowerReading], converted: Sequence[MeterReading]) -> list[ProjectEvent]:
        """A register that goes backwards (meter replaced or cleared): the interval
        energy is still right, so the reading is kept, and the data owner is told."""
        found = []
        for reading, meter_reading in zip(readings, converted):
            if reading.kwh_total is None:
                continue
            key, ts_ms = (meter_reading.project_id, meter_reading.meter_id), meter_reading.ts_ms
            previous = self.registers.get(key)
            if previous is None or ts_ms > previous[0]:
                self.registers[key] = (ts_ms, reading.kwh_total)
                if previous is not None and reading.kwh_total < previous[1]:
                    found.append(self.tracker.judge.meter_reset(reading.project_id, reading.meter_id, ts_ms, previous[1], reading.kwh_total))
        return found

    async def _open_days(self, keys: Iterable[DayKey]) -> None:
        """Load what is already stored for days not in memory."""
        projects_by_day: dict[date, set[str]] = defaultdict(set)
        for project_id, day in keys:
            projects_by_day[day].add(project_id)
        stored: dict[DayKey, list[MeterReading]] = defaultdict(list)
        for reading in await self.store.stored_readings(projects_by_day):
            stored[self.book.day_of(reading)].append(reading)
        for key in keys:
            self.book.load(key, stored.get(key, ()))

    async def advance(self, wall_s: float) -> None:
        """Judge what the clock completed with no record arriving (silent meters, quiet
        partitions)."""
        async with self.lock:
            await self.tracker.advance(wall_s)

    async def add_stoppage(self, stoppage: Stoppage, wall_s: float) -> None:
        async with self.lock:
            await self.tracker.add_stoppage(stoppage, wall_s)

    async def take_partitions(self, partitions: set[int], wall_s: float) -> None:
        """Partitions moved: another worker may have added readings meanwhile, so open
        days and timelines are rebuilt from the store. Under the lock, so that a batch
        still in flight from the old assignment cannot leave its projects behind in
        memory: a worker kept judging (and filling silent days of) projects it no
        longer owned, over the new owner's points."""
        async with self.lock:
            self.book.forget_all()
            self.tracker.judge.assign(partitions, wall_s)


class InvestmentHandler:
    def __init__(self, store: WorkerStore) -> None:
        self.store = store

    async def handle(
        self, reports: Sequence[InvestmentReport], sources: Sequence[object], wall_s: float, messages: Sequence[object] | None = None
    ) -> BatchOutcome:
        await self.store.write_investment(reports)
        return BatchOutcome.nothing()
