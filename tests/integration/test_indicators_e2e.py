"""Indicators end to end: a simulated month with known stalls, a silent meter, new
projects and the Spring Festival, replayed through the broker and the worker; the states
that ``export daily`` shows must agree with the scenario's ground truth on every day."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from sitepulse.streams.contract import EVENTS_TOPIC
from tests.conftest import poll, read_topic

pytestmark = pytest.mark.integration

START, DAYS, SEED, PROJECTS = date(2026, 2, 2), 35, 19, 16


def truth_states(truth: dict) -> dict[tuple[str, str], str]:
    """The states the definitions give for what the scenario injected, written from the
    ground truth (which days a site was idle), not from any meter reading."""
    expected = {}
    for project_id, p in truth["projects"].items():
        planned = date.fromisoformat(p["planned_start"])
        stalls = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in p["stalls"]]
        silent_from = datetime.fromisoformat(p["silent_from"]) if p["silent_from"] else None
        state, idle_run, busy_run = "not_started", 0, 0
        for n in range(DAYS):
            day = START + timedelta(days=n)
            workday = chinese_calendar.is_workday(day)
            statutory = chinese_calendar.get_holiday_detail(day)[1] is not None and not workday
            before_start = p["kind"] == "new" and day < planned
            idle = before_start or any(a <= day <= b for a, b in stalls) or statutory
            if silent_from and (datetime.combine(day + timedelta(days=1), datetime.min.time(), silent_from.tzinfo) - silent_from).total_seconds() > 900:
                expected[(day.isoformat(), project_id)] = "offline"
                continue
            if state == "not_started":
                if not idle:
                    state = "started"
            elif workday and state == "started":
                idle_run = idle_run + 1 if idle else 0
                if idle_run == 3:
                    state, idle_run = "stalled", 0
            elif workday and state == "stalled":
                busy_run = busy_run + 1 if not idle else 0
                if busy_run == 2:
                    state, busy_run = "started", 0
            expected[(day.isoformat(), project_id)] = state
    return expected


def test_exported_states_agree_with_the_ground_truth(sitepulse, tmp_path):
    scenario = tmp_path / "month.jsonl"
    sitepulse.run(
        "simulate", "--projects", str(PROJECTS), "--days", str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out", str(scenario)
    )
    truth = json.loads(scenario.with_suffix(".truth.json").read_text())
    expected = truth_states(truth)
    assert sum(1 for s in expected.values() if s == "stalled") >= 10, "the scenario has stalls to find"
    assert "offline" in expected.values() and "not_started" in expected.values()

    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")))
    sitepulse.run("replay", str(scenario))
    sitepulse.start_worker()
    last = (START + timedelta(days=DAYS - 1)).isoformat()

    def judged():
        text = sitepulse.run("export", "daily", "--start", START.isoformat(), "--end", last)
        rows = [line.split(",") for line in text.strip().splitlines()[1:]]
        states = {(r[0], r[1]): r[5] for r in rows if r[5]}
        # Every day but the last is complete once the last day's readings are in.
        return states if sum(1 for key in expected if key[0] < last and key not in states) == 0 else None

    states = poll(judged, 120, "every complete day to be judged", interval_s=1)
    compared = {key: value for key, value in expected.items() if key in states}
    assert len(compared) >= PROJECTS * (DAYS - 1)
    true_stall = {k for k, v in compared.items() if v == "stalled"}
    found_stall = {k for k in compared if states[k] == "stalled"}
    precision = len(true_stall & found_stall) / len(found_stall) if found_stall else 0.0
    recall = len(true_stall & found_stall) / len(true_stall)
    print(f"\nstall days: {len(true_stall)} true, {len(found_stall)} found; precision {precision:.3f}, recall {recall:.3f}")
    disagreements = sorted((k, compared[k], states[k]) for k in compared if compared[k] != states[k])
    assert disagreements == [], disagreements[:20]

    # Every stall that opened is an event for the project's leader; the silent meter is
    # one for its data owner.
    events = [json.loads(m.value) for m in read_topic(sitepulse.settings, EVENTS_TOPIC)]
    registry = {row["project_id"]: row for row in csv.DictReader(scenario.with_suffix(".registry.csv").open(encoding="utf-8"))}
    opened = {(k[1], k[0]) for k in true_stall if (k[1], (date.fromisoformat(k[0]) - timedelta(days=1)).isoformat()) not in {(p, d) for d, p in true_stall}}
    stall_events = {(e["project_id"], e["day"]) for e in events if e["kind"] == "stalled"}
    assert stall_events == opened
    assert all(e["leader"] == registry[e["project_id"]]["leader"] for e in events if e["kind"] == "stalled")
    silent = next(pid for pid, p in truth["projects"].items() if p["silent_meter"])
    offline = [e for e in events if e["kind"] == "offline"]
    assert [(e["project_id"], e["meter_id"]) for e in offline] == [(silent, truth["projects"][silent]["silent_meter"])]
    assert offline[0]["data_owner"] == registry[silent]["data_owner"] and "电表离线" in offline[0]["detail"]
