"""One settings object, read from the environment (prefix ``SITEPULSE_``) and ``.env``.

Every command builds it once and passes it down; nothing deeper reads the environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


# Apache Kafka answers a waiting fetch as soon as a record arrives; the embedded Tansu
# broker answers one that found nothing only when its wait runs out. With Faust's fixed
# 1500 ms, a reading published just after such a fetch waited over a second before the
# worker saw it: freshness p99 at 2,000 readings/s was 1.7 s; 0.6 s at 250 ms. Shorter
# waits cost the broker CPU on a backlog (per million readings: 1.2 s at 1500 ms, 1.5 s
# at 250 ms, 2.0 s at 100 ms) for no gain in freshness (docs/performance.md).
EMBEDDED_FETCH_WAIT_MS = 250


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SITEPULSE_", env_file=".env", extra="ignore")

    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers, Faust style: kafka://host:port[;kafka://host:port]",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers' certificates")
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = Field("sitepulse", description="InfluxDB 1.x database, or 2.x bucket")
    influx_api: Literal["v1", "v2"] = "v1"
    influx_token: SecretStr | None = Field(None, description="InfluxDB 2.x token (v2 only)")
    influx_token_file: Path | None = Field(None, description="file holding the InfluxDB 2.x token, instead of SITEPULSE_INFLUX_TOKEN")
    influx_username: str | None = Field(None, description="InfluxDB 1.x user (auth-enabled servers; v1 only)")
    influx_password: SecretStr | None = Field(None, description="password of SITEPULSE_INFLUX_USERNAME")
    influx_org: str | None = Field(None, description="InfluxDB 2.x organisation (v2 only)")
    state_dir: Path = Path(".sitepulse")
    profile: Literal["embedded", "production"] = Field(
        "embedded",
        description="embedded: short Kafka group timeouts that suit the in-memory Tansu broker",
    )
    app_id: str = Field("sitepulse", description="Faust app id, also the consumer group id")
    partitions: int = Field(8, ge=1, description="partitions of the input topics when created")
    timezone: str = Field("Asia/Shanghai", description="time zone of the projects' local day")
    batch_size: int = Field(5000, ge=1, description="readings handled together (one InfluxDB write, one judgement)")
    batch_messages: int = Field(
        1000, ge=1, description="Kafka messages taken per worker batch (a batch message carries up to 2000 readings)"
    )
    batch_within_s: float = Field(0.5, gt=0, description="longest wait to fill a batch")
    fetch_wait_ms: int | None = Field(
        None,
        ge=1,
        description="longest the broker may hold a worker's fetch that finds nothing new"
        " [default: 250 on the embedded profile, whose broker answers such a fetch only when it runs out; Faust's 1500 in production]",
    )
    day_cache_days: int = Field(
        3, ge=1, description="open days per project kept in worker memory, behind the newest"
    )
    timelines_held: int = Field(
        10_000,
        ge=0,
        description="projects whose day timelines a worker keeps in memory between judgements (~4 KB each with weeks of days);"
        " the others are rebuilt from their stored daily points when next judged. 0: keep all",
    )
    late_grace_hours: float = Field(
        48, gt=0, description="readings older than this behind the stream's clock go to the DLQ as too_late"
    )
    calendar_overrides: Path | None = Field(
        None, description="CSV date,workday: days the holiday calendar does not know yet"
    )
    snail_bottom: int = Field(
        1, ge=1, description="金蜗牛: units in the last N places of two consecutive rankings"
    )
    flat_investment_months: int = Field(
        2, ge=1, le=12, description="suspicious: months in a row without investment while power says the site works"
    )
    chromium: str | None = Field(None, description="browser that prints the report's PDF [default: chromium on PATH]")
    review_interval_s: float = Field(
        30, gt=0, description="how often the leader worker recomputes rankings and cross-project checks"
    )
    notify_kind: Literal["dingtalk", "wecom", "webhook"] = Field(
        "webhook", description="robot type of SITEPULSE_NOTIFY_URL"
    )
    notify_url: str | None = Field(None, description="group robot webhook that `sitepulse notify` posts to")
    notify_secret: SecretStr | None = Field(None, description="DingTalk robot signing secret (加签)")
    notify_kinds: list[str] = Field(
        ["stalled", "resumed", "offline", "suspicious", "golden_snail", "node_overdue", "problem_opened", "problem_overdue"],
        description="event kinds that page people",
    )
    report_url_base: str | None = Field(
        None,
        description="where the bulletins' PDFs are served: `report --send` links {base}/{period}/report.pdf [default: the PDF's local path]",
    )
    signing_keys: Path | None = Field(
        None, description="CSV project_id,key_hex: the worker verifies readings with it; publishers sign with it"
    )
    require_signatures: bool | None = Field(
        None, description="refuse unsigned readings [default: on in the production profile, off in embedded]"
    )
    grafana_url: str | None = Field(None, description="Grafana base URL, checked by `sitepulse doctor`")
    grafana_token: SecretStr | None = Field(None, description="Grafana service-account token for `sitepulse provision`")
    # Grafana reads InfluxDB with its own read-only account, never the worker's.
    grafana_influx_username: str | None = Field(None, description="InfluxDB 1.x read-only user for Grafana's datasource")
    grafana_influx_password: SecretStr | None = Field(None, description="password of SITEPULSE_GRAFANA_INFLUX_USERNAME")
    grafana_influx_token: SecretStr | None = Field(None, description="InfluxDB 2.x read token for Grafana's datasource")
    operator: str | None = Field(None, description="who runs operator commands, for the audit trail [default: the login name]")
    log_level: str = "info"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @model_validator(mode="after")
    def _token_from_file(self) -> Settings:
        # A token mounted as a file (compose volume, Kubernetes secret) stays out of the
        # environment, where any process listing could read it.
        if self.influx_token is None and self.influx_token_file is not None:
            try:
                self.influx_token = SecretStr(self.influx_token_file.read_text().strip())
            except OSError as exc:
                raise ValueError(f"无法读取 SITEPULSE_INFLUX_TOKEN_FILE ({self.influx_token_file}): {exc.strerror}") from None
        return self

    @property
    def signatures_required(self) -> bool:
        return self.require_signatures if self.require_signatures is not None else self.profile == "production"

    @property
    def consumer_fetch_wait_ms(self) -> int | None:
        """None: Faust's own."""
        return self.fetch_wait_ms if self.fetch_wait_ms is not None else (EMBEDDED_FETCH_WAIT_MS if self.profile == "embedded" else None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker list without Faust's ``kafka://`` scheme, for kafka-python."""
        return [part.strip().split("://", 1)[-1] for part in self.broker.split(";") if part.strip()]

    def kafka_options(self) -> dict[str, object]:
        """Connection options for every kafka-python client (publisher, admin, readers)."""
        options: dict[str, object] = {"bootstrap_servers": self.bootstrap_servers, "security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_sasl_username,
                "sasl_plain_password": self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
            }
        if self.kafka_security_protocol.endswith("SSL") and self.kafka_ssl_cafile:
            options["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return options

    def child_environment(self) -> dict[str, str]:
        """These settings as ``SITEPULSE_*`` variables, for child processes."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            # Lists are read back from the environment as JSON.
            env[f"SITEPULSE_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
        return env
