"""An in-memory ``WorkerStore`` for unit tests of the stream's adapters: it keeps what
InfluxDB would keep of readings and days (a day's energy and indicators merge on one
point, as fields do), so a restarted tracker can be rebuilt from it. The claim that
the worker works on InfluxDB is made by the integration tests against real influxd."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sitepulse.agents.core.calendar import Stoppage
from sitepulse.agents.core.daily import DailyEnergy, DayKey, MeterReading, MeterRun, day_start_ms
from sitepulse.agents.core.indicators import DayIndicators
from sitepulse.agents.core.judge import Judgement, StoredDay
from sitepulse.streams.contract import InvestmentReport, RegistryEntry


class MemoryStore:
    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.readings: dict[tuple[str, str, int], MeterReading] = {}
        self.energies: dict[DayKey, DailyEnergy] = {}
        self.indicators: dict[DayKey, DayIndicators] = {}
        self.statuses: dict[DayKey, int] = {}  # stalled working days as of the day
        self.registry: dict[str, RegistryEntry] = {}
        self.stoppages: list[Stoppage] = []
        self.points: list[str] = []

    async def write(self, points: Sequence[str]) -> None:
        self.points.extend(points)

    async def write_batch(self, readings: Sequence[MeterReading | MeterRun], energies: Iterable[DailyEnergy]) -> None:
        self.write_readings(readings)
        self.write_days(energies)

    def write_readings(self, readings: Sequence[MeterReading | MeterRun]) -> None:
        for reading in (held for item in readings for held in (item.readings() if isinstance(item, MeterRun) else [item])):
            # What InfluxDB gives back to a restarted worker: the day book's part.
            self.readings[(reading.project_id, reading.meter_id, reading.ts_ms)] = MeterReading(*reading[:5])

    def write_days(self, energies: Iterable[DailyEnergy]) -> None:
        for energy in energies:
            self.energies[(energy.project_id, energy.day)] = energy

    async def write_judgement(self, judgement: Judgement) -> None:
        self.write_days(judgement.silent_days)
        for judged in judgement.judged:
            key = (judged.indicators.project_id, judged.indicators.day)
            self.indicators[key] = judged.indicators
            self.statuses[key] = judged.stalled_working_days

    async def write_investment(self, reports: Sequence[InvestmentReport]) -> None:
        pass

    async def reference(self) -> tuple[dict[str, RegistryEntry], list[Stoppage]]:
        return dict(self.registry), list(self.stoppages)

    async def last_meter_readings(self) -> list[tuple[str, str, int, int]]:
        last: dict[tuple[str, str], MeterReading] = {}
        for reading in self.readings.values():
            key = (reading.project_id, reading.meter_id)
            if key not in last or reading.ts_ms > last[key].ts_ms:
                last[key] = reading
        return [(r.project_id, r.meter_id, r.ts_ms, r.interval_s) for r in last.values()]

    async def recent_days(self, unjudged_since_ms: int, stored_since_ms: int) -> tuple[list[DailyEnergy], dict[str, date]]:
        unjudged = [e for key, e in self.energies.items() if self._start_ms(key) >= unjudged_since_ms and key not in self.indicators and e.readings]
        newest: dict[str, date] = {}
        for (project_id, day) in self.energies:
            if self._start_ms((project_id, day)) >= stored_since_ms:
                newest[project_id] = max(day, newest.get(project_id, day))
        return unjudged, newest

    async def stored_days(self, project_ids: Sequence[str], since_ms: int) -> dict[str, list[StoredDay]]:
        wanted = set(project_ids)
        stored: dict[str, list[StoredDay]] = defaultdict(list)
        for key, energy in self.energies.items():
            if key[0] in wanted and self._start_ms(key) >= since_ms:
                stored[key[0]].append(StoredDay(energy, self.indicators.get(key)))
        return stored

    async def stored_readings(self, days: Mapping[date, set[str]]) -> list[MeterReading]:
        found = []
        for day, projects in days.items():
            start, end = day_start_ms(day, self.tz), day_start_ms(day + timedelta(days=1), self.tz) + 12 * 3_600_000
            found.extend(r for r in self.readings.values() if r.project_id in projects and start <= r.ts_ms < end)
        return found

    def _start_ms(self, key: DayKey) -> int:
        return day_start_ms(key[1], self.tz)
