"""The Faust app: agents that feed batches of Kafka records to the handlers in
``pipeline.py`` and dead-letter what fails validation.

Processing is at-least-once: Faust acknowledges a batch from ``take_events`` only after
the agent has finished it, and every write is idempotent (see ``points.py``), so a
batch handled twice after a crash changes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import ssl
import time
import tracemalloc
from collections import Counter
from datetime import datetime, timedelta, timezone
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

import msgspec
from mode import CrashingSupervisor

from ..runtime.settings import Settings
from ..runtime.worker_status import write_status
from ..streams.contract import (
    AUDIT_TOPIC,
    DLQ_TOPIC,
    EVENTS_TOPIC,
    INVESTMENT_TOPIC,
    POWER_TOPIC,
    REGISTRY_TOPIC,
    NODES_TOPIC,
    STOPPAGES_TOPIC,
    AuditRecord,
    InvestmentReport,
    PowerBatch,
    PowerReading,
    PowerSeries,
    ProjectEvent,
    RegistryEntry,
    NodeRecord,
    StoppageRecord,
)
from ..streams.publisher import dead_letter_headers
from ..streams.signing import KeyStore
from ..streams.topics import partition_of as kafka_partition_of
from ..streams.validation import Part, Rejection, batch_rejections, check_against_registry, decode_accepted_messages, decode_message, none_against_registry, reading_parts, series_rejections
from .activity import ActivityTracker
from .core.judge import SINGLE_READING_MESSAGES, Judge
from .core.calendar import Stoppage, WorkCalendar
from ..sink.influx import InfluxClient, RetryingInflux
from ..sink.worker_store import InfluxWorkerStore
from .ledger import LedgerHandler
from .core.daily import MeterRun
from .pipeline import InvestmentHandler, PowerHandler, as_power_reading, batch_runs, series_run, single_reading_runs
from ..sink.points import audit_point, node_point, project_point, stoppage_point
from .review import PeriodReview

log = logging.getLogger("sitepulse.worker")

# Faust's defaults suit Apache Kafka. Tansu makes a joining member wait half the group's
# session timeout, so the embedded profile keeps it short (see docs/PLATFORM notes).
EMBEDDED_KAFKA_TIMEOUTS: dict[str, Any] = {
    "broker_session_timeout": 4,
    "broker_heartbeat_interval": 1,
    "broker_rebalance_timeout": 10,
    "broker_request_timeout": 30,
}

# Python's cyclic collector runs after every 700 allocations by default and walks the
# young objects each time; a worker allocates a few objects per reading (and Faust
# several per message) and keeps a large heap, so on the one-reading-per-message path
# collection was a fifth of sitepulse's own CPU (tools/hot_path.py --single: 16.9 →
# 13.4 s per million readings at 10,000). Almost nothing the step makes is cyclic: its
# objects go with their reference counts, and the rare cycle waits a little longer.
YOUNG_OBJECTS_BETWEEN_COLLECTIONS = 10_000


def new_faust_app(settings: Settings, app_id: str, datadir: Path) -> faust.App:
    """A Faust app on the settings' broker, with raw keys and values and no web server
    (the worker's, and the bare agent's that the benchmark measures beside it)."""
    app = faust.App(
        app_id,
        broker=settings.broker,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        datadir=str(datadir),
        web_enabled=False,
        broker_credentials=faust_credentials(settings),
        **(EMBEDDED_KAFKA_TIMEOUTS if settings.profile == "embedded" else {}),
    )
    if (fetch_wait_ms := settings.consumer_fetch_wait_ms) is not None:
        app.transport.Consumer = _consumer_waiting_at_most(fetch_wait_ms)
    return app


def _consumer_waiting_at_most(fetch_wait_ms: int) -> type[faust_aiokafka.Consumer]:
    """Faust's aiokafka consumer with the broker's wait for a fetch set to ``fetch_wait_ms``
    (Faust passes aiokafka a fixed 1500 ms and has no setting for it)."""

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_wait_ms  # read when the consumer starts its fetcher
            return consumer

    class Consumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    return Consumer


def tune_garbage_collector() -> None:
    """For a long-running worker process (and the bare Faust agent measured beside it)."""
    gc.set_threshold(YOUNG_OBJECTS_BETWEEN_COLLECTIONS, 10, 10)


_registry_decoder = msgspec.json.Decoder(RegistryEntry)
_stoppage_decoder = msgspec.json.Decoder(StoppageRecord)
_node_decoder = msgspec.json.Decoder(NodeRecord)
_event_decoder = msgspec.json.Decoder(ProjectEvent)
_audit_decoder = msgspec.json.Decoder(AuditRecord)
_encode = msgspec.json.Encoder().encode
# A day is judged once the stream's clock is one reporting interval past its end, so the
# reading that closes the day (stamped at midnight) is in.
DAY_SETTLE = timedelta(minutes=15)
TOO_LATE_DETAIL = "older than the grace period behind the stream's clock; the day is final"


def _readings_in(record: object) -> int:
    """How many readings an accepted record stands for."""
    return len(record.kwh) - record.kwh.count(None) if type(record) is MeterRun else 1


class WorkerCounters:
    """What the worker has done since it started; logged periodically."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first_record_after_s: float | None = None
        self.counts: Counter[str] = Counter()

    def record_batch(self, kind: str, accepted: int, rejected: Counter[str]) -> None:
        if self.first_record_after_s is None:
            self.first_record_after_s = time.monotonic() - self.started
            log.info("first batch handled %.2f s after start", self.first_record_after_s)
        self.counts[kind] += accepted
        for reason, count in rejected.items():
            self.counts[f"rejected.{reason}"] += count


class DeadLetters:
    """Rejected records to the dead-letter topic, each with its reason and where it came
    from, before the batch is acknowledged: none is lost."""

    def __init__(self, topic: faust.TopicT) -> None:
        self.topic = topic

    async def send(self, rejections: Sequence[tuple[faust.EventT, Part | None, Rejection]]) -> Counter[str]:
        """The messages as they came; a reading refused out of a batch alone, as a single
        record (``#index`` in the source), so that it can be fixed and sent again."""
        counts: Counter[str] = Counter()
        deliveries = []
        for event, part, rejection in rejections:
            counts[rejection.reason] += 1
            message = event.message
            source, value = f"{message.topic}/{message.partition}/{message.offset}", message.value
            if part is not None and part.index is not None and part.record is not None:
                source += f"#{part.index}"
                value = _encode(part.record)
            deliveries.append(await self.topic.send(key=message.key, value=value, headers=dead_letter_headers(rejection, source)))
        for delivery in deliveries:
            await delivery
        return counts

    async def decoded(
        self, events: Sequence[faust.EventT], decode: Callable[[bytes], Any], skip_tombstones: bool = False
    ) -> tuple[list[tuple[faust.EventT, Any]], Counter[str]]:
        """Each message with its record, or the message dead-lettered as ``wrong_type``
        with why it could not be read (``decode`` raises ValueError for a record that
        reads but makes no sense). Tombstones of compacted topics are skipped when asked."""
        records, refused = [], []
        for event in events:
            if event.message.value is None and skip_tombstones:
                continue
            try:
                records.append((event, decode(event.message.value or b"")))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                refused.append((event, None, Rejection("wrong_type", str(exc))))
        return records, await self.send(refused)


def decode_node(raw: bytes) -> NodeRecord:
    record = _node_decoder.decode(raw)
    if not record.node.strip() or (record.planned_date is None) == (record.done_date is None):
        raise ValueError("a node record carries a node and either planned_date or done_date")
    return record


def decode_stoppage(raw: bytes) -> Stoppage:
    record = _stoppage_decoder.decode(raw)
    stoppage = Stoppage(record.project_id, record.from_day, record.to_day, record.reason)
    if stoppage.last < stoppage.first:
        raise ValueError(f"to_day {stoppage.last} is before from_day {stoppage.first}")
    return stoppage


def faust_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The broker connection settings kafka-python gets (``Settings.kafka_options``), for
    Faust (None: plaintext)."""
    context = None
    if settings.kafka_security_protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password, mechanism=settings.kafka_sasl_mechanism, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def build_app(settings: Settings, registry: Sequence[RegistryEntry] = (), power_partitions: int | None = None) -> faust.App:
    """``registry``: the registry as it stands when the worker starts (read from its
    compacted topic first, so no reading is judged against an empty registry).
    ``power_partitions``: of the power topic, so that a worker knows which projects'
    stored days are its own after a restart (None: it owns them all)."""
    worker = Worker(settings, registry, power_partitions)
    worker.add_record_agents()
    worker.add_reference_agents()
    worker.add_event_agents()
    worker.add_timers()
    return worker.app


class Worker:
    """The Faust app and what its agents share: the store, the judge's adapter, the
    handlers, the dead letters and the counters."""

    def __init__(self, settings: Settings, registry: Sequence[RegistryEntry], power_partitions: int | None) -> None:
        self.settings = settings
        datadir = settings.state_dir / "faust" / settings.app_id
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.app = new_faust_app(settings, settings.app_id, datadir)
        self.counters = WorkerCounters()
        self.dead_letters = DeadLetters(self.topic(DLQ_TOPIC))
        self.events_topic = self.topic(EVENTS_TOPIC)
        self.influx = RetryingInflux(InfluxClient(settings))
        self.store = InfluxWorkerStore(self.influx, settings.tz)
        grace = timedelta(hours=settings.late_grace_hours)
        judge = Judge(
            settings.tz,
            WorkCalendar.with_override_file(settings.calendar_overrides),
            grace=grace,
            settle=DAY_SETTLE,
            partition_of=None if power_partitions is None else (lambda project_id: kafka_partition_of(project_id.encode(), power_partitions)),
            timelines_held=settings.timelines_held or None,
        )
        for entry in registry:
            judge.set_project(entry)
        self.tracker = ActivityTracker(judge, self.store, self.publish)
        self.power = PowerHandler(self.store, settings.tz, settings.day_cache_days, self.tracker)
        self.investment = InvestmentHandler(self.store)
        self.ledger = LedgerHandler(self.influx, settings.tz)
        self.review = PeriodReview(self.influx, settings.tz, settings.snail_bottom, grace=grace, flat_investment_months=settings.flat_investment_months)
        self.signing_keys = KeyStore.load(settings.signing_keys) if settings.signing_keys else None
        # A backlog's single readings, taken at once and held for the takes after them
        # (``take_records``), and the monotonic time by which they are handled.
        self.held_singles: list[tuple[faust.EventT, Part]] = []
        self.held_singles_until = 0.0
        if settings.signatures_required and self.signing_keys is None:
            raise SystemExit("要求读数签名 (生产环境默认), 但未配置 SITEPULSE_SIGNING_KEYS (项目密钥表)")

    def topic(self, name: str) -> faust.TopicT:
        return self.app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def agent(self, topic: faust.TopicT, name: str) -> Callable:
        # An agent that raised would leave the worker running and processing nothing, so
        # any unexpected error (a refused write included) stops the whole worker instead.
        return self.app.agent(topic, name=name, supervisor_strategy=CrashingSupervisor)

    async def publish(self, events: list[ProjectEvent]) -> None:
        deliveries = [await self.events_topic.send(key=e.project_id.encode(), value=_encode(e)) for e in events]
        for delivery in deliveries:
            await delivery

    def batches(self, stream: faust.StreamT, size: int = 1000) -> Any:
        return stream.take_events(size, within=self.settings.batch_within_s)

    # --- readings and investment reports: validated, in batches ---------------------------

    def add_record_agents(self) -> None:
        self._validated_records_agent(POWER_TOPIC, "power", PowerReading, self.power.handle, self.screen_power)
        self._validated_records_agent(INVESTMENT_TOPIC, "investment", InvestmentReport, self.investment.handle)

    def screen_power(self, record: PowerReading | PowerSeries) -> Rejection | None:
        """A reading, or a series as a whole: its signature and its project (a series'
        points are held to the project's capacity by ``series_parts``)."""
        keys = self.signing_keys
        if keys is not None and self.settings.signatures_required and (refusal := keys.verify(record)) is not None:
            return refusal
        registry = self.tracker.judge.registry
        held = registry.get(record.project_id)
        if type(record) is PowerSeries:
            return Rejection("unknown_project", f"project_id={record.project_id!r}") if held is None and registry else None
        return check_against_registry(record, held.capacity_kva if held else None, bool(registry))

    def series_parts(self, series: PowerSeries, received: datetime) -> tuple[Part | None, list[tuple[Part, Rejection]]]:
        """A screened series' readings as one run (None: none left), less those refused
        each on its own."""
        held = self.tracker.judge.registry.get(series.project_id)
        refused = series_rejections(series, received, held.capacity_kva if held else None)
        rejected = [(Part(series.point(index), rejection, index), rejection) for index, rejection in refused.items()]
        run = series_run(series, refused)
        return (Part(run) if run.bounds() is not None else None), rejected

    def batch_parts(self, batch: PowerBatch, received: datetime) -> tuple[list[Part], list[Part]]:
        """A batch's readings as the power step takes them: those that pass every rule,
        each meter's as runs (``batch_runs``), and those refused, each on its own. Where
        each reading must be screened on its own (signatures checked, each reading has
        its own; a project the registry does not hold) or the batch spans more than the
        grace period, every reading is a part of its own, screened as a single reading
        is: the second list, with their rejections."""
        registry = self.tracker.judge.registry
        held = registry.get(batch.project_id)
        if not (self.signing_keys is not None and self.settings.signatures_required) and (held is not None or not registry):
            refused = batch_rejections(batch, received, held.capacity_kva if held else None)
            runs = batch_runs(batch.project_id, batch.readings, refused, self.tracker.judge.grace_ms)
            if runs is not None:
                checked = [
                    Part(run, None, None, (batch, places)) if run is not None else Part(batch.reading(places[0]), None, places[0])
                    for run, places in runs
                ]
                return checked, [Part(batch.reading(index), rejection, index) for index, rejection in sorted(refused.items())]
        else:
            refused = batch_rejections(batch, received)
        return [], reading_parts(batch, refused)

    def _validated_records_agent(
        self, topic_name: str, kind: str, record_type: type, handle: Callable, screen: Callable[[Any], Rejection | None] | None = None
    ) -> None:
        @self.agent(self.topic(topic_name), kind)
        async def validated_records(stream: faust.StreamT) -> None:
            takes = aiter(self.batches(stream, self.settings.batch_messages))
            next_take: asyncio.Future | None = None
            try:
                while True:
                    if kind == "power" and self.held_singles:
                        # Held readings wait for the next take at most ``batch_within_s``.
                        next_take = next_take or asyncio.ensure_future(anext(takes))
                        done, _ = await asyncio.wait({next_take}, timeout=max(0.0, self.held_singles_until - time.monotonic()))
                        if not done:
                            await self.take_held_singles(handle)
                            continue
                    try:
                        events = await (next_take or anext(takes))
                    except StopAsyncIteration:
                        return
                    next_take = None
                    await self.take_records(events, kind, record_type, handle, screen)
            finally:
                if next_take is not None:
                    next_take.cancel()

    async def take_records(
        self, events: Sequence[faust.EventT], kind: str, record_type: type, handle: Callable, screen: Callable[[Any], Rejection | None] | None = None
    ) -> None:
        """Decode, check and screen one batch of messages, handle what is accepted and
        dead-letter the rest (the power and investment agents' whole work)."""
        received = datetime.now(timezone.utc)
        if kind == "power":
            singles = self._accepted_single_readings(events, received)
            if singles is not None and self._may_hold(events, singles):
                self._hold(singles)
                return
            if self.held_singles or singles is not None:
                # (held readings go first, whatever this take holds: the order is kept)
                await self.take_held_singles(handle, singles or [])
            if singles is not None:
                return
        accepted: list[tuple[faust.EventT, Part]] = []
        rejections: list[tuple[faust.EventT, Part | None, Rejection]] = []
        taken = 0  # readings accepted (a series' run holds many)
        for event in events:
            for part in decode_message(event.message.value or b"", received, record_type, whole_batches=True):
                if type(part.record) is PowerBatch:  # only on the power topic (decode_message)
                    runs, readings = self.batch_parts(part.record, received)
                    accepted += [(event, run) for run in runs]
                    taken += sum(_readings_in(run.record) for run in runs)
                    for reading in readings:
                        if (refusal := reading.rejection or screen(reading.record)) is not None:
                            rejections.append((event, reading, refusal))
                        else:
                            accepted.append((event, reading))
                            taken += 1
                    continue
                refusal = part.rejection
                if refusal is None and screen is not None:
                    refusal = screen(part.record)
                if refusal is not None:
                    rejections.append((event, part, refusal))
                elif type(part.record) is PowerSeries:  # only on the power topic (decode_message)
                    run_part, refused = self.series_parts(part.record, received)
                    if run_part is not None:
                        accepted.append((event, run_part))
                        taken += _readings_in(run_part.record)
                    rejections += [(event, point, rejection) for point, rejection in refused]
                else:
                    accepted.append((event, part))
                    taken += 1
            # Batch messages can carry thousands of readings: memory and write
            # size follow readings, not messages.
            if taken >= self.settings.batch_size:
                await self._handle_chunk(kind, handle, accepted, rejections)
                accepted, rejections, taken = [], [], 0
        await self._handle_chunk(kind, handle, accepted, rejections)

    def _may_hold(self, events: Sequence[faust.EventT], singles: list[tuple[faust.EventT, Part]]) -> bool:
        """Whether a take of single readings, all accepted, may wait for the next take:
        when it is a backlog's, full and with its newest message older than the batch
        window (a worker that keeps up sees fresh messages, and holding them would only
        delay them). A backlog's batch costs less a reading when it holds more: each
        batch totals, writes and judges every day it touches, and 1,000 messages of a
        city's live meters touch a day of each project. Held up to ``batch_size``
        readings, while each next take comes within ``batch_within_s`` and is a
        backlog's too: how long that takes follows how fast Faust hands the backlog
        over, not a clock, so a slow machine's batches are no smaller than a fast one's."""
        if len(events) < self.settings.batch_messages or len(self.held_singles) + len(singles) >= self.settings.batch_size:
            return False
        stamps = [event.message.timestamp for event in events]
        return None not in stamps and max(stamps) < time.time() - self.settings.batch_within_s

    def _hold(self, singles: list[tuple[faust.EventT, Part]]) -> None:
        """Keep a take's readings for the next: each message holds a reference, so Faust,
        which acknowledges a take when the agent asks for the next, does not commit
        its offset before the reading is stored. The reference is the one the batch's
        write gives back (``_handle_chunk``)."""
        self.held_singles_until = time.monotonic() + self.settings.batch_within_s
        for event, _part in singles:
            event.message.incref()
        self.held_singles += singles

    async def take_held_singles(self, handle: Callable, singles: Sequence[tuple[faust.EventT, Part]] = ()) -> None:
        """Handle the held readings, then ``singles``, in batches of up to ``batch_size``;
        the references the held messages kept are given back once their batch is stored."""
        held, self.held_singles = self.held_singles, []
        taken, size = [*held, *singles], self.settings.batch_size
        for first in range(0, len(taken), size):
            await self._handle_chunk("power", handle, taken[first : first + size], [], referenced=max(0, min(len(held) - first, size)))

    def _give_back(self, messages: Sequence[Any]) -> None:
        """One reference of each message given back; where it was the last, the message is
        acknowledged (its offset may be committed)."""
        app = self.app
        for message in messages:
            if message.ack(app.consumer):
                app.sensors.on_message_out(message.tp, message.offset, message)

    def _accepted_single_readings(self, events: Sequence[faust.EventT], received: datetime) -> list[tuple[faust.EventT, Part]] | None:
        """A batch of messages that each carry one reading the power agent accepts as it
        is (decoded, checked and screened at once, ``decode_accepted_messages``), each
        with its message; None when any does not, or when each reading's signature must
        be checked: then the batch is taken message by message."""
        if self.signing_keys is not None and self.settings.signatures_required:
            return None
        readings = decode_accepted_messages([event.message.value or b"" for event in events], received)
        if readings is None or not none_against_registry(readings, self.tracker.judge.registry):
            return None
        return [(event, Part(reading)) for event, reading in zip(events, readings)]

    async def _handle_chunk(
        self,
        kind: str,
        handle: Callable,
        accepted: list[tuple[faust.EventT, Part]],
        rejections: list[tuple[faust.EventT, Part | None, Rejection]],
        referenced: int = 0,
    ) -> None:
        """One batch handled, its rejections dead-lettered and its events published. The
        first ``referenced`` of ``accepted`` are held messages (``_hold``): each already
        holds the reference that is given back once the batch is stored."""
        taken = self._single_readings_as_runs(accepted) if kind == "power" else [(event, part, None) for event, part in accepted]
        outcome = await handle(
            [part.record for _, part, _ in taken],
            [event.message.partition for event, _, _ in taken],
            time.time(),
            [event.message.offset if singles is None else SINGLE_READING_MESSAGES for event, _, singles in taken],
        )
        rejections += [(*taken[position][:2], Rejection("too_late", TOO_LATE_DETAIL)) for position in outcome.too_late]
        for position, place in outcome.too_late_places:
            # A run's reading, dead-lettered alone: as the site sent it in its batch or its
            # own message, or, out of a series, as the record a site would send.
            event, part, singles = taken[position]
            if singles is not None:
                rejections.append((*singles[place], Rejection("too_late", TOO_LATE_DETAIL)))
                continue
            if part.origin is not None:
                batch, indexes = part.origin
                reading, index = batch.reading(indexes[place]), indexes[place]
            else:
                reading, index = as_power_reading(part.record.reading(place)), place
            rejections.append((event, Part(reading, None, index), Rejection("too_late", TOO_LATE_DETAIL)))
        refused = await self.dead_letters.send(rejections)
        await self.publish(outcome.events)
        readings = sum(_readings_in(part.record) for _, part in accepted)
        stored_readings = readings - len(outcome.too_late) - len(outcome.too_late_places)
        if outcome.duplicates:
            self.counters.counts["duplicates"] += outcome.duplicates
        if outcome.stored is None:
            self._give_back([event.message for event, _ in accepted[:referenced]])
            self.counters.record_batch(kind, stored_readings, refused)
            return
        self.counters.record_batch(kind, 0, refused)
        self._acknowledge_when_stored(outcome.stored, [event.message for event, _ in accepted], kind, stored_readings, referenced)

    def _single_readings_as_runs(
        self, accepted: list[tuple[faust.EventT, Part]]
    ) -> list[tuple[faust.EventT, Part, list[tuple[faust.EventT, Part] | None] | None]]:
        """The parts as the power step takes them: each stretch of readings that came one
        per message as each meter's runs (``single_reading_runs``), each run with the
        message and part of each of its places; every other part as it is. A stretch
        stays between the parts before and after it: a later reading of the same time
        still replaces an earlier one."""
        taken: list = []
        stretch: list[tuple[faust.EventT, Part]] = []
        for entry in [*accepted, None]:
            if entry is not None and type(entry[1].record) is PowerReading and entry[1].index is None:
                stretch.append(entry)  # (a batch's reading taken alone is not a message of its own)
                continue
            runs = single_reading_runs([(event.message.partition, part.record) for event, part in stretch], self.tracker.judge.grace_ms) if len(stretch) > 1 else None
            if runs is None:
                taken += [(event, part, None) for event, part in stretch]
            else:
                for run, positions in runs:
                    if run is None:
                        taken.append((*stretch[positions[0]], None))
                        continue
                    singles = [None if position is None else stretch[position] for position in positions]
                    taken.append((singles[-1][0], Part(run), singles))
            stretch = []
            if entry is not None:
                taken.append((*entry, None))
        return taken

    def _acknowledge_when_stored(self, stored: asyncio.Future[None], messages: list[Any], kind: str, readings: int, referenced: int = 0) -> None:
        """The batch's messages are acknowledged (their offsets may be committed) only
        once its readings and day totals are stored. Faust acknowledges a batch when the agent takes the
        next one: a reference held on each message keeps that from being the last, and
        the write's landing gives it back. A write that failed or was cancelled gives
        nothing back: its messages are delivered again after the worker stops, and the
        failure is raised where the write is next awaited. The first ``referenced``
        messages hold theirs already (held readings, one message each)."""
        fresh = list({id(message): message for message in messages[referenced:]}.values())
        for message in fresh:
            message.incref()
        held = [*messages[:referenced], *fresh]

        def on_stored(write: asyncio.Future[None]) -> None:
            if write.cancelled() or write.exception() is not None:
                return
            self._give_back(held)
            self.counters.counts[kind] += readings

        stored.add_done_callback(on_stored)

    # --- reference records on compacted topics: registry, plan nodes, stoppages -----------

    def add_reference_agents(self) -> None:
        self._stored_records_agent(REGISTRY_TOPIC, "registry", _registry_decoder.decode, self._registry_points)
        self._stored_records_agent(NODES_TOPIC, "nodes", decode_node, lambda record, ts_ms: [node_point(record, ts_ms)])

        @self.agent(self.topic(STOPPAGES_TOPIC), "stoppages")
        async def stoppages(stream: faust.StreamT) -> None:
            async for events in self.batches(stream):
                # A tombstone is skipped: withdrawing a stoppage is done by amending it.
                found, refused = await self.dead_letters.decoded(events, decode_stoppage, skip_tombstones=True)
                for _, stoppage in found:
                    await self.store.write([stoppage_point(stoppage, self.settings.tz)])
                    await self.power.add_stoppage(stoppage, time.time())
                self.counters.record_batch("stoppages", len(found), refused)

    def _registry_points(self, entry: RegistryEntry, ts_ms: int) -> list[str]:
        self.tracker.judge.set_project(entry)
        return [project_point(entry, ts_ms)]

    def _stored_records_agent(self, topic_name: str, name: str, decode: Callable[[bytes], Any], points_of: Callable[[Any, int], list[str]]) -> None:
        """Reference records (registry rows, plan nodes), each turned into points stamped
        with its message time (a re-delivered record lands on its own point). A tombstone
        is skipped: what it stood for keeps its history."""

        @self.agent(self.topic(topic_name), name)
        async def stored_records(stream: faust.StreamT) -> None:
            async for events in self.batches(stream):
                records, refused = await self.dead_letters.decoded(events, decode, skip_tombstones=True)
                points = [p for event, record in records for p in points_of(record, int(event.message.timestamp * 1000))]
                await self.store.write(points)
                self.counters.record_batch(name, len(points), refused)

    # --- the audit trail and the events' ledger ----------------------------------------------

    def add_event_agents(self) -> None:
        @self.agent(self.topic(AUDIT_TOPIC), "audit")
        async def audit(stream: faust.StreamT) -> None:
            async for events in self.batches(stream):
                records, refused = await self.dead_letters.decoded(events, _audit_decoder.decode)
                await self.store.write([audit_point(record) for _, record in records])
                self.counters.record_batch("audit", len(records), refused)

        @self.agent(self.events_topic, "ledger")
        async def ledger(stream: faust.StreamT) -> None:
            async for events in self.batches(stream):
                decoded, refused = await self.dead_letters.decoded(events, _event_decoder.decode)
                await self.ledger.handle([event for _, event in decoded])
                self.counters.record_batch("events", len(decoded), refused)

    # --- what the clock drives, and partitions moving ---------------------------------------

    def add_timers(self) -> None:
        app, settings = self.app, self.settings

        @app.timer(interval=settings.review_interval_s, on_leader=True)
        async def review_periods() -> None:
            await self.run_review()

        @app.on_partitions_assigned.connect
        async def take_assigned_partitions(app: faust.App, assigned: Any = (), **kwargs: Any) -> None:
            await self.power.take_partitions({tp.partition for tp in assigned if tp.topic == POWER_TOPIC}, time.time())

        @app.timer(interval=5.0)
        async def judge_as_time_passes() -> None:
            # Silent meters send nothing: the clock, not a record, must raise their alarm.
            await self.power.advance(time.time())

        self.influx.on_change = self.write_status

        @app.timer(interval=5.0)
        async def keep_status_file() -> None:
            self.write_status()

        @app.timer(interval=30.0)
        async def log_progress() -> None:
            if self.counters.counts:
                log.info("handled so far: %s", dict(sorted(self.counters.counts.items())))

        if profile_out := os.environ.get("SITEPULSE_TRACEMALLOC_OUT"):
            self._trace_memory(Path(profile_out))

        @app.on_before_shutdown.connect
        async def close_influx(app: faust.App, *args: Any, **kwargs: Any) -> None:
            try:
                await self.power.landed()  # the last batches' writes, before the client closes
            except (Exception, asyncio.CancelledError):
                log.warning("the last batches' readings were not stored; they are delivered again at the next start", exc_info=True)
            await self.influx.client.close()

    async def run_review(self) -> None:
        """Rankings and checks across projects read every partition's data from InfluxDB."""
        if self.tracker.judging_backlog:
            # Half of a big backlog is judged: the review would rank half-judged days, and
            # its memory would come on top of the judging's. The next one runs after it.
            return
        started = time.monotonic()
        try:
            await self.publish(await self.review.run())
        except Exception:
            # The review only reads what is stored and rewrites its own points: whatever
            # went wrong, the next one starts afresh, and the readings must keep flowing.
            log.exception("period review failed; the next runs in %d s", self.settings.review_interval_s)
            return
        if (took := time.monotonic() - started) > 5:
            log.info("period review took %.1f s", took)

    def write_status(self) -> None:
        since = self.influx.degraded_since
        degraded_for = None if since is None else asyncio.get_running_loop().time() - since
        counts = dict(self.counters.counts, timelines_rebuilt=self.tracker.judge.timelines_rebuilt)
        write_status(self.settings.state_dir, degraded_for, self.influx.last_error, counts)

    def _trace_memory(self, profile_out: Path) -> None:
        """Profiling aid (docs/performance.md): the largest allocation sites when the
        traced memory was highest so far, sampled every 2 s."""
        tracemalloc.start()
        highest = [0]

        @self.app.timer(interval=2.0)
        async def dump_memory_profile() -> None:
            current, _ = tracemalloc.get_traced_memory()
            if current > highest[0]:
                highest[0] = current
                top = tracemalloc.take_snapshot().statistics("lineno")[:40]
                profile_out.write_text(f"traced {current / 2**20:.0f} MiB\n" + "\n".join(str(stat) for stat in top) + "\n")
