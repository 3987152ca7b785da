"""The spine end to end: kafka-python publisher -> Tansu broker -> Faust worker ->
influxd -> ``sitepulse export daily``, checked against sums computed from the input."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from kafka import KafkaProducer

from sitepulse.streams.contract import DLQ_HEADER_REASON, DLQ_HEADER_SOURCE, DLQ_TOPIC, POWER_TOPIC
from tests.conftest import poll, read_topic
from tests.expected import expected_daily_kwh, parse_daily_csv, read_lines

pytestmark = pytest.mark.integration

BAD_LINE = b'{"type":"power","project_id":"NB-0001","meter_id":"M1","ts":"2026-03-02T08:15:00","kwh":1.0,"interval_s":900}'
NOT_JSON = b"{this is not json"


def dead_letters(settings, expected: int, timeout_s: float = 20) -> list:
    return read_topic(settings, DLQ_TOPIC, expected, timeout_s)


def export_matches(sitepulse, expected, start: str, end: str):
    def check():
        got = parse_daily_csv(sitepulse.run("export", "daily", "--start", start, "--end", end))
        return got if got.keys() == expected.keys() and all(
            got[key] == pytest.approx(expected[key], abs=1e-6) for key in expected
        ) else None

    return check


def test_replayed_history_lands_in_influxdb_as_daily_kwh(sitepulse, tmp_path):
    scenario = tmp_path / "scenario.jsonl"
    sitepulse.run("simulate", "--projects", "12", "--days", "10", "--seed", "7", "--start", "2026-02-10", "--out", str(scenario))
    lines = read_lines(scenario)
    # Sites re-send recent readings, one re-sends a reading of 9 days ago (beyond the 2-day
    # grace: dead-lettered as too late) and some send garbage: none may change the totals.
    replay = tmp_path / "replay.jsonl"
    stale = lines[100]
    replay.write_bytes(b"\n".join([*lines, lines[-5], lines[-200], stale, BAD_LINE, NOT_JSON]) + b"\n")
    expected = expected_daily_kwh(lines)
    assert len(expected) == 12 * 10, "the scenario covers every project-day"

    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    summary = sitepulse.run("replay", str(replay))
    assert f"已发布 {len(lines) + 3} 条" in summary and "拒收 2 条" in summary
    sitepulse.start_worker()

    poll(export_matches(sitepulse, expected, "2026-02-10", "2026-02-19"), 90, "daily kWh of every project-day")
    # Spring Festival (Feb 15-23, 2026) draws far less than the working days before it.
    got = parse_daily_csv(sitepulse.run("export", "daily", "--start", "2026-02-12", "--end", "2026-02-18"))
    assert sum(v for (d, _), v in got.items() if d == "2026-02-17") < 0.3 * sum(v for (d, _), v in got.items() if d == "2026-02-12")

    reasons = {m.value: dict(m.headers)[DLQ_HEADER_REASON].decode() for m in dead_letters(sitepulse.settings, 3)}
    assert reasons == {BAD_LINE: "timestamp_without_offset", NOT_JSON: "malformed_json", stale: "too_late"}

    projects = sitepulse.query("SELECT project_name, district, leader FROM project GROUP BY project_id")
    assert len(projects) == 12 and all(row["project_name"] and row["leader"] for row in projects)
    raw_points = sitepulse.query("SELECT count(kwh) FROM power_reading")
    assert raw_points[0]["count"] == len({(json.loads(l)["project_id"], json.loads(l)["meter_id"], json.loads(l)["ts"]) for l in lines if b'"power"' in l})


def test_worker_dead_letters_bad_records_and_keeps_going(sitepulse):
    worker = sitepulse.start_worker()
    producer = KafkaProducer(bootstrap_servers=sitepulse.settings.bootstrap_servers)
    good = b'{"type":"power","project_id":"P-1","meter_id":"M1","ts":"2026-03-02T08:15:00+08:00","kwh":2.5,"interval_s":900}'
    investment_on_power_topic = b'{"type":"investment","project_id":"P-1","period":"2026-02","amount_wan":10.0,"reported_at":"2026-03-03T10:00:00+08:00"}'
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    from_the_future = good.replace(b"2026-03-02T08:15:00+08:00", tomorrow.encode())
    oversized = good[:-1] + b',"padding":"' + b"x" * 70_000 + b'"}'
    for raw in (NOT_JSON, b"[1,2]", investment_on_power_topic, from_the_future, oversized, good):
        producer.send(POWER_TOPIC, key=b"P-1", value=raw)
    producer.flush()
    producer.close()

    letters = dead_letters(sitepulse.settings, 5, timeout_s=40)
    by_value = {m.value: dict(m.headers) for m in letters}
    assert {value: headers[DLQ_HEADER_REASON].decode() for value, headers in by_value.items()} == {
        NOT_JSON: "malformed_json",
        b"[1,2]": "not_an_object",
        investment_on_power_topic: "wrong_topic",
        from_the_future: "future_timestamp",
        oversized: "oversized",
    }
    exported = list(csv.DictReader(io.StringIO(sitepulse.run("export", "dlq"))))
    assert [row["reason"] for row in exported] == ["malformed_json", "not_an_object", "wrong_topic", "future_timestamp", "oversized"]
    assert all(row["topic"] == "sitepulse.power" and row["key"] == "P-1" for row in exported)
    assert exported[0]["raw"] == NOT_JSON.decode() and exported[0]["explanation"] == "不是合法的 JSON"
    assert all(headers[DLQ_HEADER_SOURCE].startswith(b"sitepulse.power/") for headers in by_value.values())
    rows = poll(lambda: sitepulse.query("SELECT kwh FROM power_daily WHERE project_id = 'P-1'"), 30, "the good reading")
    assert rows[0]["kwh"] == 2.5
    assert worker.poll() is None, "the worker is still running"


def test_first_record_is_handled_within_ten_seconds_of_worker_start(sitepulse):
    sitepulse.run("simulate", "--projects", "1", "--days", "1", "--start", "2026-03-02", "--out", str(sitepulse.tmp_path / "one.jsonl"))
    sitepulse.run("replay", str(sitepulse.tmp_path / "one.jsonl"))
    started = time.monotonic()
    sitepulse.start_worker()
    poll(lambda: sitepulse.query("SELECT kwh FROM power_daily"), 30, "the first daily point", interval_s=0.05)
    elapsed = time.monotonic() - started
    print(f"\nworker start -> first daily point queryable: {elapsed:.2f} s")
    assert elapsed < 10


def test_restarted_worker_rebuilds_days_and_counts_resent_readings_once(sitepulse, tmp_path):
    scenario = tmp_path / "scenario.jsonl"
    sitepulse.run("simulate", "--projects", "4", "--days", "8", "--seed", "3", "--start", "2026-03-02", "--out", str(scenario))
    lines = read_lines(scenario)
    power = [line for line in lines if b'"power"' in line]
    # The worker stops in the middle of a day: the day after the restart must be rebuilt
    # from what the first worker stored, not start again from zero.
    split = len(lines) // 2 + 7
    first_half, second_half = lines[:split], lines[split:]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(first_half))
    sitepulse.run("replay", str(tmp_path / "a.jsonl"))
    worker = sitepulse.start_worker()
    poll(export_matches(sitepulse, expected_daily_kwh(first_half), "2026-03-02", "2026-03-10"), 60, "the first half")
    assert sitepulse.stop_worker(worker) == 0

    # After the restart: the rest, then re-sent readings of the last day and a corrected
    # value (within the grace period), and a week-old reading (beyond it: dead-lettered).
    corrected = json.loads(power[-40])
    corrected["kwh"] = 99.5
    stale = json.loads(power[10])
    stale["kwh"] = 55.5
    (tmp_path / "b.jsonl").write_bytes(b"\n".join([*second_half, *power[-300:], json.dumps(corrected).encode(), json.dumps(stale).encode()]))
    sitepulse.run("replay", str(tmp_path / "b.jsonl"))
    sitepulse.start_worker()
    expected = expected_daily_kwh([*lines, *power[-300:], json.dumps(corrected).encode()])
    poll(export_matches(sitepulse, expected, "2026-03-02", "2026-03-10"), 60, "every day after the restart")
    letters = dead_letters(sitepulse.settings, 1)
    assert [dict(m.headers)[DLQ_HEADER_REASON] for m in letters] == [b"too_late"]
    # The re-sent readings were absorbed, and the operator can see how many.
    status = poll(lambda: "重复读数(已去重) 300" in (out := sitepulse.attempt("status").output) and out, 30, "the duplicates in status")
    assert "数据迟到超过宽限期" in status and "[too_late] 1" in status


def test_refused_write_stops_the_worker_instead_of_leaving_a_dead_agent(sitepulse):
    # A text field where sitepulse writes numbers, in the same shard (week) as the data:
    # InfluxDB refuses every later write of a number there.
    import urllib.parse
    import urllib.request

    account = urllib.parse.urlencode({"u": sitepulse.settings.influx_username, "p": sitepulse.settings.influx_password.get_secret_value()})
    urllib.request.urlopen(
        f"{sitepulse.settings.influx_url}/write?db={sitepulse.settings.influx_db}&precision=s&{account}",
        data=b'power_reading,project_id=X,meter_id=M kwh="not a number" 1772424000',
    ).close()
    sitepulse.run("simulate", "--projects", "1", "--days", "1", "--start", "2026-03-02", "--out", str(sitepulse.tmp_path / "one.jsonl"))
    sitepulse.run("replay", str(sitepulse.tmp_path / "one.jsonl"))
    worker = sitepulse.start_worker()
    poll(lambda: worker.poll() is not None, 40, "the worker to stop")
    assert worker.returncode != 0
    log = worker.log_path.read_text()
    assert "field type conflict" in log


def test_a_batch_message_is_stored_reading_by_reading_and_a_bad_reading_is_dead_lettered_alone(sitepulse):
    worker = sitepulse.start_worker()
    readings = [
        {"meter_id": "M1", "ts": f"2026-03-02T08:{minute:02d}:00+08:00", "kwh": 2.0 + minute / 100, "interval_s": 900}
        for minute in (15, 30, 45)
    ]
    readings[1]["kwh"] = -4.0  # one broken reading among good ones
    message = json.dumps({"type": "power_batch", "project_id": "P-7", "readings": readings}).encode()
    producer = KafkaProducer(bootstrap_servers=sitepulse.settings.bootstrap_servers)
    producer.send(POWER_TOPIC, key=b"P-7", value=message)
    producer.flush()
    producer.close()

    (letter,) = dead_letters(sitepulse.settings, 1, timeout_s=40)
    headers = dict(letter.headers)
    assert headers[DLQ_HEADER_REASON] == b"negative_kwh"
    assert headers[DLQ_HEADER_SOURCE].decode().endswith("#1"), "the source names the reading's place in the batch"
    refused = json.loads(letter.value)
    assert refused["type"] == "power" and refused["project_id"] == "P-7" and refused["kwh"] == -4.0, "a single record, ready to fix and re-send"
    rows = poll(lambda: sitepulse.query("SELECT kwh, readings FROM power_daily WHERE project_id = 'P-7'"), 30, "the batch's day")
    assert rows[0]["readings"] == 2 and rows[0]["kwh"] == pytest.approx(2.15 + 2.45)
    assert worker.poll() is None


def test_history_replayed_as_series_lands_in_influxdb_as_it_does_reading_by_reading(sitepulse, tmp_path):
    """``replay --series``: each meter's day as one power_series message. Every
    project-day's kWh equals the sums over the input, every reading is stored once, and
    a reading re-sent from 9 days ago is dead-lettered alone as too late, as the record
    a site would send."""
    scenario = tmp_path / "scenario.jsonl"
    sitepulse.run("simulate", "--projects", "6", "--days", "6", "--seed", "3", "--start", "2026-03-02", "--out", str(scenario))
    lines = read_lines(scenario)
    stale = json.loads(lines[100])
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(b"\n".join([*lines, lines[-5], lines[100]]) + b"\n")
    expected = expected_daily_kwh(lines)
    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    summary = sitepulse.run("replay", "--series", str(replay))
    assert f"已发布 {len(lines) + 2} 条" in summary
    worker = sitepulse.start_worker()

    poll(export_matches(sitepulse, expected, "2026-03-02", "2026-03-07"), 90, "daily kWh of every project-day")
    power_lines = [json.loads(line) for line in lines if b'"power"' in line]
    raw_points = sitepulse.query("SELECT count(kwh) FROM power_reading")
    assert raw_points[0]["count"] == len({(r["project_id"], r["meter_id"], r["ts"]) for r in power_lines})
    (letter,) = dead_letters(sitepulse.settings, 1, timeout_s=40)
    assert dict(letter.headers)[DLQ_HEADER_REASON] == b"too_late"
    refused = json.loads(letter.value)
    assert refused["type"] == "power" and (refused["project_id"], refused["meter_id"], refused["kwh"]) == (stale["project_id"], stale["meter_id"], stale["kwh"])
    assert datetime.fromisoformat(refused["ts"]) == datetime.fromisoformat(stale["ts"])
    assert worker.poll() is None


def test_a_series_message_is_stored_reading_by_reading_and_a_bad_reading_is_dead_lettered_alone(sitepulse):
    worker = sitepulse.start_worker()
    series = {
        "type": "power_series", "project_id": "P-8", "meter_id": "M1", "first_ts": "2026-03-02T08:15:00+08:00",
        "interval_s": 900, "kwh": [2.15, -4.0, None, 2.45], "kwh_total": [100.0, 96.0, None, 102.6],
    }
    broken = dict(series, kwh=[1.0], kw=[1.0, 2.0])  # columns of different lengths: refused whole
    producer = KafkaProducer(bootstrap_servers=sitepulse.settings.bootstrap_servers)
    for message in (series, broken):
        producer.send(POWER_TOPIC, key=b"P-8", value=json.dumps(message).encode())
    producer.flush()
    producer.close()

    letters = {dict(m.headers)[DLQ_HEADER_REASON]: m for m in dead_letters(sitepulse.settings, 2, timeout_s=40)}
    assert set(letters) == {b"negative_kwh", b"bad_series"}
    alone = letters[b"negative_kwh"]
    assert dict(alone.headers)[DLQ_HEADER_SOURCE].decode().endswith("#1"), "the source names the reading's place in the series"
    refused = json.loads(alone.value)
    assert refused["type"] == "power" and refused["kwh"] == -4.0 and refused["kwh_total"] == 96.0
    assert datetime.fromisoformat(refused["ts"]) == datetime(2026, 3, 2, 8, 30, tzinfo=timezone(timedelta(hours=8)))
    assert json.loads(letters[b"bad_series"].value) == broken, "a series refused whole is dead-lettered as it came"
    rows = poll(lambda: sitepulse.query("SELECT kwh, readings FROM power_daily WHERE project_id = 'P-8'"), 30, "the series' day")
    assert rows[0]["readings"] == 2 and rows[0]["kwh"] == pytest.approx(2.15 + 2.45)
    stored = sitepulse.query("SELECT kwh, kwh_total FROM power_reading WHERE project_id = 'P-8'")
    assert [(row["kwh"], row["kwh_total"]) for row in stored] == [(2.15, 100.0), (2.45, 102.6)]
    assert worker.poll() is None
