"""What influxd alone costs for points of different shapes: the bench's raw-write
baseline (2 fields, every line a series of its own within a request), the same with the
4 fields a reading carries, and 4 fields with each meter's day in a row, as the worker
writes a day-packed batch (one and two clients). Starts its own embedded influxd and
prints points/s and influxd's CPU per million points for each; docs/performance.md
("Tenth part") quotes it.

    python tools/influx_point_shapes.py [--points 1000000] [--per-request 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sitepulse.bench import cpu_seconds
from sitepulse.embedded import EmbeddedInflux

BASE_MS = 1_767_225_600_000
DAY_MS, QUARTER_MS = 86_400_000, 900_000
PROJECTS, METERS, READINGS_A_DAY = 420, 2, 96


def baseline_line(n: int) -> str:
    # As the bench's raw_influx phase writes them.
    return f"power_reading,meter_id=M{n % 3},project_id=P{n % 5000} kwh={n % 97 / 10},interval_s=900i {BASE_MS + n // 5000 * QUARTER_MS}"


def four_fields_line(n: int) -> str:
    return (
        f"power_reading,meter_id=M{n % 3},project_id=P{n % 5000} kwh={n % 97 / 10},interval_s=900i,"
        f"kwh_total={10000 + n % 9973 / 10},kw={n % 89 / 10} {BASE_MS + n // 5000 * QUARTER_MS}"
    )


def meter_day_line(n: int) -> str:
    run, index = divmod(n, READINGS_A_DAY)
    meter, day = run % METERS, run // (PROJECTS * METERS)
    return (
        f"power_reading,meter_id=M{meter},project_id=P{run // METERS % PROJECTS} kwh={n % 97 / 10},interval_s=900i,"
        f"kwh_total={10000 + n % 9973 / 10},kw={n % 89 / 10} {BASE_MS + day * DAY_MS + index * QUARTER_MS}"
    )


def measure(influx: EmbeddedInflux, database: str, make: Callable[[int], str], points: int, per_request: int, clients: int) -> tuple[float, float]:
    """(points/s, influxd CPU seconds per million points) for one shape."""
    influx.create_database(database)
    url = f"{influx.url}/write?" + urllib.parse.urlencode({"db": database, "precision": "ms"})
    lines = [make(n) for n in range(points)]
    bodies = ["\n".join(lines[first : first + per_request]).encode() for first in range(0, points, per_request)]

    def send(body: bytes) -> None:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=60) as response:
            response.read()

    pid = influx.child.process.pid
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, bodies))
    elapsed = time.monotonic() - started
    return points / elapsed, (cpu_seconds(pid) - cpu_before) / points * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--per-request", type=int, default=5000)
    args = parser.parse_args()
    shapes = [
        ("the bench's baseline: 2 fields, 5,000 series a request", baseline_line, 1),
        ("4 fields, 5,000 series a request", four_fields_line, 1),
        ("4 fields, each meter's day in a row (as the worker writes)", meter_day_line, 1),
        ("the same, two clients", meter_day_line, 2),
    ]
    influx = EmbeddedInflux.start(Path(tempfile.mkdtemp(prefix="influx-shapes-")))
    try:
        for number, (name, make, clients) in enumerate(shapes):
            per_s, cpu = measure(influx, f"shape_{number}", make, args.points, args.per_request, clients)
            print(f"{name}: {per_s:,.0f} points/s, influxd {cpu:.2f} s CPU per million points", flush=True)
    finally:
        influx.stop()


if __name__ == "__main__":
    main()
