"""Embed sparc in another LangGraph application.

The SPARC graph of a workspace is mounted as one node ("sparc") of a parent
graph that picks the next ready task, hands it to sparc, and announces the
result, until no task is ready. The parent's checkpointer serves the subgraph.

    python examples/embedding/embed.py [FOLDER]

FOLDER (default: a temporary folder) receives a copy of the shop example,
initialised as a sparc workspace. Exits 0 when every task ended COMPLETE.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

import sparc
from sparc.backlog import Backlog
from sparc.init import init_workspace

SHOP = Path(__file__).resolve().parent.parent / "shop"


class AppState(TypedDict, total=False):
    # the keys the SPARC graph shares with its parent: its input and its result
    task_id: str
    run_id: str
    status: str
    reason: str
    commit: str
    # the parent's own
    announcements: Annotated[list[str], lambda left, right: left + right]


def build_app(workspace: Path):  # noqa: ANN201 - a compiled LangGraph graph
    """A parent graph with the SPARC graph of `workspace` as its `sparc` node."""

    def pick(state: AppState) -> AppState:
        ready = Backlog.load(workspace / "docs/backlog").ready()
        if not ready:
            return {"task_id": ""}
        task_file = ready[0]
        # status, reason and commit are reset: they are the subgraph's result
        return {
            "task_id": task_file.task.id,
            "run_id": sparc.run_id_for(task_file),
            "status": "",
            "reason": "",
            "commit": "",
        }

    def announce(state: AppState) -> AppState:
        line = f"{state['task_id']}: {state['status']} {state.get('commit', '')[:10]}"
        if state.get("reason"):
            line += f" ({state['reason']})"
        return {"announcements": [line.strip()]}

    def next_step(state: AppState) -> str:
        return "sparc" if state.get("task_id") else END

    def again(state: AppState) -> str:
        return "pick" if state["status"] == "COMPLETE" else END

    app = StateGraph(AppState)
    app.add_node("pick", pick)
    app.add_node("sparc", sparc.build_graph(workspace))
    app.add_node("announce", announce)
    app.add_edge(START, "pick")
    app.add_conditional_edges("pick", next_step, ["sparc", END])
    app.add_edge("sparc", "announce")
    app.add_conditional_edges("announce", again, ["pick", END])
    return app.compile(checkpointer=InMemorySaver())


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path(tempfile.mkdtemp()) / "shop"
    shutil.copytree(SHOP, target)
    init_workspace(target)

    app = build_app(target)
    final = app.invoke(
        {"announcements": []}, {"configurable": {"thread_id": "embedding-demo"}}
    )
    for line in final["announcements"]:
        print(line)
    complete = all(" COMPLETE " in f"{line} " for line in final["announcements"])
    return 0 if complete and final["announcements"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
