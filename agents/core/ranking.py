"""Investment completion, start rate, rankings and the 金蜗牛 label, from the facts of
each project: its registry profile, its monthly investment reports, its judged days and
its approved stoppages. Definitions and reasons: docs/indicators.md."""

from __future__ import annotations

import calendar
import math
import struct
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType

from .calendar import Stoppage
from .indicators import STARTED_ABOVE, DayLabel, State
from .packed import PackedDays, or_nan, or_none
from .periods import Period

UNIT_TYPES = ("district", "zone", "department")  # ranked units
ROLLUP_TYPES = ("city", "district", "zone", "department", "level", "kind")  # investment roll-ups
CITY = "全市"

# Score weights (sum 1): plan completion against time elapsed, start rate, share of
# working project-days not stalled.
WEIGHT_COMPLETION = 0.4
WEIGHT_START_RATE = 0.3
WEIGHT_NOT_STALLED = 0.3
DEFAULT_SNAIL_BOTTOM = 1
# Investment reported for a month whose power never rose above the started threshold is
# suspicious only with enough judged working days to say so.
IDLE_MONTH_MIN_JUDGED_DAYS = 5


@dataclass(frozen=True, slots=True)
class Profile:
    project_id: str
    district: str
    zone: str
    department: str
    level: str
    kind: str  # "new" or "continuing"
    annual_plan_wan: float
    planned_start: date
    name: str = ""
    leader: str = ""
    data_owner: str = ""

    def unit(self, unit_type: str) -> str:
        return CITY if unit_type == "city" else getattr(self, unit_type)


@dataclass(frozen=True, slots=True)
class MonthReport:
    amount_wan: float
    reported_on: date  # local day the report was received


@dataclass(frozen=True, slots=True)
class JudgedDay:
    label: DayLabel
    machine_state: State
    working_day: bool
    activity_index: float | None
    kwh: float = 0.0
    baseline_kwh: float | None = None
    suspicious: bool = False


NO_INVESTMENT: Mapping[str, MonthReport] = MappingProxyType({})
_LABELS = tuple(DayLabel)
_STATES = tuple(State)


class JudgedDays(PackedDays[JudgedDay]):
    """A project's judged days: 29 bytes a day where a dict of ``JudgedDay`` objects cost
    ~250. The leader's review holds weeks of days of every project at once."""

    __slots__ = ()
    # date ordinal, label | state | working day | suspicious, activity index, kWh, baseline (NaN: none)
    LAYOUT = struct.Struct("<iBddd")

    def pack(self, judged: JudgedDay) -> tuple:
        code = _LABELS.index(judged.label) | _STATES.index(judged.machine_state) << 3 | judged.working_day << 5 | judged.suspicious << 6
        return code, or_nan(judged.activity_index), judged.kwh, or_nan(judged.baseline_kwh)

    def unpack(self, day: date, fields: tuple) -> JudgedDay:
        code, index, kwh, baseline = fields
        return JudgedDay(
            _LABELS[code & 0b111], _STATES[code >> 3 & 0b11], bool(code >> 5 & 1), or_none(index), kwh, or_none(baseline), bool(code >> 6 & 1)
        )


class JudgedStates(JudgedDays):
    """Judged days without their energy (kWh 0, no baseline, not suspicious): what
    rankings, start rates and the idle-investment check read, in 13 bytes a day — the
    leader's review holds up to 46 days of every project in a province."""

    __slots__ = ()
    LAYOUT = struct.Struct("<iBd")  # date ordinal, label | state | working day, activity index

    def pack(self, judged: JudgedDay) -> tuple:
        code, index, *_energy = super().pack(judged)
        return code & 0b11_1111, index  # without the suspicious bit

    def unpack(self, day: date, fields: tuple) -> JudgedDay:
        return super().unpack(day, (*fields, 0.0, math.nan))


@dataclass(slots=True)
class ProjectFacts:
    profile: Profile
    investment: Mapping[str, MonthReport] = field(default_factory=dict)  # "YYYY-MM" -> report
    days: JudgedDays = field(default_factory=JudgedDays)
    stoppages: Sequence[Stoppage] = field(default_factory=list)

    def completed_wan(self, as_of: date) -> float:
        """Investment of ``as_of``'s year up to its month, as known on ``as_of``: a report
        counts once it was received, so a period's figure never changes afterwards."""
        if not self.investment:
            return 0.0
        return sum(
            report.amount_wan
            for month, report in self.investment.items()
            if month.startswith(f"{as_of.year:04d}-") and month <= f"{as_of:%Y-%m}" and report.reported_on <= as_of
        )

    def state_on(self, day: date) -> State:
        """The machine state after the last judged day on or before ``day``."""
        judged = [d for d in self.days if d <= day]
        return self.days[max(judged)].machine_state if judged else State.NOT_STARTED

    def has_started_by(self, day: date) -> bool:
        return any(d <= day and j.machine_state != State.NOT_STARTED for d, j in self.days.items())

    def exempt_in(self, period: Period) -> bool:
        """An approved stoppage overlaps the period: the project is left out of ranking."""
        return any(s.first <= period.last and s.last >= period.first for s in self.stoppages)

    def judged_working_days(self, period: Period) -> tuple[int, int]:
        """(stalled, judged) working days of the period that count for the stall share:
        started or stalled days; offline, stoppage and not-yet-started days do not."""
        stalled = judged = 0
        for day, fact in self.days.items():
            if day not in period or not fact.working_day or fact.label not in (DayLabel.STARTED, DayLabel.STALLED):
                continue
            judged += 1
            stalled += fact.label == DayLabel.STALLED
        return stalled, judged


@dataclass(frozen=True, slots=True)
class Completion:
    unit_type: str
    unit: str
    projects: int
    completed_wan: float
    plan_wan: float

    @property
    def pct(self) -> float | None:
        return 100.0 * self.completed_wan / self.plan_wan if self.plan_wan > 0 else None


def completion_by(facts: Iterable[ProjectFacts], as_of: date, unit_type: str) -> list[Completion]:
    """Plan completion per unit: the unit's completed investment over its annual plan
    (weighted by plan, as the seeds' city figures are)."""
    return completion_on_days(facts, [as_of], [unit_type])[as_of]


def completion_on_days(facts: Iterable[ProjectFacts], days: Sequence[date], unit_types: Sequence[str]) -> dict[date, list[Completion]]:
    """``completion_by`` for several days and unit types in one pass over the projects:
    counts and plans do not depend on the day, and a project without investment reports
    adds nothing to any day (most of a province's, in a review every 30 s)."""
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    done: dict[tuple[date, str, str], float] = defaultdict(float)
    for fact in facts:
        units = [(unit_type, fact.profile.unit(unit_type)) for unit_type in unit_types]
        for key in units:
            row = counts[key]
            row[0] += 1
            row[1] += fact.profile.annual_plan_wan
        if fact.investment:
            for day in days:
                if completed := fact.completed_wan(day):
                    for unit_type, unit in units:
                        done[(day, unit_type, unit)] += completed
    return {
        day: [
            Completion(unit_type, unit, int(n), done.get((day, unit_type, unit), 0.0), plan)
            for unit_type in unit_types
            for (row_type, unit), (n, plan) in sorted(counts.items())
            if row_type == unit_type
        ]
        for day in days
    }


@dataclass(frozen=True, slots=True)
class StartRate:
    new_due: int
    new_started: int
    continuing: int
    continuing_active: int

    @property
    def rate(self) -> float | None:
        due = self.new_due + self.continuing
        return (self.new_started + self.continuing_active) / due if due else None

    @property
    def new_rate(self) -> float | None:
        return self.new_started / self.new_due if self.new_due else None

    @property
    def continuing_rate(self) -> float | None:
        return self.continuing_active / self.continuing if self.continuing else None


def start_rate(facts: Iterable[ProjectFacts], as_of: date) -> StartRate:
    """开工率 on ``as_of``: new projects due to have started (planned_start on or before
    it) that have started; continuing projects that are active (in the started state)."""
    new_due = new_started = continuing = active = 0
    for fact in facts:
        if fact.profile.kind == "new":
            if fact.profile.planned_start <= as_of:
                new_due += 1
                new_started += fact.has_started_by(as_of)
        else:
            continuing += 1
            active += fact.state_on(as_of) == State.STARTED
    return StartRate(new_due, new_started, continuing, active)


def time_elapsed_pct(day: date) -> float:
    """序时进度: share of the year elapsed at the end of ``day``."""
    days_in_year = 366 if calendar.isleap(day.year) else 365
    return 100.0 * day.timetuple().tm_yday / days_in_year


@dataclass(frozen=True, slots=True)
class UnitScore:
    period: str
    unit_type: str
    unit: str
    projects: int
    exempt: int
    completion_pct: float | None
    start_rate: float | None
    stalled_share: float | None
    score: float | None
    rank: int | None = None
    golden_snail: bool = False


def score_unit(period: Period, unit_type: str, unit: str, members: Sequence[ProjectFacts]) -> UnitScore:
    counted = [f for f in members if not f.exempt_in(period)]
    exempt = len(members) - len(counted)
    completion = completion_by(counted, period.last, "city")[0].pct if counted else None
    rate = start_rate(counted, period.last).rate
    stalled = judged = 0
    for fact in counted:
        s, j = fact.judged_working_days(period)
        stalled, judged = stalled + s, judged + j
    stalled_share = stalled / judged if judged else None
    parts = []
    if completion is not None:
        parts.append((WEIGHT_COMPLETION, min(completion / time_elapsed_pct(period.last), 1.0)))
    if rate is not None:
        parts.append((WEIGHT_START_RATE, rate))
    if stalled_share is not None:
        parts.append((WEIGHT_NOT_STALLED, 1.0 - stalled_share))
    # A component without data (no plan, nothing due, no judged day) is left out and the
    # others carry its weight, rather than scoring the unknown as good or bad.
    score = 100.0 * sum(w * v for w, v in parts) / sum(w for w, _ in parts) if parts else None
    return UnitScore(period.label, unit_type, unit, len(members), exempt, completion, rate, stalled_share, score)


def rank_units(facts: Sequence[ProjectFacts], period: Period, unit_type: str, bottom: int = DEFAULT_SNAIL_BOTTOM) -> list[UnitScore]:
    """Units of one type ranked best first (competition ranking: equal scores share a
    rank). 金蜗牛: in the bottom ``bottom`` places of this period and of the one before."""
    current = _ranked(facts, period, unit_type)
    previous_bottom = _bottom_units(_ranked(facts, period.previous(), unit_type), bottom)
    current_bottom = _bottom_units(current, bottom)
    return [
        replace(score, golden_snail=score.unit in current_bottom and score.unit in previous_bottom) for score in current
    ]


def rank_all(facts: Sequence[ProjectFacts], period: Period, bottom: int = DEFAULT_SNAIL_BOTTOM) -> list[UnitScore]:
    return [row for unit_type in UNIT_TYPES for row in rank_units(facts, period, unit_type, bottom)]


def _ranked(facts: Sequence[ProjectFacts], period: Period, unit_type: str) -> list[UnitScore]:
    members: dict[str, list[ProjectFacts]] = defaultdict(list)
    for fact in facts:
        members[fact.profile.unit(unit_type)].append(fact)
    scores = [score_unit(period, unit_type, unit, group) for unit, group in members.items()]
    scored = sorted(
        (s for s in scores if s.score is not None),
        key=lambda s: (-round(s.score, 2), -(s.completion_pct or 0.0), s.unit),
    )
    ranked, rank, previous = [], 0, None
    for position, score in enumerate(scored, start=1):
        if previous is None or round(score.score, 2) != previous:
            rank, previous = position, round(score.score, 2)
        ranked.append(replace(score, rank=rank))
    return ranked + sorted((s for s in scores if s.score is None), key=lambda s: s.unit)


def _bottom_units(ranked: list[UnitScore], bottom: int) -> set[str]:
    """Units placed in the last ``bottom`` places. A tie with a unit above those places
    keeps a unit out, so when everyone is level nobody is at the bottom; with no more
    ranked units than ``bottom``, nobody is behind anyone either."""
    placed = [s for s in ranked if s.rank is not None]
    if len(placed) <= bottom:
        return set()
    return {s.unit for s in placed if s.rank > len(placed) - bottom}


def month_days(month: str) -> Period:
    year, number = (int(part) for part in month.split("-"))
    return Period(month, date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1]))


def investment_without_power(fact: ProjectFacts, month: str) -> bool:
    """Investment reported for a month in which the site's power never rose above the
    started threshold on any judged working day (at least a few of them judged)."""
    report = fact.investment.get(month)
    if report is None or report.amount_wan <= 0:
        return False
    indices = [
        j.activity_index
        for d in month_days(month).days
        if (j := fact.days.get(d)) is not None and j.working_day and j.activity_index is not None
        and j.label not in (DayLabel.OFFLINE, DayLabel.STOPPAGE)
    ]
    return len(indices) >= IDLE_MONTH_MIN_JUDGED_DAYS and max(indices) <= STARTED_ABOVE
