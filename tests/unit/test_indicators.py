"""The indicator core on hand-made series, as a supervisor would check them."""

from __future__ import annotations

import struct
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sitepulse.agents.core.calendar import Stoppage, WorkCalendar
from sitepulse.agents.core.daily import DailyEnergy, DailyEnergyBook, MeterReading, day_start_ms, epoch_ms, gaps_and_flatness
from sitepulse.agents.core.indicators import (
    DAILY_LOAD_FACTOR,
    RETAINED_DAYS,
    DayLabel,
    ProjectTimeline,
    State,
    stalled_working_days,
)
from sitepulse.agents.core.judge import Judge
from sitepulse.agents.core.offline import EventClock, MeterWatch
from sitepulse.agents.core.suspicion import MeterFingerprint

CALENDAR = WorkCalendar()
SHANGHAI = ZoneInfo("Asia/Shanghai")
NORMAL = 1000.0
NORMAL_CAPACITY_KVA = NORMAL / (DAILY_LOAD_FACTOR * 24)  # whose default baseline is NORMAL


def day_input(day: date, kwh: float, *, meters: int = 1, gap_s: int = 0, flat: bool = False) -> DailyEnergy:
    return DailyEnergy("P", day, kwh, 96 * meters, meters, gap_s, 900, flat)


def run(
    series: dict[date, float],
    capacity_kva: float = NORMAL_CAPACITY_KVA,
    calendar: WorkCalendar = CALENDAR,
    overrides: dict[date, DailyEnergy] | None = None,
) -> dict[date, object]:
    timeline = ProjectTimeline("P", capacity_kva, calendar)
    for day, kwh in series.items():
        timeline.set_day((overrides or {}).get(day) or day_input(day, kwh))
    return {d.day: d for d in timeline.evaluate()}


def working_history(first: date, last: date, kwh_on=lambda day: NORMAL) -> dict[date, float]:
    """Every day from first to last: NORMAL on working days, a tenth of it on days off."""
    days, day = {}, first
    while day <= last:
        days[day] = kwh_on(day) if CALENDAR.is_workday(day) else NORMAL * 0.1
        day += timedelta(days=1)
    return days


def labels(result, first: date, last: date) -> list[str]:
    return [result[first + timedelta(days=n)].label.value for n in range((last - first).days + 1)]


def test_spring_festival_week_with_tiaoxiu_saturdays_is_no_stall():
    series = working_history(date(2026, 1, 5), date(2026, 3, 6))
    result = run(series)
    assert result[date(2026, 2, 14)].working_day and result[date(2026, 2, 28)].working_day  # 调休 Saturdays
    assert not result[date(2026, 2, 18)].working_day
    assert all(d.label != DayLabel.STALLED for d in result.values())
    assert result[date(2026, 3, 6)].label == DayLabel.STARTED


def test_a_three_day_dip_opens_a_stall_on_its_third_working_day_not_before():
    dip = {date(2026, 3, 19), date(2026, 3, 20), date(2026, 3, 23)}  # Thu, Fri, (weekend), Mon
    series = working_history(date(2026, 2, 24), date(2026, 3, 25), lambda d: NORMAL * 0.1 if d in dip else NORMAL)
    result = run(series)
    assert result[date(2026, 3, 19)].label == DayLabel.STARTED
    assert result[date(2026, 3, 20)].label == DayLabel.STARTED
    assert result[date(2026, 3, 23)].label == DayLabel.STALLED
    assert result[date(2026, 3, 23)].activity_index < 0.2


def test_a_one_day_dip_changes_nothing():
    series = working_history(date(2026, 2, 24), date(2026, 3, 25), lambda d: NORMAL * 0.05 if d == date(2026, 3, 18) else NORMAL)
    assert all(d.label == DayLabel.STARTED for d in run(series).values())


def test_a_stall_closes_only_after_two_working_days_above_the_started_threshold():
    low = {date(2026, 3, 16), date(2026, 3, 17), date(2026, 3, 18), date(2026, 3, 19)}
    series = working_history(
        date(2026, 2, 24), date(2026, 3, 25),
        lambda d: NORMAL * 0.1 if d in low else (NORMAL * 0.25 if d == date(2026, 3, 20) else NORMAL),
    )
    result = run(series)
    # Stall from the 18th; the 20th (0.25) is not enough; Mon 23rd is one good day; Tue 24th closes it.
    assert labels(result, date(2026, 3, 17), date(2026, 3, 24)) == [
        "started", "stalled", "stalled", "stalled", "stalled", "stalled", "stalled", "started"
    ]


def test_a_silent_meter_makes_offline_days_not_a_stall():
    silent = {date(2026, 3, 18), date(2026, 3, 19), date(2026, 3, 20), date(2026, 3, 23)}
    series = working_history(date(2026, 2, 24), date(2026, 3, 24))
    overrides = {d: day_input(d, 0.0, gap_s=86_400) for d in silent}
    result = run(series, overrides=overrides)
    assert {result[d].label for d in silent} == {DayLabel.OFFLINE}
    assert all(result[d].activity_index is None for d in silent)
    assert result[date(2026, 3, 24)].label == DayLabel.STARTED


def test_the_offline_timer_fires_in_event_time_and_when_the_whole_stream_is_quiet():
    watch, clock = MeterWatch(), EventClock(idle_after_s=60)
    t0 = epoch_ms(datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI))
    watch.seen("A", "M1", t0, 900)
    watch.seen("B", "M1", t0, 900)
    clock.observe(t0, wall_s=0)
    # B keeps reporting for 45 minutes; A is silent: after 2 missed intervals, A is offline.
    for quarter in (1, 2, 3):
        watch.seen("B", "M1", t0 + quarter * 900_000, 900)
        clock.observe(t0 + quarter * 900_000, wall_s=quarter)
        changes = watch.overdue(clock.now_ms(wall_s=quarter))
        assert [c.project_id for c in changes] == (["A"] if quarter == 3 else [])
    # Then everything goes quiet: after a minute, wall time moves the clock, and B goes offline too.
    assert watch.overdue(clock.now_ms(wall_s=30)) == []
    assert [c.project_id for c in watch.overdue(clock.now_ms(wall_s=3 + 1801))] == ["B"]
    back = watch.seen("A", "M1", t0 + 4 * 900_000, 900)
    assert back is not None and back.offline is False and not watch.is_offline("A", "M1")


def test_the_clock_waits_for_the_slowest_partition_until_it_goes_idle():
    clock = EventClock(idle_after_s=30)
    clock.expect({0, 1, 2}, wall_s=0)
    clock.observe(1_000_000, wall_s=1, source=0)
    assert clock.now_ms(wall_s=1) is None  # partitions 1 and 2 have said nothing yet
    clock.observe(500_000, wall_s=2, source=1)
    clock.observe(9_000_000, wall_s=2, source=0)  # partition 0 runs ahead
    assert clock.now_ms(wall_s=10) is None
    assert clock.now_ms(wall_s=31) == 500_000  # partition 2 is idle (nothing for 30 s): the slowest active one counts
    clock.observe(700_000, wall_s=31, source=1)
    assert clock.now_ms(wall_s=32) == 700_000
    assert clock.now_ms(wall_s=33) == 700_000 and clock.newest_of(0) == 9_000_000
    assert clock.now_ms(wall_s=70) == 9_000_000 + (70 - 31) * 1000  # all quiet: wall time moves it
    clock.observe(800_000, wall_s=71, source=1)
    assert clock.now_ms(wall_s=71) == 9_000_000 + 39_000  # never goes back


def test_a_day_batch_moves_its_partition_only_to_its_first_reading():
    # One partition carries a batch of project A's whole day, then project B's batch of
    # the same day: until B's batch is read, B's meter (last read at midnight) is not late.
    midnight = epoch_ms(datetime(2026, 3, 22, tzinfo=SHANGHAI))
    watch, clock = MeterWatch(), EventClock(idle_after_s=30)
    clock.expect({0}, wall_s=0)
    watch.seen("B", "M1", midnight, 900)
    for quarter in range(1, 97):
        clock.observe(midnight + quarter * 900_000, wall_s=1, source=0, message_start_ms=midnight + 900_000)
    assert clock.now_ms(wall_s=2) == midnight + 900_000
    assert watch.overdue(clock.now_ms(wall_s=2)) == []
    assert clock.newest_of(0) == midnight + 96 * 900_000
    # Once the stream is quiet, wall time moves the clock on from the newest reading.
    assert clock.now_ms(wall_s=40) == midnight + 96 * 900_000 + 39_000


def test_a_flat_24_hour_load_is_suspicious():
    day = date(2026, 3, 18)
    start = epoch_ms(datetime(2026, 3, 18, tzinfo=SHANGHAI))
    readings = [("M1", start + q * 900_000, 50.0, 900) for q in range(1, 97)]
    gap_s, flat = gaps_and_flatness(readings, start, start + 86_400_000)
    assert (gap_s, flat) == (0, True)
    varied = [(m, ts, kwh + (ts % 7) * 0.1, i) for m, ts, kwh, i in readings]
    assert gaps_and_flatness(varied, start, start + 86_400_000) == (0, False)
    series = working_history(date(2026, 2, 24), date(2026, 3, 19))
    result = run(series, overrides={day: day_input(day, NORMAL, flat=True)})
    assert result[day].suspicious and result[day].label == DayLabel.STARTED
    assert not result[date(2026, 3, 17)].suspicious


def test_gaps_are_measured_per_meter_across_the_day():
    start = epoch_ms(datetime(2026, 3, 18, tzinfo=SHANGHAI))
    readings = [("M1", start + q * 900_000, 5.0 + q, 900) for q in range(1, 97) if not 40 <= q <= 43]
    assert gaps_and_flatness(readings, start, start + 86_400_000)[0] == 4 * 900
    silent_from_noon = [r for r in readings if r[1] <= start + 12 * 3_600_000]
    assert gaps_and_flatness(silent_from_noon, start, start + 86_400_000)[0] == 12 * 3600


def test_a_meter_reset_never_makes_negative_energy():
    # The register falls to 0 at 08:30; daily energy is the sum of interval energies.
    book = DailyEnergyBook(SHANGHAI, 3)
    key = ("P", date(2026, 3, 18))
    book.load(key, [])
    registers = [90_000.0, 90_010.0, 10.0, 20.0]
    for q, register in enumerate(registers, start=1):
        ts = epoch_ms(datetime(2026, 3, 18, 8, 0, tzinfo=SHANGHAI)) + q * 900_000
        book.add(MeterReading("P", "M1", ts, 900, 10.0))
    assert book.total(key).kwh == 40.0


def test_a_new_project_uses_its_capacity_until_ten_working_days_of_history():
    first = date(2026, 3, 2)
    series = working_history(first, first + timedelta(days=20), lambda d: 630 * DAILY_LOAD_FACTOR * 24)
    result = run(series, capacity_kva=630)
    capacity_baseline = 630 * DAILY_LOAD_FACTOR * 24
    assert result[first].baseline_kwh == capacity_baseline
    assert result[first].machine.state == State.STARTED
    tenth_working_day = [d for d in sorted(result) if result[d].working_day][9]
    assert result[tenth_working_day].baseline_kwh == capacity_baseline
    later = [d for d in sorted(result) if result[d].working_day][11]
    assert result[later].baseline_kwh == capacity_baseline  # median of the same weekdays: the same energy


def test_an_approved_stoppage_is_not_a_stall_and_not_in_the_baseline():
    halt = Stoppage("P", date(2026, 3, 16), date(2026, 3, 20), "防汛停工令")
    calendar = WorkCalendar(stoppages=[halt])
    series = working_history(date(2026, 2, 24), date(2026, 3, 27), lambda d: NORMAL * 0.05 if halt.covers(d) else NORMAL)
    result = run(series, calendar=calendar)
    assert {result[d].label for d in result if halt.covers(d)} == {DayLabel.STOPPAGE}
    assert result[date(2026, 3, 23)].label == DayLabel.STARTED
    assert result[date(2026, 3, 23)].baseline_kwh == NORMAL


def test_a_project_that_never_draws_power_stays_not_started():
    series = working_history(date(2026, 3, 2), date(2026, 3, 27), lambda d: 10.0)
    result = run(series, capacity_kva=630)
    assert {d.label for d in result.values()} == {DayLabel.NOT_STARTED}


daily_energy = st.lists(st.floats(min_value=0, max_value=2 * NORMAL, allow_nan=False), min_size=30, max_size=80)


@settings(max_examples=200, deadline=None)
@given(daily_energy)
def test_states_never_flap_faster_than_the_hysteresis_allows(energies):
    first = date(2026, 3, 2)
    series = {first + timedelta(days=n): kwh for n, kwh in enumerate(energies)}
    evaluated = run(series, capacity_kva=500)
    previous, working_days_since_change = State.NOT_STARTED, 0
    for day in sorted(series):
        indicators = evaluated[day]
        if indicators.working_day:
            working_days_since_change += 1
        state = indicators.machine.state
        if state != previous:
            if (previous, state) == (State.STARTED, State.STALLED):
                assert working_days_since_change >= 3, day
            elif (previous, state) == (State.STALLED, State.STARTED):
                assert working_days_since_change >= 2, day
            else:
                assert (previous, state) == (State.NOT_STARTED, State.STARTED)
            working_days_since_change = 0
        previous = state


@settings(max_examples=100, deadline=None)
@given(daily_energy, st.randoms(use_true_random=False))
def test_the_same_days_in_any_order_give_the_same_indicators(energies, rng):
    first = date(2026, 3, 2)
    inputs = [day_input(first + timedelta(days=n), kwh) for n, kwh in enumerate(energies)]
    shuffled = list(inputs)
    rng.shuffle(shuffled)
    timelines = []
    for order in (inputs, shuffled, inputs):
        timeline = ProjectTimeline("P", 500, CALENDAR)
        for day in order:
            timeline.set_day(day)
        timelines.append(timeline.evaluate())
    assert timelines[0] == timelines[1] == timelines[2]


def test_folding_old_days_into_the_anchor_changes_no_later_indicator():
    series = working_history(date(2026, 1, 5), date(2026, 5, 29), lambda d: NORMAL * (0.1 if d.day in (11, 12, 13, 14, 15) else 1))
    full = run(series)
    timeline = ProjectTimeline("P", NORMAL_CAPACITY_KVA, CALENDAR)
    for day, kwh in series.items():
        timeline.set_day(day_input(day, kwh))
        if day.day == 1:
            timeline.forget_before(day - timedelta(days=10))
    folded = {d.day: d for d in timeline.evaluate()}
    assert folded and all(folded[day] == full[day] for day in folded)


def test_a_stall_is_measured_in_working_days_from_the_day_it_opened():
    # Idle from Thu Mar 19: the stall opens Mon Mar 23; by Tue Mar 31 it has lasted 7 working days.
    series = working_history(date(2026, 2, 24), date(2026, 3, 31), lambda d: NORMAL * 0.1 if d >= date(2026, 3, 19) else NORMAL)
    timeline = ProjectTimeline("P", NORMAL_CAPACITY_KVA, CALENDAR)
    for day, kwh in series.items():
        timeline.set_day(day_input(day, kwh))
    evaluated = timeline.evaluate()
    assert stalled_working_days(evaluated) == 7
    assert stalled_working_days([d for d in evaluated if d.day <= date(2026, 3, 22)]) == 0
    assert stalled_working_days([d for d in evaluated if d.day <= date(2026, 3, 23)]) == 1


# --- Incremental evaluation: resuming at the first changed day changes nothing ----------

_PATTERNS = [
    struct.pack(">24H", *(65535 if 8 <= hour < 18 else 3000 + 400 * hour for hour in range(24))),
    struct.pack(">24H", *(65535 if 7 <= hour < 20 else 9000 for hour in range(24))),
    struct.pack(">24H", *(20000 + 1900 * hour for hour in range(24))),
]
_one_day = st.tuples(
    st.sampled_from([0.0, NORMAL * 0.05, NORMAL * 0.25, NORMAL, NORMAL * 1.3]),  # kWh
    st.sampled_from([1, 1, 1, 2]),  # meters
    st.sampled_from([0, 0, 0, 7200]),  # longest gap
    st.booleans(),  # flat load
    st.sampled_from([None, 0.01, 0.05, 0.4]),  # hourly variation
    st.sampled_from([None, 0, 1, 2]),  # which profile its meter repeats (None: none)
)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("next"), _one_day),
        st.tuples(st.just("late"), st.integers(1, 12), _one_day),  # a correction to a day already set
        st.tuples(st.just("stoppage"), st.integers(0, 10), st.integers(0, 6)),
        st.tuples(st.just("capacity"), st.sampled_from([NORMAL_CAPACITY_KVA, NORMAL_CAPACITY_KVA * 3])),
        st.tuples(st.just("fold"), st.integers(8, 20)),  # keep this many days, as the judge does past its window
    ),
    min_size=5,
    max_size=45,
)


def _day(day: date, drawn: tuple) -> DailyEnergy:
    kwh, meters, gap_s, flat, load_cv, pattern = drawn
    fingerprints = () if pattern is None else (MeterFingerprint("M1", _PATTERNS[pattern]),)
    day_night = None if load_cv is None else 3.0
    return DailyEnergy("P", day, kwh, 96 * meters, meters, gap_s, 900, flat, load_cv, day_night, fingerprints)


_SILENT_DAY, _TWO_METERS = (0.0, 1, 0, False, None, None), (0.0, 2, 0, False, None, None)


@settings(max_examples=80, deadline=None)
@given(st.lists(_one_day, max_size=30), _steps)
# Found by this test: the one day with two meters folded away, the usual count falls to
# one, and the days kept after it are no longer offline.
@example([_SILENT_DAY] * 15 + [_TWO_METERS] + [_SILENT_DAY] * 5, [("next", _SILENT_DAY)] * 4 + [("fold", 8)])
def test_resuming_an_evaluation_gives_what_judging_every_day_again_gives(weeks_before, steps):
    """Days arriving, late corrections, stoppages filed, the capacity changed and old
    days folded into the anchor: after each step, the timelines that resume from their
    last evaluation, held as objects or packed, say exactly what one judging every
    retained day again says."""
    calendars = WorkCalendar(), WorkCalendar(), WorkCalendar()
    resuming, from_packed, again = (ProjectTimeline("P", NORMAL_CAPACITY_KVA, calendar) for calendar in calendars)
    first, newest = date(2026, 3, 2), None
    # Weeks of days first, some of the time: enough normal days for the median baseline.
    for step in [("next", drawn) for drawn in weeks_before] + steps:
        kind = step[0]
        for timeline, calendar in zip((resuming, from_packed, again), calendars):
            if kind == "next":
                timeline.set_day(_day(first if newest is None else newest + timedelta(days=1), step[1]))
            elif kind == "late" and newest is not None:
                timeline.set_day(_day(max(newest - timedelta(days=step[1]), timeline.inputs.first()), step[2]))
            elif kind == "stoppage" and newest is not None:
                start = newest - timedelta(days=step[1])
                calendar.add_stoppage(Stoppage("P", start, start + timedelta(days=step[2]), "停工"))
            elif kind == "capacity":
                timeline.capacity_kva = step[1]
            elif kind == "fold" and newest is not None:
                timeline.forget_before(newest - timedelta(days=step[1]), timeline.evaluate())
        if kind == "next":
            newest = first if newest is None else newest + timedelta(days=1)
        again._last = None  # judges every retained day again, as before resuming existed
        expected = again.evaluate()
        assert resuming.evaluate() == expected
        from_packed.pack_evaluation()
        assert from_packed.evaluate() == expected


def _judged_as_a_worker_does(days: list[tuple], pack: bool) -> list[list]:
    """Each day set, evaluated and folded behind the window as the judge does; with
    ``pack`` the evaluation is kept packed between days. Every evaluation, in order."""
    timeline = ProjectTimeline("P", NORMAL_CAPACITY_KVA, WorkCalendar())
    first, found = date(2026, 3, 2), []
    for n, drawn in enumerate(days):
        timeline.set_day(_day(first + timedelta(days=n), drawn))
        if pack:
            timeline.pack_evaluation()
        evaluated = timeline.evaluate()
        found.append(evaluated)
        timeline.forget_before(timeline.inputs.last() - timedelta(days=RETAINED_DAYS), evaluated)
    return found


def test_a_worker_resuming_from_objects_judges_as_one_resuming_from_packed_days():
    """Half a year as a worker judges it, a day at a time with days folded behind the
    window: working weeks, then months offline (no day counts for the baseline), then
    work again, whose baseline is the capacity's until 10 normal days exist again in
    reach; and a day corrected to offline after the days that used it. The same
    indicators every day, whether the last evaluation was kept as objects or packed."""
    working = [(NORMAL * (1.3 if n % 3 else 1.0), 1, 0, False, 0.05, None) for n in range(30)]
    offline = [(NORMAL, 1, 7200, False, 0.05, None)] * 150
    days = working + offline + working
    assert _judged_as_a_worker_does(days, pack=False) == _judged_as_a_worker_does(days, pack=True)

    def corrected(pack: bool) -> ProjectTimeline:
        timeline = ProjectTimeline("P", NORMAL_CAPACITY_KVA, WorkCalendar())
        for n, drawn in enumerate(working):
            timeline.set_day(_day(date(2026, 3, 2) + timedelta(days=n), drawn))
            timeline.evaluate()
        timeline.set_day(_day(date(2026, 3, 16), (NORMAL, 1, 7200, False, 0.05, None)))  # found offline after all
        if pack:
            timeline.pack_evaluation()
        return timeline

    from_objects, from_packed, again = corrected(False), corrected(True), corrected(False)
    again._last = None  # every retained day judged again
    assert from_objects.evaluate() == from_packed.evaluate() == again.evaluate()


@settings(max_examples=60, deadline=None)
@given(st.lists(_one_day, max_size=30), _steps)
def test_a_judge_writes_the_same_days_and_events_whichever_way_it_resumes(weeks_before, steps):
    """The judge writes a day again, and tells of it, exactly when its indicators
    changed: the same days and events whether it resumes from the objects of its last
    evaluation, from packed days, or judges every retained day again each time (a
    suspicion withdrawn by a late correction, a stoppage filed, days folded behind the
    window included)."""
    tz = ZoneInfo("Asia/Shanghai")
    judges = [Judge(tz, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=5)) for _ in range(3)]
    from_objects, from_packed, again = judges
    from_packed.UNPACKED_TIMELINES = 0
    for judge in judges:
        judge.timelines["P"] = ProjectTimeline("P", NORMAL_CAPACITY_KVA, judge.calendar)
    first, newest = date(2026, 3, 2), None
    for step in [("next", drawn) for drawn in weeks_before] + steps:
        kind = step[0]
        if kind == "next":
            newest = first if newest is None else newest + timedelta(days=1)
        if newest is None or kind == "fold":
            continue  # the judge folds days behind its window itself
        for judge in judges:
            timeline = judge.timelines["P"]
            if kind == "next":
                timeline.set_day(_day(newest, step[1]))
            elif kind == "late":
                timeline.set_day(_day(max(newest - timedelta(days=step[1]), timeline.inputs.first()), step[2]))
            elif kind == "stoppage":
                start = newest - timedelta(days=step[1])
                judge.add_stoppage(Stoppage("P", start, start + timedelta(days=step[2]), "停工"))
                judge.rejudge("P")
            elif kind == "capacity":
                timeline.capacity_kva = step[1]
        again.timelines["P"]._last = None  # every retained day judged again
        now_ms = day_start_ms(newest + timedelta(days=1), tz) + 600_000
        written = [judge.judge_projects(["P"], now_ms) for judge in judges]
        expected = [(j.indicators, j.stalled_working_days) for j in written[2].judged], written[2].events
        for judgement in written[:2]:
            assert ([(j.indicators, j.stalled_working_days) for j in judgement.judged], judgement.events) == expected


def test_a_judge_rewrites_a_day_whose_suspicion_a_late_correction_withdraws():
    """Two working days of a constant load make both suspicious; the second corrected
    later to a working day's shape leaves a run of one: the first day's suspicion is
    withdrawn, and each judge, whichever way it resumes, writes that day again. Asked to
    judge every day again (``rejudge``), each writes every retained day."""
    tz = ZoneInfo("Asia/Shanghai")
    judges = [Judge(tz, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=5)) for _ in range(3)]
    judges[1].UNPACKED_TIMELINES = 0
    first, constant_from = date(2026, 3, 2), date(2026, 3, 23)  # Mondays

    def judged(judge: Judge, day: date) -> list:
        now_ms = day_start_ms(day + timedelta(days=1), tz) + 600_000
        return [(j.indicators.day, j.indicators.suspicious) for j in judge.judge_projects(["P"], now_ms).judged]

    for judge in judges:
        judge.timelines["P"] = ProjectTimeline("P", NORMAL_CAPACITY_KVA, judge.calendar)
    for n in range(25):
        day = first + timedelta(days=n)
        constant = day in (constant_from, constant_from + timedelta(days=1))
        for judge in judges:
            judge.timelines["P"].set_day(DailyEnergy("P", day, NORMAL, 96, 1, 0, 900, False, 0.01 if constant else 0.4, 1.0 if constant else 3.0))
            judged(judge, day)
    assert all(judge.timelines["P"].evaluate()[21].suspicious for judge in judges)
    newest = first + timedelta(days=24)
    written = []
    for judge in judges:
        judge.timelines["P"].set_day(DailyEnergy("P", constant_from + timedelta(days=1), NORMAL, 96, 1, 0, 900, False, 0.4, 3.0))
        written.append(judged(judge, newest))
    assert written[0] == written[1] == written[2] and (constant_from, False) in written[0]
    for judge in judges:
        judge.rejudge("P")
        assert len(judged(judge, newest)) == 25
