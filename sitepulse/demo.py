"""``sitepulse demo``: the whole pipeline on this machine, without Docker."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from datetime import datetime, time as clock_time, timedelta
from pathlib import Path

import click
from pydantic import SecretStr

from .agents.core.periods import half_month_of
from .embedded import READER_USER, WORKER_USER, ChildProcess, EmbeddedBroker, EmbeddedInflux, spawn
from .runtime.settings import Settings
from .streams.investment_history import load_investment_file
from .streams.nodes import load_nodes_file, publish_nodes
from .streams.problem_filing import closing_event, filed_problem, publish_ledger_events
from .streams.simulated_ledgers import filed_problems, plan_nodes
from .streams.registry import read_registry_topic
from .streams.simulator import Scenario, build_scenario, last_year_figures, write_last_year_csv
from .streams.topics import ensure_topics


# The bulletin once the history has been replayed and judged, then again as days go by.
REPORT_AFTER_HISTORY_S = 45.0
REPORT_EVERY_S = 600.0


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop()


def run_demo(settings: Settings, *, projects: int, days: int, speed: float, seed: int, duration: float | None) -> int:
    state = (settings.state_dir / "demo").resolve()
    # The broker keeps nothing on disk, so InfluxDB starts empty too: one consistent run.
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    # Explicitly: a process started in the background by a shell inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGINT, _raise_stop)
    children: list[ChildProcess | EmbeddedBroker | EmbeddedInflux] = []
    try:
        broker = EmbeddedBroker.start(state)
        children.append(broker)
        influx = EmbeddedInflux.start(state / "influxdb", auth=True)
        children.append(influx)
        worker_account = influx.user(WORKER_USER)
        run_settings = settings.model_copy(
            update={
                "broker": broker.url,
                "influx_url": influx.url,
                "influx_api": "v1",
                "influx_username": worker_account.name,
                "influx_password": SecretStr(worker_account.password),
                "state_dir": state,
                "profile": "embedded",
            }
        )
        influx.create_database(run_settings.influx_db)
        credentials = _write_credentials(state, run_settings, influx)
        ensure_topics(run_settings)
        env = {**os.environ, **run_settings.child_environment()}
        command = [sys.executable, "-m", "sitepulse"]
        worker = spawn("worker", [*command, "worker"], state / "worker.log", env)
        children.append(worker)
        start = datetime.now(settings.tz).date() - timedelta(days=days)
        simulator = spawn(
            "simulator",
            [*command, "simulate", "--live", "--year-to-date", "--projects", str(projects), "--days", str(days), "--speed", str(speed),
             "--seed", str(seed), "--start", start.isoformat()],
            state / "simulator.log",
            env,
        )
        children.append(simulator)
        scenario = build_scenario(projects, days, seed, start, settings.tz, year_to_date=True)
        _load_last_year(run_settings, state, scenario, simulator)
        _load_ledgers(run_settings, state, scenario)
        _print_banner(run_settings, state, days, credentials)
        deadline = time.monotonic() + duration if duration else None
        history_s = days * 86_400 / speed
        next_report, reports, sent = time.monotonic() + history_s + REPORT_AFTER_HISTORY_S, [], set()
        while deadline is None or time.monotonic() < deadline:
            for child in (worker, simulator):
                child.check_alive()
            if time.monotonic() >= next_report and all(r.process.poll() is not None for r in reports):
                reports = _make_reports(command, run_settings, state, env, sent)
                next_report = time.monotonic() + REPORT_EVERY_S
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        click.echo("\n正在停止 …")
    except Exception as exc:  # a child died or a server did not start: say so, then clean up
        click.echo(f"演示出错: {exc}", err=True)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
    click.echo("已停止: 模拟站点、处理进程、InfluxDB、消息代理均已退出。")
    return 0


def _make_reports(command: list[str], settings: Settings, state: Path, env: dict[str, str], sent: set[str]) -> list[ChildProcess]:
    """In the background: the scheduling bulletin of the half-month that holds yesterday
    (its days so far) in report/, and the one before it, complete, in report/<period>/."""
    today = datetime.now(settings.tz).date()
    current = half_month_of(today - timedelta(days=1))
    previous = current.previous()
    # With a robot configured, the complete period's bulletin goes to it once, after the
    # late-data grace (a bulletin sent is not sent again).
    send = []
    if settings.notify_url and previous.label not in sent and today > previous.last + timedelta(hours=settings.late_grace_hours):
        send = ["--send"]
        sent.add(previous.label)
    return [
        spawn(f"report {period.label}", [*command, "report", "--period", period.label, "--out", str(out), *extra], state / f"report-{period.label}.log", env)
        for period, out, extra in ((current, state / "report", []), (previous, state / "report" / previous.label, send))
    ]


def _load_ledgers(settings: Settings, state: Path, scenario: Scenario) -> None:
    """The other two ledgers as supervisors keep them: the plan nodes (loaded, some
    reported done) and problems filed over the past weeks (some closed by a note)."""
    plan, done = plan_nodes(scenario)
    path = state / "nodes.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("project_id,node,planned_date\n")
        handle.writelines(f"{n.project_id},{n.node},{n.planned_date.isoformat()}\n" for n in plan)
    load_nodes_file(settings, path, "演示: 年度计划节点 (一图五表)")
    publish_nodes(settings, done, "node_done", f"演示: {len(done)} 个节点报送完成", "演示: 节点完成报送")
    entries = {p.entry.project_id: p.entry for p in scenario.projects}
    events = []
    for problem in filed_problems(scenario):
        entry = entries[problem.project_id]
        opened = datetime.combine(problem.opened, clock_time(9), settings.tz)
        events.append(filed_problem(entry, problem.category, problem.department, problem.measures, problem.due, problem.detail, opened))
        if problem.closed is not None:
            at = datetime.combine(problem.closed, clock_time(17), settings.tz)
            events.append(closing_event(events[-1].problem_id or "", entry.project_id, problem.note, at, events[-1].leader, events[-1].district))
    publish_ledger_events(settings, events, "problem_open", "演示: 近期交办问题", "演示: 问题台账")


def _load_last_year(settings: Settings, state: Path, scenario: Scenario, simulator: ChildProcess, timeout_s: float = 60.0) -> None:
    """Last year's monthly figures of the simulated projects, loaded as a supervisor
    would (``investment load``, audited) once the simulator has registered them."""
    path = state / "lastyear.csv"
    write_last_year_csv(last_year_figures(scenario), path)
    wanted = {p.entry.project_id for p in scenario.projects}
    deadline = time.monotonic() + timeout_s
    while not wanted <= {entry.project_id for entry in read_registry_topic(settings)}:
        simulator.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"模拟站点 {timeout_s:.0f} 秒内未发布项目登记表")
        time.sleep(0.5)
    load_investment_file(settings, path, "演示: 加载上年同期数据")


def _write_credentials(state: Path, settings: Settings, influx: EmbeddedInflux) -> Path:
    """The worker's and Grafana's InfluxDB accounts, for the user's shell (mode 0600):
    passwords go to a file, never to the terminal or a log."""
    reader = influx.user(READER_USER)
    path = state / "credentials.env"
    path.touch(mode=0o600)
    path.write_text(
        "# sitepulse demo: the worker's InfluxDB account (reads and writes its database)\n"
        f"SITEPULSE_INFLUX_USERNAME={settings.influx_username}\n"
        f"SITEPULSE_INFLUX_PASSWORD={settings.influx_password.get_secret_value()}\n"
        "# Grafana's datasource account (read only)\n"
        f"GRAFANA_INFLUX_USERNAME={reader.name}\n"
        f"GRAFANA_INFLUX_PASSWORD={reader.password}\n"
    )
    return path


def _print_banner(settings: Settings, state, days: int, credentials: Path) -> None:
    today = datetime.now(settings.tz).date()
    start = (today - timedelta(days=days)).isoformat()
    broker = settings.broker
    influx = settings.influx_url
    db = settings.influx_db
    click.echo(
        f"""
sitepulse 演示已启动 (嵌入式: Tansu 消息代理 + InfluxDB + Faust 处理进程 + 模拟站点)
  消息代理:   {broker}
  InfluxDB:   {influx}  数据库 {db}
  日志目录:   {state}  (worker.log, simulator.log, tansu.log, influxdb/influxd.log)

在另一个终端查看数据:
  set -a; . {credentials}; set +a   # InfluxDB 开启了认证: 账号密码在此文件中
  export SITEPULSE_BROKER={broker} SITEPULSE_INFLUX_URL={influx} SITEPULSE_INFLUX_DB={db}
  export SITEPULSE_STATE_DIR={state}   # 处理进程的状态文件 (sitepulse status 读取)
  .venv/bin/sitepulse status
  .venv/bin/sitepulse export daily --start {start} --end {today.isoformat()}
  curl -sG {influx}/query -u "$GRAFANA_INFLUX_USERNAME:$GRAFANA_INFLUX_PASSWORD" --data-urlencode db={db} \\
       --data-urlencode "q=SELECT kwh, readings FROM power_daily GROUP BY project_id ORDER BY time DESC LIMIT 3"

半月调度通报: 历史回放完成约 {REPORT_AFTER_HISTORY_S:.0f} 秒后生成于 {state / "report"} (report.html, report.pdf: 本期截至最近判定日),
  上一期的完整通报在其下以期间命名的目录中, 之后每 10 分钟更新。上年同期数据已加载 (见 export audit)。

模拟站点先以加速方式回放最近 {days} 天的历史, 之后按真实时间每 15 分钟上报一次。
按 Ctrl-C 停止全部进程。
READY""",
    )
