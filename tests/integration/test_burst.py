"""A burst far above the normal rate (20 days of 10 projects' readings at once, where the
normal rate is one reading per meter per 15 minutes) is absorbed with bounded memory:
the worker takes batches of at most SITEPULSE_BATCH_SIZE and the consumer waits for it."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import poll
from sitepulse.bench import rss_mb

pytestmark = pytest.mark.integration


def test_a_burst_is_absorbed_with_bounded_memory(sitepulse, tmp_path):
    scenario = tmp_path / "burst.jsonl"
    sitepulse.run("simulate", "--projects", "10", "--days", "20", "--seed", "8", "--start", "2026-03-02", "--out", str(scenario))
    readings = {(r["project_id"], r["meter_id"], r["ts"]) for r in map(json.loads, scenario.read_bytes().splitlines()) if r["type"] == "power"}
    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    worker = sitepulse.start_worker()
    poll(lambda: sitepulse.query("SELECT count(annual_plan_wan) FROM project"), 60, "the worker to take the registry")
    idle = rss_mb(worker.pid)

    peak, done = idle, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(worker.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    sitepulse.run("replay", str(scenario))
    try:
        poll(lambda: stored_readings(sitepulse) == len(readings), 180, "the burst to be stored", interval_s=1)
    finally:
        done.set()
        sampler.join()
    elapsed = time.monotonic() - started
    print(f"\nburst of {len(readings)} readings (20 days of 10 projects) stored in {elapsed:.1f} s; worker RSS {idle:.0f} MB idle, peak {peak:.0f} MB")
    assert peak - idle < 150, "memory stays bounded under a burst"


def stored_readings(sitepulse) -> int:
    rows = sitepulse.query("SELECT count(kwh) FROM power_reading")
    return rows[0]["count"] if rows else 0  # no series yet before the first write
