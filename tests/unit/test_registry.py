"""A registry loads whole or not at all, and says which lines are wrong."""

from __future__ import annotations

from datetime import date

import pytest

from sitepulse.streams.contract import REGISTRY_COLUMNS
from sitepulse.streams.registry import RegistryError, read_registry_csv

HEADER = ",".join(REGISTRY_COLUMNS)
ROW = "NB-0001,鄞州区安置房1号,鄞州区,东部新城,市住建局,district,new,王伟,13800000000,计量中心1组,12000,2026-03-01,630,29.8,121.5"


def test_the_contract_columns_load(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(f"{HEADER}\n{ROW}\n{ROW.replace('NB-0001', 'NB-0002').replace(',29.8,121.5', ',,')}\n", encoding="utf-8")
    first, second = read_registry_csv(path)
    assert first.district == "鄞州区" and first.planned_start == date(2026, 3, 1) and first.capacity_kva == 630
    assert second.lat is None and second.lon is None


def test_every_bad_line_is_named_and_nothing_loads(tmp_path):
    path = tmp_path / "registry.csv"
    bad_level = ROW.replace("district,new", "province,new").replace("NB-0001", "NB-0002")
    bad_plan = ROW.replace(",12000,", ",lots,").replace("NB-0001", "NB-0003")
    path.write_text("\n".join([HEADER, ROW, bad_level, bad_plan, ROW]) + "\n", encoding="utf-8")
    with pytest.raises(RegistryError) as error:
        read_registry_csv(path)
    message = str(error.value)
    assert "第 3 行" in message and "第 4 行" in message and "第 5 行" in message and "重复" in message
    assert not any(line.startswith("第 2 行") for line in message.splitlines())


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(HEADER.replace(",leader_phone", "") + "\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="leader_phone"):
        read_registry_csv(path)


def test_a_registry_without_the_video_column_still_loads_and_one_with_it_keeps_the_link(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text(HEADER.replace(",video_url", "") + f"\n{ROW}\n", encoding="utf-8")
    assert read_registry_csv(old)[0].video_url is None
    new = tmp_path / "new.csv"
    new.write_text(f"{HEADER}\n{ROW},https://site-video.example/live/NB-0001\n", encoding="utf-8")
    assert read_registry_csv(new)[0].video_url == "https://site-video.example/live/NB-0001"


def test_the_six_ones_and_total_investment_columns_are_optional_and_checked(tmp_path):
    path = tmp_path / "registry.csv"
    extended = ROW + ",,50000,张强,13900000000,副区长,市交通局;市水利局"
    path.write_text(f"{HEADER}\n{extended}\n", encoding="utf-8")
    (entry,) = read_registry_csv(path)
    assert (entry.total_investment_wan, entry.owner_person, entry.leader_title) == (50000.0, "张强", "副区长")
    assert entry.partners == ["市交通局", "市水利局"]
    old = ",".join(REGISTRY_COLUMNS[: REGISTRY_COLUMNS.index("video_url") + 1])
    path.write_text(f"{old}\n{ROW},\n", encoding="utf-8")
    (entry,) = read_registry_csv(path)
    assert entry.owner_person is None and entry.partners == [] and entry.total_investment_wan is None
    for bad in ("nan", "inf", "-5"):
        path.write_text(f"{HEADER}\n{ROW},,{bad},,,,\n", encoding="utf-8")
        with pytest.raises(RegistryError, match="total_investment_wan"):
            read_registry_csv(path)
