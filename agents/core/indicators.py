"""Activity indicators of one project, day by day: baseline, activity index and the
state machine with hysteresis. Definitions and their reasons: docs/indicators.md.

Everything is a pure function of the days' inputs and the calendar, evaluated in day
order from an anchor state, so live processing, a replay of history and a rebuild after
a restart all give the same result.
"""

from __future__ import annotations

import statistics
import struct
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import NamedTuple

from .calendar import WorkCalendar
from .daily import DailyEnergy
from .packed import PackedDays, or_nan, or_none
from .suspicion import (
    COPY_LOOKBACK_DAYS,
    NOTHING_CARRIED,
    REFERENCE_WEEKS,
    Carried,
    DayLook,
    Look,
    MeterShapes,
    Suspicion,
    constant_look,
    copy_look,
    suspicions,
    usual_variation,
)

STARTED_ABOVE = 0.3  # index above which a site counts as working (Guangyuan, Shanghai 2020)
STALLED_BELOW = 0.2  # index below which a working day counts as idle (Zhejiang 2021)
STALL_AFTER = 3  # consecutive idle working days that open a stall
RESUME_AFTER = 2  # consecutive working days above STARTED_ABOVE that close it
STABLE_AT = 0.9  # 稳产 (Zhejiang 2024)
BASELINE_SAME_WEEKDAYS = 4
BASELINE_LOOKBACK_WEEKS = 8
BASELINE_MIN_HISTORY = 10  # working days of history before the median replaces capacity
# A working site draws about 30 % of its contracted capacity in working hours and little
# at night: about 15 % over 24 h.
DAILY_LOAD_FACTOR = 0.15
GAP_TOLERANCE_INTERVALS = 2  # offline: no reading for more than this many intervals
RETAINED_DAYS = BASELINE_LOOKBACK_WEEKS * 7 + 7


class State(StrEnum):
    NOT_STARTED = "not_started"
    STARTED = "started"
    STALLED = "stalled"


class DayLabel(StrEnum):
    """What ``export daily`` shows for a day: the state, or why it was not judged."""

    NOT_STARTED = "not_started"
    STARTED = "started"
    STALLED = "stalled"
    OFFLINE = "offline"
    STOPPAGE = "stoppage"


@dataclass(frozen=True, slots=True)
class Machine:
    """The state machine after a day: its state and the runs that drive hysteresis."""

    state: State = State.NOT_STARTED
    idle_run: int = 0
    busy_run: int = 0


@dataclass(frozen=True, slots=True)
class DayIndicators:
    project_id: str
    day: date
    kwh: float
    baseline_kwh: float | None
    activity_index: float | None
    label: DayLabel
    machine: Machine
    working_day: bool
    offline: bool
    stable: bool
    look: int = 0  # what the suspicion rules examined and found (``suspicion.Look``)
    suspicion: Suspicion | None = None
    load_cv: float | None = None  # the day's hourly variation (None: no shape)
    carried: Carried = NOTHING_CARRIED  # the suspicion runs open after this day

    @property
    def suspicious(self) -> bool:
        return self.suspicion is not None

    @property
    def counts_for_baseline(self) -> bool:
        """A normal working day: the baseline is what a site draws when it works, not
        what a faked day shows."""
        return self.working_day and self.label == DayLabel.STARTED and not Look.faked(self.look)


def step(machine: Machine, index: float | None, working_day: bool, judged: bool) -> Machine:
    """One day of the state machine. Days that are not judged (offline, no baseline) and,
    once started, non-working days (weekends, holidays, stoppages) change nothing."""
    if not judged or index is None:
        return machine
    if machine.state == State.NOT_STARTED:
        return Machine(State.STARTED) if index > STARTED_ABOVE else machine
    if not working_day:
        return machine
    if machine.state == State.STARTED:
        if index >= STALLED_BELOW:
            return replace(machine, idle_run=0)
        idle = machine.idle_run + 1
        return Machine(State.STALLED) if idle >= STALL_AFTER else replace(machine, idle_run=idle)
    if index <= STARTED_ABOVE:
        return replace(machine, busy_run=0)
    busy = machine.busy_run + 1
    return Machine(State.STARTED) if busy >= RESUME_AFTER else replace(machine, busy_run=busy)


def activity_index(kwh: float, baseline: float | None, offline: bool) -> float | None:
    """The day's energy over its baseline; None when the day is offline or has none."""
    return kwh / baseline if baseline and not offline else None


def baseline_kwh(
    day: date, evaluated: Mapping[date, DayIndicators | BaselineDay], normal_days: list[DayIndicators | BaselineDay], capacity_kva: float
) -> float | None:
    """Median kWh of the same weekday over the last 4 normal working days of that weekday
    (within 8 weeks); before 10 normal working days exist, capacity x load factor x 24 h.
    ``normal_days`` are the days before ``day`` that count for the baseline, in order."""
    if len(normal_days) >= BASELINE_MIN_HISTORY:
        same_weekday = [
            evaluated[d].kwh
            for weeks_back in range(1, BASELINE_LOOKBACK_WEEKS + 1)
            if (d := day - timedelta(weeks=weeks_back)) in evaluated and evaluated[d].counts_for_baseline
        ][:BASELINE_SAME_WEEKDAYS]
        if same_weekday:
            return statistics.median(same_weekday)
        return statistics.median(d.kwh for d in normal_days[-BASELINE_MIN_HISTORY:])
    return capacity_kva * DAILY_LOAD_FACTOR * 24 if capacity_kva > 0 else None


class BaselineDay(NamedTuple):
    """What a day before the retained inputs still counts for: the baselines and the
    site's usual shape after it."""

    kwh: float
    counts_for_baseline: bool
    load_cv: float | None = None


class EnergyDays(PackedDays[DailyEnergy]):
    """A project's day inputs: 29 bytes a day instead of a ``DailyEnergy`` in a dict
    (~200), for the weeks of days kept for every project a worker owns."""

    __slots__ = ("project_id",)
    # ordinal, kWh, readings, meters, max gap, interval, flat load, load CV, day/night
    LAYOUT = struct.Struct("<idiiii?ff")

    def __init__(self, project_id: str) -> None:
        super().__init__()
        self.project_id = project_id

    def most_meters(self) -> int:
        return self.column_max(3) or 0  # type: ignore[return-value]

    def pack(self, energy: DailyEnergy) -> tuple:
        return (
            energy.kwh, energy.readings, energy.meters, energy.max_gap_s, energy.interval_s, energy.flat_load,
            or_nan(energy.load_cv), or_nan(energy.day_night),
        )

    def unpack(self, day: date, fields: tuple) -> DailyEnergy:
        *measured, load_cv, day_night = fields
        return DailyEnergy(self.project_id, day, *measured, or_none(load_cv), or_none(day_night))


class BaselineHistory(PackedDays[BaselineDay]):
    """Evaluated days before the first input, as the days after them need them: 17 bytes a day."""

    __slots__ = ()
    LAYOUT = struct.Struct("<id?f")

    def pack(self, day: BaselineDay | DayIndicators) -> tuple:
        return day.kwh, day.counts_for_baseline, or_nan(day.load_cv)

    def unpack(self, day: date, fields: tuple) -> BaselineDay:
        kwh, counts, load_cv = fields
        return BaselineDay(kwh, counts, or_none(load_cv))


_NO_HISTORY: Mapping[date, BaselineDay] = MappingProxyType({})


_STATES = tuple(State)
_STATE_AT = {state: n for n, state in enumerate(_STATES)}
_NO_METER = 255


class _Evaluation:
    """A timeline's last ``evaluate``: what judging decided on each day (before the
    suspicion runs), and the conditions it was judged under. A day's indicators depend
    only on the days before it (and on these conditions), so the next evaluation resumes
    at the first day that changed; only the suspicion runs, which reach back (a constant
    load counts from its first day once it has lasted), go over every day again, and
    they cost little. Only what cannot be derived again from the day's input and the
    calendar is kept, 23 bytes a day: as objects a full window cost ~20 KB a timeline,
    200 MB for the 10,000 timelines a worker holds at a province's scale."""

    __slots__ = ("conditions", "first", "_packed", "_meter_ids", "unpacked")
    # baseline, state, idle run, busy run, offline, look bits, the look's meter (index),
    # days back to the day it copies (0: none), the site's usual hourly variation
    LAYOUT = struct.Struct("<dBBB?BBBd")

    def __init__(self, conditions: tuple, days: list[DayIndicators], looks: list[DayLook], kept: _Evaluation | None = None, kept_days: int = 0) -> None:
        """``days`` and ``looks`` after the first ``kept_days`` of ``kept``, which are
        taken as they are packed."""
        self.conditions = conditions
        self.first = kept.first if kept_days and kept is not None else days[0].day if days else date.max
        meter_ids = list(kept._meter_ids) if kept is not None else []
        rows = [kept._packed[: kept_days * self.LAYOUT.size]] if kept is not None else []
        for day, look in zip(days, looks):
            if look.meter_id and look.meter_id not in meter_ids:
                meter_ids.append(look.meter_id)
            machine = day.machine
            rows.append(
                self.LAYOUT.pack(
                    or_nan(day.baseline_kwh), _STATE_AT[machine.state], machine.idle_run, machine.busy_run, day.offline, look.look,
                    meter_ids.index(look.meter_id) if look.meter_id else _NO_METER,
                    (day.day - look.copied_from).days if look.copied_from else 0, or_nan(look.usual_cv),
                )
            )
        self._packed = b"".join(rows)
        self._meter_ids = tuple(meter_ids)
        self.unpacked: Unpacked | None = None

    def __len__(self) -> int:
        return len(self._packed) // self.LAYOUT.size

    def before(self, day: date) -> int:
        """How many of the days held come before ``day``."""
        return max(0, min(len(self), (day - self.first).days)) if len(self) else 0

    def unpack(self, timeline: ProjectTimeline, inputs: Mapping[date, DailyEnergy], count: int) -> tuple[list[DayIndicators], list[DayLook]]:
        """The first ``count`` days, as ``evaluate`` judged them before the suspicion runs
        (``inputs``: the timeline's, unpacked)."""
        days, looks = [], []
        for n, fields in enumerate(self.LAYOUT.iter_unpack(self._packed[: count * self.LAYOUT.size])):
            baseline, state, idle, busy, offline, look, meter, back, usual_cv = fields
            day = self.first + timedelta(days=n)
            day_input = inputs.get(day)
            days.append(timeline._indicators(day, day_input, or_none(baseline), Machine(_STATES[state], idle, busy), offline, look))
            if day_input is None or offline:
                looks.append(DayLook(day, look))
            else:
                copied = day - timedelta(days=back) if back else None
                looks.append(DayLook(day, look, "" if meter == _NO_METER else self._meter_ids[meter], copied, day_input.load_cv, or_none(usual_cv)))
        return days, looks

    def drop_before(self, day: date, conditions: tuple, history: BaselineHistory) -> None:
        """Days before ``day`` folded into ``history`` (the new conditions')."""
        dropped = self.before(day)
        self._packed = self._packed[dropped * self.LAYOUT.size :]
        self.first += timedelta(days=dropped)
        self.conditions = conditions
        if self.unpacked is not None:
            days, looks, normal = self.unpacked
            # The normal days the history keeps are the same days: only the older ones go.
            horizon = history.first() or day
            self.unpacked = Unpacked(days[dropped:], looks[dropped:], normal[bisect_left(normal, horizon, key=itemgetter(0)) :])


class Unpacked(NamedTuple):
    """An evaluation's days as objects, for a timeline judged again soon (a replay, a
    city's worker judging every project every day): resuming from them costs nothing,
    from the packed form several µs a day. The judge keeps them for its most recently judged
    timelines only (``Judge.UNPACKED_TIMELINES``)."""

    days: list[DayIndicators]  # as ``evaluate`` returned them
    looks: list[DayLook]
    # The history's and these days' that count for the baseline, in day order
    normal: list[tuple[date, DayIndicators | BaselineDay]]


class ProjectTimeline:
    """The retained days of one project and their indicators.

    Days are set (and corrected, by late readings) in any order; ``evaluate`` runs the
    state machine over them in day order from the anchor, the machine state of the day
    before the first retained one, resuming after the days that did not change since the
    last evaluation (a judgement no longer grows with the days held).
    """

    # one per project a worker owns
    __slots__ = ("project_id", "capacity_kva", "calendar", "anchor", "inputs", "history", "shapes", "carried", "_last", "_changed_from", "unchanged_days")

    def __init__(self, project_id: str, capacity_kva: float, calendar: WorkCalendar, anchor: Machine = Machine()) -> None:
        self.project_id = project_id
        self.capacity_kva = capacity_kva
        self.calendar = calendar
        self.anchor = anchor
        self.inputs = EnergyDays(project_id)
        # Evaluated days before the first input, for baselines; none yet for most
        # timelines, which share one empty mapping.
        self.history: Mapping[date, BaselineDay] = _NO_HISTORY
        # Each meter's quantised days, from a week before the first input (copied days)
        self.shapes: dict[str, MeterShapes] | None = None
        self.carried = NOTHING_CARRIED  # suspicion runs open after the anchor's day
        self._last: _Evaluation | None = None
        self._changed_from: date | None = None  # the first day set since ``_last``
        # The first days of the last ``evaluate`` that are the very objects the one before
        # it returned (so equal to them): what was written for them still holds.
        self.unchanged_days = 0

    def set_day(self, day_input: DailyEnergy) -> None:
        self.inputs[day_input.day] = day_input
        self.set_fingerprints(day_input)
        self._changed(day_input.day)

    def set_fingerprints(self, day_input: DailyEnergy) -> None:
        """Keep the day's meter profiles (also for days before the inputs, on a rebuild)."""
        for fingerprint in day_input.fingerprints:
            if self.shapes is None:
                self.shapes = {}
            self.shapes.setdefault(fingerprint.meter_id, MeterShapes())[day_input.day] = fingerprint.shape
        if day_input.fingerprints:
            self._changed(day_input.day)

    def _changed(self, day: date) -> None:
        if self._changed_from is None or day < self._changed_from:
            self._changed_from = day

    def _conditions(self, usual_meters: int) -> tuple:
        """What every day's judgement depends on besides the days before it."""
        return (self.history, self.anchor, self.carried, self.capacity_kva, self.calendar.revision_of(self.project_id), usual_meters)

    def evaluate(self) -> list[DayIndicators]:
        """Every retained day's indicators, in day order."""
        first, last = self.inputs.first(), self.inputs.last()
        if first is None or last is None:
            self._last, self.unchanged_days = None, 0
            return []
        usual_meters = self.inputs.most_meters()
        conditions = self._conditions(usual_meters)
        # Resumed from the very objects returned last time, or from packed days
        from_objects = self._last is not None and self._last.unpacked is not None
        kept, kept_looks, normal = self._reusable(conditions, first)
        resume = first + timedelta(days=len(kept))
        inputs = dict(self.inputs.items_from(resume))
        normal_by_day = dict(normal)
        normal_days: list[DayIndicators | BaselineDay] = [d for _, d in normal]
        normal_shapes = [(day, d.load_cv) for day, d in normal]
        # Unpacked once: every day compares itself with the week before it.
        since = resume - timedelta(days=COPY_LOOKBACK_DAYS)
        shapes = {meter_id: dict(days.items_from(since)) for meter_id, days in (self.shapes or {}).items()}
        machine = kept[-1].machine if kept else self.anchor
        results, looks = list(kept), list(kept_looks)
        day = resume
        while day <= last:
            indicators, look = self._judge(day, inputs.get(day), usual_meters, machine, normal_by_day, normal_days, normal_shapes, shapes)
            looks.append(look)
            if indicators.counts_for_baseline:
                normal_by_day[day] = indicators
                normal.append((day, indicators))
                normal_days.append(indicators)
                normal_shapes.append((day, indicators.load_cv))
            machine = indicators.machine
            results.append(indicators)
            day += timedelta(days=1)
        evaluation = _Evaluation(conditions, results[len(kept) :], looks[len(kept) :], self._last, len(kept))
        self._last, self._changed_from = evaluation, None
        # The kept days' findings go on from where they were, when those are at hand.
        found, carried = suspicions(looks, self.carried, [(d.suspicion, d.carried) for d in kept] if from_objects else ())
        evaluated = [d if d.suspicion == f and d.carried == c else replace(d, suspicion=f, carried=c) for d, f, c in zip(results, found, carried)]
        evaluation.unpacked = Unpacked(evaluated, looks, normal)
        # Days unpacked from their packed form are rebuilt without their suspicion: the
        # same object back need not be the day as returned last time.
        self.unchanged_days = next((n for n, (now, before) in enumerate(zip(evaluated, kept)) if now is not before), len(kept)) if from_objects else 0
        return evaluated

    def pack_evaluation(self) -> None:
        """Keep the last evaluation in its packed form only (23 bytes a day, not ~350)."""
        if self._last is not None:
            self._last.unpacked = None

    def _reusable(self, conditions: tuple, first: date) -> tuple[list[DayIndicators], list[DayLook], list[tuple[date, DayIndicators | BaselineDay]]]:
        """The last evaluation's days before the first changed day, if it still holds,
        and the days up to there that count for the baseline (the history's included)."""
        last = self._last
        if last is None or last.conditions != conditions or last.first != first:
            kept: list[DayIndicators] = []
            looks: list[DayLook] = []
        else:
            count = last.before(self._changed_from or date.max)
            if last.unpacked is not None:
                days, looks, normal = last.unpacked
                resume = first + timedelta(days=count)
                return days[:count], looks[:count], normal[: bisect_left(normal, resume, key=itemgetter(0))]
            kept, looks = last.unpack(self, dict(self.inputs.items()), count)
        evaluated: dict[date, DayIndicators | BaselineDay] = dict(self.history.items())
        evaluated.update((d.day, d) for d in kept)
        return kept, looks, [(day, d) for day, d in sorted(evaluated.items()) if d.counts_for_baseline]

    def _indicators(self, day: date, day_input: DailyEnergy | None, baseline: float | None, after: Machine, offline: bool, look: int) -> DayIndicators:
        """A judged day from what judging it decided: what ``_judge`` returns, and what
        a resumed evaluation rebuilds from the packed decisions."""
        kwh = day_input.kwh if day_input else 0.0
        index = activity_index(kwh, baseline, offline)
        if offline:
            label = DayLabel.OFFLINE
        elif self.calendar.stoppage(self.project_id, day) is not None:
            label = DayLabel.STOPPAGE
        else:
            label = DayLabel(after.state.value)
        return DayIndicators(
            project_id=self.project_id,
            day=day,
            kwh=kwh,
            baseline_kwh=baseline,
            activity_index=index,
            label=label,
            machine=after,
            working_day=self.calendar.is_working_day(self.project_id, day),
            offline=offline,
            stable=index is not None and index >= STABLE_AT,
            look=look,
            load_cv=day_input.load_cv if day_input else None,
        )

    def _judge(
        self,
        day: date,
        day_input: DailyEnergy | None,
        usual_meters: int,
        machine: Machine,
        normal_by_day: Mapping[date, DayIndicators | BaselineDay],
        normal_days: list[DayIndicators | BaselineDay],
        normal_shapes: list[tuple[date, float | None]],
        shapes: Mapping[str, Mapping[date, bytes]],
    ) -> tuple[DayIndicators, DayLook]:
        offline = (
            day_input is None
            or day_input.meters < usual_meters
            or day_input.max_gap_s > GAP_TOLERANCE_INTERVALS * day_input.interval_s
        )
        working_day = self.calendar.is_working_day(self.project_id, day)
        baseline = baseline_kwh(day, normal_by_day, normal_days, self.capacity_kva)
        index = activity_index(day_input.kwh if day_input else 0.0, baseline, offline)
        after = step(machine, index, working_day, judged=not offline)
        look = self._look(day, day_input, offline, working_day, index, normal_shapes, shapes)
        return self._indicators(day, day_input, baseline, after, offline, look.look), look

    def _look(
        self,
        day: date,
        day_input: DailyEnergy | None,
        offline: bool,
        working_day: bool,
        index: float | None,
        normal_shapes: list[tuple[date, float | None]],
        shapes: Mapping[str, Mapping[date, bytes]],
    ) -> DayLook:
        """What the day-level suspicion rules see in a day that has readings."""
        if day_input is None or offline:
            return DayLook(day, 0)
        look = Look.FLAT_EXAMINED | (Look.FLAT if day_input.flat_load else 0)
        usual_cv = None
        if working_day:
            since = day - timedelta(weeks=REFERENCE_WEEKS)
            usual_cv = usual_variation(cv for _, cv in normal_shapes[bisect_left(normal_shapes, since, key=itemgetter(0)) :])
            look |= constant_look(day_input.load_cv, day_input.day_night, usual_cv, index is not None and index >= STALLED_BELOW)
        copy, meter_id, source = copy_look(day, shapes)
        return DayLook(day, look | copy, meter_id, source, day_input.load_cv, usual_cv)

    def forget_before(self, keep_from: date, evaluation: list[DayIndicators] | None = None) -> None:
        """Fold days before ``keep_from`` into the anchor; keep enough evaluated days
        behind it for baselines. ``evaluation``: this timeline's current ``evaluate()``
        result, when the caller has it already."""
        first = self.inputs.first()
        if first is None or first >= keep_from:
            return
        evaluated = evaluation if evaluation is not None else self.evaluate()
        older = evaluated[: bisect_left(evaluated, keep_from, key=attrgetter("day"))]
        self.anchor = older[-1].machine
        self.carried = older[-1].carried
        horizon = keep_from - timedelta(days=RETAINED_DAYS)
        # A new history, not the old one changed: the last evaluation's conditions hold it.
        kept = self.history.since(horizon) if isinstance(self.history, BaselineHistory) else BaselineHistory()
        for day in older:
            if day.day >= horizon:
                kept[day.day] = day
        self.history = kept
        usual_meters = self.inputs.most_meters()
        self.inputs.drop_before(keep_from)
        if self._last is not None and self._changed_from is None and self.inputs.most_meters() == usual_meters:
            # The days kept were judged as they would be from the new anchor and history
            # (not when the folded days held the most meters: a day with fewer than the
            # usual count is offline, and the usual count has just fallen).
            self._last.drop_before(keep_from, self._conditions(self.inputs.most_meters()), self.history)
        else:
            self._last = None
        if self.shapes:
            for shapes in self.shapes.values():
                shapes.drop_before(keep_from - timedelta(days=COPY_LOOKBACK_DAYS))
            self.shapes = {meter_id: shapes for meter_id, shapes in self.shapes.items() if shapes} or None


def stalled_working_days(evaluated: list[DayIndicators]) -> int:
    """How long the stall at the end of ``evaluated`` has lasted, in working days, from
    the day it opened (0 when the project is not stalled on its newest day)."""
    days = 0
    for day in reversed(evaluated):
        if day.machine.state != State.STALLED:
            break
        days += day.working_day and not day.offline
    return days
