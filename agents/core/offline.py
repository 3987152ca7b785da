"""Offline meters, judged in event time.

The stream's own clock is the newest reading time seen (other projects' readings move it
on), so a replay of history raises the same offline alarms as live processing did. When
the whole stream goes quiet, wall-clock time moves the clock on instead, so a silent
network is noticed too.
"""

from __future__ import annotations

from dataclasses import dataclass

from .indicators import GAP_TOLERANCE_INTERVALS

MeterKey = tuple[str, str]  # (project_id, meter_id)


class EventClock:
    def __init__(self, quiet_after_s: float = 60.0) -> None:
        self.quiet_after_s = quiet_after_s
        self.newest_ms: int | None = None
        self._wall_at_newest: float = 0.0

    def observe(self, ts_ms: int, wall_s: float) -> None:
        if self.newest_ms is None or ts_ms > self.newest_ms:
            self.newest_ms = ts_ms
            self._wall_at_newest = wall_s

    def now_ms(self, wall_s: float) -> int | None:
        if self.newest_ms is None:
            return None
        quiet_s = wall_s - self._wall_at_newest
        return self.newest_ms + int(quiet_s * 1000) if quiet_s > self.quiet_after_s else self.newest_ms


@dataclass(frozen=True, slots=True)
class OfflineChange:
    project_id: str
    meter_id: str
    offline: bool  # True: went offline; False: reports again
    last_reading_ms: int


class MeterWatch:
    """Last reading of every meter; says when one is overdue and when it is back."""

    def __init__(self, tolerance_intervals: int = GAP_TOLERANCE_INTERVALS) -> None:
        self.tolerance_intervals = tolerance_intervals
        self._last: dict[MeterKey, tuple[int, int]] = {}
        self._offline: set[MeterKey] = set()

    def seen(self, project_id: str, meter_id: str, ts_ms: int, interval_s: int) -> OfflineChange | None:
        key = (project_id, meter_id)
        previous = self._last.get(key)
        if previous is not None and ts_ms <= previous[0]:
            return None  # a late or repeated reading says nothing about the meter now
        self._last[key] = (ts_ms, interval_s)
        if key in self._offline:
            self._offline.discard(key)
            return OfflineChange(project_id, meter_id, False, ts_ms)
        return None

    def overdue(self, clock_ms: int) -> list[OfflineChange]:
        changes = []
        for key, (ts_ms, interval_s) in self._last.items():
            if key not in self._offline and clock_ms - ts_ms > self.tolerance_intervals * interval_s * 1000:
                self._offline.add(key)
                changes.append(OfflineChange(key[0], key[1], True, ts_ms))
        return changes

    def is_offline(self, project_id: str, meter_id: str) -> bool:
        return (project_id, meter_id) in self._offline
