"""Running a backlog: ready tasks in parallel where their written files cannot meet.

The scheduler keeps its own view of the backlog's statuses, loaded once, and
updates it as runs finish, so a dependent becomes ready the moment its last
dependency completes. Tasks start in urgency order (an interrupted run first,
then critical, high, medium, low, then by id). Two tasks whose predicted
written files overlap never run at the same time, and a less urgent task never
starts ahead of a more urgent one it conflicts with, so tasks that write the
same files (every data task writes the models) run one after another in
urgency order and each sees the commits of those before it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import structlog

from sparc import gitops
from sparc.agents.hephaestus.engine import (
    DATA_SPECIALIST,
    QUERY_SCRIPT,
    SEED_SCRIPT,
    HephaestusEngine,
    models_path,
)
from sparc.agents.outline import PHASE_DOCUMENT_DIRS, OutlineEngine, document_path
from sparc.backlog import Backlog, TaskFile, TaskStatus
from sparc.errors import ConfigError, SparcError
from sparc.runner import RunOutcome
from sparc.workspace import BACKLOG_DIR

if TYPE_CHECKING:
    from sparc.config import SparcConfig
    from sparc.runner import Runner
    from sparc.runtime import Runtime

log = structlog.get_logger(__name__)

# A predicted path ending in "/" covers its folder; this one covers everything.
WHOLE_WORKSPACE = "/"
ALEMBIC_FOLDER = "alembic/"

_RUNNABLE = (TaskStatus.NEW, TaskStatus.READY, TaskStatus.IN_PROGRESS)
_BAR_FILLED, _BAR_EMPTY = "#", "-"


# what a task will write


def predicted_paths(
    task_file: TaskFile, config: SparcConfig, *, runtime: Runtime | None = None
) -> set[str]:
    """The workspace paths a task's run may write, known before it runs.

    The prediction is conservative: a folder (ending in `/`) stands for any
    file in it, and a phase done by an engine whose writes are not known here
    is taken to write anything (`WHOLE_WORKSPACE`). The task's own file is
    always included, since the run edits its status.

    Args:
        task_file: the task.
        config: the workspace settings (the project name places the models).
        runtime: when given, each phase's owner is looked up in its personas
            and engines; without it, a data task's Refinement is Hephaestus's
            and every other phase writes its outline document.

    Returns:
        Workspace-relative POSIX paths and folders.
    """
    task = task_file.task
    if runtime is not None:
        paths = {runtime.workspace.relative(task_file.path)}
        try:
            phases = [p.name for p in runtime.workflow.select(task.phases)]
        except SparcError:
            # the run will block at once without writing a deliverable
            return paths
        for phase in phases:
            try:
                persona = runtime.personas.primary(phase, task.specialist)
            except SparcError:
                # no single owner: the run fails there; assume the worst
                return paths | {WHOLE_WORKSPACE}
            engine = runtime.engines.get(persona.key)
            paths |= _engine_paths(engine, phase, task.id, config)
        return paths

    paths = {f"{BACKLOG_DIR}/{task_file.path.name}"}
    for phase in task.phases or list(PHASE_DOCUMENT_DIRS):
        if phase == "refinement" and task.specialist == DATA_SPECIALIST:
            paths |= _data_paths(config)
        elif phase in PHASE_DOCUMENT_DIRS:
            paths.add(document_path(phase, task.id))
        else:
            paths.add(WHOLE_WORKSPACE)
    return paths


def paths_overlap(left: Iterable[str], right: Iterable[str]) -> bool:
    """Whether two predicted path sets can name the same file."""
    right = list(right)
    for a in left:
        for b in right:
            if WHOLE_WORKSPACE in (a, b) or a == b:
                return True
            if (a.endswith("/") and b.startswith(a)) or (
                b.endswith("/") and a.startswith(b)
            ):
                return True
    return False


def _engine_paths(
    engine: object, phase: str, task_id: str, config: SparcConfig
) -> set[str]:
    if isinstance(engine, HephaestusEngine):
        return _data_paths(config)
    if isinstance(engine, OutlineEngine) and phase in PHASE_DOCUMENT_DIRS:
        return {document_path(phase, task_id)}
    predict = getattr(engine, "predicted_paths", None)
    if callable(predict):
        # an engine may declare its writes: predicted_paths(phase, task_id, config)
        return set(predict(phase, task_id, config))
    return {WHOLE_WORKSPACE}


def _data_paths(config: SparcConfig) -> set[str]:
    return {models_path(config.project), ALEMBIC_FOLDER, SEED_SCRIPT, QUERY_SCRIPT}


# the batch and its result


@dataclass(frozen=True)
class TaskRun:
    """One task run of a batch: its outcome and when it ran."""

    outcome: RunOutcome
    # seconds since the batch started
    started: float
    duration: float

    @property
    def task_id(self) -> str:
        return self.outcome.task_id

    @property
    def complete(self) -> bool:
        return self.outcome.complete

    def as_dict(self) -> dict[str, Any]:
        outcome = self.outcome
        phases = list(
            dict.fromkeys(
                r["phase"] for r in outcome.record if r.get("role") == "primary"
            )
        )
        return {
            "task_id": outcome.task_id,
            "status": outcome.status,
            "phases": phases,
            "started_s": round(self.started, 4),
            "duration_s": round(self.duration, 4),
            "commit": outcome.commit,
            "findings": _findings_of(outcome),
            "reason": outcome.reason,
            "run_id": outcome.run_id,
            "written": list(outcome.written),
            "record": list(outcome.record),
            "report": list(outcome.report),
        }


@dataclass
class BatchResult:
    """Every run of a batch in finishing order, and the tasks that did not run."""

    runs: list[TaskRun] = field(default_factory=list)
    # task id -> why it did not run (a dependency blocked, or --fail-fast)
    not_run: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    duration: float = 0.0
    stopped_early: bool = False

    @property
    def complete(self) -> list[TaskRun]:
        return [r for r in self.runs if r.complete]

    @property
    def blocked(self) -> list[TaskRun]:
        """Runs that did not complete: BLOCKED, or paused at a gate (WAITING)."""
        return [r for r in self.runs if not r.complete]

    @property
    def waiting(self) -> list[TaskRun]:
        return [r for r in self.runs if r.outcome.waiting]

    @property
    def exit_code(self) -> int:
        """0 when every run completed, 1 when one ended BLOCKED or paused."""
        return 1 if self.blocked else 0

    def summary(self) -> str:
        """One line: how many ran, completed, blocked and did not run."""
        line = (
            f"{len(self.runs)} tasks run in {self.duration:.1f} s with "
            f"{self.workers} worker(s): {len(self.complete)} COMPLETE, "
            f"{len(self.blocked) - len(self.waiting)} BLOCKED"
        )
        if self.waiting:
            line += f", {len(self.waiting)} WAITING"
        if self.not_run:
            line += f", {len(self.not_run)} not run"
        if self.stopped_early:
            line += " (stopped at the first blocked task: --fail-fast)"
        return line

    def as_report(self) -> dict[str, Any]:
        """The JSON report: a summary, every run, and every task that did not run."""
        return {
            "summary": {
                "tasks_run": len(self.runs),
                "complete": len(self.complete),
                "blocked": len(self.blocked) - len(self.waiting),
                "waiting": len(self.waiting),
                "not_run": len(self.not_run),
                "workers": self.workers,
                "duration_s": round(self.duration, 3),
                "stopped_early": self.stopped_early,
                "exit_code": self.exit_code,
            },
            "tasks": [r.as_dict() for r in self.runs],
            "not_run": [
                {"task_id": task_id, "reason": reason}
                for task_id, reason in sorted(self.not_run.items())
            ],
        }


def default_workers() -> int:
    return os.cpu_count() or 1


def run_batch(
    runner: Runner,
    *,
    workers: int | None = None,
    fail_fast: bool = False,
    on_finish: Callable[[TaskRun], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run every runnable task of the runner's backlog until none is left.

    A task left IN_PROGRESS by an interrupted run is resumed. A run that ends
    BLOCKED (or fails with an error) leaves its dependents unrun and the rest
    of the batch going, unless `fail_fast`: then no new task starts, the
    running ones finish, and every task not run is listed with the reason.

    Args:
        runner: an open runner; its `run` is called from several threads.
        workers: how many tasks may run at once (default: the CPU count).
        fail_fast: stop starting tasks at the first BLOCKED one.
        on_finish: called in the calling thread after each run.
        on_start: called in the calling thread with each task id it starts.

    Returns:
        The runs in finishing order, and the tasks that did not run.

    Raises:
        ConfigError: `workers` is less than 1.
        InputError: the backlog is invalid (see `Backlog.load`), or a planned
            task's engine refuses its input documents (see `Runner.check_inputs`).
    """
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be 1 or more, got {workers}", field="workers")

    backlog = runner.backlog()
    scheduler = _Scheduler(runner, backlog, workers, fail_fast)
    scheduler.check_clean()
    # a document `run` refuses with exit 2 stops the batch before any work
    for task_id in planned_tasks(backlog):
        runner.check_inputs(backlog.get(task_id))
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sparc") as pool:
        running: set[Future[TaskRun]] = set()
        while True:
            for task_id in scheduler.startable(len(running)):
                if on_start:
                    on_start(task_id)
                running.add(pool.submit(_run_one, runner, task_id, began))
            if not running:
                break

            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for run in sorted((f.result() for f in finished), key=_finish_time):
                scheduler.finished(run)
                log.info(
                    "batch_task_finished",
                    task_id=run.task_id,
                    status=run.outcome.status,
                    seconds=round(run.duration, 3),
                )
                if on_finish:
                    on_finish(run)

    result = scheduler.result
    result.duration = time.perf_counter() - began
    result.not_run = scheduler.not_run()
    result.stopped_early = scheduler.stopping
    log.info(
        "batch_finished",
        runs=len(result.runs),
        blocked=len(result.blocked),
        seconds=round(result.duration, 3),
    )
    return result


class _Scheduler:
    """Which tasks may start now, given the statuses and what is running."""

    def __init__(
        self, runner: Runner, backlog: Backlog, workers: int, fail_fast: bool
    ) -> None:
        self._runner = runner
        self._backlog = backlog
        self._workers = workers
        self._fail_fast = fail_fast
        self._status = {tf.task.id: tf.task.status for tf in backlog.tasks}
        # runs a crash interrupted go first, whatever their status says
        self._interrupted = set(runner.unfinished(backlog))
        self._waiting = set(runner.waiting())
        self._paths: dict[str, set[str]] = {}
        self._running: dict[str, set[str]] = {}
        self._ran: set[str] = set()
        self._ready: list[tuple[tuple[int, int, str], str]] = sorted(
            (self._urgency(tf), tf.task.id)
            for tf in backlog.tasks
            if self._runnable(tf.task.id)
        )
        self.stopping = False
        self.result = BatchResult(workers=workers)

    def startable(self, running: int) -> list[str]:
        """Take the tasks to start now off the ready list, most urgent first."""
        if self.stopping:
            return []
        started: list[str] = []
        passed_over: list[set[str]] = []
        kept: list[tuple[tuple[int, int, str], str]] = []
        for entry in self._ready:
            task_id = entry[1]
            if running + len(started) >= self._workers:
                kept.append(entry)
                continue
            paths = self._predicted(task_id)
            busy = any(paths_overlap(paths, other) for other in self._running.values())
            # a less urgent task never overtakes a more urgent one it conflicts with
            behind = any(paths_overlap(paths, other) for other in passed_over)
            if busy or behind:
                passed_over.append(paths)
                kept.append(entry)
                continue
            self._running[task_id] = paths
            started.append(task_id)
        self._ready = kept
        return started

    def check_clean(self) -> None:
        """Refuse the batch before any work when a file a task would write is dirty.

        Folders and task files are left to each run's own check; a resumed
        task's files are its own uncommitted work.
        """
        files: set[str] = set()
        resumed: set[str] = set()
        for task_file in self._backlog.tasks:
            task_id = task_file.task.id
            if task_id in self._interrupted or task_id in self._waiting:
                # an interrupted run's uncommitted files are its own work in
                # progress, even where a later task will write them too
                resumed |= self._predicted(task_id)
                continue
            if self._status[task_id] not in (TaskStatus.NEW, TaskStatus.READY):
                continue
            files |= {
                path
                for path in self._predicted(task_id)
                if not path.endswith("/") and not path.startswith(f"{BACKLOG_DIR}/")
            }
        gitops.check_clean(
            self._runner.runtime.repo,
            sorted(f for f in files if not paths_overlap({f}, resumed)),
        )

    def finished(self, run: TaskRun) -> None:
        task_id = run.task_id
        self._running.pop(task_id, None)
        self._interrupted.discard(task_id)
        self.result.runs.append(run)
        self._ran.add(task_id)
        if run.outcome.waiting:
            self._waiting.add(task_id)
            return
        if not run.complete:
            self._status[task_id] = TaskStatus.BLOCKED
            if self._fail_fast:
                self.stopping = True
            return

        self._status[task_id] = TaskStatus.COMPLETE
        dependents = self._backlog.dependents(task_id)
        queued = {queued_id for _, queued_id in self._ready} if dependents else set()
        for dependent in dependents:
            # a dependent may be queued already: it was ready when the batch
            # began (its dependency was COMPLETE but its run not yet finished)
            if (
                dependent in queued
                or dependent in self._running
                or dependent in self._ran
            ):
                continue
            if self._runnable(dependent):
                entry = (self._urgency(self._backlog.get(dependent)), dependent)
                self._ready.append(entry)
        self._ready.sort()

    def not_run(self) -> dict[str, str]:
        """Why each task that could have run in this batch did not."""
        reasons: dict[str, str] = {}
        for tf in self._backlog.tasks:
            task_id = tf.task.id
            if task_id in self._ran or self._status[task_id] not in _RUNNABLE:
                continue
            if task_id in self._waiting:
                reasons[task_id] = "waiting for approval (`sparc approve`)"
                continue
            waiting = [
                d
                for d in tf.task.depends_on
                if self._status[d] is not TaskStatus.COMPLETE
            ]
            if waiting:
                states = ", ".join(f"{d} ({self._status[d].value})" for d in waiting)
                reasons[task_id] = f"waits for {states}"
            else:
                reasons[task_id] = "not started: the batch stopped at a blocked task"
        return reasons

    def _runnable(self, task_id: str) -> bool:
        if task_id in self._waiting:
            return False
        if task_id in self._interrupted:
            # a run that failed with an error was marked BLOCKED by the batch;
            # only `sparc run` starts it again
            return self._status[task_id] is not TaskStatus.BLOCKED
        if self._status[task_id] not in _RUNNABLE:
            return False
        return all(
            self._status[d] is TaskStatus.COMPLETE
            for d in self._backlog.get(task_id).task.depends_on
        )

    def _urgency(self, task_file: TaskFile) -> tuple[int, int, str]:
        task_id = task_file.task.id
        resumed = (
            0
            if task_id in self._interrupted
            or self._status[task_id] is TaskStatus.IN_PROGRESS
            else 1
        )
        return (resumed, task_file.task.priority.rank, task_file.task.id)

    def _predicted(self, task_id: str) -> set[str]:
        paths = self._paths.get(task_id)
        if paths is None:
            runtime = self._runner.runtime
            paths = predicted_paths(
                self._backlog.get(task_id), runtime.config, runtime=runtime
            )
            self._paths[task_id] = paths
        return paths


def _run_one(runner: Runner, task_id: str, began: float) -> TaskRun:
    """Run a task in a worker thread, timed from where it really starts and ends."""
    started = time.perf_counter()
    outcome = _outcome_of(runner, task_id)
    ended = time.perf_counter()
    return TaskRun(outcome=outcome, started=started - began, duration=ended - started)


def _finish_time(run: TaskRun) -> float:
    return run.started + run.duration


def _outcome_of(runner: Runner, task_id: str) -> RunOutcome:
    """Run a task; an error that escapes the run blocks the task with its message."""
    try:
        return runner.run(task_id)
    except Exception as exc:
        reason = (
            str(exc) if isinstance(exc, SparcError) else f"{type(exc).__name__}: {exc}"
        )
        log.exception("batch_task_failed", task_id=task_id)
        runtime = runner.runtime
        try:
            task_file = runtime.task(task_id)
            # a committed, complete task is never marked blocked after the fact
            if task_file.task.status is not TaskStatus.COMPLETE:
                runtime.abandon_run(task_file, written=[], reason=reason)
        except SparcError:
            log.exception("batch_task_block_failed", task_id=task_id)
        return RunOutcome(
            task_id=task_id,
            run_id="",
            status=TaskStatus.BLOCKED.value,
            reason=reason,
        )


def _findings_of(outcome: RunOutcome) -> list[Any]:
    # review findings travel on the outcome once the runner records them
    return list(getattr(outcome, "findings", ()) or ())


# progress on the command line


def planned_tasks(backlog: Backlog) -> list[str]:
    """The tasks a batch would try: not yet COMPLETE or BLOCKED."""
    return [tf.task.id for tf in backlog.tasks if tf.task.status in _RUNNABLE]


def format_finished(run: TaskRun) -> str:
    """One plain line for a finished task, for logs and non-terminal output."""
    outcome = run.outcome
    if outcome.complete:
        owners = sorted(
            {r["persona"] for r in outcome.record if r.get("role") == "primary"}
        )
        commit = outcome.commit[:10] if outcome.commit else "no commit"
        return (
            f"{outcome.task_id} COMPLETE {commit} {run.duration:.1f}s "
            f"({', '.join(owners)})"
        )
    return f"{outcome.task_id} BLOCKED {run.duration:.1f}s: {outcome.reason}"


def format_progress(
    done: int, total: int, *, running: Sequence[str] = (), width: int = 24
) -> str:
    """A one-line progress bar: `[#####-----] 12/30 running: DB-004, DB-007`."""
    total = max(total, done, 1)
    filled = round(width * done / total)
    bar = _BAR_FILLED * filled + _BAR_EMPTY * (width - filled)
    line = f"[{bar}] {done}/{total}"
    if running:
        shown = ", ".join(running[:4])
        more = len(running) - 4
        line += f" running: {shown}" + (f" +{more}" if more > 0 else "")
    return line


class ProgressDisplay:
    """Shows a batch's progress: a redrawn bar on a terminal, plain lines elsewhere.

    Pass `display.started` and `display.finished` to `run_batch` as `on_start`
    and `on_finish`, then call `display.close()`.
    """

    def __init__(self, stream: IO[str], *, total: int, terminal: bool) -> None:
        self._stream = stream
        self._total = total
        self._terminal = terminal
        self._done = 0
        self._running: list[str] = []
        self._shown = 0

    def started(self, task_id: str) -> None:
        self._running.append(task_id)
        self._redraw()

    def finished(self, run: TaskRun) -> None:
        if run.task_id in self._running:
            self._running.remove(run.task_id)
        self._done += 1
        if self._terminal:
            self._clear()
        self._stream.write(format_finished(run) + "\n")
        self._redraw()

    def close(self) -> None:
        if self._terminal:
            self._clear()
        self._stream.flush()

    def _redraw(self) -> None:
        if not self._terminal:
            return
        line = format_progress(self._done, self._total, running=self._running)
        self._clear()
        self._stream.write(line)
        self._stream.flush()
        self._shown = len(line)

    def _clear(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * self._shown + "\r")
            self._shown = 0
