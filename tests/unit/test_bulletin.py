"""The bulletin's figures on hand-made projects: what a supervisor reading it would check
against the ledger and the daily states."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from sitepulse.agents.core.bulletin_figures import compile_bulletin, headline, stall_length
from sitepulse.agents.core.calendar import Stoppage
from sitepulse.agents.core.indicators import DayLabel, State
from sitepulse.agents.core.periods import parse_period
from sitepulse.agents.core.problems import Problem
from sitepulse.agents.core.project import JudgedDay, MonthReport
from tests.unit.test_ranking import STALLED, STARTED, fill, project

H2 = parse_period("2026-03-H2")
CST = timezone(timedelta(hours=8))
OFFLINE = JudgedDay(DayLabel.OFFLINE, State.STALLED, True, None)
IDLE_SATURDAY = JudgedDay(DayLabel.STALLED, State.STALLED, False, 0.05)


def city() -> list:
    busy = fill(project("NB-0001", "海曙区", plan=20_000), date(2026, 2, 1), date(2026, 3, 31), STARTED)
    stalled = fill(project("NB-0002", "北仑区", plan=10_000), date(2026, 2, 1), date(2026, 3, 20), STARTED)
    fill(stalled, date(2026, 3, 21), date(2026, 3, 31), STALLED)
    silent = fill(project("NB-0003", "北仑区", plan=10_000), date(2026, 2, 1), date(2026, 3, 29), STARTED)
    fill(silent, date(2026, 3, 30), date(2026, 3, 31), OFFLINE)
    unmetered = project("NB-0004", "海曙区", plan=5_000)  # registered, no judged day yet
    busy.investment["2026-02"] = MonthReport(3_000, date(2026, 3, 5))
    busy.investment["2026-03"] = MonthReport(2_000, date(2026, 3, 31))
    stalled.investment["2026-02"] = MonthReport(1_000, date(2026, 3, 5))
    return [busy, stalled, silent, unmetered]


def test_headline_counts_each_project_by_its_last_judged_day_and_investment_as_known_then():
    facts = city()
    head = headline(facts, H2)
    assert head.projects == 4
    assert (head.count("started"), head.count("stalled"), head.count("offline"), head.count("not_judged")) == (1, 1, 1, 1)
    assert head.completed_wan == 6_000 and head.plan_wan == 45_000
    assert round(head.completion_pct, 2) == 13.33 and head.city.coverage.title == "1—3月"
    # As of March 15 the figure covers every month up to March, whenever its report
    # came in (March's on the 31st): what was known on a day is a matter of which
    # revisions are loaded (``--known-on``), not of the day the figure is as of.
    before = headline(facts, H2.previous())
    assert before.completed_wan == 6_000 and before.count("started") == 3
    del facts[0].investment["2026-03"]
    assert headline(facts, H2.previous()).city.coverage.title == "1—2月"


def test_stall_length_counts_working_days_and_not_offline_days():
    fact = fill(project("P"), date(2026, 3, 1), date(2026, 3, 9), STARTED)
    fill(fact, date(2026, 3, 10), date(2026, 3, 14), STALLED)
    fact.days[date(2026, 3, 15)] = IDLE_SATURDAY
    fact.days[date(2026, 3, 16)] = OFFLINE
    fact.days[date(2026, 3, 17)] = STALLED
    assert stall_length(fact, date(2026, 3, 17)) == (6, False)
    assert stall_length(fact, date(2026, 3, 9)) == (0, False)
    always = fill(project("Q"), date(2026, 3, 1), date(2026, 3, 5), STALLED)
    assert stall_length(always, date(2026, 3, 5)) == (5, True)  # began before the facts: at least 5


def test_the_bulletin_lists_the_stalled_project_with_its_leader_and_open_problems():
    facts = city()
    opened = datetime(2026, 3, 23, 9, tzinfo=CST)
    problems = [
        Problem("NB-0002-20260323-stalled", "NB-0002", "stalled", date(2026, 3, 23), opened, "停工", "王强", "北仑区"),
        # Closed after the period ended: still open in this bulletin.
        Problem("NB-0002-20260301-suspicious", "NB-0002", "suspicious", date(2026, 3, 1), opened, "", "王强", "北仑区",
                closed_at=datetime(2026, 4, 2, 10, tzinfo=CST), closed_by="manual"),
        Problem("NB-0001-20260302-suspicious", "NB-0001", "suspicious", date(2026, 3, 2), opened, "", "李伟", "海曙区",
                closed_at=datetime(2026, 3, 10, 10, tzinfo=CST), closed_by="manual"),
        Problem("NB-0001-20260402-stalled", "NB-0001", "stalled", date(2026, 4, 2), opened, "", "李伟", "海曙区"),  # after the period
    ]
    facts[2].stoppages.append(Stoppage("NB-0003", date(2026, 3, 30), date(2026, 4, 3), "防汛"))
    bulletin = compile_bulletin(facts, problems, H2, bottom=1)
    (flagged,) = bulletin.flagged
    assert flagged.project_id == "NB-0002" and flagged.state == "stalled"
    assert flagged.stalled_days == 11 and not flagged.stall_runs_past_window
    assert [p.problem_id for p in flagged.open_problems] == ["NB-0002-20260301-suspicious", "NB-0002-20260323-stalled"]
    rates = {r.group: (r.opened, r.closed) for r in bulletin.resolution}
    assert rates == {"北仑区": (2, 0), "海曙区": (1, 1)}
    assert [g.stoppage.reason for g in bulletin.stoppages] == ["防汛"]
    districts = bulletin.rankings["district"]
    assert [r.score.unit for r in districts] == ["海曙区", "北仑区"]
    assert districts[1].previous_rank is not None and districts[0].rank_change == districts[0].previous_rank - 1
    assert [label for label, _ in bulletin.rank_trend["北仑区"]][-1] == "2026-03-H2" and len(bulletin.trend_periods) == 6
    march_31 = bulletin.city_days[-1]
    assert march_31.day == date(2026, 3, 31) and march_31.projects_judged == 0  # hand-made days carry no baseline


def test_a_suspicious_day_flags_a_working_project():
    facts = city()
    facts[0].days[date(2026, 3, 18)] = JudgedDay(DayLabel.STARTED, State.STARTED, True, 1.0, suspicious=True)
    flagged = {f.project_id: f for f in compile_bulletin(facts, [], H2, bottom=1).flagged}
    assert flagged["NB-0001"].suspicious_days == [date(2026, 3, 18)] and flagged["NB-0001"].stalled_days == 0


def test_the_page_escapes_registry_text_and_marks_the_golden_snail():
    from sitepulse.bulletin import render_html

    facts = city()
    facts[1] = type(facts[1])(replace(facts[1].profile, name="<script>alert(1)</script>二期"), facts[1].investment, facts[1].days)
    fill(facts[1], date(2026, 3, 10), date(2026, 3, 12), STALLED)
    # With that stall 北仑区 is last in this period and the one before: the 金蜗牛.
    page = render_html(compile_bulletin(facts, [], H2, bottom=1), datetime(2026, 4, 1, 9, tzinfo=CST))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;二期" in page
    snail_row = next(row for row in page.split("<tr>") if "北仑区" in row and "得分" not in row and "snail" in row)
    assert '<span class="snail">金蜗牛</span>' in snail_row
    assert page.count("data:image/svg+xml;base64,") == 3
    assert "2026年3月下半月" in page and "较上期" in page


def test_a_period_in_progress_stands_on_its_last_judged_day():
    from sitepulse.bulletin import render_html

    facts = city()
    for fact in facts:
        fact.days = type(fact.days)({day: judged for day, judged in fact.days.items() if day <= date(2026, 3, 20)})
    running = compile_bulletin(facts, [], H2, bottom=1, today=date(2026, 3, 21))
    assert running.as_of == date(2026, 3, 20)
    assert running.city_days[-1].day == date(2026, 3, 20), "no day not yet lived is drawn as 0 MWh"
    page = render_html(running, datetime(2026, 3, 21, 9, tzinfo=CST))
    assert "截至 3 月 20 日，4 个重大项目 1—3月累计完成投资" in page and "本期尚未结束" in page
    # Made after the period ended, the same facts stand on its last day.
    assert compile_bulletin(facts, [], H2, bottom=1, today=date(2026, 4, 2)).as_of == date(2026, 3, 31)
    # On the period's first morning nothing is judged yet: it stands on its first day.
    assert compile_bulletin(facts, [], parse_period("2026-04-H1"), bottom=1, today=date(2026, 4, 1)).as_of == date(2026, 4, 1)


def test_the_page_shows_completion_by_level_and_kind_starts_and_growth_against_the_city():
    from sitepulse.bulletin import render_html

    facts = city()
    facts[0].profile = replace(facts[0].profile, level="town", kind="new", planned_start=date(2026, 2, 1))
    for fact, last_year in zip(facts[:2], (4_000.0, 500.0)):
        fact.investment["2025-02"] = MonthReport(last_year, date(2026, 1, 10))
    bulletin = compile_bulletin(facts, [], H2, bottom=1)
    page = render_html(bulletin, datetime(2026, 4, 1, 9, tzinfo=CST))
    level_table = page.split("各级新建、续建项目计划完成率")[1].split("</table>")[0]
    assert "镇(街道)级" in level_table and "市级" in level_table
    assert 'data-figure="completion_town_new">25.0%' in level_table  # 5,000 of 20,000
    # Like for like, month by month: only February was reported in both years. 海曙区
    # (NB-0001): 3,000 against 4,000 (-25 %); the city (NB-0001 and NB-0002): 4,000
    # against 4,500 (-11.1 %). March, not reported last year, is no growth.
    district_table = page.split("投资完成情况")[1].split("</table>")[0]
    row = next(r for r in district_table.split("<tr>") if "海曙区" in r)
    assert "-25.0%" in row and "低于全市 13.9 个百分点" in row
    starts = {s.unit: s for s in bulletin.starts}
    assert (starts["new"].due, starts["new"].started) == (1, 1) and starts["全市"].due == 4
