"""Running tasks: one task through the graph, the whole ready backlog, approvals.

Every task run is one LangGraph thread whose id is stable across restarts (the
task id and a digest of its content), checkpointed in SQLite under `.sparc/` or
in PostgreSQL when a URL is configured. Rerunning a task, or `resume`, picks
the thread up where it stopped. A run paused at an approval gate leaves a
record under `.sparc/waiting/`; `approve` and `reject` resume it from any
process. A lock file with the running process's pid under `.sparc/locks/`
keeps two processes off one task and lets a live process take over the task
of a dead one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import yaml
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command, Interrupt
from pydantic import BaseModel, ConfigDict, ValidationError

from sparc import gitops
from sparc.backlog import Backlog, TaskFile, TaskStatus, top_level_key_line
from sparc.config import CONFIG_FILE, load_config
from sparc.engines import EngineRegistry, WorkContext
from sparc.errors import (
    BacklogError,
    ConfigError,
    InputError,
    PersonaCardError,
    WorkflowError,
    WorkspaceError,
)
from sparc.graph import (
    LIMITS,
    RESUMED_KEY,
    build_graph,
    initial_state,
    usage_totals,
)
from sparc.personas import PersonaRegistry
from sparc.redact import redact_data
from sparc.runtime import BudgetSettings, Runtime
from sparc.state import RunState
from sparc.workflow import Workflow, builtin_workflow, load_workflow
from sparc.workspace import Workspace, write_text_atomic

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

log = structlog.get_logger(__name__)

CHECKPOINTS_FILE = "checkpoints.sqlite"
CHECKPOINT_URL_ENV = "SPARC_CHECKPOINT_URL"
RUNS_DIR = "runs"
WAITING_DIR = "waiting"
LOCKS_DIR = "locks"
PERSONA_ENTRY_POINT_GROUP = "sparc.personas"
WAITING = "WAITING"
# where `invoke` puts the interrupts a paused run waits on
_INTERRUPTS = "__interrupt__"


class CheckpointSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None


class RunSettings(BaseModel):
    """The run sections of `.sparc/config.yaml`: engines, budget, checkpoints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engines: dict[str, str] = {}
    budget: BudgetSettings = BudgetSettings()
    checkpoints: CheckpointSettings = CheckpointSettings()


def load_run_settings(root: Path) -> RunSettings:
    """Read `engines`, `budget` and `checkpoints` from `.sparc/config.yaml`.

    Raises:
        ConfigError: a field of these sections is invalid.
    """
    path = root / CONFIG_FILE
    if not path.is_file():
        return RunSettings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        # load_config reports a broken file with its line; nothing to add here
        return RunSettings()
    if not isinstance(data, dict):
        return RunSettings()
    sections = {k: data[k] for k in ("engines", "budget", "checkpoints") if k in data}
    try:
        return RunSettings.model_validate(sections)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ConfigError(
            f"{where}: {error['msg']}", path=CONFIG_FILE, field=where
        ) from None


@dataclass(frozen=True)
class RunOutcome:
    """How one task run ended (or paused), with its own record of who did what."""

    task_id: str
    run_id: str
    status: str
    reason: str = ""
    commit: str = ""
    record: list[dict[str, str]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    # findings of the last review round (warnings an approval let through)
    findings: list[dict[str, str]] = field(default_factory=list)
    # the phase whose gate waits for a person, when status is WAITING
    waiting_at: str = ""

    @classmethod
    def from_values(
        cls,
        task_id: str,
        run_id: str,
        values: dict[str, Any],
        *,
        status: str,
        reason: str,
        waiting_at: str = "",
    ) -> RunOutcome:
        """The outcome a run's final graph state describes."""
        return cls(
            task_id=task_id,
            run_id=run_id,
            status=status,
            reason=reason,
            commit=values.get("commit", ""),
            record=list(values.get("record", [])),
            written=list(values.get("written", [])),
            report=list(values.get("report", [])),
            usage=list(values.get("usage", [])),
            findings=[f for r in values.get("reviews", []) for f in r["findings"]],
            waiting_at=waiting_at,
        )

    @property
    def complete(self) -> bool:
        return self.status == TaskStatus.COMPLETE.value

    @property
    def waiting(self) -> bool:
        return self.status == WAITING

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "run_id": self.run_id,
            "status": self.status,
            "reason": self.reason,
            "waiting_at": self.waiting_at,
            "commit": self.commit,
            "record": self.record,
            "written": self.written,
            "report": self.report,
            "findings": self.findings,
            "usage": usage_summary(self.usage),
        }


def usage_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Tokens, cost and steps in total, per phase and per persona."""
    by: dict[str, dict[str, dict[str, float]]] = {"phase": {}, "persona": {}}
    for key in by:
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            groups.setdefault(entry[key], []).append(entry)
        by[key] = {name: usage_totals(group) for name, group in groups.items()}
    return {
        "total": usage_totals(entries),
        "per_phase": by["phase"],
        "per_persona": by["persona"],
    }


WORKSPACE_LOCK = "workspace.lock"
WORKSPACE_LOCK_TIMEOUT = 60.0


class WorkspaceRunLock:
    """One process at a time runs tasks in a workspace; its threads share it.

    Two processes would each see the other's uncommitted output as a user's
    edit; the second one waits for the first (bounded), then says who holds it.
    """

    _held: dict[Path, tuple[int, int]] = {}
    _guard = threading.Lock()

    @classmethod
    @contextlib.contextmanager
    def held(
        cls, path: Path, *, timeout: float = WORKSPACE_LOCK_TIMEOUT
    ) -> Iterator[None]:
        cls._acquire(path, timeout)
        try:
            yield
        finally:
            cls._release(path)

    @classmethod
    def _acquire(cls, path: Path, timeout: float) -> None:
        import fcntl
        import time

        with cls._guard:
            if path in cls._held:
                fd, count = cls._held[path]
                cls._held[path] = (fd, count + 1)
                return

            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                        os.close(fd)
                        raise WorkspaceError(
                            "another sparc process"
                            + (f" (pid {holder})" if holder else "")
                            + f" has been running tasks in this workspace for over "
                            f"{timeout:.0f} s; wait for it to finish, then run again"
                        ) from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            cls._held[path] = (fd, 1)

    @classmethod
    def _release(cls, path: Path) -> None:
        import fcntl

        with cls._guard:
            fd, count = cls._held[path]
            if count > 1:
                cls._held[path] = (fd, count - 1)
                return
            del cls._held[path]
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class Runner:
    """Runs a workspace's tasks through the SPARC graph with checkpoints.

    One compiled graph serves every thread; `run` may be called from several
    threads for different tasks at once.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        checkpoints: Path | None = None,
        checkpoint_url: str | None = None,
    ) -> None:
        self.runtime = runtime
        self._closers: list[Callable[[], None]] = []
        self.checkpointer = self._open_checkpointer(checkpoints, checkpoint_url)
        self.graph = build_graph(runtime, checkpointer=self.checkpointer)
        self._batch_used: dict[str, float] = dict.fromkeys(LIMITS, 0)
        self._batch_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        root: Path | str,
        *,
        engines: EngineRegistry | None = None,
        personas: PersonaRegistry | None = None,
        budget: BudgetSettings | None = None,
        checkpoint_url: str | None = None,
    ) -> Runner:
        """Open a workspace, validating every input before any work is done.

        Args:
            root: the workspace folder.
            engines: engines to use; default: built-in engines, entry points,
                then the models configured under `engines:`.
            personas: persona cards; default: built-in, entry points, then
                `.sparc/personas/`.
            budget: limits on model use; default: the `budget:` section.
            checkpoint_url: a PostgreSQL URL for checkpoints; default: the
                `checkpoints.url` setting, else `SPARC_CHECKPOINT_URL`, else
                SQLite under `.sparc/`.

        Raises:
            InputError: the configuration, a task file, the backlog graph, a
                persona card or the workflow is invalid.
            GitError: the workspace is not a usable git repository.
        """
        runtime = open_runtime(root, engines=engines, personas=personas, budget=budget)
        settings = load_run_settings(runtime.workspace.root)
        url = (
            checkpoint_url
            or settings.checkpoints.url
            or os.environ.get(CHECKPOINT_URL_ENV)
        )
        return cls(runtime, checkpoint_url=url)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backlog(self) -> Backlog:
        return Backlog.load(self.runtime.workspace.backlog_dir)

    def run(self, task_id: str) -> RunOutcome:
        """Run one task to COMPLETE, BLOCKED or a pause, resuming where it stopped.

        A task waiting for approval is not run again: its outcome says WAITING.

        Raises:
            BacklogError: the task does not exist, is already complete, waits
                for dependencies that are not complete, or another live
                process is running it.
        """
        # its own file and its dependencies' statuses are all a run needs to
        # read; the backlog as a whole was checked when the runner opened
        task_file = self.runtime.task(task_id)
        run_id = run_id_for(task_file)
        config = self._config(run_id)
        unfinished = bool(self.graph.get_state(config).next)
        if not unfinished:
            self._check_runnable(task_file)
            self._check_references(task_file)
            self._check_engine_inputs(task_file)

        with (
            self._locked(task_id),
            structlog.contextvars.bound_contextvars(task_id=task_id),
            self._undone_on_crash(task_file, config),
        ):
            snapshot = self.graph.get_state(config)
            if snapshot.interrupts:
                return self._finish(
                    task_id, run_id, snapshot.values, snapshot.interrupts
                )
            resumed = bool(snapshot.next)
            if resumed:
                log.info("run_resumed", run_id=run_id, next=list(snapshot.next))
            given = None if resumed else initial_state(task_id, run_id)
            return self._invoke(task_file, run_id, given, resumed=resumed)

    @contextlib.contextmanager
    def _undone_on_crash(
        self, task_file: TaskFile, config: dict[str, Any]
    ) -> Iterator[None]:
        """An unexpected exception leaves the workspace as it was before the run.

        sparc's own errors end the task BLOCKED inside the graph; anything else
        (a bug, a full disk) puts back the files the run wrote and the task
        file, and forgets the run's checkpoints, then propagates.
        """
        task_bytes = task_file.path.read_bytes()
        try:
            yield
        except Exception:
            values = self.graph.get_state(config).values
            written = list(values.get("written", []))
            # a write node that failed part-way: the files it already wrote hold
            # exactly the pending text (a user's own edit never does)
            root = self.runtime.workspace.root
            for rel, text in values.get("pending", {}).items():
                path = root / rel
                ours = path.is_file() and (
                    path.read_text(encoding="utf-8", errors="replace") == text
                )
                if rel not in written and ours:
                    written.append(rel)
            with self.runtime.git_lock:
                self.runtime.put_back(written)
            staged = task_file.path.with_name(f".{task_file.path.name}.restore")
            staged.write_bytes(task_bytes)
            staged.replace(task_file.path)
            self.checkpointer.delete_thread(config["configurable"]["thread_id"])
            log.exception("run_undone", task_id=task_file.task.id)
            raise

    def _check_references(self, task_file: TaskFile) -> None:
        """Every reference resolves inside the workspace and exists: before any work.

        Raises:
            InputError: a reference leaves the workspace or names no file; the
                message names the task file, the field and the value.
        """
        workspace = self.runtime.workspace
        where = workspace.relative(task_file.path)
        for position, ref in enumerate(task_file.task.references):
            field = f"references[{position}]"
            try:
                path = workspace.resolve(ref, field=field)
            except InputError as exc:
                raise InputError(exc.message, path=where, field=field) from None
            if not path.is_file():
                raise InputError(
                    f"{field}: {ref} does not exist; create it or correct the path",
                    path=where,
                    field=field,
                )

    def check_inputs(self, task_file: TaskFile) -> None:
        """Check a task's phases, owner and engine input documents, as `run` does.

        Raises:
            InputError: the task names a phase or specialist the workspace
                lacks, or a document an engine reads cannot be used; the
                message names the file and line.
        """
        self._check_engine_inputs(task_file)

    def _check_engine_inputs(self, task_file: TaskFile) -> None:
        """Each phase owner whose engine has `check_inputs(context)` checks first.

        An engine that reads workspace documents of its own (Hephaestus: the
        stack decision) says what is wrong with them before any work, as an
        InputError naming the file and line, instead of blocking the task.
        """
        runtime = self.runtime
        task = task_file.task
        try:
            phases = [p.name for p in runtime.workflow.select(task.phases)]
        except WorkflowError as exc:
            # a phase the workflow lacks is a mistake in the task file: said
            # before any work, the file left as it is
            raise BacklogError(
                exc.reason,
                paths=[task_file.path],
                field="phases",
                line=top_level_key_line(task_file.path, "phases"),
            ) from None
        try:
            owners = {p: runtime.personas.primary(p, task.specialist) for p in phases}
        except PersonaCardError as exc:
            if exc.field != "specialist":
                raise
            # the cards cannot pick an owner from the task's specialist
            raise BacklogError(
                exc.reason,
                paths=[task_file.path],
                field="specialist",
                line=top_level_key_line(task_file.path, "specialist"),
            ) from None
        checked: set[str] = set()
        for phase, persona in owners.items():
            check = getattr(runtime.engines.get(persona.key), "check_inputs", None)
            if not callable(check) or persona.key in checked:
                continue
            checked.add(persona.key)
            check(
                WorkContext(
                    workspace=runtime.workspace,
                    config=runtime.config,
                    task=task_file,
                    phase=phase,
                    persona=persona,
                )
            )

    def resume(self, task_id: str) -> RunOutcome:
        """Finish a task whose run was interrupted (a crash, a kill, a pause).

        Raises:
            BacklogError: the task has no interrupted run to finish.
        """
        task_file = self.runtime.task(task_id)
        snapshot = self.graph.get_state(self._config(run_id_for(task_file)))
        if not snapshot.next and task_file.task.status != TaskStatus.IN_PROGRESS:
            raise BacklogError(
                f"{task_id} has no interrupted run to resume (status "
                f"{task_file.task.status}); start it with `sparc run {task_id}`",
                paths=[task_file.path],
                task_ids=[task_id],
            )
        return self.run(task_id)

    def approve(self, task_id: str) -> RunOutcome:
        """Give the approval a paused run waits for, and let it go on.

        Raises:
            BacklogError: the task is not waiting for approval.
        """
        return self._answer(task_id, {"approved": True, "reason": ""})

    def reject(self, task_id: str, reason: str) -> RunOutcome:
        """Refuse a paused run's approval: the task ends BLOCKED with `reason`.

        Raises:
            BacklogError: the task is not waiting for approval.
        """
        return self._answer(task_id, {"approved": False, "reason": reason})

    def waiting(self) -> dict[str, dict[str, Any]]:
        """Tasks paused at a gate: task id -> the waiting record."""
        folder = self.runtime.workspace.state_dir / WAITING_DIR
        return read_waiting(folder)

    def unfinished(self, backlog: Backlog | None = None) -> list[str]:
        """Ids of tasks whose last run stopped before COMPLETE or BLOCKED.

        Args:
            backlog: the backlog to look through, when the caller has just
                loaded it; default: load it.
        """
        found = []
        for task_file in (backlog if backlog is not None else self.backlog()).tasks:
            config = self._config(run_id_for(task_file))
            snapshot = self.graph.get_state(config)
            if snapshot.next and not snapshot.interrupts:
                found.append(task_file.task.id)
        return found

    def batch(
        self, *, on_finish: Callable[[RunOutcome], None] | None = None
    ) -> list[RunOutcome]:
        """Run every ready task until none is left, in dependency and priority order.

        Runs interrupted by a crash are finished first, then tasks left
        IN_PROGRESS, then the ready set. A blocked or waiting task does not
        stop the batch; its dependents simply never become ready. Batch budget
        limits count every run of this call.
        """
        outcomes: list[RunOutcome] = []
        attempted: set[str] = set()
        self._batch_used = dict.fromkeys(LIMITS, 0)
        while True:
            backlog = self.backlog()
            waiting = self.waiting()
            resumable = [backlog.get(task_id) for task_id in self.unfinished(backlog)]
            left_running = [
                tf
                for tf in backlog.tasks
                if tf.task.status == TaskStatus.IN_PROGRESS
                and not backlog.blocked_by(tf.task.id)
            ]
            todo = [
                tf
                for tf in [*resumable, *left_running, *backlog.ready()]
                if tf.task.id not in attempted and tf.task.id not in waiting
            ]
            if not todo:
                return outcomes

            task_id = todo[0].task.id
            attempted.add(task_id)
            outcome = self.run(task_id)
            outcomes.append(outcome)
            if on_finish:
                on_finish(outcome)

    # internals

    def _config(self, run_id: str) -> dict[str, Any]:
        with self._batch_lock:
            used = dict(self._batch_used)
        return {"configurable": {"thread_id": run_id, "sparc_batch_used": used}}

    def _invoke(
        self,
        task_file: TaskFile,
        run_id: str,
        given: RunState | Command | None,
        *,
        resumed: bool,
    ) -> RunOutcome:
        """Run the thread of `run_id` from `given` until it ends or pauses."""
        config = self._config(run_id)
        config["configurable"][RESUMED_KEY] = resumed
        task_id = task_file.task.id
        self.runtime.start_run(run_id, task_file)
        try:
            values = self.graph.invoke(given, config, durability="sync")
        finally:
            self.runtime.end_run(run_id)
        return self._finish(task_id, run_id, values, values.pop(_INTERRUPTS, ()))

    def _check_runnable(self, task_file: TaskFile) -> None:
        task_id = task_file.task.id
        where = [self.runtime.workspace.relative(task_file.path)]
        waiting = self._waiting_for(task_file)
        if waiting:
            raise BacklogError(
                f"{task_id} waits for {', '.join(waiting)} to be COMPLETE",
                paths=where,
                task_ids=[task_id],
            )
        if task_file.task.status == TaskStatus.COMPLETE:
            raise BacklogError(
                f"{task_id} is already COMPLETE; set its status to READY to run it "
                "again",
                paths=where,
                task_ids=[task_id],
            )

    def _waiting_for(self, task_file: TaskFile) -> list[str]:
        """The task's dependencies that are not COMPLETE, read from their files.

        Raises:
            BacklogError: a dependency has no task file.
        """
        waiting = []
        for dependency in task_file.task.depends_on:
            try:
                status = self.runtime.task(dependency).task.status
            except BacklogError as exc:
                if dependency not in exc.task_ids:
                    raise
                raise BacklogError(
                    f"depends_on: unknown task {dependency!r}; add "
                    f"{dependency}.yaml to the backlog or remove it from depends_on",
                    paths=[self.runtime.workspace.relative(task_file.path)],
                    task_ids=[task_file.task.id, dependency],
                    field="depends_on",
                ) from None
            if status is not TaskStatus.COMPLETE:
                waiting.append(dependency)
        return waiting

    def _answer(self, task_id: str, answer: dict[str, Any]) -> RunOutcome:
        task_file = self.runtime.task(task_id)
        run_id = run_id_for(task_file)
        config = self._config(run_id)
        snapshot = self.graph.get_state(config)
        if not snapshot.interrupts:
            raise BacklogError(
                f"{task_id} is not waiting for approval",
                paths=[self.runtime.workspace.relative(task_file.path)],
                task_ids=[task_id],
            )
        with (
            self._locked(task_id),
            structlog.contextvars.bound_contextvars(task_id=task_id),
        ):
            log.info("run_answered", approved=answer["approved"])
            return self._invoke(task_file, run_id, Command(resume=answer), resumed=True)

    def _finish(
        self,
        task_id: str,
        run_id: str,
        values: dict[str, Any],
        interrupts: Sequence[Interrupt],
    ) -> RunOutcome:
        """Turn the thread's state into an outcome; keep the waiting record true."""
        waiting_at = ""
        status = values.get("status", "")
        if interrupts:
            question = interrupts[0].value
            waiting_at = question.get("phase", "")
            status = WAITING
            reason = (
                f"waiting for approval at {waiting_at}"
                if question.get("kind") == "approval"
                else f"waiting for approval at {waiting_at}: {question.get('limit')}"
            )
            self._write_waiting(task_id, run_id, question, reason)
        else:
            reason = values.get("reason", "")
            self._clear_waiting(task_id)

        outcome = RunOutcome.from_values(
            task_id,
            run_id,
            values,
            status=status,
            reason=reason,
            waiting_at=waiting_at,
        )
        if not outcome.waiting:
            with self._batch_lock:
                for name, value in usage_totals(outcome.usage).items():
                    self._batch_used[name] += value
        self._save_record(outcome)
        return outcome

    def _write_waiting(
        self, task_id: str, run_id: str, question: dict[str, Any], reason: str
    ) -> None:
        path = self._waiting_path(task_id)
        existing = read_waiting(path.parent).get(task_id, {})
        record = {
            "task_id": task_id,
            "run_id": run_id,
            "kind": question.get("kind", "approval"),
            "phase": question.get("phase", ""),
            "limit": question.get("limit", ""),
            "message": reason,
            "since": existing.get("since")
            or datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_text_atomic(path, json.dumps(redact_data(record), indent=2) + "\n")
        log.info("run_waiting", task_id=task_id, phase=record["phase"])

    def _clear_waiting(self, task_id: str) -> None:
        self._waiting_path(task_id).unlink(missing_ok=True)

    def _waiting_path(self, task_id: str) -> Path:
        return self.runtime.workspace.state_dir / WAITING_DIR / f"{task_id}.json"

    @contextlib.contextmanager
    def _locked(self, task_id: str) -> Iterator[None]:
        folder = self.runtime.workspace.state_dir / LOCKS_DIR
        lock = TaskLock(folder / f"{task_id}.lock", task_id=task_id)
        with WorkspaceRunLock.held(folder / WORKSPACE_LOCK):
            lock.acquire()
            try:
                yield
            finally:
                lock.release()

    def _save_record(self, outcome: RunOutcome) -> None:
        path = self.runtime.workspace.state_dir / RUNS_DIR / f"{outcome.task_id}.json"
        document = redact_data(outcome.as_dict())
        _replace_unsynced(path, json.dumps(document, indent=2) + "\n")

    def _open_checkpointer(
        self, checkpoints: Path | None, url: str | None
    ) -> BaseCheckpointSaver:
        if url:
            return self._open_postgres(url)
        path = checkpoints or self.runtime.workspace.state_dir / CHECKPOINTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        # SqliteSaver serialises its use of the connection with its own lock
        connection = sqlite3.connect(str(path), check_same_thread=False)
        # WAL without a sync per commit survives a killed process (the case
        # resume is for); only a power loss could drop the last checkpoints
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        self._closers.append(connection.close)
        return SqliteSaver(connection)

    def _open_postgres(self, url: str) -> BaseCheckpointSaver:
        try:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row
        except ImportError as exc:
            raise ConfigError(
                f"checkpoints.url needs the package {exc.name!r}; install "
                "langgraph-checkpoint-postgres",
                path=CONFIG_FILE,
                field="checkpoints.url",
            ) from None
        libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            connection = psycopg.Connection.connect(
                libpq, autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
        except psycopg.Error as exc:
            raise ConfigError(
                f"checkpoints.url: cannot connect to PostgreSQL: {exc}",
                path=CONFIG_FILE,
                field="checkpoints.url",
            ) from None
        self._closers.append(connection.close)
        saver = PostgresSaver(connection)  # type: ignore[arg-type]
        saver.setup()
        return saver


class TaskLock:
    """A lock file holding the pid of the process that runs a task.

    A lock whose process is gone is taken over, so a task left IN_PROGRESS by
    a killed run never stays stuck.
    """

    def __init__(self, path: Path, *, task_id: str) -> None:
        self.path = path
        self.task_id = task_id

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            BacklogError: a live process holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = f"{os.getpid()}\n"
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = self._holder()
            if holder is not None and _alive(holder):
                raise BacklogError(
                    f"{self.task_id} is being run by process {holder} (lock "
                    f"{self.path.name} under .sparc/{LOCKS_DIR}); wait for it to "
                    "finish",
                    task_ids=[self.task_id],
                ) from None
            write_text_atomic(self.path, mine)
            log.warning("lock_taken_over", task_id=self.task_id, dead_pid=holder)
            return
        with os.fdopen(fd, "w") as handle:
            handle.write(mine)

    def release(self) -> None:
        if self._holder() == os.getpid():
            self.path.unlink(missing_ok=True)

    def _holder(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or "0") or None
        except (OSError, ValueError):
            return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    # a zombie has exited; its parent just has not reaped it yet
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _replace_unsynced(path: Path, text: str) -> None:
    """Replace `path` whole through a rename, without waiting for the disk.

    A run record, like the checkpoints it is read from, has to survive a
    killed process, not a power loss; an fsync per run would only add latency.
    Only the task's lock holder writes its record, so the staging name can be
    fixed, and one a killed process left is simply written over.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.staged")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def read_waiting(folder: Path) -> dict[str, dict[str, Any]]:
    """Waiting records in `folder`: task id -> record."""
    found: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            found[path.stem] = record
    return found


def open_runtime(
    root: Path | str,
    *,
    engines: EngineRegistry | None = None,
    personas: PersonaRegistry | None = None,
    budget: BudgetSettings | None = None,
) -> Runtime:
    """Read and validate a workspace into the Runtime a graph runs with.

    Raises:
        InputError: the configuration, a task file, the backlog graph, a
            persona card or the workflow is invalid.
        GitError: the workspace is not a usable git repository.
    """
    workspace = Workspace.at(root)
    config = load_config(workspace.root)
    settings = load_run_settings(workspace.root)
    Backlog.load(workspace.backlog_dir)
    personas = personas or personas_for(workspace)
    workflow = _workflow_for(workspace, config.workflow)
    repo = gitops.open_repository(workspace.root)
    configured = config.git.identity
    identity = gitops.resolve_identity(
        repo,
        gitops.Identity(configured.name, configured.email) if configured else None,
    )
    if engines is None:
        from sparc.llm import configured_engines

        engines = EngineRegistry.default()
        configured_engines(engines, settings.engines)
    return Runtime(
        workspace=workspace,
        config=config,
        personas=personas,
        engines=engines,
        workflow=workflow,
        repo=repo,
        identity=identity,
        budget=budget or settings.budget,
    )


def run_id_for(task_file: TaskFile) -> str:
    """A run id stable across restarts: the task id and its content, not its status."""
    content = task_file.task.model_dump(
        mode="json", exclude={"status", "blocked_reason"}
    )
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f"{task_file.task.id}:{digest[:12]}"


def personas_for(workspace: Workspace) -> PersonaRegistry:
    """Built-in cards, then third-party folders (entry points), then the workspace's."""
    dirs = [*_entry_point_persona_dirs()]
    own = workspace.state_dir / "personas"
    if own.is_dir():
        dirs.append(own)
    if dirs:
        return PersonaRegistry.from_dirs(*dirs, builtin=True)
    return PersonaRegistry.builtin()


def _entry_point_persona_dirs() -> list[Path]:
    """Folders of cards named by `sparc.personas` entry points.

    An entry point's value is a module (its folder holds the cards) or a
    callable returning the folder.
    """
    folders = []
    for point in entry_points(group=PERSONA_ENTRY_POINT_GROUP):
        loaded: Any = point.load()
        if callable(loaded):
            folder = Path(loaded())
        elif getattr(loaded, "__file__", None):
            folder = Path(loaded.__file__).parent
        else:
            folder = Path(str(loaded))
        if not folder.is_dir():
            raise ConfigError(
                f"entry point {point.name} ({point.value}) of group "
                f"{PERSONA_ENTRY_POINT_GROUP} gives {folder}, not a folder of cards",
                field=PERSONA_ENTRY_POINT_GROUP,
            )
        folders.append(folder)
        log.debug("persona_entry_point_loaded", name=point.name, folder=str(folder))
    return folders


def _workflow_for(workspace: Workspace, name: str) -> Workflow:
    own = workspace.state_dir / "workflows" / f"{name}.yaml"
    if own.is_file():
        return load_workflow(own)
    return builtin_workflow(name)
