"""Problems filed by people (难账, 问题销号制): the project, a category, the department
that must solve it, the measures and a deadline. The problem is an event on the events
topic, so the ledger folds it like every other; the filing is audited."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import date, datetime

import msgspec

from ..runtime.settings import Settings
from .audit import publish_audited
from .contract import EVENT_KINDS, EVENTS_TOPIC, PROBLEM_CATEGORIES, ProjectEvent, RegistryEntry, event_id

# ASCII in problem ids, so they are easy to type in `problem close`.
CATEGORY_CODES = {"征迁": "zq", "审批": "sp", "资金": "zj", "要素保障": "ys", "施工组织": "sg", "其他": "qt"}


def filed_problem(entry: RegistryEntry, category: str, department: str, measures: str, due: date, detail: str, now: datetime) -> ProjectEvent:
    """The event that opens the problem, found at ``now``; ValueError (Chinese) when a
    field is wrong."""
    if category not in PROBLEM_CATEGORIES:
        raise ValueError(f"问题类别应为 {'、'.join(PROBLEM_CATEGORIES)} 之一, 实为「{category}」")
    if not department.strip():
        raise ValueError("责任部门(--department)不能为空")
    if not measures.strip():
        raise ValueError("整改措施(--measures)不能为空")
    if due < now.date():
        raise ValueError(f"限期 {due} 早于发现日期 {now.date()}")
    # Made once, when filed: two problems filed for a project in one second stay two.
    problem_id = f"{entry.project_id}-{now:%Y%m%d}-{CATEGORY_CODES[category]}-{secrets.token_hex(3)}"
    text = detail.strip() or measures.strip()
    return ProjectEvent(
        event_id=event_id("problem_opened", problem_id),
        kind="problem_opened",
        project_id=entry.project_id,
        at=now,
        day=now.date(),
        detail=f"{EVENT_KINDS['problem_opened']} ({category}): {text}",
        leader=entry.leader or None,
        district=entry.district or None,
        problem_id=problem_id,
        category=category,
        department=department.strip(),
        measures=measures.strip(),
        due=due,
        owner_person=entry.owner_person or None,
    )


def publish_filed_problem(settings: Settings, event: ProjectEvent, reason: str) -> None:
    subject = f"{event.problem_id} ({event.category}, 责任部门 {event.department}, 限期 {event.due})"
    publish_ledger_events(settings, [event], "problem_open", subject, reason)


def publish_ledger_events(settings: Settings, events: Iterable[ProjectEvent], action: str, subject: str, reason: str) -> None:
    """Problems filed or closed by people, keyed by project like every event."""
    publish_audited(settings, EVENTS_TOPIC, ((e.project_id.encode(), msgspec.json.encode(e)) for e in events), action, subject, reason)


def closing_event(problem_id: str, project_id: str, note: str, at: datetime, leader: str | None, district: str | None) -> ProjectEvent:
    """A person closes a problem (销号) with a note saying how it was resolved."""
    return ProjectEvent(
        event_id=event_id("problem_closed", problem_id),
        kind="problem_closed",
        project_id=project_id,
        at=at,
        detail=note,
        leader=leader,
        district=district,
        problem_id=problem_id,
    )
