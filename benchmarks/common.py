"""What every benchmark shares: timing, scratch workspaces, do-nothing engines.

Each benchmark measures sparc and its floor side by side in the same process
and run, so the ratio holds on any machine even when the seconds do not.
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparc.engines import Review, WorkContext, WorkResult

BENCH_IDENTITY = "Bench Bot <bench-bot@example.invalid>"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench Bot",
    "GIT_AUTHOR_EMAIL": "bench-bot@example.invalid",
    "GIT_COMMITTER_NAME": "Bench Bot",
    "GIT_COMMITTER_EMAIL": "bench-bot@example.invalid",
}
PRIORITIES = ("critical", "high", "medium", "low")


@dataclass
class Measure:
    """One benchmark's figures: sparc against its floor, and the target ratio."""

    name: str
    what: str
    sparc_s: float
    floor_s: float
    target: float
    floor_what: str
    # further figures worth recording (per-task times, peak memory, ...)
    extra: dict[str, Any] = field(default_factory=dict)
    # a limit that is not a ratio to a floor, e.g. "under 1 s"
    absolute_limit_s: float | None = None

    @property
    def ratio(self) -> float:
        return self.sparc_s / self.floor_s if self.floor_s else float("inf")

    @property
    def met(self) -> bool:
        if self.absolute_limit_s is not None:
            return self.sparc_s <= self.absolute_limit_s
        return self.ratio <= self.target

    def line(self) -> str:
        goal = (
            f"limit {self.absolute_limit_s:g} s"
            if self.absolute_limit_s is not None
            else f"target <= {self.target:g}"
        )
        verdict = "met" if self.met else "NOT MET"
        return (
            f"{self.name:<22} ratio {self.ratio:6.2f}  ({goal}: {verdict})  "
            f"sparc {self.sparc_s:8.3f} s  floor {self.floor_s:8.3f} s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "what": self.what,
            "floor_what": self.floor_what,
            "sparc_s": round(self.sparc_s, 4),
            "floor_s": round(self.floor_s, 4),
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "absolute_limit_s": self.absolute_limit_s,
            "met": self.met,
            "extra": self.extra,
        }


def timed(action: Callable[[], object]) -> float:
    """Seconds `action` takes, with the collector settled first."""
    gc.collect()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best_of(runs: int, action: Callable[[], object]) -> float:
    """The fastest of several timings: the least disturbed by the machine."""
    return min(timed(action) for _ in range(runs))


@contextmanager
def git_identity() -> Iterator[None]:
    """Give git calls of the benchmark the bench identity, then restore."""
    saved = {key: os.environ.get(key) for key in GIT_IDENTITY}
    os.environ.update(GIT_IDENTITY)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_IDENTITY},
    )
    return result.stdout


def make_workspace(
    root: Path, tasks: dict[str, str], *, project: str = "bench"
) -> Path:
    """A sparc workspace at `root` with the given task files, committed."""
    from sparc.init import init_workspace

    backlog = root / "docs" / "backlog"
    backlog.mkdir(parents=True)
    for task_id, text in tasks.items():
        (backlog / f"{task_id}.yaml").write_text(text, encoding="utf-8")
    init_workspace(root, project=project, identity=BENCH_IDENTITY)
    return root


def task_yaml(
    task_id: str,
    *,
    priority: str = "medium",
    specialist: str = "python-engineer",
    depends_on: tuple[str, ...] = (),
    phases: tuple[str, ...] = (),
) -> str:
    lines = [
        f"id: {task_id}",
        f"title: Benchmark task {task_id}",
        f"specialist: {specialist}",
        "status: NEW",
        f"priority: {priority}",
        f"depends_on: [{', '.join(depends_on)}]",
        "acceptance_criteria: [It is done]",
    ]
    if phases:
        lines.append(f"phases: [{', '.join(phases)}]")
    return "\n".join(lines) + "\n"


class IdleEngine:
    """Does nothing and approves everything: the cost left is sparc's own."""

    def work(self, context: WorkContext) -> WorkResult:
        return WorkResult()

    def review(self, context: WorkContext) -> Review:
        return Review(verdict="approve")

    def predicted_paths(self, phase: str, task_id: str, config: object) -> set[str]:
        return set()


class SmallDataEngine:
    """A deterministic data engine: one small seed file per task in Refinement."""

    def work(self, context: WorkContext) -> WorkResult:
        if context.phase != "refinement":
            return WorkResult()
        task_id = context.task.task.id
        rows = "\n".join(
            f"INSERT INTO items VALUES ({n}, '{task_id}');" for n in range(3)
        )
        return WorkResult(files={_seed_path(task_id): rows + "\n"})

    def review(self, context: WorkContext) -> Review:
        return Review(verdict="approve")

    def predicted_paths(self, phase: str, task_id: str, config: object) -> set[str]:
        return {_seed_path(task_id)} if phase == "refinement" else set()


def _seed_path(task_id: str) -> str:
    return f"data/seed/{task_id}.sql"


def quiet_logging() -> None:
    """Warnings only: the benchmark measures work, not log rendering."""
    import logging

    from sparc.cli import configure_logging

    configure_logging(logging.WARNING, "console")


def machine() -> dict[str, str]:
    """The machine the figures were taken on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) // 1024} MB"
    except OSError:
        pass
    git_version = subprocess.run(
        ["git", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
        "memory": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git": git_version,
    }
