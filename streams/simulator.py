"""Simulated sites: a seeded scenario of projects whose meters behave like real ones.

Working-hour load curve, quieter weekends, the Spring Festival lull (statutory holidays
and 调休 working days from ``chinese-calendar``), projects that stall for some working
days, a meter that goes silent, a meter whose register resets, new projects that start
late, and monthly investment reports. ``ground_truth()`` says what was injected, so
tests and evaluations can check the indicators against it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from .contract import InvestmentReport, PowerReading, Record, RegistryEntry

INTERVAL_S = 900
LOAD_FACTOR = 0.3  # mean share of contracted capacity drawn in working hours

_DISTRICTS = ["海曙区", "江北区", "镇海区", "北仑区", "鄞州区", "奉化区", "余姚市", "慈溪市", "宁海县", "象山县"]
_ZONES = ["前湾新区", "甬江科创区", "东部新城", "南部商务区", "梅山湾"]
_DEPARTMENTS = ["市发改委", "市交通局", "市住建局", "市水利局", "市经信局", "市教育局"]
_WORKS = ["轨道交通配套工程", "综合管廊", "安置房", "智能制造产业园", "医院迁建工程", "水库除险加固", "学校新建工程", "快速路改造"]
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "平"]

# Share of the working-hour load by local hour: night security lighting, a lunch dip.
_HOURLY_SHAPE = [0.08] * 6 + [0.4, 1.0, 1.0, 1.0, 1.0, 0.6, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5] + [0.1] * 4
_WEEKEND_FACTOR = 0.35
_HOLIDAY_FACTOR = 0.05
_STALLED_FACTOR = 0.05
_NOT_STARTED_FACTOR = 0.02


@dataclass
class ProjectScenario:
    entry: RegistryEntry
    meters: list[str]
    stalls: list[tuple[date, date]] = field(default_factory=list)
    silent_meter: str | None = None
    silent_from: datetime | None = None
    reset_meter: str | None = None
    reset_at: datetime | None = None


@dataclass
class Scenario:
    seed: int
    start: date
    days: int
    tz: ZoneInfo
    projects: list[ProjectScenario]

    @property
    def end(self) -> datetime:
        return datetime.combine(self.start + timedelta(days=self.days), time(), self.tz)


def build_scenario(projects: int, days: int, seed: int, start: date, tz: ZoneInfo) -> Scenario:
    rng = random.Random(seed)
    built = []
    for index in range(1, projects + 1):
        entry = _registry_entry(index, start, rng)
        meters = [f"M{n}" for n in range(1, rng.choice([1, 1, 2, 3]) + 1)]
        built.append(ProjectScenario(entry, meters))
    scenario = Scenario(seed, start, days, tz, built)
    _inject_events(scenario, rng)
    return scenario


def _registry_entry(index: int, start: date, rng: random.Random) -> RegistryEntry:
    district = rng.choice(_DISTRICTS)
    kind = rng.choice(["new", "continuing", "continuing"])
    planned_start = start + timedelta(days=rng.randint(0, 20)) if kind == "new" else start - timedelta(days=rng.randint(60, 700))
    return RegistryEntry(
        project_id=f"NB-{index:04d}",
        name=f"{district}{rng.choice(_WORKS)}{index}号",
        district=district,
        zone=rng.choice(_ZONES),
        department=rng.choice(_DEPARTMENTS),
        level=rng.choice(["city", "district", "town"]),
        kind=kind,
        leader=rng.choice(_SURNAMES) + rng.choice(_GIVEN),
        leader_phone=f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
        data_owner=f"国网宁波供电公司计量中心{rng.randint(1, 5)}组",
        annual_plan_wan=float(rng.randrange(5_000, 200_000, 500)),
        planned_start=planned_start,
        capacity_kva=float(rng.choice([250, 400, 630, 800, 1000, 1250])),
        lat=round(29.87 + rng.uniform(-0.3, 0.3), 5),
        lon=round(121.55 + rng.uniform(-0.3, 0.3), 5),
        video_url=f"https://site-video.example/live/NB-{index:04d}",
    )


def _inject_events(scenario: Scenario, rng: random.Random) -> None:
    """About one project in ten stalls; one meter goes silent; one register resets."""
    window = scenario.days
    for project in scenario.projects:
        if window >= 6 and rng.random() < 0.1:
            first = scenario.start + timedelta(days=rng.randint(1, window - 5))
            project.stalls.append((first, first + timedelta(days=rng.randint(3, 7))))
    if len(scenario.projects) >= 2 and window >= 2:
        silent = scenario.projects[1]
        silent.silent_meter = silent.meters[0]
        silent.silent_from = _moment(scenario, rng.uniform(0.5, 0.8) * window)
    if len(scenario.projects) >= 3 and window >= 2:
        reset = scenario.projects[2]
        reset.reset_meter = reset.meters[-1]
        reset.reset_at = _moment(scenario, rng.uniform(0.3, 0.6) * window)


def _moment(scenario: Scenario, days_in: float) -> datetime:
    """A quarter-hour boundary ``days_in`` days after the start."""
    slots = int(days_in * 86_400 // INTERVAL_S)
    return datetime.combine(scenario.start, time(), scenario.tz) + timedelta(seconds=slots * INTERVAL_S)


def day_factor(project: ProjectScenario, day: date) -> float:
    """How much of its working load a project draws on ``day``."""
    if project.entry.kind == "new" and day < project.entry.planned_start:
        return _NOT_STARTED_FACTOR
    if any(first <= day <= last for first, last in project.stalls):
        return _STALLED_FACTOR
    try:
        is_day_off, holiday_name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        # A year the package does not know yet (the live demo runs on past New Year):
        # weekends off, as the worker's calendar assumes until an override says otherwise.
        is_day_off, holiday_name = day.weekday() >= 5, None
    if not is_day_off:
        return 1.0  # a working day, 调休 Saturdays included
    return _HOLIDAY_FACTOR if holiday_name else _WEEKEND_FACTOR


def generate_records(scenario: Scenario, until: datetime | None = None) -> Iterator[Record]:
    """Readings of every meter in time order, with each month's investment report on the
    3rd of the next month at 10:00. Endless when ``until`` is None (live mode)."""
    rng = random.Random(scenario.seed * 7919 + 1)
    registers = {(p.entry.project_id, m): rng.uniform(1_000, 50_000) for p in scenario.projects for m in p.meters}
    month_kwh: dict[tuple[str, str], float] = {}
    step = timedelta(seconds=INTERVAL_S)
    ts = datetime.combine(scenario.start, time(), scenario.tz) + step
    day, day_kw = None, []
    while until is None or ts <= until:
        interval_start = ts - step
        if interval_start.date() != day:
            day = interval_start.date()
            day_kw = [
                p.entry.capacity_kva * LOAD_FACTOR * day_factor(p, day) / len(p.meters) for p in scenario.projects
            ]
        shape = _HOURLY_SHAPE[interval_start.hour]
        month = interval_start.strftime("%Y-%m")
        if ts.day == 3 and ts.hour == 10 and ts.minute == 0:
            yield from _investment_reports(scenario, ts, month_kwh, rng)
        for project, full_kw in zip(scenario.projects, day_kw):
            pid = project.entry.project_id
            for meter in project.meters:
                if meter == project.silent_meter and ts >= project.silent_from:
                    continue
                kw = round(full_kw * shape * rng.uniform(0.85, 1.15), 2)
                kwh = round(kw * INTERVAL_S / 3600, 3)
                if meter == project.reset_meter and ts == project.reset_at:
                    registers[(pid, meter)] = 0.0
                registers[(pid, meter)] += kwh
                month_kwh[(pid, month)] = month_kwh.get((pid, month), 0.0) + kwh
                yield PowerReading(pid, meter, ts, kwh, INTERVAL_S, round(registers[(pid, meter)], 3), kw)
        ts += step


def _investment_reports(
    scenario: Scenario, reported_at: datetime, month_kwh: dict[tuple[str, str], float], rng: random.Random
) -> Iterator[InvestmentReport]:
    """Investment follows activity: a month's amount is the plan's twelfth scaled by how
    much of a full month's working energy the site drew."""
    previous = (reported_at.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    for project in scenario.projects:
        pid = project.entry.project_id
        drawn = month_kwh.pop((pid, previous), None)
        if drawn is None:
            continue
        full_month = project.entry.capacity_kva * LOAD_FACTOR * 0.7 * 24 * 30
        activity = min(drawn / full_month, 1.5)
        amount = round(project.entry.annual_plan_wan / 12 * activity * rng.uniform(0.8, 1.2), 1)
        yield InvestmentReport(pid, previous, amount, reported_at)


def ground_truth(scenario: Scenario) -> dict:
    """What the scenario injected, for checking indicators against."""
    return {
        "seed": scenario.seed,
        "start": scenario.start.isoformat(),
        "days": scenario.days,
        "timezone": str(scenario.tz),
        "interval_s": INTERVAL_S,
        "projects": {
            p.entry.project_id: {
                "kind": p.entry.kind,
                "planned_start": p.entry.planned_start.isoformat(),
                "meters": p.meters,
                "stalls": [[first.isoformat(), last.isoformat()] for first, last in p.stalls],
                "silent_meter": p.silent_meter,
                "silent_from": p.silent_from.isoformat() if p.silent_from else None,
                "reset_meter": p.reset_meter,
                "reset_at": p.reset_at.isoformat() if p.reset_at else None,
            }
            for p in scenario.projects
        },
    }
