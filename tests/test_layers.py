"""The layers (pyproject's import-linter contracts) hold: the core is pure, the contract
imports nothing of sitepulse, the sink and the boards stay off the stream and the CLI.

The repository maps its top-level folders into the ``sitepulse`` package (pyproject's
``package-dir``); import-linter reads packages from one folder, so the check runs on the
tree as it is installed: the folders copied into place under ``sitepulse/``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def installed_tree(into: Path) -> Path:
    package_dir = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    # Each package's own modules (no caches), shortest names first: a subpackage goes inside its parent.
    for package, folder in sorted(package_dir.items(), key=lambda item: item[0].count(".")):
        target = into.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for path in (REPO / folder).glob("*.py"):
            shutil.copy2(path, target / path.name)
    return into


def test_the_import_layers_hold(tmp_path):
    tree = installed_tree(tmp_path / "tree")
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), str(tmp_path / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout and "5 kept" in result.stdout, result.stdout[-2000:]
