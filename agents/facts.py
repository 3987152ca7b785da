"""Read back from InfluxDB what the core needs for roll-ups, rankings, the problem
ledger and status: registry rows, stoppages, investment reports, judged days and
problems. InfluxQL only, so the same reads work on InfluxDB 1.x and 2.x."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..streams.contract import Measurement, RegistryEntry
from .core.calendar import Stoppage
from .core.daily import day_start, epoch_ms
from .core.indicators import DayLabel, State
from .core.problems import Problem
from .core.ranking import JudgedDay, MonthReport, Profile, ProjectFacts
from .influx import Series, quote_identifier, quote_literal
from .points import UNREGISTERED

Query = Callable[[str], Awaitable[list[list[Series]]]]

REGISTRY_QUERY = f"SELECT * FROM {Measurement.PROJECT} GROUP BY {Measurement.TAG_PROJECT} ORDER BY time DESC LIMIT 1"
STOPPAGES_QUERY = f"SELECT from_day, to_day, reason FROM {Measurement.STOPPAGE} GROUP BY {Measurement.TAG_PROJECT}"


def registry_from(series_list: Iterable[Series]) -> dict[str, RegistryEntry]:
    """The newest registry row per project (the leader's phone is never stored)."""
    entries = {}
    for series in series_list:
        for row in series.rows()[:1]:
            project_id = series.tags[Measurement.TAG_PROJECT]
            entries[project_id] = RegistryEntry(
                project_id=project_id,
                name=row.get("project_name") or "",
                district=row.get("district") or "",
                zone=row.get("zone") or "",
                department=row.get("department") or "",
                level=row.get("level") or "city",
                kind=row.get("kind") or "continuing",
                leader=row.get("leader") or "",
                leader_phone="",
                data_owner=row.get("data_owner") or "",
                annual_plan_wan=float(row.get("annual_plan_wan") or 0.0),
                planned_start=date.fromisoformat(row["planned_start"]) if row.get("planned_start") else date.min,
                capacity_kva=float(row.get("capacity_kva") or 0.0),
                lat=row.get("lat"),
                lon=row.get("lon"),
                video_url=row.get("video_url"),
            )
    return entries


def stoppages_from(series_list: Iterable[Series]) -> list[Stoppage]:
    return [
        Stoppage(series.tags[Measurement.TAG_PROJECT], date.fromisoformat(row["from_day"]), date.fromisoformat(row["to_day"]), row.get("reason") or "")
        for series in series_list
        for row in series.rows()
    ]


def profile_of(entry: RegistryEntry) -> Profile:
    return Profile(
        entry.project_id,
        entry.district,
        entry.zone,
        entry.department,
        entry.level,
        entry.kind,
        entry.annual_plan_wan,
        entry.planned_start,
        entry.name,
        entry.leader,
    )


async def load_reference(query: Query) -> tuple[dict[str, RegistryEntry], list[Stoppage]]:
    registry, stoppages = await query(f"{REGISTRY_QUERY};{STOPPAGES_QUERY}")
    return registry_from(registry), stoppages_from(stoppages)


async def load_facts(query: Query, first: date, last: date, tz: ZoneInfo) -> tuple[dict[str, RegistryEntry], list[ProjectFacts]]:
    """Facts of every registered project: judged days in [first, last], investment reports
    of the years those days fall in, stoppages."""
    since = epoch_ms(day_start(first, tz))
    until = epoch_ms(day_start(last + timedelta(days=1), tz))
    year_start = epoch_ms(day_start(date(first.year, 1, 1), tz))
    days_query = (
        f"SELECT {quote_identifier('date')}, state, machine_state, working_day, activity_index, kwh, baseline_kwh, suspicious "
        f"FROM {Measurement.POWER_DAILY} "
        f"WHERE time >= {since}ms AND time < {until}ms GROUP BY {Measurement.TAG_PROJECT}"
    )
    investment_query = (
        f"SELECT amount_wan, period, reported_at FROM {Measurement.INVESTMENT} "
        f"WHERE time >= {year_start}ms AND time < {until}ms GROUP BY {Measurement.TAG_PROJECT}"
    )
    registry, stoppages, days, investment = await query(";".join([REGISTRY_QUERY, STOPPAGES_QUERY, days_query, investment_query]))
    entries = registry_from(registry)
    facts = {pid: ProjectFacts(profile_of(entry)) for pid, entry in sorted(entries.items())}
    for stoppage in stoppages_from(stoppages):
        if stoppage.project_id in facts:
            facts[stoppage.project_id].stoppages.append(stoppage)
    for series in days:
        fact = facts.get(series.tags[Measurement.TAG_PROJECT])
        if fact is None:
            continue
        for row in series.rows():
            if not row.get("machine_state") or not row.get("date"):
                continue  # a day not judged yet
            fact.days[date.fromisoformat(row["date"])] = JudgedDay(
                DayLabel(row["state"]),
                State(row["machine_state"]),
                bool(row.get("working_day")),
                row.get("activity_index"),
                # A day judged with no reading at all has no energy field: it drew nothing we know of.
                float(row.get("kwh") or 0.0),
                row.get("baseline_kwh"),
                bool(row.get("suspicious")),
            )
    for series in investment:
        fact = facts.get(series.tags[Measurement.TAG_PROJECT])
        if fact is None:
            continue
        for row in series.rows():
            reported = datetime.fromisoformat(row["reported_at"]).astimezone(tz).date()
            fact.investment[row["period"]] = MonthReport(float(row["amount_wan"]), reported)
    return entries, list(facts.values())


async def newest_judged_day(query: Query) -> date | None:
    """The newest day any project has been judged on: the stream's clock as stored."""
    (series_list,) = await query(f"SELECT last(machine_state), {quote_identifier('date')} FROM {Measurement.POWER_DAILY}")
    for series in series_list:
        for row in series.rows():
            if row.get("date"):
                return date.fromisoformat(row["date"])
    return None


def problem_query(problem_id: str | None = None, condition: str | None = None) -> str:
    """Problems, all or one; ``condition``: a clause of ``project_conditions``."""
    conditions = []
    if condition is not None:
        conditions.append(condition)
    if problem_id is not None:
        conditions.append(f"problem_id = {quote_literal(problem_id)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT * FROM {Measurement.PROBLEM}{where} GROUP BY {Measurement.TAG_PROJECT}, problem_id"


def problems_from(series_list: Iterable[Series]) -> list[Problem]:
    problems = []
    for series in series_list:
        for row in series.rows():
            problems.append(
                Problem(
                    problem_id=series.tags["problem_id"],
                    project_id=series.tags[Measurement.TAG_PROJECT],
                    kind=row["kind"],
                    opened_day=date.fromisoformat(row["opened_day"]),
                    opened_at=datetime.fromisoformat(row["opened_at"]),
                    detail=row.get("detail") or "",
                    leader=_registered(row.get("leader")),
                    district=_registered(row.get("district")),
                    closed_at=datetime.fromisoformat(row["closed_at"]) if row.get("closed_at") else None,
                    closed_by=row.get("closed_by") or None,
                    note=row.get("note") or "",
                )
            )
    return problems


def _registered(value: str | None) -> str | None:
    return None if not value or value == UNREGISTERED else value
