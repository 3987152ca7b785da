"""What the core knows of one project: its registry profile, its monthly investment as
known when the figures are made, its judged days and its approved stoppages. Rankings,
the investment ledger, start rates and the bulletin all read these facts."""

from __future__ import annotations

import calendar
import struct
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

from .calendar import Stoppage
from .indicators import STARTED_ABOVE, DayLabel, State
from .nodes import PlanNode
from .packed import PackedDays, or_nan, or_none
from .periods import Period

CITY = "全市"
UNIT_TYPES = ("district", "zone", "department")  # ranked units
# Investment roll-ups: the ranked units, the city, and the seeds' 完成率 groupings
# (level 市/区/镇, kind 新建/续建, and the two together: "镇级新建项目完成率 80%").
ROLLUP_TYPES = ("city", "district", "zone", "department", "level", "kind", "level_kind")
INVESTMENT_UNIT_TYPES = (*ROLLUP_TYPES, "project")  # what ``export investment --by`` offers


@dataclass(frozen=True, slots=True)
class Profile:
    project_id: str
    district: str
    zone: str
    department: str
    level: str
    kind: str  # "new" or "continuing"
    annual_plan_wan: float
    planned_start: date
    name: str = ""
    leader: str = ""
    data_owner: str = ""
    total_investment_wan: float | None = None  # 总投资, when the registry gives it
    owner_person: str = ""  # 六个一: the person on site
    investment_lumpy: bool = False  # spending comes in steps by nature: flat months are not suspicious

    def unit(self, unit_type: str) -> str:
        if unit_type == "city":
            return CITY
        if unit_type == "level_kind":
            return f"{self.level}/{self.kind}"
        if unit_type == "project":
            return self.project_id
        return getattr(self, unit_type)


@dataclass(frozen=True, slots=True)
class MonthReport:
    """A month's investment at its newest revision known when the facts were read."""

    amount_wan: float
    reported_on: date  # local day that revision arrived


@dataclass(frozen=True, slots=True)
class JudgedDay:
    label: DayLabel
    machine_state: State
    working_day: bool
    activity_index: float | None
    kwh: float = 0.0
    baseline_kwh: float | None = None
    suspicious: bool = False


NO_INVESTMENT: Mapping[str, MonthReport] = MappingProxyType({})
_LABELS = tuple(DayLabel)
_STATES = tuple(State)


def _state_code(judged: JudgedDay) -> int:
    """The six low bits of a judged day's code in both packed forms: label + 1 (so a
    judged day's code is never 0) | machine state << 3 | working day << 5."""
    return (_LABELS.index(judged.label) + 1) | _STATES.index(judged.machine_state) << 3 | judged.working_day << 5


def _state_of(code: int) -> tuple[DayLabel, State, bool]:
    return _LABELS[(code & 0b111) - 1], _STATES[code >> 3 & 0b11], bool(code >> 5 & 1)


class JudgedDays(PackedDays[JudgedDay]):
    """A project's judged days: 29 bytes a day where a dict of ``JudgedDay`` objects cost
    ~250. The leader's review holds weeks of days of every project at once."""

    __slots__ = ()
    # date ordinal, label + 1 | state | working day | suspicious, activity index, kWh, baseline (NaN: none)
    LAYOUT = struct.Struct("<iBddd")

    def pack(self, judged: JudgedDay) -> tuple:
        code = _state_code(judged) | judged.suspicious << 6
        return code, or_nan(judged.activity_index), judged.kwh, or_nan(judged.baseline_kwh)

    def unpack(self, day: date, fields: tuple) -> JudgedDay:
        code, index, kwh, baseline = fields
        return JudgedDay(*_state_of(code), or_none(index), kwh, or_none(baseline), bool(code >> 6 & 1))


class JudgedStates(Mapping[date, JudgedDay]):
    """Judged days as rankings, start rates and the investment checks read them: label,
    machine state, working day, and on which side of the started threshold the activity
    index lies (every one of those rules compares it with ``STARTED_ABOVE``, none reads
    more). One byte a day, the days from the first held to the last in a row (a day not
    judged: 0): the leader's review holds up to 61 days of every project in a province,
    7 MB at 100k projects where 13 bytes a day took 78 MB. Without energy (kWh 0, no
    baseline, not suspicious); the index comes back as ``IDLE_INDEX`` or
    ``WORKING_INDEX``."""

    __slots__ = ("_first", "_codes")
    IDLE_INDEX = 0.0  # at or below the started threshold
    WORKING_INDEX = 1.0  # above it: a day like the site's usual working day
    _SIDES = (None, IDLE_INDEX, WORKING_INDEX)

    def __init__(self) -> None:
        self._first = 0  # ordinal of the first day held
        self._codes = bytearray()

    @staticmethod
    def _code(judged: JudgedDay) -> int:
        index = judged.activity_index
        side = 0 if index is None else 1 if index <= STARTED_ABOVE else 2
        return _state_code(judged) | side << 6

    def __setitem__(self, day: date, judged: JudgedDay) -> None:
        ordinal = day.toordinal()
        if not self._codes:
            self._first, self._codes = ordinal, bytearray(1)
        elif ordinal < self._first:
            self._codes[:0] = bytes(self._first - ordinal)
            self._first = ordinal
        elif ordinal >= self._first + len(self._codes):
            self._codes.extend(bytes(ordinal - self._first - len(self._codes) + 1))
        self._codes[ordinal - self._first] = self._code(judged)

    def __getitem__(self, day: date) -> JudgedDay:
        position = day.toordinal() - self._first
        code = self._codes[position] if 0 <= position < len(self._codes) else 0
        if not code:
            raise KeyError(day)
        return JudgedDay(*_state_of(code), self._SIDES[code >> 6])

    def __iter__(self) -> Iterator[date]:
        return (date.fromordinal(self._first + position) for position, code in enumerate(self._codes) if code)

    def __len__(self) -> int:
        return len(self._codes) - self._codes.count(0)

    def held_bytes(self) -> int:
        """What the days take in memory (the benchmark's steady-operation estimate)."""
        return sys.getsizeof(self._codes)

    def __repr__(self) -> str:
        return f"JudgedStates({dict(self.items())!r})"


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def months_ending(month: str, count: int) -> list[str]:
    """``count`` months up to and including ``month``, oldest first."""
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1
    return [month_key(i // 12, i % 12 + 1) for i in range(index - count + 1, index + 1)]


@dataclass(slots=True)
class ProjectFacts:
    profile: Profile
    # "YYYY-MM" -> the month's newest revision known when the facts were read (this
    # year's months and last year's, for year-on-year growth)
    investment: Mapping[str, MonthReport] = field(default_factory=dict)
    days: JudgedDays | JudgedStates = field(default_factory=JudgedDays)
    stoppages: Sequence[Stoppage] = field(default_factory=list)
    started_on: date | None = None  # first day its power said it works, wherever that is stored
    nodes: Sequence[PlanNode] = ()  # 细账: its plan nodes
    # Earlier revisions of the months revised since (oldest first): the figures of an
    # earlier day are made with what was known that day.
    revised: Mapping[str, tuple[MonthReport, ...]] = field(default_factory=dict)

    def investment_known_on(self, day: date) -> Mapping[str, MonthReport]:
        """The months as known at the end of ``day``: each at its newest revision that
        had arrived by then (``investment`` itself when nothing arrived later)."""
        if all(report.reported_on <= day for report in self.investment.values()):
            return self.investment
        known = {}
        for month, report in self.investment.items():
            if report.reported_on <= day:
                known[month] = report
            elif earlier := [r for r in self.revised.get(month, ()) if r.reported_on <= day]:
                known[month] = earlier[-1]
        return known

    def months_wan(self, year: int, last_month: int) -> float:
        """Sum of the months 1..``last_month`` of ``year``."""
        if not self.investment or last_month < 1:
            return 0.0
        first, last = month_key(year, 1), month_key(year, last_month)
        return sum(report.amount_wan for month, report in self.investment.items() if first <= month <= last)

    def paired_months_wan(self, year: int, last_month: int) -> tuple[float | None, float]:
        """(last year's, this year's) sums over the months 1..``last_month`` reported in
        both years; (None, 0) when there is no such month."""
        before = this = 0.0
        paired = False
        for month in range(1, last_month + 1):
            earlier, now = self.investment.get(month_key(year - 1, month)), self.investment.get(month_key(year, month))
            if earlier is not None and now is not None:
                before, this, paired = before + earlier.amount_wan, this + now.amount_wan, True
        return (before, this) if paired else (None, 0.0)

    def cumulative_wan(self, as_of: date) -> float:
        """Every month known, of every year, up to ``as_of``'s month: completion since the
        project began, as far as sitepulse holds its reports."""
        last = f"{as_of:%Y-%m}"
        return sum(report.amount_wan for month, report in self.investment.items() if month <= last)

    def state_on(self, day: date) -> State:
        """The machine state after the last judged day on or before ``day``."""
        judged = [d for d in self.days if d <= day]
        return self.days[max(judged)].machine_state if judged else State.NOT_STARTED

    def has_started_by(self, day: date) -> bool:
        """Started ever: the stored start (a ``started`` event) or a judged day out of
        ``not_started``."""
        if self.started_on is not None and self.started_on <= day:
            return True
        return any(d <= day and j.machine_state != State.NOT_STARTED for d, j in self.days.items())

    def exempt_in(self, period: Period) -> bool:
        """An approved stoppage overlaps the period: the project is left out of ranking."""
        return any(s.first <= period.last and s.last >= period.first for s in self.stoppages)

    def judged_working_days(self, period: Period) -> tuple[int, int]:
        """(stalled, judged) working days of the period that count for the stall share:
        started or stalled days; offline, stoppage and not-yet-started days do not."""
        stalled = judged = 0
        for day, fact in self.days.items():
            if day not in period or not fact.working_day or fact.label not in (DayLabel.STARTED, DayLabel.STALLED):
                continue
            judged += 1
            stalled += fact.label == DayLabel.STALLED
        return stalled, judged


def month_days(month: str) -> Period:
    year, number = (int(part) for part in month.split("-"))
    return Period(month, date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1]))
