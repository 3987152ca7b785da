"""InfluxDB stopped for 60 s in the middle of the stream: the worker holds its batch and
retries, logs the outage once, shows it in `sitepulse status`, and once InfluxDB is back
every reading is stored — none lost, none twice."""

from __future__ import annotations

import json
import time

import pytest

from sitepulse.bench import rss_mb
from sitepulse.embedded import READER_USER, EmbeddedInflux
from tests.conftest import Sitepulse, poll, settings_for

pytestmark = pytest.mark.integration

OUTAGE_S = 60


def test_an_influxdb_outage_loses_nothing_and_is_shown(broker, tmp_path):
    server = EmbeddedInflux.start(tmp_path / "influxdb", auth=True)
    try:
        sitepulse = Sitepulse(settings_for(broker, server, tmp_path, database="sitepulse"), tmp_path, server.user(READER_USER))
        scenario = tmp_path / "week.jsonl"
        sitepulse.run("simulate", "--projects", "4", "--days", "6", "--seed", "5", "--start", "2026-03-02", "--out", str(scenario))
        lines = scenario.read_bytes().splitlines()
        readings = {(r["project_id"], r["meter_id"], r["ts"]) for r in map(json.loads, lines) if r["type"] == "power"}
        before, during = tmp_path / "before.jsonl", tmp_path / "during.jsonl"
        before.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")
        during.write_bytes(b"\n".join(lines[len(lines) // 2 :]) + b"\n")

        sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
        sitepulse.run("replay", str(before))
        worker = sitepulse.start_worker()
        poll(lambda: sitepulse.query("SELECT count(kwh) FROM power_reading"), 60, "the first half to be stored")
        rss_before = rss_mb(worker.pid)

        server.stop()
        sitepulse.run("replay", str(during))  # the sites keep sending
        peak, shown = rss_before, None
        deadline = time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(worker.pid))
            if shown is None:
                status = sitepulse.attempt("status")
                if "中断" in status.output:
                    shown = status
            time.sleep(2)
        assert worker.poll() is None, "the worker rode out the outage"
        assert shown is not None and shown.exit_code != 0 and "InfluxDB 不可用" in shown.output, "status shows the sink degraded"

        server = EmbeddedInflux.start(tmp_path / "influxdb", port=server.port, auth=True)  # same accounts after the restart
        stored = poll(
            lambda: (n := sitepulse.query("SELECT count(kwh) FROM power_reading")[0]["count"]) == len(readings) and n,
            120, "every reading to be stored after the outage",
        )
        assert stored == len(readings)
        log = worker.log_path.read_text()
        print(f"\noutage {OUTAGE_S} s: {len(readings)} readings stored, none lost; worker RSS {rss_before:.0f} MB before, peak {peak:.0f} MB during")
        assert log.count("InfluxDB unavailable") == 1 and log.count("InfluxDB is back") == 1, "one line per outage"
        assert peak - rss_before < 100, "consumption pauses instead of piling up in memory"
        healthy = poll(lambda: "写入 InfluxDB: 正常" in (out := sitepulse.attempt("status").output) and out, 30, "status to show the sink healthy")
        assert "已处理: " in healthy
        sitepulse.stop_worker(worker)
    finally:
        server.stop()
