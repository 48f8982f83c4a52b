"""The seed and query facts of ../shared/cases, fact by fact.

Each test names its case and fact (E1, E2, ...). The spec comes from the
case's DDL through `parse_file`; `seed_data.sql` and `performance_queries.sql`
are rendered from it and run against tables made for real: on PostgreSQL by
loading the case DDL with psql, on SQLite through the rendered models with
`PRAGMA foreign_keys=ON`. Seed statements are committed one at a time, so a
deferred foreign key is checked after each statement rather than at the end.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sparc.agents.hephaestus.ddl import parse_file
from sparc.agents.hephaestus.models_render import load_metadata, render_models
from sparc.agents.hephaestus.scripts import (
    read_named_queries,
    render_performance_queries,
    render_seed_sql,
    seed_statements,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from tests.conftest import CASES, psql_file

pytestmark = pytest.mark.skipif(
    not CASES.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared cases not found at {CASES}",
)

PG_AND_SQLITE = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
UNQUOTED_RESERVED = re.compile(
    r"(?i)\b(from|join|into|update|table)\s+(user|order|group)\b"
)

# case 20 as its E2 corrects it: the pair is the key, both references cascade
CASE20_CORRECTED = """\
CREATE TABLE member (
    id      INTEGER PRIMARY KEY,
    handle  VARCHAR(40) NOT NULL UNIQUE
);

CREATE TABLE team_group (
    id     INTEGER PRIMARY KEY,
    label  VARCHAR(80) NOT NULL
);

CREATE TABLE member_team_group (
    member_id      INTEGER NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    team_group_id  INTEGER NOT NULL REFERENCES team_group (id) ON DELETE CASCADE,
    PRIMARY KEY (member_id, team_group_id)
);

CREATE INDEX ix_member_team_group_team_group_id ON member_team_group (team_group_id);
"""


def case_ddl(number: str) -> Path:
    """The `.sql` file of a handed case."""
    found = sorted(CASES.glob(f"{number}-*.sql"))
    assert found, f"case {number} has no .sql file in {CASES}"
    return found[0]


def spec_of(path: Path) -> SchemaSpec:
    """The schema a DDL file describes."""
    return parse_file(path, display=path.name).spec


@pytest.fixture
def schema_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str, Path], sa.Engine]]:
    """Make the tables of a DDL file on a dialect and return an engine on them."""
    engines: list[sa.Engine] = []

    def make(dialect: str, ddl: Path) -> sa.Engine:
        if dialect == "postgresql":
            url = request.getfixturevalue("pg_url")
            psql_file(url, ddl)
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        else:
            engine = sqlite_with_models(tmp_path, spec_of(ddl))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def sqlite_with_models(folder: Path, spec: SchemaSpec) -> sa.Engine:
    """A SQLite database enforcing foreign keys, its tables made by the models."""
    models = folder / "models.py"
    models.write_text(render_models(spec, project="cases"), encoding="utf-8")
    engine = sa.create_engine(
        f"sqlite:///{folder / 'case.sqlite3'}", poolclass=sa.pool.NullPool
    )

    @sa.event.listens_for(engine, "connect")
    def _enforce_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    load_metadata(models).create_all(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    return engine


def load_seed(engine: sa.Engine, seed_sql: str) -> list[str]:
    """Run the seed statements for the engine's dialect, one commit each."""
    statements = seed_statements(seed_sql, engine.dialect.name)
    with engine.connect() as connection:
        raw = connection.execution_options(no_parameters=True)
        for statement in statements:
            raw.exec_driver_sql(statement)
            connection.commit()
    return statements


def run_queries(engine: sa.Engine, queries_sql: str) -> dict[str, list[sa.Row[Any]]]:
    """Every named query's rows, each `:bind` given the sample value 1."""
    results = {}
    with engine.connect() as connection:
        for name, statement in read_named_queries(queries_sql):
            query = sa.text(statement)
            binds = {bind: 1 for bind in query.compile().params}
            results[name] = list(connection.execute(query, binds))
    return results


def insert_rows(seed_sql: str, table: str) -> list[tuple[str, ...]]:
    """The value tuples of the seed's INSERT into `table`, as written."""
    match = re.search(
        rf'^INSERT INTO "?{table}"? \(.*?\) VALUES\n(.*?);$',
        seed_sql,
        re.MULTILINE | re.DOTALL,
    )
    assert match, f"no INSERT INTO {table} in the seed"
    return [
        tuple(v.strip() for v in line.strip().strip(",").strip("()").split(","))
        for line in match.group(1).splitlines()
    ]


# --- case 07: UUID primary key with a server-side default ----------------------


def test_case07_e7_sqlite_seed_supplies_uuid_literals(tmp_path: Path) -> None:
    """Case 07 E7: on SQLite the seed writes every UUID key, calling no function."""
    spec = spec_of(case_ddl("07"))
    seed = render_seed_sql(spec)
    statements = seed_statements(seed, "sqlite")

    text = "\n".join(statements)
    assert not re.search(r"(?i)\b\w*uuid\w*\s*\(", text), text
    assert not re.search(r"(?i)\b(now|timezone)\s*\(", text), text
    columns = re.search(r"INSERT INTO api_client \(([^)]*)\)", text)
    assert columns and "id" in [c.strip() for c in columns.group(1).split(",")]
    keys = [uuid.UUID(row[0].strip("'")) for row in insert_rows(seed, "api_client")]
    assert len(set(keys)) == len(keys) == 3

    engine = sqlite_with_models(tmp_path, spec)
    try:
        load_seed(engine, seed)
        table = sa.table("api_client", sa.column("id", sa.Uuid()))
        with engine.connect() as connection:
            # the application binds uuid.UUID values: each seeded key must match
            for key in keys:
                found = connection.execute(
                    sa.select(sa.func.count()).where(table.c.id == key)
                ).scalar_one()
                assert found == 1, f"seeded key {key} not found by its UUID"
    finally:
        engine.dispose()


# --- case 16: reserved words as table and column names --------------------------


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_case16_e2_scripts_quote_reserved_words(
    dialect: str, schema_engine: Callable[[str, Path], sa.Engine]
) -> None:
    """Case 16 E2: seed and queries quote reserved names and run on the dialect."""
    ddl = case_ddl("16")
    spec = spec_of(ddl)
    seed = render_seed_sql(spec)
    queries = render_performance_queries(spec, [])

    for name, text in (("seed_data.sql", seed), ("performance_queries.sql", queries)):
        found = [m.group(0) for m in UNQUOTED_RESERVED.finditer(text)]
        assert not found, f"{name} leaves reserved words unquoted: {found}"
    named = read_named_queries(queries)
    assert {name for name, _ in named} == {"fk_order_user_id", "fk_order_group"}

    engine = schema_engine(dialect, ddl)
    statements = load_seed(engine, seed)
    assert len(statements) == 3
    results = run_queries(engine, queries)

    # the seed gives user 1 and group 1 an order each; both paths must see it
    assert [row.id for row in results["fk_order_user_id"]] == [1]
    assert [row.id for row in results["fk_order_group"]] == [1]


@pytest.mark.postgres
@pytest.mark.parametrize("users", [2, 5])
def test_case16_e3_count_users_returns_seeded_rows(
    users: int, tmp_path: Path, schema_engine: Callable[[str, Path], sa.Engine]
) -> None:
    """Case 16 E3: after seeding N users, counting users returns N on PostgreSQL."""
    ddl = case_ddl("16")
    task = tmp_path / "16-with-query.sql"
    task.write_text(
        ddl.read_text("utf-8")
        + '\n-- name: count_users\nSELECT count(*) AS users FROM "user";\n',
        encoding="utf-8",
    )
    parsed = parse_file(task, display=task.name)
    seed = render_seed_sql(parsed.spec, rows=users)
    queries = render_performance_queries(parsed.spec, parsed.queries)
    assert not UNQUOTED_RESERVED.search(queries)

    engine = schema_engine("postgresql", ddl)
    load_seed(engine, seed)
    results = run_queries(engine, queries)

    assert [tuple(row) for row in results["count_users"]] == [(users,)]
    with engine.connect() as connection:
        # the trap the quoting avoids: a bare `user` is the session user
        bare = connection.exec_driver_sql("SELECT count(*) FROM user").scalar_one()
    assert bare == 1 != users


# --- case 17: two tables that reference each other ----------------------------------


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_case17_e4_seed_closes_the_cycle_by_update(
    dialect: str, schema_engine: Callable[[str, Path], sa.Engine]
) -> None:
    """Case 17 E4: department with NULL head, employees, then UPDATE; FKs hold."""
    ddl = case_ddl("17")
    seed = render_seed_sql(spec_of(ddl))

    department = seed.index("INSERT INTO department ")
    employee = seed.index("INSERT INTO employee ")
    update = seed.index("UPDATE department SET head_employee_id = ")
    assert department < employee < update
    heads = [row[2] for row in insert_rows(seed, "department")]
    assert heads and all(head == "NULL" for head in heads)

    engine = schema_engine(dialect, ddl)
    statements = load_seed(engine, seed)
    assert sum(s.startswith("UPDATE department") for s in statements) == len(heads)
    with engine.connect() as connection:
        dangling = connection.exec_driver_sql(
            "SELECT count(*) FROM department d "
            "LEFT JOIN employee e ON e.id = d.head_employee_id "
            "WHERE e.id IS NULL"
        ).scalar_one()
        assert dangling == 0
        if dialect == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    results = run_queries(engine, render_performance_queries(spec_of(ddl), []))
    assert [row.id for row in results["fk_department_head_employee_id"]] == [1]
    assert [row.id for row in results["fk_employee_department_id"]] == [1]


# --- case 20: many-to-many link table ------------------------------------------------


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
@pytest.mark.parametrize("rows", [3, 6])
def test_case20_e5_seed_has_no_duplicate_pairs(
    dialect: str,
    rows: int,
    tmp_path: Path,
    schema_engine: Callable[[str, Path], sa.Engine],
) -> None:
    """Case 20 E5: the corrected link table's seed has distinct pairs and loads."""
    ddl = tmp_path / "20-corrected.sql"
    ddl.write_text(CASE20_CORRECTED, encoding="utf-8")
    spec = spec_of(ddl)
    link = spec.table("member_team_group")
    assert link is not None and link.primary_key is not None
    assert link.primary_key.columns == ["member_id", "team_group_id"]
    seed = render_seed_sql(spec, rows=rows)

    pairs = insert_rows(seed, "member_team_group")
    assert pairs and len(set(pairs)) == len(pairs), pairs
    assert all("NULL" not in pair for pair in pairs)

    engine = schema_engine(dialect, ddl)
    load_seed(engine, seed)
    with engine.connect() as connection:
        loaded = connection.exec_driver_sql(
            "SELECT count(*) FROM member_team_group m "
            "JOIN member ON member.id = m.member_id "
            "JOIN team_group t ON t.id = m.team_group_id"
        ).scalar_one()
        assert loaded == len(pairs)
        if dialect == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    results = run_queries(engine, render_performance_queries(spec, []))
    assert set(results) == {
        "fk_member_team_group_member_id",
        "fk_member_team_group_team_group_id",
    }
    assert all(results.values()), "each access path finds the rows of key 1"
