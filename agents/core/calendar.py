"""Working days: China's statutory holidays and adjusted working days (调休), from the
``chinese-calendar`` package, plus local overrides (years the package does not know yet)
and per-project approved stoppages (force majeure, ordered halts)."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from datetime import date
from pathlib import Path

import chinese_calendar


@dataclass(frozen=True, slots=True)
class Stoppage:
    """An approved halt: its days are neither stalls nor part of the baseline."""

    project_id: str
    first: date
    last: date
    reason: str

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@lru_cache(maxsize=4096)
def is_spring_festival(day: date) -> bool:
    """A day of the Spring Festival holiday (the break State Grid's 复工 is counted after)."""
    try:
        _, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return False
    return name == chinese_calendar.Holiday.spring_festival.value


class WorkCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None, stoppages: Iterable[Stoppage] = ()) -> None:
        self._overrides = dict(overrides or {})
        # Every project's timeline asks about the same few hundred dates, weeks of them
        # per judgement: the package's answer (~25 µs) is asked once per date.
        self._national: dict[date, bool] = {}
        self._stoppages: dict[str, list[Stoppage]] = defaultdict(list)
        self._revisions: dict[str, int] = defaultdict(int)  # stoppages added per project
        for stoppage in stoppages:
            self.add_stoppage(stoppage)

    def add_stoppage(self, stoppage: Stoppage) -> None:
        if stoppage.last < stoppage.first:
            raise ValueError(f"stoppage ends ({stoppage.last}) before it starts ({stoppage.first})")
        # One stoppage per project and first day: adding it again amends it (new end, reason).
        kept = [s for s in self._stoppages[stoppage.project_id] if s.first != stoppage.first]
        self._stoppages[stoppage.project_id] = kept + [stoppage]
        self._revisions[stoppage.project_id] += 1

    def revision_of(self, project_id: str) -> int:
        """Changes whenever the project's working days change: what a project judged
        before that is judged again."""
        return self._revisions.get(project_id, 0)

    def stoppages_of(self, project_id: str) -> list[Stoppage]:
        return list(self._stoppages.get(project_id, ()))

    def is_workday(self, day: date) -> bool:
        """A working day for everyone: not a weekend or statutory holiday, or a 调休 day."""
        if day in self._overrides:
            return self._overrides[day]
        known = self._national.get(day)
        if known is None:
            try:
                known = chinese_calendar.is_workday(day)
            except NotImplementedError:
                # A year the package does not cover yet: weekdays work until an override says otherwise.
                known = day.weekday() < 5
            self._national[day] = known
        return known

    def stoppage(self, project_id: str, day: date) -> Stoppage | None:
        stoppages = self._stoppages.get(project_id)
        if not stoppages:  # most projects: asked for every day judged or resumed
            return None
        return next((s for s in stoppages if s.covers(day)), None)

    def is_working_day(self, project_id: str, day: date) -> bool:
        """A day on which this project is expected to work."""
        return self.is_workday(day) and self.stoppage(project_id, day) is None

    @classmethod
    def with_override_file(cls, path: Path | None, stoppages: Iterable[Stoppage] = ()) -> WorkCalendar:
        """Overrides from a CSV with columns ``date,workday`` (workday: 1 or 0)."""
        overrides = {}
        if path is not None:
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    overrides[date.fromisoformat(row["date"].strip())] = row["workday"].strip() in {"1", "true", "yes"}
        return cls(overrides, stoppages)
