"""`sitepulse doctor` against the real broker and influxd, and against what is not there."""

from __future__ import annotations

import pytest

from sitepulse.embedded import free_port
from tests.fake_grafana import FakeGrafana

pytestmark = pytest.mark.integration


def test_doctor_names_what_is_missing_and_how_to_fix_it(sitepulse):
    grafana = FakeGrafana("glsa-doctor")
    try:
        sitepulse.env.update({"SITEPULSE_GRAFANA_URL": grafana.url, "SITEPULSE_GRAFANA_TOKEN": "wrong"})
        before = sitepulse.attempt("doctor")
        assert before.exit_code == 1
        assert "✓ Kafka" in before.output and "✓ InfluxDB" in before.output
        assert "✗ 主题 sitepulse.power: 不存在" in before.output and "sitepulse worker" in before.output
        assert "✗ Grafana" in before.output and "401" in before.output and "SITEPULSE_GRAFANA_TOKEN" in before.output

        sitepulse.run("simulate", "--projects", "1", "--days", "1", "--out", str(sitepulse.tmp_path / "one.jsonl"))
        sitepulse.run("registry", "load", str(sitepulse.tmp_path / "one.registry.csv"), "--reason", "测试项目登记")  # creates the topics
        sitepulse.env["SITEPULSE_GRAFANA_TOKEN"] = "glsa-doctor"
        after = sitepulse.attempt("doctor")
        assert after.exit_code == 0, after.output
        assert "✓ 主题 sitepulse.power: 4 个分区" in after.output and "✓ Grafana" in after.output

        sitepulse.env["SITEPULSE_INFLUX_URL"] = f"http://127.0.0.1:{free_port()}"
        down = sitepulse.attempt("doctor")
        assert down.exit_code == 1 and "✗ InfluxDB: 连接不上" in down.output and "SITEPULSE_INFLUX_URL" in down.output
    finally:
        grafana.close()
