"""Create sitepulse's topics if they are missing (idempotent), with kafka-python's admin
client. Production clusters may create them beforehand with the same settings."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from ..settings import Settings
from .contract import DLQ_TOPIC, EVENTS_TOPIC, INVESTMENT_TOPIC, POWER_TOPIC, REGISTRY_TOPIC, STOPPAGES_TOPIC

log = logging.getLogger(__name__)


def topic_specs(settings: Settings) -> list[NewTopic]:
    partitions = settings.partitions
    return [
        NewTopic(POWER_TOPIC, partitions, 1),
        NewTopic(INVESTMENT_TOPIC, partitions, 1),
        # One value per project_id: compaction keeps the latest registry row forever.
        NewTopic(REGISTRY_TOPIC, partitions, 1, topic_configs={"cleanup.policy": "compact"}),
        # One value per stoppage (project and first day): amendments replace it.
        NewTopic(STOPPAGES_TOPIC, partitions, 1, topic_configs={"cleanup.policy": "compact"}),
        NewTopic(DLQ_TOPIC, partitions, 1),
        NewTopic(EVENTS_TOPIC, partitions, 1),
    ]


def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics; returns the names created."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="sitepulse-admin")
    try:
        existing = set(admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        for spec in missing:
            try:
                admin.create_topics([spec])
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
        if missing:
            log.info("created topics %s", [spec.name for spec in missing])
        return [spec.name for spec in missing]
    finally:
        admin.close()
