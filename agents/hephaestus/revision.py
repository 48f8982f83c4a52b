"""Compute the next Alembic revision from new models and the existing chain.

The existing revisions are applied to a scratch SQLite database, Alembic's
autogenerate compares that database with the new metadata, and what
autogenerate does not see is added: check constraints on existing tables,
PostgreSQL enum types (created before the tables that use them, dropped after
them), and changed index definitions. Tables and columns the task renamed are
renamed in place first, so their rows stay. The result is rendered with
Alembic's own renderers into a template kept in this package.
"""

from __future__ import annotations

import gc
import re
import string
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import renderers
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import ops
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import TextClause, conv
from sqlalchemy.sql.functions import FunctionElement

from sparc.agents.hephaestus.ddl import Rename
from sparc.agents.hephaestus.identity import (
    identity_changes,
    identity_mappings,
    number_past_values,
    without_sqlite_identity,
)
from sparc.agents.hephaestus.models_render import (
    iter_enum_types,
    postgresql_only_default,
)
from sparc.agents.hephaestus.spec import (
    ColumnType,
    Domain,
    Partition,
    SchemaSpec,
    SqlObject,
    Table,
)
from sparc.errors import VerificationError

log = structlog.get_logger(__name__)

SLUG_LENGTH = 40


@dataclass(frozen=True)
class RevisionInfo:
    """The next revision: its id, file name and text, and whether it does anything."""

    revision_id: str
    down_revision: str | None
    file_name: str
    text: str
    has_operations: bool


@dataclass(frozen=True)
class SqlStep:
    """One reversible PostgreSQL-only step: statements up, statements down."""

    up: tuple[str, ...]
    down: tuple[str, ...]
    # what the step is about, for the run report
    subject: str


@dataclass(frozen=True)
class PostgresqlSteps:
    """SQL steps around a revision's table operations, in upgrade order.

    `before` runs ahead of the table operations on upgrade, `after` behind
    them; the downgrade runs the `down` statements in exactly reverse order.
    """

    before: tuple[SqlStep, ...] = ()
    after: tuple[SqlStep, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.before or self.after)

    def subjects(self) -> list[str]:
        return [step.subject for step in (*self.before, *self.after)]


def postgresql_steps(previous: SchemaSpec, spec: SchemaSpec) -> PostgresqlSteps:
    """The domain, enum, partition and SQL object changes from `previous` to `spec`.

    Objects are matched by their drop statement (a trigger's name alone is not
    unique); one whose create SQL changed is dropped and created again.
    """
    before: list[SqlStep] = []
    after: list[SqlStep] = []

    old_objects = {item.drop: item for item in previous.objects}
    new_objects = {item.drop: item for item in spec.objects}
    for item in reversed(previous.objects):
        kept = new_objects.get(item.drop)
        if kept is None or kept.create != item.create:
            subject = f"{item.kind.replace('_', ' ')} {item.name}"
            before.append(SqlStep((item.drop,), _creation(item), subject))

    kept_sequences = set(_sequence_columns(spec))
    for table, column in reversed(_sequence_columns(previous)):
        if (table, column) not in kept_sequences:
            step = _sequence_step(previous, table, column)
            before.append(SqlStep(step.down, step.up, step.subject))

    old_partitions = {p.name: p for p in previous.partitions}
    new_partitions = {p.name: p for p in spec.partitions}
    for partition in reversed(previous.partitions):
        kept_partition = new_partitions.get(partition.name)
        if kept_partition is not None and _same_table(partition, kept_partition):
            added = _definition_steps(kept_partition, partition)
            before.extend(SqlStep(s.down, s.up, s.subject) for s in reversed(added))
        elif kept_partition != partition:
            create, drop = _partition_sql(partition)
            before.append(SqlStep(drop, create, f"partition {partition.name}"))

    old_domains = {d.name: d for d in previous.domains}
    for domain in spec.domains:
        if domain.name not in old_domains:
            create, drop = _domain_sql(domain)
            before.append(SqlStep((create,), (drop,), f"domain {domain.name}"))
        elif old_domains[domain.name] != domain:
            before.append(_domain_change(old_domains[domain.name], domain))

    for enum in spec.enums:
        old_enum = previous.enum(enum.name)
        if old_enum is not None and old_enum.values != enum.values:
            up = _recreate_enum(enum.name, enum.values, previous)
            down = _recreate_enum(enum.name, old_enum.values, previous)
            before.append(SqlStep(up, down, f"enum {enum.name} values"))

    old_sequences = set(_sequence_columns(previous))
    new_sequences = _sequence_columns(spec)
    for table, column in new_sequences:
        if (table, column) not in old_sequences:
            after.append(_sequence_step(spec, table, column))

    for change in identity_changes(previous, spec):
        step = SqlStep(change.up, change.down, change.subject)
        (before if change.ahead else after).append(step)

    for partition in spec.partitions:
        old_partition = old_partitions.get(partition.name)
        if old_partition is not None and _same_table(old_partition, partition):
            after.extend(_definition_steps(old_partition, partition))
        elif old_partition != partition:
            create, drop = _partition_sql(partition)
            after.append(SqlStep(create, drop, f"partition {partition.name}"))

    for item in spec.objects:
        old = old_objects.get(item.drop)
        if old is None or old.create != item.create:
            subject = f"{item.kind.replace('_', ' ')} {item.name}"
            after.append(SqlStep(_creation(item), (item.drop,), subject))

    new_domains = {d.name for d in spec.domains}
    for domain in reversed(previous.domains):
        if domain.name not in new_domains:
            create, drop = _domain_sql(domain)
            after.append(SqlStep((drop,), (create,), f"domain {domain.name}"))
    return PostgresqlSteps(tuple(before), tuple(after))


def _creation(item: SqlObject) -> tuple[str, ...]:
    if item.kind != "function":
        return (item.create,)
    # functions may call each other in any order, as in pg_dump's output:
    # their bodies are checked when called, not when created
    return ("SET LOCAL check_function_bodies = false", item.create)


_PREPARER = postgresql.dialect().identifier_preparer


def _quote(name: str) -> str:
    return _PREPARER.quote(name)


def _sequence_columns(spec: SchemaSpec) -> list[tuple[str, str]]:
    """Serial columns SQLAlchemy cannot make SERIAL (not a one-column key)."""
    found = []
    for table in spec.tables:
        key = table.primary_key.columns if table.primary_key else []
        for column in table.columns:
            if not column.serial or column.identity is not None:
                continue
            if column.type.kind not in ("smallint", "integer", "bigint"):
                continue
            if key == [column.name] and not column.type.dimensions:
                continue
            found.append((table.name, column.name))
    return found


def _sequence_step(spec: SchemaSpec, table_name: str, column_name: str) -> SqlStep:
    table = spec.table(table_name)
    assert table is not None
    column = table.column(column_name)
    assert column is not None
    sequence = f"{table_name}_{column_name}_seq".encode()[:63].decode(errors="ignore")
    target = f"ALTER TABLE {_quote(table_name)} ALTER COLUMN {_quote(column_name)}"
    regclass = "'" + _quote(sequence).replace("'", "''") + "'::regclass"
    up = (
        f"CREATE SEQUENCE {_quote(sequence)} AS {column.type.kind} "
        f"OWNED BY {_quote(table_name)}.{_quote(column_name)}",
        f"{target} SET DEFAULT nextval({regclass})",
        number_past_values(table_name, column),
    )
    down = (f"{target} DROP DEFAULT", f"DROP SEQUENCE {_quote(sequence)}")
    return SqlStep(up, down, f"sequence of {table_name}.{column_name}")


def _partition_sql(partition: Partition) -> tuple[tuple[str, ...], tuple[str, ...]]:
    name, parent = _quote(partition.name), _quote(partition.parent)
    create = f"CREATE TABLE {name} PARTITION OF {parent} {partition.bound}"
    # dropping the partition drops its own keys and indexes with it
    return (create, *partition.definitions), (f"DROP TABLE {name}",)


def _same_table(old: Partition, new: Partition) -> bool:
    # its rows stay: only its own keys and indexes differ, and each of them
    # can be dropped by name
    return (
        (old.parent, old.bound) == (new.parent, new.bound)
        and all(_definition_drop(new, sql) for sql in old.definitions)
        and all(_definition_drop(new, sql) for sql in new.definitions)
    )


_DEFINITION_NAME = re.compile(
    r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<index>\"[^\"]+\"|\w+)|\bADD\s+CONSTRAINT\s+(?P<constraint>\"[^\"]+\"|\w+)",
    re.IGNORECASE,
)


def _definition_drop(partition: Partition, sql: str) -> str | None:
    found = _DEFINITION_NAME.search(sql)
    if found is None:
        return None
    if found["index"] is not None:
        return f"DROP INDEX {found['index']}"
    return f"ALTER TABLE {_quote(partition.name)} DROP CONSTRAINT {found['constraint']}"


def _definition_steps(old: Partition, new: Partition) -> list[SqlStep]:
    """Steps adding the keys and indexes of `new` that `old` lacks."""
    steps = []
    for sql in new.definitions:
        if sql not in old.definitions:
            drop = _definition_drop(new, sql)
            assert drop is not None
            steps.append(SqlStep((sql,), (drop,), f"partition {new.name} keys"))
    return steps


def _domain_sql(domain: Domain) -> tuple[str, str]:
    parts = [f"CREATE DOMAIN {_quote(domain.name)} AS {postgresql_type(domain.type)}"]
    if domain.default is not None:
        parts.append(f"DEFAULT {domain.default}")
    if not domain.nullable:
        parts.append("NOT NULL")
    for check in domain.check_constraints:
        named = f"CONSTRAINT {_quote(check.name)} " if check.name else ""
        parts.append(f"{named}CHECK ({check.expression})")
    return " ".join(parts), f"DROP DOMAIN {_quote(domain.name)}"


def _domain_change(old: Domain, new: Domain) -> SqlStep:
    # a domain in use cannot be dropped; its default, nullability and checks
    # can be altered in place
    def alter(source: Domain, target: Domain) -> tuple[str, ...]:
        name = _quote(target.name)
        statements = [
            f"ALTER DOMAIN {name} DROP CONSTRAINT {_quote(check.name)}"
            for check in source.check_constraints
            if check.name
        ]
        if target.default is None:
            statements.append(f"ALTER DOMAIN {name} DROP DEFAULT")
        else:
            statements.append(f"ALTER DOMAIN {name} SET DEFAULT {target.default}")
        null = "DROP NOT NULL" if target.nullable else "SET NOT NULL"
        statements.append(f"ALTER DOMAIN {name} {null}")
        statements += [
            f"ALTER DOMAIN {name} ADD "
            + (f"CONSTRAINT {_quote(check.name)} " if check.name else "")
            + f"CHECK ({check.expression})"
            for check in target.check_constraints
        ]
        return tuple(statements)

    return SqlStep(alter(old, new), alter(new, old), f"domain {new.name}")


def _recreate_enum(
    name: str, values: list[str], previous: SchemaSpec
) -> tuple[str, ...]:
    # PostgreSQL cannot remove or reorder enum labels: build the type again
    # and move every column that uses it over through its text form
    old_name = _quote(f"{name}__old")
    labels = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    statements = [
        f"ALTER TYPE {_quote(name)} RENAME TO {old_name}",
        f"CREATE TYPE {_quote(name)} AS ENUM ({labels})",
    ]
    for table, column in _enum_columns(name, previous):
        target = f"ALTER TABLE {_quote(table.name)} ALTER COLUMN {_quote(column)}"
        default = next(c.default for c in table.columns if c.name == column)
        dimensions = next(c.type.dimensions for c in table.columns if c.name == column)
        arrays = "[]" * dimensions
        if default is not None:
            statements.append(f"{target} DROP DEFAULT")
        statements.append(
            f"{target} TYPE {_quote(name)}{arrays} "
            f"USING {_quote(column)}::text{arrays}::{_quote(name)}{arrays}"
        )
        if default is not None:
            statements.append(f"{target} SET DEFAULT {default}")
    statements.append(f"DROP TYPE {old_name}")
    return tuple(statements)


def _enum_columns(name: str, spec: SchemaSpec) -> list[tuple[Table, str]]:
    return [
        (table, column.name)
        for table in spec.tables
        for column in table.columns
        if column.type.kind == "enum" and column.type.name == name
    ]


_PG_SPELLING = {
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "real": "real",
    "double": "double precision",
    "boolean": "boolean",
    "text": "text",
    "date": "date",
    "interval": "interval",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "jsonb",
    "bytea": "bytea",
    "tsvector": "tsvector",
}


def postgresql_type(column_type: ColumnType) -> str:
    """The PostgreSQL spelling of a SchemaSpec column type."""
    kind = column_type.kind
    if kind in _PG_SPELLING:
        spelled = _PG_SPELLING[kind]
    elif kind == "numeric":
        spelled = "numeric"
        if column_type.precision is not None:
            scale = "" if column_type.scale is None else f", {column_type.scale}"
            spelled += f"({column_type.precision}{scale})"
    elif kind in ("varchar", "char"):
        spelled = "character varying" if kind == "varchar" else "character"
        if column_type.length is not None:
            spelled += f"({column_type.length})"
    elif kind in ("timestamp", "time"):
        zone = "with" if column_type.timezone else "without"
        spelled = f"{kind} {zone} time zone"
    elif kind in ("enum", "domain"):
        spelled = _quote(column_type.name or "")
    else:
        spelled = column_type.name or kind
    return spelled + "[]" * column_type.dimensions


_ELSEWHERE = "sqlite, mariadb"


def dialect_mappings(spec: SchemaSpec) -> list[str]:
    """Where SQLite or MariaDB take the nearest form of a PostgreSQL feature.

    One line per mapping, naming every table, column, index or object it
    concerns; the forge adds them to the run report.
    """
    lines: list[str] = []
    for domain in spec.domains:
        checks = (
            " (its checks are not enforced there)" if domain.check_constraints else ""
        )
        lines.append(
            f"{_ELSEWHERE}: domain {domain.name} is its base type "
            f"{postgresql_type(domain.type)}{checks}"
        )
    for enum in spec.enums:
        longest = max((len(value) for value in enum.values), default=0)
        lines.append(
            f"sqlite: enum {enum.name} is VARCHAR({longest}); "
            f"mariadb: an inline ENUM column type"
        )
    for table in spec.tables:
        lines.extend(_table_mappings(table))
        lines.extend(identity_mappings(table))
    for table, column in _sequence_columns(spec):
        lines.append(
            f"{_ELSEWHERE}: {table}.{column} has no sequence default (SQLAlchemy "
            "numbers only a one-column integer key); insert its values explicitly"
        )
    parents = sorted({p.parent for p in spec.partitions})
    for parent in parents:
        names = [p.name for p in spec.partitions if p.parent == parent]
        lines.append(
            f"{_ELSEWHERE}: table {parent} is not partitioned; its rows stay in it "
            f"and partitions {', '.join(names)} are not created"
        )
    kinds: dict[str, list[str]] = {}
    for item in spec.objects:
        label = item.drop.split(" ", 2)[2] if item.kind == "trigger" else item.name
        kinds.setdefault(item.kind.replace("_", " "), []).append(label)
    for kind, names in kinds.items():
        lines.append(f"{_ELSEWHERE}: PostgreSQL {kind} SQL not run: {', '.join(names)}")
    return lines


def narrowing_notes(previous: SchemaSpec, spec: SchemaSpec) -> list[str]:
    """Type changes whose upgrade or downgrade can round or cut stored values."""
    notes: list[str] = []
    previous_tables = {table.name: table for table in previous.tables}
    for table in spec.tables:
        before = previous_tables.get(table.name)
        if before is None:
            continue
        old_columns = {column.name: column for column in before.columns}
        for column in table.columns:
            old = old_columns.get(column.name)
            if old is None or old.type == column.type:
                continue
            for direction, wide, narrow in (
                ("upgrade", old.type, column.type),
                ("downgrade", column.type, old.type),
            ):
                if _narrower(narrow, wide):
                    notes.append(
                        f"{direction} narrows {table.name}.{column.name} from "
                        f"{postgresql_type(wide)} to {postgresql_type(narrow)}: "
                        "stored values can be rounded or refused"
                    )
    return notes


def _narrower(narrow: ColumnType, wide: ColumnType) -> bool:
    if narrow.kind != wide.kind:
        return False
    if narrow.kind == "numeric":
        pairs = [(narrow.precision, wide.precision), (narrow.scale, wide.scale)]
    elif narrow.kind in ("varchar", "char"):
        pairs = [(narrow.length, wide.length)]
    else:
        return False
    return any(n is not None and (w is None or n < w) for n, w in pairs)


def _table_mappings(table: Table) -> list[str]:
    lines: list[str] = []
    for column in table.columns:
        where = f"{table.name}.{column.name}"
        if column.type.dimensions:
            lines.append(f"{_ELSEWHERE}: array column {where} is JSON")
        elif column.type.kind == "jsonb":
            lines.append(f"{_ELSEWHERE}: jsonb column {where} is JSON")
        elif column.type.kind == "tsvector":
            lines.append(f"{_ELSEWHERE}: tsvector column {where} is TEXT")
        elif column.type.kind == "numeric" and column.type.precision is not None:
            lines.append(
                f"sqlite: numeric column {where} does not enforce its precision "
                "and scale"
            )
        if column.default is not None and postgresql_only_default(column.default):
            lines.append(
                f"{_ELSEWHERE}: default {column.default} of {where} calls a "
                "PostgreSQL-only function: left out there"
            )
    for index in table.indexes:
        if index.where is not None:
            lines.append(
                f"mariadb: partial index {index.name} on {table.name} covers all "
                f"rows (no WHERE {index.where} there)"
            )
        if any(element.expression for element in index.elements):
            lines.append(
                f"mariadb: index {index.name} on {table.name} has an expression key "
                "and is not created there"
            )
        if index.include:
            lines.append(
                f"{_ELSEWHERE}: index {index.name} on {table.name} does not include "
                f"{', '.join(index.include)}"
            )
        if any(element.nulls for element in index.elements):
            lines.append(
                f"{_ELSEWHERE}: index {index.name} on {table.name} sorts without "
                "NULLS FIRST/LAST"
            )
        if index.method is not None and index.method != "btree":
            lines.append(
                f"{_ELSEWHERE}: {index.method} index {index.name} on {table.name} "
                "is a plain index"
            )
    for fk in table.foreign_keys:
        if fk.deferrable:
            lines.append(
                f"mariadb: deferrable foreign key {fk.name or fk.columns} on "
                f"{table.name} is checked at once"
            )
    return lines


def slugify(title: str) -> str:
    """Lowercase ASCII words joined by underscores, at most 40 characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore")
    words = re.findall(r"[a-z0-9]+", ascii_title.decode().lower())
    slug = ""
    for word in words:
        candidate = f"{slug}_{word}" if slug else word
        if len(candidate) > SLUG_LENGTH:
            break
        slug = candidate
    return slug or (words[0][:SLUG_LENGTH] if words else "revision")


def script_directory(alembic_dir: Path) -> ScriptDirectory:
    """The revision scripts under `alembic_dir/versions`, read without env.py."""
    return ScriptDirectory(
        str(alembic_dir), version_locations=[str(alembic_dir / "versions")]
    )


def current_head(alembic_dir: Path) -> str | None:
    """The single head of the chain, or None when there is no revision yet.

    Raises:
        VerificationError: the chain has more than one head.
    """
    heads = script_directory(alembic_dir).get_heads()
    if len(heads) > 1:
        raise VerificationError(
            f"the revisions in {alembic_dir / 'versions'} have several heads "
            f"({', '.join(sorted(heads))}); merge them before adding a revision",
            step="heads",
            dialect="sqlite",
        )
    return heads[0] if heads else None


def next_revision_id(head: str | None) -> str:
    """ "001" after no revision, then one more than the head's number."""
    if head is None:
        return "001"
    if not head.isdigit():
        raise VerificationError(
            f"head revision {head!r} is not numbered; sparc numbers revisions "
            "001, 002, ...",
            step="heads",
            dialect="sqlite",
        )
    return f"{int(head) + 1:0{max(3, len(head))}d}"


def write_revision(
    alembic_dir: Path,
    metadata: sa.MetaData,
    *,
    task_id: str,
    title: str,
    previous_metadata: sa.MetaData | None = None,
    spec: SchemaSpec | None = None,
    previous_spec: SchemaSpec | None = None,
    renames: Sequence[Rename] = (),
) -> RevisionInfo:
    """Compute the revision that takes the chain's head to `metadata`.

    Nothing is written: the caller decides where the text goes.

    Args:
        alembic_dir: the folder holding `versions/` (only read).
        metadata: the new models' metadata.
        task_id: the task the revision belongs to, quoted in its docstring.
        title: the task title; the revision's docstring and file name slug.
        previous_metadata: the models the chain's head was made from, when
            known; needed to see enum types and index changes SQLite hides.
        spec: the schema `metadata` was rendered from; its domains,
            partitions and SQL objects (views, functions, triggers, ...)
            become PostgreSQL-only SQL steps.
        previous_spec: the schema at the chain's head, when known.
        renames: tables and columns of the head renamed in place, in order
            (see `ddl.apply_renames`); `previous_metadata` and
            `previous_spec` are then the head's schema with the renames
            applied. Each becomes a rename, so the data stays.

    Returns:
        The revision; `has_operations` is False when the schema is unchanged.
    """
    head = current_head(alembic_dir)
    revision_id = next_revision_id(head)

    with tempfile.TemporaryDirectory(prefix="sparc-revision-") as scratch:
        engine = scratch_sqlite_engine(Path(scratch) / "head.sqlite3")
        try:
            with engine.begin() as connection:
                upgrade_to_head(alembic_dir, connection, metadata)
                rename_ops = _rename_in_place(connection, renames, previous_metadata)
                upgrade_ops = _compare(connection, metadata)
                without_sqlite_identity(upgrade_ops)
                _add_missed_checks(connection, metadata, upgrade_ops)
        finally:
            engine.dispose()
    _keep_unchanged_types_off_postgresql(
        previous_spec, spec, previous_metadata, upgrade_ops
    )
    _autoincrement_on_mariadb_only(upgrade_ops)
    _defer_cycle_keys(upgrade_ops)
    _add_changed_indexes(previous_metadata, metadata, upgrade_ops)
    _add_expression_indexes(previous_metadata, metadata, upgrade_ops)
    _add_changed_checks(previous_spec, spec, metadata, upgrade_ops)
    created, dropped = _enum_changes(previous_metadata, metadata)
    _split_index_changes(upgrade_ops)
    upgrade_ops.ops[:0] = rename_ops
    steps = postgresql_steps(previous_spec or SchemaSpec(), spec or SchemaSpec())

    has_operations = bool(upgrade_ops.ops or created or dropped or steps)
    with collection_paused():
        text = _render(
            upgrade_ops,
            metadata,
            created=created,
            dropped=dropped,
            steps=steps,
            previous_metadatas=[previous_metadata] if previous_metadata else [],
            revision_id=revision_id,
            down_revision=head,
            task_id=task_id,
            title=title,
        )
    file_name = f"{revision_id}_{slugify(title)}.py"
    log.info(
        "revision_computed",
        revision=revision_id,
        file=file_name,
        operations=len(upgrade_ops.ops),
    )
    return RevisionInfo(revision_id, head, file_name, text, has_operations)


@contextmanager
def collection_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a schema-sized step runs.

    Importing models, comparing them with a database and rendering their
    operations each build objects for every table that stay alive until the
    step ends; the full collections their growth triggers find little to
    free, yet each walks the whole heap, so their cost grows faster than the
    schema (a third of a 1,000-table forge). The collector runs again after
    the step and frees what it left behind.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def scratch_sqlite_engine(path: Path) -> sa.Engine:
    """An engine on a throwaway SQLite file that never waits for the disk.

    Every DDL statement is its own transaction on SQLite: with the default
    settings each one syncs the file and journal to disk, which is most of
    the time a large schema takes. A database deleted right after use needs
    neither the sync nor a journal file.
    """
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _unsynced(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    return engine


def upgrade_to_head(
    alembic_dir: Path, connection: sa.Connection, metadata: sa.MetaData
) -> None:
    """Apply every revision under `alembic_dir` on `connection`, without env.py."""
    script = script_directory(alembic_dir)
    config = Config()
    config.set_main_option("script_location", str(alembic_dir))

    def upgrade(revision: Any, context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=upgrade, destination_rev="head") as env:
        env.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with env.begin_transaction():
            env.run_migrations()


class _RenameTableOp(ops.RenameTableOp):
    """A table renamed in place; its reverse renames it back."""

    def reverse(self) -> _RenameTableOp:
        return _RenameTableOp(self.new_table_name, self.table_name)


@renderers.dispatch_for(_RenameTableOp)
def _render_rename_table(context: AutogenContext, op: _RenameTableOp) -> str:
    return f"op.rename_table({op.table_name!r}, {op.new_table_name!r})"


class _RenameColumnOp(ops.AlterColumnOp):
    """A column renamed in place; its reverse renames it back.

    The column's type, nullability and default go along: MariaDB renames with
    CHANGE COLUMN, which restates the whole definition.
    """

    def reverse(self) -> _RenameColumnOp:
        return _RenameColumnOp(
            self.table_name,
            str(self.modify_name),
            modify_name=self.column_name,
            existing_type=self.existing_type,
            existing_nullable=self.existing_nullable,
            existing_server_default=self.existing_server_default,
        )


def _rename_in_place(
    connection: sa.Connection,
    renames: Sequence[Rename],
    renamed_metadata: sa.MetaData | None,
) -> list[ops.MigrateOperation]:
    # applied to the scratch database too, so autogenerate compares what is
    # left against the renamed tables instead of proposing drop and add
    operations: list[ops.MigrateOperation] = []
    for number, rename in enumerate(renames):
        if rename.column is None:
            connection.exec_driver_sql(
                f"ALTER TABLE {_quote(rename.table)} RENAME TO {_quote(rename.new)}"
            )
            operations.append(_RenameTableOp(rename.table, rename.new))
            continue

        connection.exec_driver_sql(
            f"ALTER TABLE {_quote(rename.table)} RENAME COLUMN "
            f"{_quote(rename.column)} TO {_quote(rename.new)}"
        )
        column = _renamed_column(renamed_metadata, rename, renames[number + 1 :])
        default = column.server_default if column is not None else None
        operation = _RenameColumnOp(
            rename.table,
            rename.column,
            modify_name=rename.new,
            existing_type=column.type if column is not None else None,
            existing_nullable=column.nullable if column is not None else None,
            existing_server_default=default if default is not None else False,
        )
        operations.append(ops.ModifyTableOps(rename.table, [operation]))
    return operations


def _renamed_column(
    metadata: sa.MetaData | None, rename: Rename, later: Sequence[Rename]
) -> sa.Column[Any] | None:
    # `metadata` has every rename applied: follow the later ones to the
    # column's final name
    if metadata is None:
        return None
    table_name, column_name = rename.table, rename.new
    for step in later:
        if step.table != table_name:
            continue
        if step.column is None:
            table_name = step.new
        elif step.column == column_name:
            column_name = step.new
    table = metadata.tables.get(table_name)
    return table.columns.get(column_name) if table is not None else None


def _split_index_changes(upgrade_ops: ops.UpgradeOps) -> None:
    # on SQLite a batch that also recreates the table cannot take an index on
    # a sorted key or expression ("published_at DESC" is no column): drop
    # indexes in a batch of their own before the table changes, create them
    # in one after
    split: list[ops.MigrateOperation] = []
    for operation in upgrade_ops.ops:
        if not isinstance(operation, ops.ModifyTableOps):
            split.append(operation)
            continue
        drops = [o for o in operation.ops if isinstance(o, ops.DropIndexOp)]
        creates = [o for o in operation.ops if isinstance(o, ops.CreateIndexOp)]
        rest = [o for o in operation.ops if o not in drops and o not in creates]
        if not rest or not (drops or creates):
            split.append(operation)
            continue
        table, schema = operation.table_name, operation.schema
        for group in (drops, rest, creates):
            if group:
                split.append(ops.ModifyTableOps(table, group, schema=schema))
    upgrade_ops.ops = split


def _compare(connection: sa.Connection, metadata: sa.MetaData) -> ops.UpgradeOps:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "target_metadata": metadata,
        },
    )
    with collection_paused():
        script = produce_migrations(context, metadata)
    assert script.upgrade_ops is not None
    return script.upgrade_ops


def _add_missed_checks(
    connection: sa.Connection, metadata: sa.MetaData, upgrade_ops: ops.UpgradeOps
) -> None:
    # autogenerate never compares check constraints; do it by name on the
    # tables that exist on both sides
    inspector = sa.inspect(connection)
    existing_tables = set(inspector.get_table_names())
    for table in metadata.tables.values():
        if table.name not in existing_tables:
            continue
        checks = [
            check
            for check in inspector.get_check_constraints(table.name)
            if check.get("name")
        ]
        present = {check["name"] for check in checks}
        wanted = {
            str(c.name): c
            for c in table.constraints
            if isinstance(c, sa.CheckConstraint) and c.name
        }
        added = [
            ops.AddConstraintOp.from_constraint(wanted[name])
            for name in sorted(set(wanted) - present)
        ]
        dropped = [
            ops.DropConstraintOp.from_constraint(_reflected_check(table.name, check))
            for check in sorted(checks, key=lambda c: str(c["name"]))
            if check["name"] not in wanted
        ]
        # a check goes before its column can (PostgreSQL drops it with the
        # column) and comes back after the column is there again
        if dropped:
            upgrade_ops.ops.insert(0, ops.ModifyTableOps(table.name, dropped))
        if added:
            upgrade_ops.ops.append(ops.ModifyTableOps(table.name, added))


def _reflected_check(table_name: str, check: Any) -> sa.CheckConstraint:
    # a constraint bound to a table: its drop then knows how to add it back
    # the name is final: the models' naming convention must not wrap it again
    name = conv(check["name"])
    constraint = sa.CheckConstraint(sa.text(check["sqltext"]), name=name)
    sa.Table(table_name, sa.MetaData(), sa.Column("x"), constraint)
    return constraint


def _defer_cycle_keys(upgrade_ops: ops.UpgradeOps) -> None:
    # a foreign key marked use_alter closes a cycle of new tables: it is added
    # once all of them exist, and so dropped first on downgrade
    deferred: list[ops.MigrateOperation] = []
    for operation in upgrade_ops.ops:
        if not isinstance(operation, ops.CreateTableOp):
            continue
        keys = [
            item
            for item in operation.columns
            if isinstance(item, sa.ForeignKeyConstraint) and item.use_alter
        ]
        if not keys:
            continue
        operation.columns = [
            item for item in operation.columns if all(item is not k for k in keys)
        ]
        adds = [ops.CreateForeignKeyOp.from_constraint(key) for key in keys]
        deferred.append(ops.ModifyTableOps(operation.table_name, adds))
    if not deferred:
        return
    last = max(
        number
        for number, operation in enumerate(upgrade_ops.ops)
        if isinstance(operation, ops.CreateTableOp)
    )
    upgrade_ops.ops[last + 1 : last + 1] = deferred


def _add_changed_checks(
    previous: SchemaSpec | None,
    spec: SchemaSpec | None,
    metadata: sa.MetaData,
    upgrade_ops: ops.UpgradeOps,
) -> None:
    # a check kept under its name but with another expression: SQLite
    # reflection cannot tell, the two specs can
    if previous is None or spec is None:
        return
    previous_tables = {table.name: table for table in previous.tables}
    for table in spec.tables:
        before = previous_tables.get(table.name)
        sa_table = metadata.tables.get(table.name)
        if before is None or sa_table is None:
            continue
        old = {c.name: c.expression for c in before.check_constraints if c.name}
        changes: list[ops.MigrateOperation] = []
        for constraint in sorted(
            (c for c in sa_table.constraints if isinstance(c, sa.CheckConstraint)),
            key=lambda c: str(c.name),
        ):
            name = str(constraint.name)
            expression = str(constraint.sqltext)
            if name in old and old[name] != expression:
                old_check = sa.CheckConstraint(sa.text(old[name]), name=name)
                sa.Table(table.name, sa.MetaData(), sa.Column("x"), old_check)
                changes.append(ops.DropConstraintOp.from_constraint(old_check))
                changes.append(ops.AddConstraintOp.from_constraint(constraint))
        if changes:
            upgrade_ops.ops.append(ops.ModifyTableOps(table.name, changes))


def _index_signature(index: sa.Index) -> str:
    return str(sa.schema.CreateIndex(index).compile(dialect=postgresql.dialect()))


def _add_changed_indexes(
    previous: sa.MetaData | None, metadata: sa.MetaData, upgrade_ops: ops.UpgradeOps
) -> None:
    # SQLite does not reflect sort order, access method or included columns
    if previous is None:
        return
    touched = _touched_indexes(upgrade_ops)
    for table in metadata.tables.values():
        before = previous.tables.get(table.name)
        if before is None:
            continue
        old = {str(i.name): i for i in before.indexes}
        changes: list[ops.MigrateOperation] = []
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            name = str(index.name)
            if name in touched or name not in old:
                continue
            if _index_signature(old[name]) != _index_signature(index):
                changes.append(ops.DropIndexOp.from_index(old[name]))
                changes.append(ops.CreateIndexOp.from_index(index))
        if changes:
            upgrade_ops.ops.append(ops.ModifyTableOps(table.name, changes))


class NotOnPostgresqlOp(ops.MigrateOperation):
    """An operation only the other databases need (their own form of a type)."""

    def __init__(self, operation: ops.MigrateOperation) -> None:
        self.operation = operation

    def reverse(self) -> NotOnPostgresqlOp:
        return NotOnPostgresqlOp(self.operation.reverse())


@renderers.dispatch_for(NotOnPostgresqlOp)
def _render_not_on_postgresql(
    context: AutogenContext, op: NotOnPostgresqlOp
) -> list[str]:
    from alembic.autogenerate.render import render_op

    inner = render_op(context, op.operation)
    return ['if op.get_context().dialect.name != "postgresql":', *inner, ""]


def _keep_unchanged_types_off_postgresql(
    previous: SchemaSpec | None,
    spec: SchemaSpec | None,
    previous_metadata: sa.MetaData | None,
    upgrade_ops: ops.UpgradeOps,
) -> None:
    # a type change the specs do not make is SQLite's: a generated integer
    # key is INTEGER there (its rowid), so a key that stops being generated
    # looks retyped. Only the other databases run it, from the previous
    # models' type rather than SQLite's, so its downgrade restores that type
    if previous is None or spec is None:
        return
    for operation in upgrade_ops.ops:
        if not isinstance(operation, ops.ModifyTableOps):
            continue
        before, after = (
            previous.table(operation.table_name),
            spec.table(operation.table_name),
        )
        if before is None or after is None:
            continue
        changes: list[ops.MigrateOperation] = []
        for child in operation.ops:
            old = before.column(child.column_name) if _retypes(child) else None
            new = after.column(child.column_name) if _retypes(child) else None
            if old is None or new is None or old.type != new.type:
                changes.append(child)
                continue
            assert isinstance(child, ops.AlterColumnOp)
            changes.extend(
                _split_type_change(child, _previous_type(previous_metadata, child))
            )
        operation.ops = changes


def _retypes(operation: ops.MigrateOperation) -> bool:
    return isinstance(operation, ops.AlterColumnOp) and (
        operation.modify_type is not None
    )


def _previous_type(
    metadata: sa.MetaData | None, alter: ops.AlterColumnOp
) -> sa.types.TypeEngine[Any] | None:
    table = metadata.tables.get(alter.table_name) if metadata is not None else None
    column = table.columns.get(alter.column_name) if table is not None else None
    return column.type if column is not None else None


def _split_type_change(
    alter: ops.AlterColumnOp, previous_type: sa.types.TypeEngine[Any] | None
) -> list[ops.MigrateOperation]:
    existing_type = previous_type if previous_type is not None else alter.modify_type
    retype = ops.AlterColumnOp(
        alter.table_name,
        alter.column_name,
        schema=alter.schema,
        existing_type=existing_type,
        existing_nullable=alter.existing_nullable,
        existing_server_default=alter.existing_server_default,
        modify_type=alter.modify_type,
        **alter.kw,
    )
    rest: list[ops.MigrateOperation] = [NotOnPostgresqlOp(retype)]
    alter.modify_type = None
    alter.existing_type = existing_type
    if alter.has_changes():
        rest.insert(0, alter)
    return rest


class _OnMariadbOnly:
    """An argument MariaDB's ALTER needs and the other databases warn about."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"_on_mariadb({self.value!r})"


def _autoincrement_on_mariadb_only(upgrade_ops: ops.UpgradeOps) -> None:
    # autogenerate marks every altered key column with its autoincrement,
    # which only MySQL's ALTER reads; PostgreSQL and SQLite warn about it
    for operation in upgrade_ops.ops:
        children = (
            operation.ops if isinstance(operation, ops.ModifyTableOps) else [operation]
        )
        for child in children:
            if isinstance(child, NotOnPostgresqlOp):
                child = child.operation
            if not isinstance(child, ops.AlterColumnOp):
                continue
            for key in ("autoincrement", "existing_autoincrement"):
                value = child.kw.get(key)
                if isinstance(value, bool):
                    child.kw[key] = _OnMariadbOnly(value)


class NotOnMariadbOp(ops.MigrateOperation):
    """An operation MariaDB cannot run (an index on an expression)."""

    def __init__(self, operation: ops.MigrateOperation) -> None:
        self.operation = operation

    def reverse(self) -> NotOnMariadbOp:
        return NotOnMariadbOp(self.operation.reverse())


@renderers.dispatch_for(NotOnMariadbOp)
def _render_not_on_mariadb(context: AutogenContext, op: NotOnMariadbOp) -> list[str]:
    from alembic.autogenerate.render import render_op

    inner = render_op(context, op.operation)
    return ['if op.get_context().dialect.name != "mysql":', *inner, ""]


def is_expression_index(index: sa.Index) -> bool:
    """Whether any key of `index` is an expression rather than a column."""
    # Alembic wraps a textual key of a compared index in its own element
    return any(
        isinstance(e, TextClause) or type(e).__name__ == "_textual_index_element"
        for e in index.expressions
    )


def _add_expression_indexes(
    previous: sa.MetaData | None, metadata: sa.MetaData, upgrade_ops: ops.UpgradeOps
) -> None:
    # SQLite cannot reflect an index on an expression, so autogenerate skips
    # those indexes in both directions: compare them with the previous models
    touched = _touched_indexes(upgrade_ops)
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        before = previous.tables.get(table.name) if previous is not None else None
        old = {str(i.name): i for i in before.indexes} if before is not None else {}
        new = {str(i.name): i for i in table.indexes}
        for name in sorted(new):
            if name in touched or name in old or not is_expression_index(new[name]):
                continue
            upgrade_ops.ops.append(
                NotOnMariadbOp(ops.CreateIndexOp.from_index(new[name]))
            )
        for name in sorted(old):
            if name in touched or name in new or not is_expression_index(old[name]):
                continue
            upgrade_ops.ops.append(
                NotOnMariadbOp(ops.DropIndexOp.from_index(old[name]))
            )


def _touched_indexes(upgrade_ops: ops.UpgradeOps) -> set[str]:
    names: set[str] = set()
    for op in upgrade_ops.ops:
        children = op.ops if isinstance(op, ops.ModifyTableOps) else [op]
        for child in children:
            if isinstance(child, ops.CreateIndexOp | ops.DropIndexOp):
                names.add(str(child.index_name))
    return names


def _enum_changes(
    previous: sa.MetaData | None, metadata: sa.MetaData
) -> tuple[list[sa.Enum], list[sa.Enum]]:
    before = {e.name: e for e in iter_enum_types(previous)} if previous else {}
    after = {e.name: e for e in iter_enum_types(metadata)}
    for name in sorted(set(before) & set(after)):
        if list(before[name].enums) != list(after[name].enums):
            log.warning(
                "enum_values_changed",
                enum=name,
                before=list(before[name].enums),
                after=list(after[name].enums),
            )
    created = [after[name] for name in after if name not in before]
    dropped = [before[name] for name in before if name not in after]
    return created, dropped


def _enum_variable(name: str) -> str:
    return "enum_" + re.sub(r"\W", "_", name, flags=re.ASCII)


def _render_item(type_: str, obj: Any, context: AutogenContext) -> str | bool:
    if type_ == "type" and isinstance(obj, sa.Enum) and obj.name:
        return _enum_variable(obj.name)
    if type_ == "server_default":
        return _render_server_default(obj)
    return False


# helpers a revision defines when its operations need them
_HELPERS = {
    "_postgresql_default(": [
        "def _postgresql_default(default: sa.TextClause) -> sa.TextClause | None:",
        '    """The default on PostgreSQL; the others lack the function it calls."""',
        '    if op.get_context().dialect.name == "postgresql":',
        "        return default",
        "    return None",
    ],
    "_deferrable(": [
        "def _deferrable() -> bool | None:",
        '    """MariaDB has no deferrable constraints: it checks keys at once."""',
        '    return None if op.get_context().dialect.name == "mysql" else True',
    ],
    "_initially(": [
        "def _initially(when: str) -> str | None:",
        '    """When a deferrable key is checked; MariaDB checks it at once."""',
        '    return None if op.get_context().dialect.name == "mysql" else when',
    ],
}
_HELPERS["_on_mariadb("] = [
    "def _on_mariadb(value: bool) -> bool | None:",
    '    """Only MariaDB\'s ALTER reads a column\'s autoincrement; others warn."""',
    '    return value if op.get_context().dialect.name == "mysql" else None',
]
_NULLS_ORDER = re.compile(r"sa\.literal_column\(('[^']* NULLS (?:FIRST|LAST)')\)")
_HELPERS["_sort_key("] = [
    "def _sort_key(key: str) -> sa.ColumnElement[object]:",
    '    """An index key; only PostgreSQL indexes take NULLS FIRST or LAST."""',
    '    if op.get_context().dialect.name != "postgresql":',
    '        key = key.rsplit(" NULLS ", 1)[0]',
    "    return sa.literal_column(key)",
]
_DEFERRABILITY = [
    ("deferrable=True", "deferrable=_deferrable()"),
    ("initially='DEFERRED'", "initially=_initially('DEFERRED')"),
    ("initially='IMMEDIATE'", "initially=_initially('IMMEDIATE')"),
]


def _portable_deferrability(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = _NULLS_ORDER.sub(r"_sort_key(\1)", line)
        for literal, call in _DEFERRABILITY:
            line = line.replace(literal, call)
        out.append(line)
    return out


def _render_server_default(default: Any) -> str | bool:
    if isinstance(default, sa.DefaultClause):
        default = default.arg
    if isinstance(default, TextClause):
        if postgresql_only_default(default.text):
            return f"_postgresql_default(sa.text({default.text!r}))"
        return f"sa.text({default.text!r})"
    if isinstance(default, sa.sql.elements.True_):
        return "sa.true()"
    if isinstance(default, sa.sql.elements.False_):
        return "sa.false()"
    if isinstance(default, FunctionElement) and not list(default.clauses):
        return f"sa.func.{default.name}()"  # type: ignore[attr-defined]
    return False


def _render_ops(operations: ops.UpgradeOps | ops.DowngradeOps) -> list[str]:
    context = MigrationContext.configure(dialect=postgresql.dialect())
    code = render_python_code(
        operations,
        render_as_batch=True,
        render_item=_render_item,
        migration_context=context,
    )
    lines = [line for line in code.splitlines() if not line.strip().startswith("# ###")]
    lines = _portable_deferrability(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


_ON_POSTGRESQL = 'if op.get_context().dialect.name == "postgresql":'
_BIND_LIKE = re.compile(r"(?<![:\w\\]):(?=\w)")


def _sql_call(statement: str, indent: str) -> list[str]:
    # sa.text() would read `:name` as a bind parameter: escape it
    escaped = _BIND_LIKE.sub(r"\\:", statement)
    pieces = escaped.splitlines(keepends=True) or [""]
    if len(pieces) == 1 and len(indent) + len(repr(pieces[0])) < 70:
        return [f"{indent}op.execute(sa.text({pieces[0]!r}))"]
    return [
        f"{indent}op.execute(",
        f"{indent}    sa.text(",
        *(f"{indent}        {piece!r}" for piece in pieces),
        f"{indent}    )",
        f"{indent})",
    ]


def _postgresql_block(lines: list[str]) -> list[str]:
    if not lines:
        return []
    return [f"    {_ON_POSTGRESQL}", *lines]


def _step_lines(steps: list[SqlStep], *, up: bool) -> list[str]:
    lines: list[str] = []
    for step in steps:
        lines.append(f"        # {step.subject}")
        for statement in step.up if up else step.down:
            lines.extend(_sql_call(statement, " " * 8))
    return _postgresql_block(lines)


def _enum_lines(enums: list[sa.Enum], action: str) -> list[str]:
    return _postgresql_block(
        [
            f"        {_enum_variable(e.name)}.{action}"
            "(op.get_bind(), checkfirst=False)"
            for e in enums
        ]
    )


class KeepForeignKeyIndexOp(ops.MigrateOperation):
    """On MariaDB, give a foreign key its own index before one it used goes.

    MariaDB drops the index it made for a foreign key as soon as another index
    can serve it, and then refuses to drop that other index.
    """

    def __init__(self, table_name: str, name: str, columns: list[str]) -> None:
        self.table_name = table_name
        self.name = name
        self.columns = columns

    def reverse(self) -> KeepForeignKeyIndexOp:
        return self


@renderers.dispatch_for(KeepForeignKeyIndexOp)
def _render_keep_foreign_key_index(
    context: AutogenContext, op: KeepForeignKeyIndexOp
) -> list[str]:
    return [
        'if op.get_context().dialect.name == "mysql":',
        f"    op.create_index({op.name!r}, {op.table_name!r}, {op.columns!r}, "
        "if_not_exists=True)",
        # the printer leaves the block on an empty line
        "",
    ]


def _keep_foreign_key_indexes(
    container: ops.UpgradeOps | ops.DowngradeOps, metadatas: list[sa.MetaData]
) -> None:
    dropped = {o.table_name for o in container.ops if isinstance(o, ops.DropTableOp)}
    kept: list[ops.MigrateOperation] = []
    for operation in container.ops:
        children = (
            operation.ops if isinstance(operation, ops.ModifyTableOps) else [operation]
        )
        for child in children:
            if isinstance(child, ops.DropIndexOp) and child.table_name not in dropped:
                kept.extend(_foreign_key_guards(child, metadatas))
        kept.append(operation)
    container.ops = kept


def _foreign_key_guards(
    drop: ops.DropIndexOp, metadatas: list[sa.MetaData]
) -> list[KeepForeignKeyIndexOp]:
    if drop._reverse is None:
        return []
    leading = [str(getattr(c, "name", c)) for c in drop._reverse.columns]
    guards: dict[str, KeepForeignKeyIndexOp] = {}
    for metadata in metadatas:
        table = metadata.tables.get(drop.table_name)
        if table is None:
            continue
        for fk in table.foreign_key_constraints:
            columns = list(fk.column_keys)
            if fk.name and leading[: len(columns)] == columns:
                name = str(fk.name)
                guards[name] = KeepForeignKeyIndexOp(drop.table_name, name, columns)
    return [guards[name] for name in sorted(guards)]


def _without_dropped_table_indexes(downgrade_ops: ops.DowngradeOps) -> None:
    # dropping a table drops its indexes; MariaDB refuses to drop first an
    # index that one of the table's foreign keys needs
    dropped = {
        op.table_name for op in downgrade_ops.ops if isinstance(op, ops.DropTableOp)
    }
    kept: list[ops.MigrateOperation] = []
    for op in downgrade_ops.ops:
        if isinstance(op, ops.DropIndexOp) and op.table_name in dropped:
            continue
        if isinstance(op, ops.ModifyTableOps) and op.table_name in dropped:
            op.ops = [o for o in op.ops if not isinstance(o, ops.DropIndexOp)]
            if not op.ops:
                continue
        kept.append(op)
    downgrade_ops.ops = kept


def _render(
    upgrade_ops: ops.UpgradeOps,
    metadata: sa.MetaData,
    *,
    created: list[sa.Enum],
    dropped: list[sa.Enum],
    steps: PostgresqlSteps,
    previous_metadatas: list[sa.MetaData],
    revision_id: str,
    down_revision: str | None,
    task_id: str,
    title: str,
) -> str:
    downgrade_ops = upgrade_ops.reverse()
    _without_dropped_table_indexes(downgrade_ops)
    _keep_foreign_key_indexes(upgrade_ops, [metadata, *previous_metadatas])
    _keep_foreign_key_indexes(downgrade_ops, [metadata, *previous_metadatas])
    upgrade_lines = [
        *_enum_lines(created, "create"),
        *_step_lines(list(steps.before), up=True),
        *(_render_ops(upgrade_ops) if upgrade_ops.ops else []),
        *_step_lines(list(steps.after), up=True),
        *_enum_lines(dropped, "drop"),
    ]
    downgrade_lines = [
        *_enum_lines(dropped, "create"),
        *_step_lines(list(reversed(steps.after)), up=False),
        *(_render_ops(downgrade_ops) if downgrade_ops.ops else []),
        *_step_lines(list(reversed(steps.before)), up=False),
        *_enum_lines(created, "drop"),
    ]
    enums = {e.name: e for e in [*iter_enum_types(metadata), *dropped]}
    module_objects = [
        f"{_enum_variable(name)} = postgresql.ENUM("
        + ", ".join(
            [*(repr(v) for v in enum.enums), f"name={name!r}", "create_type=False"]
        )
        + ")"
        for name, enum in enums.items()
    ]
    body = "\n".join([*upgrade_lines, *downgrade_lines, *module_objects])
    for marker, helper in _HELPERS.items():
        if marker in body:
            module_objects.append("\n".join(["", *helper]))
    imports = (
        ["from sqlalchemy.dialects import postgresql"] if "postgresql." in body else []
    )
    template = string.Template(
        resources.files("sparc.agents.hephaestus")
        .joinpath("templates/revision.py.tmpl")
        .read_text(encoding="utf-8")
    )
    return template.substitute(
        title=title,
        revision=revision_id,
        down_revision=down_revision or "<base>",
        task_id=task_id,
        imports="".join(f"{line}\n" for line in imports),
        revision_literal=repr(revision_id),
        down_revision_literal=repr(down_revision),
        module_objects="".join(f"\n{line}\n" for line in module_objects),
        upgrade_body="\n".join(upgrade_lines) or "    pass",
        downgrade_body="\n".join(downgrade_lines) or "    pass",
    )
