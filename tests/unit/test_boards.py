"""The boards as code: what Grafana would refuse or a reviewer would miss."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from sitepulse.dashboards.boards import all_boards, board_json
from sitepulse.dashboards.provisioning_files import export_provisioning
from tests.conftest import REPO

PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"


def test_committed_provisioning_equals_a_fresh_export(tmp_path: Path):
    written = export_provisioning(tmp_path)
    for path in written:
        committed = PROVISIONING / path.relative_to(tmp_path)
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} is stale: run `sitepulse dashboards export`"
        )
    committed_boards = {p.name for p in (PROVISIONING / "dashboards" / "sitepulse").glob("*.json")}
    assert committed_boards == {p.name for p in written if p.suffix == ".json"}


def test_every_panel_reads_the_provisioned_datasource_with_influxql():
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "sitepulse.yaml").read_text(encoding="utf-8"))["datasources"][0]
    models = [json.loads(board_json(board)) for board in all_boards()]
    assert len({m["uid"] for m in models}) == len(models)
    for model in models:
        assert re.search(r"[\u4e00-\u9fff]", model["title"]), "boards are for Chinese supervisors"
        for panel in model["panels"]:
            assert panel["targets"], f"{panel['title']} has no query"
            assert re.search(r"[\u4e00-\u9fff]", panel["title"])
            for target in [panel, *panel["targets"]]:
                assert target["datasource"] == {"type": datasource["type"], "uid": datasource["uid"]}
            for target in panel["targets"]:
                assert target["rawQuery"] and target["query"].startswith(("SELECT", "SHOW"))
        for variable in model.get("templating", {}).get("list", []):
            assert variable["datasource"]["uid"] == datasource["uid"]
