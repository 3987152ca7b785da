"""Stoppages, the problem ledger and the cross-project review end to end, through the
real broker, the worker and influxd: a stall opens a problem that closes itself on
resumption; an approved stoppage filed afterwards turns the stall days into stoppage
days and exempts the project from its district's ranking; investment reported for a
month without power opens a problem that only a note closes."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sitepulse.streams.contract import EVENTS_TOPIC
from tests.board_queries import alert_queries, board_queries, run_influxql, run_series, substitute
from tests.conftest import poll, read_topic

SHANGHAI = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.integration

# Seed 21: NB-0005 idles Jan 22-29 (a stall), NB-0008 is a new project due Feb 2 that
# reports January investment while its site drew almost nothing.
START, DAYS, SEED, PROJECTS = date(2026, 1, 19), 20, 21, 8
STALLED_PROJECT, IDLE_PROJECT = "NB-0005", "NB-0008"


def daily_states(sitepulse, project_id: str) -> dict[str, str]:
    text = sitepulse.run("export", "daily", "--start", START.isoformat(), "--end", (START + timedelta(days=DAYS - 2)).isoformat())
    return {row["date"]: row["state"] for row in csv.DictReader(io.StringIO(text)) if row["project_id"] == project_id}


def problems(sitepulse) -> dict[str, dict]:
    return {row["problem_id"]: row for row in sitepulse.query("SELECT * FROM problem GROUP BY problem_id")}


def test_stoppage_ledger_and_review(sitepulse, tmp_path):
    scenario = tmp_path / "jan.jsonl"
    sitepulse.run("simulate", "--projects", str(PROJECTS), "--days", str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out", str(scenario))
    truth = json.loads(scenario.with_suffix(".truth.json").read_text())
    assert truth["projects"][STALLED_PROJECT]["stalls"] == [["2026-01-22", "2026-01-29"]]
    assert truth["projects"][IDLE_PROJECT]["kind"] == "new" and truth["projects"][IDLE_PROJECT]["planned_start"] == "2026-02-02"
    registry = {row["project_id"]: row for row in csv.DictReader(scenario.with_suffix(".registry.csv").open(encoding="utf-8"))}

    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    sitepulse.run("replay", str(scenario))
    sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1")
    last_complete = (START + timedelta(days=DAYS - 2)).isoformat()

    # The stall opens on its third idle working day (Jan 22, 23, 26) and a problem with it.
    states = poll(lambda: (s := daily_states(sitepulse, STALLED_PROJECT)).get(last_complete) and s, 90, "the month to be judged")
    assert [d for d, s in sorted(states.items()) if s == "stalled"][0] == "2026-01-26"
    stall_problem = f"{STALLED_PROJECT}-20260126-stalled"
    ledger = poll(lambda: (p := problems(sitepulse)).get(stall_problem, {}).get("status") == "closed" and p, 30, "the stall's problem to close on resumption")
    assert ledger[stall_problem]["closed_by"] == "auto" and ledger[stall_problem]["leader"] == registry[STALLED_PROJECT]["leader"]

    # Investment for January while the site was idle: the review flags it, the ledger opens a problem.
    idle_problem = f"{IDLE_PROJECT}-20260131-suspicious"
    ledger = poll(lambda: (p := problems(sitepulse)).get(idle_problem) and p, 30, "the idle-investment problem")
    assert ledger[idle_problem]["status"] == "open" and "投资" in ledger[idle_problem]["detail"]
    status = sitepulse.run("status")
    assert IDLE_PROJECT in status and idle_problem in status and registry[IDLE_PROJECT]["leader"] in status

    # Every board query returns rows on this data: in the window that ends in the stall
    # (stalled counts), or in the whole scenario from its month's start, where monthly
    # investment is stamped (offline meter, rankings, investment).
    variables = {"district": registry[STALLED_PROJECT]["district"], "project": STALLED_PROJECT, "period": "2026-01-H2"}
    windows = [(datetime(2026, 1, 19, tzinfo=SHANGHAI), datetime(2026, 1, 27, tzinfo=SHANGHAI)), (datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2026, 2, 8, tzinfo=SHANGHAI))]
    empty = [
        (uid, title)
        for uid, title, query in board_queries()
        if not any(run_influxql(sitepulse.settings.influx_url, sitepulse.settings.influx_db, substitute(query, a, b, variables), sitepulse.reader) for a, b in windows)
    ]
    assert empty == [], f"board queries without rows: {empty}"

    # The overview's energy curve: for every judged day, the city's sum of every project's
    # judged day and how many were judged, rolled up by the review as days were judged.
    judged = [r for r in sitepulse.query('SELECT "date", kwh, machine_state FROM power_daily') if r["machine_state"]]
    expected = {}
    for row in judged:
        kwh, projects = expected.get(row["date"], (0.0, 0))
        expected[row["date"]] = (kwh + (row["kwh"] or 0.0), projects + 1)
    assert len(expected) >= DAYS - 1
    rolled = poll(
        lambda: (r := {row["date"]: (row["kwh"], row["projects"]) for row in sitepulse.query("SELECT * FROM energy_daily")}).keys() == expected.keys() and r,
        30, "the energy roll-up of every judged day",
    )
    for day, (kwh, projects) in expected.items():
        assert rolled[day][1] == projects == PROJECTS and rolled[day][0] == pytest.approx(kwh, rel=1e-9), day

    # Every alert rule's query gives series labelled with who must act: project, district
    # and leader (the data owner for meters), which the policy tree routes on.
    influx = (sitepulse.settings.influx_url, sitepulse.settings.influx_db)
    labelled = {}
    for uid, query in alert_queries():
        series = [s for a, b in windows for s in run_series(*influx, substitute(query, a, b, {}), sitepulse.reader)]
        labelled[uid] = {(s["tags"]["project_id"], s["tags"].get("leader") or s["tags"].get("data_owner")) for s in series}
    assert (STALLED_PROJECT, registry[STALLED_PROJECT]["leader"]) in labelled["sp-stalled"]
    assert (IDLE_PROJECT, registry[IDLE_PROJECT]["leader"]) in labelled["sp-suspicious"]
    silent = next(pid for pid, p in truth["projects"].items() if p["silent_meter"])
    assert (silent, registry[silent]["data_owner"]) in labelled["sp-meter-offline"]
    assert labelled["sp-stall-escalation"], "stall length is there for every project"

    # Only a note closes it; closing it twice is refused with the first note.
    sitepulse.run("problem", "close", idle_problem, "--note", "现场核查: 前期临电施工, 投资为设备预付款")
    closed = poll(lambda: (p := problems(sitepulse))[idle_problem]["status"] == "closed" and p[idle_problem], 30, "the hand closure")
    assert closed["closed_by"] == "manual" and closed["note"] == "现场核查: 前期临电施工, 投资为设备预付款"
    again = sitepulse.attempt("problem", "close", idle_problem, "--note", "再次销号")
    assert again.exit_code != 0 and "已于" in again.output and "前期临电施工" in again.output
    missing = sitepulse.attempt("problem", "close", "NB-9999-20260101-stalled", "--note", "x")
    assert missing.exit_code != 0 and "没有编号为" in missing.output
    # The hand closure is in the audit trail with its note; the refused attempts are not.
    audit = poll(
        lambda: [r for r in csv.DictReader(io.StringIO(sitepulse.run("export", "audit"))) if r["action"] == "problem_close"],
        30, "the closure in the audit trail",
    )
    assert len(audit) == 1 and audit[0]["subject"].startswith(idle_problem) and audit[0]["reason"] == "现场核查: 前期临电施工, 投资为设备预付款"
    rates = {row["district"]: row for row in csv.DictReader(io.StringIO(sitepulse.run("problem", "rates", "--by", "district")))}
    district = registry[IDLE_PROJECT]["district"]
    assert rates[district]["opened"] == "2" and rates[district]["rate"] == "1.0", "the stall and the idle month, both closed"

    # The halt was approved after all: filed now, it turns the stall days into stoppage days.
    bad = sitepulse.attempt("stoppage", "add", STALLED_PROJECT, "2026-01-29", "2026-01-22", "--reason", "防汛")
    assert bad.exit_code != 0 and "早于" in bad.output
    sitepulse.run("stoppage", "add", STALLED_PROJECT, "2026-01-22", "2026-01-29", "--reason", "防汛停工令")
    states = poll(lambda: (s := daily_states(sitepulse, STALLED_PROJECT)).get("2026-01-26") == "stoppage" and s, 30, "the stall days to be re-judged")
    assert "stalled" not in states.values()
    assert all(states[(date(2026, 1, 22) + timedelta(days=n)).isoformat()] == "stoppage" for n in range(8))

    # Exempt from its district's ranking of the periods the stoppage touches.
    def exempt():
        rows = sitepulse.query(f"SELECT exempt, projects FROM ranking WHERE period = '2026-01-H2' AND unit_type = 'district' AND unit = '{registry[STALLED_PROJECT]['district']}'")
        return rows and rows[0]["exempt"] == 1 and rows[0]
    poll(exempt, 30, "the review to exempt the stopped project")

    events = [json.loads(m.value) for m in read_topic(sitepulse.settings, EVENTS_TOPIC, expected=3)]
    kinds = {(e["kind"], e["project_id"]) for e in events}
    assert ("stalled", STALLED_PROJECT) in kinds and ("resumed", STALLED_PROJECT) in kinds
    assert ("suspicious", IDLE_PROJECT) in kinds and ("problem_closed", IDLE_PROJECT) in kinds
    idle = next(e for e in events if e["kind"] == "suspicious" and e["project_id"] == IDLE_PROJECT)
    assert idle["leader"] == registry[IDLE_PROJECT]["leader"] and idle["day"] == "2026-01-31"
