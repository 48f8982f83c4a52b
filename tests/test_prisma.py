"""Tests for sparc.agents.hephaestus.prisma: schema.prisma, migrations, seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sparc.agents.hephaestus.ddl import parse_file, parse_sql
from sparc.agents.hephaestus.prisma import (
    LOCK_FILE,
    SCHEMA_FILE,
    SEED_FILE,
    forge_prisma,
    next_migration_timestamp,
    prisma_migration_dir,
    render_prisma_migration,
    render_prisma_schema,
    render_prisma_seed,
    spec_from_prisma_migrations,
)
from sparc.agents.hephaestus.requests import apply_requests, parse_schema_request
from sparc.agents.hephaestus.scripts import render_seed_sql, seed_statements
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.errors import DDLError

from .conftest import CASES, SCHEMAS, SHARED, ScratchDatabases, libpq_url, psql_file

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
