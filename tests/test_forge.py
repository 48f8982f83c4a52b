"""forge renders, migrates and verifies, writing nothing in the workspace."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sparc.agents.hephaestus.ddl import parse_file, parse_sql
from sparc.agents.hephaestus.forge import alembic_template, forge
from sparc.agents.hephaestus.spec import EnumType, SchemaSpec
from sparc.agents.hephaestus.verify import verify_url
from sparc.errors import VerificationError
from tests import hephaestus_specs as specs
from tests.conftest import (
    SCHEMAS,
    SHARED,
    ScratchDatabases,
    libpq_url,
    psql_file,
    server_urls,
)

PGFACTS = SHARED / "tools" / "pgfacts.py"


def _forge_into(root: Path, step: str, spec: SchemaSpec) -> list[str]:
    before = sorted(p for p in root.rglob("*") if p.is_file())
    result = forge(root, project="shop", task_id=f"DB-{step}", title=step, spec=spec)
    assert sorted(p for p in root.rglob("*") if p.is_file()) == before
    for relative, text in result.files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sorted(result.files)


def _shop_workspace(root: Path) -> list[list[str]]:
    return [_forge_into(root, f"00{step}", specs.shop_step(step)) for step in (1, 2, 3)]


def _alembic(root: Path, *args: str, url: str | None = None) -> str:
    env = {**os.environ}
    env.pop("DATABASE_URL", None)
    if url:
        env["DATABASE_URL"] = url
    alembic = Path(sys.executable).parent / "alembic"
    done = subprocess.run(
        [str(alembic), "-c", "alembic/alembic.ini", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


@pytest.mark.slow
def test_shop_in_three_steps_on_sqlite(tmp_path: Path) -> None:
    written = _shop_workspace(tmp_path)

    assert written[0] == [
        "alembic/alembic.ini",
        "alembic/env.py",
        "alembic/versions/001_001.py",
        "src/shop/db/models.py",
    ]
    assert written[1] == ["alembic/versions/002_002.py", "src/shop/db/models.py"]
    assert written[2] == ["alembic/versions/003_003.py", "src/shop/db/models.py"]
    (tmp_path / ".sparc").mkdir()
    _alembic(tmp_path, "upgrade", "head")
    _alembic(tmp_path, "downgrade", "base")
    _alembic(tmp_path, "upgrade", "head")
    assert "No new upgrade operations detected" in _alembic(tmp_path, "check")


def test_each_models_file_is_imported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revision, every verification step and the offline SQL share one import."""
    _forge_into(tmp_path, "001", specs.shop_step(1))
    imported: list[str] = []
    find_spec = importlib.util.spec_from_file_location

    def counted(name: str, location: object, *args: object, **kwargs: object) -> object:
        if Path(str(location)).name == "models.py":
            imported.append(str(location))
        return find_spec(name, location, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "spec_from_file_location", counted)
    result = forge(
        tmp_path, project="shop", task_id="X", title="x", spec=specs.shop_step(2)
    )

    assert result.revision is not None
    assert any("upgrade head over existing rows" in line for line in result.report)
    # the workspace's models at head, then the new ones in the scratch copy
    assert len(imported) == 2
    assert imported[0] == str(tmp_path / "src/shop/db/models.py")


def test_env_py_that_cannot_load_the_models_fails_the_forge(tmp_path: Path) -> None:
    (tmp_path / "alembic" / "versions").mkdir(parents=True)
    elsewhere = alembic_template("env.py", project="other")
    (tmp_path / "alembic" / "env.py").write_text(elsewhere, encoding="utf-8")

    with pytest.raises(VerificationError) as caught:
        forge(tmp_path, project="shop", task_id="X", title="x", spec=specs.shop_step(1))

    assert caught.value.step == "load models through env.py"
    assert "other" in str(caught.value)


def test_unchanged_spec_forges_nothing(tmp_path: Path) -> None:
    _forge_into(tmp_path, "001", specs.shop_step(1))

    result = forge(
        tmp_path, project="shop", task_id="X", title="x", spec=specs.shop_step(1)
    )

    assert result.files == {} and result.revision is None
    assert "schema unchanged: no revision" in result.report


@pytest.mark.slow
@pytest.mark.postgres
def test_shop_migrations_rebuild_the_sql_catalog(
    tmp_path: Path, pg_databases: ScratchDatabases
) -> None:
    """Table-scope fidelity of the three revisions against the shop SQL is 100%."""
    _shop_workspace(tmp_path)
    reference, candidate = pg_databases.create(), pg_databases.create()
    for name in ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"):
        psql_file(reference, SCHEMAS / name)

    verify_url(candidate, tmp_path / "alembic", tmp_path / "src/shop/db/models.py")
    assert "No new upgrade operations" in _alembic(tmp_path, "check", url=candidate)
    facts = subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(reference), libpq_url(candidate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "table-scope fidelity 45/45 = 100.0%" in facts, facts


@pytest.mark.postgres
@pytest.mark.parametrize(
    "spec_name", ["ticket_enum", "meter_reading", "vehicle_listing", "api_client"]
)
def test_cases_round_trip_on_postgresql(
    tmp_path: Path, pg_url: str, spec_name: str
) -> None:
    """Cases 01, 03, 04 and 07: upgrade, downgrade (types gone), upgrade, no drift."""
    _forge_into(tmp_path, "001", getattr(specs, spec_name)())

    report = verify_url(
        pg_url, tmp_path / "alembic", tmp_path / "src/shop/db/models.py"
    )

    assert report.dialect == "postgresql" and "empty after downgrade" in report.steps
    engine = sa.create_engine(pg_url)
    with engine.connect() as connection:
        if spec_name == "meter_reading":
            names = (
                connection.execute(
                    sa.text(
                        "SELECT conname FROM pg_constraint WHERE contype = 'c' "
                        "AND conrelid = 'meter_reading'::regclass ORDER BY 1"
                    )
                )
                .scalars()
                .all()
            )
            assert names == ["ck_meter_reading_kwh_nonneg", "ck_meter_reading_quality"]
        if spec_name == "vehicle_listing":
            definition = connection.execute(
                sa.text(
                    "SELECT pg_get_indexdef('uq_vehicle_listing_vin_active'::regclass)"
                )
            ).scalar_one()
            assert definition.endswith("WHERE is_active")
        if spec_name == "api_client":
            row = connection.execute(
                sa.text(
                    "INSERT INTO api_client (label) VALUES ('x') "
                    "RETURNING id, created_at"
                )
            ).one()
            assert row.id is not None and row.created_at is not None
    engine.dispose()


def test_enum_offline_sql_creates_and_drops_the_type(tmp_path: Path) -> None:
    """Case 01 E3/E4 in offline mode for PostgreSQL."""
    _forge_into(tmp_path, "001", specs.ticket_enum())
    url = "postgresql://"

    up = _alembic(tmp_path, "upgrade", "head", "--sql", url=url)
    down = _alembic(tmp_path, "downgrade", "001:base", "--sql", url=url)

    create = "CREATE TYPE ticket_status AS ENUM ('open', 'in_progress', 'closed')"
    assert up.count(create) == 1 and up.index(create) < up.index("CREATE TABLE ticket")
    assert down.index("DROP TABLE ticket") < down.index("DROP TYPE ticket_status")


@pytest.mark.postgres
@pytest.mark.mariadb
def test_verify_urls_run_the_chain_on_each_server(
    tmp_path: Path, pg_admin: sa.Engine, mariadb_admin: sa.Engine
) -> None:
    """Each configured server gets a scratch database, verified, then dropped."""

    def scratch_names() -> list[str]:
        names = []
        for engine, query in (
            (pg_admin, "SELECT datname FROM pg_database"),
            (mariadb_admin, "SHOW DATABASES"),
        ):
            with engine.connect() as connection:
                names += [row[0] for row in connection.execute(sa.text(query))]
        return [name for name in names if name.startswith("sparc_verify_")]

    before = scratch_names()
    urls = server_urls(pg_admin, mariadb_admin)

    result = forge(
        tmp_path,
        project="shop",
        task_id="DB-1",
        title="tickets",
        spec=specs.ticket_enum(),
        verify_urls=urls,
    )

    steps = "upgrade head, downgrade base, empty after downgrade, upgrade head again"
    assert f"postgresql: {steps}, no drift: passed" in result.report
    assert f"mariadb: {steps}, no drift: passed" in result.report
    assert scratch_names() == before


@pytest.mark.postgres
def test_changed_enum_values_are_migrated_both_ways(
    tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL rebuilds the type; rows keep their labels; downgrade restores."""
    _forge_into(tmp_path, "001", specs.ticket_enum())
    changed = specs.ticket_enum().model_copy(
        update={
            "enums": [
                EnumType(
                    name="ticket_status",
                    values=["open", "blocked", "in_progress", "closed"],
                )
            ]
        }
    )
    _forge_into(tmp_path, "002", changed)
    engine = sa.create_engine(pg_url)
    models = tmp_path / "src/shop/db/models.py"

    def labels() -> list[str]:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sa.text(
                        "SELECT enumlabel FROM pg_enum e JOIN pg_type t "
                        "ON t.oid = e.enumtypid WHERE t.typname = 'ticket_status' "
                        "ORDER BY e.enumsortorder"
                    )
                ).scalars()
            )

    _alembic(tmp_path, "upgrade", "001", url=pg_url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO ticket (title) VALUES ('t')"))
    _alembic(tmp_path, "upgrade", "head", url=pg_url)
    upgraded = labels()
    _alembic(tmp_path, "downgrade", "001", url=pg_url)
    downgraded = labels()
    with engine.connect() as connection:
        status = connection.execute(sa.text("SELECT status::text FROM ticket")).scalar()
    engine.dispose()

    assert upgraded == ["open", "blocked", "in_progress", "closed"]
    assert downgraded == ["open", "in_progress", "closed"] and status == "open"
    assert models.is_file()


@pytest.mark.postgres
@pytest.mark.slow
def test_second_task_on_pagila_holds_only_the_delta(
    tmp_path: Path, pg_databases: ScratchDatabases
) -> None:
    """A changed view and a dropped trigger: only they move, both ways, exactly."""
    pagila = parse_file(SCHEMAS / "pagila.sql", display="pagila.sql").spec
    _forge_into(tmp_path, "001", pagila)
    view = next(o for o in pagila.objects if o.name == "customer_list")
    trigger = next(o for o in pagila.objects if o.drop.endswith("ON actor"))
    new_view = view.model_copy(
        update={
            "create": view.create.replace("cu.store_id AS sid", "cu.store_id AS store")
        }
    )
    objects = [new_view if o is view else o for o in pagila.objects if o is not trigger]
    _forge_into(tmp_path, "002", pagila.model_copy(update={"objects": objects}))
    revision = next((tmp_path / "alembic/versions").glob("002_*.py")).read_text()

    assert "op.create_table" not in revision and "op.drop_table" not in revision
    assert revision.count("# view customer_list") == 4
    assert revision.count("# trigger last_updated") == 2
    assert revision.count("\n        # ") == 6

    reference, candidate = pg_databases.create(), pg_databases.create()
    psql_file(reference, SCHEMAS / "pagila.sql")
    _alembic(tmp_path, "upgrade", "head", url=candidate)
    _alembic(tmp_path, "downgrade", "001", url=candidate)
    facts = subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(reference), libpq_url(candidate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "fidelity 242/242 = 100.0%" in facts, facts


QUIRKS = """
CREATE TABLE "select" (
  id integer PRIMARY KEY,
  code varchar(20) NOT NULL CHECK (code::text <> ''::text),
  amount numeric(10,2) CHECK (amount >= 0::numeric),
  created timestamptz DEFAULT now(),
  parent_id integer REFERENCES "select"(id) ON DELETE SET NULL ON UPDATE CASCADE
    DEFERRABLE
);
CREATE INDEX ix_select_created ON "select" (created DESC NULLS LAST);
CREATE INDEX ix_select_lower ON "select" (lower((code)::text));
CREATE INDEX ix_select_cover ON "select" (code) INCLUDE (amount);
"""


@pytest.mark.postgres
def test_casts_nulls_order_and_include_rebuild_exactly(
    tmp_path: Path, pg_databases: ScratchDatabases
) -> None:
    """pg_dump's implicit casts and NULLS LAST run on SQLite and stay exact on PG."""
    reference, candidate = pg_databases.create(), pg_databases.create()
    (tmp_path / "quirks.sql").write_text(QUIRKS, encoding="utf-8")
    psql_file(reference, tmp_path / "quirks.sql")
    spec = parse_file(tmp_path / "quirks.sql", display="quirks.sql").spec
    workspace = tmp_path / "workspace"

    _forge_into(workspace, "001", spec)
    verify_url(candidate, workspace / "alembic", workspace / "src/shop/db/models.py")
    facts = subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(reference), libpq_url(candidate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "table-scope fidelity 13/13 = 100.0%" in facts, facts
    revision = next((workspace / "alembic/versions").glob("001_*.py")).read_text()
    assert "_sort_key('created DESC NULLS LAST')" in revision


# -- deltas on a committed schema ------------------------------------------------

_BLOG = """
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL, bio text);
CREATE TABLE posts (
    id serial PRIMARY KEY,
    author_id int NOT NULL REFERENCES authors (id),
    title text NOT NULL,
    published_at timestamptz,
    view_count int NOT NULL DEFAULT 0
        CONSTRAINT ck_posts_view_count CHECK (view_count >= 0)
);
"""


def _blog_delta(root: Path, delta: str) -> str:
    """Forge the blog, then `delta` on top of it; the second revision's text."""
    base = parse_sql(_BLOG, source="blog.sql")
    _forge_into(root, "001", base.spec)
    parsed = parse_sql(delta, source="delta.sql", base=base.spec)

    result = forge(
        root,
        project="shop",
        task_id="DB-002",
        title="delta",
        spec=parsed.spec,
        renames=parsed.renames,
    )

    for relative, text in result.files.items():
        (root / relative).write_text(text, encoding="utf-8")
    assert result.revision is not None
    return result.revision.text


def _sqlite(root: Path) -> tuple[str, sa.Engine]:
    (root / ".sparc").mkdir(exist_ok=True)
    url = f"sqlite:///{root / 'rows.sqlite3'}"
    return url, sa.create_engine(url, poolclass=sa.pool.NullPool)


def _execute(engine: sa.Engine, *statements: str) -> list[tuple[object, ...]]:
    with engine.begin() as connection:
        results = [connection.execute(sa.text(s)) for s in statements]
        last = results[-1]
        return [tuple(row) for row in last] if last.returns_rows else []


def test_column_rename_keeps_the_rows(tmp_path: Path) -> None:
    text = _blog_delta(tmp_path, "ALTER TABLE authors RENAME COLUMN bio TO biography;")

    assert "new_column_name='biography'" in text
    assert "new_column_name='bio'" in text
    assert "add_column" not in text and "drop_column" not in text
    url, engine = _sqlite(tmp_path)
    _alembic(tmp_path, "upgrade", "001", url=url)
    _execute(engine, "INSERT INTO authors (id, name, bio) VALUES (1, 'a', 'kept')")
    _alembic(tmp_path, "upgrade", "head", url=url)
    assert _execute(engine, "SELECT biography FROM authors") == [("kept",)]
    _alembic(tmp_path, "downgrade", "001", url=url)
    assert _execute(engine, "SELECT bio FROM authors") == [("kept",)]
    engine.dispose()


def test_table_and_chained_column_renames_keep_the_rows(tmp_path: Path) -> None:
    text = _blog_delta(
        tmp_path,
        "ALTER TABLE authors RENAME COLUMN bio TO b2;"
        "ALTER TABLE authors RENAME COLUMN b2 TO about;"
        "ALTER TABLE authors RENAME TO writers;"
        "ALTER TABLE writers RENAME COLUMN name TO full_name;",
    )

    assert "op.rename_table('authors', 'writers')" in text
    assert "op.rename_table('writers', 'authors')" in text
    assert "create_table" not in text and "drop_column" not in text
    url, engine = _sqlite(tmp_path)
    _alembic(tmp_path, "upgrade", "001", url=url)
    _execute(
        engine,
        "INSERT INTO authors (id, name, bio) VALUES (1, 'a', 'kept')",
        "INSERT INTO posts (id, author_id, title) VALUES (1, 1, 't')",
    )
    _alembic(tmp_path, "upgrade", "head", url=url)
    assert _execute(engine, "SELECT full_name, about FROM writers") == [("a", "kept")]
    assert "No new upgrade operations detected" in _alembic(tmp_path, "check", url=url)
    _alembic(tmp_path, "downgrade", "001", url=url)
    assert _execute(engine, "SELECT name, bio FROM authors") == [("a", "kept")]
    engine.dispose()


@pytest.mark.parametrize(
    "delta",
    [
        "ALTER TABLE posts DROP CONSTRAINT ck_posts_view_count;",
        "ALTER TABLE posts DROP COLUMN view_count;",
    ],
)
def test_dropped_check_comes_back_on_downgrade(tmp_path: Path, delta: str) -> None:
    text = _blog_delta(tmp_path, delta)

    assert "drop_constraint(batch_op.f('ck_posts_view_count')" in text
    url, engine = _sqlite(tmp_path)
    _alembic(tmp_path, "upgrade", "head", url=url)
    assert sa.inspect(engine).get_check_constraints("posts") == []
    _alembic(tmp_path, "downgrade", "001", url=url)
    checks = sa.inspect(engine).get_check_constraints("posts")
    assert [c["name"] for c in checks] == ["ck_posts_view_count"]
    engine.dispose()


def test_not_null_column_without_default_fails_on_rows(tmp_path: Path) -> None:
    with pytest.raises(VerificationError) as caught:
        _blog_delta(tmp_path, "ALTER TABLE posts ADD COLUMN must int NOT NULL;")

    assert caught.value.step == "upgrade head over existing rows"
    message = str(caught.value)
    assert "posts.must" in message
    assert "DEFAULT" in message and "nullable" in message


def test_not_null_column_with_default_upgrades_rows(tmp_path: Path) -> None:
    base = parse_sql(_BLOG, source="blog.sql")
    _forge_into(tmp_path, "001", base.spec)
    delta = "ALTER TABLE posts ADD COLUMN must int NOT NULL DEFAULT 1;"
    parsed = parse_sql(delta, source="delta.sql", base=base.spec)

    result = forge(tmp_path, project="shop", task_id="X", title="x", spec=parsed.spec)

    steps = "seed the previous head, upgrade head over existing rows: passed"
    assert any(line.startswith("sqlite:") and steps in line for line in result.report)


def test_added_column_and_sorted_index_on_one_table(tmp_path: Path) -> None:
    text = _blog_delta(
        tmp_path,
        "ALTER TABLE posts ADD COLUMN score INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX ix_pap ON posts (author_id, published_at DESC);",
    )

    assert "literal_column('published_at DESC')" in text
    url, engine = _sqlite(tmp_path)
    _alembic(tmp_path, "upgrade", "head", url=url)
    assert "ix_pap" in {i["name"] for i in sa.inspect(engine).get_indexes("posts")}
    engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.mariadb
def test_renames_and_dropped_checks_verify_on_each_server(
    tmp_path: Path, pg_admin: sa.Engine, mariadb_admin: sa.Engine
) -> None:
    base = parse_sql(_BLOG, source="blog.sql")
    _forge_into(tmp_path, "001", base.spec)
    delta = (
        "ALTER TABLE authors RENAME COLUMN bio TO biography;"
        "ALTER TABLE authors RENAME TO writers;"
        "ALTER TABLE posts DROP COLUMN view_count;"
        "ALTER TABLE posts ADD COLUMN score INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX ix_pap ON posts (author_id, published_at DESC);"
    )
    parsed = parse_sql(delta, source="delta.sql", base=base.spec)
    urls = server_urls(pg_admin, mariadb_admin)

    result = forge(
        tmp_path,
        project="shop",
        task_id="DB-002",
        title="delta",
        spec=parsed.spec,
        renames=parsed.renames,
        verify_urls=urls,
    )

    assert any(line.startswith("postgresql: upgrade head") for line in result.report)
    assert any(line.startswith("mariadb: upgrade head") for line in result.report)


@pytest.fixture(scope="module")
def shop_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop example after `sparc init` and `sparc batch`, as `make demo`."""
    import shutil

    from click.testing import CliRunner

    from sparc.cli import main
    from tests.conftest import EXAMPLES

    workspace = tmp_path_factory.mktemp("demo") / "shop"
    shutil.copytree(EXAMPLES / "shop", workspace)
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(workspace)]).exit_code == 0
    result = runner.invoke(main, ["-C", str(workspace), "batch"])
    assert "3 COMPLETE, 0 BLOCKED" in result.stdout, result.output
    return workspace


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mariadb"])
def test_alembic_check_of_the_demo_passes_on_each_database(
    shop_demo: Path, tmp_path: Path, dialect: str, request: pytest.FixtureRequest
) -> None:
    """The workspace's env.py compares defaults the way each database spells them."""
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'check.sqlite3'}"
    elif dialect == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = request.getfixturevalue("mariadb_url")

    _alembic(shop_demo, "upgrade", "head", url=url)

    assert "No new upgrade operations detected" in _alembic(shop_demo, "check", url=url)


@pytest.mark.mariadb
def test_alembic_check_on_mariadb_passes_deferrable_keys_and_expression_indexes(
    tmp_path: Path, mariadb_url: str
) -> None:
    """MariaDB holds such keys plain and leaves such indexes out, as verified."""
    _forge_into(tmp_path, "001", specs.rich())
    (tmp_path / ".sparc").mkdir()
    _alembic(tmp_path, "upgrade", "head", url=mariadb_url)

    assert "No new upgrade operations detected" in _alembic(
        tmp_path, "check", url=mariadb_url
    )
