"""Per-project HMAC-SHA256 signatures on power readings.

Each site's publisher holds its project's key and signs every reading (a series of one
meter's readings carries one signature over all its columns); the worker holds
the key store and refuses a reading whose signature is missing, made with another
project's key, or does not match a changed value. The signed text is built from the
decoded values (not the JSON bytes), so any faithful JSON encoding verifies.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import msgspec

from .contract import PowerReading, PowerSeries
from .validation import Rejection


def signed_text(record: PowerReading | PowerSeries) -> bytes:
    if isinstance(record, PowerSeries):
        return _series_text(record)
    ts_ms = int(record.ts.timestamp() * 1000)
    parts = [record.project_id, record.meter_id, str(ts_ms), repr(float(record.kwh)), str(record.interval_s)]
    parts += ["" if value is None else repr(float(value)) for value in (record.kwh_total, record.kw)]
    return "\x1f".join(parts).encode()


def _series_text(series: PowerSeries) -> bytes:
    """A series' text starts with its kind, so that no series signs the same text as a
    reading; each column is its values in order, an empty place for a hole."""
    ts_ms = int(series.first_ts.timestamp() * 1000)
    parts = ["power_series", series.project_id, series.meter_id, str(ts_ms), str(series.interval_s)]
    parts += [",".join("" if value is None else repr(float(value)) for value in column or ()) for column in (series.kwh, series.kwh_total, series.kw)]
    return "\x1f".join(parts).encode()


def signature(record: PowerReading | PowerSeries, key: bytes) -> str:
    return hmac.new(key, signed_text(record), hashlib.sha256).hexdigest()


Signable = TypeVar("Signable", PowerReading, PowerSeries)


def sign(record: Signable, key: bytes) -> Signable:
    return msgspec.structs.replace(record, sig=signature(record, key))


class KeyStore:
    """Project id -> key. Loaded from a CSV ``project_id,key_hex``; its repr never shows a key."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = dict(keys)

    def __repr__(self) -> str:
        return f"KeyStore({len(self._keys)} projects)"

    def key_for(self, project_id: str) -> bytes | None:
        return self._keys.get(project_id)

    def verify(self, reading: PowerReading | PowerSeries) -> Rejection | None:
        """None if the signature is right, else why not (no secret in the detail)."""
        if not reading.sig:
            return Rejection("missing_signature", f"{'series' if isinstance(reading, PowerSeries) else 'reading'} has no sig")
        key = self._keys.get(reading.project_id)
        if key is None:
            return Rejection("bad_signature", f"no key registered for project {reading.project_id}")
        if not hmac.compare_digest(reading.sig, signature(reading, key)):
            return Rejection("bad_signature", "HMAC-SHA256 does not match this project's key and these values")
        return None

    @classmethod
    def load(cls, path: Path) -> KeyStore:
        with path.open(newline="", encoding="utf-8") as handle:
            return cls({row["project_id"].strip(): bytes.fromhex(row["key_hex"].strip()) for row in csv.DictReader(handle)})

    @staticmethod
    def generate(project_ids: Iterable[str], path: Path) -> KeyStore:
        """New random keys, written to ``path`` readable by its owner only."""
        keys = {project_id: secrets.token_bytes(32) for project_id in project_ids}
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["project_id", "key_hex"])
            writer.writerows((project_id, key.hex()) for project_id, key in keys.items())
        return KeyStore(keys)
