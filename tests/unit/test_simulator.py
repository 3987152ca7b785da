"""The simulator injects what its ground truth says, the same way for the same seed."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from sitepulse.streams.contract import InvestmentReport, PowerReading
from sitepulse.streams.simulator import build_scenario, generate_records, ground_truth

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
