"""The problem ledger in the stream: every event on ``sitepulse.events`` is stored (for
boards and the report) and folded into the ledger, whose problems live in InfluxDB. The
problems of a batch's projects are read first, so the worker keeps no ledger state and
any worker can take over any partition."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from ..streams.contract import ProjectEvent
from .core.problems import LedgerInput, ProblemLedger
from ..sink.stored import problem_query, problems_from
from ..sink.influx import RetryingInflux, project_conditions
from ..sink.points import event_point, meter_status_point, problem_point


def ledger_input(event: ProjectEvent) -> LedgerInput:
    return LedgerInput(
        event.kind, event.project_id, event.at, event.day, event.detail, event.leader, event.district, event.problem_id,
        event.category, event.department, event.measures, event.due, event.node, event.owner_person, event.reason,
    )


class LedgerHandler:
    def __init__(self, influx: RetryingInflux, tz: ZoneInfo) -> None:
        self.influx = influx
        self.tz = tz

    async def handle(self, events: Sequence[ProjectEvent]) -> int:
        """Store the events, update the ledger; returns how many problems changed."""
        if not events:
            return 0
        points = [event_point(event, self.tz) for event in events]
        points.extend(meter_status_point(e) for e in events if e.kind in ("offline", "online") and e.meter_id)
        projects = {e.project_id for e in events if e.project_id}
        ledger = ProblemLedger()
        if projects:
            results = await self.influx.query(";".join(problem_query(condition=c) for c in project_conditions(projects)))
            ledger = ProblemLedger(problems_from(series for series_list in results for series in series_list))
        changed = {}
        for event in events:
            if event.project_id:
                for problem in ledger.apply(ledger_input(event)):
                    changed[problem.problem_id] = problem
        points.extend(problem_point(problem, self.tz) for problem in changed.values())
        await self.influx.write(points)
        return len(changed)
