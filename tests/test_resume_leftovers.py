"""A process killed in the middle of an atomic write leaves its temporary file;
the next run that writes the same file removes it, and nothing else."""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from structlog.testing import capture_logs

from sparc.init import init_workspace
from sparc.runner import Runner


@pytest.fixture
def workspace(shop_workspace: Path) -> Path:
    init_workspace(shop_workspace)
    return shop_workspace


def test_a_killed_writes_temporary_files_are_removed_by_the_next_run(
    workspace: Path,
) -> None:
    backlog = workspace / "docs/backlog"
    models = workspace / "src/shop/db"
    models.mkdir(parents=True, exist_ok=True)
    leftovers = [
        backlog / ".DB-001.yaml.k1ll3d_x.tmp",
        models / ".models.py.a8b9c0d1.tmp",
    ]
    # a file of the user's that only looks alike, and another task's leftover
    kept = [backlog / ".DB-001.yaml.notes.tmp", backlog / ".DB-002.yaml.k1ll3d_x.tmp"]
    for path in [*leftovers, *kept]:
        path.write_text("half written\n")

    with capture_logs() as logs, Runner.open(workspace) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.exists() for p in kept)
    removed = [e["path"] for e in logs if e["event"] == "leftover_removed"]
    assert sorted(removed) == sorted(str(p) for p in leftovers)
    for path in kept:
        path.unlink()
    assert not git.Repo(workspace).is_dirty(untracked_files=True)
