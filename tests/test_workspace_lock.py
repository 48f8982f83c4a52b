"""One process at a time runs tasks in a workspace; a second one waits, bounded."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparc.errors import WorkspaceError
from sparc.init import init_workspace
from sparc.runner import LOCKS_DIR, WORKSPACE_LOCK, Runner, WorkspaceRunLock

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, str(os.getpid()).encode(), 0)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_threads_of_one_process_share_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "workspace.lock"
    with WorkspaceRunLock.held(path), WorkspaceRunLock.held(path, timeout=0):
        assert path.read_text().strip().isdigit()


def test_another_process_holding_it_is_reported_after_the_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "workspace.lock"
    holder = _hold(path, 5)
    try:
        with (
            pytest.raises(WorkspaceError, match=rf"pid {holder.pid}"),
            WorkspaceRunLock.held(path, timeout=0.5),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_run_waits_for_another_process_then_completes(shop_workspace: Path) -> None:
    """The second run starts when the first process lets go, and commits."""
    init_workspace(shop_workspace)
    holder = _hold(shop_workspace / ".sparc" / LOCKS_DIR / WORKSPACE_LOCK, 1.5)
    started = time.monotonic()
    try:
        with Runner.open(shop_workspace) as runner:
            outcome = runner.run("DB-001")
    finally:
        holder.wait()
    assert time.monotonic() - started >= 1.0
    assert outcome.complete, outcome.reason
