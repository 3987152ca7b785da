"""The problem ledger (难账, 问题销号). Problems are opened by the machine (a stall, a
suspicious flag, a plan node past its date) and by people (``problem open``: a category,
the department that must solve it, measures and a deadline). Only a person closes a
problem, with a note: when power returns, a stall's problem waits for that confirmation
(待销号) instead of closing itself, so 销号率 measures the work of the people the ledger
is for. A problem past its deadline is 逾期. The ledger is a fold over the event stream,
so it is rebuilt by replaying the events and gives the same answer every time."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from ...streams.contract import PROBLEM_CATEGORY_NAMES

OPENING_KINDS = ("stalled", "suspicious", "node_overdue")  # events that open a problem by themselves
CLOSED_BY_AUTO = "auto"  # closed by power returning: earlier versions did this, none now
CLOSED_BY_HAND = "manual"
# The categories people file under (the seeds' 难账), and those of machine-opened problems.

OPEN, AWAITING, OVERDUE, CLOSED = "open", "awaiting_confirmation", "overdue", "closed"
STATUSES = (OPEN, AWAITING, OVERDUE, CLOSED)
RATE_GROUPS = ("district", "department", "category", "leader")


@dataclass(frozen=True, slots=True)
class Problem:
    problem_id: str
    project_id: str
    kind: str  # the event kind that opened it ("problem_opened": filed by a person)
    opened_day: date
    opened_at: datetime
    detail: str
    leader: str | None = None
    district: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None  # CLOSED_BY_HAND (CLOSED_BY_AUTO in old ledgers)
    note: str = ""
    category: str = ""
    department: str | None = None  # who must solve it
    measures: str = ""
    due: date | None = None
    awaiting_since: datetime | None = None  # power returned: waiting for a person to close it
    owner_person: str | None = None
    overdue_since: date | None = None  # the day the review found it past its deadline
    reason: str | None = None  # suspicious: the rule that found it

    @property
    def status(self) -> str:
        """As stored: what the ledger knows now (the review marks a problem overdue)."""
        if not self.is_open:
            return CLOSED
        if self.overdue_since is not None:
            return OVERDUE
        return AWAITING if self.awaiting_since is not None else OPEN

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def closed_by_person(self) -> bool:
        return self.closed_by == CLOSED_BY_HAND

    def closed_on_or_before(self, day: date) -> bool:
        """Closed on or before ``day`` (its local date): a report for a past period
        does not count later closures."""
        return self.closed_at is not None and self.closed_at.date() <= day

    def status_now(self, today: date) -> str:
        """What the ledger says now (``today``: the ledger's day): closed once anyone
        closed it, whatever the day; overdue past its deadline; awaiting confirmation once
        power returned. ``status_on`` is for a day in the past."""
        status = self.status
        if status in (OPEN, AWAITING) and self.due is not None and self.due < today:
            return OVERDUE
        return status

    def status_on(self, day: date) -> str:
        """closed, overdue (past its deadline, not closed), awaiting confirmation, or open."""
        if self.closed_on_or_before(day):
            return CLOSED
        if self.due is not None and self.due < day:
            return OVERDUE
        if self.awaiting_since is not None and self.awaiting_since.date() <= day:
            return AWAITING
        return OPEN


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
    problem_id: str | None = None  # problem_opened / problem_closed
    category: str | None = None
    department: str | None = None
    measures: str = ""
    due: date | None = None
    node: str | None = None
    owner_person: str | None = None
    reason: str | None = None  # suspicious: the rule that found it


def problem_id_for(project_id: str, kind: str, day: date, node: str | None = None, reason: str | None = None) -> str:
    """Readable and the same whenever the same change is found again; a node's problem
    carries a short digest of the node's name (two nodes may fall due on one day), a
    suspicion the rule that found it (two rules may find one day)."""
    suffix = f"-{hashlib.sha1(node.encode()).hexdigest()[:6]}" if node else ""
    suffix += f"-{reason}" if reason else ""
    return f"{project_id}-{day:%Y%m%d}-{kind}{suffix}"


def apply_event(problems: Mapping[str, Problem], event: LedgerInput) -> list[Problem]:
    """The problems an event opens or changes, given the project's known problems (by id).
    A problem closed once stays closed, even if the change that opened it is found again."""
    if event.kind in OPENING_KINDS and event.day is not None:
        problem_id = problem_id_for(event.project_id, event.kind, event.day, event.node, event.reason)
        if problem_id in problems:
            return []
        return [
            Problem(
                problem_id, event.project_id, event.kind, event.day, event.at, event.detail, event.leader, event.district,
                category=PROBLEM_CATEGORY_NAMES[event.kind], department=event.department, owner_person=event.owner_person,
                reason=event.reason,
            )
        ]
    if event.kind == "problem_opened" and event.problem_id and event.problem_id not in problems and event.day is not None:
        return [
            Problem(
                event.problem_id, event.project_id, event.kind, event.day, event.at, event.detail, event.leader, event.district,
                category=event.category or "其他", department=event.department, measures=event.measures, due=event.due,
                owner_person=event.owner_person,
            )
        ]
    if event.kind == "resumed":
        day = event.day.isoformat() if event.day else event.at.date().isoformat()
        return [
            replace(p, awaiting_since=event.at, note=f"项目已复工 ({day}), 待责任人确认销号")
            for p in problems.values()
            if p.is_open and p.kind == "stalled" and p.project_id == event.project_id and p.awaiting_since is None
        ]
    if event.kind == "problem_overdue" and event.problem_id in problems:
        problem = problems[event.problem_id]
        if problem.is_open and problem.overdue_since is None:
            return [replace(problem, overdue_since=event.day or event.at.date())]
        return []
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


def overdue_on(problems: Iterable[Problem], day: date) -> list[Problem]:
    """Problems still open past their deadline on ``day`` (the ledger's day)."""
    return [p for p in problems if p.is_open and p.due is not None and p.due < day]


@dataclass(frozen=True, slots=True)
class Resolution:
    group: str
    opened: int
    closed: int  # closed by a person

    @property
    def rate(self) -> float | None:
        return self.closed / self.opened if self.opened else None


def resolution_rates(
    problems: Iterable[Problem], by: str, first: date | None = None, last: date | None = None, as_of: date | None = None
) -> list[Resolution]:
    """销号率 per district, department, category or leader: of the problems opened in
    [first, last], the share closed (by ``as_of``, default: ever) — by a person: power
    coming back leaves a stall's problem open, awaiting confirmation. (Ledgers from
    before this rule hold stall problems closed automatically: closed then, they count.)"""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for problem in problems:
        if (first and problem.opened_day < first) or (last and problem.opened_day > last):
            continue
        row = counts[getattr(problem, by) or "未登记"]
        row[0] += 1
        row[1] += not problem.is_open and (as_of is None or problem.closed_on_or_before(as_of))
    return [Resolution(group, opened, closed) for group, (opened, closed) in sorted(counts.items())]
