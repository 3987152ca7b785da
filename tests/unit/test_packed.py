"""The packed day stores that hold a worker's weeks of days for every project: they must
answer exactly as the dicts they replaced."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from sitepulse.agents.core.daily import DailyEnergy
from sitepulse.agents.core.indicators import BaselineDay, BaselineHistory, EnergyDays

DAYS = st.dates(date(2025, 1, 1), date(2027, 12, 31))
ENERGY = st.tuples(
    st.floats(0, 1e7), st.integers(0, 100_000), st.integers(0, 50), st.integers(0, 86_400), st.integers(1, 86_400), st.booleans()
)


@given(st.lists(st.tuples(DAYS, ENERGY), max_size=80), DAYS)
def test_energy_days_hold_what_a_dict_would_and_forget_the_oldest(writes, cut):
    packed, reference = EnergyDays("NB-0001"), {}
    for day, fields in writes:
        energy = DailyEnergy("NB-0001", day, *fields)
        packed[day] = energy
        reference[day] = energy
        assert packed[day] == energy
    assert dict(packed.items()) == reference and list(packed) == sorted(reference)
    assert packed.first() == min(reference, default=None) and packed.last() == max(reference, default=None)
    packed.drop_before(cut)
    assert dict(packed.items()) == {day: energy for day, energy in reference.items() if day >= cut}


@given(st.dictionaries(DAYS, st.tuples(st.floats(0, 1e7), st.booleans()), max_size=70))
def test_baseline_history_keeps_what_baselines_read(days):
    history = BaselineHistory({day: BaselineDay(*value) for day, value in days.items()})
    assert dict(history.items()) == {day: BaselineDay(*value) for day, value in days.items()}
