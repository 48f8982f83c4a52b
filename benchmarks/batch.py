"""Batch: a synthetic backlog of small data tasks, end to end with commits.

Every task goes through the six phases with a deterministic engine that writes
one small seed file in Refinement, and is committed. The batch runs in a child
process so its peak memory is its own. Floor: per task, the bare six-node
LangGraph graph (orchestration floor) plus `git add` + `git commit` (commit
floor), both measured in this run, times the number of tasks.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    PRIORITIES,
    Measure,
    SmallDataEngine,
    git_identity,
    make_workspace,
    quiet_logging,
    task_yaml,
)

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


def run_child(count: int, folder: Path) -> dict[str, float]:
    """Run the batch in a child process; return its seconds and peak memory."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch", str(count), str(folder)],
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


def measure(count: int = 1000, *, budget_s: float = 240.0, probe: int = 40) -> Measure:
    """Run the batch of `count` tasks, or fewer when it would not fit `budget_s`."""
    with tempfile.TemporaryDirectory(prefix="sparc-bench-batch-") as folder:
        scratch = Path(folder)
        per_task_floor = floor_per_task(scratch)
        trial = run_child(probe, scratch / "probe")
        per_task = trial["seconds"] / probe
        # cost per task grows with the backlog wherever a run reads all of it,
        # so the size is chosen with room for that growth
        fitting = int(budget_s / (per_task * 2.5))
        size = max(probe, min(count, fitting))
        run = run_child(size, scratch / "full")
    scaled = size < count
    return Measure(
        name="batch",
        what=f"{size} small data tasks, six phases, commits, run_batch"
        + (f" (scaled down from {count}: time budget)" if scaled else ""),
        floor_what="tasks x (bare six-node graph + git add/commit), this run",
        sparc_s=run["seconds"],
        floor_s=per_task_floor * size,
        target=TARGET,
        extra={
            "tasks": size,
            "requested_tasks": count,
            "workers": run["workers"],
            "peak_memory_mb": run["peak_mb"],
            "memory_limit_mb": MEMORY_LIMIT_MB,
            "sparc_ms_per_task": round(run["seconds"] / size * 1000, 2),
            "floor_ms_per_task": round(per_task_floor * 1000, 2),
            "probe_ms_per_task": round(per_task * 1000, 2),
            "projected_s_for_requested": round(run["seconds"] / size * count, 1),
        },
    )


def _child(count: int, folder: Path) -> None:
    from sparc.batch import run_batch
    from sparc.engines import EngineRegistry
    from sparc.runner import Runner

    quiet_logging()
    with git_identity():
        root = make_workspace(folder, backlog(count))
        engines = EngineRegistry(fallback=SmallDataEngine)
        with Runner.open(root, engines=engines) as runner:
            start = time.perf_counter()
            result = run_batch(runner)
            seconds = time.perf_counter() - start
    if len(result.complete) != count:
        reasons = {r.task_id: r.outcome.reason for r in result.blocked}
        raise SystemExit(f"batch benchmark: not all tasks completed: {reasons}")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": round(peak_kb / 1024, 1),
                "workers": result.workers,
            }
        )
    )


if __name__ == "__main__":
    _child(int(sys.argv[1]), Path(sys.argv[2]))
    sys.stdout.flush()
    os._exit(0)
