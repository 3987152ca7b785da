"""What the stream worker stores and reads back, as typed operations.

The worker's only InfluxQL: raw readings and day totals written, and read back for a
restart or a rebuild (stored days of these projects since..., stored readings of these
days, each meter's last reading, the registry and stoppages). ``WorkerStore`` is the
protocol the stream adapters use; ``InfluxWorkerStore`` is the real one on InfluxDB 1.x
or 2.x (InfluxQL reads work on both).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from ..agents.core.calendar import Stoppage
from ..agents.core.daily import DailyEnergy, MeterReading, MeterRun, day_start, epoch_ms
from ..agents.core.indicators import DayIndicators, DayLabel, Machine, State
from ..agents.core.judge import Judgement, StoredDay
from ..agents.core.suspicion import Carried
from ..streams.contract import DailyField as F, InvestmentReport, Measurement, RegistryEntry
from .influx import RetryingInflux, project_conditions
from .points import daily_point, decode_fingerprints, indicator_point, investment_point, investment_revision_point, reading_lines, status_point
from .stored import load_reference

# A reading belongs to the day holding its interval's middle; with intervals of at most
# a day, it is stamped no later than 12 h after that day ends.
_STAMP_REACH = timedelta(hours=12)


class WorkerStore(Protocol):
    async def write(self, points: Sequence[str]) -> None: ...
    async def write_batch(self, readings: Sequence[MeterReading | MeterRun], energies: Iterable[DailyEnergy]) -> None: ...
    async def write_judgement(self, judgement: Judgement) -> None: ...
    async def write_investment(self, reports: Sequence[InvestmentReport]) -> None: ...
    async def reference(self) -> tuple[dict[str, RegistryEntry], list[Stoppage]]: ...
    async def last_meter_readings(self) -> list[tuple[str, str, int, int]]: ...
    async def recent_days(self, unjudged_since_ms: int, stored_since_ms: int) -> tuple[list[DailyEnergy], dict[str, date]]: ...
    async def stored_days(self, project_ids: Sequence[str], since_ms: int) -> dict[str, list[StoredDay]]: ...
    async def stored_readings(self, days: Mapping[date, set[str]]) -> list[MeterReading]: ...


class InfluxWorkerStore:
    def __init__(self, influx: RetryingInflux, tz: ZoneInfo) -> None:
        self.influx = influx
        self.tz = tz

    async def write(self, points: Sequence[str]) -> None:
        await self.influx.write(points)

    async def write_batch(self, readings: Sequence[MeterReading | MeterRun], energies: Iterable[DailyEnergy]) -> None:
        """A batch's raw readings and the day totals they change, in one request: as two
        (with the readings' sliver over WRITE_CHUNK, three), the day-packed leg ran
        5–8 % slower (docs/performance.md, tenth part)."""
        lines = reading_lines(readings)
        lines += [daily_point(energy, self.tz) for energy in energies]
        await self.influx.write(lines)

    async def write_judgement(self, judgement: Judgement) -> None:
        await self.influx.write(judgement_points(judgement, self.tz))

    async def write_investment(self, reports: Sequence[InvestmentReport]) -> None:
        # The month's figure for the boards, and the report itself as one more revision.
        await self.influx.write([point for report in reports for point in (investment_point(report, self.tz), investment_revision_point(report))])

    async def reference(self) -> tuple[dict[str, RegistryEntry], list[Stoppage]]:
        return await load_reference(self.influx.query)

    async def last_meter_readings(self) -> list[tuple[str, str, int, int]]:
        (series_list,) = await self.influx.query(
            f"SELECT last(interval_s) FROM {Measurement.POWER_READING} GROUP BY {Measurement.TAG_PROJECT}, {Measurement.TAG_METER}"
        )
        return [
            (series.tags[Measurement.TAG_PROJECT], series.tags[Measurement.TAG_METER], ts_ms, int(interval_s))
            for series in series_list
            for ts_ms, interval_s in series.values
        ]

    async def recent_days(self, unjudged_since_ms: int, stored_since_ms: int) -> tuple[list[DailyEnergy], dict[str, date]]:
        """Day totals stored since ``unjudged_since_ms`` and not judged, and the newest
        stored day of every project stored since ``stored_since_ms``."""
        unjudged, newest_days = await self.influx.query(
            f"SELECT * FROM {Measurement.POWER_DAILY} WHERE time >= {unjudged_since_ms}ms GROUP BY {Measurement.TAG_PROJECT};"
            f'SELECT last("{F.DATE}") FROM {Measurement.POWER_DAILY} WHERE time >= {stored_since_ms}ms GROUP BY {Measurement.TAG_PROJECT}'
        )
        energies = [
            stored_energy(series.tags[Measurement.TAG_PROJECT], row)
            for series in unjudged
            for row in series.rows()
            if row.get(F.DATE) and not row.get(F.MACHINE_STATE) and row.get(F.READINGS) is not None
        ]
        newest = {series.tags[Measurement.TAG_PROJECT]: date.fromisoformat(day) for series in newest_days for _ts, day in series.values}
        return energies, newest

    async def stored_days(self, project_ids: Sequence[str], since_ms: int) -> dict[str, list[StoredDay]]:
        results = await self.influx.query(
            ";".join(
                f"SELECT * FROM {Measurement.POWER_DAILY} WHERE {projects} AND time >= {since_ms}ms GROUP BY {Measurement.TAG_PROJECT}"
                for projects in project_conditions(project_ids)
            )
        )
        stored: dict[str, list[StoredDay]] = defaultdict(list)
        for series in (series for series_list in results for series in series_list):
            project_id = series.tags[Measurement.TAG_PROJECT]
            for row in series.rows():
                if row.get(F.DATE):
                    judged = stored_indicators(project_id, row) if row.get(F.MACHINE_STATE) else None
                    stored[project_id].append(StoredDay(stored_energy(project_id, row), judged))
        return stored

    async def stored_readings(self, days: Mapping[date, set[str]]) -> list[MeterReading]:
        """Readings already stored for these days and projects: one request, a statement
        per day and group of projects."""
        statements = [self._readings_query(day, projects) for day in sorted(days) for projects in project_conditions(days[day])]
        if not statements:
            return []
        results = await self.influx.query(";".join(statements))
        return [
            MeterReading(series.tags[Measurement.TAG_PROJECT], series.tags[Measurement.TAG_METER], ts_ms, interval_s, kwh)
            for series_list in results
            for series in series_list
            for ts_ms, kwh, interval_s in series.values
        ]

    def _readings_query(self, day: date, projects: str) -> str:
        start = day_start(day, self.tz)
        end = day_start(day + timedelta(days=1), self.tz) + _STAMP_REACH
        return (
            f"SELECT kwh, interval_s FROM {Measurement.POWER_READING} "
            f"WHERE {projects} AND time >= {epoch_ms(start)}ms AND time < {epoch_ms(end)}ms "
            f"GROUP BY {Measurement.TAG_PROJECT}, {Measurement.TAG_METER}"
        )


def judgement_points(judgement: Judgement, tz: ZoneInfo) -> list[str]:
    """The silent days' energy, each judged day's indicators and the status as of it."""
    points = [daily_point(energy, tz) for energy in judgement.silent_days]
    for judged in judgement.judged:
        points.append(indicator_point(judged.indicators, tz))
        points.append(status_point(judged.project, judged.indicators, judged.stalled_working_days, tz))
    return points


def stored_energy(project_id: str, row: dict) -> DailyEnergy:
    return DailyEnergy(
        project_id,
        date.fromisoformat(row[F.DATE]),
        float(row.get(F.KWH) or 0.0),
        int(row.get(F.READINGS) or 0),
        int(row.get(F.METERS) or 0),
        int(row.get(F.MAX_GAP_S) or 0),
        int(row.get(F.INTERVAL_S) or 0),
        bool(row.get(F.FLAT_LOAD)),
        row.get(F.LOAD_CV),
        row.get(F.DAY_NIGHT),
        decode_fingerprints(row.get(F.PROFILE)),
    )


def stored_indicators(project_id: str, row: dict) -> DayIndicators:
    return DayIndicators(
        project_id=project_id,
        day=date.fromisoformat(row[F.DATE]),
        kwh=float(row.get(F.KWH) or 0.0),
        baseline_kwh=row.get(F.BASELINE_KWH),
        activity_index=row.get(F.ACTIVITY_INDEX),
        label=DayLabel(row[F.STATE]),
        machine=Machine(State(row[F.MACHINE_STATE]), int(row.get(F.IDLE_RUN) or 0), int(row.get(F.BUSY_RUN) or 0)),
        working_day=bool(row.get(F.WORKING_DAY)),
        offline=bool(row.get(F.OFFLINE)),
        stable=bool(row.get(F.STABLE)),
        look=int(row.get(F.LOOK) or 0),
        load_cv=row.get(F.LOAD_CV),
        carried=Carried.decode(row.get(F.OPEN_RUNS)),
    )
