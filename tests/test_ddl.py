"""Tests for sparc.agents.hephaestus.ddl: PostgreSQL DDL into a SchemaSpec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparc.agents.hephaestus.ddl import (
    Query,
    Rename,
    apply_renames,
    parse_file,
    parse_sql,
    sql_from_markdown,
)
from sparc.agents.hephaestus.spec import (
    CheckConstraint,
    Column,
    ColumnType,
    ForeignKey,
    Index,
    IndexElement,
    PrimaryKey,
    SchemaSpec,
    Table,
    UniqueConstraint,
)
from sparc.errors import DDLError

SHARED = Path(__file__).resolve().parents[2] / "shared"
SCHEMAS = SHARED / "data" / "schemas"
CASES = SHARED / "cases"

# outside CI a checkout without ../shared skips; under CI=true it must be there
pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared schemas not found at {SCHEMAS}",
)


def _case(number: str) -> SchemaSpec:
    path = next(CASES.glob(f"{number}-*.sql"))
    return parse_file(path, display=path.name).spec


def _table(spec: SchemaSpec, name: str) -> Table:
    table = spec.table(name)
    assert table is not None, f"table {name} missing"
    return table


def _column(table: Table, name: str) -> Column:
    column = table.column(name)
    assert column is not None, f"column {table.name}.{name} missing"
    return column


def _shop() -> SchemaSpec:
    spec = None
    for step in ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"):
        spec = parse_file(SCHEMAS / step, display=step, base=spec).spec
    assert spec is not None
    return spec


# -- shop ---------------------------------------------------------------------


def test_shop_steps_build_the_expected_schema() -> None:
    """Steps 1-3, each applied on the previous one, give exactly this spec."""
    integer = ColumnType(kind="integer")
    varchar = ColumnType(kind="varchar", length=255)
    timestamp = ColumnType(kind="timestamp")
    money = ColumnType(kind="numeric", precision=10, scale=2)
    serial_id = Column(name="id", type=integer, nullable=False, serial=True)
    expected = [
        Table(
            name="users",
            columns=[
                serial_id,
                Column(name="name", type=varchar, nullable=False),
                Column(name="email", type=varchar, nullable=False),
                Column(name="created_at", type=timestamp, default="CURRENT_TIMESTAMP"),
                Column(name="deleted_at", type=timestamp),
            ],
            primary_key=PrimaryKey(columns=["id"]),
            unique_constraints=[UniqueConstraint(columns=["email"])],
            indexes=[
                Index(
                    name="idx_users_created_at",
                    elements=[IndexElement(column="created_at")],
                ),
                Index(name="idx_users_email", elements=[IndexElement(column="email")]),
                Index(
                    name="idx_active_users",
                    elements=[IndexElement(column="id")],
                    where="deleted_at IS NULL",
                ),
            ],
        ),
        Table(
            name="products",
            columns=[
                serial_id,
                Column(name="name", type=varchar, nullable=False),
                Column(name="price", type=money, nullable=False),
            ],
            primary_key=PrimaryKey(columns=["id"]),
            check_constraints=[CheckConstraint(expression="price >= 0")],
        ),
        Table(
            name="orders",
            columns=[
                serial_id,
                Column(name="user_id", type=integer, nullable=False),
                Column(name="created_at", type=timestamp, default="CURRENT_TIMESTAMP"),
            ],
            primary_key=PrimaryKey(columns=["id"]),
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
        ),
        Table(
            name="order_items",
            columns=[
                serial_id,
                Column(name="order_id", type=integer, nullable=False),
                Column(name="product_id", type=integer, nullable=False),
                Column(name="quantity", type=integer, nullable=False),
                Column(name="unit_price", type=money, nullable=False),
            ],
            primary_key=PrimaryKey(columns=["id"]),
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
            check_constraints=[CheckConstraint(expression="quantity > 0")],
        ),
        Table(
            name="auth_tokens",
            columns=[
                Column(name="id", type=integer, nullable=False),
                Column(name="user_id", type=integer, nullable=False),
                Column(name="token_hash", type=varchar, nullable=False),
                Column(name="expires_at", type=timestamp, nullable=False),
                Column(name="created_at", type=timestamp, default="now()"),
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
                Index(name=f"idx_auth_tokens_{c}", elements=[IndexElement(column=c)])
                for c in ("user_id", "token_hash", "expires_at")
            ],
        ),
    ]

    assert _shop() == SchemaSpec(tables=expected)


def test_shop_step_without_its_base_names_the_missing_table() -> None:
    with pytest.raises(DDLError) as caught:
        parse_file(SCHEMAS / "shop-3-indexes.sql", display="shop-3-indexes.sql")

    assert caught.value.line == 3
    assert caught.value.column == 13
    assert "table users is not defined" in str(caught.value)


def test_shop_query_keeps_its_binds() -> None:
    parsed = parse_file(SCHEMAS / "shop-queries.sql", display="shop-queries.sql")

    assert parsed.spec == SchemaSpec()
    assert len(parsed.queries) == 1
    query = parsed.queries[0]
    assert query.name == "shop_queries_1"
    assert query.line == 2
    assert query.source == "shop-queries.sql"
    assert query.sql.startswith("WITH user_metrics AS (")
    assert query.sql.endswith("LIMIT :limit OFFSET :offset")
    assert ":start_date" in query.sql


# -- the cases ----------------------------------------------------------------


def test_case_01_enum_values_keep_their_order() -> None:
    spec = _case("01")

    assert spec.enum("ticket_status") is not None
    assert spec.enums[0].values == ["open", "in_progress", "closed"]
    ticket = _table(spec, "ticket")
    assert _column(ticket, "id").type.kind == "bigint"
    assert _column(ticket, "id").serial
    status = _column(ticket, "status")
    assert status.type == ColumnType(kind="enum", name="ticket_status")
    assert status.default == "'open'"
    assert not status.nullable


def test_case_03_keeps_column_checks_named_and_unnamed() -> None:
    table = _table(_case("03"), "meter_reading")

    assert table.check_constraints == [
        CheckConstraint(
            name="ck_meter_reading_kwh_nonneg", expression="reading_kwh >= 0"
        ),
        CheckConstraint(expression="quality BETWEEN 1 AND 5"),
    ]
    assert _column(table, "reading_kwh").type == ColumnType(
        kind="numeric", precision=12, scale=3
    )


def test_case_04_partial_unique_index_on_a_boolean() -> None:
    table = _table(_case("04"), "vehicle_listing")

    assert table.indexes == [
        Index(
            name="uq_vehicle_listing_vin_active",
            elements=[IndexElement(column="vin")],
            unique=True,
            where="is_active",
        )
    ]
    assert _column(table, "vin").type == ColumnType(kind="char", length=17)
    assert _column(table, "is_active").default == "true"


def test_case_07_function_defaults_stay_expressions() -> None:
    table = _table(_case("07"), "api_client")

    assert _column(table, "id").type.kind == "uuid"
    assert _column(table, "id").default == "gen_random_uuid()"
    assert _column(table, "created_at").default == "timezone('utc', now())"


def test_case_10_cascade_and_index() -> None:
    table = _table(_case("10"), "poll_vote")

    assert table.foreign_keys == [
        ForeignKey(
            columns=["poll_id"],
            ref_table="poll",
            ref_columns=["id"],
            on_delete="CASCADE",
        )
    ]
    assert [index.name for index in table.indexes] == ["ix_poll_vote_poll_id"]


def test_case_14_float_kinds() -> None:
    table = _table(_case("14"), "wallet")

    assert _column(table, "balance").type.kind == "double"
    assert _column(table, "balance").default == "0"
    assert _column(table, "credit_limit").type.kind == "real"
    assert _column(table, "fee_rate").type.kind == "double"


def test_case_16_reserved_words_are_plain_names() -> None:
    spec = _case("16")

    assert [table.name for table in spec.tables] == ["user", "group", "order"]
    order = _table(spec, "order")
    assert [column.name for column in order.columns] == [
        "id",
        "user_id",
        "group",
        "desc",
    ]
    assert [(key.columns, key.ref_table) for key in order.foreign_keys] == [
        (["user_id"], "user"),
        (["group"], "group"),
    ]


def test_case_17_circular_keys_with_deferred_alter() -> None:
    spec = _case("17")

    assert _table(spec, "department").foreign_keys == [
        ForeignKey(
            name="fk_department_head_employee_id_employee",
            columns=["head_employee_id"],
            ref_table="employee",
            ref_columns=["id"],
            deferrable=True,
            initially_deferred=True,
        )
    ]
    assert _table(spec, "employee").foreign_keys[0].ref_table == "department"


def test_case_19_composite_keys() -> None:
    spec = _case("19")

    assert _table(spec, "resident").primary_key == PrimaryKey(
        columns=["building_id", "unit_no"]
    )
    assert _table(spec, "parking_permit").foreign_keys == [
        ForeignKey(
            columns=["building_id", "unit_no"],
            ref_table="resident",
            ref_columns=["building_id", "unit_no"],
            on_delete="CASCADE",
        )
    ]


def test_case_20_link_table_nullable_keys() -> None:
    table = _table(_case("20"), "member_team_group")

    assert _column(table, "member_id").nullable
    assert [key.ref_table for key in table.foreign_keys] == ["member", "team_group"]
    assert all(key.on_delete is None for key in table.foreign_keys)


def test_case_21_arrays_jsonb_and_gin() -> None:
    table = _table(_case("21"), "article")

    assert _column(table, "tags").type == ColumnType(kind="text", dimensions=1)
    assert _column(table, "tags").default == "'{}'"
    assert _column(table, "scores").type == ColumnType(kind="integer", dimensions=1)
    assert _column(table, "attributes").default == "'{}'::jsonb"
    assert _column(table, "history").default == "'[]'::jsonb"
    assert table.indexes == [
        Index(
            name="ix_article_tags", elements=[IndexElement(column="tags")], method="gin"
        ),
        Index(
            name="ix_article_attributes",
            elements=[IndexElement(column="attributes", opclass="jsonb_path_ops")],
            method="gin",
        ),
    ]


def test_case_22_every_index_is_kept() -> None:
    spec = _case("22")

    shortlink = _table(spec, "shortlink")
    assert [index.name for index in shortlink.indexes] == [
        "ux_shortlink_id",
        "ix_shortlink_slug",
        "ix_shortlink_owner",
        "ix_shortlink_owner_again",
        "ix_shortlink_owner_created",
    ]
    assert shortlink.indexes[0].unique
    assert shortlink.unique_constraints == [UniqueConstraint(columns=["slug"])]
    link_note = _table(spec, "link_note")
    assert link_note.primary_key == PrimaryKey(columns=["link_id", "lang"])
    assert link_note.indexes[0].unique


@pytest.mark.parametrize(
    "path", sorted(CASES.glob("*.sql")), ids=lambda path: path.name[:2]
)
def test_every_case_file_parses(path: Path) -> None:
    spec = parse_file(path, display=path.name).spec

    assert spec.tables


# -- chinook and pagila -------------------------------------------------------


def test_chinook_tables_keys_and_indexes() -> None:
    spec = parse_file(SCHEMAS / "chinook.sql", display="chinook.sql").spec

    assert len(spec.tables) == 11
    keys = sum(len(table.foreign_keys) for table in spec.tables)
    indexes = sum(len(table.indexes) for table in spec.tables)
    assert keys == 11
    assert indexes == 11
    track = _table(spec, "track")
    assert {key.name: key.ref_table for key in track.foreign_keys} == {
        "track_album_id_fkey": "album",
        "track_genre_id_fkey": "genre",
        "track_media_type_id_fkey": "media_type",
    }
    # ON DELETE NO ACTION is the default, so it is not recorded
    assert all(key.on_delete is None for key in track.foreign_keys)
    assert _column(track, "track_id").serial
    assert _table(spec, "playlist_track").primary_key == PrimaryKey(
        name="playlist_track_pkey", columns=["playlist_id", "track_id"]
    )


def _pagila() -> tuple[SchemaSpec, str]:
    text = (SCHEMAS / "pagila.sql").read_text(encoding="utf-8")
    return parse_sql(text, source="pagila.sql").spec, text


def test_pagila_tables_types_and_partitions() -> None:
    spec, _ = _pagila()

    assert len(spec.tables) == 15
    assert spec.enum("mpaa_rating") is not None
    assert spec.enums[0].values == ["G", "PG", "PG-13", "R", "NC-17"]
    year = spec.domain("year")
    assert year is not None
    assert year.type == ColumnType(kind="integer")
    assert year.check_constraints[0].name == "year_check"
    assert spec.domain("bıgınt") is not None
    assert spec.domains[0].type.kind == "bigint"

    film = _table(spec, "film")
    assert _column(film, "release_year").type == ColumnType(kind="domain", name="year")
    assert _column(film, "rating").type == ColumnType(kind="enum", name="mpaa_rating")
    assert _column(film, "rating").default == "'G'::mpaa_rating"
    assert _column(film, "fulltext").type.kind == "tsvector"
    assert _column(film, "special_features").type == ColumnType(
        kind="text", dimensions=1
    )
    assert film.indexes[0] == Index(
        name="film_fulltext_idx",
        elements=[IndexElement(column="fulltext")],
        method="gist",
    )
    customer = _table(spec, "customer")
    assert _column(customer, "last_update").type == ColumnType(
        kind="timestamp", timezone=True
    )
    assert customer.foreign_keys[0].on_update == "CASCADE"
    assert customer.foreign_keys[0].on_delete == "RESTRICT"

    payment = _table(spec, "payment")
    assert payment.partition_by == "RANGE (payment_date)"
    assert payment.primary_key == PrimaryKey(columns=["payment_date", "payment_id"])
    assert len(spec.partitions) == 55
    assert {part.parent for part in spec.partitions} == {"payment"}
    assert spec.partitions[0].name == "payment_p2022_01"
    assert spec.partitions[0].bound == (
        "FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2022-02-01 00:00:00+00')"
    )


def test_pagila_sequences_become_serial_columns() -> None:
    spec, _ = _pagila()

    for name in ("actor", "customer", "film", "payment", "store"):
        key = _column(_table(spec, name), f"{name}_id")
        assert key.serial, name
        assert key.default is None
    assert not [obj for obj in spec.objects if obj.kind == "sequence"]


def test_pagila_views_functions_and_triggers_keep_their_sql() -> None:
    spec, text = _pagila()

    kinds = [obj.kind for obj in spec.objects]
    assert kinds.count("view") == 7
    assert kinds.count("materialized_view") == 1
    assert kinds.count("function") == 9
    assert kinds.count("trigger") == 15
    for obj in spec.objects:
        assert obj.create.endswith(";")
        assert obj.create.split(";\n\n")[0].rstrip(";") in text

    functions = {obj.name: obj for obj in spec.objects if obj.kind == "function"}
    balance = functions["get_customer_balance(integer, timestamp with time zone)"]
    assert balance.drop == (
        "DROP FUNCTION get_customer_balance(integer, timestamp with time zone)"
    )
    # OUT parameters are not part of a function's identity
    assert functions["film_in_stock(integer, integer)"].drop == (
        "DROP FUNCTION film_in_stock(integer, integer)"
    )
    assert "LANGUAGE plpgsql" in functions["last_updated()"].create
    triggers = [obj for obj in spec.objects if obj.kind == "trigger"]
    assert triggers[1].drop == "DROP TRIGGER last_updated ON actor"
    matview = next(o for o in spec.objects if o.kind == "materialized_view")
    assert matview.drop == "DROP MATERIALIZED VIEW rental_by_category"
    assert "CREATE UNIQUE INDEX rental_category" in matview.create
    # dependency order of the dump is kept: functions before the views using them
    assert kinds.index("function") < kinds.index("view") < kinds.index("trigger")


def test_pagila_partitions_carry_their_own_keys_and_indexes() -> None:
    spec, _ = _pagila()

    definitions = {p.name: p.definitions for p in spec.partitions}

    assert definitions["payment_p2022_02"] == [
        "CREATE INDEX idx_fk_payment_p2022_02_customer_id "
        "ON public.payment_p2022_02 USING btree (customer_id)",
        "CREATE INDEX idx_fk_payment_p2022_02_staff_id "
        "ON public.payment_p2022_02 USING btree (staff_id)",
        "CREATE INDEX payment_p2022_02_customer_id_idx "
        "ON public.payment_p2022_02 USING btree (customer_id)",
        "ALTER TABLE ONLY public.payment_p2022_02\n    ADD CONSTRAINT "
        "payment_p2022_02_customer_id_fkey FOREIGN KEY (customer_id) "
        "REFERENCES public.customer(customer_id)",
        "ALTER TABLE ONLY public.payment_p2022_02\n    ADD CONSTRAINT "
        "payment_p2022_02_rental_id_fkey FOREIGN KEY (rental_id) "
        "REFERENCES public.rental(rental_id)",
        "ALTER TABLE ONLY public.payment_p2022_02\n    ADD CONSTRAINT "
        "payment_p2022_02_staff_id_fkey FOREIGN KEY (staff_id) "
        "REFERENCES public.staff(staff_id)",
    ]
    assert sum(len(d) for d in definitions.values()) == 36


PARTITIONED = """
CREATE TABLE p (id int NOT NULL, at date NOT NULL, ref int) PARTITION BY RANGE (at);
CREATE TABLE r (id int PRIMARY KEY);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
"""


def test_an_index_attached_to_the_parents_is_not_created_twice() -> None:
    text = PARTITIONED + (
        "CREATE INDEX p_at ON ONLY p (at);\n"
        "CREATE INDEX p1_at ON p1 (at);\n"
        "CREATE INDEX p1_ref ON p1 (ref);\n"
        "ALTER INDEX p_at ATTACH PARTITION p1_at;\n"
    )

    spec = parse_sql(text, source="p.sql").spec

    assert spec.partitions[0].definitions == ["CREATE INDEX p1_ref ON p1 (ref)"]


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("ALTER TABLE p1 ALTER COLUMN ref SET DEFAULT 1;", "takes only ADD"),
        ("ALTER INDEX p_at ATTACH PARTITION nowhere;", "nowhere is not declared"),
    ],
)
def test_partition_changes_it_cannot_carry_are_refused(tail: str, message: str) -> None:
    with pytest.raises(DDLError, match=message) as caught:
        parse_sql(PARTITIONED + tail, source="p.sql")

    assert "line 5" in str(caught.value)


def test_keys_declared_before_attach_are_refused() -> None:
    text = (
        "CREATE TABLE p (id int, ref int) PARTITION BY LIST (id);\n"
        "CREATE TABLE r (id int PRIMARY KEY);\n"
        "CREATE TABLE p1 (id int, ref int REFERENCES r (id));\n"
        "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1);\n"
    )

    with pytest.raises(DDLError, match="before it is attached"):
        parse_sql(text, source="p.sql")


# -- pg_dump idioms and incremental statements ---------------------------------

DUMP = """
CREATE TABLE public.t (id integer NOT NULL, code text);
CREATE SEQUENCE public.t_id_seq AS integer START WITH 1 INCREMENT BY 1;
ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id;
CREATE SEQUENCE public.tickets START WITH 100;
ALTER TABLE ONLY public.t ALTER COLUMN id
    SET DEFAULT nextval('public.t_id_seq'::regclass);
ALTER TABLE ONLY public.t ALTER COLUMN code
    SET DEFAULT nextval('public.tickets'::regclass);
CREATE TABLE public.u (id bigint NOT NULL);
ALTER TABLE public.u ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.u_id_seq START WITH 1
);
CREATE TABLE v (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
"""


def test_owned_sequence_becomes_serial_and_free_sequence_stays() -> None:
    spec = parse_sql(DUMP, source="dump.sql").spec

    column = _column(_table(spec, "t"), "id")
    assert column.serial
    assert column.default is None
    assert _column(_table(spec, "t"), "code").default == "nextval('tickets'::regclass)"
    assert [(obj.kind, obj.name, obj.drop) for obj in spec.objects] == [
        ("sequence", "tickets", "DROP SEQUENCE tickets")
    ]
    assert spec.objects[0].create == "CREATE SEQUENCE public.tickets START WITH 100;"
    assert _column(_table(spec, "u"), "id").identity == "always"
    # pg_dump spells out the defaults: nothing is left to keep
    assert _column(_table(spec, "u"), "id").identity_options is None
    assert _column(_table(spec, "v"), "id").identity == "by_default"


def test_alter_statements_change_the_base() -> None:
    base = _shop()
    sql = """
    ALTER TABLE users ALTER COLUMN name TYPE text, ALTER COLUMN name DROP NOT NULL;
    ALTER TABLE users ALTER COLUMN created_at SET NOT NULL;
    ALTER TABLE users ALTER COLUMN created_at DROP DEFAULT;
    ALTER TABLE users RENAME COLUMN deleted_at TO removed_at;
    ALTER TABLE users DROP CONSTRAINT users_email_key;
    ALTER TABLE products DROP CONSTRAINT products_price_check;
    ALTER TABLE products ADD CONSTRAINT price_positive CHECK (price > 0);
    ALTER TABLE order_items DROP COLUMN product_id;
    DROP INDEX idx_users_email;
    DROP TABLE auth_tokens;
    COMMENT ON TABLE users IS 'people who buy';
    COMMENT ON COLUMN users.email IS 'login';
    """
    spec = parse_sql(sql, source="step-4.sql", base=base).spec

    users = _table(spec, "users")
    assert _column(users, "name").type.kind == "text"
    assert _column(users, "name").nullable
    assert not _column(users, "created_at").nullable
    assert _column(users, "created_at").default is None
    assert _column(users, "removed_at").type.kind == "timestamp"
    assert users.indexes[-1].where == "removed_at IS NULL"
    assert users.unique_constraints == []
    assert [index.name for index in users.indexes] == [
        "idx_users_created_at",
        "idx_active_users",
    ]
    assert users.comment == "people who buy"
    assert _column(users, "email").comment == "login"
    products = _table(spec, "products")
    assert products.check_constraints == [
        CheckConstraint(name="price_positive", expression="price > 0")
    ]
    items = _table(spec, "order_items")
    assert items.column("product_id") is None
    assert [key.ref_table for key in items.foreign_keys] == ["orders"]
    assert spec.table("auth_tokens") is None
    # the base is left as it was
    assert _table(base, "users").column("deleted_at") is not None


def test_drop_table_referenced_without_cascade_is_refused() -> None:
    with pytest.raises(DDLError) as caught:
        parse_sql("\n\nDROP TABLE users;", source="drop.sql", base=_shop())

    assert caught.value.line == 3
    assert "foreign keys of auth_tokens, orders reference it" in str(caught.value)


def test_partition_of_and_other_types() -> None:
    sql = """
    CREATE TABLE events (
        at timestamptz NOT NULL,
        addr inet,
        flags bit(3),
        span interval day to second,
        grid integer[][],
        stamp time(3) with time zone,
        price numeric(8),
        note varchar,
        initial char
    ) PARTITION BY LIST (addr);
    CREATE TABLE events_a PARTITION OF events FOR VALUES IN ('10.0.0.1');
    CREATE TABLE events_rest PARTITION OF events DEFAULT;
    """
    spec = parse_sql(sql, source="events.sql").spec

    events = _table(spec, "events")
    assert events.partition_by == "LIST (addr)"
    assert _column(events, "at").type == ColumnType(kind="timestamp", timezone=True)
    assert _column(events, "addr").type == ColumnType(kind="other", name="inet")
    assert _column(events, "flags").type.kind == "other"
    assert _column(events, "span").type.name == "interval day to second"
    assert _column(events, "grid").type == ColumnType(kind="integer", dimensions=2)
    assert _column(events, "stamp").type == ColumnType(
        kind="time", precision=3, timezone=True
    )
    assert _column(events, "price").type == ColumnType(kind="numeric", precision=8)
    assert _column(events, "note").type == ColumnType(kind="varchar")
    assert _column(events, "initial").type == ColumnType(kind="char", length=1)
    assert [(p.name, p.bound) for p in spec.partitions] == [
        ("events_a", "FOR VALUES IN ('10.0.0.1')"),
        ("events_rest", "DEFAULT"),
    ]


def test_index_options_expressions_and_include() -> None:
    sql = """
    CREATE TABLE doc (id int PRIMARY KEY, title text, body text);
    CREATE INDEX ON doc (lower(title) DESC NULLS LAST) INCLUDE (body);
    """
    table = _table(parse_sql(sql, source="doc.sql").spec, "doc")

    assert table.indexes == [
        Index(
            name="doc_expr_idx",
            elements=[
                IndexElement(expression="lower(title)", descending=True, nulls="last")
            ],
            include=["body"],
        )
    ]


def test_ignored_and_refused_statements() -> None:
    sql = """SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);
CREATE TABLE a (id int);
ALTER TABLE a OWNER TO postgres;
GRANT SELECT ON a TO PUBLIC;
CREATE RULE r AS ON INSERT TO a DO NOTHING;
ALTER TABLE a ENABLE ROW LEVEL SECURITY;
"""
    with pytest.raises(DDLError) as caught:
        parse_sql(sql, source="mixed.sql")

    message = str(caught.value)
    assert caught.value.line == 6
    assert caught.value.column == 1
    assert "2 statement(s)" in message
    assert "line 6: CREATE RULE r AS" in message
    assert "line 7: ALTER TABLE a: EnableRowSecurity" in message


def test_extension_is_kept_as_an_object() -> None:
    """CREATE EXTENSION is carried into the spec, never silently dropped."""
    spec = parse_sql('CREATE EXTENSION IF NOT EXISTS "uuid-ossp";', source="x.sql")

    (extension,) = spec.spec.objects
    assert extension.kind == "extension"
    assert extension.name == "uuid-ossp"
    assert "uuid-ossp" in extension.create
    assert "uuid-ossp" in extension.drop


# -- queries and binds ---------------------------------------------------------


def test_query_names_and_binds() -> None:
    sql = """CREATE TABLE t (id int, tags text[], note text);
-- name: find_by_id
SELECT id, tags[1:2], note::text FROM t WHERE id = :id AND note <> ':nope';
INSERT INTO t (id, note) VALUES (:'id', $$ keeps :this $$);
-- a comment that is not a name
DELETE FROM t WHERE id = :id   -- trailing
"""
    parsed = parse_sql(sql, source="docs/Report Queries.sql")

    assert parsed.queries == [
        Query(
            name="find_by_id",
            sql="SELECT id, tags[1:2], note::text FROM t WHERE id = :id "
            "AND note <> ':nope'",
            source="docs/Report Queries.sql",
            line=3,
        ),
        Query(
            name="report_queries_2",
            sql="INSERT INTO t (id, note) VALUES (:'id', $$ keeps :this $$)",
            source="docs/Report Queries.sql",
            line=4,
        ),
        Query(
            name="report_queries_3",
            sql="DELETE FROM t WHERE id = :id",
            source="docs/Report Queries.sql",
            line=6,
        ),
    ]


def test_duplicate_query_names_are_refused() -> None:
    sql = "-- name: q\nSELECT 1;\n-- name: q\nSELECT 2;"

    with pytest.raises(DDLError, match="query name q is used twice"):
        parse_sql(sql, source="q.sql")


# -- markdown and files ----------------------------------------------------------

MARKDOWN = """# Design

```sql
CREATE TABLE a (id int PRIMARY KEY);
```

Some prose with `inline` code.

~~~postgresql
ALTER TABLE a ADD COLUMN name text;
```
~~~

```python
print("not sql")
```

  ```pgsql
  -- name: all_a
  SELECT * FROM a;
  ```
"""


def test_sql_from_markdown_finds_blocks_and_lines() -> None:
    blocks = sql_from_markdown(MARKDOWN)

    assert blocks == [
        (4, "CREATE TABLE a (id int PRIMARY KEY);"),
        (10, "ALTER TABLE a ADD COLUMN name text;\n```"),
        (19, "-- name: all_a\nSELECT * FROM a;"),
    ]


def test_parse_file_reads_markdown_blocks_in_order(tmp_path: Path) -> None:
    path = tmp_path / "design.md"
    path.write_text(MARKDOWN.replace("\n```\n~~~", "\n~~~"), encoding="utf-8")

    parsed = parse_file(path, display="docs/design.md")

    assert [c.name for c in _table(parsed.spec, "a").columns] == ["id", "name"]
    assert parsed.queries == [
        Query(name="all_a", sql="SELECT * FROM a", source="docs/design.md", line=19)
    ]


def test_markdown_errors_point_into_the_markdown_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text(
        "# Broken\n\n```sql\nCREATE TABLE a (id int);\n```\n\n"
        "```sql\nCREATE TABLE b (\n  id int,\n  x int REFERENCES ghost (id)\n);\n```\n",
        encoding="utf-8",
    )

    with pytest.raises(DDLError) as caught:
        parse_file(path, display="docs/broken.md")

    error = caught.value
    assert (error.line, error.column) == (10, 20)
    assert str(error.path) == "docs/broken.md"
    assert "references table ghost, which is not defined" in str(error)


def test_syntax_error_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.sql"
    path.write_text(
        "-- bıgınt first, to count characters not bytes\n"
        "CREATE TABLE ı (id int);\nCREATE TABLE b (x int,, y int);\n",
        encoding="utf-8",
    )

    with pytest.raises(DDLError) as caught:
        parse_file(path, display="bad.sql")

    assert (caught.value.line, caught.value.column) == (3, 23)
    assert str(caught.value).startswith("bad.sql:3:23: SQL does not parse")


def test_alter_of_unknown_table_is_located() -> None:
    with pytest.raises(DDLError) as caught:
        parse_sql(
            "CREATE TABLE a (id int);\n  ALTER TABLE ghost ADD x int;", source="s"
        )

    assert (caught.value.line, caught.value.column) == (2, 15)
    assert "ALTER TABLE ghost: table ghost is not defined" in str(caught.value)


def test_foreign_key_to_unknown_table_is_located() -> None:
    sql = "CREATE TABLE a (\n  id int,\n  g int REFERENCES ghost (id)\n);"

    with pytest.raises(DDLError) as caught:
        parse_sql(sql, source="fk.sql")

    assert (caught.value.line, caught.value.column) == (3, 20)
    assert "references table ghost, which is not defined" in str(caught.value)


def test_other_suffixes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "schema.txt"
    path.write_text("CREATE TABLE a (id int);", encoding="utf-8")

    with pytest.raises(DDLError) as caught:
        parse_file(path, display="schema.txt")

    assert ".sql, .md, .markdown" in str(caught.value)
    assert str(caught.value.path) == "schema.txt"


_RENAMED_BASE = """
CREATE TABLE authors (id int PRIMARY KEY, name text NOT NULL, bio text);
CREATE TABLE posts (id int PRIMARY KEY, author_id int REFERENCES authors (id));
"""


def test_renames_are_recorded_in_statement_order() -> None:
    base = parse_sql(_RENAMED_BASE, source="base.sql").spec

    parsed = parse_sql(
        "ALTER TABLE authors RENAME COLUMN bio TO biography;"
        "ALTER TABLE authors RENAME TO writers;"
        "ALTER INDEX IF EXISTS ix_missing RENAME TO ix_other;",
        source="delta.sql",
        base=base,
    )

    assert parsed.renames == [
        Rename("authors", "bio", "biography"),
        Rename("authors", None, "writers"),
    ]
    assert parse_sql(_RENAMED_BASE, source="base.sql").renames == []


def test_apply_renames_skips_what_the_base_lacks() -> None:
    base = parse_sql(_RENAMED_BASE, source="base.sql").spec
    parsed = parse_sql(
        "ALTER TABLE authors ADD COLUMN twitter text;"
        "ALTER TABLE authors RENAME COLUMN twitter TO handle;"
        "ALTER TABLE authors RENAME TO writers;"
        "ALTER TABLE writers RENAME COLUMN name TO full_name;",
        source="delta.sql",
        base=base,
    )

    renamed, applied = apply_renames(base, parsed.renames)

    assert applied == [
        Rename("authors", None, "writers"),
        Rename("writers", "name", "full_name"),
    ]
    writers = renamed.table("writers")
    assert writers is not None and renamed.table("authors") is None
    assert [c.name for c in writers.columns] == ["id", "full_name", "bio"]
    posts = renamed.table("posts")
    assert posts is not None and posts.foreign_keys[0].ref_table == "writers"


def test_a_later_partition_index_keeps_the_partitions_rows() -> None:
    from sparc.agents.hephaestus.revision import postgresql_steps

    before = parse_sql(PARTITIONED, source="p.sql").spec
    after = parse_sql(
        "CREATE INDEX p1_ref ON p1 (ref);\n"
        "ALTER TABLE p1 ADD CONSTRAINT p1_r FOREIGN KEY (ref) REFERENCES r (id);",
        source="q.sql",
        base=before,
    ).spec

    added = postgresql_steps(before, after)
    removed = postgresql_steps(after, before)

    assert added.before == ()
    assert [(s.up, s.down) for s in added.after] == [
        (("CREATE INDEX p1_ref ON p1 (ref)",), ("DROP INDEX p1_ref",)),
        (
            ("ALTER TABLE p1 ADD CONSTRAINT p1_r FOREIGN KEY (ref) REFERENCES r (id)",),
            ("ALTER TABLE p1 DROP CONSTRAINT p1_r",),
        ),
    ]
    assert [s.up for s in removed.before] == [
        ("ALTER TABLE p1 DROP CONSTRAINT p1_r",),
        ("DROP INDEX p1_ref",),
    ]
    assert removed.after == ()
