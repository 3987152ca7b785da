"""A batch of live messages, one reading each, decoded, checked and screened at once
(``decode_accepted_messages``, ``none_against_registry``) when every one would pass
alone; message by message otherwise. A full take of them (a backlog) is held for the
next takes, up to a batch of ``batch_size`` readings. Message by message, each take as
it comes, is the reference: what the power agent stores, judges and dead-letters must
not depend on which way it went."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from unittest import mock

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from sitepulse.agents.app import Worker
from sitepulse.streams.contract import PowerReading
from sitepulse.streams.validation import check_against_registry, decode_accepted_messages, decode_record, none_against_registry
from tests.unit.test_batch_runs import PROJECT, START, TZ, through_the_power_step
from tools.hot_path import Consumed, DiscardingInflux, run
from tests.unit.test_replay_blocks import ACCEPTED, NOW, OTHERS

# Alone each would be accepted, but not as one line of a block: the fallback takes them.
MULTI_LINE = [
    json.dumps(json.loads(ACCEPTED[0]), indent=1).encode(),  # pretty-printed: one record over many lines
    ACCEPTED[0] + b"\n",
]
TWO_RECORDS_IN_ONE = ACCEPTED[0] + b"\n" + ACCEPTED[1]  # refused alone; two readings as lines


@given(st.lists(st.one_of(st.sampled_from(ACCEPTED), st.sampled_from(OTHERS), st.sampled_from([b"", b"  ", TWO_RECORDS_IN_ONE, *MULTI_LINE]))))
def test_messages_are_taken_at_once_only_when_each_alone_would_be_accepted_and_give_the_same_readings(values):
    alone = [decode_record(value, NOW) for value in values]
    taken = decode_accepted_messages(values, NOW)
    if taken is not None:
        assert taken == alone
    if values and all(type(record) is PowerReading for record in alone) and not any(b"\n" in value for value in values):
        assert taken is not None


REGISTRY = {
    "NB-0001": msgspec.structs.replace(PROJECT, project_id="NB-0001", capacity_kva=100.0),
    "NB-0002": msgspec.structs.replace(PROJECT, project_id="NB-0002", capacity_kva=0.0),  # capacity not known: no bound
}
readings = st.builds(
    PowerReading,
    st.sampled_from(["NB-0001", "NB-0002", "NB-0003"]),
    st.just("M1"),
    st.just(START),
    st.sampled_from([0.0, 29.9, 30.0, 30.1, 500.0]),  # 100 kVA over 900 s: at most 30 kWh
    st.sampled_from([900, 60]),
)


@given(st.lists(readings, max_size=6), st.booleans())
def test_a_lot_passes_the_registry_at_once_exactly_when_no_reading_of_it_is_refused(lot, loaded):
    registry = REGISTRY if loaded else {}
    one_by_one = [check_against_registry(r, registry[r.project_id].capacity_kva if r.project_id in registry else None, loaded) for r in lot]
    assert none_against_registry(lot, registry) == (one_by_one == [None] * len(lot))


# --- through the power agent's step --------------------------------------------------------

# (step, meter, kWh, how the message is spoiled): 1000 kVA, so 300 kWh in 15 minutes at most
live_draw = st.tuples(
    st.integers(0, 8), st.sampled_from(["M1", "M2"]), st.sampled_from([1.5, 2.0, 250.0, 301.0]), st.sampled_from([None] * 6 + ["unknown", "bad", "blank"])
)


def live_messages(draws: list) -> list[bytes]:
    values = []
    for step, meter, kwh, spoiled in draws:
        reading = PowerReading("P-2" if spoiled == "unknown" else "P-1", meter, START + timedelta(minutes=15 * step), kwh, 900)
        values.append({"bad": b'{"type":"power","project_id":"P-1"', "blank": b""}.get(spoiled, msgspec.json.encode(reading)))
    return values


@settings(max_examples=60, deadline=None)
@given(st.lists(live_draw, min_size=1, max_size=40), st.sampled_from([1, 4, 40]))
def test_live_messages_taken_at_once_are_stored_judged_and_dead_lettered_as_one_by_one(draws, messages_per_batch):
    values = live_messages(draws)
    with mock.patch.object(Worker, "_may_hold", return_value=False):
        at_once = through_the_power_step(values, messages_per_batch)
        with mock.patch("sitepulse.agents.app.decode_accepted_messages", return_value=None):
            one_by_one = through_the_power_step(values, messages_per_batch)
    assert at_once == one_by_one


@settings(max_examples=200, deadline=None)
@given(st.lists(live_draw, min_size=1, max_size=40), st.sampled_from([1, 4, 40]))
def test_held_takes_store_judge_and_dead_letter_as_each_take_as_it_comes(draws, messages_per_batch):
    """The same points, dead letters and counts, and the same events but a meter's
    offline and back-online pair: a meter whose reading comes after a later one of
    another meter looks silent from the end of one take to the next (the stream's clock
    is the newest reading). Where takes end decides it, as it does for Faust's takes."""
    values = live_messages(draws)
    held = through_the_power_step(values, messages_per_batch)
    with mock.patch.object(Worker, "_may_hold", return_value=False):
        each_take_as_it_comes = through_the_power_step(values, messages_per_batch)
    assert (held[0], held[2], held[3]) == (each_take_as_it_comes[0], each_take_as_it_comes[2], each_take_as_it_comes[3])
    assert but_meters_silent_for_a_moment(held[1]) == but_meters_silent_for_a_moment(each_take_as_it_comes[1])


def but_meters_silent_for_a_moment(events: list[bytes]) -> list[bytes]:
    return [event for event in events if msgspec.json.decode(event)["kind"] not in ("offline", "online")]


def good(first_step: int) -> list:
    return [(step, meter, 2.0, None) for step in range(first_step, first_step + 4) for meter in ("M1", "M2")]


def taking(calls: list):
    """The agent's batch taken at once as it is, each outcome kept in ``calls``."""
    at_once = Worker._accepted_single_readings

    def kept(self, *args):
        calls.append(at_once(self, *args))
        return calls[-1]

    return mock.patch.object(Worker, "_accepted_single_readings", kept)


def test_a_clean_live_batch_is_taken_at_once_and_one_bad_message_sends_its_batch_message_by_message():
    """The comparison above is only worth what it covers: a batch of good messages goes
    the fast way; one over the project's capacity, one of an unknown project or one
    that does not decode sends its whole batch message by message, and is dead-lettered
    for its own reason."""
    calls: list = []
    with taking(calls), mock.patch.object(Worker, "_may_hold", return_value=False):
        _stored, _events, dead_letters, counts = through_the_power_step(live_messages([*good(1), *good(11), *good(21)]), 8)
    assert [len(taken) for taken in calls] == [8, 8, 8]
    assert dead_letters == [] and counts["power"] == 24
    calls.clear()
    spoiled = [*good(1), (5, "M1", 301.0, None), *good(11), (15, "M1", 2.0, "unknown"), *good(21), (25, "M1", 2.0, "bad")]
    with taking(calls):
        _stored, _events, dead_letters, counts = through_the_power_step(live_messages(spoiled), 9)
    assert calls == [None, None, None]
    assert [(offset, reason) for offset, _index, reason, _record in dead_letters] == [(8, "impossible_kwh"), (17, "unknown_project"), (26, "malformed_json")]
    assert counts["power"] == 24


def test_signed_readings_are_screened_message_by_message():
    worker = mock.Mock(spec=Worker)
    worker.signing_keys = object()
    worker.settings = mock.Mock(signatures_required=True)
    assert Worker._accepted_single_readings(worker, [mock.Mock()], NOW) is None


def test_a_backlog_of_full_takes_is_held_and_handled_as_one_batch_whose_messages_wait_for_its_write():
    """Five full takes of eight messages, then the agent finds no next take: one batch of
    40 readings, its days totalled and written once. Each held message kept a reference
    until its reading was stored, and gave it back: Faust's own is all that is left."""
    values = live_messages([step for first in (1, 11, 21, 31, 41) for step in good(first)])
    handled: list[int] = []
    chunk = Worker._handle_chunk

    async def counted(self, kind, handle, accepted, rejections, **passed):
        handled.append(len(accepted))
        return await chunk(self, kind, handle, accepted, rejections, **passed)

    consumed: list[Consumed] = []
    counting = mock.patch("tools.hot_path.Consumed", side_effect=lambda *a: consumed.append(Consumed(*a)) or consumed[-1])
    with mock.patch.object(Worker, "_handle_chunk", counted), counting:
        worker, _lines, _events = asyncio.run(run(values, [PROJECT], TZ, 8, DiscardingInflux()))
    assert handled == [40] and worker.counters.counts["power"] == 40
    assert [message.refcount for message in consumed] == [1] * 40


def take_sent(seconds_ago: float) -> list:
    return [mock.Mock(message=mock.Mock(timestamp=time.time() - seconds_ago - index)) for index in range(8)]


def test_a_take_is_held_only_behind_a_backlog_and_not_beyond_a_batch():
    worker = mock.Mock(spec=Worker)
    worker.settings = mock.Mock(batch_messages=8, batch_size=20, batch_within_s=0.5)
    take = take_sent(60)
    worker.held_singles = []
    assert Worker._may_hold(worker, take, take)  # a full take of messages a minute old, nothing held yet
    assert not Worker._may_hold(worker, take[:7], take[:7])  # not full: live, the time ended it
    assert not Worker._may_hold(worker, take_sent(0.1), take)  # full but fresh: the worker keeps up
    unstamped = [mock.Mock(message=mock.Mock(timestamp=None))] * 8
    assert not Worker._may_hold(worker, unstamped, unstamped)
    worker.held_singles = take * 2
    assert Worker._may_hold(worker, take[:3], take[:3]) is False and Worker._may_hold(worker, take, take[:3])
    assert not Worker._may_hold(worker, take, take)  # 16 held and 8 more: over a batch
    assert not Worker._may_hold(worker, take_sent(0.1), take[:1])  # the backlog is over: what is held goes now


def test_each_held_take_gives_the_next_the_batch_window_to_come():
    worker = mock.Mock(spec=Worker)
    worker.settings = mock.Mock(batch_within_s=0.5)
    worker.held_singles, worker.held_singles_until = [], 0.0
    take = take_sent(60)
    Worker._hold(worker, [(event, None) for event in take])
    first_until = worker.held_singles_until
    assert time.monotonic() < first_until <= time.monotonic() + 0.5
    time.sleep(0.05)
    Worker._hold(worker, [(event, None) for event in take])
    assert worker.held_singles_until > first_until and len(worker.held_singles) == 16
    assert all(event.message.incref.call_count == 2 for event in take)
