"""Suspicion rules on hand-made meters, as a supervisor would check them: fakes are
caught, and real sites (noisy, rounded, with pumps at night, on holidays, across a
meter swap) are left alone."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sitepulse.agents.core.calendar import WorkCalendar
from sitepulse.agents.core.daily import DailyEnergyBook, MeterReading, epoch_ms
from sitepulse.agents.core.indicators import ProjectTimeline
from sitepulse.agents.core.suspicion import (
    Carried,
    DayLook,
    Look,
    MonthActivity,
    Reason,
    day_shape,
    flat_investment_verdict,
    same_profile,
    suspicions,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar()
FIRST = date(2026, 3, 2)  # a Monday, after the Spring Festival


def working_kw(hour: float) -> float:
    """A construction day: work 07-18 with a lunch dip, a little lighting at night."""
    if 7 <= hour < 18:
        return 60.0 if 12 <= hour < 13 else 150.0
    return 8.0


@dataclass
class Site:
    """A site's meters, day by day: ``kw_of(day, hour)`` (None: the normal curve) is the
    load, read every ``interval_s`` with ``noise`` (uniform, as a share) and rounded
    to ``decimals`` of a kWh."""

    interval_s: int = 900
    noise: float = 0.15
    decimals: int = 2
    night_base_kw: float = 0.0  # pumps, dewatering: day and night
    seed: int = 1
    meters: tuple[str, ...] = ("M1",)
    # day -> kw(hour), an exact kW (float), or ("copy", day[, scale])
    overrides: dict[date, object] = field(default_factory=dict)
    book: DailyEnergyBook = field(default_factory=lambda: DailyEnergyBook(SHANGHAI, keep_days=400))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.sent: dict[tuple[str, date], list[float]] = {}

    def normal_kw(self, day: date, hour: float) -> float:
        if not CALENDAR.is_working_day("P", day):
            return self.night_base_kw + 8.0
        return self.night_base_kw + working_kw(hour)

    def readings(self, day: date) -> list[MeterReading]:
        start = datetime.combine(day, time(), SHANGHAI)
        slots = 86_400 // self.interval_s
        out = []
        for meter in self.meters:
            override = self.overrides.get(day)
            if isinstance(override, tuple):  # the readings of another day, sent again
                energies = list(self.sent[(meter, override[1])])
                if len(override) > 2:
                    energies = [round(e * override[2], self.decimals) for e in energies]
            elif isinstance(override, float):  # a fed signal: the same energy every interval
                energies = [round(override / len(self.meters) * self.interval_s / 3600, self.decimals)] * slots
            else:
                energies = []
                for slot in range(slots):
                    hour = slot * self.interval_s / 3600
                    kw = override(hour) if override else self.normal_kw(day, hour)
                    energy = kw / len(self.meters) * self.interval_s / 3600 * self.rng.uniform(1 - self.noise, 1 + self.noise)
                    energies.append(round(energy, self.decimals))
            self.sent[(meter, day)] = energies
            for slot, kwh in enumerate(energies):
                ts = start + timedelta(seconds=(slot + 1) * self.interval_s)
                out.append(MeterReading("P", meter, epoch_ms(ts), self.interval_s, kwh))
        return out

    def judge(self, first: date, last: date, capacity_kva: float = 300.0) -> dict[date, object]:
        timeline = ProjectTimeline("P", capacity_kva, CALENDAR)
        day = first
        while day <= last:
            readings = self.readings(day)
            keys = set()
            for reading in readings:
                key = self.book.day_of(reading)
                if self.book.missing([key]):
                    self.book.load(key, ())
                keys.add(self.book.add(reading, key))
            for key in keys:
                timeline.set_day(self.book.total(key))
            day += timedelta(days=1)
        self.timeline = timeline
        return {d.day: d for d in timeline.evaluate()}


def constant(kw: float):
    return lambda hour: kw


def working_days(first: date, count: int) -> list[date]:
    days, day = [], first
    while len(days) < count:
        if CALENDAR.is_working_day("P", day):
            days.append(day)
        day += timedelta(days=1)
    return days


def found(result: dict[date, object]) -> dict[date, tuple[str, date]]:
    return {day: (d.suspicion.reason.value, d.suspicion.since) for day, d in result.items() if d.suspicion}


# --- The shape of a day ---------------------------------------------------------------


def test_a_working_day_has_shape_and_a_constant_load_with_jitter_has_none():
    site = Site()
    day = date(2026, 3, 4)
    start, end = epoch_ms(datetime.combine(day, time(), SHANGHAI)), epoch_ms(datetime.combine(day + timedelta(days=1), time(), SHANGHAI))
    normal = day_shape([(r.meter_id, r.ts_ms, r.kwh, r.interval_s) for r in site.readings(day)], start, end)
    assert normal.load_cv > 0.6 and normal.day_night > 5
    site.overrides[day] = constant(45.0)
    site.noise = 0.015
    flat = day_shape([(r.meter_id, r.ts_ms, r.kwh, r.interval_s) for r in site.readings(day)], start, end)
    assert flat.load_cv < 0.02 and 0.95 < flat.day_night < 1.05
    assert [f.meter_id for f in flat.fingerprints] == ["M1"] and len(flat.fingerprints[0].shape) == 48


def test_a_day_with_a_gap_has_no_shape():
    site = Site()
    day = date(2026, 3, 4)
    readings = site.readings(day)[:-8]  # the last two hours never came
    start, end = epoch_ms(datetime.combine(day, time(), SHANGHAI)), epoch_ms(datetime.combine(day + timedelta(days=1), time(), SHANGHAI))
    shape = day_shape([(r.meter_id, r.ts_ms, r.kwh, r.interval_s) for r in readings], start, end)
    assert shape.load_cv is None and shape.fingerprints == ()


# --- Constant load ----------------------------------------------------------------------


def test_idle_machines_on_working_days_are_suspicious_from_the_first_day_of_the_run():
    site = Site()
    faked = working_days(date(2026, 4, 6), 3)
    for day in faked:
        site.overrides[day] = constant(50.0)
    result = site.judge(FIRST, date(2026, 4, 10))
    assert {day: reason for day, (reason, _) in found(result).items()} == dict.fromkeys(faked, "constant_load")
    assert {since for _, since in found(result).values()} == {faked[0]}  # one run, one id
    assert result[faked[0]].suspicion.usual_cv > 0.5 and result[faked[0]].suspicion.load_cv < 0.1


def test_a_constant_load_with_metering_jitter_and_rounding_is_caught_on_15_minute_and_hourly_meters():
    for interval_s in (900, 3600):
        site = Site(interval_s=interval_s)
        faked = working_days(date(2026, 4, 6), 4)
        for day in faked:
            # a real meter on a constant machine load: 2 % jitter, readings to 0.01 kWh
            site.overrides[day] = lambda hour, rng=random.Random(interval_s): 40.0 * rng.uniform(0.98, 1.02)
        result = site.judge(FIRST, date(2026, 4, 12))
        assert set(found(result)) == set(faked), interval_s


def test_a_single_flat_working_day_or_a_flat_night_stretch_is_not_suspicious():
    site = Site()
    site.overrides[date(2026, 4, 7)] = constant(50.0)  # one day only
    site.overrides[date(2026, 4, 9)] = lambda hour: 50.0 if hour < 10 else working_kw(hour)  # flat until 10:00, then work
    result = site.judge(FIRST, date(2026, 4, 14))
    assert found(result) == {}


def test_pumps_at_night_and_a_normal_working_day_are_not_suspicious():
    site = Site(night_base_kw=60.0)  # dewatering around the clock
    result = site.judge(FIRST, date(2026, 5, 8))
    assert found(result) == {}


def test_a_flat_holiday_is_not_suspicious():
    """Labour Day: only the pumps run, at a load the baseline calls work."""
    site = Site(night_base_kw=0.0)
    for day in (date(2026, 5, 1) + timedelta(days=n) for n in range(5)):
        site.overrides[day] = constant(45.0)
    result = site.judge(FIRST, date(2026, 5, 8))
    assert not CALENDAR.is_working_day("P", date(2026, 5, 4))
    assert found(result) == {}


def test_a_site_whose_normal_days_have_no_shape_is_not_judged_for_a_constant_load():
    """A tunnel boring machine works round the clock: its days are flat by nature."""
    site = Site(noise=0.05)
    for n in range(70):
        site.overrides[FIRST + timedelta(days=n)] = constant(120.0)
    result = site.judge(FIRST, FIRST + timedelta(days=69))
    assert found(result) == {}


def test_an_idle_site_drawing_little_is_stalled_not_suspicious():
    site = Site()
    for day in working_days(date(2026, 4, 6), 5):
        site.overrides[day] = constant(5.0)  # lights only: the stall rule's business
    result = site.judge(FIRST, date(2026, 4, 14))
    assert found(result) == {}
    assert result[date(2026, 4, 10)].machine.state == "stalled"


def test_the_constant_load_run_keeps_its_first_day_when_old_days_are_folded_away():
    site = Site()
    faked = working_days(date(2026, 4, 6), 30)
    for day in faked:
        site.overrides[day] = constant(50.0)
    result = site.judge(FIRST, faked[-1])
    timeline = site.timeline
    timeline.forget_before(faked[10])
    after = {d.day: d for d in timeline.evaluate()}
    assert after[faked[-1]].suspicion.since == faked[0] == result[faked[-1]].suspicion.since
    assert Carried.decode(timeline.carried.encode()) == timeline.carried


# Each rule examined, or examined and found, or neither, on each day.
_LOOK_BITS = st.builds(
    lambda flat, constant, copy: flat | constant | copy,
    st.sampled_from([0, Look.FLAT_EXAMINED, Look.FLAT_EXAMINED | Look.FLAT]),
    st.sampled_from([0, Look.CONSTANT_EXAMINED, Look.CONSTANT_EXAMINED | Look.CONSTANT]),
    st.sampled_from([0, Look.COPY_EXAMINED, Look.COPY_EXAMINED | Look.COPY]),
)


def _looks(bits: list[int]) -> list[DayLook]:
    return [
        DayLook(FIRST + timedelta(days=n), look, "M1" if look & Look.COPY else "", FIRST if look & Look.COPY else None, 0.01 * n, 0.3)
        for n, look in enumerate(bits)
    ]


@given(
    st.lists(_LOOK_BITS, min_size=1, max_size=30),
    st.lists(_LOOK_BITS, max_size=12),
    st.integers(0, 30),
    st.sampled_from([Carried(), Carried(((Reason.CONSTANT_LOAD, FIRST - timedelta(days=3)),), 1), Carried(((Reason.EXACT_FLAT, FIRST - timedelta(days=1)),), 0)]),
)
@settings(max_examples=400, deadline=None)
def test_runs_resumed_from_known_days_find_what_a_pass_over_every_day_finds(before, changed, kept, carried):
    """A timeline judged again from its first changed day keeps the days before it as
    found; whatever the later days now say (a constant load that now lasts, or no longer
    does), every day's finding and open runs are those of a pass over all days."""
    kept = min(kept, len(before))
    earlier = _looks(before)
    known = list(zip(*suspicions(earlier, carried)))[:kept]
    now = _looks(before[:kept] + changed)
    assert suspicions(now, carried, known) == suspicions(now, carried)


# --- Exact flat and copied days -----------------------------------------------------------


def test_an_exactly_flat_day_is_suspicious_on_its_own_even_without_history():
    site = Site()
    site.overrides[date(2026, 3, 3)] = 40.0
    result = site.judge(FIRST, date(2026, 3, 4))
    assert found(result) == {date(2026, 3, 3): ("exact_flat", date(2026, 3, 3))}


def test_yesterdays_readings_sent_again_are_copied_data():
    site = Site()
    site.overrides[date(2026, 3, 18)] = ("copy", date(2026, 3, 17))
    site.overrides[date(2026, 3, 19)] = ("copy", date(2026, 3, 17), 1.02)  # rescaled and re-rounded
    site.overrides[date(2026, 3, 25)] = ("copy", date(2026, 3, 18))  # last week's day
    result = site.judge(FIRST, date(2026, 3, 27))
    assert found(result) == {
        date(2026, 3, 18): ("copied", date(2026, 3, 18)),
        date(2026, 3, 19): ("copied", date(2026, 3, 18)),
        date(2026, 3, 25): ("copied", date(2026, 3, 25)),
    }
    assert result[date(2026, 3, 19)].suspicion.copied_from == date(2026, 3, 18)
    assert result[date(2026, 3, 25)].suspicion.meter_id == "M1"


def test_a_copy_is_found_per_meter_and_a_quiet_meter_is_not_compared():
    site = Site(meters=("M1", "M2"))
    result = site.judge(FIRST, date(2026, 3, 20))
    assert found(result) == {}
    site = Site(meters=("M1", "M2"), seed=2)
    original = site.readings
    copied = date(2026, 3, 18)

    def one_meter_copied(day):
        readings = original(day)
        if day != copied:
            return readings
        yesterday = {r.ts_ms + 86_400_000: r.kwh for r in site.previous if r.meter_id == "M2"}
        return [MeterReading(r.project_id, r.meter_id, r.ts_ms, r.interval_s, yesterday[r.ts_ms]) if r.meter_id == "M2" else r for r in readings]

    def remember(day):
        readings = one_meter_copied(day)
        site.previous = readings
        return readings

    site.readings = remember
    result = site.judge(FIRST, date(2026, 3, 20))
    assert found(result) == {copied: ("copied", copied)}
    assert result[copied].suspicion.meter_id == "M2"


def test_two_real_days_never_match_but_a_copy_within_rounding_does():
    site = Site(noise=0.03)  # a quiet site: 3 % noise
    shapes = []
    for n in range(20):
        day = FIRST + timedelta(days=n)
        start = epoch_ms(datetime.combine(day, time(), SHANGHAI))
        shape = day_shape([(r.meter_id, r.ts_ms, r.kwh, r.interval_s) for r in site.readings(day)], start, start + 86_400_000)
        shapes.append(shape.fingerprints[0].shape)
    assert not any(same_profile(a, b) for i, a in enumerate(shapes) for b in shapes[i + 1 :] if a != b)
    assert same_profile(shapes[3], shapes[3])


@given(
    st.lists(st.integers(0, 65_535), min_size=24, max_size=24),
    st.sets(st.integers(0, 23), max_size=4),
    st.sets(st.integers(0, 23), max_size=4),
)
@example([40_000] * 20 + [0] * 4, {0}, set())  # one miss among 20 working hours: a copy
@example([40_000] * 24, {0, 1}, {2})  # two misses among 24: a copy
@example([40_000] * 24, {0, 1, 2}, set())  # three among 24: not a copy
@settings(max_examples=300, deadline=None)
def test_a_day_repeats_another_exactly_when_few_enough_working_hours_differ(hours, missed, edited_within):
    """The copy rule as stated: over the hours at a quarter of the peak or more in either
    day (six at least), at most one in twelve differs by more than half a percent."""
    earlier = list(hours)
    for hour in edited_within:
        earlier[hour] = round(hours[hour] * 0.997)
    for hour in missed:
        earlier[hour] = round(hours[hour] * 0.98)
    active = [(a, b) for a, b in zip(hours, earlier) if max(a, b) >= 0.25 * 65_535]
    differing = sum(abs(a - b) > 0.005 * max(a, b) for a, b in active)
    assert same_profile(struct.pack(">24H", *hours), struct.pack(">24H", *earlier)) == (len(active) >= 6 and differing <= len(active) // 12)


# --- A meter swap -------------------------------------------------------------------------


def test_a_meter_swapped_mid_day_raises_no_suspicion():
    site = Site()
    swap = date(2026, 3, 25)
    original = site.readings

    def swapped(day):
        readings = original(day)
        if day < swap:
            return readings
        noon = epoch_ms(datetime.combine(swap, time(12), SHANGHAI))
        return [r if (day == swap and r.ts_ms <= noon) else MeterReading("P", "M1-new", r.ts_ms, r.interval_s, r.kwh) for r in readings]

    site.readings = swapped
    result = site.judge(FIRST, date(2026, 4, 10))
    assert found(result) == {}


# --- A normal noisy site is never flagged -------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    noise=st.floats(0.03, 0.3),
    interval_s=st.sampled_from([900, 1800, 3600]),
    night_base_kw=st.floats(0, 80),
    decimals=st.sampled_from([2, 3]),
    seed=st.integers(0, 10_000),
    meters=st.sampled_from([("M1",), ("M1", "M2")]),
)
# A quiet meter whose lit nights matched any other night: taken for a copy once
@example(noise=0.03, interval_s=900, night_base_kw=0.0, decimals=2, seed=1, meters=("M1",))
def test_a_normal_noisy_site_is_never_flagged(noise, interval_s, night_base_kw, decimals, seed, meters):
    site = Site(interval_s=interval_s, noise=noise, night_base_kw=night_base_kw, decimals=decimals, seed=seed, meters=meters)
    # Spring Festival, then two months of ordinary work
    result = site.judge(date(2026, 2, 9), date(2026, 4, 20))
    assert found(result) == {}


# --- Flat investment ----------------------------------------------------------------------


WORKED = MonthActivity(judged_working_days=20, working_by_power=18)


def verdict(reported, activity=None, lumpy=False, months=("2026-03", "2026-04")):
    return flat_investment_verdict(months[-1], months, reported, activity or dict.fromkeys(months, WORKED), 1000.0, lumpy)


def test_power_without_investment_for_two_months_is_suspicious():
    assert verdict({"2026-03": 0.0, "2026-04": 5.0}).suspicious  # 5 万元 of a 1000 万元 month: no movement
    assert not verdict({"2026-03": 0.0, "2026-04": 300.0}).suspicious
    assert not verdict({"2026-03": 0.0, "2026-04": 0.0}, {"2026-03": WORKED, "2026-04": MonthActivity(20, 3)}).suspicious


def test_what_the_flat_investment_rule_cannot_judge_it_says():
    lumpy = verdict({"2026-03": 0.0, "2026-04": 0.0}, lumpy=True)
    assert not lumpy.suspicious and "投资不均衡" in lumpy.not_judged
    missing = verdict({"2026-04": 0.0})
    assert not missing.suspicious and "2026-03 未报送投资" in missing.not_judged
    thin = verdict({"2026-03": 0.0, "2026-04": 0.0}, {"2026-03": MonthActivity(2, 2), "2026-04": WORKED})
    assert not thin.suspicious and "2026-03" in thin.not_judged


def test_the_number_of_flat_months_is_a_setting():
    three = ("2026-02", "2026-03", "2026-04")
    assert verdict({"2026-02": 400.0, "2026-03": 0.0, "2026-04": 0.0}, months=three).suspicious is False
    assert verdict({"2026-02": 0.0, "2026-03": 0.0, "2026-04": 0.0}, months=three).suspicious


@given(st.lists(st.one_of(st.just(0.0), st.floats(1e-4, 1e6)), min_size=1, max_size=48), st.floats(0, 1e9, allow_nan=False))
@settings(max_examples=300, deadline=None)
def test_the_float_standard_deviation_is_the_exact_one_to_rounding(values, offset):
    """Hourly energies in kWh (0, or from a tenth of a watt-hour up; near-constant loads
    on a large offset included, where a one-pass formula would cancel): within rounding
    of the exact one."""
    import math
    import statistics

    from sitepulse.agents.core.suspicion import population_stdev

    shifted = [value + offset for value in values]
    for sample in (values, shifted):
        exact = statistics.pstdev(sample)
        assert math.isclose(population_stdev(sample), exact, rel_tol=1e-12, abs_tol=1e-12 * max(sample))
