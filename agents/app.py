"""The Faust app: agents that feed batches of Kafka records to the handlers in
``pipeline.py`` and dead-letter what fails validation.

Processing is at-least-once: Faust acknowledges a batch from ``take_events`` only after
the agent has finished it, and every write is idempotent (see ``points.py``), so a
batch handled twice after a crash changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import tracemalloc
from collections import Counter
from datetime import datetime, timedelta, timezone
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faust

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
    PowerReading,
    ProjectEvent,
    RegistryEntry,
    NodeRecord,
    StoppageRecord,
)
from ..streams.publisher import dead_letter_headers
from ..streams.signing import KeyStore
from ..streams.validation import Part, Rejection, check_against_registry, decode_message
from .activity import ActivityTracker
from .core.calendar import Stoppage, WorkCalendar
from ..sink.influx import InfluxClient, RetryingInflux
from .ledger import LedgerHandler
from .pipeline import InvestmentHandler, PowerHandler
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


def build_app(settings: Settings, registry: Sequence[RegistryEntry] = (), power_partitions: int | None = None) -> faust.App:
    """``registry``: the registry as it stands when the worker starts (read from its
    compacted topic first, so no reading is judged against an empty registry).
    ``power_partitions``: of the power topic, so that a worker knows which projects'
    stored days are its own after a restart (None: it owns them all)."""
    timeouts = EMBEDDED_KAFKA_TIMEOUTS if settings.profile == "embedded" else {}
    datadir = settings.state_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        datadir=str(datadir),
        web_enabled=False,
        broker_credentials=settings.faust_credentials(),
        **timeouts,
    )
    influx = RetryingInflux(InfluxClient(settings))
    calendar = WorkCalendar.with_override_file(settings.calendar_overrides)
    tracker = ActivityTracker(
        influx, settings.tz, calendar, grace=timedelta(hours=settings.late_grace_hours), settle=DAY_SETTLE
    )
    tracker.timelines_held = settings.timelines_held or None
    power = PowerHandler(influx, settings.tz, settings.day_cache_days, tracker)
    investment = InvestmentHandler(influx, settings.tz)
    ledger = LedgerHandler(influx, settings.tz)
    review = PeriodReview(
        influx, settings.tz, settings.snail_bottom, grace=timedelta(hours=settings.late_grace_hours),
        flat_investment_months=settings.flat_investment_months,
    )
    counters = WorkerCounters()

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    dlq = topic(DLQ_TOPIC)
    events_topic = topic(EVENTS_TOPIC)

    async def publish(events: list[ProjectEvent]) -> None:
        deliveries = [await events_topic.send(key=e.project_id.encode(), value=_encode(e)) for e in events]
        for delivery in deliveries:
            await delivery

    tracker.publish = publish
    tracker.partition_count = power_partitions

    async def dead_letter(event: faust.EventT, rejection: Rejection, part: Part | None) -> Any:
        """The message as it came; a reading refused out of a batch alone, as a single
        record (``#index`` in the source), so that it can be fixed and sent again."""
        message = event.message
        source = f"{message.topic}/{message.partition}/{message.offset}"
        value = message.value
        if part is not None and part.index is not None and part.record is not None:
            source += f"#{part.index}"
            value = _encode(part.record)
        return await dlq.send(key=message.key, value=value, headers=dead_letter_headers(rejection, source))

    async def dead_letter_all(rejections: list[tuple[faust.EventT, Part | None, Rejection]], counts: Counter[str]) -> None:
        """Rejected records reach the dead-letter topic before the batch is acknowledged,
        so none is lost."""
        deliveries = []
        for event, part, rejection in rejections:
            counts[rejection.reason] += 1
            deliveries.append(await dead_letter(event, rejection, part))
        for delivery in deliveries:
            await delivery

    # An agent that raised would leave the worker running and processing nothing, so any
    # unexpected error (a refused write included) stops the whole worker instead.
    def validated_records_agent(
        topic_name: str, kind: str, record_type: type, handle: Callable, screen: Callable[[Any], Rejection | None] | None = None
    ) -> None:
        @app.agent(topic(topic_name), name=kind, supervisor_strategy=CrashingSupervisor)
        async def agent(stream: faust.StreamT) -> None:
            async for events in stream.take_events(settings.batch_messages, within=settings.batch_within_s):
                received = datetime.now(timezone.utc)
                accepted: list[tuple[faust.EventT, Part]] = []
                rejections: list[tuple[faust.EventT, Part | None, Rejection]] = []
                for event in events:
                    for part in decode_message(event.message.value or b"", received, record_type):
                        refusal = part.rejection
                        if refusal is None and screen is not None:
                            refusal = screen(part.record)
                        if refusal is None:
                            accepted.append((event, part))
                        else:
                            rejections.append((event, part, refusal))
                    # Batch messages can carry thousands of readings: memory and write
                    # size follow readings, not messages.
                    if len(accepted) >= settings.batch_size:
                        await handle_chunk(kind, handle, accepted, rejections)
                        accepted, rejections = [], []
                await handle_chunk(kind, handle, accepted, rejections)

    async def handle_chunk(
        kind: str,
        handle: Callable,
        accepted: list[tuple[faust.EventT, Part]],
        rejections: list[tuple[faust.EventT, Part | None, Rejection]],
    ) -> None:
        outcome = await handle(
            [part.record for _, part in accepted],
            [event.message.partition for event, _ in accepted],
            time.time(),
            [event.message.offset for event, _ in accepted],
        )
        rejections += [(*accepted[i], Rejection("too_late", TOO_LATE_DETAIL)) for i in outcome.too_late]
        counts: Counter[str] = Counter()
        await dead_letter_all(rejections, counts)
        await publish(outcome.events)
        counters.record_batch(kind, len(accepted) - len(outcome.too_late), counts)
        if outcome.duplicates:
            counters.counts["duplicates"] += outcome.duplicates

    keys = KeyStore.load(settings.signing_keys) if settings.signing_keys else None
    if settings.signatures_required and keys is None:
        raise SystemExit("要求读数签名 (生产环境默认), 但未配置 SITEPULSE_SIGNING_KEYS (项目密钥表)")
    for entry in registry:
        tracker.set_project(entry)

    def screen_power(reading: PowerReading) -> Rejection | None:
        if keys is not None and settings.signatures_required and (refusal := keys.verify(reading)) is not None:
            return refusal
        held = tracker.registry.get(reading.project_id)
        return check_against_registry(reading, held.capacity_kva if held else None, bool(tracker.registry))

    validated_records_agent(POWER_TOPIC, "power", PowerReading, power.handle, screen_power)
    validated_records_agent(INVESTMENT_TOPIC, "investment", InvestmentReport, investment.handle)

    def compacted_records_agent(topic_name: str, name: str, decode: Callable[[bytes], Any], lines_of: Callable[[Any, int], list[str]]) -> None:
        """An agent over a compacted topic of reference records (registry rows, plan
        nodes): each decoded and turned into points stamped with its message time (a
        re-delivered record lands on its own point), a bad one dead-lettered."""

        @app.agent(topic(topic_name), name=name, supervisor_strategy=CrashingSupervisor)
        async def records_agent(stream: faust.StreamT) -> None:
            async for events in stream.take_events(1000, within=settings.batch_within_s):
                lines, rejected = [], Counter()
                for event in events:
                    if event.message.value is None:
                        continue  # a tombstone: what it stood for keeps its history
                    try:
                        record = decode(event.message.value)
                    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                        await dead_letter_all([(event, None, Rejection("wrong_type", str(exc)))], rejected)
                        continue
                    lines.extend(lines_of(record, int(event.message.timestamp * 1000)))
                await influx.write(lines)
                counters.record_batch(name, len(lines), rejected)

    def registry_lines(entry: RegistryEntry, ts_ms: int) -> list[str]:
        tracker.set_project(entry)
        return [project_point(entry, ts_ms)]

    def decode_node(raw: bytes) -> NodeRecord:
        record = _node_decoder.decode(raw)
        if not record.node.strip() or (record.planned_date is None) == (record.done_date is None):
            raise ValueError("a node record carries a node and either planned_date or done_date")
        return record

    compacted_records_agent(REGISTRY_TOPIC, "registry", _registry_decoder.decode, registry_lines)
    compacted_records_agent(NODES_TOPIC, "nodes", decode_node, lambda record, ts_ms: [node_point(record, ts_ms)])

    @app.agent(topic(STOPPAGES_TOPIC), name="stoppages", supervisor_strategy=CrashingSupervisor)
    async def stoppage_agent(stream: faust.StreamT) -> None:
        async for events in stream.take_events(1000, within=settings.batch_within_s):
            accepted, rejected = 0, Counter()
            for event in events:
                if event.message.value is None:
                    continue  # a tombstone: withdrawing a stoppage is done by amending it
                try:
                    record = _stoppage_decoder.decode(event.message.value)
                    stoppage = Stoppage(record.project_id, record.from_day, record.to_day, record.reason)
                    if stoppage.last < stoppage.first:
                        raise ValueError(f"to_day {stoppage.last} is before from_day {stoppage.first}")
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                    await dead_letter_all([(event, None, Rejection("wrong_type", str(exc)))], rejected)
                    continue
                await influx.write([stoppage_point(stoppage, settings.tz)])
                async with tracker.lock:
                    found = await tracker.add_stoppage(stoppage, time.time())
                await publish(found)
                accepted += 1
            counters.record_batch("stoppages", accepted, rejected)

    @app.agent(topic(AUDIT_TOPIC), name="audit", supervisor_strategy=CrashingSupervisor)
    async def audit_agent(stream: faust.StreamT) -> None:
        async for events in stream.take_events(1000, within=settings.batch_within_s):
            lines, rejected = [], Counter()
            for event in events:
                try:
                    lines.append(audit_point(_audit_decoder.decode(event.message.value or b"")))
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    await dead_letter_all([(event, None, Rejection("wrong_type", str(exc)))], rejected)
            await influx.write(lines)
            counters.record_batch("audit", len(lines), rejected)

    @app.agent(events_topic, name="ledger", supervisor_strategy=CrashingSupervisor)
    async def ledger_agent(stream: faust.StreamT) -> None:
        async for events in stream.take_events(1000, within=settings.batch_within_s):
            decoded, rejected = [], Counter()
            for event in events:
                try:
                    decoded.append(_event_decoder.decode(event.message.value or b""))
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    await dead_letter_all([(event, None, Rejection("wrong_type", str(exc)))], rejected)
            await ledger.handle(decoded)
            counters.record_batch("events", len(decoded), rejected)

    @app.timer(interval=settings.review_interval_s, on_leader=True)
    async def review_periods() -> None:
        # Rankings and checks across projects read every partition's data from InfluxDB.
        if tracker.judging_backlog:
            # Half of a big backlog is judged: the review would rank half-judged days, and
            # its memory would come on top of the judging's. The next one runs after it.
            return
        started = time.monotonic()
        try:
            await publish(await review.run())
        except Exception:
            # The review only reads what is stored and rewrites its own points: whatever
            # went wrong, the next one starts afresh, and the readings must keep flowing.
            log.exception("period review failed; the next runs in %d s", settings.review_interval_s)
            return
        if (took := time.monotonic() - started) > 5:
            log.info("period review took %.1f s", took)

    @app.on_partitions_assigned.connect
    async def forget_days_of_moved_partitions(app: faust.App, assigned: Any = (), **kwargs: Any) -> None:
        # Another worker may have added readings meanwhile: rebuild days from InfluxDB.
        # Under the lock, so that a batch still in flight from the old assignment cannot
        # leave its projects behind in memory: a worker kept judging (and filling
        # silent days of) projects it no longer owned, over the new owner's points.
        async with tracker.lock:
            power.forget_open_days()
            owned = {tp.partition for tp in assigned if tp.topic == POWER_TOPIC}
            tracker.owned_partitions = owned
            tracker.clock.expect(owned, time.time())

    @app.timer(interval=5.0)
    async def judge_as_time_passes() -> None:
        # Silent meters send nothing: the clock, not a record, must raise their alarm.
        async with tracker.lock:
            events = await tracker.advance(time.time())
        await publish(events)

    def write_worker_status() -> None:
        since = influx.degraded_since
        degraded_for = None if since is None else asyncio.get_running_loop().time() - since
        counts = dict(counters.counts, timelines_rebuilt=tracker.timelines_rebuilt)
        write_status(settings.state_dir, degraded_for, influx.last_error, counts)

    influx.on_change = write_worker_status

    @app.timer(interval=5.0)
    async def keep_status_file() -> None:
        write_worker_status()

    @app.timer(interval=30.0)
    async def report_progress() -> None:
        if counters.counts:
            log.info("handled so far: %s", dict(sorted(counters.counts.items())))

    if profile_out := os.environ.get("SITEPULSE_TRACEMALLOC_OUT"):
        # Profiling aid (docs/performance.md): the largest allocation sites when the
        # traced memory was highest so far, sampled every 2 s.
        tracemalloc.start()
        highest = [0]

        @app.timer(interval=2.0)
        async def dump_memory_profile() -> None:
            current, _ = tracemalloc.get_traced_memory()
            if current > highest[0]:
                highest[0] = current
                top = tracemalloc.take_snapshot().statistics("lineno")[:40]
                Path(profile_out).write_text(f"traced {current / 2**20:.0f} MiB\n" + "\n".join(str(stat) for stat in top) + "\n")

    @app.on_before_shutdown.connect
    async def close_influx(app: faust.App, *args: Any, **kwargs: Any) -> None:
        await influx.client.close()

    app.sitepulse_counters = counters
    return app
