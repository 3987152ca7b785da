"""Plan completion, start rate, rankings and 金蜗牛 on hand-made projects, checked against
the figures the seed articles quote and against what a supervisor would work out."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sitepulse.agents.core.calendar import Stoppage
from sitepulse.agents.core.indicators import STARTED_ABOVE, DayLabel, State
from sitepulse.agents.core.periods import PeriodError, half_month_of, parse_period
from sitepulse.agents.core.project import JudgedDay, JudgedDays, JudgedStates, MonthReport, Profile, ProjectFacts
from sitepulse.agents.core.ranking import flat_investment, investment_without_power, month_activity, rank_units
from sitepulse.agents.core.starts import start_rate, starts_by

STARTED = JudgedDay(DayLabel.STARTED, State.STARTED, True, 1.0)
STALLED = JudgedDay(DayLabel.STALLED, State.STALLED, True, 0.05)


def project(pid: str, district: str = "海曙区", *, kind: str = "continuing", plan: float = 1000.0, planned_start=date(2025, 1, 1), zone="前湾新区", level="city") -> ProjectFacts:
    return ProjectFacts(Profile(pid, district, zone, "市发改委", level, kind, plan, planned_start))


def fill(fact: ProjectFacts, first: date, last: date, judged: JudgedDay) -> ProjectFacts:
    day = first
    while day <= last:
        fact.days[day] = judged
        day += timedelta(days=1)
    return fact


def test_periods_half_month_month_and_range():
    assert parse_period("2026-03-H1").days[0] == date(2026, 3, 1) and parse_period("2026-03-H1").last == date(2026, 3, 15)
    assert parse_period("2026-02-H2").last == date(2026, 2, 28)
    assert parse_period("2026-03-H1").previous().label == "2026-02-H2"
    assert parse_period("2026-01-H1").previous().label == "2025-12-H2"
    assert parse_period("2026-03").previous().label == "2026-02"
    custom = parse_period("2026-03-01..2026-03-10")
    assert (custom.previous().first, custom.previous().last) == (date(2026, 2, 19), date(2026, 2, 28))
    assert half_month_of(date(2026, 3, 16)).label == "2026-03-H2"
    for bad in ("2026-13-H1", "2026-03-H3", "March", "2026-03-10..2026-03-01"):
        with pytest.raises(PeriodError):
            parse_period(bad)


def three_districts(period_first: date, period_last: date) -> list[ProjectFacts]:
    """A works well, B stalls from March 8, C stalls all the time."""
    facts = []
    for district, stalled_from in (("A区", None), ("B区", date(2026, 3, 8)), ("C区", period_first)):
        for n in range(2):
            fact = project(f"{district}{n}", district, plan=1200.0)
            fact.investment["2026-01"] = MonthReport(100.0, date(2026, 2, 3))
            fill(fact, period_first, period_last, STARTED)
            if stalled_from is not None:
                fill(fact, stalled_from, period_last, STALLED)
            facts.append(fact)
    return facts


def test_ranking_orders_units_by_score_and_marks_the_snail_only_after_two_periods_at_the_bottom():
    h1 = parse_period("2026-03-H1")
    facts = three_districts(date(2026, 2, 16), date(2026, 3, 15))
    rows = {r.unit: r for r in rank_units(facts, h1, "district")}
    assert [rows[u].rank for u in ("A区", "B区", "C区")] == [1, 2, 3]
    assert rows["A区"].stalled_share == 0 and rows["C区"].stalled_share == 1
    assert rows["C区"].golden_snail and not rows["B区"].golden_snail
    # In the period before, C was not at the bottom (nobody stalled): no snail yet.
    for fact in facts:
        fill(fact, date(2026, 2, 16), date(2026, 2, 28), STARTED)
    rows = {r.unit: r for r in rank_units(facts, h1, "district")}
    assert rows["C区"].rank == 3 and not rows["C区"].golden_snail


def test_bottom_n_is_configurable_and_a_single_unit_is_never_a_snail():
    h1 = parse_period("2026-03-H1")
    facts = three_districts(date(2026, 2, 16), date(2026, 3, 15))
    snails = {r.unit for r in rank_units(facts, h1, "district", bottom=2) if r.golden_snail}
    assert snails == {"C区"}, "B is in the bottom two now, but was level with A before"
    for fact in facts:
        if fact.profile.district == "B区":
            fill(fact, date(2026, 2, 25), date(2026, 2, 28), STALLED)
    snails = {r.unit for r in rank_units(facts, h1, "district", bottom=2) if r.golden_snail}
    assert snails == {"B区", "C区"}
    lone = [f for f in facts if f.profile.district == "C区"]
    assert not any(r.golden_snail for r in rank_units(lone, h1, "district"))


def test_a_project_in_approved_stoppage_is_exempt_from_its_units_ranking():
    h1 = parse_period("2026-03-H1")
    facts = three_districts(date(2026, 2, 16), date(2026, 3, 15))
    for fact in facts:
        if fact.profile.district == "C区":
            fact.stoppages.append(Stoppage(fact.profile.project_id, date(2026, 2, 20), date(2026, 3, 31), "防汛停工令"))
    rows = {r.unit: r for r in rank_units(facts, h1, "district")}
    assert rows["C区"].exempt == 2 and rows["C区"].score is None and rows["C区"].rank is None
    assert not rows["C区"].golden_snail
    assert rows["B区"].rank == 2 and not rows["B区"].golden_snail, "two ranked units: B is last but needs two periods"


def test_score_uses_completion_against_time_elapsed_of_the_months_covered():
    h1 = parse_period("2026-03-H1")
    on_time, behind = project("A1", "甲区", plan=3650.0), project("B1", "乙区", plan=3650.0)
    # January and February are reported (59 days of 365): exactly on time is 5.9 % of the plan.
    on_time.investment.update({"2026-01": MonthReport(310.0, date(2026, 2, 3)), "2026-02": MonthReport(280.0, date(2026, 3, 3))})
    behind.investment.update({"2026-01": MonthReport(155.0, date(2026, 2, 3)), "2026-02": MonthReport(140.0, date(2026, 3, 3))})
    rows = {r.unit: r for r in rank_units([on_time, behind], h1, "district")}
    assert rows["甲区"].completion_pct == pytest.approx(590 / 36.5)
    # On time against January–February scores the full completion weight (not 16 % of
    # it, as against the year elapsed to March 15 would); both continuing projects have
    # started; no judged day, so no stalled share.
    assert rows["甲区"].score == pytest.approx(100 * (0.4 * 1.0 + 0.3 * 1.0) / 0.7)
    assert rows["乙区"].score == pytest.approx(100 * (0.4 * 0.5 + 0.3 * 1.0) / 0.7)
    assert rows["甲区"].rank == 1 and rows["乙区"].rank == 2


def test_investment_reported_for_a_month_of_idle_power_is_suspicious():
    idle = JudgedDay(DayLabel.STARTED, State.STARTED, True, 0.1)
    fact = fill(project("P"), date(2026, 3, 1), date(2026, 3, 31), idle)
    fact.investment["2026-03"] = MonthReport(500.0, date(2026, 4, 3))
    assert investment_without_power(fact, "2026-03")
    fact.days[date(2026, 3, 20)] = STARTED
    assert not investment_without_power(fact, "2026-03")
    quiet = fill(project("Q"), date(2026, 3, 1), date(2026, 3, 3), idle)
    quiet.investment["2026-03"] = MonthReport(500.0, date(2026, 4, 3))
    assert not investment_without_power(quiet, "2026-03"), "three judged days are too few to say"
    nothing = fill(project("R"), date(2026, 3, 1), date(2026, 3, 31), idle)
    nothing.investment["2026-03"] = MonthReport(0.0, date(2026, 4, 3))
    assert not investment_without_power(nothing, "2026-03")


_JUDGED_DAYS = st.builds(
    JudgedDay,
    st.sampled_from(list(DayLabel)),
    st.sampled_from(list(State)),
    st.booleans(),
    st.none() | st.floats(0, 5),
    st.floats(0, 1e6),
    st.none() | st.floats(0, 1e6),
    st.booleans(),
)


@given(st.lists(st.tuples(st.dates(date(2025, 1, 1), date(2027, 12, 31)), _JUDGED_DAYS), max_size=60))
def test_packed_judged_days_hold_what_a_dict_of_days_would(writes):
    # The review holds every project's days packed; it must answer exactly as the plain
    # dict it replaced: a day written again replaces itself, days come back in day order.
    packed, reference = JudgedDays(), {}
    for day, judged in writes:
        packed[day] = judged
        reference[day] = judged
        assert packed[day] == judged
    assert list(packed) == sorted(reference)
    assert dict(packed.items()) == reference and len(packed) == len(reference)
    assert packed.get(date(2024, 12, 31)) is None and date(2024, 12, 31) not in packed


def _side(index: float | None) -> float | None:
    return None if index is None else JudgedStates.IDLE_INDEX if index <= STARTED_ABOVE else JudgedStates.WORKING_INDEX


@given(st.lists(st.tuples(st.dates(date(2025, 1, 1), date(2027, 12, 31)), _JUDGED_DAYS), max_size=60))
def test_judged_states_keep_what_rankings_read(writes):
    packed, reference = JudgedStates(), {}
    for day, judged in writes:
        packed[day] = judged
        reference[day] = JudgedDay(judged.label, judged.machine_state, judged.working_day, _side(judged.activity_index))
        assert packed[day] == reference[day]
    assert dict(packed.items()) == reference and len(packed) == len(reference) and list(packed) == sorted(reference)
    assert packed.get(date(2024, 12, 31)) is None and date(2028, 1, 1) not in packed


def test_judged_states_keep_the_side_of_the_started_threshold():
    idle, working = JudgedStates.IDLE_INDEX, JudgedStates.WORKING_INDEX
    for index, side in [(None, None), (0.0, idle), (STARTED_ABOVE, idle), (STARTED_ABOVE + 1e-9, working), (4.0, working)]:
        days = JudgedStates()
        days[date(2026, 3, 2)] = replace(STARTED, activity_index=index)
        assert days[date(2026, 3, 2)].activity_index == side, index


_AT_THRESHOLD_ALL_MARCH = [(date(2026, 3, d), STARTED, STARTED_ABOVE) for d in range(2, 10)]


_NEAR_THRESHOLD = st.none() | st.sampled_from([0.0, STARTED_ABOVE - 1e-9, STARTED_ABOVE, STARTED_ABOVE + 1e-9, 1.0]) | st.floats(0, 5)


@given(
    st.lists(st.tuples(st.dates(date(2026, 2, 20), date(2026, 4, 10)), _JUDGED_DAYS, _NEAR_THRESHOLD), max_size=50),
    st.sampled_from([date(2026, 2, 27), date(2026, 3, 15), date(2026, 3, 31), date(2026, 4, 10)]),
)
@example(_AT_THRESHOLD_ALL_MARCH, date(2026, 3, 31))
def test_the_review_s_rules_read_the_same_from_judged_states(writes, as_of):
    """Rankings (start rate, stalled share), the idle-power and flat-investment months
    and start counts give the same answers from the review's one byte a day as from
    every figure of the day."""
    full = project("NB-0001", planned_start=date(2026, 3, 1))
    states = project("NB-0001", planned_start=date(2026, 3, 1))
    states.days = JudgedStates()
    for fact in (full, states):
        fact.investment = {"2026-03": MonthReport(120.0, date(2026, 4, 5))}
    for day, judged, index in writes:
        full.days[day] = states.days[day] = replace(judged, activity_index=index)
    period = half_month_of(date(2026, 3, 20))
    assert investment_without_power(states, "2026-03") == investment_without_power(full, "2026-03")
    assert month_activity(states, "2026-03") == month_activity(full, "2026-03")
    assert flat_investment(states, "2026-03", 1) == flat_investment(full, "2026-03", 1)
    assert states.judged_working_days(period) == full.judged_working_days(period)
    assert states.has_started_by(as_of) == full.has_started_by(as_of) and states.state_on(as_of) == full.state_on(as_of)
    assert start_rate([states], as_of) == start_rate([full], as_of)
    assert starts_by([states], as_of, ["city"]) == starts_by([full], as_of, ["city"])
