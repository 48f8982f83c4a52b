"""SchemaSpec: the one language Hephaestus's parts share.

Readers (DDL, task `schema` blocks, model output, live databases) produce a
SchemaSpec; renderers (models.py, revisions, seed and query SQL) consume one.
Names are stored exactly as the database spells them (unquoted, case kept);
SQL expressions (defaults, checks, index predicates) are stored as PostgreSQL
text, the way `pg_get_expr` would print them where possible.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

TypeKind = Literal[
    "smallint",
    "integer",
    "bigint",
    "numeric",
    "real",
    "double",
    "boolean",
    "varchar",
    "char",
    "text",
    "date",
    "time",
    "timestamp",
    "interval",
    "uuid",
    "json",
    "jsonb",
    "bytea",
    "tsvector",
    "enum",
    "domain",
    # a type sparc does not model (inet, money, ...): `sql` holds its spelling
    "other",
]

ReferentialAction = Literal[
    "CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnType(_Spec):
    """A column's type. Arrays are the element type with `dimensions` > 0."""

    kind: TypeKind
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    timezone: bool = False
    # enum or domain type name, or the spelling of an "other" type
    name: str | None = None
    dimensions: int = 0


class IdentityOptions(_Spec):
    """The sequence options of an identity column that differ from PostgreSQL's.

    An option left out (None, or False for `cycle`) takes PostgreSQL's default
    for the column's type and the sign of `increment`: increment 1, cache 1,
    no cycle; ascending from 1 up to the type's maximum, descending from -1
    down to its minimum; `start` at the low bound ascending, the high bound
    descending. A Column holds them in normal form (see
    `identity.identity_options`): only the options that differ, and none at
    all when none does.
    """

    start: int | None = None
    increment: int | None = None
    minvalue: int | None = None
    maxvalue: int | None = None
    cycle: bool = False
    cache: int | None = None


class Column(_Spec):
    name: str
    type: ColumnType
    nullable: bool = True
    # a SQL expression, e.g. "CURRENT_TIMESTAMP", "now()", "'open'", "0"
    default: str | None = None
    # SERIAL/BIGSERIAL/SMALLSERIAL or an owned sequence behind nextval()
    serial: bool = False
    identity: Literal["always", "by_default"] | None = None
    comment: str | None = None
    # set only for an identity column whose sequence differs from the defaults
    identity_options: IdentityOptions | None = None

    @field_validator("identity_options")
    @classmethod
    def _options_in_normal_form(
        cls, value: IdentityOptions | None, info: ValidationInfo
    ) -> IdentityOptions | None:
        column_type = info.data.get("type")
        if value is None or not isinstance(column_type, ColumnType):
            return value
        # imported here: the identity module builds on this one
        from sparc.agents.hephaestus.identity import identity_options, option_problem

        problem = option_problem(column_type.kind, value)
        if problem is not None:
            raise ValueError(f"identity {problem}")
        return identity_options(column_type.kind, **value.model_dump())

    @model_validator(mode="after")
    def _options_need_identity(self) -> Column:
        if self.identity_options is not None and self.identity is None:
            raise ValueError(
                f"column {self.name}: identity_options are given but the column "
                "is not an identity column; set identity or drop the options"
            )
        return self

    @model_serializer(mode="wrap")
    def _options_only_when_set(
        self, handler: SerializerFunctionWrapHandler
    ) -> dict[str, object]:
        # a column without options serialises exactly as before they existed
        data: dict[str, object] = handler(self)
        if self.identity_options is None:
            data.pop("identity_options", None)
        return data


class PrimaryKey(_Spec):
    name: str | None = None
    columns: list[str]


class ForeignKey(_Spec):
    name: str | None = None
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    on_delete: ReferentialAction | None = None
    on_update: ReferentialAction | None = None
    deferrable: bool = False
    initially_deferred: bool = False


class UniqueConstraint(_Spec):
    name: str | None = None
    columns: list[str]


class CheckConstraint(_Spec):
    name: str | None = None
    expression: str


class IndexElement(_Spec):
    """One key of an index: a column or an expression, with its ordering."""

    column: str | None = None
    expression: str | None = None
    descending: bool = False
    nulls: Literal["first", "last"] | None = None
    opclass: str | None = None


class Index(_Spec):
    name: str
    elements: list[IndexElement]
    unique: bool = False
    where: str | None = None
    # access method; None means the default (btree)
    method: str | None = None
    include: list[str] = Field(default_factory=list)


class Table(_Spec):
    name: str
    columns: list[Column]
    primary_key: PrimaryKey | None = None
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    unique_constraints: list[UniqueConstraint] = Field(default_factory=list)
    check_constraints: list[CheckConstraint] = Field(default_factory=list)
    indexes: list[Index] = Field(default_factory=list)
    comment: str | None = None
    # "RANGE (col)", "LIST (col)", "HASH (col)" for a partitioned table
    partition_by: str | None = None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


class Partition(_Spec):
    name: str
    parent: str
    # e.g. "FOR VALUES FROM ('2022-01-01') TO ('2022-02-01')"
    bound: str
    # the partition's own keys, checks and indexes (not those it inherits from
    # its parent), as SQL run after it is created: "ALTER TABLE p ADD
    # CONSTRAINT ...", "CREATE INDEX ... ON p ..."
    definitions: list[str] = Field(default_factory=list)


class EnumType(_Spec):
    name: str
    values: list[str]


class Domain(_Spec):
    name: str
    type: ColumnType
    nullable: bool = True
    default: str | None = None
    check_constraints: list[CheckConstraint] = Field(default_factory=list)


class SqlObject(_Spec):
    """A view, function, trigger or other object carried as ordered SQL."""

    kind: Literal[
        "view",
        "materialized_view",
        "function",
        "trigger",
        "sequence",
        "aggregate",
        "type",
        "extension",
    ]
    name: str
    create: str
    drop: str


class SchemaSpec(_Spec):
    """A whole schema: what a revision chain must build."""

    tables: list[Table] = Field(default_factory=list)
    enums: list[EnumType] = Field(default_factory=list)
    domains: list[Domain] = Field(default_factory=list)
    partitions: list[Partition] = Field(default_factory=list)
    objects: list[SqlObject] = Field(default_factory=list)

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def enum(self, name: str) -> EnumType | None:
        return next((e for e in self.enums if e.name == name), None)

    def domain(self, name: str) -> Domain | None:
        return next((d for d in self.domains if d.name == name), None)
