"""The problem ledger (难账, 问题销号) as a fold over events: problems the machine opens
and problems people file; only a person closes one; deadlines make a problem 逾期."""

from __future__ import annotations

from datetime import date, datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from sitepulse.agents.core.problems import AWAITING, CLOSED, OPEN, OVERDUE, LedgerInput, ProblemLedger, overdue_on, resolution_rates


def event(kind: str, project: str, day: date, *, leader="王伟", district="海曙区", problem_id=None, detail="", **fields) -> LedgerInput:
    at = datetime(day.year, day.month, day.day, 0, 15, tzinfo=timezone.utc)
    return LedgerInput(kind, project, at, day, detail or kind, leader, district, problem_id, **fields)


def filed(project: str, day: date, problem_id: str, *, due: date, category="征迁", department="市住建局", district="海曙区", leader="王伟") -> LedgerInput:
    return event("problem_opened", project, day, problem_id=problem_id, category=category, department=department,
                 measures="约谈征迁主体, 倒排时间表", due=due, district=district, leader=leader, detail="征迁滞后影响进场")


def test_a_stall_opens_a_problem_that_power_returning_only_sets_awaiting_confirmation():
    ledger = ProblemLedger()
    (opened,) = ledger.apply(event("stalled", "NB-1", date(2026, 3, 4)))
    assert opened.problem_id == "NB-1-20260304-stalled" and opened.is_open and opened.leader == "王伟" and opened.category == "停工"
    assert ledger.apply(event("stalled", "NB-1", date(2026, 3, 4))) == [], "found again: same problem"
    ledger.apply(event("suspicious", "NB-1", date(2026, 3, 5)))
    (waiting,) = ledger.apply(event("resumed", "NB-1", date(2026, 3, 9)))
    assert waiting.is_open and waiting.status == AWAITING and waiting.status_on(date(2026, 3, 9)) == AWAITING and "待责任人确认销号" in waiting.note
    assert waiting.status_on(date(2026, 3, 8)) == OPEN, "before power came back it was plainly open"
    assert ledger.apply(event("resumed", "NB-1", date(2026, 3, 10))) == [], "a second resumption changes nothing"
    # Still open, so 销号率 does not count it until a person closes it.
    assert resolution_rates(ledger.problems.values(), "district")[0].closed == 0
    (closed,) = ledger.apply(event("problem_closed", "NB-1", date(2026, 3, 11), problem_id="NB-1-20260304-stalled", detail="现场核实已复工"))
    assert closed.status == CLOSED and closed.closed_by_person
    assert ledger.problems["NB-1-20260305-suspicious"].is_open, "a resumption does not settle a suspicion"


def test_a_problem_closed_by_hand_keeps_its_note_and_stays_closed():
    ledger = ProblemLedger()
    ledger.apply(event("suspicious", "NB-2", date(2026, 3, 5)))
    (closed,) = ledger.apply(event("problem_closed", "NB-2", date(2026, 3, 7), problem_id="NB-2-20260305-suspicious", detail="现场核查: 调试设备用电"))
    assert closed.closed_by == "manual" and closed.note == "现场核查: 调试设备用电"
    assert ledger.apply(event("suspicious", "NB-2", date(2026, 3, 5))) == [], "a replayed flag does not reopen it"
    assert ledger.apply(event("problem_closed", "NB-2", date(2026, 3, 8), problem_id="NB-2-20260305-suspicious")) == []
    assert ledger.apply(event("problem_closed", "NB-2", date(2026, 3, 8), problem_id="no-such-problem")) == []


def test_a_filed_problem_carries_who_must_solve_it_and_goes_overdue_after_its_deadline():
    ledger = ProblemLedger()
    (problem,) = ledger.apply(filed("NB-3", date(2026, 3, 2), "NB-3-20260302-征迁-1", due=date(2026, 3, 20)))
    assert (problem.category, problem.department, problem.due, problem.status) == ("征迁", "市住建局", date(2026, 3, 20), OPEN)
    assert ledger.apply(filed("NB-3", date(2026, 3, 2), "NB-3-20260302-征迁-1", due=date(2026, 4, 1))) == [], "filed twice: one problem"
    assert problem.status_on(date(2026, 3, 20)) == OPEN and problem.status_on(date(2026, 3, 21)) == OVERDUE
    assert overdue_on(ledger.problems.values(), date(2026, 3, 21)) == [problem]
    (marked,) = ledger.apply(event("problem_overdue", "NB-3", date(2026, 3, 21), problem_id=problem.problem_id))
    assert marked.status == OVERDUE and marked.overdue_since == date(2026, 3, 21)
    assert ledger.apply(event("problem_overdue", "NB-3", date(2026, 3, 22), problem_id=problem.problem_id)) == []
    (closed,) = ledger.apply(event("problem_closed", "NB-3", date(2026, 3, 25), problem_id=problem.problem_id, detail="已完成征迁"))
    assert closed.status == CLOSED and closed.status_on(date(2026, 3, 24)) == OVERDUE
    assert overdue_on(ledger.problems.values(), date(2026, 3, 26)) == []


def test_a_node_past_its_date_opens_one_problem_per_node():
    ledger = ProblemLedger()
    first = ledger.apply(event("node_overdue", "NB-4", date(2026, 3, 31), node="主体结构封顶"))
    second = ledger.apply(event("node_overdue", "NB-4", date(2026, 3, 31), node="竣工"))
    assert len(first) == len(second) == 1 and first[0].problem_id != second[0].problem_id and first[0].category == "节点逾期"


def test_80_5_percent_closed_by_people_62_of_77():
    # Yinzhou: "目前已协调解决问题62个, 问题解决率达80.5%" (seed 000).
    ledger = ProblemLedger()
    for n in range(77):
        district = "鄞州区" if n < 70 else "海曙区"
        ledger.apply(filed(f"P{n}", date(2017, 6, 1), f"P{n}-1", due=date(2017, 9, 1), category=("征迁", "审批", "资金")[n % 3], district=district))
    for n in range(62):
        ledger.apply(event("problem_closed", f"P{n}", date(2017, 8, 1), problem_id=f"P{n}-1", detail="已解决"))
    (everyone,) = resolution_rates(ledger.problems.values(), "department")
    assert (everyone.group, everyone.opened, everyone.closed) == ("市住建局", 77, 62) and round(100 * everyone.rate, 1) == 80.5
    by_category = {r.group: (r.opened, r.closed) for r in resolution_rates(ledger.problems.values(), "category")}
    assert sum(o for o, _ in by_category.values()) == 77 and set(by_category) == {"征迁", "审批", "资金"}
    assert resolution_rates(ledger.problems.values(), "district", as_of=date(2017, 7, 31))[0].closed == 0, "closed later"
    assert resolution_rates(ledger.problems.values(), "district", first=date(2017, 6, 2)) == []


@given(st.lists(st.sampled_from(["stalled", "resumed", "suspicious", "problem_closed", "problem_overdue"]), max_size=30))
def test_only_a_person_ever_closes_a_problem(kinds):
    ledger = ProblemLedger()
    for n, kind in enumerate(kinds):
        day = date(2026, 3, 1 + n % 28)
        target = next(iter(ledger.problems), None) if kind in ("problem_closed", "problem_overdue") else None
        ledger.apply(event(kind, "NB-9", day, problem_id=target))
    for problem in ledger.problems.values():
        assert problem.is_open or problem.closed_by_person
