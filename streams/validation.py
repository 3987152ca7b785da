"""Turn raw bytes from the wire into records, or into rejections with a reason code.

The fast path is one typed msgspec decode; only a record that fails it is decoded again
loosely, to name the reason precisely for the data owner.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import msgspec

from .contract import (
    MAX_BATCH_BYTES,
    MAX_BATCH_READINGS,
    MAX_CLOCK_AHEAD_S,
    MAX_INTERVAL_S,
    MAX_MESSAGE_BYTES,
    MAX_SERIES_POINTS,
    REJECTION_REASONS,
    InvestmentReport,
    MeterInterval,
    PowerBatch,
    PowerReading,
    PowerSeries,
    Record,
    RegistryEntry,
)

_typed_decoder = msgspec.json.Decoder(Record)
_loose_decoder = msgspec.json.Decoder()
# Ids become InfluxDB tag values: 1-64 characters, no control characters or backslash.
_ID = re.compile(r"(?=.*\S)[^\x00-\x1f\x7f\\]{1,64}")


@functools.lru_cache(maxsize=1 << 16)
def _valid_id(value: str) -> bool:
    # The hot path checks every reading's project and meter: a city's ids are a few
    # thousand strings, each matched once.
    return _ID.fullmatch(value) is not None
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_RECORD_TYPES = {"power": PowerReading, "investment": InvestmentReport, "power_batch": PowerBatch, "power_series": PowerSeries}


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str

    def __post_init__(self) -> None:
        if self.reason not in REJECTION_REASONS:
            raise ValueError(f"undeclared rejection reason {self.reason!r}")


class Part(NamedTuple):
    """One record carried by a message. ``index``: its place in a batch, None when the
    message is the record. A rejected part keeps its record (if it decoded) so that it
    can be dead-lettered on its own. A tuple: one may be made per reading of a batch.
    ``origin``: for one meter's run of readings taken out of a batch, the batch and each
    place's index in it (None: a hole), so that a reading of the run refused later goes
    to the dead-letter topic as the site sent it."""

    record: object | None
    rejection: Rejection | None = None
    index: int | None = None
    origin: tuple[PowerBatch, list[int | None]] | None = None


def decode_message(raw: bytes, now: datetime | None = None, expected: type | None = None, whole_batches: bool = False) -> list[Part]:
    """Every record a message carries, each accepted or refused on its own: one part for
    a single record or a refused message, one per reading for a ``PowerBatch``. A
    ``PowerSeries`` is one part, checked as a whole: its points are checked by
    ``series_rejections`` (the worker screens the series once, then its points).
    ``expected``: the record type of the topic it came from. ``whole_batches``: a batch
    that passes as a whole is one part too, its readings checked by ``batch_rejections``."""
    outcome = decode_record(raw, now)
    if isinstance(outcome, Rejection):
        return [Part(None, outcome)]
    kind = PowerReading if isinstance(outcome, (PowerBatch, PowerSeries)) else type(outcome)
    if expected is not None and kind is not expected:
        return [Part(None, Rejection("wrong_topic", f"a {type(outcome).__name__} on the {expected.__name__} topic"))]
    if not isinstance(outcome, PowerBatch) or whole_batches:
        return [Part(outcome)]
    return reading_parts(outcome, batch_rejections(outcome, now))


def reading_parts(batch: PowerBatch, refused: dict[int, Rejection]) -> list[Part]:
    """A part per reading of a batch, with its rejection among ``refused`` (by index)."""
    return [Part(reading, refused.get(index), index) for index, reading in enumerate(batch.expand())]


def batch_rejections(batch: PowerBatch, now: datetime | None, capacity_kva: float | None = None) -> dict[int, Rejection]:
    """The readings of a batch (already checked as a whole) that are refused, by index,
    each with the reason it would have as a single reading (``check_record``, then the
    registry's capacity, when given). The hot path of a replay or a metering platform's
    push: a reading that passes every rule is passed by one test
    (``_passes_reading_rules``, which is those rules, so what it passes ``check_record``
    would accept); only the rest are asked why not."""
    latest = _latest_accepted(now)
    unlimited = capacity_kva is None or capacity_kva <= 0
    if _all_pass(batch.readings, latest, None if unlimited else capacity_kva):
        return {}
    refused = {}
    for index, reading in enumerate(batch.readings):
        if _passes_reading_rules(reading, now) and (unlimited or reading.kwh <= _most_kwh(capacity_kva, reading.interval_s)):
            continue
        if (rejection := _single_rejection(batch.reading(index), now, capacity_kva)) is not None:
            refused[index] = rejection
    return refused


def _single_rejection(reading: PowerReading, now: datetime | None, capacity_kva: float | None) -> Rejection | None:
    """What a reading alone is refused for: ``check_record``'s rules, then the registry's
    capacity (when given)."""
    outcome = check_record(reading, now)
    if not isinstance(outcome, Rejection) and capacity_kva is not None:
        outcome = check_against_registry(reading, capacity_kva, True) or outcome
    return outcome if isinstance(outcome, Rejection) else None


_CLOCK_AHEAD = timedelta(seconds=MAX_CLOCK_AHEAD_S)


def _latest_accepted(now: datetime | None) -> datetime | None:
    return None if now is None else now + _CLOCK_AHEAD


@functools.lru_cache(maxsize=16)
def _latest_accepted_in(now: datetime, zone: tzinfo) -> datetime:
    """``_latest_accepted`` in a reading's own zone. Decoded times share their zone's
    object, and two times of the same zone object compare field by field: ~0.03 µs
    where times of two zones cost ~0.58 µs (each one's offset asked), once per reading.
    Only a fixed offset is compared so (a zone with summer time can repeat an hour)."""
    latest = now + _CLOCK_AHEAD
    return latest.astimezone(zone) if type(zone) is timezone else latest


def _all_pass(readings: list[MeterInterval], latest: datetime | None, capacity_kva: float | None) -> bool:
    """``_passes_reading_rules`` and the capacity for every reading of a batch at once,
    column by column: true means none is refused (false: ask each one)."""
    stamps = [reading.ts for reading in readings]
    if None in {stamp.tzinfo for stamp in stamps} or (latest is not None and max(stamps) > latest):
        return False  # (a time with no offset cannot be compared with one that has)
    intervals = {reading.interval_s for reading in readings}
    if not all(0 < interval_s <= MAX_INTERVAL_S for interval_s in intervals):
        return False
    kwh = [reading.kwh for reading in readings]
    # A finite sum has no NaN (which min and max can pass over) and no infinite term; a
    # sum that overflows only sends the batch to the reading-by-reading test.
    if not (0 <= min(kwh) and math.isfinite(sum(kwh))):
        return False
    # Held to the shortest interval's bound, which passes no reading the reading's own would not.
    if capacity_kva is not None and max(kwh) > _most_kwh(capacity_kva, min(intervals)):
        return False
    totals = filter(None, [reading.kwh_total for reading in readings])  # (None and 0.0 left out: both pass)
    demands = filter(None, [reading.kw for reading in readings])
    return math.isfinite(sum(totals)) and math.isfinite(sum(demands)) and all(map(_valid_id, {reading.meter_id for reading in readings}))


def _passes_reading_rules(reading: PowerReading | MeterInterval, now: datetime | None) -> bool:
    """Every rule ``check_record`` holds a reading to but its project id (a batch checks
    that once), in one test: true means it would accept the reading."""
    ts, total, kw = reading.ts, reading.kwh_total, reading.kw
    return (
        ts.tzinfo is not None
        and (now is None or ts <= _latest_accepted_in(now, ts.tzinfo))
        and 0 <= reading.kwh < math.inf
        and 0 < reading.interval_s <= MAX_INTERVAL_S
        and (total is None or math.isfinite(total))
        and (kw is None or math.isfinite(kw))
        and _valid_id(reading.meter_id)
    )


def series_rejections(series: PowerSeries, now: datetime | None, capacity_kva: float | None = None) -> dict[int, Rejection]:
    """The points of a series (already checked as a whole) that are refused, by index,
    each with the reason it would have as a single reading (``check_record``, then the
    registry's capacity). The whole series is tested at once first: a series with no
    hole, no value out of range and its last point not ahead of the clock has none."""
    kwh, interval_s = series.kwh, series.interval_s
    most = math.inf if not capacity_kva or capacity_kva <= 0 else _most_kwh(capacity_kva, interval_s)
    latest = _latest_accepted(now)
    last_ts = series.first_ts + timedelta(seconds=(len(kwh) - 1) * interval_s)
    if (
        None not in kwh
        and 0 <= min(kwh)
        and max(kwh) <= most
        and math.isfinite(sum(kwh))  # no NaN (which min and max can pass over) and no infinity
        and (latest is None or last_ts <= latest)
        and _whole_and_finite(series.kwh_total)
        and _whole_and_finite(series.kw)
    ):
        return {}
    refused = {}
    for index in range(len(kwh)):
        reading = series.point(index)
        if reading is not None and (rejection := _single_rejection(reading, now, capacity_kva)) is not None:
            refused[index] = rejection
    return refused


def _whole_and_finite(column: list[float | None] | None) -> bool:
    """No hole and no infinity in an optional column (a finite sum has no infinite term;
    a sum that overflows only sends the series to the point-by-point test)."""
    return column is None or (None not in column and math.isfinite(sum(column)))


def passes_reading_rules(reading: PowerReading, now: datetime | None) -> bool:
    """True when ``check_record`` would accept the reading, in one test (False: ask it why not)."""
    return _passes_reading_rules(reading, now) and _valid_id(reading.project_id)


def decode_record(raw: bytes, now: datetime | None = None) -> Record | Rejection:
    """Decode and check one message; never raises for bad input. ``now``: the receiver's
    clock, against which timestamps from the future are refused. The readings of a
    ``PowerBatch`` are checked by ``decode_message``."""
    if len(raw) > MAX_BATCH_BYTES:
        return Rejection("oversized", f"{len(raw)} bytes")
    try:
        record = _typed_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _explain(raw, exc) if len(raw) <= MAX_MESSAGE_BYTES else Rejection("oversized", f"{len(raw)} bytes")
    if len(raw) > MAX_MESSAGE_BYTES and not isinstance(record, (PowerBatch, PowerSeries)):
        return Rejection("oversized", f"{len(raw)} bytes")
    # A live site's one reading per message: accepted by one test, as a batch's are.
    if type(record) is PowerReading and passes_reading_rules(record, now):
        return record
    return check_record(record, now)


def decode_accepted_readings(lines: bytes, now: datetime | None = None) -> list[PowerReading] | None:
    """A block of JSON lines decoded at once, when every line is a power reading that
    ``decode_record`` would accept; None when any is not (ask it line by line). A
    replay's file is millions of such lines: decoding and checking them as a block
    costs a fraction of a call per line."""
    if max(map(len, lines.split(b"\n"))) > MAX_MESSAGE_BYTES:
        return None
    return _accepted_lines(lines, now)


def decode_accepted_messages(values: Sequence[bytes], now: datetime | None = None) -> list[PowerReading] | None:
    """Messages of one power reading each (a live site's), decoded at once when every
    one is a reading that ``decode_record`` would accept, in message order; None when
    any is not (ask message by message). Sites send most readings so, a few hundred in
    each batch an agent takes: one decode and one column check instead of one of each
    per message."""
    if not values or max(map(len, values)) > MAX_MESSAGE_BYTES or not _is_reading(values[0]):
        return None  # (a take of batch messages is told by its first: not decoded twice)
    block = b"\n".join(values)
    if block.count(b"\n") != len(values) - 1:
        return None  # a message of more than one line: it is not one record
    records = _accepted_lines(block, now)
    # (a blank message is no line at all: the count tells it)
    return records if records is not None and len(records) == len(values) else None


def _is_reading(raw: bytes) -> bool:
    try:
        return type(_typed_decoder.decode(raw)) is PowerReading
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


def _accepted_lines(lines: bytes, now: datetime | None) -> list[PowerReading] | None:
    try:
        records = _typed_decoder.decode_lines(lines)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not records:
        return records
    if {type(record) for record in records} != {PowerReading}:
        return None
    accepted = _all_pass(records, _latest_accepted(now), None) and all(map(_valid_id, {record.project_id for record in records}))
    return records if accepted else None


def check_record(record: Record, now: datetime | None = None) -> Record | Rejection:
    """Rules that the schema cannot express."""
    outcome = _check_fields(record)
    if isinstance(outcome, (Rejection, PowerBatch, PowerSeries)):
        return outcome
    if now is None:
        return _reported_in_time(outcome)
    moment = record.ts if isinstance(record, PowerReading) else record.reported_at
    if moment > now + _CLOCK_AHEAD:
        return Rejection("future_timestamp", f"{moment.isoformat()} is {(moment - now).total_seconds():.0f} s ahead")
    if isinstance(record, InvestmentReport) and record.period > f"{now.astimezone(moment.tzinfo):%Y-%m}":
        return Rejection("future_period", f"period={record.period}")
    return _reported_in_time(outcome)


def _reported_in_time(record: Record) -> Record | Rejection:
    """A month is reported once it has begun (in the reporter's own time zone): anything
    earlier is a wrong period or a wrong clock, and would sort before the month it revises."""
    if isinstance(record, InvestmentReport) and f"{record.reported_at:%Y-%m}" < record.period:
        return Rejection("reported_before_period", f"period={record.period}, reported_at={record.reported_at.isoformat()}")
    return record


def _check_fields(record: Record) -> Record | Rejection:
    if isinstance(record, PowerSeries):
        return _check_series(record)
    if isinstance(record, PowerBatch):
        if not _ID.fullmatch(record.project_id):
            return Rejection("bad_id", f"project_id={record.project_id!r}")
        if not 0 < len(record.readings) <= MAX_BATCH_READINGS:
            return Rejection("bad_batch", f"{len(record.readings)} readings")
        return record
    if isinstance(record, PowerReading):
        for name, value in (("project_id", record.project_id), ("meter_id", record.meter_id)):
            if not _valid_id(value):
                return Rejection("bad_id", f"{name}={value!r}")
        if not _has_offset(record.ts):
            return Rejection("timestamp_without_offset", f"ts={record.ts.isoformat()}")
        for name, value in (("kwh", record.kwh), ("kwh_total", record.kwh_total), ("kw", record.kw)):
            # 1e999 decodes to infinity, which InfluxDB would refuse for the whole batch.
            if value is not None and not math.isfinite(value):
                return Rejection("wrong_type", f"{name}={value} is not a finite number")
        if record.kwh < 0:
            return Rejection("negative_kwh", f"kwh={record.kwh}")
        if not 0 < record.interval_s <= MAX_INTERVAL_S:
            return Rejection("bad_interval", f"interval_s={record.interval_s}")
        return record
    if not _ID.fullmatch(record.project_id):
        return Rejection("bad_id", f"project_id={record.project_id!r}")
    if not _has_offset(record.reported_at):
        return Rejection("timestamp_without_offset", f"reported_at={record.reported_at.isoformat()}")
    if not _PERIOD.fullmatch(record.period):
        return Rejection("bad_period", f"period={record.period!r}")
    if not math.isfinite(record.amount_wan):
        return Rejection("wrong_type", f"amount_wan={record.amount_wan} is not a finite number")
    if record.amount_wan < 0:
        return Rejection("negative_amount", f"amount_wan={record.amount_wan}")
    return record


def _check_series(series: PowerSeries) -> PowerSeries | Rejection:
    """What a series is refused for as a whole; its points are ``series_rejections``'."""
    for name, value in (("project_id", series.project_id), ("meter_id", series.meter_id)):
        if not _valid_id(value):
            return Rejection("bad_id", f"{name}={value!r}")
    if not _has_offset(series.first_ts):
        return Rejection("timestamp_without_offset", f"first_ts={series.first_ts.isoformat()}")
    if not 0 < series.interval_s <= MAX_INTERVAL_S:
        return Rejection("bad_interval", f"interval_s={series.interval_s}")
    length = len(series.kwh)
    if not 0 < length <= MAX_SERIES_POINTS:
        return Rejection("bad_series", f"{length} intervals")
    try:
        series.first_ts + timedelta(seconds=(length - 1) * series.interval_s)
    except OverflowError:
        return Rejection("bad_series", f"the last interval ends after the year 9999 (first_ts={series.first_ts.isoformat()})")
    for name, column in (("kwh_total", series.kwh_total), ("kw", series.kw)):
        if column is not None and len(column) != length:
            return Rejection("bad_series", f"{name} has {len(column)} values for {length} intervals")
    return series


def _has_offset(moment: datetime) -> bool:
    return moment.tzinfo is not None


def _explain(raw: bytes, exc: Exception) -> Rejection:
    try:
        loose = _loose_decoder.decode(raw)
    except msgspec.DecodeError as decode_error:
        return Rejection("malformed_json", str(decode_error))
    if not isinstance(loose, dict):
        return Rejection("not_an_object", f"got {type(loose).__name__}")
    record_type = loose.get("type")
    if record_type not in _RECORD_TYPES:
        if "type" not in loose:
            return Rejection("missing_field", "Object missing required field `type`")
        return Rejection("unknown_type", f"type={record_type!r}")
    message = str(exc)
    if "missing required field" in message:
        return Rejection("missing_field", message)
    return Rejection("wrong_type", message)


# A transformer can carry about 20 % over its rating for a while; beyond that in a whole
# interval, the reading is not what the meter measured.
OVERLOAD_TOLERANCE = 1.2


def check_against_registry(reading: PowerReading, capacity_kva: float | None, registry_loaded: bool) -> Rejection | None:
    """Rules that need the project's registry row: ``capacity_kva`` is its contracted
    capacity, None when the project is not registered. Before any registry is loaded (a
    bare embedded run) nothing is refused for being unregistered."""
    if capacity_kva is None:
        return Rejection("unknown_project", f"project_id={reading.project_id!r}") if registry_loaded else None
    most = _most_kwh(capacity_kva, reading.interval_s)
    if capacity_kva > 0 and reading.kwh > most:
        return Rejection("impossible_kwh", f"kwh={reading.kwh} > {most:.1f} ({capacity_kva:g} kVA × {reading.interval_s} s × {OVERLOAD_TOLERANCE})")
    return None


def _most_kwh(capacity_kva: float, interval_s: int) -> float:
    """The most energy a reading of ``interval_s`` may hold on a project of ``capacity_kva``."""
    return capacity_kva * interval_s / 3600 * OVERLOAD_TOLERANCE


def none_against_registry(readings: Sequence[PowerReading], registry: Mapping[str, RegistryEntry]) -> bool:
    """True when ``check_against_registry`` refuses none of ``readings`` (``registry``:
    the projects' rows, empty before any is loaded), asked once for the lot (False: ask
    each reading)."""
    if not registry:
        return True
    capacity_of = {}
    for project_id in {reading.project_id for reading in readings}:
        held = registry.get(project_id)
        if held is None:
            return False
        capacity_of[project_id] = held.capacity_kva
    for reading in readings:
        capacity_kva = capacity_of[reading.project_id]
        if capacity_kva > 0 and reading.kwh > _most_kwh(capacity_kva, reading.interval_s):
            return False
    return True
