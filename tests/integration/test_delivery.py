"""`report --send` through the real influxd and broker to a local robot: the bulletin is
posted once per period with its leaders @-mentioned, a robot that does not take it
leaves nothing recorded, a second send is refused, and a resend posts again — each send
marked in ``report_delivery`` and the audit trail."""

from __future__ import annotations

import msgspec
import pytest

from sitepulse.delivery import DeliveryRefused, send_bulletin
from sitepulse.streams.contract import AUDIT_TOPIC, AuditRecord
from sitepulse.streams.topics import ensure_topics
from tests.conftest import read_topic
from tests.integration.test_notify import Robot
from tests.unit.test_delivery import PDF, march_bulletin, registry

pytestmark = pytest.mark.integration


def test_the_bulletin_is_sent_once_per_period_unless_resent(sitepulse, tmp_path):
    robot = Robot(fail_first=3)  # the first send gives up after three refusals
    settings = sitepulse.settings.model_copy(
        update={"notify_kind": "dingtalk", "notify_url": robot.url, "report_url_base": "https://reports.example.gov.cn/sitepulse", "operator": "市重点办 刘洋"}
    )
    ensure_topics(settings)
    bulletin, rows, pdf = march_bulletin(), registry(), tmp_path / "report.pdf"
    deliveries = "SELECT sent_at, operator, location FROM report_delivery WHERE period = '2026-03-H2'"
    try:
        with pytest.raises(DeliveryRefused, match="群机器人未接收"):
            send_bulletin(settings, bulletin, pdf, rows)
        assert robot.received == [] and sitepulse.query(deliveries) == [], "not taken, not recorded"

        confirmation = send_bulletin(settings, bulletin, pdf, rows)
        assert "已推送2026年3月下半月通报" in confirmation and PDF in confirmation
        (message,) = robot.received
        body = message["body"]
        assert body["msgtype"] == "text" and body["at"]["atMobiles"] == ["13900000002", "13900000001"]
        assert "金蜗牛: 区县(市) 北仑区" in body["text"]["content"] and f"通报全文: {PDF}" in body["text"]["content"]
        (sent,) = sitepulse.query(deliveries)
        assert sent["operator"] == "市重点办 刘洋" and sent["location"] == PDF

        with pytest.raises(DeliveryRefused, match="--resend") as refused:
            send_bulletin(settings, bulletin, pdf, rows)
        assert "市重点办 刘洋" in str(refused.value) and len(robot.received) == 1

        send_bulletin(settings, bulletin, pdf, rows, resend=True)
        assert len(robot.received) == 2 and robot.received[1]["body"] == body
        assert len(sitepulse.query(deliveries)) == 2
        audit = [msgspec.json.decode(r.value, type=AuditRecord) for r in read_topic(settings, AUDIT_TOPIC, expected=2)]
        assert [(a.action, a.reason, a.operator) for a in audit] == [
            ("report_send", "按期推送", "市重点办 刘洋"),
            ("report_send", "再次推送 (--resend)", "市重点办 刘洋"),
        ]
        assert "2026-03-H2" in audit[0].subject
    finally:
        robot.close()
