"""Prisma output, for a stack whose ORM decision is Prisma.

`forge_prisma` gives the files a Prisma project keeps:

- `prisma/schema.prisma`: the datasource, the client generator, one `enum`
  per enum type and one `model` per table, with native types (`@db.*`), keys,
  defaults, relations from both sides and the constraint names the database
  has (`map:`), so Prisma sees no drift against the migrations.
- `prisma/migrations/<timestamp>_<name>/migration.sql`: the PostgreSQL DDL
  that takes the previous schema to the new one. It is compiled by
  SQLAlchemy's PostgreSQL DDL compiler from the metadata of the models
  renderer, so Alembic and Prisma projects get the same names and
  definitions.
- `prisma/seed.ts`: the rows of `scripts.render_seed_sql`, executed through
  Prisma, so both stacks seed from one source.

schema.prisma and seed.ts are rendered from the schema the migrations build,
read back with the DDL reader (the reading the next task starts from), and
the migration must leave nothing of the target schema undone.

Prisma's own CLI is not run: its engines are binaries downloaded at install
time (`prisma_verify` proves the files instead). What Prisma cannot describe
(CHECK constraints, partial or expression indexes, deferrable keys) lives in
migration.sql and is listed as a comment in the model.

Migration folders are named `<yyyymmddHHMMSS>_<task>_<title>`. The timestamp
is not the clock (output must be byte-identical on a replay): it is one
second after the newest existing migration, starting at 2000-01-01 00:00:01.
Hephaestus works from the committed workspace, so a replayed task computes
the same folder again.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
import structlog
from alembic.ddl.base import AddColumn, ColumnDefault, ColumnNullable, DropColumn
from alembic.ddl.postgresql import PostgresqlColumnType
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.named_types import CreateEnumType, DropEnumType
from sqlalchemy.sql.ddl import ExecutableDDLElement

from sparc.agents.hephaestus.ddl import parse_file, parse_sql
from sparc.agents.hephaestus.identity import identity_change
from sparc.agents.hephaestus.models_render import load_metadata, render_models
from sparc.agents.hephaestus.revision import postgresql_steps, slugify
from sparc.agents.hephaestus.scripts import render_seed_sql, seed_statements
from sparc.agents.hephaestus.spec import (
    Column,
    ColumnType,
    EnumType,
    ForeignKey,
    Index,
    SchemaSpec,
    Table,
)
from sparc.errors import DDLError, VerificationError

log = structlog.get_logger(__name__)

_Item = TypeVar("_Item", bound=sa.Constraint | sa.Index)

__all__ = [
    "LOCK_FILE",
    "MIGRATIONS_DIR",
    "PRISMA_DIR",
    "SCHEMA_FILE",
    "SEED_FILE",
    "forge_prisma",
    "migration_files",
    "next_migration_timestamp",
    "prisma_migration_dir",
    "render_prisma_migration",
    "render_prisma_schema",
    "render_prisma_seed",
    "spec_from_prisma_migrations",
]

PRISMA_DIR = "prisma"
SCHEMA_FILE = f"{PRISMA_DIR}/schema.prisma"
SEED_FILE = f"{PRISMA_DIR}/seed.ts"
MIGRATIONS_DIR = f"{PRISMA_DIR}/migrations"
LOCK_FILE = f"{MIGRATIONS_DIR}/migration_lock.toml"
LOCK_TEXT = (
    "# Written by sparc: the database these migrations are for.\n"
    'provider = "postgresql"\n'
)
FIRST_TIMESTAMP = dt.datetime(2000, 1, 1, 0, 0, 0)
_TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
_MIGRATION_NAME = re.compile(r"(\d{14})_(\w+)")

_PRISMA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# names Prisma gives meaning to: a model, enum or field may not take them
_PRISMA_RESERVED = frozenset(
    {
        "String",
        "Boolean",
        "Int",
        "BigInt",
        "Float",
        "Decimal",
        "DateTime",
        "Json",
        "Bytes",
        "Unsupported",
        "model",
        "enum",
        "type",
        "generator",
        "datasource",
        "PrismaClient",
    }
)
_ACTIONS = {
    "CASCADE": "Cascade",
    "SET NULL": "SetNull",
    "SET DEFAULT": "SetDefault",
    "RESTRICT": "Restrict",
    "NO ACTION": "NoAction",
}
_INDEX_METHODS = {
    "hash": "Hash",
    "gist": "Gist",
    "gin": "Gin",
    "spgist": "SpGist",
    "brin": "Brin",
}
_CAST = re.compile(r"^\(?('(?:[^']|'')*')\)?::[a-z_][a-z0-9_ ]*(?:\(\d+\))?$", re.I)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NOW = frozenset(
    {"now()", "current_timestamp", "localtimestamp", "transaction_timestamp()"}
)
_DIALECT = postgresql.dialect()


# --- schema.prisma ------------------------------------------------------------


@dataclass
class _Relation:
    """One side of a relation: a field of `model` pointing at `target`."""

    attribute: str
    target: str
    many: bool
    optional: bool
    name: str | None
    # set on the side that holds the foreign key
    arguments: str | None = None


@dataclass
class _Model:
    table: Table
    name: str
    fields: dict[str, str] = field(default_factory=dict)
    relations: list[_Relation] = field(default_factory=list)
    ignored: bool = False


def render_prisma_schema(spec: SchemaSpec, *, provider: str = "postgresql") -> str:
    """Render `prisma/schema.prisma` for `spec`.

    Args:
        spec: the whole schema.
        provider: the datasource provider; sparc writes migrations for
            PostgreSQL, the only provider whose native types it renders.

    Returns:
        The file's text; the same spec always gives the same bytes.

    Raises:
        DDLError: the provider is not PostgreSQL, or a column type cannot be
            rendered by the models renderer the names come from.
    """
    if provider != "postgresql":
        raise DDLError(
            f"Prisma output is written for PostgreSQL, not {provider}; set the "
            "database to PostgreSQL in the stack decision",
            field="provider",
        )
    metadata = _metadata(spec)
    enum_names = _enum_names(spec.enums)
    models = _plan_models(spec, metadata)

    lines = [
        "// Generated by sparc (Hephaestus) from the project's schema. Describe",
        "// changes in a data task: the next task rewrites this file together",
        "// with a migration under prisma/migrations.",
        "",
        "generator client {",
        '  provider = "prisma-client-js"',
        "}",
        "",
        "datasource db {",
        f'  provider = "{provider}"',
        '  url      = env("DATABASE_URL")',
        "}",
    ]
    for enum_type in spec.enums:
        lines.append("")
        lines.extend(_render_enum(enum_type, enum_names))
    for model in models.values():
        lines.append("")
        lines.extend(_render_model(model, models, spec, metadata, enum_names))
    return "\n".join(lines) + "\n"


def _metadata(spec: SchemaSpec) -> sa.MetaData:
    """The SQLAlchemy metadata the models renderer gives `spec`."""
    with tempfile.TemporaryDirectory(prefix="sparc-prisma-") as scratch:
        path = Path(scratch) / "models.py"
        path.write_text(render_models(spec, project="prisma"), encoding="utf-8")
        return load_metadata(path)


def _prisma_name(name: str, taken: set[str]) -> str:
    candidate = name
    if not _PRISMA_NAME.fullmatch(candidate) or candidate in _PRISMA_RESERVED:
        candidate = re.sub(r"\W", "_", candidate)
        if not candidate[:1].isalpha():
            candidate = f"x{candidate}"
        if candidate in _PRISMA_RESERVED:
            candidate = f"{candidate}_"
    base, number = candidate, 2
    while candidate in taken:
        candidate = f"{base}_{number}"
        number += 1
    taken.add(candidate)
    return candidate


def _enum_names(enums: list[EnumType]) -> dict[str, str]:
    taken: set[str] = set()
    return {enum.name: _prisma_name(enum.name, taken) for enum in enums}


def _plan_models(spec: SchemaSpec, metadata: sa.MetaData) -> dict[str, _Model]:
    taken = set(_enum_names(spec.enums).values())
    models: dict[str, _Model] = {}
    for table in spec.tables:
        model = _Model(table=table, name=_prisma_name(table.name, taken))
        names: set[str] = set()
        model.fields = {c.name: _prisma_name(c.name, names) for c in table.columns}
        model.ignored = table.primary_key is None and not _unique_keys(table)
        models[table.name] = model

    for table in spec.tables:
        for key in table.foreign_keys:
            _plan_relation(models, table, key, metadata)
    return models


def _plan_relation(
    models: dict[str, _Model], table: Table, key: ForeignKey, metadata: sa.MetaData
) -> None:
    source, target = models[table.name], models.get(key.ref_table)
    if target is None or source.ignored:
        return
    pair = {table.name, key.ref_table}
    shared = [
        other
        for other in models.values()
        for fk in other.table.foreign_keys
        if {other.table.name, fk.ref_table} == pair
    ]
    name = None
    if len(shared) > 1 or table.name == key.ref_table:
        name = f"{table.name}_{'_'.join(key.columns)}"

    taken = set(source.fields.values()) | {r.attribute for r in source.relations}
    stem = key.columns[0][:-3] if len(key.columns) == 1 else ""
    if not stem or not key.columns[0].endswith("_id"):
        stem = key.ref_table
    forward = _prisma_name(stem, taken)
    optional = any(
        column.nullable
        for column in table.columns
        if column.name in key.columns
        and not (table.primary_key and column.name in table.primary_key.columns)
    )
    arguments = [
        f"fields: [{', '.join(source.fields[c] for c in key.columns)}]",
        f"references: [{', '.join(target.fields[c] for c in key.ref_columns)}]",
        f"onDelete: {_ACTIONS[key.on_delete or 'NO ACTION']}",
        f"onUpdate: {_ACTIONS[key.on_update or 'NO ACTION']}",
    ]
    constraint = _foreign_key_name(metadata, table.name, key)
    if constraint != f"{table.name}_{'_'.join(key.columns)}_fkey":
        arguments.append(f'map: "{constraint}"')
    if name is not None:
        arguments.insert(0, json.dumps(name))
    source.relations.append(
        _Relation(forward, target.name, False, optional, name, ", ".join(arguments))
    )

    back_taken = set(target.fields.values()) | {r.attribute for r in target.relations}
    back_stem = table.name if table.name != key.ref_table else f"other_{table.name}"
    if name is not None and len(shared) > 1:
        back_stem = f"{table.name}_{'_'.join(key.columns)}"
    one_to_one = sorted(key.columns) in [sorted(u) for u in _unique_keys(table)]
    target.relations.append(
        _Relation(
            _prisma_name(back_stem, back_taken),
            source.name,
            many=not one_to_one,
            optional=one_to_one,
            name=name,
        )
    )


def _unique_keys(table: Table) -> list[list[str]]:
    keys = [list(u.columns) for u in table.unique_constraints]
    keys.extend(
        [e.column for e in index.elements if e.column]
        for index in table.indexes
        if _plain_unique_index(index)
    )
    if table.primary_key is not None:
        keys.append(list(table.primary_key.columns))
    return keys


def _plain_unique_index(index: Index) -> bool:
    return (
        index.unique
        and index.where is None
        and not index.include
        and all(e.column and not e.opclass and e.nulls is None for e in index.elements)
    )


def _sa_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return metadata.tables[name]


def _foreign_key_name(metadata: sa.MetaData, table: str, key: ForeignKey) -> str:
    for constraint in _sa_table(metadata, table).foreign_key_constraints:
        columns = [c.name for c in constraint.columns]
        if columns == key.columns and constraint.referred_table.name == key.ref_table:
            return str(constraint.name)
    raise DDLError(f"{table}: foreign key on {key.columns} is missing from the models")


def _unique_name(sa_table: sa.Table, columns: list[str]) -> str:
    for constraint in sa_table.constraints:
        if (
            isinstance(constraint, sa.UniqueConstraint)
            and [c.name for c in constraint.columns] == columns
        ):
            return str(constraint.name)
    raise DDLError(f"{sa_table.name}: unique constraint on {columns} is missing")


def _render_enum(enum_type: EnumType, names: dict[str, str]) -> list[str]:
    lines = [f"enum {names[enum_type.name]} {{"]
    taken: set[str] = set()
    for value in enum_type.values:
        label = _prisma_name(value, taken)
        lines.append(f"  {label}" if label == value else f'  {label} @map("{value}")')
    if names[enum_type.name] != enum_type.name:
        lines.extend(["", f'  @@map("{enum_type.name}")'])
    lines.append("}")
    return lines


def _render_model(
    model: _Model,
    models: dict[str, _Model],
    spec: SchemaSpec,
    metadata: sa.MetaData,
    enum_names: dict[str, str],
) -> list[str]:
    table = model.table
    sa_table = _sa_table(metadata, table.name)
    key = table.primary_key
    rows: list[tuple[str, str, str, str | None]] = []
    for column in table.columns:
        type_text, native = _field_type(column, spec, enum_names)
        attributes = []
        if key is not None and key.columns == [column.name]:
            attributes.append(
                _with_map("@id", sa_table.primary_key.name, f"{table.name}_pkey")
            )
        default = _default(column, spec, enum_names)
        if default is not None:
            attributes.append(f"@default({default})")
        for unique in table.unique_constraints:
            if unique.columns == [column.name]:
                name = _unique_name(sa_table, unique.columns)
                attributes.append(
                    _with_map("@unique", name, f"{table.name}_{column.name}_key")
                )
        if model.fields[column.name] != column.name:
            attributes.append(f'@map("{column.name}")')
        if native:
            attributes.append(native)
        rows.append(
            (model.fields[column.name], type_text, " ".join(attributes), column.comment)
        )
    for relation in model.relations:
        suffix = "[]" if relation.many else "?" if relation.optional else ""
        if relation.arguments is not None:
            attributes = f"@relation({relation.arguments})"
        elif relation.name is not None:
            attributes = f"@relation({json.dumps(relation.name)})"
        else:
            attributes = ""
        rows.append(
            (relation.attribute, f"{relation.target}{suffix}", attributes, None)
        )

    if table.comment:
        lines = [f"/// {line}" for line in table.comment.splitlines()]
    else:
        lines = []
    lines.append(f"model {model.name} {{")
    width = max(len(r[0]) for r in rows)
    type_width = max(len(r[1]) for r in rows)
    for name, type_text, attributes, comment in rows:
        if comment:
            lines.extend(f"  /// {line}" for line in comment.splitlines())
        lines.append(
            f"  {name.ljust(width)} {type_text.ljust(type_width)} {attributes}".rstrip()
        )

    block = _block_attributes(model, sa_table, models)
    if block:
        lines.append("")
        lines.extend(f"  {line}" if line else "" for line in block)
    lines.append("}")
    return lines


def _with_map(attribute: str, name: object, prisma_default: str) -> str:
    if name is None or str(name) == prisma_default:
        return attribute
    return f'{attribute}(map: "{name}")'


def _block_attributes(
    model: _Model, sa_table: sa.Table, models: dict[str, _Model]
) -> list[str]:
    table = model.table
    names = model.fields
    lines: list[str] = []
    key = table.primary_key
    if key is not None and len(key.columns) > 1:
        columns = ", ".join(names[c] for c in key.columns)
        name = str(sa_table.primary_key.name)
        lines.append(_block("@@id", columns, name, f"{table.name}_pkey"))
    for unique in table.unique_constraints:
        if len(unique.columns) > 1:
            columns = ", ".join(names[c] for c in unique.columns)
            name = _unique_name(sa_table, unique.columns)
            lines.append(
                _block(
                    "@@unique",
                    columns,
                    name,
                    f"{table.name}_{'_'.join(unique.columns)}_key",
                )
            )
    sql_only: list[str] = []
    for index in table.indexes:
        if not _prisma_index(index):
            sql_only.append(f"index {index.name}")
            continue
        columns = ", ".join(
            names[e.column or ""] + ("(sort: Desc)" if e.descending else "")
            for e in index.elements
        )
        kind = "@@unique" if index.unique else "@@index"
        suffix = "key" if index.unique else "idx"
        cols = "_".join(e.column or "" for e in index.elements)
        extra = ""
        if index.method and index.method in _INDEX_METHODS:
            extra = f", type: {_INDEX_METHODS[index.method]}"
        lines.append(
            _block(kind, columns, index.name, f"{table.name}_{cols}_{suffix}", extra)
        )
    for check in sorted(
        (c for c in sa_table.constraints if isinstance(c, sa.CheckConstraint)),
        key=lambda c: str(c.name),
    ):
        sql_only.append(f"check {check.name} ({check.sqltext})")
    sql_only.extend(
        f"deferrable foreign key on {', '.join(fk.columns)}"
        for fk in table.foreign_keys
        if fk.deferrable
    )
    if model.ignored:
        lines.append("@@ignore")
    if model.name != table.name:
        lines.append(f'@@map("{table.name}")')
    if sql_only:
        if lines:
            lines.append("")
        lines.append("// kept in migration.sql only (Prisma cannot describe them):")
        lines.extend(f"// - {item}" for item in sql_only)
    if model.ignored:
        lines.insert(0, "// no primary key or unique column: Prisma Client ignores it")
    return lines


def _block(
    kind: str, columns: str, name: str, prisma_default: str, extra: str = ""
) -> str:
    mapped = "" if name == prisma_default else f', map: "{name}"'
    return f"{kind}([{columns}]{mapped}{extra})"


def _prisma_index(index: Index) -> bool:
    return (
        index.where is None
        and not index.include
        and (index.method is None or index.method in _INDEX_METHODS)
        and all(e.column and not e.opclass and e.nulls is None for e in index.elements)
    )


def _resolved(column_type: ColumnType, spec: SchemaSpec) -> ColumnType:
    if column_type.kind != "domain":
        return column_type
    domain = spec.domain(column_type.name or "")
    if domain is None:
        raise DDLError(f"domain {column_type.name} is not defined", field="type")
    return domain.type.model_copy(
        update={"dimensions": domain.type.dimensions + column_type.dimensions}
    )


def _field_type(
    column: Column, spec: SchemaSpec, enum_names: dict[str, str]
) -> tuple[str, str]:
    """The Prisma type (with ? or []) and the native type attribute."""
    column_type = _resolved(column.type, spec)
    scalar, native = _scalar(
        column_type.model_copy(update={"dimensions": 0}), enum_names
    )
    if column_type.dimensions > 1 or (
        column_type.dimensions and scalar.startswith("Unsupported")
    ):
        spelling = _pg_spelling(column_type)
        return f'Unsupported("{spelling}")' + ("?" if column.nullable else ""), ""
    if column_type.dimensions:
        return f"{scalar}[]", native
    return scalar + ("?" if column.nullable else ""), native


def _scalar(column_type: ColumnType, enum_names: dict[str, str]) -> tuple[str, str]:
    kind = column_type.kind
    if kind == "smallint":
        return "Int", "@db.SmallInt"
    if kind == "integer":
        return "Int", ""
    if kind == "bigint":
        return "BigInt", ""
    if kind == "numeric":
        if column_type.precision is None:
            return "Decimal", "@db.Decimal"
        return (
            "Decimal",
            f"@db.Decimal({column_type.precision}, {column_type.scale or 0})",
        )
    if kind == "real":
        return "Float", "@db.Real"
    if kind == "double":
        return "Float", ""
    if kind == "boolean":
        return "Boolean", ""
    if kind in ("varchar", "char"):
        native = "@db.VarChar" if kind == "varchar" else "@db.Char"
        if column_type.length is not None:
            native += f"({column_type.length})"
        return "String", native
    if kind == "text":
        return "String", ""
    if kind == "date":
        return "DateTime", "@db.Date"
    if kind in ("time", "timestamp"):
        name = {"time": "Time", "timestamp": "Timestamp"}[kind]
        name += "tz" if column_type.timezone else ""
        precision = 6 if column_type.precision is None else column_type.precision
        return "DateTime", f"@db.{name}({precision})"
    if kind == "uuid":
        return "String", "@db.Uuid"
    if kind == "json":
        return "Json", "@db.Json"
    if kind == "jsonb":
        return "Json", ""
    if kind == "bytea":
        return "Bytes", ""
    if kind == "enum":
        return enum_names[column_type.name or ""], ""
    return f'Unsupported("{_pg_spelling(column_type)}")', ""


def _pg_spelling(column_type: ColumnType) -> str:
    element = column_type.model_copy(update={"dimensions": 0})
    sa_type = {
        "interval": "interval",
        "tsvector": "tsvector",
        "other": element.name or "unknown",
    }.get(element.kind)
    if sa_type is None:
        sa_type = element.name or element.kind
        if element.kind in ("varchar", "char") and element.length:
            sa_type = f"{element.kind}({element.length})"
        elif element.kind == "double":
            sa_type = "double precision"
        elif element.kind == "numeric" and element.precision:
            sa_type = f"numeric({element.precision},{element.scale or 0})"
        elif element.kind == "timestamp":
            sa_type = "timestamptz" if element.timezone else "timestamp"
    return sa_type + "[]" * column_type.dimensions


def _default(
    column: Column, spec: SchemaSpec, enum_names: dict[str, str]
) -> str | None:
    if column.serial or column.identity is not None:
        return "autoincrement()"
    if column.default is None:
        return None
    text = column.default.strip()
    column_type = _resolved(column.type, spec)
    scalar, _ = _scalar(column_type.model_copy(update={"dimensions": 0}), enum_names)
    cast = _CAST.match(text)
    literal = cast.group(1) if cast else text
    if column_type.dimensions:
        return f"dbgenerated({json.dumps(text)})"
    if text.lower() in _NOW and scalar == "DateTime":
        return "now()"
    if text.lower() in ("true", "false") and scalar == "Boolean":
        return text.lower()
    if _NUMBER.fullmatch(literal.strip("'")) and scalar in (
        "Int",
        "BigInt",
        "Float",
        "Decimal",
    ):
        return literal.strip("'")
    if literal.startswith("'") and literal.endswith("'"):
        value = literal[1:-1].replace("''", "'")
        if scalar == "String":
            return json.dumps(value)
        if column_type.kind == "enum":
            enum = spec.enum(column_type.name or "")
            if enum is not None and value in enum.values:
                taken: set[str] = set()
                labels = {v: _prisma_name(v, taken) for v in enum.values}
                return labels[value]
    return f"dbgenerated({json.dumps(text)})"


# --- migration.sql -------------------------------------------------------------


def render_prisma_migration(previous: SchemaSpec | None, spec: SchemaSpec) -> str:
    """PostgreSQL DDL that takes `previous` (None: an empty database) to `spec`.

    Statements are compiled by SQLAlchemy's PostgreSQL DDL compiler from the
    metadata the models renderer gives each spec. Order: removed SQL objects,
    partitions and new domains, removed constraints and indexes, removed
    tables, removed enums, new enums and values, new tables, column changes,
    new constraints and indexes, every new foreign key (so tables may
    reference each other in a cycle), then new partitions, sequences and SQL
    objects (views, functions, triggers) and removed domains, as the Alembic
    revisions order them.

    Returns:
        The migration, or an empty string when nothing changes.

    Raises:
        DDLError: the change removes or reorders enum values, or turns a
            column into or out of an auto-numbered key, which a plain
            migration cannot carry.
    """
    before = previous or SchemaSpec()
    old, new = _metadata(before), _metadata(spec)
    steps: list[tuple[str, ExecutableDDLElement | str]] = []
    # what the table metadata does not hold (domains, partitions, sequences of
    # serial columns outside a key, views, functions, triggers, extensions),
    # as the Alembic revisions carry it; enum values are added in place below
    sql_steps = postgresql_steps(before, spec)
    # extensions first: column defaults may call their functions
    extensions = [x for x in sql_steps.after if x.subject.startswith("extension ")]
    for sql_step in [*sql_steps.before, *extensions]:
        if not sql_step.subject.startswith(("enum ", _IDENTITY_STEP)):
            steps.extend((sql_step.subject, up) for up in sql_step.up)
    kept = [t for t in spec.tables if before.table(t.name) is not None]
    dropped = [t for t in before.tables if spec.table(t.name) is None]
    created = [t for t in spec.tables if before.table(t.name) is None]

    for table in kept:
        old_table, new_table = old.tables[table.name], new.tables[table.name]
        for constraint in _removed(_constraints(old_table), _constraints(new_table)):
            steps.append(("DropConstraint", sa.schema.DropConstraint(constraint)))
        for index in _removed(_indexes(old_table), _indexes(new_table)):
            steps.append(("DropIndex", sa.schema.DropIndex(index)))
    for table in dropped:
        for constraint in _sorted(old.tables[table.name].foreign_key_constraints):
            steps.append(("DropForeignKey", sa.schema.DropConstraint(constraint)))
    for table in dropped:
        steps.append(("DropTable", sa.schema.DropTable(old.tables[table.name])))
    for enum_type in before.enums:
        if spec.enum(enum_type.name) is None:
            steps.append(("DropEnum", DropEnumType(_sa_enum(old, enum_type.name))))

    for enum_type in spec.enums:
        earlier = before.enum(enum_type.name)
        if earlier is None:
            steps.append(("CreateEnum", CreateEnumType(_sa_enum(new, enum_type.name))))
        elif earlier.values != enum_type.values:
            steps.extend(
                ("AlterEnum", sql) for sql in _enum_additions(earlier, enum_type)
            )

    for table in created:
        new_table = new.tables[table.name]
        steps.append(
            (
                "CreateTable",
                sa.schema.CreateTable(new_table, include_foreign_key_constraints=[]),
            )
        )
        steps.extend(_comments(table, None))
        steps.extend(
            ("CreateIndex", sa.schema.CreateIndex(i))
            for i in _sorted(new_table.indexes)
        )

    for table in kept:
        earlier = before.table(table.name)
        assert earlier is not None
        steps.extend(_column_changes(earlier, table, old, new))
        old_table, new_table = old.tables[table.name], new.tables[table.name]
        for constraint in _removed(_constraints(new_table), _constraints(old_table)):
            steps.append(("AddConstraint", sa.schema.AddConstraint(constraint)))
        for index in _removed(_indexes(new_table), _indexes(old_table)):
            steps.append(("CreateIndex", sa.schema.CreateIndex(index)))

    for table in spec.tables:
        new_table = new.tables[table.name]
        if table in created:
            keys = _sorted(new_table.foreign_key_constraints)
        else:
            old_keys = old.tables[table.name].foreign_key_constraints
            keys = _removed(
                {_signature(c): c for c in new_table.foreign_key_constraints},
                {_signature(c): c for c in old_keys},
            )
        steps.extend(("AddForeignKey", sa.schema.AddConstraint(k)) for k in keys)

    for sql_step in sql_steps.after:
        if sql_step not in extensions and not sql_step.subject.startswith(
            _IDENTITY_STEP
        ):
            steps.extend((sql_step.subject, up) for up in sql_step.up)
    return "\n".join(f"-- {label}\n{_compile(element)};\n" for label, element in steps)


# identity option changes go with their column's other changes, as plain SQL
# the migration reader takes back (the revisions' restart block is PL/pgSQL)
_IDENTITY_STEP = "identity of "


def _compile(element: ExecutableDDLElement | str) -> str:
    if isinstance(element, str):
        # SQL objects keep the statement as written, closing semicolon included
        return element.strip().removesuffix(";").rstrip()
    text = str(element.compile(dialect=_DIALECT)).strip()
    return "\n".join(line.rstrip() for line in text.splitlines())


def _signature(item: sa.Constraint | sa.Index) -> str:
    if isinstance(item, sa.Index):
        return _compile(sa.schema.CreateIndex(item))
    return _compile(sa.schema.AddConstraint(item))


def _sorted(items: Iterable[_Item]) -> list[_Item]:
    return sorted(items, key=lambda item: str(item.name))


def _constraints(table: sa.Table) -> dict[str, sa.Constraint]:
    # foreign keys are compared separately: they go last
    return {
        _signature(c): c
        for c in table.constraints
        if not isinstance(c, sa.ForeignKeyConstraint)
    }


def _indexes(table: sa.Table) -> dict[str, sa.Index]:
    return {_signature(i): i for i in table.indexes}


def _removed(first: Mapping[str, _Item], second: Mapping[str, _Item]) -> list[_Item]:
    """The items of `first` whose definition `second` does not have, by name."""
    return _sorted(item for key, item in first.items() if key not in second)


def _sa_enum(metadata: sa.MetaData, name: str) -> sa.Enum:
    for table in metadata.tables.values():
        for column in table.columns:
            column_type = column.type
            if isinstance(column_type, sa.ARRAY):
                column_type = column_type.item_type
            if isinstance(column_type, sa.Enum) and column_type.name == name:
                return column_type
    # an enum no column uses yet
    return sa.Enum(name=name, metadata=metadata)


def _enum_additions(old: EnumType, new: EnumType) -> list[str]:
    if [v for v in new.values if v in old.values] != old.values:
        raise DDLError(
            f"enum {new.name}: values are removed or reordered, which "
            "PostgreSQL cannot do in place; add values only, or create a new type",
            field=f"enums.{new.name}",
        )
    statements = []
    for position, value in enumerate(new.values):
        if value in old.values:
            continue
        quoted = "'" + value.replace("'", "''") + "'"
        # placed next to a value that exists by then, so the order is kept
        if position > 0:
            neighbour = new.values[position - 1].replace("'", "''")
            place = f" AFTER '{neighbour}'"
        elif old.values:
            following = old.values[0].replace("'", "''")
            place = f" BEFORE '{following}'"
        else:
            place = ""
        name = _DIALECT.identifier_preparer.quote(new.name)
        statements.append(f"ALTER TYPE {name} ADD VALUE {quoted}{place}")
    return statements


def _comments(
    table: Table, earlier: Table | None
) -> list[tuple[str, ExecutableDDLElement | str]]:
    steps: list[tuple[str, ExecutableDDLElement | str]] = []
    quote = _DIALECT.identifier_preparer.quote
    if table.comment != (earlier.comment if earlier else None):
        text = "NULL" if table.comment is None else _string(table.comment)
        steps.append(("CommentOn", f"COMMENT ON TABLE {quote(table.name)} IS {text}"))
    for column in table.columns:
        before = earlier.column(column.name) if earlier else None
        if column.comment != (before.comment if before else None):
            text = "NULL" if column.comment is None else _string(column.comment)
            steps.append(
                (
                    "CommentOn",
                    f"COMMENT ON COLUMN {quote(table.name)}.{quote(column.name)} "
                    f"IS {text}",
                )
            )
    return steps


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _column_changes(
    old: Table, new: Table, old_metadata: sa.MetaData, metadata: sa.MetaData
) -> list[tuple[str, ExecutableDDLElement | str]]:
    old_table = old_metadata.tables[old.name]
    sa_table = metadata.tables[new.name]
    steps: list[tuple[str, ExecutableDDLElement | str]] = []
    for column in old.columns:
        if new.column(column.name) is None:
            steps.append(
                ("DropColumn", DropColumn(new.name, sa.Column(column.name, sa.Integer)))
            )
    for column in new.columns:
        earlier = old.column(column.name)
        sa_column = sa_table.c[column.name]
        if earlier is None:
            steps.append(("AddColumn", AddColumn(new.name, sa_column)))
            continue
        if (earlier.serial, earlier.identity) != (column.serial, column.identity):
            raise DDLError(
                f"{new.name}.{column.name}: changing an auto-numbered key is not "
                "carried by the Prisma migration; write it as SQL",
                field=f"tables.{new.name}.columns.{column.name}",
            )
        if earlier.type != column.type:
            steps.append(
                (
                    "AlterColumn",
                    PostgresqlColumnType(new.name, column.name, sa_column.type),
                )
            )
        change = identity_change(new.name, earlier, column, restart_unused=False)
        if change is not None:
            steps.extend(("AlterColumn", statement) for statement in change.up)
        if earlier.nullable != column.nullable:
            steps.append(
                ("AlterColumn", ColumnNullable(new.name, column.name, column.nullable))
            )
        # the server defaults as the models renderer spells them: one default
        # written two ways ('G' and 'G'::mpaa_rating) is no change
        default = _server_default(sa_column)
        if _server_default(old_table.c[column.name]) != default:
            steps.append(
                (
                    "AlterColumn",
                    ColumnDefault(
                        new.name,
                        column.name,
                        getattr(sa_column.server_default, "arg", None),
                    ),
                )
            )
    steps.extend(_comments(new, old))
    return steps


def _server_default(column: sa.Column[object]) -> str | None:
    argument = getattr(column.server_default, "arg", None)
    if argument is None:
        return None
    return str(getattr(argument, "text", argument))


# --- naming, seed, forge -----------------------------------------------------------


def next_migration_timestamp(root: Path) -> str:
    """One second after the newest migration under `prisma/migrations`."""
    latest = FIRST_TIMESTAMP
    folder = root / MIGRATIONS_DIR
    if folder.is_dir():
        for entry in folder.iterdir():
            match = _MIGRATION_NAME.fullmatch(entry.name)
            if entry.is_dir() and match:
                stamp = dt.datetime.strptime(match.group(1), _TIMESTAMP_FORMAT)
                latest = max(latest, stamp)
    return (latest + dt.timedelta(seconds=1)).strftime(_TIMESTAMP_FORMAT)


def prisma_migration_dir(task_id: str, title: str, created: str) -> str:
    """`prisma/migrations/<created>_<task>_<title slug>`.

    Args:
        task_id: the data task.
        title: the task title.
        created: a 14-digit `yyyymmddHHMMSS` (see `next_migration_timestamp`).

    Raises:
        DDLError: `created` is not 14 digits.
    """
    if not re.fullmatch(r"\d{14}", created):
        raise DDLError(
            f"migration timestamp {created!r} is not yyyymmddHHMMSS", field="created"
        )
    task = re.sub(r"[^a-z0-9]+", "_", task_id.lower()).strip("_")
    return f"{MIGRATIONS_DIR}/{created}_{task}_{slugify(title)}"


def render_prisma_seed(spec: SchemaSpec) -> str:
    """`prisma/seed.ts`: the statements of `render_seed_sql` run through Prisma.

    One source of truth: the same rows as `seed_data.sql`, executed in one
    transaction with `$executeRawUnsafe` (the statements are generated, not
    user input).
    """
    statements = seed_statements(render_seed_sql(spec), "postgresql")
    lines = [
        "// Generated by sparc (Hephaestus): the rows of seed_data.sql, run through",
        "// Prisma. Point package.json's prisma.seed at this file to use it.",
        'import { PrismaClient } from "@prisma/client";',
        "",
        "const prisma = new PrismaClient();",
        "",
        "const statements: string[] = [",
        *(f"  {json.dumps(statement)}," for statement in statements),
        "];",
        "",
        "async function main(): Promise<void> {",
        "  await prisma.$transaction(",
        "    statements.map((statement) =>",
        "      // setval() is a SELECT: it returns a row, so it is queried",
        "      /^\\s*select\\b/i.test(statement)",
        "        ? prisma.$queryRawUnsafe(statement)",
        "        : prisma.$executeRawUnsafe(statement),",
        "    ),",
        "  );",
        "}",
        "",
        "main()",
        "  .catch((error: unknown) => {",
        "    console.error(error);",
        "    process.exitCode = 1;",
        "  })",
        "  .finally(() => prisma.$disconnect());",
    ]
    return "\n".join(lines) + "\n"


def spec_from_prisma_migrations(root: Path) -> SchemaSpec:
    """The schema the migrations under `prisma/migrations` build, in order."""
    spec = SchemaSpec()
    for path in migration_files(root):
        display = path.relative_to(root).as_posix()
        spec = parse_file(path, display=display, base=spec).spec
    return spec


def forge_prisma(
    root: Path,
    *,
    task_id: str,
    title: str,
    spec: SchemaSpec,
    previous: SchemaSpec | None,
) -> dict[str, str]:
    """The Prisma files of a data task (workspace-relative path to content).

    Args:
        root: the workspace (only read: existing migrations fix the name).
        task_id: the data task.
        title: the task title, in the migration folder's name.
        spec: the whole schema after the task.
        previous: the schema before it, as the migrations build it (see
            `spec_from_prisma_migrations`); None for a project without
            migrations.

    Returns:
        schema.prisma, seed.ts, the lock file when absent, and the migration
        when the schema changes. schema.prisma and seed.ts are rendered from
        the schema the migrations build, read back with the DDL reader.

    Raises:
        VerificationError: the migration, read back, misses part of `spec`.
        DDLError: the change cannot be carried by a plain migration.
    """
    files: dict[str, str] = {}
    built = previous or SchemaSpec()
    migration = render_prisma_migration(previous, spec)
    if migration:
        created = next_migration_timestamp(root)
        path = f"{prisma_migration_dir(task_id, title, created)}/migration.sql"
        files[path] = migration
        built = _read_back(migration, path, built, spec)

    # rendered from the schema the migrations build, as the next task reads
    # it back, so a later task never rewrites lines this one wrote
    files[SCHEMA_FILE] = render_prisma_schema(built)
    files[SEED_FILE] = render_prisma_seed(built)
    if not (root / LOCK_FILE).is_file():
        files[LOCK_FILE] = LOCK_TEXT
    log.info("prisma_forged", task_id=task_id, files=sorted(files))
    return dict(sorted(files.items()))


def _read_back(
    migration: str, path: str, previous: SchemaSpec, spec: SchemaSpec
) -> SchemaSpec:
    """The schema `migration` builds on `previous`; it must leave nothing of `spec`.

    Raises:
        VerificationError: read back, the migration misses part of the change.
    """
    built = parse_sql(migration, source=path, base=previous).spec
    left = render_prisma_migration(built, spec)
    if left:
        missing = "; ".join(
            line for line in left.splitlines() if line and not line.startswith("--")
        )
        raise VerificationError(
            f"{path} does not carry the whole change; read back, it still "
            f"needs: {missing[:300]}",
            step="read the migration back",
            dialect="postgresql",
        )
    return built


def migration_files(root: Path) -> list[Path]:
    """Each `prisma/migrations/<timestamp>_<name>/migration.sql`, in applying order.

    Prisma applies migrations by folder name; folders without a migration.sql
    (and the lock file) are not migrations.
    """
    folder = root / MIGRATIONS_DIR
    if not folder.is_dir():
        return []
    return [
        entry / "migration.sql"
        for entry in sorted(folder.iterdir())
        if entry.is_dir() and (entry / "migration.sql").is_file()
    ]
