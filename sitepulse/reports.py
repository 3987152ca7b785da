"""What the operator commands read and print: rankings, investment roll-ups, problems and
the projects that need attention now. All of it is computed by the core from facts read
back from InfluxDB, the same way the worker's review computes it."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TextIO

from .agents.core.bulletin_figures import bulletin_day
from .agents.core.investment import completion_by, coverage_of
from .agents.core.periods import Period
from .agents.core.nodes import schedule_of
from .agents.core.problems import CLOSED, Problem
from .agents.core.ranking import UnitScore, rank_all
from .agents.core.starts import starts_by
from .sink.stored import attention_facts, audit_trail, load_facts, load_nodes, load_revisions, newest_judged_day, problems_stored
from .sink.influx import InfluxClient
from .export import rounded_or_blank
from .runtime.settings import Settings
from .streams.contract import DAY_STATE_NAMES, PROBLEM_STATUS_NAMES, DailyField as F

RANKING_COLUMNS = ("period", "unit_type", "unit", "rank", "score", "completion_pct", "start_rate", "golden_snail")
AUDIT_COLUMNS = ("at", "action", "action_name", "operator", "reason", "subject", "host")
INVESTMENT_COLUMNS = (
    "date", "unit_type", "unit", "projects", "completed_wan", "plan_wan", "completion_pct", "months", "time_elapsed_pct", "yoy_pct",
    "total_investment_wan", "cumulative_wan", "cumulative_pct",
)
REVISION_COLUMNS = ("project_id", "period", "amount_wan", "reported_at", "revision", "current")
SCHEDULE_COLUMNS = ("project_id", "node", "planned_date", "done_date", "status", "days_behind")
STARTS_COLUMNS = ("date", "unit_type", "unit", "due", "started", "start_rate", "active", "stalled", "resumed")


async def ranking(settings: Settings, period: Period, bottom: int) -> list[UnitScore]:
    """The ranking of ``period`` standing where its bulletin stands (its last day, or
    the last day judged while it runs)."""
    async with InfluxClient(settings) as client:
        facts = await load_facts(client.query, period.previous().first, period.last, settings.tz)
    return rank_all(facts, period, bottom, bulletin_day(facts, period, datetime.now(settings.tz).date()))


def write_ranking_csv(scores: Sequence[UnitScore], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RANKING_COLUMNS)
    for s in scores:
        writer.writerow(
            [s.period, s.unit_type, s.unit, "" if s.rank is None else s.rank, rounded_or_blank(s.score, 2), rounded_or_blank(s.completion_pct, 2), rounded_or_blank(s.start_rate, 4), "true" if s.golden_snail else "false"]
        )


async def investment_rollup(settings: Settings, as_of: date, unit_types: Sequence[str], known_on: date | None = None) -> list[dict[str, object]]:
    """Completion as of ``as_of`` per unit: every month of its year up to its month, at
    the newest revision known by the end of ``known_on`` (default: all stored)."""
    async with InfluxClient(settings) as client:
        facts = await load_facts(client.query, as_of, as_of, settings.tz, known_on=known_on, all_years=True)
    coverage = coverage_of(facts, as_of)
    rows = []
    for unit_type in unit_types:
        for c in completion_by(facts, as_of, unit_type, coverage):
            rows.append(
                {
                    "date": as_of.isoformat(),
                    "unit_type": unit_type,
                    "unit": c.unit,
                    "projects": c.projects,
                    "completed_wan": round(c.completed_wan, 1),
                    "plan_wan": round(c.plan_wan, 1),
                    "completion_pct": rounded_or_blank(c.pct, 2),
                    "months": coverage.months,
                    "time_elapsed_pct": rounded_or_blank(c.time_elapsed_pct, 2),
                    "yoy_pct": rounded_or_blank(c.yoy_pct, 2),
                    "total_investment_wan": rounded_or_blank(c.total_investment_wan, 1),
                    "cumulative_wan": rounded_or_blank(c.cumulative_wan, 1),
                    "cumulative_pct": rounded_or_blank(c.cumulative_pct, 2),
                }
            )
    return rows


async def investment_revisions(settings: Settings, known_on: date | None = None) -> list[dict[str, object]]:
    """Every investment report as it arrived, oldest first per project and month, with its
    revision number and whether it is the one counted (the newest known)."""
    async with InfluxClient(settings) as client:
        revisions = await load_revisions(client.query, settings.tz, None, known_on)
    revisions.sort(key=lambda r: (r.project_id, r.period, r.reported_at))
    rows = []
    for number, revision in enumerate(revisions):
        first_of_month = number == 0 or (revisions[number - 1].project_id, revisions[number - 1].period) != (revision.project_id, revision.period)
        last_of_month = number + 1 == len(revisions) or (revisions[number + 1].project_id, revisions[number + 1].period) != (revision.project_id, revision.period)
        rows.append(
            {
                "project_id": revision.project_id,
                "period": revision.period,
                "amount_wan": revision.amount_wan,
                "reported_at": revision.reported_at.astimezone(settings.tz).isoformat(timespec="seconds"),
                "revision": 1 if first_of_month else rows[-1]["revision"] + 1,
                "current": "true" if last_of_month else "false",
            }
        )
    return rows


async def schedule_rows(settings: Settings, as_of: date) -> list[dict[str, object]]:
    async with InfluxClient(settings) as client:
        nodes = await load_nodes(client.query)
    return [
        {
            "project_id": node.project_id,
            "node": node.node,
            "planned_date": node.planned_date.isoformat(),
            # A node done after the day is not done yet as of the day.
            "done_date": node.done_date.isoformat() if node.done_date and node.done_date <= as_of else "",
            "status": node.status_on(as_of),
            "days_behind": node.days_behind(as_of),
        }
        for project_id in sorted(nodes)
        for node in nodes[project_id]
    ]


async def ledger_day(settings: Settings) -> date:
    """The ledger's today: the newest judged day (the stream's clock, as the review
    judges deadlines), or the local date before anything is judged."""
    async with InfluxClient(settings) as client:
        newest = await newest_judged_day(client.query)
    return newest or datetime.now(settings.tz).date()


async def start_rows(settings: Settings, as_of: date, unit_types: Sequence[str]) -> list[dict[str, object]]:
    """开工 as of ``as_of`` per unit: cumulative start rate, and who is working, stalled
    and back at work on the day."""
    async with InfluxClient(settings) as client:
        facts = await load_facts(client.query, date(as_of.year, 1, 1), as_of, settings.tz, with_names=False, with_energy=False)
    return [
        {
            "date": as_of.isoformat(),
            "unit_type": s.unit_type,
            "unit": s.unit,
            "due": s.due,
            "started": s.started,
            "start_rate": rounded_or_blank(s.rate, 4),
            "active": s.active,
            "stalled": s.stalled,
            "resumed": s.resumed,
        }
        for s in starts_by(facts, as_of, unit_types)
    ]


def write_rows_csv(rows: Sequence[dict[str, object]], columns: Sequence[str], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


async def audit_rows(settings: Settings) -> list[dict[str, object]]:
    """Every operator command recorded, oldest first, with local times."""
    from datetime import timezone

    from .streams.contract import AUDIT_ACTIONS

    async with InfluxClient(settings) as client:
        trail = await audit_trail(client.query)
    rows = []
    for ts_ms, action, operator, row in trail:
        at = datetime.fromtimestamp(ts_ms / 1000, timezone.utc).astimezone(settings.tz)
        rows.append(
            {
                "at": at.isoformat(timespec="seconds"),
                "action": action,
                "action_name": AUDIT_ACTIONS.get(action, action),
                "operator": operator,
                "reason": row.get("reason") or "",
                "subject": row.get("subject") or "",
                "host": row.get("host") or "",
            }
        )
    return sorted(rows, key=lambda r: r["at"])


async def all_problems(settings: Settings, problem_id: str | None = None) -> list[Problem]:
    async with InfluxClient(settings) as client:
        problems = await problems_stored(client.query, problem_id)
    return sorted(problems, key=lambda p: (p.opened_day, p.problem_id))


@dataclass(frozen=True)
class Attention:
    """A project that needs attention now, and why."""

    project_id: str
    name: str
    district: str
    leader: str
    state: str
    day: str
    activity_index: float | None
    reasons: list[str]




async def attention(settings: Settings) -> list[Attention]:
    """Projects whose latest judged day is stalled or offline, whose meter is offline
    now, that are behind on a plan node, or that have problems not closed; worst first."""
    async with InfluxClient(settings) as client:
        registry, latest, offline_meters, problems = await attention_facts(client.query)
        nodes = await load_nodes(client.query)
        today = await newest_judged_day(client.query) or datetime.now(settings.tz).date()
    reasons: dict[str, list[str]] = {}
    for project_id, row in latest.items():
        if row.get(F.STATE) in ("stalled", "offline"):
            reasons.setdefault(project_id, []).append(f"{row[F.DATE]} {DAY_STATE_NAMES[row[F.STATE]]}")
    for project_id, meter_id in offline_meters:
        reasons.setdefault(project_id, []).append(f"电表 {meter_id} 离线")
    for problem in problems:
        status = problem.status_now(today)
        if status != CLOSED:
            reasons.setdefault(problem.project_id, []).append(f"{PROBLEM_STATUS_NAMES[status]}问题 {problem.problem_id}")
    for project_id, project_nodes in nodes.items():
        schedule = schedule_of(project_id, project_nodes, today)
        if schedule.behind:
            reasons.setdefault(project_id, []).append(f"节点「{schedule.node}」滞后 {schedule.days_behind} 天")
    found = []
    for project_id, why in reasons.items():
        entry = registry.get(project_id)
        row = latest.get(project_id, {})
        found.append(
            Attention(
                project_id,
                entry.name if entry else "",
                entry.district if entry else "",
                entry.leader if entry else "",
                DAY_STATE_NAMES.get(row.get(F.STATE) or "", row.get(F.STATE) or "未知"),
                row.get(F.DATE) or "",
                row.get(F.ACTIVITY_INDEX),
                why,
            )
        )
    severity = {DAY_STATE_NAMES["stalled"]: 0, DAY_STATE_NAMES["offline"]: 1}
    return sorted(found, key=lambda a: (severity.get(a.state, 2), a.district, a.project_id))
