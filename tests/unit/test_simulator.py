"""The simulator injects what its ground truth says, the same way for the same seed."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from sitepulse.streams.contract import InvestmentReport, PowerReading
from sitepulse.streams.simulator import build_scenario, generate_records, ground_truth, last_year_figures, write_last_year_csv

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def scenario():
    return build_scenario(30, 40, 11, date(2026, 1, 26), SHANGHAI)


@pytest.fixture(scope="module")
def records(scenario):
    return list(generate_records(scenario, until=scenario.end))


def daily(records, project_id):
    days = defaultdict(float)
    for r in records:
        if isinstance(r, PowerReading) and r.project_id == project_id:
            days[(r.ts.astimezone(SHANGHAI) - timedelta(minutes=1)).date()] += r.kwh
    return days


def test_same_seed_same_records_and_truth():
    a = build_scenario(5, 3, 42, date(2026, 3, 2), SHANGHAI)
    b = build_scenario(5, 3, 42, date(2026, 3, 2), SHANGHAI)
    assert list(generate_records(a, a.end)) == list(generate_records(b, b.end))
    assert ground_truth(a) == ground_truth(b)
    c = build_scenario(5, 3, 43, date(2026, 3, 2), SHANGHAI)
    assert list(generate_records(a, a.end)) != list(generate_records(c, c.end))


def test_every_meter_reports_every_quarter_hour_with_an_offset(scenario, records):
    readings = [r for r in records if isinstance(r, PowerReading)]
    assert all(r.ts.utcoffset() is not None and r.interval_s == 900 for r in readings)
    meters = sum(len(p.meters) for p in scenario.projects)
    silent = next(p for p in scenario.projects if p.silent_meter)
    quarters_silent = int((scenario.end - silent.silent_from).total_seconds() // 900) + 1
    assert len(readings) == meters * 96 * 40 - quarters_silent
    assert not [r for r in readings if r.project_id == silent.entry.project_id and r.meter_id == silent.silent_meter and r.ts >= silent.silent_from]


def test_the_reset_meter_register_drops_once(scenario, records):
    reset = next(p for p in scenario.projects if p.reset_meter)
    registers = [r.kwh_total for r in records if isinstance(r, PowerReading) and r.project_id == reset.entry.project_id and r.meter_id == reset.reset_meter]
    drops = [i for i in range(1, len(registers)) if registers[i] < registers[i - 1]]
    assert len(drops) == 1


def test_spring_festival_and_stalls_are_quiet(scenario, records):
    truth = ground_truth(scenario)["projects"]
    working = [p for p in scenario.projects if p.entry.kind == "continuing" and not p.stalls]
    project = working[0].entry.project_id
    days = daily(records, project)
    assert days[date(2026, 2, 18)] < 0.1 * days[date(2026, 2, 10)]  # 初二 vs a working Tuesday
    assert days[date(2026, 2, 14)] > 0.8 * days[date(2026, 2, 10)]  # 调休: a working Saturday
    stalled = next((pid for pid, t in truth.items() if t["stalls"] and t["kind"] == "continuing"), None)
    assert stalled is not None, "the seed puts a stall in this scenario"
    first, last = (date.fromisoformat(d) for d in truth[stalled]["stalls"][0])
    stall_days = daily(records, stalled)
    assert all(stall_days[d] < 0.1 * max(stall_days.values()) for d in stall_days if first <= d <= last)


def test_monthly_investment_reports_arrive_on_the_third(records):
    reports = [r for r in records if isinstance(r, InvestmentReport)]
    assert {r.period for r in reports} == {"2026-01", "2026-02"}
    assert all(r.reported_at.day == 3 and r.amount_wan >= 0 for r in reports)
    assert len(reports) == 60


def test_a_scenario_runs_on_into_a_year_the_holiday_calendar_does_not_know():
    """The live demo keeps going past New Year: weekends stay quiet, nothing raises."""
    late = build_scenario(3, 10, 5, date(2026, 12, 28), SHANGHAI)
    readings = [r for r in generate_records(late, until=late.end) if isinstance(r, PowerReading)]
    assert max(r.ts for r in readings).year == 2027
    by_day = defaultdict(float)
    for r in readings:
        by_day[(r.ts.astimezone(SHANGHAI) - timedelta(minutes=1)).date()] += r.kwh
    assert by_day[date(2027, 1, 2)] < by_day[date(2027, 1, 4)], "Saturday draws less than Monday"


# --- Year-to-date mode: the demo's first bulletin looks like a real one ----------------


@pytest.fixture(scope="module")
def year_to_date():
    """Starts late in March: January and February come from history, March is partly
    simulated, April is a whole simulated month (reported on 3 May)."""
    return build_scenario(20, 45, 3, date(2026, 3, 25), SHANGHAI, year_to_date=True)


@pytest.fixture(scope="module")
def ytd_records(year_to_date):
    return list(generate_records(year_to_date, until=year_to_date.end))


@pytest.fixture(scope="module")
def plain_records():
    """The same seed without the mode."""
    plain = build_scenario(20, 45, 3, date(2026, 3, 25), SHANGHAI)
    return list(generate_records(plain, until=plain.end))


def record_time(record):
    return record.reported_at if isinstance(record, InvestmentReport) else record.ts


def latest_amounts(reports):
    """The newest figure of every (project, period): a revision replaces the first report."""
    return {(r.project_id, r.period): r.amount_wan for r in sorted(reports, key=record_time)}


def plan_share(reports, period, projects):
    """The period's figures as a share of the plan's twelfth, averaged over ``projects``."""
    amounts = latest_amounts(reports)
    shares = [amounts[(p.entry.project_id, period)] / (p.entry.annual_plan_wan / 12) for p in projects]
    return sum(shares) / len(shares)


def test_the_mode_is_off_unless_asked_for():
    default = build_scenario(5, 3, 42, date(2026, 3, 2), SHANGHAI)
    off = build_scenario(5, 3, 42, date(2026, 3, 2), SHANGHAI, year_to_date=False)
    assert not default.year_to_date
    assert list(generate_records(default, default.end)) == list(generate_records(off, off.end))
    truth = ground_truth(default)
    assert "year_to_date" not in truth
    assert all("delayed" not in project for project in truth["projects"].values())


def test_the_mode_leaves_the_readings_of_projects_that_start_as_planned_alone(year_to_date, ytd_records, plain_records):
    delayed = {p.entry.project_id for p in year_to_date.projects if p.delayed}
    readings = [r for r in ytd_records if isinstance(r, PowerReading) and r.project_id not in delayed]
    assert readings == [r for r in plain_records if isinstance(r, PowerReading) and r.project_id not in delayed]


def test_every_continuing_project_has_reported_the_earlier_months(year_to_date, ytd_records):
    history = [r for r in ytd_records if isinstance(r, InvestmentReport) and r.period in ("2026-01", "2026-02")]
    continuing = {p.entry.project_id for p in year_to_date.projects if p.entry.kind == "continuing"}
    assert {(r.project_id, r.period) for r in history} == {(pid, period) for pid in continuing for period in ("2026-01", "2026-02")}
    assert all(r.reported_at.strftime("%Y-%m") > r.period for r in history), "after the month ended"
    assert all(r.reported_at.utcoffset() is not None and r.amount_wan > 0 for r in history)


def test_records_come_out_in_time_order_with_history_in_between_once_the_readings_catch_up(ytd_records):
    times = [record_time(r) for r in ytd_records]
    assert times == sorted(times)
    early = build_scenario(5, 14, 3, date(2026, 3, 2), SHANGHAI, year_to_date=True)
    records = list(generate_records(early, until=early.end))
    times = [record_time(r) for r in records]
    assert times == sorted(times)
    first_reading = next(r.ts for r in records if isinstance(r, PowerReading))
    february = [r for r in records if isinstance(r, InvestmentReport) and r.period == "2026-02"]
    assert february and all(r.reported_at > first_reading for r in february), "reported 3..10 March, after the start"


def test_some_history_reports_are_revised_later(ytd_records):
    reported = defaultdict(list)
    for r in ytd_records:
        if isinstance(r, InvestmentReport) and r.period in ("2026-01", "2026-02"):
            reported[(r.project_id, r.period)].append(r.reported_at)
    revised = [times for times in reported.values() if len(times) == 2]
    assert revised, "the seed revises at least one report"
    assert all(2 <= (later - first).days <= 6 for first, later in revised)
    assert all(len(times) <= 2 for times in reported.values())


def test_the_history_dips_in_february_for_the_spring_festival():
    april = build_scenario(20, 1, 3, date(2026, 4, 10), SHANGHAI, year_to_date=True)
    history = [r for r in generate_records(april, until=april.end) if isinstance(r, InvestmentReport)]
    totals = defaultdict(float)
    for (_, period), amount in latest_amounts(history).items():
        totals[period] += amount
    assert totals["2026-02"] < 0.8 * totals["2026-01"] < 0.8 * totals["2026-03"]


def test_the_partly_simulated_start_month_is_reported_like_a_whole_one(year_to_date, ytd_records):
    reports = [r for r in ytd_records if isinstance(r, InvestmentReport)]
    working = [p for p in year_to_date.projects if p.entry.kind == "continuing" and not p.stalls]
    march = plan_share(reports, "2026-03", working)  # 25..31 March: 7 of 31 days
    april = plan_share(reports, "2026-04", working)
    assert 0.8 * april < march < 1.25 * april


def test_some_new_projects_never_start(year_to_date, ytd_records, plain_records):
    truth = ground_truth(year_to_date)
    assert truth["year_to_date"] is True
    assert all(isinstance(t["delayed"], bool) for t in truth["projects"].values())
    assert all(t["kind"] == "new" for t in truth["projects"].values() if t["delayed"])
    due = [p for p in year_to_date.projects if p.entry.kind == "new" and p.entry.planned_start < date(2026, 5, 9)]
    delayed = [p for p in due if truth["projects"][p.entry.project_id]["delayed"]]
    on_time = [p for p in due if not truth["projects"][p.entry.project_id]["delayed"]]
    assert delayed and on_time, "the seed delays some due projects, not all"
    for project in delayed:
        days = daily(ytd_records, project.entry.project_id)
        had_it_started = daily(plain_records, project.entry.project_id)
        assert len(days) == 45 and max(days.values()) < 0.1 * max(had_it_started.values())


def test_a_due_new_project_is_delayed_whatever_the_seed():
    for seed in range(30):
        scenario = build_scenario(8, 14, seed, date(2026, 3, 2), SHANGHAI, year_to_date=True)
        due = [p for p in scenario.projects if p.entry.kind == "new" and p.entry.planned_start < date(2026, 3, 16)]
        assert not due or any(p.delayed for p in due), f"seed {seed}"


def test_last_year_has_twelve_months_of_every_continuing_project(year_to_date, ytd_records):
    rows = last_year_figures(year_to_date)
    continuing = {p.entry.project_id for p in year_to_date.projects if p.entry.kind == "continuing"}
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    assert sorted((pid, period) for pid, period, _ in rows) == sorted((pid, m) for pid in continuing for m in months)
    assert rows == last_year_figures(build_scenario(20, 45, 3, date(2026, 3, 25), SHANGHAI)), "the same whatever the mode"
    last_year = sum(amount for _, period, amount in rows if period in ("2025-01", "2025-02"))
    this_year = sum(amount for (_, period), amount in latest_amounts(
        [r for r in ytd_records if isinstance(r, InvestmentReport)]
    ).items() if period in ("2026-01", "2026-02"))
    assert 1.0 < this_year / last_year < 1.3


def test_last_year_csv_round_trips(year_to_date, tmp_path):
    rows = last_year_figures(year_to_date)
    path = tmp_path / "last_year.csv"
    write_last_year_csv(rows, path)
    with path.open(newline="", encoding="utf-8") as handle:
        read = [(row["project_id"], row["period"], float(row["amount_wan"])) for row in csv.DictReader(handle)]
    assert read == rows


def test_year_to_date_scenarios_bring_the_other_two_ledgers_and_who_answers(tmp_path):
    from sitepulse.agents.core.nodes import BEHIND, DONE, PlanNode
    from sitepulse.streams.registry import read_registry_csv, write_registry_csv
    from sitepulse.streams.simulated_ledgers import filed_problems, plan_nodes

    scenario = build_scenario(24, 14, 3, date(2026, 11, 18), SHANGHAI, year_to_date=True)
    today = scenario.start + timedelta(days=scenario.days)
    assert all(p.entry.owner_person and p.entry.owner_phone and p.entry.leader_title and p.entry.partners for p in scenario.projects)
    assert all(p.entry.department not in p.entry.partners for p in scenario.projects)
    path = tmp_path / "registry.csv"
    write_registry_csv([p.entry for p in scenario.projects], path)
    assert [e.owner_person for e in read_registry_csv(path)] == [p.entry.owner_person for p in scenario.projects]

    plan, done = plan_nodes(scenario)
    finished = {(r.project_id, r.node): r.done_date for r in done}
    nodes = [PlanNode(r.project_id, r.node, r.planned_date, finished.get((r.project_id, r.node))) for r in plan]
    statuses = [n.status_on(today) for n in nodes]
    assert statuses.count(BEHIND) >= 2 and statuses.count(DONE) >= 5, "a few behind, most done"
    assert all(r.done_date <= today for r in done) and plan_nodes(scenario) == (plan, done)

    problems = filed_problems(scenario)
    assert len({p.category for p in problems}) >= 4 and any(p.closed for p in problems)
    assert any(p.closed is None and p.due < today for p in problems), "some are overdue"
    assert all(p.opened <= (p.closed or p.opened) < today and p.due > p.opened for p in problems)
