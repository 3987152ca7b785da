"""细账: a project's plan nodes (开工, 主体结构封顶, 竣工, 投产 or any name, "节点细化到每季每月
每天") against the day: each node done, on schedule or behind by N days; a project is
进度顺利 while no node is behind. Definitions: docs/indicators.md."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

DONE, ON_SCHEDULE, BEHIND = "done", "on_schedule", "behind"


@dataclass(frozen=True, slots=True)
class PlanNode:
    project_id: str
    node: str
    planned_date: date
    done_date: date | None = None

    def status_on(self, day: date) -> str:
        """Done by the end of ``day``; behind once its planned day has passed undone."""
        if self.done_date is not None and self.done_date <= day:
            return DONE
        return BEHIND if self.planned_date < day else ON_SCHEDULE

    def days_behind(self, day: date) -> int:
        """How late: a node done late keeps how late it was done; one still open counts
        the days since its planned day; on time is 0."""
        status = self.status_on(day)
        if status == DONE:
            return max(0, (self.done_date - self.planned_date).days)  # type: ignore[operator]
        return (day - self.planned_date).days if status == BEHIND else 0

    @property
    def first_overdue_day(self) -> date:
        return self.planned_date + timedelta(days=1)

    def was_overdue_by(self, day: date) -> bool:
        """Past its planned day without being done, at some day up to ``day``: still
        undone, or done late. The same answer whenever it is asked after the fact."""
        return self.planned_date < day and (self.done_date is None or self.done_date > self.planned_date)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A project's standing on a day: the node furthest behind (None: none is)."""

    project_id: str
    nodes: int
    days_behind: int
    node: str | None

    @property
    def behind(self) -> bool:
        return self.days_behind > 0


def schedule_of(project_id: str, nodes: Sequence[PlanNode], day: date) -> Schedule:
    behind = [(n.days_behind(day), n.planned_date, n.node) for n in nodes if n.status_on(day) == BEHIND]
    if not behind:
        return Schedule(project_id, len(nodes), 0, None)
    days, _, node = max(behind, key=lambda b: (b[0], -b[1].toordinal()))
    return Schedule(project_id, len(nodes), days, node)


@dataclass(frozen=True, slots=True)
class OnSchedule:
    """进度顺利 of a unit: its projects with plan nodes, and those with none behind."""

    unit_type: str
    unit: str
    with_nodes: int
    on_schedule: int

    @property
    def share(self) -> float | None:
        return self.on_schedule / self.with_nodes if self.with_nodes else None


def on_schedule_by(units: Iterable[tuple[str, Sequence[PlanNode]]], unit_type: str, day: date) -> list[OnSchedule]:
    """``units``: (the project's unit of ``unit_type``, its nodes) per project. Projects
    without nodes are left out: nobody can say they are on schedule."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for unit, nodes in units:
        if not nodes:
            continue
        row = counts[unit]
        row[0] += 1
        row[1] += not schedule_of("", nodes, day).behind
    return [OnSchedule(unit_type, unit, n, ok) for unit, (n, ok) in sorted(counts.items())]
