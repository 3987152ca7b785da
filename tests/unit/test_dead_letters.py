"""The worker's one decode-or-dead-letter step, on stand-ins for Faust's events and
topic: what an operator finds on the dead-letter topic for a record that cannot be read
(the claim that it reaches the real topic is made by tests/integration/test_pipeline.py)."""

from __future__ import annotations

import asyncio
from datetime import date
from types import SimpleNamespace

from sitepulse.agents.app import DeadLetters, decode_stoppage
from sitepulse.streams.contract import DLQ_HEADER_DETAIL, DLQ_HEADER_REASON, DLQ_HEADER_SOURCE


class Topic:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, **record):
        self.sent.append(record)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def message(offset: int, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(topic="sitepulse.stoppages", partition=2, offset=offset, key=b"NB-0001", value=value))


def test_an_unreadable_record_is_dead_lettered_with_why_and_where_and_the_rest_go_on():
    good = b'{"project_id": "NB-0001", "from_day": "2026-03-02", "to_day": "2026-03-06", "reason": "\xe8\xae\xbe\xe8\xae\xa1\xe5\x8f\x98\xe6\x9b\xb4"}'
    backwards = b'{"project_id": "NB-0001", "from_day": "2026-03-06", "to_day": "2026-03-02", "reason": "x"}'
    events = [message(7, b"{not json"), message(8, good), message(9, None), message(10, backwards)]
    topic = Topic()
    found, refused = asyncio.run(DeadLetters(topic).decoded(events, decode_stoppage, skip_tombstones=True))
    assert [(event.message.offset, stoppage.first) for event, stoppage in found] == [(8, date(2026, 3, 2))]
    assert refused == {"wrong_type": 2}, "the tombstone is skipped, not refused"
    letters = [dict(record["headers"]) for record in topic.sent]
    assert [letter[DLQ_HEADER_SOURCE].decode() for letter in letters] == ["sitepulse.stoppages/2/7", "sitepulse.stoppages/2/10"]
    assert all(letter[DLQ_HEADER_REASON] == b"wrong_type" for letter in letters)
    assert b"before from_day" in letters[1][DLQ_HEADER_DETAIL]
    assert [record["value"] for record in topic.sent] == [b"{not json", backwards], "the message as it came, to be fixed and sent again"


def test_on_a_topic_that_is_not_compacted_an_empty_message_is_refused_too():
    topic = Topic()
    found, refused = asyncio.run(DeadLetters(topic).decoded([message(1, None)], decode_stoppage))
    assert found == [] and refused == {"wrong_type": 1} and len(topic.sent) == 1
