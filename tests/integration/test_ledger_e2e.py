"""Stoppages, the three ledgers and the cross-project review end to end, through the
real broker, the worker and influxd: a stall opens a problem that waits for a person's
confirmation (待销号) when power returns; plan nodes on time, late and done late, a node
past its date opening a problem; a problem filed by a person going overdue and escalated
until a person closes it; 销号率 counting only people's closures (62 of 77); an approved
stoppage filed afterwards turns the stall days into stoppage days and exempts the
project from its district's ranking; investment reported for a month without power
opens a problem that only a note closes. The registry has none of the 六个一 columns."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from sitepulse.streams.contract import EVENTS_TOPIC, REGISTRY_COLUMNS, ProjectEvent
from sitepulse.streams.problem_filing import filed_problem
from sitepulse.streams.publisher import SitePublisher
from sitepulse.streams.registry import read_registry_topic
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

    # A registry as it was before the 六个一 and 总投资 columns: it still loads and pages.
    old_columns = [c for c in REGISTRY_COLUMNS if c not in ("total_investment_wan", "owner_person", "owner_phone", "leader_title", "partner_departments", "investment_lumpy")]
    old_registry = tmp_path / "old-registry.csv"
    with old_registry.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(registry.values())
    sitepulse.run("registry", "load", str(old_registry), "--reason", "测试项目登记")
    sitepulse.run("replay", str(scenario))

    # 细账: plan nodes, one done on time, one never done, one done late, one not due yet.
    plan = tmp_path / "nodes.csv"
    plan.write_text("project_id,node,planned_date\nNB-0001,开工,2026-01-20\nNB-0001,主体结构封顶,2026-01-25\n"
                    "NB-0002,竣工,2026-01-22\nNB-0003,投产,2026-03-01\nNB-0005,竣工,2026-06-30\n", encoding="utf-8")
    refused = sitepulse.attempt("nodes", "load", str(plan), "--reason", "")
    assert refused.exit_code != 0 and "原因" in refused.output
    assert "已加载 5 个计划节点" in sitepulse.run("nodes", "load", str(plan), "--reason", "2026年度计划节点 (一图五表)")
    sitepulse.run("node", "done", "NB-0001", "开工", "2026-01-20")
    sitepulse.run("node", "done", "NB-0002", "竣工", "2026-01-28", "--reason", "竣工验收通过")
    unplanned = sitepulse.attempt("node", "done", "NB-0003", "竣工", "2026-01-28")
    assert unplanned.exit_code != 0 and "没有计划节点「竣工」" in unplanned.output and "投产" in unplanned.output
    # 难账: a problem people file, found on January 21, due January 30.
    filed = sitepulse.run("problem", "open", "NB-0003", "--category", "征迁", "--department", "市住建局", "--measures", "约谈征迁主体, 倒排时间表",
                          "--due", "2026-01-30", "--opened", "2026-01-21", "--detail", "征迁滞后影响进场").strip()
    assert filed.startswith("NB-0003-20260121-zq-")
    sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1")
    last_complete = (START + timedelta(days=DAYS - 2)).isoformat()

    # The stall opens on its third idle working day (Jan 22, 23, 26) and a problem with it;
    # power returning leaves it for a person to confirm (待销号), not closed.
    states = poll(lambda: (s := daily_states(sitepulse, STALLED_PROJECT)).get(last_complete) and s, 90, "the month to be judged")
    assert [d for d, s in sorted(states.items()) if s == "stalled"][0] == "2026-01-26"
    stall_problem = f"{STALLED_PROJECT}-20260126-stalled"
    ledger = poll(lambda: (p := problems(sitepulse)).get(stall_problem, {}).get("status") == "awaiting_confirmation" and p, 30, "the stall's problem to await confirmation")
    assert ledger[stall_problem]["open"] is True and not ledger[stall_problem].get("closed_by")
    assert ledger[stall_problem]["leader"] == registry[STALLED_PROJECT]["leader"] and "待责任人确认销号" in ledger[stall_problem]["note"]

    # The schedule as of February 5, as the supervisors' table shows it.
    schedule = {(r["project_id"], r["node"]): r for r in csv.DictReader(io.StringIO(sitepulse.run("export", "schedule", "--date", "2026-02-05")))}
    assert (schedule[("NB-0001", "开工")]["status"], schedule[("NB-0001", "开工")]["days_behind"]) == ("done", "0")
    assert (schedule[("NB-0001", "主体结构封顶")]["status"], schedule[("NB-0001", "主体结构封顶")]["days_behind"]) == ("behind", "11")
    assert (schedule[("NB-0002", "竣工")]["status"], schedule[("NB-0002", "竣工")]["days_behind"]) == ("done", "6")
    assert (schedule[("NB-0003", "投产")]["status"], schedule[("NB-0003", "投产")]["done_date"]) == ("on_schedule", "")
    early = {(r["project_id"], r["node"]): r["status"] for r in csv.DictReader(io.StringIO(sitepulse.run("export", "schedule", "--date", "2026-01-24")))}
    assert early[("NB-0002", "竣工")] == "behind" and early[("NB-0001", "主体结构封顶")] == "on_schedule"
    # The node past its date opens a problem; the filed problem goes overdue (逾期).
    node_problem = poll(lambda: next((p for p in problems(sitepulse).values() if p["kind"] == "node_overdue" and "主体结构封顶" in p["detail"]), None), 30, "the node's problem")
    assert node_problem["project_id"] == "NB-0001"
    # NB-0002's 竣工 was overdue from January 23 until done on the 28th: a problem too,
    # however fast the month was judged; NB-0001's 开工, done on its day, none.
    late = poll(lambda: [p for p in problems(sitepulse).values() if p["kind"] == "node_overdue" and p["project_id"] == "NB-0002"], 30, "the late node's problem")
    assert len(late) == 1 and late[0]["opened_day"] == "2026-01-23" and "实际 2026-01-28 完成" in late[0]["detail"]
    assert not [p for p in problems(sitepulse).values() if p["kind"] == "node_overdue" and "开工" in p["detail"]]
    assert node_problem["category"] == "节点逾期" and node_problem["opened_day"] == "2026-01-26"
    overdue = poll(lambda: (p := problems(sitepulse).get(filed)) and p["status"] == "overdue" and p, 30, "the filed problem to go overdue")
    assert (overdue["category"], overdue["department"], overdue["due"]) == ("征迁", "市住建局", "2026-01-30")
    listed = sitepulse.run("problem", "list", "--status", "overdue")
    assert filed in listed and stall_problem not in listed
    assert stall_problem in sitepulse.run("problem", "list", "--status", "awaiting_confirmation")
    behind_now = sitepulse.run("status")
    assert "逾期问题" in behind_now and "主体结构封顶" in behind_now
    bulletin_dir = tmp_path / "bulletin"
    sitepulse.run("report", "--period", "2026-01-H2", "--no-pdf", "--out", str(bulletin_dir))
    page = (bulletin_dir / "report.html").read_text(encoding="utf-8")
    slow = page.split('data-figure="slow"')[1].split("</table>")[0]
    assert "NB-0001" in slow and "主体结构封顶" in slow and registry["NB-0001"]["leader"] in slow
    open_problems = page.split("<h3>未销号问题")[1].split("</table>")[0]
    assert filed in open_problems and "市住建局" in open_problems and "逾期" in open_problems

    # Investment for January while the site was idle: the review flags it, the ledger opens a problem.
    idle_problem = f"{IDLE_PROJECT}-20260131-suspicious-idle_power"
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
    overdue_rules = [uid for uid in labelled if "overdue" in uid]
    assert overdue_rules and all(labelled[uid] for uid in overdue_rules), f"the node and problem deadline rules fire: {labelled}"
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
    district = registry[IDLE_PROJECT]["district"]
    rates = {row["district"]: row for row in csv.DictReader(io.StringIO(sitepulse.run("problem", "rates", "--by", "district")))}
    assert (rates[district]["opened"], rates[district]["closed"]) == ("2", "1"), "the stall awaits confirmation: still open"
    sitepulse.run("problem", "close", stall_problem, "--note", "现场核实: 已全面复工")
    sitepulse.run("problem", "close", filed, "--note", "征迁协议已签订")
    poll(lambda: all(problems(sitepulse)[p]["status"] == "closed" for p in (stall_problem, filed)), 30, "the closures by people")
    rates = {row["district"]: row for row in csv.DictReader(io.StringIO(sitepulse.run("problem", "rates", "--by", "district")))}
    assert rates[district]["opened"] == "2" and rates[district]["rate"] == "1.0", "the stall and the idle month, both closed by people"
    by_category = {row["category"]: row for row in csv.DictReader(io.StringIO(sitepulse.run("problem", "rates", "--by", "category")))}
    assert (by_category["征迁"]["opened"], by_category["征迁"]["closed"]) == ("1", "1") and by_category["节点逾期"]["closed"] == "0"

    # Yinzhou's "问题解决率达80.5%": 77 problems filed with one task force, 62 closed by people.
    entry = next(e for e in read_registry_topic(sitepulse.settings) if e.project_id == "NB-0004")
    found = datetime(2026, 1, 20, 9, tzinfo=SHANGHAI)
    batch = [filed_problem(entry, "要素保障", "重大项目专班", "协调用地指标", date(2026, 3, 31), f"第 {n} 项", found) for n in range(77)]
    with SitePublisher(sitepulse.settings) as publisher:
        for event in batch:
            publisher.send_keyed(EVENTS_TOPIC, b"NB-0004", msgspec.json.encode(event))
        for event in batch[:62]:
            close = ProjectEvent(f"problem_closed:{event.problem_id}", "problem_closed", "NB-0004", found + timedelta(days=5), detail="已解决",
                                 leader=event.leader, district=event.district, problem_id=event.problem_id)
            publisher.send_keyed(EVENTS_TOPIC, b"NB-0004", msgspec.json.encode(close))
    task_force = poll(
        lambda: (r := {row["department"]: row for row in csv.DictReader(io.StringIO(sitepulse.run("problem", "rates", "--by", "department")))}).get("重大项目专班", {}).get("closed") == "62" and r["重大项目专班"],
        60, "62 of 77 closed",
    )
    assert task_force["opened"] == "77" and task_force["rate"] == str(round(62 / 77, 4))

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
