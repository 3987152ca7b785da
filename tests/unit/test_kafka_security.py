"""Kafka SASL/TLS settings reach every client; the password never shows."""

from __future__ import annotations

import faust

from sitepulse.agents.app import faust_credentials
from sitepulse.runtime.settings import Settings


def test_sasl_over_tls_reaches_kafka_python_and_faust():
    settings = Settings(
        broker="kafka://k1:9093;kafka://k2:9093", kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="sitepulse", kafka_sasl_password="s3cret-pw", _env_file=None,
    )
    options = settings.kafka_options()
    assert options["bootstrap_servers"] == ["k1:9093", "k2:9093"] and options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512" and options["sasl_plain_password"] == "s3cret-pw"
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials) and credentials.protocol.value == "SASL_SSL"
    assert "s3cret-pw" not in repr(credentials) and "s3cret-pw" not in repr(settings)


def test_plaintext_is_the_embedded_default():
    settings = Settings(_env_file=None)
    assert settings.kafka_options()["security_protocol"] == "PLAINTEXT" and faust_credentials(settings) is None
