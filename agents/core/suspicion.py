"""Suspicion: power that does not look like a site at work, although it says it works.

Power is the proof that work goes on, so the sites it supervises have a reason to fake
it. Four patterns are looked for (definitions, thresholds and their reasons, and the
measured precision and recall: docs/indicators.md, "Suspicious"):

- **exact flat**: a meter reported the same energy every interval of a full day (a real
  meter never does: a fed signal or a synthetic feed);
- **constant load**: a run of working days whose load is near-constant around the
  clock — no day-versus-night shape, an hourly coefficient of variation within metering
  jitter — on a site whose own normal days have a shape (idle machines left running);
- **copied**: a meter's day whose hourly profile repeats an earlier day's of the same
  meter (the same readings sent again under new timestamps);
- **flat investment** (monthly, ``flat_investment_verdict``): no investment reported for
  months in which power says the site works.

Investment reported for a month of idle power is ``ranking.investment_without_power``.
Day-level findings come in runs: the days of one run share its first day (``since``),
so the same run found again after a restart or a replay keeps its id.
"""

from __future__ import annotations

import math
import statistics
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

from .packed import PackedDays

HOUR_MS = 3_600_000
HOURS = 24
WORKING_HOURS = range(8, 18)  # 08:00-18:00: a site at work draws most of its load here
NIGHT_HOURS = (22, 23, 0, 1, 2, 3, 4, 5)  # 22:00-06:00: lighting, pumps, security
DAY_NIGHT_CAP = 99.0  # day/night ratio of a day with no load at night (stored as a number)

# Constant load. A constant machine load read by a real meter varies by metering jitter
# (~1-2 % an interval) and rounding to 0.01 kWh: an hourly coefficient of variation of
# 1-3 %. A site's normal working day varies 40-120 % (day vs night, lunch, machines
# cycling). A day counts as near-constant when its variation is below a fifth of the
# site's own usual one, never below JITTER_CV (what jitter alone gives) nor above
# FLAT_CV_CAP (a gentle real day, e.g. round-the-clock dewatering with some work, stays
# above it); and when its working hours draw no more than DAY_NIGHT_FLAT times its night.
JITTER_CV = 0.04
FLAT_SHARE_OF_USUAL = 0.2
FLAT_CV_CAP = 0.10
DAY_NIGHT_FLAT = 1.25
SHAPED_SITE_CV = 0.25  # a site whose normal days vary less has no shape to lose: not judged
REFERENCE_DAYS = 20  # the site's most recent normal days that set its usual variation...
REFERENCE_MIN_DAYS = 5  # ...of which at least this many (else the rule cannot judge)
REFERENCE_WEEKS = 8
CONSTANT_RUN_DAYS = 2  # working days in a row: a single flat day is not a pattern

# Copied days. Hours are compared as shares of the day's peak hour (16 bits): a day
# sent again — even rescaled, or re-rounded to 0.01 kWh — matches within half a percent
# in every working hour; two real days, even of a quiet meter (3 % noise a reading),
# differ by more in most of them. Night hours of lighting match on any two days: only
# hours drawing a quarter of the peak or more take part.
COPY_LOOKBACK_DAYS = 7  # a week back: yesterday's readings, or last week's same day
COPY_RELATIVE_TOLERANCE = 0.005
COPY_ACTIVE_SHARE = 0.25
COPY_MIN_ACTIVE_HOURS = 6
COPY_MISSES_PER_HOURS = 12  # at most one hour in twelve may differ (a reading edited)
COPY_MIN_SHAPE_CV = 0.15  # a flat day repeats any other flat day: the constant rule's
_FULL_SCALE = 65_535
_PROFILE = struct.Struct(">24H")  # HOURS shares of the peak

# Flat investment: months in a row with next to no investment reported while power says
# the site works. A month reports "no movement" below 1 % of the plan's monthly share.
FLAT_INVESTMENT_MONTHS = 2
FLAT_INVESTMENT_SHARE = 0.01
WORKING_DAY_SHARE = 0.5  # share of judged working days above the started threshold
MIN_JUDGED_WORKING_DAYS = 5  # per month, or power cannot say whether the site worked


class Reason(StrEnum):
    EXACT_FLAT = "exact_flat"
    CONSTANT_LOAD = "constant_load"
    COPIED = "copied"
    FLAT_INVESTMENT = "flat_investment"
    IDLE_POWER = "idle_power"  # investment reported for a month of idle power


_DAY_REASONS = (Reason.EXACT_FLAT, Reason.CONSTANT_LOAD, Reason.COPIED)


@dataclass(frozen=True, slots=True)
class MeterFingerprint:
    """A meter's day as 24 hourly shares of its peak hour (16 bits each, 48 bytes):
    what copying keeps."""

    meter_id: str
    shape: bytes


@dataclass(frozen=True, slots=True)
class DayShape:
    """The shape of a project's day, from every meter's readings. None: the day is not
    covered in full by readings of intervals that divide an hour."""

    load_cv: float | None = None  # coefficient of variation of the project's hourly energy
    day_night: float | None = None  # mean hourly energy in working hours over that at night
    fingerprints: tuple[MeterFingerprint, ...] = ()  # meters that covered the whole day


UNKNOWN_SHAPE = DayShape()


def day_shape(readings: Iterable[tuple[str, int, float, int]], day_start_ms: int, day_end_ms: int) -> DayShape:
    """The shape of one project-day from (meter_id, ts_ms, kwh, interval_s) readings,
    each counted in the hour that holds the middle of its interval."""
    hours = (day_end_ms - day_start_ms) // HOUR_MS
    by_meter: dict[str, list[float]] = {}
    covered: dict[str, int] = {}
    for meter, ts_ms, kwh, interval_s in readings:
        if interval_s <= 0 or 3600 % interval_s:
            return UNKNOWN_SHAPE
        hour = (ts_ms - interval_s * 500 - day_start_ms) // HOUR_MS
        if 0 <= hour < hours:
            if meter not in by_meter:
                by_meter[meter], covered[meter] = [0.0] * hours, 0
            by_meter[meter][hour] += kwh
            covered[meter] += interval_s
    whole = {meter: energy for meter, energy in by_meter.items() if covered[meter] >= hours * 3600}
    return hourly_shape(whole, len(by_meter), hours)


def hourly_shape(whole: Mapping[str, list[float]], meters: int, hours: int) -> DayShape:
    """The shape of a day of ``hours`` from the energy by hour of each meter that covered
    it whole (``whole``), of the ``meters`` that had readings that day."""
    fingerprints = tuple(
        MeterFingerprint(meter, quantised) for meter, energy in sorted(whole.items()) if hours == HOURS and (quantised := _quantised(energy))
    )
    if not whole or len(whole) < meters:
        return DayShape(fingerprints=fingerprints)
    totals = [math.fsum(hour) for hour in zip(*whole.values())]
    mean = math.fsum(totals) / hours
    if mean <= 0 or hours != HOURS:
        return DayShape(fingerprints=fingerprints)
    night = statistics.fmean(totals[h] for h in NIGHT_HOURS)
    working = statistics.fmean(totals[h] for h in WORKING_HOURS)
    day_night = min(working / night, DAY_NIGHT_CAP) if night > 0 else DAY_NIGHT_CAP
    return DayShape(population_stdev(totals) / mean, day_night, fingerprints)


def _quantised(energy: Sequence[float]) -> bytes:
    peak = max(energy)
    return _PROFILE.pack(*(round(_FULL_SCALE * max(value, 0.0) / peak) for value in energy)) if peak > 0 else b""


def _cv(values: Sequence[float]) -> float:
    mean = statistics.fmean(values)
    return population_stdev(values) / mean if mean > 0 else 0.0


def population_stdev(values: Sequence[float]) -> float:
    """``statistics.pstdev`` in floats, to within a few units in the last place: the
    library's is exact through fractions and cost ~0.1 ms a call, a sixth of judging a
    day (two passes with ``fsum`` keep the error at rounding, whatever the mean)."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((value - mean) ** 2 for value in values) / len(values))


def same_profile(day: bytes, earlier: bytes) -> bool:
    """Two quantised days match: every working hour (a quarter of the peak or more in
    either) within half a percent, but for one hour in twelve, over enough hours to
    tell."""
    return _repeats(_hours(day), _active_mask(day), earlier)


def _repeats(hours: tuple[int, ...], active_mask: int, earlier: bytes) -> bool:
    """``same_profile`` of a day given as its hours and working hours: every day is
    compared with each of the week before it, and most pairs miss at once, so what is
    known of each day is kept (``_hours``, ``_active_mask``) and the pairs are not."""
    active = _active_hours(active_mask | _active_mask(earlier))
    if len(active) < COPY_MIN_ACTIVE_HOURS:
        return False
    earlier_hours = _hours(earlier)
    # Most pairs of days differ in most hours: stop at the first miss too many.
    misses_left = len(active) // COPY_MISSES_PER_HOURS
    for hour in active:
        a, b = hours[hour], earlier_hours[hour]
        if abs(a - b) > COPY_RELATIVE_TOLERANCE * (a if a > b else b):
            misses_left -= 1
            if misses_left < 0:
                return False
    return True


# A city's days in the week before each judged day fit (~420 × 1.2 meters × 8).
@lru_cache(maxsize=1 << 13)
def _hours(shape: bytes) -> tuple[int, ...]:
    return _PROFILE.unpack(shape)


@lru_cache(maxsize=1 << 13)
def _active_mask(shape: bytes) -> int:
    """The day's working hours (a quarter of its peak or more) as bits."""
    floor = COPY_ACTIVE_SHARE * _FULL_SCALE
    return sum(1 << hour for hour, share in enumerate(_hours(shape)) if share >= floor)


@lru_cache(maxsize=1 << 12)
def _active_hours(mask: int) -> tuple[int, ...]:
    return tuple(hour for hour in range(HOURS) if mask >> hour & 1)


class MeterShapes(PackedDays[bytes]):
    """One meter's quantised days: 52 bytes a day, for the week before each judged day."""

    __slots__ = ()
    LAYOUT = struct.Struct(f"<i{_PROFILE.size}s")

    def pack(self, shape: bytes) -> tuple:
        return (shape,)

    def unpack(self, day: date, fields: tuple) -> bytes:
        return fields[0]


class Look:
    """Bits of what a day looks like, for each day-level rule: examined and found."""

    FLAT_EXAMINED, FLAT = 1, 2
    CONSTANT_EXAMINED, CONSTANT = 4, 8
    COPY_EXAMINED, COPY = 16, 32

    @staticmethod
    def faked(look: int) -> bool:
        """Any sign of a faked day: kept out of the baseline and the site's usual shape."""
        return bool(look & (Look.FLAT | Look.CONSTANT | Look.COPY))


@lru_cache(maxsize=1 << 14)
def shaped(shape: bytes) -> bool:
    """A profile with a shape to repeat (a flat one is the constant-load rule's).
    Cached: a timeline asks again for every day of its window at every judgement."""
    return _cv(_hours(shape)) >= COPY_MIN_SHAPE_CV


def copied_from(day: date, shape: bytes, earlier_days: Mapping[date, bytes]) -> date | None:
    """The most recent of the week's earlier days whose profile ``day``'s repeats."""
    hours, active_mask = _hours(shape), _active_mask(shape)
    for back in range(1, COPY_LOOKBACK_DAYS + 1):
        earlier = earlier_days.get(day - timedelta(days=back))
        if earlier is not None and _repeats(hours, active_mask, earlier):
            return day - timedelta(days=back)
    return None


def copy_look(day: date, shapes_by_meter: Mapping[str, Mapping[date, bytes]]) -> tuple[int, str, date | None]:
    """(look bits, meter, the day it repeats) of a day's meters, each against its own days."""
    look = 0
    for meter_id, shapes in sorted(shapes_by_meter.items()):
        shape = shapes.get(day)
        if shape is None or not shaped(shape):
            continue
        look |= Look.COPY_EXAMINED
        source = copied_from(day, shape, shapes)
        if source is not None:
            return look | Look.COPY, meter_id, source
    return look, "", None


# --- What a day looks like, before runs are formed -----------------------------------


def usual_variation(reference: Iterable[float | None]) -> float | None:
    """The site's usual hourly variation: the median over its most recent normal days
    (newest last), or None with too few of them."""
    recent = [cv for cv in reference if cv is not None][-REFERENCE_DAYS:]
    return statistics.median(recent) if len(recent) >= REFERENCE_MIN_DAYS else None


def flat_threshold(usual_cv: float) -> float:
    return min(max(usual_cv * FLAT_SHARE_OF_USUAL, JITTER_CV), FLAT_CV_CAP)


def constant_look(load_cv: float | None, day_night: float | None, usual_cv: float | None, says_works: bool) -> int:
    """Whether a judged working day was examined for a constant load, and found one."""
    if load_cv is None or day_night is None or usual_cv is None or usual_cv < SHAPED_SITE_CV:
        return 0
    near_constant = says_works and load_cv <= flat_threshold(usual_cv) and day_night <= DAY_NIGHT_FLAT
    return Look.CONSTANT_EXAMINED | (Look.CONSTANT if near_constant else 0)


@dataclass(frozen=True, slots=True)
class Suspicion:
    """A day's finding: why, since which day (the run's first), and what shows it."""

    reason: Reason
    since: date
    meter_id: str = ""  # copied: the meter whose day repeats another
    copied_from: date | None = None
    load_cv: float | None = None  # constant load: the day's variation...
    usual_cv: float | None = None  # ...and the site's usual one


@dataclass(frozen=True, slots=True)
class DayLook:
    """What the runs need of a day: its look and what explains it."""

    day: date
    look: int
    meter_id: str = ""
    copied_from: date | None = None
    load_cv: float | None = None
    usual_cv: float | None = None


@dataclass(frozen=True, slots=True)
class Carried:
    """The runs open after a day: each rule's open run by its first day, and the working
    days of the open constant-load run. What the days after it continue."""

    since: tuple[tuple[Reason, date], ...] = ()
    constant_days: int = 0

    def encode(self) -> str:
        """As stored on the day's point, e.g. ``constant_load=2026-03-02;2``."""
        return ",".join(f"{reason.value}={day.isoformat()}" for reason, day in self.since) + f";{self.constant_days}"

    @classmethod
    def decode(cls, text: str | None) -> Carried:
        if not text:
            return NOTHING_CARRIED
        runs, _, days = text.partition(";")
        since = tuple((Reason(reason), date.fromisoformat(day)) for reason, _, day in (run.partition("=") for run in runs.split(",") if run))
        return cls(since, int(days or 0))


NOTHING_CARRIED = Carried()

_EXAMINED = {Reason.EXACT_FLAT: Look.FLAT_EXAMINED, Reason.CONSTANT_LOAD: Look.CONSTANT_EXAMINED, Reason.COPIED: Look.COPY_EXAMINED}
_FOUND = {Reason.EXACT_FLAT: Look.FLAT, Reason.CONSTANT_LOAD: Look.CONSTANT, Reason.COPIED: Look.COPY}


def suspicions(
    looks: Sequence[DayLook], carried: Carried = NOTHING_CARRIED, known: Sequence[tuple[Suspicion | None, Carried]] = ()
) -> tuple[list[Suspicion | None], list[Carried]]:
    """Each day's suspicion (None: none), from the days' looks in day order. A run of a
    rule goes on through days the rule could not examine and ends at a day examined
    clean; a constant-load run counts once it holds CONSTANT_RUN_DAYS working days, and
    then from its first day. Where several rules find a day, an exact flat load speaks
    first, then a copy. Also, for each day, the runs open after it.

    ``known``: the first days' suspicions and open runs as an earlier call returned
    them, over the same looks up to there and the same ``carried``. The runs go on from
    the last of them, so a timeline judged day by day does not go over its whole window
    each day; of the known days, only those of the constant-load run still open there
    are decided again, by how long that run lasts now."""
    resume = len(known)
    start = known[-1][1] if known else carried
    since = dict(start.since)
    constant_days = start.constant_days
    starts: list[dict[Reason, date]] = []
    after: list[Carried] = [runs for _, runs in known]
    # constant-load run (by its first day) -> working days
    run_length: dict[date, int] = {since[Reason.CONSTANT_LOAD]: constant_days} if Reason.CONSTANT_LOAD in since else {}
    for look in looks[resume:]:
        for reason in _DAY_REASONS:
            if look.look & _FOUND[reason]:
                if reason not in since:
                    since[reason] = look.day
                    constant_days = 0 if reason == Reason.CONSTANT_LOAD else constant_days
            elif look.look & _EXAMINED[reason]:
                since.pop(reason, None)
        if Reason.CONSTANT_LOAD in since:
            constant_days += bool(look.look & Look.CONSTANT)
            run_length[since[Reason.CONSTANT_LOAD]] = constant_days
        else:
            constant_days = 0
        starts.append(dict(since))
        after.append(Carried(tuple(sorted(since.items())), constant_days))
    found: list[Suspicion | None] = [suspicion for suspicion, _ in known]
    for look, open_runs in zip(looks[resume:], starts):
        found.append(_day_suspicion(look, open_runs.get(Reason.EXACT_FLAT), open_runs.get(Reason.COPIED), open_runs.get(Reason.CONSTANT_LOAD), run_length))
    open_constant = dict(start.since).get(Reason.CONSTANT_LOAD)
    if resume and open_constant is not None:
        for position in range(resume - 1, -1, -1):
            look = looks[position]
            if look.day < open_constant:
                break
            if not look.look & (Look.FLAT | Look.COPY):  # (whose finding speaks first)
                found[position] = _day_suspicion(look, None, None, open_constant, run_length)
    return found, after


def _day_suspicion(look: DayLook, flat_since: date | None, copy_since: date | None, constant_since: date | None, run_length: Mapping[date, int]) -> Suspicion | None:
    """A day's suspicion from its look and the runs open on it."""
    if look.look & Look.FLAT:
        return Suspicion(Reason.EXACT_FLAT, flat_since)
    if look.look & Look.COPY:
        return Suspicion(Reason.COPIED, copy_since, look.meter_id, look.copied_from)
    if look.look & Look.CONSTANT and run_length.get(constant_since, 0) >= CONSTANT_RUN_DAYS:
        return Suspicion(Reason.CONSTANT_LOAD, constant_since, load_cv=look.load_cv, usual_cv=look.usual_cv)
    return None


# --- Months: investment that does not move while power says the site works ------------


@dataclass(frozen=True, slots=True)
class MonthActivity:
    """A month's judged working days (not offline, not a stoppage) and how many of them
    power said the site worked."""

    judged_working_days: int
    working_by_power: int


@dataclass(frozen=True, slots=True)
class InvestmentVerdict:
    """The flat-investment rule on a month: suspicious, clean, or not judged (and why)."""

    month: str
    months: tuple[str, ...]  # the month and those before it the rule looked at
    suspicious: bool = False
    not_judged: str = ""  # why the rule could not judge, in Chinese ("": it judged)


def flat_investment_verdict(
    month: str,
    months: Sequence[str],
    reported_wan: Mapping[str, float],
    activity: Mapping[str, MonthActivity],
    monthly_plan_wan: float,
    lumpy: bool,
) -> InvestmentVerdict:
    """``months``: ``month`` and the ones before it, oldest first; ``reported_wan`` the
    months' reported amounts (a month missing: no report)."""
    looked_at = tuple(months)
    if lumpy:
        return InvestmentVerdict(month, looked_at, not_judged="登记为投资不均衡项目, 不作判断")
    missing = [m for m in looked_at if m not in reported_wan]
    if missing:
        return InvestmentVerdict(month, looked_at, not_judged=f"{'、'.join(missing)} 未报送投资, 无法判断")
    if any(reported_wan[m] > FLAT_INVESTMENT_SHARE * monthly_plan_wan for m in looked_at):
        return InvestmentVerdict(month, looked_at)
    thin = [m for m in looked_at if activity.get(m, MonthActivity(0, 0)).judged_working_days < MIN_JUDGED_WORKING_DAYS]
    if thin:
        return InvestmentVerdict(month, looked_at, not_judged=f"{'、'.join(thin)} 可判断的用电工作日不足 {MIN_JUDGED_WORKING_DAYS} 天")
    works = all(activity[m].working_by_power >= WORKING_DAY_SHARE * activity[m].judged_working_days for m in looked_at)
    return InvestmentVerdict(month, looked_at, suspicious=works)
