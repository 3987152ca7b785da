"""``sitepulse notify``: page people from ``sitepulse.events`` through DingTalk or WeCom
group robots (or a plain JSON webhook), with real @-mentions by phone — Grafana's
DingDing integration cannot @-mention anyone. Who is told follows the registry's 六个一:
the person on site and the project's leader for the site's work, the data owner for a
meter, the leaders of a 金蜗牛 unit's projects.

Delivery is at-least-once towards the robot and at-most-once per event towards people:
an event is posted until the robot accepts it (back-off between attempts, consumption
waits meanwhile), its id is then recorded, and an id already recorded is never posted
again — after a restart, a replay or a duplicate on the topic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec
import requests
from kafka import KafkaConsumer, TopicPartition

from .runtime.settings import Settings
from .streams.contract import EVENT_KINDS, EVENTS_TOPIC, REGISTRY_TOPIC, ProjectEvent, RegistryEntry

log = logging.getLogger("sitepulse.notify")

_event_decoder = msgspec.json.Decoder(ProjectEvent)
_registry_decoder = msgspec.json.Decoder(RegistryEntry)


METER_KINDS = ("offline", "online")  # paged to the data owner: nobody is @-ed
# WeCom's text messages stop at 2048 bytes of UTF-8; DingTalk's are far longer.
TEXT_BYTES = {"wecom": 2048}


@dataclass(frozen=True)
class Person:
    """Someone a message names, @-mentioned by phone when the registry gives one."""

    name: str
    phone: str = ""
    title: str = ""  # the leader's title: 副区长

    @property
    def named(self) -> str:
        return f"{self.title} {self.name}".strip()

    def __str__(self) -> str:
        return f"{self.named} @{self.phone}".strip() if self.phone else self.named


def leader_of(entry: RegistryEntry) -> Person:
    """一名区领导挂帅: the project's leader."""
    return Person(entry.leader, entry.leader_phone, entry.leader_title or "")


def owner_of(entry: RegistryEntry) -> Person | None:
    """一名责任人具体抓: the person on site (registries without the column have none)."""
    if not (entry.owner_person or entry.owner_phone):
        return None
    return Person(entry.owner_person or "", entry.owner_phone or "")


def distinct(people: Iterable[Person]) -> list[Person]:
    """Each person once, in the order met: by phone, or by name without one (a name
    without a phone is dropped when someone of that name has one)."""
    found: dict[str, Person] = {}
    for person in people:
        found.setdefault(person.phone or person.name, person)
    reachable = {person.name for person in found.values() if person.phone}
    return [person for person in found.values() if person.phone or person.name not in reachable]


def unit_leaders(registry: Iterable[RegistryEntry], unit_type: str, unit: str) -> list[Person]:
    """The leaders of a ranked unit's projects (district, zone or department)."""
    return distinct(leader_of(entry) for entry in registry if getattr(entry, unit_type, None) == unit)


@dataclass(frozen=True)
class Page:
    """What people read, and the phones the robot @-mentions; each is also written as
    ``@phone`` in the text, where DingTalk turns it into a mention."""

    text: str
    mentions: tuple[str, ...] = ()

    @classmethod
    def of(cls, lines: Iterable[str], people: Iterable[Person]) -> Page:
        return cls("\n".join(line for line in lines if line), tuple(dict.fromkeys(p.phone for p in people if p.phone)))


def ledger_lines(event: ProjectEvent) -> list[str]:
    """The 细账/难账 fields an event carries: the node, the problem and who must solve it by when."""
    fields = (
        ("计划节点", event.node),
        ("问题编号", event.problem_id),
        ("问题类别", event.category),
        ("责任部门", event.department),
        ("整改措施", event.measures),
        ("限期", event.due.isoformat() if event.due else None),
    )
    return [f"{label}: {value}" for label, value in fields if value]


def event_page(event: ProjectEvent, registry: Mapping[str, RegistryEntry]) -> Page:
    """六个一: an event about the site's work pages the person on site and @-mentions the
    leader; a meter event names the data owner; a 金蜗牛 @-mentions the leaders of the
    unit's projects. Without a registry row, the names the event carries, unmentioned."""
    entry = registry.get(event.project_id) if event.project_id else None
    subject = f"{entry.name}({event.project_id})" if entry else (event.project_id or event.unit or "")
    lines = [f"【重大项目监测 · {EVENT_KINDS.get(event.kind, event.kind)}】{subject}", event.detail, *ledger_lines(event)]
    if event.kind in METER_KINDS:
        return Page.of([*lines, f"数据责任单位: {event.data_owner or '未登记'}"], [])
    if event.kind == "golden_snail":
        leaders = unit_leaders(registry.values(), event.unit_type, event.unit) if event.unit_type and event.unit else []
        return Page.of([*lines, "责任领导: " + "、".join(map(str, leaders)) if leaders else ""], leaders)
    leader = leader_of(entry) if entry else Person(event.leader or "")
    owner = owner_of(entry) if entry else None
    owner = owner or (Person(event.owner_person) if event.owner_person else None)
    lines += [f"责任领导: {leader}" if leader.name else "", f"现场责任人: {owner}" if owner else ""]
    return Page.of(lines, [p for p in (leader, owner) if p])


def clipped(text: str, max_bytes: int) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8 at a character boundary, marked with "…"."""
    if len(text.encode()) <= max_bytes:
        return text
    return text.encode()[: max_bytes - len("…".encode())].decode(errors="ignore") + "…"


def robot_payload(kind: str, page: Page, **webhook: object) -> dict:
    """The robot's own message shape; a plain webhook also gets ``webhook``'s fields
    (the event, the bulletin) for whatever relays it."""
    mentions = list(page.mentions)
    text = clipped(page.text, TEXT_BYTES[kind]) if kind in TEXT_BYTES else page.text
    if kind == "dingtalk":
        return {"msgtype": "text", "text": {"content": text}, "at": {"atMobiles": mentions, "isAtAll": False}}
    if kind == "wecom":
        return {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": mentions}}
    return {"message": text, "mention_mobiles": mentions, **webhook}


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


def deliver(
    settings: Settings, payload: dict, session: requests.Session, sleep: Callable[[float], None] = time.sleep, attempts: int | None = None
) -> None:
    """Post until the robot takes it; the consumer waits meanwhile, so nothing is skipped.
    With ``attempts``, give up after that many and raise the last failure (a command
    someone waits on)."""
    delay = 0.5
    for attempt in itertools.count(1):
        try:
            post(settings, payload, session)
            return
        except (requests.RequestException, RobotRefused, ValueError) as exc:
            if attempts is not None and attempt >= attempts:
                raise
            log.warning("推送失败, %.1f 秒后重试: %s", delay, exc)
            sleep(delay)
            delay = min(delay * 2, 60.0)


def run_notify(settings: Settings, stop: Callable[[], bool] = lambda: False) -> None:
    if not settings.notify_url:
        raise SystemExit("未配置 SITEPULSE_NOTIFY_URL (机器人 Webhook 地址)")
    kinds = set(settings.notify_kinds)
    registry: dict[str, RegistryEntry] = {}
    sent = SentLog(settings.state_dir / "notify.sqlite")
    registry_reader = KafkaConsumer(**settings.kafka_options(), enable_auto_commit=False)
    partitions = [TopicPartition(REGISTRY_TOPIC, p) for p in sorted(registry_reader.partitions_for_topic(REGISTRY_TOPIC) or ())]
    registry_reader.assign(partitions)
    registry_reader.seek_to_beginning(*partitions)
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
            for records in registry_reader.poll(timeout_ms=100).values():
                for record in records:
                    if record.value:
                        entry = _registry_decoder.decode(record.value)
                        registry[entry.project_id] = entry
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
                    page = event_page(event, registry)
                    deliver(settings, robot_payload(settings.notify_kind, page, event=msgspec.to_builtins(event)), session)
                    sent.add(event.event_id)
            if batch:
                events.commit()
    finally:
        events.close()
        registry_reader.close()
