"""开工: who has started, is working now, has stopped, and has come back, as of a date.
开工率 is cumulative (Ganzhou: "44个项目已开工41个" counts every project that has
started, stalled on the day or not); 在建, 停工 and 复工 are figures of their own.
Definitions: docs/indicators.md."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from .calendar import is_spring_festival
from .indicators import STARTED_ABOVE, DayLabel, State
from .project import ProjectFacts


@dataclass(frozen=True, slots=True)
class Starts:
    unit_type: str
    unit: str
    projects: int
    due: int  # due to have started: continuing, or new with planned_start on or before the day (or started early)
    started: int  # started ever, by the day
    active: int  # 在建: working on the day (the state machine is started)
    stalled: int  # 停工: stalled on the day
    resumed: int  # 复工: working on the day after a stall, an approved stoppage or the Spring Festival this year

    @property
    def rate(self) -> float | None:
        """开工率, a fraction 0–1."""
        return self.started / self.due if self.due else None


@dataclass(frozen=True, slots=True)
class ProjectStart:
    due: bool
    started: bool
    active: bool
    stalled: bool
    resumed: bool


def project_start(fact: ProjectFacts, as_of: date) -> ProjectStart:
    """A continuing project (续建) began before this year: due and started whatever its
    power says today. A new one is due from its planned start and started once its power
    first said it works."""
    profile = fact.profile
    continuing = profile.kind != "new"
    started = continuing or fact.has_started_by(as_of)
    due = continuing or profile.planned_start <= as_of or started
    state = fact.state_on(as_of)
    active = state == State.STARTED
    return ProjectStart(due, started, active, state == State.STALLED, active and came_back(fact, as_of))


def came_back(fact: ProjectFacts, as_of: date) -> bool:
    """Worked again, by ``as_of``, after a halt earlier in its year: a stall, an approved
    stoppage, or the Spring Festival spent idle (State Grid's 复工 after the festival)."""
    year_start = date(as_of.year, 1, 1)
    halted = back = False
    for day, judged in fact.days.items():
        if not year_start <= day <= as_of:
            continue
        idle = judged.activity_index is None or judged.activity_index <= STARTED_ABOVE
        stopped = judged.label == DayLabel.STOPPAGE or any(s.covers(day) for s in fact.stoppages)
        if judged.machine_state == State.STALLED or stopped or (is_spring_festival(day) and idle):
            halted, back = True, False
        elif halted and judged.working_day and judged.label == DayLabel.STARTED and not idle:
            back = True
    return back


def starts_by(facts: Iterable[ProjectFacts], as_of: date, unit_types: Sequence[str]) -> list[Starts]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for fact in facts:
        start = project_start(fact, as_of)
        values = (1, start.due, start.started, start.active, start.stalled, start.resumed)
        for unit_type in unit_types:
            row = counts[(unit_type, fact.profile.unit(unit_type))]
            for position, value in enumerate(values):
                row[position] += value
    return [
        Starts(unit_type, unit, *counts[(unit_type, unit)])
        for unit_type in unit_types
        for (row_type, unit) in sorted(counts)
        if row_type == unit_type
    ]


def start_rate(facts: Iterable[ProjectFacts], as_of: date) -> Starts:
    """The city's starts on ``as_of`` (a unit's, given its projects)."""
    rows = starts_by(facts, as_of, ["city"])
    return rows[0] if rows else Starts("city", "全市", 0, 0, 0, 0, 0, 0)
