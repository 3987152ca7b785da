"""The Faust app the worker and the bare agent run on: how long the broker may hold
their fetches."""

from __future__ import annotations

import asyncio

import aiokafka
import pytest

from sitepulse.agents.app import new_faust_app
from sitepulse.runtime.settings import EMBEDDED_FETCH_WAIT_MS, Settings


def _consumer_fetch_wait_ms(settings: Settings, tmp_path) -> int:
    """The wait the app's aiokafka consumer hands its fetcher when it starts."""

    async def build() -> int:
        app = new_faust_app(settings, "fetch-wait", tmp_path)
        consumer = app.transport.create_consumer(
            callback=app.topics.on_message, on_partitions_revoked=app._on_partitions_revoked, on_partitions_assigned=app._on_partitions_assigned
        )
        thread = consumer._new_consumer_thread()
        return thread._create_worker_consumer(app.transport)._fetch_max_wait_ms

    return asyncio.run(build())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, EMBEDDED_FETCH_WAIT_MS),  # the embedded broker answers an empty fetch only when it runs out
        ({"profile": "production"}, 1500),  # Kafka answers as soon as a record arrives: Faust's own
        ({"profile": "production", "fetch_wait_ms": 300}, 300),
        ({"fetch_wait_ms": 40}, 40),
    ],
)
def test_fetch_wait_follows_the_profile_unless_set(tmp_path, overrides, expected):
    assert _consumer_fetch_wait_ms(Settings(_env_file=None, **overrides), tmp_path) == expected


def test_the_wait_is_where_aiokafka_keeps_its_argument():
    """The override sets aiokafka's own attribute: a renamed one would leave it unread."""

    async def build() -> int:
        return aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=123)._fetch_max_wait_ms

    assert asyncio.run(build()) == 123
