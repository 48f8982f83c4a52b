"""Tests for Hephaestus's seed data and performance query scripts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from sparc.agents.hephaestus.scripts import (
    GENERATED_SECTION_MARKER,
    explain_queries,
    load_seed_sql,
    read_named_queries,
    render_performance_queries,
    render_seed_sql,
    seed_statements,
)
from sparc.agents.hephaestus.spec import (
    CheckConstraint,
    Column,
    ColumnType,
    EnumType,
    ForeignKey,
    Index,
    IndexElement,
    PrimaryKey,
    SchemaSpec,
    Table,
    UniqueConstraint,
)
from sparc.errors import InputError, VerificationError

SCHEMAS = Path("/work/shared/data/schemas")


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    source: str
    line: int


# --- schemas built by hand ---------------------------------------------------


def _c(
    name: str,
    kind: str,
    *,
    type_name: str | None = None,
    length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
    **options: object,
) -> Column:
    column_type = ColumnType(
        kind=kind, name=type_name, length=length, precision=precision, scale=scale
    )
    return Column(name=name, type=column_type, **options)


def _index(name: str, *columns: str, where: str | None = None) -> Index:
    return Index(
        name=name,
        elements=[IndexElement(column=c) for c in columns],
        where=where,
    )


def shop_spec() -> SchemaSpec:
    """The shop schema after step 3 (shop-1-core, shop-2-auth, shop-3-indexes)."""
    users = Table(
        name="users",
        columns=[
            _c("id", "integer", nullable=False, serial=True),
            _c("name", "varchar", length=255, nullable=False),
            _c("email", "varchar", length=255, nullable=False),
            _c("created_at", "timestamp", default="CURRENT_TIMESTAMP"),
            _c("deleted_at", "timestamp"),
        ],
        primary_key=PrimaryKey(name="users_pkey", columns=["id"]),
        unique_constraints=[
            UniqueConstraint(name="users_email_key", columns=["email"])
        ],
        indexes=[
            _index("idx_users_created_at", "created_at"),
            _index("idx_users_email", "email"),
            _index("idx_active_users", "id", where="deleted_at IS NULL"),
        ],
    )
    products = Table(
        name="products",
        columns=[
            _c("id", "integer", nullable=False, serial=True),
            _c("name", "varchar", length=255, nullable=False),
            _c("price", "numeric", precision=10, scale=2, nullable=False),
        ],
        primary_key=PrimaryKey(name="products_pkey", columns=["id"]),
        check_constraints=[
            CheckConstraint(name="products_price_check", expression="price >= 0")
        ],
    )
    orders = Table(
        name="orders",
        columns=[
            _c("id", "integer", nullable=False, serial=True),
            _c("user_id", "integer", nullable=False),
            _c("created_at", "timestamp", default="CURRENT_TIMESTAMP"),
        ],
        primary_key=PrimaryKey(name="orders_pkey", columns=["id"]),
        foreign_keys=[
            ForeignKey(columns=["user_id"], ref_table="users", ref_columns=["id"])
        ],
        indexes=[
            Index(
                name="idx_orders_user_date",
                elements=[
                    IndexElement(column="user_id"),
                    IndexElement(column="created_at", descending=True),
                ],
            )
        ],
    )
    order_items = Table(
        name="order_items",
        columns=[
            _c("id", "integer", nullable=False, serial=True),
            _c("order_id", "integer", nullable=False),
            _c("product_id", "integer", nullable=False),
            _c("quantity", "integer", nullable=False),
            _c("unit_price", "numeric", precision=10, scale=2, nullable=False),
        ],
        primary_key=PrimaryKey(name="order_items_pkey", columns=["id"]),
        foreign_keys=[
            ForeignKey(
                columns=["order_id"],
                ref_table="orders",
                ref_columns=["id"],
                on_delete="CASCADE",
            ),
            ForeignKey(
                columns=["product_id"], ref_table="products", ref_columns=["id"]
            ),
        ],
        check_constraints=[
            CheckConstraint(
                name="order_items_quantity_check", expression="quantity > 0"
            )
        ],
    )
    auth_tokens = Table(
        name="auth_tokens",
        columns=[
            _c("id", "integer", nullable=False),
            _c("user_id", "integer", nullable=False),
            _c("token_hash", "varchar", length=255, nullable=False),
            _c("expires_at", "timestamp", nullable=False),
            _c("created_at", "timestamp", default="now()"),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[
            ForeignKey(
                columns=["user_id"],
                ref_table="users",
                ref_columns=["id"],
                on_delete="CASCADE",
            )
        ],
        indexes=[
            _index("idx_auth_tokens_user_id", "user_id"),
            _index("idx_auth_tokens_token_hash", "token_hash"),
            _index("idx_auth_tokens_expires_at", "expires_at"),
        ],
    )
    # listed children first, so the seed order has to come from the keys
    return SchemaSpec(tables=[order_items, auth_tokens, orders, products, users])


def shop_metadata() -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table(
        "users",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now()),
        sa.Column("deleted_at", sa.DateTime, nullable=True),
    )
    sa.Table(
        "products",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.CheckConstraint("price >= 0"),
    )
    sa.Table(
        "orders",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now()),
    )
    sa.Table(
        "order_items",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "order_id",
            sa.Integer,
            sa.ForeignKey("orders.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False
        ),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
        sa.CheckConstraint("quantity > 0"),
    )
    sa.Table(
        "auth_tokens",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now()),
    )
    return meta


def lab_spec() -> SchemaSpec:
    """Enum, BETWEEN, IN, length and column-order checks, composite and uuid
    keys, a self-reference and a circular pair of foreign keys."""
    teams = Table(
        name="teams",
        columns=[
            _c("id", "uuid", nullable=False),
            _c("name", "varchar", length=12, nullable=False),
            _c("captain_id", "integer"),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[
            ForeignKey(columns=["captain_id"], ref_table="members", ref_columns=["id"])
        ],
        unique_constraints=[UniqueConstraint(columns=["name"])],
    )
    members = Table(
        name="members",
        columns=[
            _c("id", "integer", nullable=False, serial=True),
            _c("team_id", "uuid", nullable=False),
            _c("mood", "enum", type_name="mood", nullable=False),
            _c("rating", "integer", nullable=False),
            _c("status", "varchar", length=10, nullable=False),
            _c("code", "char", length=3, nullable=False),
            _c("mentor_id", "integer"),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[
            ForeignKey(columns=["team_id"], ref_table="teams", ref_columns=["id"]),
            ForeignKey(columns=["mentor_id"], ref_table="members", ref_columns=["id"]),
        ],
        unique_constraints=[UniqueConstraint(columns=["code"])],
        check_constraints=[
            CheckConstraint(expression="rating BETWEEN 2 AND 4"),
            CheckConstraint(expression="status IN ('active', 'paused')"),
            CheckConstraint(expression="length(code) = 3"),
        ],
    )
    projects = Table(
        name="projects",
        columns=[
            _c("team_id", "uuid", nullable=False),
            _c("number", "integer", nullable=False),
            _c("title", "text", nullable=False),
            _c("budget", "numeric", precision=8, scale=2, nullable=False),
            _c("active", "boolean", nullable=False),
            _c("starts_on", "date", nullable=False),
            _c("ends_on", "date", nullable=False),
        ],
        primary_key=PrimaryKey(columns=["team_id", "number"]),
        foreign_keys=[
            ForeignKey(columns=["team_id"], ref_table="teams", ref_columns=["id"])
        ],
        check_constraints=[
            CheckConstraint(expression="length(title) > 8"),
            CheckConstraint(expression="budget > 100 AND budget <= 5000"),
            CheckConstraint(expression="starts_on >= '2030-06-01'"),
            CheckConstraint(expression="ends_on > starts_on"),
        ],
    )
    tasks = Table(
        name="tasks",
        columns=[
            _c("id", "bigint", nullable=False, identity="by_default"),
            _c("team_id", "uuid", nullable=False),
            _c("project_number", "integer", nullable=False),
            _c("due_at", "timestamp", nullable=False),
            _c("payload", "json", nullable=False),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[
            ForeignKey(
                columns=["team_id", "project_number"],
                ref_table="projects",
                ref_columns=["team_id", "number"],
            )
        ],
    )
    return SchemaSpec(
        tables=[tasks, projects, members, teams],
        enums=[EnumType(name="mood", values=["happy", "sad", "ok"])],
    )


def lab_metadata() -> sa.MetaData:
    meta = sa.MetaData()
    uuid_type = sa.String(36).with_variant(pg.UUID(as_uuid=False), "postgresql")
    sa.Table(
        "teams",
        meta,
        sa.Column("id", uuid_type, primary_key=True),
        sa.Column("name", sa.String(12), nullable=False, unique=True),
        sa.Column(
            "captain_id",
            sa.Integer,
            sa.ForeignKey("members.id", use_alter=True, name="teams_captain_fk"),
        ),
    )
    sa.Table(
        "members",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("team_id", uuid_type, sa.ForeignKey("teams.id"), nullable=False),
        sa.Column("mood", sa.Enum("happy", "sad", "ok", name="mood"), nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("code", sa.CHAR(3), nullable=False, unique=True),
        sa.Column("mentor_id", sa.Integer, sa.ForeignKey("members.id")),
        sa.CheckConstraint("rating BETWEEN 2 AND 4"),
        sa.CheckConstraint("status IN ('active', 'paused')"),
        sa.CheckConstraint("length(code) = 3"),
    )
    sa.Table(
        "projects",
        meta,
        sa.Column("team_id", uuid_type, sa.ForeignKey("teams.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("budget", sa.Numeric(8, 2), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.CheckConstraint("length(title) > 8"),
        sa.CheckConstraint("budget > 100 AND budget <= 5000"),
        sa.CheckConstraint("starts_on >= '2030-06-01'"),
        sa.CheckConstraint("ends_on > starts_on"),
    )
    sa.Table(
        "tasks",
        meta,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("team_id", uuid_type, nullable=False),
        sa.Column("project_number", sa.Integer, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id", "project_number"], ["projects.team_id", "projects.number"]
        ),
    )
    return meta


# --- databases -------------------------------------------------------------------


@pytest.fixture
def postgres_engine(pg_url: str) -> Iterator[sa.Engine]:
    """An engine on a scratch PostgreSQL database (dropped by conftest)."""
    engine = sa.create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def mariadb_engine(mariadb_url: str) -> Iterator[sa.Engine]:
    """An engine on a scratch MariaDB database (dropped by conftest)."""
    engine = sa.create_engine(mariadb_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """A SQLite file that enforces foreign keys."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'seed.db'}")

    @sa.event.listens_for(engine, "connect")
    def _foreign_keys_on(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    yield engine
    engine.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def engine(request: pytest.FixtureRequest) -> sa.Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def _counts(conn: sa.Connection, spec: SchemaSpec) -> dict[str, int]:
    return {
        t.name: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t.name}").scalar_one()
        for t in spec.tables
    }


def _card_query() -> Query:
    lines = (SCHEMAS / "shop-queries.sql").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    return Query(
        name="customer_tiers",
        sql="\n".join(lines[first:]) + "\n",
        source=str(SCHEMAS / "shop-queries.sql"),
        line=first + 1,
    )


# --- seed data -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_factory", "metadata_factory"),
    [(shop_spec, shop_metadata), (lab_spec, lab_metadata)],
    ids=["shop", "lab"],
)
def test_seed_loads_and_holds_constraints(
    engine: sa.Engine,
    spec_factory: Callable[[], SchemaSpec],
    metadata_factory: Callable[[], sa.MetaData],
) -> None:
    """Every table gets its rows on every dialect and every constraint holds."""
    spec = spec_factory()
    metadata_factory().create_all(engine)
    seed = render_seed_sql(spec)

    with engine.begin() as conn:
        load_seed_sql(seed, conn)

    with engine.connect() as conn:
        assert _counts(conn, spec) == {t.name: 3 for t in spec.tables}
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_seed_advances_keys_so_new_rows_get_fresh_ids(engine: sa.Engine) -> None:
    """After the seed, a row inserted without an id gets one past the seeded ids."""
    shop_metadata().create_all(engine)
    with engine.begin() as conn:
        load_seed_sql(render_seed_sql(shop_spec()), conn)

    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (name, email) VALUES ('late', 'late@example.com')"
        )
        new_id = conn.exec_driver_sql(
            "SELECT id FROM users WHERE email = 'late@example.com'"
        ).scalar_one()
    assert new_id == 4


def test_identity_always_keys_load_everywhere(engine: sa.Engine) -> None:
    """GENERATED ALWAYS keys are overridden on PostgreSQL only."""
    spec = SchemaSpec(
        tables=[
            Table(
                name="tickets",
                columns=[
                    _c("id", "integer", nullable=False, identity="always"),
                    _c("title", "varchar", length=20, nullable=False),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            )
        ]
    )
    meta = sa.MetaData()
    sa.Table(
        "tickets",
        meta,
        sa.Column("id", sa.Integer, sa.Identity(always=True), primary_key=True),
        sa.Column("title", sa.String(20), nullable=False),
    )
    meta.create_all(engine)
    seed = render_seed_sql(spec)
    assert "OVERRIDING SYSTEM VALUE" in seed

    with engine.begin() as conn:
        load_seed_sql(seed, conn)
        conn.exec_driver_sql("INSERT INTO tickets (title) VALUES ('late')")
        ids = conn.exec_driver_sql("SELECT id FROM tickets ORDER BY id").scalars()
        assert list(ids) == [1, 2, 3, 4]


def test_circular_references_are_closed_by_update(sqlite_engine: sa.Engine) -> None:
    """The nullable side of a cycle is set once both tables have rows."""
    lab_metadata().create_all(sqlite_engine)
    seed = render_seed_sql(lab_spec())

    with sqlite_engine.begin() as conn:
        load_seed_sql(seed, conn)
        captains = conn.exec_driver_sql("SELECT captain_id FROM teams").scalars().all()
        mentors = conn.exec_driver_sql(
            "SELECT mentor_id FROM members ORDER BY id"
        ).scalars()
        assert sorted(captains) == [1, 2, 3]
        assert list(mentors) == [None, 1, 2]
    assert re.search(r"^UPDATE teams SET captain_id = 1 WHERE id = '", seed, re.M)


def test_seed_values_follow_the_checks() -> None:
    """BETWEEN, IN, length, enum and column-order checks shape the values."""
    seed = render_seed_sql(lab_spec())
    members = seed.split("INSERT INTO members", 1)[1].split(";", 1)[0]
    projects = seed.split("INSERT INTO projects", 1)[1].split(";", 1)[0]

    assert "'happy', 2, 'active', 'co1', NULL" in members
    assert "'sad', 3, 'paused', 'co2', 1" in members
    # budget > 100 starts just above the bound; ends_on after every starts_on
    assert "101.00, TRUE, '2030-06-01', '2030-06-04'" in projects


def test_seed_orders_parents_before_children() -> None:
    """Tables are inserted parents first whatever order the spec lists them in."""
    seed = render_seed_sql(shop_spec())
    order = re.findall(r"^INSERT INTO (\w+)", seed, re.M)
    assert order == ["products", "users", "auth_tokens", "orders", "order_items"]


def test_seed_is_byte_deterministic() -> None:
    """The same spec, even rebuilt, renders the same bytes."""
    assert render_seed_sql(lab_spec()) == render_seed_sql(lab_spec())
    assert render_seed_sql(shop_spec(), rows=5) == render_seed_sql(shop_spec(), rows=5)


def test_rows_parameter_and_limited_domains() -> None:
    """`rows` sets the row count; a unique enum column caps it at its labels."""
    spec = SchemaSpec(
        tables=[
            Table(
                name="feelings",
                columns=[_c("mood", "enum", type_name="mood", nullable=False)],
                primary_key=PrimaryKey(columns=["mood"]),
            )
        ],
        enums=[EnumType(name="mood", values=["happy", "sad"])],
    )
    assert "-- feelings: 2 rows" in render_seed_sql(spec, rows=4)
    assert "-- users: 5 rows" in render_seed_sql(shop_spec(), rows=5)
    with pytest.raises(InputError):
        render_seed_sql(shop_spec(), rows=0)


def test_unsatisfiable_check_skips_table_and_dependents() -> None:
    """A check no value meets leaves out its table and the tables needing it."""
    spec = SchemaSpec(
        tables=[
            Table(
                name="odd",
                columns=[_c("id", "integer", nullable=False)],
                primary_key=PrimaryKey(columns=["id"]),
                check_constraints=[CheckConstraint(expression="id > 5 AND id < 3")],
            ),
            Table(
                name="child",
                columns=[
                    _c("id", "integer", nullable=False),
                    _c("odd_id", "integer", nullable=False),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[
                    ForeignKey(columns=["odd_id"], ref_table="odd", ref_columns=["id"])
                ],
            ),
            Table(
                name="fine",
                columns=[_c("id", "integer", nullable=False)],
                primary_key=PrimaryKey(columns=["id"]),
            ),
        ]
    )
    seed = render_seed_sql(spec)

    assert "--   odd: no value of id meets its constraints" in seed
    assert "--   child: it needs rows in odd, which is not seeded" in seed
    assert re.findall(r"^INSERT INTO (\w+)", seed, re.M) == ["fine"]


def test_circular_keys_without_nullable_column_are_skipped() -> None:
    """A cycle of NOT NULL foreign keys cannot be seeded and says so."""

    def table(name: str, other: str) -> Table:
        return Table(
            name=name,
            columns=[
                _c("id", "integer", nullable=False),
                _c("other_id", "integer", nullable=False),
            ],
            primary_key=PrimaryKey(columns=["id"]),
            foreign_keys=[
                ForeignKey(columns=["other_id"], ref_table=other, ref_columns=["id"])
            ],
        )

    seed = render_seed_sql(SchemaSpec(tables=[table("a", "b"), table("b", "a")]))
    assert "--   a: circular foreign keys with no nullable column (a -> b)" in seed
    assert "INSERT INTO" not in seed


def test_unevaluable_check_is_reported() -> None:
    """A check using a function sparc does not model skips the table."""
    spec = SchemaSpec(
        tables=[
            Table(
                name="events",
                columns=[_c("at", "timestamp", nullable=False)],
                check_constraints=[
                    CheckConstraint(name="future", expression="at > now()")
                ],
            )
        ]
    )
    seed = render_seed_sql(spec)
    assert "--   events: check future uses function now" in seed


def test_seed_statements_honour_dialect_blocks() -> None:
    """PostgreSQL-only blocks, semicolons in strings and MariaDB quoting."""
    sql = (
        "-- header; with a semicolon\n"
        "INSERT INTO \"order\" (note) VALUES ('a;b');\n"
        "-- BEGIN postgresql only\n"
        "SELECT setval(pg_get_serial_sequence('t', 'id'), 3);\n"
        "-- END postgresql only\n"
        "-- BEGIN sqlite, mariadb only\n"
        "SELECT 1;\n"
        "-- END sqlite, mariadb only\n"
    )
    assert seed_statements(sql, "postgresql") == [
        "INSERT INTO \"order\" (note) VALUES ('a;b')",
        "SELECT setval(pg_get_serial_sequence('t', 'id'), 3)",
    ]
    assert seed_statements(sql, "sqlite") == [
        "INSERT INTO \"order\" (note) VALUES ('a;b')",
        "SELECT 1",
    ]
    assert (
        seed_statements(sql, "mysql")[0] == "INSERT INTO `order` (note) VALUES ('a;b')"
    )
    with pytest.raises(InputError):
        seed_statements(sql, "oracle")
    with pytest.raises(InputError):
        seed_statements("-- BEGIN postgresql only\nSELECT 1;\n", "postgresql")


def test_reserved_and_mixed_case_names_load(engine: sa.Engine) -> None:
    """Names every dialect must quote load after seed_statements rewrites them."""
    spec = SchemaSpec(
        tables=[
            Table(
                name="Order",
                columns=[
                    _c("id", "integer", nullable=False, serial=True),
                    _c("key", "varchar", length=5, nullable=False),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            )
        ]
    )
    meta = sa.MetaData()
    sa.Table(
        "Order",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(5), nullable=False),
    )
    meta.create_all(engine)
    seed = render_seed_sql(spec)
    assert 'INSERT INTO "Order" (id, "key")' in seed

    with engine.begin() as conn:
        load_seed_sql(seed, conn)
        count = conn.execute(
            sa.select(sa.func.count()).select_from(meta.tables["Order"])
        )
        assert count.scalar_one() == 3


def test_load_seed_sql_names_the_failing_statement(sqlite_engine: sa.Engine) -> None:
    """A statement the database refuses becomes a VerificationError."""
    with sqlite_engine.begin() as conn, pytest.raises(VerificationError) as caught:
        load_seed_sql("INSERT INTO missing (id) VALUES (1);\n", conn)
    assert caught.value.step == "seed"
    assert caught.value.dialect == "sqlite"
    assert "INSERT INTO missing" in str(caught.value)


# --- performance queries -----------------------------------------------------------


def test_access_paths_name_their_backing_index() -> None:
    """Each foreign key gets a query, annotated with its index or the missing one."""
    out = render_performance_queries(shop_spec(), [_card_query()])

    assert "-- name: customer_tiers\n" in out
    assert _card_query().sql.strip() in out
    paths = out.split(GENERATED_SECTION_MARKER, 1)[1]
    assert (
        "-- name: fk_orders_user_id\n"
        "-- the orders rows of one users row, by user_id\n"
        "-- backed by index idx_orders_user_date\n"
        "SELECT id, user_id, created_at\n"
        "FROM orders\n"
        "WHERE user_id = :user_id;"
    ) in paths
    assert "-- NO INDEX: add an index on order_items(order_id)" in paths
    assert "-- NO INDEX: add an index on order_items(product_id)" in paths
    assert "-- backed by index idx_auth_tokens_user_id" in paths


def test_existing_queries_are_kept_replaced_in_place_and_appended() -> None:
    """Old names stay in order, a re-run replaces in place, new ones append."""
    spec = shop_spec()
    first = render_performance_queries(
        spec,
        [
            Query("recent_orders", "SELECT id FROM orders", "a.md", 3),
            Query(
                "big_products", "SELECT id FROM products WHERE price > 10;", "a.md", 9
            ),
        ],
    )
    second = render_performance_queries(
        spec,
        [
            Query("new_users", "SELECT id FROM users", "b.md", 1),
            Query("recent_orders", "SELECT id FROM orders ORDER BY id", "b.md", 5),
        ],
        existing=first,
    )

    names = [name for name, _ in read_named_queries(second)]
    assert names[:3] == ["recent_orders", "big_products", "new_users"]
    assert "SELECT id FROM orders ORDER BY id;" in second
    assert "SELECT id FROM orders;" not in second
    assert second.count(GENERATED_SECTION_MARKER) == 1
    assert names.count("fk_orders_user_id") == 1
    assert render_performance_queries(spec, [], existing=second) == second


def test_performance_queries_are_byte_deterministic() -> None:
    """The same inputs render the same bytes."""
    one = render_performance_queries(shop_spec(), [_card_query()])
    assert one == render_performance_queries(shop_spec(), [_card_query()])


def test_conflicting_query_names_are_refused() -> None:
    """Two different queries with one name name both places."""
    queries = [Query("q", "SELECT 1", "a.md", 1), Query("q", "SELECT 2", "b.md", 7)]
    with pytest.raises(
        InputError, match=r"b\.md:7: query 'q' is also defined at a\.md:1"
    ):
        render_performance_queries(shop_spec(), queries)
    with pytest.raises(InputError):
        render_performance_queries(
            shop_spec(), [Query("two words", "SELECT 1", "a", 1)]
        )


def _shop_ddl_on(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for step in ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"):
            text = (SCHEMAS / step).read_text()
            for statement in seed_statements(text, "postgresql"):
                conn.exec_driver_sql(statement)


@pytest.mark.postgres
def test_every_shop_query_explains_on_postgresql(postgres_engine: sa.Engine) -> None:
    """The card's DDL takes the seed, and every query of the file plans."""
    _shop_ddl_on(postgres_engine)
    with postgres_engine.begin() as conn:
        load_seed_sql(render_seed_sql(shop_spec()), conn)
    out = render_performance_queries(shop_spec(), [_card_query()])

    with postgres_engine.connect() as conn:
        plans = explain_queries(out, conn)
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM users").scalar_one() == 3

    assert [name for name, _ in plans] == [
        "customer_tiers",
        "fk_order_items_order_id",
        "fk_order_items_product_id",
        "fk_auth_tokens_user_id",
        "fk_orders_user_id",
    ]
    assert all(re.search(r"\(cost=", line) for _, line in plans)


@pytest.mark.postgres
def test_explain_failure_names_the_query(postgres_engine: sa.Engine) -> None:
    """A query that does not plan raises a VerificationError naming it."""
    _shop_ddl_on(postgres_engine)
    out = render_performance_queries(
        shop_spec(),
        [Query("broken", "SELECT * FROM nowhere WHERE id = :id", "q.md", 2)],
    )
    with postgres_engine.connect() as conn, pytest.raises(VerificationError) as caught:
        explain_queries(out, conn)
    assert caught.value.step == "explain"
    assert caught.value.dialect == "postgresql"
    assert "query broken does not plan" in str(caught.value)


@pytest.mark.postgres
def test_explain_handles_untyped_binds_and_percent_signs(
    postgres_engine: sa.Engine,
) -> None:
    """A bind PostgreSQL cannot type falls back to NULL; '%' is no placeholder."""
    _shop_ddl_on(postgres_engine)
    out = render_performance_queries(
        shop_spec(),
        [
            Query("untyped", "SELECT :anything", "q.md", 1),
            Query("like", "SELECT id FROM users WHERE name LIKE '%a%'", "q.md", 2),
        ],
    )
    with postgres_engine.connect() as conn:
        plans = dict(explain_queries(out, conn))
    assert plans["untyped"].startswith("Result")
    assert plans["like"].startswith("Seq Scan on users")


def test_explain_needs_postgresql(sqlite_engine: sa.Engine) -> None:
    """EXPLAIN of the file is a PostgreSQL step."""
    with sqlite_engine.connect() as conn, pytest.raises(VerificationError):
        explain_queries("-- name: q\nSELECT 1;\n", conn)


def _one_table(*columns: Column, checks: list[str]) -> SchemaSpec:
    return SchemaSpec(
        tables=[
            Table(
                name="things",
                columns=[_c("id", "integer", nullable=False), *columns],
                primary_key=PrimaryKey(columns=["id"]),
                check_constraints=[CheckConstraint(expression=e) for e in checks],
            )
        ]
    )


def test_checks_in_postgresql_catalog_spelling_are_read() -> None:
    """`= ANY (ARRAY[...])` with casts, as pg_get_expr prints IN, picks a label."""
    spec = _one_table(
        _c("status", "varchar", length=8, nullable=False),
        checks=[
            "((status)::text = ANY ((ARRAY['open'::character varying, "
            "'shut'::character varying])::text[]))"
        ],
    )
    seed = render_seed_sql(spec)
    assert "(1, 'open'),\n    (2, 'shut'),\n    (3, 'open');" in seed


def test_optional_column_falls_back_to_null(sqlite_engine: sa.Engine) -> None:
    """A check met only by NULL leaves the nullable column NULL."""
    spec = _one_table(
        _c("note", "text"),
        checks=["note IS NULL OR length(note) > 100"],
    )
    seed = render_seed_sql(spec)
    assert "(1, NULL)" in seed

    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE things (id INTEGER PRIMARY KEY, note TEXT "
            "CHECK (note IS NULL OR length(note) > 100))"
        )
        load_seed_sql(seed, conn)


def test_check_beyond_the_known_shapes_skips_the_table() -> None:
    """A check the chosen values break is reported, not written."""
    spec = _one_table(
        _c("a", "integer", nullable=False),
        _c("b", "integer", nullable=False),
        checks=["a + b = 10"],
    )
    seed = render_seed_sql(spec)
    assert "--   things: no values found that satisfy check a + b = 10" in seed
    assert "INSERT INTO" not in seed
