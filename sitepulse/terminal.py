"""Tables for the terminal, drawn with ``rich`` (it measures Chinese characters as two
columns wide, so the columns line up)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from .agents.core.problems import Problem
from .reports import Attention

_CLOSED_BY = {"auto": "复工自动销号", "manual": "人工销号"}
_KINDS = {"stalled": "停工", "suspicious": "用电异常"}


def _console() -> Console:
    # Wide enough for a table of Chinese names when stdout is a pipe, not a terminal.
    console = Console()
    return console if console.is_terminal else Console(width=200, soft_wrap=False)


def _print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], when_empty: str) -> None:
    console = _console()
    if not rows:
        console.print(when_empty)
        return
    table = Table(title=f"{title} ({len(rows)})")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def attention_table(rows: Sequence[Attention]) -> None:
    _print_table(
        "需要关注的项目",
        ("项目编号", "项目名称", "区县", "责任领导", "最新状态", "日期", "活跃指数", "原因"),
        [
            (r.project_id, r.name, r.district, r.leader, r.state, r.day, "" if r.activity_index is None else f"{min(r.activity_index, 1.5):.2f}", "; ".join(r.reasons))
            for r in rows
        ],
        "当前没有需要关注的项目。",
    )


def problems_table(problems: Sequence[Problem]) -> None:
    def state(p: Problem) -> str:
        return "未销号" if p.is_open else f"{_CLOSED_BY.get(p.closed_by or '', '已销号')} {p.closed_at:%m-%d}"

    _print_table(
        "问题台账",
        ("问题编号", "项目编号", "类型", "区县", "责任领导", "发现日期", "状态", "说明"),
        [
            (p.problem_id, p.project_id, _KINDS.get(p.kind, p.kind), p.district or "", p.leader or "", p.opened_day.isoformat(), state(p), p.note or p.detail)
            for p in problems
        ],
        "问题台账为空。",
    )
