"""The bulletin's robot message (``report --send``) on hand-made projects: what a
supervisor reads in the group, and which leaders are @-mentioned."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from sitepulse.agents.core.bulletin_figures import Bulletin, SlowProject, compile_bulletin
from sitepulse.agents.core.nodes import PlanNode
from sitepulse.delivery import DeliveryRefused, bottom_units, bulletin_page, report_location, send_bulletin
from sitepulse.runtime.settings import Settings
from sitepulse.streams.contract import RegistryEntry
from tests.unit.test_bulletin import H2, city
from tests.unit.test_ranking import STALLED, fill

PDF = "https://reports.example.gov.cn/sitepulse/2026-03-H2/report.pdf"
LEADERS = {  # project -> (name, title, phone, leader)
    "NB-0001": ("海曙区人民医院迁建", "副区长", "13900000001", "李伟"),
    "NB-0002": ("北仑港区集装箱码头二期", "副区长", "13900000002", "王强"),
    "NB-0003": ("北仑区污水处理厂扩建", "副区长", "13900000002", "王强"),  # the same leader
    "NB-0004": ("海曙区安置房4号", "区长", "13900000004", "赵敏"),
}


def registry(with_new_columns: bool = True) -> list[RegistryEntry]:
    rows = []
    for project_id, (name, title, phone, leader) in LEADERS.items():
        district = "海曙区" if project_id in ("NB-0001", "NB-0004") else "北仑区"
        extra = {"leader_title": title, "owner_person": f"{leader}的现场负责人", "owner_phone": "138" + phone[3:]} if with_new_columns else {}
        rows.append(
            RegistryEntry(
                project_id, name, district, "前湾新区", "市发改委", "city", "continuing", leader, phone, "国网宁波供电公司",
                10_000.0, date(2025, 1, 1), 800.0, **extra,
            )
        )
    return rows


def march_bulletin() -> Bulletin:
    """海曙区 first; 北仑区 last in March's second half and the half before (a stall on
    March 10-12 and another from the 21st): its 金蜗牛. 推进较慢: NB-0001 is 11 days
    behind on 主体结构封顶, NB-0002 has stalled 11 working days."""
    facts = city()
    for fact in facts:
        name, _, _, leader = LEADERS[fact.profile.project_id]
        fact.profile = replace(fact.profile, name=name, leader=leader)
    fill(facts[1], date(2026, 3, 10), date(2026, 3, 12), STALLED)
    facts[0].nodes = [PlanNode("NB-0001", "主体结构封顶", date(2026, 3, 20)), PlanNode("NB-0001", "开工", date(2025, 3, 1), date(2025, 3, 1))]
    return compile_bulletin(facts, [], H2, bottom=1)


def test_the_message_carries_the_headline_the_snail_the_last_places_and_the_slow_projects():
    lines = bulletin_page(march_bulletin(), registry(), PDF).text.splitlines()
    assert lines[:4] == [
        "【重大项目监测 · 半月调度通报】2026年3月下半月",
        "全市重大项目 4 个: 在建 1 个, 停工 1 个, 离线 1 个",
        "1—3月累计完成投资 0.60 亿元, 占年度计划 13.3% (序时进度 24.7%)",
        f"通报全文: {PDF}",
    ]
    assert lines[4].startswith("金蜗牛: 区县(市) 北仑区 (第 2 名, 得分 ")
    assert lines[5].startswith("排名末位: 区县(市) 北仑区 (第 2 名")
    assert "功能区" not in lines[5], "one zone alone is behind nobody"
    assert lines[6:9] == [
        "推进较慢项目 2 个:",
        "1. 海曙区人民医院迁建(NB-0001) 海曙区, 责任领导 副区长 李伟: 主体结构封顶 滞后 11 天",
        "2. 北仑港区集装箱码头二期(NB-0002) 北仑区, 责任领导 副区长 王强: 停工 11 个工作日",
    ]
    assert lines[9] == "请责任领导阅知: 副区长 王强 @13900000002、副区长 李伟 @13900000001"


def test_the_leaders_of_the_snails_projects_and_of_the_slow_projects_are_mentioned_once_each():
    page = bulletin_page(march_bulletin(), registry(), PDF)
    # 北仑区 (金蜗牛, last): NB-0002 and NB-0003 share a leader; NB-0001 is slow; NB-0004 is neither.
    assert page.mentions == ("13900000002", "13900000001")
    assert "13800000002" not in page.mentions, "the bulletin mentions leaders, not the people on site"


def test_a_registry_without_the_new_columns_names_leaders_without_titles():
    page = bulletin_page(march_bulletin(), registry(with_new_columns=False), PDF)
    assert "1. 海曙区人民医院迁建(NB-0001) 海曙区, 责任领导 李伟: 主体结构封顶 滞后 11 天" in page.text.splitlines()
    assert page.text.splitlines()[-1] == "请责任领导阅知: 王强 @13900000002、李伟 @13900000001"


def test_a_slow_project_missing_from_the_registry_is_named_but_not_mentioned():
    page = bulletin_page(march_bulletin(), [row for row in registry() if row.project_id != "NB-0001"], PDF)
    assert "责任领导 李伟: 主体结构封顶" in page.text and "13900000001" not in page.mentions
    assert "请责任领导阅知: 副区长 王强 @13900000002、李伟" in page.text


def test_wecom_keeps_the_headline_and_location_and_shortens_the_slow_list():
    bulletin = march_bulletin()
    name = "宁波舟山港北仑港区集装箱码头二期工程配套道路及综合管廊第{}标段"
    many = [SlowProject(f"NB-1{n:03d}", name.format(n), "北仑区", "王强", "竣工", 30 - n % 20, 0) for n in range(40)]
    page = bulletin_page(replace(bulletin, slow=many), registry(), PDF, max_bytes=2048)
    lines = page.text.splitlines()
    assert len(page.text.encode()) <= 2048
    assert f"通报全文: {PDF}" in lines and "推进较慢项目 40 个:" in lines
    listed = [line for line in lines if name.format("")[:10] in line]
    assert 0 < len(listed) < 10 and lines[-2] == "……等 40 个项目, 详见通报全文"
    assert lines[-1] == "请责任领导阅知: 副区长 王强 @13900000002", "the registry's 王强 is the slow list's 王强"
    unbounded = bulletin_page(replace(bulletin, slow=many), registry(), PDF).text.splitlines()
    assert f"10. {name.format(9)}(NB-1009) 北仑区, 责任领导 王强: 竣工 滞后 21 天" in unbounded
    assert not any(line.startswith("11. ") for line in unbounded) and "……等 40 个项目, 详见通报全文" in unbounded


def test_nobody_is_last_when_every_unit_is_level():
    bulletin = march_bulletin()
    level = {t: [replace(row, score=replace(row.score, rank=1, golden_snail=False)) for row in rows] for t, rows in bulletin.rankings.items()}
    page = bulletin_page(replace(bulletin, rankings=level, slow=[]), registry(), PDF)
    assert bottom_units(replace(bulletin, rankings=level)) == []
    assert "金蜗牛: 无" in page.text and "排名末位" not in page.text and "推进较慢项目 0 个" in page.text and page.mentions == ()


def test_the_pdf_is_found_at_the_url_base_or_on_this_machine(tmp_path: Path):
    period = march_bulletin().period
    served = Settings(report_url_base="https://reports.example.gov.cn/sitepulse/", _env_file=None)
    assert report_location(served, period, tmp_path / "report.pdf") == PDF
    assert report_location(Settings(_env_file=None), period, tmp_path / "report.pdf") == str(tmp_path / "report.pdf")


def test_without_a_robot_the_bulletin_is_refused_before_anything_is_read(tmp_path: Path):
    with pytest.raises(DeliveryRefused, match="SITEPULSE_NOTIFY_URL"):
        send_bulletin(Settings(notify_url=None, _env_file=None), march_bulletin(), tmp_path / "report.pdf", registry())
