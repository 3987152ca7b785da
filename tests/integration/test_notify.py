"""`sitepulse notify` through the real broker to a local robot receiver: the leader is
@-mentioned by phone (with the person on site, where the registry names one), a robot
failure is retried, and no event pages twice — not for a duplicate on the topic, not
after a restart."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import msgspec
import pytest

from sitepulse.streams.contract import EVENTS_TOPIC, REGISTRY_TOPIC, ProjectEvent, RegistryEntry
from sitepulse.streams.publisher import SitePublisher
from sitepulse.streams.topics import ensure_topics
from tests.conftest import poll
from tests.unit.test_notify_messages import SIX_ONES as SITE
from tests.local_http import LocalServer, QuietHandler

pytestmark = pytest.mark.integration

ENTRY = RegistryEntry(
    "NB-0042", "鄞州区安置房42号", "鄞州区", "东部新城", "市住建局", "district", "continuing",
    "陈静", "13912345678", "国网宁波供电公司计量中心2组", 50_000.0, date(2025, 3, 1), 800.0,
)


class Robot:
    """A DingTalk-like robot: answers errcode 0, or fails the first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict] = []
        self.attempts = 0
        robot = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                robot.attempts += 1
                if robot.attempts <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                robot.received.append({"path": self.path, "body": body})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode":0,"errmsg":"ok"}')

        self.local = LocalServer(Handler)
        self.url = self.local.base_url + "/robot/send?access_token=t"

    def close(self) -> None:
        self.local.close()


def event(kind: str, day: date, detail: str) -> ProjectEvent:
    return ProjectEvent(
        event_id=f"{kind}:{ENTRY.project_id}::{day}", kind=kind, project_id=ENTRY.project_id,
        at=datetime(2026, 3, 5, 16, 15, tzinfo=timezone.utc), day=day, detail=detail,
        leader=ENTRY.leader, district=ENTRY.district, data_owner=ENTRY.data_owner,
    )


def test_notify_mentions_the_leader_retries_and_never_pages_twice(sitepulse):
    robot = Robot(fail_first=2)
    env = {"SITEPULSE_NOTIFY_KIND": "dingtalk", "SITEPULSE_NOTIFY_URL": robot.url, "SITEPULSE_NOTIFY_SECRET": "SEC-test"}
    ensure_topics(sitepulse.settings)
    stalled = event("stalled", date(2026, 3, 5), "停工: 2026-03-05 用电 12.0 kWh, 活跃指数 0.05")
    with SitePublisher(sitepulse.settings) as publisher:
        for row in (ENTRY, SITE):
            publisher.send_keyed(REGISTRY_TOPIC, row.project_id.encode(), msgspec.json.encode(row))
        publisher.flush()
        for _ in range(2):  # the same change found twice (a replay, a restarted worker)
            publisher.send_keyed(EVENTS_TOPIC, ENTRY.project_id.encode(), msgspec.json.encode(stalled))
        publisher.send_keyed(EVENTS_TOPIC, ENTRY.project_id.encode(), msgspec.json.encode(event("started", date(2026, 3, 1), "开工")))
        publisher.flush()
    try:
        first = sitepulse.start_worker_command("notify", **env)
        poll(lambda: robot.received, 30, "the page to arrive")
        body = robot.received[0]["body"]
        assert body["msgtype"] == "text" and body["at"]["atMobiles"] == ["13912345678"]
        assert "@13912345678" in body["text"]["content"] and "鄞州区安置房42号" in body["text"]["content"]
        assert "停工" in body["text"]["content"] and "陈静" in body["text"]["content"]
        assert "timestamp=" in robot.received[0]["path"] and "sign=" in robot.received[0]["path"], "signed (加签)"
        assert robot.attempts == 3, "two refusals, then delivered"
        sitepulse.stop_worker(first)
        assert len(robot.received) == 1, "a duplicate event is not paged again; 'started' does not page"

        # Restarted, it does not page again; a new event still pages, a meter going
        # offline names the data owner without @-ing the leader, and an overdue problem
        # pages the person on site with the leader.
        second = sitepulse.start_worker_command("notify", **env)
        offline = ProjectEvent(
            event_id=f"offline:{ENTRY.project_id}:M1:1772700000000", kind="offline", project_id=ENTRY.project_id,
            at=datetime(2026, 3, 5, 16, 15, tzinfo=timezone.utc), meter_id="M1", detail="电表离线: 电表 M1 最后读数 2026-03-05 16:00",
            leader=ENTRY.leader, district=ENTRY.district, data_owner=ENTRY.data_owner,
        )
        overdue = ProjectEvent(
            event_id="problem_overdue:NB-0043-20260301-problem_opened:2026-03-16", kind="problem_overdue", project_id=SITE.project_id,
            at=datetime(2026, 3, 16, 1, tzinfo=timezone.utc), day=date(2026, 3, 16), detail="问题逾期未销号: 超过限期 1 天",
            problem_id="NB-0043-20260301-problem_opened", category="审批", department="鄞州区行政审批局", due=date(2026, 3, 15),
        )
        with SitePublisher(sitepulse.settings) as publisher:
            # One key, one partition: the robot gets them in this order.
            publisher.send_keyed(EVENTS_TOPIC, ENTRY.project_id.encode(), msgspec.json.encode(offline))
            publisher.send_keyed(EVENTS_TOPIC, ENTRY.project_id.encode(), msgspec.json.encode(overdue))
            publisher.flush()
        poll(lambda: len(robot.received) >= 3, 30, "the offline and overdue pages")
        sitepulse.stop_worker(second)
        assert len(robot.received) == 3
        page = robot.received[1]["body"]
        assert page["at"]["atMobiles"] == [] and ENTRY.data_owner in page["text"]["content"]
        page = robot.received[2]["body"]
        assert page["at"]["atMobiles"] == ["13912345678", "13812340042"]
        assert "责任领导: 副区长 陈静 @13912345678" in page["text"]["content"] and "现场责任人: 张强 @13812340042" in page["text"]["content"]
        assert "责任部门: 鄞州区行政审批局" in page["text"]["content"] and "限期: 2026-03-15" in page["text"]["content"]
    finally:
        robot.close()
