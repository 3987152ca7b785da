"""What a site sees when its record is refused: the reason code, never an exception."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import pytest

from sitepulse.streams.contract import REJECTION_REASONS, InvestmentReport, PowerReading
from sitepulse.streams.validation import Rejection, decode_message, decode_record

GOOD_POWER = {
    "type": "power",
    "project_id": "NB-0001",
    "meter_id": "M1",
    "ts": "2026-03-01T08:15:00+08:00",
    "kwh": 12.5,
    "interval_s": 900,
}
GOOD_INVESTMENT = {
    "type": "investment",
    "project_id": "NB-0001",
    "period": "2026-02",
    "amount_wan": 1250.0,
    "reported_at": "2026-03-03T10:00:00+08:00",
}


def encode(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def test_the_contract_examples_decode():
    power = decode_record(encode(GOOD_POWER))
    assert isinstance(power, PowerReading)
    assert power.kwh == 12.5 and power.ts.utcoffset().total_seconds() == 8 * 3600
    assert isinstance(decode_record(encode(GOOD_INVESTMENT)), InvestmentReport)


def test_optional_register_and_demand_and_integer_kwh_are_accepted():
    record = decode_record(encode({**GOOD_POWER, "kwh": 12, "kwh_total": 1000.5, "kw": 50}))
    assert isinstance(record, PowerReading) and record.kwh == 12 and record.kw == 50


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"power"', "not_an_object"),
        (encode({k: v for k, v in GOOD_POWER.items() if k != "kwh"}), "missing_field"),
        (encode({k: v for k, v in GOOD_POWER.items() if k != "type"}), "missing_field"),
        (encode({**GOOD_POWER, "kwh": "12.5"}), "wrong_type"),
        (encode({**GOOD_POWER, "ts": "yesterday"}), "wrong_type"),
        (encode({**GOOD_POWER, "type": "water"}), "unknown_type"),
        (encode({**GOOD_POWER, "ts": "2026-03-01T08:15:00"}), "timestamp_without_offset"),
        (encode({**GOOD_POWER, "kwh": -0.5}), "negative_kwh"),
        (encode({**GOOD_POWER, "interval_s": 0}), "bad_interval"),
        (encode({**GOOD_POWER, "interval_s": 90_000}), "bad_interval"),
        (encode({**GOOD_POWER, "project_id": ""}), "bad_id"),
        (encode({**GOOD_POWER, "meter_id": "M1\n"}), "bad_id"),
        (encode({**GOOD_POWER, "project_id": "x" * 65}), "bad_id"),
        (b'{"type":"power","project_id":"P","meter_id":"M","ts":"2026-03-01T08:15:00+08:00","kwh":1e400,"interval_s":900}', "malformed_json"),
        (encode({**GOOD_INVESTMENT, "period": "2026-13"}), "bad_period"),
        (encode({**GOOD_INVESTMENT, "period": "2026-04", "reported_at": "2026-03-31T23:00:00+08:00"}), "reported_before_period"),
        (encode({**GOOD_INVESTMENT, "amount_wan": -1}), "negative_amount"),
        (encode({**GOOD_INVESTMENT, "reported_at": "2026-03-03T10:00:00"}), "timestamp_without_offset"),
        (encode({**GOOD_INVESTMENT, "reported_at": "3 March"}), "wrong_type"),
    ],
)
def test_bad_records_are_rejected_with_a_declared_reason(raw, reason):
    outcome = decode_record(raw)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.reason == reason, outcome.detail
    assert outcome.reason in REJECTION_REASONS and REJECTION_REASONS[reason]


def test_every_reason_has_a_chinese_explanation_for_the_data_owner():
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in REJECTION_REASONS.values())


def test_oversized_messages_and_clocks_from_the_future_are_refused():
    from datetime import datetime, timezone

    now = datetime(2026, 3, 1, 0, 10, tzinfo=timezone.utc)  # 08:10 in Ningbo
    padded = {**GOOD_POWER, "meter_id": "M1", "note": "x" * (64 * 1024)}
    assert decode_record(encode(padded)).reason == "oversized"
    assert isinstance(decode_record(encode(GOOD_POWER), now), PowerReading), "08:15 is 5 minutes ahead: a clock skew"
    ahead = decode_record(encode({**GOOD_POWER, "ts": "2026-03-01T08:21:00+08:00"}), now)
    assert ahead.reason == "future_timestamp" and "660 s ahead" in ahead.detail
    next_month = {**GOOD_INVESTMENT, "period": "2026-04", "reported_at": "2026-03-01T08:00:00+08:00"}
    assert decode_record(encode(next_month), now).reason == "future_period"
    assert isinstance(decode_record(encode({**next_month, "period": "2026-03"}), now), InvestmentReport)
    assert isinstance(decode_record(encode({**GOOD_POWER, "ts": "2030-01-01T00:00:00+08:00"})), PowerReading), "no clock, no check"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_near_records = st.fixed_dictionaries(
    {"type": st.sampled_from(["power", "investment", "power_batch", "other", 1])},
    optional={
        **{key: _json_values | st.just(value) for key, value in {**GOOD_POWER, **GOOD_INVESTMENT}.items() if key != "type"},
        "readings": st.lists(st.fixed_dictionaries({}, optional={k: _json_values | st.just(v) for k, v in GOOD_POWER.items() if k not in ("type", "project_id")}), max_size=3),
    },
)


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | _near_records.map(encode) | _json_values.map(lambda v: json.dumps(v).encode()))
def test_no_input_makes_the_decoder_raise(raw):
    from datetime import datetime, timezone

    from zoneinfo import ZoneInfo

    from sitepulse.sink.points import investment_point, reading_point

    for part in decode_message(raw, datetime(2026, 3, 1, tzinfo=timezone.utc)):
        outcome = part.record if part.rejection is None else part.rejection
        assert isinstance(outcome, (PowerReading, InvestmentReport)) or outcome.reason in REJECTION_REASONS
        # What passes is storable: no value InfluxDB would refuse (and so stop the worker).
        if isinstance(outcome, PowerReading):
            assert not any(word in reading_point(outcome).split(" ")[1] for word in ("nan", "inf"))
        elif isinstance(outcome, InvestmentReport):
            investment_point(outcome, ZoneInfo("Asia/Shanghai"))


def test_infinite_numbers_are_refused_before_they_reach_influxdb():
    from datetime import datetime, timezone

    from sitepulse.streams.validation import check_record

    for field in ("kwh", "kwh_total", "kw"):
        raw = encode({**GOOD_POWER, field: 1}).replace(f'"{field}": 1'.encode(), f'"{field}": 1e999'.encode())
        assert isinstance(decode_record(raw), Rejection), field  # the JSON decoder refuses it
        built = PowerReading("NB-1", "M1", datetime(2026, 3, 1, tzinfo=timezone.utc), 1.0, 900, **({} if field == "kwh" else {field: float("inf")}))
        if field == "kwh":
            built = PowerReading("NB-1", "M1", datetime(2026, 3, 1, tzinfo=timezone.utc), float("inf"), 900)
        assert check_record(built).reason == "wrong_type", field  # a record built in code


def test_rules_that_need_the_registry():
    from datetime import timedelta

    from sitepulse.streams.validation import check_against_registry

    capacity_kva = 400.0
    reading = PowerReading("NB-0001", "M1", datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=8))), 100.0, 900)
    assert check_against_registry(reading, capacity_kva, True) is None
    # 400 kVA for a quarter hour is 100 kWh at most; 20 % overload is tolerated, more is not.
    assert check_against_registry(msgspec_replace(reading, kwh=119.0), capacity_kva, True) is None
    assert check_against_registry(msgspec_replace(reading, kwh=121.0), capacity_kva, True).reason == "impossible_kwh"
    assert check_against_registry(reading, None, True).reason == "unknown_project"
    assert check_against_registry(reading, None, False) is None, "no registry loaded yet: nothing to compare with"


def msgspec_replace(record, **changes):
    import msgspec

    return msgspec.structs.replace(record, **changes)


_bad_or_good_reading = st.fixed_dictionaries(
    {
        "meter_id": st.sampled_from(["M1", "M2", "", "bad\\id", "x" * 65, "电表-3"]),
        "ts": st.sampled_from(["2026-03-01T08:15:00+08:00", "2026-03-01T08:15:00", "2099-01-01T00:00:00Z", "2026-03-01T00:00:00.000123+00:00"]),
        "kwh": st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-5, max_value=1e6), st.just(0)),
        "interval_s": st.sampled_from([900, 60, 0, -900, 86_400, 86_401]),
    },
    optional={"kwh_total": st.sampled_from([1000.5, -1.0]), "kw": st.sampled_from([50.0, 0.0])},
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_bad_or_good_reading, min_size=1, max_size=20))
def test_each_reading_of_a_batch_is_judged_as_it_would_be_alone(readings):
    """The batch path's quick acceptance never lets through what a single record with
    the same reading would be refused for, and a refusal names the same reason."""
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    batch = encode({"type": "power_batch", "project_id": "NB-0001", "readings": readings})
    parts = decode_message(batch, now)
    assert len(parts) == len(readings)
    for reading, part in zip(readings, parts):
        alone = decode_record(encode({"type": "power", "project_id": "NB-0001", **reading}), now)
        if isinstance(alone, Rejection):
            assert part.rejection is not None and part.rejection.reason == alone.reason
        else:
            assert part.rejection is None and part.record == alone


@settings(max_examples=200, deadline=None)
@given(_bad_or_good_reading, st.sampled_from(["NB-0001", "", "bad id", "NB/0002"]))
def test_a_single_reading_is_accepted_or_refused_as_the_rules_say(reading, project_id):
    """A one-reading message's quick acceptance lets through exactly what the rules one
    by one (``check_record``) accept, and a refusal names the rule."""
    import msgspec

    from sitepulse.streams.validation import check_record

    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    raw = encode({"type": "power", "project_id": project_id, **reading})
    try:
        typed = msgspec.json.decode(raw, type=PowerReading)
    except msgspec.ValidationError:
        return  # refused by the schema, before any rule
    assert decode_record(raw, now) == check_record(typed, now)
