"""Lock files under .sparc/locks, and the log context of a task run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from sparc.errors import BacklogError
from sparc.init import init_workspace
from sparc.runner import Runner, TaskLock


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_live_holder_keeps_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "locks/DB-001.lock"
    path.parent.mkdir()
    holder = subprocess.Popen(["sleep", "30"])
    try:
        path.write_text(f"{holder.pid}\n")
        with pytest.raises(BacklogError, match=f"being run by process {holder.pid}"):
            TaskLock(path, task_id="DB-001").acquire()
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "locks/DB-001.lock"
    path.parent.mkdir()
    path.write_text(f"{_dead_pid()}\n")

    lock = TaskLock(path, task_id="DB-001")
    lock.acquire()
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()
    assert not path.exists()


@pytest.mark.slow
def test_a_task_left_in_progress_by_a_dead_process_is_finished(
    shop_workspace: Path,
) -> None:
    init_workspace(shop_workspace)
    task = shop_workspace / "docs/backlog/DB-001.yaml"
    task.write_text(task.read_text().replace("status: NEW", "status: IN_PROGRESS"))
    locks = shop_workspace / ".sparc/locks"
    locks.mkdir(parents=True)
    (locks / "DB-001.lock").write_text(f"{_dead_pid()}\n")

    with Runner.open(shop_workspace) as runner:
        outcomes = runner.batch()

    assert [o.task_id for o in outcomes][:1] == ["DB-001"]
    assert all(o.complete for o in outcomes)
    # no task lock is left; the workspace lock file stays (only its flock matters)
    assert [p.name for p in locks.glob("*.lock")] == ["workspace.lock"]


def test_every_event_of_a_run_carries_task_phase_and_persona(
    shop_workspace: Path,
) -> None:
    init_workspace(shop_workspace)
    with (
        capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events,
        Runner.open(shop_workspace) as runner,
    ):
        assert runner.run("DB-001").complete

    start = next(i for i, e in enumerate(events) if e["event"] == "task_started")
    in_run = events[start:]
    assert len(in_run) > 10
    assert all(e.get("task_id") == "DB-001" for e in in_run)
    assert all("phase" in e and "persona" in e for e in in_run)
    worked = [e for e in events if e["event"] in ("phase_worked", "phase_reviewed")]
    assert {(e["phase"], e["persona"]) for e in worked} == {
        ("refinement", "hephaestus"),
        ("refinement", "quality-engineer"),
    }
    forged = [e for e in events if e["event"] == "revision_computed"]
    assert forged and forged[0]["persona"] == "hephaestus"
