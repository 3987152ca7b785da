"""Read the dead-letter topic back for the data owners: every refused record with its
reason, where it came from and its original bytes."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO


from .runtime.settings import Settings
from .streams.topics import read_whole_topic
from .streams.contract import DLQ_HEADER_DETAIL, DLQ_HEADER_REASON, DLQ_HEADER_RECEIVED_AT, DLQ_HEADER_SOURCE, DLQ_TOPIC, REJECTION_REASONS

DLQ_COLUMNS = ("received_at", "reason", "topic", "key", "raw", "explanation", "detail", "source")


@dataclass(frozen=True)
class DeadLetter:
    received_at: str
    reason: str
    topic: str
    key: str
    raw: str
    detail: str
    source: str


def read_dead_letters(settings: Settings) -> Iterator[DeadLetter]:
    """Everything on the dead-letter topic, oldest first per partition."""
    return (_dead_letter(record) for record in read_whole_topic(settings, DLQ_TOPIC))


def _dead_letter(record) -> DeadLetter:
    headers = {name: value.decode("utf-8", "replace") for name, value in (record.headers or [])}
    source = headers.get(DLQ_HEADER_SOURCE, "")
    return DeadLetter(
        received_at=headers.get(DLQ_HEADER_RECEIVED_AT, ""),
        reason=headers.get(DLQ_HEADER_REASON, ""),
        # "topic/partition/offset" from a worker, "replay:FILE:LINE" from a replay
        topic=source.split("/", 1)[0] if "/" in source else source.split(":", 1)[0],
        key=(record.key or b"").decode("utf-8", "replace"),
        raw=(record.value or b"").decode("utf-8", "replace"),
        detail=headers.get(DLQ_HEADER_DETAIL, ""),
        source=source,
    )


def write_dead_letters_csv(letters: Iterator[DeadLetter], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DLQ_COLUMNS)
    count = 0
    for letter in letters:
        writer.writerow(
            [letter.received_at, letter.reason, letter.topic, letter.key, letter.raw, REJECTION_REASONS.get(letter.reason, ""), letter.detail, letter.source]
        )
        count += 1
    return count
