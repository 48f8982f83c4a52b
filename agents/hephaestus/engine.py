"""Hephaestus as an engine: owner of Refinement for data tasks, reviewer elsewhere.

Hephaestus works against the committed schema (models.py and revisions at
HEAD, or the Prisma migrations at HEAD), so a replayed Refinement after a
crash computes the same files again instead of stacking a second revision on
its own uncommitted output.

The stack decision (`inputs.STACK_DOC`) picks the output: SQLAlchemy models
with Alembic revisions (the default), or a Prisma schema with SQL migrations.
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
    apply_renames,
    parse_sql,
)
from sparc.agents.hephaestus.forge import forge
from sparc.agents.hephaestus.inputs import (
    DATA_MODELS_DOC,
    STACK_DOC,
    StackDecision,
    data_models_requirements,
    markdown_requirements,
    read_stack,
)
from sparc.agents.hephaestus.models_render import spec_from_models
from sparc.agents.hephaestus.prisma import (
    MIGRATIONS_DIR,
    PRISMA_DIR,
    forge_prisma,
    migration_files,
    spec_from_prisma_migrations,
)
from sparc.agents.hephaestus.prisma_verify import prove_prisma
from sparc.agents.hephaestus.requests import apply_requests, parse_schema_request
from sparc.agents.hephaestus.scripts import (
    render_performance_queries,
    render_seed_sql,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import (
    alembic_config,
    columns_rows_cannot_fill,
    rows_refused,
)
from sparc.engines import Finding, Review, WorkContext, WorkResult
from sparc.errors import DDLError, EngineError, InputError, VerificationError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from sparc.agents.hephaestus.lint import ReviewSettings

log = structlog.get_logger(__name__)

SQL_SUFFIXES = (".sql", ".md")
SEED_SCRIPT = "alembic/scripts/seed_data.sql"
QUERY_SCRIPT = "alembic/scripts/performance_queries.sql"
DATA_SPECIALIST = "database-engineer"
# where verify keeps each task's scratch database, under .sparc/
SCRATCH_DIR = "scratch"
# database servers a revision chain can be verified on (SQLite is always local)
SERVER_DIALECTS = ("postgresql", "mariadb")


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
        root = context.workspace.root
        stack = read_stack(root)
        if task.tune is not None:
            if stack.orm == "prisma":
                raise EngineError(
                    f"tune: a tuning task writes an Alembic revision, and {STACK_DOC} "
                    "chooses Prisma; describe the index changes as a data task",
                    task_id=task.id,
                    phase=context.phase,
                    persona=context.persona.key,
                )
            return tune_task(context)
        if stack.orm == "prisma":
            return self._work_prisma(context)

        project = context.config.project
        with tempfile.TemporaryDirectory(prefix="sparc-head-") as scratch:
            committed = _committed_view(root, Path(scratch), project)
            base = _current_spec(committed, project)
            parsed = self._target(context, base)
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
        report = [*forged.report, *_unverified_targets(root, stack, context)]
        return WorkResult(
            files=files,
            summary=f"revision {revision.file_name}" if revision else "no revision",
            report=tuple(report),
        )

    def _work_prisma(self, context: WorkContext) -> WorkResult:
        """The Prisma files: schema.prisma, the next migration, seed.ts, proved."""
        task = context.task.task
        root = context.workspace.root
        server = context.config.verify.get("postgresql")
        with tempfile.TemporaryDirectory(prefix="sparc-head-") as scratch:
            committed = _committed_view(root, Path(scratch), context.config.project)
            base = spec_from_prisma_migrations(committed)
            parsed = self._target(context, base)
            _refuse_renames(parsed.renames, base, context)
            _refuse_columns_rows_cannot_fill(base, parsed.spec)
            files = forge_prisma(
                committed,
                task_id=task.id,
                title=task.title,
                spec=parsed.spec,
                previous=base,
            )
            migrations = [rel for rel in files if rel.endswith("/migration.sql")]
            if not migrations:
                raise EngineError(
                    "the task's data requirements change nothing in the schema the "
                    f"committed migrations ({MIGRATIONS_DIR}) build; reference DDL "
                    "that adds or alters something",
                    task_id=task.id,
                    phase=context.phase,
                    persona=context.persona.key,
                )

            # proved in the committed copy with this task's files laid over it
            for relative, text in files.items():
                target = committed / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            proof = prove_prisma(committed, server_url=server)

        report = [f"migration {migrations[0]} computed against the committed ones"]
        report.extend(proof.report)
        report.extend(_unverified_servers(context))
        if parsed.queries:
            report.append(
                f"{len(parsed.queries)} queries of the references are not "
                "delivered: a Prisma project gets no performance_queries.sql"
            )
        log.info("prisma_schema_forged", migration=migrations[0], files=len(files))
        return WorkResult(
            files=files,
            summary=f"migration {Path(migrations[0]).parent.name}",
            report=tuple(report),
        )

    def _target(self, context: WorkContext, base: SchemaSpec) -> ParsedSql:
        """The whole schema after the task: from its inputs, or from the model."""
        if self._caller is None:
            return read_requirements(context, base)
        return ParsedSql(spec=self._ask_model(context, base), queries=[])

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

    def check_inputs(self, context: WorkContext) -> None:
        """Read the stack decision of a data task's workspace before any work.

        Raises:
            InputError: the stack document names an ORM, database or target
                sparc does not generate for; names its file and line.
        """
        if context.task.task.specialist == DATA_SPECIALIST:
            read_stack(context.workspace.root)

    def verify(self, context: WorkContext) -> str:
        """Prove the written migrations once more, as they are in the workspace.

        SQLAlchemy: the revisions are applied to the task's scratch SQLite
        database, once; its current revision is the completion marker, so a
        replay after a crash finds it at head and applies nothing. Prisma: no
        Alembic; the migrations are read back and, with a PostgreSQL server
        configured, applied in a scratch database that is dropped after.
        """
        root = context.workspace.root
        if read_stack(root).orm == "prisma":
            # the folder must not lead out of the workspace
            context.workspace.resolve(PRISMA_DIR, field="prisma")
            server = context.config.verify.get("postgresql")
            return "; ".join(prove_prisma(root, server_url=server).report)

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
        models_doc = context.deliverable(DATA_MODELS_DOC) is not None
        if not sources and not task.schema and not models_doc:
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
                        f"to `references`, or describe the entities in "
                        f"{DATA_MODELS_DOC}",
                    ),
                ),
            )
        try:
            stack = read_stack(context.workspace.root)
            base = committed_schema(context, stack)
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
        design = review_design(context, parsed.spec, base=base, stack=stack)
        if stack.orm != "prisma":
            return design
        return _with_migration_findings(design, context)


def committed_schema(
    context: WorkContext, stack: StackDecision | None = None
) -> SchemaSpec:
    """The schema as committed, before this task.

    Read from models.py at HEAD, or for a Prisma stack from the migrations at
    HEAD; `stack` is read from the workspace when not given.
    """
    stack = stack or read_stack(context.workspace.root)
    with tempfile.TemporaryDirectory(prefix="sparc-head-") as scratch:
        project = context.config.project
        committed = _committed_view(context.workspace.root, Path(scratch), project)
        if stack.orm == "prisma":
            return spec_from_prisma_migrations(committed)
        return _current_spec(committed, project)


def review_design(
    context: WorkContext,
    spec: SchemaSpec,
    *,
    base: SchemaSpec | None = None,
    stack: StackDecision | None = None,
) -> Review:
    """The card's common failures in the task's own tables, as lint findings.

    An error-severity finding sends the work back; warnings and notes pass
    with the approval. The dialects judged are the `review: targets:`
    setting, else the stack document's targets when it exists.
    """
    from sparc.agents.hephaestus.lint import lint_spec
    from sparc.agents.hephaestus.lint.report import apply_settings

    settings = _review_settings(context, stack)
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


def _review_settings(
    context: WorkContext, stack: StackDecision | None
) -> ReviewSettings:
    from sparc.agents.hephaestus.lint import ReviewSettings

    try:
        settings = ReviewSettings.model_validate(context.config.review)
    except ValueError as exc:
        raise InputError(
            f"review: {exc}", path=".sparc/config.yaml", field="review"
        ) from None
    stated = (context.workspace.root / STACK_DOC).is_file()
    if "targets" not in settings.model_fields_set and stated:
        stack = stack or read_stack(context.workspace.root)
        settings = settings.model_copy(update={"targets": stack.targets})
    return settings


def _with_migration_findings(design: Review, context: WorkContext) -> Review:
    """Add the production-safety findings of the run's new Prisma migrations."""
    from sparc.agents.hephaestus.lint.report import apply_settings
    from sparc.agents.hephaestus.lint.sql_migrations import (
        SqlMigration,
        lint_sql_migrations,
    )

    root = context.workspace.root
    new = {
        rel
        for rel in (*context.files, *context.written)
        if rel.startswith(f"{MIGRATIONS_DIR}/") and rel.endswith("/migration.sql")
    }
    if not new:
        return design
    # every migration, oldest first: the earlier ones give the schema a new
    # one changes; a pending one is read as this phase wrote it
    on_disk = {p.relative_to(root).as_posix() for p in migration_files(root)}
    migrations = [
        SqlMigration(rel, context.deliverable(rel) or "")
        for rel in sorted(on_disk | new)
    ]
    findings = lint_sql_migrations(migrations, report_on=new)
    kept, _ = apply_settings(findings, _review_settings(context, None))
    found = [*design.findings, *kept]
    errors = [f for f in found if f.severity == "error"]
    return Review(
        verdict="revise" if errors else design.verdict,
        findings=tuple(found),
        summary=f"{design.summary}; {len(new)} migrations linted",
    )


def _refuse_renames(
    renames: list[Rename], base: SchemaSpec, context: WorkContext
) -> None:
    """Prisma migrations here carry no renames: one would drop the data."""
    _, applied = apply_renames(base, renames)
    if applied:
        first = applied[0]
        what = first.table if first.column is None else f"{first.table}.{first.column}"
        raise DDLError(
            f"renaming {what} to {first.new} is not carried by sparc's Prisma "
            "migrations (it would drop and re-create the data); rename it in a "
            "hand-written migration.sql first, or keep the name",
            path=context.workspace.relative(context.task.path),
            field="references",
        )


def _refuse_columns_rows_cannot_fill(base: SchemaSpec, spec: SchemaSpec) -> None:
    """A migration adding a NOT NULL column to a table with rows must not commit.

    The DDL reader keeps the schema a task's DDL builds, not its UPDATEs, so
    a backfill between ADD COLUMN and SET NOT NULL does not reach the
    migration; the column would arrive NOT NULL in one step and fail on any
    table that holds rows, as the SQLAlchemy path's seeded upgrade finds.
    """
    columns = columns_rows_cannot_fill(base, spec)
    if columns:
        raise VerificationError(
            rows_refused(columns),
            step="upgrade head over existing rows",
            dialect="postgresql",
        )


def _unverified_targets(
    root: Path, stack: StackDecision, context: WorkContext
) -> list[str]:
    """Report lines for the stack's server targets no `verify:` URL covers."""
    if not (root / STACK_DOC).is_file():
        return []
    lines = []
    for target in stack.targets:
        if target not in SERVER_DIALECTS or target in context.config.verify:
            continue
        log.warning("target_not_verified", dialect=target, stack=STACK_DOC)
        lines.append(
            f"{target}: a target of {STACK_DOC}, not verified on a server: add "
            f"`verify: {{{target}: URL}}` to .sparc/config.yaml"
        )
    return lines


def _unverified_servers(context: WorkContext) -> list[str]:
    """Report lines for configured servers a Prisma project's SQL cannot run on."""
    lines = []
    for dialect in sorted(context.config.verify):
        if dialect == "postgresql":
            continue
        log.warning("server_not_used", dialect=dialect, orm="prisma")
        lines.append(
            f"{dialect}: configured under `verify:` but not used: Prisma "
            "migrations here are PostgreSQL SQL"
        )
    return lines


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

    1. The DDL of its references, in order: `.sql` files, and markdown's
       ```sql blocks or entity tables (a reference this phase is rewriting is
       read as rewritten).
    2. Only when no reference holds any: the data-models document
       (`inputs.DATA_MODELS_DOC`), when it exists, whose entities replace the
       committed tables of the same name.
    3. Then the task's structured `schema` block, on top of either.
    """
    task = context.task.task
    task_file = context.workspace.relative(context.task.path)
    spec = base
    queries: list[Query] = []
    renames: list[Rename] = []
    read_any = False
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
        if parsed is None:
            continue
        read_any = True
        spec = parsed.spec
        queries.extend(parsed.queries)
        renames.extend(parsed.renames)

    models = None if read_any else context.deliverable(DATA_MODELS_DOC)
    if models is not None:
        parsed = data_models_requirements(models, base=spec)
        if parsed is not None:
            log.info("data_models_read", path=DATA_MODELS_DOC)
            spec = parsed.spec
            queries.extend(parsed.queries)
            renames.extend(parsed.renames)

    if task.schema:
        request = parse_schema_request(task.schema, source=task_file)
        spec = apply_requests(spec, request, source=task_file)
    return ParsedSql(spec=spec, queries=queries, renames=renames)


def _parse_text(text: str, ref: str, base: SchemaSpec) -> ParsedSql | None:
    if ref == DATA_MODELS_DOC:
        return data_models_requirements(text, base=base)
    if ref.endswith(".md"):
        return markdown_requirements(text, source=ref, base=base)
    return parse_sql(text, source=ref, base=base)


def _current_spec(root: Path, project: str) -> SchemaSpec:
    path = root / models_path(project)
    return spec_from_models(path) if path.is_file() else SchemaSpec()


def _committed_view(root: Path, scratch: Path, project: str) -> Path:
    """Copy the committed alembic/, prisma/ and models.py into `scratch`."""
    try:
        repo = Repo(root)
        tree = repo.head.commit.tree
    except (BadName, ValueError):
        return scratch
    for folder in ("alembic", PRISMA_DIR, f"src/{project}/db"):
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
