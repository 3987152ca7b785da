"""The worker's own health, in a small JSON file under the state directory, so that
`sitepulse status` can say the sink is degraded even while InfluxDB cannot answer."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

STATUS_FILE = "worker-status.json"


def status_path(state_dir: Path) -> Path:
    return state_dir / STATUS_FILE


def write_status(state_dir: Path, degraded_for_s: float | None, last_error: str, counts: dict[str, int]) -> None:
    """Atomically (write, then rename), so a reader never sees half a file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "pid": os.getpid(),
        "updated_at": time.time(),
        "sink": {"degraded": degraded_for_s is not None, "degraded_for_s": degraded_for_s, "error": last_error if degraded_for_s is not None else ""},
        "counts": counts,
    }
    temporary = status_path(state_dir).with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    temporary.replace(status_path(state_dir))


@dataclass(frozen=True)
class WorkerStatus:
    alive: bool
    age_s: float
    degraded_for_s: float | None
    error: str
    counts: dict[str, int]


def read_status(state_dir: Path) -> WorkerStatus | None:
    path = status_path(state_dir)
    if not path.exists():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    try:
        os.kill(payload["pid"], 0)
        alive = True
    except OSError:
        alive = False
    sink = payload["sink"]
    age = time.time() - payload["updated_at"]
    degraded = sink["degraded_for_s"] + age if sink["degraded"] else None
    return WorkerStatus(alive, age, degraded, sink["error"], payload["counts"])
