"""`sparc db tune URL`: Hephaestus reads a live PostgreSQL and proposes proven fixes."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def db() -> None:
    """Work with a live database."""


@db.command()
@click.argument("url", envvar="DATABASE_URL")
@click.option(
    "--workload",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="SQL statements to tune for (default: the slowest in pg_stat_statements).",
)
@click.option(
    "--hypothetical",
    is_flag=True,
    help="Ask the planner about hypothetical indexes (hypopg) in this session; "
    "without it the database is only read.",
)
@click.option("--analyze", is_flag=True, help="EXPLAIN ANALYZE the workload.")
@click.option(
    "--margin",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.2,
    show_default=True,
    help="Smallest cut of estimated cost for an index to be proposed.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "--task",
    "task_id",
    metavar="ID",
    help="Write the proposed revision, models and report for this task id into "
    "the workspace and commit them.",
)
@click.option("--title", default="Tune indexes", show_default=True)
@click.pass_context
def tune(
    ctx: click.Context,
    url: str,
    workload: Path | None,
    hypothetical: bool,
    analyze: bool,
    margin: float,
    output_format: str,
    task_id: str | None,
    title: str,
) -> None:
    """Find slow queries, missing and unused indexes and bloat on URL.

    URL may also come from DATABASE_URL. Nothing is written to the database
    unless --hypothetical is given, and then only to this session.
    """
    from sparc.agents.hephaestus.tune import read_workload, render, tune_workspace
    from sparc.agents.hephaestus.tune import tune as run_tune

    if task_id:
        report, files = tune_workspace(
            ctx.obj.resolve(),
            url,
            task_id=task_id,
            title=title,
            workload_file=workload,
            hypothetical=hypothetical,
            analyze=analyze,
            margin=margin,
        )
        _commit(ctx.obj, task_id, title, files)
    else:
        statements = (
            read_workload(workload.read_text(encoding="utf-8"), source=workload.name)
            if workload
            else None
        )
        report = run_tune(
            url,
            workload=statements,
            hypothetical=hypothetical,
            analyze=analyze,
            margin=margin,
        )
    click.echo(render(report, output_format, task_id=task_id or ""), nl=False)


def _commit(root: Path, task_id: str, title: str, files: dict[str, str]) -> None:
    from sparc import gitops
    from sparc.runner import open_runtime

    runtime = open_runtime(root)
    with runtime.git_lock:
        gitops.check_clean(runtime.repo, sorted(files))
        for path, text in sorted(files.items()):
            runtime.workspace.write_text(path, text, field="deliverable")
        sha = gitops.commit_paths(
            runtime.repo,
            sorted(files),
            message=gitops.conventional_message("perf", "db", title),
            identity=runtime.identity,
            trailers={"Task": task_id, "Phase": "refinement", "Agent": "hephaestus"},
        )
    click.echo(
        f"committed {sha[:10] if sha else 'nothing'}: {len(files)} files", err=True
    )
