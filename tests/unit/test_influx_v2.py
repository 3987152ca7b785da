"""The InfluxDB 2.x write path (influxdb-client) and InfluxQL reads, against a local
HTTP stand-in that answers as InfluxDB 2.x documents: no 2.x server runs here."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from sitepulse.sink.influx import InfluxClient, InfluxRejected, InfluxUnavailable, RetryingInflux
from sitepulse.runtime.settings import Settings


class FakeInflux2:
    def __init__(self) -> None:
        self.writes: list[web.Request] = []
        self.bodies: list[str] = []
        self.queries: list[str] = []
        self.fail_next: list[int] = []

    async def write(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Token s3cret":
            return web.json_response({"code": "unauthorized", "message": "unauthorized access"}, status=401)
        if self.fail_next:
            return web.json_response({"code": "unavailable", "message": "busy"}, status=self.fail_next.pop(0))
        self.writes.append(request)
        self.bodies.append(await request.text())
        return web.Response(status=204)

    async def query(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.queries.append(form["q"])
        return web.json_response({"results": [{"statement_id": 0, "series": [{"name": "power_daily", "tags": {"project_id": "P"}, "columns": ["time", "kwh"], "values": [[0, 1.5]]}]}]})


async def serve(fake: FakeInflux2):
    app = web.Application()
    app.router.add_post("/api/v2/write", fake.write)
    app.router.add_post("/query", fake.query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port


def v2_settings(port: int, token: str = "s3cret") -> Settings:
    return Settings(
        influx_url=f"http://127.0.0.1:{port}", influx_api="v2", influx_db="sitepulse", influx_org="city", influx_token=token, _env_file=None
    )


def test_v2_writes_go_to_the_bucket_with_the_token_and_millisecond_precision():
    async def scenario():
        fake = FakeInflux2()
        runner, port = await serve(fake)
        try:
            async with InfluxClient(v2_settings(port)) as client:
                await client.write(["m,t=a f=1.0 1000", "m,t=b f=2.0 2000"])
                (series,) = await client.query("SELECT kwh FROM power_daily")
        finally:
            await runner.cleanup()
        return fake, series

    fake, series = asyncio.run(scenario())
    (request,) = fake.writes
    assert request.query["bucket"] == "sitepulse" and request.query["org"] == "city" and request.query["precision"] == "ms"
    assert fake.bodies == ["m,t=a f=1.0 1000\nm,t=b f=2.0 2000"]
    assert series[0].rows() == [{"time": 0, "kwh": 1.5}]


def test_a_wrong_token_is_refused_not_retried():
    async def scenario():
        fake = FakeInflux2()
        runner, port = await serve(fake)
        try:
            async with InfluxClient(v2_settings(port, token="wrong")) as client:
                await RetryingInflux(client).write(["m f=1.0 1"])
        finally:
            await runner.cleanup()

    with pytest.raises(InfluxRejected, match="401"):
        asyncio.run(scenario())


def test_an_overloaded_server_is_retried_until_it_takes_the_batch():
    async def scenario():
        fake = FakeInflux2()
        fake.fail_next = [503, 429]
        runner, port = await serve(fake)
        try:
            async with InfluxClient(v2_settings(port)) as client:
                with pytest.raises(InfluxUnavailable):
                    await client.write(["m f=1.0 1"])  # one attempt alone fails (503) ...
                await RetryingInflux(client, first_delay_s=0.01).write(["m f=2.0 2"])  # ... retries get through
        finally:
            await runner.cleanup()
        return fake

    assert asyncio.run(scenario()).bodies == ["m f=2.0 2"]
