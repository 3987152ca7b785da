"""The project registry: read and check the CSV, publish it to the compacted topic."""

from __future__ import annotations

import csv
import math
from datetime import date
from pathlib import Path

import msgspec

from .contract import REGISTRY_COLUMNS, REGISTRY_TOPIC, STOPPAGE_COLUMNS, STOPPAGES_TOPIC, RegistryEntry, StoppageRecord
from ..runtime.settings import Settings
from .publisher import SitePublisher
from .topics import read_whole_topic

_NUMERIC = {"annual_plan_wan", "capacity_kva", "lat", "lon", "total_investment_wan"}
_AMOUNTS = {"annual_plan_wan", "capacity_kva", "total_investment_wan"}
# May be empty, and older CSVs may lack the column.
_OPTIONAL = {
    "lat", "lon", "video_url", "total_investment_wan", "owner_person", "owner_phone", "leader_title", "partner_departments",
    "investment_lumpy",
}
_BOOLEAN = {"investment_lumpy"}
_TRUE, _FALSE = {"true", "1", "yes", "是"}, {"false", "0", "no", "否"}


class RegistryError(ValueError):
    """The CSV cannot be loaded; the message lists every bad line, in Chinese for operators."""


def read_registry_csv(path: Path) -> list[RegistryEntry]:
    """All rows, or RegistryError naming every bad row: a registry loads whole or not at all."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        entries, problems, seen = [], [], {}
        for line_number, row in numbered_rows(handle, REGISTRY_COLUMNS, "登记表"):
            try:
                entry = msgspec.convert(_typed_row(row), RegistryEntry)
            except (msgspec.ValidationError, ValueError) as exc:
                problems.append(f"第 {line_number} 行: {exc}")
                continue
            if entry.project_id in seen:
                problems.append(f"第 {line_number} 行: 项目编号 {entry.project_id} 与第 {seen[entry.project_id]} 行重复")
                continue
            seen[entry.project_id] = line_number
            entries.append(entry)
    if problems:
        raise RegistryError("登记表有误, 未加载:\n" + "\n".join(problems))
    return entries


def numbered_rows(handle, columns: tuple[str, ...], table_name: str, refused: type[Exception] = RegistryError):
    """(line number, row) of a CSV that has every required column, else ``refused``
    naming the missing ones: the operators' files (registry, stoppages, investment,
    plan nodes) all load this way."""
    reader = csv.DictReader(handle)
    missing = [column for column in columns if column not in (reader.fieldnames or []) and column not in _OPTIONAL]
    if missing:
        raise refused(f"{table_name}缺少列: {', '.join(missing)}")
    return enumerate(reader, start=2)


def _typed_row(row: dict[str, str]) -> dict[str, object]:
    typed: dict[str, object] = {}
    for column in REGISTRY_COLUMNS:
        value = (row.get(column) or "").strip()
        if column in _OPTIONAL and not value:
            continue
        if column in _NUMERIC:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"{column} 应为数字, 实为 {value!r}") from None
            # InfluxDB refuses NaN and infinity (the whole batch with them); amounts are not negative.
            if not math.isfinite(number) or (column in _AMOUNTS and number < 0):
                raise ValueError(f"{column} 应为非负的有限数字, 实为 {value!r}")
            typed[column] = number
        elif column in _BOOLEAN:
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(f"{column} 应为 true 或 false, 实为 {value!r}")
            typed[column] = value.lower() in _TRUE
        else:
            if not value:
                raise ValueError(f"{column} 不能为空")
            typed[column] = value
    return typed


def publish_registry(entries: list[RegistryEntry], publisher: SitePublisher) -> int:
    for entry in entries:
        publisher.send_keyed(REGISTRY_TOPIC, entry.project_id.encode(), msgspec.json.encode(entry))
    publisher.flush()
    return len(entries)


def write_registry_csv(entries: list[RegistryEntry], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REGISTRY_COLUMNS)
        for entry in entries:
            writer.writerow(["" if (value := getattr(entry, column)) is None else value for column in REGISTRY_COLUMNS])


def read_stoppages_csv(path: Path) -> list[StoppageRecord]:
    """Approved stoppages (columns project_id,from_day,to_day,reason), all or none."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        records, problems = [], []
        for line_number, row in numbered_rows(handle, STOPPAGE_COLUMNS, "停工备案表"):
            try:
                records.append(stoppage_record(row["project_id"], row["from_day"], row["to_day"], row["reason"]))
            except ValueError as exc:
                problems.append(f"第 {line_number} 行: {exc}")
    if problems:
        raise RegistryError("停工备案表有误, 未加载:\n" + "\n".join(problems))
    return records


def stoppage_record(project_id: str, from_day: str, to_day: str, reason: str) -> StoppageRecord:
    """A checked stoppage; ValueError in Chinese when a field is wrong."""
    project_id, reason = (project_id or "").strip(), (reason or "").strip()
    if not project_id:
        raise ValueError("project_id 不能为空")
    if not reason:
        raise ValueError("停工原因(reason)不能为空: 备案须写明依据")
    try:
        first, last = date.fromisoformat((from_day or "").strip()), date.fromisoformat((to_day or "").strip())
    except ValueError:
        raise ValueError(f"日期应为 YYYY-MM-DD, 实为 {from_day!r} / {to_day!r}") from None
    if last < first:
        raise ValueError(f"结束日 {last} 早于开始日 {first}")
    return StoppageRecord(project_id, first, last, reason)


def publish_stoppages(records: list[StoppageRecord], publisher: SitePublisher) -> int:
    for record in records:
        publisher.send_keyed(STOPPAGES_TOPIC, record.key, msgspec.json.encode(record))
    publisher.flush()
    return len(records)


def read_registry_topic(settings: Settings) -> list[RegistryEntry]:
    """The registry as it stands on its compacted topic: the newest row per project."""
    decoder = msgspec.json.Decoder(RegistryEntry)
    newest: dict[bytes, RegistryEntry | None] = {}
    for record in read_whole_topic(settings, REGISTRY_TOPIC):
        try:
            newest[record.key] = decoder.decode(record.value) if record.value else None
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # the worker's registry agent dead-letters it
    return [entry for entry in newest.values() if entry is not None]
