"""A meter goes silent just before the worker stops; the next worker, which never saw a
reading from it, still raises its offline alarm, from the last readings it reloads."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sitepulse.streams.contract import EVENTS_TOPIC
from tests.conftest import poll, read_topic

pytestmark = pytest.mark.integration


def test_a_meter_silent_across_a_restart_still_raises_its_alarm(sitepulse, tmp_path):
    scenario = tmp_path / "week.jsonl"
    sitepulse.run("simulate", "--projects", "4", "--days", "8", "--seed", "3", "--start", "2026-03-02", "--out", str(scenario))
    truth = json.loads(scenario.with_suffix(".truth.json").read_text())
    silent = next(pid for pid, p in truth["projects"].items() if p["silent_meter"])
    silent_from = datetime.fromisoformat(truth["projects"][silent]["silent_from"])
    lines = scenario.read_bytes().splitlines()
    # Cut 10 minutes after the meter's last reading: too soon for anyone to call it offline.
    times = [datetime.fromisoformat((record := json.loads(line)).get("ts") or record["reported_at"]) for line in lines]
    cut = next(i for i, moment in enumerate(times) if (moment - silent_from).total_seconds() >= 600)
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines[:cut]) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b"\n".join(lines[cut:]) + b"\n")

    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    sitepulse.run("replay", str(tmp_path / "a.jsonl"))
    first = sitepulse.start_worker()
    first_part = sum(1 for line in lines[:cut] if b'"power"' in line)
    poll(lambda: (rows := sitepulse.query("SELECT count(kwh) FROM power_reading")) and rows[0]["count"] == first_part, 60, "the first part")
    assert sitepulse.stop_worker(first) == 0
    before = [json.loads(m.value) for m in read_topic(sitepulse.settings, EVENTS_TOPIC, expected=1, timeout_s=5)]
    assert not [e for e in before if e["kind"] == "offline"], "not overdue yet when the first worker stopped"

    sitepulse.start_worker()
    sitepulse.run("replay", str(tmp_path / "b.jsonl"))

    def offline_events():
        events = [json.loads(m.value) for m in read_topic(sitepulse.settings, EVENTS_TOPIC, expected=len(before) + 1, timeout_s=5)]
        return [e for e in events if e["kind"] == "offline"]

    (alarm,) = poll(offline_events, 60, "the silent meter's alarm after the restart")
    assert alarm["project_id"] == silent and alarm["meter_id"] == truth["projects"][silent]["silent_meter"]
    last = datetime.fromisoformat(alarm["since"])
    assert 0 <= (silent_from - last).total_seconds() <= 900, "since = its last reading before it went silent"
