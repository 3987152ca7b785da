"""InfluxDB line protocol, written by hand because it is the hot path (one point per
reading): an f-string per point is several times faster than ``influxdb_client.Point``.
Escaping follows the line protocol reference."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import msgspec

FieldValue = float | int | str | bool

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": r"\\"})


def encode_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue | None],
    ts_ms: int,
) -> str:
    """One line; tags sorted (InfluxDB's preferred order), ``None`` fields left out. A
    judged day writes two of these, so names are escaped once and kept (their values,
    a project's say, are not: a province's would fill any cache)."""
    head = series_key(measurement, tags)
    body = ",".join(
        f"{_escaped_key(key)}={_field_value(value)}"
        for key, value in fields.items()
        if value is not None
    )
    if not body:
        raise ValueError(f"a point of {measurement} needs at least one field")
    return f"{head} {body} {ts_ms}"


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """Measurement and tags: the part of a line that names the series."""
    head = _escaped_measurement(measurement)
    for key in sorted(tags):
        head += f",{_escaped_key(key)}={tags[key].translate(_KEY_ESCAPES)}"
    return head


@lru_cache(maxsize=1024)
def _escaped_key(key: str) -> str:
    return key.translate(_KEY_ESCAPES)


@lru_cache(maxsize=64)
def _escaped_measurement(measurement: str) -> str:
    return measurement.translate(_MEASUREMENT_ESCAPES)


def float_field(value: float) -> str:
    """A float field value; ``repr`` is the shortest text that reads back the same (of
    the value as a float: a numpy float's own ``repr`` names its type)."""
    return repr(float(value))


_encode_json = msgspec.json.Encoder().encode


def float_fields(column: Sequence[float]) -> list[str]:
    """``float_field`` of each value as a float, a column at once (the raw readings'
    line protocol spends most of its time writing floats): msgspec writes a whole column
    at ~a third of ``repr``'s cost and, for 1e-4 ≤ |value| < 1e16 and zero, the same
    text. It writes other values otherwise (1e-05 as 0.00001, 1e+16 as 1e16): those
    columns are written by ``repr``."""
    text = _encode_json(list(map(float, column)))[1:-1].decode()
    if "e" in text or "0.0000" in text:
        return list(map(float_field, column))
    return text.split(",")


def _field_value(value: FieldValue) -> str:
    writer = _WRITERS.get(type(value))
    if writer is None:
        # A subclass (an enum's value, say) is written as the type it extends, in the
        # writers' order: bool before int, as bool is a subclass of int.
        writer = next((writer for kind, writer in _WRITERS.items() if isinstance(value, kind)), string_field)
    return writer(value)


def string_field(value: str) -> str:
    return '"' + value.translate(_STRING_ESCAPES) + '"'


_WRITERS: dict[type, Callable[[Any], str]] = {
    bool: lambda value: "true" if value else "false",
    int: lambda value: f"{value}i",
    float: float_field,
    str: string_field,
}
