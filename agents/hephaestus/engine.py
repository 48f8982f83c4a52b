"""Hephaestus as an engine: owner of Refinement for data tasks, reviewer elsewhere.

Hephaestus works against the committed schema (models.py and revisions at
HEAD), so a replayed Refinement after a crash computes the same files again
instead of stacking a second revision on its own uncommitted output.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import structlog
from git import BadName, Repo

from sparc.agents.hephaestus.ddl import ParsedSql, Query, parse_file
from sparc.agents.hephaestus.forge import forge
from sparc.agents.hephaestus.models_render import spec_from_models
from sparc.agents.hephaestus.scripts import (
    render_performance_queries,
    render_seed_sql,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.engines import Finding, Review, WorkContext, WorkResult
from sparc.errors import EngineError, InputError

log = structlog.get_logger(__name__)

SQL_SUFFIXES = (".sql", ".md")
SEED_SCRIPT = "alembic/scripts/seed_data.sql"
QUERY_SCRIPT = "alembic/scripts/performance_queries.sql"
DATA_SPECIALIST = "database-engineer"


def models_path(project: str) -> str:
    return f"src/{project}/db/models.py"


class HephaestusEngine:
    """Forges schema deliverables in Refinement; reviews data work elsewhere."""

    def work(self, context: WorkContext) -> WorkResult:
        task = context.task.task
        if context.phase != "refinement":
            raise EngineError(
                "Hephaestus owns only Refinement; check the persona cards",
                task_id=task.id,
                phase=context.phase,
                persona=context.persona.key,
            )

        root = context.workspace.root
        project = context.config.project
        with tempfile.TemporaryDirectory(prefix="sparc-head-") as scratch:
            committed = _committed_view(root, Path(scratch), project)
            base = _current_spec(committed, project)
            parsed = read_requirements(context, base)
            if parsed.spec == base:
                raise EngineError(
                    "the task's data requirements change nothing in the committed "
                    f"schema ({models_path(project)}); reference DDL that adds or "
                    "alters something",
                    task_id=task.id,
                    phase=context.phase,
                    persona=context.persona.key,
                )
            forged = forge(
                committed,
                project=project,
                task_id=task.id,
                title=task.title,
                spec=parsed.spec,
            )
            existing_queries = committed / QUERY_SCRIPT
            existing = (
                existing_queries.read_text(encoding="utf-8")
                if existing_queries.is_file()
                else None
            )

        files = dict(forged.files)
        files[SEED_SCRIPT] = render_seed_sql(parsed.spec)
        files[QUERY_SCRIPT] = render_performance_queries(
            parsed.spec, parsed.queries, existing=existing
        )
        revision = forged.revision
        log.info(
            "schema_forged",
            revision=revision.file_name if revision else None,
            files=len(files),
        )
        return WorkResult(
            files=files,
            summary=f"revision {revision.file_name}" if revision else "no revision",
            report=tuple(forged.report),
        )

    def review(self, context: WorkContext) -> Review:
        task = context.task.task
        if task.specialist != DATA_SPECIALIST:
            return Review(verdict="approve", summary="not a data task")

        sources = [ref for ref in task.references if ref.endswith(SQL_SUFFIXES)]
        if not sources and not task.schema:
            return Review(
                verdict="block",
                findings=(
                    Finding(
                        code="HX001",
                        severity="error",
                        category="missing-requirements",
                        message=f"data task {task.id} names no DDL and no schema",
                        location=context.workspace.relative(context.task.path),
                        hint="add a .sql file (or markdown with ```sql blocks) "
                        "to `references`",
                    ),
                ),
            )
        try:
            parsed = read_requirements(context, SchemaSpec())
        except InputError as exc:
            return Review(
                verdict="block",
                findings=(
                    Finding(
                        code="HX002",
                        severity="error",
                        category="invalid-requirements",
                        message=str(exc),
                        location=str(exc.path or ""),
                        hint="fix the SQL so PostgreSQL would accept it",
                    ),
                ),
            )
        return Review(
            verdict="approve",
            findings=tuple(_missing_primary_keys(parsed.spec)),
            summary=f"{len(parsed.spec.tables)} tables read",
        )


def read_requirements(context: WorkContext, base: SchemaSpec) -> ParsedSql:
    """Apply the DDL of the task's references, in order, on top of `base`."""
    spec = base
    queries: list[Query] = []
    for ref in context.task.task.references:
        if not ref.endswith(SQL_SUFFIXES):
            continue
        path = context.workspace.resolve(ref, field="references")
        if not path.is_file():
            raise InputError(
                f"references: {ref} does not exist",
                path=context.workspace.relative(context.task.path),
                field="references",
            )
        parsed = parse_file(path, display=ref, base=spec)
        spec = parsed.spec
        queries.extend(parsed.queries)
    return ParsedSql(spec=spec, queries=queries)


def _current_spec(root: Path, project: str) -> SchemaSpec:
    path = root / models_path(project)
    return spec_from_models(path) if path.is_file() else SchemaSpec()


def _committed_view(root: Path, scratch: Path, project: str) -> Path:
    """Copy the committed alembic/ folder and models.py into `scratch`."""
    try:
        repo = Repo(root)
        tree = repo.head.commit.tree
    except (BadName, ValueError):
        return scratch
    for folder in ("alembic", f"src/{project}/db"):
        try:
            subtree = tree / folder
        except KeyError:
            continue
        for blob in subtree.traverse():
            if blob.type != "blob":
                continue
            target = scratch / blob.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.data_stream.read())
    return scratch


def _missing_primary_keys(spec: SchemaSpec) -> list[Finding]:
    return [
        Finding(
            code="HX010",
            severity="warning",
            category="missing-constraint",
            message=f"table {table.name} has no primary key",
            location=table.name,
            hint="add a PRIMARY KEY so rows can be addressed and referenced",
        )
        for table in spec.tables
        if table.primary_key is None and table.partition_by is None
    ]
