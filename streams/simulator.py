"""Simulated sites: a seeded scenario of projects whose meters behave like real ones.

Working-hour load curve, quieter weekends, the Spring Festival lull (statutory holidays
and 调休 working days from ``chinese-calendar``), projects that stall for some working
days, a meter that goes silent, a meter whose register resets, new projects that start
late, and monthly investment reports. ``ground_truth()`` says what was injected, so
tests and evaluations can check the indicators against it.

The opt-in year-to-date mode makes the first bulletin look like a real one: the year's
investment reports before the start month (with the odd revision), the start month's
report scaled to the days simulated, and some new projects that miss their start.
``last_year_figures()`` gives the previous year's monthly figures to compare against.

Fakes (opt-in, ``Fakes``): projects whose meters show what a site faking activity
sends — idle machines drawing a constant load around the clock (with a real meter's
jitter and rounding), the previous day's readings sent again, or normal power with no
investment reported — so the suspicion rules' precision and recall can be measured.
"""

from __future__ import annotations

import csv
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import msgspec

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
# Hours at full working load in a month of 22 working days and 8 weekend days.
_WORKING_MONTH_HOURS = sum(_HOURLY_SHAPE) * (22 + 8 * _WEEKEND_FACTOR)
_HOLIDAY_FACTOR = 0.05
_STALLED_FACTOR = 0.05
_NOT_STARTED_FACTOR = 0.02

# Investment by calendar month as a share of the plan's twelfth: the Spring Festival
# empties February and slows January, summer heat slows July and August, the year-end
# push fills the fourth quarter.
_SEASONAL_INVESTMENT = (0.8, 0.55, 1.0, 1.0, 1.05, 1.05, 0.95, 0.95, 1.05, 1.1, 1.1, 1.15)
_DELAYED_SHARE = 0.2  # new projects that miss their planned start (year-to-date mode)
_REVISED_SHARE = 0.1  # history reports followed by a corrected one


@dataclass
class ProjectScenario:
    entry: RegistryEntry
    meters: list[str]
    stalls: list[tuple[date, date]] = field(default_factory=list)
    silent_meter: str | None = None
    silent_from: datetime | None = None
    reset_meter: str | None = None
    reset_at: datetime | None = None
    delayed: bool = False  # a new project that does not start within the scenario
    fake: str | None = None  # "constant_load", "copied" or "flat_investment" (``Fakes``)
    fake_days: tuple[date, date] | None = None  # first and last faked day (power fakes)


@dataclass(frozen=True)
class Fakes:
    """How many projects fake each way, and for how many days (power fakes)."""

    constant_load: int = 0
    copied: int = 0
    flat_investment: int = 0
    days: int = 5

    def __bool__(self) -> bool:
        return bool(self.constant_load or self.copied or self.flat_investment)


@dataclass
class Scenario:
    seed: int
    start: date
    days: int
    tz: ZoneInfo
    projects: list[ProjectScenario]
    year_to_date: bool = False

    @property
    def end(self) -> datetime:
        return datetime.combine(self.start + timedelta(days=self.days), time(), self.tz)


def build_scenario(
    projects: int, days: int, seed: int, start: date, tz: ZoneInfo, year_to_date: bool = False, fakes: Fakes = Fakes()
) -> Scenario:
    rng = random.Random(seed)
    built = []
    for index in range(1, projects + 1):
        entry = _registry_entry(index, start, rng)
        meters = [f"M{n}" for n in range(1, rng.choice([1, 1, 2, 3]) + 1)]
        built.append(ProjectScenario(entry, meters))
    scenario = Scenario(seed, start, days, tz, built, year_to_date)
    _inject_events(scenario, rng)
    if year_to_date:
        _delay_new_projects(scenario, rng)
        _plan_new_projects_for_the_rest_of_the_year(scenario)
        _name_who_answers(scenario, random.Random(seed * 7919 + 4))
    if fakes:
        _inject_fakes(scenario, fakes, random.Random(seed * 7919 + 5))
    return scenario


# A faker keeps its site looking busy: constant machine load at this share of the
# working-hour load, read with a real meter's jitter and rounded to 0.01 kWh.
_FAKE_LOAD_SHARE = 0.45
_FAKE_JITTER = 0.015


def _inject_fakes(scenario: Scenario, fakes: Fakes, rng: random.Random) -> None:
    """Pick the faking projects among those that work through the scenario (no stall,
    no silent or reset meter, already started) — so each fake is the only thing wrong
    with its project — and place power fakes after four weeks of normal days, which
    the rules need to know the site's own shape."""
    honest = [
        p for p in scenario.projects
        if not p.stalls and not p.silent_meter and not p.reset_meter and p.entry.kind == "continuing"
    ]
    wanted = [("constant_load", fakes.constant_load), ("copied", fakes.copied), ("flat_investment", fakes.flat_investment)]
    if sum(count for _, count in wanted) > len(honest):
        raise ValueError(f"only {len(honest)} projects can fake: ask for fewer fakes or more projects")
    rng.shuffle(honest)
    earliest = min(28, max(scenario.days - fakes.days - 1, 0))
    for kind, count in wanted:
        for _ in range(count):
            project = honest.pop()
            project.fake = kind
            if kind != "flat_investment":
                first = scenario.start + timedelta(days=rng.randint(earliest, max(earliest, scenario.days - fakes.days - 1)))
                project.fake_days = (first, first + timedelta(days=fakes.days - 1))


_TITLES = ["副区长", "区委常委", "副市长", "局长", "副县长", "区长"]


def _name_who_answers(scenario: Scenario, rng: random.Random) -> None:
    """六个一: a leader's title, a person on site with a phone, and one or two
    cooperating departments for every project."""
    for project in scenario.projects:
        entry = project.entry
        partners = rng.sample([d for d in _DEPARTMENTS if d != entry.department], rng.choice([1, 1, 2]))
        project.entry = msgspec.structs.replace(
            entry,
            owner_person=rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN),
            owner_phone=f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
            leader_title=rng.choice(_TITLES),
            partner_departments=";".join(partners),
        )


def _months_planned(entry: RegistryEntry, year: int) -> int:
    """Months of ``year`` a project's annual plan covers: a new project's from its
    planned start on."""
    return 13 - entry.planned_start.month if entry.kind == "new" and entry.planned_start.year == year else 12


def _plan_new_projects_for_the_rest_of_the_year(scenario: Scenario) -> None:
    """A project that starts in November plans two months of work this year, not
    twelve: its annual plan covers the months from its planned start on."""
    for project in scenario.projects:
        entry = project.entry
        months = _months_planned(entry, scenario.start.year)
        if months < 12:
            project.entry = msgspec.structs.replace(entry, annual_plan_wan=round(entry.annual_plan_wan * months / 12, 1))


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


def _delay_new_projects(scenario: Scenario, rng: random.Random) -> None:
    """About one new project in five misses its start, and at least one of those due
    within the scenario does, so a start rate below 100 % is there to be found."""
    new = [p for p in scenario.projects if p.entry.kind == "new"]
    for project in new:
        project.delayed = rng.random() < _DELAYED_SHARE
    due = [p for p in new if p.entry.planned_start < scenario.start + timedelta(days=scenario.days)]
    if due and not any(p.delayed for p in due):
        rng.choice(due).delayed = True


def _moment(scenario: Scenario, days_in: float) -> datetime:
    """A quarter-hour boundary ``days_in`` days after the start."""
    slots = int(days_in * 86_400 // INTERVAL_S)
    return datetime.combine(scenario.start, time(), scenario.tz) + timedelta(seconds=slots * INTERVAL_S)


def day_factor(project: ProjectScenario, day: date) -> float:
    """How much of its working load a project draws on ``day``."""
    if project.entry.kind == "new" and (project.delayed or day < project.entry.planned_start):
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
    3rd of the next month at 10:00. Endless when ``until`` is None (live mode). In
    year-to-date mode the year's earlier reports come first, or in between once the
    readings have caught up with them."""
    simulated = _simulated_records(scenario, until)
    if not scenario.year_to_date:
        return simulated
    history = [r for r in _investment_history(scenario) if until is None or r.reported_at <= until]
    return heapq.merge(history, simulated, key=_record_time)


def _record_time(record: Record) -> datetime:
    return record.reported_at if isinstance(record, InvestmentReport) else record.ts


def _simulated_records(scenario: Scenario, until: datetime | None) -> Iterator[Record]:
    rng = random.Random(scenario.seed * 7919 + 1)
    fake_rng = random.Random(scenario.seed * 7919 + 6)  # the honest readings stay those of the seed
    sent: dict[tuple[str, str, int], float] = {}  # copied fakes: (project, meter, slot of day) -> kWh sent
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
                if project.fake_days is not None:
                    kw, kwh = _faked(project, meter, interval_start, kw, kwh, sent, fake_rng)
                if meter == project.reset_meter and ts == project.reset_at:
                    registers[(pid, meter)] = 0.0
                registers[(pid, meter)] += kwh
                month_kwh[(pid, month)] = month_kwh.get((pid, month), 0.0) + kwh
                yield PowerReading(pid, meter, ts, kwh, INTERVAL_S, round(registers[(pid, meter)], 3), kw)
        ts += step


def _faked(
    project: ProjectScenario, meter: str, interval_start: datetime, kw: float, kwh: float,
    sent: dict[tuple[str, str, int], float], rng: random.Random,
) -> tuple[float, float]:
    """A power fake's (kW, kWh) for one interval, or the honest one outside its days."""
    slot = (interval_start.hour * 3600 + interval_start.minute * 60) // INTERVAL_S
    key = (project.entry.project_id, meter, slot)
    first, last = project.fake_days  # type: ignore[misc]
    if first <= interval_start.date() <= last:
        if project.fake == "constant_load":
            full_kw = project.entry.capacity_kva * LOAD_FACTOR / len(project.meters)
            kw = round(full_kw * _FAKE_LOAD_SHARE * rng.uniform(1 - _FAKE_JITTER, 1 + _FAKE_JITTER), 2)
            kwh = round(kw * INTERVAL_S / 3600, 2)
        elif project.fake == "copied" and key in sent:
            kwh = sent[key]
            kw = round(kwh * 3600 / INTERVAL_S, 2)
    sent[key] = kwh
    return kw, kwh


def _investment_reports(
    scenario: Scenario, reported_at: datetime, month_kwh: dict[tuple[str, str], float], rng: random.Random
) -> Iterator[InvestmentReport]:
    """Investment follows activity: a month's amount is the plan's twelfth scaled by how
    much of a full month's working energy the site drew (in year-to-date mode, of the
    part of the month simulated, so the start month is not taken for an idle one)."""
    month_end = (reported_at.replace(day=1) - timedelta(days=1)).date()
    previous = month_end.strftime("%Y-%m")
    simulated_share = _simulated_share(scenario, month_end) if scenario.year_to_date else 1.0
    for project in scenario.projects:
        pid = project.entry.project_id
        drawn = month_kwh.pop((pid, previous), None)
        if drawn is None:
            continue
        # Year-to-date mode measures a full month by the load curve's own working month,
        # so a month worked as usual reports about its plan's twelfth, as history does.
        month_hours = _WORKING_MONTH_HOURS if scenario.year_to_date else 0.7 * 24 * 30
        full_month = project.entry.capacity_kva * LOAD_FACTOR * month_hours * simulated_share
        activity = min(drawn / full_month, 1.5)
        months_planned = _months_planned(project.entry, scenario.start.year) if scenario.year_to_date else 12
        amount = round(project.entry.annual_plan_wan / months_planned * activity * rng.uniform(0.8, 1.2), 1)
        yield InvestmentReport(pid, previous, 0.0 if project.fake == "flat_investment" else amount, reported_at)


def _simulated_share(scenario: Scenario, month_end: date) -> float:
    """The share of the month ending ``month_end`` that the scenario simulated: the start
    month's days from the start on, 1 for the months after it."""
    simulated_from = max(month_end.replace(day=1), scenario.start)
    return ((month_end - simulated_from).days + 1) / month_end.day


def _investment_history(scenario: Scenario) -> list[InvestmentReport]:
    """This year's reports for the months before the start month, in ``reported_at``
    order: each on a day 3..10 of the next month, about one in ten revised 2-6 days
    later. Its own random stream, so the readings stay those of the seed."""
    rng = random.Random(scenario.seed * 7919 + 2)
    year = scenario.start.year
    reports = []
    for month in range(1, scenario.start.month):
        first, period = date(year, month, 1), f"{year}-{month:02d}"
        for project in scenario.projects:
            entry = project.entry
            if entry.kind == "new" and entry.planned_start.replace(day=1) > first:
                continue
            amount = _seasonal_amount(entry.annual_plan_wan, month, rng.uniform(0.85, 1.15))
            reported_at = datetime(year, month + 1, rng.randint(3, 10), 10, tzinfo=scenario.tz)
            reports.append(InvestmentReport(entry.project_id, period, amount, reported_at))
            if rng.random() < _REVISED_SHARE:
                revised = round(amount * rng.uniform(0.9, 1.1), 1)
                revised_at = reported_at + timedelta(days=rng.randint(2, 6))
                reports.append(InvestmentReport(entry.project_id, period, revised, revised_at))
    return sorted(reports, key=_record_time)


def _seasonal_amount(annual_plan_wan: float, month: int, noise: float) -> float:
    return round(annual_plan_wan / 12 * _SEASONAL_INVESTMENT[month - 1] * noise, 1)


def last_year_figures(scenario: Scenario) -> list[tuple[str, str, float]]:
    """(project_id, "YYYY-MM", amount_wan) for every month of the year before the start
    year, continuing projects only (the new ones did not exist): the seasonal shape a
    little lower than this year's, so the year-on-year comparison shows growth."""
    rng = random.Random(scenario.seed * 7919 + 3)
    year = scenario.start.year - 1
    return [
        (p.entry.project_id, f"{year}-{month:02d}", _seasonal_amount(p.entry.annual_plan_wan, month, rng.uniform(0.8, 1.0)))
        for p in scenario.projects
        if p.entry.kind == "continuing"
        for month in range(1, 13)
    ]


def write_last_year_csv(rows: list[tuple[str, str, float]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["project_id", "period", "amount_wan"])
        writer.writerows(rows)


def ground_truth(scenario: Scenario) -> dict:
    """What the scenario injected, for checking indicators against."""
    truth = {
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
                **({"fake": p.fake} if p.fake else {}),
                **({"fake_days": [p.fake_days[0].isoformat(), p.fake_days[1].isoformat()]} if p.fake_days else {}),
            }
            for p in scenario.projects
        },
    }
    if scenario.year_to_date:
        truth["year_to_date"] = True
        for p in scenario.projects:
            truth["projects"][p.entry.project_id]["delayed"] = p.delayed
    return truth
