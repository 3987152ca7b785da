"""How many requests a write takes: every line once, in order, in the fewest even
requests of at most 1.5 × WRITE_CHUNK lines, so a worker's batch a little over
WRITE_CHUNK (its readings and day totals) is one request, not a full one and a sliver."""

from __future__ import annotations

import math

from hypothesis import given, strategies as st

from sitepulse.sink.influx import WRITE_CHUNK, write_chunks


@given(count=st.integers(0, 60_000), target=st.integers(1, 10_000))
def test_every_line_once_in_order_in_the_fewest_even_requests_of_one_and_a_half_targets(count, target):
    bounds = write_chunks(count, target)
    covered = [line for start, stop in bounds for line in range(start, stop)]
    assert covered == list(range(count))
    sizes = [stop - start for start, stop in bounds]
    most_lines = math.floor(1.5 * target)  # whole lines
    assert all(size <= most_lines for size in sizes)
    assert not sizes or max(sizes) - min(sizes) <= 1
    # One request fewer would need one of more lines than that.
    assert len(bounds) == 0 or (len(bounds) - 1) * most_lines < count


def test_a_worker_batch_of_readings_and_day_totals_is_one_request():
    readings, day_totals = 5_033, 30
    assert write_chunks(readings + day_totals) == [(0, readings + day_totals)]
    assert len(write_chunks(2 * WRITE_CHUNK + 10)) == 2
    assert write_chunks(0) == []
