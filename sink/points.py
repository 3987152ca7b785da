"""Records and indicators as InfluxDB points. Series + timestamp are a pure function of
the input, so writing the same input twice overwrites instead of duplicating."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from ..streams.contract import AuditRecord, DailyField, InvestmentReport, Measurement, ReadingField, StatusField, NodeRecord, PowerReading, ProjectEvent, RegistryEntry
from ..agents.core.calendar import Stoppage
from ..agents.core.daily import DailyEnergy, MeterReading, MeterRun, day_start, day_start_ms, epoch_ms, to_meter_reading
from ..agents.core.indicators import DayIndicators, State
from ..agents.core.suspicion import MeterFingerprint
from ..agents.core.periods import Period
from ..agents.core.problems import Problem
from ..agents.core.investment import Completion
from ..agents.core.nodes import PlanNode, Schedule
from ..agents.core.ranking import UnitScore
from .lineprotocol import encode_point, float_fields, series_key, string_field


def reading_point(reading: PowerReading) -> str:
    """One point per reading, put together here rather than through ``encode_point``
    (same text; a unit test holds the two equal)."""
    return reading_lines([to_meter_reading(reading)])[0]


_KWH, _INTERVAL = f" {ReadingField.KWH}=", f",{ReadingField.INTERVAL_S}="
_KWH_TOTAL, _KW = f",{ReadingField.KWH_TOTAL}=", f",{ReadingField.KW}="


def reading_lines(readings: Sequence[MeterReading | MeterRun]) -> list[str]:
    """The points of a batch of readings: the hot path (a point per reading), so each
    line is one f-string, with no call per field."""
    series, lines = _reading_series, []
    for reading in readings:
        if type(reading) is MeterRun:
            lines += _run_lines(reading)
            continue
        project_id, meter_id, ts_ms, interval_s, kwh, kwh_total, kw = reading
        line = f"{series(project_id, meter_id)}{_KWH}{float(kwh)!r}{_INTERVAL}{interval_s}i"
        if kwh_total is not None:
            line += f"{_KWH_TOTAL}{float(kwh_total)!r}"
        if kw is not None:
            line += f"{_KW}{float(kw)!r}"
        lines.append(f"{line} {ts_ms}")
    return lines


def _run_lines(run: MeterRun) -> list[str]:
    """A run's points: with every column full (a metering platform's curve), one
    f-string per reading over the columns; otherwise reading by reading."""
    columns = [run.kwh] + [column for column in (run.kwh_total, run.kw) if column is not None]
    if any(None in column for column in columns):
        return reading_lines(run.readings())
    head = f"{_reading_series(run.project_id, run.meter_id)}{_KWH}"
    interval, first_ms, step = f"{_INTERVAL}{run.interval_s}i", run.first_ms, run.interval_s * 1000
    times = range(first_ms, first_ms + len(run.kwh) * step, step)
    totals, demands = run.kwh_total, run.kw
    if totals is not None and demands is not None:
        between = f"{interval}{_KWH_TOTAL}"
        return [
            f"{head}{kwh}{between}{total}{_KW}{demand} {ts}"
            for kwh, total, demand, ts in zip(float_fields(run.kwh), float_fields(totals), float_fields(demands), times)
        ]
    if totals is None and demands is None:
        return [f"{head}{kwh}{interval} {ts}" for kwh, ts in zip(float_fields(run.kwh), times)]
    return reading_lines(run.readings())


# A city's meters all fit; a province's 100k would hold ~30 MB of keys that are cheap
# to build again.
@lru_cache(maxsize=4096)
def _reading_series(project_id: str, meter_id: str) -> str:
    return series_key(Measurement.POWER_READING, {Measurement.TAG_PROJECT: project_id, Measurement.TAG_METER: meter_id})


def daily_point(energy: DailyEnergy, tz: ZoneInfo) -> str:
    """Stamped at local midnight; ``date`` spells the local day out for readers. The live
    path writes one for every day a batch touches, so it is one f-string, not
    ``encode_point`` (same text: a unit test holds the two equal)."""
    optional = ""
    if energy.load_cv is not None:
        optional += f"{_LOAD_CV}{float(energy.load_cv)!r}"
    if energy.day_night is not None:
        optional += f"{_DAY_NIGHT}{float(energy.day_night)!r}"
    return (
        f"{_daily_series(energy.project_id)}{_DAILY_KWH}{float(energy.kwh)!r}{_READINGS}{energy.readings}i{_METERS}{energy.meters}i"
        f"{_MAX_GAP}{energy.max_gap_s}i{_DAILY_INTERVAL}{energy.interval_s}i{_FLAT}{'true' if energy.flat_load else 'false'}{optional}"
        f'{_PROFILE}{string_field(encode_fingerprints(energy.fingerprints))}{_DATE}"{energy.day.isoformat()}" '
        f"{day_start_ms(energy.day, tz)}"
    )


_DAILY_KWH, _READINGS, _METERS = f" {DailyField.KWH}=", f",{DailyField.READINGS}=", f",{DailyField.METERS}="
_MAX_GAP, _DAILY_INTERVAL, _FLAT = f",{DailyField.MAX_GAP_S}=", f",{DailyField.INTERVAL_S}=", f",{DailyField.FLAT_LOAD}="
_LOAD_CV, _DAY_NIGHT = f",{DailyField.LOAD_CV}=", f",{DailyField.DAY_NIGHT}="
_PROFILE, _DATE = f",{DailyField.PROFILE}=", f",{DailyField.DATE}="


@lru_cache(maxsize=4096)
def _daily_series(project_id: str) -> str:
    return series_key(Measurement.POWER_DAILY, {Measurement.TAG_PROJECT: project_id})


def encode_fingerprints(fingerprints: Sequence[MeterFingerprint]) -> str:
    """Each whole meter's quantised day as ``meter=hex`` (``;``-separated): what a
    rebuilt timeline compares the next week's days with."""
    return ";".join(f"{f.meter_id}={f.shape.hex()}" for f in fingerprints)


def decode_fingerprints(text: str | None) -> tuple[MeterFingerprint, ...]:
    pairs = (item.rpartition("=") for item in (text or "").split(";") if item)
    return tuple(MeterFingerprint(meter_id, bytes.fromhex(shape)) for meter_id, _, shape in pairs)


def indicator_point(day: DayIndicators, tz: ZoneInfo) -> str:
    """The day's indicators, on the same point as its energy (InfluxDB merges the fields).
    ``activity_index`` is left out where it is undefined (offline day, no baseline)."""
    return encode_point(
        Measurement.POWER_DAILY,
        {Measurement.TAG_PROJECT: day.project_id},
        {
            DailyField.BASELINE_KWH: day.baseline_kwh,
            DailyField.ACTIVITY_INDEX: day.activity_index,
            DailyField.STATE: day.label.value,
            DailyField.MACHINE_STATE: day.machine.state.value,
            DailyField.IDLE_RUN: day.machine.idle_run,
            DailyField.BUSY_RUN: day.machine.busy_run,
            DailyField.STABLE: day.stable,
            DailyField.SUSPICIOUS: day.suspicious,
            # Empty rather than left out: a day judged again must not keep an old finding.
            DailyField.SUSPICION: day.suspicion.reason.value if day.suspicion else "",
            DailyField.SUSPICION_SINCE: day.suspicion.since.isoformat() if day.suspicion else "",
            DailyField.LOOK: day.look,
            DailyField.OPEN_RUNS: day.carried.encode(),
            DailyField.OFFLINE: day.offline,
            DailyField.WORKING_DAY: day.working_day,
            DailyField.DATE: day.day.isoformat(),
        },
        day_start_ms(day.day, tz),
    )


def investment_point(report: InvestmentReport, tz: ZoneInfo) -> str:
    """Stamped at the first local midnight of the month: one point per project and month,
    so a corrected report replaces the earlier one."""
    year, month = (int(part) for part in report.period.split("-"))
    return encode_point(
        Measurement.INVESTMENT,
        {Measurement.TAG_PROJECT: report.project_id},
        {
            "amount_wan": float(report.amount_wan),
            "period": report.period,
            "reported_at": report.reported_at.isoformat(),
        },
        epoch_ms(day_start(date(year, month, 1), tz)),
    )


def investment_revision_point(report: InvestmentReport) -> str:
    """Stamped when the report arrived: a revision of a month is a new point beside the
    earlier ones; the same report delivered again overwrites itself. One series per
    project (the month is a field: a tag would make a series per project and month, for
    ever); reports of several months sent at the same moment stay apart by the month's
    number added in milliseconds (``reported_at`` keeps the exact time)."""
    year, month = (int(part) for part in report.period.split("-"))
    return encode_point(
        Measurement.INVESTMENT_REVISION,
        {Measurement.TAG_PROJECT: report.project_id},
        {"amount_wan": float(report.amount_wan), "period": report.period, "reported_at": report.reported_at.isoformat()},
        epoch_ms(report.reported_at) + (year % 10) * 12 + month,
    )


def node_point(record: NodeRecord, ts_ms: int) -> str:
    """A plan node's planned or done date, stamped when it was recorded (the Kafka
    message time, as registry rows are): readers take the last of each field, so a
    re-plan or a corrected completion replaces the one before, and a re-delivered
    record lands on its own point again."""
    fields = {"planned_date": record.planned_date.isoformat() if record.planned_date else None,
              "done_date": record.done_date.isoformat() if record.done_date else None}
    return encode_point(Measurement.PLAN_NODE, {Measurement.TAG_PROJECT: record.project_id, "node": record.node}, fields, ts_ms)


def node_status_point(node: PlanNode, day: date, tz: ZoneInfo) -> str:
    """A node's standing on ``day`` (the review's newest judged day): what the
    drill-down's node table shows beside the plan."""
    return encode_point(
        Measurement.PLAN_NODE,
        {Measurement.TAG_PROJECT: node.project_id, "node": node.node},
        {"status": node.status_on(day), "days_behind": node.days_behind(day)},
        day_start_ms(day, tz),
    )


def schedule_point(schedule: Schedule, district: str, leader: str, day: date, tz: ZoneInfo) -> str:
    """A project's standing against its nodes on ``day`` (the overview counts those behind)."""
    return encode_point(
        Measurement.SCHEDULE,
        {Measurement.TAG_PROJECT: schedule.project_id, Measurement.TAG_DISTRICT: district or UNREGISTERED, "leader": leader or UNREGISTERED},
        {"behind": int(schedule.behind), "days_behind": schedule.days_behind, "node": schedule.node, "date": day.isoformat()},
        day_start_ms(day, tz),
    )


def project_point(entry: RegistryEntry, ts_ms: int) -> str:
    """The registry row, without the leader's phone number (boards show this data)."""
    return encode_point(
        Measurement.PROJECT,
        # district is a tag too: board variables list a district's projects with SHOW TAG VALUES.
        {Measurement.TAG_PROJECT: entry.project_id, Measurement.TAG_DISTRICT: entry.district},
        {
            "project_name": entry.name,
            "zone": entry.zone,
            "department": entry.department,
            "level": entry.level,
            "kind": entry.kind,
            "leader": entry.leader,
            "data_owner": entry.data_owner,
            "annual_plan_wan": float(entry.annual_plan_wan),
            "planned_start": entry.planned_start.isoformat(),
            "capacity_kva": float(entry.capacity_kva),
            "lat": _float_or_none(entry.lat),
            "lon": _float_or_none(entry.lon),
            "video_url": entry.video_url or None,
            "total_investment_wan": _float_or_none(entry.total_investment_wan),
            # 六个一, without the person's phone (boards show this data)
            "owner_person": entry.owner_person or None,
            "leader_title": entry.leader_title or None,
            "partner_departments": entry.partner_departments or None,
            "investment_lumpy": entry.investment_lumpy,
        },
        ts_ms,
    )


UNREGISTERED = "未登记"


class Answerable(Protocol):
    """Who answers for a project: a registry row, or what a worker holds of one."""

    @property
    def district(self) -> str: ...

    @property
    def leader(self) -> str: ...


def status_point(entry: Answerable | None, newest: DayIndicators, stalled_days: int, tz: ZoneInfo) -> str:
    """A project's state on its newest judged day, tagged with who answers for it: alert
    rules group by these tags, so every alert carries project, district and leader."""
    return encode_point(
        Measurement.PROJECT_STATUS,
        {
            Measurement.TAG_PROJECT: newest.project_id,
            Measurement.TAG_DISTRICT: (entry.district if entry else "") or UNREGISTERED,
            Measurement.TAG_LEADER: (entry.leader if entry else "") or UNREGISTERED,
        },
        {
            StatusField.STATE: newest.label.value,
            StatusField.STALLED: int(newest.machine.state == State.STALLED),
            StatusField.STALLED_WORKING_DAYS: stalled_days,
            StatusField.SUSPICIOUS: int(newest.suspicious),
            StatusField.OFFLINE: int(newest.offline),
            StatusField.DATE: newest.day.isoformat(),
        },
        day_start_ms(newest.day, tz),
    )


def meter_status_point(event: ProjectEvent) -> str:
    """A meter's reporting state, from its offline / online events."""
    return encode_point(
        Measurement.METER_STATUS,
        {
            Measurement.TAG_PROJECT: event.project_id,
            Measurement.TAG_METER: event.meter_id or "-",
            "data_owner": event.data_owner or UNREGISTERED,
        },
        {"offline": int(event.kind == "offline"), "event_id": event.event_id},
        epoch_ms(event.since or event.at),
    )


def stoppage_point(stoppage: Stoppage, tz: ZoneInfo) -> str:
    """One point per project and first day: an amended stoppage replaces its fields."""
    return encode_point(
        Measurement.STOPPAGE,
        {Measurement.TAG_PROJECT: stoppage.project_id},
        {"from_day": stoppage.first.isoformat(), "to_day": stoppage.last.isoformat(), "reason": stoppage.reason},
        epoch_ms(day_start(stoppage.first, tz)),
    )


def audit_point(record: AuditRecord) -> str:
    """Stamped when the command ran, to the millisecond."""
    return encode_point(
        Measurement.AUDIT,
        {"action": record.action, "operator": record.operator},
        {"reason": record.reason, "subject": record.subject, "host": record.host},
        int(record.at.timestamp() * 1000),
    )


def problem_point(problem: Problem, tz: ZoneInfo) -> str:
    """Stamped at the opening day; every change overwrites the fields of the same point."""
    return encode_point(
        Measurement.PROBLEM,
        # leader and district are tags: the alert rules group by them.
        {
            Measurement.TAG_PROJECT: problem.project_id,
            "problem_id": problem.problem_id,
            "leader": problem.leader or UNREGISTERED,
            Measurement.TAG_DISTRICT: problem.district or UNREGISTERED,
        },
        {
            "kind": problem.kind,
            "status": problem.status,
            "open": problem.is_open,
            "overdue": problem.status == "overdue",
            "opened_day": problem.opened_day.isoformat(),
            "opened_at": problem.opened_at.isoformat(),
            "detail": problem.detail,
            "closed_at": problem.closed_at.isoformat() if problem.closed_at else None,
            "closed_by": problem.closed_by,
            "note": problem.note or None,
            "category": problem.category or None,
            "department": problem.department,
            "measures": problem.measures or None,
            "due": problem.due.isoformat() if problem.due else None,
            "awaiting_since": problem.awaiting_since.isoformat() if problem.awaiting_since else None,
            "overdue_since": problem.overdue_since.isoformat() if problem.overdue_since else None,
            "owner_person": problem.owner_person,
            "reason": problem.reason,
        },
        epoch_ms(day_start(problem.opened_day, tz)),
    )


def event_point(event: ProjectEvent, tz: ZoneInfo) -> str:
    """Every event, for board annotations and the report. Stamped at what the event is
    about (its day, the meter's last reading, or when it was found), so finding the same
    change again overwrites the same point."""
    moment = event.since or (day_start(event.day, tz) if event.day else event.at)
    tags = {"kind": event.kind, Measurement.TAG_PROJECT: event.project_id or "-"}
    if event.meter_id:
        tags[Measurement.TAG_METER] = event.meter_id
    if event.unit:
        tags["unit"] = event.unit
    # Two problems filed, or two nodes overdue, for one project on one day stay two points.
    if event.problem_id:
        tags["problem_id"] = event.problem_id
    if event.node:
        tags["node"] = event.node
    return encode_point(
        Measurement.EVENT,
        tags,
        {
            "event_id": event.event_id,
            "detail": event.detail,
            "at": event.at.isoformat(),
            "day": event.day.isoformat() if event.day else None,
            "leader": event.leader,
            "district": event.district,
            "data_owner": event.data_owner,
            "unit_type": event.unit_type,
            "period": event.period,
        },
        epoch_ms(moment),
    )


def completion_point(completion: Completion, as_of: date, tz: ZoneInfo) -> str:
    """Completion as of a day, with the months it covers, 序时进度 of those months, how
    it stands against them (pace_pct: 100 = on time) and growth on last year."""
    return encode_point(
        Measurement.COMPLETION,
        {"unit_type": completion.unit_type, "unit": completion.unit},
        {
            "completed_wan": float(completion.completed_wan),
            "plan_wan": float(completion.plan_wan),
            "completion_pct": completion.pct,
            "months": (completion.coverage.months or None) if completion.coverage else None,
            "time_elapsed_pct": completion.time_elapsed_pct,
            "pace_pct": completion.pace_pct,
            "yoy_pct": completion.yoy_pct,
            "projects": completion.projects,
            "date": as_of.isoformat(),
        },
        epoch_ms(day_start(as_of, tz)),
    )


def energy_point(day: date, kwh: float, baseline_kwh: float | None, projects: int, tz: ZoneInfo) -> str:
    """The city's judged energy of one day."""
    return encode_point(
        Measurement.ENERGY_DAILY,
        {"unit_type": "city"},
        {"kwh": float(kwh), "baseline_kwh": None if baseline_kwh is None else float(baseline_kwh), "projects": projects, "date": day.isoformat()},
        day_start_ms(day, tz),
    )


def ranking_point(score: UnitScore, period: Period, tz: ZoneInfo, final: bool) -> str:
    return encode_point(
        Measurement.RANKING,
        {"period": period.label, "unit_type": score.unit_type, "unit": score.unit},
        {
            "rank": score.rank,
            "score": score.score,
            "completion_pct": score.completion_pct,
            "start_rate": score.start_rate,
            "stalled_share": score.stalled_share,
            "projects": score.projects,
            "exempt": score.exempt,
            "golden_snail": score.golden_snail,
            "final": final,
        },
        epoch_ms(day_start(period.first, tz)),
    )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def delivery_point(period_label: str, sent_at: datetime, operator: str, location: str) -> str:
    """A period's bulletin sent (report --send): when, by whom, where readers find it."""
    fields = {"sent_at": sent_at.isoformat(), "operator": operator, "location": location}
    return encode_point(Measurement.REPORT_DELIVERY, {"period": period_label}, fields, int(sent_at.timestamp() * 1000))
