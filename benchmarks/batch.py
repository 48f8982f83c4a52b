"""Batch: a synthetic backlog of small data tasks, end to end with commits.

Every task goes through the six phases with a deterministic engine that writes
one small seed file in Refinement, and is committed. The batch runs in a child
process so its peak memory is its own. Floor: per task, the bare six-node
LangGraph graph (orchestration floor) plus `git add` + `git commit` (commit
floor), both measured in this run, times the number of tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import (
    PRIORITIES,
    Measure,
    SmallDataEngine,
    git_identity,
    make_workspace,
    quiet_logging,
    task_yaml,
)

if TYPE_CHECKING:
    from sparc.batch import TaskRun

TARGET = 2.0
MEMORY_LIMIT_MB = 400


def backlog(count: int) -> dict[str, str]:
    """Small data tasks in chains of ten, with mixed priorities."""
    tasks = {}
    for n in range(count):
        depends = (f"D-{n - 1:05d}",) if n % 10 else ()
        tasks[f"D-{n:05d}"] = task_yaml(
            f"D-{n:05d}",
            priority=PRIORITIES[n % 4],
            specialist="database-engineer",
            depends_on=depends,
        )
    return tasks


def run_child(count: int, folder: Path, budget_s: float) -> dict[str, float]:
    """Run the batch in a child process; return its seconds and peak memory."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.batch",
            str(count),
            str(folder),
            str(budget_s),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def floor_per_task(folder: Path, samples: int = 100) -> float:
    from benchmarks import commit, orchestration

    bare = orchestration.run_bare(samples, folder / "floor.sqlite") / samples
    commits = commit.measure(samples // 2)
    return bare + commits.floor_s / (samples // 2)


def measure(count: int = 1000, *, budget_s: float = 180.0) -> Measure:
    """Run the batch of `count` tasks; stop starting tasks once `budget_s` is spent.

    The ratio is then over the tasks that ran, in a backlog of `count` tasks.
    """
    with tempfile.TemporaryDirectory(prefix="sparc-bench-batch-") as folder:
        scratch = Path(folder)
        per_task_floor = floor_per_task(scratch)
        run = run_child(count, scratch / "ws", budget_s)
    ran = int(run["tasks"])
    scaled = f" (stopped after {ran} of {count}: time budget)" if ran < count else ""
    return Measure(
        name="batch",
        what=f"{ran} small data tasks, six phases, commits, run_batch{scaled}",
        floor_what="tasks x (bare six-node graph + git add/commit), this run",
        sparc_s=run["seconds"],
        floor_s=per_task_floor * ran,
        target=TARGET,
        extra={
            "tasks": ran,
            "requested_tasks": count,
            "workers": run["workers"],
            "peak_memory_mb": run["peak_mb"],
            "memory_limit_mb": MEMORY_LIMIT_MB,
            "sparc_ms_per_task": round(run["seconds"] / ran * 1000, 2),
            "floor_ms_per_task": round(per_task_floor * 1000, 2),
        },
    )


class _OutOfTime(Exception):
    """The benchmark's time budget is spent; no further task is started."""


def _child(count: int, folder: Path, budget_s: float) -> None:
    from sparc.batch import default_workers, run_batch
    from sparc.engines import EngineRegistry
    from sparc.runner import Runner

    quiet_logging()
    done: list[str] = []
    with git_identity():
        root = make_workspace(folder, backlog(count))
        engines = EngineRegistry(fallback=SmallDataEngine)
        with Runner.open(root, engines=engines) as runner:
            start = time.perf_counter()

            def finished(run: TaskRun) -> None:
                if not run.complete:
                    raise SystemExit(f"{run.task_id} blocked: {run.outcome.reason}")
                done.append(run.task_id)
                if time.perf_counter() - start > budget_s:
                    raise _OutOfTime

            with contextlib.suppress(_OutOfTime):
                run_batch(runner, on_finish=finished)
            seconds = time.perf_counter() - start
    peak_kb = _peak_kb()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "tasks": len(done),
                "peak_mb": round(peak_kb / 1024, 1),
                "workers": default_workers(),
            }
        )
    )


def _peak_kb() -> int:
    """This process's own peak resident memory.

    Linux keeps ru_maxrss across exec, so a child started by a parent that had
    grown large (the 1,000-table forge runs before this) would report the
    parent's peak; VmHWM belongs to the new address space alone.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    _child(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
    sys.stdout.flush()
    os._exit(0)
