"""The one place that talks to InfluxDB: line-protocol writes and InfluxQL reads.

Two write modes behind one interface: 1.x ``/write`` (the embedded default, Debian's
influxd) and 2.x through ``influxdb-client``. Reads are InfluxQL on ``/query`` in both,
which 2.x serves through its 1.x compatibility API, so one query works on both.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import msgspec

from ..runtime.settings import Settings
from ..streams.contract import SHARD_DURATION

log = logging.getLogger(__name__)

# Lines per write request, as InfluxDB advises; a write of up to half as much again (a
# worker's batch of ~5,000 readings and its day totals) still goes as one request, not
# as 5,000 and a few dozen: influxd and the worker pay a request's overhead per request.
WRITE_CHUNK = 5000
T = TypeVar("T")


class InfluxUnavailable(Exception):
    """InfluxDB could not take the request now (network, 5xx, 429): retry later."""


class InfluxRejected(Exception):
    """InfluxDB refused the request (4xx): retrying will not help, a person must look."""


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.values]


# InfluxDB 1.x evaluates a long OR of tag conditions very slowly (a statement naming
# 2,500 projects kept influxd busy for minutes); a few short statements in one request
# cost milliseconds.
VALUES_PER_STATEMENT = 100


def tag_conditions(tag: str, values: Iterable[str]) -> list[str]:
    """``(tag = 'a' OR ...)`` clauses of at most VALUES_PER_STATEMENT values, in order."""
    ordered = sorted(values)
    return [
        "(" + " OR ".join(f"{tag} = {quote_literal(value)}" for value in ordered[start : start + VALUES_PER_STATEMENT]) + ")"
        for start in range(0, len(ordered), VALUES_PER_STATEMENT)
    ]


def project_conditions(project_ids: Iterable[str]) -> list[str]:
    return tag_conditions("project_id", project_ids)


def quote_literal(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_chunks(count: int, target: int = WRITE_CHUNK) -> list[tuple[int, int]]:
    """``count`` lines as (start, stop) slices: the fewest of even size that hold at most
    1.5 × ``target`` lines each."""
    most = max(1, 3 * target // 2)
    chunks = max(1, -(-count // most))
    size, extra = divmod(count, chunks)
    bounds, start = [], 0
    for index in range(chunks):
        stop = start + size + (index < extra)
        if stop > start:
            bounds.append((start, stop))
        start = stop
    return bounds


class InfluxClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._base = settings.influx_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._v2_client: Any = None

    async def __aenter__(self) -> InfluxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _headers(self) -> dict[str, str]:
        token = self.settings.influx_token
        if token and self.settings.influx_api == "v2":
            return {"Authorization": f"Token {token.get_secret_value()}"}
        user, password = self.settings.influx_username, self.settings.influx_password
        if user and self.settings.influx_api == "v1":
            secret = password.get_secret_value() if password else ""
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")}
        return {"Authorization": f"Token {token.get_secret_value()}"} if token else {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers(), timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._v2_client is not None:
            await self._v2_client.close()
            self._v2_client = None

    async def ping(self) -> bool:
        try:
            async with self._http().get(f"{self._base}/ping") as response:
                return response.status == 204
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def create_database(self) -> None:
        """1.x only: 2.x buckets are created by the deployment (see deploy/). A worker
        that is not an admin (auth-enabled servers) finds its database made for it."""
        if self.settings.influx_api != "v1":
            return
        (databases,) = await self.query("SHOW DATABASES")
        if any(row and row[0] == self.settings.influx_db for series in databases for row in series.values):
            return
        await self._query_request(f"CREATE DATABASE {quote_identifier(self.settings.influx_db)} WITH SHARD DURATION {SHARD_DURATION}", post=True)

    async def write(self, lines: Sequence[str]) -> None:
        """Write line-protocol points (millisecond timestamps), in chunks."""
        for start, stop in write_chunks(len(lines)):
            chunk = "\n".join(lines[start:stop])
            if self.settings.influx_api == "v2":
                await self._write_v2(chunk)
            else:
                await self._write_v1(chunk)

    async def _write_v1(self, body: str) -> None:
        params = {"db": self.settings.influx_db, "precision": "ms"}
        try:
            async with self._http().post(f"{self._base}/write", params=params, data=body.encode()) as response:
                if response.status == 204:
                    return
                text = await response.text()
                _raise_for_status(response.status, text)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _write_v2(self, body: str) -> None:
        from influxdb_client import WritePrecision
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
        from influxdb_client.rest import ApiException

        if self._v2_client is None:
            token = self.settings.influx_token
            self._v2_client = InfluxDBClientAsync(
                url=self._base,
                token=token.get_secret_value() if token else "",
                org=self.settings.influx_org,
            )
        try:
            await self._v2_client.write_api().write(
                bucket=self.settings.influx_db,
                org=self.settings.influx_org,
                record=body,
                write_precision=WritePrecision.MS,
            )
        except ApiException as exc:
            _raise_for_status(exc.status or 0, str(exc.body or exc.reason))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def query(self, statements: str) -> list[list[Series]]:
        """Run InfluxQL (statements joined by ';'); one list of series per statement."""
        payload = await self._query_request(statements)
        results = []
        for result in payload.get("results", []):
            if "error" in result:
                raise InfluxRejected(f"InfluxQL error: {result['error']}")
            results.append(
                [
                    Series(s.get("name", ""), s.get("tags") or {}, s["columns"], s.get("values") or [])
                    for s in result.get("series", [])
                ]
            )
        return results

    async def _query_request(self, statements: str, post: bool = False) -> dict[str, Any]:
        params = {"db": self.settings.influx_db, "epoch": "ms"}
        try:
            # POST with a form body: long statements do not fit in a URL.
            async with self._http().post(
                f"{self._base}/query", params=params, data={"q": statements}
            ) as response:
                body = await response.read()
                if response.status != 200:
                    _raise_for_status(response.status, body.decode(errors="replace"))
            # Straight from bytes: a whole-city answer (100k registry rows) is tens of MB,
            # and a decoded str copy of it and Python's json would each double that.
            payload = msgspec.json.decode(body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise InfluxUnavailable(f"InfluxDB 返回了无法解析的应答: {exc}") from exc
        if isinstance(payload, dict) and "error" in payload:
            raise InfluxRejected(f"InfluxQL error: {payload['error']}")
        return payload


def _raise_for_status(status: int, text: str) -> None:
    if status == 429 or status >= 500 or status == 0:
        raise InfluxUnavailable(f"HTTP {status}: {text.strip()[:300]}")
    if status in (401, 403):
        raise InfluxRejected(
            f"HTTP {status}: {text.strip()[:300]} (InfluxDB 拒绝了该账号或该操作: 检查 SITEPULSE_INFLUX_USERNAME / "
            "SITEPULSE_INFLUX_PASSWORD, 或 2.x 的 SITEPULSE_INFLUX_TOKEN 及其权限)"
        )
    raise InfluxRejected(f"HTTP {status}: {text.strip()[:300]}")


class RetryingInflux:
    """Writes and reads until InfluxDB answers: an outage becomes back-pressure (the
    agent waits, so the consumer stops fetching) instead of a lost batch. One log line
    when an outage starts and one when it ends. A refusal (4xx) is raised at once."""

    def __init__(self, client: InfluxClient, first_delay_s: float = 0.2, max_delay_s: float = 10.0) -> None:
        self.client = client
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.degraded_since: float | None = None
        self.last_error: str = ""
        # Called when an outage starts or ends (the worker's status file follows it).
        self.on_change: Callable[[], None] = lambda: None

    async def write(self, lines: Sequence[str]) -> None:
        await self._until_done(lambda: self.client.write(lines))

    async def query(self, statements: str) -> list[list[Series]]:
        return await self._until_done(lambda: self.client.query(statements))

    async def _until_done(self, operation: Callable[[], Awaitable[T]]) -> T:
        delay = self.first_delay_s
        loop = asyncio.get_running_loop()
        while True:
            try:
                result = await operation()
            except InfluxUnavailable as exc:
                if self.degraded_since is None:
                    self.degraded_since = loop.time()
                    self.last_error = str(exc)
                    log.warning("InfluxDB unavailable, holding the batch and retrying: %s", exc)
                    self.on_change()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
                continue
            if self.degraded_since is not None:
                log.warning("InfluxDB is back after %.1f s", loop.time() - self.degraded_since)
                self.degraded_since = None
                self.on_change()
            return result
