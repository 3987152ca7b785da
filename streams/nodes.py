"""Plan nodes (细账) from people: the plan loaded from a CSV (``project_id,node,
planned_date``) and a node reported done, each published to the compacted nodes topic
and audited like ``registry load``. A plan loads whole or not at all."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import msgspec

from ..runtime.settings import Settings
from .audit import publish_audited
from .contract import NODE_COLUMNS, NODES_TOPIC, NodeRecord
from .registry import numbered_rows, read_registry_topic
from .topics import read_whole_topic

MAX_NODE_NAME = 64


class NodeFileError(ValueError):
    """The plan cannot be loaded; the message lists every bad line (Chinese, for operators)."""


def read_nodes_csv(path: Path, registered: set[str]) -> list[NodeRecord]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        records, problems, seen = [], [], {}
        for line_number, row in numbered_rows(handle, NODE_COLUMNS, "计划节点表", NodeFileError):
            try:
                record = node_plan(row.get("project_id") or "", row.get("node") or "", row.get("planned_date") or "", registered)
            except ValueError as exc:
                problems.append(f"第 {line_number} 行: {exc}")
                continue
            key = (record.project_id, record.node)
            if key in seen:
                problems.append(f"第 {line_number} 行: {record.project_id} 的节点「{record.node}」与第 {seen[key]} 行重复")
                continue
            seen[key] = line_number
            records.append(record)
    if problems:
        raise NodeFileError("计划节点表有误, 未加载:\n" + "\n".join(problems))
    if not records:
        raise NodeFileError("计划节点表没有数据行, 未加载")
    return records


def node_plan(project_id: str, node: str, planned_date: str, registered: set[str]) -> NodeRecord:
    project_id, node = project_id.strip(), node.strip()
    if project_id not in registered:
        raise ValueError(f"项目 {project_id or '(空)'} 不在登记表中")
    if not node or len(node) > MAX_NODE_NAME or any(ord(ch) < 32 for ch in node) or "/" in node:
        raise ValueError(f"节点名称「{node}」应为 1–{MAX_NODE_NAME} 个字符, 不含控制字符和 /")
    return NodeRecord(project_id, node, planned_date=_day(planned_date, "planned_date"))


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name} 应为 YYYY-MM-DD, 实为「{text}」") from None


def load_nodes_file(settings: Settings, path: Path, reason: str) -> int:
    records = read_nodes_csv(path, {entry.project_id for entry in read_registry_topic(settings)})
    projects = len({record.project_id for record in records})
    publish_nodes(settings, records, "nodes_load", f"{path.name}: {projects} 个项目, {len(records)} 个节点", reason)
    return len(records)


def publish_nodes(settings: Settings, records: Iterable[NodeRecord], action: str, subject: str, reason: str) -> None:
    publish_audited(settings, NODES_TOPIC, ((record.key, msgspec.json.encode(record)) for record in records), action, subject, reason)


def planned_on_topic(settings: Settings) -> dict[tuple[str, str], date]:
    """The plan as it stands on the nodes topic: (project, node) -> planned date."""
    decoder = msgspec.json.Decoder(NodeRecord)
    planned = {}
    for record in read_whole_topic(settings, NODES_TOPIC):
        try:
            node = decoder.decode(record.value) if record.value else None
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # the worker's nodes agent dead-letters it
        if node is not None and node.planned_date is not None:
            planned[(node.project_id, node.node)] = node.planned_date
    return planned


def report_node_done(settings: Settings, project_id: str, node: str, done: str, reason: str) -> NodeRecord:
    """A node must be planned before it is reported done."""
    record = NodeRecord(project_id.strip(), node.strip(), done_date=_day(done, "完成日期"))
    planned = planned_on_topic(settings)
    if (record.project_id, record.node) not in planned:
        known = sorted(n for p, n in planned if p == record.project_id)
        raise ValueError(f"项目 {record.project_id} 没有计划节点「{record.node}」" + (f" (已有: {'、'.join(known)})" if known else " (尚未加载计划节点)"))
    publish_nodes(settings, [record], "node_done", f"{record.project_id} 「{record.node}」于 {record.done_date} 完成", reason)
    return record
