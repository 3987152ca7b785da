"""细账: plan nodes against the day, as a supervisor reads the 一图五表."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from sitepulse.agents.core.bulletin_figures import on_schedule_shares, slow_projects
from sitepulse.agents.core.nodes import BEHIND, DONE, ON_SCHEDULE, PlanNode, on_schedule_by, schedule_of
from tests.unit.test_ranking import STALLED, STARTED, fill, project

TOPPING = date(2026, 3, 31)


def test_a_node_is_on_schedule_until_its_day_has_passed_then_behind_until_done():
    node = PlanNode("P1", "主体结构封顶", TOPPING)
    assert node.status_on(TOPPING) == ON_SCHEDULE and node.days_behind(TOPPING) == 0
    assert node.status_on(date(2026, 4, 3)) == BEHIND and node.days_behind(date(2026, 4, 3)) == 3
    late = PlanNode("P1", "主体结构封顶", TOPPING, date(2026, 4, 6))
    assert late.status_on(date(2026, 4, 5)) == BEHIND, "done after the day asked about: not done yet then"
    assert (late.status_on(date(2026, 4, 10)), late.days_behind(date(2026, 4, 10))) == (DONE, 6)
    early = PlanNode("P1", "竣工", TOPPING, date(2026, 3, 20))
    assert (early.status_on(date(2026, 3, 25)), early.days_behind(date(2026, 3, 25))) == (DONE, 0)
    assert not early.was_overdue_by(date(2026, 5, 1)) and late.was_overdue_by(date(2026, 4, 10)) and node.was_overdue_by(date(2026, 4, 1))
    assert not node.was_overdue_by(TOPPING)


def test_a_project_is_behind_by_its_node_furthest_behind_and_done_late_is_on_schedule_now():
    nodes = [PlanNode("P1", "开工", date(2026, 2, 1), date(2026, 2, 9)), PlanNode("P1", "主体结构封顶", TOPPING), PlanNode("P1", "桩基完成", date(2026, 3, 20))]
    schedule = schedule_of("P1", nodes, date(2026, 4, 4))
    assert (schedule.behind, schedule.days_behind, schedule.node) == (True, 15, "桩基完成")
    assert not schedule_of("P1", nodes[:1], date(2026, 4, 4)).behind, "done late is done"
    assert not schedule_of("P1", [], date(2026, 4, 4)).behind, "no plan, nothing behind"


def test_83_percent_on_schedule_counts_only_projects_with_nodes():
    # Yinzhou: "区级83%的项目进度顺利" — 5 of 6 district-level projects with plans.
    units = [("district", [PlanNode(f"P{n}", "竣工", date(2026, 12, 1))]) for n in range(5)]
    units += [("district", [PlanNode("P5", "竣工", date(2026, 3, 1))]), ("district", [])]
    (row,) = on_schedule_by(units, "level", date(2026, 4, 1))
    assert (row.with_nodes, row.on_schedule) == (6, 5) and round(100 * row.share) == 83


def test_slow_projects_are_behind_on_a_node_or_stalled_furthest_behind_first():
    day = date(2026, 4, 10)
    behind = project("A1", "海曙区")
    behind.nodes = [PlanNode("A1", "主体结构封顶", TOPPING)]
    stalled = fill(fill(project("B1", "江北区"), date(2026, 3, 30), date(2026, 4, 3), STARTED), date(2026, 4, 6), day, STALLED)
    fine = fill(project("C1", "鄞州区"), date(2026, 4, 1), day, STARTED)
    fine.nodes = [PlanNode("C1", "竣工", date(2026, 12, 1))]
    slow = slow_projects([stalled, behind, fine], day)
    assert [(s.project_id, s.node, s.days_behind) for s in slow] == [("A1", "主体结构封顶", 10), ("B1", None, 0)]
    assert slow[1].stalled_days == 5
    city = next(r for r in on_schedule_shares([behind, stalled, fine], day) if r.unit_type == "city")
    assert (city.with_nodes, city.on_schedule) == (2, 1)


@given(st.dates(date(2026, 1, 1), date(2026, 12, 31)), st.one_of(st.none(), st.dates(date(2026, 1, 1), date(2026, 12, 31))), st.dates(date(2026, 1, 1), date(2026, 12, 31)))
def test_exactly_one_status_and_never_negative_days(planned, done, day):
    node = PlanNode("P", "N", planned, done)
    assert node.status_on(day) in (DONE, ON_SCHEDULE, BEHIND) and node.days_behind(day) >= 0
    assert (node.status_on(day) == BEHIND) == (node.days_behind(day) > 0 and node.status_on(day) != DONE)
