"""总账 and 开工 as the seeds count them, on hand-made projects: investment as of a date
(every month up to the date's month, whenever its report arrived), revisions and what
was known on a day, 序时进度 of the months covered, year on year, completion by level ×
kind, and the cumulative start rate beside 在建, 停工 and 复工."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sitepulse.agents.core.calendar import Stoppage
from sitepulse.agents.core.indicators import DayLabel, State
from sitepulse.agents.core.investment import Coverage, Revision, completion_by, completion_on_days, coverage_of, newest_known, pace_of
from sitepulse.agents.core.project import JudgedDay, MonthReport
from sitepulse.agents.core.starts import starts_by
from tests.unit.test_ranking import STALLED, STARTED, fill, project

SHANGHAI = ZoneInfo("Asia/Shanghai")
IDLE_HOLIDAY = JudgedDay(DayLabel.STARTED, State.STARTED, False, 0.05)


def test_ningbo_end_of_february_253_yi_is_15_4_percent_though_february_arrived_in_march():
    # Ningbo, 2022-03-09: "截至2月底 ... 完成投资253亿元, 实现年度计划的15.4%" (seed 002).
    plan_wan = 2_530_000 / 0.154
    facts = [project(f"P{n}", plan=plan_wan / 4) for n in range(4)]
    for fact in facts:
        fact.investment["2022-01"] = MonthReport(300_000, date(2022, 2, 3))
        fact.investment["2022-02"] = MonthReport(332_500, date(2022, 3, 5))  # after the month ended
    (city,) = completion_by(facts, date(2022, 2, 28), "city")
    assert city.completed_wan == 2_530_000 and round(city.pct, 1) == 15.4
    assert city.coverage.months == "2022-01..2022-02" and city.coverage.title == "1—2月"
    # 序时进度 of January–February: 59 of 365 days; 15.4 % against 16.2 % keeps pace.
    assert city.time_elapsed_pct == pytest.approx(100 * 59 / 365)
    assert city.pace == "on_pace"
    # Mid-March, March not reported yet: the figure still covers January–February, and
    # 序时进度 is that of those months, not of March 15.
    (march,) = completion_by(facts, date(2022, 3, 15), "city")
    assert march.completed_wan == 2_530_000 and march.coverage.title == "1—2月"
    assert march.time_elapsed_pct == pytest.approx(100 * 59 / 365)
    # Another year's months never count.
    facts[0].investment["2021-12"] = MonthReport(999_999, date(2022, 1, 3))
    assert completion_by(facts, date(2022, 2, 28), "city")[0].completed_wan == 2_530_000


def test_ganzhou_end_of_june_53_6_yi_is_54_76_percent_and_41_of_44_started_some_stalled_on_the_day():
    # Ganzhou, 2017-07-24: "44个项目已开工41个, 完成年度投资53.6亿元, 占年度计划投资的54.76%" (seed 004).
    plan_wan = 536_000 / 0.5476
    facts = [project(f"G{n}", "章贡区" if n % 2 else "南康区", kind="new", plan=plan_wan / 44, planned_start=date(2017, 3, 1)) for n in range(44)]
    for n, fact in enumerate(facts):
        for month in range(1, 7):
            fact.investment[f"2017-{month:02d}"] = MonthReport(536_000 / 44 / 6, date(2017, month + 1, 5))
        if n >= 3:
            fill(fact, date(2017, 4, 1), date(2017, 6, 30), STARTED)
        if n >= 38:  # six of the 41 have stalled since mid-June: still started
            fill(fact, date(2017, 6, 15), date(2017, 6, 30), STALLED)
    (city,) = completion_by(facts, date(2017, 6, 30), "city")
    assert round(city.completed_wan / 10_000, 1) == 53.6 and round(city.pct, 2) == 54.76
    (starts,) = starts_by(facts, date(2017, 6, 30), ["city"])
    assert (starts.started, starts.due) == (41, 44) and starts.rate == pytest.approx(41 / 44)
    assert (starts.active, starts.stalled) == (35, 6)
    by_district = {c.unit: c for c in completion_by(facts, date(2017, 6, 30), "district")}
    assert set(by_district) == {"章贡区", "南康区"} and by_district["章贡区"].projects == 22


def test_yinzhou_town_level_completion_by_kind_80_and_97_percent():
    # Yinzhou H1 2017: "镇(街道)级上半年新建、续建项目完成率分别达80%、97%" (seed 000).
    facts = []
    for n in range(5):
        new = project(f"N{n}", kind="new", level="town", plan=1000.0, planned_start=date(2017, 2, 1))
        new.investment["2017-06"] = MonthReport(800.0 if n else 0.0, date(2017, 7, 5))
        new.investment["2017-05"] = MonthReport(0.0 if n else 800.0, date(2017, 6, 5))
        continuing = project(f"C{n}", kind="continuing", level="town", plan=2000.0)
        continuing.investment["2017-03"] = MonthReport(1940.0, date(2017, 4, 5))
        facts += [new, continuing]
    facts.append(project("D1", kind="new", level="district", plan=9999.0))
    rows = {c.unit: c for c in completion_by(facts, date(2017, 6, 30), "level_kind")}
    # The seed's H1 figure is completion of the half-year's plan: here each plan is the half-year's.
    assert round(rows["town/new"].pct) == 80 and round(rows["town/continuing"].pct) == 97
    assert rows["district/new"].pct == 0 and rows["town/new"].projects == 5
    kinds = {c.unit: c.pct for c in completion_by(facts, date(2017, 6, 30), "kind")}
    assert set(kinds) == {"new", "continuing"}


def test_a_revision_replaces_the_month_and_known_on_reproduces_what_was_known():
    at = lambda day, hour=10: datetime(2026, 3, day, hour, tzinfo=SHANGHAI)  # noqa: E731
    revisions = [
        Revision("P1", "2026-02", 500.0, at(5)),
        Revision("P1", "2026-02", 540.0, at(12)),  # revised a week later
        Revision("P1", "2026-01", 300.0, datetime(2026, 2, 4, 9, tzinfo=SHANGHAI)),
        Revision("P2", "2026-02", 100.0, at(12, 23)),
    ]
    newest = newest_known(revisions, None, SHANGHAI)
    assert newest["P1"].newest["2026-02"].amount_wan == 540.0 and newest["P1"].newest["2026-02"].reported_on == date(2026, 3, 12)
    assert [r.amount_wan for r in newest["P1"].earlier["2026-02"]] == [500.0] and "2026-01" not in newest["P1"].earlier
    on_the_10th = newest_known(revisions, date(2026, 3, 10), SHANGHAI)
    assert on_the_10th["P1"].newest["2026-02"].amount_wan == 500.0 and "P2" not in on_the_10th
    # The end of the local day counts: 23:00 on the 12th is known on the 12th.
    assert newest_known(revisions, date(2026, 3, 12), SHANGHAI)["P2"].newest["2026-02"].amount_wan == 100.0
    assert newest_known(revisions, date(2026, 2, 3), SHANGHAI) == {}
    # The order revisions arrive in from storage does not matter.
    assert newest_known(list(reversed(revisions)), None, SHANGHAI) == newest
    # Facts holding every revision still make an earlier day's figure as known that day.
    fact = project("P1")
    fact.investment, fact.revised = newest["P1"].newest, newest["P1"].earlier
    assert fact.investment_known_on(date(2026, 3, 10))["2026-02"].amount_wan == 500.0
    assert fact.investment_known_on(date(2026, 3, 4)) == {"2026-01": fact.investment["2026-01"]}
    assert fact.investment_known_on(date(2026, 3, 12)) is fact.investment
    by_day = completion_on_days([fact], [date(2026, 3, 4), date(2026, 3, 10), date(2026, 3, 12)], ["city"], as_known_each_day=True)
    assert [rows[0].completed_wan for rows in by_day.values()] == [300.0, 800.0, 840.0]


def test_year_on_year_growth_against_the_same_months_of_last_year():
    # Yinzhou 1–5月: "增长9.3%、高于全市4个百分点" (seed 000).
    city = []
    for district, last_year, this_year in (("鄞州区", 1000.0, 1093.0), ("海曙区", 1000.0, 1013.0)):
        fact = project(f"{district}1", district, plan=3000.0)
        for month in range(1, 6):
            fact.investment[f"2016-{month:02d}"] = MonthReport(last_year / 5, date(2017, 1, 10))
            fact.investment[f"2017-{month:02d}"] = MonthReport(this_year / 5, date(2017, month + 1, 5))
        fact.investment["2016-06"] = MonthReport(5000.0, date(2017, 1, 10))  # not a month this year's figure covers
        city.append(fact)
    newcomer = project("新1", "鄞州区", kind="new", plan=100.0)  # no last year: not counted as growth (同口径)
    newcomer.investment["2017-03"] = MonthReport(500.0, date(2017, 4, 5))
    city.append(newcomer)
    rows = {c.unit: c for c in completion_by(city, date(2017, 5, 31), "district")}
    (total,) = completion_by(city, date(2017, 5, 31), "city")
    assert rows["鄞州区"].yoy_pct == pytest.approx(9.3)
    assert total.yoy_pct == pytest.approx(5.3)
    assert rows["鄞州区"].yoy_pct - total.yoy_pct == pytest.approx(4.0)
    assert rows["鄞州区"].completed_wan == pytest.approx(1093.0 + 500.0)
    assert completion_by([newcomer], date(2017, 5, 31), "city")[0].yoy_pct is None


def test_total_investment_gives_cumulative_completion_since_the_project_began():
    fact = project("P1", plan=1200.0)
    fact.profile = replace(fact.profile, total_investment_wan=10_000.0)
    fact.investment.update({"2025-11": MonthReport(2000.0, date(2025, 12, 3)), "2026-01": MonthReport(500.0, date(2026, 2, 3))})
    (row,) = completion_by([fact], date(2026, 1, 31), "project")
    assert row.unit == "P1" and row.completed_wan == 500.0 and row.pct == pytest.approx(500 / 12)
    assert row.total_investment_wan == 10_000.0 and row.cumulative_wan == 2500.0 and row.cumulative_pct == pytest.approx(25.0)
    assert completion_by([project("P2")], date(2026, 1, 31), "project")[0].cumulative_pct is None


def test_coverage_before_any_report_covers_nothing_and_says_so():
    facts = [project("P1")]
    facts[0].investment["2025-12"] = MonthReport(10.0, date(2026, 1, 3))
    (city,) = completion_by(facts, date(2026, 1, 2), "city")
    assert city.coverage == Coverage(date(2026, 1, 2), 0) and city.coverage.months == "" and city.time_elapsed_pct is None
    assert city.completed_wan == 0 and city.pace is None


@given(st.floats(min_value=0, max_value=300, allow_nan=False))
def test_pace_bands_are_ordered(pace_pct):
    band = pace_of(pace_pct)
    assert band == ("on_pace" if pace_pct >= 90 else "behind" if pace_pct >= 70 else "far_behind")


@given(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=20), st.integers(1, 12))
def test_coverage_is_january_to_the_newest_month_reported_up_to_the_day(reported, as_of_month):
    facts = [project("P1")]
    for month, _ in reported:
        facts[0].investment[f"2026-{month:02d}"] = MonthReport(1.0, date(2026, month, 28))
    as_of = date(2026, as_of_month, 10)
    expected = max((m for m, _ in reported if m <= as_of_month), default=0)
    assert coverage_of(facts, as_of).last_month == expected


def test_resumed_after_a_stall_an_approved_stoppage_or_the_spring_festival():
    day = date(2026, 3, 20)
    after_stall = fill(fill(fill(project("S1"), date(2026, 2, 24), date(2026, 2, 28), STARTED), date(2026, 3, 2), date(2026, 3, 10), STALLED), date(2026, 3, 11), day, STARTED)
    after_festival = fill(fill(fill(project("F1"), date(2026, 2, 2), date(2026, 2, 13), STARTED), date(2026, 2, 15), date(2026, 2, 23), IDLE_HOLIDAY), date(2026, 2, 24), day, STARTED)
    stoppage = fill(fill(project("T1"), date(2026, 3, 1), date(2026, 3, 9), STARTED), date(2026, 3, 18), day, STARTED)
    stoppage.stoppages = [Stoppage("T1", date(2026, 3, 10), date(2026, 3, 17), "防汛停工令")]
    fill(stoppage, date(2026, 3, 10), date(2026, 3, 17), JudgedDay(DayLabel.STOPPAGE, State.STARTED, False, 0.0))
    never_halted = fill(project("W1"), date(2026, 3, 1), day, STARTED)
    stalled_now = fill(fill(project("S2"), date(2026, 3, 1), date(2026, 3, 10), STARTED), date(2026, 3, 11), day, STALLED)
    # First works after the festival: it has started, not come back.
    first_start = fill(fill(project("N1", kind="new", planned_start=date(2026, 2, 1)), date(2026, 2, 15), date(2026, 2, 23), IDLE_HOLIDAY), date(2026, 2, 24), day, STARTED)
    # Came back in January: by March 20 it is simply working again (在建), not news.
    long_ago = fill(fill(fill(project("L1"), date(2026, 1, 5), date(2026, 1, 9), STARTED), date(2026, 1, 12), date(2026, 1, 16), STALLED), date(2026, 1, 19), day, STARTED)
    facts = [after_stall, after_festival, stoppage, never_halted, stalled_now, first_start, long_ago]
    rows = {s.unit: s for s in starts_by(facts, day, ["project"])}
    assert {pid for pid, s in rows.items() if s.resumed} == {"S1", "F1", "T1"}
    assert rows["S2"].stalled == 1 and rows["S2"].started == 1 and rows["S2"].active == 0
    assert rows["L1"].active == 1 and rows["N1"].active == 1 and rows["N1"].started == 1


def test_a_new_project_counts_as_started_from_its_stored_start_though_no_day_is_loaded():
    fact = project("N1", kind="new", planned_start=date(2026, 2, 1))
    fact.started_on = date(2026, 2, 10)
    late = project("N2", kind="new", planned_start=date(2026, 2, 1))
    early = project("N3", kind="new", planned_start=date(2026, 6, 1))
    fill(early, date(2026, 3, 1), date(2026, 3, 5), STARTED)
    not_due = project("N4", kind="new", planned_start=date(2026, 6, 1))
    (city,) = starts_by([fact, late, early, not_due], date(2026, 3, 15), ["city"])
    # N1 started, N2 due and late, N3 started before its plan (due by starting), N4 not yet due.
    assert (city.due, city.started) == (3, 2)
    assert starts_by([fact], date(2026, 2, 9), ["city"])[0].started == 0


def test_one_early_report_does_not_move_everyone_on_to_a_month_the_others_have_not_reported():
    facts = [project(f"P{n}", plan=1200.0) for n in range(10)]
    for fact in facts:
        fact.investment["2026-01"] = MonthReport(100.0, date(2026, 2, 5))
    facts[0].investment["2026-02"] = MonthReport(100.0, date(2026, 3, 2))  # the early bird
    (city,) = completion_by(facts, date(2026, 3, 3), "city")
    assert city.coverage.title == "1月" and city.completed_wan == 1000.0 and city.pace == "on_pace"
    for fact in facts[1:5]:
        fact.investment["2026-02"] = MonthReport(100.0, date(2026, 3, 6))
    assert completion_by(facts, date(2026, 3, 6), "city")[0].coverage.title == "1—2月", "half have reported February"
    late = [project(f"Q{n}") for n in range(4)]
    for fact in late:
        fact.investment["2026-01"] = MonthReport(100.0, date(2026, 2, 5))
    late[0].investment["2026-02"] = MonthReport(100.0, date(2026, 3, 2))
    assert completion_by(late, date(2026, 3, 9), "city")[0].coverage.title == "1月"
    # Past the reporting deadline (the 10th), February is covered: the others owe it (未报 counts 0).
    assert completion_by(late, date(2026, 3, 10), "city")[0].coverage.title == "1—2月"


def test_year_on_year_pairs_months_so_a_month_not_reported_yet_is_no_decline():
    steady, slow = project("A1"), project("A2")
    for fact in (steady, slow):
        for month in (1, 2):
            fact.investment[f"2025-{month:02d}"] = MonthReport(100.0, date(2025, month + 1, 5))
        fact.investment["2026-01"] = MonthReport(110.0, date(2026, 2, 5))
    steady.investment["2026-02"] = MonthReport(110.0, date(2026, 3, 5))  # slow has not reported February
    (city,) = completion_by([steady, slow], date(2026, 3, 12), "city")
    assert city.coverage.title == "1—2月" and city.yoy_pct == pytest.approx(10.0)
