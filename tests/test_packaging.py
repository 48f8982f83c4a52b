"""The built wheel exposes only the `sparc` import name."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("sparc-*.whl")
    return built


def test_wheel_holds_only_the_sparc_package(wheel: Path) -> None:
    """Every module and data file lives under sparc/ (or the dist-info)."""
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"sparc"}
    assert "sparc/agents/hephaestus/engine.py" in names
    assert "sparc/personas/hephaestus.md" in names
    assert "sparc/workflows/sparc.yaml" in names
    assert "sparc/workspace_templates/alembic/env.py" in names
    assert "sparc/workspace_templates/dot-sparc/config.yaml" in names


def test_wheel_installs_into_a_clean_environment(wheel: Path, tmp_path: Path) -> None:
    """In a fresh venv `sparc.agents` resolves and a top-level `agents` does not."""
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import importlib.util as u\n"
        "assert u.find_spec('agents') is None, 'agents is importable'\n"
        "assert u.find_spec('personas') is None, 'personas is importable'\n"
        "assert u.find_spec('sparc.agents.hephaestus') is not None\n"
        "import os\n"
        "folder = u.find_spec('sparc.personas').submodule_search_locations[0]\n"
        "names = set(os.listdir(folder))\n"
        "assert 'hephaestus.md' in names, names\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
