"""With a registry loaded before the worker starts: readings of unregistered projects and
readings no meter of that capacity could make are dead-lettered; a register that goes
backwards is kept and flagged for the data owner."""

from __future__ import annotations

import csv
import io
import json

import pytest
from kafka import KafkaProducer

from sitepulse.streams.contract import EVENTS_TOPIC, POWER_TOPIC
from tests.conftest import poll, read_topic

pytestmark = pytest.mark.integration


def power(project: str, ts: str, kwh: float, total: float) -> bytes:
    return json.dumps({"type": "power", "project_id": project, "meter_id": "M1", "ts": ts, "kwh": kwh, "interval_s": 900, "kwh_total": total}).encode()


def test_registry_rules_in_the_worker(sitepulse, tmp_path):
    sitepulse.run("simulate", "--projects", "2", "--days", "1", "--out", str(tmp_path / "x.jsonl"))
    registry = {row["project_id"]: row for row in csv.DictReader((tmp_path / "x.registry.csv").open(encoding="utf-8"))}
    sitepulse.run("registry", "load", str(tmp_path / "x.registry.csv"), "--reason", "测试项目登记")
    project, capacity = "NB-0001", float(registry["NB-0001"]["capacity_kva"])
    worker = sitepulse.start_worker()
    records = [
        power(project, "2026-03-02T08:15:00+08:00", 10.0, 5000.0),
        power(project, "2026-03-02T08:30:00+08:00", 10.0, 5010.0),
        power(project, "2026-03-02T08:45:00+08:00", 10.0, 10.0),  # meter replaced: register restarts
        power(project, "2026-03-02T09:00:00+08:00", capacity, 20.0 + capacity),  # 4× what the connection allows
        power("NB-9999", "2026-03-02T08:15:00+08:00", 1.0, 1.0),
    ]
    producer = KafkaProducer(bootstrap_servers=sitepulse.settings.bootstrap_servers)
    for raw in records:
        producer.send(POWER_TOPIC, key=json.loads(raw)["project_id"].encode(), value=raw)
    producer.flush()
    producer.close()

    letters = poll(lambda: (rows := list(csv.DictReader(io.StringIO(sitepulse.run("export", "dlq"))))) and len(rows) >= 2 and rows, 40, "2 dead letters")
    assert sorted((row["key"], row["reason"]) for row in letters) == [("NB-0001", "impossible_kwh"), ("NB-9999", "unknown_project")]
    stored = poll(lambda: len(rows := sitepulse.query("SELECT kwh, kwh_total FROM power_reading")) >= 3 and rows, 30, "the kept readings")
    assert [row["kwh_total"] for row in stored] == [5000.0, 5010.0, 10.0]
    events = [json.loads(m.value) for m in read_topic(sitepulse.settings, EVENTS_TOPIC, expected=1)]
    reset = [e for e in events if e["kind"] == "meter_reset"]
    assert len(reset) == 1 and reset[0]["meter_id"] == "M1" and reset[0]["data_owner"] == registry[project]["data_owner"]
    assert "5010.0" in reset[0]["detail"] and "10.0" in reset[0]["detail"]
    assert worker.poll() is None
