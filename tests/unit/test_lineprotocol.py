import enum

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sitepulse.sink.lineprotocol import encode_point


def test_tags_are_sorted_and_special_characters_escaped():
    line = encode_point("power reading", {"project_id": "NB 1,x=y", "meter_id": "M1"}, {"kwh": 12.5}, 1000)
    assert line == r"power\ reading,meter_id=M1,project_id=NB\ 1\,x\=y kwh=12.5 1000"


def test_field_types_follow_influxdb_syntax_and_none_is_left_out():
    line = encode_point("m", {}, {"f": 1.0, "i": 3, "b": True, "s": 'say "hi" \\ bye', "n": None}, 5)
    assert line == 'm f=1.0,i=3i,b=true,s="say \\"hi\\" \\\\ bye" 5'


def test_values_of_a_subclass_are_written_by_the_type_they_extend_and_field_names_escaped():
    class Label(str, enum.Enum):
        STALLED = "stalled"

    class Count(enum.IntEnum):
        THREE = 3

    line = encode_point("m", {"t": "v"}, {"state": Label.STALLED, "n": Count.THREE, "a b": numpy.float64(1.5), "k=v,w": False}, 5)
    assert line == r'm,t=v state="stalled",n=3i,a\ b=1.5,k\=v\,w=false 5'
    # the same tags in another order name the same series
    assert encode_point("m", {"b": "2", "a": "1"}, {"f": 1}, 0) == encode_point("m", {"a": "1", "b": "2"}, {"f": 1}, 0) == "m,a=1,b=2 f=1i 0"


def test_a_point_without_fields_is_refused():
    with pytest.raises(ValueError):
        encode_point("m", {"t": "v"}, {"n": None}, 5)


def test_chinese_text_passes_through():
    assert encode_point("project", {"project_id": "NB-1"}, {"district": "鄞州区"}, 0) == 'project,project_id=NB-1 district="鄞州区" 0'


def test_the_fast_reading_line_equals_the_general_encoder():
    from datetime import datetime, timedelta, timezone

    from sitepulse.agents.core.daily import epoch_ms
    from sitepulse.agents.pipeline import to_meter_reading
    from sitepulse.sink.points import reading_lines, reading_point
    from sitepulse.streams.contract import Measurement, PowerReading

    moment = datetime(2026, 3, 2, 8, 15, tzinfo=timezone(timedelta(hours=8)))
    for reading in (
        PowerReading("NB 0001,东", "M=1", moment, 12.5, 900, 10_000.25, 50.0),
        PowerReading("NB-0002", "M1", moment, 3, 60),  # integer kwh, no register, no demand
    ):
        general = encode_point(
            Measurement.POWER_READING,
            {Measurement.TAG_PROJECT: reading.project_id, Measurement.TAG_METER: reading.meter_id},
            {
                "kwh": float(reading.kwh),
                "interval_s": reading.interval_s,
                "kwh_total": None if reading.kwh_total is None else float(reading.kwh_total),
                "kw": None if reading.kw is None else float(reading.kw),
            },
            epoch_ms(reading.ts),
        )
        assert reading_point(reading) == general
        assert reading_lines([to_meter_reading(reading)]) == [general]


@given(
    st.text(alphabet="NB-0123 ,=东\\\"", min_size=1, max_size=12),
    st.floats(0, 1e7, allow_nan=False),
    st.integers(0, 10_000),
    st.integers(0, 86_400),
    st.booleans(),
    st.one_of(st.none(), st.floats(0, 10, allow_nan=False)),
    st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
    st.lists(st.tuples(st.sampled_from(["M1", "M 2", 'M"3']), st.binary(min_size=0, max_size=4)), max_size=3),
)
def test_the_fast_daily_line_equals_the_general_encoder(project_id, kwh, readings, max_gap_s, flat_load, load_cv, day_night, shapes):
    from datetime import date
    from zoneinfo import ZoneInfo

    from sitepulse.agents.core.daily import DailyEnergy, day_start_ms
    from sitepulse.agents.core.suspicion import MeterFingerprint
    from sitepulse.sink.points import daily_point, encode_fingerprints
    from sitepulse.streams.contract import DailyField, Measurement

    tz = ZoneInfo("Asia/Shanghai")
    energy = DailyEnergy(
        project_id, date(2026, 3, 2), kwh, readings, 2, max_gap_s, 900, flat_load, load_cv, day_night,
        tuple(MeterFingerprint(meter, shape) for meter, shape in shapes),
    )
    fields = {
        DailyField.KWH: energy.kwh,
        DailyField.READINGS: energy.readings,
        DailyField.METERS: energy.meters,
        DailyField.MAX_GAP_S: energy.max_gap_s,
        DailyField.INTERVAL_S: energy.interval_s,
        DailyField.FLAT_LOAD: energy.flat_load,
        DailyField.LOAD_CV: energy.load_cv,
        DailyField.DAY_NIGHT: energy.day_night,
        DailyField.PROFILE: encode_fingerprints(energy.fingerprints),
        DailyField.DATE: energy.day.isoformat(),
    }
    general = encode_point(Measurement.POWER_DAILY, {Measurement.TAG_PROJECT: project_id}, fields, day_start_ms(energy.day, tz))
    assert daily_point(energy, tz) == general


@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6)), min_size=1, max_size=60))
@settings(max_examples=300, deadline=None)
def test_a_columns_float_texts_are_each_values_repr_as_a_float(column):
    """A run's columns are written a column at a time: the text of every value is the one
    the reading-by-reading path writes, tiny, huge, negative, zero or integer."""
    from sitepulse.sink.lineprotocol import float_fields

    assert float_fields(column) == [repr(float(value)) for value in column]


def test_float_texts_at_the_edges_of_positional_notation():
    from sitepulse.sink.lineprotocol import float_fields

    edges = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-05, 10.00001, 1e15, 9999999999999998.0, 1e16, 5e-324, 1.7976931348623157e308, 3]
    assert float_fields(edges) == [repr(float(value)) for value in edges]
    assert float_fields([12.5, 0.0, 1234.25]) == ["12.5", "0.0", "1234.25"]
