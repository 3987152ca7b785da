"""Daily kWh in the project's local day: midnight boundaries, offsets, duplicates."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sitepulse.agents.core.daily import DailyEnergyBook, MeterDay, MeterReading, epoch_ms, gaps_and_flatness, local_day
from sitepulse.agents.core.suspicion import day_shape

SHANGHAI = ZoneInfo("Asia/Shanghai")


def reading(ts: str, kwh: float, meter: str = "M1", interval_s: int = 900, project: str = "P") -> MeterReading:
    return MeterReading(project, meter, epoch_ms(datetime.fromisoformat(ts)), interval_s, kwh)


def open_book(*keys, keep_days: int = 3) -> DailyEnergyBook:
    book = DailyEnergyBook(SHANGHAI, keep_days)
    for key in keys:
        book.load(key, [])
    return book


@pytest.mark.parametrize(
    ("ts", "interval_s", "day"),
    [
        ("2026-03-01T00:15:00+08:00", 900, date(2026, 3, 1)),  # first quarter of the day
        ("2026-03-02T00:00:00+08:00", 900, date(2026, 3, 1)),  # closes the previous day
        ("2026-03-01T16:00:00+00:00", 900, date(2026, 3, 1)),  # 00:00 Shanghai, sent in UTC
        ("2026-03-01T16:15:00Z", 900, date(2026, 3, 2)),
        ("2026-03-01T12:15:00-04:00", 900, date(2026, 3, 2)),  # any offset, Shanghai's day
        ("2026-03-02T00:20:00+08:00", 3600, date(2026, 3, 1)),  # 23:20-00:20: most of it before midnight
        ("2026-03-02T00:40:00+08:00", 3600, date(2026, 3, 2)),
        ("2026-03-02T00:00:00+08:00", 86400, date(2026, 3, 1)),  # a whole-day reading
    ],
)
def test_a_reading_belongs_to_the_local_day_holding_the_middle_of_its_interval(ts, interval_s, day):
    assert local_day(epoch_ms(datetime.fromisoformat(ts)), interval_s, SHANGHAI) == day


def test_a_day_sums_all_meters_and_counts_a_resent_reading_once():
    key = ("P", date(2026, 3, 1))
    book = open_book(key)
    for r in [
        reading("2026-03-01T08:15:00+08:00", 10.0),
        reading("2026-03-01T08:30:00+08:00", 11.0),
        reading("2026-03-01T08:15:00+08:00", 5.0, meter="M2"),
        reading("2026-03-01T00:15:00Z", 10.0),  # = 08:15 Shanghai on M1: the same reading again
    ]:
        assert book.add(r) == key
    total = book.total(key)
    assert (total.kwh, total.readings, total.meters) == (26.0, 3, 2)


def test_a_corrected_reading_replaces_the_first_value():
    key = ("P", date(2026, 3, 1))
    book = open_book(key)
    book.add(reading("2026-03-01T08:15:00+08:00", 10.0))
    book.add(reading("2026-03-01T08:15:00+08:00", 12.0))
    assert book.total(key).kwh == 12.0


def test_totals_do_not_depend_on_arrival_order():
    values = [0.1, 1e6, 0.2, -0.0, 0.3, 123.456, 1e-9]
    totals = []
    for order in (values, list(reversed(values))):
        key = ("P", date(2026, 3, 1))
        book = open_book(key)
        for minute, kwh in enumerate(order):
            book.add(reading(f"2026-03-01T08:{minute:02d}:00+08:00", abs(kwh), interval_s=60, meter=f"M{kwh}"))
        totals.append(book.total(key).kwh)
    assert totals[0] == totals[1]


def test_stored_readings_are_loaded_before_new_ones_are_added():
    key = ("P", date(2026, 3, 1))
    book = DailyEnergyBook(SHANGHAI, 3)
    with pytest.raises(KeyError):
        book.add(reading("2026-03-01T08:15:00+08:00", 1.0))
    stored = [reading("2026-03-01T08:15:00+08:00", 4.0), reading("2026-03-02T00:15:00+08:00", 9.0)]
    book.load(key, stored)  # the next day's reading in the store is not this day's
    book.add(reading("2026-03-01T08:30:00+08:00", 1.0))
    assert book.total(key).kwh == 5.0


def test_days_far_behind_the_newest_are_forgotten_and_must_be_reloaded():
    old, new = ("P", date(2026, 3, 1)), ("P", date(2026, 3, 10))
    book = open_book(old, new, keep_days=3)
    book.add(reading("2026-03-01T08:15:00+08:00", 1.0))
    book.add(reading("2026-03-10T08:15:00+08:00", 1.0))
    assert book.evict_old_days() == 1
    assert book.missing([old, new]) == {old}


def test_a_resent_reading_is_recognised_as_already_counted():
    book = DailyEnergyBook(SHANGHAI, 3)
    first = reading("2026-03-02T08:15:00+08:00", 2.5)
    key = book.day_of(first)
    book.load(key, ())
    assert book.add_all([first], [key]) == 0
    assert book.add_all([reading("2026-03-02T08:15:00+08:00", 2.5)], [key]) == 1, "the same reading again"
    assert book.add_all([reading("2026-03-02T08:15:00+08:00", 2.7)], [key]) == 0, "a correction is not a duplicate"
    assert book.add_all([reading("2026-03-02T08:30:00+08:00", 2.5)], [key]) == 0
    assert book.total(key).kwh == 2.7 + 2.5


def test_local_day_agrees_with_a_plain_time_zone_conversion_across_a_year():
    """The quarter-hour cache gives the same day as converting every reading."""
    from datetime import timezone as utc_zone
    from zoneinfo import ZoneInfo

    for zone in (SHANGHAI, ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/St_Johns")):
        moment = datetime(2026, 1, 1, tzinfo=utc_zone.utc)
        while moment.year == 2026:
            for interval_s in (60, 900, 3600):
                ts_ms = epoch_ms(moment)
                expected = (moment - timedelta(seconds=interval_s / 2)).astimezone(zone).date()
                assert local_day(ts_ms, interval_s, zone) == expected, (zone, moment, interval_s)
            moment += timedelta(minutes=7, seconds=30)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([900, 1800, 2700, 3600, 5400, 7_200, 86_400, 1_000, 901_500]),  # grid and off-grid seconds
            st.sampled_from([900, 60, 3600]),
            st.sampled_from([0.0, 1.5, 2.25, 7.0]),
        ),
        max_size=40,
    )
)
def test_a_meter_day_holds_what_a_plain_dict_by_time_would(operations):
    # The compact storage must behave exactly like {ts: (kwh, interval)}: one reading per
    # time, the newest replacing the older, whatever its interval or alignment.
    origin = 1_772_380_800_000
    meter, reference = MeterDay("M1", origin, 900), {}
    for seconds, interval_s, kwh in operations:
        ts_ms = origin + seconds * 1000
        meter.set_reading(ts_ms, kwh, interval_s)
        reference[ts_ms] = (kwh, interval_s)
        assert meter.reading_at(ts_ms) == (kwh, interval_s)
    assert sorted(meter.readings()) == sorted((ts, kwh, interval) for ts, (kwh, interval) in reference.items())


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-14 * 4, max_value=14 * 4),
    st.booleans(),
)
def test_epoch_ms_is_the_exact_millisecond_rounded_down_whatever_the_offset(moment, quarter_hours, whole_ms):
    if whole_ms:
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=15 * quarter_hours)))
    exact = (aware - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    assert epoch_ms(aware) == exact


@given(
    st.lists(
        st.tuples(st.integers(-2, 100), st.sampled_from([0.0, 1.5, 2.25, 7.0]), st.sampled_from([900, 900, 900, 60, 1800]), st.sampled_from([0, 0, 0, 17_000])),
        max_size=60,
    )
)
def test_putting_a_reading_is_setting_it_and_says_when_it_was_held(readings):
    """The one-step ``put`` of the hot path keeps what ``set_reading`` keeps, and is
    true exactly when the same reading (time, energy, interval) was there before."""
    origin = 1_772_294_400_000
    quick, careful = MeterDay("M1", origin, 900), MeterDay("M1", origin, 900)
    for quarter, kwh, interval_s, off_grid_ms in readings:
        ts_ms = origin + quarter * 900_000 + off_grid_ms
        was_held = careful.reading_at(ts_ms) == (kwh, interval_s)
        careful.set_reading(ts_ms, kwh, interval_s)
        assert quick.put(ts_ms, kwh, interval_s) == was_held
        assert sorted(quick.readings()) == sorted(careful.readings())


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["M1", "M1", "M2"]),
            st.integers(0, 97),  # quarter hours after the day's start
            st.sampled_from([0.0, 3.5, 3.5, 4.25]),
            st.sampled_from([900, 900, 900, 1800, 60]),
            st.sampled_from([0, 0, 0, 0, 420_000]),  # off the grid
        ),
        max_size=120,
    ),
    st.sampled_from([None, 3.5, 0.0]),  # a whole day of one energy on M1 first
    st.integers(0, 97),  # then M3's first intervals in order, as live readings come
)
def test_a_day_total_is_what_the_walk_over_its_readings_gives(readings, full_day, in_order):
    """The array summary of on-grid meters gives the same total, counts, longest gap and
    flat load as walking over every reading (the general path and the definition), for
    meters filled in order from the first interval and for meters with holes."""
    day = date(2026, 3, 2)
    start_ms = epoch_ms(datetime(2026, 3, 2, tzinfo=SHANGHAI))
    end_ms = start_ms + 86_400_000
    book = open_book(("P", day))
    wanted = [] if full_day is None else [("M1", start_ms + (q + 1) * 900_000, full_day, 900) for q in range(96)]
    wanted += [("M3", start_ms + (q + 1) * 900_000, 0.1 * (q % 7) + 2.0, 900) for q in range(in_order)]
    wanted += [(meter, start_ms + (q + 1) * 900_000 + off, kwh, interval) for meter, q, kwh, interval, off in readings]
    for meter, ts_ms, kwh, interval_s in wanted:
        reading_ = MeterReading("P", meter, ts_ms, interval_s, kwh)
        if book.day_of(reading_) == ("P", day):
            book.add(reading_)
    total = book.total(("P", day))
    held = [(m.meter_id, ts, kwh, interval) for m in book._days[("P", day)] for ts, kwh, interval in m.readings()]
    assert total.readings == len(held) and total.meters == len({r[0] for r in held})
    assert total.kwh == math.fsum(r[2] for r in held)
    assert total.interval_s == min((r[3] for r in held), default=0)
    assert (total.max_gap_s, total.flat_load) == gaps_and_flatness(held, start_ms, end_ms)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([900, 900, 300, 1800, 3600, 2400]),  # 40 minutes do not divide an hour
            st.lists(st.floats(0, 500, allow_nan=False, allow_infinity=False), min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin"]),
    st.sampled_from([date(2026, 3, 2), date(2026, 3, 29), date(2026, 10, 25)]),  # Berlin: 24 h, 23 h, 25 h
)
def test_a_whole_days_shape_is_what_the_walk_over_its_readings_gives(meters, zone, day):
    """Meters that cover a day in full on their grid (a 23- or 25-hour day too): the day
    total's hourly variation, day/night ratio and fingerprints are those ``day_shape``
    finds walking over every reading, to the bit."""
    tz = ZoneInfo(zone)
    book = DailyEnergyBook(tz, 3)
    book.load(("P", day), [])
    start_ms = epoch_ms(datetime.combine(day, datetime.min.time(), tz))
    end_ms = epoch_ms(datetime.combine(day + timedelta(days=1), datetime.min.time(), tz))
    held = []
    for number, (interval_s, values) in enumerate(meters):
        for slot in range((end_ms - start_ms) // (interval_s * 1000)):
            reading_ = MeterReading("P", f"M{number}", start_ms + (slot + 1) * interval_s * 1000, interval_s, values[slot % len(values)] + slot % 5)
            book.add(reading_, ("P", day))
            held.append((reading_.meter_id, reading_.ts_ms, reading_.kwh, interval_s))
    total = book.total(("P", day))
    if total.max_gap_s:
        return  # an interval that does not divide the day: no shape either way
    shape = day_shape(held, start_ms, end_ms)
    assert (total.load_cv, total.day_night, total.fingerprints) == (shape.load_cv, shape.day_night, shape.fingerprints)
