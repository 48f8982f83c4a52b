"""The persona card's input documents in a workspace; Prisma through the graph."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import git
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from sparc.agents.hephaestus.engine import HephaestusEngine
from sparc.agents.hephaestus.inputs import DATA_MODELS_DOC, STACK_DOC
from sparc.agents.hephaestus.prisma import (
    LOCK_FILE,
    SCHEMA_FILE,
    SEED_FILE,
    migration_files,
    render_prisma_schema,
    render_prisma_seed,
    spec_from_prisma_migrations,
)
from sparc.backlog import TaskStatus, load_task
from sparc.cli import main
from sparc.errors import VerificationError
from sparc.init import init_workspace
from sparc.runner import Runner
from tests.conftest import (
    PG_ADMIN_URL,
    SCHEMAS,
    SHARED,
    ScratchDatabases,
    libpq_url,
    psql_file,
)

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared schemas not found at {SCHEMAS}",
)

PGFACTS = SHARED / "tools" / "pgfacts.py"
SHOP_TASKS = ("DB-001", "DB-002", "DB-003")
PRISMA_STACK = """\
# Stack decision

| Decision | Choice |
|----------|--------|
| Database | PostgreSQL 15 |
| ORM      | Prisma 5 |
"""
ENTITIES = """\
# Data models

### customers

| Field | Type         | Constraints      |
|-------|--------------|------------------|
| id    | serial       | primary key      |
| email | varchar(255) | not null, unique |

### invoices

| Field       | Type          | Constraints                                          |
|-------------|---------------|------------------------------------------------------|
| id          | serial        | primary key                                          |
| customer_id | integer       | not null, references customers.id on delete cascade |
| total       | numeric(10,2) | not null, default 0, check (total >= 0)              |
"""
ENTITY_TASK = """\
id: DM-001
title: Build the data models
specialist: database-engineer
status: NEW
priority: high
references: []
acceptance_criteria:
  - The entities of the data-models document exist
phases: [refinement]
"""


def _prisma_workspace(
    shop: Path, *, server: str | None = None, stack: str = PRISMA_STACK
) -> Path:
    """The shop example with a Prisma stack decision, initialised."""
    (shop / STACK_DOC).parent.mkdir(parents=True, exist_ok=True)
    (shop / STACK_DOC).write_text(stack, encoding="utf-8")
    config = "project: shop\n"
    if server is not None:
        config += f"verify:\n  postgresql: {server}\n"
    (shop / ".sparc").mkdir(exist_ok=True)
    (shop / ".sparc/config.yaml").write_text(config, encoding="utf-8")
    init_workspace(shop)
    return shop


def _copy_of_shop(root: Path) -> Path:
    import shutil

    from tests.conftest import EXAMPLES

    target = root / "shop"
    shutil.copytree(EXAMPLES / "shop", target)
    return target


def _run_all(workspace: Path, task_ids: tuple[str, ...]) -> list[object]:
    outcomes = []
    with Runner.open(workspace) as runner:
        for task_id in task_ids:
            outcome = runner.run(task_id)
            assert outcome.complete, outcome.reason
            outcomes.append(outcome)
    return outcomes


def _prisma_bytes(workspace: Path) -> dict[str, bytes]:
    return {
        p.relative_to(workspace).as_posix(): p.read_bytes()
        for p in sorted((workspace / "prisma").rglob("*"))
        if p.is_file()
    }


def _pgfacts(reference: str, candidate: str) -> str:
    return subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(reference), libpq_url(candidate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.postgres
@pytest.mark.slow
def test_shop_backlog_gives_three_migrations_equal_to_the_shop_ddl(
    shop_workspace: Path, pg_databases: ScratchDatabases
) -> None:
    """Three tasks, three commits of Prisma files only, proved on PostgreSQL."""
    workspace = _prisma_workspace(shop_workspace, server=PG_ADMIN_URL)

    outcomes = _run_all(workspace, SHOP_TASKS)

    repo = git.Repo(workspace)
    commits = list(repo.iter_commits("HEAD", max_count=3))[::-1]
    migrations = [
        p.relative_to(workspace).as_posix() for p in migration_files(workspace)
    ]
    assert [m.split("/")[2][:14] for m in migrations] == [
        "20000101000001",
        "20000101000002",
        "20000101000003",
    ]
    for number, (commit, task_id, outcome) in enumerate(
        zip(commits, SHOP_TASKS, outcomes, strict=True)
    ):
        files = set(commit.stats.files)
        required = {SCHEMA_FILE, migrations[number], f"docs/backlog/{task_id}.yaml"}
        # seed.ts when its rows change; the lock file once
        optional = {SEED_FILE, LOCK_FILE} if number == 0 else {SEED_FILE}
        assert required <= files <= required | optional, files
        if number == 0:
            assert files == required | optional
        report = "\n".join(outcome.report)  # type: ignore[attr-defined]
        assert f"postgresql: {number + 1} migrations applied in order" in report
        assert "catalog equals a one-step build" in report
    assert not (workspace / "alembic/versions").exists()
    assert not (workspace / ".sparc/scratch").exists()
    assert not repo.is_dirty(untracked_files=True)

    # each migration holds only its own step
    second = (workspace / migrations[1]).read_text(encoding="utf-8")
    assert "CREATE TABLE auth_tokens" in second and "CREATE TABLE users" not in second
    third = (workspace / migrations[2]).read_text(encoding="utf-8")
    assert "ALTER TABLE users ADD COLUMN deleted_at" in third
    assert "CREATE TABLE" not in third

    # the migrations, applied as Prisma would, give the shop DDL's catalog
    reference, candidate = pg_databases.create(), pg_databases.create()
    for name in ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"):
        psql_file(reference, SCHEMAS / name)
    for migration in migration_files(workspace):
        psql_file(candidate, migration)
    facts = _pgfacts(reference, candidate)
    assert "table-scope fidelity 45/45 = 100.0%" in facts, facts


@pytest.mark.slow
def test_same_tasks_in_two_fresh_workspaces_give_the_same_bytes(
    tmp_path: Path,
) -> None:
    """Migration timestamps come from the committed migrations, not the clock."""
    first = _prisma_workspace(_copy_of_shop(tmp_path / "a"))
    second = _prisma_workspace(_copy_of_shop(tmp_path / "b"))

    outcomes = _run_all(first, SHOP_TASKS)
    _run_all(second, SHOP_TASKS)

    files = _prisma_bytes(first)
    assert len([f for f in files if f.endswith("/migration.sql")]) == 3
    assert files == _prisma_bytes(second)
    # without a server the report says what was not proved
    assert any(
        "postgresql: not applied: no server" in line
        for line in outcomes[0].report  # type: ignore[attr-defined]
    )


@pytest.mark.postgres
def test_data_models_document_drives_a_task_without_ddl(
    tmp_path: Path, pg_admin: sa.Engine
) -> None:
    """No references, no schema block: the entities of data-models-01.md."""
    workspace = tmp_path / "models"
    (workspace / "docs/backlog").mkdir(parents=True)
    (workspace / "docs/backlog/DM-001.yaml").write_text(ENTITY_TASK)
    (workspace / DATA_MODELS_DOC).parent.mkdir(parents=True)
    (workspace / DATA_MODELS_DOC).write_text(ENTITIES)
    _prisma_workspace(workspace, server=PG_ADMIN_URL)

    (outcome,) = _run_all(workspace, ("DM-001",))

    (migration,) = migration_files(workspace)
    sql = migration.read_text(encoding="utf-8")
    assert "CREATE TABLE customers" in sql and "CREATE TABLE invoices" in sql
    assert "CHECK (total >= 0)" in sql and "ON DELETE CASCADE" in sql
    schema = (workspace / SCHEMA_FILE).read_text(encoding="utf-8")
    assert "model invoices {" in schema and "onDelete: Cascade" in schema
    assert any("1 migrations applied in order" in line for line in outcome.report)


def test_task_ddl_wins_over_the_data_models_document(shop_workspace: Path) -> None:
    """A task that references DDL of its own does not read data-models-01.md."""
    (shop_workspace / DATA_MODELS_DOC).parent.mkdir(parents=True)
    (shop_workspace / DATA_MODELS_DOC).write_text(ENTITIES)
    workspace = _prisma_workspace(shop_workspace)

    _run_all(workspace, ("DB-001",))

    spec = spec_from_prisma_migrations(workspace)
    assert [t.name for t in spec.tables] == [
        "users",
        "products",
        "orders",
        "order_items",
    ]


def test_data_models_document_drives_sqlalchemy_too(tmp_path: Path) -> None:
    """Without a stack document the same entities become models and a revision."""
    workspace = tmp_path / "models"
    (workspace / "docs/backlog").mkdir(parents=True)
    (workspace / "docs/backlog/DM-001.yaml").write_text(ENTITY_TASK)
    (workspace / DATA_MODELS_DOC).parent.mkdir(parents=True)
    (workspace / DATA_MODELS_DOC).write_text(ENTITIES)
    init_workspace(workspace)

    _run_all(workspace, ("DM-001",))

    models = (workspace / "src/models/db/models.py").read_text(encoding="utf-8")
    assert "class Invoices(Base)" in models or "class Invoice(Base)" in models
    assert list((workspace / "alembic/versions").glob("001_*.py"))
    assert not (workspace / "prisma").exists()


@pytest.mark.parametrize(
    ("stack", "line", "words"),
    [
        ("Database: PostgreSQL\nORM: Django 5\n", 2, "ORM 'Django 5'"),
        ("- **Database**: MariaDB 11\n- **ORM**: Prisma\n", 1, "PostgreSQL only"),
        ("ORM: Prisma\nTargets: postgresql, sqlite\n", 2, "cannot be proved on sqlite"),
    ],
)
def test_bad_stack_document_is_exit_2_naming_file_and_line(
    shop_workspace: Path, stack: str, line: int, words: str
) -> None:
    workspace = _prisma_workspace(shop_workspace, stack=stack)
    head = git.Repo(workspace).head.commit.hexsha

    result = CliRunner().invoke(main, ["-C", str(workspace), "run", "DB-001"])

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {STACK_DOC}:{line}: ")
    assert words in result.stderr
    task = load_task(workspace / "docs/backlog/DB-001.yaml").task
    assert task.status is TaskStatus.NEW
    assert git.Repo(workspace).head.commit.hexsha == head


def test_unknown_orm_names_the_accepted_values(shop_workspace: Path) -> None:
    workspace = _prisma_workspace(shop_workspace, stack="ORM: Hibernate\n")

    result = CliRunner().invoke(main, ["-C", str(workspace), "run", "DB-001"])

    assert result.exit_code == 2
    assert "use one of prisma, sqlalchemy" in result.stderr


def test_batch_refuses_a_bad_stack_document_as_run_does(
    shop_workspace: Path,
) -> None:
    workspace = _prisma_workspace(shop_workspace, stack="# Stack\n\nORM: Hibernate\n")
    head = git.Repo(workspace).head.commit.hexsha
    backlog = workspace / "docs/backlog"
    before = {p.name: p.read_bytes() for p in backlog.glob("*.yaml")}

    result = CliRunner().invoke(main, ["-C", str(workspace), "batch"])

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {STACK_DOC}:3: ORM 'Hibernate'")
    assert "use one of prisma, sqlalchemy" in result.stderr
    assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in backlog.glob("*.yaml")} == before
    assert git.Repo(workspace).head.commit.hexsha == head


@pytest.mark.postgres
def test_verify_finds_a_migration_that_drifts_from_the_schema(
    shop_workspace: Path, pg_admin: sa.Engine
) -> None:
    """A catalog difference the DDL reader cannot see still fails verification."""
    workspace = _prisma_workspace(shop_workspace, server=PG_ADMIN_URL)
    _run_all(workspace, ("DB-001",))
    (migration,) = migration_files(workspace)
    # the reader keeps the index but not its storage parameter
    with migration.open("a", encoding="utf-8") as handle:
        handle.write(
            "CREATE INDEX idx_users_name ON users (name) WITH (fillfactor=70);\n"
        )
    spec = spec_from_prisma_migrations(workspace)
    (workspace / SCHEMA_FILE).write_text(render_prisma_schema(spec), encoding="utf-8")
    (workspace / SEED_FILE).write_text(render_prisma_seed(spec), encoding="utf-8")
    with Runner.open(workspace) as runner:
        context = _context(runner, "DB-001")

    with pytest.raises(VerificationError, match="idx_users_name") as caught:
        HephaestusEngine().verify(context)

    assert caught.value.step == "no drift"


def test_verify_finds_a_hand_edited_schema_file(shop_workspace: Path) -> None:
    """schema.prisma must be what the migrations build."""
    workspace = _prisma_workspace(shop_workspace)
    _run_all(workspace, ("DB-001",))
    schema = workspace / SCHEMA_FILE
    schema.write_text(
        schema.read_text(encoding="utf-8").replace("model users {", "model User {"),
        encoding="utf-8",
    )
    with Runner.open(workspace) as runner:
        context = _context(runner, "DB-001")

    with pytest.raises(VerificationError, match="prisma/schema.prisma differs"):
        HephaestusEngine().verify(context)


def test_completion_review_lints_the_new_migration(shop_workspace: Path) -> None:
    """Hephaestus reviews Completion: the migration's own SQL is linted."""
    workspace = _prisma_workspace(shop_workspace)
    _run_all(workspace, ("DB-001", "DB-002"))
    task = workspace / "docs/backlog/DB-003.yaml"
    task.write_text(
        task.read_text().replace(
            "phases: [refinement]", "phases: [refinement, completion]"
        )
    )

    (outcome,) = _run_all(workspace, ("DB-003",))

    found = [
        (f["code"], f["location"].rsplit("/", 1)[1])
        for f in outcome.findings  # type: ignore[attr-defined]
        if f["location"].startswith("prisma/migrations/20000101000003_")
    ]
    # indexes on tables that already exist, created without CONCURRENTLY
    assert ("HM101", "migration.sql:5") in found
    # nothing from the earlier migrations, which were reviewed before
    assert all(
        not f["location"].startswith("prisma/migrations/2000010100000" + n)
        for f in outcome.findings  # type: ignore[attr-defined]
        for n in ("1", "2")
    )


def test_a_rename_is_refused_rather_than_dropping_data(shop_workspace: Path) -> None:
    workspace = _prisma_workspace(shop_workspace)
    _run_all(workspace, ("DB-001",))
    (workspace / "docs/data/shop-3-indexes.sql").write_text(
        "ALTER TABLE products RENAME COLUMN name TO title;\n"
    )
    task = workspace / "docs/backlog/DB-003.yaml"
    task.write_text(task.read_text().replace("depends_on: [DB-002]", "depends_on: []"))

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-003")

    assert not outcome.complete
    assert "renaming products.name to title is not carried" in outcome.reason
    assert len(migration_files(workspace)) == 1


def test_a_not_null_column_for_existing_rows_is_refused(shop_workspace: Path) -> None:
    """The UPDATE between ADD COLUMN and SET NOT NULL cannot reach the migration."""
    workspace = _prisma_workspace(shop_workspace)
    _run_all(workspace, ("DB-001",))
    (workspace / "docs/data/shop-3-indexes.sql").write_text(
        "ALTER TABLE products ADD COLUMN sku text;\n"
        "UPDATE products SET sku = 'x';\n"
        "ALTER TABLE products ALTER COLUMN sku SET NOT NULL;\n"
    )
    task = workspace / "docs/backlog/DB-003.yaml"
    task.write_text(task.read_text().replace("depends_on: [DB-002]", "depends_on: []"))
    head = git.Repo(workspace).head.commit.hexsha

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-003")

    assert not outcome.complete
    assert "column products.sku is NOT NULL without a DEFAULT" in outcome.reason
    assert "backfill it before setting NOT NULL" in outcome.reason
    assert len(migration_files(workspace)) == 1
    assert git.Repo(workspace).head.commit.hexsha == head


def test_sqlalchemy_targets_without_a_server_are_reported(
    shop_workspace: Path,
) -> None:
    """A server target with no `verify:` URL is named in the report, not skipped."""
    stack = "ORM: SQLAlchemy\nTargets: postgresql, sqlite, mariadb\n"
    workspace = _prisma_workspace(shop_workspace, stack=stack)

    (outcome,) = _run_all(workspace, ("DB-001",))

    report = "\n".join(outcome.report)  # type: ignore[attr-defined]
    assert "sqlite: upgrade head" in report
    for target in ("postgresql", "mariadb"):
        assert (
            f"{target}: a target of {STACK_DOC}, not verified on a server: add "
            f"`verify: {{{target}: URL}}` to .sparc/config.yaml"
        ) in report
    assert list((workspace / "alembic/versions").glob("001_*.py"))


@pytest.mark.parametrize(
    ("stack", "flagged"),
    [("Targets: postgresql, mariadb\n", True), ("Targets: postgresql\n", False)],
)
def test_review_judges_the_stack_targets(
    shop_workspace: Path, stack: str, flagged: bool
) -> None:
    """MariaDB refuses a VARCHAR without a length: flagged only when targeted."""
    (shop_workspace / "docs/data/notes.sql").write_text(
        "CREATE TABLE notes (id serial PRIMARY KEY, body varchar);\n"
    )
    task = shop_workspace / "docs/backlog/DB-001.yaml"
    task.write_text(
        task.read_text().replace("docs/data/shop-queries.sql", "docs/data/notes.sql")
    )
    workspace = _prisma_workspace(shop_workspace, stack=stack)
    with Runner.open(workspace) as runner:
        context = _context(runner, "DB-001", phase="specification")

    review = HephaestusEngine().review(context)  # type: ignore[arg-type]

    codes = {f.code for f in review.findings}
    assert ("HD204" in codes) is flagged


def _context(runner: Runner, task_id: str, *, phase: str = "refinement") -> object:
    from sparc.engines import WorkContext

    runtime = runner.runtime
    return WorkContext(
        workspace=runtime.workspace,
        config=runtime.config,
        task=runtime.task(task_id),
        phase=phase,
        persona=runtime.personas.get("hephaestus"),
    )
