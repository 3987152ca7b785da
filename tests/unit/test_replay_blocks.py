"""A replay decodes its file a block of lines at a time: what it publishes and what it
dead-letters must be exactly what taking the lines one by one would give."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

from hypothesis import given, strategies as st

from sitepulse.cli import line_blocks
from sitepulse.streams.contract import MAX_MESSAGE_BYTES, PowerReading
from sitepulse.streams.validation import decode_accepted_readings, decode_record

NOW = datetime(2026, 3, 5, tzinfo=timezone.utc)


def power(**changes: object) -> bytes:
    record = {"type": "power", "project_id": "NB-0001", "meter_id": "M1", "ts": "2026-03-01T08:15:00+08:00", "kwh": 12.5, "interval_s": 900}
    record.update(changes)
    return json.dumps(record, ensure_ascii=False).encode()


ACCEPTED = [
    power(),
    power(project_id="NB-0002", meter_id="总表", kwh=0.0, kwh_total=18211.5, kw=50.2),
    power(ts="2026-03-05T07:59:00+08:00", interval_s=60, kwh=0.3),  # just before the receiver's clock
    power(meter_id="M2", ts="2026-03-01T00:15:00Z", kwh_total=None, kw=0.0),
]
# Each refused for its own reason, or not a power reading: the block is taken line by line.
OTHERS = [
    power(kwh=-0.1),
    power(ts="2026-03-01T08:15:00"),  # no offset
    power(ts="2026-04-01T08:15:00+08:00"),  # from the future
    power(interval_s=0),
    power(meter_id=""),
    power(project_id="NB\\0001"),
    power(meter_id="M" * 65),
    power(kwh_total=1e400),  # infinite
    b'{"type":"power","project_id":"NB-0001"',
    b"not json",
    json.dumps({"type": "investment", "project_id": "NB-0001", "period": "2026-02", "amount_wan": 1250.0, "reported_at": "2026-03-03T10:00:00+08:00"}).encode(),
    power(note=" " * MAX_MESSAGE_BYTES),  # oversized
]


@given(st.lists(st.one_of(st.sampled_from(ACCEPTED), st.sampled_from(OTHERS), st.sampled_from([b"", b"  ", b"\r"])), max_size=12))
def test_a_block_is_taken_at_once_only_when_every_line_would_be_accepted_alone(lines):
    block = b"\n".join(lines) + b"\n"
    one_by_one = [decode_record(line.strip(), NOW) for line in lines if line.strip()]
    taken = decode_accepted_readings(block, NOW)
    if all(type(record) is PowerReading for record in one_by_one):
        assert taken == one_by_one
    else:
        assert taken is None


@given(st.lists(st.binary(max_size=40).map(lambda text: text.replace(b"\n", b"")), max_size=30), st.booleans(), st.integers(1, 64))
def test_blocks_are_whole_lines_that_put_back_together_give_the_file(lines, newline_at_end, size):
    content = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    blocks = list(line_blocks(io.BytesIO(content), size))
    assert all(block.endswith(b"\n") for block in blocks)
    lines_given = [] if not content else content.removesuffix(b"\n").split(b"\n")
    assert b"".join(blocks).split(b"\n")[:-1] == lines_given
