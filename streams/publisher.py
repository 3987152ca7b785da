"""The client that sites and the grid's metering platform publish with (kafka-python).

It checks each record with the same validation as the worker, so a site learns at once
what is wrong; what fails goes to the dead-letter topic with its reason rather than
being dropped, and the worker checks everything again anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec
from kafka import KafkaProducer

from ..runtime.settings import Settings
from .contract import (
    DLQ_HEADER_DETAIL,
    DLQ_HEADER_REASON,
    DLQ_HEADER_RECEIVED_AT,
    DLQ_HEADER_SOURCE,
    DLQ_TOPIC,
    MAX_BATCH_READINGS,
    POWER_TOPIC,
    RECORD_TOPICS,
    PowerBatch,
    PowerReading,
    PowerSeries,
    Record,
    reading_time,
)
from .signing import KeyStore, sign
from .validation import Rejection, check_record, decode_record, passes_reading_rules, series_rejections

_encode = msgspec.json.Encoder().encode
_JUST_BEFORE = timedelta(microseconds=1)  # midnight ends the day before


@dataclass(frozen=True, slots=True)
class Published:
    topic: str
    rejection: Rejection | None = None


def dead_letter_headers(rejection: Rejection, source: str) -> list[tuple[str, bytes]]:
    return [
        (DLQ_HEADER_REASON, rejection.reason.encode()),
        (DLQ_HEADER_DETAIL, rejection.detail.encode()),
        (DLQ_HEADER_SOURCE, source.encode()),
        (DLQ_HEADER_RECEIVED_AT, datetime.now(timezone.utc).isoformat().encode()),
    ]


class SitePublisher:
    """Publishes records keyed by project_id. Use as a context manager; ``close()``
    flushes, so nothing accepted is left in the buffer."""

    def __init__(self, settings: Settings, **producer_options: object) -> None:
        options = {
            **settings.kafka_options(),
            "client_id": "sitepulse-publisher",
            "acks": "all",
            "linger_ms": 20,
            "batch_size": 256 * 1024,
            "retries": 5,
        }
        options.update(producer_options)
        self._producer = KafkaProducer(**options)
        self._failures: list[Exception] = []
        # A site's publisher signs its readings with its project's key (streams/signing.py).
        self._keys = KeyStore.load(settings.signing_keys) if settings.signing_keys else None

    def __enter__(self) -> SitePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, record: Record, source: str = "publisher") -> Published:
        """Publish a record built in code (raises nothing for a bad one: it is dead-lettered)."""
        if isinstance(record, PowerBatch):
            return self.publish_batch(record.project_id, record.expand(), source)
        now = datetime.now(timezone.utc)
        outcome = check_record(record, now)
        if isinstance(outcome, Rejection):
            return self._dead_letter(_encode(record), record.project_id.encode(), outcome, source)
        if isinstance(record, PowerSeries) and not record.sig and series_rejections(record, now):
            # Its bad points go to the dead-letter topic alone and the rest on as series. A
            # site's signed series goes as it is (its signature covers it whole): the
            # worker refuses its bad points alone.
            return self.publish_series(record.project_id, record.points(), source)
        return self._send(RECORD_TOPICS[type(record)], record.project_id, _encode(self._signed(record)))

    def publish_raw(self, raw: bytes, source: str = "publisher") -> Published:
        """Publish one JSON record as the bytes given (e.g. a line of a replay file)."""
        outcome = decode_record(raw, datetime.now(timezone.utc))
        if isinstance(outcome, Rejection):
            return self._dead_letter(raw, None, outcome, source)
        if isinstance(outcome, (PowerBatch, PowerSeries)):
            return self.publish(outcome, source)
        signed = self._signed(outcome)
        return self._send(RECORD_TOPICS[type(outcome)], outcome.project_id, raw if signed is outcome else _encode(signed))

    def publish_batch(self, project_id: str, readings: Sequence[PowerReading], source: str = "publisher", checked: bool = False) -> Published:
        """Readings of one project as ``PowerBatch`` messages of at most
        MAX_BATCH_READINGS; a reading that fails its checks is dead-lettered alone
        (``checked``: readings of this project that ``decode_record`` accepted)."""
        good, refused = (list(readings), None) if checked else self._checked(project_id, readings, source)
        self._send_batches(project_id, good)
        return Published(POWER_TOPIC) if good or refused is None else refused

    def _send_batches(self, project_id: str, readings: list[PowerReading]) -> None:
        signed = readings if self._keys is None else [self._signed(reading) for reading in readings]
        for first in range(0, len(signed), MAX_BATCH_READINGS):
            self._send(POWER_TOPIC, project_id, _encode(PowerBatch.of(project_id, signed[first : first + MAX_BATCH_READINGS])))

    def publish_series(self, project_id: str, readings: Sequence[PowerReading], source: str = "publisher", checked: bool = False) -> Published:
        """Readings of one project as ``PowerSeries`` messages, one per meter and run of
        intervals (``PowerSeries.runs_of``), each signed as a whole; a reading that fails
        its checks is dead-lettered alone (``checked``: as for ``publish_batch``)."""
        good, refused = (list(readings), None) if checked else self._checked(project_id, readings, source)
        if any(reading.sig for reading in good) and (self._keys is None or self._keys.key_for(project_id) is None):
            # Readings signed by their site, and no key here to sign a series: batches
            # keep each reading's own signature.
            self._send_batches(project_id, good)
        else:
            for series in PowerSeries.runs_of(good):
                self._send(POWER_TOPIC, project_id, _encode(self._signed(series)))
        return Published(POWER_TOPIC) if good or refused is None else refused

    def _checked(self, project_id: str, readings: Sequence[PowerReading], source: str) -> tuple[list[PowerReading], Published | None]:
        """The readings of one project that pass their checks; each other one is
        dead-lettered alone (the last of them returned)."""
        now = datetime.now(timezone.utc)
        good, refused = [], None
        for reading in readings:
            outcome = reading if passes_reading_rules(reading, now) else check_record(reading, now)
            if reading.project_id != project_id:
                outcome = Rejection("bad_batch", f"reading of {reading.project_id} in a batch of {project_id}")
            if isinstance(outcome, Rejection):
                refused = self._dead_letter(_encode(reading), reading.project_id.encode(), outcome, source)
            else:
                good.append(reading)
        return good, refused

    def _signed(self, record: Record) -> Record:
        """An unsigned reading or series signed with its project's key, when this
        publisher holds it."""
        if self._keys is None or not isinstance(record, (PowerReading, PowerSeries)) or record.sig:
            return record
        key = self._keys.key_for(record.project_id)
        return sign(record, key) if key else record

    def _send(self, topic: str, project_id: str, raw: bytes) -> Published:
        self.send_keyed(topic, project_id.encode(), raw)
        return Published(topic)

    def _dead_letter(self, raw: bytes, key: bytes | None, rejection: Rejection, source: str) -> Published:
        self.send_keyed(DLQ_TOPIC, key, raw, dead_letter_headers(rejection, source))
        return Published(DLQ_TOPIC, rejection)

    def send_keyed(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        """A keyed record on any topic (the compacted registry uses this)."""
        future = self._producer.send(topic, key=key, value=value, headers=headers)
        future.add_errback(self._failures.append)

    def flush(self) -> None:
        """Wait until every record is acknowledged; raise if any was not."""
        self._producer.flush()
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishFailed(f"{len(failures)} records were not accepted by the broker: {failures[0]!r}")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()


class PublishFailed(Exception):
    pass


class DayPacker:
    """Packs a time-ordered stream of readings (a replay, a backfill) into one
    ``PowerBatch`` per project and local day (or, ``as_series``, one ``PowerSeries`` per
    meter and day), so that the worker pays its per-message cost once per batch rather
    than once per reading.

    Order is kept where the worker's judgement depends on it: a window holds the
    readings ending in one local day (midnight belongs to the day before), and it is
    sent in full before the first reading of the next day is taken. The stream's clock
    therefore never passes a day's end (plus the settling interval) while any reading
    of that day is still held back.

    Batches go out in order of their first reading, which is what the worker's clock
    takes as a partition's position: when one project's batch fills up, every held
    batch goes out with it, so no later batch starts before one already sent."""

    def __init__(self, publisher: SitePublisher, tz: ZoneInfo, max_pending: int = 200_000, as_series: bool = False, checked: bool = False) -> None:
        """``checked``: every reading given to ``add`` was accepted by ``decode_record``
        (a replay's lines), so it is not checked a second time."""
        self.publisher = publisher
        self.tz = tz
        publish = publisher.publish_series if as_series else publisher.publish_batch
        self._publish = functools.partial(publish, checked=True) if checked else publish
        self.max_pending = max_pending
        self._window: date | None = None
        self._pending: dict[str, list[PowerReading]] = {}
        self._count = 0
        self._window_of: tuple[datetime | None, date | None] = (None, None)

    def add(self, reading: PowerReading, source: str = "publisher") -> None:
        self.add_all((reading,), source)

    def add_all(self, readings: Iterable[PowerReading], source: str = "publisher") -> None:
        """``add`` each reading, in order (a replay's block of lines at once)."""
        # (The state is held in locals, and put back before each flush and at the end.)
        tz, limit, pending, count = self.tz, self.max_pending, self._pending, self._count
        last_ts, window = self._window_of
        for reading in readings:
            # A time-ordered stream gives every meter's reading of one time in a row:
            # the window of the last time seen serves them all.
            if reading.ts != last_ts:
                last_ts = reading.ts
                window = (last_ts - _JUST_BEFORE).astimezone(tz).date()
            if window != self._window or count >= limit:
                self._count = count
                self.flush(source)
                self._window, pending, count = window, self._pending, 0
            held = pending.get(reading.project_id)
            if held is None:
                held = pending[reading.project_id] = []
            held.append(reading)
            count += 1
            if len(held) >= MAX_BATCH_READINGS:
                self._count = count
                self.flush(source)
                pending, count = self._pending, 0
        self._count, self._window_of = count, (last_ts, window)

    def flush(self, source: str = "publisher") -> None:
        by_first_reading = sorted(self._pending.items(), key=lambda item: min(map(reading_time, item[1])))
        for project_id, held in by_first_reading:
            self._publish(project_id, held, source)
        self._pending = {}
        self._count = 0
