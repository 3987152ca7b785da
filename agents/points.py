"""Records and indicators as InfluxDB points. Series + timestamp are a pure function of
the input, so writing the same input twice overwrites instead of duplicating."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from ..streams.contract import InvestmentReport, Measurement, PowerReading, RegistryEntry
from .core.daily import DailyEnergy, day_start, epoch_ms
from .core.indicators import DayIndicators
from .lineprotocol import encode_point


def reading_point(reading: PowerReading) -> str:
    return encode_point(
        Measurement.POWER_READING,
        {Measurement.TAG_PROJECT: reading.project_id, Measurement.TAG_METER: reading.meter_id},
        {
            "kwh": float(reading.kwh),
            "interval_s": reading.interval_s,
            "kwh_total": _float_or_none(reading.kwh_total),
            "kw": _float_or_none(reading.kw),
        },
        epoch_ms(reading.ts),
    )


def daily_point(energy: DailyEnergy, tz: ZoneInfo) -> str:
    """Stamped at local midnight; ``date`` spells the local day out for readers."""
    return encode_point(
        Measurement.POWER_DAILY,
        {Measurement.TAG_PROJECT: energy.project_id},
        {
            "kwh": energy.kwh,
            "readings": energy.readings,
            "meters": energy.meters,
            "max_gap_s": energy.max_gap_s,
            "interval_s": energy.interval_s,
            "flat_load": energy.flat_load,
            "date": energy.day.isoformat(),
        },
        epoch_ms(day_start(energy.day, tz)),
    )


def indicator_point(day: DayIndicators, tz: ZoneInfo) -> str:
    """The day's indicators, on the same point as its energy (InfluxDB merges the fields).
    ``activity_index`` is left out where it is undefined (offline day, no baseline)."""
    return encode_point(
        Measurement.POWER_DAILY,
        {Measurement.TAG_PROJECT: day.project_id},
        {
            "baseline_kwh": day.baseline_kwh,
            "activity_index": day.activity_index,
            "state": day.label.value,
            "machine_state": day.machine.state.value,
            "idle_run": day.machine.idle_run,
            "busy_run": day.machine.busy_run,
            "stable": day.stable,
            "suspicious": day.suspicious,
            "offline": day.offline,
            "working_day": day.working_day,
            "date": day.day.isoformat(),
        },
        epoch_ms(day_start(day.day, tz)),
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


def project_point(entry: RegistryEntry, ts_ms: int) -> str:
    """The registry row, without the leader's phone number (boards show this data)."""
    return encode_point(
        Measurement.PROJECT,
        {Measurement.TAG_PROJECT: entry.project_id},
        {
            "project_name": entry.name,
            "district": entry.district,
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
        },
        ts_ms,
    )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)
