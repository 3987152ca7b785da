"""Create sitepulse's topics if they are missing (idempotent), with kafka-python's admin
client. Production clusters may create them beforehand with the same settings."""

from __future__ import annotations

import logging

from collections.abc import Iterator

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from ..runtime.settings import Settings
from .contract import AUDIT_TOPIC, DLQ_TOPIC, EVENTS_TOPIC, INVESTMENT_TOPIC, NODES_TOPIC, POWER_TOPIC, REGISTRY_TOPIC, STOPPAGES_TOPIC

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
        # A plan node's plan and its completion (project/node/plan, project/node/done).
        NewTopic(NODES_TOPIC, partitions, 1, topic_configs={"cleanup.policy": "compact"}),
        NewTopic(DLQ_TOPIC, partitions, 1),
        # Kept: problems people file and close exist nowhere else, and the ledger is a
        # fold over these events.
        NewTopic(EVENTS_TOPIC, partitions, 1, topic_configs={"retention.ms": "-1"}),
        # One partition: the audit trail reads in the order things were done.
        NewTopic(AUDIT_TOPIC, 1, 1, topic_configs={"retention.ms": "-1"}),
    ]


def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics; returns the names created."""
    admin = KafkaAdminClient(**settings.kafka_options(), client_id="sitepulse-admin")
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


def read_whole_topic(settings: Settings, topic: str) -> Iterator:
    """Every record on a topic from its start, oldest first per partition, without a
    consumer group. Reads until the topic stays quiet: end offsets cannot be trusted as a
    stop mark (the embedded broker reports the end of a multi-record batch as base + 1)."""
    consumer = KafkaConsumer(**settings.kafka_options(), enable_auto_commit=False)
    try:
        if topic not in consumer.topics():  # also loads the cluster metadata
            return
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        quiet_polls = 0
        while quiet_polls < 3:
            batch = consumer.poll(timeout_ms=500)
            quiet_polls = 0 if batch else quiet_polls + 1
            for records in batch.values():
                yield from records
    finally:
        consumer.close()


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (the Java client's murmur2, which
    kafka-python, Faust and sitepulse's publisher use) gives a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partition_count(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(**settings.kafka_options(), client_id="sitepulse-metadata")
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()
