"""Batch messages: many readings of one project in one Kafka message, each reading
accepted or refused on its own, and the replay packer that builds them in order."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sitepulse.streams.contract import MAX_BATCH_READINGS, InvestmentReport, PowerBatch, PowerReading
from sitepulse.streams.publisher import DayPacker
from sitepulse.streams.signing import KeyStore, sign
from sitepulse.streams.validation import decode_message

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 5, tzinfo=timezone.utc)


def reading_json(meter: str = "M1", minute: int = 15, kwh: object = 2.5, **extra) -> dict:
    ts = datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI) + timedelta(minutes=minute)
    return {"meter_id": meter, "ts": ts.isoformat(), "kwh": kwh, "interval_s": 900, **extra}


def batch(readings: list[dict], project_id: str = "NB-0001") -> bytes:
    return json.dumps({"type": "power_batch", "project_id": project_id, "readings": readings}).encode()


def test_a_batch_carries_one_part_per_reading_of_its_project():
    parts = decode_message(batch([reading_json("M1", 15), reading_json("M2", 15), reading_json("M1", 30, kwh_total=100.0)]), NOW, PowerReading)
    assert [p.index for p in parts] == [0, 1, 2]
    assert all(p.rejection is None for p in parts)
    assert {p.record.project_id for p in parts} == {"NB-0001"}
    assert [p.record.meter_id for p in parts] == ["M1", "M2", "M1"]
    assert parts[2].record.kwh_total == 100.0


def test_one_bad_reading_is_refused_alone_and_keeps_its_values_for_the_dead_letter_queue():
    parts = decode_message(batch([reading_json(minute=15), reading_json(minute=30, kwh=-1.0), reading_json(minute=45)]), NOW, PowerReading)
    assert [p.rejection.reason if p.rejection else None for p in parts] == [None, "negative_kwh", None]
    refused = parts[1]
    assert refused.index == 1 and refused.record.kwh == -1.0 and refused.record.project_id == "NB-0001"


def test_a_reading_against_the_schema_refuses_the_whole_message_and_says_where():
    (part,) = decode_message(batch([reading_json(), reading_json(kwh="lots")]), NOW, PowerReading)
    assert part.index is None and part.rejection.reason == "wrong_type"
    assert "readings[1]" in part.rejection.detail


def test_batch_size_limits():
    assert decode_message(batch([]), NOW)[0].rejection.reason == "bad_batch"
    too_many = [reading_json(minute=n) for n in range(MAX_BATCH_READINGS + 1)]
    assert decode_message(batch(too_many), NOW)[0].rejection.reason == "bad_batch"
    # Bigger than one reading may be (64 KiB), within a batch's limit (1 MB): accepted.
    large = batch([reading_json(f"M{n % 5}", n) for n in range(1500)])
    assert 64 * 1024 < len(large) < 1_000_000
    assert all(p.rejection is None for p in decode_message(large, NOW))
    assert decode_message(b" " * 1_000_001, NOW)[0].rejection.reason == "oversized"
    padded = json.dumps({"type": "power", "project_id": "NB-0001", **reading_json(), "pad": "x" * 70_000}).encode()
    assert decode_message(padded, NOW)[0].rejection.reason == "oversized"


def test_a_batch_on_the_investment_topic_is_refused_once():
    parts = decode_message(batch([reading_json(), reading_json(minute=30)]), NOW, InvestmentReport)
    assert len(parts) == 1 and parts[0].rejection.reason == "wrong_topic"


def test_a_bad_project_id_refuses_the_batch():
    assert decode_message(batch([reading_json()], project_id=""), NOW)[0].rejection.reason == "bad_id"


def test_signed_readings_verify_after_a_trip_through_a_batch():
    keys = KeyStore({"NB-0001": b"k" * 32})
    readings = [sign(PowerReading("NB-0001", "M1", datetime(2026, 3, 2, 8, m, tzinfo=SHANGHAI), 1.5, 900), b"k" * 32) for m in (15, 30)]
    import msgspec

    parts = decode_message(msgspec.json.encode(PowerBatch.of("NB-0001", readings)), NOW, PowerReading)
    assert [keys.verify(p.record) for p in parts] == [None, None]
    forged = msgspec.json.encode(PowerBatch.of("NB-0002", readings))  # the same signatures under another project
    assert all(KeyStore({"NB-0002": b"k" * 32}).verify(p.record).reason == "bad_signature" for p in decode_message(forged, NOW))


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[PowerReading]]] = []

    def publish_batch(self, project_id: str, readings: list[PowerReading], source: str = "") -> None:
        self.sent.append((project_id, list(readings)))


def quarter_hours(project_id: str, first: datetime, count: int) -> list[PowerReading]:
    return [PowerReading(project_id, "M1", first + timedelta(minutes=15 * (n + 1)), 1.0, 900) for n in range(count)]


def test_the_packer_sends_a_whole_local_day_before_the_next_one_begins():
    start = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    a, b = quarter_hours("A", start, 192), quarter_hours("B", start, 192)  # two days each
    recorder = Recorder()
    packer = DayPacker(recorder, SHANGHAI)
    for pair in zip(a, b):  # time order, the two projects interleaved
        for reading in pair:
            packer.add(reading)
    packer.flush()
    assert [(project, len(readings)) for project, readings in recorder.sent] == [("A", 96), ("B", 96), ("A", 96), ("B", 96)]
    first_day = recorder.sent[0][1]
    # The reading stamped at midnight closes the day before; it travels with that day.
    assert first_day[-1].ts == datetime(2026, 3, 3, tzinfo=SHANGHAI)
    sent_order = [r for _, readings in recorder.sent for r in readings]
    assert sorted(sent_order, key=lambda r: (r.project_id, r.ts)) == sorted(a + b, key=lambda r: (r.project_id, r.ts))


def test_the_packer_splits_a_project_at_the_batch_limit_and_bounds_what_it_holds():
    recorder = Recorder()
    packer = DayPacker(recorder, SHANGHAI, max_pending=3_000)
    start = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    for n in range(2_500):  # one-second readings of one meter, all in one day
        packer.add(PowerReading("A", "M1", start + timedelta(seconds=n + 1), 0.01, 1))
    packer.flush()
    assert [len(readings) for _, readings in recorder.sent] == [MAX_BATCH_READINGS, 500]


def test_batches_go_out_in_order_of_their_first_reading_when_one_fills_up():
    # A has 25 meters (2,400 readings a day, over the batch limit), B one meter: when A's
    # batch fills up, B's must not be held back and sent after A's second batch, which
    # starts hours later; the worker takes a batch's first reading as the partition's
    # position in time.
    start = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    recorder = Recorder()
    packer = DayPacker(recorder, SHANGHAI)
    for quarter in range(1, 97):
        ts = start + timedelta(minutes=15 * quarter)
        for meter in range(25):
            packer.add(PowerReading("A", f"M{meter}", ts, 1.0, 900))
        packer.add(PowerReading("B", "M1", ts, 1.0, 900))
    packer.flush()
    firsts = [min(r.ts for r in readings) for _, readings in recorder.sent]
    assert firsts == sorted(firsts)
    assert sum(len(readings) for _, readings in recorder.sent) == 96 * 26
    assert max(len(readings) for _, readings in recorder.sent) <= MAX_BATCH_READINGS
