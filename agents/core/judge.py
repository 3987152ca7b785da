"""The judge: the stream's activity indicators as a pure stateful operator.

What arrives goes in as data — readings seen (for the event clock and the meter watch),
day totals, registry rows, stoppages, days stored before a restart — and what to do
comes out as data: a ``Judgement`` with the silent days to store, the judged days to
write (with the status as of each) and the events to publish. No awaits, no InfluxDB,
no Kafka: the adapter (``agents/activity.py``) loads what the judge asks for, publishes
the events, then writes the points.

One judge holds the projects of the partitions its worker owns. Timelines are kept in
memory between judgements up to ``timelines_held``; the others *rest* — their days are
in storage — and are rebuilt, exactly as they were, for their next judgement. Why, and
what it costs (measured in docs/performance.md): a timeline with its full retained
window is 4.1 KB packed (``PackedDays``; 31.7 KB as dicts of small objects). A city's
420 projects hold ~1.7 MB and all stay in memory. A province's 100k would hold 410 MB,
so a worker keeps the 10,000 most recently judged (41 MB) and pays for the rest in
reads: each day's judgement rebuilds every resting project from ~130 stored days,
``LOAD_GROUP`` projects per request.
"""

from __future__ import annotations

import struct
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from ...streams.contract import ProjectEvent, RegistryEntry
from .calendar import Stoppage, WorkCalendar
from .daily import DailyEnergy, DayKey, MeterReading, MeterRun, day_start, day_start_ms, epoch_ms
from .day_events import DayEvents, HeldProject
from .indicators import RETAINED_DAYS, BaselineHistory, DayIndicators, ProjectTimeline, stalled_working_days
from .offline import EventClock, MeterWatch
from .packed import PackedDays
from .suspicion import COPY_LOOKBACK_DAYS

JUDGE_GROUP = 2_000  # projects judged, and their points written, at a time
LOAD_GROUP = 200  # timelines rebuilt from storage per request
# Days are judged minutes after they end; a day stored but unjudged is at most the grace
# period (late readings) and a few days behind the newest reading.
UNJUDGED_LOOKBACK = timedelta(days=7)
# What a rebuild reads: the retained window, the history its baselines use, a few days' slack.
REBUILD_REACH = timedelta(days=2 * RETAINED_DAYS + 3)



class _SingleReadingMessages:
    def __repr__(self) -> str:
        return "SINGLE_READING_MESSAGES"


# The message of a run put together from readings sent one per message (``Judge.observe``).
SINGLE_READING_MESSAGES = _SingleReadingMessages()


@dataclass(frozen=True, slots=True)
class StoredDay:
    """A project's day as storage holds it: its energy and, once judged, its indicators."""

    energy: DailyEnergy
    judged: DayIndicators | None = None


def _places_before(run: MeterRun, cutoff_ms: int) -> int:
    """How many of a run's first places end before ``cutoff_ms``."""
    step = run.interval_s * 1000
    return max(0, min(len(run.kwh), -(-(cutoff_ms - run.first_ms) // step)))


@dataclass(frozen=True, slots=True)
class JudgedDay:
    """A day whose indicators changed since last written, with the project's status as
    of that day (one status point per project and day, so what is stored does not
    depend on how many days one batch happened to judge)."""

    indicators: DayIndicators
    stalled_working_days: int
    project: HeldProject | None


@dataclass(slots=True)
class Judgement:
    """What one step found: store ``silent_days`` and ``judged`` after publishing ``events``."""

    silent_days: list[DailyEnergy] = field(default_factory=list)
    judged: list[JudgedDay] = field(default_factory=list)
    events: list[ProjectEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Due:
    """Projects with days to judge now, in groups of ``JUDGE_GROUP``."""

    now_ms: int
    groups: list[list[str]]


@dataclass(frozen=True, slots=True)
class Rebuild:
    """Timelines to rebuild from storage before judging a group: their stored days
    since ``since_ms``."""

    project_ids: list[str]
    since_ms: int

    def chunks(self) -> Iterable[list[str]]:
        # A project's window is ~130 stored days: a few hundred projects per request keep
        # the rows decoded at once to tens of MB, whatever the group judged.
        for start in range(0, len(self.project_ids), LOAD_GROUP):
            yield self.project_ids[start : start + LOAD_GROUP]


class WrittenDays(PackedDays[int]):
    """For one project, the hash of the indicators last written for each day: 12 bytes a
    day where a dict of days cost ~70, for weeks of days of every project a worker owns."""

    __slots__ = ()
    LAYOUT = struct.Struct("<iq")  # date ordinal, hash

    def pack(self, indicators_hash: int) -> tuple:
        return (indicators_hash,)

    def unpack(self, day: date, fields: tuple) -> int:
        return fields[0]


class PendingDays:
    """Days stored and waiting for the clock to complete them, by project and day. Asked
    at every batch which projects have a complete day: with partitions read unevenly, a
    replay holds tens of thousands of such days, but only a few distinct dates."""

    __slots__ = ("_energies", "_projects_on")

    def __init__(self) -> None:
        self._energies: dict[DayKey, DailyEnergy] = {}
        self._projects_on: dict[date, set[str]] = {}

    def __iter__(self) -> Iterator[DayKey]:
        return iter(self._energies)

    def __len__(self) -> int:
        return len(self._energies)

    def __contains__(self, key: object) -> bool:
        return key in self._energies

    def items(self) -> Iterable[tuple[DayKey, DailyEnergy]]:
        return self._energies.items()

    def put(self, key: DayKey, energy: DailyEnergy) -> None:
        self._energies[key] = energy
        self._projects_on.setdefault(key[1], set()).add(key[0])

    def setdefault(self, key: DayKey, energy: DailyEnergy) -> None:
        if key not in self._energies:
            self.put(key, energy)

    def pop(self, key: DayKey) -> DailyEnergy:
        energy = self._energies.pop(key)
        projects = self._projects_on[key[1]]
        projects.discard(key[0])
        if not projects:
            del self._projects_on[key[1]]
        return energy

    def projects_through(self, day: date) -> set[str]:
        """The projects with a pending day on or before ``day``."""
        found: set[str] = set()
        for on, projects in self._projects_on.items():
            if on <= day:
                found |= projects
        return found

    def keys_through(self, members: set[str], day: date) -> list[DayKey]:
        """The pending days of ``members`` on or before ``day``."""
        return [(project_id, on) for on, projects in self._projects_on.items() if on <= day for project_id in projects & members]


class Judge:
    # The timelines judged most recently keep their last evaluation as objects (~22 KB
    # each with a full window): a city's worker judges every project every day and resumes for nothing;
    # a province's share of 100k projects is judged in turn from the packed form.
    UNPACKED_TIMELINES = 500

    def __init__(
        self,
        tz: ZoneInfo,
        calendar: WorkCalendar,
        grace: timedelta,
        settle: timedelta,
        *,
        partition_of: Callable[[str], int] | None = None,
        timelines_held: int | None = None,
    ) -> None:
        """``partition_of``: the power topic's partition a project's readings are keyed to;
        a project is this judge's when it falls in an owned partition (None: every
        project, one worker or a test).
        ``timelines_held``: timelines kept in memory between judgements (None: all)."""
        self.tz = tz
        self.calendar = calendar
        self.grace_ms = int(grace.total_seconds() * 1000)
        self.settle_ms = int(settle.total_seconds() * 1000)
        self.partition_of = partition_of
        self.timelines_held = timelines_held
        self.owned_partitions: set[int] | None = None
        self.clock = EventClock()
        self.watch = MeterWatch()
        self.registry: dict[str, HeldProject] = {}
        self.day_events = DayEvents(tz, self.registry)
        self.timelines_rebuilt = 0  # after a restart, a rebalance, or a rest
        self.reference_taken = False  # what storage holds from before this judge (take_*)
        self._outbox: list[ProjectEvent] = []
        self._reset_state()

    def _reset_state(self) -> None:
        self.timelines: dict[str, ProjectTimeline] = {}
        self.pending = PendingDays()
        self.written_hashes: dict[str, WrittenDays] = {}
        self._dirty: set[str] = set()
        self._unpacked: OrderedDict[str, None] = OrderedDict()  # oldest evaluated first
        # Silent days appear only when the clock completes a new day, or for a timeline
        # that just got its days: the scan for them is skipped otherwise (it would
        # cost a pass over every project per batch).
        self._silent_scanned_through: date | None = None
        self._silent_unscanned: set[str] = set()
        # Projects whose timeline was let go, with their newest day: one whose meters say
        # nothing more must still be woken when a new day completes, to judge it offline.
        self.resting: dict[str, date] = {}
        self._woken_through: date | None = None
        self._complete_through: date | None = None  # the newest day complete at the last step

    # --- ownership ------------------------------------------------------------------

    def owns(self, project_id: str) -> bool:
        if self.partition_of is None:
            return True
        return self.owned_partitions is not None and self.partition_of(project_id) in self.owned_partitions

    @property
    def wants_reference(self) -> bool:
        """Whether to take what storage holds (``take_reference``, ``take_last_readings``,
        ``take_unjudged``) before judging: once after a start or a rebalance, once it
        knows which projects are its own."""
        return not self.reference_taken and (self.partition_of is None or self.owned_partitions is not None)

    def assign(self, partitions: set[int], wall_s: float) -> None:
        """Partitions moved: start again as a restarted worker would, from what storage
        holds of the projects this judge owns now (another worker may have judged some
        of them meanwhile). The clock too: partitions taken over are re-delivered from
        their last commit, hours or days behind the clock this worker's own partitions
        had pushed on, and judged against it their meters would look offline and their
        days silent. The meter watch too: it must hold the owned meters, no others."""
        self._reset_state()
        self.owned_partitions = partitions
        self.clock = EventClock()
        self.clock.expect(partitions, wall_s)
        self.watch = MeterWatch()
        self.reference_taken = False

    # --- what arrives -----------------------------------------------------------------

    def set_project(self, entry: RegistryEntry) -> None:
        held = self.registry[sys.intern(entry.project_id)] = HeldProject.of(entry)
        timeline = self.timelines.get(entry.project_id)
        if timeline is not None and timeline.capacity_kva != held.capacity_kva:
            timeline.capacity_kva = held.capacity_kva
            self._dirty.add(entry.project_id)

    def too_late(self, readings: Sequence[MeterReading | MeterRun], sources: Sequence[object]) -> list[int]:
        """Which readings are older than the grace period behind the newest reading that
        came before them in their own partition (batch order is partition order), so the
        answer does not depend on where batch boundaries fall: 1 or 0 for a reading, and
        for a run how many of its first places are that old (its readings are in time
        order, so once one is in time, the rest are)."""
        newest = {source: self.clock.newest_of(source) for source in set(sources)}
        late: list[int] = []
        for reading, source in zip(readings, sources):
            before = newest[source]
            if type(reading) is MeterRun:
                late_places = 0 if before is None else _places_before(reading, before - self.grace_ms)
                bounds = reading.without(range(late_places)).bounds() if late_places else reading.bounds()
                if bounds is not None and (before is None or bounds[1] > before):
                    newest[source] = bounds[1]
                late.append(late_places)
                continue
            is_late = before is not None and reading.ts_ms < before - self.grace_ms
            if not is_late and (before is None or reading.ts_ms > before):
                newest[source] = reading.ts_ms
            late.append(is_late)
        return late

    def observe(
        self, readings: Sequence[tuple[MeterReading, object, object]], energies: Iterable[tuple[DayKey, DailyEnergy]], wall_s: float
    ) -> None:
        """A batch of (reading, source partition, message it came in) and the day totals
        it changed, each with its day's key. A run whose message is
        ``SINGLE_READING_MESSAGES`` was sent one reading per message: each of its
        readings starts a message of its own."""
        spans: dict[tuple[object, object], list[int]] = {}  # (source, message) -> [earliest, newest]
        seen, outbox = self.watch.seen, self._outbox
        for reading, source, message in readings:
            if type(reading) is MeterRun:
                self._observe_run(reading, spans.setdefault((source, message), []))
                continue
            ts_ms = reading.ts_ms
            span = spans.get((source, message))
            if not span:  # none yet, or only a run of the message's with no reading left (all too late)
                spans[(source, message)] = [ts_ms, ts_ms]
            elif ts_ms < span[0]:
                span[0] = ts_ms
            elif ts_ms > span[1]:
                span[1] = ts_ms
            change = seen(reading.project_id, reading.meter_id, ts_ms, reading.interval_s)
            if change is not None:
                outbox.append(self.day_events.of_meter(change, ts_ms))
        # The clock keeps the newest reading and the latest message start of each
        # source: once per message is the same as once per reading.
        for (source, message), span in spans.items():
            if span:
                self.clock.observe(span[1], wall_s, source, span[1] if message is SINGLE_READING_MESSAGES else span[0])
        for key, energy in energies:
            self.pending.put(key, energy)

    def _observe_run(self, run: MeterRun, span: list[int]) -> None:
        """``observe``'s work for each reading of a run, in one step."""
        bounds = run.bounds()
        if bounds is None:
            return
        earliest, newest = bounds
        if not span:
            span += [earliest, newest]
        else:
            span[0], span[1] = min(span[0], earliest), max(span[1], newest)
        change = self.watch.seen_run(run.project_id, run.meter_id, map(run.ts_ms, run.present()), newest, run.interval_s)
        if change is not None:
            self._outbox.append(self.day_events.of_meter(change, change.last_reading_ms))

    def meter_reset(self, project_id: str, meter_id: str, ts_ms: int, before: float, after: float) -> ProjectEvent:
        return self.day_events.meter_reset(project_id, meter_id, ts_ms, before, after)

    def add_stoppage(self, stoppage: Stoppage) -> Rebuild | None:
        """An approved stoppage, possibly for days already judged. Returns the rebuild its
        project needs before ``rejudge``."""
        self.calendar.add_stoppage(stoppage)
        return self.rebuild_for([stoppage.project_id], around=stoppage.last)

    def rejudge(self, project_id: str) -> None:
        """Judge a project's retained days again and rewrite every one of them (days
        folded into the anchor, older than the retained window, keep their judgement)."""
        if self.timelines[project_id].inputs:
            self.written_hashes[project_id] = WrittenDays()
            self._dirty.add(project_id)
        else:
            del self.timelines[project_id]  # nothing judged yet: the calendar is enough

    # --- what a restarted judge takes from storage ---------------------------------------

    def take_reference(self, registry: Mapping[str, RegistryEntry], stoppages: Iterable[Stoppage]) -> None:
        """Registry rows and stoppages stored before this judge started: its consumer goes
        on from committed offsets and will not see those records again."""
        for project_id, entry in registry.items():
            if project_id not in self.registry:
                held = HeldProject.of(entry)
                self.registry[held.project_id] = held
        for stoppage in stoppages:
            if stoppage not in self.calendar.stoppages_of(stoppage.project_id):
                self.calendar.add_stoppage(stoppage)

    def take_last_readings(self, last_readings: Iterable[tuple[str, str, int, int]], wall_s: float) -> int | None:
        """Every meter's last stored (project, meter, ts_ms, interval_s): a meter that went
        silent before this judge started sends nothing that would tell it, so its alarm
        must come from here. Returns the newest reading's time, where the clock resumes."""
        newest_ms = None
        for project_id, meter_id, ts_ms, interval_s in last_readings:
            if not self.owns(project_id):
                continue  # another worker watches that meter
            self.watch.seen(project_id, meter_id, ts_ms, interval_s)
            newest_ms = ts_ms if newest_ms is None else max(newest_ms, ts_ms)
        if newest_ms is not None:
            self.clock.resume(newest_ms, wall_s)
        return newest_ms

    def take_unjudged(self, unjudged: Iterable[DailyEnergy], newest_days: Mapping[str, date]) -> None:
        """Days stored but not judged when the previous worker stopped: no reading may
        ever come again for them, so they wait from the start. And every project stored
        within the window rests until its next day is due: one whose meters all went
        silent sends nothing that would load it, yet must be judged offline for the days
        that follow."""
        for energy in unjudged:
            if self.owns(energy.project_id):  # another worker's day: judging it here would race its owner
                self.pending.setdefault((energy.project_id, energy.day), energy)
        for project_id, newest_day in newest_days.items():
            if self.owns(project_id) and project_id not in self.timelines:
                self.resting.setdefault(project_id, newest_day)

    def rebuild_for(self, project_ids: Iterable[str], around: date | None = None) -> Rebuild | None:
        """The stored days needed to rebuild the timelines of ``project_ids`` not in
        memory (None: all are), reaching back from their newest pending day."""
        missing = sorted(p for p in project_ids if p not in self.timelines)
        if not missing:
            return None
        wanted = set(missing)
        newest_day = max((e.day for k, e in self.pending.items() if k[0] in wanted), default=around or date.today())
        return Rebuild(missing, epoch_ms(day_start(newest_day - REBUILD_REACH, self.tz)))

    def rebuild(self, project_ids: Iterable[str], stored: Mapping[str, Sequence[StoredDay]]) -> None:
        """Timelines from their stored days: judged days before the window become history
        and anchor, as in a timeline that never left memory; unjudged days wait to be
        judged. What was judged before is not news: no events for it again."""
        for project_id in project_ids:
            self.timelines_rebuilt += 1
            entry = self.registry.get(project_id)
            timeline = ProjectTimeline(project_id, entry.capacity_kva if entry else 0.0, self.calendar)
            self.timelines[project_id] = timeline
            self._silent_unscanned.add(project_id)
            days = sorted(stored.get(project_id, ()), key=lambda d: d.energy.day)
            judged = [d.judged for d in days if d.judged is not None]
            if judged:
                window_start = judged[-1].day - timedelta(days=RETAINED_DAYS)
                before = [d for d in judged if d.day < window_start]
                if before:
                    timeline.anchor = before[-1].machine
                    timeline.carried = before[-1].carried
                    timeline.history = BaselineHistory({d.day: d for d in before if d.day >= window_start - timedelta(days=RETAINED_DAYS)})
            else:
                window_start = date.min
            for stored_day in days:
                energy = stored_day.energy
                if energy.day < window_start:
                    if energy.day >= window_start - timedelta(days=COPY_LOOKBACK_DAYS):
                        timeline.set_fingerprints(energy)  # the week a copied day may repeat
                    continue
                if stored_day.judged is not None:
                    timeline.set_day(energy)
                else:
                    self.pending.setdefault((project_id, energy.day), energy)
            self.written_hashes[project_id] = WrittenDays({day.day: hash(day) for day in timeline.evaluate()})
            self._evaluated(project_id)

    # --- judging as the clock passes days -------------------------------------------------

    def due(self, wall_s: float) -> Due | None:
        """The projects with a day to judge now, and meters gone quiet (their events come
        out with the next judgement). None: the clock has not started."""
        now_ms = self.clock.now_ms(wall_s)
        if now_ms is None:
            return None
        self._complete_through = self._newest_complete_day(now_ms)
        self._outbox.extend(self.day_events.of_meter(change, now_ms) for change in self.watch.overdue(now_ms))
        # A day that completes for 100k projects at once (midnight in a replay) is judged
        # a group at a time: memory holds one group's stored days and points, not all.
        # Asked at every batch, of every pending date: a comparison of dates, not of instants.
        through = self._complete_through
        projects = self.pending.projects_through(through)
        projects.update(self._waking(now_ms))
        ordered = sorted(projects)
        return Due(now_ms, [ordered[start : start + JUDGE_GROUP] for start in range(0, len(ordered), JUDGE_GROUP)])

    def wake(self, group: Sequence[str]) -> Rebuild | None:
        """What a group needs from storage before ``judge_group``."""
        woken = [self.resting.pop(p) for p in group if p in self.resting]
        return self.rebuild_for(group, around=max(woken, default=None))

    def judge_group(self, group: Sequence[str], now_ms: int) -> Judgement:
        """Judge a group whose timelines are all in memory (rebuilt if they were not)."""
        members, through = set(group), self._newest_complete_day(now_ms)
        # Rebuilding may have found stored days that were never judged: judge them now
        # too, or a later day would be judged over a gap.
        for key in self.pending.keys_through(members, through):
            self.timelines[key[0]].set_day(self.pending.pop(key))
            self._dirty.add(key[0])
        judgement = self._judge(self._fill_silent(group, now_ms), members & self._dirty, now_ms)
        self._rest_timelines()
        return judgement

    def judge_held(self, now_ms: int) -> Judgement:
        """After the groups: silent days of the timelines in memory, and whatever else
        changed (a registry row, a stoppage)."""
        judgement = self._judge(self._fill_silent_days(now_ms), set(self._dirty), now_ms)
        self._rest_timelines()
        return judgement

    def judge_projects(self, project_ids: Iterable[str], now_ms: int) -> Judgement:
        """Judge these timelines now, whatever is pending (a benchmark, a test)."""
        return self._judge([], set(project_ids), now_ms)

    def _judge(self, silent_days: list[DailyEnergy], projects: set[str], now_ms: int) -> Judgement:
        judgement = Judgement(silent_days)
        for project_id in sorted(projects):
            self.timelines[project_id] = self.timelines.pop(project_id)  # now the most recently judged
            self._judge_project(project_id, now_ms, judgement)
        self._dirty -= projects
        judgement.events[:0] = self._outbox
        self._outbox = []
        return judgement

    def _judge_project(self, project_id: str, now_ms: int, judgement: Judgement) -> None:
        """Evaluate a project's timeline: the days whose indicators changed since last
        written, and their events; then fold days behind the window."""
        timeline = self.timelines[project_id]
        evaluated = timeline.evaluate()
        written = self.written_hashes.get(project_id)
        if written is None:
            written = self.written_hashes[project_id] = WrittenDays()
        # What was written holds for the days the evaluation returned as they were last
        # time: they are not compared again (unless nothing is written: a rejudgement).
        same = timeline.unchanged_days if len(written) else 0
        previous = evaluated[same - 1].machine if same else timeline.anchor
        project = self.registry.get(project_id)
        written_before = dict(written.items_from(evaluated[same].day)) if same < len(evaluated) else {}
        for position in range(same, len(evaluated)):
            day = evaluated[position]
            if written_before.get(day.day) != hash(day):
                judgement.judged.append(JudgedDay(day, stalled_working_days(evaluated[: position + 1]), project))
                judgement.events.extend(self.day_events.of_day(day, previous, now_ms))
                written[day.day] = hash(day)
            previous = day.machine
        keep_from = timeline.inputs.last() - timedelta(days=RETAINED_DAYS)
        timeline.forget_before(keep_from, evaluated)
        written.drop_before(keep_from)
        self._evaluated(project_id)

    def _evaluated(self, project_id: str) -> None:
        """``project_id``'s timeline was just evaluated: of the timelines evaluated
        before it, those beyond ``UNPACKED_TIMELINES`` keep their evaluation packed."""
        order = self._unpacked
        order[project_id] = None
        order.move_to_end(project_id)
        while len(order) > self.UNPACKED_TIMELINES:
            oldest, _ = order.popitem(last=False)
            if (timeline := self.timelines.get(oldest)) is not None:
                timeline.pack_evaluation()

    def _newest_complete_day(self, now_ms: int) -> date:
        """The newest local day complete at ``now_ms``: a day is complete (its end and
        the settling time passed) exactly when it is this day or an earlier one."""
        return self.day_events.local(now_ms - self.settle_ms).date() - timedelta(days=1)

    def _day_end_ms(self, day: date) -> int:
        return day_start_ms(day + timedelta(days=1), self.tz)

    def _waking(self, now_ms: int) -> list[str]:
        """Resting projects with a day to judge that no reading will bring: looked for
        when the clock completes a new day (the silent-day scan does the same for the
        timelines in memory, and must then skip these)."""
        through = self._newest_complete_day(now_ms)
        if not self.resting or through == self._woken_through:
            return []
        self._woken_through = through
        return [project_id for project_id, newest in self.resting.items() if newest < through]

    def _rest_timelines(self) -> None:
        """Let go of the longest-unjudged timelines beyond ``timelines_held``: judged,
        written, and rebuilt from storage for their next judgement."""
        if self.timelines_held is None or len(self.timelines) <= self.timelines_held:
            return
        excess = len(self.timelines) - self.timelines_held
        resting = []
        for project_id, timeline in self.timelines.items():  # oldest judged first: judging moves a timeline to the end
            if len(resting) == excess:
                break
            newest = timeline.inputs.last()
            # One behind the newest complete day has a silent day to fill in this step:
            # resting now, it would wait for the next day to be woken.
            if project_id not in self._dirty and newest is not None and (self._complete_through is None or newest >= self._complete_through):
                resting.append(project_id)
        for project_id in resting:
            timeline = self.timelines.pop(project_id)
            self.written_hashes.pop(project_id, None)
            self.resting[project_id] = timeline.inputs.last()

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
