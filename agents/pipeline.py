"""What the worker does with one batch, apart from Kafka: count each reading once per
local day, store raw readings then daily totals, then let the activity tracker judge
the days that are complete. The Faust agents in ``app.py`` only feed batches in, send
rejections to the dead-letter topic and publish the events."""

from __future__ import annotations

import asyncio
import operator
import sys
from collections import defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ..streams.contract import MAX_SERIES_POINTS, InvestmentReport, MeterInterval, PowerReading, PowerSeries, ProjectEvent
from ..sink.worker_store import WorkerStore
from .core.calendar import Stoppage
from .core.daily import DailyEnergy, DailyEnergyBook, DayKey, MeterReading, MeterRun, epoch_ms, local_day, to_meter_reading
from .activity import ActivityTracker


def series_run(series: PowerSeries, refused: Iterable[int] = ()) -> MeterRun:
    """A checked series as the worker holds it, with no reading at the places ``refused``."""
    run = MeterRun(
        sys.intern(series.project_id), sys.intern(series.meter_id), epoch_ms(series.first_ts), series.interval_s, series.kwh, series.kwh_total, series.kw
    )
    return run.without(refused) if refused else run


def batch_runs(
    project_id: str, readings: Sequence[MeterInterval | PowerReading], refused: Container[int], max_span_ms: int
) -> list[tuple[MeterRun | None, list[int | None]]] | None:
    """A batch's readings (of one project) but those ``refused``, each meter's in time order, as runs on
    the grid of their interval: each run with the batch index of each place (None: a
    hole), a reading that no run takes alone (run None, its index). A reading repeated
    for the same time starts a new run after the first, so the later one is added last,
    as in batch order. A meter whose readings the batch does not give in time order is
    given reading by reading, in batch order: which of them says its register went back
    depends on that order. None when the batch's readings span more than
    ``max_span_ms``: then its order, not only its times, decides which readings are too
    late, and it is taken reading by reading."""
    meters: dict[str, list[int]] = {}
    for index, meter_id in enumerate([reading.meter_id for reading in readings]):
        if index not in refused:
            meters.setdefault(meter_id, []).append(index)
    timed = {meter_id: _in_time_order(indexes, readings) for meter_id, indexes in meters.items()}
    if timed and max(last for _, _, last in timed.values()) - min(first for _, first, _ in timed.values()) > max_span_ms:
        return None
    project_id, found = sys.intern(project_id), []
    for meter_id, (taken, first_ms, _last_ms) in timed.items():
        meter_id = sys.intern(meter_id)
        if taken is None:  # most often: the meter's readings are one interval apart all through
            places = meters[meter_id]
            found.append((_meter_run(project_id, meter_id, readings, first_ms, places), places))
            continue
        if [index for _, index in taken] != meters[meter_id]:  # not sent in time order
            found += [(None, [index]) for index in meters[meter_id]]
            continue
        start = 0
        while start < len(taken):
            stop, places = _run_from(readings, taken, start)
            if stop - start == 1:
                found.append((None, [taken[start][1]]))
            else:
                found.append((_meter_run(project_id, meter_id, readings, taken[start][0], places), places))
            start = stop
    return found


# Readings per meter, on average, from which a stretch of single readings is worth
# taking as runs (tools/hot_path.py --single: 420 projects' ~2 readings a meter per
# batch cost 21.6 → 27.1 s per million as runs; 60 projects' ~14, 20.7 → 17.2).
RUN_WORTH_READINGS = 4


def single_reading_runs(readings: Sequence[tuple[object, PowerReading]], max_span_ms: int) -> list[tuple[MeterRun | None, list[int | None]]] | None:
    """Readings that came one per message, each with its source partition, as each
    meter's runs (``batch_runs`` of each project's): each run with the position of each
    place's reading among ``readings`` (None: a hole), a reading that no run takes alone
    (run None, its position). A backlog of single readings (a site's buffer sent after
    an outage, a platform that pushes one reading per message) then takes the series
    path. None when a partition's readings span more than ``max_span_ms`` (their order,
    not only their times, decides which are too late), and when the meters send fewer
    than ``RUN_WORTH_READINGS`` readings each on average: a live stream gives each meter
    a reading or two per batch, and runs that short cost more than they save."""
    if len(readings) < RUN_WORTH_READINGS * len({(reading.project_id, reading.meter_id) for _source, reading in readings}):
        return None
    spans: dict[object, list[datetime]] = {}
    by_project: dict[tuple[object, str], list[int]] = {}
    for position, (source, reading) in enumerate(readings):
        span = spans.get(source)
        if span is None:
            spans[source] = [reading.ts, reading.ts]
        elif reading.ts < span[0]:
            span[0] = reading.ts
        elif reading.ts > span[1]:
            span[1] = reading.ts
        by_project.setdefault((source, reading.project_id), []).append(position)
    if any(newest - earliest > timedelta(milliseconds=max_span_ms) for earliest, newest in spans.values()):
        return None
    found: list[tuple[MeterRun | None, list[int | None]]] = []
    for (_source, project_id), positions in by_project.items():
        runs = batch_runs(project_id, [readings[position][1] for position in positions], (), max_span_ms)
        assert runs is not None  # (their span is checked above)
        found += [(run, [None if place is None else positions[place] for place in places]) for run, places in runs]
    return found


def _in_time_order(indexes: list[int], readings: Sequence[MeterInterval]) -> tuple[list[tuple[int, int]] | None, int, int]:
    """One meter's readings (checked: their times have offsets), and the times of its
    first and last: (None, …) when they are one interval apart all through, in batch
    order (one run, no hole); else their (time, batch index) in time order, then batch
    order. A time's difference from the first is cheap; its ``epoch_ms`` is not."""
    first = readings[indexes[0]].ts
    interval_s, count = readings[indexes[0]].interval_s, len(indexes)
    if (
        1 < count <= MAX_SERIES_POINTS
        and [readings[index].ts - first for index in indexes] == _grid(interval_s, count)
        and all(readings[index].interval_s == interval_s for index in indexes)
    ):
        first_ms = epoch_ms(first)
        return None, first_ms, first_ms + (count - 1) * interval_s * 1000
    taken = sorted((epoch_ms(readings[index].ts), index) for index in indexes)
    return taken, taken[0][0], taken[-1][0]


@lru_cache(maxsize=256)
def _grid(interval_s: int, count: int) -> list[timedelta]:
    """The offsets of ``count`` readings one interval apart (shared: never changed)."""
    return [timedelta(seconds=interval_s * place) for place in range(count)]


def _run_from(readings: Sequence[MeterInterval], taken: list[tuple[int, int]], start: int) -> tuple[int, list[int | None]]:
    """How far from ``start`` the readings stay on one grid (same interval, each later
    than the last by whole intervals, no longer than a series may be), and each place's
    batch index."""
    first_ms, first_index = taken[start]
    interval_s = readings[first_index].interval_s
    step = interval_s * 1000
    places: list[int | None] = [first_index]
    stop = start + 1
    while stop < len(taken):
        ts_ms, index = taken[stop]
        place, rest = divmod(ts_ms - first_ms, step)
        if rest or place < len(places) or place >= MAX_SERIES_POINTS or readings[index].interval_s != interval_s:
            break
        places += [None] * (place - len(places))
        places.append(index)
        stop += 1
    return stop, places


def _meter_run(project_id: str, meter_id: str, readings: Sequence[MeterInterval], first_ms: int, places: list[int | None]) -> MeterRun:
    if None in places:
        held = [None if index is None else readings[index] for index in places]
        kwh = [None if reading is None else reading.kwh for reading in held]
        totals = [None if reading is None else reading.kwh_total for reading in held]
        demands = [None if reading is None else reading.kw for reading in held]
    else:
        held = [readings[index] for index in places]
        kwh = [reading.kwh for reading in held]
        totals = [reading.kwh_total for reading in held]
        demands = [reading.kw for reading in held]
    return MeterRun(
        project_id,
        meter_id,
        first_ms,
        readings[places[0]].interval_s,
        kwh,
        totals if totals.count(None) < len(totals) else None,
        demands if demands.count(None) < len(demands) else None,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HELD = (MeterReading, MeterRun)  # what the handler takes as it is


def as_power_reading(reading: MeterReading) -> PowerReading:
    """A reading held by the worker as the record a site would send (unsigned)."""
    ts = _EPOCH + timedelta(milliseconds=reading.ts_ms)
    return PowerReading(reading.project_id, reading.meter_id, ts, reading.kwh, reading.interval_s, reading.kwh_total, reading.kw)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    too_late: list[int]  # positions in the batch of records beyond the grace period
    events: list[ProjectEvent]
    duplicates: int = 0  # readings already counted (re-sent or re-delivered), absorbed
    # (position in the batch, place in the run) of a run's readings beyond the grace period
    too_late_places: list[tuple[int, int]] = field(default_factory=list)
    # The write of its readings and day totals, still on its way when the handler
    # returns: the batch is stored, and may be acknowledged, once it is done (None:
    # stored already).
    stored: asyncio.Future[None] | None = None

    @classmethod
    def nothing(cls) -> BatchOutcome:
        return cls([], [])


# Batches whose writes may be on their way at once: influxd takes one while the worker
# sends the next (one at a time, the worker waited for influxd half the time).
WRITES_ON_THEIR_WAY = 2


class PowerHandler:
    """The power path of a worker: its open days and its judge change under one lock,
    taken here only — by a batch, the clock's timer, a stoppage or a rebalance."""

    def __init__(self, store: WorkerStore, tz: ZoneInfo, keep_days: int, tracker: ActivityTracker) -> None:
        self.store = store
        self.book = DailyEnergyBook(tz, keep_days)
        self.tracker = tracker
        self.registers: dict[tuple[str, str], tuple[int, float]] = {}  # meter -> (ts_ms, kwh_total)
        self.lock = asyncio.Lock()
        # The last batches' writes of readings and day totals still on their way, oldest
        # first, each with the days and the projects it writes.
        self.writes: list[tuple[asyncio.Future[None], set[DayKey], set[str]]] = []
        # Per project, the newest day whose readings the store may hold (None: ask it).
        self.newest_days: dict[str, date] | None = None
        # A timeline rebuilt from its stored days must find each day's total: a late
        # reading's day is judged again while its new total is still on its way.
        tracker.before_reading = self.landed_for
        self.judging = False  # a batch is being judged, its own write the newest on its way

    async def landed(self, leaving: int = 0) -> None:
        """Wait until the batches' readings and day totals on their way are stored (all
        but the newest ``leaving``), raising what a write raised. Shielded: a caller
        cancelled (a worker stopping) does not cancel a write."""
        while len(self.writes) > leaving:
            writing = self.writes[0][0]
            await asyncio.shield(writing)
            if self.writes and self.writes[0][0] is writing:
                del self.writes[0]

    async def landed_for(self, project_ids: Iterable[str]) -> None:
        """``landed`` if any write on its way is of one of these projects; while a batch
        is judged, but its own: its totals are the judge's pending days, which it holds."""
        wanted, own = set(project_ids), int(self.judging)
        if any(not wanted.isdisjoint(projects) for _, _, projects in self.writes[: len(self.writes) - own]):
            await self.landed(own)

    def _days_on_their_way(self) -> set[DayKey]:
        return set().union(*(days for _, days, _projects in self.writes))

    async def handle(
        self,
        readings: Sequence[PowerReading | MeterReading | MeterRun],
        sources: Sequence[object],
        wall_s: float,
        messages: Sequence[object] | None = None,
    ) -> BatchOutcome:
        """Store a batch of valid readings (``sources``: each one's partition;
        ``messages``: the message each came in, by default one message per reading) and
        judge the days it completes. A series comes as a ``MeterRun`` and is taken whole."""
        if messages is None:
            messages = range(len(readings))
        judge = self.tracker.judge
        async with self.lock:
            held = [reading if type(reading) in _HELD else to_meter_reading(reading) for reading in readings]
            late = judge.too_late(held, sources)
            too_late, too_late_places, fresh, observed = [], [], [], []
            for position, (reading, source, message) in enumerate(zip(held, sources, messages)):
                if late[position]:
                    if type(reading) is not MeterRun:
                        too_late.append(position)
                        continue
                    places = [index for index in range(late[position]) if reading.kwh[index] is not None]
                    too_late_places += [(position, index) for index in places]
                    reading = reading.without(places)
                fresh.append(reading)
                observed.append((reading, source, message))
            touched, steps = self._plan(fresh)
            missing = self.book.missing(touched)
            if missing:
                stored = await self._may_be_stored(missing)
                if not stored.isdisjoint(self._days_on_their_way()):
                    # Those days are read back from the store: with the readings on their way.
                    # (A replay's next day is neither stored nor in the last batch.)
                    await self.landed()
                await self._open_days(missing, stored)
            self._note_stored(touched)
            duplicates = 0
            for part, days in steps:
                duplicates += self.book.add_run(part, days) if type(part) is MeterRun else self.book.add_all(part, days)
            touched_days = sorted(touched)
            energies = [self.book.total(key) for key in touched_days]
            # The raw readings and the days' totals go to InfluxDB while the days are
            # judged, and while the next batches are decoded: the worker computes instead
            # of waiting for influxd, and influxd takes one write while the next is sent.
            # At most WRITES_ON_THEIR_WAY batches' writes are in flight, and none with a
            # project of another (the same point in both would land in either order: the
            # older value could win). Whatever reads days back from the store waits for
            # them: a day not in the day book (above), a timeline rebuilt, a rebalance.
            # The batch's offsets are committed only once its writes have landed
            # (``stored``), so a crash before that delivers the batch again: a restarted
            # worker rebuilds its open days from the stored readings and the re-delivered
            # ones.
            projects = {project_id for project_id, _day in touched}
            shared = any(not projects.isdisjoint(other) for _, _, other in self.writes)
            await self.landed(0 if shared else WRITES_ON_THEIR_WAY - 1)
            writing = asyncio.ensure_future(self._store(fresh, energies))
            self.writes.append((writing, touched, projects))
            try:
                self.book.evict_old_days()
                resets = self._register_resets(fresh)
                self.judging = True
                await self.tracker.observe(observed, zip(touched_days, energies), wall_s)
            except BaseException:
                self.writes.remove((writing, touched, projects))
                writing.cancel()
                raise
            finally:
                self.judging = False
            # The judgements this batch made land with its write: its offsets wait for them,
            # and the next batch of one of their projects waits for them too.
            judgements, judged_projects = self.tracker.take_judgements()
            if judgements:
                entry = (writing, touched, projects)
                writing = asyncio.gather(writing, *judgements)
                self.writes[self.writes.index(entry)] = (writing, touched, projects | judged_projects)
        return BatchOutcome(too_late, resets, duplicates, too_late_places, writing)

    async def _store(self, fresh: Sequence[MeterReading | MeterRun], energies: Sequence[DailyEnergy]) -> None:
        await self.store.write_batch(fresh, energies)

    def _plan(self, fresh: Sequence[MeterReading | MeterRun]) -> tuple[set[DayKey], list[tuple[Any, Any]]]:
        """The days a batch touches, and its additions to the day book in batch order
        (a later reading of the same time replaces an earlier one): each run with its
        days' parts, each stretch of single readings with their days."""
        touched: set[DayKey] = set()
        steps: list[tuple[Any, Any]] = []
        day_of = self.book.day_of
        for reading in fresh:
            if type(reading) is MeterRun:
                segments = self.book.segments(reading)
                touched.update(key for key, _start, _stop in segments)
                steps.append((reading, segments))
                continue
            key = day_of(reading)
            touched.add(key)
            if not steps or type(steps[-1][0]) is MeterRun:
                steps.append(([], []))
            steps[-1][0].append(reading)
            steps[-1][1].append(key)
        return touched, steps

    def _register_resets(self, readings: Sequence[MeterReading | MeterRun]) -> list[ProjectEvent]:
        """A register that goes backwards (meter replaced or cleared): the interval
        energy is still right, so the reading is kept, and the data owner is told."""
        found: list[ProjectEvent] = []
        for reading in readings:
            if type(reading) is MeterRun:
                self._register_run(reading, found)
            elif reading.kwh_total is not None:
                self._register(reading.project_id, reading.meter_id, reading.ts_ms, reading.kwh_total, found)
        return found

    def _register(self, project_id: str, meter_id: str, ts_ms: int, kwh_total: float, found: list[ProjectEvent]) -> None:
        key = (project_id, meter_id)
        previous = self.registers.get(key)
        if previous is None or ts_ms > previous[0]:
            self.registers[key] = (ts_ms, kwh_total)
            if previous is not None and kwh_total < previous[1]:
                found.append(self.tracker.judge.meter_reset(project_id, meter_id, ts_ms, previous[1], kwh_total))

    def _register_run(self, run: MeterRun, found: list[ProjectEvent]) -> None:
        """``_register`` of each reading of a run; a full run whose register never goes
        back, from past the last one held, needs only its last reading."""
        totals = run.kwh_total
        if totals is None:
            return
        key = (run.project_id, run.meter_id)
        previous = self.registers.get(key)
        if (
            None not in totals
            and None not in run.kwh
            and (previous is None or (run.first_ms > previous[0] and totals[0] >= previous[1]))
            and all(map(operator.le, totals, totals[1:]))
        ):
            self.registers[key] = (run.ts_ms(len(totals) - 1), totals[-1])
            return
        for index, (kwh, total) in enumerate(zip(run.kwh, totals)):
            if kwh is not None and total is not None:
                self._register(run.project_id, run.meter_id, run.ts_ms(index), total, found)

    async def _may_be_stored(self, missing: set[DayKey]) -> set[DayKey]:
        """The days of ``missing`` whose readings the store may hold: none after a
        project's newest stored day. Those are asked for once after a start or a
        rebalance (each meter's last stored reading), then follow this worker's writes:
        it alone writes its projects' readings until partitions move."""
        if self.newest_days is None:
            await self.landed()
            newest: dict[str, date] = {}
            for project_id, _meter_id, ts_ms, _interval_s in await self.store.last_meter_readings():
                # The day of the moment it ends: no earlier reading of the meter is in a
                # later day, whatever its interval.
                day = local_day(ts_ms, 0, self.book.tz)
                if day > newest.get(project_id, date.min):
                    newest[sys.intern(project_id)] = day
            self.newest_days = newest
        newest = self.newest_days
        return {key for key in missing if key[1] <= newest.get(key[0], date.min)}

    def _note_stored(self, touched: Iterable[DayKey]) -> None:
        if (newest := self.newest_days) is not None:
            for project_id, day in touched:
                if day > newest.get(project_id, date.min):
                    newest[project_id] = day

    async def _open_days(self, keys: Iterable[DayKey], stored: Iterable[DayKey]) -> None:
        """Open days not in memory with what is already stored for those of them in
        ``stored`` (the others have nothing stored)."""
        projects_by_day: dict[date, set[str]] = defaultdict(set)
        for project_id, day in stored:
            projects_by_day[day].add(project_id)
        found: dict[DayKey, list[MeterReading]] = defaultdict(list)
        if projects_by_day:
            for reading in await self.store.stored_readings(projects_by_day):
                found[self.book.day_of(reading)].append(reading)
        for key in keys:
            self.book.load(key, found.get(key, ()))

    async def advance(self, wall_s: float) -> None:
        """Judge what the clock completed with no record arriving (silent meters, quiet
        partitions)."""
        async with self.lock:
            await self.landed()  # a write that failed stops the worker even if no batch follows
            await self.tracker.advance(wall_s)
            await self.tracker.settle()

    async def add_stoppage(self, stoppage: Stoppage, wall_s: float) -> None:
        async with self.lock:
            await self.tracker.add_stoppage(stoppage, wall_s)
            await self.tracker.settle()

    async def take_partitions(self, partitions: set[int], wall_s: float) -> None:
        """Partitions moved: another worker may have added readings meanwhile, so open
        days and timelines are rebuilt from the store. Under the lock, so that a batch
        still in flight from the old assignment cannot leave its projects behind in
        memory: a worker kept judging (and filling silent days of) projects it no
        longer owned, over the new owner's points."""
        async with self.lock:
            await self.landed()  # what is read back from the store includes this worker's last batches
            self.book.forget_all()
            self.newest_days = None  # another worker may have written the projects now owned
            self.tracker.judge.assign(partitions, wall_s)


class InvestmentHandler:
    def __init__(self, store: WorkerStore) -> None:
        self.store = store

    async def handle(
        self, reports: Sequence[InvestmentReport], sources: Sequence[object], wall_s: float, messages: Sequence[object] | None = None
    ) -> BatchOutcome:
        await self.store.write_investment(reports)
        return BatchOutcome.nothing()
