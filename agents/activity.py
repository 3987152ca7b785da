"""Activity indicators in the stream: the adapter around the pure core.

It keeps each project's timeline (``core.indicators``), judges a day once the stream's
clock has passed its end, writes the indicators next to the day's energy in InfluxDB and
returns the events to publish. A timeline that is not in memory (first sight, restart,
rebalance) is rebuilt from the daily points already in InfluxDB, so no changelog topic is
needed and a rebuilt worker judges exactly as the one before it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import struct
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec

from ..streams.contract import EVENT_KINDS, Measurement, ProjectEvent, RegistryEntry
from .core.calendar import Stoppage, WorkCalendar
from .core.daily import DailyEnergy, DayKey, MeterReading, day_start, day_start_ms, epoch_ms
from .core.indicators import RETAINED_DAYS, BaselineHistory, DayIndicators, DayLabel, Machine, ProjectTimeline, State, stalled_working_days
from .core.offline import EventClock, MeterWatch, OfflineChange
from .core.packed import PackedDays
from .core.suspicion import COPY_LOOKBACK_DAYS, Carried, Reason, Suspicion
from ..sink.stored import load_reference
from ..streams.topics import partition_of
from ..sink.influx import RetryingInflux, project_conditions
from ..sink.points import daily_point, decode_fingerprints, indicator_point, status_point

# Days are judged minutes after they end; a day stored but unjudged is at most the grace
# period (late readings) and a few days behind the newest reading.
UNJUDGED_LOOKBACK_MS = 7 * 86_400_000

_TRANSITIONS = {
    (State.NOT_STARTED, State.STARTED): "started",
    (State.STARTED, State.STALLED): "stalled",
    (State.STALLED, State.STARTED): "resumed",
}


log = logging.getLogger("sitepulse.worker")
JUDGE_GROUP = 2_000  # projects judged, and their points written, at a time
LOAD_GROUP = 200  # timelines rebuilt from InfluxDB per request


class HeldProject(msgspec.Struct, frozen=True, gc=False):
    """What a worker keeps of every registered project: what judging, events, alerts'
    tags and the capacity check use. Name, phone, coordinates and video stay in the
    stored registry (InfluxDB) and the registry file. Districts, leaders and data owners
    repeat across thousands of projects: one string each. (No cycles: gc=False spares
    the collector's header on 100k objects.)"""

    project_id: str
    district: str
    leader: str
    data_owner: str
    capacity_kva: float

    @classmethod
    def of(cls, entry: RegistryEntry) -> HeldProject:
        return cls(
            sys.intern(entry.project_id),
            sys.intern(entry.district),
            sys.intern(entry.leader),
            sys.intern(entry.data_owner),
            entry.capacity_kva,
        )


class WrittenDays(PackedDays[int]):
    """For one project, the hash of the indicators last written for each day: 12 bytes a
    day where a dict of days cost ~70, for weeks of days of every project a worker owns."""

    __slots__ = ()
    LAYOUT = struct.Struct("<iq")  # date ordinal, hash

    def pack(self, indicators_hash: int) -> tuple:
        return (indicators_hash,)

    def unpack(self, day: date, fields: tuple) -> int:
        return fields[0]


class ActivityTracker:
    def __init__(
        self,
        influx: RetryingInflux,
        tz: ZoneInfo,
        calendar: WorkCalendar,
        grace: timedelta,
        settle: timedelta,
    ) -> None:
        self.influx = influx
        self.tz = tz
        self.calendar = calendar
        self.grace_ms = int(grace.total_seconds() * 1000)
        self.settle_ms = int(settle.total_seconds() * 1000)
        self.clock = EventClock()
        self.watch = MeterWatch()
        self.registry: dict[str, HeldProject] = {}
        self.lock = asyncio.Lock()
        self._reference_loaded = False
        # Which projects are this worker's: those keyed to its power partitions. Until
        # the app sets both, one worker owns everything (tests, a single worker).
        self.partition_count: int | None = None
        self.owned_partitions: set[int] | None = None
        self._outbox: list[ProjectEvent] = []
        self.judging_backlog = False  # more than a group of projects' days being judged
        # Timelines kept in memory between judgements; the others rest in InfluxDB (their
        # daily points) and are rebuilt for their next judgement. None: keep them all.
        self.timelines_held: int | None = None
        self.timelines_rebuilt = 0  # from InfluxDB: after a restart, a rebalance, or a rest
        # Set by the app: publishes events (and waits for the broker) before points are written.
        self.publish: Callable[[list[ProjectEvent]], Awaitable[None]] | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.timelines: dict[str, ProjectTimeline] = {}
        self.pending: dict[DayKey, DailyEnergy] = {}
        self.published: dict[str, WrittenDays] = {}
        self._dirty: set[str] = set()
        # Silent days appear only when the clock completes a new day, or for a timeline
        # that just got its days: the scan for them is skipped otherwise (it would
        # cost a pass over every project per batch).
        self._silent_scanned_through: date | None = None
        self._silent_unscanned: set[str] = set()
        # Projects whose timeline was let go, with their newest day: one whose meters say
        # nothing more must still be woken when a new day completes, to judge it offline.
        self._resting: dict[str, date] = {}
        self._woken_through: date | None = None

    def owns(self, project_id: str) -> bool:
        if self.partition_count is None:
            return True
        return self.owned_partitions is not None and partition_of(project_id.encode(), self.partition_count) in self.owned_partitions

    def forget_all(self) -> None:
        """Partitions moved: rebuild from InfluxDB what this worker owns now."""
        self._reset_state()

    def too_late(self, readings: Sequence[MeterReading], sources: Sequence[object]) -> list[bool]:
        """Which readings are older than the grace period behind the newest reading that
        came before them in their own partition (batch order is partition order), so the
        answer does not depend on where batch boundaries fall."""
        newest = {source: self.clock.newest_of(source) for source in set(sources)}
        late = []
        for reading, source in zip(readings, sources):
            before = newest[source]
            is_late = before is not None and reading.ts_ms < before - self.grace_ms
            if not is_late and (before is None or reading.ts_ms > before):
                newest[source] = reading.ts_ms
            late.append(is_late)
        return late

    def set_project(self, entry: RegistryEntry) -> None:
        held = self.registry[sys.intern(entry.project_id)] = HeldProject.of(entry)
        timeline = self.timelines.get(entry.project_id)
        if timeline is not None and timeline.capacity_kva != held.capacity_kva:
            timeline.capacity_kva = held.capacity_kva
            self._dirty.add(entry.project_id)

    async def observe(
        self, readings: Sequence[tuple[MeterReading, object, object]], energies: Iterable[tuple[DayKey, DailyEnergy]], wall_s: float
    ) -> list[ProjectEvent]:
        """Take a batch of (reading, source partition, message it came in) and the day
        totals it changed, each with its day's key."""
        message_start: dict[tuple[object, object], int] = {}
        for reading, source, message in readings:
            key = (source, message)
            if reading.ts_ms < message_start.get(key, reading.ts_ms + 1):
                message_start[key] = reading.ts_ms
        for reading, source, message in readings:
            change = self.watch.seen(reading.project_id, reading.meter_id, reading.ts_ms, reading.interval_s)
            if change is not None:
                self._outbox.append(self._meter_event(change, reading.ts_ms))
            self.clock.observe(reading.ts_ms, wall_s, source, message_start[(source, message)])
        for key, energy in energies:
            self.pending[key] = energy
        return await self.advance(wall_s)

    async def _ensure_reference(self) -> None:
        """Registry rows and stoppages stored before this worker started: its consumer
        goes on from committed offsets and will not see those records again."""
        if self._reference_loaded or (self.partition_count is not None and self.owned_partitions is None):
            return  # loaded, or not yet assigned partitions: other workers' projects are not ours
        registry, stoppages = await load_reference(self.influx.query)
        for project_id, entry in registry.items():
            if project_id not in self.registry:
                held = HeldProject.of(entry)
                self.registry[held.project_id] = held
        for stoppage in stoppages:
            if stoppage not in self.calendar.stoppages_of(stoppage.project_id):
                self.calendar.add_stoppage(stoppage)
        # Every meter's last stored reading: a meter that went silent before this worker
        # started sends nothing that would tell it, so its alarm must come from here.
        (series_list,) = await self.influx.query(
            f"SELECT last(interval_s) FROM {Measurement.POWER_READING} GROUP BY {Measurement.TAG_PROJECT}, {Measurement.TAG_METER}"
        )
        newest_ms = None
        for series in series_list:
            if not self.owns(series.tags[Measurement.TAG_PROJECT]):
                continue  # another worker watches that meter
            for ts_ms, interval_s in series.values:
                self.watch.seen(series.tags[Measurement.TAG_PROJECT], series.tags[Measurement.TAG_METER], ts_ms, int(interval_s))
                newest_ms = ts_ms if newest_ms is None else max(newest_ms, ts_ms)
        if newest_ms is not None:
            self.clock.resume(newest_ms, time.time())
            await self._pick_up_unjudged_days(newest_ms)
        self._reference_loaded = True

    async def _pick_up_unjudged_days(self, newest_ms: int) -> None:
        """Days stored but not judged when the previous worker stopped: no reading may
        ever come again for them, so they wait in ``pending`` from the start. And every
        project stored within the window rests until its next day is due: one whose
        meters all went silent sends nothing that would load it, yet must be judged
        offline for the days that follow."""
        since_ms = newest_ms - UNJUDGED_LOOKBACK_MS
        window_ms = newest_ms - (2 * RETAINED_DAYS + 3) * 86_400_000
        unjudged, newest_days = await self.influx.query(
            f"SELECT * FROM {Measurement.POWER_DAILY} WHERE time >= {since_ms}ms GROUP BY {Measurement.TAG_PROJECT};"
            f'SELECT last("date") FROM {Measurement.POWER_DAILY} WHERE time >= {window_ms}ms GROUP BY {Measurement.TAG_PROJECT}'
        )
        for series in unjudged:
            project_id = series.tags[Measurement.TAG_PROJECT]
            if not self.owns(project_id):
                continue  # another worker's day: judging it here would race its owner
            for row in series.rows():
                if row.get("date") and not row.get("machine_state") and row.get("readings") is not None:
                    energy = _stored_energy(project_id, row)
                    self.pending.setdefault((project_id, energy.day), energy)
        for series in newest_days:
            project_id = series.tags[Measurement.TAG_PROJECT]
            if self.owns(project_id) and project_id not in self.timelines:
                for _ts, newest_day in series.values:
                    self._resting.setdefault(project_id, date.fromisoformat(newest_day))

    async def advance(self, wall_s: float) -> list[ProjectEvent]:
        """Judge the days the clock has passed; raise offline alarms."""
        await self._ensure_reference()
        now_ms = self.clock.now_ms(wall_s)
        if now_ms is None:
            return []
        self._outbox.extend(self._meter_event(change, now_ms) for change in self.watch.overdue(now_ms))
        unpublished: list[ProjectEvent] = []
        # A day that completes for 100k projects at once (midnight in a replay) is judged
        # a group at a time: memory holds one group's stored days and points, not all.
        projects = {project_id for project_id, day in self.pending if self._is_complete(day, now_ms)}
        projects.update(self._waking(now_ms))
        if len(projects) > JUDGE_GROUP:
            log.info("judging the completed days of %d projects", len(projects))
            self.judging_backlog = True
        try:
            ordered = sorted(projects)
            for start in range(0, len(ordered), JUDGE_GROUP):
                group = set(ordered[start : start + JUDGE_GROUP])
                woken = [self._resting.pop(p) for p in group if p in self._resting]
                await self._load_timelines(group, around=max(woken, default=None))
                # Loading may have found stored days that were never judged: judge them now
                # too, or a later day would be judged over a gap.
                for key in [k for k in self.pending if k[0] in group and self._is_complete(k[1], now_ms)]:
                    self.timelines[key[0]].set_day(self.pending.pop(key))
                    self._dirty.add(key[0])
                silent_days = self._fill_silent(group, now_ms)
                unpublished += await self._emit([daily_point(energy, self.tz) for energy in silent_days], group & self._dirty, now_ms)
                self._rest_timelines()
        finally:
            self.judging_backlog = False
        silent_days = self._fill_silent_days(now_ms)
        unpublished += await self._emit([daily_point(energy, self.tz) for energy in silent_days], set(self._dirty), now_ms)
        self._rest_timelines()
        return unpublished

    def _newest_complete_day(self, now_ms: int) -> date:
        return self._local(now_ms - self.settle_ms).date() - timedelta(days=1)

    def _waking(self, now_ms: int) -> list[str]:
        """Resting projects with a day to judge that no reading will bring: looked for
        when the clock completes a new day (the silent-day scan does the same for the
        timelines in memory, and must then skip these)."""
        through = self._newest_complete_day(now_ms)
        if not self._resting or through == self._woken_through:
            return []
        self._woken_through = through
        return [project_id for project_id, newest in self._resting.items() if newest < through]

    def _rest_timelines(self) -> None:
        """Let go of the longest-unjudged timelines beyond ``timelines_held``: judged,
        written, and rebuilt from InfluxDB for their next judgement."""
        if self.timelines_held is None or len(self.timelines) <= self.timelines_held:
            return
        excess = len(self.timelines) - self.timelines_held
        resting = []
        for project_id in self.timelines:  # oldest judged first: judging moves a timeline to the end
            if len(resting) == excess:
                break
            if project_id not in self._dirty and self.timelines[project_id].inputs:
                resting.append(project_id)
        for project_id in resting:
            timeline = self.timelines.pop(project_id)
            self.published.pop(project_id, None)
            self._resting[project_id] = timeline.inputs.last()

    def _is_complete(self, day: date, now_ms: int) -> bool:
        return self._day_end_ms(day) + self.settle_ms <= now_ms

    async def _emit(self, points: list[str], projects: set[str], now_ms: int) -> list[ProjectEvent]:
        """Judge ``projects``; publish the events, then write the points. Returns the
        events when there is no publisher (tests of the tracker alone)."""
        events: list[ProjectEvent] = []
        for project_id in sorted(projects):
            self.timelines[project_id] = self.timelines.pop(project_id)  # now the most recently judged
            day_points, day_events = self.judge_project(project_id, now_ms)
            points.extend(day_points)
            events.extend(day_events)
        self._dirty -= projects
        events = self._outbox + events
        self._outbox = []
        if self.publish is not None and events:
            # Events go out before the judgement that found them is stored: a crash in
            # between judges the day again after the restart and publishes it again (same
            # event id), instead of storing a judgement whose event was never sent.
            await self.publish(events)
            events = []
        await self.influx.write(points)
        return events

    def _day_end_ms(self, day: date) -> int:
        return day_start_ms(day + timedelta(days=1), self.tz)

    def _fill_silent_days(self, now_ms: int) -> list[DailyEnergy]:
        """A project whose meters said nothing for whole days: those days are offline."""
        through = self._newest_complete_day(now_ms)
        if through == self._silent_scanned_through:
            candidates = [p for p in self._silent_unscanned if p in self.timelines]
        else:
            candidates = list(self.timelines)
        self._silent_scanned_through = through
        self._silent_unscanned = set()
        return self._fill_silent(candidates, now_ms)

    def _fill_silent(self, project_ids: Iterable[str], now_ms: int) -> list[DailyEnergy]:
        filled = []
        for project_id in project_ids:
            timeline = self.timelines[project_id]
            newest = timeline.inputs.last()
            if newest is None:
                continue
            interval_s = timeline.inputs[newest].interval_s
            day = newest + timedelta(days=1)
            while self._day_end_ms(day) + self.settle_ms <= now_ms and (project_id, day) not in self.pending:
                energy = DailyEnergy(project_id, day, 0.0, 0, 0, 86_400, interval_s, False)
                timeline.set_day(energy)
                filled.append(energy)
                self._dirty.add(project_id)
                day += timedelta(days=1)
        return filled

    def judge_project(self, project_id: str, now_ms: int) -> tuple[list[str], list[ProjectEvent]]:
        """Evaluate a project's timeline: the points of the days whose indicators changed
        since last written, and their events; then fold days behind the window."""
        timeline = self.timelines[project_id]
        evaluated = timeline.evaluate()
        published = self.published.get(project_id)
        if published is None:
            published = self.published[project_id] = WrittenDays()
        points, events = [], []
        previous = timeline.anchor
        entry = self.registry.get(project_id)
        for position, day in enumerate(evaluated):
            if published.get(day.day) != hash(day):
                points.append(indicator_point(day, self.tz))
                # The status as of this day: one point per project and day, so what is
                # stored does not depend on how many days one batch happened to judge.
                points.append(status_point(entry, day, stalled_working_days(evaluated[: position + 1]), self.tz))
                events.extend(self._day_events(day, previous, now_ms))
                published[day.day] = hash(day)
            previous = day.machine
        keep_from = timeline.inputs.last() - timedelta(days=RETAINED_DAYS)
        timeline.forget_before(keep_from, evaluated)
        published.drop_before(keep_from)
        return points, events

    def _day_events(self, day: DayIndicators, before: Machine, now_ms: int) -> list[ProjectEvent]:
        kinds = []
        transition = _TRANSITIONS.get((before.state, day.machine.state))
        if transition:
            kinds.append(transition)
        detail = f"{day.day.isoformat()} 用电 {day.kwh:.1f} kWh"
        if day.activity_index is not None:
            detail += f", 活跃指数 {day.activity_index:.2f}"
        events = [self._event(kind, day.project_id, now_ms, day=day.day, detail=f"{EVENT_KINDS[kind]}: {detail}") for kind in kinds]
        found = day.suspicion
        # One event, and one problem, per run: told on the run's first day (judged again
        # when the run is found), under the same id whenever it is found again.
        if found is not None and found.since == day.day:
            events.append(
                self._event(
                    "suspicious", day.project_id, now_ms, day=day.day, meter_id=found.meter_id or None, reason=found.reason.value,
                    detail=f"{EVENT_KINDS['suspicious']}: {suspicion_text(day, found)}",
                )
            )
        return events

    def _meter_event(self, change: OfflineChange, now_ms: int) -> ProjectEvent:
        kind = "offline" if change.offline else "online"
        last = datetime.fromtimestamp(change.last_reading_ms / 1000, timezone.utc).astimezone(self.tz)
        detail = f"{EVENT_KINDS[kind]}: 电表 {change.meter_id} 最后读数 {last:%Y-%m-%d %H:%M}"
        return self._event(kind, change.project_id, now_ms, meter_id=change.meter_id, detail=detail, since_ms=change.last_reading_ms)

    def _event(self, kind: str, project_id: str, now_ms: int, *, since_ms: int | None = None, **fields) -> ProjectEvent:
        entry = self.registry.get(project_id)
        anchor = fields.get("day") or since_ms
        reason = f":{fields['reason']}" if fields.get("reason") else ""
        return ProjectEvent(
            event_id=f"{kind}:{project_id}:{fields.get('meter_id') or ''}:{anchor}{reason}",
            kind=kind,
            project_id=project_id,
            at=self._local(now_ms),
            since=self._local(since_ms) if since_ms is not None else None,
            leader=entry.leader if entry else None,
            district=entry.district if entry else None,
            data_owner=entry.data_owner if entry else None,
            **fields,
        )

    def register_reset_event(self, project_id: str, meter_id: str, ts_ms: int, before: float, after: float) -> ProjectEvent:
        detail = f"{EVENT_KINDS['meter_reset']}: 电表 {meter_id} 于 {self._local(ts_ms):%Y-%m-%d %H:%M} 读数由 {before:.1f} 降至 {after:.1f} kWh"
        return self._event("meter_reset", project_id, ts_ms, meter_id=meter_id, detail=detail, since_ms=ts_ms)

    def _local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(self.tz)

    async def add_stoppage(self, stoppage: Stoppage, wall_s: float) -> list[ProjectEvent]:
        """An approved stoppage, possibly for days already judged: judge the project's
        retained days again and rewrite every one of them (days folded into the anchor,
        older than the retained window, keep their judgement)."""
        await self._ensure_reference()
        self.calendar.add_stoppage(stoppage)
        project_id = stoppage.project_id
        await self._load_timelines({project_id}, around=stoppage.last)
        if self.timelines[project_id].inputs:
            self.published[project_id] = WrittenDays()
            self._dirty.add(project_id)
        else:
            del self.timelines[project_id]  # nothing judged yet: the calendar is enough
        return await self.advance(wall_s)

    async def _load_timelines(self, project_ids: set[str], around: date | None = None) -> None:
        """Rebuild timelines not in memory from their stored daily points: judged days
        before the window become history and anchor, as in a timeline that never left
        memory; unjudged days wait in ``pending``."""
        missing = sorted(p for p in project_ids if p not in self.timelines)
        if not missing:
            return
        self.timelines_rebuilt += len(missing)
        newest_day = max((e.day for k, e in self.pending.items() if k[0] in project_ids), default=around or date.today())
        since_ms = epoch_ms(day_start(newest_day - timedelta(days=2 * RETAINED_DAYS + 3), self.tz))
        # A project's window is ~130 stored days: a few hundred projects per request keep
        # the rows decoded at once to tens of MB, whatever the group judged.
        for start in range(0, len(missing), LOAD_GROUP):
            await self._rebuild(missing[start : start + LOAD_GROUP], since_ms)

    async def _rebuild(self, missing: list[str], since_ms: int) -> None:
        results = await self.influx.query(
            ";".join(
                f"SELECT * FROM {Measurement.POWER_DAILY} WHERE {projects} AND time >= {since_ms}ms GROUP BY {Measurement.TAG_PROJECT}"
                for projects in project_conditions(missing)
            )
        )
        stored: dict[str, list[dict]] = defaultdict(list)
        for series in (series for series_list in results for series in series_list):
            stored[series.tags[Measurement.TAG_PROJECT]].extend(series.rows())
        del results
        for project_id in missing:
            entry = self.registry.get(project_id)
            timeline = ProjectTimeline(project_id, entry.capacity_kva if entry else 0.0, self.calendar)
            self.timelines[project_id] = timeline
            self._silent_unscanned.add(project_id)
            rows = sorted((r for r in stored.get(project_id, ()) if r.get("date")), key=lambda r: r["date"])
            judged = [r for r in rows if r.get("machine_state")]
            if judged:
                window_start = date.fromisoformat(judged[-1]["date"]) - timedelta(days=RETAINED_DAYS)
                before = [_stored_indicators(project_id, r) for r in judged if r["date"] < window_start.isoformat()]
                if before:
                    timeline.anchor = before[-1].machine
                    timeline.carried = before[-1].carried
                    timeline.history = BaselineHistory({d.day: d for d in before if d.day >= window_start - timedelta(days=RETAINED_DAYS)})
            else:
                window_start = date.min
            for row in rows:
                energy = _stored_energy(project_id, row)
                if energy.day < window_start:
                    if energy.day >= window_start - timedelta(days=COPY_LOOKBACK_DAYS):
                        timeline.set_fingerprints(energy)  # the week a copied day may repeat
                    continue
                if row.get("machine_state"):
                    timeline.set_day(energy)
                else:
                    self.pending.setdefault((project_id, energy.day), energy)
            # What was judged before the restart is not news: no events for it again.
            self.published[project_id] = WrittenDays({day.day: hash(day) for day in timeline.evaluate()})


def suspicion_text(day: DayIndicators, found: Suspicion) -> str:
    """Why a day is suspicious, for the supervisor who must check on site."""
    if found.reason == Reason.EXACT_FLAT:
        return f"{day.day.isoformat()} 电表每个时段读数完全相同 (全天 {day.kwh:.1f} kWh), 真实电表不会如此, 疑似数据造假, 请现场核实"
    if found.reason == Reason.COPIED:
        return f"电表 {found.meter_id} 在 {day.day.isoformat()} 的负荷曲线与 {found.copied_from.isoformat() if found.copied_from else '此前某日'} 几乎完全相同, 疑似重复上报读数, 请核实电表数据"
    usual = f", 本工地正常工作日约 {found.usual_cv:.2f}" if found.usual_cv is not None else ""
    variation = f"小时负荷变异系数 {found.load_cv:.3f}{usual}" if found.load_cv is not None else "负荷无昼夜变化"
    return f"自 {found.since.isoformat()} 起连续工作日负荷昼夜恒定 ({variation}), 疑似机器空转充当施工用电, 请现场核实"


def _stored_energy(project_id: str, row: dict) -> DailyEnergy:
    return DailyEnergy(
        project_id,
        date.fromisoformat(row["date"]),
        float(row.get("kwh") or 0.0),
        int(row.get("readings") or 0),
        int(row.get("meters") or 0),
        int(row.get("max_gap_s") or 0),
        int(row.get("interval_s") or 0),
        bool(row.get("flat_load")),
        row.get("load_cv"),
        row.get("day_night"),
        decode_fingerprints(row.get("profile")),
    )


def _stored_indicators(project_id: str, row: dict) -> DayIndicators:
    return DayIndicators(
        project_id=project_id,
        day=date.fromisoformat(row["date"]),
        kwh=float(row.get("kwh") or 0.0),
        baseline_kwh=row.get("baseline_kwh"),
        activity_index=row.get("activity_index"),
        label=DayLabel(row["state"]),
        machine=Machine(State(row["machine_state"]), int(row.get("idle_run") or 0), int(row.get("busy_run") or 0)),
        working_day=bool(row.get("working_day")),
        offline=bool(row.get("offline")),
        stable=bool(row.get("stable")),
        look=int(row.get("look") or 0),
        load_cv=row.get("load_cv"),
        carried=Carried.decode(row.get("open_runs")),
    )
