"""Precision and recall of the suspicion rules on a seeded scenario with injected fakes:
the simulator's readings go through the same core as the worker's (day book, timeline,
rules), without a broker or InfluxDB, so the table in docs/indicators.md can be made
again in a minute (``sitepulse check-suspicion``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from .agents.core.calendar import WorkCalendar
from .agents.core.daily import DailyEnergyBook
from .agents.core.indicators import DayIndicators, ProjectTimeline
from .agents.core.project import JudgedDay, JudgedDays, MonthReport, Profile, ProjectFacts, month_days
from .agents.core.ranking import flat_investment
from .agents.core.suspicion import Reason
from .agents.pipeline import to_meter_reading
from .streams.contract import InvestmentReport, PowerReading
from .streams.simulator import Fakes, Scenario, build_scenario, generate_records

RULES = (Reason.CONSTANT_LOAD, Reason.COPIED, Reason.FLAT_INVESTMENT)


@dataclass(frozen=True)
class RuleScore:
    """One rule over the scenario's projects (a project is flagged when any of its days
    or months is) and, for power fakes, over the faked days."""

    rule: Reason
    faked_projects: int
    flagged_projects: int
    caught_projects: int  # flagged and faked this way
    faked_days: int = 0
    flagged_days: int = 0
    caught_days: int = 0

    @staticmethod
    def _ratio(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def precision(self) -> float | None:
        return self._ratio(self.caught_projects, self.flagged_projects)

    @property
    def recall(self) -> float | None:
        return self._ratio(self.caught_projects, self.faked_projects)

    @property
    def day_precision(self) -> float | None:
        return self._ratio(self.caught_days, self.flagged_days)

    @property
    def day_recall(self) -> float | None:
        return self._ratio(self.caught_days, self.faked_days)


def judged_scenario(scenario: Scenario) -> tuple[dict[str, list[DayIndicators]], list[InvestmentReport]]:
    """Every project's judged days, and the investment reports, as the worker would have them."""
    book = DailyEnergyBook(scenario.tz, keep_days=scenario.days + 2)
    reports = []
    for record in generate_records(scenario, until=scenario.end):
        if isinstance(record, PowerReading):
            reading = to_meter_reading(record)
            key = book.day_of(reading)
            if book.missing([key]):
                book.load(key, ())
            book.add(reading, key)
        elif isinstance(record, InvestmentReport):
            reports.append(record)
    calendar = WorkCalendar()
    timelines = {p.entry.project_id: ProjectTimeline(p.entry.project_id, p.entry.capacity_kva, calendar) for p in scenario.projects}
    last_day = scenario.start + timedelta(days=scenario.days - 1)
    for project_id, day in book.open_days():
        if day <= last_day:
            timelines[project_id].set_day(book.total((project_id, day)))
    return {project_id: timeline.evaluate() for project_id, timeline in timelines.items()}, reports


def score_rules(scenario: Scenario) -> list[RuleScore]:
    judged, reports = judged_scenario(scenario)
    calendar = WorkCalendar()
    flagged: dict[Reason, dict[str, set[date]]] = defaultdict(lambda: defaultdict(set))
    for project_id, days in judged.items():
        for day in days:
            if day.suspicion is not None:
                flagged[day.suspicion.reason][project_id].add(day.day)
    last_day = scenario.start + timedelta(days=scenario.days - 1)
    for fact in _facts(scenario, judged, reports):
        for month in sorted(fact.investment):
            if month_days(month).last <= last_day and flat_investment(fact, month).suspicious:
                flagged[Reason.FLAT_INVESTMENT][fact.profile.project_id].add(month_days(month).last)
    scores = []
    for rule in RULES:
        faked = {p.entry.project_id: p for p in scenario.projects if p.fake == rule.value}
        found = flagged[rule]
        faked_days = {
            (pid, day)
            for pid, p in faked.items() if p.fake_days
            for day in (p.fake_days[0] + timedelta(days=n) for n in range((p.fake_days[1] - p.fake_days[0]).days + 1))
            # idle machines fool the stall rule on working days only: those are the ones examined
            if rule != Reason.CONSTANT_LOAD or calendar.is_working_day(pid, day)
        }
        flagged_days = {(pid, day) for pid, days in found.items() for day in days}
        scores.append(
            RuleScore(
                rule, len(faked), len(found), len(set(found) & set(faked)),
                len(faked_days), len(flagged_days) if faked_days else 0, len(flagged_days & faked_days),
            )
        )
    return scores


def _facts(scenario: Scenario, judged: dict[str, list[DayIndicators]], reports: list[InvestmentReport]) -> list[ProjectFacts]:
    by_project: dict[str, dict[str, MonthReport]] = defaultdict(dict)
    for report in reports:
        by_project[report.project_id][report.period] = MonthReport(float(report.amount_wan), report.reported_at.astimezone(scenario.tz).date())
    facts = []
    for project in scenario.projects:
        entry = project.entry
        profile = Profile(
            entry.project_id, entry.district, entry.zone, entry.department, entry.level, entry.kind, entry.annual_plan_wan,
            entry.planned_start, investment_lumpy=entry.investment_lumpy,
        )
        days = JudgedDays(
            {d.day: JudgedDay(d.label, d.machine.state, d.working_day, d.activity_index, d.kwh, d.baseline_kwh, d.suspicious) for d in judged[entry.project_id]}
        )
        facts.append(ProjectFacts(profile, by_project[entry.project_id], days))
    return facts


def check_suspicion(projects: int, days: int, seed: int, start: date, fakes: Fakes, tz) -> list[RuleScore]:
    return score_rules(build_scenario(projects, days, seed, start, tz, fakes=fakes))


def score_table(scores: list[RuleScore]) -> str:
    """The scores as the Markdown table docs/indicators.md shows."""

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.0%}"

    lines = [
        "| rule | faked projects | flagged | caught | precision | recall | faked days | flagged days | day precision | day recall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        days = (s.faked_days, s.flagged_days, pct(s.day_precision), pct(s.day_recall)) if s.faked_days else ("—",) * 4
        lines.append(
            f"| {s.rule.value} | {s.faked_projects} | {s.flagged_projects} | {s.caught_projects} | {pct(s.precision)} | {pct(s.recall)} | "
            + " | ".join(str(v) for v in days) + " |"
        )
    return "\n".join(lines)
