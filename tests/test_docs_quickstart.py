"""docs/quickstart.md run as written: its shell blocks in order, in an empty folder."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import git
import pytest

from tests.conftest import REPO_ROOT

QUICKSTART = REPO_ROOT / "docs" / "quickstart.md"
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def quickstart_blocks() -> list[str]:
    return SHELL_BLOCK.findall(QUICKSTART.read_text(encoding="utf-8"))


def test_the_first_block_is_the_installation() -> None:
    """Only the install block is left out of the walkthrough, and it installs."""
    blocks = quickstart_blocks()
    assert "make install" in blocks[0]
    assert not any("make install" in block for block in blocks[1:])
    assert len(blocks) >= 6


@pytest.mark.slow
def test_quickstart_gets_a_new_user_to_a_committed_schema(
    tmp_path: Path, git_env: None
) -> None:
    """init, DDL, review, task, run, log, upgrade: every command succeeds."""
    script = "set -euo pipefail\n" + "\n".join(quickstart_blocks()[1:])
    # `sparc` and `alembic` as the install step leaves them: on PATH
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }

    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    workspace = tmp_path / "library"
    assert re.search(
        r"^DB-001 COMPLETE [0-9a-f]{10} \(hephaestus\)$", result.stdout, re.M
    )
    head = git.Repo(workspace).head.commit
    assert head.summary == "feat(db): Create the library tables"
    assert head.author.name == "Ada Lovelace"
    assert set(head.stats.files) == {
        "src/library/db/models.py",
        "alembic/versions/001_create_the_library_tables.py",
        "alembic/scripts/seed_data.sql",
        "alembic/scripts/performance_queries.sql",
        "docs/backlog/DB-001.yaml",
    }
    models = (workspace / "src/library/db/models.py").read_text()
    assert "__tablename__ = 'authors'" in models
    assert "__tablename__ = 'books'" in models
    with sqlite3.connect(workspace / "library.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"authors", "books", "alembic_version"} <= tables
    assert "001 (head)" in result.stdout
