"""Reporting periods: half-months by default (每半个月一调度), whole months, or any
range of days. A period knows the one before it, so "two consecutive periods" is
defined for every kind."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

_HALF_MONTH = re.compile(r"^(\d{4})-(\d{2})-H([12])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


class PeriodError(ValueError):
    """A period label that cannot be read; the message is for operators (Chinese)."""


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    first: date
    last: date

    @property
    def days(self) -> list[date]:
        return list(_days_between(self.first, self.last))

    def previous(self) -> Period:
        if _HALF_MONTH.match(self.label):
            return half_month_of(self.first - timedelta(days=1))
        if _MONTH.match(self.label):
            return month_of(self.first - timedelta(days=1))
        length = self.last - self.first
        last = self.first - timedelta(days=1)
        return day_range(last - length, last)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


@lru_cache(maxsize=256)
def _days_between(first: date, last: date) -> tuple[date, ...]:
    # Rankings ask a period for its days once per project: build them once.
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


def half_month_of(day: date) -> Period:
    """1st–15th is H1, 16th–end of month is H2."""
    if day.day <= 15:
        return Period(f"{day:%Y-%m}-H1", day.replace(day=1), day.replace(day=15))
    last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return Period(f"{day:%Y-%m}-H2", day.replace(day=16), last)


def month_of(day: date) -> Period:
    last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return Period(f"{day:%Y-%m}", day.replace(day=1), last)


def day_range(first: date, last: date) -> Period:
    if last < first:
        raise PeriodError(f"期间结束日 {last} 早于开始日 {first}")
    return Period(f"{first.isoformat()}..{last.isoformat()}", first, last)


def parse_period(label: str) -> Period:
    """``2026-03-H1``, ``2026-03-H2``, ``2026-03`` or ``2026-03-01..2026-03-10``."""
    text = label.strip()
    try:
        if match := _HALF_MONTH.match(text):
            year, month, half = int(match[1]), int(match[2]), match[3]
            return half_month_of(date(year, month, 1 if half == "1" else 16))
        if match := _MONTH.match(text):
            return month_of(date(int(match[1]), int(match[2]), 1))
        if match := _RANGE.match(text):
            return day_range(date.fromisoformat(match[1]), date.fromisoformat(match[2]))
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"期间 {label!r} 的日期无效: {exc}") from None
    raise PeriodError(f"无法识别的期间 {label!r}: 应为 2026-03-H1、2026-03-H2、2026-03 或 2026-03-01..2026-03-10")
