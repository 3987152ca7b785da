"""Suspicion end to end, through the real broker, the worker and influxd: a site whose
idle machines draw a constant load, a site that sends the previous day's readings
again, and a site that reports no investment for two months while its power says it
works each open one problem (with the rule's reason in Chinese, for the leader), show
in the overview's count, the alert rule and the bulletin; a project registered as
lumpy spending is not judged; no honest site is flagged; and a worker restarted in the
middle of the idle run (its timeline rebuilt from InfluxDB) finds the same run again
under the same id, without a second problem."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sitepulse.agents.core.calendar import WorkCalendar
from tests.board_queries import alert_queries, run_series, substitute
from tests.conftest import poll

SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.integration

# Seed 1, 10 projects, 66 days from March 2: NB-0009 idles its machines April 15-18,
# NB-0004 re-sends April 21's readings April 22-25, NB-0008 and NB-0010 report nothing
# for March and April (NB-0010 is registered as lumpy spending).
START, DAYS, SEED, PROJECTS = date(2026, 3, 2), 66, 1, 10
LAST_COMPLETE = START + timedelta(days=DAYS - 2)


def suspicious_problems(sitepulse) -> dict[str, dict]:
    rows = sitepulse.query("SELECT * FROM problem WHERE kind = 'suspicious' GROUP BY problem_id")
    return {row["problem_id"]: row for row in rows}


def judged_through(sitepulse, day: date) -> bool:
    rows = sitepulse.query(f"SELECT count(machine_state) FROM power_daily WHERE \"date\" = '{day.isoformat()}'")
    return bool(rows) and rows[0]["count"] == PROJECTS


def test_fakes_open_problems_that_keep_their_ids(sitepulse, tmp_path):
    scenario = tmp_path / "spring.jsonl"
    sitepulse.run(
        "simulate", "--projects", str(PROJECTS), "--days", str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out", str(scenario),
        "--fake-constant", "1", "--fake-copied", "1", "--fake-flat-investment", "2", "--fake-days", "4",
    )
    truth = json.loads(scenario.with_suffix(".truth.json").read_text())["projects"]
    fakes = {p["fake"]: pid for pid, p in sorted(truth.items(), reverse=True) if p.get("fake")}
    idle, copier = fakes["constant_load"], fakes["copied"]
    flat, lumpy = sorted(pid for pid, p in truth.items() if p.get("fake") == "flat_investment")
    # The lumpy project is registered so: its months without investment are not judged.
    registry_path = scenario.with_suffix(".registry.csv")
    rows = list(csv.DictReader(registry_path.open(encoding="utf-8")))
    for row in rows:
        row["investment_lumpy"] = "true" if row["project_id"] == lumpy else "false"
    with registry_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    registry = {row["project_id"]: row for row in rows}
    sitepulse.run("registry", "load", str(registry_path), "--reason", "测试项目登记")

    calendar = WorkCalendar()
    idle_first, _ = (date.fromisoformat(d) for d in truth[idle]["fake_days"])
    idle_working = [idle_first + timedelta(days=n) for n in range(4) if calendar.is_working_day(idle, idle_first + timedelta(days=n))]
    idle_since = idle_working[0]
    copied_since = date.fromisoformat(truth[copier]["fake_days"][0])
    idle_problem = f"{idle}-{idle_since:%Y%m%d}-suspicious-constant_load"

    # Up to two idle working days and a bit: the run is found, then the worker stops.
    cut = datetime.combine(idle_working[1] + timedelta(days=1), datetime.min.time(), SHANGHAI) + timedelta(hours=2)
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    with scenario.open(encoding="utf-8") as lines, before.open("w", encoding="utf-8") as first, after.open("w", encoding="utf-8") as rest:
        for line in lines:
            record = json.loads(line)
            stamp = datetime.fromisoformat(record.get("ts") or record["reported_at"])
            (first if stamp <= cut else rest).write(line)
    sitepulse.run("replay", str(before))
    worker = sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1")
    poll(lambda: judged_through(sitepulse, idle_working[1]), 180, "the days before the cut to be judged")
    poll(lambda: idle_problem in suspicious_problems(sitepulse), 30, "the idle run's problem")
    sitepulse.stop_worker(worker)
    sitepulse.run("replay", str(after))
    sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1")
    # The silent project too: its meter said nothing after the restart, yet its days are judged.
    poll(lambda: judged_through(sitepulse, LAST_COMPLETE), 180, "every day to be judged")
    expected = {
        idle_problem,
        f"{copier}-{copied_since:%Y%m%d}-suspicious-copied",
        f"{flat}-20260430-suspicious-flat_investment",
    }
    found = poll(lambda: (p := suspicious_problems(sitepulse)).keys() >= expected and p, 60, "the three suspicions' problems")
    assert set(found) == expected, "one problem per fake, none for an honest or a lumpy site"
    assert "负荷昼夜恒定" in found[idle_problem]["detail"]
    copied_problem = found[f"{copier}-{copied_since:%Y%m%d}-suspicious-copied"]
    assert (copied_since - timedelta(days=1)).isoformat() in copied_problem["detail"] and "重复上报" in copied_problem["detail"]
    assert "2026-03 至 2026-04" in found[f"{flat}-20260430-suspicious-flat_investment"]["detail"]
    for problem in found.values():
        assert problem["leader"] == registry[problem["project_id"]]["leader"] and problem["category"] == "用电异常"
        assert problem["status"] == "open", "a person must check on site before it is closed"

    # Every day of the idle run is marked, with the run's first day; the days around it are not.
    days = {r["date"]: r for r in sitepulse.query(f"SELECT \"date\", suspicion, suspicion_since FROM power_daily WHERE project_id = '{idle}'")}
    marked = sorted(d for d, r in days.items() if r["suspicion"])
    assert marked == [d.isoformat() for d in idle_working], "the idle working days, across the restart"
    assert {days[d]["suspicion_since"] for d in marked} == {idle_since.isoformat()}

    # The overview's count and the alert rule that pages each project's leader.
    influx = (sitepulse.settings.influx_url, sitepulse.settings.influx_db)
    window = (datetime(2026, 3, 1, tzinfo=SHANGHAI), datetime(2026, 5, 8, tzinfo=SHANGHAI))
    rule = dict(alert_queries())["sp-suspicious"]
    paged = {(s["tags"]["project_id"], s["tags"]["leader"]) for s in run_series(*influx, substitute(rule, *window, {}), sitepulse.reader)}
    assert paged == {(pid, registry[pid]["leader"]) for pid in (idle, copier, flat)}

    # The bulletin of the second half of April lists them with the reasons.
    sitepulse.run("report", "--period", "2026-04-H2", "--no-pdf", "--out", str(tmp_path / "bulletin"))
    page = (tmp_path / "bulletin" / "report.html").read_text(encoding="utf-8")
    flagged = page.split('data-figure="flagged"')[1].split("</table>")[0]
    for pid in (copier, flat):
        assert pid in flagged
    assert "疑似重复上报读数" in flagged and "有用电无投资进展" in flagged

    # One event per run, whatever the restart re-judged.
    told = sitepulse.query("SELECT count(detail) FROM event WHERE kind = 'suspicious' GROUP BY project_id")
    assert {row["project_id"] for row in told} == {idle, copier, flat}
