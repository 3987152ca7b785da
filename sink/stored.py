"""Read back from InfluxDB what the core needs for roll-ups, rankings, the problem
ledger and status: registry rows, stoppages, investment reports, judged days and
problems. InfluxQL only, so the same reads work on InfluxDB 1.x and 2.x."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..streams.contract import DailyField as F, Measurement, RegistryEntry
from ..agents.core.calendar import Stoppage
from ..agents.core.daily import day_start, epoch_ms
from ..agents.core.indicators import DayLabel, State
from ..agents.core.problems import Problem, overdue_on
from ..agents.core.investment import Revision, newest_known
from ..agents.core.nodes import PlanNode
from ..agents.core.project import NO_INVESTMENT, JudgedDay, JudgedDays, JudgedStates, Profile, ProjectFacts
from .influx import Series, quote_identifier, quote_literal, tag_conditions
from .points import UNREGISTERED

Query = Callable[[str], Awaitable[list[list[Series]]]]

# Whole-city reads are one series each, not one per project: at 100k projects a series
# per project costs its own tags, column list and row dicts, which made the leader's
# review the largest allocation in a worker. Tags not grouped by come back as columns.
REGISTRY_QUERY = f"SELECT * FROM {Measurement.PROJECT}"
STOPPAGES_QUERY = f"SELECT from_day, to_day, reason FROM {Measurement.STOPPAGE} GROUP BY {Measurement.TAG_PROJECT}"


def _columns(series: Series, *names: str) -> list[int | None]:
    return [series.columns.index(name) if name in series.columns else None for name in names]


def registry_from(series_list: Iterable[Series]) -> dict[str, RegistryEntry]:
    """The newest registry row per project (the leader's phone is never stored)."""
    newest: dict[str, list] = {}
    fields = ("time", Measurement.TAG_PROJECT, "project_name", "district", "zone", "department", "level", "kind", "leader",
              "data_owner", "annual_plan_wan", "planned_start", "capacity_kva", "lat", "lon", "video_url", "total_investment_wan",
              "owner_person", "leader_title", "partner_departments", "investment_lumpy")
    for series in series_list:
        at = _columns(series, *fields)
        for values in series.values:  # oldest first: a later row of a project replaces it
            row = [values[i] if i is not None else None for i in at]
            project_id = row[1] or series.tags.get(Measurement.TAG_PROJECT)
            if project_id:
                newest[project_id] = row
    entries = {}
    for project_id, row in newest.items():
        (_, _, name, district, zone, department, level, kind, leader, data_owner, plan, planned_start, capacity, lat, lon, video, total,
         owner_person, leader_title, partners, lumpy) = row
        entries[project_id] = RegistryEntry(
            project_id=project_id,
            name=name or "",
            district=district or "",
            zone=zone or "",
            department=department or "",
            level=level or "city",
            kind=kind or "continuing",
            leader=leader or "",
            leader_phone="",
            data_owner=data_owner or "",
            annual_plan_wan=float(plan or 0.0),
            planned_start=date.fromisoformat(planned_start) if planned_start else date.min,
            capacity_kva=float(capacity or 0.0),
            lat=lat,
            lon=lon,
            video_url=video,
            total_investment_wan=total,
            owner_person=owner_person,
            leader_title=leader_title,
            partner_departments=partners,
            investment_lumpy=bool(lumpy),
        )
    return entries


def stoppages_from(series_list: Iterable[Series]) -> list[Stoppage]:
    return [
        Stoppage(series.tags[Measurement.TAG_PROJECT], date.fromisoformat(row["from_day"]), date.fromisoformat(row["to_day"]), row.get("reason") or "")
        for series in series_list
        for row in series.rows()
    ]


async def load_reference(query: Query) -> tuple[dict[str, RegistryEntry], list[Stoppage]]:
    registry, stoppages = await query(f"{REGISTRY_QUERY};{STOPPAGES_QUERY}")
    return registry_from(registry), stoppages_from(stoppages)


# What the review and the reports need of a registry row (not coordinates, video, capacity).
_PROFILE_COLUMNS = (Measurement.TAG_PROJECT, "project_name", "district", "zone", "department", "level", "kind", "leader",
                    "data_owner", "annual_plan_wan", "planned_start", "total_investment_wan", "owner_person", "investment_lumpy")
PAGE_ROWS = 25_000  # rows per read of the whole city: memory follows a page, not the city


def profiles_query(with_names: bool) -> str:
    columns = [c for c in _PROFILE_COLUMNS if with_names or c != "project_name"]
    return f"SELECT {', '.join(quote_identifier(c) for c in columns)} FROM {Measurement.PROJECT}"


def profiles_from(series_list: Iterable[Series], profiles: dict[str, Profile] | None = None) -> dict[str, Profile]:
    """The newest registry row of every project as its Profile (into ``profiles``, page
    by page). Districts, zones, departments and leaders repeat across thousands of
    projects: one string each; so do planned start dates: one date each."""
    profiles = {} if profiles is None else profiles
    dates: dict[str, date] = {}
    for series in series_list:
        at = _columns(series, *_PROFILE_COLUMNS)
        for values in series.values:  # oldest first: a later row of a project replaces it
            project_id, name, district, zone, department, level, kind, leader, data_owner, plan, planned_start, total, owner, lumpy = (
                values[i] if i is not None else None for i in at
            )
            if not project_id:
                continue
            if planned_start and planned_start not in dates:
                dates[planned_start] = date.fromisoformat(planned_start)
            profiles[project_id] = Profile(
                project_id,
                sys.intern(district or ""),
                sys.intern(zone or ""),
                sys.intern(department or ""),
                sys.intern(level or "city"),
                sys.intern(kind or "continuing"),
                float(plan or 0.0),
                dates[planned_start] if planned_start else date.min,
                name or "",
                sys.intern(leader or ""),
                sys.intern(data_owner or ""),
                float(total) if total else None,
                sys.intern(owner or ""),
                bool(lumpy),
            )
    return profiles


async def _pages(query: Query, statement: str) -> AsyncIterator[list[Series]]:
    """A statement's rows, PAGE_ROWS at a time (the statement has no GROUP BY, so one
    series, ordered by time: rows written meanwhile come after the pages read)."""
    offset = 0
    while True:
        (series_list,) = await query(f"{statement} LIMIT {PAGE_ROWS} OFFSET {offset}")
        yield series_list
        if sum(len(series.values) for series in series_list) < PAGE_ROWS:
            return
        offset += PAGE_ROWS


async def load_facts(
    query: Query,
    first: date,
    last: date,
    tz: ZoneInfo,
    with_names: bool = True,
    with_energy: bool = True,
    known_on: date | None = None,
    all_years: bool = False,
) -> list[ProjectFacts]:
    """Facts of every registered project: judged days in [first, last], stoppages, the
    day each started, and investment of ``first``'s year and the year before (every
    year ``all_years``), each month at its newest revision known by the end of
    ``known_on`` (None: every revision stored); project names only ``with_names``; the
    days' kWh, baseline, suspicion and activity index only ``with_energy`` (the review
    and start counts need none of them, only which side of the started threshold the
    index lies: ``JudgedStates``).
    Earlier revisions of revised months are kept too (``ProjectFacts.revised``).
    Read a page at a time, each page turned into facts before the next is asked for: at
    a province's 100k projects, one answer with everything was most of the worker's
    memory."""
    profiles: dict[str, Profile] = {}
    async for page in _pages(query, profiles_query(with_names)):
        profiles_from(page, profiles)
    # Most projects have no stoppage and no investment report in the range: they share
    # one empty mapping and tuple instead of a dict and a list each.
    days_kept = JudgedDays if with_energy else JudgedStates
    facts = {pid: ProjectFacts(profile, NO_INVESTMENT, days_kept(), ()) for pid, profile in sorted(profiles.items())}
    del profiles
    (stoppages,) = await query(STOPPAGES_QUERY)
    for stoppage in stoppages_from(stoppages):
        if stoppage.project_id in facts:
            facts[stoppage.project_id].stoppages += (stoppage,)
    days: dict[str, date] = {}  # each day parsed once, not once per project
    columns = (Measurement.TAG_PROJECT, F.DATE, F.STATE, F.MACHINE_STATE, F.WORKING_DAY, F.ACTIVITY_INDEX, F.KWH, F.BASELINE_KWH, F.SUSPICIOUS)
    statement = (
        f"SELECT {', '.join(map(quote_identifier, columns))} FROM {Measurement.POWER_DAILY} "
        f"WHERE time >= {epoch_ms(day_start(first, tz))}ms AND time < {epoch_ms(day_start(last + timedelta(days=1), tz))}ms"
    )
    async for series_list in _pages(query, statement):
        for series in series_list:
            at = _columns(series, *columns)
            for values in series.values:
                project_id, day, state, machine_state, working_day, index, kwh, baseline, suspicious = (
                    values[i] if i is not None else None for i in at
                )
                fact = facts.get(project_id)
                if fact is None or not machine_state or not state or not day:
                    # Not registered, or not judged yet; or being judged right now: InfluxDB
                    # stores each field on its own, so a read may see some of a point's fields.
                    continue
                if day not in days:
                    days[day] = date.fromisoformat(day)
                fact.days[days[day]] = JudgedDay(
                    DayLabel(state),
                    State(machine_state),
                    bool(working_day),
                    index,
                    # A day judged with no reading at all has no energy field: it drew nothing we know of.
                    float(kwh or 0.0),
                    baseline,
                    bool(suspicious),
                )
    revisions = await load_revisions(query, tz, None if all_years else date(first.year - 1, 1, 1), known_on)
    for project_id, known in newest_known(revisions, known_on, tz).items():
        if project_id in facts:
            facts[project_id].investment, facts[project_id].revised = known.newest, known.earlier
    # The day each project first started: its `started` event (one per project), read as
    # one paged series rather than a series per project.
    started = (
        f"SELECT {Measurement.TAG_PROJECT}, {quote_identifier('day')} FROM {Measurement.EVENT} WHERE kind = 'started' "
        f"AND time < {epoch_ms(day_start(last + timedelta(days=1), tz))}ms"
    )
    async for series_list in _pages(query, started):
        for series in series_list:
            at = _columns(series, Measurement.TAG_PROJECT, "day")
            for values in series.values:
                project_id, day = (values[i] if i is not None else None for i in at)
                fact = facts.get(project_id or "")
                if fact is not None and day and (fact.started_on is None or day < fact.started_on.isoformat()):
                    fact.started_on = date.fromisoformat(day)
    for project_id, nodes in (await load_nodes(query)).items():
        if project_id in facts:
            facts[project_id].nodes = nodes
    return list(facts.values())


NODES_QUERY = (
    f"SELECT last(planned_date) AS planned_date, last(done_date) AS done_date FROM {Measurement.PLAN_NODE} "
    f"GROUP BY {Measurement.TAG_PROJECT}, node"
)


async def load_nodes(query: Query) -> dict[str, list[PlanNode]]:
    """Every project's plan nodes (a node reported done before it was planned waits for
    its plan), in planned order."""
    (series_list,) = await query(NODES_QUERY)
    nodes: dict[str, list[PlanNode]] = {}
    for series in series_list:
        for row in series.rows():
            if row.get("planned_date"):
                done = row.get("done_date")
                node = PlanNode(series.tags[Measurement.TAG_PROJECT], series.tags["node"], date.fromisoformat(row["planned_date"]),
                                date.fromisoformat(done) if done else None)
                nodes.setdefault(node.project_id, []).append(node)
    return {project_id: sorted(found, key=lambda n: (n.planned_date, n.node)) for project_id, found in nodes.items()}


async def load_revisions(query: Query, tz: ZoneInfo, since: date | None, known_on: date | None) -> list[Revision]:
    """Investment reports as they arrived, from local ``since`` (None: all) to the end of
    ``known_on`` (None: all): a revision is stamped when it arrived."""
    conditions = []
    if since is not None:
        conditions.append(f"time >= {epoch_ms(day_start(since, tz))}ms")
    if known_on is not None:
        conditions.append(f"time < {epoch_ms(day_start(known_on + timedelta(days=1), tz))}ms")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    statement = f"SELECT {Measurement.TAG_PROJECT}, period, amount_wan, reported_at FROM {Measurement.INVESTMENT_REVISION}{where}"
    revisions = []
    async for series_list in _pages(query, statement):
        for series in series_list:
            at = _columns(series, Measurement.TAG_PROJECT, "period", "amount_wan", "reported_at")
            for values in series.values:
                project_id, period, amount, reported_at = (values[i] if i is not None else None for i in at)
                if project_id and period and amount is not None and reported_at:
                    revisions.append(Revision(project_id, period, float(amount), datetime.fromisoformat(reported_at)))
    return revisions


async def newest_judged_day(query: Query) -> date | None:
    """The newest day any project has been judged on: the stream's clock as stored."""
    (series_list,) = await query(f"SELECT last({F.MACHINE_STATE}), {quote_identifier(F.DATE)} FROM {Measurement.POWER_DAILY}")
    return _date_of(series_list)


async def judged_energy(query: Query, first: date, last: date, tz: ZoneInfo) -> dict[date, tuple[float, float | None, int]]:
    """Per local day in [first, last]: the sum of every judged project-day's kwh and
    baseline, and how many projects were judged. InfluxDB sums; a month per statement."""
    statements, day = [], first
    while day <= last:
        until = min(day + timedelta(days=31), last + timedelta(days=1))
        statements.append(
            f"SELECT sum({F.KWH}) AS kwh, sum({F.BASELINE_KWH}) AS baseline_kwh, count({F.MACHINE_STATE}) AS projects "
            f"FROM {Measurement.POWER_DAILY} WHERE time >= {epoch_ms(day_start(day, tz))}ms AND time < {epoch_ms(day_start(until, tz))}ms "
            f"AND {F.MACHINE_STATE} =~ /./ GROUP BY time(1d) fill(none) tz({quote_literal(tz.key)})"
        )
        day = until
    totals = {}
    for series_list in await query(";".join(statements)) if statements else []:
        for series in series_list:
            for row in series.rows():
                # A bucket starts at local midnight; noon of it is safely inside the day.
                local_day = datetime.fromtimestamp(row["time"] / 1000 + 43_200, tz).date()
                totals[local_day] = (float(row["kwh"] or 0.0), row["baseline_kwh"], int(row["projects"]))
    return totals


async def newest_energy_day(query: Query) -> date | None:
    """The newest day of the city's energy roll-up."""
    (series_list,) = await query(f"SELECT last(kwh), {quote_identifier('date')} FROM {Measurement.ENERGY_DAILY} WHERE unit_type = 'city'")
    return _date_of(series_list)


async def first_judged_day(query: Query) -> date | None:
    (series_list,) = await query(f"SELECT first({F.MACHINE_STATE}), {quote_identifier(F.DATE)} FROM {Measurement.POWER_DAILY}")
    return _date_of(series_list)


def _date_of(series_list: list[Series]) -> date | None:
    for series in series_list:
        for row in series.rows():
            if row.get("date"):
                return date.fromisoformat(row["date"])
    return None


def problem_query(problem_id: str | None = None, condition: str | None = None) -> str:
    """Problems, all or one; ``condition``: a clause of ``tag_conditions``."""
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
            if not row.get("opened_day") or not row.get("kind") or not row.get("opened_at"):
                continue  # being written right now: InfluxDB stores each field on its own
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
                    category=row.get("category") or "",
                    department=row.get("department") or None,
                    measures=row.get("measures") or "",
                    due=date.fromisoformat(row["due"]) if row.get("due") else None,
                    awaiting_since=datetime.fromisoformat(row["awaiting_since"]) if row.get("awaiting_since") else None,
                    owner_person=row.get("owner_person") or None,
                    overdue_since=date.fromisoformat(row["overdue_since"]) if row.get("overdue_since") else None,
                    reason=row.get("reason") or None,
                )
            )
    return problems


# What decides whether the review must chase a problem: a page of the whole ledger read
# with every column (each problem's detail, measures and people) cost the worker ~45 MB
# at 25k rows, and a province's ledger can hold a problem per project.
CHASE_COLUMNS = (Measurement.TAG_PROJECT, "problem_id", "kind", "opened_day", "opened_at", "closed_at", "due", "overdue_since")
STATEMENTS_PER_REQUEST = 10


async def problems_to_chase(query: Query, day: date) -> tuple[set[str], list[Problem]]:
    """The id of every problem in the ledger, and, read in full (sorted by project and
    id), the problems still open past their deadline on ``day`` that were not marked
    overdue yet. The ledger is read a page at a time and only its deciding columns; the
    full rows only of the problems to chase. Rows are read in time order without GROUP
    BY (the tags come as columns): a problem filed meanwhile with an earlier time can
    shift a page by a row, so the next review sees it."""
    known: set[str] = set()
    chase: set[str] = set()
    statement = f"SELECT {', '.join(map(quote_identifier, CHASE_COLUMNS))} FROM {Measurement.PROBLEM}"
    async for page in _pages(query, statement):
        for series in page:
            at = _columns(series, *CHASE_COLUMNS)
            for values in series.values:
                project_id, problem_id, kind, opened_day, opened_at, closed_at, due, overdue_since = (
                    values[i] if i is not None else None for i in at
                )
                if not (problem_id and project_id and opened_day and kind and opened_at):
                    continue  # being written right now, as problems_from skips it
                known.add(problem_id)
                if not closed_at and due and date.fromisoformat(due) < day and not overdue_since:
                    chase.add(problem_id)
    statements = [problem_query(condition=condition) for condition in tag_conditions("problem_id", chase)]
    chased: list[Problem] = []
    for first in range(0, len(statements), STATEMENTS_PER_REQUEST):
        for series_list in await query("; ".join(statements[first : first + STATEMENTS_PER_REQUEST])):
            chased.extend(p for p in overdue_on(problems_from(series_list), day) if p.overdue_since is None)
    chased.sort(key=lambda p: (p.project_id, p.problem_id))
    return known, chased


def _registered(value: str | None) -> str | None:
    return None if not value or value == UNREGISTERED else value


# --- what the CLI's report, export and status paths read -----------------------------------


async def audit_trail(query: Query) -> list[tuple[int, str, str, dict[str, Any]]]:
    """Every operator command recorded: (time ms, action, operator, its fields)."""
    (series_list,) = await query(f"SELECT reason, subject, host FROM {Measurement.AUDIT} GROUP BY action, operator")
    return [(row["time"], series.tags["action"], series.tags["operator"], row) for series in series_list for row in series.rows()]


async def days_between(query: Query, first_ms: int, after_last_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """(project, stored day) of every project's days stamped in [first_ms, after_last_ms)."""
    (series_list,) = await query(
        f"SELECT {F.KWH}, {quote_identifier(F.DATE)}, {F.BASELINE_KWH}, {F.ACTIVITY_INDEX}, {F.STATE} FROM {Measurement.POWER_DAILY} "
        f"WHERE time >= {first_ms}ms AND time < {after_last_ms}ms GROUP BY {Measurement.TAG_PROJECT}"
    )
    return [(series.tags[Measurement.TAG_PROJECT], row) for series in series_list for row in series.rows()]


async def attention_facts(query: Query) -> tuple[dict[str, RegistryEntry], dict[str, dict[str, Any]], list[tuple[str, str]], list[Problem]]:
    """The registry, each project's newest judged day (state, date, activity index), the
    meters whose newest event says offline (project, meter), and every problem."""
    latest_day = (
        f"SELECT last({F.STATE}) AS {F.STATE}, {quote_identifier(F.DATE)}, {F.ACTIVITY_INDEX} FROM {Measurement.POWER_DAILY} "
        f"WHERE {F.MACHINE_STATE} =~ /./ GROUP BY {Measurement.TAG_PROJECT}"
    )
    meters = (
        f"SELECT last(event_id) AS event_id FROM {Measurement.EVENT} WHERE kind = 'offline' OR kind = 'online' "
        f"GROUP BY {Measurement.TAG_PROJECT}, {Measurement.TAG_METER}"
    )
    registry_series, day_series, meter_series, problem_series = await query(";".join([REGISTRY_QUERY, latest_day, meters, problem_query()]))
    latest = {s.tags[Measurement.TAG_PROJECT]: s.rows()[0] for s in day_series if s.values}
    offline_meters = [
        (series.tags[Measurement.TAG_PROJECT], series.tags.get(Measurement.TAG_METER, ""))
        for series in meter_series
        for row in series.rows()
        if str(row.get("event_id", "")).startswith("offline:")
    ]
    return registry_from(registry_series), latest, offline_meters, problems_from(problem_series)


async def problems_stored(query: Query, problem_id: str | None = None) -> list[Problem]:
    (series_list,) = await query(problem_query(problem_id=problem_id))
    return problems_from(series_list)


async def last_delivery(query: Query, period_label: str) -> dict[str, Any] | None:
    """When and by whom the bulletin of a period was last sent, and where it was put."""
    (series,) = await query(
        f"SELECT sent_at, operator, location FROM {Measurement.REPORT_DELIVERY} "
        f"WHERE period = {quote_literal(period_label)} ORDER BY time DESC LIMIT 1"
    )
    rows = [row for each in series for row in each.rows()]
    return rows[0] if rows else None
