"""Embedding: the public API, the example that mounts sparc as a subgraph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import git
import pytest
from click.testing import CliRunner

import sparc
from sparc.cli import main
from sparc.init import init_workspace

EXAMPLE = Path(__file__).resolve().parent.parent / "examples/embedding/embed.py"


@pytest.mark.slow
def test_the_embedding_example_runs(tmp_path: Path) -> None:
    target = tmp_path / "shop"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # structlog, unconfigured by the example, prints events to stdout too
    lines = [line for line in done.stdout.splitlines() if line.startswith("DB-")]
    assert [line.split(":")[0] for line in lines] == ["DB-001", "DB-002", "DB-003"]
    assert all("COMPLETE" in line for line in lines)
    log = git.Repo(target).git.log("--format=%s")
    assert log.count("feat(db):") == 3


def test_public_api_names() -> None:
    assert callable(sparc.build_graph)
    assert sparc.EngineRegistry.__name__ == "EngineRegistry"
    assert sparc.PersonaRegistry.__name__ == "PersonaRegistry"
    assert sparc.LLMEngine.__name__ == "LLMEngine"
    state = sparc.initial_state("DB-001", "DB-001:x")
    assert state["task_id"] == "DB-001"


def test_sparc_graph_prints_mermaid(shop_workspace: Path) -> None:
    init_workspace(shop_workspace)
    result = CliRunner().invoke(main, ["-C", str(shop_workspace), "graph"])
    assert result.exit_code == 0, result.output
    assert "graph TD;" in result.output
    for node in ("load_task", "refinement_review", "refinement_approval", "commit"):
        assert node in result.output
    assert "refinement_gate -.-> refinement_approval" in result.output
