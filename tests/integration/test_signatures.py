"""Forged telemetry gets nowhere: with signatures required, the worker stores only readings
signed with their own project's key; every other one is dead-lettered with the reason,
and no key or token appears in any log, even at debug level."""

from __future__ import annotations

import csv
import io

import msgspec
import pytest
from kafka import KafkaProducer

from sitepulse.streams.contract import POWER_TOPIC, PowerReading
from sitepulse.streams.signing import KeyStore, sign
from sitepulse.streams.topics import ensure_topics
from tests.conftest import poll

pytestmark = pytest.mark.integration


def test_only_readings_signed_with_their_projects_key_are_stored(sitepulse, tmp_path):
    keys_file = tmp_path / "keys.csv"
    keys = KeyStore.generate(["NB-1", "NB-2"], keys_file)
    # The worker refuses to start without keys when signatures are required.
    refused = sitepulse.start_worker(SITEPULSE_REQUIRE_SIGNATURES="true")
    assert refused.wait(60) != 0 and "SITEPULSE_SIGNING_KEYS" in refused.log_path.read_text()

    secrets = {"SITEPULSE_INFLUX_TOKEN": "influx-token-9f3b", "SITEPULSE_GRAFANA_TOKEN": "glsa-token-77ad", "SITEPULSE_KAFKA_SASL_PASSWORD": "kafka-pw-1c2d"}
    sitepulse.start_worker(SITEPULSE_REQUIRE_SIGNATURES="true", SITEPULSE_SIGNING_KEYS=str(keys_file), SITEPULSE_LOG_LEVEL="debug", **secrets)
    ensure_topics(sitepulse.settings)
    base = msgspec.json.decode(
        b'{"project_id":"NB-1","meter_id":"M1","ts":"2026-03-02T08:15:00+08:00","kwh":2.5,"interval_s":900}', type=PowerReading
    )
    genuine = sign(base, keys.key_for("NB-1"))
    forged_with_other_key = sign(msgspec.structs.replace(base, meter_id="M2"), keys.key_for("NB-2"))
    tampered = msgspec.structs.replace(sign(msgspec.structs.replace(base, meter_id="M3"), keys.key_for("NB-1")), kwh=250.0)
    unsigned = msgspec.structs.replace(base, meter_id="M4")
    producer = KafkaProducer(bootstrap_servers=sitepulse.settings.bootstrap_servers)
    for reading in (forged_with_other_key, tampered, unsigned, genuine):
        producer.send(POWER_TOPIC, key=b"NB-1", value=msgspec.json.encode({"type": "power", **msgspec.to_builtins(reading)}))
    producer.flush()
    producer.close()

    stored = poll(lambda: sitepulse.query("SELECT kwh FROM power_reading GROUP BY meter_id"), 30, "the genuine reading")
    assert [(row["meter_id"], row["kwh"]) for row in stored] == [("M1", 2.5)]
    letters = poll(lambda: (rows := list(csv.DictReader(io.StringIO(sitepulse.run("export", "dlq"))))) and len(rows) >= 3 and rows, 30, "3 dead letters")
    assert sorted(row["reason"] for row in letters) == ["bad_signature", "bad_signature", "missing_signature"]

    logs = "".join(worker.log_path.read_text() for worker in sitepulse.workers)
    for project_id in ("NB-1", "NB-2"):
        assert keys.key_for(project_id).hex() not in logs
    for name, value in secrets.items():
        assert value not in logs, f"{name} leaked into the worker log (debug level)"
