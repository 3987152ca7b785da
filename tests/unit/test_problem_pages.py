"""The review reads the problem ledger a page at a time: the problems it finds are those
one read of every problem's series finds, in the same order, across page boundaries."""

from __future__ import annotations

import asyncio
import re

import pytest

from sitepulse.sink import stored
from sitepulse.sink.influx import Series
from sitepulse.sink.stored import problem_pages, problems_from

COLUMNS = ["time", "detail", "due", "kind", "opened_at", "opened_day", "problem_id", "project_id"]


def ledger(count: int) -> list[list]:
    """Rows in time order, as InfluxDB answers a statement without GROUP BY; some
    problems have a second row (a later revision at another time)."""
    rows = []
    for n in range(count):
        project, problem = f"NB-{n % 7:04d}", f"suspicious:NB-{n % 7:04d}::2026-03-{n % 28 + 1:02d}:exact_flat"
        rows.append([n * 1000, f"第{n}条", "2026-03-10", "suspicious", "2026-03-01T10:00:00+08:00", "2026-03-01", problem, project])
        if n % 5 == 0:
            rows.append([n * 1000 + 1, f"第{n}条 (改)", "2026-03-20", "suspicious", "2026-03-01T10:00:00+08:00", "2026-03-01", problem, project])
    return sorted(rows, key=lambda row: row[0])


@pytest.mark.parametrize("page_rows", [1, 3, 10, 1000])
def test_pages_find_what_one_grouped_read_finds(monkeypatch, page_rows):
    rows = ledger(60)
    monkeypatch.setattr(stored, "PAGE_ROWS", page_rows)

    async def query(statement: str) -> list[list[Series]]:
        limit, offset = map(int, re.search(r"LIMIT (\d+) OFFSET (\d+)", statement).groups())
        return [[Series("problem", {}, COLUMNS, rows[offset : offset + limit])]]

    async def read_all() -> list:
        found = []
        async for page in problem_pages(query):
            found.extend(page)
        return found

    paged = asyncio.run(read_all())
    grouped: dict[tuple[str, str], Series] = {}
    for row in rows:
        key = (row[7], row[6])
        grouped.setdefault(key, Series("problem", {"project_id": key[0], "problem_id": key[1]}, COLUMNS)).values.append(row)
    everything = problems_from(grouped[key] for key in sorted(grouped))
    key = lambda p: (p.project_id, p.problem_id)  # noqa: E731 - what the review sorts by
    assert sorted(paged, key=key) == everything
    assert len(paged) == len(rows)
