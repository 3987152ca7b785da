"""Who may do what in InfluxDB, on the real auth-enabled influxd the suite runs: the
worker's account reads and writes its database and nothing more; Grafana's account only
reads; nobody gets in without credentials; and no password reaches a log."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from click.testing import CliRunner

from sitepulse.cli import cli
from sitepulse.embedded import READER_USER, WORKER_USER, EmbeddedError
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
