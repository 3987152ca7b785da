"""``sitepulse bench``: sitepulse measured against the raw parts it runs on, in one run.

Everything runs on this machine, on the embedded broker and influxd, in one process
tree. Each phase gets a fresh broker (it is memory-only and starts in milliseconds) and
its own InfluxDB database, so phases do not see each other's data. Figures are printed
and written to ``bench/results.json``; nothing is asserted here (see docs/performance.md
for the targets and what limits them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo

import msgspec
from kafka import KafkaConsumer, TopicPartition

from .dashboards.queries import board_queries, substitute
from .embedded import ChildProcess, EmbeddedBroker, EmbeddedInflux, spawn
from .runtime.settings import Settings
from .runtime.worker_status import status_path
from .agents.core.judge import Judge
from .sink.worker_store import judgement_points
from .agents.core.calendar import WorkCalendar
from .agents.core.daily import DailyEnergy, day_start_ms
from .agents.core.indicators import RETAINED_DAYS, DayIndicators, DayLabel, Machine, ProjectTimeline, State
from .agents.core.project import JudgedDay, JudgedStates
from .sink.points import daily_point, energy_point, indicator_point, status_point
from .streams.contract import POWER_TOPIC, PowerReading, RegistryEntry
from .streams.publisher import DayPacker, SitePublisher
from .streams.registry import publish_registry
from .streams.simulator import build_scenario, generate_records
from .streams.topics import ensure_topics

YEAR_PROJECTS = 420
YEAR_DAYS = 365
# The year: 14.7M readings in < 5 min. 14.7M is 420 × 96 × 365, one meter a
# project (its "× 1.2 meters" would make 17.7M); the simulated city has 1.75 meters a
# project (26M readings), so the year is held to the rate: ≥ 14.7M / 300 s.
YEAR_READINGS = 14_716_800
YEAR_JUDGEMENTS = YEAR_PROJECTS * YEAR_DAYS  # a project's day judged once (late readings re-judge a few)
YEAR_START = date(2025, 11, 3)  # a Monday, a year and a month back: no reading in the future
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Plan:
    """How much each phase does; ``quick`` is the CI variant (seconds, not minutes)."""

    quick: bool
    projects: int  # replay phases: simulated city projects
    days: int
    single_readings: int  # the one-reading-per-message path
    freshness_s: float
    freshness_rate: int  # readings per second, steady
    memory_projects: int
    influx_points: int
    capacity_step_rate: int = 1000  # live capacity: readings/s added per step
    capacity_step_s: float = 20.0
    capacity_max_rate: int = 20_000
    year_projects: int = YEAR_PROJECTS
    year_days: int = YEAR_DAYS

    @classmethod
    def full(cls) -> Plan:
        return cls(False, 420, 30, 300_000, 30.0, 2000, 100_000, 500_000)

    @classmethod
    def small(cls) -> Plan:
        return cls(True, 40, 3, 20_000, 6.0, 2000, 2_000, 50_000, capacity_step_s=3.0, capacity_max_rate=3000, year_projects=10, year_days=8)


@dataclass
class Bench:
    plan: Plan
    root: Path
    influx: EmbeddedInflux
    settings: Settings
    say: Callable[[str], None]
    results: dict = field(default_factory=dict)
    _phase: int = 0
    _children: list[ChildProcess] = field(default_factory=list)  # the current phase's workers
    _broker: EmbeddedBroker | None = None  # the current phase's

    # --- plumbing ---------------------------------------------------------------------

    @contextmanager
    def phase(self, name: str) -> Iterator[Settings]:
        """A fresh broker and database for one phase; its workers are stopped after."""
        self._phase += 1
        state = self.root / f"{self._phase:02d}-{name}"
        state.mkdir(parents=True)
        broker = EmbeddedBroker.start(state)
        self._broker = broker
        database = f"bench_{self._phase:02d}_{name}"
        self.influx.create_database(database)
        settings = self.settings.model_copy(
            update={"broker": broker.url, "influx_db": database, "state_dir": state, "app_id": f"bench-{name}"}
        )
        ensure_topics(settings)
        self._children = []
        self.say(f"· {name}")
        try:
            yield settings
        finally:
            for child in self._children:
                child.stop()
            broker.stop()

    def start_worker(self, settings: Settings, name: str = "worker", module: Sequence[str] = ("sitepulse", "worker")) -> ChildProcess:
        env = {**os.environ, **settings.child_environment(), "SITEPULSE_STATE_DIR": str(settings.state_dir / name)}
        child = spawn(name, [sys.executable, "-m", *module], settings.state_dir / f"{name}.log", env)
        self._children.append(child)
        return child

    def replay(self, settings: Settings, file: Path, pack: bool = True, series: bool = False) -> None:
        env = {**os.environ, **settings.child_environment()}
        flags = ["--pack" if pack else "--no-pack"] + (["--series"] if series else [])
        child = spawn("replay", [sys.executable, "-m", "sitepulse", "replay", *flags, str(file)], settings.state_dir / "replay.log", env)
        if child.process.wait() != 0:
            raise RuntimeError(f"replay failed: {child.log_path.read_text()[-2000:]}")

    def query(self, settings: Settings, statement: str) -> list[list]:
        params = urllib.parse.urlencode({"db": settings.influx_db, "q": statement, "epoch": "ms"})
        with urllib.request.urlopen(f"{self.influx.url}/query?{params}", timeout=600) as response:
            result = json.load(response)["results"][0]
        if "error" in result:
            raise RuntimeError(f"{result['error']}: {statement}")
        return [row for series in result.get("series", []) for row in series["values"]]

    def scalar(self, settings: Settings, statement: str) -> float:
        rows = self.query(settings, statement)
        return rows[0][1] if rows and rows[0][1] is not None else 0

    def wait_for(
        self, check: Callable[[], bool], what: str, timeout_s: float, workers: list[ChildProcess] = (), every_s: float = 0.1
    ) -> float:
        """Poll ``check`` every ``every_s``; the moment it became true."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return time.monotonic()
            for worker in workers:
                worker.check_alive()
            time.sleep(every_s)
        raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")

    def wait_for_registry(self, settings: Settings, count: int, workers: list[ChildProcess]) -> None:
        self.wait_for(
            lambda: self.scalar(settings, "SELECT count(annual_plan_wan) FROM project") >= count, "the registry", 300, workers
        )

    def stored_readings(self, settings: Settings) -> float:
        return self.scalar(settings, "SELECT sum(readings) FROM power_daily")

    # --- phases -------------------------------------------------------------------------

    def scenario_file(self) -> tuple[Path, list[RegistryEntry], int]:
        """A simulated city (``plan.projects`` for ``plan.days``) as a replay file."""
        start = date(2026, 1, 5)
        scenario = build_scenario(self.plan.projects, self.plan.days, 11, start, ZoneInfo(self.settings.timezone))
        path = self.root / "scenario.jsonl"
        readings = 0
        with path.open("wb") as out:
            for record in generate_records(scenario, scenario.end):
                out.write(_encode(record) + b"\n")
                readings += isinstance(record, PowerReading)
        return path, [p.entry for p in scenario.projects], readings

    def raw_influx(self) -> None:
        """Line-protocol writes of reading points straight to influxd, 5,000 a request."""
        with self.phase("influx") as settings:
            base = 1_767_225_600_000
            lines = [
                f"power_reading,meter_id=M{n % 3},project_id=P{n % 5000} kwh={n % 97 / 10},interval_s=900i {base + n // 5000 * 900_000}"
                for n in range(self.plan.influx_points)
            ]
            url = f"{self.influx.url}/write?" + urllib.parse.urlencode({"db": settings.influx_db, "precision": "ms"})
            started = time.monotonic()
            for first in range(0, len(lines), 5000):
                body = "\n".join(lines[first : first + 5000]).encode()
                with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=60) as response:
                    response.read()
            self.results["raw_influx_write_per_s"] = len(lines) / (time.monotonic() - started)

    def raw_consumer(self, settings: Settings) -> tuple[int, float]:
        """(records, records/s) for a kafka-python consumer reading the power topic from
        the start, doing nothing with the records."""
        consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, fetch_max_bytes=50 << 20, max_partition_fetch_bytes=10 << 20
        )
        try:
            partitions = [TopicPartition(POWER_TOPIC, n) for n in sorted(consumer.partitions_for_topic(POWER_TOPIC) or ())]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            records, started, last = 0, time.monotonic(), time.monotonic()
            # Tansu's end offsets are unreliable: read until the topic is quiet.
            while time.monotonic() - last < 1.5:
                batch = consumer.poll(200, max_records=50_000)
                if batch:
                    records += sum(len(found) for found in batch.values())
                    last = time.monotonic()
            return records, records / (last - started)
        finally:
            consumer.close()

    def raw_aiokafka(self, settings: Settings) -> tuple[int, float]:
        """(records, records/s) for aiokafka's ``getmany`` reading the power topic from the
        start, doing nothing with the records: the client Faust itself sits on."""
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition as AioPartition

        async def read() -> tuple[int, float]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                fetch_max_bytes=50 << 20, max_partition_fetch_bytes=10 << 20,
            )
            await consumer.start()
            try:
                consumer.assign([AioPartition(POWER_TOPIC, n) for n in range(settings.partitions)])
                await consumer.seek_to_beginning()
                records, started, last = 0, time.monotonic(), time.monotonic()
                while time.monotonic() - last < 1.5:  # Tansu's end offsets are unreliable: read until quiet
                    batch = await consumer.getmany(timeout_ms=200, max_records=50_000)
                    if batch:
                        records += sum(len(found) for found in batch.values())
                        last = time.monotonic()
                return records, records / (last - started)
            finally:
                await consumer.stop()

        return asyncio.run(read())

    def bare_faust(self, settings: Settings, records: int) -> tuple[float, CpuAccount]:
        """(seconds from the first record taken to the last, the leg's CPU) of a Faust
        agent that only takes events (sitepulse.bare_faust) on the topic as it stands, in
        a group of its own."""
        child = self.start_worker(settings, "bare", ("sitepulse.bare_faust",))
        status = settings.state_dir / "bare" / "bare.json"

        def taken() -> dict:
            try:
                return json.loads(status.read_text())
            except (OSError, ValueError):
                return {"events": 0}

        self.wait_for(lambda: taken()["events"] > 0, "the bare Faust agent's first take", 120, [child], every_s=0.05)
        account = CpuAccount(self._leg_processes(child))
        self.wait_for(lambda: taken()["events"] >= records, "the bare Faust agent to take every record", 1800, [child], every_s=0.5)
        account.stop()
        child.stop()
        self._children.remove(child)
        done = taken()
        return done["last_s"] - done["first_s"], account

    def single_worker(self, settings: Settings, readings: int) -> tuple[float, CpuAccount]:
        """(seconds from the first reading stored to the last, the leg's CPU) of one
        worker on the topic as it stands."""
        worker = self.start_worker(settings)
        first = self.wait_for(lambda: self.stored_readings(settings) > 0, "the first reading", 120, [worker])
        account = CpuAccount(self._leg_processes(worker))
        done = self.wait_for(lambda: self.stored_readings(settings) >= readings, "every reading", 1800, [worker])
        account.stop()
        worker.stop()
        self._children.remove(worker)
        return done - first, account

    def _leg_processes(self, agent: ChildProcess) -> dict[str, int]:
        # The bench itself polls, and the worker's polls reach influxd: both count.
        return {"agent": agent.process.pid, "broker": self._broker.child.process.pid, "influxd": self.influx.child.process.pid, "bench": os.getpid()}

    def single_messages(self, file: Path) -> None:
        """One reading per Kafka message: the raw consumer's rate, then the bare Faust
        agent and one worker on the same, already published topic. The two are compared
        over two rounds on a fresh broker and database each, bare then worker, then
        worker then bare: this machine's speed drifts within minutes, and a drift that
        favours whichever leg runs first then cancels. Each rate is of both rounds."""
        readings = self.root / "single.jsonl"
        per_round = self.plan.single_readings // 2
        with file.open("rb") as source, readings.open("wb") as out:
            taken = 0
            for line in source:
                if taken >= per_round:
                    break
                if line.startswith(b'{"type":"power"'):
                    out.write(line)
                    taken += 1
        seconds: dict[str, list[float]] = {"bare": [], "worker": []}
        accounts: dict[str, list[CpuAccount]] = {"bare": [], "worker": []}
        for round_, legs in enumerate((("bare", "worker"), ("worker", "bare"))):
            with self.phase(f"single{round_ + 1}") as settings:
                self.replay(settings, readings, pack=False)
                if round_ == 0:
                    records, per_s = self.raw_consumer(settings)
                    self.results["raw_consumer_per_s"] = per_s
                    self.results["raw_consumer_records"] = records
                for leg in legs:
                    took, account = self.bare_faust(settings, taken) if leg == "bare" else self.single_worker(settings, taken)
                    seconds[leg].append(took)
                    accounts[leg].append(account)
        self.results["bare_faust_per_s"] = 2 * taken / sum(seconds["bare"])
        self.results["single_message_readings_per_s"] = 2 * taken / sum(seconds["worker"])
        self.results["single_message_rounds"] = [
            {"bare_per_s": round(taken / bare), "worker_per_s": round(taken / worker), "ratio": round(bare / worker, 3)}
            for bare, worker in zip(seconds["bare"], seconds["worker"])
        ]
        both_rounds = {leg: CpuAccount.combined(found) for leg, found in accounts.items()}
        self.results["single_cpu_s_per_million"] = {leg: account.per_million(2 * taken) for leg, account in both_rounds.items()}
        self.results["single_machine_busy"] = {leg: account.machine_busy for leg, account in both_rounds.items()}

    def end_to_end(self, file: Path, registry: list[RegistryEntry], readings: int, series: bool = False) -> None:
        """The headline: from the first publish of a packed replay to the last indicator
        queryable, one worker running, the publisher running beside it. ``series``: the
        replay sends each meter's day as one power_series (columns) instead of each
        project's day as one power_batch; its figures are kept under ``e2e_series_*``."""
        key = "e2e_series_" if series else "e2e_"
        with self.phase("e2e_series" if series else "e2e") as settings:
            with SitePublisher(settings) as publisher:
                publish_registry(registry, publisher)
            worker = self.start_worker(settings)
            self.wait_for_registry(settings, len(registry), [worker])
            # Every process of the leg shares the two cores: what each spends per reading
            # says which bounds the rate (the replay's own, from its rusage once it ends).
            processes = {"worker": worker.process.pid, "influxd": self.influx.child.process.pid, "broker": self._broker.child.process.pid}
            with RssSampler([worker.process.pid]) as rss:
                started, account = time.monotonic(), CpuAccount(processes)
                publisher_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                self.replay(settings, file, series=series)
                publisher_after = resource.getrusage(resource.RUSAGE_CHILDREN)
                published = time.monotonic()
                judged_days = len(registry) * (self.plan.days - 1)
                done = self.wait_for(
                    lambda: self.stored_readings(settings) >= readings
                    and self.scalar(settings, "SELECT count(machine_state) FROM power_daily") >= judged_days,
                    "every reading and judged day",
                    3600,
                    [worker],
                )
                account.stop()
            cpu = dict(account.used)
            cpu["publisher"] = sum(getattr(publisher_after, f) - getattr(publisher_before, f) for f in ("ru_utime", "ru_stime"))
            elapsed = done - started
            cpu_per_million = cpu["worker"] / readings * 1e6
            self.results.update(
                {
                    f"{key}cpu_s_per_million": {name: round(seconds / readings * 1e6, 2) for name, seconds in cpu.items()},
                    f"{key}machine_busy": account.machine_busy,
                    ("e2e_series_worker_cpu_s_per_million" if series else "worker_cpu_s_per_million"): cpu_per_million,
                    f"{key}readings": readings,
                    f"{key}readings_per_s": readings / elapsed,
                    f"{key}publish_s": published - started,
                    f"{key}peak_rss_mb": rss.peak_mb,
                }
            )
            if series:
                records, per_s = self.raw_aiokafka(settings)
                self.results["raw_aiokafka_series_per_s"] = per_s * readings / max(records, 1)
                return
            self.results["replay_readings_per_s"] = readings / elapsed
            records, per_s = self.raw_consumer(settings)
            self.results["raw_consumer_packed_records_per_s"] = per_s
            self.results["raw_consumer_packed_readings_per_s"] = per_s * readings / max(records, 1)
            records, per_s = self.raw_aiokafka(settings)
            self.results["raw_aiokafka_packed_per_s"] = per_s * readings / max(records, 1)
            self.board_query_times(settings, registry)
        # The year is extrapolated from a month, but judging a project re-evaluates its
        # whole window, which a month does not fill: both costs, measured here.
        sample = 10 if self.plan.quick else 50
        tz = ZoneInfo(self.settings.timezone)
        self.results["judgement_ms_replayed_days"] = judgement_ms(sample, self.plan.days, 0, tz)
        self.results["judgement_ms_full_window"] = judgement_ms(sample, FULL_WINDOW_DAYS, FULL_WINDOW_DAYS - 14, tz)

    def board_query_times(self, settings: Settings, registry: list[RegistryEntry]) -> None:
        """Each board panel's and variable's InfluxQL over the replayed period, timed."""
        first = datetime.combine(date(2026, 1, 5), datetime.min.time(), settings.tz)
        last = first + timedelta(days=self.plan.days)
        variables = {"district": registry[0].district, "project": registry[0].project_id, "period": "2026-01-H1"}
        times = self._time_board_queries(settings, first, last, variables)
        self.results["board_query_ms"] = times
        self.results["board_query_max_ms"] = max(times.values())
        # A year: the daily points of the 11 months before the replay, synthetic but of
        # the same shape and count as the worker writes, then every query over the year.
        year_first = first - timedelta(days=YEAR_DAYS - self.plan.days)
        self._write_synthetic_days(settings, registry, year_first, first)
        year_times = self._time_board_queries(settings, year_first, last, variables)
        self.results["board_query_year_ms"] = year_times
        self.results["board_query_year_max_ms"] = max(year_times.values())

    def _time_board_queries(self, settings: Settings, first: datetime, last: datetime, variables: dict[str, str]) -> dict[str, float]:
        times = {}
        for uid, title, query in board_queries():
            statement = substitute(query, first, last, variables)
            started = time.monotonic()
            self.query(settings, statement)
            times[f"{uid} / {title}"] = (time.monotonic() - started) * 1000
        return times

    def _write_synthetic_days(self, settings: Settings, registry: list[RegistryEntry], first: datetime, until: datetime) -> None:
        """Judged days written by the worker's own point builders (random energy against a
        fixed baseline), and the review's energy roll-up of each day."""
        rng = random.Random(7)
        lines = []
        day = first.date()
        while day < until.date():
            city_kwh = 0.0
            for entry in registry:
                kwh = rng.uniform(0, 2_000)
                city_kwh += kwh
                baseline = 1_500.0
                state = State.STALLED if kwh < 300 else State.STARTED
                judged = DayIndicators(
                    entry.project_id, day, kwh, baseline, kwh / baseline, DayLabel(state.value), Machine(state),
                    working_day=day.weekday() < 5, offline=False, stable=kwh >= 0.9 * baseline,
                )
                lines.append(daily_point(DailyEnergy(entry.project_id, day, kwh, 96, 1, 0, 900, False), settings.tz))
                lines.append(indicator_point(judged, settings.tz))
                lines.append(status_point(entry, judged, 0, settings.tz))
            lines.append(energy_point(day, city_kwh, 1_500.0 * len(registry), len(registry), settings.tz))
            day += timedelta(days=1)
        for start in range(0, len(lines), 5_000):
            body = "\n".join(lines[start : start + 5_000]).encode()
            params = urllib.parse.urlencode({"db": settings.influx_db, "precision": "ms"})
            urllib.request.urlopen(f"{self.influx.url}/write?{params}", data=body, timeout=60).close()

    def scaling(self, file: Path, registry: list[RegistryEntry], readings: int) -> None:
        """Processing a published replay: one worker, then two, on 8 partitions, from the
        first reading stored until every reading is stored and every complete day judged
        (judging still going on after the last reading is stored belongs to the leg). Beside the rate, the CPU each process used per million
        readings, and the machine's busy share, so a ratio short of 2x can be told from a
        machine with no core to spare."""
        rates = {}
        for workers in (1, 2):
            with self.phase(f"scale{workers}") as settings:
                with SitePublisher(settings) as publisher:
                    publish_registry(registry, publisher)
                self.replay(settings, file)
                started = [self.start_worker(settings, f"worker{n}") for n in range(workers)]
                processes = {**{c.name: c.process.pid for c in started}, "influxd": self.influx.child.process.pid, "broker": self._broker.child.process.pid}
                with ProgressSampler(lambda: self.stored_readings(settings), settings.state_dir / "progress.csv", readings) as progress:
                    first = self.wait_for(lambda: progress.latest > 0, "the first reading", 120, started, every_s=0.05)
                    account = CpuAccount(processes)
                    stored = self.wait_for(lambda: progress.latest >= readings, "every reading", 3600, started, every_s=0.05)
                    judged_days = len(registry) * (self.plan.days - 1)
                    done = self.wait_for(
                        lambda: self.scalar(settings, "SELECT count(machine_state) FROM power_daily") >= judged_days,
                        "every complete day judged", 3600, started, every_s=0.1,
                    )
                    account.stop()
                rates[workers] = readings / (done - first)
                self.results[f"scaling_{workers}_judging_after_stored_s"] = round(done - stored, 2)
                if workers > 1:
                    self.results["scaling_2_worker_shares"] = self._reading_shares(settings, started, readings)
                self.results[f"scaling_{workers}_cpu_s_per_million"] = account.per_million(readings)
                self.results[f"scaling_{workers}_machine_busy"] = account.machine_busy
        self.results["scaling_1_worker_per_s"] = rates[1]
        self.results["scaling_2_workers_per_s"] = rates[2]
        self.results["scaling_2_workers"] = rates[2] / rates[1]
        # What two workers could give at most here: every core busy at the two workers'
        # leg's CPU per reading (theirs, influxd's and the broker's), over one worker's rate.
        # (A quick leg can end within one clock tick of its start, with no CPU counted.)
        if two_workers_cpu_s := sum(self.results["scaling_2_cpu_s_per_million"].values()) / 1e6:
            self.results["scaling_2_workers_core_bound"] = (os.cpu_count() or 1) / two_workers_cpu_s / rates[1]

    def _reading_shares(self, settings: Settings, workers: list[ChildProcess], readings: int) -> list[float]:
        """Each worker's share of the readings, from the counts in its status file: with
        keyed partitions the busiest worker's share bounds the speed-up (1 / share)."""

        statuses = [status_path(settings.state_dir / worker.name) for worker in workers]
        counts: list[int] = []

        def all_counted() -> bool:
            counts[:] = [_handled(status, "power") for status in statuses]
            return sum(counts) >= readings

        # The status files are rewritten every few seconds.
        self.wait_for(all_counted, "the workers' status files", 30, workers, every_s=0.5)
        return [round(count / sum(counts), 3) for count in counts]

    def freshness(self) -> None:
        """A steady stream of single readings; for probe readings, the time from publish
        to the day's point counting them: at 2,000/s, then stepping the rate up to find
        the highest at which p99 stays under 2 s (the live capacity)."""
        plan = self.plan
        probes = [f"PROBE-{n}" for n in range(5)]
        projects = probes + [f"LOAD-{n:03d}" for n in range(FRESHNESS_METERS - len(probes))]
        tz = ZoneInfo(self.settings.timezone)
        # Stepping the rate up sends up to ~6 days of minutes: start far enough back that
        # none is in the future (refused).
        day_start = datetime.combine(datetime.now(tz).date() - timedelta(days=7), datetime.min.time(), tz)
        with self.phase("freshness") as settings:
            worker = self.start_worker(settings)
            # Warm-up: one reading per project, so the worker has joined and loaded everything.
            with SitePublisher(settings) as publisher:
                for project in projects:
                    publisher.publish(PowerReading(project, "M1", day_start + timedelta(minutes=1), 1.0, 60))
            self.wait_for(lambda: self.stored_readings(settings) >= len(projects), "the warm-up readings", 120, [worker])
            steady = SteadyProbe(self, settings, projects, probes, day_start, self._leg_processes(worker))
            achieved, lags = steady.run(plan.freshness_rate, plan.freshness_s)
            self.results.update(
                freshness_rate_per_s=achieved,
                freshness_p50_s=statistics.median(lags),
                freshness_p99_s=percentile(lags, 0.99),
                freshness_max_s=lags[-1],
                freshness_probes=len(lags),
                freshness_cpu_s_per_million=steady.cpu_per_million(),
                freshness_machine_busy=steady.account.machine_busy,
            )
            capacity, steps = (achieved if percentile(lags, 0.99) < 2 else 0.0), []
            if capacity:

                def measure(rate: int) -> tuple[float, float, dict]:
                    achieved, lags = steady.run(rate, plan.capacity_step_s)
                    # What each process spent per reading at that rate: which one ran out of core.
                    return achieved, percentile(lags, 0.99), {"cpu_us_per_reading": steady.cpu_per_million(), "machine_busy": steady.account.machine_busy}

                capacity, steps = search_live_capacity(
                    measure, plan.freshness_rate, capacity, plan.capacity_step_rate, plan.capacity_max_rate, CAPACITY_HALVINGS
                )
            # The bare agent again, on the readings this phase sent, right after the search:
            # this machine's speed drifts within minutes, and the bare agent's own phase ran
            # some minutes before. The capacity is set against both.
            records = min(plan.single_readings // 2, steady.sent)
            took, _ = self.bare_faust(settings, records)
            held = next((step for step in steps if step["achieved"] == capacity), None)
            self.results.update(
                live_capacity_per_s=capacity,
                live_capacity_steps=steps,
                live_bare_faust_per_s=records / took,
                # At the live capacity, the share of one core the worker used: its event loop
                # runs on one core at a time.
                live_capacity_worker_core=(held["cpu_us_per_reading"]["agent"] if held else self.results["freshness_cpu_s_per_million"]["agent"]) * capacity / 1e6,
            )

    def year(self) -> None:
        """A city's year for real: the simulated projects' readings generated and streamed
        into the broker (packed per project and day, as a replay sends them) while one
        worker runs, no file in between; timed from the first publish until every reading
        is counted and every complete day judged, every window filling up as in a year."""
        tz = ZoneInfo(self.settings.timezone)
        scenario = build_scenario(self.plan.year_projects, self.plan.year_days, 11, YEAR_START, tz)
        registry = [p.entry for p in scenario.projects]
        with self.phase("year") as settings:
            with SitePublisher(settings) as publisher:
                publish_registry(registry, publisher)
            worker = self.start_worker(settings)
            self.wait_for_registry(settings, len(registry), [worker])
            readings = 0
            started, account = time.monotonic(), CpuAccount({"worker": worker.process.pid})
            with SitePublisher(settings) as publisher:
                # A year of history is what a metering platform keeps as load curves: each
                # meter's day goes as one power_series.
                packer = DayPacker(publisher, tz, as_series=True)
                for record in generate_records(scenario, scenario.end):
                    if isinstance(record, PowerReading):
                        packer.add(record)
                        readings += 1
                    else:
                        publisher.publish(record)
                packer.flush()
            published = time.monotonic()
            judged_days = len(registry) * (self.plan.year_days - 1)
            self.say(f"  published {readings:,} readings in {published - started:.0f} s; waiting for {judged_days:,} judged days")
            said = [published]

            def finished() -> bool:
                stored, judged = self.stored_readings(settings), self.scalar(settings, "SELECT count(machine_state) FROM power_daily")
                if time.monotonic() - said[0] >= 60:  # a long phase says how far it got
                    said[0] = time.monotonic()
                    self.say(f"  {time.monotonic() - started:.0f} s: {stored:,.0f} readings stored, {judged:,.0f} days judged")
                return stored >= readings and judged >= judged_days

            done = self.wait_for(finished, "every reading and judged day of the year", 4 * 3600, [worker], every_s=5)
            self.results.update(
                year_projects=len(registry),
                year_readings=readings,
                year_s=done - started,
                year_publish_s=published - started,
                year_readings_per_s=readings / (done - started),
                year_target_per_s=YEAR_READINGS / 300,  # the 14.7M readings in 5 minutes
                year_form="power_series",
                year_worker_cpu_s_per_million=account.stop().used["worker"] / readings * 1e6,
            )

    def memory(self) -> None:
        """Worker RSS with ``memory_projects`` projects in state: each with one meter
        reporting hourly for a day, then once the next day so the day is judged."""
        count = self.plan.memory_projects
        tz = ZoneInfo(self.settings.timezone)
        first_day = date(2026, 2, 2)
        start = datetime.combine(first_day, datetime.min.time(), tz)
        registry = [
            RegistryEntry(f"MEM-{n:06d}", f"项目{n}", "鄞州区", "东部新城", "市住建局", "city", "continuing", "王伟", "13800000000",
                          "计量中心", 10_000.0, first_day - timedelta(days=100), 630.0)
            for n in range(count)
        ]
        readings = 26 * count
        with self.phase("memory") as settings:
            with SitePublisher(settings) as publisher:
                publish_registry(registry, publisher)
            worker = self.start_worker(settings)
            self.wait_for_registry(settings, count, [worker])
            with RssSampler([worker.process.pid], settings.state_dir / "rss.csv") as rss:
                idle = rss.sample()
                # One batch per project and day, as the day packer would send them, but
                # without holding 2.6M readings in this process: day 1 of every project,
                # then the two readings of day 2 that complete day 1.
                with SitePublisher(settings) as publisher:
                    for hours in (range(1, 25), range(25, 27)):
                        for entry in registry:
                            day = [PowerReading(entry.project_id, "M1", start + timedelta(hours=h), 20.0, 3600) for h in hours]
                            publisher.publish_batch(entry.project_id, day, "bench")
                # Progress from the worker's status file: a query over 100k series while
                # the worker writes would itself take seconds and load the server.
                status = status_path(settings.state_dir / "worker")
                self.wait_for(lambda: _handled(status, "power") >= readings, "the memory phase's readings", 3600, [worker], every_s=2)
                self.wait_for(
                    lambda: self.scalar(settings, "SELECT count(machine_state) FROM power_daily") >= count,
                    "every project's first day judged", 1800, [worker], every_s=5,
                )
                # The leader's review of all those days belongs in the window too: its
                # energy roll-up counting every project shows one has started; then long
                # enough for it (and the next) to finish.
                self.wait_for(
                    lambda: self.scalar(settings, "SELECT max(projects) FROM energy_daily") >= count,
                    "the review of every judged day", 1800, [worker], every_s=5,
                )
                time.sleep(0 if self.plan.quick else 2 * self.settings.review_interval_s + 60)
            self.results.update(peak_rss_mb=rss.peak_mb, idle_rss_mb=idle, memory_projects=count, memory_readings=readings)
        # The phase's projects each have one judged day; a province in steady operation
        # holds a retained window of days for each timeline the worker keeps (at most
        # timelines_held of them). That part is measured here, on the worker's own
        # judging, and added to the measured peak: an estimate, said so.
        sample = 200 if self.plan.quick else 1_000
        first_day_bytes = judged_state_bytes(sample, 1, tz)
        full_window_bytes = judged_state_bytes(sample, FULL_WINDOW_DAYS, tz)
        # The most recently judged timelines keep their last evaluation as objects too.
        unpacked_extra_bytes = judged_state_bytes(sample, FULL_WINDOW_DAYS, tz, unpacked=True) - full_window_bytes
        held = min(count, settings.timelines_held or count)
        unpacked = min(held, Judge.UNPACKED_TIMELINES)
        # The leader's review read one judged day per project here; in steady operation
        # it reads every day of the three periods it ranks and the one before (up to 61),
        # in day order as load_facts does.
        review_extra_bytes = count * (review_days_bytes(REVIEW_SPAN_DAYS) - review_days_bytes(1))
        self.results.update(
            state_bytes_per_project_first_day=first_day_bytes,
            state_bytes_per_project_full_window=full_window_bytes,
            full_window_days=FULL_WINDOW_DAYS,
            timelines_held=held,
            state_bytes_unpacked_extra_per_timeline=unpacked_extra_bytes,
            timelines_unpacked=unpacked,
            review_span_days=REVIEW_SPAN_DAYS,
            peak_rss_full_window_estimate_mb=rss.peak_mb
            + (held * (full_window_bytes - first_day_bytes) + unpacked * unpacked_extra_bytes + review_extra_bytes) / 1e6,
        )


def review_days_bytes(days: int) -> int:
    """What ``days`` judged days of one project take in the leader's review."""
    held, first = JudgedStates(), date(2026, 3, 1)
    for n in range(days):
        held[first + timedelta(days=n)] = JudgedDay(DayLabel.STARTED, State.STARTED, True, 1.2)
    return held.held_bytes()


FRESHNESS_METERS = 500  # one reading each per round
# Steps of 1,000/s alone measure the live capacity to a sixth of a slow day's bare agent
# (6,157/s): halving the gap after the first rate that misses, twice, brings it to 250/s.
CAPACITY_HALVINGS = 2


def search_live_capacity(
    measure: Callable[[int], tuple[float, float, dict]], held_rate: int, held_achieved: float, step: int, ceiling: int, halvings: int
) -> tuple[float, list[dict[str, float]]]:
    """The highest steady rate at which freshness p99 stays under 2 s, from ``held_rate``
    (which held, at ``held_achieved``): up by ``step`` until a rate misses or ``ceiling`` is
    reached, then the gap between the last rate that held and the first that missed
    halved ``halvings`` times. ``measure(rate)``: (the rate achieved, p99 in s, anything
    else to keep of the step). Returns the achieved rate of the highest that held, and
    every step taken."""
    steps: list[dict] = []

    def holds(rate: int) -> float | None:
        achieved, p99_s, more = measure(rate)
        steps.append({"rate": rate, "achieved": achieved, "p99_s": p99_s, **more})
        # A rate the publisher could not reach says nothing of the worker's.
        return achieved if p99_s < 2 and achieved >= 0.9 * rate else None

    rate, capacity, missed = held_rate, held_achieved, None
    while rate < ceiling:
        if (achieved := holds(rate + step)) is None:
            missed = rate + step
            break
        rate, capacity = rate + step, achieved
    for _ in range(halvings if missed is not None else 0):
        middle = (rate + missed) // 2
        if (achieved := holds(middle)) is None:
            missed = middle
        else:
            rate, capacity = middle, achieved
    return capacity, steps


def percentile(ordered: Sequence[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class SteadyProbe:
    """Single readings from ``FRESHNESS_METERS`` meters at a steady rate; for the probe
    meters' readings, the time from publish to the day's point counting them (polled
    every 50 ms). Each run goes on in stream time from where the last one stopped."""

    def __init__(
        self, bench: Bench, settings: Settings, projects: list[str], probes: list[str], day_start: datetime, processes: dict[str, int]
    ) -> None:
        self.bench, self.settings, self.projects, self.probes = bench, settings, projects, probes
        self.day_start, self.processes = day_start, processes
        self.next_minute = 2  # the warm-up reading is at minute 1
        self.account, self.published = CpuAccount({}), 0  # of the last run
        self.sent = 0  # readings of every run

    def cpu_per_million(self) -> dict[str, float]:
        """Each process's CPU seconds per million readings (µs a reading) in the last run."""
        return self.account.per_million(self.published)

    def run(self, rate: float, seconds: float) -> tuple[float, list[float]]:
        """(the rate achieved, the probes' lags in ascending order)."""
        rounds_per_s = rate / len(self.projects)
        rounds = max(1, int(seconds * rounds_per_s))
        sent: list[tuple[str, int, float]] = []  # (probe, its minute, publish time)
        seen: dict[tuple[str, int], float] = {}
        stop = threading.Event()
        first_minute = self.next_minute

        def watch() -> None:
            statement = 'SELECT readings, "date" FROM power_daily WHERE project_id =~ /^PROBE-/ GROUP BY project_id'
            while not stop.is_set():
                params = urllib.parse.urlencode({"db": self.settings.influx_db, "q": statement})
                with urllib.request.urlopen(f"{self.bench.influx.url}/query?{params}", timeout=10) as response:
                    series = json.load(response)["results"][0].get("series", [])
                now = time.monotonic()
                for found in series:
                    for _time, count, day in found["values"]:
                        if count is None:
                            continue
                        # A day's readings are its minutes 1..1440 (midnight closes the day before).
                        day_minute = (date.fromisoformat(day) - self.day_start.date()).days * 1440
                        for n in range(int(count) + 1):
                            seen.setdefault((found["tags"]["project_id"], day_minute + n), now)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with SitePublisher(self.settings, linger_ms=5) as publisher:
            began, self.account = time.monotonic(), CpuAccount(self.processes)
            for number in range(rounds):
                minute = first_minute + number
                ts = self.day_start + timedelta(minutes=minute)
                for project in self.projects:
                    publisher.publish(PowerReading(project, "M1", ts, 1.0, 60))
                    if project in self.probes:
                        sent.append((project, minute, time.monotonic()))
                ahead = began + (number + 1) / rounds_per_s - time.monotonic()  # pace to the rate
                if ahead > 0:
                    time.sleep(ahead)
            achieved = rounds * len(self.projects) / (time.monotonic() - began)
        self.next_minute, self.published = first_minute + rounds, rounds * len(self.projects)
        self.sent += self.published
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any((p, n) not in seen for p, n, _ in sent):
            time.sleep(0.1)
        stop.set()
        watcher.join()
        self.account.stop()
        missing = sum((p, n) not in seen for p, n, _ in sent)
        if missing:
            raise RuntimeError(f"freshness: {missing} probe readings never became queryable")
        return achieved, sorted(seen[(p, n)] - at for p, n, at in sent)


# Long enough that every project holds its whole retained window: RETAINED_DAYS of
# inputs, as many days of baseline history behind them, and the written days.
FULL_WINDOW_DAYS = 2 * RETAINED_DAYS + 14
REVIEW_SPAN_DAYS = 61  # the half-month before the three periods the review ranks, to the newest day: 16 + 15 + 15 + 15


def _judge(tz: ZoneInfo) -> Judge:
    """The worker's judge, with nothing around it: for judging in this process."""
    return Judge(tz, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=5))


def judged_state_bytes(projects: int, days: int, tz: ZoneInfo, unpacked: bool = False) -> float:
    """Python memory a worker holds per project once ``days`` days of it are judged (its
    timeline and written-day hashes): ``projects`` hourly-metered projects judged by the
    worker's own judge, traced with tracemalloc. Each last evaluation is kept packed, as
    for all but the most recently judged timelines (``unpacked``: as objects, as for those)."""
    judge = _judge(tz)
    judge.UNPACKED_TIMELINES = projects if unpacked else 0
    first = date(2026, 1, 1)
    now_ms = day_start_ms(first + timedelta(days=days + 1), tz)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(projects):
            project_id = f"MEM-{n:06d}"
            timeline = judge.timelines[project_id] = ProjectTimeline(project_id, 630.0, judge.calendar)
            for offset in range(days):
                kwh = 400.0 + (offset * 37 + n) % 200  # a working site's varying days
                timeline.set_day(DailyEnergy(project_id, first + timedelta(days=offset), kwh, 24, 1, 3600, 3600, False))
            judgement_points(judge.judge_projects([project_id], now_ms), tz)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held / projects


def judgement_ms(projects: int, days: int, timed_from: int, tz: ZoneInfo) -> float:
    """Mean time of one project's judgement by the worker's own judge (evaluating its
    timeline and building its points, no I/O), judging a day at a time as a stream does,
    over days ``timed_from`` to ``days``."""
    judge = _judge(tz)
    first = date(2026, 1, 1)
    ids = [f"JUDGE-{n:03d}" for n in range(projects)]
    for project_id in ids:
        judge.timelines[project_id] = ProjectTimeline(project_id, 630.0, judge.calendar)
    timed_s, judged = 0.0, 0
    for offset in range(days):
        day = first + timedelta(days=offset)
        now_ms = day_start_ms(day + timedelta(days=1), tz) + 600_000
        started = time.perf_counter()
        for n, project_id in enumerate(ids):
            kwh = 400.0 + (offset * 37 + n) % 200  # a working site's varying days
            judge.timelines[project_id].set_day(DailyEnergy(project_id, day, kwh, 96, 1, 900, 900, False))
            judgement_points(judge.judge_projects([project_id], now_ms), tz)
        if offset >= timed_from:
            timed_s += time.perf_counter() - started
            judged += projects
    return timed_s / judged * 1000


def _handled(status: Path, kind: str) -> int:
    try:
        return int(json.loads(status.read_text()).get("counts", {}).get(kind, 0))
    except (OSError, ValueError):
        return 0  # not written yet, or being replaced


class SamplingThread:
    """Samples in a thread of its own (``_run``) from the start of a with-block to its end."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class RssSampler(SamplingThread):
    """Peak resident memory of some processes, sampled every 0.2 s in a thread; with
    ``timeline``, one line a second (wall clock, MB) to match against the worker's log."""

    def __init__(self, pids: list[int], timeline: Path | None = None) -> None:
        self.pids = pids
        self.peak_mb = 0.0
        self.timeline = timeline
        super().__init__()

    def sample(self) -> float:
        now = max(rss_mb(pid) for pid in self.pids)
        self.peak_mb = max(self.peak_mb, now)
        return now

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            now = self.sample()
            ticks += 1
            if self.timeline is not None and ticks % 5 == 0:
                with self.timeline.open("a") as out:
                    out.write(f"{datetime.now():%H:%M:%S},{now:.0f}\n")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.sample()


class ProgressSampler(SamplingThread):
    """A count polled in a thread (``latest``), each sample written to ``timeline`` as
    seconds since start and the count, to see stalls such as a rebalance. The count is
    an InfluxDB query, whose CPU comes out of the machine being measured: polled once a
    second until ``target`` is near, then every 0.2 s to time the end."""

    def __init__(self, count: Callable[[], float], timeline: Path, target: float) -> None:
        self.count = count
        self.latest = 0.0
        self.timeline = timeline
        self.target = target
        super().__init__()

    def _run(self) -> None:
        began = time.monotonic()
        with self.timeline.open("w") as out:
            while not self._stop.is_set():
                self.latest = self.count()
                out.write(f"{time.monotonic() - began:.2f},{self.latest:.0f}\n")
                near = self.latest == 0 or self.latest >= 0.9 * self.target
                self._stop.wait(0.2 if near else 1.0)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuAccount:
    """The CPU each named process used, and the machine's busy share, between
    construction and ``stop``: on two cores, which process bounds a leg's rate."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self._before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        self._machine_before = machine_cpu()
        self.used: dict[str, float] = {}
        self.machine_jiffies: tuple[float, ...] = (0.0, 0.0)  # (busy, all) of every core

    def stop(self) -> Self:
        self.used = {name: cpu_seconds(pid) - self._before[name] for name, pid in self.processes.items()}
        self.machine_jiffies = tuple(after - before for after, before in zip(machine_cpu(), self._machine_before))
        return self

    @classmethod
    def combined(cls, accounts: Sequence[CpuAccount]) -> CpuAccount:
        """Legs of the same processes' kind taken together (their CPU and jiffies added)."""
        total = cls({})
        total.used = {name: sum(account.used[name] for account in accounts) for name in accounts[0].used}
        total.machine_jiffies = tuple(sum(account.machine_jiffies[n] for account in accounts) for n in (0, 1))
        return total

    @property
    def machine_busy(self) -> float:
        return round(self.machine_jiffies[0] / max(self.machine_jiffies[1], 1), 3)

    def per_million(self, readings: int) -> dict[str, float]:
        return {name: round(seconds / readings * 1e6, 2) for name, seconds in self.used.items()}


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


PHASES = ("raw_influx", "single_messages", "end_to_end", "end_to_end_series", "freshness", "scaling", "memory")
OPT_IN_PHASES = ("year",)  # run only when named with --only: the year takes ~25 minutes


def run_bench(
    settings: Settings, quick: bool, out: Path, say: Callable[[str], None], only: Sequence[str] = (), memory_projects: int | None = None,
    keep_logs: bool = False,
) -> dict:
    """All phases, or ``only`` some of them: those figures then replace their own in the
    results already at ``out`` and the rest are kept."""
    # A stopped benchmark (timeout, kill) must still stop its broker, influxd and
    # workers: they would go on eating the cores the next measurement needs.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    plan = Plan.small() if quick else Plan.full()
    if memory_projects is not None:
        plan = replace(plan, memory_projects=memory_projects)
    # Clients of a stopped phase's broker retry noisily while they close.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    root = Path(tempfile.mkdtemp(prefix="sitepulse-bench-"))
    influx = EmbeddedInflux.start(root / "influxdb")
    base = settings.model_copy(update={"influx_url": influx.url, "influx_api": "v1", "profile": "embedded", "require_signatures": False, "signing_keys": None})
    bench = Bench(plan, root, influx, base, say)
    earlier = json.loads(out.read_text()) if only and out.exists() else {}
    wanted = set(only or PHASES)
    started = time.monotonic()
    try:
        file, registry, readings = bench.scenario_file() if wanted - {"raw_influx", "freshness", "memory", "year"} else (None, [], 0)
        if file is not None:
            say(f"scenario: {len(registry)} projects × {plan.days} days = {readings:,} readings")
        phases = {
            "raw_influx": bench.raw_influx,
            "single_messages": lambda: bench.single_messages(file),
            "end_to_end": lambda: bench.end_to_end(file, registry, readings),
            "end_to_end_series": lambda: bench.end_to_end(file, registry, readings, series=True),
            "freshness": bench.freshness,
            "scaling": lambda: bench.scaling(file, registry, readings),
            "memory": bench.memory,
            "year": bench.year,
        }
        for name in PHASES + OPT_IN_PHASES:
            if name in wanted:
                phases[name]()
                # What is measured so far survives a phase that fails or is stopped.
                _write(out, {**earlier, **bench.results, "quick": quick, "partial": True})
    except BaseException:
        influx.stop()
        say(f"failed: logs of every phase kept in {root}")
        raise
    influx.stop()
    if keep_logs:
        say(f"logs of every phase kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    results = {**earlier, **bench.results}
    results.pop("partial", None)
    if "year_s" in results:
        # The year measured for real (``--only year``) replaces the month's extrapolation.
        for extrapolated in ("replay_year_s", "replay_year_extrapolated_from", "replay_year_window_adjusted_s"):
            results.pop(extrapolated, None)
    derive_ratios(results, readings)
    results["quick"] = quick
    results["bench_s"] = time.monotonic() - started
    results["measured_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    _write(out, results)
    return results


def derive_ratios(results: dict, readings: int) -> None:
    """Each ratio whose two figures are measured (a run of some phases, ``--only``,
    lacks the others')."""

    def has(*keys: str) -> bool:
        return all(key in results for key in keys)

    if has("e2e_readings_per_s"):
        # End to end reads day-packed messages: its ceilings are the consumers on that
        # same topic and influxd taking the points.
        packed_consumer = results.get("raw_consumer_packed_readings_per_s", results.get("raw_consumer_per_s"))
        if packed_consumer:
            results["e2e_ratio"] = results["e2e_readings_per_s"] / packed_consumer
        if has("raw_influx_write_per_s"):
            results["e2e_influx_ratio"] = results["e2e_readings_per_s"] / results["raw_influx_write_per_s"]
    if has("e2e_series_readings_per_s", "raw_influx_write_per_s"):
        results["e2e_series_influx_ratio"] = results["e2e_series_readings_per_s"] / results["raw_influx_write_per_s"]
    if has("e2e_series_readings_per_s", "e2e_readings_per_s"):
        results["e2e_series_ratio_batch"] = results["e2e_series_readings_per_s"] / results["e2e_readings_per_s"]
    if has("single_message_readings_per_s", "raw_consumer_per_s"):
        results["single_message_ratio"] = results["single_message_readings_per_s"] / results["raw_consumer_per_s"]
    if has("single_message_readings_per_s", "bare_faust_per_s"):
        results["single_message_ratio_bare"] = results["single_message_readings_per_s"] / results["bare_faust_per_s"]
    if has("live_capacity_per_s", "bare_faust_per_s"):
        results["live_capacity_ratio_bare"] = results["live_capacity_per_s"] / results["bare_faust_per_s"]
    if has("live_capacity_per_s", "live_bare_faust_per_s"):
        results["live_capacity_ratio_bare_after"] = results["live_capacity_per_s"] / results["live_bare_faust_per_s"]
    if "year_s" not in results and has("replay_readings_per_s"):
        results["replay_year_s"] = YEAR_READINGS / results["replay_readings_per_s"]
        results["replay_year_extrapolated_from"] = results.get("e2e_readings", readings)
        if "judgement_ms_full_window" in results:
            extra_ms = results["judgement_ms_full_window"] - results["judgement_ms_replayed_days"]
            results["replay_year_window_adjusted_s"] = results["replay_year_s"] + YEAR_JUDGEMENTS * extra_ms / 1000


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _write(out: Path, results: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
