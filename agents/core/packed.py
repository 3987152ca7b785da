"""Values by day packed into one byte string, for state held for every project at once.

A worker keeps weeks of days for every project it owns and the leader's review reads
weeks of judged days of every project in a province: as dicts of small objects that cost
~250 bytes a day (3 GB at 100k projects); packed, ~10–30 bytes a day.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping
from datetime import date
from typing import ClassVar, Generic, Self, TypeVar

V = TypeVar("V")


def or_nan(value: float | None) -> float:
    """An optional number as a packed float: NaN for none."""
    return math.nan if value is None else value


def or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


class PackedDays(Mapping[date, V], Generic[V]):
    """A mapping of day to value, kept in day order as fixed-size records. A subclass
    gives the record ``LAYOUT`` (its first field is the day's ordinal) and how a value
    becomes the other fields and back."""

    __slots__ = ("_packed",)
    LAYOUT: ClassVar[struct.Struct]

    def __init__(self, values: Mapping[date, V] | None = None) -> None:
        ordered = sorted((values or {}).items())
        self._packed = bytearray(b"".join(self.LAYOUT.pack(day.toordinal(), *self.pack(value)) for day, value in ordered))

    def pack(self, value: V) -> tuple:
        raise NotImplementedError

    def unpack(self, day: date, fields: tuple) -> V:
        raise NotImplementedError

    def _ordinal_at(self, position: int) -> int | None:
        if position >= len(self):
            return None
        return self.LAYOUT.unpack_from(self._packed, position * self.LAYOUT.size)[0]

    def _position(self, ordinal: int) -> int:
        """Where ``ordinal`` is, or would go."""
        low, high = 0, len(self)
        while low < high:
            middle = (low + high) // 2
            if self._ordinal_at(middle) < ordinal:  # type: ignore[operator]
                low = middle + 1
            else:
                high = middle
        return low

    def __setitem__(self, day: date, value: V) -> None:
        ordinal = day.toordinal()
        position = self._position(ordinal)
        start = position * self.LAYOUT.size
        replaced = self.LAYOUT.size if self._ordinal_at(position) == ordinal else 0
        self._packed[start : start + replaced] = self.LAYOUT.pack(ordinal, *self.pack(value))

    def __getitem__(self, day: date) -> V:
        ordinal = day.toordinal()
        position = self._position(ordinal)
        if self._ordinal_at(position) != ordinal:
            raise KeyError(day)
        ordinal, *fields = self.LAYOUT.unpack_from(self._packed, position * self.LAYOUT.size)
        return self.unpack(day, tuple(fields))

    def __iter__(self) -> Iterator[date]:
        return (date.fromordinal(fields[0]) for fields in self.LAYOUT.iter_unpack(self._packed))

    def __len__(self) -> int:
        return len(self._packed) // self.LAYOUT.size

    def items(self) -> Iterator[tuple[date, V]]:  # type: ignore[override]
        for ordinal, *fields in self.LAYOUT.iter_unpack(self._packed):
            day = date.fromordinal(ordinal)
            yield day, self.unpack(day, tuple(fields))

    def items_from(self, day: date) -> list[tuple[date, V]]:
        """The days from ``day`` on, with their values (``items`` unpacks every day)."""
        start = self._position(day.toordinal()) * self.LAYOUT.size
        unpack, fromordinal = self.unpack, date.fromordinal
        found = []
        for ordinal, *fields in self.LAYOUT.iter_unpack(self._packed[start:]):
            on = fromordinal(ordinal)
            found.append((on, unpack(on, tuple(fields))))
        return found

    def column_max(self, field: int) -> object:
        """The largest value of one packed field (its place in the record, the day's
        ordinal being 0) over every day, without building the values (None: no days)."""
        return max((record[field] for record in self.LAYOUT.iter_unpack(self._packed)), default=None)

    def values(self) -> Iterator[V]:  # type: ignore[override]
        return (value for _, value in self.items())

    def first(self) -> date | None:
        ordinal = self._ordinal_at(0)
        return None if ordinal is None else date.fromordinal(ordinal)

    def last(self) -> date | None:
        ordinal = self._ordinal_at(len(self) - 1) if len(self) else None
        return None if ordinal is None else date.fromordinal(ordinal)

    def since(self, day: date) -> Self:
        """A copy holding the days from ``day`` on."""
        copy = type(self).__new__(type(self))
        copy._packed = self._packed[self._position(day.toordinal()) * self.LAYOUT.size :]
        return copy

    def drop_before(self, day: date) -> None:
        """Forget every day before ``day``; the days kept are copied to a string of their
        exact size (a string grown a day at a time holds ~15 % spare)."""
        self._packed = self._packed[self._position(day.toordinal()) * self.LAYOUT.size :]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"
