"""Hephaestus as reviewer: lint schema designs and Alembic migrations.

Design rules (`HD`) judge a SchemaSpec read from DDL, markdown, models.py or
given in memory; migration rules (`HM`) judge each Alembic revision on its own
offline SQL, through squawk for PostgreSQL and sparc's own checks for SQLite
and MariaDB. Every finding has a stable code, a severity, a category, a
location and a fix hint; `docs/review-rules.md` lists them all.

Example:
    >>> from pathlib import Path
    >>> from sparc.agents.hephaestus.lint import lint_path, render_text
    >>> report = lint_path(Path("docs/data/shop-3-indexes.sql"),
    ...                    context=[Path("docs/data/shop-1-core.sql")])
    >>> print(render_text(report))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

from sparc.agents.hephaestus.ddl import MARKDOWN_SUFFIXES, SQL_SUFFIXES, parse_file
from sparc.agents.hephaestus.lint.design import DEFAULT_TARGETS, lint_design
from sparc.agents.hephaestus.lint.docs import render_rule_docs
from sparc.agents.hephaestus.lint.migrations import find_squawk
from sparc.agents.hephaestus.lint.migrations import (
    lint_migrations as _lint_revisions,
)
from sparc.agents.hephaestus.lint.output import (
    render_json,
    render_sarif,
    render_text,
)
from sparc.agents.hephaestus.lint.report import (
    LintReport,
    ReviewSettings,
    apply_settings,
    exit_code,
    sorted_findings,
)
from sparc.agents.hephaestus.lint.rules import CATEGORIES, RULES, Rule
from sparc.agents.hephaestus.lint.sources import (
    SourceMap,
    declared_dialects,
    map_models,
    map_sql,
    split_location,
    sql_text_of,
)
from sparc.agents.hephaestus.lint.sql_migrations import (
    SqlMigration,
    lint_sql_migrations,
)
from sparc.agents.hephaestus.models_render import spec_from_models
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.engines import Finding
from sparc.errors import InputError

log = structlog.get_logger(__name__)

__all__ = [
    "CATEGORIES",
    "RULES",
    "LintReport",
    "ReviewSettings",
    "Rule",
    "exit_code",
    "find_squawk",
    "lint_file",
    "lint_migrations",
    "lint_path",
    "lint_sql_migrations",
    "lint_spec",
    "render_json",
    "render_rule_docs",
    "render_sarif",
    "render_text",
]

_SCHEMA_SUFFIXES = SQL_SUFFIXES + MARKDOWN_SUFFIXES


def lint_spec(
    spec: SchemaSpec,
    *,
    locations: Mapping[str, str] | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
) -> list[Finding]:
    """Run the design rules over a SchemaSpec held in memory.

    Args:
        spec: the schema.
        locations: `file:line` per object key (`table`, `table.column`,
            `table.index:name`, `table.fk:a,b`, ...); objects without one are
            located as `table` or `table.column`.
        targets: dialects the schema must run on.

    Returns:
        The findings, sorted by location, code and message.
    """
    return list(
        sorted_findings(lint_design(spec, locations=locations, targets=targets))
    )


def lint_file(
    path: Path,
    *,
    context: Sequence[Path] = (),
    display: str | None = None,
    targets: Sequence[str] | None = None,
) -> list[Finding]:
    """Lint one DDL file (.sql, or .md with ```sql blocks) or a models.py.

    Args:
        path: the file to report on.
        context: files applied before it, in order (e.g. the earlier steps of
            the schema); they shape the schema but get no findings.
        display: how to name `path` in locations; defaults to the path.
        targets: dialects; defaults to the file's `-- dialects:` header, else
            PostgreSQL and SQLite.

    Returns:
        Findings located in `path`, sorted, inline suppressions applied.

    Raises:
        DDLError: a file does not parse; the message names file and line.
        InputError: the file is neither SQL, markdown nor Python.
    """
    findings, _ = _lint_schema_file(
        Path(path), context=context, display=display, targets=targets
    )
    return list(sorted_findings(findings))


def lint_migrations(
    alembic_dir: Path,
    *,
    display: str | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
) -> list[Finding]:
    """Check each revision of an Alembic folder (or versions folder) on its own.

    Args:
        alembic_dir: `alembic/` (with `versions/`) or the versions folder.
        display: how to name the folder in locations.
        targets: dialects the migrations run on (SQLite and MariaDB checks).

    Returns:
        The findings, sorted; squawk's absence is an info finding.
    """
    return list(
        sorted_findings(
            _lint_revisions(Path(alembic_dir), display=display, targets=targets)
        )
    )


def lint_path(
    path: Path,
    *,
    context: Sequence[Path] = (),
    settings: ReviewSettings | None = None,
) -> LintReport:
    """Lint whatever `path` is: a schema file, an Alembic folder or a workspace.

    Args:
        path: a `.sql`/`.md` file, a models.py, an `alembic/` or versions
            folder, or a workspace (models, revisions, and the SQL files its
            backlog references, each with the earlier ones as context).
        context: files applied before a single schema file.
        settings: the `review:` settings (ignored codes, severities, targets).

    Returns:
        The sorted findings with what was read and how many were silenced.

    Raises:
        InputError: the path does not exist or is none of the above.
        DDLError: a schema file does not parse.
    """
    settings = settings or ReviewSettings()
    target = Path(path)
    for given in (*context, target):
        if not Path(given).exists():
            raise InputError("does not exist; check the path", path=given)
    if target.is_file():
        findings, suppressed = _lint_schema_file(
            target, context=context, display=None, targets=_targets(settings)
        )
        sources: tuple[str, ...] = (*(str(p) for p in context), str(target))
    elif target.is_dir() and _is_workspace(target):
        findings, suppressed, sources = _lint_workspace(target, settings)
    elif target.is_dir() and _is_alembic_folder(target):
        findings = _lint_revisions(target, targets=settings.targets)
        suppressed, sources = 0, (str(target),)
    else:
        raise InputError(
            "not a schema file (.sql, .md, models.py), an Alembic folder or a "
            "workspace; pass one of those",
            path=target,
        )

    kept, ignored = apply_settings(findings, settings)
    report = LintReport(
        findings=sorted_findings(kept),
        sources=sources,
        suppressed=suppressed + ignored,
    )
    log.info(
        "lint_finished",
        path=str(target),
        findings=len(report.findings),
        suppressed=report.suppressed,
    )
    return report


def _targets(settings: ReviewSettings) -> Sequence[str] | None:
    """Explicit targets win; the defaults let a file's header decide."""
    return None if "targets" not in settings.model_fields_set else settings.targets


def _lint_schema_file(
    path: Path,
    *,
    context: Sequence[Path],
    display: str | None,
    targets: Sequence[str] | None,
    context_displays: Sequence[str] | None = None,
) -> tuple[list[Finding], int]:
    shown = display or str(path)
    if path.suffix.lower() == ".py":
        if context:
            raise InputError(
                "context files apply to SQL inputs only; lint models.py alone",
                path=shown,
            )
        return _lint_models(path, shown, targets or DEFAULT_TARGETS)
    if path.suffix.lower() not in _SCHEMA_SUFFIXES:
        raise InputError(
            "cannot lint this kind of file; give a .sql, .md or models.py file",
            path=shown,
        )

    spec = SchemaSpec()
    sources = SourceMap()
    names = list(context_displays or (str(p) for p in context))
    for context_path, context_shown in zip(context, names, strict=True):
        spec = _read_sql(Path(context_path), context_shown, spec, sources)
    spec = _read_sql(path, shown, spec, sources)

    text = path.read_text(encoding="utf-8")
    dialects = targets or declared_dialects(text) or DEFAULT_TARGETS
    findings = lint_design(spec, locations=sources.locations, targets=dialects)
    if context:
        findings = [f for f in findings if split_location(f.location)[0] == shown]
    kept = [f for f in findings if not sources.is_suppressed(f.code, f.location)]
    return kept, len(findings) - len(kept)


def _read_sql(
    path: Path, shown: str, base: SchemaSpec, sources: SourceMap
) -> SchemaSpec:
    spec = parse_file(path, display=shown, base=base).spec
    text = path.read_text(encoding="utf-8")
    sources.merge(map_sql(sql_text_of(path, text), display=shown))
    return spec


def _lint_models(
    path: Path, shown: str, targets: Sequence[str]
) -> tuple[list[Finding], int]:
    try:
        spec = spec_from_models(path)
    except TypeError as error:
        # the reader knows the types render_models writes, not every SQLAlchemy
        # type; say which one instead of failing without a file name
        raise InputError(
            f"cannot read the models: {error}; lint the DDL or revisions instead",
            path=shown,
        ) from error
    sources = map_models(path.read_text(encoding="utf-8"), display=shown)
    findings = lint_design(spec, locations=sources.locations, targets=targets)
    kept = [f for f in findings if not sources.is_suppressed(f.code, f.location)]
    return kept, len(findings) - len(kept)


def _is_alembic_folder(path: Path) -> bool:
    if (path / "versions").is_dir() or (path / "env.py").is_file():
        return True
    return any(
        "down_revision" in p.read_text(encoding="utf-8", errors="replace")
        for p in path.glob("*.py")
    )


def _is_workspace(path: Path) -> bool:
    return (path / "docs" / "backlog").is_dir() or (path / ".sparc").is_dir()


def _lint_workspace(
    root: Path, settings: ReviewSettings
) -> tuple[list[Finding], int, tuple[str, ...]]:
    # imported here: the workspace pieces pull in the backlog and config models,
    # which linting a single file does not need
    from sparc.backlog import Backlog
    from sparc.config import load_config
    from sparc.workspace import Workspace

    workspace = Workspace.at(root)
    config = load_config(workspace.root)
    findings: list[Finding] = []
    suppressed = 0
    sources: list[str] = []

    models = workspace.root / "src" / config.project / "db" / "models.py"
    if models.is_file():
        shown = models.relative_to(workspace.root).as_posix()
        found, silenced = _lint_models(models, shown, settings.targets)
        findings.extend(found)
        suppressed += silenced
        sources.append(shown)

    alembic = workspace.root / "alembic"
    if (alembic / "versions").is_dir():
        findings.extend(
            _lint_revisions(alembic, display="alembic", targets=settings.targets)
        )
        sources.append("alembic")

    prisma_migrations = _prisma_migrations(workspace.root)
    if prisma_migrations:
        findings.extend(lint_sql_migrations(prisma_migrations))
        sources.append("prisma/migrations")

    references: list[str] = []
    if workspace.backlog_dir.is_dir():
        backlog = Backlog.load(workspace.backlog_dir)
        for task_id in backlog.topological_order():
            for reference in backlog.get(task_id).task.references:
                if reference.lower().endswith(_SCHEMA_SUFFIXES) and (
                    reference not in references
                ):
                    references.append(reference)
    paths = [workspace.resolve(ref, field="references") for ref in references]
    for position, (reference, path) in enumerate(zip(references, paths, strict=True)):
        found, silenced = _lint_schema_file(
            path,
            context=paths[:position],
            display=reference,
            targets=_targets(settings),
            context_displays=references[:position],
        )
        findings.extend(found)
        suppressed += silenced
        sources.append(reference)
    return findings, suppressed, tuple(sources)


def _prisma_migrations(root: Path) -> list[SqlMigration]:
    from sparc.agents.hephaestus.prisma import migration_files

    return [
        SqlMigration(
            path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")
        )
        for path in migration_files(root)
    ]
