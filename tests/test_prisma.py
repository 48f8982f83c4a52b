"""Tests for sparc.agents.hephaestus.prisma: schema.prisma, migrations, seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sparc.agents.hephaestus.ddl import parse_file, parse_sql
from sparc.agents.hephaestus.lint.sql_migrations import (
    SqlMigration,
    lint_sql_migrations,
)
from sparc.agents.hephaestus.prisma import (
    LOCK_FILE,
    SCHEMA_FILE,
    SEED_FILE,
    forge_prisma,
    migration_files,
    next_migration_timestamp,
    prisma_migration_dir,
    render_prisma_migration,
    render_prisma_schema,
    render_prisma_seed,
    spec_from_prisma_migrations,
)
from sparc.agents.hephaestus.prisma_verify import catalog_facts, prove_prisma
from sparc.agents.hephaestus.requests import apply_requests, parse_schema_request
from sparc.agents.hephaestus.scripts import render_seed_sql, seed_statements
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.errors import DDLError, VerificationError

from .conftest import (
    CASES,
    PG_ADMIN_URL,
    SCHEMAS,
    SHARED,
    ScratchDatabases,
    libpq_url,
    partition_objects,
    psql_file,
)

GOLDEN = Path(__file__).parent / "fixtures" / "prisma"
PGFACTS = SHARED / "tools" / "pgfacts.py"
SHOP_FILES = ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql")
# SPARC_UPDATE_GOLDEN=1 rewrites the golden files from the current output
UPDATE_GOLDEN = os.environ.get("SPARC_UPDATE_GOLDEN") == "1"

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared schemas not found at {SCHEMAS}",
)


def _shop_steps() -> list[SchemaSpec]:
    steps, spec = [], None
    for name in SHOP_FILES:
        spec = parse_file(SCHEMAS / name, display=name, base=spec).spec
        steps.append(spec)
    return steps


def _case(*numbers: str) -> SchemaSpec:
    spec = SchemaSpec()
    for number in numbers:
        path = next(CASES.glob(f"{number}-*.sql"))
        spec = parse_file(path, display=path.name, base=spec).spec
    return spec


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def _forge_steps(root: Path, steps: list[SchemaSpec]) -> list[dict[str, str]]:
    written = []
    for number, spec in enumerate(steps, 1):
        previous = spec_from_prisma_migrations(root)
        files = forge_prisma(
            root,
            task_id=f"DB-00{number}",
            title=f"step {number}",
            spec=spec,
            previous=previous if previous.tables else None,
        )
        for relative, text in files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        written.append(files)
    return written


def _pgfacts(reference: str, candidate: str) -> str:
    return subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(reference), libpq_url(candidate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# -- schema.prisma ---------------------------------------------------------------


def test_shop_schema_matches_golden_file() -> None:
    _golden("shop.prisma", render_prisma_schema(_shop_steps()[-1]))


def test_composite_keys_and_enums_match_golden_file() -> None:
    """Cases 01 (enum), 17 (circular keys, named relations) and 19 (composite)."""
    _golden("cases.prisma", render_prisma_schema(_case("01", "17", "19")))


def test_schema_carries_the_database_names() -> None:
    text = render_prisma_schema(_shop_steps()[-1])

    assert '@id(map: "pk_users") @default(autoincrement())' in text
    assert '@unique(map: "uq_users_email") @db.VarChar(255)' in text
    assert "onDelete: Cascade" in text
    assert (
        '@@index([user_id, created_at(sort: Desc)], map: "idx_orders_user_date")'
        in (text)
    )
    assert "// - index idx_active_users" in text
    assert "@db.Timestamp(6)" in text and "@db.Decimal(10, 2)" in text


def test_names_prisma_cannot_take_are_mapped() -> None:
    spec = parse_sql(
        "CREATE TYPE \"Mood\" AS ENUM ('very happy', 'ok');"
        'CREATE TABLE "String" ("1st" integer PRIMARY KEY, m "Mood" DEFAULT \'ok\','
        " doc tsvector, ids uuid[], d interval);",
        source="odd.sql",
    ).spec

    # columns are aligned; compare with single spaces
    text = " ".join(render_prisma_schema(spec).split())

    assert "model String_ {" in text and '@@map("String")' in text
    assert 'x1st Int @id(map: "pk_String") @map("1st")' in text
    assert 'very_happy @map("very happy")' in text
    assert "m Mood? @default(ok)" in text
    assert 'doc Unsupported("tsvector")?' in text
    assert "ids String[] @db.Uuid" in text
    assert 'd Unsupported("interval")?' in text


def test_only_postgresql_provider() -> None:
    with pytest.raises(DDLError, match="PostgreSQL"):
        render_prisma_schema(SchemaSpec(), provider="mysql")


# -- migrations ----------------------------------------------------------------------


def test_migration_names_are_deterministic(tmp_path: Path) -> None:
    assert next_migration_timestamp(tmp_path) == "20000101000001"
    folder = tmp_path / prisma_migration_dir("DB-001", "Create core", "20000101000001")
    folder.mkdir(parents=True)
    (tmp_path / "prisma/migrations/20240229235959_init").mkdir()

    assert folder.name == "20000101000001_db_001_create_core"
    assert next_migration_timestamp(tmp_path) == "20240301000000"
    with pytest.raises(DDLError):
        prisma_migration_dir("DB-1", "x", "2024")


def test_forge_writes_schema_seed_lock_and_migration(tmp_path: Path) -> None:
    written = _forge_steps(tmp_path, _shop_steps())

    assert sorted(written[0]) == sorted(
        [
            SCHEMA_FILE,
            SEED_FILE,
            LOCK_FILE,
            "prisma/migrations/20000101000001_db_001_step_1/migration.sql",
        ]
    )
    assert "prisma/migrations/20000101000003_db_003_step_3/migration.sql" in written[2]
    assert LOCK_FILE not in written[1]
    # the migrations read back give the schema: nothing left to migrate
    assert (
        render_prisma_migration(
            spec_from_prisma_migrations(tmp_path), _shop_steps()[-1]
        )
        == ""
    )


def test_migration_delta_alters_drops_and_extends_enums() -> None:
    before = parse_sql(
        "CREATE TYPE state AS ENUM ('open', 'done');"
        "CREATE TABLE a (id integer PRIMARY KEY, s state, price numeric(18,6) NOT NULL,"
        " note text, old integer);"
        "CREATE TABLE gone (id integer PRIMARY KEY, a_id integer REFERENCES a);",
        source="before.sql",
    ).spec
    after = parse_sql(
        "CREATE TYPE state AS ENUM ('new', 'open', 'done');"
        "CREATE TABLE a (id integer PRIMARY KEY, s state, price numeric(20,6),"
        " note text NOT NULL DEFAULT '', added boolean NOT NULL DEFAULT false);",
        source="after.sql",
    ).spec

    text = render_prisma_migration(before, after)

    assert text.index("DROP CONSTRAINT fk_gone_a_id_a") < text.index("DROP TABLE gone")
    assert "ALTER TYPE state ADD VALUE 'new' BEFORE 'open'" in text
    assert 'ALTER TABLE a DROP COLUMN "old"' in text
    assert "ALTER TABLE a ADD COLUMN added BOOLEAN DEFAULT false NOT NULL" in text
    assert "ALTER TABLE a ALTER COLUMN price TYPE NUMERIC(20, 6)" in text
    assert "ALTER TABLE a ALTER COLUMN price DROP NOT NULL" in text
    assert "ALTER TABLE a ALTER COLUMN note SET NOT NULL" in text
    assert "ALTER TABLE a ALTER COLUMN note SET DEFAULT ''" in text
    with pytest.raises(DDLError, match="removed or reordered"):
        render_prisma_migration(after, before)


def test_seed_runs_the_seed_sql_statements() -> None:
    spec = _shop_steps()[-1]

    text = render_prisma_seed(spec)

    statements = seed_statements(render_seed_sql(spec), "postgresql")
    assert statements
    for statement in statements:
        assert f"  {__import__('json').dumps(statement)}," in text
    assert "$executeRawUnsafe" in text and "$queryRawUnsafe" in text


@pytest.mark.postgres
def test_shop_migrations_rebuild_the_sql_catalog(
    tmp_path: Path, pg_databases: ScratchDatabases
) -> None:
    """The three migration.sql files give the catalog of the shop DDL (100%)."""
    _forge_steps(tmp_path, _shop_steps())
    reference, candidate = pg_databases.create(), pg_databases.create()
    for name in SHOP_FILES:
        psql_file(reference, SCHEMAS / name)

    for migration in sorted((tmp_path / "prisma/migrations").glob("*/migration.sql")):
        psql_file(candidate, migration)

    facts = _pgfacts(reference, candidate)
    assert "table-scope fidelity 45/45 = 100.0%" in facts, facts


@pytest.mark.postgres
@pytest.mark.parametrize("number", ["06", "09", "11", "13"])
def test_case_migration_applies_on_seeded_baseline(
    number: str, tmp_path: Path, pg_databases: ScratchDatabases
) -> None:
    """A request case's delta runs on the seeded baseline and equals a fresh build."""
    import yaml

    task = yaml.safe_load(next(CASES.glob(f"{number}-*.yaml")).read_text())["task"]
    for change in task["request"]:
        for body in change.values():
            for key in [k for k in body if str(k).endswith(")")]:
                body.pop(key)
                body["type"] = f"{body['type']},{key}"
    base = parse_sql(task["baseline_ddl"], source="baseline.sql").spec
    request = parse_schema_request({"changes": task["request"]})
    spec = apply_requests(base, request)
    stepwise, fresh = pg_databases.create(), pg_databases.create()
    files = {
        "base.sql": render_prisma_migration(None, base),
        "seed.sql": task.get("baseline_seed", ""),
        "delta.sql": render_prisma_migration(base, spec),
        "fresh.sql": render_prisma_migration(None, spec),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")

    for name in ("base.sql", "seed.sql", "delta.sql"):
        psql_file(stepwise, tmp_path / name)
    psql_file(fresh, tmp_path / "fresh.sql")

    facts = _pgfacts(fresh, stepwise)
    assert "table-scope fidelity" in facts and "= 100.0%" in facts.splitlines()[-2], (
        facts
    )
    if number == "06":
        engine = sa.create_engine(stepwise)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.text("SELECT is_verified, created_at IS NULL FROM account")
                ).all()
        finally:
            engine.dispose()
        assert rows == [(False, False), (False, False)]


# -- read back, proof and lint ---------------------------------------------------------


def test_forged_schema_is_what_the_migrations_build(tmp_path: Path) -> None:
    """A later task never rewrites lines an earlier one wrote: one reading of truth."""
    written = _forge_steps(tmp_path, _shop_steps())

    built = spec_from_prisma_migrations(tmp_path)
    assert written[2][SCHEMA_FILE] == render_prisma_schema(built)
    assert written[2][SEED_FILE] == render_prisma_seed(built)
    # indexes are listed as the migrations create them, in every later schema
    second = written[1][SCHEMA_FILE]
    assert second.index("idx_auth_tokens_expires_at") < second.index(
        "idx_auth_tokens_user_id"
    )


def test_proof_without_a_server_says_what_it_did_not_do(tmp_path: Path) -> None:
    _forge_steps(tmp_path, _shop_steps()[:1])

    proof = prove_prisma(tmp_path, server_url=None)

    assert proof.spec.table("users") is not None
    assert proof.report == (
        "prisma: 1 migrations read back; schema.prisma and seed.ts are what they build",
        "postgresql: not applied: no server under `verify: {postgresql: URL}` in "
        ".sparc/config.yaml; the migrations were read back only",
    )


def test_proof_of_a_folder_without_migrations_is_empty(tmp_path: Path) -> None:
    assert prove_prisma(tmp_path, server_url=None).report == ()


@pytest.mark.parametrize(
    ("relative", "edit", "words"),
    [
        (SEED_FILE, lambda t: t.replace("seed1@", "someone@"), "seed.ts differs"),
        (SCHEMA_FILE, lambda t: "", "schema.prisma differs from it from line 1"),
        (LOCK_FILE, lambda t: 'provider = "mysql"\n', "names another provider"),
    ],
)
def test_proof_refuses_files_the_migrations_do_not_build(
    tmp_path: Path, relative: str, edit: object, words: str
) -> None:
    _forge_steps(tmp_path, _shop_steps()[:1])
    path = tmp_path / relative
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]

    with pytest.raises(VerificationError, match=words):
        prove_prisma(tmp_path, server_url=None)


@pytest.mark.postgres
def test_proof_on_a_server_applies_compares_and_seeds(
    tmp_path: Path, pg_admin: sa.Engine
) -> None:
    _forge_steps(tmp_path, _shop_steps())

    proof = prove_prisma(tmp_path, server_url=PG_ADMIN_URL)

    assert proof.report[1].startswith(
        "postgresql: 3 migrations applied in order; catalog equals a one-step build"
    )
    assert "seed ran (9 statements)" in proof.report[1]


@pytest.mark.postgres
def test_proof_names_a_migration_postgresql_refuses(
    tmp_path: Path, pg_admin: sa.Engine
) -> None:
    _forge_steps(tmp_path, _shop_steps()[:1])
    (migration,) = migration_files(tmp_path)
    # the reader takes a check on an unknown column; PostgreSQL does not
    text = migration.read_text(encoding="utf-8")
    migration.write_text(text.replace("CHECK (price >= 0)", "CHECK (pric >= 0)"))
    spec = spec_from_prisma_migrations(tmp_path)
    (tmp_path / SCHEMA_FILE).write_text(render_prisma_schema(spec))
    (tmp_path / SEED_FILE).write_text(render_prisma_seed(spec))

    with pytest.raises(
        VerificationError, match='column "pric" does not exist'
    ) as caught:
        prove_prisma(tmp_path, server_url=PG_ADMIN_URL)

    assert caught.value.step == f"apply {migration.relative_to(tmp_path).as_posix()}"


@pytest.mark.postgres
def test_catalog_facts_name_the_schema_independent_definition(
    pg_url: str,
) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE SCHEMA elsewhere")
            connection.exec_driver_sql("SET search_path TO elsewhere")
            connection.exec_driver_sql(
                "CREATE TABLE t (id serial PRIMARY KEY, n text NOT NULL DEFAULT 'x');"
                "CREATE INDEX t_n ON t (n) WITH (fillfactor = 70);"
                "COMMENT ON COLUMN t.n IS 'a name'"
            )
            facts = catalog_facts(connection)
    finally:
        engine.dispose()

    assert ("table", "t", "r") in facts
    assert (
        "column",
        "t.n",
        "text not null=true default='x'::text identity= generated=",
    ) in facts
    assert (
        "index",
        "t.t_n",
        "CREATE INDEX t_n ON t USING btree (n) WITH (fillfactor='70')",
    ) in facts
    assert ("comment", "t.n", "a name") in facts


def test_sql_migration_lint_locates_and_silences_findings(tmp_path: Path) -> None:
    """New tables in the same script are not flagged; live ones are; ignore works."""
    _forge_steps(tmp_path, _shop_steps())
    migrations = [
        SqlMigration(p.relative_to(tmp_path).as_posix(), p.read_text(encoding="utf-8"))
        for p in migration_files(tmp_path)
    ]
    third = migrations[2].display

    findings = lint_sql_migrations(migrations, report_on={third})

    located = {(f.code, f.location) for f in findings}
    assert ("HM101", f"{third}:5") in located
    assert all(f.location.startswith(third) for f in findings)
    assert not [f for f in lint_sql_migrations(migrations[:2]) if f.code == "HM101"]

    silenced = migrations[2].sql.replace(
        "-- CreateIndex\n", "-- CreateIndex  -- sparc: ignore HM101\n", 1
    )
    migrations[2] = SqlMigration(third, silenced)
    again = {(f.code, f.location) for f in lint_sql_migrations(migrations)}
    assert ("HM101", f"{third}:5") not in again
    assert ("HM101", f"{third}:8") in again


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(("schema", "facts"), [("chinook", 108), ("pagila", 242)])
def test_whole_catalogs_survive_a_prisma_migration(
    schema: str, facts: int, tmp_path: Path, pg_databases: ScratchDatabases
) -> None:
    """Domains, partitions, views, functions and triggers ride in migration.sql."""
    source = SCHEMAS / f"{schema}.sql"
    spec = parse_file(source, display=source.name).spec
    files = forge_prisma(
        tmp_path, task_id="DB-1", title=schema, spec=spec, previous=None
    )
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    reference, candidate = pg_databases.create(), pg_databases.create()
    psql_file(reference, source)

    (migration,) = migration_files(tmp_path)
    # one transaction, as Prisma runs the script
    subprocess.run(
        ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(candidate)]
        + ["-f", str(migration)],
        check=True,
        capture_output=True,
    )

    output = _pgfacts(reference, candidate)
    assert f"\nfidelity {facts}/{facts} = 100.0%" in f"\n{output}", output
    # pgfacts leaves partitions out: their own keys and indexes
    assert partition_objects(candidate) == partition_objects(reference)


def test_workspace_review_lints_prisma_migrations(tmp_path: Path) -> None:
    """`sparc review WORKSPACE` reads every migration.sql too."""
    from sparc.agents.hephaestus.lint import lint_path

    (tmp_path / ".sparc").mkdir()
    _forge_steps(tmp_path, _shop_steps())

    report = lint_path(tmp_path)

    assert "prisma/migrations" in report.sources
    assert any(
        f.code == "HM101"
        and "/20000101000003_db_003_step_3/migration.sql:" in f.location
        for f in report.findings
    )
