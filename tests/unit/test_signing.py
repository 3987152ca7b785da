"""Per-project signatures: only the project's own key, over the values as sent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec

from sitepulse.streams.contract import PowerReading
from sitepulse.streams.signing import KeyStore, sign

TZ = timezone(timedelta(hours=8))
READING = PowerReading("NB-1", "M1", datetime(2026, 3, 2, 8, 15, tzinfo=TZ), 12.5, 900, 1000.25, 50.0)


def test_a_reading_signed_with_its_projects_key_verifies_and_nothing_else_does(tmp_path):
    keys = KeyStore.generate(["NB-1", "NB-2"], tmp_path / "keys.csv")
    assert (tmp_path / "keys.csv").stat().st_mode & 0o777 == 0o600
    store = KeyStore.load(tmp_path / "keys.csv")
    signed = sign(READING, keys.key_for("NB-1"))
    assert store.verify(signed) is None
    # The JSON round trip (another encoder, other spacing) keeps it valid.
    again = msgspec.json.decode(msgspec.json.encode(signed), type=PowerReading)
    assert store.verify(again) is None
    assert store.verify(READING).reason == "missing_signature"
    assert store.verify(sign(READING, keys.key_for("NB-2"))).reason == "bad_signature", "another project's key"
    assert store.verify(msgspec.structs.replace(signed, kwh=125.0)).reason == "bad_signature", "a changed value"
    assert store.verify(msgspec.structs.replace(signed, ts=signed.ts + timedelta(minutes=15))).reason == "bad_signature", "replayed at another time"
    stranger = sign(msgspec.structs.replace(READING, project_id="NB-9"), keys.key_for("NB-1"))
    assert store.verify(stranger).reason == "bad_signature"
    assert "NB-1" not in repr(store) and keys.key_for("NB-1").hex() not in repr(store)
