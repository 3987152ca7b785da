"""The live capacity's search: up by steps until a rate misses p99 < 2 s, then the gap
halved."""

from __future__ import annotations

from sitepulse.bench import search_live_capacity


def _worker_lagging_from(limit: float, publisher_most: float = float("inf")):
    """A stand-in for a steady run: p99 crosses 2 s at ``limit`` readings/s; the
    publisher reaches at most ``publisher_most``."""
    asked: list[int] = []

    def measure(rate: int) -> tuple[float, float, dict]:
        asked.append(rate)
        return min(rate, publisher_most), 2.0 * rate / limit, {"asked": rate}

    return measure, asked


def test_the_gap_after_the_first_rate_that_misses_is_halved_twice():
    measure, asked = _worker_lagging_from(4_600)
    capacity, steps = search_live_capacity(measure, 2_000, 2_000.0, 1_000, 20_000, halvings=2)
    assert asked == [3_000, 4_000, 5_000, 4_500, 4_750]
    assert capacity == 4_500
    assert [step["rate"] for step in steps] == asked and steps[2]["p99_s"] >= 2
    # What else the run measured is kept with its step.
    assert [step["asked"] for step in steps] == asked


def test_a_rate_the_publisher_could_not_reach_counts_as_missed():
    measure, asked = _worker_lagging_from(100_000, publisher_most=3_500)
    capacity, _ = search_live_capacity(measure, 2_000, 1_990.0, 1_000, 20_000, halvings=2)
    assert asked == [3_000, 4_000, 3_500, 3_750] and capacity == 3_500


def test_no_halving_when_the_ceiling_held():
    measure, asked = _worker_lagging_from(100_000)
    capacity, _ = search_live_capacity(measure, 2_000, 2_000.0, 1_000, 3_000, halvings=2)
    assert asked == [3_000] and capacity == 3_000


def test_when_the_first_step_misses_the_starting_rate_stands_unless_a_halving_holds():
    measure, asked = _worker_lagging_from(2_300)
    capacity, _ = search_live_capacity(measure, 2_000, 1_995.0, 1_000, 20_000, halvings=2)
    assert asked == [3_000, 2_500, 2_250] and capacity == 2_250
    measure, asked = _worker_lagging_from(2_100)
    capacity, _ = search_live_capacity(measure, 2_000, 1_995.0, 1_000, 20_000, halvings=2)
    assert asked == [3_000, 2_500, 2_250] and capacity == 1_995.0
