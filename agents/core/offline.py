"""Offline meters, judged in event time.

The stream's own clock is a watermark of reading times (other projects' readings move it
on), so a replay of history raises the same offline alarms as live processing did. When
the whole stream goes quiet, wall-clock time moves the clock on instead, so a silent
network is noticed too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .indicators import GAP_TOLERANCE_INTERVALS

MeterKey = tuple[str, str]  # (project_id, meter_id)
_STORED = "stored before restart"


class EventClock:
    """The stream's event-time clock: a watermark over the input partitions.

    Each partition is read in order, but one may run days ahead of another (a consumer
    fetches a large chunk of one partition at a time), so the clock is the slowest
    active partition's position. A partition's position is the earliest reading of the
    newest message read from it: a batch message spans up to a day, and a batch of
    another project covering the same day may follow it in the same partition, so the
    partition has not passed the batch's end, only its start (publishers send batches
    in order of their first reading; a single reading is its own start). A partition
    that has sent nothing for ``idle_after_s`` (wall time) stops holding the clock back;
    when all are idle, wall time moves the clock on from the newest reading. The clock
    never goes back.
    """

    def __init__(self, idle_after_s: float = 30.0) -> None:
        self.idle_after_s = idle_after_s
        self._newest: dict[object, int] = {}
        self._position: dict[object, int] = {}
        self._last_wall: dict[object, float] = {}
        self._expected: dict[object, float] = {}  # assigned partition -> wall time assigned
        self._watermark: int | None = None

    def expect(self, sources: set[object], wall_s: float) -> None:
        """The partitions this worker reads now; others no longer count."""
        self._expected = {source: self._expected.get(source, wall_s) for source in sources}
        for source in list(self._newest):
            if source not in sources:
                del self._newest[source], self._position[source], self._last_wall[source]

    def observe(self, ts_ms: int, wall_s: float, source: object = None, message_start_ms: int | None = None) -> None:
        """A reading from ``source``; ``message_start_ms``: the earliest reading of the
        message it came in (itself when left out)."""
        if ts_ms > self._newest.get(source, ts_ms - 1):
            self._newest[source] = ts_ms
        start = ts_ms if message_start_ms is None else message_start_ms
        if start > self._position.get(source, start - 1):
            self._position[source] = start
        self._last_wall[source] = wall_s

    def resume(self, ts_ms: int, wall_s: float) -> None:
        """Start from the newest reading stored before a restart, as a source that is
        already idle: assigned partitions that send take over at once, and if none does,
        wall time moves the clock on from there (a long-silent stream is still noticed)."""
        if not self._newest:
            self._newest[_STORED] = self._position[_STORED] = ts_ms
            self._last_wall[_STORED] = wall_s - self.idle_after_s

    def newest_of(self, source: object = None) -> int | None:
        return self._newest.get(source)

    def now_ms(self, wall_s: float) -> int | None:
        waiting = [s for s, since in self._expected.items() if s not in self._newest and wall_s - since <= self.idle_after_s]
        # Resumed but not yet assigned any partition: nothing says the stream has moved on.
        unassigned = _STORED in self._newest and not self._expected
        if waiting or not self._newest or unassigned:
            return self._watermark
        active = [self._position[s] for s in self._newest if wall_s - self._last_wall[s] <= self.idle_after_s]
        if active:
            candidate = min(active)
        else:
            candidate = max(self._newest.values()) + int((wall_s - max(self._last_wall.values())) * 1000)
        if self._watermark is None or candidate > self._watermark:
            self._watermark = candidate
        return self._watermark


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

    def seen_run(self, project_id: str, meter_id: str, stamps_ms: Iterable[int], newest_ms: int, interval_s: int) -> OfflineChange | None:
        """``seen`` of each of a meter's readings in time order (``stamps_ms``, the last
        of them ``newest_ms``) in one step: only a meter that was offline needs the first
        reading newer than its last one, for the time it reported again."""
        key = (project_id, meter_id)
        previous = self._last.get(key)
        if previous is not None and newest_ms <= previous[0]:
            return None
        change = None
        if key in self._offline:
            back_ms = next(ts_ms for ts_ms in stamps_ms if previous is None or ts_ms > previous[0])
            change = self.seen(project_id, meter_id, back_ms, interval_s)
        self._last[key] = (newest_ms, interval_s)
        return change

    def overdue(self, clock_ms: int) -> list[OfflineChange]:
        changes = []
        for key, (ts_ms, interval_s) in self._last.items():
            if key not in self._offline and clock_ms - ts_ms > self.tolerance_intervals * interval_s * 1000:
                self._offline.add(key)
                changes.append(OfflineChange(key[0], key[1], True, ts_ms))
        return changes

    def is_offline(self, project_id: str, meter_id: str) -> bool:
        return (project_id, meter_id) in self._offline
