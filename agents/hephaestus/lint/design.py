"""Schema design rules, judged on a SchemaSpec alone.

Each check favours precision: a finding must be one a database engineer would
act on. Partitioned parents are spared the foreign-key checks because their
keys and indexes may live on the partitions, which a SchemaSpec does not carry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS
from sqlalchemy.dialects.mysql.reserved_words import (
    RESERVED_WORDS_MARIADB,
    RESERVED_WORDS_MYSQL,
)

from sparc.agents.hephaestus.lint.rules import make_finding
from sparc.agents.hephaestus.lint.sources import (
    column_key,
    foreign_key_key,
    index_key,
    table_key,
    unique_key,
)
from sparc.agents.hephaestus.spec import (
    ColumnType,
    ForeignKey,
    Index,
    SchemaSpec,
    Table,
)
from sparc.engines import Finding

DEFAULT_TARGETS: tuple[str, ...] = ("postgresql", "sqlite")
MAX_IDENTIFIER_BYTES = 63

# PostgreSQL keywords that cannot name a table or column unquoted.
_POSTGRESQL_RESERVED = frozenset(RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)
_MARIADB_RESERVED = frozenset(
    word.lower() for word in RESERVED_WORDS_MARIADB | RESERVED_WORDS_MYSQL
)

_SIMPLE_NAME = re.compile(r"[a-z_][a-z0-9_$]*")
_MONEY_WORDS = frozenset(
    {
        "amount",
        "balance",
        "budget",
        "charge",
        "cost",
        "credit",
        "debit",
        "discount",
        "expense",
        "fee",
        "income",
        "paid",
        "payment",
        "price",
        "refund",
        "revenue",
        "salary",
        "subtotal",
        "tax",
        "total",
        "wage",
    }
)
_RATE_WORDS = frozenset({"rate", "ratio", "percent", "percentage", "pct", "factor"})
_FLOATS = frozenset({"real", "double"})
_STRINGS = frozenset({"varchar", "char", "text"})
_INTEGERS = frozenset({"smallint", "integer", "bigint"})
_TEMPORAL_NAME = re.compile(r"(^|_)(date|datetime|timestamp)$|_(at|time)$")
_BOOLEAN_NAME = re.compile(
    r"^(is|has|can|should|allow|allows)_|_flag$|^(active|enabled|deleted|verified)$"
)
_LIST_NAMES = frozenset(
    {"tags", "labels", "keywords", "categories", "roles", "permissions", "aliases"}
)
_LIST_SUFFIX = re.compile(r"_(ids|list|csv|tags)$")
_NUMBERED = re.compile(r"^([a-z][a-z_]*?[a-z])_?(\d+)$")
# ordered parts of one postal address, not a repeated attribute
_ADDRESS_PARTS = re.compile(r"(address|addr|street|line)$")
_AUDIT_COLUMNS = frozenset(
    {
        "created",
        "updated",
        "modified",
        "created_at",
        "updated_at",
        "modified_at",
        "created_on",
        "updated_on",
        "last_update",
        "last_updated",
    }
)
# words whose plural and singular agree, or that are not countable
_NUMBERLESS = frozenset(
    {"data", "metadata", "news", "series", "species", "status", "staff", "media"}
)


def lint_design(
    spec: SchemaSpec,
    *,
    locations: Mapping[str, str] | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
) -> list[Finding]:
    """Run every design rule over `spec`.

    Args:
        spec: the schema to judge.
        locations: `file:line` per object key (see `lint.sources`); objects
            without one are located as `table` or `table.column`.
        targets: dialects the schema must run on; reserved words and VARCHAR
            lengths depend on them.

    Returns:
        The findings, in no particular order.
    """
    where = _Locator(locations or {})
    dialects = {target.lower() for target in targets}
    findings: list[Finding] = []
    for check in _TABLE_CHECKS:
        for table in spec.tables:
            findings.extend(check(spec, table, where, dialects))
    findings.extend(_missing_foreign_keys(spec, where))
    findings.extend(_mixed_plurals(spec, where))
    findings.extend(_mixed_case(spec, where))
    return findings


@dataclass(frozen=True)
class _Locator:
    locations: Mapping[str, str]

    def __call__(self, key: str, fallback: str) -> str:
        return self.locations.get(key) or fallback

    def table(self, table: str) -> str:
        return self(table_key(table), table)

    def column(self, table: str, column: str) -> str:
        return self(column_key(table, column), f"{table}.{column}")

    def index(self, table: str, name: str) -> str:
        return self(index_key(table, name), table)

    def foreign_key(self, table: str, fk: ForeignKey) -> str:
        return self(
            foreign_key_key(table, fk.columns),
            self.column(table, fk.columns[0]),
        )


_Check = Callable[[SchemaSpec, Table, _Locator, set[str]], Iterator[Finding]]


def _resolved(spec: SchemaSpec, column_type: ColumnType) -> ColumnType:
    if column_type.kind == "domain" and column_type.name:
        domain = spec.domain(column_type.name)
        if domain is not None:
            return domain.type
    return column_type


def _sql_name(name: str) -> str:
    """A name as it must be written in PostgreSQL SQL, quoted when needed."""
    if _SIMPLE_NAME.fullmatch(name) and name not in _POSTGRESQL_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _words(name: str) -> set[str]:
    return set(name.lower().split("_"))


# -- wrong data types ----------------------------------------------------------


def _data_types(
    spec: SchemaSpec, table: Table, where: _Locator, dialects: set[str]
) -> Iterator[Finding]:
    for column in table.columns:
        column_type = _resolved(spec, column.type)
        name = column.name.lower()
        words = _words(name)
        location = where.column(table.name, column.name)
        label = f"{table.name}.{column.name}"
        if column_type.kind in _FLOATS and column_type.dimensions == 0:
            spelled = "REAL" if column_type.kind == "real" else "DOUBLE PRECISION"
            if words & _RATE_WORDS:
                yield make_finding(
                    "HD202", f"{label} is a rate stored as {spelled}", location
                )
            elif words & _MONEY_WORDS:
                yield make_finding(
                    "HD201",
                    f"{label} looks like money but is stored as {spelled}",
                    location,
                    hint=f"use NUMERIC(12, 2) for {label} (Mapped[Decimal]), or "
                    "integer minor units",
                )
        if column_type.kind in _STRINGS and _TEMPORAL_NAME.search(name):
            yield make_finding(
                "HD203",
                f"{label} is named like a date or time but stored as "
                f"{column_type.kind.upper()}",
                location,
            )
        if (
            column_type.kind == "varchar"
            and column_type.length is None
            and dialects & {"mariadb", "mysql"}
        ):
            yield make_finding(
                "HD204", f"{label} is VARCHAR without a length", location
            )
        if (
            column_type.kind in ("char", "varchar")
            and column_type.length == 1
            and _BOOLEAN_NAME.search(name)
        ):
            yield make_finding(
                "HD205",
                f"{label} is a flag stored as {column_type.kind.upper()}(1)",
                location,
            )


# -- missing constraints -------------------------------------------------------


def _primary_key(
    spec: SchemaSpec, table: Table, where: _Locator, dialects: set[str]
) -> Iterator[Finding]:
    if table.primary_key is None:
        yield make_finding(
            "HD301", f"table {table.name} has no primary key", where.table(table.name)
        )


def _link_columns(spec: SchemaSpec, table: Table) -> list[str] | None:
    """FK columns of a many-to-many link table, or None when it is not one.

    A link table has two or more single-column foreign keys, nothing else but
    a surrogate key and audit timestamps, and no table references it (a
    referenced row is an entity of its own, like a rental's inventory item).
    """
    referenced = any(
        fk.ref_table == table.name
        for other in spec.tables
        if other.name != table.name
        for fk in other.foreign_keys
    )
    if referenced:
        return None
    single = [fk for fk in table.foreign_keys if len(fk.columns) == 1]
    columns = list(dict.fromkeys(fk.columns[0] for fk in single))
    if len(columns) < 2:
        return None
    surrogate = (
        table.primary_key.columns
        if table.primary_key and len(table.primary_key.columns) == 1
        else []
    )
    for column in table.columns:
        if column.name in columns or column.name in surrogate:
            continue
        if column.name.lower() in _AUDIT_COLUMNS:
            continue
        return None
    return columns


def _unique_column_sets(table: Table) -> list[tuple[str, ...]]:
    sets: list[tuple[str, ...]] = []
    if table.primary_key:
        sets.append(tuple(table.primary_key.columns))
    sets.extend(tuple(unique.columns) for unique in table.unique_constraints)
    for index in table.indexes:
        columns = _plain_columns(index)
        if index.unique and index.where is None and columns is not None:
            sets.append(columns)
    return sets


def _link_tables(
    spec: SchemaSpec, table: Table, where: _Locator, dialects: set[str]
) -> Iterator[Finding]:
    columns = _link_columns(spec, table)
    if columns is None:
        return

    if not any(set(unique) <= set(columns) for unique in _unique_column_sets(table)):
        pair = ", ".join(columns)
        yield make_finding(
            "HD302",
            f"link table {table.name} does not make ({pair}) unique",
            where.table(table.name),
            hint=f"make ({pair}) the primary key of {table.name}, or add "
            f"UNIQUE ({pair})",
        )
    for name in columns:
        column = table.column(name)
        if column is not None and column.nullable:
            yield make_finding(
                "HD303",
                f"link table column {table.name}.{name} allows NULL",
                where.column(table.name, name),
            )
    for fk in table.foreign_keys:
        if len(fk.columns) == 1 and fk.on_delete in (None, "NO ACTION"):
            yield make_finding(
                "HD304",
                f"{table.name}.{fk.columns[0]} references {fk.ref_table} with ON "
                f"DELETE NO ACTION (the default): deleting a {fk.ref_table} row "
                "fails while links to it exist",
                where.foreign_key(table.name, fk),
            )


# -- over-indexing ------------------------------------------------------------------


def _plain_columns(index: Index) -> tuple[str, ...] | None:
    if any(e.column is None for e in index.elements):
        return None
    return tuple(e.column for e in index.elements if e.column is not None)


def _is_plain_btree(index: Index) -> bool:
    return (
        (index.method or "btree") == "btree"
        and not index.include
        and all(
            e.column is not None and e.opclass is None and e.nulls is None
            for e in index.elements
        )
    )


def _same_direction(index: Index, length: int) -> bool:
    """A B-tree scans both ways: all-ascending and all-descending are alike."""
    directions = {e.descending for e in index.elements[:length]}
    return len(directions) <= 1


def _signature(index: Index) -> tuple[object, ...]:
    elements = tuple(
        (
            e.column,
            " ".join((e.expression or "").split()),
            e.descending,
            e.nulls,
            e.opclass,
        )
        for e in index.elements
    )
    predicate = " ".join(index.where.split()) if index.where else None
    return (elements, index.method or "btree", predicate, tuple(index.include))


def _over_indexing(
    spec: SchemaSpec, table: Table, where: _Locator, dialects: set[str]
) -> Iterator[Finding]:
    pk = tuple(table.primary_key.columns) if table.primary_key else None
    uniques = [tuple(unique.columns) for unique in table.unique_constraints]

    if pk is not None:
        for unique in table.unique_constraints:
            if tuple(unique.columns) == pk:
                yield make_finding(
                    "HD401",
                    f"{table.name}: UNIQUE ({', '.join(unique.columns)}) repeats the "
                    "primary key",
                    where(unique_key(table.name, unique.columns), table.name),
                    hint="drop the UNIQUE constraint; the primary key enforces it",
                )

    for position, index in enumerate(table.indexes):
        finding = _redundancy(table, index, position, pk, uniques, where)
        if finding is not None:
            yield finding


def _redundancy(
    table: Table,
    index: Index,
    position: int,
    pk: tuple[str, ...] | None,
    uniques: list[tuple[str, ...]],
    where: _Locator,
) -> Finding | None:
    location = where.index(table.name, index.name)
    columns = _plain_columns(index)
    plain = (
        _is_plain_btree(index)
        and index.where is None
        and columns is not None
        and _same_direction(index, len(index.elements))
    )
    listed = ", ".join(columns or ())

    if plain and pk is not None and columns == pk:
        return make_finding(
            "HD401",
            f"index {index.name} on {table.name} ({listed}) repeats the primary key",
            location,
            hint=f"drop index {index.name}",
        )
    if plain and columns in uniques:
        return make_finding(
            "HD402",
            f"index {index.name} on {table.name} ({listed}) repeats the UNIQUE "
            f"constraint on ({listed})",
            location,
            hint=f"drop index {index.name}; the UNIQUE constraint already indexes it",
        )

    signature = _signature(index)
    for other_position, other in enumerate(table.indexes):
        if other_position == position or _signature(other) != signature:
            continue
        # the unique one of a pair is the one to keep; else the first declared
        keep_other = other.unique and not index.unique
        if keep_other or (other.unique == index.unique and other_position < position):
            return make_finding(
                "HD403",
                f"index {index.name} on {table.name} is identical to {other.name}",
                location,
                hint=f"drop index {index.name}",
            )

    if index.unique or not plain or columns is None:
        return None
    for name, longer in _longer_keys(table, pk, uniques, position):
        if len(longer) > len(columns) and longer[: len(columns)] == columns:
            return make_finding(
                "HD404",
                f"index {index.name} on {table.name} ({listed}) is a left prefix of "
                f"{name} ({', '.join(longer)})",
                location,
                hint=f"drop index {index.name}; {name} serves the same lookups",
            )
    return None


def _longer_keys(
    table: Table,
    pk: tuple[str, ...] | None,
    uniques: list[tuple[str, ...]],
    position: int,
) -> Iterator[tuple[str, tuple[str, ...]]]:
    if pk is not None:
        yield "the primary key", pk
    for unique in uniques:
        yield f"UNIQUE ({', '.join(unique)})", unique
    for other_position, other in enumerate(table.indexes):
        columns = _plain_columns(other)
        if (
            other_position != position
            and columns is not None
            and _is_plain_btree(other)
            and other.where is None
        ):
            yield f"index {other.name}", columns


# -- unindexed foreign keys ----------------------------------------------------


def _access_paths(table: Table) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    if table.primary_key:
        paths.append(tuple(table.primary_key.columns))
    paths.extend(tuple(unique.columns) for unique in table.unique_constraints)
    for index in table.indexes:
        columns = _plain_columns(index)
        if (index.method or "btree") == "btree" and index.where is None and columns:
            paths.append(columns)
    return paths


def _unindexed_foreign_keys(
    spec: SchemaSpec, table: Table, where: _Locator, dialects: set[str]
) -> Iterator[Finding]:
    if table.partition_by is not None:
        return
    paths = _access_paths(table)
    for fk in table.foreign_keys:
        wanted = set(fk.columns)
        if any(set(path[: len(fk.columns)]) == wanted for path in paths):
            continue
        listed = ", ".join(fk.columns)
        yield make_finding(
            "HD501",
            f"foreign key {table.name} ({listed}) -> {fk.ref_table} has no index "
            f"on ({listed})",
            where.foreign_key(table.name, fk),
            hint=f"CREATE INDEX {_sql_name(f'ix_{table.name}_' + '_'.join(fk.columns))}"
            f" ON {_sql_name(table.name)} ({', '.join(map(_sql_name, fk.columns))})",
        )


# -- missing foreign keys ------------------------------------------------------


def _singular(name: str) -> str:
    if name in _NUMBERLESS:
        return name
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith(("ss", "us", "is")):
        return name[:-1]
    return name


def _type_family(column_type: ColumnType) -> str:
    if column_type.kind in _INTEGERS:
        return "integer"
    if column_type.kind in _STRINGS:
        return "string"
    return column_type.kind


def _referable_keys(spec: SchemaSpec) -> dict[str, tuple[Table, str]]:
    """Column names that hint at a table: `user_id` -> (users, id)."""
    keys: dict[str, tuple[Table, str]] = {}
    for table in spec.tables:
        if table.primary_key is None or len(table.primary_key.columns) != 1:
            continue
        key = table.primary_key.columns[0]
        names = (
            {f"{table.name}_id", f"{_singular(table.name)}_id"}
            if key == "id"
            else {key}
            if key.endswith("_id")
            else set()
        )
        for name in names:
            keys.setdefault(name, (table, key))
    return keys


def _missing_foreign_keys(spec: SchemaSpec, where: _Locator) -> Iterator[Finding]:
    keys = _referable_keys(spec)
    for table in spec.tables:
        if table.partition_by is not None:
            continue
        referencing = {c for fk in table.foreign_keys for c in fk.columns}
        own_key = table.primary_key.columns if table.primary_key else []
        for column in table.columns:
            if column.name in referencing:
                continue
            target = _reference_target(column.name, keys)
            if target is None:
                continue
            parent, key = target
            if parent.name == table.name and column.name in own_key:
                continue
            parent_column = parent.column(key)
            if parent_column is None or _type_family(
                _resolved(spec, parent_column.type)
            ) != _type_family(_resolved(spec, column.type)):
                continue
            yield make_finding(
                "HD101",
                f"{table.name}.{column.name} looks like a reference to "
                f"{parent.name}.{key} but has no foreign key",
                where.column(table.name, column.name),
                hint=f"add FOREIGN KEY ({_sql_name(column.name)}) REFERENCES "
                f"{_sql_name(parent.name)} ({_sql_name(key)}) to {table.name}",
            )


def _reference_target(
    name: str, keys: Mapping[str, tuple[Table, str]]
) -> tuple[Table, str] | None:
    if name in keys:
        return keys[name]
    # role-prefixed references such as manager_staff_id -> staff_id
    matches = {key: target for key, target in keys.items() if name.endswith(f"_{key}")}
    if len(matches) == 1:
        return next(iter(matches.values()))
    if matches:
        longest = max(matches, key=len)
        return matches[longest]
    return None


# -- naming --------------------------------------------------------------------


def _naming(
    spec: SchemaSpec, table: Table, where: _Locator, dialects: set[str]
) -> Iterator[Finding]:
    names: list[tuple[str, str, str]] = [("table", table.name, where.table(table.name))]
    names.extend(
        ("column", f"{table.name}.{c.name}", where.column(table.name, c.name))
        for c in table.columns
    )
    for kind, label, location in names:
        identifier = label.rsplit(".", 1)[-1]
        reserved_in = _reserved_in(identifier, dialects)
        if reserved_in:
            yield make_finding(
                "HD601",
                f"{kind} {label}: {identifier!r} is a reserved word in "
                f"{' and '.join(reserved_in)}",
                location,
            )
        if len(identifier.encode()) > MAX_IDENTIFIER_BYTES:
            yield make_finding(
                "HD602",
                f"{kind} name {label} is {len(identifier.encode())} bytes long",
                location,
            )
    for index in table.indexes:
        if len(index.name.encode()) > MAX_IDENTIFIER_BYTES:
            yield make_finding(
                "HD602",
                f"index name {index.name} on {table.name} is "
                f"{len(index.name.encode())} bytes long",
                where.index(table.name, index.name),
            )


def _reserved_in(identifier: str, dialects: set[str]) -> list[str]:
    word = identifier.lower()
    found: list[str] = []
    if "postgresql" in dialects and word in _POSTGRESQL_RESERVED:
        found.append("PostgreSQL")
    if dialects & {"mariadb", "mysql"} and word in _MARIADB_RESERVED:
        found.append("MariaDB/MySQL")
    return found


def _is_plural(name: str) -> bool | None:
    last = name.lower().rsplit("_", 1)[-1]
    if last in _NUMBERLESS or not last.isalpha():
        return None
    return _singular(last) != last


def _mixed_plurals(spec: SchemaSpec, where: _Locator) -> Iterator[Finding]:
    styles = [(table, _is_plural(table.name)) for table in spec.tables]
    plural = [table for table, style in styles if style is True]
    singular = [table for table, style in styles if style is False]
    if not plural or not singular:
        return
    first_is_plural = next(style for _, style in styles if style is not None)
    if len(plural) > len(singular) or (
        len(plural) == len(singular) and first_is_plural
    ):
        minority, majority, style = singular, plural, "singular"
    else:
        minority, majority, style = plural, singular, "plural"
    for table in minority:
        yield make_finding(
            "HD603",
            f"table {table.name} is {style} while {len(majority)} of "
            f"{len(styles)} tables are not",
            where.table(table.name),
        )


def _mixed_case(spec: SchemaSpec, where: _Locator) -> Iterator[Finding]:
    names = [(table.name, where.table(table.name)) for table in spec.tables]
    for table in spec.tables:
        names.extend(
            (f"{table.name}.{c.name}", where.column(table.name, c.name))
            for c in table.columns
        )
    lower = [label for label, _ in names if label == label.lower()]
    if not lower:
        return
    for label, location in names:
        identifier = label.rsplit(".", 1)[-1]
        if identifier != identifier.lower():
            yield make_finding(
                "HD604",
                f"{label} is in mixed case while the rest of the schema is lower case",
                location,
            )


# -- normalization -------------------------------------------------------------


def _normalization(
    spec: SchemaSpec, table: Table, where: _Locator, dialects: set[str]
) -> Iterator[Finding]:
    names = [column.name for column in table.columns]
    groups: dict[str, dict[int, str]] = {}
    for name in names:
        match = _NUMBERED.match(name.lower())
        if match:
            groups.setdefault(match.group(1), {})[int(match.group(2))] = name
    for stem, members in groups.items():
        if stem.lower() in (n.lower() for n in names):
            members.setdefault(1, next(n for n in names if n.lower() == stem))
        numbers = sorted(members)
        consecutive = numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        if (
            len(members) < 2
            or numbers[0] not in (0, 1)
            or not consecutive
            or len(stem.strip("_")) < 3
            or _ADDRESS_PARTS.search(stem.strip("_"))
        ):
            continue
        columns = [members[number] for number in numbers]
        yield make_finding(
            "HD701",
            f"{table.name} repeats {stem.strip('_')} in columns {', '.join(columns)}",
            where.column(table.name, columns[0]),
            hint=f"move {stem.strip('_')} into a child table of {table.name} with "
            "one row per value",
        )

    for column in table.columns:
        column_type = _resolved(spec, column.type)
        name = column.name.lower()
        if column_type.kind not in _STRINGS or column_type.dimensions:
            continue
        if name in _LIST_NAMES or _LIST_SUFFIX.search(name):
            yield make_finding(
                "HD702",
                f"{table.name}.{column.name} is {column_type.kind.upper()} and "
                "named like a list of values",
                where.column(table.name, column.name),
            )


_TABLE_CHECKS: tuple[_Check, ...] = (
    _data_types,
    _primary_key,
    _link_tables,
    _over_indexing,
    _unindexed_foreign_keys,
    _naming,
    _normalization,
)
