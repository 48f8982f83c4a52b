"""Identity columns' sequence options: PostgreSQL's defaults, the normal form, SQL.

An identity column owns a sequence whose options (start, increment, bounds,
cycle, cache) PostgreSQL fills in from the column's type and the sign of the
increment. A SchemaSpec keeps only the options that differ from those
defaults (`identity_options`), so the DDL reader, the models renderer and the
catalog reader agree on one spelling whatever the input wrote out.

A revision that changes an existing column's identity runs SQL on PostgreSQL
(`identity_change`): SQLite, where revisions are computed, has no identity to
compare. Where a change moves the start or narrows the bounds, a sequence that
has handed out no value yet is restarted so that it numbers as its new options
say; one already in use keeps its position. Positions are data: they move
only where a column that holds values gets a new sequence, past those values.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

from sparc.agents.hephaestus.spec import Column, IdentityOptions, SchemaSpec, Table

__all__ = [
    "IDENTITY_KINDS",
    "IdentityChange",
    "SequenceSettings",
    "identity_arguments",
    "identity_change",
    "identity_changes",
    "identity_clause",
    "identity_mappings",
    "identity_options",
    "identity_range",
    "identity_sequence_name",
    "number_past_values",
    "option_problem",
    "options_from_sa",
    "position_after",
    "sequence_settings",
    "without_sqlite_identity",
]

# the integer types an identity column can have, with their ranges
IDENTITY_KINDS: dict[str, tuple[int, int]] = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
# PostgreSQL truncates identifiers beyond this many bytes
_MAX_NAME_BYTES = 63
_PREPARER = postgresql.dialect().identifier_preparer


@dataclass(frozen=True)
class SequenceSettings:
    """Every option of an identity column's sequence, defaults filled in."""

    start: int
    increment: int
    minvalue: int
    maxvalue: int
    cycle: bool
    cache: int


@dataclass(frozen=True)
class IdentityChange:
    """PostgreSQL statements that take a column's identity from one form to another.

    `ahead` changes run before a revision's table operations on upgrade (a
    dropped identity: PostgreSQL refuses DROP NOT NULL on an identity column),
    the others after them (the column and its new type exist by then).
    """

    up: tuple[str, ...]
    down: tuple[str, ...]
    subject: str
    ahead: bool = False


def identity_range(kind: str) -> tuple[int, int]:
    """The values an identity column of type `kind` can take."""
    # PostgreSQL refuses identity on other types; bigint's range is the widest
    return IDENTITY_KINDS.get(kind, IDENTITY_KINDS["bigint"])


def sequence_settings(kind: str, options: IdentityOptions | None) -> SequenceSettings:
    """The sequence PostgreSQL makes for an identity column of type `kind`."""
    given = options or IdentityOptions()
    low, high = identity_range(kind)
    increment = given.increment if given.increment is not None else 1
    ascending = increment > 0
    minvalue = given.minvalue
    if minvalue is None:
        minvalue = 1 if ascending else low
    maxvalue = given.maxvalue
    if maxvalue is None:
        maxvalue = high if ascending else -1
    start = given.start
    if start is None:
        start = minvalue if ascending else maxvalue
    return SequenceSettings(
        start=start,
        increment=increment,
        minvalue=minvalue,
        maxvalue=maxvalue,
        cycle=given.cycle,
        cache=given.cache if given.cache is not None else 1,
    )


def identity_options(
    kind: str,
    *,
    start: int | None = None,
    increment: int | None = None,
    minvalue: int | None = None,
    maxvalue: int | None = None,
    cycle: bool = False,
    cache: int | None = None,
) -> IdentityOptions | None:
    """The normal form of an identity's options: only those that differ.

    Values equal to what PostgreSQL would choose for a column of type `kind`
    are left out (a start equal to the default bound, an increment of 1, a
    cache of 1, ...); None when nothing is left.
    """
    given = IdentityOptions(
        start=start,
        increment=increment,
        minvalue=minvalue,
        maxvalue=maxvalue,
        cycle=cycle,
        cache=cache,
    )
    settings = sequence_settings(kind, given)
    defaults = sequence_settings(kind, IdentityOptions(increment=settings.increment))
    bounds = sequence_settings(
        kind,
        IdentityOptions(
            increment=settings.increment,
            minvalue=settings.minvalue,
            maxvalue=settings.maxvalue,
        ),
    )
    normal = IdentityOptions(
        start=None if settings.start == bounds.start else settings.start,
        increment=None if settings.increment == 1 else settings.increment,
        minvalue=None if settings.minvalue == defaults.minvalue else settings.minvalue,
        maxvalue=None if settings.maxvalue == defaults.maxvalue else settings.maxvalue,
        cycle=settings.cycle,
        cache=None if settings.cache == 1 else settings.cache,
    )
    return None if normal == IdentityOptions() else normal


def option_problem(kind: str, options: IdentityOptions | None) -> str | None:
    """Why PostgreSQL would refuse these options on a `kind` column, if it would."""
    settings = sequence_settings(kind, options)
    low, high = identity_range(kind)
    if settings.increment == 0:
        return "INCREMENT must not be zero"
    for label, value in (
        ("MINVALUE", settings.minvalue),
        ("MAXVALUE", settings.maxvalue),
    ):
        if not low <= value <= high:
            return f"{label} ({value}) is out of range for type {kind}"
    if settings.minvalue >= settings.maxvalue:
        return (
            f"MINVALUE ({settings.minvalue}) must be less than MAXVALUE "
            f"({settings.maxvalue})"
        )
    if not settings.minvalue <= settings.start <= settings.maxvalue:
        return (
            f"START WITH ({settings.start}) must lie between MINVALUE "
            f"({settings.minvalue}) and MAXVALUE ({settings.maxvalue})"
        )
    if settings.cache < 1:
        return f"CACHE ({settings.cache}) must be at least 1"
    return None


def _option_clauses(options: IdentityOptions | None) -> list[str]:
    if options is None:
        return []
    clauses = []
    if options.start is not None:
        clauses.append(f"START WITH {options.start}")
    if options.increment is not None:
        clauses.append(f"INCREMENT BY {options.increment}")
    if options.minvalue is not None:
        clauses.append(f"MINVALUE {options.minvalue}")
    if options.maxvalue is not None:
        clauses.append(f"MAXVALUE {options.maxvalue}")
    if options.cache is not None:
        clauses.append(f"CACHE {options.cache}")
    if options.cycle:
        clauses.append("CYCLE")
    return clauses


def identity_clause(column: Column) -> str:
    """`GENERATED ... AS IDENTITY (...)` for an identity column, options included."""
    when = "ALWAYS" if column.identity == "always" else "BY DEFAULT"
    clauses = _option_clauses(column.identity_options)
    options = f" ({' '.join(clauses)})" if clauses else ""
    return f"GENERATED {when} AS IDENTITY{options}"


def identity_arguments(column: Column) -> str:
    """The arguments of `sa.Identity(...)`, in the order SQLAlchemy lists them."""
    arguments = [f"always={column.identity == 'always'}"]
    options = column.identity_options
    if options is not None:
        for name in ("start", "increment", "minvalue", "maxvalue"):
            value = getattr(options, name)
            if value is not None:
                arguments.append(f"{name}={value}")
        if options.cycle:
            arguments.append("cycle=True")
        if options.cache is not None:
            arguments.append(f"cache={options.cache}")
    return ", ".join(arguments)


def options_from_sa(kind: str, identity: sa.Identity) -> IdentityOptions | None:
    """The normal-form options of a SQLAlchemy `Identity` on a `kind` column."""
    return identity_options(
        kind,
        start=identity.start,
        increment=identity.increment,
        minvalue=None if identity.nominvalue else identity.minvalue,
        maxvalue=None if identity.nomaxvalue else identity.maxvalue,
        cycle=bool(identity.cycle),
        cache=identity.cache,
    )


def identity_sequence_name(table: str, column: str) -> str:
    """The name PostgreSQL gives the sequence of `table.column` when it is free.

    Like PostgreSQL, the longer of the two names is shortened, a byte at a
    time, until `<table>_<column>_seq` fits in 63 bytes.
    """
    first, second = table.encode(), column.encode()
    room = _MAX_NAME_BYTES - len("_seq") - 1
    first_length, second_length = len(first), len(second)
    while first_length + second_length > room:
        if first_length > second_length:
            first_length -= 1
        else:
            second_length -= 1
    head = first[:first_length].decode(errors="ignore")
    tail = second[:second_length].decode(errors="ignore")
    return f"{head}_{tail}_seq"


def identity_mappings(table: Table) -> list[str]:
    """Where SQLite and MariaDB take the nearest form of the table's identities."""
    lines: list[str] = []
    key = table.primary_key.columns if table.primary_key else []
    for column in table.columns:
        if column.identity is None:
            continue
        where = f"{table.name}.{column.name}"
        if key != [column.name]:
            lines.append(
                f"sqlite, mariadb: identity column {where} is a plain integer "
                "(they number only a one-column integer key); insert its values "
                "explicitly"
            )
        elif column.identity_options is not None:
            clauses = " ".join(_option_clauses(column.identity_options))
            lines.append(
                f"sqlite, mariadb: identity key {where} numbers from 1 by 1 there "
                f"(its {clauses} is PostgreSQL's)"
            )
    return lines


def identity_changes(previous: SchemaSpec, spec: SchemaSpec) -> list[IdentityChange]:
    """The identity changes of the columns `previous` and `spec` share, in order."""
    changes = []
    for table in spec.tables:
        earlier = previous.table(table.name)
        if earlier is None:
            continue
        for column in table.columns:
            old = earlier.column(column.name)
            if old is None:
                continue
            change = identity_change(
                table.name,
                old,
                column,
                key_serials=(_key_serial(earlier, old), _key_serial(table, column)),
            )
            if change is not None:
                changes.append(change)
    return changes


def identity_change(
    table: str,
    before: Column,
    after: Column,
    *,
    key_serials: tuple[bool, bool] = (False, False),
    restart_unused: bool = True,
) -> IdentityChange | None:
    """The statements that take `table`'s column from `before` to `after`'s identity.

    Both columns are the same column (after any rename); None when their
    identities agree. A changed kind or option is `SET ...` of what differs.
    An identity added to a column that holds values numbers on after the
    highest (lowest, counting down) of them. `key_serials` tells, for each
    side, whether the column is a serial key whose sequence the models make
    themselves (SERIAL), which the change then replaces; other serial
    columns' sequences are the revision's own steps. With `restart_unused`,
    a change of start or a narrower range restarts a sequence that has handed
    out no value yet (a PL/pgSQL block); without it the SET is plain SQL.
    """
    # a type change alone needs nothing: PostgreSQL moves the sequence to the
    # new type and its default bounds with it
    if (before.identity, before.identity_options) == (
        after.identity,
        after.identity_options,
    ):
        return None
    target = f"ALTER TABLE {_quote(table)} ALTER COLUMN {_quote(after.name)}"
    subject = f"identity of {table}.{after.name}"
    if before.identity is None:
        return IdentityChange(
            _add_identity(table, before, after, key_serial=key_serials[0]),
            _drop_identity(table, after, before, key_serial=key_serials[0]),
            subject,
        )
    if after.identity is None:
        return IdentityChange(
            _drop_identity(table, before, after, key_serial=key_serials[1]),
            _add_identity(table, after, before, key_serial=key_serials[1]),
            subject,
            ahead=True,
        )

    up = _set_identity(table, target, before, after, restart_unused=restart_unused)
    down = _set_identity(table, target, after, before, restart_unused=restart_unused)
    if not up:
        return None
    return IdentityChange(up, down, subject)


def _set_identity(
    table: str, target: str, before: Column, after: Column, *, restart_unused: bool
) -> tuple[str, ...]:
    old = sequence_settings(before.type.kind, before.identity_options)
    new = sequence_settings(after.type.kind, after.identity_options)
    options = after.identity_options or IdentityOptions()
    clauses = []
    if before.identity != after.identity:
        when = "ALWAYS" if after.identity == "always" else "BY DEFAULT"
        clauses.append(f"SET GENERATED {when}")
    if old.increment != new.increment:
        clauses.append(f"SET INCREMENT BY {new.increment}")
    # NO MINVALUE/NO MAXVALUE let PostgreSQL pick the bound for the type and
    # the increment's sign, as it did when the column was made
    if old.minvalue != new.minvalue:
        bound = (
            "NO MINVALUE" if options.minvalue is None else f"MINVALUE {new.minvalue}"
        )
        clauses.append(f"SET {bound}")
    if old.maxvalue != new.maxvalue:
        bound = (
            "NO MAXVALUE" if options.maxvalue is None else f"MAXVALUE {new.maxvalue}"
        )
        clauses.append(f"SET {bound}")
    if old.start != new.start:
        clauses.append(f"SET START WITH {new.start}")
    if old.cache != new.cache:
        clauses.append(f"SET CACHE {new.cache}")
    if old.cycle != new.cycle:
        clauses.append("SET CYCLE" if new.cycle else "SET NO CYCLE")
    if not clauses:
        return ()

    statement = f"{target} {' '.join(clauses)}"
    narrowed = new.minvalue > old.minvalue or new.maxvalue < old.maxvalue
    if not restart_unused or (old.start == new.start and not narrowed):
        return (statement,)
    # the position must lie within the new bounds: an unused sequence restarts
    # at its new start, a used one keeps its place (PostgreSQL refuses the
    # change when that place is out of bounds, rather than renumber data)
    sequence = _literal(_quote(table))
    return (
        "DO $identity$\n"
        "DECLARE\n"
        "    used boolean;\n"
        "BEGIN\n"
        "    EXECUTE 'SELECT is_called FROM ' || pg_get_serial_sequence("
        f"{sequence}, {_literal(after.name)}) INTO used;\n"
        "    IF used THEN\n"
        f"        {statement};\n"
        "    ELSE\n"
        f"        {statement} RESTART;\n"
        "    END IF;\n"
        "END\n"
        "$identity$",
    )


def _add_identity(
    table: str, plain: Column, identity: Column, *, key_serial: bool
) -> tuple[str, ...]:
    target = f"ALTER TABLE {_quote(table)} ALTER COLUMN {_quote(identity.name)}"
    steps = []
    if key_serial:
        sequence = identity_sequence_name(table, plain.name)
        steps += [f"{target} DROP DEFAULT", f"DROP SEQUENCE {_quote(sequence)}"]
    elif plain.nullable:
        # autogenerate leaves an identity column's nullability alone, and
        # PostgreSQL numbers only a NOT NULL column
        steps.append(f"{target} SET NOT NULL")
    steps.append(f"{target} ADD {identity_clause(identity)}")
    steps.append(number_past_values(table, identity))
    return tuple(steps)


def _drop_identity(
    table: str, identity: Column, plain: Column, *, key_serial: bool
) -> tuple[str, ...]:
    target = f"ALTER TABLE {_quote(table)} ALTER COLUMN {_quote(identity.name)}"
    steps = [f"{target} DROP IDENTITY"]
    if key_serial:
        sequence = _quote(identity_sequence_name(table, plain.name))
        regclass = _literal(sequence) + "::regclass"
        steps += [
            f"CREATE SEQUENCE {sequence} AS {plain.type.kind} OWNED BY "
            f"{_quote(table)}.{_quote(plain.name)}",
            f"{target} SET DEFAULT nextval({regclass})",
            number_past_values(table, plain),
        ]
    elif plain.nullable:
        steps.append(f"{target} DROP NOT NULL")
    return tuple(steps)


def number_past_values(table: str, column: Column) -> str:
    """SQL that moves the column's sequence past the values the column holds.

    For an identity or serial column given its sequence while holding rows;
    nothing moves when every value lies before the sequence's start.
    """
    settings = _settings(column)
    name = _quote(column.name)
    if settings.increment > 0:
        extreme, low, high = "max", settings.start, settings.maxvalue
    else:
        extreme, low, high = "min", settings.minvalue, settings.start
    sequence = (
        f"pg_get_serial_sequence({_literal(_quote(table))}, {_literal(column.name)})"
    )
    return (
        f"SELECT setval({sequence}, {extreme}({name})) FROM {_quote(table)} "
        f"HAVING {extreme}({name}) BETWEEN {low} AND {high}"
    )


def position_after(column: Column, values: list[int]) -> int | None:
    """Where the column's sequence goes after `values` were written explicitly.

    The highest value (the lowest, counting down), or None when it lies
    before the sequence's start, which then hands out no written value, or
    outside its bounds, where a sequence cannot be set.
    """
    if not values:
        return None
    settings = _settings(column)
    if settings.increment > 0:
        last = max(values)
        return last if settings.start <= last <= settings.maxvalue else None
    last = min(values)
    return last if settings.minvalue <= last <= settings.start else None


def _settings(column: Column) -> SequenceSettings:
    # a serial column's sequence has the defaults of its type
    options = column.identity_options if column.identity else None
    return sequence_settings(column.type.kind, options)


def _key_serial(table: Table, column: Column) -> bool:
    """Whether the models make this serial column's sequence (a SERIAL key)."""
    key = table.primary_key.columns if table.primary_key else []
    return (
        column.serial
        and key == [column.name]
        and column.type.kind in IDENTITY_KINDS
        and not column.type.dimensions
    )


def without_sqlite_identity(upgrade_ops: ops.UpgradeOps) -> None:
    """Drop the identity changes autogenerate reports against SQLite.

    SQLite has no identity: every identity column of the models looks added
    there. The real changes come from the specs (`identity_changes`).
    """
    kept: list[ops.MigrateOperation] = []
    for operation in upgrade_ops.ops:
        if isinstance(operation, ops.ModifyTableOps):
            for alter in operation.ops:
                if isinstance(alter, ops.AlterColumnOp) and isinstance(
                    alter.modify_server_default, sa.Identity
                ):
                    alter.modify_server_default = False
            operation.ops = [
                o
                for o in operation.ops
                if not isinstance(o, ops.AlterColumnOp) or o.has_changes()
            ]
            if not operation.ops:
                continue
        kept.append(operation)
    upgrade_ops.ops = kept


def _quote(name: str) -> str:
    return _PREPARER.quote(name)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
