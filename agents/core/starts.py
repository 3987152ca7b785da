"""开工: who has started, is working now, has stopped, and has come back, as of a date.
开工率 is cumulative (Ganzhou: "44个项目已开工41个" counts every project that has
started, stalled on the day or not); 在建, 停工 and 复工 are figures of their own.
Definitions: docs/indicators.md."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from .calendar import is_spring_festival
from .indicators import STARTED_ABOVE, DayLabel, State
from .project import ProjectFacts

RESUMED_WITHIN_DAYS = 31  # 复工 is news for a month; after that the site is simply 在建


@dataclass(frozen=True, slots=True)
class Starts:
    unit_type: str
    unit: str
    projects: int
    due: int  # due to have started: continuing, or new with planned_start on or before the day (or started early)
    started: int  # started ever, by the day
    active: int  # 在建: working on the day (the state machine is started)
    stalled: int  # 停工: stalled on the day
    resumed: int  # 复工: back at work within RESUMED_WITHIN_DAYS after a stall, an approved stoppage or the Spring Festival

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


def due_and_started(fact: ProjectFacts, as_of: date) -> tuple[bool, bool]:
    """A continuing project (续建) began before this year: due and started whatever its
    power says today. A new one is due from its planned start (or from starting early)
    and started once its power first said it works."""
    profile = fact.profile
    continuing = profile.kind != "new"
    started = continuing or fact.has_started_by(as_of)
    return continuing or profile.planned_start <= as_of or started, started


def project_start(fact: ProjectFacts, as_of: date) -> ProjectStart:
    due, started = due_and_started(fact, as_of)
    state = fact.state_on(as_of)
    active = state == State.STARTED
    return ProjectStart(due, started, active, state == State.STALLED, active and came_back(fact, as_of))


def came_back(fact: ProjectFacts, as_of: date) -> bool:
    """Back at work within RESUMED_WITHIN_DAYS before ``as_of`` after a halt of a site
    that had been working: a stall, an approved stoppage, or the Spring Festival spent
    idle (State Grid's 复工 after the festival). A project that first starts after the
    festival has not come back, it has started; one that came back in March is no
    longer 复工 in November, it is 在建."""
    since = as_of - timedelta(days=RESUMED_WITHIN_DAYS)
    worked = halted = False
    back_on: date | None = None
    for day, judged in fact.days.items():
        if day > as_of:
            break
        idle = judged.activity_index is None or judged.activity_index <= STARTED_ABOVE
        stopped = judged.label == DayLabel.STOPPAGE or any(s.covers(day) for s in fact.stoppages)
        if worked and (judged.machine_state == State.STALLED or stopped or (is_spring_festival(day) and idle)):
            halted, back_on = True, None
        elif judged.working_day and judged.label == DayLabel.STARTED and not idle:
            if halted and back_on is None:
                back_on = day
            worked = True
    return back_on is not None and back_on >= since


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


def start_rate(facts: Iterable[ProjectFacts], as_of: date) -> float | None:
    """开工率 of the given projects on ``as_of`` (what the ranking needs, without the day's
    states)."""
    due = started = 0
    for fact in facts:
        is_due, has_started = due_and_started(fact, as_of)
        due, started = due + is_due, started + has_started
    return started / due if due else None
