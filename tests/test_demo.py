"""The main job end to end: the shop backlog committed, then rebuilt on databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import git
import pytest
from click.testing import CliRunner

from sparc.cli import main
from tests.conftest import SCHEMAS, SHARED, libpq_url, psql_file

ALEMBIC = [sys.executable, "-m", "alembic", "-c", "alembic/alembic.ini"]


@pytest.fixture(scope="module")
def shop_done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop example after `sparc init` and `sparc batch`."""
    import shutil

    from tests.conftest import EXAMPLES

    workspace = tmp_path_factory.mktemp("demo") / "shop"
    shutil.copytree(EXAMPLES / "shop", workspace)
    runner = CliRunner()
    result = runner.invoke(main, ["init", str(workspace)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["-C", str(workspace), "batch"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "3 COMPLETE, 0 BLOCKED" in result.stdout
    return workspace


def _alembic(workspace: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [*ALEMBIC, *args], cwd=workspace, env=env, capture_output=True, text=True
    )


def test_three_commits_each_with_only_its_files(shop_done: Path) -> None:
    """models.py, one new revision, the SQL scripts where changed, the task file."""
    repo = git.Repo(shop_done)
    commits = list(repo.iter_commits("HEAD", max_count=3))[::-1]
    assert [c.message.splitlines()[0] for c in commits] == [
        "feat(db): Create the shop core tables",
        "feat(db): Add user authentication tokens",
        "feat(db): Add soft delete and strategic indexes",
    ]
    allowed_scripts = {
        "alembic/scripts/seed_data.sql",
        "alembic/scripts/performance_queries.sql",
    }
    for number, (commit, task_id) in enumerate(
        zip(commits, ["DB-001", "DB-002", "DB-003"], strict=True), start=1
    ):
        files = set(commit.stats.files)
        revisions = {f for f in files if f.startswith("alembic/versions/")}
        assert len(revisions) == 1, files
        (revision,) = revisions
        assert revision.startswith(f"alembic/versions/{number:03d}_")
        assert revision not in {f for c in commits[: number - 1] for f in c.stats.files}
        assert "src/shop/db/models.py" in files
        assert f"docs/backlog/{task_id}.yaml" in files
        assert (
            files - {"src/shop/db/models.py", revision, f"docs/backlog/{task_id}.yaml"}
            <= allowed_scripts
        )
        assert f"Task: {task_id}" in commit.message
    assert not repo.is_dirty(untracked_files=True)


def test_backlog_shows_every_task_complete(shop_done: Path) -> None:
    result = CliRunner().invoke(main, ["-C", str(shop_done), "backlog"])
    assert result.exit_code == 0
    for task_id in ("DB-001", "DB-002", "DB-003"):
        line = next(x for x in result.stdout.splitlines() if x.startswith(task_id))
        assert "COMPLETE" in line


def test_alembic_upgrade_and_check_on_a_new_sqlite_file(
    shop_done: Path, tmp_path: Path
) -> None:
    """The user's own alembic commands work on the demo workspace."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"

    upgraded = _alembic(shop_done, "upgrade", "head", url=url)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = _alembic(shop_done, "check", url=url)
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


@pytest.mark.postgres
def test_revisions_rebuild_the_shop_on_postgresql(
    shop_done: Path, pg_databases
) -> None:
    """Same tables, columns, constraints and indexes as loading the shop files."""
    reference = pg_databases.create()
    candidate = pg_databases.create()
    for step in ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"):
        psql_file(reference, SCHEMAS / step)

    upgraded = _alembic(shop_done, "upgrade", "head", url=candidate)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = _alembic(shop_done, "check", url=candidate)
    assert checked.returncode == 0, checked.stderr

    # pgfacts does not know alembic's bookkeeping table
    subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-d",
            libpq_url(candidate),
            "-c",
            "DROP TABLE alembic_version",
        ],
        check=True,
    )
    facts = subprocess.run(
        [
            sys.executable,
            str(SHARED / "tools" / "pgfacts.py"),
            libpq_url(reference),
            libpq_url(candidate),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "table-scope fidelity" in facts.stdout
    summary = next(
        x for x in facts.stdout.splitlines() if x.startswith("table-scope fidelity")
    )
    assert summary.endswith("= 100.0%"), facts.stdout
