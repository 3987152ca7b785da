"""Grafana file provisioning: the boards as JSON next to a dashboard provider, so a
Grafana started with ``deploy/grafana/provisioning`` shows them without any API call."""

from __future__ import annotations

from pathlib import Path

from .boards import FOLDER_TITLE, all_boards, board_json

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


def export_provisioning(root: Path) -> list[Path]:
    """Write ``dashboards/sitepulse.yaml`` and ``dashboards/sitepulse/<uid>.json`` under
    ``root`` (a Grafana provisioning directory); returns the files written."""
    folder = root / "dashboards" / "sitepulse"
    folder.mkdir(parents=True, exist_ok=True)
    provider = root / "dashboards" / "sitepulse.yaml"
    provider.write_text(PROVIDER, encoding="utf-8")
    written = [provider]
    for board in all_boards():
        uid = board.build().uid
        path = folder / f"{uid}.json"
        path.write_text(board_json(board) + "\n", encoding="utf-8")
        written.append(path)
    return written
