"""Hephaestus as an engine: owner of Refinement for data tasks, reviewer elsewhere.

Hephaestus works against the committed schema (models.py and revisions at
HEAD), so a replayed Refinement after a crash computes the same files again
instead of stacking a second revision on its own uncommitted output.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from git import BadName, Repo

from sparc.agents.hephaestus.ddl import (
    ParsedSql,
    Query,
    Rename,
    parse_sql,
    sql_from_markdown,
)
from sparc.agents.hephaestus.forge import forge
from sparc.agents.hephaestus.models_render import spec_from_models
from sparc.agents.hephaestus.requests import apply_requests, parse_schema_request
from sparc.agents.hephaestus.scripts import (
    render_performance_queries,
    render_seed_sql,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import alembic_config
from sparc.engines import Finding, Review, WorkContext, WorkResult
from sparc.errors import EngineError, InputError, VerificationError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = structlog.get_logger(__name__)

SQL_SUFFIXES = (".sql", ".md")
SEED_SCRIPT = "alembic/scripts/seed_data.sql"
QUERY_SCRIPT = "alembic/scripts/performance_queries.sql"
DATA_SPECIALIST = "database-engineer"
# where verify keeps each task's scratch database, under .sparc/
SCRATCH_DIR = "scratch"


def models_path(project: str) -> str:
    return f"src/{project}/db/models.py"


class HephaestusEngine:
    """Forges schema deliverables in Refinement; reviews data work elsewhere.

    Args:
        model: a LangChain chat model that proposes the target SchemaSpec as
            JSON; without one the spec is read from the task's DDL. Either
            way the deterministic forge renders and verifies every file: the
            model never writes migration code.
        attempts: answers the model gets to produce a valid SchemaSpec.
        **call_options: retries, backoff, cost_per_1k_tokens, sleep for
            `sparc.llm.ModelCaller`.
    """

    def __init__(
        self,
        model: BaseChatModel | None = None,
        *,
        attempts: int = 3,
        **call_options: Any,
    ) -> None:
        from sparc.llm import ModelCaller

        self._caller = ModelCaller(model, **call_options) if model else None
        self._attempts = attempts

    def work(self, context: WorkContext) -> WorkResult:
        task = context.task.task
        if context.phase != "refinement":
            raise EngineError(
                "Hephaestus owns only Refinement; check the persona cards",
                task_id=task.id,
                phase=context.phase,
                persona=context.persona.key,
            )
        if task.tune is not None:
            return tune_task(context)

        root = context.workspace.root
        project = context.config.project
        with tempfile.TemporaryDirectory(prefix="sparc-head-") as scratch:
            committed = _committed_view(root, Path(scratch), project)
            base = _current_spec(committed, project)
            if self._caller is None:
                parsed = read_requirements(context, base)
            else:
                parsed = ParsedSql(spec=self._ask_model(context, base), queries=[])
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
                renames=parsed.renames,
                # servers named in .sparc/config.yaml `verify:` besides SQLite
                verify_urls=context.config.verify or None,
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

    def _ask_model(self, context: WorkContext, base: SchemaSpec) -> SchemaSpec:
        from langchain_core.messages import HumanMessage

        from sparc.engines import Meter
        from sparc.llm import instructions, task_brief

        assert self._caller is not None
        prompt = "\n".join(
            [
                f"Propose the complete target schema for task {context.task.task.id} "
                "as one JSON object matching the SchemaSpec JSON schema below. "
                "Start from the committed schema and add what the task asks for. "
                "Do not write migration code.",
                "",
                "The task:",
                task_brief(context),
                "",
                "The committed schema:",
                base.model_dump_json(exclude_defaults=True),
                "",
                "SchemaSpec JSON schema:",
                json.dumps(SchemaSpec.model_json_schema()),
            ]
        )
        messages = [*instructions(context), HumanMessage(prompt)]
        spec = self._caller.structured(
            messages,
            SchemaSpec,
            context,
            context.meter or Meter(),
            attempts=self._attempts,
        )
        log.info("schema_proposed", tables=len(spec.tables))
        return spec

    def verify(self, context: WorkContext) -> str:
        """Apply the written revisions to the task's scratch database, once.

        The database's current revision is the completion marker: a replay
        after a crash finds it at head and applies nothing.
        """
        alembic_dir = context.workspace.resolve("alembic", field="alembic")
        if not (alembic_dir / "versions").is_dir():
            return ""
        scratch = context.workspace.state_dir / SCRATCH_DIR
        scratch.mkdir(parents=True, exist_ok=True)
        database = scratch / f"{context.task.task.id}.sqlite3"
        return apply_migrations(alembic_dir, database)

    def review(self, context: WorkContext) -> Review:
        task = context.task.task
        if task.specialist != DATA_SPECIALIST:
            return Review(verdict="approve", summary="not a data task")
        if task.tune is not None:
            return Review(verdict="approve", summary="a tuning task reads no DDL")

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
            base = committed_schema(context)
            parsed = read_requirements(context, base)
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
        return review_design(context, parsed.spec, base=base)


def committed_schema(context: WorkContext) -> SchemaSpec:
    """The schema as committed (models.py at HEAD), before this task."""
    with tempfile.TemporaryDirectory(prefix="sparc-head-") as scratch:
        project = context.config.project
        committed = _committed_view(context.workspace.root, Path(scratch), project)
        return _current_spec(committed, project)


def review_design(
    context: WorkContext, spec: SchemaSpec, *, base: SchemaSpec | None = None
) -> Review:
    """The card's common failures in the task's own tables, as lint findings.

    An error-severity finding sends the work back; warnings and notes pass
    with the approval.
    """
    from sparc.agents.hephaestus.lint import ReviewSettings, lint_spec
    from sparc.agents.hephaestus.lint.report import apply_settings

    try:
        settings = ReviewSettings.model_validate(context.config.review)
    except ValueError as exc:
        raise InputError(
            f"review: {exc}", path=".sparc/config.yaml", field="review"
        ) from None
    findings = lint_spec(spec, targets=settings.targets)
    kept, _ = apply_settings(findings, settings)
    if base is not None:
        # only what this task adds or changes; older tables were reviewed before
        touched = {t.name for t in spec.tables if base.table(t.name) != t}
        kept = [f for f in kept if f.location.split(".")[0] in touched]
    errors = [f for f in kept if f.severity == "error"]
    return Review(
        verdict="revise" if errors else "approve",
        findings=tuple(kept),
        summary=f"{len(spec.tables)} tables reviewed, {len(errors)} errors",
    )


def apply_migrations(alembic_dir: Path, database: Path) -> str:
    """Bring the scratch SQLite database at `database` to head, once.

    The database's revision is the completion marker: at head, nothing is
    done. Otherwise it is rebuilt from empty, because an upgrade killed half
    way may have left tables behind (SQLite runs DDL outside the transaction
    that records the revision).

    Returns:
        The revision the database is at.

    Raises:
        VerificationError: the upgrade failed.
    """
    head = ScriptDirectory.from_config(alembic_config(alembic_dir)).get_current_head()
    url = f"sqlite:///{database}"
    if database.is_file():
        current = _revision_of(url)
        if current == head:
            log.info("migration_already_applied", revision=head)
            return f"scratch database at {head}"
        log.info("scratch_database_rebuilt", found=current, head=head)
        database.unlink()

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            config = alembic_config(alembic_dir)
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, "head")
                connection.commit()
            except Exception as exc:  # any Alembic or driver failure
                raise VerificationError(
                    f"upgrade head on the scratch database failed: {exc}",
                    step="apply",
                    dialect=engine.dialect.name,
                ) from exc
    finally:
        engine.dispose()
    log.info("migration_applied", revision=head)
    return f"scratch database at {head}"


def _revision_of(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def tune_task(context: WorkContext) -> WorkResult:
    """A tuning task: read the live database, prove index changes, make the revision.

    Raises:
        EngineError: the environment variable naming the database is not set.
    """
    from sparc.agents.hephaestus.tune import render, tune_workspace

    task = context.task.task
    request = task.tune
    assert request is not None
    url = os.environ.get(request.url_env)
    if not url:
        raise EngineError(
            f"tune.url_env: the environment variable {request.url_env} is not set; "
            "set it to the database URL to tune",
            task_id=task.id,
            phase=context.phase,
            persona=context.persona.key,
        )
    workload = (
        context.workspace.resolve(request.workload, field="tune.workload")
        if request.workload
        else None
    )

    report, files = tune_workspace(
        context.workspace.root,
        url,
        task_id=task.id,
        title=task.title,
        workload_file=workload,
        hypothetical=request.hypothetical,
        analyze=request.analyze,
        margin=request.margin,
    )
    log.info("database_tuned", advice=len(report.advice), files=len(files))
    return WorkResult(
        files=files,
        summary=f"{len(report.advice)} index changes proposed",
        report=tuple(render(report, "text").splitlines()),
    )


def read_requirements(context: WorkContext, base: SchemaSpec) -> ParsedSql:
    """Apply the task's data requirements, in order, on top of `base`.

    First the DDL of its references (`.sql` files and ```sql blocks in
    markdown; a reference this phase is rewriting is read as rewritten), then
    its structured `schema` block.
    """
    task = context.task.task
    task_file = context.workspace.relative(context.task.path)
    spec = base
    queries: list[Query] = []
    renames: list[Rename] = []
    for ref in task.references:
        if not ref.endswith(SQL_SUFFIXES):
            continue
        text = context.deliverable(ref)
        if text is None:
            raise InputError(
                f"references: {ref} does not exist",
                path=task_file,
                field="references",
            )
        parsed = _parse_text(text, ref, spec)
        spec = parsed.spec
        queries.extend(parsed.queries)
        renames.extend(parsed.renames)

    if task.schema:
        request = parse_schema_request(task.schema, source=task_file)
        spec = apply_requests(spec, request, source=task_file)
    return ParsedSql(spec=spec, queries=queries, renames=renames)


def _parse_text(text: str, ref: str, base: SchemaSpec) -> ParsedSql:
    if not ref.endswith(".md"):
        return parse_sql(text, source=ref, base=base)

    # markdown: each ```sql block in order; lines are kept by padding, so an
    # error points at the markdown file's own line
    spec, queries, renames = base, [], []
    for start, block in sql_from_markdown(text):
        parsed = parse_sql("\n" * (start - 1) + block, source=ref, base=spec)
        spec = parsed.spec
        queries.extend(parsed.queries)
        renames.extend(parsed.renames)
    return ParsedSql(spec=spec, queries=queries, renames=renames)


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
