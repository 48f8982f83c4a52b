"""What a task run works with: the workspace, its settings, personas and engines.

The runtime owns the run's effects on the workspace: writing deliverables,
editing the task file, committing, and undoing a run that ends blocked.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from sparc import gitops
from sparc.backlog import TaskFile, TaskStatus, load_task, set_status
from sparc.errors import BacklogError

if TYPE_CHECKING:
    from git import Repo

    from sparc.config import SparcConfig
    from sparc.engines import EngineRegistry
    from sparc.personas import PersonaRegistry
    from sparc.workflow import Workflow
    from sparc.workspace import Workspace

log = structlog.get_logger(__name__)

# Commit scope by the task's specialist: conventional-commit style.
_COMMIT_SCOPES = {"database-engineer": "db", "python-engineer": "app"}

# the names a task file may have, as the backlog reads them
_TASK_SUFFIXES = (".yaml", ".yml")
# the temporary file of an atomic write ends in eight random characters and this
_TEMPORARY_SUFFIX = ".tmp"
_TEMPORARY_LENGTH = 8 + len(_TEMPORARY_SUFFIX)


class BudgetLimits(BaseModel):
    """Upper bounds on model use; a missing limit is no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int | None = Field(default=None, gt=0)
    cost: float | None = Field(default=None, gt=0)
    steps: int | None = Field(default=None, gt=0)


class BudgetSettings(BaseModel):
    """The `budget` section of `.sparc/config.yaml`.

    `task` limits one task run, `batch` the runs of one `sparc batch`. On
    reaching a limit the run pauses for a person (`pause`) or ends BLOCKED.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: BudgetLimits = BudgetLimits()
    batch: BudgetLimits = BudgetLimits()
    on_exceed: Literal["pause", "block"] = "pause"


@dataclass
class Runtime:
    workspace: Workspace
    config: SparcConfig
    personas: PersonaRegistry
    engines: EngineRegistry
    workflow: Workflow
    repo: Repo
    identity: gitops.Identity
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    # GitPython's Repo keeps long-lived `git cat-file` pipes that two threads
    # must not use at once; every use of `repo` by parallel runs holds this
    git_lock: threading.RLock = field(default_factory=threading.RLock)

    # the task of each run in progress, as the run read it and has since edited
    # it: nodes and routers use this instead of parsing the file again
    _run_tasks: dict[str, TaskFile] = field(default_factory=dict, repr=False)
    _run_tasks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def task(self, task_id: str) -> TaskFile:
        """The task as its file says now (the file is the single source of truth).

        Raises:
            BacklogError: no file holds the task, or the file is invalid.
        """
        for suffix in _TASK_SUFFIXES:
            path = self.workspace.backlog_dir / f"{task_id}{suffix}"
            if path.is_file():
                return load_task(path)
        raise BacklogError(
            f"unknown task {task_id!r}: no {task_id}.yaml or {task_id}.yml in "
            f"{self.workspace.relative(self.workspace.backlog_dir)}; check the id "
            "with `sparc backlog`",
            task_ids=[task_id],
        )

    def start_run(self, run_id: str, task_file: TaskFile) -> None:
        """Give the run `run_id` the task its caller has just read from the file."""
        with self._run_tasks_guard:
            self._run_tasks[run_id] = task_file

    def run_task(self, task_id: str, run_id: str) -> TaskFile:
        """The task of a run in progress: read from its file once per run.

        A run resumed in a new process reads the file again; within a run, the
        task changes only through this runtime's own status edits, which it
        records.
        """
        with self._run_tasks_guard:
            known = self._run_tasks.get(run_id)
        if known is not None:
            return known
        task_file = self.task(task_id)
        self.start_run(run_id, task_file)
        return task_file

    def end_run(self, run_id: str) -> None:
        """Forget a finished run's task: the next run reads the file afresh."""
        with self._run_tasks_guard:
            self._run_tasks.pop(run_id, None)

    def set_status(
        self,
        task_file: TaskFile,
        status: TaskStatus,
        *,
        reason: str | None = None,
        run_id: str | None = None,
    ) -> TaskFile:
        """Set the task file's status (and reason); return the task as now written.

        With `run_id`, the run's own view of its task is updated too.
        """
        task = task_file.task
        if task.status == status and reason is None:
            return task_file
        _remove_leftovers(task_file.path)
        set_status(task_file.path, status, reason=reason)
        log.info("task_status_set", task_id=task.id, status=status.value)

        changes: dict[str, object] = {"status": status}
        if reason is not None:
            changes["blocked_reason"] = reason
        written = replace(task_file, task=task.model_copy(update=changes))
        if run_id is not None:
            with self._run_tasks_guard:
                if run_id in self._run_tasks:
                    self._run_tasks[run_id] = written
        return written

    def write_files(
        self, files: Mapping[str, str], *, already: Sequence[str] = ()
    ) -> list[str]:
        """Write deliverables atomically; refuse to overwrite a user's edit.

        A file whose content is already what the engine produced is left alone,
        which makes a replayed phase harmless.
        """
        targets = {
            rel: self.workspace.resolve(rel, field="deliverable") for rel in files
        }
        changing = [
            rel
            for rel, path in targets.items()
            if not (path.is_file() and path.read_text(encoding="utf-8") == files[rel])
        ]
        with self.git_lock:
            gitops.check_clean(
                self.repo, [rel for rel in changing if rel not in already]
            )

        # what each file held before, so a failure part-way leaves none written
        previous: list[tuple[Path, bytes | None, list[Path]]] = []
        try:
            for rel in sorted(changing):
                path = targets[rel]
                created = [
                    folder
                    for folder in reversed(path.parents)
                    if self.workspace.root in folder.parents and not folder.exists()
                ]
                before = path.read_bytes() if path.is_file() else None
                previous.append((path, before, created))
                _remove_leftovers(path)
                self.workspace.write_text(rel, files[rel], field="deliverable")
                log.debug("file_written", path=rel)
        except BaseException:
            _put_back(previous)
            raise
        return sorted(files)

    def commit_run(
        self,
        task_file: TaskFile,
        *,
        run_id: str,
        written: Sequence[str],
        record: Sequence[Mapping[str, str]],
        resumed: bool = True,
        since: str | None = None,
    ) -> str | None:
        """Mark the task COMPLETE and commit it with what the run wrote, once.

        Args:
            task_file: the task as the run knows it.
            run_id: the run, named in the commit's `Run:` trailer.
            written: the files the run wrote.
            record: the run's record; its producers name the phases and agents.
            resumed: whether an earlier attempt of this run may have committed
                already (a run resumed after a crash or a pause). Only then is
                the history searched for the run's commit; a fresh run cannot
                have one.
            since: the commit HEAD was at when the run started: the search
                goes no further back, so an earlier run of the same task
                does not count.
        """
        with self.git_lock:
            return self._commit_run(
                task_file,
                run_id=run_id,
                written=written,
                record=record,
                resumed=resumed,
                since=since,
            )

    def _commit_run(
        self,
        task_file: TaskFile,
        *,
        run_id: str,
        written: Sequence[str],
        record: Sequence[Mapping[str, str]],
        resumed: bool,
        since: str | None,
    ) -> str | None:
        task = task_file.task
        if resumed:
            existing = gitops.find_task_commit(
                self.repo, task.id, run_id=run_id, since=since
            )
            if existing:
                log.info("commit_exists", task_id=task.id, commit=existing)
                return existing

        # an earlier run's blocked reason no longer holds once the task completes
        stale = "" if task_file.task.blocked_reason else None
        self.set_status(task_file, TaskStatus.COMPLETE, reason=stale, run_id=run_id)
        producers = [r for r in record if r.get("role") == "primary"]
        phases = list(dict.fromkeys(r["phase"] for r in producers))
        agents = list(dict.fromkeys(r["persona"] for r in producers))
        scope = _COMMIT_SCOPES.get(task.specialist or "", "sparc")
        message = gitops.conventional_message("feat", scope, task.title)
        task_path = self.workspace.relative(task_file.path)
        paths = [*written, task_path]
        # on failure the runner puts the task file back as it was before the run
        sha = gitops.commit_paths(
            self.repo,
            list(dict.fromkeys(paths)),
            # a task file is committed with its backlog; the deliverables a run
            # wrote may be new to git
            tracked=[task_path],
            message=message,
            identity=self.identity,
            trailers={
                "Task": task.id,
                "Phase": ", ".join(phases),
                "Agent": ", ".join(agents),
                "Run": run_id,
            },
            lock_timeout=self.config.git.lock_timeout,
        )
        log.info("task_committed", task_id=task.id, commit=sha, files=len(paths))
        return sha

    def abandon_run(
        self, task_file: TaskFile, *, written: Sequence[str], reason: str
    ) -> None:
        """Put back what the run wrote and mark the task BLOCKED with the reason."""
        with self.git_lock:
            self._abandon_run(task_file, written=written, reason=reason)

    def _abandon_run(
        self, task_file: TaskFile, *, written: Sequence[str], reason: str
    ) -> None:
        self.put_back(written)
        _remove_leftovers(task_file.path)
        set_status(task_file.path, TaskStatus.BLOCKED, reason=reason)

    def put_back(self, written: Sequence[str]) -> None:
        """Return files a run wrote to their committed state (the caller holds
        `git_lock`): tracked ones from HEAD, new ones removed."""
        if not written:
            return
        tracked = set(self.repo.git.ls_files("--", *written).splitlines())
        for rel in written:
            if rel in tracked:
                self.repo.git.checkout("HEAD", "--", rel)
                continue
            path = self.workspace.root / rel
            path.unlink(missing_ok=True)
            # folders the run made for new files go too, when nothing else is in them
            for folder in path.parents:
                if folder == self.workspace.root:
                    break
                try:
                    folder.rmdir()
                except OSError:
                    break


def _remove_leftovers(path: Path) -> None:
    """Remove the temporary files a killed process left beside `path`.

    An atomic write (`write_text_atomic`) goes through `.{name}.XXXXXXXX.tmp`
    beside its target; a process killed before the rename leaves it there, in
    the user's tree. A run is the only writer of its task file and of its
    deliverables (the workspace lock and the batch's scheduling see to that),
    so such a file next to a path it is about to write is a leftover.
    """
    prefix = f".{path.name}."
    try:
        entries = os.scandir(path.parent)
    except OSError:
        return
    with entries:
        leftovers = [
            Path(entry.path)
            for entry in entries
            if entry.name.startswith(prefix)
            and entry.name.endswith(_TEMPORARY_SUFFIX)
            and len(entry.name) == len(prefix) + _TEMPORARY_LENGTH
            and entry.is_file(follow_symlinks=False)
        ]
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
        log.warning("leftover_removed", path=str(leftover))


def _put_back(previous: Sequence[tuple[Path, bytes | None, list[Path]]]) -> None:
    """Restore files (and remove folders) as they were before a failed write."""
    for path, before, created in reversed(previous):
        if before is None:
            path.unlink(missing_ok=True)
        else:
            staged = path.with_name(f".{path.name}.restore")
            staged.write_bytes(before)
            staged.replace(path)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
