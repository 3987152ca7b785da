"""``sitepulse report --send``: the half-monthly bulletin delivered to the group robot that
pages people (``notify``'s robot settings and posting), once per period.

The message is the bulletin's front page — the headline, the 金蜗牛 units, the last of
each ranking and the 推进较慢 projects — with the PDF's location, and it @-mentions the
leaders those lines concern (六个一: 一名区领导挂帅). A ``report_delivery`` point in
InfluxDB marks the period sent; a second send is refused unless asked for again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import requests

from .agents.core.bulletin_figures import Bulletin, SlowProject
from .agents.core.periods import Period
from .agents.core.ranking import UnitScore
from .sink.influx import InfluxClient, InfluxRejected, InfluxUnavailable
from .sink.points import delivery_point
from .sink.stored import last_delivery as stored_delivery
from .bulletin import UNIT_NAMES, pct, period_title, yi
from .notify import TEXT_BYTES, Page, Person, RobotRefused, deliver, distinct, leader_of, robot_payload, unit_leaders
from .runtime.settings import Settings
from .streams.audit import operator_name, record_audit
from .streams.contract import EVENT_KINDS, RegistryEntry
from .streams.publisher import SitePublisher

SLOW_LISTED = 10  # 推进较慢 projects named in the message; the PDF lists them all
ROBOT_ATTEMPTS = 3  # someone waits on the command: give up rather than retry forever


class DeliveryRefused(RuntimeError):
    """The bulletin was not sent (or not recorded as sent); the message is for operators (Chinese)."""


def bottom_units(bulletin: Bulletin) -> list[UnitScore]:
    """The last place of each ranking. When every unit is level, or only one is ranked,
    nobody is behind anyone (as for the 金蜗牛)."""
    found = []
    for rows in bulletin.rankings.values():
        placed = [row.score for row in rows if row.score.rank is not None]
        last = max((score.rank for score in placed), default=1)
        found += [score for score in placed if last > 1 and score.rank == last]
    return found


def unit_text(score: UnitScore) -> str:
    standing = f"第 {score.rank} 名, 得分 {score.score:.1f}" if score.rank is not None and score.score is not None else "未排名"
    return f"{UNIT_NAMES.get(score.unit_type, score.unit_type)} {score.unit} ({standing})"


def slow_text(number: int, slow: SlowProject, leader: Person) -> str:
    reasons = [
        f"{slow.node} 滞后 {slow.days_behind} 天" if slow.node and slow.days_behind else "",
        f"停工 {slow.stalled_days} 个工作日" if slow.stalled_days else "",
    ]
    why = "; ".join(reason for reason in reasons if reason)
    return f"{number}. {slow.name}({slow.project_id}) {slow.district}, 责任领导 {leader.named or '未登记'}: {why}"


def headline_lines(bulletin: Bulletin) -> list[str]:
    head = bulletin.headline
    counts = f"在建 {head.count('started')} 个, 停工 {head.count('stalled')} 个, 离线 {head.count('offline')} 个"
    city = head.city
    covered = city.coverage.title if city.coverage else ""
    investment = (
        f"{covered}累计完成投资 {yi(city.completed_wan)} 亿元, 占年度计划 {pct(city.pct)} (序时进度 {pct(city.time_elapsed_pct)})"
        if covered
        else "本年度尚无投资报送"
    )
    return [f"全市重大项目 {head.projects} 个: {counts}", investment]


def bulletin_page(bulletin: Bulletin, registry: Sequence[RegistryEntry], location: str, max_bytes: int | None = None) -> Page:
    """The robot message of a bulletin. Within ``max_bytes`` (WeCom's limit) the 推进较慢
    list is shortened first, so the headline and the PDF's location always come through."""
    period = bulletin.period
    as_of = "" if bulletin.as_of >= period.last else f" (截至{bulletin.as_of.month}月{bulletin.as_of.day}日)"
    snails, bottoms = bulletin.golden_snails, bottom_units(bulletin)
    head = [
        f"【重大项目监测 · {EVENT_KINDS['bulletin']}】{period_title(period)}{as_of}",
        *headline_lines(bulletin),
        f"通报全文: {location}",
        "金蜗牛: " + ("; ".join(map(unit_text, snails)) if snails else "无"),
        "排名末位: " + "; ".join(map(unit_text, bottoms)) if bottoms else "",
        f"推进较慢项目 {len(bulletin.slow)} 个" + (":" if bulletin.slow else ""),
    ]
    entries = {entry.project_id: entry for entry in registry}
    slow_leaders = [leader_of(entries[s.project_id]) if s.project_id in entries else Person(s.leader) for s in bulletin.slow]
    slow = [slow_text(n, s, leader) for n, (s, leader) in enumerate(zip(bulletin.slow, slow_leaders), start=1)]
    people = [person for score in (*snails, *bottoms) for person in unit_leaders(registry, score.unit_type, score.unit)]
    people = [person for person in distinct([*people, *slow_leaders]) if person.name or person.phone]
    closing = "请责任领导阅知: " + "、".join(map(str, people)) if people else ""
    shown = min(len(slow), SLOW_LISTED)
    while True:
        more = f"……等 {len(slow)} 个项目, 详见通报全文" if shown < len(slow) else ""
        page = Page.of([*head, *slow[:shown], more, closing], people)
        if max_bytes is None or shown == 0 or len(page.text.encode()) <= max_bytes:
            return page
        shown -= 1


def report_location(settings: Settings, period: Period, pdf_path: Path) -> str:
    """Where readers find the PDF: its URL under SITEPULSE_REPORT_URL_BASE, or its path here."""
    if settings.report_url_base:
        return f"{settings.report_url_base.rstrip('/')}/{period.label}/report.pdf"
    return str(pdf_path.resolve())


async def last_delivery(settings: Settings, period: Period) -> dict | None:
    async with InfluxClient(settings) as client:
        return await stored_delivery(client.query, period.label)


async def record_delivery(settings: Settings, period: Period, sent_at: datetime, operator: str, location: str) -> None:
    async with InfluxClient(settings) as client:
        await client.write([delivery_point(period.label, sent_at, operator, location)])


def send_bulletin(settings: Settings, bulletin: Bulletin, pdf_path: Path, registry: Sequence[RegistryEntry], resend: bool = False) -> str:
    """Post the bulletin's message to the robot, once per period (``resend``: again);
    returns the confirmation for the operator."""
    if not settings.notify_url:
        raise DeliveryRefused("未配置 SITEPULSE_NOTIFY_URL (群机器人 Webhook 地址), 通报未推送")
    period, title = bulletin.period, period_title(bulletin.period)
    try:
        earlier = asyncio.run(last_delivery(settings, period))
    except (InfluxUnavailable, InfluxRejected) as exc:
        raise DeliveryRefused(f"无法确认{title}通报是否已推送, 未推送 (InfluxDB: {exc})") from None
    if earlier and not resend:
        when = datetime.fromisoformat(earlier["sent_at"]).astimezone(settings.tz)
        raise DeliveryRefused(f"{title}通报已于 {when:%Y-%m-%d %H:%M} 由 {earlier['operator']} 推送, 不再重复推送; 确需再次推送请加 --resend")
    location = report_location(settings, period, pdf_path)
    page = bulletin_page(bulletin, registry, location, TEXT_BYTES.get(settings.notify_kind))
    payload = robot_payload(settings.notify_kind, page, bulletin={"period": period.label, "title": title, "location": location})
    # The broker is reached before the robot: a send that could not be audited is not made.
    with SitePublisher(settings) as publisher, requests.Session() as session:
        try:
            deliver(settings, payload, session, attempts=ROBOT_ATTEMPTS)
        except (requests.RequestException, RobotRefused, ValueError) as exc:
            raise DeliveryRefused(f"群机器人未接收{title}通报 (已尝试 {ROBOT_ATTEMPTS} 次): {exc}") from None
        sent_at, operator = datetime.now(settings.tz), operator_name(settings)
        try:
            asyncio.run(record_delivery(settings, period, sent_at, operator, location))
        except (InfluxUnavailable, InfluxRejected) as exc:
            raise DeliveryRefused(f"{title}通报已推送, 但未能记录推送 (InfluxDB: {exc}); 再次推送本期前请先确认群内已收到") from None
        reason = "再次推送 (--resend)" if earlier else "按期推送"
        record_audit(settings, publisher, "report_send", f"{title}通报 ({period.label}) -> {location}", reason)
        publisher.flush()
    return f"已推送{title}通报至群机器人, @责任领导 {len(page.mentions)} 人; 通报全文: {location}"
