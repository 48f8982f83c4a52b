"""Exact resume: `sparc batch` killed with SIGKILL at random points, then rerun.

Every rerun must finish the backlog with every task COMPLETE, exactly one
commit per task and files byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest

from sparc.init import init_workspace

TASKS = ("DB-001", "DB-002", "DB-003", "DB-004", "DB-005")
KILLS = 20

EXTRA_TASKS = {
    "DB-004": ("coupon", "DB-003", "code text NOT NULL UNIQUE"),
    "DB-005": ("supplier", "DB-004", "name text NOT NULL"),
}


def _add_dependent_tasks(workspace: Path) -> None:
    for task_id, (table, after, column) in EXTRA_TASKS.items():
        ddl = workspace / f"docs/data/{table}.sql"
        ddl.write_text(f"CREATE TABLE {table} (id integer PRIMARY KEY, {column});\n")
        (workspace / f"docs/backlog/{task_id}.yaml").write_text(
            f"id: {task_id}\ntitle: Add the {table} table\n"
            "specialist: database-engineer\nstatus: NEW\npriority: medium\n"
            f"depends_on: [{after}]\nreferences: [docs/data/{table}.sql]\n"
            "phases: [refinement]\n"
        )


def _batch() -> list[str]:
    return [str(Path(sys.executable).parent / "sparc"), "batch"]


def _run_batch(workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _batch(), cwd=workspace, capture_output=True, text=True, timeout=120
    )


def _tree(workspace: Path) -> dict[str, bytes]:
    return {
        path.relative_to(workspace).as_posix(): path.read_bytes()
        for path in sorted(workspace.rglob("*"))
        if path.is_file()
        and path.relative_to(workspace).parts[0] not in (".git", ".sparc")
    }


def _commits_per_task(workspace: Path) -> dict[str, int]:
    repo = git.Repo(workspace)
    return {
        task: len(list(repo.iter_commits(grep=f"^Task: {task}$", extended_regexp=True)))
        for task in TASKS
    }


@pytest.mark.slow
def test_batch_killed_at_random_points_resumes_exactly(
    shop_workspace: Path, tmp_path: Path
) -> None:
    _add_dependent_tasks(shop_workspace)
    init_workspace(shop_workspace)
    pristine = tmp_path / "pristine"
    shutil.copytree(shop_workspace, pristine)

    # the uninterrupted run, timed, is the reference
    reference = tmp_path / "reference"
    shutil.copytree(pristine, reference)
    started = time.monotonic()
    done = _run_batch(reference)
    duration = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    expected = _tree(reference)
    assert _commits_per_task(reference) == dict.fromkeys(TASKS, 1)

    seed = int(os.environ.get("SPARC_CRASH_SEED", time.time()))
    rng = random.Random(seed)
    kills = rounds = 0
    workspace = _fresh(pristine, tmp_path, rounds)
    while kills < KILLS:
        process = subprocess.Popen(
            _batch(),
            cwd=workspace,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # short delays land more often: each rerun has less work left than the last
        try:
            process.wait(timeout=rng.uniform(0.05, duration * 0.5))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        # this rerun finished the backlog on its own: check it, start afresh
        assert process.returncode == 0, f"seed {seed}, round {rounds}"
        _check(workspace, expected, f"seed {seed}, round {rounds}")
        rounds += 1
        workspace = _fresh(pristine, tmp_path, rounds)

    finished = _run_batch(workspace)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    _check(workspace, expected, f"seed {seed}, last round")
    print(f"seed {seed}: {kills} kills over {rounds + 1} rounds; run {duration:.1f} s")


def _fresh(pristine: Path, tmp_path: Path, number: int) -> Path:
    workspace = tmp_path / f"round-{number}"
    shutil.copytree(pristine, workspace)
    return workspace


def _check(workspace: Path, expected: dict[str, bytes], context: str) -> None:
    assert _commits_per_task(workspace) == dict.fromkeys(TASKS, 1), context
    assert _tree(workspace) == expected, context
    assert not git.Repo(workspace).is_dirty(untracked_files=True), context
    # a lock may outlive its killed process; it must not name a live one
    for lock in (workspace / ".sparc/locks").glob("*.lock"):
        pid = int(lock.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    statuses = [
        line
        for line in (workspace / "docs/backlog").glob("DB-*.yaml")
        if "status: COMPLETE" not in line.read_text()
    ]
    assert not statuses, f"{context}: not COMPLETE: {statuses}"
