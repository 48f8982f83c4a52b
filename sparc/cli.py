"""The `sparc` command line. It alone configures logging and speaks to the user."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import structlog
from click.core import ParameterSource

from sparc.errors import SparcError, paths_relative_to
from sparc.redact import redact_data, redact_event, redact_text

if TYPE_CHECKING:
    from sparc.runner import Runner, RunOutcome

EXIT_DONE, EXIT_BLOCKED, EXIT_INPUT = 0, 1, 2


def configure_logging(level: int, log_format: str) -> None:
    """Console lines on stderr, or JSON lines for log shippers."""
    renderer: structlog.types.Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # database passwords and API keys never reach a log line
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class _SparcGroup(click.Group):
    """Turns sparc's own errors into one line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SparcError as exc:
            click.echo(f"error: {redact_text(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_SparcGroup)
@click.option(
    "-C",
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="The workspace folder (default: the nearest folder at or above the "
    "current one holding .sparc/config.yaml, else the current folder).",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="How log events are written to stderr.",
)
@click.option(
    "-v", "--verbose", count=True, help="More log events (-v info, -vv debug)."
)
@click.version_option(package_name="sparc")
@click.pass_context
def main(ctx: click.Context, workspace: Path, log_format: str, verbose: int) -> None:
    """Run the SPARC method over a backlog of task files."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    configure_logging(level, log_format)
    given = ctx.get_parameter_source("workspace") is not ParameterSource.DEFAULT
    if not given and ctx.invoked_subcommand != "init":
        workspace = _enclosing_workspace(Path.cwd()) or workspace
    ctx.with_resource(paths_relative_to(workspace))
    ctx.obj = workspace


def _enclosing_workspace(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding a sparc configuration.

    Like git finding its repository, so a command works from any subfolder.
    """
    from sparc.config import CONFIG_FILE

    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


@main.command()
@click.argument(
    "folder", required=False, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--project", help="Python package name of the project (src/<project>).")
@click.option(
    "--identity",
    metavar="'NAME <EMAIL>'",
    help="Commit identity for sparc, written to .sparc/config.yaml.",
)
@click.pass_obj
def init(
    workspace: Path, folder: Path | None, project: str | None, identity: str | None
) -> None:
    """Lay down a workspace and make it a git repository."""
    from sparc.init import init_workspace

    result = init_workspace(folder or workspace, project=project, identity=identity)
    for path in result.created:
        click.echo(f"created {path}")
    if result.commit:
        click.echo(f"committed {result.commit[:10]}")
    click.echo(f"workspace ready: {result.root}")


@main.command()
@click.pass_obj
def backlog(workspace: Path) -> None:
    """Show tasks, their status and the ready set."""
    from sparc.backlog import Backlog, format_backlog
    from sparc.runner import WAITING_DIR, read_waiting
    from sparc.workspace import Workspace

    ws = Workspace.at(workspace)
    click.echo(format_backlog(Backlog.load(ws.backlog_dir)), nl=False)
    for task_id, record in read_waiting(ws.state_dir / WAITING_DIR).items():
        click.echo(f"{task_id} {record.get('message', 'waiting for approval')}")


@main.command()
@click.argument("task_id")
@click.pass_context
def run(ctx: click.Context, task_id: str) -> None:
    """Run one task through its phases."""
    _finish_one(ctx, lambda runner: runner.run(task_id))


@main.command()
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Tasks run at once where their files cannot overlap (default: CPU count).",
)
@click.option("--fail-fast", is_flag=True, help="Start no new task after one blocks.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a JSON report of every task run to this file.",
)
@click.option("--server", metavar="URL", help="Run the tasks on this LangGraph Server.")
@click.option(
    "--server-workspace",
    metavar="PATH",
    help="The workspace's path as the server sees it (with --server).",
)
@click.pass_context
def batch(
    ctx: click.Context,
    workers: int | None,
    fail_fast: bool,
    report: Path | None,
    server: str | None,
    server_workspace: str | None,
) -> None:
    """Run every ready task until none is left.

    Exit 0 when all complete, 1 when some ended blocked, 2 on bad input.
    """
    if server:
        _batch_on_server(ctx, server, server_workspace, report)
        return

    from sparc.batch import ProgressDisplay, planned_tasks, run_batch
    from sparc.runner import Runner

    with Runner.open(ctx.obj) as runner:
        display = ProgressDisplay(
            sys.stdout,
            total=len(planned_tasks(runner.backlog())),
            terminal=sys.stdout.isatty(),
        )
        try:
            result = run_batch(
                runner,
                workers=workers,
                fail_fast=fail_fast,
                on_start=display.started,
                on_finish=display.finished,
            )
        finally:
            display.close()

    click.echo(result.summary())
    if report:
        document = redact_data(result.as_report())
        report.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    ctx.exit(result.exit_code)


def _batch_on_server(
    ctx: click.Context, url: str, server_workspace: str | None, report: Path | None
) -> None:
    from sparc.server import submit_backlog

    outcomes = submit_backlog(
        url,
        ctx.obj,
        server_workspace=server_workspace,
        on_finish=lambda o: click.echo(_outcome_line(o)),
    )
    complete = sum(o.complete for o in outcomes)
    blocked = len(outcomes) - complete
    click.echo(f"{len(outcomes)} tasks run: {complete} COMPLETE, {blocked} BLOCKED")
    if report:
        document = redact_data({"tasks": [o.as_dict() for o in outcomes]})
        report.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    ctx.exit(EXIT_BLOCKED if blocked else EXIT_DONE)


@main.command()
@click.argument("task_id")
@click.pass_context
def resume(ctx: click.Context, task_id: str) -> None:
    """Finish a task whose run was interrupted (a crash, a kill)."""
    _finish_one(ctx, lambda runner: runner.resume(task_id))


@main.command()
@click.argument("task_id")
@click.pass_context
def approve(ctx: click.Context, task_id: str) -> None:
    """Approve the gate a task waits at; its run goes on."""
    _finish_one(ctx, lambda runner: runner.approve(task_id))


@main.command()
@click.argument("task_id")
@click.option("--reason", required=True, help="Why; written to the task file.")
@click.pass_context
def reject(ctx: click.Context, task_id: str, reason: str) -> None:
    """Refuse the gate a task waits at; the task ends BLOCKED with the reason."""
    _finish_one(ctx, lambda runner: runner.reject(task_id, reason))


@main.command()
@click.pass_obj
def graph(workspace: Path) -> None:
    """Print the workspace's SPARC graph as a Mermaid diagram."""
    from sparc.graph import build_graph
    from sparc.runner import open_runtime

    compiled = build_graph(open_runtime(workspace))
    click.echo(compiled.get_graph().draw_mermaid(), nl=False)


@main.command()
@click.pass_obj
def personas(workspace: Path) -> None:
    """Print which persona owns and which reviews each phase."""
    from sparc.personas import format_ownership_matrix
    from sparc.runner import personas_for
    from sparc.workspace import Workspace

    registry = personas_for(Workspace.at(workspace))
    click.echo(format_ownership_matrix(registry), nl=False)


def _finish_one(ctx: click.Context, act: Callable[[Runner], RunOutcome]) -> None:
    """Run one task action on the workspace, print its line, exit by outcome."""
    from sparc.runner import Runner

    with Runner.open(ctx.obj) as runner:
        outcome = act(runner)
    click.echo(_outcome_line(outcome))
    ctx.exit(_exit_code(outcome))


def _exit_code(outcome: object) -> int:
    from sparc.runner import RunOutcome

    assert isinstance(outcome, RunOutcome)
    return EXIT_DONE if outcome.complete or outcome.waiting else EXIT_BLOCKED


def _outcome_line(outcome: object) -> str:
    from sparc.runner import RunOutcome

    assert isinstance(outcome, RunOutcome)
    if outcome.complete:
        owners = sorted(
            {r["persona"] for r in outcome.record if r["role"] == "primary"}
        )
        commit = outcome.commit[:10] if outcome.commit else "no commit"
        return f"{outcome.task_id} COMPLETE {commit} ({', '.join(owners)})"
    if outcome.waiting:
        return f"{outcome.task_id} {outcome.reason}"
    return f"{outcome.task_id} BLOCKED: {outcome.reason}"


@main.command()
@click.pass_obj
def mcp(workspace: Path) -> None:
    """Serve the workspace's tools to an MCP client over stdio."""
    from sparc.mcp_server import run_stdio

    run_stdio(workspace)


def _register_commands() -> None:
    from sparc.adopt_command import adopt
    from sparc.review_command import review
    from sparc.tune_command import db

    main.add_command(review)
    db.add_command(adopt)
    main.add_command(db)


_register_commands()
