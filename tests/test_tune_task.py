"""A tuning task in the backlog: read a live database, commit a proven revision."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import git
import pytest

from sparc.init import init_workspace
from sparc.runner import Runner
from tests.test_tune import FILTER_ON_NAME, JOIN_THROUGH_FK, _load_data

TUNE_TASK = """id: DB-004
title: Index the shop's workload
specialist: database-engineer
status: NEW
priority: medium
depends_on: [DB-003]
phases: [refinement]
tune:
  url_env: SPARC_TUNE_URL
  workload: docs/data/workload.sql
  hypothetical: true
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_tuning_task_commits_a_verified_index_revision(
    shop_workspace: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workload's missing indexes become revision 004, committed like any task."""
    init_workspace(shop_workspace)
    with Runner.open(shop_workspace) as runner:
        for task_id in ("DB-001", "DB-002", "DB-003"):
            assert runner.run(task_id).complete

    # a live database at head, with rows and statistics
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            "alembic/alembic.ini",
            "upgrade",
            "head",
        ],
        cwd=shop_workspace,
        env={**os.environ, "DATABASE_URL": pg_url},
        check=True,
        capture_output=True,
    )
    _load_data(pg_url)

    (shop_workspace / "docs/data/workload.sql").write_text(
        f"{FILTER_ON_NAME};\n{JOIN_THROUGH_FK};\n"
    )
    (shop_workspace / "docs/backlog/DB-004.yaml").write_text(TUNE_TASK)
    repo = git.Repo(shop_workspace)
    repo.git.add("docs")
    repo.git.commit("-m", "plan DB-004")
    monkeypatch.setenv("SPARC_TUNE_URL", pg_url)

    with Runner.open(shop_workspace) as runner:
        outcome = runner.run("DB-004")

    assert outcome.complete, outcome.reason
    head = repo.head.commit
    assert "Task: DB-004" in head.message
    (revision,) = [f for f in head.stats.files if f.startswith("alembic/versions/004_")]
    text = (shop_workspace / revision).read_text()
    assert "ix_products_name" in text
    assert "postgresql_concurrently=True" in text
    assert "docs/tuning/DB-004.md" in head.stats.files
    # the database URL is in no committed file
    for path in head.stats.files:
        assert pg_url not in (shop_workspace / path).read_text()
