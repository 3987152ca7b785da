"""Activity indicators in the stream: the adapter around the pure judge
(``core/judge.py``).

It loads what the judge asks for from the store (what a restarted worker needs, the
timelines to rebuild), then for each judgement publishes the events and writes the
points — events first: a crash in between judges the day again after the restart and
publishes it again (same event id), instead of storing a judgement whose event was
never sent. No changelog topic is needed: the stored days are the judge's state.

Judgements go out on their way while the worker goes on (``judgements_on_their_way``),
one after the other, in the order they were made: a batch takes those it made into
the write its offsets wait for, so a crash before they land delivers the batch again
and judges it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from ..streams.contract import ProjectEvent
from ..sink.worker_store import WorkerStore
from .core.calendar import Stoppage
from .core.daily import DailyEnergy, DayKey, MeterReading
from .core.judge import UNJUDGED_LOOKBACK, REBUILD_REACH, Judge, Judgement, Rebuild

log = logging.getLogger("sitepulse.worker")

Publish = Callable[[list[ProjectEvent]], Awaitable[None]]


async def _nothing_on_its_way(project_ids: Iterable[str]) -> None:
    return None


class ActivityTracker:
    def __init__(self, judge: Judge, store: WorkerStore, publish: Publish) -> None:
        self.judge = judge
        self.store = store
        self.publish = publish
        self.judging_backlog = False  # more than a group of projects' days being judged
        # Awaited before these projects' stored days are read back: writes of theirs
        # still on their way land first.
        self.before_reading: Callable[[Iterable[str]], Awaitable[None]] = _nothing_on_its_way
        # Judgements published and written in the background, each after the one before
        # (the same day judged twice lands in order), with their projects; a batch takes
        # them into its own write (``take_judgements``), other callers wait (``settle``).
        self.judgements_on_their_way: list[tuple[asyncio.Future[None], set[str]]] = []
        self._last_judgement: asyncio.Future[None] | None = None

    async def observe(
        self, readings: Sequence[tuple[MeterReading, object, object]], energies: Iterable[tuple[DayKey, DailyEnergy]], wall_s: float
    ) -> None:
        self.judge.observe(readings, energies, wall_s)
        await self.advance(wall_s)

    async def advance(self, wall_s: float) -> None:
        """Judge the days the clock has passed; raise offline alarms."""
        await self._ensure_reference()
        due = self.judge.due(wall_s)
        if due is None:
            return
        if len(due.groups) > 1:
            log.info("judging the completed days of %d projects", sum(map(len, due.groups)))
            self.judging_backlog = True
        try:
            for group in due.groups:
                await self._rebuild(self.judge.wake(group))
                await self._emit(self.judge.judge_group(group, due.now_ms))
        finally:
            self.judging_backlog = False
        await self._emit(self.judge.judge_held(due.now_ms))

    async def add_stoppage(self, stoppage: Stoppage, wall_s: float) -> None:
        await self._ensure_reference()
        await self._rebuild(self.judge.add_stoppage(stoppage))
        self.judge.rejudge(stoppage.project_id)
        await self.advance(wall_s)

    async def _ensure_reference(self) -> None:
        """What the previous worker left in the store: its consumer goes on from
        committed offsets and will not see those records again."""
        if not self.judge.wants_reference:
            return  # taken, or not yet assigned partitions: other workers' projects are not ours
        self.judge.take_reference(*await self.store.reference())
        newest_ms = self.judge.take_last_readings(await self.store.last_meter_readings(), time.time())
        if newest_ms is not None:
            unjudged_since = newest_ms - int(UNJUDGED_LOOKBACK.total_seconds() * 1000)
            stored_since = newest_ms - int(REBUILD_REACH.total_seconds() * 1000)
            self.judge.take_unjudged(*await self.store.recent_days(unjudged_since, stored_since))
        self.judge.reference_taken = True

    async def _rebuild(self, rebuild: Rebuild | None) -> None:
        if rebuild is not None:
            await self.before_reading(rebuild.project_ids)
            for chunk in rebuild.chunks():
                self.judge.rebuild(chunk, await self.store.stored_days(chunk, rebuild.since_ms))

    async def _emit(self, judgement: Judgement) -> None:
        if not (judgement.events or judgement.silent_days or judgement.judged):
            return
        projects = {energy.project_id for energy in judgement.silent_days} | {judged.indicators.project_id for judged in judgement.judged}
        projects.update(event.project_id for event in judgement.events)
        sending = asyncio.ensure_future(self._publish_and_write(judgement, self._last_judgement))
        self._last_judgement = sending
        self.judgements_on_their_way.append((sending, projects))

    async def _publish_and_write(self, judgement: Judgement, previous: asyncio.Future[None] | None) -> None:
        if previous is not None:
            await previous  # (one that failed fails the rest: none lands out of order)
        if judgement.events:
            await self.publish(judgement.events)
        await self.store.write_judgement(judgement)

    def take_judgements(self) -> tuple[list[asyncio.Future[None]], set[str]]:
        """The judgements on their way that no write holds yet, and their projects."""
        taken, self.judgements_on_their_way = self.judgements_on_their_way, []
        return [sending for sending, _ in taken], set().union(*(projects for _, projects in taken))

    async def settle(self) -> None:
        """Wait for the judgements on their way, raising what one raised."""
        sending, _projects = self.take_judgements()
        if sending:
            await asyncio.shield(asyncio.gather(*sending))
