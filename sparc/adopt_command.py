"""`sparc db adopt URL`: give a workspace the baseline of an existing PostgreSQL.

The database is only read. Its public schema becomes models.py and revision
001 in the workspace, proved on a scratch database, and committed like a
task's deliverables. `--stamp` is the one way the command writes to the
database: it records revision 001 in its `alembic_version` table.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from sparc.errors import InputError
from sparc.redact import redact_data, redact_text

if TYPE_CHECKING:
    from sparc.agents.hephaestus.adopt import Adoption
    from sparc.runtime import Runtime


@click.command()
@click.argument("url", required=False, envvar="DATABASE_URL")
@click.option(
    "--url-env",
    metavar="NAME",
    help="Read the database URL from this environment variable instead "
    "(keeps it off the command line).",
)
@click.option(
    "-m",
    "--message",
    metavar="TEXT",
    help="Title of the baseline revision and of its commit [default: the "
    "task's title, else Adopt database <name>].",
)
@click.option(
    "--task",
    "task_id",
    metavar="ID",
    default="ADOPT",
    show_default=True,
    help="Task id quoted in the revision and the commit; a task file of that "
    "id, if any, is marked COMPLETE in the same commit.",
)
@click.option(
    "--scratch-url",
    metavar="URL",
    help="PostgreSQL server on which a scratch database is created (and "
    "dropped) to prove the baseline [default: .sparc/config.yaml "
    "verify.postgresql, else the adopted database's own server].",
)
@click.option(
    "--stamp",
    is_flag=True,
    help="Also record revision 001 in the database's alembic_version table: "
    "the only write to the database.",
)
@click.option(
    "--no-commit",
    is_flag=True,
    help="Write the files into the workspace but do not commit them.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@click.pass_context
def adopt(
    ctx: click.Context,
    url: str | None,
    url_env: str | None,
    message: str | None,
    task_id: str,
    scratch_url: str | None,
    stamp: bool,
    no_commit: bool,
    output_format: str,
) -> None:
    """Adopt the PostgreSQL database at URL as the workspace's baseline schema.

    URL may also come from DATABASE_URL, or from the variable --url-env names.
    The database is read in read-only transactions; models.py, revision 001,
    seed_data.sql and performance_queries.sql are written only after the
    revision rebuilt an identical catalog on a scratch database. Exit 2, with
    nothing written, when the workspace already has a schema, the database
    cannot be reached, or it holds objects sparc cannot carry.
    """
    from sparc.agents.hephaestus.adopt import adopt_database, stamp_database
    from sparc.runner import LOCKS_DIR, WORKSPACE_LOCK, WorkspaceRunLock, open_runtime

    given = ctx.get_parameter_source("url") != ParameterSource.ENVIRONMENT
    source = _source_url(url if given or not url_env else None, url_env)
    runtime = open_runtime(ctx.obj)
    root = runtime.workspace.root
    lock = runtime.workspace.state_dir / LOCKS_DIR / WORKSPACE_LOCK
    task_path = runtime.workspace.backlog_dir / f"{task_id}.yaml"
    # a planned adoption task names the baseline, unless --message does
    title = message or (
        runtime.task(task_id).task.title if task_path.is_file() else None
    )
    with WorkspaceRunLock.held(lock):
        adoption = adopt_database(
            root,
            source,
            project=runtime.config.project,
            task_id=task_id,
            title=title,
            scratch_url=scratch_url or runtime.config.verify.get("postgresql"),
            stamp=stamp,
        )
        written = runtime.write_files(adoption.files)
        sha = None if no_commit else _commit(runtime, adoption, task_id, written)

    stamped_now = False
    if stamp and not adoption.stamped:
        stamp_database(source, root / "alembic", adoption.revision.revision_id)
        stamped_now = True
    summary = _summary(adoption, written, sha, no_commit, stamped_now)
    if output_format == "json":
        click.echo(json.dumps(redact_data(summary), indent=2))
    else:
        click.echo(redact_text(_text(summary)), nl=False)


def _source_url(url: str | None, url_env: str | None) -> str:
    if url_env:
        if url:
            raise click.UsageError("give the URL or --url-env, not both")
        value = os.environ.get(url_env)
        if not value:
            raise InputError(
                f"--url-env: the environment variable {url_env} is not set; set "
                "it to the database URL",
                field="url_env",
            )
        return value
    if not url:
        raise click.UsageError(
            "give the database URL, set DATABASE_URL, or name a variable with --url-env"
        )
    return url


def _commit(
    runtime: Runtime, adoption: Adoption, task_id: str, written: list[str]
) -> str | None:
    """Commit the baseline the way a task run commits, or put the files back."""
    from sparc import gitops
    from sparc.runner import run_id_for

    try:
        task_path = runtime.workspace.backlog_dir / f"{task_id}.yaml"
        if task_path.is_file():
            task_file = runtime.task(task_id)
            return runtime.commit_run(
                task_file,
                run_id=run_id_for(task_file),
                written=written,
                record=[
                    {"role": "primary", "phase": "refinement", "persona": "hephaestus"}
                ],
            )
        with runtime.git_lock:
            return gitops.commit_paths(
                runtime.repo,
                written,
                message=gitops.conventional_message("feat", "db", adoption.title),
                identity=runtime.identity,
                trailers={
                    "Task": task_id,
                    "Phase": "refinement",
                    "Agent": "hephaestus",
                },
                lock_timeout=runtime.config.git.lock_timeout,
            )
    except BaseException:
        with runtime.git_lock:
            runtime.put_back(written)
        raise


def _summary(
    adoption: Adoption,
    written: list[str],
    sha: str | None,
    no_commit: bool,
    stamped_now: bool,
) -> dict[str, Any]:
    revision = adoption.revision.revision_id
    comparison = adoption.comparison
    if adoption.stamped or stamped_now:
        stamp_advice = ""
    else:
        # another chain's revision is not in this one: alembic must drop it
        purge = "--purge " if adoption.versions else ""
        stamp_advice = (
            "DATABASE_URL=<the database URL> alembic -c alembic/alembic.ini "
            f"stamp {purge}{revision}"
        )
    return {
        "database": adoption.database,
        "tables": len(adoption.spec.tables),
        "objects": len(adoption.spec.objects),
        "revision": {"id": revision, "file": adoption.revision.file_name},
        "files": written,
        "proof": list(adoption.report),
        "fidelity": {
            "table_scope": list(comparison.table_scope),
            "whole_catalog": list(comparison.whole),
            "by_kind": {k: list(v) for k, v in comparison.counts.items()},
        },
        "commit": sha,
        "committed": sha is not None,
        "no_commit": no_commit,
        "alembic_version": {
            "before": list(adoption.versions)
            if adoption.versions is not None
            else None,
            "stamped": stamped_now,
            "at_baseline": adoption.stamped or stamped_now,
            "stamp_command": stamp_advice,
        },
    }


def _percent(pair: list[int]) -> str:
    kept, total = pair
    return f"{kept}/{total} = {kept / max(total, 1):.1%}"


def _text(summary: dict[str, Any]) -> str:
    lines = [
        f"adopted {summary['database']}: {summary['tables']} tables, "
        f"{summary['objects']} other objects, baseline revision "
        f"{summary['revision']['file']}",
    ]
    lines.extend(f"  wrote {path}" for path in summary["files"])
    lines.append("proof:")
    lines.extend(f"  {line}" for line in summary["proof"])
    fidelity = summary["fidelity"]
    lines.append(
        f"catalog: table-scope fidelity {_percent(fidelity['table_scope'])}, "
        f"whole catalog {_percent(fidelity['whole_catalog'])}"
    )
    if summary["committed"]:
        lines.append(f"committed {summary['commit'][:10]}")
    elif summary["no_commit"]:
        lines.append(
            "not committed (--no-commit): commit these files before running "
            "tasks; sparc builds on the committed schema"
        )
    else:
        lines.append("nothing to commit")

    version = summary["alembic_version"]
    revision = summary["revision"]["id"]
    if version["stamped"]:
        lines.append(f"stamped the database at revision {revision}")
    elif version["at_baseline"]:
        lines.append(f"the database already records revision {revision}")
    else:
        found = version["before"]
        state = (
            "has no alembic_version table"
            if found is None
            else f"records {', '.join(found) or 'no revision'}"
        )
        lines.append(
            f"the database {state}: before applying later revisions to it, "
            f"stamp it once at the baseline:\n  {version['stamp_command']}"
        )
    return "\n".join(lines) + "\n"
