"""Per-project HMAC-SHA256 signatures on power readings.

Each site's publisher holds its project's key and signs every reading; the worker holds
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

import msgspec

from .contract import PowerReading
from .validation import Rejection


def signed_text(reading: PowerReading) -> bytes:
    ts_ms = int(reading.ts.timestamp() * 1000)
    parts = [reading.project_id, reading.meter_id, str(ts_ms), repr(float(reading.kwh)), str(reading.interval_s)]
    parts += ["" if value is None else repr(float(value)) for value in (reading.kwh_total, reading.kw)]
    return "\x1f".join(parts).encode()


def signature(reading: PowerReading, key: bytes) -> str:
    return hmac.new(key, signed_text(reading), hashlib.sha256).hexdigest()


def sign(reading: PowerReading, key: bytes) -> PowerReading:
    return msgspec.structs.replace(reading, sig=signature(reading, key))


class KeyStore:
    """Project id -> key. Loaded from a CSV ``project_id,key_hex``; its repr never shows a key."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = dict(keys)

    def __repr__(self) -> str:
        return f"KeyStore({len(self._keys)} projects)"

    def key_for(self, project_id: str) -> bytes | None:
        return self._keys.get(project_id)

    def verify(self, reading: PowerReading) -> Rejection | None:
        """None if the signature is right, else why not (no secret in the detail)."""
        if not reading.sig:
            return Rejection("missing_signature", "reading has no sig")
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
