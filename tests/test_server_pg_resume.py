"""PostgreSQL checkpoints: a run killed in one process is finished by another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import git
import pytest
import sqlalchemy as sa

from sparc.backlog import Backlog, TaskStatus
from sparc.runner import run_id_for
from tests.test_server import library_workspace

# Process A: plans the task, then dies inside Refinement's work, before any
# file is written: the last checkpoint is the one after the planning gate.
_DIES_IN_REFINEMENT = """
import os, sys
from sparc import EngineRegistry, Runner

class Dies:
    def work(self, context):
        os._exit(17)
    def review(self, context):
        raise AssertionError("never reached")

engines = EngineRegistry.default()
engines.use("hephaestus", Dies())
with Runner.open(sys.argv[1], engines=engines) as runner:
    runner.run("DB-001")
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_run_killed_in_one_process_resumes_in_another(
    tmp_path: Path, git_env: None, pg_url: str
) -> None:
    """The second process continues from the planning checkpoint in PostgreSQL."""
    workspace = library_workspace(tmp_path / "library")
    task = workspace / "docs" / "backlog" / "DB-001.yaml"
    task.write_text(
        task.read_text().replace(
            "phases: [refinement]", "phases: [planning, refinement]"
        )
    )
    git.Repo(workspace).git.commit("-am", "docs: plan DB-001 first")
    env = {**os.environ, "SPARC_CHECKPOINT_URL": pg_url}

    first = subprocess.run(
        [sys.executable, "-c", _DIES_IN_REFINEMENT, str(workspace)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 17, first.stderr[-3000:]
    backlog = Backlog.load(workspace / "docs" / "backlog")
    assert backlog.get("DB-001").task.status == TaskStatus.IN_PROGRESS
    run_id = run_id_for(backlog.get("DB-001"))

    second = subprocess.run(
        [str(Path(sys.executable).with_name("sparc")), "-C", str(workspace)]
        + ["--log-format", "json", "-v", "resume", "DB-001"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    assert second.stdout.startswith("DB-001 COMPLETE ")
    events = [json.loads(line) for line in second.stderr.splitlines() if line]
    resumed = [e for e in events if e["event"] == "run_resumed"]
    assert resumed and resumed[0]["run_id"] == run_id
    worked = [e["phase"] for e in events if e["event"] == "phase_worked"]
    assert worked == ["refinement"]  # planning was not done again

    head = git.Repo(workspace).head.commit
    assert head.summary == "feat(db): Create the library tables"
    assert "Phase: planning, refinement" in head.message
    assert not (workspace / ".sparc" / "checkpoints.sqlite").exists()
    engine = sa.create_engine(pg_url)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT count(*) FROM checkpoints WHERE thread_id = :thread"),
            {"thread": run_id},
        ).scalar_one()
    engine.dispose()
    assert stored > 0
