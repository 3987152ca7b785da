"""How many requests a write takes: every line once, in order, in even requests of
fewer than 1.5 × WRITE_CHUNK lines, so a worker's batch a little over WRITE_CHUNK
(its readings and day totals) is one request, not a full one and a sliver."""

from __future__ import annotations

from hypothesis import given, strategies as st

from sitepulse.sink.influx import WRITE_CHUNK, write_chunks


@given(count=st.integers(0, 60_000), target=st.integers(1, 10_000))
def test_every_line_once_in_order_in_even_requests_under_one_and_a_half_targets(count, target):
    bounds = write_chunks(count, target)
    covered = [line for start, stop in bounds for line in range(start, stop)]
    assert covered == list(range(count))
    sizes = [stop - start for start, stop in bounds]
    assert all(size < 1.5 * target for size in sizes)
    assert not sizes or max(sizes) - min(sizes) <= 1
    # No more requests than the target size needs, rounded.
    assert len(bounds) <= max(1, round(count / target))


def test_a_worker_batch_of_readings_and_day_totals_is_one_request():
    readings, day_totals = 5_033, 30
    assert write_chunks(readings + day_totals) == [(0, readings + day_totals)]
    assert len(write_chunks(2 * WRITE_CHUNK + 10)) == 2
    assert write_chunks(0) == []
