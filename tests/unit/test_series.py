"""A meter's readings sent as one ``power_series`` (columns) must end exactly as the
same readings sent one by one or in a batch: what is stored, the day totals, the
judgements and the events; each bad reading refused alone, for the reason it would
have alone."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from types import SimpleNamespace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitepulse.agents.core.daily import DailyEnergyBook, MeterRun, day_start_ms
from sitepulse.agents.core.offline import MeterWatch
from sitepulse.agents.pipeline import PowerHandler, series_run, to_meter_reading
from sitepulse.sink.points import reading_lines
from sitepulse.streams.contract import MAX_SERIES_POINTS, PowerBatch, PowerReading, PowerSeries
from sitepulse.streams.signing import KeyStore, sign, signed_text
from sitepulse.streams.validation import Rejection, check_against_registry, check_record, decode_message, series_rejections
from tests.memory_store import MemoryStore
from tools.hot_path import DiscardingInflux, run, simulated_city

TZ = ZoneInfo("Asia/Shanghai")
CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 3, 12, 0, tzinfo=CST)


def stored_state(lines: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    """What InfluxDB holds after these lines: a point per series and time, whose fields
    the later lines overwrite one by one."""
    held: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for line in lines:
        series_and_fields, ts = line.rsplit(" ", 1)
        # Tag values and string fields here carry no unescaped space before the fields.
        series, fields = _split_fields(series_and_fields)
        for name, value in fields:
            held[(series, ts)][name] = value
    return held


def _split_fields(text: str) -> tuple[str, list[tuple[str, str]]]:
    position, escaped = 0, False
    for position, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == " ":
            break
    series, rest = text[:position], text[position + 1 :]
    fields, start, quoted, escaped = [], 0, False, False
    for index, char in enumerate(rest + ","):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            name, value = rest[start:index].split("=", 1)
            fields.append((name, value))
            start = index + 1
    return series, fields


def city_through_a_worker(series: bool, messages_per_batch: int) -> tuple[dict, list]:
    values, _readings, registry = simulated_city(8, 12, TZ, packed=True, series=series)
    influx = DiscardingInflux(keep=True)
    _worker, _lines, events = asyncio.run(run(values, registry, TZ, messages_per_batch, influx))
    return stored_state(influx.kept or []), sorted(msgspec.json.encode(event) for event in events)


def test_a_city_sent_as_series_is_stored_and_judged_as_it_is_sent_in_batches():
    """The simulated city (outages, stalls, meters replaced, holidays) through the power
    step, day-packed as batches and as one series per meter and day: every point
    InfluxDB would hold, and every event, are the same. What is stored does not depend
    on how many messages the agent takes at once either; an event's ``at`` does (it is
    when the stream's clock noticed, and the clock moves once per batch taken)."""
    as_batches, batch_events = city_through_a_worker(series=False, messages_per_batch=7)
    as_series, series_events = city_through_a_worker(series=True, messages_per_batch=7)
    assert len(as_batches) > 15_000
    assert as_series == as_batches
    assert series_events == batch_events
    assert city_through_a_worker(series=True, messages_per_batch=40)[0] == as_batches
    assert any(b'"kind":"stalled"' in event or b'"kind":"offline"' in event for event in batch_events)


# --- the record ------------------------------------------------------------------------


def readings_of_a_project(draw_offsets: list[tuple[str, int, int, float, int]]) -> list[PowerReading]:
    base = datetime(2026, 3, 2, 0, 15, tzinfo=CST)
    return [
        PowerReading(
            "P-1", meter, base + timedelta(seconds=offset * 300, milliseconds=off_grid_ms), kwh, interval_s, kwh * 10, None if offset % 3 else 4.5
        )
        for meter, offset, interval_s, kwh, off_grid_ms in draw_offsets
    ]


reading_draws = st.lists(
    st.tuples(
        st.sampled_from(["M1", "M2"]), st.integers(0, 600), st.sampled_from([300, 900]), st.floats(0, 50, allow_nan=False),
        st.sampled_from([0, 0, 0, 1, 300, -400]),
    ),
    max_size=80,
)


@given(reading_draws)
@settings(max_examples=100, deadline=None)
def test_runs_of_readings_give_back_every_reading(draws):
    """Readings at any times and intervals, repeats and readings a fraction of a second
    off the grid included, packed as series and unpacked again: the same readings, at
    the same times, each once."""
    readings = readings_of_a_project(draws)
    found = PowerSeries.runs_of(readings)
    assert all(len(series.kwh) <= MAX_SERIES_POINTS for series in found)
    unpacked = [r for series in found for r in series.points()]
    assert sorted(map(msgspec.json.encode, unpacked)) == sorted(map(msgspec.json.encode, readings))


def test_a_long_run_is_cut_into_series_of_at_most_the_longest_a_series_holds():
    """A meter's readings for more than two months, one missing: consecutive series of
    the most points a series holds, the hole kept in its place, nothing lost."""
    base = datetime(2026, 3, 2, 0, 15, tzinfo=CST)
    count = 2 * MAX_SERIES_POINTS + 5
    readings = [PowerReading("P-1", "M1", base + timedelta(minutes=15 * n), 1.0 + n % 7, 900) for n in range(count) if n != 10]
    found = PowerSeries.runs_of(readings)
    assert [len(series.kwh) for series in found] == [MAX_SERIES_POINTS, MAX_SERIES_POINTS, 5]
    assert found[0].kwh[10] is None and None not in found[0].kwh[11:]
    assert [series.first_ts for series in found] == [base + timedelta(minutes=15 * n) for n in (0, MAX_SERIES_POINTS, 2 * MAX_SERIES_POINTS)]
    assert [r for series in found for r in series.points()] == readings


def test_a_series_decodes_and_each_point_is_the_reading_it_stands_for():
    raw = (
        b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"2026-03-02T00:15:00+08:00",'
        b'"interval_s":900,"kwh":[1.5,null,2],"kwh_total":[10.0,null,12.5]}'
    )
    [part] = decode_message(raw, NOW, PowerReading)
    assert part.rejection is None and isinstance(part.record, PowerSeries)
    assert part.record.points() == [
        PowerReading("P-1", "M1", datetime(2026, 3, 2, 0, 15, tzinfo=CST), 1.5, 900, 10.0),
        PowerReading("P-1", "M1", datetime(2026, 3, 2, 0, 45, tzinfo=CST), 2.0, 900, 12.5),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"2026-03-02T00:15:00","interval_s":900,"kwh":[1]}', "timestamp_without_offset"),
        (b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"2026-03-02T00:15:00+08:00","interval_s":0,"kwh":[1]}', "bad_interval"),
        (b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"2026-03-02T00:15:00+08:00","interval_s":900,"kwh":[]}', "bad_series"),
        (b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"2026-03-02T00:15:00+08:00","interval_s":900,"kwh":[1,2],"kw":[1]}', "bad_series"),
        (b'{"type":"power_series","project_id":"","meter_id":"M1","first_ts":"2026-03-02T00:15:00+08:00","interval_s":900,"kwh":[1]}', "bad_id"),
        (b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"2026-03-02T00:15:00+08:00","interval_s":900,"kwh":["1"]}', "wrong_type"),
        (b'{"type":"power_series","project_id":"P-1","first_ts":"2026-03-02T00:15:00+08:00","interval_s":900,"kwh":[1]}', "missing_field"),
    ],
)
def test_a_series_that_is_wrong_as_a_whole_is_refused_whole(raw, reason):
    [part] = decode_message(raw, NOW, PowerReading)
    assert part.record is None and part.rejection is not None
    assert part.rejection.reason == reason


def test_a_series_that_would_end_after_the_year_9999_is_refused_whole():
    raw = b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"9999-12-31T00:00:00+00:00","interval_s":86400,"kwh":[1.0,1.0]}'
    [part] = decode_message(raw, NOW, PowerReading)
    assert part.rejection is not None and part.rejection.reason == "bad_series"


def test_a_series_is_not_taken_on_the_investment_topic():
    from sitepulse.streams.contract import InvestmentReport

    raw = b'{"type":"power_series","project_id":"P-1","meter_id":"M1","first_ts":"2026-03-02T00:15:00+08:00","interval_s":900,"kwh":[1]}'
    [part] = decode_message(raw, NOW, InvestmentReport)
    assert part.rejection is not None and part.rejection.reason == "wrong_topic"


spoilers = st.lists(st.tuples(st.integers(0, 39), st.sampled_from([None, -1.0, -0.0, math.inf, math.nan, 1e4])), max_size=3)


@st.composite
def point_values(draw) -> list[float | None]:
    """Mostly clean series (the one test's path), some with a hole or a bad value."""
    values: list[float | None] = draw(st.lists(st.floats(0, 400, allow_nan=False), min_size=1, max_size=40))
    for index, value in draw(spoilers):
        values[index % len(values)] = value
    return values


@given(
    point_values(),
    st.one_of(st.none(), st.lists(st.one_of(st.none(), st.floats(0, 1e6), st.just(math.inf)), min_size=40, max_size=40)),
    st.integers(-60, 2),
    st.sampled_from([None, 0.0, 630.0, 50.0]),
)
@settings(max_examples=200, deadline=None)
def test_each_point_of_a_series_is_refused_exactly_when_it_would_be_alone(kwh, totals, start_hours, capacity):
    """The series' one test and its point-by-point fallback against ``check_record``
    and the registry's capacity for each reading on its own, reason and detail included
    (points ahead of the clock, negative, infinite, over the capacity, holes)."""
    totals = None if totals is None else totals[: len(kwh)]
    series = PowerSeries("P-1", "M1", NOW + timedelta(hours=start_hours), 900, kwh, totals)

    def refusal_alone(reading: PowerReading) -> Rejection | None:
        outcome = check_record(reading, NOW)
        if isinstance(outcome, Rejection) or capacity is None:
            return outcome if isinstance(outcome, Rejection) else None
        return check_against_registry(reading, capacity, True)

    alone = {index: refusal_alone(reading) for index, reading in enumerate(map(series.point, range(len(kwh)))) if reading is not None}
    assert series_rejections(series, NOW, capacity) == {index: refusal for index, refusal in alone.items() if refusal is not None}


def test_a_series_signature_covers_every_value_and_is_never_a_readings():
    keys = KeyStore({"P-1": b"k" * 32})
    series = PowerSeries("P-1", "M1", datetime(2026, 3, 2, 0, 15, tzinfo=CST), 900, [1.0, None, 2.0], [10.0, None, 12.0])
    signed = sign(series, b"k" * 32)
    assert keys.verify(signed) is None
    for changed in (
        msgspec.structs.replace(signed, kwh=[1.0, 0.0, 2.0]),
        msgspec.structs.replace(signed, kwh_total=[10.0, None, 12.5]),
        msgspec.structs.replace(signed, first_ts=signed.first_ts + timedelta(minutes=15)),
        msgspec.structs.replace(signed, interval_s=300),
    ):
        refusal = keys.verify(changed)
        assert refusal is not None and refusal.reason == "bad_signature"
    assert keys.verify(series).reason == "missing_signature"
    one = PowerReading("P-1", "M1", series.first_ts, 1.0, 900)
    assert signed_text(PowerSeries("P-1", "M1", series.first_ts, 900, [1.0])) != signed_text(one)


# --- the worker's parts, run against reading by reading -------------------------------


runs = st.builds(
    lambda first_quarter, interval_s, kwh, with_totals: MeterRun(
        "P-1", "M1", day_start_ms(date(2026, 3, 2), TZ) + first_quarter * 900_000, interval_s, kwh,
        [None if v is None else v * 3 for v in kwh] if with_totals else None,
        [None if v is None else 7.0 for v in kwh] if with_totals else None,
    ),
    st.integers(-4, 200),
    st.sampled_from([900, 3600, 1800]),
    st.lists(st.one_of(st.none(), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=150),
    st.booleans(),
)


@given(st.lists(st.tuples(st.booleans(), runs), min_size=1, max_size=5))
@settings(max_examples=80, deadline=None)
def test_a_run_counts_in_the_day_book_as_its_readings_would(batch):
    """Runs crossing midnight, with holes, at another interval than the meter's day
    started with, or over readings already held: the day totals and the readings held
    as duplicates are those of adding each reading."""
    by_run, by_reading = DailyEnergyBook(TZ, 30), DailyEnergyBook(TZ, 30)
    duplicates_run = duplicates_reading = 0
    for also_single, run_ in batch:
        readings = run_.readings()
        if also_single and readings:  # the same time sent before, alone
            first = readings[0]
            for book in (by_run, by_reading):
                key = book.day_of(first)
                book.load(key, []) if key in book.missing([key]) else None
                book.add(first, key)
        segments = by_run.segments(run_)
        assert sorted({key for key, _, _ in segments}) == sorted({by_reading.day_of(r) for r in readings})
        for key, _, _ in segments:
            if key in by_run.missing([key]):
                by_run.load(key, [])
                by_reading.load(key, [])
        duplicates_run += by_run.add_run(run_, segments)
        duplicates_reading += by_reading.add_all(readings, [by_reading.day_of(r) for r in readings])
    assert duplicates_run == duplicates_reading
    assert sorted(by_run.open_days()) == sorted(by_reading.open_days())
    for key in by_run.open_days():
        assert by_run.total(key) == by_reading.total(key)


@given(
    st.lists(st.one_of(runs, runs.map(lambda r: r.reading(0) if r.kwh[0] is not None else r)), min_size=1, max_size=6),
    st.integers(1, 3 * 86_400_000),
)
@settings(max_examples=150, deadline=None)
def test_a_runs_late_readings_are_those_that_would_be_late_alone(batch, grace_ms):
    """The judge's grace period over a batch of runs and single readings in one
    partition, at any grace (on the readings' grid or not): a run's late places are the
    readings that would be late each on its own, in the same order."""
    from sitepulse.agents.core.calendar import WorkCalendar
    from sitepulse.agents.core.judge import Judge

    judge = Judge(TZ, WorkCalendar(), grace=timedelta(milliseconds=grace_ms), settle=timedelta(minutes=15))
    judge.clock.observe(day_start_ms(date(2026, 3, 3), TZ), 0.0, 0, day_start_ms(date(2026, 3, 3), TZ))
    expanded = [reading for item in batch for reading in (item.readings() if isinstance(item, MeterRun) else [item])]
    alone = judge.too_late(expanded, [0] * len(expanded))
    by_item = judge.too_late(batch, [0] * len(batch))
    late_as_runs = []
    for item, late in zip(batch, by_item):
        if isinstance(item, MeterRun):
            late_as_runs += [item.kwh[index] is not None and index < late for index in range(len(item.kwh)) if item.kwh[index] is not None]
        else:
            late_as_runs.append(bool(late))
    assert late_as_runs == [bool(late) for late in alone]


@given(runs)
@settings(max_examples=80, deadline=None)
def test_a_runs_lines_are_its_readings_lines(run_):
    assert reading_lines([run_]) == reading_lines(run_.readings())


@given(st.lists(runs, min_size=1, max_size=4), st.integers(0, 3))
@settings(max_examples=80, deadline=None)
def test_a_meter_back_online_is_seen_at_the_same_reading(runs_, offline_at):
    """``seen_run`` against ``seen`` of each reading, a meter that went offline included."""
    by_run, by_reading = MeterWatch(), MeterWatch()
    for number, run_ in enumerate(runs_):
        if number == offline_at:
            for watch in (by_run, by_reading):
                watch.overdue(10**15)
        bounds = run_.bounds()
        changes_run = [] if bounds is None else [by_run.seen_run("P-1", "M1", map(run_.ts_ms, run_.present()), bounds[1], run_.interval_s)]
        changes_reading = [by_reading.seen(r.project_id, r.meter_id, r.ts_ms, r.interval_s) for r in sorted(run_.readings(), key=lambda r: r.ts_ms)]
        assert [c for c in changes_run if c] == [c for c in changes_reading if c]
        assert by_run._last == by_reading._last and by_run._offline == by_reading._offline


def day_of_readings(day: date, kwh: float, total_from: float) -> list[PowerReading]:
    start = datetime.combine(day, datetime.min.time(), CST)
    return [
        PowerReading("WORK-1", "M1", start + timedelta(minutes=15 * (n + 1)), kwh, 900, total_from + kwh * n) for n in range(96)
    ]


def test_the_handler_takes_runs_as_it_takes_their_readings():
    """Through the power handler on an in-memory store: two days, a day far too late
    (beyond the grace period), a register that goes back (meter replaced) and a
    repeated day. Stored readings, day totals, late readings and events are the same
    sent as runs or reading by reading."""
    from sitepulse.agents.activity import ActivityTracker
    from sitepulse.agents.core.calendar import WorkCalendar
    from sitepulse.agents.core.judge import Judge

    days = [
        day_of_readings(date(2026, 3, 10), 5.0, 1000.0),
        day_of_readings(date(2026, 3, 11), 6.0, 2000.0),
        day_of_readings(date(2026, 3, 2), 4.0, 100.0),  # beyond 48 h behind: too late
        day_of_readings(date(2026, 3, 12), 7.0, 50.0),  # the register starts again
        day_of_readings(date(2026, 3, 11), 6.0, 2000.0),  # sent again
    ]

    def handler() -> tuple[PowerHandler, MemoryStore]:
        store = MemoryStore(TZ)
        judge = Judge(TZ, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=15))
        published: list = []

        async def publish(events: list) -> None:
            published.extend(events)

        return PowerHandler(store, TZ, 10, ActivityTracker(judge, store, publish)), store

    async def feed(as_runs: bool):
        power, store = handler()
        late, events, duplicates = [], [], 0
        for number, day in enumerate(days):
            if as_runs:
                [series] = PowerSeries.runs_of(day)
                outcome = await power.handle([series_run(series)], [0], 1e9, [number])
                late += [day[index] for _, index in outcome.too_late_places]
            else:
                outcome = await power.handle(day, [0] * len(day), 1e9, [number] * len(day))
                late += [day[position] for position in outcome.too_late]
            events += outcome.events
            duplicates += outcome.duplicates
        return store.readings, store.energies, late, events, duplicates

    by_run, by_reading = asyncio.run(feed(True)), asyncio.run(feed(False))
    assert len(by_reading[2]) == 96 and by_reading[4] == 96 and len(by_reading[3]) == 1
    assert by_run == by_reading


def test_a_run_keeps_the_readings_it_was_given():
    series = PowerSeries("P-1", "M1", datetime(2026, 3, 2, 0, 15, tzinfo=CST), 900, [1.0, 2.0, None, 4.0])
    run_ = series_run(series, [1])
    assert [r.kwh for r in run_.readings()] == [1.0, 4.0]
    assert series.kwh == [1.0, 2.0, None, 4.0]
    assert run_.readings()[1] == to_meter_reading(series.point(3))


class SentRecords:
    """Stands in for kafka-python's producer: keeps what would be sent."""

    def __init__(self, **options: object) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None, headers: object = None):
        self.sent.append((topic, value))
        return SimpleNamespace(add_errback=lambda callback: None)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def publisher_with(monkeypatch, tmp_path, keys: dict[str, bytes] | None):
    from sitepulse.runtime.settings import Settings
    from sitepulse.streams import publisher as publisher_module

    monkeypatch.setattr(publisher_module, "KafkaProducer", SentRecords)
    settings = Settings(_env_file=None, state_dir=tmp_path)
    if keys is not None:
        path = tmp_path / "keys.csv"
        path.write_text("project_id,key_hex\n" + "".join(f"{p},{k.hex()}\n" for p, k in keys.items()))
        settings = settings.model_copy(update={"signing_keys": path})
    return publisher_module.SitePublisher(settings)


def test_the_publisher_keeps_every_signature_a_site_made(monkeypatch, tmp_path):
    """Readings signed by their site, packed with no key at hand, go as batches (each
    keeps its signature); with the project's key the publisher signs series; a site's
    signed series with a bad reading goes as it is, for the worker to refuse that reading."""
    key = b"k" * 32
    day = [sign(r, key) for r in day_of_readings(date(2026, 3, 2), 1.0, 10.0)[:4]]
    keys = KeyStore({"WORK-1": key})
    decode = msgspec.json.Decoder(PowerBatch | PowerSeries).decode

    without_key = publisher_with(monkeypatch, tmp_path, None)
    without_key.publish_series("WORK-1", day)
    [(_, value)] = without_key._producer.sent
    batch = decode(value)
    assert isinstance(batch, PowerBatch) and all(keys.verify(r) is None for r in batch.expand())

    with_key = publisher_with(monkeypatch, tmp_path, {"WORK-1": key})
    with_key.publish_series("WORK-1", [msgspec.structs.replace(r, sig=None) for r in day])
    [(_, value)] = with_key._producer.sent
    series = decode(value)
    assert isinstance(series, PowerSeries) and keys.verify(series) is None and series.points() == [msgspec.structs.replace(r, sig=None) for r in day]

    signed_series = sign(PowerSeries("WORK-1", "M1", datetime(2026, 3, 2, 0, 15, tzinfo=CST), 900, [1.0, -2.0]), key)
    without_key.publish(signed_series)
    assert decode(without_key._producer.sent[-1][1]) == signed_series
