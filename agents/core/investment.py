"""总账: investment as of a date, the way the seeds count it. A figure as of day D covers
every month of D's year up to D's month, each at its newest revision known when the
figure is made ("截至2月底" = January and February, whenever February's report arrived);
it says which months it covers and is set against 序时进度 of those same months, and
against the same months of last year. Definitions: docs/indicators.md."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo

from .project import MonthReport, ProjectFacts, month_key

# Completion against 序时进度 (completion ÷ time elapsed of the months covered): at or
# above ON_PACE a unit keeps pace (a report's rounding and one slow month do not make it
# late); below FAR_BEHIND it is more than a month in three behind.
ON_PACE_PCT = 90.0
# A month is covered once half the projects reporting this year have reported it, or
# anyone has and its reports were due (the 10th of the next month).
COVERAGE_QUORUM = 0.5
REPORTING_DEADLINE_DAY = 10
FAR_BEHIND_PCT = 70.0
PACE_NAMES = {"on_pace": "符合序时", "behind": "滞后序时", "far_behind": "严重滞后"}


@dataclass(frozen=True, slots=True)
class Coverage:
    """The months a figure as of ``as_of`` covers: January to ``last_month`` of
    ``as_of``'s year (0: no month reported yet)."""

    as_of: date
    last_month: int

    @property
    def year(self) -> int:
        return self.as_of.year

    @property
    def months(self) -> str:
        """``2026-01..2026-02``; one month alone; empty when nothing is covered."""
        if self.last_month < 1:
            return ""
        if self.last_month == 1:
            return month_key(self.year, 1)
        return f"{month_key(self.year, 1)}..{month_key(self.year, self.last_month)}"

    @property
    def title(self) -> str:
        """The bulletins' label: 1—2月, 1月; empty when nothing is covered."""
        if self.last_month < 1:
            return ""
        return "1月" if self.last_month == 1 else f"1—{self.last_month}月"

    @property
    def elapsed_pct(self) -> float | None:
        """序时进度 of the months covered: the share of the year from January 1 to the end
        of the last month covered (a whole month's report stands for the whole month)."""
        if self.last_month < 1:
            return None
        end_of_month = date(self.year, self.last_month, calendar.monthrange(self.year, self.last_month)[1])
        return 100.0 * end_of_month.timetuple().tm_yday / (366 if calendar.isleap(self.year) else 365)


def reporting_deadline(year: int, month: int) -> date:
    """The day a month's reports are due: the REPORTING_DEADLINE_DAY of the next month."""
    return date(year + month // 12, month % 12 + 1, REPORTING_DEADLINE_DAY)


def coverage_of(facts: Iterable[ProjectFacts], as_of: date) -> Coverage:
    """January to the newest month up to ``as_of``'s month that is reported: by at least
    COVERAGE_QUORUM of the projects reporting this year, or by anyone once its reporting
    deadline has passed. One early report does not move every unit on to a month the
    others have not reported yet (and turn them all red against its 序时进度); one
    coverage serves every unit of a figure, so units are compared over the same months."""
    first, last = month_key(as_of.year, 1), f"{as_of:%Y-%m}"
    reporting, by_month = 0, [0] * 13
    for fact in facts:
        months = [month for month in fact.investment if first <= month <= last]
        reporting += bool(months)
        for month in months:
            by_month[int(month[5:])] += 1
    for month in range(as_of.month, 0, -1):
        reported = by_month[month]
        if reported and (reported >= COVERAGE_QUORUM * reporting or as_of >= reporting_deadline(as_of.year, month)):
            return Coverage(as_of, month)
    return Coverage(as_of, 0)


@dataclass(frozen=True, slots=True)
class Completion:
    unit_type: str
    unit: str
    projects: int
    completed_wan: float
    plan_wan: float
    coverage: Coverage | None = None
    # Year on year, like for like (同口径): of each project, the months covered that it
    # reported in both years, last year's sum and this year's (None: no such month).
    last_year_wan: float | None = None
    same_projects_wan: float | None = None
    # 总投资 and completion since the project began, over the projects whose registry
    # row gives 总投资 (None: none does).
    total_investment_wan: float | None = None
    cumulative_wan: float | None = None

    @property
    def pct(self) -> float | None:
        return 100.0 * self.completed_wan / self.plan_wan if self.plan_wan > 0 else None

    @property
    def time_elapsed_pct(self) -> float | None:
        return self.coverage.elapsed_pct if self.coverage else None

    @property
    def pace_pct(self) -> float | None:
        """Completion against 序时进度 of the months covered (100: exactly on time)."""
        pct, elapsed = self.pct, self.time_elapsed_pct
        return None if pct is None or not elapsed else 100.0 * pct / elapsed

    @property
    def pace(self) -> str | None:
        return pace_of(self.pace_pct)

    @property
    def yoy_pct(self) -> float | None:
        """Growth against the same months of last year, month by month where a project
        reported both: a project new this year, or a month not reported yet, would
        otherwise count as growth or decline."""
        if not self.last_year_wan or self.same_projects_wan is None:
            return None
        return 100.0 * (self.same_projects_wan - self.last_year_wan) / self.last_year_wan

    @property
    def cumulative_pct(self) -> float | None:
        if not self.total_investment_wan or self.cumulative_wan is None:
            return None
        return 100.0 * self.cumulative_wan / self.total_investment_wan


def known_view(fact: ProjectFacts, day: date) -> ProjectFacts:
    """The project with its investment as known at the end of ``day``."""
    known = fact.investment_known_on(day)
    return fact if known is fact.investment else replace(fact, investment=known)


def pace_of(pace_pct: float | None) -> str | None:
    if pace_pct is None:
        return None
    if pace_pct >= ON_PACE_PCT:
        return "on_pace"
    return "behind" if pace_pct >= FAR_BEHIND_PCT else "far_behind"


def completion_by(facts: Sequence[ProjectFacts], as_of: date, unit_type: str, coverage: Coverage | None = None) -> list[Completion]:
    """Plan completion per unit: the unit's completed investment over its annual plan
    (weighted by plan, as the seeds' city figures are)."""
    return completion_on_days(facts, [as_of], [unit_type], {as_of: coverage} if coverage else None)[as_of]


def completion_on_days(
    facts: Sequence[ProjectFacts],
    days: Sequence[date],
    unit_types: Sequence[str],
    coverages: dict[date, Coverage] | None = None,
    as_known_each_day: bool = False,
) -> dict[date, list[Completion]]:
    """``completion_by`` for several days and unit types in one pass over the projects:
    counts and plans do not depend on the day, and a project without investment reports
    adds nothing to any day (most of a province's, in a review every 30 s).
    ``as_known_each_day``: each day's figure with the reports that had arrived by that
    day — a stored history that says what was known then, and the same whenever it is
    made (the review's)."""
    coverages = dict(coverages or {})
    reporting = [fact for fact in facts if fact.investment]
    for day in days:
        if day not in coverages:
            coverages[day] = coverage_of([known_view(f, day) for f in reporting] if as_known_each_day else reporting, day)
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0])
    sums: dict[tuple[date, str, str], list] = defaultdict(lambda: [0.0, None, None, 0.0])
    for fact in facts:
        profile = fact.profile
        units = [(unit_type, profile.unit(unit_type)) for unit_type in unit_types]
        total = profile.total_investment_wan
        for key in units:
            row = counts[key]
            row[0] += 1
            row[1] += profile.annual_plan_wan
            if total:
                row[2] += total
                row[3] += 1
        if not fact.investment:
            continue
        for day in days:
            cover = coverages[day]
            known = known_view(fact, day) if as_known_each_day else fact
            done = known.months_wan(cover.year, cover.last_month)
            last_year, same_months = known.paired_months_wan(cover.year, cover.last_month)
            cumulative = known.cumulative_wan(day) if total else 0.0
            for unit_type, unit in units:
                row = sums[(day, unit_type, unit)]
                row[0] += done
                if last_year is not None:
                    row[1] = (row[1] or 0.0) + last_year
                    row[2] = (row[2] or 0.0) + same_months
                row[3] += cumulative
    return {
        day: [
            _completion(unit_type, unit, counts[(unit_type, unit)], sums.get((day, unit_type, unit)), coverages[day])
            for unit_type in unit_types
            for (row_type, unit) in sorted(counts)
            if row_type == unit_type
        ]
        for day in days
    }


def _completion(unit_type: str, unit: str, count: list[float], sums: list | None, coverage: Coverage) -> Completion:
    projects, plan, total, with_total = count
    done, last_year, same_projects, cumulative = sums if sums else (0.0, None, None, 0.0)
    return Completion(
        unit_type, unit, int(projects), done, plan, coverage, last_year, same_projects,
        total if with_total else None, cumulative if with_total else None,
    )


@dataclass(frozen=True, slots=True)
class Revision:
    """One investment report as it arrived: a later one for the same month revises it."""

    project_id: str
    period: str  # YYYY-MM
    amount_wan: float
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class KnownInvestment:
    """A project's months as known on a day: the newest revision of each, and the earlier
    revisions of the months revised since (oldest first), so the figures of any earlier
    day can still be made as they were known then."""

    newest: dict[str, MonthReport]
    earlier: dict[str, tuple[MonthReport, ...]]


def newest_known(revisions: Iterable[Revision], day: date | None, tz: tzinfo) -> dict[str, KnownInvestment]:
    """Per project and month, the newest revision that had arrived by the end of local
    ``day`` (every revision when ``day`` is None): what was known then, so a bulletin
    made that day comes out the same when made again."""
    by_month: dict[tuple[str, str], list[Revision]] = defaultdict(list)
    for revision in revisions:
        if day is None or revision.reported_at.astimezone(tz).date() <= day:
            by_month[(revision.project_id, revision.period)].append(revision)
    known: dict[str, KnownInvestment] = {}
    for (project_id, period), found in by_month.items():
        found.sort(key=lambda r: r.reported_at)
        reports = [MonthReport(r.amount_wan, r.reported_at.astimezone(tz).date()) for r in found]
        entry = known.setdefault(project_id, KnownInvestment({}, {}))
        entry.newest[period] = reports[-1]
        if len(reports) > 1:
            entry.earlier[period] = tuple(reports[:-1])
    return known
