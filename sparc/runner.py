"""Running tasks: one task through the graph, or the whole ready backlog."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from langgraph.checkpoint.sqlite import SqliteSaver

from sparc import gitops
from sparc.backlog import Backlog, TaskFile, TaskStatus
from sparc.config import load_config
from sparc.engines import EngineRegistry
from sparc.errors import BacklogError
from sparc.graph import build_graph, initial_state
from sparc.personas import PersonaRegistry
from sparc.runtime import Runtime
from sparc.workflow import builtin_workflow, load_workflow
from sparc.workspace import Workspace, write_text_atomic

log = structlog.get_logger(__name__)

CHECKPOINTS_FILE = "checkpoints.sqlite"
RUNS_DIR = "runs"


@dataclass(frozen=True)
class RunOutcome:
    """How one task run ended, with its own record of who did what."""

    task_id: str
    run_id: str
    status: str
    reason: str = ""
    commit: str = ""
    record: list[dict[str, str]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.status == TaskStatus.COMPLETE.value

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "run_id": self.run_id,
            "status": self.status,
            "reason": self.reason,
            "commit": self.commit,
            "record": self.record,
            "written": self.written,
            "report": self.report,
        }


class Runner:
    """Runs a workspace's tasks through the SPARC graph with SQLite checkpoints."""

    def __init__(self, runtime: Runtime, *, checkpoints: Path | None = None) -> None:
        self.runtime = runtime
        path = checkpoints or runtime.workspace.state_dir / CHECKPOINTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(str(path), check_same_thread=False)
        self.graph = build_graph(runtime, checkpointer=SqliteSaver(self._connection))

    @classmethod
    def open(
        cls,
        root: Path | str,
        *,
        engines: EngineRegistry | None = None,
        personas: PersonaRegistry | None = None,
    ) -> Runner:
        """Open a workspace, validating every input before any work is done.

        Raises:
            InputError: the configuration, a task file, the backlog graph, a
                persona card or the workflow is invalid.
            GitError: the workspace is not a usable git repository.
        """
        workspace = Workspace.at(root)
        config = load_config(workspace.root)
        Backlog.load(workspace.backlog_dir)
        personas = personas or personas_for(workspace)
        workflow = _workflow_for(workspace, config.workflow)
        repo = gitops.open_repository(workspace.root)
        configured = config.git.identity
        identity = gitops.resolve_identity(
            repo,
            gitops.Identity(configured.name, configured.email) if configured else None,
        )
        runtime = Runtime(
            workspace=workspace,
            config=config,
            personas=personas,
            engines=engines or EngineRegistry.default(),
            workflow=workflow,
            repo=repo,
            identity=identity,
        )
        return cls(runtime)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backlog(self) -> Backlog:
        return Backlog.load(self.runtime.workspace.backlog_dir)

    def run(self, task_id: str) -> RunOutcome:
        """Run one task to COMPLETE or BLOCKED, resuming an interrupted run.

        Raises:
            BacklogError: the task does not exist, is already complete, or waits
                for dependencies that are not complete.
        """
        backlog = self.backlog()
        task_file = backlog.get(task_id)
        waiting = backlog.blocked_by(task_id)
        if waiting:
            raise BacklogError(
                f"{task_id} waits for {', '.join(waiting)} to be COMPLETE",
                paths=[self.runtime.workspace.relative(task_file.path)],
                task_ids=[task_id],
            )
        if task_file.task.status == TaskStatus.COMPLETE:
            raise BacklogError(
                f"{task_id} is already COMPLETE; set its status to READY to run it "
                "again",
                paths=[self.runtime.workspace.relative(task_file.path)],
                task_ids=[task_id],
            )

        run_id = run_id_for(task_file)
        config = {"configurable": {"thread_id": run_id}}
        snapshot = self.graph.get_state(config)
        with structlog.contextvars.bound_contextvars(task_id=task_id):
            if snapshot.next:
                log.info("run_resumed", run_id=run_id, next=list(snapshot.next))
                final = self.graph.invoke(None, config)
            else:
                final = self.graph.invoke(initial_state(task_id, run_id), config)

        outcome = RunOutcome(
            task_id=task_id,
            run_id=run_id,
            status=final.get("status", ""),
            reason=final.get("reason", ""),
            commit=final.get("commit", ""),
            record=list(final.get("record", [])),
            written=list(final.get("written", [])),
            report=list(final.get("report", [])),
        )
        self._save_record(outcome)
        return outcome

    def batch(
        self, *, on_finish: Callable[[RunOutcome], None] | None = None
    ) -> list[RunOutcome]:
        """Run every ready task until none is left, in dependency and priority order.

        A task left IN_PROGRESS by an interrupted run is resumed first. A blocked
        task does not stop the batch; its dependents simply never become ready.
        """
        outcomes: list[RunOutcome] = []
        attempted: set[str] = set()
        while True:
            backlog = self.backlog()
            candidates = [
                tf
                for tf in backlog.tasks
                if tf.task.status == TaskStatus.IN_PROGRESS
                and not backlog.blocked_by(tf.task.id)
            ] + backlog.ready()
            todo = [tf for tf in candidates if tf.task.id not in attempted]
            if not todo:
                return outcomes

            task_id = todo[0].task.id
            attempted.add(task_id)
            outcome = self.run(task_id)
            outcomes.append(outcome)
            if on_finish:
                on_finish(outcome)

    def _save_record(self, outcome: RunOutcome) -> None:
        path = self.runtime.workspace.state_dir / RUNS_DIR / f"{outcome.task_id}.json"
        write_text_atomic(path, json.dumps(outcome.as_dict(), indent=2) + "\n")


def run_id_for(task_file: TaskFile) -> str:
    """A run id stable across restarts: the task id and its content, not its status."""
    content = task_file.task.model_dump(
        mode="json", exclude={"status", "blocked_reason"}
    )
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f"{task_file.task.id}:{digest[:12]}"


def personas_for(workspace: Workspace) -> PersonaRegistry:
    own = workspace.state_dir / "personas"
    if own.is_dir():
        return PersonaRegistry.from_dirs(own, builtin=True)
    return PersonaRegistry.builtin()


def _workflow_for(workspace: Workspace, name: str) -> Any:
    own = workspace.state_dir / "workflows" / f"{name}.yaml"
    if own.is_file():
        return load_workflow(own)
    return builtin_workflow(name)
