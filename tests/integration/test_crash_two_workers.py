"""Two workers share a replay; one of them is SIGKILLed five times while the other takes
over its partitions. The database ends with exactly what one uninterrupted worker stores
for the same input: nothing lost, nothing counted twice, no meter or day judged twice.

The two workers run on a broker of their own, the replay published in parts while they
run: on the reference's broker the whole replay is in the topics before they start, and
two workers consume it in about a second, before the second life of worker A has even
joined the group. Their own broker also keeps the reference's events (the events topic
feeds the ledger) out of their database, so an event they fail to raise shows as missing.
Same scenario and comparison as the single-worker crash test (test_crash.py)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sitepulse.embedded import EmbeddedBroker
from tests.conftest import Sitepulse, poll, settings_for
from tests.integration.test_crash import DAYS, KILLS, MEASUREMENTS, PROJECTS, SEED, START, settled, stored

pytestmark = pytest.mark.integration

JOINED = "[^Worker]: Ready"  # Faust's line once the worker has its first partitions
HANDLED = "first batch handled"  # the worker's own line at its first batch


def day_parts(scenario: Path, count: int, tz: ZoneInfo) -> list[Path]:
    """The scenario in ``count`` files, cut where a local day's readings end, so that
    replaying them one after the other sends the very messages one replay sends (the
    replay packs a project's readings per local day; midnight belongs to the day before)."""
    lines = scenario.read_bytes().splitlines(keepends=True)
    day_starts, window = [], None
    for number, line in enumerate(lines):
        record = json.loads(line)
        if record["type"] == "power":
            day = (datetime.fromisoformat(record["ts"]) - timedelta(microseconds=1)).astimezone(tz).date()
            if day != window and window is not None:
                day_starts.append(number)
            window = day
    cuts = [0, *(day_starts[len(day_starts) * k // count] for k in range(1, count)), len(lines)]
    parts = []
    for k, (first, end) in enumerate(zip(cuts, cuts[1:])):
        part = scenario.with_name(f"{scenario.stem}.part{k}.jsonl")
        part.write_bytes(b"".join(lines[first:end]))
        parts.append(part)
    return parts


def test_two_workers_one_killed_five_times_store_what_one_uninterrupted_worker_stores(sitepulse, influx, tmp_path):
    scenario = tmp_path / "month.jsonl"
    registry = scenario.with_suffix(".registry.csv")
    sitepulse.run("simulate", "--projects", str(PROJECTS), "--days", str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out", str(scenario))
    sitepulse.run("registry", "load", str(registry), "--reason", "测试项目登记")
    sitepulse.run("replay", str(scenario))
    judged_days = PROJECTS * (DAYS - 1)

    reference_db = sitepulse.settings.influx_db
    reference = sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1", SITEPULSE_APP_ID="reference")
    expected = settled(sitepulse, reference_db, judged_days)
    sitepulse.stop_worker(reference)
    total = len(expected["power_reading"])

    two_db = f"{reference_db}_two"
    (tmp_path / "two").mkdir()
    broker = EmbeddedBroker.start(tmp_path / "two" / "broker")
    two = Sitepulse(settings_for(broker, influx, tmp_path / "two", database=two_db), tmp_path / "two", sitepulse.reader)
    try:
        two.run("registry", "load", str(registry), "--reason", "测试项目登记")
        parts = day_parts(scenario, KILLS + 1, two.settings.tz)
        env = {
            "SITEPULSE_APP_ID": "two",
            "SITEPULSE_REVIEW_INTERVAL_S": "1",
            # One day-batch message at a time: many small commits for the kills to fall between.
            "SITEPULSE_BATCH_MESSAGES": "1",
        }
        steady = two.start_worker(**env, SITEPULSE_STATE_DIR=str(tmp_path / "state-b"))
        rng = random.Random(SEED)
        kills: list[tuple[int, str]] = []  # (raw readings stored, how far that life of A got)
        last = 0
        for part in parts[:-1]:
            victim = two.start_worker(**env, SITEPULSE_STATE_DIR=str(tmp_path / "state-a"))
            # Otherwise A dies starting or joining, while B holds every partition.
            working = rng.random() < 0.6
            if working:
                poll(lambda: JOINED in victim.log_path.read_text(errors="replace"), 90, "worker A to join the group")
            replay_log = part.with_suffix(".log")
            with replay_log.open("wb") as output:
                replay = subprocess.Popen(
                    [sys.executable, "-m", "sitepulse", "replay", str(part)],
                    env={**os.environ, **two.env}, cwd=two.tmp_path, stdout=output, stderr=subprocess.STDOUT,
                )
            # Kill once this part is flowing (through A, when it is to die working), a random
            # moment later: mid-part, or after it was handled but before it was committed.
            poll(lambda: stored(two, two_db) > last, 90, "the workers to store readings of the next part")
            if working:
                poll(lambda: HANDLED in victim.log_path.read_text(errors="replace"), 90, "worker A to handle a batch")
            time.sleep(rng.uniform(0.0, 0.6))
            last = stored(two, two_db)
            log = victim.log_path.read_text(errors="replace")
            victim.kill()  # SIGKILL: no shutdown, no commit, no flush, no leaving the group
            victim.wait()
            kills.append((last, "handled a batch" if HANDLED in log else "joined" if JOINED in log else "starting"))
            assert replay.wait(120) == 0, replay_log.read_text(errors="replace")
            assert steady.poll() is None, f"worker B died; see {steady.log_path}"
            # Sometimes past the 4 s session timeout: B alone owns all partitions for a while.
            time.sleep(rng.uniform(0.0, 6.0))
        last_a = two.start_worker(**env, SITEPULSE_STATE_DIR=str(tmp_path / "state-a"))
        two.run("replay", str(parts[-1]))
        actual = settled(two, two_db, judged_days)
        assert steady.poll() is None and last_a.poll() is None, f"a worker died; see {steady.log_path}, {last_a.log_path}"
    finally:
        two.stop_all()
        broker.stop()

    print(f"\nworker A killed at {[k for k, _ in kills]} of {total} raw readings stored; that life had {[s for _, s in kills]}")
    for measurement in MEASUREMENTS:
        print(f"  {measurement}: {len(expected[measurement])} points uninterrupted, {len(actual[measurement])} with two workers after {KILLS} kills")
    # Kept next to the workers' logs, to diagnose a mismatch.
    (tmp_path / "compared.json").write_text(json.dumps({"expected": expected, "actual": actual}, ensure_ascii=False, indent=1), encoding="utf-8")
    assert any(0 < k < total for k, _ in kills), "at least one kill landed mid-replay"
    assert any(s == "handled a batch" for _, s in kills), "at least one kill took partitions A was working on"
    for measurement in MEASUREMENTS:
        missing = sorted(set(expected[measurement]) - set(actual[measurement]))
        extra = sorted(set(actual[measurement]) - set(expected[measurement]))
        assert not missing and not extra, f"{measurement}: missing {missing[:3]}, extra {extra[:3]}"
