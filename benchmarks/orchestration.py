"""Orchestration: tasks through six phases with engines that do nothing.

Floor: a bare six-node LangGraph graph, one node per phase, with the same
SQLite checkpointer and connection settings, invoked once per task on its own
thread id. sparc's run does more by design (reviews, gates, the task file's
status, a commit); the ratio says what that costs.
"""

from __future__ import annotations

import gc
import operator
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from benchmarks.common import (
    IdleEngine,
    Measure,
    git_identity,
    make_workspace,
    task_yaml,
    timed,
)

PHASES = (
    "specification",
    "pseudocode",
    "architecture",
    "planning",
    "refinement",
    "completion",
)


class _BareState(TypedDict, total=False):
    task_id: str
    record: Annotated[list[str], operator.add]


def bare_graph(checkpoints: Path) -> tuple[Any, sqlite3.Connection]:
    """Six nodes in a row, each appending its name: LangGraph's own cost."""
    builder = StateGraph(_BareState)
    previous = START
    for phase in PHASES:
        builder.add_node(phase, _phase_node(phase))
        builder.add_edge(previous, phase)
        previous = phase
    builder.add_edge(previous, END)
    connection = sqlite3.connect(str(checkpoints), check_same_thread=False)
    # set up as sparc sets up its own, or the floor would pay for syncs to disk
    # that sparc's checkpoints do not make
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return builder.compile(checkpointer=SqliteSaver(connection)), connection


def _phase_node(phase: str) -> Any:
    def node(state: _BareState) -> dict[str, Any]:
        return {"record": [phase]}

    return node


def run_bare(count: int, checkpoints: Path) -> float:
    graph, connection = bare_graph(checkpoints)
    try:
        return timed(
            lambda: [
                graph.invoke(
                    {"task_id": f"T-{n:05d}", "record": []},
                    {"configurable": {"thread_id": f"T-{n:05d}"}},
                )
                for n in range(count)
            ]
        )
    finally:
        connection.close()


def run_sparc(
    count: int, scratch: Path, *, budget_s: float = float("inf")
) -> tuple[float, int]:
    """Run up to `count` tasks, stopping once `budget_s` is spent.

    Returns:
        The seconds spent and the number of tasks run.
    """
    from sparc.engines import EngineRegistry
    from sparc.runner import Runner

    tasks = {f"T-{n:05d}": task_yaml(f"T-{n:05d}", phases=PHASES) for n in range(count)}
    root = make_workspace(scratch / "ws", tasks)
    engines = EngineRegistry(fallback=IdleEngine)
    ran: list[str] = []
    with Runner.open(root, engines=engines) as runner:
        gc.collect()
        start = time.perf_counter()
        for task_id in tasks:
            outcome = runner.run(task_id)
            if not outcome.complete:
                raise RuntimeError(f"{task_id} did not complete: {outcome.reason}")
            ran.append(task_id)
            if time.perf_counter() - start > budget_s:
                break
        seconds = time.perf_counter() - start
    return seconds, len(ran)


def measure(count: int = 300, *, budget_s: float = float("inf")) -> Measure:
    """Run `count` tasks (fewer if `budget_s` runs out) against the bare graph."""
    with tempfile.TemporaryDirectory(prefix="sparc-bench-") as folder, git_identity():
        scratch = Path(folder)
        sparc, ran = run_sparc(count, scratch, budget_s=budget_s)
        floor = run_bare(ran, scratch / "bare.sqlite")
    scaled = f" (stopped after {ran} of {count}: time budget)" if ran < count else ""
    return Measure(
        name="orchestration",
        what=f"{ran} tasks through six phases, idle engines, Runner.run each"
        + scaled
        + f"; backlog of {count} task files",
        floor_what="bare six-node LangGraph graph, same SQLite checkpointer (WAL)",
        sparc_s=sparc,
        floor_s=floor,
        target=1.5,
        extra={
            "tasks": ran,
            "requested_tasks": count,
            "sparc_ms_per_task": round(sparc / ran * 1000, 2),
            "floor_ms_per_task": round(floor / ran * 1000, 2),
        },
    )
