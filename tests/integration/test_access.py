"""Who may do what in InfluxDB, on the real auth-enabled influxd the suite runs: the
worker's account reads and writes its database and nothing more; Grafana's account only
reads, and can run every query the boards and alert rules send; nobody gets in without
credentials; and no password reaches a log."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from sitepulse.agents.core.daily import epoch_ms
from sitepulse.agents.core.nodes import Schedule
from sitepulse.agents.core.problems import Problem
from sitepulse.sink.points import node_point, problem_point, project_point, schedule_point
from sitepulse.cli import cli
from sitepulse.embedded import READER_USER, WORKER_USER, EmbeddedError
from sitepulse.streams.contract import NodeRecord, RegistryEntry
from tests.board_queries import alert_queries, board_queries, run_influxql, run_series, substitute
from tests.conftest import poll

pytestmark = pytest.mark.integration


def http(url: str, path: str, fields: dict[str, str], body: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}{path}?{urllib.parse.urlencode(fields)}", data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def account(influx, name: str) -> dict[str, str]:
    user = influx.user(name)
    return {"u": user.name, "p": user.password}


POINT = b"power_reading,project_id=NB-9999,meter_id=M1 kwh=1.0 1772424000000"


def test_grafana_reads_but_cannot_write_and_the_worker_cannot_administer(sitepulse, influx):
    database = sitepulse.settings.influx_db
    write = {"db": database, "precision": "ms"}
    status, _ = http(influx.url, "/write", {**write, **account(influx, WORKER_USER)}, POINT)
    assert status == 204, "the worker writes its database"
    status, text = http(influx.url, "/write", {**write, **account(influx, READER_USER)}, POINT)
    assert status == 403 and "not authorized" in text, f"Grafana's account must not write: {status} {text}"
    status, text = http(influx.url, "/query", {"db": database, "q": "SELECT count(kwh) FROM power_reading", **account(influx, READER_USER)})
    assert status == 200 and json.loads(text)["results"][0]["series"][0]["values"][0][1] == 1, text

    for statement in (f'DROP DATABASE "{database}"', "CREATE USER intruder WITH PASSWORD 'x' WITH ALL PRIVILEGES", f'DROP MEASUREMENT power_reading'):
        for name in (WORKER_USER, READER_USER):
            with pytest.raises(EmbeddedError, match="(requires admin privilege|not authorized)"):
                influx.run_query(statement, user=name, database=database)
    assert sitepulse.query("SELECT count(kwh) FROM power_reading")[0]["count"] == 1, "the data is still there"

    status, text = http(influx.url, "/query", {"db": database, "q": "SHOW MEASUREMENTS"})
    assert status == 401, "no credentials, no answer"
    status, _ = http(influx.url, "/write", write, POINT)
    assert status == 401


def test_a_wrong_password_is_refused_with_a_clear_message(sitepulse):
    wrong = {**sitepulse.env, "SITEPULSE_INFLUX_PASSWORD": "wrong"}
    refused = CliRunner().invoke(cli, ["export", "daily", "--start", "2026-03-01", "--end", "2026-03-02"], env=wrong)
    assert refused.exit_code != 0
    assert "InfluxDB 拒绝了请求" in refused.output and "SITEPULSE_INFLUX_PASSWORD" in refused.output
    assert "Traceback" not in refused.output


def test_no_password_reaches_the_worker_log(sitepulse, influx, tmp_path):
    scenario = tmp_path / "day.jsonl"
    sitepulse.run("simulate", "--projects", "2", "--days", "2", "--start", "2026-03-02", "--out", str(scenario))
    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    sitepulse.run("replay", str(scenario))
    worker = sitepulse.start_worker(SITEPULSE_LOG_LEVEL="debug")
    poll(lambda: sitepulse.query("SELECT count(kwh) FROM power_reading"), 60, "readings stored by the worker account")
    sitepulse.stop_worker(worker)
    log = worker.log_path.read_text(errors="replace")
    for name in (WORKER_USER, READER_USER):
        assert influx.user(name).password not in log
    assert influx.user(WORKER_USER).password not in (influx.root / "influxd.log").read_text(errors="replace")


def test_operator_commands_leave_an_audit_trail_of_who_and_why(sitepulse, tmp_path):
    scenario = tmp_path / "week.jsonl"
    sitepulse.run("simulate", "--projects", "3", "--days", "2", "--start", "2026-03-02", "--out", str(scenario))
    as_zhang = {**sitepulse.env, "SITEPULSE_OPERATOR": "张三(市发改委)"}
    runner = CliRunner()
    refused = runner.invoke(cli, ["registry", "load", str(scenario.with_suffix(".registry.csv"))], env=as_zhang)
    assert refused.exit_code != 0 and "--reason" in refused.output, "a change without a reason is refused"
    for args in (
        ["registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "2026 年重大项目清单第二批"],
        ["stoppage", "add", "NB-0002", "2026-03-02", "2026-03-03", "--reason", "台风停工令"],
    ):
        done = runner.invoke(cli, args, env=as_zhang)
        assert done.exit_code == 0, done.output
    sitepulse.start_worker()

    def trail():
        rows = list(csv.DictReader(io.StringIO(sitepulse.run("export", "audit"))))
        return rows if len(rows) == 2 else None

    rows = poll(trail, 60, "the audit trail in InfluxDB")
    assert [r["action"] for r in rows] == ["registry_load", "stoppage_add"]
    assert all(r["operator"] == "张三(市发改委)" and r["host"] for r in rows)
    assert rows[0]["reason"] == "2026 年重大项目清单第二批" and "3 个项目" in rows[0]["subject"]
    assert rows[1]["reason"] == "台风停工令" and rows[1]["subject"] == "NB-0002 2026-03-02 至 2026-03-03"
    assert rows[1]["action_name"] == "停工备案"


SHANGHAI = ZoneInfo("Asia/Shanghai")


def ledger_points() -> list[str]:
    """Two projects as the worker writes them: NB-1 behind its 主体结构封顶 node, NB-2 behind
    on an earlier day and on schedule on the newest; four problems, one of each status."""
    nb1 = RegistryEntry(
        "NB-1", "鄞州区安置房1号", "鄞州区", "东部新城", "市住建局", "city", "new", "王伟", "13800000001", "计量中心1组", 1000.0, date(2026, 1, 1), 630.0,
        owner_person="陈刚", owner_phone="13900000009", leader_title="副区长", partner_departments="市交通局",
    )
    opened = datetime(2026, 1, 5, 9, tzinfo=SHANGHAI)

    def problem(number: int, **changes) -> Problem:
        return Problem(f"NB-{number}-p", f"NB-{number % 2 + 1}", "problem_opened", date(2026, 1, 5), opened, "征地未完成", "王伟", "鄞州区", category="征迁", **changes)

    return [
        project_point(nb1, epoch_ms(opened)),
        node_point(NodeRecord("NB-1", "开工", planned_date=date(2026, 1, 10)), epoch_ms(opened)),
        node_point(NodeRecord("NB-1", "开工", done_date=date(2026, 1, 12)), epoch_ms(opened) + 60_000),
        node_point(NodeRecord("NB-1", "主体结构封顶", planned_date=date(2026, 2, 20)), epoch_ms(opened)),
        schedule_point(Schedule("NB-1", 2, 5, "主体结构封顶"), "鄞州区", "王伟", date(2026, 2, 25), SHANGHAI),
        schedule_point(Schedule("NB-2", 1, 3, "开工"), "鄞州区", "王伟", date(2026, 2, 24), SHANGHAI),
        schedule_point(Schedule("NB-2", 1, 0, None), "鄞州区", "王伟", date(2026, 2, 25), SHANGHAI),
        problem_point(problem(1), SHANGHAI),
        problem_point(problem(2, awaiting_since=opened), SHANGHAI),
        problem_point(problem(3, due=date(2026, 1, 31), overdue_since=date(2026, 2, 1), department="市交通局"), SHANGHAI),
        problem_point(problem(4, closed_at=opened, closed_by="manual", note="已协调"), SHANGHAI),
    ]


def test_grafana_runs_every_board_and_alert_query(sitepulse, influx):
    """Every panel, variable and alert rule is InfluxQL this influxd accepts from Grafana's
    account; on a small ledger, the 细账 and 难账 panels count what a supervisor would."""
    database = sitepulse.settings.influx_db
    status, text = http(influx.url, "/write", {"db": database, "precision": "ms", **account(influx, WORKER_USER)}, "\n".join(ledger_points()).encode())
    assert status == 204, text
    first, last = datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2026, 3, 1, tzinfo=SHANGHAI)
    variables = {"district": "鄞州区", "project": "NB-1", "period": "2026-02-H2"}
    read = (influx.url, database)
    rows = {(uid, title): run_influxql(*read, substitute(query, first, last, variables), sitepulse.reader) for uid, title, query in board_queries()}
    series = {uid: run_series(*read, substitute(query, first, last, {}), sitepulse.reader) for uid, query in alert_queries()}

    counts = {title: values[0][1] for (uid, title), values in rows.items() if uid == "sitepulse-overview" and values and len(values[0]) == 2}
    assert counts["计划节点滞后项目"] == 1, "NB-2 was behind, but not on its newest day"
    assert (counts["未销号问题"], counts["待销号"], counts["逾期问题"]) == (3, 1, 1)
    nodes = rows[("sitepulse-project", "计划节点 (一图五表)")]
    assert sorted(row[1:3] for row in nodes) == [["2026-01-10", "2026-01-12"], ["2026-02-20", None]]
    (info,) = rows[("sitepulse-project", "项目登记信息")]
    assert {"副区长", "陈刚", "市交通局"} <= set(info) and "13900000009" not in json.dumps(info, ensure_ascii=False)

    def firing(uid: str) -> set[tuple[str, str, str]]:
        return {(s["tags"]["project_id"], s["tags"]["district"], s["tags"]["leader"]) for s in series[uid] if s["values"][-1][1] > 0}

    assert firing("sp-node-overdue") == {("NB-1", "鄞州区", "王伟")}
    assert firing("sp-problem-overdue") == {("NB-2", "鄞州区", "王伟")}
