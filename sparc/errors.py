"""Errors raised by sparc.

Every error derives from `SparcError` and carries the data a caller needs. The
command line maps `exit_code` to the process exit status: 2 for bad input, 1 for
work that could not be completed.

    SparcError
     ├── InputError              bad input: a file, a field, a value (exit 2)
     │    ├── BacklogError        task files and their dependency graph
     │    ├── PersonaCardError    persona cards
     │    ├── WorkflowError       workflow files
     │    ├── ConfigError         .sparc/config.yaml
     │    ├── WorkspaceError      paths that leave the workspace, missing folders
     │    ├── DDLError            SQL that does not parse or is not supported
     │    └── AdoptionError       a live database a workspace cannot adopt
     ├── VerificationError       generated files failed on a database (exit 1)
     ├── GitError                the repository refused an operation (exit 1)
     └── EngineError             an engine failed while doing its work (exit 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

# Messages name files relative to this folder (the workspace) when it is set.
_display_root: ContextVar[Path | None] = ContextVar("sparc_display_root", default=None)


@contextmanager
def paths_relative_to(root: Path) -> Iterator[None]:
    """Within the block, error messages name files relative to `root`."""
    token = _display_root.set(root.resolve())
    try:
        yield
    finally:
        _display_root.reset(token)


def display_path(path: Path | str) -> str:
    """How an error message names a file."""
    root = _display_root.get()
    candidate = Path(path)
    if root is not None and candidate.is_absolute():
        # the last part is not resolved: a symlink is named where it is, not
        # where it leads
        named = candidate.parent.resolve() / candidate.name
        try:
            relative = named.relative_to(root).as_posix()
        except ValueError:
            relative = ""
        # the workspace itself is named as given, not as "."
        if relative and relative != ".":
            return relative
    return str(candidate)


class SparcError(Exception):
    """Base class of every error sparc raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(SparcError):
    """Input that sparc cannot use: names the file, and the line or field."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.field = field
        super().__init__(_located(message, self.path, line, column))


class BacklogError(InputError):
    """A task file or the backlog graph is invalid; `paths` names every file."""

    def __init__(
        self,
        message: str,
        *,
        paths: Sequence[Path | str] = (),
        task_ids: Sequence[str] = (),
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.task_ids = list(task_ids)
        first = self.paths[0] if len(self.paths) == 1 else None
        if len(self.paths) > 1:
            message = f"{message} ({', '.join(display_path(p) for p in self.paths)})"
        super().__init__(message, path=first, line=line, column=column, field=field)


class CycleError(BacklogError):
    """Tasks depend on each other in a loop; `task_ids` lists the loop in order."""


class PersonaCardError(InputError):
    """A persona card cannot be read."""


class WorkflowError(InputError):
    """A workflow file cannot be read."""


class ConfigError(InputError):
    """The workspace configuration is invalid or lacks a required setting."""


class WorkspaceError(InputError):
    """A path leaves the workspace or the workspace is not usable."""


class DDLError(InputError):
    """SQL that does not parse or uses something sparc cannot carry.

    `undefined_table` names the table a statement needs but no earlier
    statement created: the SQL is fine if another file defines it first.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        undefined_table: str | None = None,
    ) -> None:
        self.undefined_table = undefined_table
        super().__init__(message, path=path, line=line, column=column, field=field)


class AdoptionError(InputError):
    """A database cannot be adopted as it is; `reasons` lists each cause."""

    def __init__(self, message: str, *, reasons: Sequence[str] = ()) -> None:
        self.reasons = list(reasons)
        listed = "".join(f"\n  - {reason}" for reason in self.reasons)
        super().__init__(message + listed)


class VerificationError(SparcError):
    """Generated files failed a check on a real database."""

    def __init__(self, message: str, *, step: str, dialect: str) -> None:
        self.step = step
        self.dialect = dialect
        super().__init__(f"{dialect}: {step}: {message}")


class GitError(SparcError):
    """The git repository refused an operation or is in a state sparc cannot use."""


class RepositoryStateError(GitError):
    """The workspace is no repository, or one sparc will not work in as it is.

    Found before any work (a bare repository, a detached HEAD, a merge or
    rebase in progress): like bad input, the user fixes it and runs again.
    """

    exit_code = 2


class EngineError(SparcError):
    """An engine failed while working on a phase."""

    def __init__(self, message: str, *, task_id: str, phase: str, persona: str) -> None:
        self.task_id = task_id
        self.phase = phase
        self.persona = persona
        super().__init__(f"{task_id} {phase} ({persona}): {message}")


def _located(
    message: str, path: Path | None, line: int | None, column: int | None
) -> str:
    if path is None:
        return message
    where = display_path(path)
    if line is not None:
        where += f":{line}"
        if column is not None:
            where += f":{column}"
    return f"{where}: {message}"
