"""The worker's own cost per reading, without Kafka or InfluxDB: a simulated city packed
per project and day (as a replay sends it) or one reading per message, fed through the
power agent's whole step (``Worker.take_records``: decode, checks, registry screen,
day book, line protocol built and discarded, judging, events). What it prints is the
share of the end-to-end leg's CPU that is sitepulse's, so a change to the hot path can
be measured in seconds, A/B on one machine, before the bench confirms it end to end.

    python tools/hot_path.py [--projects 60] [--days 30] [--series | --single --messages-per-batch 1000] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import msgspec

from sitepulse.agents.app import Worker, tune_garbage_collector
from sitepulse.runtime.settings import Settings
from sitepulse.sink.worker_store import InfluxWorkerStore
from sitepulse.streams.contract import PowerBatch, PowerReading, PowerSeries
from sitepulse.streams.publisher import DayPacker
from sitepulse.streams.simulator import build_scenario, generate_records


class PackedMessages:
    """Stands in for the publisher under ``DayPacker``: keeps each batch's bytes."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.encode = msgspec.json.Encoder().encode

    def publish_batch(self, project_id: str, readings: list[PowerReading], source: str = "") -> None:
        self.values.append(self.encode(PowerBatch.of(project_id, readings)))

    def publish_series(self, project_id: str, readings: list[PowerReading], source: str = "") -> None:
        self.values.extend(self.encode(series) for series in PowerSeries.runs_of(readings))

    def publish(self, reading: PowerReading) -> None:
        self.values.append(self.encode(reading))


class DiscardingInflux:
    """Line protocol is built by the store as for InfluxDB, then counted and dropped
    (or, ``keep``, kept in order, for a test to compare two runs)."""

    def __init__(self, keep: bool = False) -> None:
        self.lines = 0
        self.kept: list[str] | None = [] if keep else None

    async def write(self, lines: list[str]) -> None:
        self.lines += len(lines)
        if self.kept is not None:
            self.kept.extend(lines)


class NothingStored(InfluxWorkerStore):
    """A fresh database: every read finds nothing."""

    async def reference(self):  # type: ignore[override]
        return {}, []

    async def last_meter_readings(self):  # type: ignore[override]
        return []

    async def recent_days(self, unjudged_since_ms, stored_since_ms):  # type: ignore[override]
        return [], {}

    async def stored_days(self, project_ids, since_ms):  # type: ignore[override]
        return {project_id: [] for project_id in project_ids}

    async def stored_readings(self, days):  # type: ignore[override]
        return []


def simulated_city(projects: int, days: int, tz: ZoneInfo, packed: bool = True, series: bool = False) -> tuple[list[bytes], int, list]:
    """The city's readings as messages: packed per project and day (as a batch, or as a
    series per meter), or one per reading."""
    scenario = build_scenario(projects, days, 11, date(2026, 1, 5), tz)
    messages = PackedMessages()
    packer = DayPacker(messages, tz, as_series=series)  # type: ignore[arg-type]
    readings = 0
    for record in generate_records(scenario, scenario.end):
        if isinstance(record, PowerReading):
            packer.add(record) if packed else messages.publish(record)
            readings += 1
    packer.flush()
    return messages.values, readings, [p.entry for p in scenario.projects]


class Consumed:
    """A message as the agent holds it, with the references Faust counts before it
    commits the message's offset."""

    def __init__(self, value: bytes, offset: int) -> None:
        self.value, self.partition, self.offset, self.refcount = value, 0, offset, 1
        self.timestamp = 0.0  # a backlog's: long ago

    def incref(self) -> None:
        self.refcount += 1

    def ack(self, consumer: object) -> bool:
        self.refcount -= 1
        return False  # never the last reference here: nothing is committed


async def run(
    values: list[bytes],
    registry: list,
    tz: ZoneInfo,
    messages_per_batch: int,
    influx: DiscardingInflux | None = None,
    dead_letters: list | None = None,
) -> tuple[Worker, int, list]:
    """The messages through one worker's power step; returns the worker, the points
    built and the events it published. ``dead_letters`` collects what would go to the
    dead-letter topic: (message offset, index in the message, reason, record)."""
    state = Path(tempfile.mkdtemp(prefix="hot_path."))
    settings = Settings(_env_file=None, state_dir=state, timezone=str(tz), batch_messages=messages_per_batch)
    worker = Worker(settings, registry, None)
    influx = influx or DiscardingInflux()
    worker.store = NothingStored(influx, tz)  # type: ignore[arg-type]
    worker.tracker.store = worker.store
    worker.power.store = worker.store
    told: list = []

    async def publish(events: list) -> None:
        told.extend(events)

    worker.tracker.publish = worker.publish = publish  # type: ignore[method-assign]
    refused: Counter[str] = Counter()

    async def dead_letter(rejections: list) -> Counter[str]:
        refused.update(rejection.reason for _event, _part, rejection in rejections)
        if dead_letters is not None:
            dead_letters.extend(
                (event.message.offset, part.index if part else None, rejection.reason, part.record if part else None)
                for event, part, rejection in rejections
            )
        return Counter(rejection.reason for _event, _part, rejection in rejections)

    worker.dead_letters.send = dead_letter  # type: ignore[method-assign]
    events = [SimpleNamespace(message=Consumed(value, offset)) for offset, value in enumerate(values)]
    for first in range(0, len(events), messages_per_batch):
        await worker.take_records(events[first : first + messages_per_batch], "power", PowerReading, worker.power.handle, worker.screen_power)
    await worker.take_held_singles(worker.power.handle)  # as the agent does once no take comes
    await worker.power.landed()
    if refused:
        print(f"refused: {dict(refused)}", file=sys.stderr)
    return worker, influx.lines, told


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=60)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--messages-per-batch", type=int, default=100, help="messages the agent takes at once")
    parser.add_argument("--single", action="store_true", help="one reading per message, as sites send them live")
    parser.add_argument("--series", action="store_true", help="packed as one power_series per meter and day (columns)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed run here")
    args = parser.parse_args()
    tz = ZoneInfo("Asia/Shanghai")
    tune_garbage_collector()  # as the worker's process does
    values, readings, registry = simulated_city(args.projects, args.days, tz, packed=not args.single, series=args.series)
    profiler = cProfile.Profile() if args.profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    worker, lines, told = asyncio.run(run(values, registry, tz, args.messages_per_batch))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    judged = worker.tracker.judge
    print(
        f"{readings:,} readings in {len(values):,} messages: {cpu:.2f} s CPU ({cpu / readings * 1e6:.1f} s per million), "
        f"{readings / wall:,.0f} readings/s; {lines:,} points built, {len(told)} events",
        file=sys.stderr,
    )
    del judged
    os._exit(0)  # the Faust app was built, never started: nothing to close


if __name__ == "__main__":
    main()
