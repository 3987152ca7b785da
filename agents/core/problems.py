"""The problem ledger (问题销号): a stall or a suspicious flag opens a problem for the
project's leader; a stall's problem closes itself when the project resumes; any problem
can be closed by hand with a note. The ledger is a fold over the event stream, so it
is rebuilt by replaying the events and gives the same answer every time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

OPENING_KINDS = ("stalled", "suspicious")
CLOSED_BY_AUTO = "auto"
CLOSED_BY_HAND = "manual"


@dataclass(frozen=True, slots=True)
class Problem:
    problem_id: str
    project_id: str
    kind: str  # the event kind that opened it
    opened_day: date
    opened_at: datetime
    detail: str
    leader: str | None = None
    district: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None  # CLOSED_BY_AUTO or CLOSED_BY_HAND
    note: str = ""

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def closed_on_or_before(self, day: date) -> bool:
        """Closed on or before ``day`` (its local date): a report for a past period
        does not count later closures."""
        return self.closed_at is not None and self.closed_at.date() <= day


@dataclass(frozen=True, slots=True)
class LedgerInput:
    """What the ledger needs of an event (``ProjectEvent`` carries all of it)."""

    kind: str
    project_id: str
    at: datetime
    day: date | None
    detail: str
    leader: str | None
    district: str | None
    problem_id: str | None = None  # for a hand closure


def problem_id_for(project_id: str, kind: str, day: date) -> str:
    """Readable and the same whenever the same change is found again."""
    return f"{project_id}-{day:%Y%m%d}-{kind}"


def apply_event(problems: Mapping[str, Problem], event: LedgerInput) -> list[Problem]:
    """The problems an event opens or closes, given the project's known problems (by id).
    A problem closed once stays closed, even if the change that opened it is found again."""
    if event.kind in OPENING_KINDS and event.day is not None:
        problem_id = problem_id_for(event.project_id, event.kind, event.day)
        if problem_id in problems:
            return []
        return [
            Problem(problem_id, event.project_id, event.kind, event.day, event.at, event.detail, event.leader, event.district)
        ]
    if event.kind == "resumed":
        note = f"项目已复工 ({event.day.isoformat() if event.day else event.at.date().isoformat()})"
        return [
            replace(p, closed_at=event.at, closed_by=CLOSED_BY_AUTO, note=note)
            for p in problems.values()
            if p.is_open and p.kind == "stalled" and p.project_id == event.project_id
        ]
    if event.kind == "problem_closed" and event.problem_id in problems:
        problem = problems[event.problem_id]
        if problem.is_open:
            return [replace(problem, closed_at=event.at, closed_by=CLOSED_BY_HAND, note=event.detail)]
    return []


class ProblemLedger:
    """Problems by id, folded from events in order."""

    def __init__(self, problems: Iterable[Problem] = ()) -> None:
        self.problems: dict[str, Problem] = {p.problem_id: p for p in problems}

    def apply(self, event: LedgerInput) -> list[Problem]:
        changed = apply_event(self.problems, event)
        for problem in changed:
            self.problems[problem.problem_id] = problem
        return changed


@dataclass(frozen=True, slots=True)
class Resolution:
    group: str
    opened: int
    closed: int

    @property
    def rate(self) -> float | None:
        return self.closed / self.opened if self.opened else None


def resolution_rates(problems: Iterable[Problem], by: str, first: date | None = None, last: date | None = None) -> list[Resolution]:
    """Share of problems closed, per district or leader, of those opened in [first, last]."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for problem in problems:
        if (first and problem.opened_day < first) or (last and problem.opened_day > last):
            continue
        row = counts[getattr(problem, by) or "未登记"]
        row[0] += 1
        row[1] += not problem.is_open
    return [Resolution(group, opened, closed) for group, (opened, closed) in sorted(counts.items())]
