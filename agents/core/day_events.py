"""The events a judged day or a meter raises, with the Chinese text supervisors read.

Pure: the judge calls these with what it holds; ids come from ``contract.event_id``, so
the same change found again (after a restart, a rebuild, a replay) has the same id.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import msgspec

from ...streams.contract import EVENT_KINDS, ProjectEvent, RegistryEntry, event_id
from .indicators import DayIndicators, Machine, State
from .offline import OfflineChange
from .suspicion import Reason, Suspicion

_TRANSITIONS = {
    (State.NOT_STARTED, State.STARTED): "started",
    (State.STARTED, State.STALLED): "stalled",
    (State.STALLED, State.STARTED): "resumed",
}


class HeldProject(msgspec.Struct, frozen=True, gc=False):
    """What a worker keeps of every registered project: what judging, events, alerts'
    tags and the capacity check use. Name, phone, coordinates and video stay in the
    stored registry and the registry file. Districts, leaders and data owners repeat
    across thousands of projects: one string each. (No cycles: gc=False spares the
    collector's header on 100k objects.)"""

    project_id: str
    district: str
    leader: str
    data_owner: str
    capacity_kva: float

    @classmethod
    def of(cls, entry: RegistryEntry) -> HeldProject:
        return cls(
            sys.intern(entry.project_id),
            sys.intern(entry.district),
            sys.intern(entry.leader),
            sys.intern(entry.data_owner),
            entry.capacity_kva,
        )


class DayEvents:
    """Builds the events of judged days and meters, told to the project's leader,
    district and data owner as registered."""

    def __init__(self, tz: ZoneInfo, registry: Mapping[str, HeldProject]) -> None:
        self.tz = tz
        self.registry = registry

    def of_day(self, day: DayIndicators, before: Machine, now_ms: int) -> list[ProjectEvent]:
        """A change of state on this day, and a suspicion run told on its first day
        (judged again when the run is found), under the same id whenever found again:
        one event, and one problem, per run."""
        events = []
        transition = _TRANSITIONS.get((before.state, day.machine.state))
        if transition:
            detail = f"{day.day.isoformat()} 用电 {day.kwh:.1f} kWh"
            if day.activity_index is not None:
                detail += f", 活跃指数 {day.activity_index:.2f}"
            events.append(self._event(transition, day.project_id, now_ms, day=day.day, detail=f"{EVENT_KINDS[transition]}: {detail}"))
        found = day.suspicion
        if found is not None and found.since == day.day:
            events.append(
                self._event(
                    "suspicious", day.project_id, now_ms, day=day.day, meter_id=found.meter_id or None, reason=found.reason.value,
                    detail=f"{EVENT_KINDS['suspicious']}: {suspicion_text(day, found)}",
                )
            )
        return events

    def of_meter(self, change: OfflineChange, now_ms: int) -> ProjectEvent:
        kind = "offline" if change.offline else "online"
        detail = f"{EVENT_KINDS[kind]}: 电表 {change.meter_id} 最后读数 {self.local(change.last_reading_ms):%Y-%m-%d %H:%M}"
        return self._event(kind, change.project_id, now_ms, meter_id=change.meter_id, detail=detail, since_ms=change.last_reading_ms)

    def meter_reset(self, project_id: str, meter_id: str, ts_ms: int, before: float, after: float) -> ProjectEvent:
        detail = f"{EVENT_KINDS['meter_reset']}: 电表 {meter_id} 于 {self.local(ts_ms):%Y-%m-%d %H:%M} 读数由 {before:.1f} 降至 {after:.1f} kWh"
        return self._event("meter_reset", project_id, ts_ms, meter_id=meter_id, detail=detail, since_ms=ts_ms)

    def _event(self, kind: str, project_id: str, now_ms: int, *, since_ms: int | None = None, **fields) -> ProjectEvent:
        entry = self.registry.get(project_id)
        anchor: date | int | None = fields.get("day") or since_ms
        return ProjectEvent(
            event_id=event_id(kind, project_id, fields.get("meter_id") or "", anchor, fields.get("reason")),
            kind=kind,
            project_id=project_id,
            at=self.local(now_ms),
            since=self.local(since_ms) if since_ms is not None else None,
            leader=entry.leader if entry else None,
            district=entry.district if entry else None,
            data_owner=entry.data_owner if entry else None,
            **fields,
        )

    def local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(self.tz)


def suspicion_text(day: DayIndicators, found: Suspicion) -> str:
    """Why a day is suspicious, for the supervisor who must check on site."""
    if found.reason == Reason.EXACT_FLAT:
        return f"{day.day.isoformat()} 电表每个时段读数完全相同 (全天 {day.kwh:.1f} kWh), 真实电表不会如此, 疑似数据造假, 请现场核实"
    if found.reason == Reason.COPIED:
        return f"电表 {found.meter_id} 在 {day.day.isoformat()} 的负荷曲线与 {found.copied_from.isoformat() if found.copied_from else '此前某日'} 几乎完全相同, 疑似重复上报读数, 请核实电表数据"
    usual = f", 本工地正常工作日约 {found.usual_cv:.2f}" if found.usual_cv is not None else ""
    variation = f"小时负荷变异系数 {found.load_cv:.3f}{usual}" if found.load_cv is not None else "负荷无昼夜变化"
    return f"自 {found.since.isoformat()} 起连续工作日负荷昼夜恒定 ({variation}), 疑似机器空转充当施工用电, 请现场核实"
