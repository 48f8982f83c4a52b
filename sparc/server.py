"""The SPARC graph on LangGraph Server, and a client that runs a backlog there.

`langgraph.json` names `make_graph` as the `sparc` graph. The server calls it for
each run with the run's configuration and supplies its own checkpointer, so
nothing here opens the workspace's `.sparc/checkpoints.sqlite`.

The server's graph works on the workspace folder itself, exactly as `sparc run`
does: its nodes write the deliverables, edit the task file and commit. The
server therefore has to see the workspace on its own file system (the same
machine, or a shared volume mounted at the path given as `server_workspace`).
`submit_backlog` is the client side: it picks ready tasks in dependency and
priority order, submits each as a run on its own thread, waits for it, and then
makes the local task file agree with how the run ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from sparc.backlog import Backlog, TaskFile, TaskStatus, load_task, set_status
from sparc.errors import BacklogError, ConfigError, SparcError
from sparc.graph import build_graph, initial_state
from sparc.runner import RUNS_DIR, WAITING, RunOutcome, open_runtime, run_id_for
from sparc.workspace import Workspace, write_text_atomic

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph.state import CompiledStateGraph
    from langgraph_sdk.client import SyncLangGraphClient

log = structlog.get_logger(__name__)

GRAPH_ID = "sparc"
WORKSPACE_ENV = "SPARC_WORKSPACE"

# Deterministic thread ids: a resubmitted task lands on the thread of its
# earlier run and resumes it rather than starting over.
_THREAD_NAMESPACE = uuid.UUID("6f0c1c52-7a43-4d5e-9a4f-3b1f0e2d8c11")


def workspace_for(config: RunnableConfig | Mapping[str, Any] | None) -> Path:
    """The workspace a server run works on: `configurable.workspace`, else the env.

    A server started with `SPARC_WORKSPACE` serves that workspace only: a run
    naming another folder is refused, so no API client can make the server
    write and commit elsewhere on its host.

    Raises:
        ConfigError: no workspace is named, or the run names one other than
            the server's `SPARC_WORKSPACE`.
    """
    configurable = dict((config or {}).get("configurable") or {})
    requested = configurable.get("workspace")
    pinned = os.environ.get(WORKSPACE_ENV)
    if pinned:
        root = Path(pinned).expanduser().resolve()
        if requested and Path(str(requested)).expanduser().resolve() != root:
            raise ConfigError(
                f"this server serves the workspace {root} ({WORKSPACE_ENV}); "
                f"the run asked for {requested}",
                field="configurable.workspace",
            )
        return root
    if not requested:
        raise ConfigError(
            f"no workspace for the server graph: set {WORKSPACE_ENV} in the "
            "server's environment or pass configurable.workspace with the run",
            field="configurable.workspace",
        )
    return Path(str(requested)).expanduser().resolve()


async def make_graph(config: RunnableConfig) -> CompiledStateGraph:
    """The graph factory named in `langgraph.json`.

    Compiled without a checkpointer: LangGraph Server attaches its own (in
    memory under `langgraph dev`, PostgreSQL in a deployment). Opening the
    workspace reads files and runs git, so it happens in a worker thread and
    never blocks the server's event loop.

    Args:
        config: the run's configuration; `configurable.workspace` overrides the
            `SPARC_WORKSPACE` environment variable.
    """
    return await asyncio.to_thread(build_workspace_graph, config)


def build_workspace_graph(config: RunnableConfig | None = None) -> CompiledStateGraph:
    """The SPARC graph, without a checkpointer, of the workspace `config` names."""
    root = workspace_for(config)
    log.debug("server_graph_built", workspace=str(root))
    return build_graph(open_runtime(root))


def submit_backlog(
    url: str,
    workspace: Path | str,
    *,
    server_workspace: str | None = None,
    assistant_id: str = GRAPH_ID,
    on_finish: Callable[[RunOutcome], None] | None = None,
    client: SyncLangGraphClient | None = None,
) -> list[RunOutcome]:
    """Run every ready task of `workspace` on the LangGraph Server at `url`.

    Tasks go one at a time, since all of them commit to the same repository: the
    next ready task (an interrupted IN_PROGRESS one first, then by priority) is
    submitted on its own thread, joined, and recorded in `.sparc/runs/` before
    the backlog is read again, so a dependent task starts only after the task it
    depends on is COMPLETE. A blocked task does not stop the others.

    Args:
        url: the server, e.g. `http://127.0.0.1:2024`.
        workspace: the local workspace folder.
        server_workspace: the same folder as the server sees it; the local
            absolute path by default.
        assistant_id: the graph or assistant to run.
        on_finish: called with each outcome as its run ends.
        client: a ready `langgraph_sdk` client (tests, custom headers).

    Returns:
        One outcome per submitted task, in the order they ran.

    Raises:
        InputError: the workspace or its backlog is invalid.
    """
    from langgraph_sdk import get_sync_client

    local = Workspace.at(workspace)
    Backlog.load(local.backlog_dir)
    target = server_workspace or str(local.root)
    client = client or get_sync_client(url=url)

    outcomes: list[RunOutcome] = []
    attempted: set[str] = set()
    while True:
        backlog = Backlog.load(local.backlog_dir)
        todo = [tf for tf in _runnable(backlog) if tf.task.id not in attempted]
        if not todo:
            return outcomes

        task_file = todo[0]
        attempted.add(task_file.task.id)
        with structlog.contextvars.bound_contextvars(task_id=task_file.task.id):
            outcome = _run_on_server(client, task_file, target, assistant_id)
            _settle_task_file(local, outcome)
        outcomes.append(outcome)
        if on_finish:
            on_finish(outcome)


def _runnable(backlog: Backlog) -> list[TaskFile]:
    interrupted = [
        tf
        for tf in backlog.tasks
        if tf.task.status == TaskStatus.IN_PROGRESS
        and not backlog.blocked_by(tf.task.id)
    ]
    return interrupted + backlog.ready()


def _run_on_server(
    client: SyncLangGraphClient,
    task_file: TaskFile,
    server_workspace: str,
    assistant_id: str,
) -> RunOutcome:
    task_id = task_file.task.id
    run_id = run_id_for(task_file)
    thread_id = str(uuid.uuid5(_THREAD_NAMESPACE, run_id))
    client.threads.create(
        thread_id=thread_id,
        if_exists="do_nothing",
        metadata={"task_id": task_id, "sparc_run_id": run_id},
    )

    # Thread records, not graph state: reading graph state makes the server
    # build the graph from the thread's own configuration, which names no
    # workspace. A paused thread waits for a person; one that stopped before
    # an end resumes from its last checkpoint.
    before = client.threads.get(thread_id)
    if _interrupts(before):
        return _outcome(task_id, run_id, before, ended="interrupted")
    values = before.get("values") or {}
    pending = bool(values) and values.get("status") not in ("COMPLETE", "BLOCKED")
    run = client.runs.create(
        thread_id,
        assistant_id,
        input=None if pending else dict(initial_state(task_id, run_id)),
        config={"configurable": {"workspace": server_workspace}},
        metadata={"task_id": task_id, "sparc_run_id": run_id},
        multitask_strategy="reject",
    )
    log.info(
        "server_run_submitted",
        thread_id=thread_id,
        server_run_id=run["run_id"],
        resumed=pending,
    )

    joined = client.runs.join(thread_id, run["run_id"]) or {}
    ended = client.runs.get(thread_id, run["run_id"])["status"]
    outcome = _outcome(
        task_id,
        run_id,
        client.threads.get(thread_id),
        ended=ended,
        error=joined.get("__error__"),
        server_run_id=run["run_id"],
    )
    log.info("server_run_finished", server_run_id=run["run_id"], status=outcome.status)
    return outcome


def _outcome(
    task_id: str,
    run_id: str,
    thread: Mapping[str, Any],
    *,
    ended: str,
    error: Any = None,
    server_run_id: str = "",
) -> RunOutcome:
    """Read a server thread into the outcome `sparc run` would give."""
    values = thread.get("values") or {}
    if not isinstance(values, dict):
        values = {}
    status = values.get("status", "")
    reason = values.get("reason", "")
    waiting_at = ""

    interrupts = _interrupts(thread)
    if interrupts:
        question = interrupts[0].get("value") or {}
        waiting_at = question.get("phase", "") if isinstance(question, dict) else ""
        status = WAITING
        reason = f"waiting for approval at {waiting_at} on the server"
    elif ended != "success" or status not in ("COMPLETE", "BLOCKED"):
        detail = error.get("message") if isinstance(error, dict) else error
        status = TaskStatus.BLOCKED.value
        reason = f"server run {server_run_id} ended {ended}" + (
            f": {detail}" if detail else ""
        )

    return RunOutcome.from_values(
        task_id,
        run_id,
        values,
        status=status,
        reason=reason,
        waiting_at=waiting_at,
    )


def _interrupts(thread: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_task = thread.get("interrupts") or {}
    return [i for found in by_task.values() for i in found]


def _settle_task_file(workspace: Workspace, outcome: RunOutcome) -> None:
    """Make the local task file and run record say how the server run ended."""
    path = workspace.backlog_dir / f"{outcome.task_id}.yaml"
    try:
        current = load_task(path).task
    except SparcError as exc:
        raise BacklogError(
            f"{outcome.task_id}: the task file became unreadable during its server "
            f"run: {exc}",
            paths=[workspace.relative(path)],
            task_ids=[outcome.task_id],
        ) from exc

    # A server on this machine has already edited the file; one working on
    # another copy of the workspace has not. A paused run leaves it as it is.
    if not outcome.waiting and current.status.value != outcome.status:
        reason = outcome.reason if outcome.status == TaskStatus.BLOCKED.value else None
        set_status(path, TaskStatus(outcome.status), reason=reason)
        log.info("task_status_synced", status=outcome.status)

    record = workspace.state_dir / RUNS_DIR / f"{outcome.task_id}.json"
    write_text_atomic(record, json.dumps(outcome.as_dict(), indent=2) + "\n")
