"""Fixtures shared by all tests. Integration fixtures start the real parts — the
embedded Tansu broker and Debian's influxd — on free 127.0.0.1 ports, and fail (never
skip) when they cannot start."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer

from sitepulse.cli import cli
from sitepulse.embedded import READER_USER, WORKER_USER, EmbeddedBroker, EmbeddedInflux, InfluxUser
from sitepulse.runtime.settings import Settings

REPO = Path(__file__).resolve().parent.parent
_ids = itertools.count(1)


def poll(check: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.2):
    """Call ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; last value: {last!r}")


def read_topic(settings: Settings, topic: str, expected: int = 1, timeout_s: float = 20) -> list:
    """Records of a topic from the start: at least ``expected`` of them, or what came by
    the deadline (then read on until a second passes without a record)."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest", consumer_timeout_ms=1000, enable_auto_commit=False
    )
    found = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < expected and time.monotonic() < deadline:
            found.extend(consumer)
    finally:
        consumer.close()
    return found


@pytest.fixture(scope="session")
def influx(tmp_path_factory) -> Iterator[EmbeddedInflux]:
    server = EmbeddedInflux.start(tmp_path_factory.mktemp("influxdb"), auth=True)
    yield server
    server.stop()


@pytest.fixture
def broker(tmp_path) -> Iterator[EmbeddedBroker]:
    """A fresh broker per test: it is memory-only and starts in milliseconds, so tests
    never see each other's records."""
    server = EmbeddedBroker.start(tmp_path / "broker")
    yield server
    server.stop()


@pytest.fixture
def settings(broker: EmbeddedBroker, influx: EmbeddedInflux, tmp_path: Path) -> Settings:
    """Settings for one test: its own broker, its own InfluxDB database."""
    return settings_for(broker, influx, tmp_path)


def settings_for(broker: EmbeddedBroker, influx: EmbeddedInflux, tmp_path: Path, database: str | None = None) -> Settings:
    """sitepulse runs as the worker account: it may read and write its database, nothing more."""
    database = database or f"sitepulse_test_{os.getpid()}_{next(_ids)}"
    influx.create_database(database)
    worker = influx.user(WORKER_USER)
    return Settings(
        broker=broker.url,
        influx_url=influx.url,
        influx_db=database,
        influx_username=worker.name if worker else None,
        influx_password=worker.password if worker else None,
        influx_api="v1",
        state_dir=tmp_path / "state",
        profile="embedded",
        partitions=4,
        _env_file=None,
    )


class Sitepulse:
    """Runs ``sitepulse`` commands with a test's settings, as a user would."""

    def __init__(self, settings: Settings, tmp_path: Path, reader: InfluxUser | None = None) -> None:
        self.settings = settings
        self.reader = reader  # what the tests read with: the account Grafana reads with
        self.env = settings.child_environment()
        self.tmp_path = tmp_path
        self.workers: list[subprocess.Popen] = []

    def run(self, *args: str) -> str:
        result = self.attempt(*args)
        assert result.exit_code == 0, f"sitepulse {' '.join(args)} failed:\n{result.output}"
        return result.stdout

    def attempt(self, *args: str):
        """Run a command that may fail; the click Result (exit_code, stdout, stderr)."""
        return CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)

    def stop_all(self) -> None:
        for process in self.workers:
            self.stop_worker(process)

    def start_worker(self, **overrides: str) -> subprocess.Popen:
        return self.start_worker_command("worker", **overrides)

    def start_worker_command(self, command: str, **overrides: str) -> subprocess.Popen:
        """A long-running ``sitepulse COMMAND`` in a child process, stopped after the test."""
        log = (self.tmp_path / f"{command}-{len(self.workers)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "sitepulse", command],
            env={**os.environ, **self.env, **overrides},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp_path,
        )
        process.log_path = Path(log.name)
        self.workers.append(process)
        return process

    def stop_worker(self, process: subprocess.Popen) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def query(self, statement: str, database: str | None = None) -> list[dict]:
        """InfluxQL through plain HTTP, independent of sitepulse's own client."""
        fields = {"db": database or self.settings.influx_db, "q": statement, "epoch": "ms"}
        if self.reader is not None:
            fields |= {"u": self.reader.name, "p": self.reader.password}
        with urllib.request.urlopen(f"{self.settings.influx_url}/query?{urllib.parse.urlencode(fields)}", timeout=10) as response:
            payload = json.load(response)
        rows = []
        for series in payload["results"][0].get("series", []):
            for values in series["values"]:
                rows.append({**series.get("tags", {}), **dict(zip(series["columns"], values))})
        return rows


@pytest.fixture
def sitepulse(settings: Settings, influx: EmbeddedInflux, tmp_path: Path) -> Iterator[Sitepulse]:
    runner = Sitepulse(settings, tmp_path, influx.user(READER_USER))
    yield runner
    runner.stop_all()


@pytest.fixture(scope="module")
def module_sitepulse(influx: EmbeddedInflux, tmp_path_factory) -> Iterator[Sitepulse]:
    """One broker, database and worker shared by the tests of a module that check
    different sides of one expensive pipeline run."""
    tmp_path = tmp_path_factory.mktemp("module")
    server = EmbeddedBroker.start(tmp_path / "broker")
    runner = Sitepulse(settings_for(server, influx, tmp_path), tmp_path, influx.user(READER_USER))
    yield runner
    runner.stop_all()
    server.stop()
