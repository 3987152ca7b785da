"""Rankings and the 金蜗牛 label, from the facts of each project (``project``), its
investment as of a date (``investment``) and its start (``starts``); and investment
reported for a month of idle power. Definitions and reasons: docs/indicators.md."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from .indicators import STARTED_ABOVE, DayLabel
from .investment import Coverage, completion_by, coverage_of
from .periods import Period
from .project import UNIT_TYPES, ProjectFacts, month_days, months_ending
from .suspicion import FLAT_INVESTMENT_MONTHS, InvestmentVerdict, MonthActivity, flat_investment_verdict
from .starts import start_rate

# Score weights (sum 1): plan completion against 序时进度, start rate, share of
# working project-days not stalled.
WEIGHT_COMPLETION = 0.4
WEIGHT_START_RATE = 0.3
WEIGHT_NOT_STALLED = 0.3
DEFAULT_SNAIL_BOTTOM = 1
# Investment reported for a month whose power never rose above the started threshold is
# suspicious only with enough judged working days to say so.
IDLE_MONTH_MIN_JUDGED_DAYS = 5


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


def score_unit(
    period: Period, unit_type: str, unit: str, members: Sequence[ProjectFacts], coverage: Coverage | None = None, as_of: date | None = None
) -> UnitScore:
    """``coverage``: the months the figures of every unit cover (by default those the
    members have reported): completion is set against 序时进度 of those months.
    ``as_of``: the day the figures stand on (default the period's last; earlier while
    it runs, so a project due after the last judged day is not counted late)."""
    as_of = period.last if as_of is None else as_of
    counted = [f for f in members if not f.exempt_in(period)]
    exempt = len(members) - len(counted)
    completion = completion_by(counted, as_of, "city", coverage)[0] if counted else None
    rate = start_rate(counted, as_of)
    stalled = judged = 0
    for fact in counted:
        s, j = fact.judged_working_days(period)
        stalled, judged = stalled + s, judged + j
    stalled_share = stalled / judged if judged else None
    parts = []
    if completion is not None and completion.pace_pct is not None:
        parts.append((WEIGHT_COMPLETION, min(completion.pace_pct / 100.0, 1.0)))
    if rate is not None:
        parts.append((WEIGHT_START_RATE, rate))
    if stalled_share is not None:
        parts.append((WEIGHT_NOT_STALLED, 1.0 - stalled_share))
    # A component without data (no plan, nothing due, no judged day) is left out and the
    # others carry its weight, rather than scoring the unknown as good or bad.
    score = 100.0 * sum(w * v for w, v in parts) / sum(w for w, _ in parts) if parts else None
    completion_pct = completion.pct if completion is not None else None
    return UnitScore(period.label, unit_type, unit, len(members), exempt, completion_pct, rate, stalled_share, score)


def rank_units(
    facts: Sequence[ProjectFacts], period: Period, unit_type: str, bottom: int = DEFAULT_SNAIL_BOTTOM, as_of: date | None = None
) -> list[UnitScore]:
    """Units of one type ranked best first (competition ranking: equal scores share a
    rank). 金蜗牛: in the bottom ``bottom`` places of this period and of the one before."""
    current = _ranked(facts, period, unit_type, as_of)
    previous_bottom = _bottom_units(_ranked(facts, period.previous(), unit_type), bottom)
    current_bottom = _bottom_units(current, bottom)
    return [
        replace(score, golden_snail=score.unit in current_bottom and score.unit in previous_bottom) for score in current
    ]


def rank_all(facts: Sequence[ProjectFacts], period: Period, bottom: int = DEFAULT_SNAIL_BOTTOM, as_of: date | None = None) -> list[UnitScore]:
    return [row for unit_type in UNIT_TYPES for row in rank_units(facts, period, unit_type, bottom, as_of)]


def _ranked(facts: Sequence[ProjectFacts], period: Period, unit_type: str, as_of: date | None = None) -> list[UnitScore]:
    as_of = period.last if as_of is None or as_of > period.last else as_of
    members: dict[str, list[ProjectFacts]] = defaultdict(list)
    for fact in facts:
        members[fact.profile.unit(unit_type)].append(fact)
    coverage = coverage_of(facts, as_of)
    scores = [score_unit(period, unit_type, unit, group, coverage, as_of) for unit, group in members.items()]
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


def investment_without_power(fact: ProjectFacts, month: str) -> bool:
    """Investment reported for a month in which the site's power never rose above the
    started threshold on any judged working day (at least a few of them judged)."""
    report = fact.investment.get(month)
    if report is None or report.amount_wan <= 0:
        return False
    indices = judged_working_indices(fact, month)
    return len(indices) >= IDLE_MONTH_MIN_JUDGED_DAYS and max(indices) <= STARTED_ABOVE


def judged_working_indices(fact: ProjectFacts, month: str) -> list[float]:
    """The activity index of a month's judged working days (offline days and stoppages
    cannot say whether the site worked)."""
    return [
        j.activity_index
        for d in month_days(month).days
        if (j := fact.days.get(d)) is not None and j.working_day and j.activity_index is not None
        and j.label not in (DayLabel.OFFLINE, DayLabel.STOPPAGE)
    ]


def month_activity(fact: ProjectFacts, month: str) -> MonthActivity:
    """A month's judged working days and how many of them power said the site worked."""
    indices = judged_working_indices(fact, month)
    return MonthActivity(len(indices), sum(index > STARTED_ABOVE for index in indices))


def flat_investment(fact: ProjectFacts, month: str, months: int = FLAT_INVESTMENT_MONTHS) -> InvestmentVerdict:
    """The flat-investment rule on the ``months`` months ending with ``month``."""
    looked_at = months_ending(month, months)
    return flat_investment_verdict(
        month,
        looked_at,
        {m: fact.investment[m].amount_wan for m in looked_at if m in fact.investment},
        {m: month_activity(fact, m) for m in looked_at},
        fact.profile.annual_plan_wan / 12,
        fact.profile.investment_lumpy,
    )
