"""The problem ledger (问题销号) as a fold over events."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sitepulse.agents.core.problems import LedgerInput, ProblemLedger, resolution_rates


def event(kind: str, project: str, day: date, *, leader="王伟", district="海曙区", problem_id=None, detail="") -> LedgerInput:
    at = datetime(day.year, day.month, day.day, 0, 15, tzinfo=timezone.utc)
    return LedgerInput(kind, project, at, day, detail or kind, leader, district, problem_id)


def test_a_stall_opens_a_problem_for_the_leader_and_resuming_closes_it():
    ledger = ProblemLedger()
    (opened,) = ledger.apply(event("stalled", "NB-1", date(2026, 3, 4)))
    assert opened.problem_id == "NB-1-20260304-stalled" and opened.is_open and opened.leader == "王伟"
    assert ledger.apply(event("stalled", "NB-1", date(2026, 3, 4))) == [], "found again: same problem"
    ledger.apply(event("suspicious", "NB-1", date(2026, 3, 5)))
    closed = ledger.apply(event("resumed", "NB-1", date(2026, 3, 9)))
    assert [p.problem_id for p in closed] == ["NB-1-20260304-stalled"]
    assert closed[0].closed_by == "auto" and "复工" in closed[0].note
    # A resumption does not settle a suspicion: that needs a check on site and a note.
    assert ledger.problems["NB-1-20260305-suspicious"].is_open


def test_a_problem_closed_by_hand_keeps_its_note_and_stays_closed():
    ledger = ProblemLedger()
    ledger.apply(event("suspicious", "NB-2", date(2026, 3, 5)))
    (closed,) = ledger.apply(event("problem_closed", "NB-2", date(2026, 3, 7), problem_id="NB-2-20260305-suspicious", detail="现场核查: 调试设备用电"))
    assert closed.closed_by == "manual" and closed.note == "现场核查: 调试设备用电"
    assert ledger.apply(event("suspicious", "NB-2", date(2026, 3, 5))) == [], "a replayed flag does not reopen it"
    assert ledger.apply(event("problem_closed", "NB-2", date(2026, 3, 8), problem_id="NB-2-20260305-suspicious")) == []
    assert ledger.apply(event("problem_closed", "NB-2", date(2026, 3, 8), problem_id="no-such-problem")) == []


def test_resolution_rate_per_district_and_leader():
    ledger = ProblemLedger()
    for n, (district, leader) in enumerate([("海曙区", "王伟"), ("海曙区", "王伟"), ("江北区", "李娜"), ("江北区", "李娜")]):
        ledger.apply(event("stalled", f"P{n}", date(2026, 3, 2), district=district, leader=leader))
    for n in (0, 1, 2):
        ledger.apply(event("resumed", f"P{n}", date(2026, 3, 6)))
    rates = {r.group: r for r in resolution_rates(ledger.problems.values(), "district")}
    assert rates["海曙区"].rate == 1.0 and (rates["江北区"].opened, rates["江北区"].closed) == (2, 1)
    by_leader = {r.group: r.rate for r in resolution_rates(ledger.problems.values(), "leader")}
    assert by_leader == {"王伟": 1.0, "李娜": 0.5}
    assert resolution_rates(ledger.problems.values(), "district", first=date(2026, 3, 3)) == []
