"""Tests for sparc.agents.hephaestus.reflect: live databases into a SchemaSpec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sparc.agents.hephaestus.ddl import parse_file, parse_sql
from sparc.agents.hephaestus.models_render import load_metadata, render_models
from sparc.agents.hephaestus.reflect import (
    _dependencies_first,
    _read_only,
    catalog_ddl,
    read_only_connection,
    reflect_database,
    spec_differences,
    uncarried_objects,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.errors import InputError

from .conftest import CASES, SCHEMAS, SHARED, ScratchDatabases, libpq_url, psql_file

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared schemas not found at {SCHEMAS}",
)

PGFACTS = SHARED / "tools" / "pgfacts.py"
SHOP_FILES = ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql")
# a table of every portable type, added to the shop for the inspector dialects
EVERY_TYPE = """
CREATE TYPE mood AS ENUM ('ok', 'bad');
CREATE TABLE sample (
    id bigint PRIMARY KEY, m mood NOT NULL DEFAULT 'ok', flag boolean DEFAULT false,
    body text, u uuid, j json, ts timestamptz, d date, r real, dd double precision,
    c char(3), b bytea, sm smallint
);
"""


def _spec(*names: str) -> SchemaSpec:
    spec = None
    for name in names:
        spec = parse_file(SCHEMAS / name, display=name, base=spec).spec
    assert spec is not None
    return spec


def _kinds(differences: list[str]) -> list[str]:
    """`table.column: what` of each difference, without the values."""
    return [
        f"{d.split(':')[0]}: {d.split(':')[1].split()[0]}" if ":" in d else d
        for d in differences
    ]


@pytest.mark.postgres
def test_chinook_reflects_like_its_ddl(pg_url: str) -> None:
    psql_file(pg_url, SCHEMAS / "chinook.sql")

    reflected = reflect_database(pg_url)

    assert len(reflected.tables) == 11
    assert spec_differences(_spec("chinook.sql"), reflected) == []


@pytest.mark.postgres
def test_shop_reflects_like_its_ddl(pg_url: str) -> None:
    for name in SHOP_FILES:
        psql_file(pg_url, SCHEMAS / name)

    reflected = reflect_database(pg_url)

    assert spec_differences(_spec(*SHOP_FILES), reflected) == []
    users = reflected.table("users")
    assert users is not None
    [active] = [i for i in users.indexes if i.name == "idx_active_users"]
    assert active.where == "deleted_at IS NULL"
    assert users.column("id").serial  # type: ignore[union-attr]


@pytest.mark.postgres
def test_pagila_reflects_like_its_dump(pg_url: str) -> None:
    """Enums, domains, partitions, views, functions, aggregate and triggers."""
    psql_file(pg_url, SCHEMAS / "pagila.sql")
    expected = _spec("pagila.sql")

    reflected = reflect_database(pg_url)

    assert spec_differences(expected, reflected) == []
    assert len(reflected.partitions) == len(expected.partitions) > 0
    kinds = sorted(o.kind for o in reflected.objects)
    assert kinds == sorted(o.kind for o in expected.objects)
    assert {"view", "materialized_view", "function", "aggregate", "trigger"} <= set(
        kinds
    )
    # bounds are printed in UTC: the same instants as the dump's +01 spelling
    bounds = {p.name: p.bound for p in reflected.partitions}
    assert bounds["payment_p2022_04"] == (
        "FOR VALUES FROM ('2022-04-01 00:00:00+00') TO ('2022-05-01 00:00:00+00')"
    )


@pytest.mark.postgres
@pytest.mark.parametrize(
    "case", sorted(p.name for p in CASES.glob("*.sql")) if CASES.is_dir() else []
)
def test_cases_reflect_like_their_ddl(case: str, pg_url: str) -> None:
    psql_file(pg_url, CASES / case)

    differences = spec_differences(
        parse_file(CASES / case, display=case).spec, reflect_database(pg_url)
    )

    if case.startswith("03-"):
        # PostgreSQL stores BETWEEN as two comparisons
        assert differences == [
            "meter_reading: checks ['quality BETWEEN 1 AND 5', 'reading_kwh >= 0'] "
            "!= ['quality >= 1 AND quality <= 5', 'reading_kwh >= 0']"
        ]
    else:
        assert differences == []


@pytest.mark.postgres
def test_postgresql_reads_in_a_read_only_transaction(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with (
            _read_only(engine) as connection,
            pytest.raises(sa.exc.DBAPIError) as caught,
        ):
            connection.exec_driver_sql("CREATE TABLE written (id integer)")
    finally:
        engine.dispose()

    assert "read-only transaction" in str(caught.value)


def _create_from_models(url: str, spec: SchemaSpec, tmp_path: Path) -> None:
    models = tmp_path / "models.py"
    models.write_text(render_models(spec, project="adopted"), encoding="utf-8")
    engine = sa.create_engine(url)
    try:
        load_metadata(models).create_all(engine)
    finally:
        engine.dispose()


def _shop_and_types() -> SchemaSpec:
    return parse_sql(EVERY_TYPE, source="types.sql", base=_spec(*SHOP_FILES)).spec


def test_sqlite_reflects_tables_keys_and_indexes(tmp_path: Path) -> None:
    spec = _shop_and_types()
    url = f"sqlite:///{tmp_path / 'adopted.sqlite3'}"
    _create_from_models(url, spec, tmp_path)

    reflected = reflect_database(url)

    # what SQLite itself cannot keep: every INTEGER PRIMARY KEY numbers rows,
    # now() is stored as CURRENT_TIMESTAMP, enums are VARCHAR, uuid is
    # CHAR(32) and there is no time zone
    assert _kinds(spec_differences(spec, reflected)) == [
        "auth_tokens.id: serial/identity",
        "auth_tokens.created_at: default",
        "sample.m: type",
        "sample.u: type",
        "sample.ts: type",
        "enum mood: values",
    ]
    orders = reflected.table("orders")
    assert orders is not None
    [by_date] = orders.indexes
    assert [e.descending for e in by_date.elements] == [False, True]
    assert reflected.table("order_items").check_constraints  # type: ignore[union-attr]


@pytest.mark.mariadb
def test_mariadb_reflects_tables_keys_and_indexes(
    tmp_path: Path, mariadb_databases: ScratchDatabases
) -> None:
    spec = _shop_and_types()
    url = mariadb_databases.create()
    _create_from_models(url, spec, tmp_path)

    reflected = reflect_database(url)

    # what MariaDB cannot keep: partial indexes, now() (stored as
    # current_timestamp()), named enum types (one per column), JSON (LONGTEXT
    # with a check), time zones, single-precision REAL
    assert _kinds(spec_differences(spec, reflected)) == [
        "users: index",
        "auth_tokens.created_at: default",
        "sample.m: type",
        "sample.j: type",
        "sample.ts: type",
        "sample.r: type",
        "enum mood: values",
    ]
    checks = reflected.table("products").check_constraints  # type: ignore[union-attr]
    assert [c.expression for c in checks] == ["price >= 0"]
    sample = reflected.table("sample")
    assert sample is not None and sample.column("flag").default == "false"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("oracle+oracledb://scott@localhost/x", "cannot reflect oracle"),
        ("not a url", "SQLAlchemy URL"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot read the database"),
    ],
)
def test_bad_urls_are_input_errors(url: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        reflect_database(url)


@pytest.mark.postgres
def test_catalog_ddl_rebuilds_pagila_in_an_empty_database(
    pg_databases: ScratchDatabases,
) -> None:
    """Views come after the aggregate they call: the script loads as it is."""
    source, rebuilt = pg_databases.create(), pg_databases.create()
    psql_file(source, SCHEMAS / "pagila.sql")
    engine = sa.create_engine(source)
    try:
        with _read_only(engine) as connection:
            script = catalog_ddl(connection)
    finally:
        engine.dispose()

    # as pg_dump's scripts do: SQL function bodies may name later functions
    done = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(rebuilt)],
        env={**os.environ, "PGOPTIONS": "-c check_function_bodies=off"},
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    facts = subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(source), libpq_url(rebuilt)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "fidelity 242/242 = 100.0%" in facts, facts


def test_routines_and_views_come_after_what_they_use() -> None:
    view, aggregate, function = ("class", 1), ("proc", 2), ("proc", 3)
    items = [(view, "view"), (aggregate, "aggregate"), (function, "function")]
    uses = {view: {aggregate, ("class", 99)}, aggregate: {function}}

    assert _dependencies_first(items, uses) == ["function", "aggregate", "view"]
    # a loop keeps the given order
    looped = {view: {aggregate}, aggregate: {view}}
    assert _dependencies_first(items[:2], looped) == ["view", "aggregate"]


@pytest.mark.postgres
def test_uncarried_objects_are_each_named(pg_url: str) -> None:
    """What reflection leaves out is listed; what an extension made is not."""
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for statement in (
            "create extension pg_stat_statements",
            "create schema audit",
            "create table audit.log (id int primary key)",
            "create function audit.stamp() returns int language sql as 'select 1'",
            "create table t (id serial primary key, body text) with (fillfactor=70)",
            "alter table t enable row level security",
            "create policy everyone on t using (true)",
            "create table child (x int) inherits (t)",
            "create type pair as (a int, b int)",
            "create statistics t_stats on id, body from t",
            "create function f() returns int language sql as 'select 1'",
            "comment on function f() is 'documented'",
            "comment on column t.body is 'carried'",
        ):
            connection.exec_driver_sql(statement)
    engine.dispose()

    with read_only_connection(libpq_url(pg_url)) as connection:
        found = uncarried_objects(connection)
    reflected = reflect_database(libpq_url(pg_url))

    assert found == [
        "composite type public.pair: a composite type",
        "function audit.stamp(): outside the public schema",
        "function public.f(): a comment",
        "policy everyone on public.t: a row security policy",
        "statistics object public.t_stats: extended statistics",
        "table audit.log: outside the public schema",
        "table public.child: inherits from t",
        "table public.t: row level security is enabled",
        "table public.t: storage parameters fillfactor=70",
    ]
    # the extension's views come with CREATE EXTENSION, not as views
    assert [(o.kind, o.name) for o in reflected.objects if o.kind != "function"] == [
        ("extension", "pg_stat_statements")
    ]


@pytest.mark.postgres
def test_alembic_bookkeeping_is_not_reflected(pg_url: str) -> None:
    """A `postgresql://` URL is read with psycopg; alembic_version is left out."""
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("create table t (id int primary key)")
        connection.exec_driver_sql(
            "create table alembic_version (version_num varchar(32) primary key)"
        )
    engine.dispose()

    reflected = reflect_database(libpq_url(pg_url))

    assert [t.name for t in reflected.tables] == ["t"]
