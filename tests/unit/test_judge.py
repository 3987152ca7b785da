"""The judge as a pure operator, and the stream adapter around it on an in-memory store:
what a supervisor would check of a month of three sites — the days' states, the events
that page people — must not depend on memory limits, restarts or rebalances."""

from __future__ import annotations

import asyncio
import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from sitepulse.agents.activity import ActivityTracker
from sitepulse.agents.core.calendar import Stoppage, WorkCalendar
from sitepulse.agents.core.daily import DailyEnergy, MeterReading, day_start_ms
from sitepulse.agents.core.indicators import DayLabel, State
from sitepulse.agents.core.judge import Judge, StoredDay
from sitepulse.agents.pipeline import PowerHandler
from sitepulse.streams.contract import PowerReading, ProjectEvent, RegistryEntry
from tests.memory_store import MemoryStore

TZ = ZoneInfo("Asia/Shanghai")
START = date(2026, 3, 2)  # a Monday
DAYS = 40
WALL_S = 1_000_000.0  # wall time stands still: the stream's own clock decides everything
STALLS_FROM = START + timedelta(days=24)  # WORK-2 draws a tenth of its power from here
SILENT_FROM = START + timedelta(days=30)  # WORK-3's meter says nothing from here


PROJECTS = ("WORK-1", "WORK-2", "WORK-3")


def registered(project_id: str) -> RegistryEntry:
    return RegistryEntry(
        project_id, f"{project_id} 工程", "海曙区", "三江片", "住建局", "city", "new", f"{project_id} 领导", "13800000000",
        "数据员", 12_000.0, START, 630.0,
    )


def site_day(project_id: str, day: date, rng: random.Random) -> list[PowerReading]:
    """A 15-minute meter on a site that works by day."""
    readings = []
    midnight = datetime(day.year, day.month, day.day, tzinfo=TZ)
    for quarter in range(96):
        hour = quarter // 4
        kwh = (40.0 if 7 <= hour < 18 else 3.0) * rng.uniform(0.8, 1.2)
        if project_id == "WORK-2" and day >= STALLS_FROM:
            kwh *= 0.1
        readings.append(PowerReading(project_id, "M1", midnight + timedelta(minutes=15 * (quarter + 1)), round(kwh, 2), 900))
    return readings


def month_of_readings() -> list[list[PowerReading]]:
    """One batch per day, every project's readings of that day."""
    rng = random.Random(5)
    batches = []
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        batch = [r for project_id in PROJECTS for r in site_day(project_id, day, rng)]
        batches.append([r for r in batch if not (r.project_id == "WORK-3" and day >= SILENT_FROM)])
    return batches


class Worker:
    """The power path of one worker process: judge, adapter and handler on a store."""

    def __init__(self, store: MemoryStore, published: list[ProjectEvent], timelines_held: int | None = None) -> None:
        self.judge = Judge(TZ, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=15), timelines_held=timelines_held)
        for project_id in PROJECTS:
            self.judge.set_project(registered(project_id))

        async def publish(events: list[ProjectEvent]) -> None:
            published.extend(events)

        self.tracker = ActivityTracker(self.judge, store, publish)
        self.handler = PowerHandler(store, TZ, 3, self.tracker)
        self.published = published

    def take(self, batches: list[list[PowerReading]]) -> None:
        async def feed() -> None:
            for batch in batches:
                outcome = await self.handler.handle(batch, [0] * len(batch), WALL_S)
                self.published.extend(outcome.events)
                await self.handler.advance(WALL_S)

        asyncio.run(feed())


def judged_days(store: MemoryStore) -> dict:
    return {key: (day.label, day.machine, day.activity_index, day.baseline_kwh, store.statuses[key]) for key, day in store.indicators.items()}


def test_a_month_of_three_sites_reads_as_a_supervisor_expects():
    store, published = MemoryStore(TZ), []
    Worker(store, published).take(month_of_readings())
    states = {key: day.machine.state for key, day in store.indicators.items()}
    labels = {key: day.label for key, day in store.indicators.items()}
    last_judged = START + timedelta(days=DAYS - 2)  # the newest day is not complete yet
    assert states[("WORK-1", last_judged)] == State.STARTED
    assert states[("WORK-2", last_judged)] == State.STALLED
    assert all(labels[("WORK-3", day)] == DayLabel.OFFLINE for day in _days(SILENT_FROM, last_judged))
    kinds = {(e.kind, e.project_id) for e in published}
    assert {("started", "WORK-1"), ("started", "WORK-2"), ("stalled", "WORK-2"), ("offline", "WORK-3")} <= kinds
    assert not any(e.kind == "suspicious" for e in published), "honest sites are never suspected"
    assert len({e.event_id for e in published}) == len(published), "each change is told once"


def test_timelines_let_go_and_rebuilt_judge_exactly_as_those_kept_in_memory():
    kept_store, kept_events = MemoryStore(TZ), []
    Worker(kept_store, kept_events).take(month_of_readings())
    resting_store, resting_events = MemoryStore(TZ), []
    worker = Worker(resting_store, resting_events, timelines_held=1)
    worker.take(month_of_readings())
    assert worker.judge.timelines_rebuilt > DAYS, "two of three timelines rest between judgements"
    assert judged_days(resting_store) == judged_days(kept_store)
    assert [e.event_id for e in resting_events] == [e.event_id for e in kept_events]


def test_a_restarted_worker_goes_on_from_the_store_as_if_it_never_stopped():
    batches = month_of_readings()
    whole_store, whole_events = MemoryStore(TZ), []
    Worker(whole_store, whole_events).take(batches)
    store, events = MemoryStore(TZ), []
    Worker(store, events).take(batches[:33])  # stops after WORK-3 went silent
    Worker(store, events).take(batches[33:])  # a new process: nothing but the store
    assert judged_days(store) == judged_days(whole_store)
    assert {e.event_id for e in events} == {e.event_id for e in whole_events}
    told_twice = [e.event_id for e in events if e.kind not in ("offline",)]
    assert len(told_twice) == len(set(told_twice)), "days judged before the restart are not news again"


def test_a_stoppage_filed_late_rewrites_the_days_it_covers():
    store, published = MemoryStore(TZ), []
    worker = Worker(store, published)
    batches = month_of_readings()
    worker.take(batches[:32])
    assert store.indicators[("WORK-2", STALLS_FROM + timedelta(days=6))].label == DayLabel.STALLED
    stoppage = Stoppage("WORK-2", STALLS_FROM, START + timedelta(days=45), "设计变更")
    asyncio.run(worker.handler.add_stoppage(stoppage, WALL_S))
    covered = [store.indicators[("WORK-2", day)].label for day in _days(STALLS_FROM, START + timedelta(days=30))]
    assert covered and all(label == DayLabel.STOPPAGE for label in covered)
    assert store.indicators[("WORK-2", STALLS_FROM - timedelta(days=1))].label == DayLabel.STARTED


def test_a_day_is_judged_only_once_the_clock_has_passed_its_end():
    judge = Judge(TZ, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=15))
    day = START
    midnight = day_start_ms(day + timedelta(days=1), TZ)
    energy = DailyEnergy("P", day, 500.0, 96, 1, 0, 900, False)
    judge.observe([(MeterReading("P", "M1", midnight, 900, 1.0), 0, 0)], [(("P", day), energy)], WALL_S)
    assert judge.due(WALL_S).groups == [], "the day's last reading is in, but late ones may still come"
    judge.observe([(MeterReading("P", "M1", midnight + 15 * 60_000, 900, 1.0), 0, 1)], [], WALL_S)
    due = judge.due(WALL_S)
    assert due.groups == [["P"]]
    assert judge.wake(due.groups[0]) is not None, "a timeline never seen is rebuilt from storage first"
    judge.rebuild(["P"], {})
    judgement = judge.judge_group(due.groups[0], due.now_ms)
    assert [j.indicators.day for j in judgement.judged] == [day]
    assert judge.judge_group(due.groups[0], due.now_ms).judged == [], "judged once; nothing changed since"


def test_a_rebuild_keeps_judged_days_and_waits_for_unjudged_ones():
    judge = Judge(TZ, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=15))
    first = START
    judged_before = Judge(TZ, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=15))
    judged_before.rebuild(["P"], {})
    energies = [DailyEnergy("P", first + timedelta(days=n), 800.0 + n, 96, 1, 0, 900, False) for n in range(5)]
    for energy in energies[:4]:
        judged_before.timelines["P"].set_day(energy)
    indicators = {j.indicators.day: j.indicators for j in judged_before.judge_projects(["P"], 0).judged}
    stored = [StoredDay(e, indicators.get(e.day)) for e in energies]  # the fifth day is not judged yet
    judge.rebuild(["P"], {"P": stored})
    assert sorted(judge.timelines["P"].inputs) == [e.day for e in energies[:4]]
    assert list(judge.pending) == [("P", energies[4].day)]
    assert judge.judge_projects(["P"], 0).judged == [], "what was judged before the restart is not written again"


def test_a_rebalance_starts_the_clock_and_meter_watch_again_for_the_partitions_now_owned():
    owner = {"MINE": 0, "THEIRS": 1}
    judge = Judge(TZ, WorkCalendar(), grace=timedelta(hours=48), settle=timedelta(minutes=15), partition_of=owner.__getitem__)
    assert not judge.wants_reference, "a worker without partitions owns no project yet"
    judge.assign({0, 1}, WALL_S)
    late_ms = day_start_ms(START + timedelta(days=5), TZ)
    judge.observe([(MeterReading("THEIRS", "M1", late_ms, 900, 1.0), 1, 0)], [], WALL_S)
    judge.assign({0}, WALL_S)
    assert judge.wants_reference and judge.clock.now_ms(WALL_S) is None
    judge.take_unjudged([DailyEnergy(p, START, 1.0, 96, 1, 0, 900, False) for p in owner], {"MINE": START, "THEIRS": START})
    assert list(judge.pending) == [("MINE", START)] and list(judge.resting) == ["MINE"]
    assert judge.take_last_readings([("THEIRS", "M1", late_ms, 900), ("MINE", "M1", late_ms - 900_000, 900)], WALL_S) == late_ms - 900_000
    assert not judge.watch.overdue(late_ms + 10 * 86_400_000)[1:], "only the owned meter is watched"


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@given(
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/Santiago", "Asia/Kathmandu", "Australia/Lord_Howe"]),
    st.integers(1_735_689_600_000, 1_798_761_600_000),  # 2025 to 2027, to the millisecond
    st.integers(-3, 2),
    st.sampled_from([timedelta(0), timedelta(minutes=5), timedelta(hours=3)]),
)
def test_a_day_is_complete_exactly_when_its_end_and_the_settling_time_have_passed(zone, now_ms, days_back, settle):
    """The judge tells a complete day by comparing dates (at every batch, for every
    pending day): the same answer as comparing its local end plus the settling time
    with the clock, across daylight saving (midnight itself skipped in Santiago)."""
    tz = ZoneInfo(zone)
    judge = Judge(tz, WorkCalendar(), grace=timedelta(hours=48), settle=settle)
    day = datetime.fromtimestamp(now_ms / 1000, tz).date() + timedelta(days=days_back)
    ends_ms = day_start_ms(day + timedelta(days=1), tz)
    settle_ms = int(settle.total_seconds() * 1000)
    assert (day <= judge._newest_complete_day(now_ms)) == (ends_ms + settle_ms <= now_ms)
    assert (day <= judge._newest_complete_day(ends_ms + settle_ms)) and not (day <= judge._newest_complete_day(ends_ms + settle_ms - 1))
