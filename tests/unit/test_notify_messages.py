"""Robot messages: who is told (六个一) and how each robot type mentions them, DingTalk's
signature, and giving up on a robot when someone waits on the command."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from datetime import date, datetime, timezone

import pytest
import requests

from sitepulse.notify import RobotRefused, clipped, deliver, event_page, robot_payload, signed_dingtalk_url
from sitepulse.runtime.settings import Settings
from sitepulse.streams.contract import ProjectEvent, RegistryEntry

AT = datetime(2026, 3, 5, 16, tzinfo=timezone.utc)
# A registry row of the old shape: no leader title, no person on site.
OLD_ROW = RegistryEntry(
    "NB-0007", "海曙区综合管廊7号", "海曙区", "望春工业园", "市住建局", "district", "continuing",
    "王伟", "13800000007", "国网宁波供电公司计量中心2组", 30_000.0, date(2025, 3, 1), 630.0,
)
SIX_ONES = RegistryEntry(
    "NB-0043", "鄞州区学校43号", "鄞州区", "东部新城", "市住建局", "district", "continuing",
    "陈静", "13912345678", "国网宁波供电公司计量中心2组", 50_000.0, date(2025, 3, 1), 800.0,
    owner_person="张强", owner_phone="13812340042", leader_title="副区长", partner_departments="鄞州区自然资源局;鄞州区住建局",
)
REGISTRY = {row.project_id: row for row in (OLD_ROW, SIX_ONES)}


def event(kind: str, project_id: str = "NB-0043", **fields) -> ProjectEvent:
    return ProjectEvent(f"{kind}:{project_id}::2026-03-05", kind, project_id, AT, day=date(2026, 3, 5), leader="陈静", district="鄞州区", **fields)


def test_a_stall_pages_the_person_on_site_and_mentions_the_leader_with_title():
    page = event_page(event("stalled", detail="停工: 2026-03-05 用电 3.0 kWh"), REGISTRY)
    assert "责任领导: 副区长 陈静 @13912345678" in page.text.splitlines()
    assert "现场责任人: 张强 @13812340042" in page.text.splitlines()
    assert page.mentions == ("13912345678", "13812340042")
    assert page.text.startswith("【重大项目监测 · 停工】鄞州区学校43号(NB-0043)")


@pytest.mark.parametrize(
    ("kind", "field", "mention"),
    [
        ("dingtalk", lambda p: p["at"]["atMobiles"], lambda p: p["text"]["content"]),
        ("wecom", lambda p: p["text"]["mentioned_mobile_list"], lambda p: p["text"]["content"]),
        ("webhook", lambda p: p["mention_mobiles"], lambda p: p["message"]),
    ],
)
def test_every_robot_type_mentions_both_phones(kind, field, mention):
    payload = robot_payload(kind, event_page(event("resumed", detail="复工"), REGISTRY), event={"kind": "resumed"})
    assert field(payload) == ["13912345678", "13812340042"]
    assert "@13912345678" in mention(payload) and "@13812340042" in mention(payload)
    assert ("event" in payload) == (kind == "webhook")


def test_a_registry_without_the_new_columns_keeps_working():
    page = event_page(event("stalled", "NB-0007", detail="停工"), REGISTRY)
    assert "责任领导: 王伟 @13800000007" in page.text.splitlines()
    assert "现场责任人" not in page.text and page.mentions == ("13800000007",)


def test_a_problem_shows_what_was_filed_and_who_must_solve_it_by_when():
    filed = event(
        "problem_opened", detail="问题交办: 剩余2户未签约", problem_id="NB-0043-20260305-problem_opened-1",
        category="征迁", department="鄞州区住建局", measures="3月底前完成剩余2户签约", due=date(2026, 3, 31),
    )
    lines = event_page(filed, REGISTRY).text.splitlines()
    assert lines[0] == "【重大项目监测 · 问题交办】鄞州区学校43号(NB-0043)"
    filed_lines = ("问题编号: NB-0043-20260305-problem_opened-1", "问题类别: 征迁", "责任部门: 鄞州区住建局", "整改措施: 3月底前完成剩余2户签约", "限期: 2026-03-31")
    assert all(line in lines for line in filed_lines)
    overdue = event_page(event("problem_overdue", detail="逾期 3 天", problem_id="P-1", category="审批", due=date(2026, 3, 2)), REGISTRY)
    assert "逾期未销号" in overdue.text and "限期: 2026-03-02" in overdue.text and overdue.mentions == ("13912345678", "13812340042")


def test_a_node_overdue_names_the_node():
    page = event_page(event("node_overdue", detail="主体结构封顶 计划 2026-03-01, 已逾期 4 天", node="主体结构封顶"), REGISTRY)
    assert "计划节点: 主体结构封顶" in page.text.splitlines() and "现场责任人: 张强 @13812340042" in page.text


def test_a_meter_event_goes_to_the_data_owner_and_mentions_nobody():
    page = event_page(event("offline", meter_id="M1", detail="电表离线", data_owner="国网宁波供电公司计量中心2组"), REGISTRY)
    assert page.mentions == () and "数据责任单位: 国网宁波供电公司计量中心2组" in page.text and "责任领导" not in page.text


def test_without_a_registry_row_the_event_names_people_but_mentions_nobody():
    page = event_page(event("stalled", "NB-9999", detail="停工", owner_person="李明"), {})
    assert "责任领导: 陈静" in page.text.splitlines() and "现场责任人: 李明" in page.text.splitlines() and page.mentions == ()


def test_a_golden_snail_mentions_the_leaders_of_the_units_projects_once_each():
    second = RegistryEntry(
        "NB-0045", "鄞州区安置房45号", "鄞州区", "南部商务区", "市交通局", "district", "new",
        "陈静", "13912345678", "国网", 20_000.0, date(2026, 1, 1), 400.0, leader_title="副区长",
    )
    third = RegistryEntry(
        "NB-0044", "鄞州区学校44号", "鄞州区", "南部商务区", "市教育局", "district", "new",
        "周敏", "13700000044", "国网", 10_000.0, date(2026, 1, 1), 200.0,
    )
    registry = {**REGISTRY, second.project_id: second, third.project_id: third}
    snail = ProjectEvent(
        "golden_snail:district:鄞州区:2026-03-H1", "golden_snail", "", AT, detail="金蜗牛(连续两期排名末位): 区县 鄞州区",
        unit_type="district", unit="鄞州区", period="2026-03-H1",
    )
    payload = robot_payload("dingtalk", event_page(snail, registry))
    assert payload["at"]["atMobiles"] == ["13912345678", "13700000044"]
    assert "责任领导: 副区长 陈静 @13912345678、周敏 @13700000044" in payload["text"]["content"]
    zone = ProjectEvent("golden_snail:zone:南部商务区:2026-03-H1", "golden_snail", "", AT, unit_type="zone", unit="南部商务区")
    assert event_page(zone, registry).mentions == ("13912345678", "13700000044")
    nobody = ProjectEvent("golden_snail:zone:无人区:2026-03-H1", "golden_snail", "", AT, unit_type="zone", unit="无人区")
    assert event_page(nobody, registry).mentions == () and "无人区" in event_page(nobody, registry).text


def test_wecom_text_stays_within_2048_bytes():
    long = event("problem_opened", detail="问题交办", measures="协调征迁补偿。" * 400, problem_id="P-2")
    content = robot_payload("wecom", event_page(long, REGISTRY))["text"]["content"]
    assert len(content.encode()) <= 2048 and content.endswith("…")
    assert clipped("短消息", 2048) == "短消息"


def test_dingtalk_signature_is_hmac_sha256_of_timestamp_and_secret():
    url = signed_dingtalk_url("https://robot.example/send?access_token=abc", "SECxyz", 1_700_000_000_000)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    expected = base64.b64encode(hmac.new(b"SECxyz", b"1700000000000\nSECxyz", hashlib.sha256).digest()).decode()
    assert query["timestamp"] == ["1700000000000"] and query["sign"] == [expected] and query["access_token"] == ["abc"]


class RefusingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def post(self, url, **kwargs):
        self.posts += 1
        response = requests.Response()
        response.status_code = 503
        response._content = b"busy"
        return response


def test_deliver_with_attempts_gives_up_and_raises_the_last_refusal():
    session, waits = RefusingSession(), []
    settings = Settings(notify_url="http://robot.invalid/send", _env_file=None)
    with pytest.raises(RobotRefused, match="HTTP 503"):
        deliver(settings, {"message": "x"}, session, sleep=waits.append, attempts=3)
    assert session.posts == 3 and waits == [0.5, 1.0]
