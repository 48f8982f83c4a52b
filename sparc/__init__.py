"""sparc: the SPARC method as a LangGraph state machine over a backlog of tasks.

The public API for embedding sparc in another LangGraph application:

    import sparc

    graph = sparc.build_graph("path/to/workspace")       # a compiled graph
    state = sparc.initial_state("DB-001", "DB-001:run-1")  # its input

`EngineRegistry` and `PersonaRegistry` choose who works; `LLMEngine` wraps any
LangChain chat model; `Runner` runs tasks with checkpoints, approvals and resume.
Third parties add engines through the `sparc.engines` entry point group (a name
per persona, a factory as value) and persona cards through `sparc.personas` (a
folder of cards). Names are imported on first use, so `import sparc` stays light.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparc.errors import SparcError

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    from sparc.engines import EngineRegistry
    from sparc.personas import PersonaRegistry
    from sparc.runtime import BudgetSettings

__all__ = [
    "EngineRegistry",
    "LLMEngine",
    "PersonaRegistry",
    "RunOutcome",
    "Runner",
    "SparcError",
    "__version__",
    "build_graph",
    "initial_state",
    "run_id_for",
]

__version__ = "0.1.0"

_LAZY = {
    "EngineRegistry": "sparc.engines",
    "LLMEngine": "sparc.llm",
    "PersonaRegistry": "sparc.persona",
    "RunOutcome": "sparc.runner",
    "Runner": "sparc.runner",
    "initial_state": "sparc.graph",
    "run_id_for": "sparc.runner",
}


def build_graph(
    workspace: Path | str,
    *,
    engines: EngineRegistry | None = None,
    personas: PersonaRegistry | None = None,
    budget: BudgetSettings | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """Compile the SPARC graph of a workspace, ready to invoke or mount.

    Args:
        workspace: the workspace folder (a git repository with a backlog).
        engines: engines per persona; default: built-in, entry points, config.
        personas: persona cards; default: built-in, entry points, workspace.
        budget: limits on model use; default: the workspace's `budget:`.
        checkpointer: where checkpoints go; leave it out when the graph is
            mounted as a subgraph (it then uses its parent's).

    Returns:
        The compiled graph; its input is `sparc.initial_state(task_id, run_id)`.

    Raises:
        InputError: the workspace's configuration, backlog, cards or workflow
            are invalid.
    """
    from sparc.graph import build_graph as compile_graph
    from sparc.runner import open_runtime

    runtime = open_runtime(workspace, engines=engines, personas=personas, budget=budget)
    return compile_graph(runtime, checkpointer=checkpointer)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sparc' has no attribute {name!r}")
    return getattr(import_module(module), name)
