"""``sitepulse notify``: page people from ``sitepulse.events`` through DingTalk or WeCom
group robots (or a plain JSON webhook), with real @-mentions of the leader's phone —
Grafana's DingDing integration cannot @-mention anyone.

Delivery is at-least-once towards the robot and at-most-once per event towards people:
an event is posted until the robot accepts it (back-off between attempts, consumption
waits meanwhile), its id is then recorded, and an id already recorded is never posted
again — after a restart, a replay or a duplicate on the topic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import requests
from kafka import KafkaConsumer, TopicPartition

from .settings import Settings
from .streams.contract import EVENT_KINDS, EVENTS_TOPIC, REGISTRY_TOPIC, ProjectEvent, RegistryEntry

log = logging.getLogger("sitepulse.notify")

_event_decoder = msgspec.json.Decoder(ProjectEvent)
_registry_decoder = msgspec.json.Decoder(RegistryEntry)


@dataclass(frozen=True)
class Contact:
    name: str  # project name
    leader: str
    phone: str


def message_text(event: ProjectEvent, contact: Contact | None) -> str:
    """What people read; the phone appears as ``@phone`` where the robot turns it into a mention."""
    title = EVENT_KINDS.get(event.kind, event.kind)
    subject = f"{contact.name}({event.project_id})" if contact and event.project_id else (event.project_id or event.unit or "")
    lines = [f"【重大项目监测 · {title}】{subject}", event.detail]
    if event.kind in ("offline", "online"):
        lines.append(f"数据责任单位: {event.data_owner or '未登记'}")
    elif contact:
        lines.append(f"责任领导: {contact.leader} @{contact.phone}")
    elif event.leader:
        lines.append(f"责任领导: {event.leader}")
    return "\n".join(line for line in lines if line)


def robot_payload(kind: str, event: ProjectEvent, contact: Contact | None) -> dict:
    """The robot's own message shape. Meter events go to the data owner, so nobody is @-ed."""
    text = message_text(event, contact)
    mention = [contact.phone] if contact and contact.phone and event.kind not in ("offline", "online") else []
    if kind == "dingtalk":
        return {"msgtype": "text", "text": {"content": text}, "at": {"atMobiles": mention, "isAtAll": False}}
    if kind == "wecom":
        return {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": mention}}
    return {"message": text, "mention_mobiles": mention, "event": msgspec.to_builtins(event)}


def signed_dingtalk_url(url: str, secret: str, now_ms: int) -> str:
    """DingTalk's 加签: HMAC-SHA256 of "timestamp\\nsecret", base64, URL-encoded."""
    digest = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"


class RobotRefused(Exception):
    """The robot answered but did not take the message."""


def post(settings: Settings, payload: dict, session: requests.Session) -> None:
    url = settings.notify_url or ""
    if settings.notify_kind == "dingtalk" and settings.notify_secret:
        url = signed_dingtalk_url(url, settings.notify_secret.get_secret_value(), int(time.time() * 1000))
    response = session.post(url, json=payload, timeout=10)
    if response.status_code != 200:
        raise RobotRefused(f"HTTP {response.status_code}: {response.text[:200]}")
    if settings.notify_kind in ("dingtalk", "wecom"):
        body = response.json()
        if body.get("errcode", 0) != 0:
            raise RobotRefused(f"errcode {body.get('errcode')}: {body.get('errmsg')}")


class SentLog:
    """Ids of events already posted, in a SQLite file under the state directory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS sent (event_id TEXT PRIMARY KEY, sent_at REAL NOT NULL)")

    def __contains__(self, event_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM sent WHERE event_id = ?", (event_id,)).fetchone() is not None

    def add(self, event_id: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO sent VALUES (?, ?)", (event_id, time.time()))


def deliver(settings: Settings, payload: dict, session: requests.Session, sleep: Callable[[float], None] = time.sleep) -> None:
    """Post until the robot takes it; the consumer waits meanwhile, so nothing is skipped."""
    delay = 0.5
    while True:
        try:
            post(settings, payload, session)
            return
        except (requests.RequestException, RobotRefused, ValueError) as exc:
            log.warning("推送失败, %.1f 秒后重试: %s", delay, exc)
            sleep(delay)
            delay = min(delay * 2, 60.0)


def run_notify(settings: Settings, stop: Callable[[], bool] = lambda: False) -> None:
    if not settings.notify_url:
        raise SystemExit("未配置 SITEPULSE_NOTIFY_URL (机器人 Webhook 地址)")
    kinds = set(settings.notify_kinds)
    contacts: dict[str, Contact] = {}
    sent = SentLog(settings.state_dir / "notify.sqlite")
    registry = KafkaConsumer(**settings.kafka_options(), enable_auto_commit=False)
    partitions = [TopicPartition(REGISTRY_TOPIC, p) for p in sorted(registry.partitions_for_topic(REGISTRY_TOPIC) or ())]
    registry.assign(partitions)
    registry.seek_to_beginning(*partitions)
    # Tansu makes a joining member wait half the session timeout: keep it short there,
    # as the worker does (agents/app.py).
    timeouts = {"session_timeout_ms": 4000, "heartbeat_interval_ms": 1000} if settings.profile == "embedded" else {}
    events = KafkaConsumer(
        EVENTS_TOPIC,
        **settings.kafka_options(),
        group_id=f"{settings.app_id}-notify",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **timeouts,
    )
    session = requests.Session()
    log.info("notify started: %s robot, kinds %s", settings.notify_kind, sorted(kinds))
    try:
        while not stop():
            for records in registry.poll(timeout_ms=100).values():
                for record in records:
                    if record.value:
                        entry = _registry_decoder.decode(record.value)
                        contacts[entry.project_id] = Contact(entry.name, entry.leader, entry.leader_phone)
            batch = events.poll(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        event = _event_decoder.decode(record.value or b"")
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        log.error("无法解析的事件 %s/%s/%s: %s", record.topic, record.partition, record.offset, exc)
                        continue
                    if event.kind not in kinds or event.event_id in sent:
                        continue
                    deliver(settings, robot_payload(settings.notify_kind, event, contacts.get(event.project_id)), session)
                    sent.add(event.event_id)
            if batch:
                events.commit()
    finally:
        events.close()
        registry.close()
