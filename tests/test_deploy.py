"""The production stack file: valid for docker-compose, and no secret written in it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO


def compose_config(env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian package) is installed by ./run.sh test"
    return subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "config", *options],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        cwd=REPO,
    )


SECRETS = {
    "INFLUXDB_ADMIN_TOKEN": "tok-123", "INFLUXDB_ADMIN_PASSWORD": "pw-456", "GRAFANA_ADMIN_PASSWORD": "pw-789",
    "KAFKA_ADMIN_PASSWORD": "ka-111", "KAFKA_WORKER_PASSWORD": "kw-222", "KAFKA_SITE_PASSWORD": "ks-333", "KAFKA_OPERATOR_PASSWORD": "ko-444",
}


def test_the_stack_validates_and_takes_its_secrets_from_the_environment():
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    assert {"kafka", "kafka-principals", "influxdb", "grafana", "worker"} <= set(compose_config(SECRETS, "--services").stdout.split())
    optional = {**SECRETS, "COMPOSE_PROFILES": "provision,demo,notify"}
    everything = compose_config(optional, "--services")
    assert everything.returncode == 0, everything.stderr
    assert set(everything.stdout.split()) == {"kafka", "kafka-principals", "influxdb", "grafana", "worker", "provision", "simulator", "notify"}
    for secret in SECRETS.values():
        assert secret in result.stdout  # interpolated from the environment ...
        assert secret not in (REPO / "docker-compose.yml").read_text()  # ... never written down


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_the_stack_with_its_name(missing):
    result = compose_config({k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_the_worker_runs_the_production_profile_on_kafka_and_influxdb2():
    text = compose_config(SECRETS).stdout
    worker = text.split("  worker:", 1)[1]
    for setting in ("SITEPULSE_PROFILE: production", "SITEPULSE_BROKER: kafka://kafka:9092", "SITEPULSE_INFLUX_API: v2"):
        assert setting in worker


def test_the_admin_token_stays_with_influxdb_and_each_party_gets_its_own():
    import yaml

    stack = yaml.safe_load(compose_config(SECRETS).stdout)["services"]
    for name in ("worker", "grafana"):
        assert "tok-123" not in str(stack[name]), f"{name} must not hold the InfluxDB admin token"
    assert stack["worker"]["environment"]["SITEPULSE_INFLUX_TOKEN_FILE"] == "/run/sitepulse-tokens/worker-write"
    init = (REPO / "deploy/influxdb/create-tokens.sh").read_text()
    assert "--read-bucket" in init and "grafana-read" in init and "worker-write" in init
    # Grafana's datasource reads the read-only token from the shared volume.
    datasource = (REPO / "deploy/grafana/provisioning/datasources/sitepulse.yaml").read_text()
    assert "$__file{/run/sitepulse-tokens/grafana-read}" in datasource
    mounts = {name: [str(v) for v in stack[name].get("volumes", [])] for name in ("worker", "grafana", "influxdb")}
    assert all(any("/run/sitepulse-tokens" in m for m in mounted) for mounted in mounts.values())


def test_each_party_logs_in_to_kafka_as_itself_and_only_the_broker_holds_the_admin_login():
    import yaml

    stack = yaml.safe_load(compose_config({**SECRETS, "COMPOSE_PROFILES": "demo,notify"}).stdout)["services"]
    logins = {name: stack[name]["environment"] for name in ("worker", "simulator", "notify")}
    for name, env in logins.items():
        assert env["SITEPULSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and env["SITEPULSE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert "ka-111" not in str(stack[name]), f"{name} must not hold the Kafka admin password"
    assert (logins["worker"]["SITEPULSE_KAFKA_SASL_USERNAME"], logins["worker"]["SITEPULSE_KAFKA_SASL_PASSWORD"]) == ("sitepulse-worker", "kw-222")
    assert (logins["simulator"]["SITEPULSE_KAFKA_SASL_USERNAME"], logins["simulator"]["SITEPULSE_KAFKA_SASL_PASSWORD"]) == ("sitepulse-site", "ks-333")
    assert logins["notify"]["SITEPULSE_KAFKA_SASL_USERNAME"] == "sitepulse-operator"
    properties = (REPO / "deploy/kafka/server.properties").read_text()
    assert "allow.everyone.if.no.acl.found=false" in properties and "SASL_PLAINTEXT://:9092" in properties
    assert "PLAINTEXT://:9092" not in properties.replace("SASL_PLAINTEXT://:9092", ""), "no unauthenticated client listener"
    # The sites' login may produce readings and reports and nothing else: no Read anywhere.
    grants = [line for line in (REPO / "deploy/kafka/create-principals.sh").read_text().splitlines() if line.startswith("allow sitepulse-site")]
    assert grants == ["allow sitepulse-site --operation Write --operation Describe --topic sitepulse.power --topic sitepulse.investment"]



def test_env_example_lists_every_secret_the_stack_requires_and_filled_in_it_validates():
    import re
    import secrets

    required = set(re.findall(r"\$\{(\w+):\?", (REPO / "docker-compose.yml").read_text()))
    listed = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines() if re.match(r"^[A-Z_]+=", line))
    assert set(listed) == required == set(SECRETS)
    assert not any(listed.values()), "the example holds no secret, only the names"
    filled = {name: secrets.token_hex(16) for name in listed}  # as its header says: 32 characters, no '/', '+' or '='
    result = compose_config(filled)
    assert result.returncode == 0, result.stderr
