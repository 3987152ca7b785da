from sitepulse.agents.lineprotocol import encode_point

import pytest


def test_tags_are_sorted_and_special_characters_escaped():
    line = encode_point("power reading", {"project_id": "NB 1,x=y", "meter_id": "M1"}, {"kwh": 12.5}, 1000)
    assert line == r"power\ reading,meter_id=M1,project_id=NB\ 1\,x\=y kwh=12.5 1000"


def test_field_types_follow_influxdb_syntax_and_none_is_left_out():
    line = encode_point("m", {}, {"f": 1.0, "i": 3, "b": True, "s": 'say "hi" \\ bye', "n": None}, 5)
    assert line == 'm f=1.0,i=3i,b=true,s="say \\"hi\\" \\\\ bye" 5'


def test_a_point_without_fields_is_refused():
    with pytest.raises(ValueError):
        encode_point("m", {"t": "v"}, {"n": None}, 5)


def test_chinese_text_passes_through():
    assert encode_point("project", {"project_id": "NB-1"}, {"district": "鄞州区"}, 0) == 'project,project_id=NB-1 district="鄞州区" 0'
