"""`sparc review PATH`: Hephaestus's schema and migration linter on its own."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from sparc.config import CONFIG_FILE, load_config
from sparc.errors import ConfigError, DDLError, InputError


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--context",
    "context",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A schema file applied before PATH (repeatable, in order).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info", "never"]),
    help="Lowest severity that makes the exit code 1 (default: the config's "
    "review.fail_on, else error).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.pass_context
def review(
    ctx: click.Context,
    path: Path,
    context: tuple[Path, ...],
    output_format: str,
    fail_on: str | None,
    output: Path | None,
) -> None:
    """Lint a DDL file, a models.py, an Alembic folder or a whole workspace.

    Exit 0 when no finding reaches the failing severity, 1 when one does,
    2 on bad input.
    """
    from sparc.agents.hephaestus.lint import (
        ReviewSettings,
        exit_code,
        lint_path,
        render_json,
        render_sarif,
        render_text,
    )

    settings = _settings(ctx.obj, ReviewSettings)
    try:
        report = lint_path(path, context=context, settings=settings)
    except DDLError as error:
        if error.undefined_table is None or context:
            raise
        # a file of a series (say, indexes over earlier tables) read alone
        raise DDLError(
            f"{error.reason}; if another file creates it, pass that file with "
            "--context FILE (repeatable, in order)",
            path=error.path,
            line=error.line,
            column=error.column,
            undefined_table=error.undefined_table,
        ) from None
    render = {"text": render_text, "json": render_json, "sarif": render_sarif}
    document = render[output_format](report)

    if output:
        try:
            output.write_text(document, encoding="utf-8")
        except OSError as error:
            raise InputError(
                f"--output: cannot write the report: {error.strerror or error}; "
                "give a file in an existing, writable folder",
                path=output,
            ) from None
    else:
        click.echo(document, nl=not document.endswith("\n"))
    ctx.exit(exit_code(report, fail_on or settings.fail_on))


def _settings(workspace: Path, model: type) -> object:
    """The workspace's `review:` settings, validated; defaults without a config."""
    if not (workspace / CONFIG_FILE).is_file():
        return model()
    config = load_config(workspace)
    try:
        return model.model_validate(config.review)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(["review", *(str(p) for p in error["loc"])])
        raise ConfigError(
            f"{field}: {error['msg']}", path=CONFIG_FILE, field=field
        ) from None
