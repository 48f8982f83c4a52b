"""SchemaSpecs built by hand for the renderer, revision and forge tests.

They mirror `shared/data/schemas/shop-*.sql` and some of the `shared/cases`
inputs the way the DDL reader describes them, without depending on it.
"""

from __future__ import annotations

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

INTEGER = ColumnType(kind="integer")
SMALLINT = ColumnType(kind="smallint")
TIMESTAMP = ColumnType(kind="timestamp")
MONEY = ColumnType(kind="numeric", precision=10, scale=2)


def varchar(length: int) -> ColumnType:
    return ColumnType(kind="varchar", length=length)


def serial_id() -> Column:
    return Column(name="id", type=INTEGER, nullable=False, serial=True)


def _shop_core_tables() -> list[Table]:
    users = Table(
        name="users",
        columns=[
            serial_id(),
            Column(name="name", type=varchar(255), nullable=False),
            Column(name="email", type=varchar(255), nullable=False),
            Column(name="created_at", type=TIMESTAMP, default="CURRENT_TIMESTAMP"),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        unique_constraints=[UniqueConstraint(columns=["email"])],
    )
    products = Table(
        name="products",
        columns=[
            serial_id(),
            Column(name="name", type=varchar(255), nullable=False),
            Column(name="price", type=MONEY, nullable=False),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        check_constraints=[CheckConstraint(expression="price >= 0")],
    )
    orders = Table(
        name="orders",
        columns=[
            serial_id(),
            Column(name="user_id", type=INTEGER, nullable=False),
            Column(name="created_at", type=TIMESTAMP, default="CURRENT_TIMESTAMP"),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[
            ForeignKey(columns=["user_id"], ref_table="users", ref_columns=["id"])
        ],
    )
    order_items = Table(
        name="order_items",
        columns=[
            serial_id(),
            Column(name="order_id", type=INTEGER, nullable=False),
            Column(name="product_id", type=INTEGER, nullable=False),
            Column(name="quantity", type=INTEGER, nullable=False),
            Column(name="unit_price", type=MONEY, nullable=False),
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
    )
    return [users, products, orders, order_items]


def _auth_tokens() -> Table:
    def index(name: str, column: str) -> Index:
        return Index(name=name, elements=[IndexElement(column=column)])

    return Table(
        name="auth_tokens",
        columns=[
            Column(name="id", type=INTEGER, nullable=False),
            Column(name="user_id", type=INTEGER, nullable=False),
            Column(name="token_hash", type=varchar(255), nullable=False),
            Column(name="expires_at", type=TIMESTAMP, nullable=False),
            Column(name="created_at", type=TIMESTAMP, default="now()"),
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
            index("idx_auth_tokens_user_id", "user_id"),
            index("idx_auth_tokens_token_hash", "token_hash"),
            index("idx_auth_tokens_expires_at", "expires_at"),
        ],
    )


def shop_step(step: int) -> SchemaSpec:
    """The shop schema after `shop-<step>-*.sql` (1, 2 or 3) is applied."""
    tables = _shop_core_tables()
    if step >= 2:
        tables.append(_auth_tokens())
    if step >= 3:
        users, orders = tables[0], tables[2]
        users = users.model_copy(
            update={
                "columns": [
                    *users.columns,
                    Column(name="deleted_at", type=TIMESTAMP),
                ],
                "indexes": [
                    Index(
                        name="idx_users_created_at",
                        elements=[IndexElement(column="created_at")],
                    ),
                    Index(
                        name="idx_users_email", elements=[IndexElement(column="email")]
                    ),
                    Index(
                        name="idx_active_users",
                        elements=[IndexElement(column="id")],
                        where="deleted_at IS NULL",
                    ),
                ],
            }
        )
        orders = orders.model_copy(
            update={
                "indexes": [
                    Index(
                        name="idx_orders_user_date",
                        elements=[
                            IndexElement(column="user_id"),
                            IndexElement(column="created_at", descending=True),
                        ],
                    )
                ]
            }
        )
        tables[0], tables[2] = users, orders
    return SchemaSpec(tables=tables)


def ticket_enum() -> SchemaSpec:
    """Case 01: a native enum with a literal default."""
    return SchemaSpec(
        enums=[
            EnumType(name="ticket_status", values=["open", "in_progress", "closed"])
        ],
        tables=[
            Table(
                name="ticket",
                columns=[
                    Column(
                        name="id",
                        type=ColumnType(kind="bigint"),
                        nullable=False,
                        serial=True,
                    ),
                    Column(name="title", type=varchar(200), nullable=False),
                    Column(
                        name="status",
                        type=ColumnType(kind="enum", name="ticket_status"),
                        nullable=False,
                        default="'open'::ticket_status",
                    ),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            )
        ],
    )


def meter_reading() -> SchemaSpec:
    """Case 03: one named and one unnamed column-level check."""
    return SchemaSpec(
        tables=[
            Table(
                name="meter_reading",
                columns=[
                    Column(name="id", type=INTEGER, nullable=False),
                    Column(name="meter_code", type=varchar(32), nullable=False),
                    Column(
                        name="reading_kwh",
                        type=ColumnType(kind="numeric", precision=12, scale=3),
                        nullable=False,
                    ),
                    Column(name="quality", type=SMALLINT, nullable=False),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                check_constraints=[
                    CheckConstraint(
                        name="ck_meter_reading_kwh_nonneg",
                        expression="reading_kwh >= 0",
                    ),
                    CheckConstraint(expression="quality >= 1 AND quality <= 5"),
                ],
            )
        ]
    )


def vehicle_listing() -> SchemaSpec:
    """Case 04: a partial unique index on a boolean predicate."""
    return SchemaSpec(
        tables=[
            Table(
                name="vehicle_listing",
                columns=[
                    Column(name="id", type=INTEGER, nullable=False),
                    Column(
                        name="vin",
                        type=ColumnType(kind="char", length=17),
                        nullable=False,
                    ),
                    Column(
                        name="is_active",
                        type=ColumnType(kind="boolean"),
                        nullable=False,
                        default="true",
                    ),
                    Column(name="retired_on", type=ColumnType(kind="date")),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                indexes=[
                    Index(
                        name="uq_vehicle_listing_vin_active",
                        elements=[IndexElement(column="vin")],
                        unique=True,
                        where="is_active",
                    )
                ],
            )
        ]
    )


def api_client() -> SchemaSpec:
    """Case 07: a server-generated UUID key and a function-valued default."""
    return SchemaSpec(
        tables=[
            Table(
                name="api_client",
                columns=[
                    Column(
                        name="id",
                        type=ColumnType(kind="uuid"),
                        nullable=False,
                        default="gen_random_uuid()",
                    ),
                    Column(name="label", type=varchar(100), nullable=False),
                    Column(
                        name="created_at",
                        type=TIMESTAMP,
                        nullable=False,
                        default="timezone('utc'::text, now())",
                    ),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            )
        ]
    )


def residents() -> SchemaSpec:
    """Case 19: a composite primary key and a composite foreign key to it."""
    return SchemaSpec(
        tables=[
            Table(
                name="building",
                columns=[
                    Column(name="building_id", type=INTEGER, nullable=False),
                    Column(name="name", type=varchar(80), nullable=False),
                ],
                primary_key=PrimaryKey(columns=["building_id"]),
            ),
            Table(
                name="resident",
                columns=[
                    Column(name="building_id", type=INTEGER, nullable=False),
                    Column(name="unit_no", type=varchar(10), nullable=False),
                    Column(name="display_name", type=varchar(80), nullable=False),
                ],
                primary_key=PrimaryKey(columns=["building_id", "unit_no"]),
                foreign_keys=[
                    ForeignKey(
                        columns=["building_id"],
                        ref_table="building",
                        ref_columns=["building_id"],
                    )
                ],
            ),
            Table(
                name="parking_permit",
                columns=[
                    Column(name="permit_id", type=INTEGER, nullable=False),
                    Column(name="building_id", type=INTEGER, nullable=False),
                    Column(name="unit_no", type=varchar(10), nullable=False),
                    Column(
                        name="valid_until", type=ColumnType(kind="date"), nullable=False
                    ),
                ],
                primary_key=PrimaryKey(columns=["permit_id"]),
                foreign_keys=[
                    ForeignKey(
                        columns=["building_id", "unit_no"],
                        ref_table="resident",
                        ref_columns=["building_id", "unit_no"],
                        on_delete="CASCADE",
                    )
                ],
            ),
        ]
    )


def rich() -> SchemaSpec:
    """Everything render_models writes: odd names, enums, arrays, self references."""
    status = ColumnType(kind="enum", name="order state")
    return SchemaSpec(
        enums=[
            EnumType(name="order state", values=["new", "in-progress", "class", "1st"]),
            EnumType(name="unused_kind", values=["a"]),
        ],
        tables=[
            Table(
                name="class",
                comment="a table named with a keyword",
                columns=[
                    Column(
                        name="id",
                        type=ColumnType(kind="bigint"),
                        nullable=False,
                        identity="always",
                    ),
                    Column(name="from", type=varchar(20), nullable=False, comment="kw"),
                    Column(name="2nd value", type=ColumnType(kind="text")),
                    Column(name="metadata", type=ColumnType(kind="jsonb")),
                    Column(name="state", type=status, nullable=False, default="'new'"),
                    Column(name="tags", type=ColumnType(kind="text", dimensions=1)),
                    Column(name="grid", type=ColumnType(kind="integer", dimensions=2)),
                    Column(name="ratio", type=ColumnType(kind="double"), default="0.5"),
                    Column(name="score", type=ColumnType(kind="real")),
                    Column(name="payload", type=ColumnType(kind="json")),
                    Column(name="blob", type=ColumnType(kind="bytea")),
                    Column(name="doc", type=ColumnType(kind="tsvector")),
                    Column(name="span", type=ColumnType(kind="interval")),
                    Column(name="at", type=ColumnType(kind="time", timezone=True)),
                    Column(
                        name="seen_at",
                        type=ColumnType(kind="timestamp", timezone=True),
                        nullable=False,
                        default="now()",
                    ),
                    Column(name="amount", type=ColumnType(kind="numeric", precision=8)),
                    Column(name="any_number", type=ColumnType(kind="numeric")),
                    Column(name="parent_id", type=ColumnType(kind="bigint")),
                    Column(
                        name="flag", type=ColumnType(kind="boolean"), default="false"
                    ),
                    Column(
                        name="day", type=ColumnType(kind="date"), default="CURRENT_DATE"
                    ),
                ],
                primary_key=PrimaryKey(name="class_pkey", columns=["id"]),
                foreign_keys=[
                    ForeignKey(
                        columns=["parent_id"],
                        ref_table="class",
                        ref_columns=["id"],
                        on_delete="SET NULL",
                        on_update="CASCADE",
                        deferrable=True,
                        initially_deferred=True,
                    )
                ],
                unique_constraints=[
                    UniqueConstraint(columns=["from"]),
                    UniqueConstraint(
                        name="class_from_state_key", columns=["from", "state"]
                    ),
                ],
                check_constraints=[
                    CheckConstraint(name="positive_ratio", expression="ratio > 0"),
                    CheckConstraint(expression="ratio < 10"),
                    CheckConstraint(
                        expression="score IS NOT NULL OR ratio IS NOT NULL"
                    ),
                ],
                indexes=[
                    Index(
                        name="ix_class_lower_from",
                        elements=[IndexElement(expression='lower("from")')],
                    ),
                    Index(
                        name="ix_class_seen",
                        elements=[
                            IndexElement(
                                column="seen_at", descending=True, nulls="last"
                            ),
                            IndexElement(column="from", opclass="varchar_pattern_ops"),
                        ],
                        include=["ratio"],
                    ),
                    Index(
                        name="ix_class_doc",
                        elements=[IndexElement(column="doc")],
                        method="gin",
                    ),
                    Index(
                        name="ix_" + "very_long_name_" * 6,
                        elements=[IndexElement(column="score")],
                        where="score > 0",
                    ),
                ],
            ),
            Table(
                name="message",
                columns=[
                    Column(name="id", type=SMALLINT, nullable=False, serial=True),
                    Column(
                        name="sender_id", type=ColumnType(kind="bigint"), nullable=False
                    ),
                    Column(name="recipient_id", type=ColumnType(kind="bigint")),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[
                    ForeignKey(
                        columns=["sender_id"], ref_table="class", ref_columns=["id"]
                    ),
                    ForeignKey(
                        columns=["recipient_id"], ref_table="class", ref_columns=["id"]
                    ),
                ],
            ),
        ],
    )
