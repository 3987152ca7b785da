"""Structure figures for a change's note: the largest files and functions, where
InfluxQL text lives, and how many times stored field names are spelled in string
literals. Run from the repository root: ``python tools/structure_figures.py``."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import Counter
from pathlib import Path

SOURCE_DIRS = ("agents", "streams", "sitepulse", "dashboards", "sink", "runtime")
FIELDS = ("machine_state", "activity_index", "baseline_kwh", "working_day", "project_id", "meter_id", "suspicion", "kwh")
INFLUXQL = re.compile(r"\b(SELECT|SHOW|DROP|DELETE FROM|CREATE DATABASE)\b")


def sources() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in Path(d).rglob("*.py"))


def main() -> None:
    files = sources()
    print("largest files (lines):")
    for lines, path in sorted(((len(p.read_text().splitlines()), p) for p in files), reverse=True)[:8]:
        print(f"  {lines:5d}  {path}")
    functions = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{path}:{node.name}", type(node).__name__))
    print("largest classes and functions (lines):")
    for kind in ("ClassDef", "FunctionDef"):
        for lines, name, _ in sorted((f for f in functions if f[2] == kind or (kind == "FunctionDef" and f[2] == "AsyncFunctionDef")), reverse=True)[:5]:
            print(f"  {lines:5d}  {name}")
    spelled: Counter[str] = Counter()
    spelled_in: dict[str, set[Path]] = {f: set() for f in FIELDS}
    influxql: Counter[Path] = Counter()
    for path in files:
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type != tokenize.STRING:
                continue
            if INFLUXQL.search(token.string):
                influxql[path] += 1
            for field in FIELDS:
                found = len(re.findall(rf"\b{field}\b", token.string))
                spelled[field] += found
                if found:
                    spelled_in[field].add(path)
    print(f"InfluxQL string literals: {sum(influxql.values())} in {len(influxql)} files")
    for path, count in sorted(influxql.items()):
        print(f"  {count:3d}  {path}")
    print("field names spelled in string literals (times, files):")
    for field in FIELDS:
        print(f"  {field:15s} {spelled[field]:3d} in {len(spelled_in[field])} files")


if __name__ == "__main__":
    main()
