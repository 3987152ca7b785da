"""Robot messages: the mention each robot type understands, and DingTalk's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from datetime import date, datetime, timezone

from sitepulse.notify import Contact, robot_payload, signed_dingtalk_url
from sitepulse.streams.contract import ProjectEvent

CONTACT = Contact("海曙区综合管廊7号", "王伟", "13800000007")


def stall() -> ProjectEvent:
    return ProjectEvent("stalled:NB-0007::2026-03-05", "stalled", "NB-0007", datetime(2026, 3, 5, 16, tzinfo=timezone.utc), day=date(2026, 3, 5), detail="停工: 2026-03-05 用电 3.0 kWh", leader="王伟", district="海曙区")


def test_wecom_mentions_by_mobile_list_and_text():
    payload = robot_payload("wecom", stall(), CONTACT)
    assert payload["text"]["mentioned_mobile_list"] == ["13800000007"]
    assert "@13800000007" in payload["text"]["content"] and "海曙区综合管廊7号(NB-0007)" in payload["text"]["content"]


def test_a_golden_snail_names_the_unit_and_mentions_nobody():
    snail = ProjectEvent("golden_snail:district:鄞州区:2026-03-H1", "golden_snail", "", datetime(2026, 3, 18, tzinfo=timezone.utc), detail="金蜗牛(连续两期排名末位): 区县 鄞州区", unit_type="district", unit="鄞州区", period="2026-03-H1")
    payload = robot_payload("dingtalk", snail, None)
    assert payload["at"]["atMobiles"] == [] and "鄞州区" in payload["text"]["content"]


def test_dingtalk_signature_is_hmac_sha256_of_timestamp_and_secret():
    url = signed_dingtalk_url("https://robot.example/send?access_token=abc", "SECxyz", 1_700_000_000_000)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    expected = base64.b64encode(hmac.new(b"SECxyz", b"1700000000000\nSECxyz", hashlib.sha256).digest()).decode()
    assert query["timestamp"] == ["1700000000000"] and query["sign"] == [expected] and query["access_token"] == ["abc"]
