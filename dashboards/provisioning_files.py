"""Grafana file provisioning: the boards as JSON next to a dashboard provider, so a
Grafana started with ``deploy/grafana/provisioning`` shows them without any API call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from ..streams.contract import RegistryEntry
from .alerting import routing_file, rule_group_file
from .boards import FOLDER_TITLE, all_boards, board_json
from .influxql import DATASOURCE_UID

PROVIDER = f"""# Written by `sitepulse dashboards export`; the boards are code in dashboards/boards.py.
apiVersion: 1
providers:
  - name: sitepulse
    folder: {FOLDER_TITLE}
    folderUid: sitepulse
    type: file
    disableDeletion: false
    allowUiUpdates: false
    options:
      path: /etc/grafana/provisioning/dashboards/sitepulse
"""


# Grafana expands $__file{...} when it reads provisioning files: its read token, created
# by the InfluxDB init (deploy/influxdb/create-tokens.sh) into a volume it alone mounts
# with the worker, never appears in the repository or in Grafana's environment.
DATASOURCE_FILE = {
    "apiVersion": 1,
    "datasources": [
        {
            "name": DATASOURCE_UID,
            "uid": DATASOURCE_UID,
            "type": "influxdb",
            "access": "proxy",
            "url": "http://influxdb:8086",
            "jsonData": {"version": "InfluxQL", "dbName": "$SITEPULSE_INFLUX_DB", "httpMode": "POST", "httpHeaderName1": "Authorization"},
            "secureJsonData": {"httpHeaderValue1": "Token $__file{/run/sitepulse-tokens/grafana-read}"},
        }
    ],
}


def _write_yaml(path: Path, content: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `sitepulse dashboards export`; the source is in dashboards/.\n"
    path.write_text(header + yaml.safe_dump(content, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def export_provisioning(
    root: Path, registry: Sequence[RegistryEntry] | None = None, robot_kind: str = "webhook", years: Iterable[int] = ()
) -> list[Path]:
    """Write the datasource, the boards (``dashboards/``) and the alert rules (``alerting/``) under
    ``root``, a Grafana provisioning directory; with a registry, also its contact points,
    policy tree and holiday mute timing. Returns the files written."""
    written_datasource = _write_yaml(root / "datasources" / "sitepulse.yaml", DATASOURCE_FILE)
    folder = root / "dashboards" / "sitepulse"
    folder.mkdir(parents=True, exist_ok=True)
    provider = root / "dashboards" / "sitepulse.yaml"
    provider.write_text(PROVIDER, encoding="utf-8")
    written = [written_datasource, provider]
    for board in all_boards():
        uid = board.build().uid
        path = folder / f"{uid}.json"
        path.write_text(board_json(board) + "\n", encoding="utf-8")
        written.append(path)
    written.append(_write_yaml(root / "alerting" / "sitepulse-rules.yaml", rule_group_file()))
    if registry is not None:
        written.append(_write_yaml(root / "alerting" / "sitepulse-routing.yaml", routing_file(registry, robot_kind, years)))
    return written
