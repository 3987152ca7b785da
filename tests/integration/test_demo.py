"""The README's demo command: it comes up, data flows, and Ctrl-C stops every process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import poll
from tests.expected import parse_daily_csv

pytestmark = pytest.mark.integration


def processes_under(state_dir: Path, besides: int) -> list[int]:
    """Processes whose SITEPULSE_STATE_DIR lies in ``state_dir``: the demo's children."""
    marker = f"SITEPULSE_STATE_DIR={state_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in (os.getpid(), besides):
            try:
                if any(var.startswith(marker) for var in (entry / "environ").read_bytes().split(b"\0")):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_runs_the_pipeline_and_ctrl_c_stops_every_child(tmp_path):
    state_dir = tmp_path / "state"
    env = {**os.environ, "SITEPULSE_STATE_DIR": str(state_dir)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "sitepulse", "demo", "--projects", "5", "--days", "2", "--speed", "86400"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(demo.stdout), daemon=True)
    reader.start()
    try:
        poll(lambda: any(line.strip() == "READY" for line in output), 60, "the demo banner")
        banner = "".join(output)
        broker = re.search(r"SITEPULSE_BROKER=(\S+)", banner).group(1)
        influx = re.search(r"SITEPULSE_INFLUX_URL=(\S+)", banner).group(1)
        export = re.search(r"sitepulse export daily (--start \S+ --end \S+)", banner).group(1).split()
        credentials = Path(re.search(r"set -a; \. (\S+);", banner).group(1))
        assert credentials.stat().st_mode & 0o077 == 0, "the credentials file is private"
        accounts = dict(line.split("=", 1) for line in credentials.read_text().splitlines() if line and not line.startswith("#"))
        user_env = {**os.environ, "SITEPULSE_BROKER": broker, "SITEPULSE_INFLUX_URL": influx, **accounts}

        def exported_rows():
            result = subprocess.run(
                [sys.executable, "-m", "sitepulse", "export", "daily", *export], env=user_env, capture_output=True, text=True
            )
            return result.returncode == 0 and len(parse_daily_csv(result.stdout)) >= 5 * 2

        # The command the banner prints shows the simulated history (5 projects x 2 days).
        poll(exported_rows, 90, "the demo's daily kWh in the export", interval_s=1)
        assert len(processes_under(state_dir.resolve(), demo.pid)) >= 4  # broker, influxd, worker, simulator
        # The banner says where the scheduling bulletin appears.
        report_dir = Path(re.search(r"半月调度通报: 历史回放完成约 \d+ 秒后生成于 (\S+) ", banner).group(1))
        poll(lambda: (report_dir / "report.pdf").exists() and (report_dir / "report.html").exists(), 180, "the demo's report", interval_s=2)
        assert "重大项目半月调度通报" in (report_dir / "report.html").read_text(encoding="utf-8")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
        reader.join(5)
    assert demo.returncode == 0, "".join(output)[-3000:]
    assert "已停止" in "".join(output)
    assert processes_under(state_dir.resolve(), demo.pid) == []
    # InfluxDB runs with auth on, and no password reaches the terminal or a log.
    printed = "".join(output)
    for password in (accounts["SITEPULSE_INFLUX_PASSWORD"], accounts["GRAFANA_INFLUX_PASSWORD"]):
        assert password not in printed
        for log in state_dir.rglob("*.log"):
            assert password not in log.read_text(errors="replace"), log
