"""The periodic review that needs every project at once, run by one worker (the group
leader): rankings of the current period and the two before it, the 金蜗牛 label once a period
is final, investment reported for a month of idle power, and months without investment
while power says the site works. It reads what the workers
stored in InfluxDB, so it covers every partition whichever worker runs it, and it judges
by the newest judged day (event time), so a replay of history gives the same result."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..streams.contract import EVENT_KINDS, ProjectEvent, event_id
from .core.daily import day_start
from .core.bulletin_figures import trend_periods_ending
from .core.periods import Period, half_month_of
from .core.investment import completion_on_days, coverage_of, reporting_deadline
from .core.nodes import PlanNode, schedule_of
from .core.problems import Problem, problem_id_for
from .core.project import ROLLUP_TYPES, Profile, ProjectFacts, month_days, months_ending
from .core.ranking import UnitScore, flat_investment, investment_without_power, rank_all
from .core.suspicion import FLAT_INVESTMENT_MONTHS, Reason
from ..sink.stored import first_judged_day, judged_energy, load_facts, newest_energy_day, newest_judged_day, problems_to_chase
from ..sink.influx import RetryingInflux
from ..sink.points import completion_point, energy_point, node_status_point, ranking_point, schedule_point

UNIT_NAMES = {"district": "区县", "zone": "片区", "department": "责任部门"}
# Periods ranked at every review: the current one and the two before it (a month and a
# half of judged days held for every project: ~60 days instead of 46).
CATCH_UP_PERIODS = 3


class PeriodReview:
    def __init__(
        self, influx: RetryingInflux, tz: ZoneInfo, bottom: int, grace: timedelta, flat_investment_months: int = FLAT_INVESTMENT_MONTHS
    ) -> None:
        self.influx = influx
        self.tz = tz
        self.bottom = bottom
        self.flat_investment_months = flat_investment_months
        self.grace_days = max(1, -(-int(grace.total_seconds()) // 86_400))
        self.announced: set[str] = set()  # event ids published by this worker
        self.written: set[str] = set()  # points the last review wrote (identical lines need no rewrite)
        self.first_day: date | None = None

    async def run(self) -> list[ProjectEvent]:
        newest = await newest_judged_day(self.influx.query)
        if newest is None:
            return []
        points = await self._energy_points(newest)
        periods = await self._open_periods(newest)
        facts = await load_facts(self.influx.query, periods[0].previous().first, newest, self.tz, with_names=False, with_energy=False)
        if not facts:
            await self._write(points)
            return []
        events = []
        for period in periods:
            final = self._final(facts, period, newest)
            ranking = rank_all(facts, period, self.bottom, as_of=newest)
            points.extend(ranking_point(score, period, self.tz, final) for score in ranking)
            if final:
                events.extend(self._snail_event(score, period, newest) for score in ranking if score.golden_snail)
        known_problems, chased = await problems_to_chase(self.influx.query, newest)
        for fact in facts:
            for month in sorted(fact.investment):
                if month_days(month).last > newest:
                    continue
                if investment_without_power(fact, month):
                    events.append(self._idle_investment_event(fact.profile, month, fact.investment[month].amount_wan, newest))
                if flat_investment(fact, month, self.flat_investment_months).suspicious:
                    events.append(self._flat_investment_event(fact.profile, month, newest))
            if fact.nodes:
                profile = fact.profile
                points.append(schedule_point(schedule_of(profile.project_id, fact.nodes, newest), profile.district, profile.leader, newest, self.tz))
                points.extend(node_status_point(node, newest, self.tz) for node in fact.nodes)
                # Every node that went past its date undone (still, or done late), whenever
                # the review happened to look; one whose problem is open already is known.
                events.extend(
                    self._node_event(profile, node, newest)
                    for node in fact.nodes
                    if node.was_overdue_by(newest)
                    and problem_id_for(profile.project_id, "node_overdue", node.first_overdue_day, node.node) not in known_problems
                )
        events.extend(self._problem_overdue_event(p, newest) for p in chased)
        # Completion as of every day of those periods so far, each with the reports known
        # that day: the stored series does not depend on when the review happened to run.
        days = [day for period in periods for day in period.days if day <= newest]
        points.extend(
            completion_point(completion, day, self.tz)
            for day, completions in completion_on_days(facts, days, ROLLUP_TYPES, as_known_each_day=True).items()
            for completion in completions
        )
        await self._write(points)
        fresh = [e for e in events if e.event_id not in self.announced]
        self.announced.update(e.event_id for e in fresh)
        return fresh

    def _final(self, facts: Sequence[ProjectFacts], period: Period, newest: date) -> bool:
        """A period's ranking is final, and its 金蜗牛 announced, once late readings can no
        longer change it (the grace after its end) and its own month's investment is in:
        reported by most projects, or due (the reporting deadline) — the completion term
        would otherwise change under the announcement when the month's reports come."""
        if newest < period.last + timedelta(days=self.grace_days):
            return False
        month_in = coverage_of(facts, period.last).last_month >= period.last.month
        return month_in or newest >= reporting_deadline(period.last.year, period.last.month)

    async def _open_periods(self, newest: date) -> list[Period]:
        """The last CATCH_UP_PERIODS periods, from the one before the first judged day's
        on: each is ranked again at every review until it is that far behind, so a
        replay or a worker that judged straight past a period (and a partition that lags
        behind the others) still leaves the ranking it would have had if the review had
        watched every day go by."""
        if self.first_day is None:
            self.first_day = await first_judged_day(self.influx.query)
        earliest = half_month_of(self.first_day or newest).previous().first
        return [p for p in trend_periods_ending(half_month_of(newest), CATCH_UP_PERIODS) if p.first >= earliest]

    async def _write(self, points: list[str]) -> None:
        # Most of it is what the last review wrote already; write only what changed.
        await self.influx.write([point for point in points if point not in self.written])
        self.written = set(points)

    async def _energy_points(self, newest: date) -> list[str]:
        """The city's judged energy per day, from the newest day rolled up before (or the
        first judged day) to the newest judged day. Days within the late-data grace are
        summed again each time: a late reading or another worker's late judgement may
        still change them."""
        query = self.influx.query
        rolled = await newest_energy_day(query)
        first = await first_judged_day(query) if rolled is None else min(rolled, newest - timedelta(days=self.grace_days + 1))
        if first is None:
            return []
        totals = await judged_energy(query, first, newest, self.tz)
        return [energy_point(day, kwh, baseline, projects, self.tz) for day, (kwh, baseline, projects) in sorted(totals.items())]

    def _at(self, newest: date) -> datetime:
        """When the review found it, in event time: the end of the newest judged day."""
        return day_start(newest + timedelta(days=1), self.tz)

    def _snail_event(self, score: UnitScore, period: Period, newest: date) -> ProjectEvent:
        unit_name = UNIT_NAMES.get(score.unit_type, score.unit_type)
        detail = (
            f"{EVENT_KINDS['golden_snail']}: {unit_name} {score.unit} 在 {period.label} 排名第 {score.rank} 位"
            f" (得分 {score.score:.1f}), 连续两期处于末位"
        )
        return ProjectEvent(
            event_id=event_id("golden_snail", score.unit_type, score.unit, period.label),
            kind="golden_snail",
            project_id="",
            at=self._at(newest),
            day=period.last,
            detail=detail,
            district=score.unit if score.unit_type == "district" else None,
            unit_type=score.unit_type,
            unit=score.unit,
            period=period.label,
        )

    def _node_event(self, entry: Profile, node: PlanNode, newest: date) -> ProjectEvent:
        planned = node.planned_date.isoformat()
        # A completion already recorded is told whatever day the review has reached: the
        # problem's text must not depend on how far judging had got when it ran.
        if node.done_date is not None:
            detail = f"{EVENT_KINDS['node_overdue']}: 「{node.node}」计划于 {planned} 完成, 实际 {node.done_date.isoformat()} 完成, 滞后 {node.days_behind(node.done_date)} 天"
        else:
            detail = f"{EVENT_KINDS['node_overdue']}: 「{node.node}」计划于 {planned} 完成, 已逾期, 尚未报送完成"
        return ProjectEvent(
            event_id=event_id("node_overdue", entry.project_id, node.node, node.planned_date.isoformat()),
            kind="node_overdue",
            project_id=entry.project_id,
            at=self._at(newest),
            day=node.first_overdue_day,
            detail=detail,
            node=node.node,
            department=entry.department or None,  # 一个责任单位总抓: the responsible unit answers for its plan
            **_who_is_told(entry),
        )

    def _problem_overdue_event(self, problem: Problem, newest: date) -> ProjectEvent:
        due = problem.due.isoformat() if problem.due else ""
        detail = f"问题 {problem.problem_id} 已超过限期 {due} 仍未销号: {problem.detail}"
        return ProjectEvent(
            event_id=event_id("problem_overdue", problem.problem_id),
            kind="problem_overdue",
            project_id=problem.project_id,
            at=self._at(newest),
            day=problem.due + timedelta(days=1) if problem.due else newest,
            detail=detail,
            leader=problem.leader,
            district=problem.district,
            problem_id=problem.problem_id,
            category=problem.category or None,
            department=problem.department,
            measures=problem.measures,
            due=problem.due,
            owner_person=problem.owner_person,
        )

    def _idle_investment_event(self, entry: Profile, month: str, amount_wan: float, newest: date) -> ProjectEvent:
        detail = f"{month} 上报完成投资 {amount_wan:.1f} 万元, 但当月用电始终低于开工阈值"
        return self._month_suspicion(entry, month, Reason.IDLE_POWER, detail, newest)

    def _flat_investment_event(self, entry: Profile, month: str, newest: date) -> ProjectEvent:
        months = months_ending(month, self.flat_investment_months)
        detail = f"{months[0]} 至 {month} 连续 {len(months)} 个月投资几乎没有进展, 但用电显示工地在施工, 请核实投资报送或现场情况"
        return self._month_suspicion(entry, month, Reason.FLAT_INVESTMENT, detail, newest)

    def _month_suspicion(self, entry: Profile, month: str, reason: Reason, detail: str, newest: date) -> ProjectEvent:
        """A month's suspicion, dated its last day: one problem per project, month and rule."""
        return ProjectEvent(
            event_id=event_id("suspicious", entry.project_id, "", month, reason.value),
            kind="suspicious",
            project_id=entry.project_id,
            at=self._at(newest),
            day=month_days(month).last,
            detail=f"{EVENT_KINDS['suspicious']}: {detail}",
            reason=reason.value,
            **_who_is_told(entry),
        )


def _who_is_told(entry: Profile) -> dict[str, str | None]:
    """Whom a project's event reaches (六个一): its leader and district (alert routing),
    its data owner, and the person on site."""
    return {
        "leader": entry.leader or None,
        "district": entry.district or None,
        "data_owner": entry.data_owner or None,
        "owner_person": entry.owner_person or None,
    }
