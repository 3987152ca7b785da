"""The half-monthly scheduling bulletin (半月调度通报): every figure the supervisors hand
out for a period, computed from the same facts as the rankings and the boards. Pure:
the report command reads the facts from InfluxDB and renders what this returns."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from .calendar import Stoppage
from .indicators import DayLabel, State
from .periods import Period
from .problems import Problem, Resolution
from .investment import Completion, completion_by, coverage_of
from .nodes import OnSchedule, on_schedule_by, schedule_of
from .problems import OVERDUE
from .project import CITY, UNIT_TYPES, ProjectFacts, month_days
from .ranking import UnitScore, investment_without_power, rank_units
from .starts import Starts, starts_by
from .suspicion import Reason

# Rank trend: this period and the ones before it.
TREND_PERIODS = 6
NOT_JUDGED = "not_judged"  # no judged day in the period (no meter data yet, or not registered in time)


@dataclass(frozen=True, slots=True)
class Headline:
    """The city's figures for one period: projects by the state of their last judged day
    in the period (what ``export daily`` shows), and investment as of the period's last
    day (or the last day judged, while the period runs): the months it covers, 序时进度
    of those months and growth on the same months of last year."""

    period: Period
    as_of: date
    projects: int
    by_state: dict[str, int]
    city: Completion

    @property
    def completed_wan(self) -> float:
        return self.city.completed_wan

    @property
    def plan_wan(self) -> float:
        return self.city.plan_wan

    @property
    def completion_pct(self) -> float | None:
        return self.city.pct

    def count(self, state: str) -> int:
        return self.by_state.get(state, 0)


@dataclass(frozen=True, slots=True)
class RankedUnit:
    score: UnitScore
    previous_rank: int | None

    @property
    def rank_change(self) -> int | None:
        """Places gained since the period before (negative: places lost)."""
        if self.score.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.score.rank


@dataclass(frozen=True, slots=True)
class FlaggedProject:
    """A stalled or suspicious project, with whom to ask and what is still open."""

    project_id: str
    name: str
    district: str
    leader: str
    state: str  # label of its last judged day in the period
    stalled_days: int  # working days of the stall that runs at the period's end (0: none)
    stall_runs_past_window: bool  # the stall began before the facts loaded: at least stalled_days
    period_stalled_days: int  # working days judged stalled in the period (a stall that ended counts too)
    suspicious_days: list[date]
    idle_investment_months: list[str]  # investment reported while power stayed idle
    open_problems: list[Problem]
    # Suspicions found in the period or still open at its end (investment without power
    # is ``idle_investment_months``), each with its rule and why
    suspicions: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SlowProject:
    """推进较慢 on the bulletin's day: behind on a plan node, or stalled."""

    project_id: str
    name: str
    district: str
    leader: str
    node: str | None  # the node furthest behind (None: no node behind)
    days_behind: int  # days that node is behind (0: none)
    stalled_days: int  # working days of the stall running (0: not stalled)


@dataclass(frozen=True, slots=True)
class ProblemsInPeriod:
    """难账 of a period: open at its end (overdue among them), and closed by a person in it."""

    open: list[Problem]
    overdue: list[Problem]
    closed: list[Problem]


@dataclass(frozen=True, slots=True)
class CityDay:
    day: date
    kwh: float
    baseline_kwh: float  # sum of the baselines of the projects judged with one that day
    projects_judged: int


@dataclass(frozen=True, slots=True)
class GrantedStoppage:
    stoppage: Stoppage
    name: str
    district: str


@dataclass(frozen=True, slots=True)
class Bulletin:
    period: Period
    as_of: date  # the period's last day, or the last day judged while it runs
    headline: Headline
    previous: Headline
    rankings: dict[str, list[RankedUnit]]  # unit type -> ranked units, best first
    starts: list[Starts]  # by kind (new, continuing), then the city
    completion_by_district: list[Completion]
    completion_by_level_kind: list[Completion]
    flagged: list[FlaggedProject]
    resolution: list[Resolution]
    slow: list[SlowProject]  # 推进较慢, furthest behind first
    on_schedule: list[OnSchedule]  # 进度顺利 per district, per level, and the city
    problems: ProblemsInPeriod
    city_days: list[CityDay]
    rank_trend: dict[str, list[tuple[str, int | None]]]  # district -> [(period label, rank)]
    trend_periods: list[Period]
    stoppages: list[GrantedStoppage]

    @property
    def golden_snails(self) -> list[UnitScore]:
        return [row.score for rows in self.rankings.values() for row in rows if row.score.golden_snail]


def last_judged_in(fact: ProjectFacts, period: Period) -> tuple[date, DayLabel] | None:
    judged = [day for day in fact.days if day in period]
    if not judged:
        return None
    newest = max(judged)
    return newest, fact.days[newest].label


def headline(facts: Sequence[ProjectFacts], period: Period, as_of: date | None = None) -> Headline:
    as_of = period.last if as_of is None else as_of
    states: Counter[str] = Counter()
    for fact in facts:
        found = last_judged_in(fact, period)
        states[found[1].value if found else NOT_JUDGED] += 1
    city = completion_by(facts, as_of, "city")
    return Headline(period, as_of, len(facts), dict(states), city[0] if city else Completion("city", CITY, 0, 0.0, 0.0, coverage_of(facts, as_of)))


def bulletin_day(facts: Sequence[ProjectFacts], period: Period, today: date | None = None) -> date:
    """The day a bulletin's figures stand on: the period's last day once ``today`` is
    past it (or no ``today`` is given); while the period runs, the last day judged in it
    before ``today``, or its first day before any is — a day not yet lived is never
    counted as 0."""
    if today is None or today > period.last:
        return period.last
    judged = [day for fact in facts for day in fact.days if day < today]
    newest = max(judged) if judged else None
    return newest if newest is not None and period.first <= newest <= period.last else period.first


def stall_length(fact: ProjectFacts, through: date) -> tuple[int, bool]:
    """Working days of the stall running on ``through`` (counted as the state machine
    counts them: offline days do not add), and whether it began before the first day
    the facts hold."""
    judged = sorted((day for day in fact.days if day <= through), reverse=True)
    days = 0
    for day in judged:
        fact_day = fact.days[day]
        if fact_day.machine_state != State.STALLED:
            return days, False
        days += fact_day.working_day and fact_day.label != DayLabel.OFFLINE
    return days, bool(judged)


def flagged_projects(facts: Sequence[ProjectFacts], problems: Iterable[Problem], period: Period) -> list[FlaggedProject]:
    """Projects stalled on any working day of the period (still stalled at its end or
    resumed since), with a suspicious day, or with investment reported for a month of
    the period while their power stayed idle; longest running stall first."""
    open_by_project: dict[str, list[Problem]] = defaultdict(list)
    suspicions: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        open_at_end = problem.opened_day <= period.last and not problem.closed_on_or_before(period.last)
        if open_at_end:
            open_by_project[problem.project_id].append(problem)
        if problem.kind == "suspicious" and problem.reason != Reason.IDLE_POWER and (open_at_end or problem.opened_day in period):
            suspicions[problem.project_id].append(problem)
    months = sorted({f"{day:%Y-%m}" for day in period.days})
    found = []
    for fact in facts:
        last = last_judged_in(fact, period)
        stalled_days, runs_past = stall_length(fact, last[0]) if last else (0, False)
        period_stalled, _ = fact.judged_working_days(period)
        suspicious = sorted(day for day, judged in fact.days.items() if day in period and judged.suspicious)
        idle_months = [m for m in months if month_days(m).last <= period.last and investment_without_power(fact, m)]
        found_suspicious = sorted(suspicions.get(fact.profile.project_id, []), key=lambda p: p.opened_day)
        if not (stalled_days or period_stalled or suspicious or idle_months or found_suspicious):
            continue
        profile = fact.profile
        found.append(
            FlaggedProject(
                profile.project_id,
                profile.name,
                profile.district,
                profile.leader,
                last[1].value if last else NOT_JUDGED,
                stalled_days,
                runs_past,
                period_stalled,
                suspicious,
                idle_months,
                sorted(open_by_project.get(profile.project_id, []), key=lambda p: p.opened_day),
                found_suspicious,
            )
        )
    return sorted(found, key=lambda f: (-f.stalled_days, -f.period_stalled_days, -len(f.suspicions), -len(f.suspicious_days), f.district, f.project_id))


def slow_projects(facts: Sequence[ProjectFacts], as_of: date) -> list[SlowProject]:
    """推进较慢 ("责成8个推进较慢项目"): behind on a plan node or stalled on ``as_of``."""
    found = []
    for fact in facts:
        schedule = schedule_of(fact.profile.project_id, fact.nodes, as_of)
        stalled_days = stall_length(fact, as_of)[0] if fact.state_on(as_of) == State.STALLED else 0
        if schedule.behind or stalled_days:
            profile = fact.profile
            found.append(SlowProject(profile.project_id, profile.name, profile.district, profile.leader, schedule.node, schedule.days_behind, stalled_days))
    return sorted(found, key=lambda s: (-s.days_behind, -s.stalled_days, s.district, s.project_id))


def on_schedule_shares(facts: Sequence[ProjectFacts], as_of: date) -> list[OnSchedule]:
    """进度顺利 (Yinzhou: "区级83%的项目进度顺利") per district, per level, and the city."""
    return [
        row
        for unit_type in ("district", "level", "city")
        for row in on_schedule_by(((f.profile.unit(unit_type), f.nodes) for f in facts), unit_type, as_of)
    ]


def problems_in(problems: Iterable[Problem], period: Period, as_of: date) -> ProblemsInPeriod:
    """As of the bulletin's day (the period's last, or the last judged while it runs):
    a deadline still ahead is not 逾期 yet."""
    opened = [p for p in problems if p.opened_day <= as_of]
    still_open = sorted((p for p in opened if not p.closed_on_or_before(as_of)), key=lambda p: (p.opened_day, p.problem_id))
    closed = [p for p in opened if p.closed_on_or_before(as_of) and p.closed_at.date() >= period.first]  # type: ignore[union-attr]
    return ProblemsInPeriod(
        still_open,
        [p for p in still_open if p.status_on(as_of) == OVERDUE],
        sorted(closed, key=lambda p: (p.closed_at, p.problem_id)),
    )


def resolution_by_district(problems: Iterable[Problem], facts: Sequence[ProjectFacts], period: Period) -> list[Resolution]:
    """问题销号率 per district: of the problems opened up to the period's end, the share
    closed by then — by a person (power coming back closes nothing). Every district
    appears, those without problems too."""
    districts = {fact.profile.project_id: fact.profile.district for fact in facts}
    counts: dict[str, list[int]] = {district: [0, 0] for district in sorted(set(districts.values()))}
    for problem in problems:
        if problem.opened_day > period.last:
            continue
        district = districts.get(problem.project_id) or problem.district or "未登记"
        row = counts.setdefault(district, [0, 0])
        row[0] += 1
        row[1] += problem.closed_on_or_before(period.last)
    return [Resolution(district, opened, closed) for district, (opened, closed) in sorted(counts.items())]


def city_days(facts: Sequence[ProjectFacts], period: Period, through: date | None = None) -> list[CityDay]:
    """The city's daily kWh against the sum of its projects' baselines, through
    ``through`` (default: the period's end)."""
    rows = []
    for day in period.days:
        if through is not None and day > through:
            break
        kwh = baseline = 0.0
        judged = 0
        for fact in facts:
            judged_day = fact.days.get(day)
            if judged_day is None:
                continue
            kwh += judged_day.kwh
            if judged_day.baseline_kwh is not None:
                baseline += judged_day.baseline_kwh
                judged += 1
        rows.append(CityDay(day, kwh, baseline, judged))
    return rows


def facts_from(period: Period) -> date:
    """The first day a bulletin's facts must hold: its trend's and its year's (复工 looks
    back to January)."""
    return min(trend_periods_ending(period)[0].first, date(period.last.year, 1, 1))


def trend_periods_ending(period: Period, count: int = TREND_PERIODS) -> list[Period]:
    periods = [period]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return list(reversed(periods))


def compile_bulletin(
    facts: Sequence[ProjectFacts], problems: Sequence[Problem], period: Period, bottom: int, trend_count: int = TREND_PERIODS,
    today: date | None = None,
) -> Bulletin:
    """``facts`` must hold the judged days from January 1 of the period's year and from
    the first trend period on (see ``facts_from``), and the investment of that year and
    the year before."""
    previous = period.previous()
    as_of = bulletin_day(facts, period, today)
    rankings = {}
    for unit_type in UNIT_TYPES:
        before = {s.unit: s.rank for s in rank_units(facts, previous, unit_type, bottom)}
        rankings[unit_type] = [RankedUnit(score, before.get(score.unit)) for score in rank_units(facts, period, unit_type, bottom, as_of)]
    trend = trend_periods_ending(period, trend_count)
    rank_trend: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for each in trend:
        ranks = {s.unit: s.rank for s in rank_units(facts, each, "district", bottom)}
        for district in sorted({f.profile.district for f in facts}):
            rank_trend[district].append((each.label, ranks.get(district)))
    names = {f.profile.project_id: (f.profile.name, f.profile.district) for f in facts}
    granted = [
        GrantedStoppage(stoppage, *names.get(stoppage.project_id, ("", "")))
        for fact in facts
        for stoppage in fact.stoppages
        if stoppage.first <= period.last and stoppage.last >= period.first
    ]
    return Bulletin(
        period=period,
        as_of=as_of,
        headline=headline(facts, period, as_of),
        previous=headline(facts, previous),
        rankings=rankings,
        starts=starts_by(facts, as_of, ["kind", "city"]),
        completion_by_district=[c for c in completion_by(facts, as_of, "district") if c.unit != CITY],
        completion_by_level_kind=completion_by(facts, as_of, "level_kind"),
        flagged=flagged_projects(facts, problems, period),
        resolution=resolution_by_district(problems, facts, period),
        slow=slow_projects(facts, as_of),
        on_schedule=on_schedule_shares(facts, as_of),
        problems=problems_in(problems, period, as_of),
        city_days=city_days(facts, period, as_of),
        rank_trend=dict(rank_trend),
        trend_periods=trend,
        stoppages=sorted(granted, key=lambda g: (g.stoppage.first, g.stoppage.project_id)),
    )
