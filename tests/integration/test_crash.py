"""A worker killed with SIGKILL five times during a replay ends with exactly what an
uninterrupted worker stores for the same input: nothing lost, nothing counted twice.

Both runs read the same topics on one broker (separate consumer groups) and write to
separate InfluxDB databases; every measurement sitepulse writes is compared, except the
fields that say *when* something was noticed (wall or stream clock at the time)."""

from __future__ import annotations

import json
import random
import time
from datetime import date

import pytest

from tests.conftest import poll

pytestmark = pytest.mark.integration

START, DAYS, SEED, PROJECTS, KILLS = date(2026, 3, 20), 20, 31, 10, 5
MEASUREMENTS = (
    "power_reading", "power_daily", "investment", "project", "stoppage", "event", "problem",
    "project_status", "meter_status", "ranking", "completion",
)
# When a change was noticed, not what it is: the stream's clock at that moment, or the
# Kafka time of the registry message.
NOTICED_AT = {"event": {"at"}, "problem": {"opened_at", "closed_at"}, "project": {"time"}}


def dump(sitepulse, database: str) -> dict[str, list[str]]:
    contents = {}
    for measurement in MEASUREMENTS:
        rows = sitepulse.query(f"SELECT * FROM {measurement} GROUP BY *", database=database)
        skip = NOTICED_AT.get(measurement, set())
        contents[measurement] = sorted(json.dumps({k: v for k, v in row.items() if k not in skip}, sort_keys=True, ensure_ascii=False) for row in rows)
    return contents


def settled(sitepulse, database: str, judged_days: int):
    """The database once every complete day is judged and nothing changed for 6 s (the
    leader's review ranks three periods each second; on a loaded machine one may take
    longer than a single 3 s look)."""
    previous, unchanged = None, 0

    def check():
        nonlocal previous, unchanged
        current = dump(sitepulse, database)
        judged = sum(1 for row in current["power_daily"] if '"machine_state"' in row and '"machine_state": null' not in row)
        unchanged = unchanged + 1 if current == previous else 0
        previous = current
        return current if unchanged >= 2 and judged >= judged_days and current["ranking"] else None

    return poll(check, 240, f"{database} to settle", interval_s=3)


def test_five_kills_lose_nothing_and_count_nothing_twice(sitepulse, influx, tmp_path):
    scenario = tmp_path / "month.jsonl"
    sitepulse.run("simulate", "--projects", str(PROJECTS), "--days", str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out", str(scenario))
    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    sitepulse.run("replay", str(scenario))
    judged_days = PROJECTS * (DAYS - 1)

    reference_db = sitepulse.settings.influx_db
    reference = sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1", SITEPULSE_APP_ID="reference")
    expected = settled(sitepulse, reference_db, judged_days)
    sitepulse.stop_worker(reference)

    crashed_db = f"{reference_db}_crashed"
    influx.create_database(crashed_db)
    env = {
        "SITEPULSE_INFLUX_DB": crashed_db,
        "SITEPULSE_APP_ID": "crashed",
        "SITEPULSE_STATE_DIR": str(tmp_path / "crashed-state"),
        "SITEPULSE_REVIEW_INTERVAL_S": "1",
        # One day-batch message at a time: many small commits for the kills to fall between.
        "SITEPULSE_BATCH_MESSAGES": "1",
    }
    rng = random.Random(SEED)
    kill_points = [0]
    for _ in range(KILLS):
        worker = sitepulse.start_worker(**env)
        # Kill once this life has stored something more, a random moment later: the
        # replay takes seconds, so a fixed delay would land every kill before or after it.
        poll(lambda: stored(sitepulse, crashed_db) > kill_points[-1] or stored(sitepulse, crashed_db) == len(expected["power_reading"]), 60, "the worker to make progress")
        time.sleep(rng.uniform(0.0, 0.6))
        written = stored(sitepulse, crashed_db)
        worker.kill()  # SIGKILL: no shutdown, no commit, no flush
        worker.wait()
        kill_points.append(written)
    kill_points = kill_points[1:]
    sitepulse.start_worker(**env)
    actual = settled(sitepulse, crashed_db, judged_days)

    print(f"\nkilled at {kill_points} of {len(expected['power_reading'])} raw readings stored")
    for measurement in MEASUREMENTS:
        print(f"  {measurement}: {len(expected[measurement])} points uninterrupted, {len(actual[measurement])} after {KILLS} kills")
    assert any(0 < k < len(expected["power_reading"]) for k in kill_points), "at least one kill landed mid-replay"
    for measurement in MEASUREMENTS:
        missing = sorted(set(expected[measurement]) - set(actual[measurement]))
        extra = sorted(set(actual[measurement]) - set(expected[measurement]))
        assert not missing and not extra, f"{measurement}: missing {missing[:3]}, extra {extra[:3]}"


def stored(sitepulse, database: str) -> int:
    rows = sitepulse.query("SELECT count(kwh) FROM power_reading", database=database)
    return rows[0]["count"] if rows else 0
