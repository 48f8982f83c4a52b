"""Task files and the backlog they form.

A task is one YAML file `docs/backlog/{id}.yaml`; the file is the single source
of truth for the task's state. The backlog is every task file of a workspace
read as a dependency graph. This module is plain data: it reads, validates and
updates task files and never imports the graph runtime.

Example:
    >>> backlog = Backlog.load(Path("docs/backlog"))
    >>> [task_file.task.id for task_file in backlog.ready()]
    ['DB-001', 'DB-004']
    >>> set_status(backlog.get("DB-001").path, TaskStatus.IN_PROGRESS)
"""

from __future__ import annotations

import copy
import errno
import heapq
import math
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import structlog
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sparc.errors import BacklogError, CycleError
from sparc.safe_yaml import load_yaml
from sparc.workspace import write_text_atomic

__all__ = [
    "MAX_TASK_FILE_BYTES",
    "MAX_TASK_FILE_DEPTH",
    "Backlog",
    "Priority",
    "Task",
    "TaskFile",
    "TaskStatus",
    "format_backlog",
    "load_task",
    "set_status",
]

log = structlog.get_logger(__name__)

MAX_TASK_FILE_BYTES = 1024 * 1024
MAX_TASK_FILE_DEPTH = 32
# Aliases let a small file expand into a huge value; this bounds the expansion.
_MAX_TASK_FILE_NODES = 100_000
_MAX_ID_LENGTH = 64
_TASK_SUFFIXES = (".yaml", ".yml")

_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PHASE_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Names Windows refuses as file names, whatever the extension.
_RESERVED_FILE_NAMES = {"con", "prn", "aux", "nul"}
_RESERVED_FILE_NAMES |= {f"{device}{n}" for device in ("com", "lpt") for n in range(10)}


class TaskStatus(StrEnum):
    """Where a task stands; the task file's `status` field."""

    NEW = "NEW"
    READY = "READY"
    IN_PROGRESS = "IN_PROGRESS"
    BLOCKED = "BLOCKED"
    COMPLETE = "COMPLETE"


class TuneRequest(BaseModel):
    """A tuning task: Hephaestus reads a live PostgreSQL and proposes proven indexes.

    The database URL is never written in the task file: `url_env` names the
    environment variable that holds it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")] = "DATABASE_URL"
    workload: WorkspacePath | None = None
    hypothetical: bool = False
    analyze: bool = False
    margin: float = Field(default=0.2, gt=0, lt=1)


class Priority(StrEnum):
    """How urgent a task is; `rank` orders them, critical first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical up to 3 for low: sort ascending to get urgent first."""
        return _PRIORITY_RANKS[self]


_PRIORITY_RANKS = {priority: rank for rank, priority in enumerate(Priority)}


def _check_task_id(value: str) -> str:
    if not _ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid task id; use letters, digits, '-', '_' "
            "and '.', starting with a letter or digit (like DB-001)"
        )
    if len(value) > _MAX_ID_LENGTH:
        raise ValueError(
            f"{value!r} is longer than {_MAX_ID_LENGTH} characters; "
            "use a shorter task id"
        )
    if value.endswith(".") or value.split(".")[0].lower() in _RESERVED_FILE_NAMES:
        raise ValueError(
            f"{value!r} cannot be a file name on every system; pick another task id"
        )
    return value


def _check_phase_name(value: str) -> str:
    if not _PHASE_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a phase name; use lowercase letters, digits and "
            "'_' (like refinement)"
        )
    return value


def _check_name(value: str) -> str:
    if not _NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name; use letters, digits, '-', '_' and '.'"
        )
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _check_relative_path(value: str) -> str:
    pure = PurePosixPath(value)
    if not value.strip():
        raise ValueError("empty path; give a path like docs/specification.md")
    if "\x00" in value:
        raise ValueError(f"{value!r} holds a NUL character; remove it")
    if "\\" in value:
        raise ValueError(
            f"{value!r} is not a workspace path; use '/' separators, like "
            "docs/specification.md"
        )
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", value) or ".." in pure.parts:
        raise ValueError(
            f"{value!r} leaves the workspace; give a path relative to the "
            "workspace root"
        )
    return value


def _check_unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice; list it once")
        seen.add(value)
    return values


TaskId = Annotated[str, AfterValidator(_check_task_id)]
PhaseName = Annotated[str, AfterValidator(_check_phase_name)]
WorkspacePath = Annotated[str, AfterValidator(_check_relative_path)]

# The design names the field `schema`, which is also a deprecated classmethod of
# BaseModel; the field deliberately replaces it on Task instances.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message='Field name "schema"', category=UserWarning
    )

    class Task(BaseModel):
        """One task of the backlog, as its YAML file states it.

        Unknown fields are refused so that a misspelt key is reported instead of
        ignored. List fields are tuples, so a loaded task cannot be changed.
        """

        model_config = ConfigDict(frozen=True, extra="forbid")

        id: TaskId
        title: Annotated[str, AfterValidator(_check_not_blank)]
        description: str = ""
        specialist: Annotated[str, AfterValidator(_check_name)] | None = None
        status: TaskStatus = TaskStatus.NEW
        priority: Priority = Priority.MEDIUM
        estimated_hours: float | None = Field(
            default=None, ge=0, strict=True, allow_inf_nan=False
        )
        depends_on: tuple[TaskId, ...] = ()
        references: tuple[WorkspacePath, ...] = ()
        acceptance_criteria: tuple[str, ...] = ()
        phases: tuple[PhaseName, ...] | None = None
        schema: dict[str, Any] | None = None
        tune: TuneRequest | None = None
        blocked_reason: str | None = None
        workflow: Annotated[str, AfterValidator(_check_name)] | None = None
        require_approval: tuple[PhaseName, ...] | None = None

        @field_validator("depends_on")
        @classmethod
        def _depends_on_others(
            cls, value: tuple[str, ...], info: ValidationInfo
        ) -> tuple[str, ...]:
            own_id = info.data.get("id")
            if own_id is not None and own_id in value:
                raise ValueError(
                    f"task {own_id} depends on itself; remove {own_id} from depends_on"
                )
            return _check_unique(value)

        @field_validator("phases")
        @classmethod
        def _phases_not_empty(
            cls, value: tuple[str, ...] | None
        ) -> tuple[str, ...] | None:
            if value is not None and not value:
                raise ValueError(
                    "must name at least one phase; leave it out to run every phase"
                )
            return value if value is None else _check_unique(value)

        @field_validator("require_approval")
        @classmethod
        def _approvals_unique(
            cls, value: tuple[str, ...] | None
        ) -> tuple[str, ...] | None:
            return value if value is None else _check_unique(value)


@dataclass(frozen=True)
class TaskFile:
    """A task together with the file it was read from."""

    path: Path
    task: Task

    @property
    def id(self) -> str:
        return self.task.id


@dataclass(frozen=True)
class _ParsedFile:
    task_file: TaskFile
    root: MappingNode
    data: dict[Any, Any]


def load_task(path: Path) -> TaskFile:
    """Read and validate one task file.

    A file read again with the same bytes at the same path is not parsed
    again: the task read before is returned (a copy where it holds a mutable
    `schema`). Every check on the file itself runs on every call.

    Args:
        path: the task file; its name without the suffix must equal its `id`.

    Returns:
        The validated task and its path.

    Raises:
        BacklogError: the file is a symbolic link or not a regular file,
            cannot be read, is larger than 1 MiB, is not
            valid YAML, nests deeper than 32 levels, is not a mapping, has a
            field that is unknown or of the wrong kind, or its name differs
            from its id. The one-line message names the file, and the line and
            field where known.
    """
    return _load_bytes(path, _read_bytes(path))


def _load_bytes(path: Path, data: bytes) -> TaskFile:
    known = _TASKS_READ.get(path, data)
    if known is not None:
        return known

    task_file = _parse_task(path, _decoded(path, data)).task_file
    _TASKS_READ.put(path, data, task_file)
    return _unshared(task_file)


def _unshared(task_file: TaskFile) -> TaskFile:
    # Everything in a Task is immutable except the `schema` mapping; a caller
    # gets its own, so that changing it cannot change what later reads return.
    schema = task_file.task.schema
    if schema is None:
        return task_file
    task = task_file.task.model_copy(update={"schema": copy.deepcopy(schema)})
    return TaskFile(task_file.path, task)


class _TaskFileCache:
    """Task files already read, by path, kept with the exact bytes they hold.

    A hit needs the very same bytes at the very same path, from which parsing
    would give the very same task; the least recently used entries go first.
    """

    def __init__(self, *, max_files: int, max_bytes: int) -> None:
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: dict[Path, tuple[bytes, TaskFile]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, data: bytes) -> TaskFile | None:
        with self._lock:
            entry = self._entries.pop(path, None)
            if entry is None:
                return None
            if entry[0] != data:
                self._bytes -= len(entry[0])
                return None
            self._entries[path] = entry
        return _unshared(entry[1])

    def put(self, path: Path, data: bytes, task_file: TaskFile) -> None:
        if len(data) > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop(path, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._entries[path] = (data, task_file)
            self._bytes += len(data)
            while len(self._entries) > self._max_files or self._bytes > self._max_bytes:
                oldest = next(iter(self._entries))
                self._bytes -= len(self._entries.pop(oldest)[0])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


# Runs read the same task files many times; a large backlog fits whole.
_TASKS_READ = _TaskFileCache(max_files=50_000, max_bytes=64 * 1024 * 1024)

# Errors that make a path simply not a file, as for `Path.is_file`.
_MISSING_ERRORS = {errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP}
_READ_CHUNK = 64 * 1024
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _read_bytes(path: Path, entry: os.DirEntry[str] | None = None) -> bytes:
    try:
        if entry is not None:
            # what the folder listing already told, without asking again
            is_link = entry.is_symlink()
            is_regular = not is_link and entry.is_file(follow_symlinks=False)
        else:
            mode = os.lstat(path).st_mode
            is_link, is_regular = stat.S_ISLNK(mode), stat.S_ISREG(mode)
    except OSError as exc:
        if exc.errno not in _MISSING_ERRORS:
            raise _unreadable(path, exc) from exc
        is_link = is_regular = False
    except ValueError:
        is_link = is_regular = False

    # a link could lead out of the workspace, and a status update would
    # then replace the link instead of the file it pointed to
    if is_link:
        raise _symbolic_link(path)
    if not is_regular:
        raise _not_regular(path)
    return _read_regular_file(path)


def _read_regular_file(path: Path) -> bytes:
    """The bytes of a file seen to be regular, up to one byte over the limit.

    The file is opened without following a link and without waiting on a
    pipe, and checked again once open, so a file swapped in meanwhile is
    refused as well.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _not_regular(path)

        # the size known now and one byte more, then until the end or the limit
        limit = MAX_TASK_FILE_BYTES + 1
        want = max(status.st_size, 0) + 1
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(want, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            want = _READ_CHUNK
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _symbolic_link(path: Path) -> BacklogError:
    return BacklogError(
        "is a symbolic link; a task file must be a regular file in the backlog folder",
        paths=[path],
    )


def _not_regular(path: Path) -> BacklogError:
    return BacklogError(
        "not a regular file; a task file must be a YAML file", paths=[path]
    )


def _unreadable(path: Path, exc: OSError) -> BacklogError:
    return BacklogError(
        f"cannot read the task file: {exc.strerror or exc}", paths=[path]
    )


def _read_text(path: Path) -> str:
    return _decoded(path, _read_bytes(path))


def _decoded(path: Path, data: bytes) -> str:
    if len(data) > MAX_TASK_FILE_BYTES:
        raise BacklogError(
            "file is larger than 1 MiB; a task file must be smaller", paths=[path]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BacklogError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            paths=[path],
        ) from exc


def _parse_task(path: Path, text: str) -> _ParsedFile:
    root, data = _parse_yaml(path, text)
    if root is None:
        raise BacklogError(
            "the file is empty; expected a mapping of task fields", paths=[path]
        )
    if not isinstance(root, MappingNode) or not isinstance(data, dict):
        raise BacklogError(
            f"expected a mapping of task fields, got {_yaml_kind(data)}",
            paths=[path],
            line=root.start_mark.line + 1,
            column=root.start_mark.column + 1,
        )

    try:
        task = Task.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, root, exc) from None

    if path.stem != task.id:
        id_node = _node_at(root, ("id",))
        raise BacklogError(
            f"file name {path.stem!r} differs from id {task.id!r}; rename the file "
            f"to {task.id}{path.suffix} or change the id",
            paths=[path],
            field="id",
            **_mark_of(id_node),
        )
    return _ParsedFile(TaskFile(path, task), root, data)


def _parse_yaml(path: Path, text: str) -> tuple[Node | None, Any]:
    def error(message: str, line: int | None, column: int | None) -> BacklogError:
        return BacklogError(message, paths=[path], line=line, column=column)

    return load_yaml(
        text, error, max_depth=MAX_TASK_FILE_DEPTH, max_nodes=_MAX_TASK_FILE_NODES
    )


_TYPE_ERRORS = {
    "string_type": "expected a string",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
}


def _validation_error(
    path: Path, root: MappingNode, exc: ValidationError
) -> BacklogError:
    errors = exc.errors(include_url=False)
    error = errors[0]
    loc = tuple(error["loc"])
    field = _dotted(loc)
    kind = error["type"]
    given = error.get("input")
    ctx = error.get("ctx") or {}

    node = _node_at(root, loc)
    if kind == "extra_forbidden":
        node = _key_node_at(root, loc)
        known = ", ".join(Task.model_fields)
        text = f"unknown field {loc[-1]!r}; known fields are {known}"
    elif kind == "invalid_key":
        node = _key_node_at(root, loc)
        known = ", ".join(Task.model_fields)
        text = f"key {given!r} is not a field name; known fields are {known}"
    elif kind == "missing":
        text = f"{field}: required field is missing"
    elif kind == "enum":
        allowed = _allowed_values(loc)
        text = f"{field}: expected one of {allowed}, got {_describe(given)}"
    elif kind in _TYPE_ERRORS:
        text = f"{field}: {_TYPE_ERRORS[kind]}, got {_describe(given)}"
    elif kind == "greater_than_equal":
        text = f"{field}: must be {ctx['ge']:g} or more, got {_describe(given)}"
    elif kind == "finite_number":
        text = f"{field}: must be a finite number, got {_describe(given)}"
    elif kind == "value_error":
        text = f"{field}: {ctx['error']}"
    else:
        text = f"{field}: {error['msg']}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"

    return BacklogError(text, paths=[path], field=field, **_mark_of(node))


def _allowed_values(loc: tuple[Any, ...]) -> str:
    enum = TaskStatus if loc and loc[0] == "status" else Priority
    return ", ".join(member.value for member in enum)


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _describe(value: Any) -> str:
    if isinstance(value, list | dict) or value is None:
        return _yaml_kind(value)
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{_yaml_kind(value)} {shown}"


def _node_at(root: Node, loc: Sequence[Any]) -> Node | None:
    node: Node | None = root
    for part in loc:
        if isinstance(node, MappingNode):
            node = next(
                (
                    value
                    for key, value in node.value
                    if isinstance(key, ScalarNode) and key.value == str(part)
                ),
                None,
            )
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node


def _key_node_at(root: Node, loc: Sequence[Any]) -> Node | None:
    parent = _node_at(root, loc[:-1])
    if not isinstance(parent, MappingNode):
        return None
    for key, _value in parent.value:
        if isinstance(key, ScalarNode) and key.value == str(loc[-1]):
            return key
    return None


def _mark_of(node: Node | None) -> dict[str, int]:
    if node is None:
        return {}
    return {"line": node.start_mark.line + 1, "column": node.start_mark.column + 1}


class Backlog:
    """Every task file of a backlog folder, checked as a dependency graph.

    Constructing a backlog refuses duplicate ids, dependencies on tasks that do
    not exist and dependency cycles, so a `Backlog` is always a valid graph.
    """

    def __init__(self, directory: Path, task_files: Iterable[TaskFile]) -> None:
        """Check the tasks as a graph.

        Args:
            directory: the folder the tasks come from; named in messages.
            task_files: the loaded task files, in the order to report errors.

        Raises:
            BacklogError: two files share an id (or ids differing only in letter
                case), or a task depends on a task that does not exist.
            CycleError: tasks depend on each other in a loop.
        """
        files = list(task_files)
        self.directory = directory

        _refuse_duplicate_ids(files)
        self._by_id = {tf.task.id: tf for tf in sorted(files, key=lambda tf: tf.id)}
        self._dependents: dict[str, list[str]] = {
            task_id: [] for task_id in self._by_id
        }
        for task_file in files:
            for dependency in task_file.task.depends_on:
                if dependency not in self._by_id:
                    raise BacklogError(
                        f"depends_on: unknown task {dependency!r}; add "
                        f"{directory / dependency}.yaml or remove it from depends_on",
                        paths=[task_file.path],
                        task_ids=[task_file.id, dependency],
                        field="depends_on",
                    )
                self._dependents[dependency].append(task_file.id)
        for dependents in self._dependents.values():
            dependents.sort()

        cycle = _find_cycle(self._by_id)
        if cycle is not None:
            loop = " -> ".join([*cycle, cycle[0]])
            raise CycleError(
                f"dependency cycle: {loop}; remove one of these dependencies",
                paths=[self._by_id[task_id].path for task_id in cycle],
                task_ids=cycle,
            )

    @classmethod
    def load(cls, backlog_dir: Path) -> Backlog:
        """Load every `*.yaml` and `*.yml` file of a folder.

        Files are read in name order and the first invalid one raises, so the
        same folder always gives the same error. Hidden files are skipped. A
        folder that does not exist is an empty backlog.

        Args:
            backlog_dir: the backlog folder, usually `docs/backlog`.

        Raises:
            BacklogError: a file is invalid (see `load_task`) or the tasks do
                not form a valid graph (see `Backlog`).
        """
        if not backlog_dir.exists():
            log.debug("backlog_missing", path=str(backlog_dir))
            return cls(backlog_dir, [])
        if not backlog_dir.is_dir():
            raise BacklogError(
                "not a folder; the backlog must be a folder of task files",
                paths=[backlog_dir],
            )

        with os.scandir(backlog_dir) as listing:
            entries = sorted(
                (
                    entry
                    for entry in listing
                    if entry.name.endswith(_TASK_SUFFIXES)
                    and not entry.name.startswith(".")
                ),
                key=lambda entry: os.path.normcase(entry.name),
            )
        task_files = []
        for entry in entries:
            path = backlog_dir / entry.name
            task_files.append(_load_bytes(path, _read_bytes(path, entry)))
        backlog = cls(backlog_dir, task_files)
        log.debug("backlog_loaded", path=str(backlog_dir), tasks=len(entries))
        return backlog

    @property
    def tasks(self) -> list[TaskFile]:
        """Every task, in id order."""
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_id

    def get(self, task_id: str) -> TaskFile:
        """Return the task with this id.

        Raises:
            BacklogError: no task has this id.
        """
        try:
            return self._by_id[task_id]
        except KeyError:
            raise BacklogError(
                f"unknown task {task_id!r}: no {task_id}.yaml or {task_id}.yml in "
                f"{self.directory}; check the id with `sparc backlog`",
                task_ids=[task_id],
            ) from None

    def ready(self) -> list[TaskFile]:
        """Tasks that can start now, most urgent first, then by id.

        A task is ready when its status is NEW or READY and every task it
        depends on is COMPLETE.
        """
        ready = [tf for tf in self._by_id.values() if self._ready(tf)]
        return sorted(ready, key=_urgency)

    def is_ready(self, task_id: str) -> bool:
        """Whether the task can start now (see `ready`)."""
        return self._ready(self.get(task_id))

    def blocked_by(self, task_id: str) -> list[str]:
        """The ids of the task's dependencies that are not COMPLETE yet."""
        return [
            dependency
            for dependency in self.get(task_id).task.depends_on
            if self._by_id[dependency].task.status is not TaskStatus.COMPLETE
        ]

    def dependents(self, task_id: str) -> list[str]:
        """The ids of the tasks that depend directly on this one, in id order."""
        self.get(task_id)
        return list(self._dependents[task_id])

    def topological_order(self) -> list[str]:
        """Every task id, each after the tasks it depends on.

        Among tasks whose dependencies are all placed, the most urgent comes
        first, then the smallest id, so the order is always the same.
        """
        waiting = {tid: len(tf.task.depends_on) for tid, tf in self._by_id.items()}
        heap = [_urgency(self._by_id[tid]) for tid, n in waiting.items() if n == 0]
        heapq.heapify(heap)

        order: list[str] = []
        while heap:
            _rank, task_id = heapq.heappop(heap)
            order.append(task_id)
            for dependent in self._dependents[task_id]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    heapq.heappush(heap, _urgency(self._by_id[dependent]))
        return order

    def _ready(self, task_file: TaskFile) -> bool:
        task = task_file.task
        return task.status in (TaskStatus.NEW, TaskStatus.READY) and not any(
            self._by_id[dependency].task.status is not TaskStatus.COMPLETE
            for dependency in task.depends_on
        )


def _urgency(task_file: TaskFile) -> tuple[int, str]:
    return (task_file.task.priority.rank, task_file.task.id)


def _refuse_duplicate_ids(files: Sequence[TaskFile]) -> None:
    if len({task_file.id.casefold() for task_file in files}) == len(files):
        return

    groups: dict[str, list[TaskFile]] = {}
    for task_file in files:
        groups.setdefault(task_file.id.casefold(), []).append(task_file)

    for group in groups.values():
        if len(group) < 2:
            continue
        ids = sorted({tf.id for tf in group})
        if len(ids) == 1:
            message = f"duplicate task id {ids[0]!r}; keep one file per task"
        else:
            shown = " and ".join(repr(task_id) for task_id in ids)
            message = (
                f"task ids {shown} differ only in letter case, which some file "
                "systems cannot tell apart; rename one"
            )
        raise BacklogError(
            message, paths=[tf.path for tf in group], task_ids=[tf.id for tf in group]
        )


def _find_cycle(by_id: dict[str, TaskFile]) -> list[str] | None:
    # Iterative depth-first search, so a long chain cannot hit the recursion
    # limit; the loop found is rotated to start at its smallest id.
    done: set[str] = set()
    for start in sorted(by_id):
        if start in done:
            continue
        path = [start]
        on_path = {start}
        stack = [iter(by_id[start].task.depends_on)]
        while stack:
            for dependency in stack[-1]:
                if dependency in on_path:
                    cycle = path[path.index(dependency) :]
                    first = cycle.index(min(cycle))
                    return cycle[first:] + cycle[:first]
                if dependency not in done:
                    path.append(dependency)
                    on_path.add(dependency)
                    stack.append(iter(by_id[dependency].task.depends_on))
                    break
            else:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
    return None


def top_level_key_line(path: Path, key: str) -> int | None:
    """The 1-based line of a task file's top-level `key`, None when absent.

    For errors found after loading (a phase the workflow lacks) that should
    still point at the line to change.
    """
    try:
        root, _ = _parse_yaml(path, _read_text(path))
    except BacklogError:
        return None
    node = None if root is None else _key_node_at(root, (key,))
    return None if node is None else node.start_mark.line + 1


def set_status(path: Path, status: TaskStatus, *, reason: str | None = None) -> None:
    """Change a task file's status, leaving every other byte as it was.

    The value of the top-level `status` key is replaced in place (the key is
    appended when missing). With `reason`, the top-level `blocked_reason` is
    set the same way to a double-quoted string. Nothing is removed: a reason
    stays in the file when the task is later unblocked. The result is read back
    and checked before the file is replaced atomically.

    Args:
        path: the task file.
        status: the new status.
        reason: why the task is blocked; written to `blocked_reason`.

    Raises:
        BacklogError: the file is not a valid task file, its `status` or
            `blocked_reason` is not a plain or quoted scalar, or the edited file
            would not read back as the same task with the new values. The file
            is left untouched.
    """
    status = TaskStatus(status)
    text = _read_text(path)
    parsed = _parse_task(path, text)

    values = {"status": status.value}
    if reason is not None:
        values["blocked_reason"] = _double_quoted(reason)
    new_text = _with_top_level_values(path, text, parsed.root, values)

    updated = _check_update(path, parsed, new_text, status, reason)
    changed = write_text_atomic(path, new_text)
    # the next read of these bytes need not parse them again
    _TASKS_READ.put(path, new_text.encode("utf-8"), updated.task_file)
    log.info(
        "task_status_set",
        path=str(path),
        task_id=parsed.task_file.id,
        status=status.value,
        changed=changed,
    )


def _with_top_level_values(
    path: Path, text: str, root: MappingNode, values: dict[str, str]
) -> str:
    # Each edit is (start, end, replacement) in character offsets of `text`.
    edits: list[tuple[int, int, str]] = []
    missing: dict[str, str] = {}
    for key, rendered in values.items():
        pair = next(
            (
                (k, v)
                for k, v in root.value
                if isinstance(k, ScalarNode) and k.value == key
            ),
            None,
        )
        if pair is None:
            missing[key] = rendered
        else:
            edits.append(_replace_value(path, text, key, *pair, rendered))
    if missing:
        edits.append(_append_entries(text, root, missing))

    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _replace_value(
    path: Path, text: str, key: str, key_node: Node, value: Node, rendered: str
) -> tuple[int, int, str]:
    start, end = value.start_mark.index, value.end_mark.index
    # An alias's node lives where its anchor is; editing it would change the
    # anchored value instead of this key's.
    in_place = start >= key_node.end_mark.index
    if not (isinstance(value, ScalarNode) and value.style in (None, "'", '"')):
        in_place = False
    if not in_place:
        raise BacklogError(
            f"{key}: cannot rewrite this value in place; write it as a plain or "
            "quoted value on the key's line",
            paths=[path],
            field=key,
            **_mark_of(value),
        )

    if start == end and text[start - 1 : start] == ":":
        rendered = " " + rendered
    return (start, end, rendered)


def _append_entries(
    text: str, root: MappingNode, entries: dict[str, str]
) -> tuple[int, int, str]:
    if root.flow_style:
        # `{id: A, title: B}`: add the entries after the last value, inside the
        # braces, where a trailing comment cannot swallow them. A valid task
        # has at least an id and a title, so there is a last value.
        after = root.value[-1][1].end_mark.index
        inserted = "".join(f", {key}: {value}" for key, value in entries.items())
        return (after, after, inserted)

    if "\r\n" in text:
        newline = "\r\n"
    elif "\r" in text:
        newline = "\r"
    else:
        newline = "\n"
    indent = " " * root.start_mark.column
    lines = [f"{indent}{key}: {value}" for key, value in entries.items()]
    if text.endswith(("\n", "\r")):
        inserted = newline.join(lines) + newline
    else:
        inserted = newline + newline.join(lines)
    return (len(text), len(text), inserted)


def _double_quoted(value: str) -> str:
    """Render `value` as a one-line YAML double-quoted string."""
    parts = ['"']
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            parts.append("\\" + char)
        elif char == "\n":
            parts.append("\\n")
        elif char == "\t":
            parts.append("\\t")
        elif char == "\r":
            parts.append("\\r")
        elif 0x20 <= code <= 0x7E or _yaml_printable_inline(code):
            parts.append(char)
        elif code <= 0xFFFF:
            parts.append(f"\\u{code:04X}")
        else:
            parts.append(f"\\U{code:08X}")
    parts.append('"')
    return "".join(parts)


def _yaml_printable_inline(code: int) -> bool:
    # Printable for YAML and not a line break (U+2028, U+2029) or a byte order
    # mark, which readers may drop.
    if code in (0x2028, 0x2029, 0xFEFF):
        return False
    return 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


def _check_update(
    path: Path,
    before: _ParsedFile,
    new_text: str,
    status: TaskStatus,
    reason: str | None,
) -> _ParsedFile:
    try:
        after = _parse_task(path, new_text)
    except BacklogError as exc:
        raise BacklogError(
            f"could not set status {status.value} in place; the edited file would "
            f"not load: {exc.message}",
            paths=[path],
        ) from exc

    edited = {"status", "blocked_reason"} if reason is not None else {"status"}
    kept_before = {k: v for k, v in before.data.items() if k not in edited}
    kept_after = {k: v for k, v in after.data.items() if k not in edited}
    problems = []
    if not _same(kept_before, kept_after):
        problems.append("other fields changed")
    if after.task_file.task.status is not status:
        problems.append(f"status reads back as {after.task_file.task.status.value}")
    if reason is not None and after.task_file.task.blocked_reason != reason:
        problems.append("blocked_reason reads back differently")
    if problems:
        raise BacklogError(
            f"could not set status {status.value} in place: {'; '.join(problems)}; "
            "edit the file by hand",
            paths=[path],
        )
    return after


def _same(left: Any, right: Any) -> bool:
    # NaN is not equal to itself, yet two readings of `.nan` are the same value.
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, dict) and isinstance(right, dict):
        return list(left) == list(right) and all(
            _same(left[key], right[key]) for key in left
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    return type(left) is type(right) and left == right


def format_backlog(backlog: Backlog) -> str:
    """Render the backlog as a plain text table for `sparc backlog`.

    One row per task in id order (id, status, priority, title, dependencies),
    a blocked task's reason on an indented line below its row, then a line
    listing the ready tasks in the order they would be picked. The text ends
    with a newline.
    """
    header = ("ID", "STATUS", "PRIORITY", "TITLE", "DEPENDS ON")
    rows = [
        (
            task.id,
            task.status.value,
            task.priority.value,
            " ".join(task.title.split()),
            ", ".join(task.depends_on) or "-",
        )
        for task in (tf.task for tf in backlog.tasks)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def render(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()

    lines = [render(header)]
    for task_file, row in zip(backlog.tasks, rows, strict=True):
        lines.append(render(row))
        task = task_file.task
        if task.status is TaskStatus.BLOCKED and task.blocked_reason:
            lines.append(f"    blocked: {' '.join(task.blocked_reason.split())}")
    if not rows:
        lines.append(f"(no tasks in {backlog.directory})")

    ready = ", ".join(tf.id for tf in backlog.ready()) or "none"
    lines.append(f"ready: {ready}")
    return "\n".join(lines) + "\n"
