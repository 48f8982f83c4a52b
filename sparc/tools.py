"""sparc's main operations on one workspace, as tools for other agents.

`SparcOperations` holds the operations as plain methods returning JSON-ready
data: show the backlog, run a task, review a schema, forge a schema from DDL.
`langchain_tools` wraps them as LangChain tools for an agent built with
LangChain or LangGraph; `sparc.mcp_server` serves the same methods over the
Model Context Protocol. Every result passes through `redact_data`, so no
credential from the environment reaches the calling model.

Example:
    >>> from sparc.tools import langchain_tools
    >>> tools = langchain_tools("my-project")  # doctest: +SKIP
    >>> [t.name for t in tools]  # doctest: +SKIP
    ['show_backlog', 'run_task', 'forge_schema', 'review_schema']
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from sparc.backlog import Backlog
from sparc.config import load_config
from sparc.errors import InputError, SparcError
from sparc.redact import redact_data, redact_text
from sparc.workspace import Workspace

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

log = structlog.get_logger(__name__)

LINT_MODULE = "sparc.agents.hephaestus.lint"
FORGE_TASK_ID = "FORGE"

DESCRIPTIONS = {
    "show_backlog": (
        "List the workspace's tasks with their status, priority, title and "
        "dependencies, and which tasks are ready to run now."
    ),
    "run_task": (
        "Run one task of the backlog through its SPARC phases by its id (e.g. "
        "DB-001). The deliverables are written and committed with git when the "
        "task completes. Returns the status, the reason when blocked or waiting, "
        "the commit and the files written."
    ),
    "review_schema": (
        "Review a schema with Hephaestus's design and migration rules. `path` is "
        "workspace-relative: a .sql or .md DDL file, a models.py, the alembic "
        "folder, or '.' for the whole workspace. Returns the findings with code, "
        "severity, location, message and fix hint."
    ),
    "forge_schema": (
        "Preview what Hephaestus would produce for PostgreSQL DDL (CREATE TABLE, "
        "ALTER TABLE, CREATE INDEX ...) applied on top of the workspace's current "
        "models: the SQLAlchemy models, the next Alembic revision and the checks "
        "it passed. Nothing in the workspace is written."
    ),
}


def review_available() -> bool:
    """Whether the Hephaestus lint package is installed, so `review_schema` works."""
    try:
        return importlib.util.find_spec(LINT_MODULE) is not None
    except ModuleNotFoundError:
        return False


class SparcOperations:
    """The operations an agent may call on one workspace.

    Args:
        workspace: the workspace folder (as made by `sparc init`).
    """

    def __init__(self, workspace: Path | str) -> None:
        self.workspace = Workspace.at(workspace)

    def names(self) -> list[str]:
        """The operations available here; review only when lint is installed."""
        found = ["show_backlog", "run_task", "forge_schema"]
        return [*found, "review_schema"] if review_available() else found

    def operation(self, name: str) -> Callable[..., dict[str, Any]]:
        """The bound method of an operation by its tool name."""
        if name not in self.names():
            raise InputError(f"no tool named {name!r}; the tools are {self.names()}")
        method: Callable[..., dict[str, Any]] = getattr(self, name)
        return method

    def show_backlog(self) -> dict[str, Any]:
        """The tasks and the ready set.

        Raises:
            InputError: a task file or the dependency graph is invalid.
        """
        backlog = Backlog.load(self.workspace.backlog_dir)
        tasks = [
            {
                "id": tf.task.id,
                "title": tf.task.title,
                "status": tf.task.status.value,
                "priority": tf.task.priority.value,
                "depends_on": list(tf.task.depends_on),
                "waiting_for": backlog.blocked_by(tf.task.id),
                "blocked_reason": tf.task.blocked_reason or "",
            }
            for tf in sorted(backlog.tasks, key=lambda tf: tf.task.id)
        ]
        ready = [tf.task.id for tf in backlog.ready()]
        return redact_data({"tasks": tasks, "ready": ready})

    def run_task(self, task_id: str) -> dict[str, Any]:
        """Run one task as `sparc run` does and return its outcome.

        Raises:
            InputError: the workspace or task is invalid.
            BacklogError: the task is unknown, complete, or waits for others.
        """
        from sparc.runner import Runner

        with Runner.open(self.workspace.root) as runner:
            outcome = runner.run(task_id)
        log.info("tool_task_run", task_id=task_id, status=outcome.status)
        return redact_data(outcome.as_dict())

    def review_schema(self, path: str = ".") -> dict[str, Any]:
        """Lint a schema file, the alembic folder or the whole workspace.

        Raises:
            WorkspaceError: `path` leaves the workspace.
            InputError: `path` is not something the linter reads.
            DDLError: a schema file does not parse.
        """
        from sparc.agents.hephaestus import lint

        target = (
            self.workspace.root
            if path.strip() in ("", ".")
            else self.workspace.resolve(path, field="path")
        )
        report = lint.lint_path(target)
        findings = [
            {**f.as_dict(), "location": self._shown(f.location)}
            for f in report.findings
        ]
        return redact_data(
            {
                "findings": findings,
                "errors": sum(f["severity"] == "error" for f in findings),
                "sources": [self._shown(s) for s in report.sources],
                "suppressed": report.suppressed,
            }
        )

    def forge_schema(self, ddl: str, title: str = "Forged schema") -> dict[str, Any]:
        """Render models and the next revision for `ddl` without writing them.

        Raises:
            DDLError: the DDL does not parse; the message gives line and column.
            VerificationError: the revision chain failed on a scratch database.
        """
        from sparc.agents.hephaestus.ddl import parse_sql
        from sparc.agents.hephaestus.forge import forge, models_relative_path
        from sparc.agents.hephaestus.models_render import spec_from_models
        from sparc.agents.hephaestus.spec import SchemaSpec

        project = load_config(self.workspace.root).project
        current = self.workspace.root / models_relative_path(project)
        base = spec_from_models(current) if current.is_file() else SchemaSpec()
        spec = parse_sql(ddl, source="ddl", base=base).spec

        result = forge(
            self.workspace.root,
            project=project,
            task_id=FORGE_TASK_ID,
            title=title,
            spec=spec,
        )
        return redact_data(
            {
                "files": dict(sorted(result.files.items())),
                "revision": result.revision.file_name if result.revision else None,
                "tables": sorted(t.name for t in spec.tables),
                "report": list(result.report),
            }
        )

    def _shown(self, where: str) -> str:
        """A path or `path:line` inside the workspace, made workspace-relative."""
        root = f"{self.workspace.root.as_posix()}/"
        if where.startswith(root):
            return where[len(root) :]
        return "." if where == root.rstrip("/") else where


def langchain_tools(workspace: Path | str) -> list[BaseTool]:
    """The workspace operations as LangChain `StructuredTool`s.

    A sparc error (bad input, unknown task, a DDL error with its line) comes
    back to the model as the tool's text answer instead of raising, so an agent
    can correct itself.

    Args:
        workspace: the workspace folder.

    Returns:
        One tool per operation in `SparcOperations.names()`.
    """
    from langchain_core.tools import StructuredTool

    operations = SparcOperations(workspace)
    return [
        StructuredTool.from_function(
            func=_reporting_errors(operations.operation(name)),
            name=name,
            description=DESCRIPTIONS[name],
            handle_tool_error=True,
        )
        for name in operations.names()
    ]


def _reporting_errors(
    method: Callable[..., dict[str, Any]],
) -> Callable[..., dict[str, Any]]:
    from langchain_core.tools import ToolException

    # wraps keeps the signature, from which StructuredTool reads the arguments
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return method(*args, **kwargs)
        except SparcError as exc:
            raise ToolException(redact_text(f"error: {exc}")) from exc

    return call
