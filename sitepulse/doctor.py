"""``sitepulse doctor``: check every connection sitepulse needs and say what to do about
each one that fails, in the operator's words."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from .sink.influx import InfluxClient, InfluxRejected, InfluxUnavailable
from .runtime.settings import Settings
from .streams.topics import topic_specs


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


def check_broker(settings: Settings) -> list[Check]:
    try:
        consumer = KafkaConsumer(**settings.kafka_options(), client_id="sitepulse-doctor", request_timeout_ms=5000)
    except KafkaError as exc:
        return [Check("Kafka", False, f"连接不上 {settings.broker} ({type(exc).__name__}); 检查 SITEPULSE_BROKER 与网络/认证设置")]
    try:
        existing = consumer.topics()
        found = {spec.name: len(consumer.partitions_for_topic(spec.name) or ()) for spec in topic_specs(settings) if spec.name in existing}
    finally:
        consumer.close()
    checks = [Check("Kafka", True, f"已连接 {settings.broker}")]
    for spec in topic_specs(settings):
        if spec.name not in found:
            checks.append(Check(f"主题 {spec.name}", False, "不存在; 启动 sitepulse worker 会自动创建, 或由集群管理员按 deploy/README.md 创建"))
        else:
            checks.append(Check(f"主题 {spec.name}", True, f"{found[spec.name]} 个分区 (worker 最多可并行 {found[spec.name]} 个)"))
    return checks


async def _check_influx(settings: Settings) -> Check:
    async with InfluxClient(settings) as client:
        if not await client.ping():
            return Check("InfluxDB", False, f"连接不上 {settings.influx_url}; 检查 SITEPULSE_INFLUX_URL 与 InfluxDB 是否在运行")
        try:
            await client.query("SHOW MEASUREMENTS LIMIT 1")
        except InfluxRejected as exc:
            return Check("InfluxDB", False, f"拒绝查询 ({exc}); 检查 SITEPULSE_INFLUX_DB (2.x: 桶与 DBRP 映射) 与 SITEPULSE_INFLUX_TOKEN")
        except InfluxUnavailable as exc:
            return Check("InfluxDB", False, f"查询失败 ({exc})")
    return Check("InfluxDB", True, f"已连接 {settings.influx_url}, 数据库/桶 {settings.influx_db} 可查询")


def check_grafana(settings: Settings) -> list[Check]:
    if not settings.grafana_url:
        return []
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException

    token = settings.grafana_token.get_secret_value() if settings.grafana_token else None
    try:
        api = GrafanaApi.from_url(settings.grafana_url, credential=token)
        api.client.GET("/health")
        api.folder.get_all_folders()
    except GrafanaException as exc:
        return [Check("Grafana", False, f"{settings.grafana_url} 返回 {exc.status_code}; 检查 SITEPULSE_GRAFANA_TOKEN (服务账号令牌)")]
    except Exception as exc:  # connection errors come from the HTTP library underneath
        return [Check("Grafana", False, f"连接不上 {settings.grafana_url} ({type(exc).__name__}); 检查 SITEPULSE_GRAFANA_URL")]
    return [Check("Grafana", True, f"已连接 {settings.grafana_url}, 令牌有效")]


def run_checks(settings: Settings) -> list[Check]:
    return check_broker(settings) + [asyncio.run(_check_influx(settings))] + check_grafana(settings)
