"""Backlog load: 10,000 task files read, validated and put in order.

Limit: under one second. Floor: reading the same files and parsing them with
PyYAML's C loader, nothing else.

sparc keeps the task files it has read, by path and exact bytes, so that a run
reading the same file again does not parse it again. The figure is a first
load: the best of two, each of a backlog never read before. Loading an
unchanged backlog again is recorded beside it.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import yaml

from benchmarks.common import PRIORITIES, Measure, best_of, task_yaml, timed


def write_backlog(folder: Path, count: int) -> None:
    """`count` task files; most depend on one or two earlier tasks."""
    folder.mkdir(parents=True)
    for n in range(count):
        depends = tuple(f"T-{d:05d}" for d in (n - 7, n - 31) if d >= 0)
        text = task_yaml(f"T-{n:05d}", priority=PRIORITIES[n % 4], depends_on=depends)
        (folder / f"T-{n:05d}.yaml").write_text(text, encoding="utf-8")


def _c_loader_pass(folder: Path) -> int:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loaded = 0
    for path in sorted(folder.glob("*.yaml")):
        yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        loaded += 1
    return loaded


def measure(count: int = 10_000) -> Measure:
    from sparc.backlog import Backlog

    with tempfile.TemporaryDirectory(prefix="sparc-bench-backlog-") as folder:
        # two copies, so that each timed load reads files never read before
        copies = [Path(folder) / "backlog-1", Path(folder) / "backlog-2"]
        for backlog_dir in copies:
            write_backlog(backlog_dir, count)
        floor = best_of(2, lambda: _c_loader_pass(copies[0]))
        orders: list[list[str]] = []

        def load(backlog_dir: Path) -> None:
            orders.append(Backlog.load(backlog_dir).topological_order())

        sparc = min(timed(partial(load, backlog_dir)) for backlog_dir in copies)
        again = timed(partial(load, copies[0]))
    if any(len(order) != count for order in orders):
        raise RuntimeError(f"backlog benchmark ordered fewer than {count} tasks")
    return Measure(
        name="backlog load",
        what=f"{count} task files: Backlog.load + topological_order",
        floor_what="read + yaml CSafeLoader of the same files",
        sparc_s=sparc,
        floor_s=floor,
        target=float("inf"),
        absolute_limit_s=1.0,
        extra={"tasks": count, "unchanged_reload_s": round(again, 4)},
    )
