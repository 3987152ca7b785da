"""The review reads the problem ledger a page at a time, only the columns that decide
whether a problem must be chased, then the full rows of those problems: what it finds is
what one full read of every problem's series finds, across page boundaries."""

from __future__ import annotations

import asyncio
import re
from datetime import date

import pytest

from sitepulse.agents.core.problems import overdue_on
from sitepulse.sink import influx, stored
from sitepulse.sink.influx import Series
from sitepulse.sink.stored import problems_from, problems_to_chase

COLUMNS = ["time", "closed_at", "detail", "due", "kind", "leader", "opened_at", "opened_day", "overdue_since", "problem_id", "project_id"]
REVIEW_DAY = date(2026, 3, 21)


def ledger(count: int) -> list[list]:
    """Rows in time order, as InfluxDB answers a statement without GROUP BY: problems
    open, closed, already marked overdue, not due yet, or half written; some have a
    second row (a later revision at another time)."""
    rows = []
    for n in range(count):
        project, problem = f"NB-{n % 7:04d}", f"suspicious:NB-{n % 7:04d}::2026-03-{n % 28 + 1:02d}:{n}"
        closed = "2026-03-15T09:00:00+08:00" if n % 4 == 1 else None
        marked = "2026-03-12" if n % 6 == 2 else None
        due = "2026-03-25" if n % 9 == 3 else "2026-03-10"
        opened_at = None if n % 11 == 5 else "2026-03-01T10:00:00+08:00"
        rows.append([n * 1000, closed, f"第{n}条", due, "suspicious", "王伟", opened_at, "2026-03-01", marked, problem, project])
        if n % 5 == 0:
            rows.append([n * 1000 + 1, None, f"第{n}条 (改)", "2026-03-20", "suspicious", "王伟", "2026-03-01T10:00:00+08:00",
                         "2026-03-01", None, problem, project])
    return sorted(rows, key=lambda row: row[0])


def grouped(rows: list[list]) -> list[Series]:
    series: dict[tuple[str, str], Series] = {}
    for row in rows:
        key = (row[10], row[9])
        series.setdefault(key, Series("problem", {"project_id": key[0], "problem_id": key[1]}, COLUMNS)).values.append(row)
    return [series[key] for key in sorted(series)]


@pytest.mark.parametrize("page_rows", [1, 3, 10, 1000])
def test_the_review_chases_what_one_full_read_finds(monkeypatch, page_rows):
    rows = ledger(60)
    monkeypatch.setattr(stored, "PAGE_ROWS", page_rows)
    monkeypatch.setattr(influx, "VALUES_PER_STATEMENT", 4)
    read_in_full: list[str] = []

    async def query(request: str) -> list[list[Series]]:
        answers = []
        for statement in request.split("; "):
            if paged := re.search(r"^SELECT (.+) FROM problem LIMIT (\d+) OFFSET (\d+)$", statement):
                names = [name.strip('"') for name in paged.group(1).split(", ")]
                assert "detail" not in names and "*" not in names  # the ledger's pages carry only what decides
                limit, offset = int(paged.group(2)), int(paged.group(3))
                picked = [[row[COLUMNS.index(name)] for name in ["time", *names]] for row in rows[offset : offset + limit]]
                answers.append([Series("problem", {}, ["time", *names], picked)])
            else:
                ids = re.findall(r"problem_id = '([^']+)'", statement)
                assert statement.startswith("SELECT * FROM problem WHERE ") and len(ids) <= 4
                read_in_full.extend(ids)
                answers.append(grouped([row for row in rows if row[9] in ids]))
        return answers

    known, chased = asyncio.run(problems_to_chase(query, REVIEW_DAY))
    everything = problems_from(grouped(rows))
    expected = [p for p in overdue_on(everything, REVIEW_DAY) if p.overdue_since is None]
    assert known == {p.problem_id for p in everything}
    assert chased == sorted(expected, key=lambda p: (p.project_id, p.problem_id))
    assert chased and all(p.detail and p.leader == "王伟" for p in chased)  # read in full
    assert sorted(read_in_full) == sorted({p.problem_id for p in expected})  # and only those
