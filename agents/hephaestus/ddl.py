"""Read PostgreSQL DDL into a SchemaSpec.

The input is hand-written DDL, pg_dump output, or markdown whose fenced ```sql
blocks hold either. Statements are parsed by pglast (PostgreSQL's own parser)
and applied in order on top of an optional base spec, so a later file can
`ALTER` or index the tables of an earlier one. SELECT/WITH/INSERT/UPDATE/DELETE
statements are kept as queries. Every statement is either applied, ignored on
purpose (see `IGNORED_STATEMENTS`), or refused with a `DDLError` that names it.

Identity columns keep the sequence options that differ from PostgreSQL's
defaults, however they were spelt (pg_dump writes every option out). A
sequence's position is data, not schema: `RESTART` (like `setval`) is ignored.
An identity sequence named otherwise than PostgreSQL would name it is reported
with a warning, since SQLAlchemy's models cannot name it.
"""

from __future__ import annotations

import bisect
import re
import stat
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from pglast import ast, parser
from pglast.enums.parsenodes import (
    AlterTableType,
    ConstrType,
    DropBehavior,
    FunctionParameterMode,
    ObjectType,
    PartitionStrategy,
    SortByDir,
    SortByNulls,
)
from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS
from pglast.stream import RawStream

from sparc.agents.hephaestus.identity import (
    identity_options,
    identity_range,
    identity_sequence_name,
    option_problem,
    sequence_settings,
)
from sparc.agents.hephaestus.spec import (
    CheckConstraint,
    Column,
    ColumnType,
    Domain,
    EnumType,
    ForeignKey,
    IdentityOptions,
    Index,
    IndexElement,
    Partition,
    PrimaryKey,
    ReferentialAction,
    SchemaSpec,
    SqlObject,
    Table,
    TypeKind,
    UniqueConstraint,
)
from sparc.agents.hephaestus.spec_check import check_names
from sparc.errors import DDLError

log = structlog.get_logger(__name__)

__all__ = [
    "IGNORED_ALTER_TABLE_COMMANDS",
    "IGNORED_FUNCTION_CALLS",
    "IGNORED_STATEMENTS",
    "MARKDOWN_SQL_LANGUAGES",
    "MAX_SQL_FILE_BYTES",
    "ParsedSql",
    "Query",
    "Rename",
    "SQL_SUFFIXES",
    "UNTRUSTED_EXTENSIONS",
    "UNTRUSTED_LANGUAGES",
    "apply_renames",
    "parse_file",
    "parse_sql",
    "sql_from_markdown",
]

SQL_SUFFIXES = (".sql",)
# pg_dump of a large schema stays well below this; a bigger file is data.
MAX_SQL_FILE_BYTES = 16 * 1024 * 1024
MARKDOWN_SUFFIXES = (".md", ".markdown")
MARKDOWN_SQL_LANGUAGES = frozenset({"sql", "postgresql", "pgsql", "postgres"})

# Statements that change nothing a SchemaSpec describes. Session settings only
# shape how the rest of a script runs; ownership and privileges belong to the
# roles of the database a schema is deployed to, which sparc does not manage.
IGNORED_STATEMENTS: dict[str, str] = {
    "VariableSetStmt": "SET changes a session setting, not the schema",
    "AlterOwnerStmt": "ownership belongs to the deployment's roles",
    "GrantStmt": "privileges belong to the deployment's roles",
    "GrantRoleStmt": "role membership belongs to the deployment",
    "AlterDefaultPrivilegesStmt": "privileges belong to the deployment's roles",
    "TransactionStmt": "BEGIN/COMMIT only group the statements",
}

# ALTER TABLE subcommands that only touch ownership or physical storage, which
# a SchemaSpec does not describe and a generated migration need not repeat.
IGNORED_ALTER_TABLE_COMMANDS: dict[AlterTableType, str] = {
    AlterTableType.AT_ChangeOwner: "ownership belongs to the deployment's roles",
    AlterTableType.AT_SetStatistics: "planner statistics target is a tuning knob",
    AlterTableType.AT_SetStorage: "column storage is a physical setting",
    AlterTableType.AT_SetCompression: "column compression is a physical setting",
    AlterTableType.AT_ClusterOn: "CLUSTER ordering is a maintenance setting",
    AlterTableType.AT_DropCluster: "CLUSTER ordering is a maintenance setting",
    AlterTableType.AT_SetRelOptions: "storage parameters are physical settings",
    AlterTableType.AT_ResetRelOptions: "storage parameters are physical settings",
    AlterTableType.AT_SetTableSpace: "tablespaces belong to the deployment",
    AlterTableType.AT_ValidateConstraint: "validation changes no definition",
}

# Top-level `SELECT f(...)` calls pg_dump writes that set session state or
# sequence positions (data), not schema.
IGNORED_FUNCTION_CALLS: dict[str, str] = {
    "set_config": "pg_dump sets search_path for the rest of the script",
    "setval": "a sequence's current value is data, not schema",
}

# Code in these languages runs with the database server's rights: a schema
# from outside must not bring it onto the databases sparc verifies with.
UNTRUSTED_LANGUAGES = frozenset(
    {"c", "internal", "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu"}
    | {"plsh", "plr", "plv8u", "pljavau"}
)
UNTRUSTED_EXTENSIONS = UNTRUSTED_LANGUAGES | {
    "adminpack",
    "dblink",
    "file_fdw",
    "postgres_fdw",
}

_QUERY_STATEMENTS = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)

_BUILTIN_KINDS: dict[str, TypeKind] = {
    "int2": "smallint",
    "smallint": "smallint",
    "int4": "integer",
    "int": "integer",
    "integer": "integer",
    "int8": "bigint",
    "bigint": "bigint",
    "numeric": "numeric",
    "decimal": "numeric",
    "float4": "real",
    "real": "real",
    "float8": "double",
    "bool": "boolean",
    "boolean": "boolean",
    "varchar": "varchar",
    "bpchar": "char",
    "text": "text",
    "date": "date",
    "time": "time",
    "timetz": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "interval": "interval",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "jsonb",
    "bytea": "bytea",
    "tsvector": "tsvector",
}
_SERIAL_KINDS: dict[str, TypeKind] = {
    "smallserial": "smallint",
    "serial2": "smallint",
    "serial": "integer",
    "serial4": "integer",
    "bigserial": "bigint",
    "serial8": "bigint",
}
_WITH_TIMEZONE = frozenset({"timetz", "timestamptz"})
_LENGTH_KINDS = frozenset({"varchar", "char"})
_PRECISION_KINDS = frozenset({"time", "timestamp"})

_FK_ACTIONS: dict[str, ReferentialAction | None] = {
    "a": None,
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}
_PARTITION_STRATEGIES = {
    PartitionStrategy.PARTITION_STRATEGY_RANGE: "RANGE",
    PartitionStrategy.PARTITION_STRATEGY_LIST: "LIST",
    PartitionStrategy.PARTITION_STRATEGY_HASH: "HASH",
}
# modes whose parameters are part of a function's identity (DROP FUNCTION f(...))
_IDENTITY_PARAMETER_MODES = frozenset(
    {
        FunctionParameterMode.FUNC_PARAM_IN,
        FunctionParameterMode.FUNC_PARAM_INOUT,
        FunctionParameterMode.FUNC_PARAM_VARIADIC,
        FunctionParameterMode.FUNC_PARAM_DEFAULT,
    }
)
_COMMENT_TOKENS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_QUERY_NAME_COMMENT = re.compile(r"--\s*name\s*:\s*([A-Za-z_][\w.-]*)")
_SIMPLE_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")
_RESERVED_WORDS = frozenset(RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)
# Possessive runs: an info string with a stray backtick must fail in linear time.
_FENCE = re.compile(r"( {0,3})(`{3,}+|~{3,}+)([^`]*+)")


@dataclass(frozen=True)
class Query:
    """A data statement found in the input, kept as written.

    `name` comes from a `-- name: foo` comment right before the statement, or
    is `<file stem>_<n>` where n counts the queries of the source from 1.
    `sql` is the statement's original text without its closing semicolon,
    psql binds such as `:start_date` included. `line` is 1-based in `source`.
    """

    name: str
    sql: str
    source: str
    line: int


@dataclass(frozen=True)
class Rename:
    """A table or column renamed in place, so a revision keeps its data.

    `column` is None for a table rename (`table` to `new`); otherwise the
    column `column` of `table` becomes `new`. `table` is the table's name at
    the moment of the rename.
    """

    table: str
    column: str | None
    new: str


@dataclass(frozen=True)
class ParsedSql:
    """What one SQL or markdown input holds: the schema, queries and renames."""

    spec: SchemaSpec
    queries: list[Query]
    # in statement order; a spec alone cannot tell a rename from drop + add
    renames: list[Rename] = field(default_factory=list)


def parse_sql(text: str, *, source: str, base: SchemaSpec | None = None) -> ParsedSql:
    """Apply the statements of `text` in order on top of `base`.

    Args:
        text: PostgreSQL statements (hand-written DDL or pg_dump output);
            psql binds like `:limit` are accepted in queries.
        source: how to name the input in errors and derived query names.
        base: the schema the statements build on; empty when None.

    Returns:
        The new SchemaSpec and the queries found, in file order.

    Raises:
        DDLError: the SQL does not parse, refers to an unknown table, or uses
            something a SchemaSpec cannot carry; `line` and `column` locate it.
    """
    builder = _SchemaBuilder(base or SchemaSpec(), source=source)
    builder.apply(text, first_line=1)
    return builder.result()


def apply_renames(
    spec: SchemaSpec, renames: list[Rename]
) -> tuple[SchemaSpec, list[Rename]]:
    """Apply to `spec` the renames that name one of its tables or columns.

    A rename of something `spec` lacks (a table or column made by the same
    input) is left out: there is no data to keep.

    Args:
        spec: the schema before the renames, e.g. at a revision chain's head.
        renames: renames in statement order (`ParsedSql.renames`).

    Returns:
        The renamed schema and the renames that applied, in order.
    """
    builder = _SchemaBuilder(spec, source="renames")
    applied: list[Rename] = []
    for rename in renames:
        table = builder.tables.get(rename.table)
        if table is None:
            continue
        if rename.column is None:
            if rename.new in builder.tables:
                continue
            builder._rename_table(table, rename.new)
        else:
            if table.column(rename.column) is None or table.column(rename.new):
                continue
            builder._rename_column(table, rename.column, rename.new)
        applied.append(rename)
    return builder.result().spec, applied


def sql_from_markdown(text: str) -> list[tuple[int, str]]:
    """Find the fenced ```sql (```postgresql, ```pgsql) blocks of a markdown text.

    Args:
        text: the markdown document.

    Returns:
        One `(line, sql)` pair per block, `line` being the 1-based markdown line
        of the block's first SQL line, so positions in `sql` map back.
    """
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        opening = _FENCE.fullmatch(lines[number])
        number += 1
        if opening is None:
            continue

        indent, fence, info = opening.groups()
        language = next(iter(info.split()), "")
        body: list[str] = []
        first = number + 1
        while number < len(lines) and not _closes(lines[number], fence):
            body.append(_dedent(lines[number], len(indent)))
            number += 1
        number += 1

        if language.lower() in MARKDOWN_SQL_LANGUAGES:
            blocks.append((first, "\n".join(body)))
    return blocks


def parse_file(
    path: Path, *, display: str, base: SchemaSpec | None = None
) -> ParsedSql:
    """Read a `.sql` file, or the SQL blocks of a `.md` file, into a SchemaSpec.

    Args:
        path: the file to read.
        display: how errors and queries name the file (e.g. relative to the
            workspace).
        base: the schema the file builds on.

    Raises:
        DDLError: the file is not a regular file, cannot be read, is larger
            than 16 MiB, is not UTF-8, has another suffix, or its SQL is
            refused (see `parse_sql`); lines are those of the file itself.
    """
    suffix = path.suffix.lower()
    if suffix not in SQL_SUFFIXES + MARKDOWN_SUFFIXES:
        accepted = ", ".join(SQL_SUFFIXES + MARKDOWN_SUFFIXES)
        raise DDLError(
            f"cannot read {suffix or 'a file without suffix'} as SQL: "
            f"give a file ending in {accepted}",
            path=display,
        )
    text = _read_sql_text(path, display)

    builder = _SchemaBuilder(base or SchemaSpec(), source=display)
    if suffix in SQL_SUFFIXES:
        builder.apply(text, first_line=1)
    else:
        for first_line, sql in sql_from_markdown(text):
            builder.apply(sql, first_line=first_line)
    parsed = builder.result()
    log.info(
        "ddl_read",
        path=display,
        tables=len(parsed.spec.tables),
        objects=len(parsed.spec.objects),
        queries=len(parsed.queries),
    )
    return parsed


def _read_sql_text(path: Path, display: str) -> str:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise DDLError(
                "not a regular file; reference a .sql or .md file", path=display
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_SQL_FILE_BYTES + 1)
    except OSError as error:
        raise DDLError(
            f"cannot read the file ({error.strerror or error}): check that it exists",
            path=display,
        ) from error
    if len(data) > MAX_SQL_FILE_BYTES:
        raise DDLError(
            f"the file is larger than {MAX_SQL_FILE_BYTES // (1024 * 1024)} MiB; "
            "split the schema into several files",
            path=display,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DDLError(
            f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8",
            path=display,
            line=data.count(b"\n", 0, error.start) + 1,
        ) from None


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and stripped.startswith(fence)
        and set(stripped) == {fence[0]}
    )


def _dedent(line: str, indent: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


# -- expressions and names ------------------------------------------------------


class _ExpressionStream(RawStream):
    """pglast's printer, with casts and booleans spelled as pg_get_expr does."""

    def print_node(
        self, node: typing.Any, is_name: bool = False, is_symbol: bool = False
    ) -> None:
        if isinstance(node, ast.Boolean):
            self.write("true" if node.boolval else "false")
            self.separator()
        elif isinstance(node, ast.TypeCast) and isinstance(
            node.arg, ast.A_Const | ast.ColumnRef | ast.FuncCall
        ):
            operand = _ExpressionStream()(node.arg)
            self.write(f"{operand}::{_ExpressionStream()(node.typeName)}")
            self.separator()
        else:
            super().print_node(node, is_name, is_symbol)


def _uncarried_constraint(table: str, column: str | None, node: ast.Constraint) -> str:
    """Why a constraint kind sparc has no form for is refused, and what to do."""
    kind = ConstrType(node.contype)
    if kind == ConstrType.CONSTR_GENERATED and column is not None:
        expression = _deparse(node.raw_expr) if node.raw_expr is not None else "..."
        return (
            f"generated column {table}.{column} (GENERATED ALWAYS AS ({expression}) "
            "STORED) cannot be carried yet; make it a plain column the application "
            "or a trigger fills, or compute it in a view"
        )
    if kind == ConstrType.CONSTR_EXCLUSION:
        name = f" {node.conname}" if node.conname else ""
        return (
            f"exclusion constraint{name} on {table} (EXCLUDE USING ...) cannot be "
            "carried yet; enforce the rule with a unique index, a CHECK or a "
            "trigger, or remove it"
        )
    label = kind.name.removeprefix("CONSTR_").replace("_", " ").lower()
    return (
        f"{label} constraint on {table} cannot be carried yet; express the rule "
        "as a CHECK or remove it"
    )


def _deparse(node: ast.Node) -> str:
    """PostgreSQL text of an expression, `public.` qualifiers dropped."""
    for child in _walk(node):
        if isinstance(child, ast.TypeName) and child.names:
            child.names = _unqualified(child.names)
        elif isinstance(child, ast.FuncCall):
            child.funcname = _unqualified(child.funcname)
            if child.funcname[-1].sval == "nextval" and child.args:
                _unqualify_sequence(child.args[0])
    return _ExpressionStream()(node)


def _unqualify_sequence(argument: ast.Node) -> None:
    """`nextval('public.s'::regclass)` names the sequence as `'s'`."""
    if isinstance(argument, ast.TypeCast):
        argument = argument.arg
    if isinstance(argument, ast.A_Const) and isinstance(argument.val, ast.String):
        argument.val = ast.String(sval=argument.val.sval.removeprefix("public."))


def _walk(node: typing.Any) -> Iterator[ast.Node]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _walk(getattr(node, attribute))


def _unqualified(names: tuple[ast.String, ...]) -> tuple[ast.String, ...]:
    if len(names) > 1 and names[0].sval == "public":
        return tuple(names[1:])
    return tuple(names)


def _parse_expression(text: str) -> ast.Node:
    statement = parser.parse_sql(f"SELECT {text}")[0].stmt
    return statement.targetList[0].val


def _expression_columns(text: str) -> list[str]:
    """Column names an expression refers to, in order of first use."""
    names: list[str] = []
    for node in _walk(_parse_expression(text)):
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            name = node.fields[-1].sval
            if name not in names:
                names.append(name)
    return names


def _rename_in_expression(text: str, old: str, new: str) -> str:
    expression = _parse_expression(text)
    for node in _walk(expression):
        if (
            isinstance(node, ast.ColumnRef)
            and isinstance(node.fields[-1], ast.String)
            and node.fields[-1].sval == old
        ):
            node.fields = (*node.fields[:-1], ast.String(sval=new))
    return _deparse(expression)


def _quote(name: str) -> str:
    """An identifier as PostgreSQL accepts it back (quoted when it must be)."""
    if _SIMPLE_IDENTIFIER.fullmatch(name) and name not in _RESERVED_WORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _names(items: typing.Iterable[ast.String]) -> list[str]:
    return [item.sval for item in items]


# -- the builder ----------------------------------------------------------------


@dataclass
class _Sequence:
    """A CREATE SEQUENCE seen so far and the column that owns it, if any."""

    name: str
    owner: tuple[str, str] | None = None


@dataclass
class _Statement:
    node: ast.Node
    start: int
    end: int


@dataclass
class _SchemaBuilder:
    """Applies statements one by one to mutable copies of a spec's parts."""

    base: SchemaSpec
    source: str
    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, EnumType] = field(default_factory=dict)
    domains: dict[str, Domain] = field(default_factory=dict)
    partitions: dict[str, Partition] = field(default_factory=dict)
    objects: list[SqlObject] = field(default_factory=list)
    sequences: dict[str, _Sequence] = field(default_factory=dict)
    queries: list[Query] = field(default_factory=list)
    renames: list[Rename] = field(default_factory=list)
    refused: list[tuple[int, int, str]] = field(default_factory=list)
    # a partition's own constraint or index by name: (partition, its SQL)
    partition_objects: dict[str, tuple[str, str]] = field(default_factory=dict)
    # per applied text: the source text and where it starts in the file
    text: str = ""
    first_line: int = 1
    line_starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tables = {table.name: table for table in self.base.tables}
        self.enums = {enum.name: enum for enum in self.base.enums}
        self.domains = {domain.name: domain for domain in self.base.domains}
        self.partitions = {part.name: part for part in self.base.partitions}
        self.objects = list(self.base.objects)
        self.sequences = {
            obj.name: _Sequence(obj.name)
            for obj in self.base.objects
            if obj.kind == "sequence"
        }

    # -- driving ----------------------------------------------------------------

    def apply(self, text: str, *, first_line: int) -> None:
        """Parse `text` (which starts at `first_line` of the source) and apply it."""
        self.text = text
        self.first_line = first_line
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

        # PostgreSQL's parser reads a C string: whatever follows a NUL would be
        # dropped without a word.
        nul = text.find("\x00")
        if nul >= 0:
            raise self._error(
                "the SQL holds a NUL character; remove it (PostgreSQL never "
                "accepts one in a statement)",
                nul,
            )
        parse_text, binds = _mask_binds(text)
        try:
            raw_statements = parser.parse_sql(parse_text)
            tokens = parser.scan(parse_text)
        except parser.ParseError as error:
            message, index = error.args[0], error.args[1]
            where = len(text) if index is None else index
            message = " ".join(message.split())
            raise self._error(
                f"SQL does not parse: {message}; correct the statement "
                "(PostgreSQL syntax is expected)",
                where,
            ) from error

        starts = [token.start for token in tokens]
        previous_end = 0
        for raw in raw_statements:
            limit = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
            own = tokens[
                bisect.bisect_left(starts, raw.stmt_location) : bisect.bisect_left(
                    starts, limit
                )
            ]
            end = _statement_end(own, binds)
            statement = _Statement(raw.stmt, raw.stmt_location, end)
            between = tokens[
                bisect.bisect_left(starts, previous_end) : bisect.bisect_left(
                    starts, statement.start
                )
            ]
            comments = [
                text[token.start : token.end + 1]
                for token in between
                if token.name in _COMMENT_TOKENS
            ]
            self._apply_statement(statement, comments)
            previous_end = statement.end

        if self.refused:
            line, column, _ = self.refused[0]
            listing = "; ".join(
                f"line {line}: {message}" for line, _, message in self.refused
            )
            raise DDLError(
                f"{len(self.refused)} statement(s) cannot be carried into a "
                f"schema: {listing}",
                path=self.source,
                line=line,
                column=column,
            )

    def result(self) -> ParsedSql:
        self._resolve_sequences()
        spec = SchemaSpec(
            tables=list(self.tables.values()),
            enums=list(self.enums.values()),
            domains=list(self.domains.values()),
            partitions=list(self.partitions.values()),
            objects=self.objects,
        )
        check_names(spec, source=self.source, error=DDLError)
        return ParsedSql(
            spec=spec, queries=list(self.queries), renames=list(self.renames)
        )

    def _apply_statement(self, statement: _Statement, comments: list[str]) -> None:
        node = statement.node
        kind = type(node).__name__
        if kind in IGNORED_STATEMENTS:
            log.debug("sql_statement_ignored", statement=kind, source=self.source)
            return
        if isinstance(node, _QUERY_STATEMENTS):
            self._query(statement, comments)
            return

        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            self._refuse(statement.start, f"{self._head(statement)} is not supported")
            return
        handler(statement)

    # -- errors -----------------------------------------------------------------

    def _position(self, index: int) -> tuple[int, int]:
        row = bisect.bisect_right(self.line_starts, index) - 1
        return self.first_line + row, index - self.line_starts[row] + 1

    def _error(
        self, message: str, index: int, *, undefined_table: str | None = None
    ) -> DDLError:
        line, column = self._position(index)
        return DDLError(
            message,
            path=self.source,
            line=line,
            column=column,
            undefined_table=undefined_table,
        )

    def _refuse(self, index: int, message: str) -> None:
        line, column = self._position(index)
        self.refused.append((line, column, message))

    def _head(self, statement: _Statement) -> str:
        words = self.text[statement.start : statement.end].split()
        return " ".join(words[:4])

    def _original(self, statement: _Statement) -> str:
        return self.text[statement.start : statement.end] + ";"

    # -- names and lookups ------------------------------------------------------

    def _relation_name(self, relation: ast.RangeVar) -> str:
        if relation.schemaname not in (None, "public"):
            raise self._error(
                f"{relation.schemaname}.{relation.relname} is outside the public "
                "schema: sparc models the public schema only; move it to public",
                relation.location,
            )
        return relation.relname

    def _qualified_name(self, names: typing.Sequence[ast.String], at: int) -> str:
        parts = _names(_unqualified(tuple(names)))
        if len(parts) > 1:
            raise self._error(
                f"{'.'.join(parts)} is outside the public schema: sparc models the "
                "public schema only; move it to public",
                at,
            )
        return parts[0]

    def _table(self, relation: ast.RangeVar, what: str) -> Table:
        name = self._relation_name(relation)
        table = self.tables.get(name)
        if table is None:
            raise self._error(
                f"{what}: table {name} is not defined; create it earlier in this "
                "file or in the schema this file builds on",
                relation.location,
                undefined_table=name,
            )
        return table

    def _put(self, table: Table) -> None:
        self.tables[table.name] = table

    def _column_type(self, type_name: ast.TypeName, at: int) -> tuple[ColumnType, bool]:
        """The ColumnType of a type name, and whether it was a serial pseudo-type."""
        if type_name.setof or type_name.pct_type:
            raise self._error(
                "SETOF and %TYPE are not column types; spell the type out", at
            )
        names = _names(type_name.names)
        dimensions = len(type_name.arrayBounds or ())
        modifiers = [
            modifier.val.ival
            for modifier in type_name.typmods or ()
            if isinstance(modifier, ast.A_Const)
            and isinstance(modifier.val, ast.Integer)
        ]
        if len(modifiers) != len(type_name.typmods or ()):
            return self._other_type(type_name, dimensions), False

        builtin = names[-1] if names[0] == "pg_catalog" or len(names) == 1 else None
        user = names[-1] if names[0] == "public" or len(names) == 1 else None
        if names[0] != "pg_catalog" and user in self.enums:
            return ColumnType(kind="enum", name=user, dimensions=dimensions), False
        if names[0] != "pg_catalog" and user in self.domains:
            return ColumnType(kind="domain", name=user, dimensions=dimensions), False
        if builtin in _SERIAL_KINDS and not modifiers and not dimensions:
            return ColumnType(kind=_SERIAL_KINDS[builtin]), True
        if builtin is None or builtin not in _BUILTIN_KINDS:
            return self._other_type(type_name, dimensions), False

        kind = _BUILTIN_KINDS[builtin]
        timezone = builtin in _WITH_TIMEZONE
        if not modifiers:
            return ColumnType(
                kind=kind, timezone=timezone, dimensions=dimensions
            ), False
        if kind in _LENGTH_KINDS and len(modifiers) == 1:
            column_type = ColumnType(
                kind=kind, length=modifiers[0], dimensions=dimensions
            )
            return column_type, False
        if kind == "numeric" and len(modifiers) <= 2:
            scale = modifiers[1] if len(modifiers) == 2 else None
            column_type = ColumnType(
                kind=kind, precision=modifiers[0], scale=scale, dimensions=dimensions
            )
            return column_type, False
        if kind in _PRECISION_KINDS and len(modifiers) == 1:
            column_type = ColumnType(
                kind=kind,
                precision=modifiers[0],
                timezone=timezone,
                dimensions=dimensions,
            )
            return column_type, False
        # interval fields and other modifiers: keep the exact spelling
        return self._other_type(type_name, dimensions), False

    def _other_type(self, type_name: ast.TypeName, dimensions: int) -> ColumnType:
        scalar = ast.TypeName(
            names=_unqualified(tuple(type_name.names)),
            typmods=type_name.typmods,
            typemod=type_name.typemod,
        )
        return ColumnType(
            kind="other", name=_ExpressionStream()(scalar), dimensions=dimensions
        )

    # -- queries ----------------------------------------------------------------

    def _query(self, statement: _Statement, comments: list[str]) -> None:
        node = statement.node
        if isinstance(node, ast.SelectStmt) and self._is_ignored_call(node):
            log.debug("sql_statement_ignored", statement="SELECT", source=self.source)
            return

        names = [
            match.group(1)
            for comment in comments
            if (match := _QUERY_NAME_COMMENT.match(comment.strip()))
        ]
        stem = re.sub(r"\W+", "_", Path(self.source).stem).strip("_").lower()
        name = names[-1] if names else f"{stem or 'query'}_{len(self.queries) + 1}"
        if any(query.name == name for query in self.queries):
            raise self._error(
                f"query name {name} is used twice; give each query its own "
                "`-- name:` comment",
                statement.start,
            )
        line, _ = self._position(statement.start)
        sql = self.text[statement.start : statement.end]
        self.queries.append(Query(name=name, sql=sql, source=self.source, line=line))

    @staticmethod
    def _is_ignored_call(node: ast.SelectStmt) -> bool:
        if node.fromClause or not node.targetList or len(node.targetList) != 1:
            return False
        value = node.targetList[0].val
        return (
            isinstance(value, ast.FuncCall)
            and value.funcname[-1].sval in IGNORED_FUNCTION_CALLS
            and _names(value.funcname)[0] in ("pg_catalog", value.funcname[-1].sval)
        )

    # -- tables -----------------------------------------------------------------

    def _on_CreateStmt(self, statement: _Statement) -> None:
        node: ast.CreateStmt = statement.node
        name = self._relation_name(node.relation)
        if name in self.tables or name in self.partitions:
            if node.if_not_exists:
                return
            raise self._error(
                f"CREATE TABLE {name}: the table already exists; drop it first or "
                "use ALTER TABLE",
                node.relation.location,
            )
        if node.partbound is not None:
            self._create_partition(statement, name)
            return

        unsupported = [
            label
            for label, present in (
                ("INHERITS", node.inhRelations),
                ("OF type", node.ofTypename),
                ("TEMPORARY/UNLOGGED", node.relation.relpersistence != "p"),
            )
            if present
        ]
        if unsupported:
            self._refuse(
                statement.start,
                f"CREATE TABLE {name} uses {', '.join(unsupported)}, which a "
                "SchemaSpec cannot carry; declare a plain table",
            )
            return

        table = Table(name=name, columns=[])
        if node.partspec is not None:
            table = table.model_copy(
                update={"partition_by": self._partition_by(node.partspec)}
            )
        self._put(table)

        pending: list[ast.Constraint] = []
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                self._add_column(name, element, statement)
            elif isinstance(element, ast.Constraint):
                pending.append(element)
            else:
                self._refuse(
                    statement.start,
                    f"CREATE TABLE {name}: LIKE is not supported; list the columns",
                )
        for constraint in pending:
            self._add_constraint(name, constraint, None)

    def _partition_by(self, spec: ast.PartitionSpec) -> str:
        keys = []
        for element in spec.partParams:
            if element.name is not None:
                keys.append(_quote(element.name))
            else:
                keys.append(f"({_deparse(element.expr)})")
        return f"{_PARTITION_STRATEGIES[spec.strategy]} ({', '.join(keys)})"

    def _create_partition(self, statement: _Statement, name: str) -> None:
        node: ast.CreateStmt = statement.node
        parent = self._table(node.inhRelations[0], f"CREATE TABLE {name} PARTITION OF")
        if node.tableElts or node.partspec is not None:
            self._refuse(
                statement.start,
                f"CREATE TABLE {name} PARTITION OF {parent.name} declares its own "
                "columns, constraints or sub-partitions, which a Partition cannot "
                "carry; declare them on the parent",
            )
            return
        self._attach(parent, name, node.partbound, node.relation.location)

    def _attach(
        self, parent: Table, name: str, bound: ast.PartitionBoundSpec, at: int
    ) -> None:
        if parent.partition_by is None:
            raise self._error(
                f"{parent.name} is not partitioned: add PARTITION BY to its "
                f"CREATE TABLE before attaching {name}",
                at,
            )
        self.partitions[name] = Partition(
            name=name, parent=parent.name, bound=_ExpressionStream()(bound)
        )

    def _add_column(
        self, table_name: str, node: ast.ColumnDef, statement: _Statement
    ) -> None:
        table = self.tables[table_name]
        at = node.location if node.location is not None else statement.start
        if table.column(node.colname) is not None:
            raise self._error(
                f"{table_name}.{node.colname} is defined twice; remove one", at
            )
        if node.collClause is not None:
            self._refuse(
                at,
                f"{table_name}.{node.colname} has a COLLATE clause, which a "
                "SchemaSpec cannot carry",
            )

        column_type, serial = self._column_type(node.typeName, at)
        column = Column(
            name=node.colname,
            type=column_type,
            serial=serial,
            nullable=not (serial or node.is_not_null),
        )
        self._put(table.model_copy(update={"columns": [*table.columns, column]}))

        last: ast.Constraint | None = None
        for constraint in node.constraints or ():
            if constraint.contype in (
                ConstrType.CONSTR_ATTR_DEFERRABLE,
                ConstrType.CONSTR_ATTR_DEFERRED,
                ConstrType.CONSTR_ATTR_NOT_DEFERRABLE,
                ConstrType.CONSTR_ATTR_IMMEDIATE,
            ):
                self._defer(table_name, last, constraint)
                continue
            self._add_constraint(table_name, constraint, node.colname)
            last = constraint

    def _set_column(self, table_name: str, name: str, **update: typing.Any) -> None:
        table = self.tables[table_name]
        columns = [
            column.model_copy(update=update) if column.name == name else column
            for column in table.columns
        ]
        self._put(table.model_copy(update={"columns": columns}))

    def _require_column(self, table: Table, name: str, at: int) -> None:
        if table.column(name) is None:
            raise self._error(
                f"{table.name}.{name} is not defined; add the column first", at
            )

    def _defer(
        self, table_name: str, last: ast.Constraint | None, attribute: ast.Constraint
    ) -> None:
        table = self.tables[table_name]
        if last is None or last.contype != ConstrType.CONSTR_FOREIGN:
            self._refuse(
                attribute.location,
                f"{table_name}: DEFERRABLE is only carried for foreign keys",
            )
            return
        foreign_key = table.foreign_keys[-1]
        if attribute.contype == ConstrType.CONSTR_ATTR_DEFERRABLE:
            foreign_key = foreign_key.model_copy(update={"deferrable": True})
        elif attribute.contype == ConstrType.CONSTR_ATTR_DEFERRED:
            foreign_key = foreign_key.model_copy(
                update={"deferrable": True, "initially_deferred": True}
            )
        elif attribute.contype == ConstrType.CONSTR_ATTR_NOT_DEFERRABLE:
            foreign_key = foreign_key.model_copy(update={"deferrable": False})
        else:
            foreign_key = foreign_key.model_copy(update={"initially_deferred": False})
        keys = [*table.foreign_keys[:-1], foreign_key]
        self._put(table.model_copy(update={"foreign_keys": keys}))

    def _add_constraint(
        self, table_name: str, node: ast.Constraint, column: str | None
    ) -> None:
        """Apply a column-level (`column` set) or table-level constraint."""
        table = self.tables[table_name]
        at = node.location
        kind = node.contype

        if kind == ConstrType.CONSTR_NOTNULL:
            self._set_column(table_name, column or node.keys[0].sval, nullable=False)
        elif kind == ConstrType.CONSTR_NULL:
            self._set_column(table_name, typing.cast(str, column), nullable=True)
        elif kind == ConstrType.CONSTR_DEFAULT:
            self._set_column(
                table_name, typing.cast(str, column), default=_deparse(node.raw_expr)
            )
        elif kind == ConstrType.CONSTR_IDENTITY:
            self._add_identity(table_name, typing.cast(str, column), node)
        elif kind == ConstrType.CONSTR_CHECK:
            check = CheckConstraint(
                name=node.conname, expression=_deparse(node.raw_expr)
            )
            checks = [*table.check_constraints, check]
            self._put(table.model_copy(update={"check_constraints": checks}))
        elif kind == ConstrType.CONSTR_PRIMARY:
            self._primary_key(table, node, column)
        elif kind == ConstrType.CONSTR_UNIQUE:
            self._unique(table, node, column)
        elif kind == ConstrType.CONSTR_FOREIGN:
            self._foreign_key(table, node, column)
        else:
            self._refuse(at, _uncarried_constraint(table_name, column, node))

    def _key_columns(
        self, table: Table, node: ast.Constraint, column: str | None
    ) -> list[str]:
        columns = [column] if column is not None else _names(node.keys or ())
        for name in columns:
            self._require_column(table, name, node.location)
        return columns

    def _primary_key(
        self, table: Table, node: ast.Constraint, column: str | None
    ) -> None:
        if node.including or node.indexname:
            self._refuse(
                node.location,
                f"{table.name}: PRIMARY KEY with INCLUDE or USING INDEX is not "
                "supported; list the key columns",
            )
            return
        if table.primary_key is not None:
            raise self._error(
                f"{table.name} has two primary keys; keep one", node.location
            )
        columns = self._key_columns(table, node, column)
        self._put(
            table.model_copy(
                update={"primary_key": PrimaryKey(name=node.conname, columns=columns)}
            )
        )
        for name in columns:
            self._set_column(table.name, name, nullable=False)

    def _unique(self, table: Table, node: ast.Constraint, column: str | None) -> None:
        if node.including or node.indexname or node.nulls_not_distinct:
            self._refuse(
                node.location,
                f"{table.name}: UNIQUE with INCLUDE, USING INDEX or NULLS NOT "
                "DISTINCT is not supported; use a unique index",
            )
            return
        if node.deferrable:
            self._refuse(
                node.location, f"{table.name}: a DEFERRABLE UNIQUE is not supported"
            )
            return
        unique = UniqueConstraint(
            name=node.conname, columns=self._key_columns(table, node, column)
        )
        uniques = [*table.unique_constraints, unique]
        self._put(table.model_copy(update={"unique_constraints": uniques}))

    def _foreign_key(
        self, table: Table, node: ast.Constraint, column: str | None
    ) -> None:
        ref_name = self._relation_name(node.pktable)
        ref_table = self.tables.get(ref_name)
        if ref_table is None:
            raise self._error(
                f"{table.name}: the foreign key references table {ref_name}, which "
                "is not defined; create it first or add the key later with "
                "ALTER TABLE ... ADD CONSTRAINT",
                node.pktable.location,
            )
        if node.fk_matchtype not in ("s", "\x00"):
            self._refuse(
                node.location,
                f"{table.name}: MATCH FULL/PARTIAL foreign keys are not supported",
            )
            return

        columns = [column] if column is not None else _names(node.fk_attrs or ())
        for name in columns:
            self._require_column(table, name, node.location)
        ref_columns = _names(node.pk_attrs or ())
        if not ref_columns:
            if ref_table.primary_key is None:
                raise self._error(
                    f"{table.name}: {ref_name} has no primary key to reference; "
                    "name the referenced columns",
                    node.pktable.location,
                )
            ref_columns = list(ref_table.primary_key.columns)
        for name in ref_columns:
            self._require_column(ref_table, name, node.pktable.location)

        foreign_key = ForeignKey(
            name=node.conname,
            columns=columns,
            ref_table=ref_name,
            ref_columns=ref_columns,
            on_delete=_FK_ACTIONS.get(node.fk_del_action),
            on_update=_FK_ACTIONS.get(node.fk_upd_action),
            deferrable=bool(node.deferrable),
            initially_deferred=bool(node.initdeferred),
        )
        current = self.tables[table.name]
        keys = [*current.foreign_keys, foreign_key]
        self._put(current.model_copy(update={"foreign_keys": keys}))

    # -- ALTER TABLE ------------------------------------------------------------

    def _on_AlterTableStmt(self, statement: _Statement) -> None:
        node: ast.AlterTableStmt = statement.node
        commands = list(node.cmds)
        if all(cmd.subtype in IGNORED_ALTER_TABLE_COMMANDS for cmd in commands):
            log.debug("sql_statement_ignored", statement="ALTER", source=self.source)
            return

        name = self._relation_name(node.relation)
        if node.objtype == ObjectType.OBJECT_INDEX and all(
            cmd.subtype == AlterTableType.AT_AttachPartition for cmd in commands
        ):
            for command in commands:
                self._attach_partition_index(command.def_, statement)
            return
        if node.objtype != ObjectType.OBJECT_TABLE:
            self._refuse(statement.start, f"{self._head(statement)} is not supported")
            return
        if name in self.partitions:
            self._partition_constraint(name, commands, statement)
            return
        if name not in self.tables and node.missing_ok:
            return
        self._table(node.relation, f"ALTER TABLE {name}")

        for command in commands:
            self._alter_table(name, command, statement)

    def _alter_table(
        self, name: str, command: ast.AlterTableCmd, statement: _Statement
    ) -> None:
        table = self.tables[name]
        subtype = command.subtype
        at = statement.start
        column = command.name

        if subtype in IGNORED_ALTER_TABLE_COMMANDS:
            return
        if subtype == AlterTableType.AT_AddColumn:
            if command.missing_ok and table.column(command.def_.colname) is not None:
                return
            self._add_column(name, command.def_, statement)
            return
        if subtype == AlterTableType.AT_AddConstraint:
            self._add_constraint(name, command.def_, None)
            return
        if subtype == AlterTableType.AT_DropConstraint:
            self._drop_constraint(table, command, at)
            return
        if subtype == AlterTableType.AT_AttachPartition:
            self._attach_table(table, command.def_, at)
            return

        if column is not None and table.column(column) is None:
            if command.missing_ok:
                return
            self._require_column(table, column, at)
        if subtype == AlterTableType.AT_ColumnDefault:
            default = None if command.def_ is None else _deparse(command.def_)
            self._set_column(name, column, default=default)
        elif subtype == AlterTableType.AT_SetNotNull:
            self._set_column(name, column, nullable=False)
        elif subtype == AlterTableType.AT_DropNotNull:
            self._set_column(name, column, nullable=True)
        elif subtype == AlterTableType.AT_AlterColumnType:
            column_type, serial = self._column_type(command.def_.typeName, at)
            if serial:
                raise self._error(
                    f"{name}.{column}: serial is not a type to change to; use an "
                    "integer type and a default",
                    at,
                )
            old_kind = self._column_kind(name, column)
            self._set_column(name, column, type=column_type)
            self._retype_identity(name, column, old_kind, at)
        elif subtype == AlterTableType.AT_DropColumn:
            self._drop_column(table, column, command.behavior, at)
        elif subtype == AlterTableType.AT_AddIdentity:
            if table.column(column).identity is not None:
                raise self._error(
                    f"{name}.{column} is already an identity column; change it "
                    "with SET GENERATED or SET <option>",
                    at,
                )
            self._add_identity(name, column, command.def_)
        elif subtype == AlterTableType.AT_SetIdentity:
            self._set_identity(table, column, command.def_, at)
        elif subtype == AlterTableType.AT_DropIdentity:
            if table.column(column).identity is None and not command.missing_ok:
                raise self._error(
                    f"{name}.{column} is not an identity column; remove the DROP "
                    "IDENTITY or add IF EXISTS",
                    at,
                )
            self._set_column(name, column, identity=None, identity_options=None)
        else:
            label = subtype.name.removeprefix("AT_")
            self._refuse(
                at,
                f"ALTER TABLE {name}: {label} is not supported; express the change "
                "with ADD/DROP COLUMN or CONSTRAINT",
            )

    # -- identity columns -------------------------------------------------------

    def _add_identity(self, table_name: str, column: str, node: ast.Constraint) -> None:
        """GENERATED ... AS IDENTITY on a column, in CREATE TABLE or ALTER TABLE."""
        kind = self._column_kind(table_name, column)
        values: dict[str, typing.Any] = {}
        for option in node.options or ():
            if option.defname == "sequence_name":
                self._identity_sequence_named(table_name, column, option, node.location)
                continue
            self._identity_option(table_name, column, option, values, node.location)
        options = identity_options(kind, **values)
        self._check_identity(table_name, column, kind, options, node.location)
        identity = "always" if node.generated_when == "a" else "by_default"
        self._set_column(
            table_name,
            column,
            identity=identity,
            identity_options=options,
            nullable=False,
        )

    def _set_identity(
        self,
        table: Table,
        column_name: str,
        options: typing.Sequence[ast.DefElem],
        at: int,
    ) -> None:
        """ALTER COLUMN ... SET GENERATED / SET <option>, as PostgreSQL applies it.

        An option not named keeps its value, even where a new increment's sign
        would have picked another default; NO MINVALUE and NO MAXVALUE take
        the default for the new increment.
        """
        column = table.column(column_name)
        assert column is not None
        if column.identity is None:
            raise self._error(
                f"{table.name}.{column_name} is not an identity column; add one "
                "with ALTER COLUMN ... ADD GENERATED ... AS IDENTITY first",
                at,
            )
        kind = column.type.kind
        current = sequence_settings(kind, column.identity_options)
        values: dict[str, typing.Any] = {
            "start": current.start,
            "increment": current.increment,
            "minvalue": current.minvalue,
            "maxvalue": current.maxvalue,
            "cycle": current.cycle,
            "cache": current.cache,
        }
        identity = column.identity
        for option in options:
            if option.defname == "generated":
                identity = "always" if chr(option.arg.ival) == "a" else "by_default"
            elif option.defname == "restart":
                log.debug(
                    "identity_restart_ignored",
                    source=self.source,
                    column=f"{table.name}.{column_name}",
                    reason="a sequence's position is data, not schema",
                )
            else:
                self._identity_option(table.name, column_name, option, values, at)
        normal = identity_options(kind, **values)
        self._check_identity(table.name, column_name, kind, normal, at)
        self._set_column(
            table.name, column_name, identity=identity, identity_options=normal
        )

    def _retype_identity(
        self, table_name: str, column_name: str, old_kind: str, at: int
    ) -> None:
        # PostgreSQL moves the sequence to the new type: a bound at the old
        # type's extreme moves to the new type's, the other options stay
        column = self.tables[table_name].column(column_name)
        if column is None or column.identity is None:
            return
        kind = column.type.kind
        settings = sequence_settings(old_kind, column.identity_options)
        old_low, old_high = identity_range(old_kind)
        low, high = identity_range(kind)
        options = identity_options(
            kind,
            start=settings.start,
            increment=settings.increment,
            minvalue=low if settings.minvalue == old_low else settings.minvalue,
            maxvalue=high if settings.maxvalue == old_high else settings.maxvalue,
            cycle=settings.cycle,
            cache=settings.cache,
        )
        self._check_identity(table_name, column_name, kind, options, at)
        self._set_column(table_name, column_name, identity_options=options)

    def _column_kind(self, table_name: str, column: str) -> str:
        found = self.tables[table_name].column(column)
        return found.type.kind if found is not None else "bigint"

    def _identity_option(
        self,
        table_name: str,
        column: str,
        option: ast.DefElem,
        values: dict[str, typing.Any],
        at: int,
    ) -> None:
        name = option.defname
        if name == "cycle":
            values["cycle"] = bool(option.arg.boolval)
        elif name in ("minvalue", "maxvalue") and option.arg is None:
            # NO MINVALUE / NO MAXVALUE: PostgreSQL's default bound
            values[name] = None
        elif name in ("start", "increment", "minvalue", "maxvalue", "cache"):
            values[name] = _option_number(option.arg)
        else:
            label = name.upper().replace("_", " ")
            self._refuse(
                at,
                f"{table_name}.{column}: identity option {label} is not supported; "
                "use START WITH, INCREMENT BY, MINVALUE, MAXVALUE, CACHE or CYCLE",
            )

    def _identity_sequence_named(
        self, table_name: str, column: str, option: ast.DefElem, at: int
    ) -> None:
        sequence = self._qualified_name(option.arg, at)
        expected = identity_sequence_name(table_name, column)
        if sequence != expected:
            log.warning(
                "identity_sequence_name_not_kept",
                source=self.source,
                column=f"{table_name}.{column}",
                sequence=sequence,
                given_name=expected,
                reason="models cannot name an identity's sequence; PostgreSQL "
                "names it after the table and column",
            )

    def _check_identity(
        self,
        table_name: str,
        column: str,
        kind: str,
        options: IdentityOptions | None,
        at: int,
    ) -> None:
        problem = option_problem(kind, options)
        if problem is not None:
            raise self._error(
                f"{table_name}.{column}: identity {problem}; correct the option",
                at,
            )

    def _attach_table(self, parent: Table, command: ast.PartitionCmd, at: int) -> None:
        child = self._relation_name(command.name)
        table = self.tables.get(child)
        if table is None:
            raise self._error(
                f"ATTACH PARTITION {child}: table {child} is not defined; create "
                "it first",
                command.name.location,
            )
        own = [
            *(k.name or "a foreign key" for k in table.foreign_keys),
            *(i.name or "an index" for i in table.indexes),
            *(u.name or "a unique key" for u in table.unique_constraints),
            *(c.name or "a check" for c in table.check_constraints),
        ]
        if own:
            # declared while it was a plain table: a Partition keeps only what
            # is declared on it after it is attached
            raise self._error(
                f"ATTACH PARTITION {child}: its own {', '.join(own)} are declared "
                "before it is attached, which a partition cannot carry; declare "
                "them after the ATTACH PARTITION statement",
                command.name.location,
            )
        del self.tables[child]
        self._attach(parent, child, command.bound, command.name.location)

    def _partition_definition(
        self, partition: str, name: str | None, statement: _Statement
    ) -> None:
        sql = self.text[statement.start : statement.end].strip().rstrip(";")
        current = self.partitions[partition]
        definitions = [*current.definitions, sql]
        self.partitions[partition] = current.model_copy(
            update={"definitions": definitions}
        )
        if name is not None:
            self.partition_objects[name] = (partition, sql)

    def _partition_constraint(
        self, partition: str, commands: list[typing.Any], statement: _Statement
    ) -> None:
        kept = [
            cmd for cmd in commands if cmd.subtype not in IGNORED_ALTER_TABLE_COMMANDS
        ]
        if any(cmd.subtype != AlterTableType.AT_AddConstraint for cmd in kept):
            self._refuse(
                statement.start,
                f"{self._head(statement)}: partition {partition} takes only ADD "
                "CONSTRAINT; change its parent instead",
            )
            return
        names = [cmd.def_.conname for cmd in kept]
        self._partition_definition(
            partition, names[0] if len(names) == 1 else None, statement
        )

    def _attach_partition_index(
        self, command: ast.PartitionCmd, statement: _Statement
    ) -> None:
        # the parent's index creates its copy on each partition by itself, so
        # the copy pg_dump declares and attaches is not created a second time
        child = command.name.relname
        found = self.partition_objects.pop(child, None)
        if found is None:
            self._refuse(
                statement.start,
                f"{self._head(statement)}: index {child} is not declared on a "
                "partition",
            )
            return
        partition, sql = found
        current = self.partitions[partition]
        definitions = [d for d in current.definitions if d != sql]
        self.partitions[partition] = current.model_copy(
            update={"definitions": definitions}
        )

    def _drop_column(
        self, table: Table, column: str, behavior: DropBehavior, at: int
    ) -> None:
        referrers = [
            other.name
            for other in self.tables.values()
            for key in other.foreign_keys
            if key.ref_table == table.name and column in key.ref_columns
        ]
        if referrers and behavior != DropBehavior.DROP_CASCADE:
            raise self._error(
                f"{table.name}.{column} is referenced by foreign keys of "
                f"{', '.join(sorted(set(referrers)))}: drop those first or add CASCADE",
                at,
            )
        for other in list(self.tables.values()):
            keys = [
                key
                for key in other.foreign_keys
                if not (key.ref_table == table.name and column in key.ref_columns)
            ]
            self._put(other.model_copy(update={"foreign_keys": keys}))

        table = self.tables[table.name]
        primary_key = table.primary_key
        if primary_key is not None and column in primary_key.columns:
            primary_key = None
        update = {
            "columns": [c for c in table.columns if c.name != column],
            "primary_key": primary_key,
            "foreign_keys": [k for k in table.foreign_keys if column not in k.columns],
            "unique_constraints": [
                u for u in table.unique_constraints if column not in u.columns
            ],
            "check_constraints": [
                c
                for c in table.check_constraints
                if column not in _expression_columns(c.expression)
            ],
            "indexes": [i for i in table.indexes if column not in _index_columns(i)],
        }
        self._put(table.model_copy(update=update))

    def _drop_constraint(
        self, table: Table, command: ast.AlterTableCmd, at: int
    ) -> None:
        name = command.name
        update: dict[str, typing.Any] = {}
        if table.primary_key is not None and name in (
            table.primary_key.name,
            f"{table.name}_pkey",
        ):
            update["primary_key"] = None
        for attribute, items, suffix in (
            ("unique_constraints", table.unique_constraints, "key"),
            ("foreign_keys", table.foreign_keys, "fkey"),
        ):
            kept = [
                item
                for item in items
                if name
                != (item.name or _default_name(table.name, item.columns, suffix))
            ]
            if len(kept) != len(items):
                update[attribute] = kept
        checks = [
            check
            for check in table.check_constraints
            if name
            != (
                check.name
                or _default_name(
                    table.name, _expression_columns(check.expression), "check"
                )
            )
        ]
        if len(checks) != len(table.check_constraints):
            update["check_constraints"] = checks

        if not update:
            if command.missing_ok:
                return
            raise self._error(
                f"ALTER TABLE {table.name}: constraint {name} is not defined; "
                "check its name",
                at,
            )
        self._put(table.model_copy(update=update))

    # -- indexes ----------------------------------------------------------------

    def _on_IndexStmt(self, statement: _Statement) -> None:
        node: ast.IndexStmt = statement.node
        relation = self._relation_name(node.relation)
        if relation in self.partitions:
            self._partition_definition(relation, node.idxname, statement)
            return
        view = self._find_object(("materialized_view",), relation)
        if view is not None and relation not in self.tables:
            # an index on a materialized view is created and dropped with it
            self._replace_object(
                view,
                view.model_copy(
                    update={"create": f"{view.create}\n\n{self._original(statement)}"}
                ),
            )
            return
        table = self._table(node.relation, f"CREATE INDEX {node.idxname or ''}".strip())

        elements = [
            self._index_element(table, element, statement.start)
            for element in node.indexParams
        ]
        include = [element.name for element in node.indexIncludingParams or ()]
        name = node.idxname or _default_name(
            table.name,
            [element.column or "expr" for element in elements],
            "idx",
        )
        if any(index.name == name for t in self.tables.values() for index in t.indexes):
            if node.if_not_exists:
                return
            raise self._error(
                f"index {name} already exists; give the new index another name",
                statement.start,
            )
        if node.nulls_not_distinct:
            self._refuse(
                statement.start, f"index {name}: NULLS NOT DISTINCT is not supported"
            )
            return

        index = Index(
            name=name,
            elements=elements,
            unique=bool(node.unique),
            where=None if node.whereClause is None else _deparse(node.whereClause),
            method=None if node.accessMethod == "btree" else node.accessMethod,
            include=include,
        )
        self._put(table.model_copy(update={"indexes": [*table.indexes, index]}))

    def _index_element(
        self, table: Table, element: ast.IndexElem, at: int
    ) -> IndexElement:
        if element.collation:
            self._refuse(
                at,
                f"an index on {table.name} uses COLLATE, which is not supported",
            )
        if element.name is not None:
            self._require_column(table, element.name, at)
        nulls: typing.Literal["first", "last"] | None = None
        if element.nulls_ordering == SortByNulls.SORTBY_NULLS_FIRST:
            nulls = "first"
        elif element.nulls_ordering == SortByNulls.SORTBY_NULLS_LAST:
            nulls = "last"
        opclass = ".".join(_names(_unqualified(tuple(element.opclass or ()))))
        return IndexElement(
            column=element.name,
            expression=None if element.expr is None else _deparse(element.expr),
            descending=element.ordering == SortByDir.SORTBY_DESC,
            nulls=nulls,
            opclass=opclass or None,
        )

    # -- types ------------------------------------------------------------------

    def _on_CreateEnumStmt(self, statement: _Statement) -> None:
        node: ast.CreateEnumStmt = statement.node
        name = self._qualified_name(node.typeName, statement.start)
        self._require_new_type(name, statement.start)
        values = [value.sval for value in node.vals or ()]
        self.enums[name] = EnumType(name=name, values=values)

    def _on_AlterEnumStmt(self, statement: _Statement) -> None:
        node: ast.AlterEnumStmt = statement.node
        name = self._qualified_name(node.typeName, statement.start)
        enum = self.enums.get(name)
        if enum is None:
            raise self._error(
                f"ALTER TYPE {name}: enum {name} is not defined; create it first",
                statement.start,
            )
        values = list(enum.values)
        if node.oldVal is not None:
            if node.oldVal not in values:
                raise self._error(
                    f"ALTER TYPE {name}: {node.oldVal!r} is not one of its values",
                    statement.start,
                )
            values[values.index(node.oldVal)] = node.newVal
        elif node.newVal in values:
            if node.skipIfNewValExists:
                return
            raise self._error(
                f"ALTER TYPE {name}: {node.newVal!r} is already a value",
                statement.start,
            )
        elif node.newValNeighbor is None:
            values.append(node.newVal)
        else:
            if node.newValNeighbor not in values:
                raise self._error(
                    f"ALTER TYPE {name}: {node.newValNeighbor!r} is not one of its "
                    "values",
                    statement.start,
                )
            position = values.index(node.newValNeighbor) + int(node.newValIsAfter)
            values.insert(position, node.newVal)
        self.enums[name] = enum.model_copy(update={"values": values})

    def _on_CreateDomainStmt(self, statement: _Statement) -> None:
        node: ast.CreateDomainStmt = statement.node
        name = self._qualified_name(node.domainname, statement.start)
        self._require_new_type(name, statement.start)
        base_type, serial = self._column_type(node.typeName, statement.start)
        if serial or base_type.kind == "domain":
            self._refuse(
                statement.start,
                f"CREATE DOMAIN {name}: a domain over serial or another domain is "
                "not supported; use its base type",
            )
            return
        domain = Domain(name=name, type=base_type)
        if node.collClause is not None:
            self._refuse(statement.start, f"domain {name}: COLLATE is not supported")
        for constraint in node.constraints or ():
            domain = self._domain_constraint(domain, constraint)
        self.domains[name] = domain

    def _domain_constraint(self, domain: Domain, node: ast.Constraint) -> Domain:
        if node.contype == ConstrType.CONSTR_NOTNULL:
            return domain.model_copy(update={"nullable": False})
        if node.contype == ConstrType.CONSTR_NULL:
            return domain.model_copy(update={"nullable": True})
        if node.contype == ConstrType.CONSTR_DEFAULT:
            return domain.model_copy(update={"default": _deparse(node.raw_expr)})
        if node.contype == ConstrType.CONSTR_CHECK:
            check = CheckConstraint(
                name=node.conname, expression=_deparse(node.raw_expr)
            )
            checks = [*domain.check_constraints, check]
            return domain.model_copy(update={"check_constraints": checks})
        self._refuse(
            node.location,
            f"domain {domain.name}: {node.contype.name} is not supported",
        )
        return domain

    def _on_AlterDomainStmt(self, statement: _Statement) -> None:
        node: ast.AlterDomainStmt = statement.node
        name = self._qualified_name(node.typeName, statement.start)
        domain = self.domains.get(name)
        if domain is None:
            raise self._error(
                f"ALTER DOMAIN {name}: domain {name} is not defined; create it first",
                statement.start,
            )
        if node.subtype == "T":
            default = None if node.def_ is None else _deparse(node.def_)
            domain = domain.model_copy(update={"default": default})
        elif node.subtype in ("N", "O"):
            domain = domain.model_copy(update={"nullable": node.subtype == "N"})
        elif node.subtype == "C":
            domain = self._domain_constraint(domain, node.def_)
        elif node.subtype == "X":
            checks = [c for c in domain.check_constraints if c.name != node.name]
            if len(checks) == len(domain.check_constraints) and not node.missing_ok:
                raise self._error(
                    f"ALTER DOMAIN {name}: constraint {node.name} is not defined",
                    statement.start,
                )
            domain = domain.model_copy(update={"check_constraints": checks})
        else:
            self._refuse(statement.start, f"{self._head(statement)} is not supported")
            return
        self.domains[name] = domain

    def _require_new_type(self, name: str, at: int) -> None:
        if name in self.enums or name in self.domains:
            raise self._error(
                f"type {name} already exists; drop it first or pick another name", at
            )

    def _on_CompositeTypeStmt(self, statement: _Statement) -> None:
        node: ast.CompositeTypeStmt = statement.node
        name = self._relation_name(node.typevar)
        self._add_object(statement, "type", name, f"DROP TYPE {_quote(name)}")

    # -- sequences --------------------------------------------------------------

    def _on_CreateSeqStmt(self, statement: _Statement) -> None:
        node: ast.CreateSeqStmt = statement.node
        name = self._relation_name(node.sequence)
        if name in self.sequences:
            if node.if_not_exists:
                return
            raise self._error(
                f"sequence {name} already exists; drop it first", statement.start
            )
        self.sequences[name] = _Sequence(name)
        self._add_object(statement, "sequence", name, f"DROP SEQUENCE {_quote(name)}")
        self._sequence_options(name, node.options or (), statement, allow_all=True)

    def _on_AlterSeqStmt(self, statement: _Statement) -> None:
        node: ast.AlterSeqStmt = statement.node
        name = self._relation_name(node.sequence)
        if name not in self.sequences:
            if node.missing_ok:
                return
            raise self._error(
                f"ALTER SEQUENCE {name}: sequence {name} is not defined; create it "
                "first",
                node.sequence.location,
            )
        self._sequence_options(name, node.options or (), statement, allow_all=False)

    def _sequence_options(
        self,
        name: str,
        options: typing.Iterable[ast.DefElem],
        statement: _Statement,
        *,
        allow_all: bool,
    ) -> None:
        for option in options:
            if option.defname != "owned_by":
                if not allow_all:
                    self._refuse(
                        statement.start,
                        f"ALTER SEQUENCE {name}: only OWNED BY is supported; put "
                        f"{option.defname.upper()} into its CREATE SEQUENCE",
                    )
                continue
            owner = _names(_unqualified(tuple(option.arg)))
            if owner == ["none"]:
                self.sequences[name].owner = None
                continue
            table_name, column = owner[-2], owner[-1]
            table = self.tables.get(table_name)
            if table is None:
                raise self._error(
                    f"sequence {name} is OWNED BY table {table_name}, which is not "
                    "defined; create the table first",
                    statement.start,
                )
            self._require_column(table, column, statement.start)
            self.sequences[name].owner = (table_name, column)

    def _resolve_sequences(self) -> None:
        """Fold each owned sequence into the column it numbers, as SERIAL does.

        A sequence counts as owned by a column when OWNED BY says so, or, as in
        dumps of schemas that wrote `DEFAULT nextval(...)` by hand, when it is
        named `<table>_<column>_seq` and numbers that column alone: rebuilding
        it as a serial gives the same sequence, default and column.
        """
        users: dict[str, list[tuple[str, str]]] = {}
        for table in self.tables.values():
            for column in table.columns:
                sequence = _nextval_sequence(column.default)
                if sequence is not None:
                    users.setdefault(sequence, []).append((table.name, column.name))

        for sequence in list(self.sequences.values()):
            owner = sequence.owner
            using = users.get(sequence.name, [])
            if owner is None and len(using) == 1:
                table_name, column = using[0]
                if sequence.name == f"{table_name}_{column}_seq":
                    owner = using[0]
            if owner is None or owner not in using:
                continue
            column_type = self.tables[owner[0]].column(owner[1])
            if column_type is None or column_type.type.kind not in (
                "smallint",
                "integer",
                "bigint",
            ):
                continue
            self._set_column(owner[0], owner[1], serial=True, default=None)
            self.objects = [
                obj
                for obj in self.objects
                if not (obj.kind == "sequence" and obj.name == sequence.name)
            ]
            del self.sequences[sequence.name]

    # -- views, functions, triggers and other carried objects --------------------

    def _on_ViewStmt(self, statement: _Statement) -> None:
        node: ast.ViewStmt = statement.node
        name = self._relation_name(node.view)
        self._add_object(
            statement, "view", name, f"DROP VIEW {_quote(name)}", replace=node.replace
        )

    def _on_CreateTableAsStmt(self, statement: _Statement) -> None:
        node: ast.CreateTableAsStmt = statement.node
        name = self._relation_name(node.into.rel)
        if node.objtype != ObjectType.OBJECT_MATVIEW:
            self._refuse(
                statement.start,
                f"CREATE TABLE {name} AS ... has no declared columns; write a "
                "CREATE TABLE with its columns",
            )
            return
        drop = f"DROP MATERIALIZED VIEW {_quote(name)}"
        self._add_object(statement, "materialized_view", name, drop)

    def _on_CreateFunctionStmt(self, statement: _Statement) -> None:
        node: ast.CreateFunctionStmt = statement.node
        name = self._qualified_name(node.funcname, statement.start)
        language = next(
            (
                option.arg.sval.lower()
                for option in node.options or ()
                if option.defname == "language" and isinstance(option.arg, ast.String)
            ),
            "sql",
        )
        if language in UNTRUSTED_LANGUAGES:
            self._refuse(
                statement.start,
                f"function {name} is written in {language}, which runs with the "
                "server's own rights when sparc verifies the schema; write it in "
                "sql or plpgsql",
            )
            return
        arguments = ", ".join(
            _deparse(parameter.argType)
            for parameter in node.parameters or ()
            if parameter.mode in _IDENTITY_PARAMETER_MODES
        )
        keyword = "PROCEDURE" if node.is_procedure else "FUNCTION"
        drop = f"DROP {keyword} {_quote(name)}({arguments})"
        self._add_object(
            statement, "function", f"{name}({arguments})", drop, replace=node.replace
        )

    def _on_CreateTrigStmt(self, statement: _Statement) -> None:
        node: ast.CreateTrigStmt = statement.node
        table = self._relation_name(node.relation)
        if table not in self.tables and self._find_object(("view",), table) is None:
            self._table(node.relation, f"CREATE TRIGGER {node.trigname}")
        drop = f"DROP TRIGGER {_quote(node.trigname)} ON {_quote(table)}"
        self._add_object(
            statement, "trigger", node.trigname, drop, replace=node.replace
        )

    def _on_DefineStmt(self, statement: _Statement) -> None:
        node: ast.DefineStmt = statement.node
        if node.kind != ObjectType.OBJECT_AGGREGATE:
            self._refuse(statement.start, f"{self._head(statement)} is not supported")
            return
        name = self._qualified_name(node.defnames, statement.start)
        parameters = node.args[0] if node.args else ()
        arguments = ", ".join(
            _deparse(parameter.argType) for parameter in parameters or ()
        )
        drop = f"DROP AGGREGATE {_quote(name)}({arguments or '*'})"
        self._add_object(
            statement, "aggregate", f"{name}({arguments})", drop, replace=node.replace
        )

    def _on_CreateExtensionStmt(self, statement: _Statement) -> None:
        node: ast.CreateExtensionStmt = statement.node
        if node.extname.lower() in UNTRUSTED_EXTENSIONS:
            self._refuse(
                statement.start,
                f"extension {node.extname} reaches outside the database (files, "
                "programs or other servers) when sparc verifies the schema; "
                "leave it out",
            )
            return
        if "extension" in _OBJECT_KINDS:
            drop = f"DROP EXTENSION IF EXISTS {_quote(node.extname)}"
            self._add_object(statement, "extension", node.extname, drop)
            return
        # TODO: keep extensions once SqlObject has an "extension" kind; until
        # then the target database must provide them.
        log.warning(
            "extension_not_kept",
            extension=node.extname,
            source=self.source,
            reason="the SchemaSpec has no extension kind yet",
        )

    def _on_CreateSchemaStmt(self, statement: _Statement) -> None:
        node: ast.CreateSchemaStmt = statement.node
        if node.schemaname == "public":
            return
        self._refuse(
            statement.start,
            f"CREATE SCHEMA {node.schemaname}: sparc models the public schema only",
        )

    def _add_object(
        self,
        statement: _Statement,
        kind: str,
        name: str,
        drop: str,
        *,
        replace: bool = False,
    ) -> None:
        if kind not in _OBJECT_KINDS:
            self._refuse(
                statement.start,
                f"{kind} {name}: the SchemaSpec cannot carry {kind} objects yet",
            )
            return
        obj = SqlObject.model_validate(
            {
                "kind": kind,
                "name": name,
                "create": self._original(statement),
                "drop": drop,
            }
        )
        existing = next(
            (o for o in self.objects if o.kind == kind and o.drop == drop), None
        )
        if existing is None:
            self.objects.append(obj)
        elif replace:
            self._replace_object(existing, obj)
        else:
            raise self._error(
                f"{kind} {name} already exists; use CREATE OR REPLACE or drop it first",
                statement.start,
            )

    def _find_object(self, kinds: tuple[str, ...], name: str) -> SqlObject | None:
        return next(
            (o for o in self.objects if o.kind in kinds and o.name == name), None
        )

    def _replace_object(self, old: SqlObject, new: SqlObject) -> None:
        self.objects = [new if o is old else o for o in self.objects]

    # -- comments ---------------------------------------------------------------

    def _on_CommentStmt(self, statement: _Statement) -> None:
        node: ast.CommentStmt = statement.node
        if node.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN):
            parts = _names(_unqualified(tuple(node.object)))
            table_parts = (
                parts if node.objtype == ObjectType.OBJECT_TABLE else parts[:-1]
            )
            relation = ast.RangeVar(
                relname=table_parts[-1],
                schemaname=table_parts[0] if len(table_parts) > 1 else None,
                location=statement.start,
            )
            table = self._table(relation, "COMMENT ON")
            if node.objtype == ObjectType.OBJECT_TABLE:
                self._put(table.model_copy(update={"comment": node.comment}))
            else:
                self._require_column(table, parts[-1], statement.start)
                self._set_column(table.name, parts[-1], comment=node.comment)
            return

        kinds = {
            ObjectType.OBJECT_VIEW: ("view",),
            ObjectType.OBJECT_MATVIEW: ("materialized_view",),
            ObjectType.OBJECT_FUNCTION: ("function",),
            ObjectType.OBJECT_PROCEDURE: ("function",),
            ObjectType.OBJECT_SEQUENCE: ("sequence",),
        }.get(node.objtype)
        target = None
        if kinds is not None and isinstance(node.object, tuple):
            target = self._find_object(kinds, _names(_unqualified(node.object))[-1])
        if target is not None:
            # the comment travels with the object's own SQL
            create = f"{target.create}\n\n{self._original(statement)}"
            self._replace_object(target, target.model_copy(update={"create": create}))
            return
        log.warning(
            "comment_not_kept",
            statement=self._head(statement),
            source=self.source,
            reason="the SchemaSpec keeps comments of tables, columns and views",
        )

    # -- renames and drops ------------------------------------------------------

    def _on_RenameStmt(self, statement: _Statement) -> None:
        node: ast.RenameStmt = statement.node
        kind = node.renameType
        if kind == ObjectType.OBJECT_INDEX:
            self._rename_index(node, statement)
            return
        if kind not in (
            ObjectType.OBJECT_COLUMN,
            ObjectType.OBJECT_TABLE,
            ObjectType.OBJECT_TABCONSTRAINT,
        ):
            self._refuse(statement.start, f"{self._head(statement)} is not supported")
            return
        name = self._relation_name(node.relation)
        if name not in self.tables and node.missing_ok:
            return
        table = self._table(node.relation, f"ALTER TABLE {name}")
        if self.objects:
            log.warning(
                "sql_objects_not_rewritten",
                table=name,
                source=self.source,
                reason="views, functions and triggers keep the names they were "
                "written with",
            )
        if kind == ObjectType.OBJECT_COLUMN:
            self._require_column(table, node.subname, statement.start)
            self._rename_column(table, node.subname, node.newname)
            self.renames.append(Rename(table.name, node.subname, node.newname))
        elif kind == ObjectType.OBJECT_TABLE:
            self._rename_table(table, node.newname)
            self.renames.append(Rename(table.name, None, node.newname))
        else:
            self._rename_constraint(table, node.subname, node.newname, statement.start)

    def _rename_column(self, table: Table, old: str, new: str) -> None:
        def swap(names: list[str]) -> list[str]:
            return [new if n == old else n for n in names]

        primary_key = table.primary_key
        if primary_key is not None:
            primary_key = primary_key.model_copy(
                update={"columns": swap(primary_key.columns)}
            )
        update = {
            "columns": [
                c.model_copy(update={"name": new}) if c.name == old else c
                for c in table.columns
            ],
            "primary_key": primary_key,
            "foreign_keys": [
                k.model_copy(update={"columns": swap(k.columns)})
                for k in table.foreign_keys
            ],
            "unique_constraints": [
                u.model_copy(update={"columns": swap(u.columns)})
                for u in table.unique_constraints
            ],
            "check_constraints": [
                c.model_copy(
                    update={"expression": _rename_in_expression(c.expression, old, new)}
                )
                for c in table.check_constraints
            ],
            "indexes": [_rename_in_index(i, old, new) for i in table.indexes],
        }
        self._put(table.model_copy(update=update))

        for other in list(self.tables.values()):
            keys = [
                k.model_copy(update={"ref_columns": swap(k.ref_columns)})
                if k.ref_table == table.name
                else k
                for k in other.foreign_keys
            ]
            self._put(other.model_copy(update={"foreign_keys": keys}))

    def _rename_table(self, table: Table, new: str) -> None:
        self.tables = {
            (new if name == table.name else name): (
                current.model_copy(update={"name": new})
                if name == table.name
                else current
            )
            for name, current in self.tables.items()
        }
        for other in list(self.tables.values()):
            keys = [
                k.model_copy(update={"ref_table": new})
                if k.ref_table == table.name
                else k
                for k in other.foreign_keys
            ]
            self._put(other.model_copy(update={"foreign_keys": keys}))
        self.partitions = {
            name: p.model_copy(update={"parent": new}) if p.parent == table.name else p
            for name, p in self.partitions.items()
        }

    def _rename_constraint(self, table: Table, old: str, new: str, at: int) -> None:
        found = False
        update: dict[str, typing.Any] = {}
        if table.primary_key is not None and table.primary_key.name == old:
            update["primary_key"] = table.primary_key.model_copy(update={"name": new})
            found = True
        for attribute in ("foreign_keys", "unique_constraints", "check_constraints"):
            items = []
            for item in getattr(table, attribute):
                if item.name == old:
                    item = item.model_copy(update={"name": new})
                    found = True
                items.append(item)
            update[attribute] = items
        if not found:
            raise self._error(
                f"ALTER TABLE {table.name}: constraint {old} is not defined under "
                "that name; check the name",
                at,
            )
        self._put(table.model_copy(update=update))

    def _rename_index(self, node: ast.RenameStmt, statement: _Statement) -> None:
        old = self._relation_name(node.relation)
        for table in self.tables.values():
            if any(index.name == old for index in table.indexes):
                indexes = [
                    i.model_copy(update={"name": node.newname}) if i.name == old else i
                    for i in table.indexes
                ]
                self._put(table.model_copy(update={"indexes": indexes}))
                return
        if not node.missing_ok:
            raise self._error(
                f"ALTER INDEX {old}: index {old} is not defined; check its name",
                statement.start,
            )

    def _on_DropStmt(self, statement: _Statement) -> None:
        node: ast.DropStmt = statement.node
        kind = node.removeType
        for target in node.objects:
            if kind == ObjectType.OBJECT_TABLE:
                self._drop_table(target, node, statement)
            elif kind == ObjectType.OBJECT_INDEX:
                self._drop_index(_names(_unqualified(target))[-1], node, statement)
            elif kind in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
                self._drop_type(target, node, statement)
            elif kind in _DROPPED_OBJECT_KINDS:
                self._drop_object(_DROPPED_OBJECT_KINDS[kind], target, node, statement)
            else:
                self._refuse(
                    statement.start, f"{self._head(statement)} is not supported"
                )
                return

    def _drop_table(
        self, target: tuple[ast.String, ...], node: ast.DropStmt, statement: _Statement
    ) -> None:
        name = self._qualified_name(target, statement.start)
        if name in self.partitions:
            del self.partitions[name]
            return
        if name not in self.tables:
            if node.missing_ok:
                return
            raise self._error(
                f"DROP TABLE {name}: table {name} is not defined; check the name",
                statement.start,
            )

        referrers = sorted(
            other.name
            for other in self.tables.values()
            if other.name != name
            and any(key.ref_table == name for key in other.foreign_keys)
        )
        if referrers and node.behavior != DropBehavior.DROP_CASCADE:
            raise self._error(
                f"DROP TABLE {name}: foreign keys of {', '.join(referrers)} reference "
                "it; drop those constraints first or add CASCADE",
                statement.start,
            )
        del self.tables[name]
        for other in list(self.tables.values()):
            keys = [key for key in other.foreign_keys if key.ref_table != name]
            self._put(other.model_copy(update={"foreign_keys": keys}))
        self.partitions = {
            key: part for key, part in self.partitions.items() if part.parent != name
        }
        suffix = f" ON {_quote(name)}"
        self.objects = [
            obj
            for obj in self.objects
            if not (obj.kind == "trigger" and obj.drop.endswith(suffix))
        ]
        for sequence in list(self.sequences.values()):
            if sequence.owner is not None and sequence.owner[0] == name:
                self._forget_sequence(sequence.name)

    def _drop_index(self, name: str, node: ast.DropStmt, statement: _Statement) -> None:
        for table in self.tables.values():
            indexes = [index for index in table.indexes if index.name != name]
            if len(indexes) != len(table.indexes):
                self._put(table.model_copy(update={"indexes": indexes}))
                return
        if not node.missing_ok:
            raise self._error(
                f"DROP INDEX {name}: index {name} is not defined; check the name",
                statement.start,
            )

    def _drop_type(
        self, target: ast.TypeName, node: ast.DropStmt, statement: _Statement
    ) -> None:
        name = self._qualified_name(target.names, statement.start)
        users = [
            f"{table.name}.{column.name}"
            for table in self.tables.values()
            for column in table.columns
            if column.type.name == name and column.type.kind in ("enum", "domain")
        ]
        if users:
            raise self._error(
                f"DROP TYPE {name}: columns {', '.join(users)} use it; change or "
                "drop them first",
                statement.start,
            )
        if self.enums.pop(name, None) is not None:
            return
        if self.domains.pop(name, None) is not None:
            return
        if self._find_object(("type",), name) is not None:
            self.objects = [
                o for o in self.objects if not (o.kind == "type" and o.name == name)
            ]
            return
        if not node.missing_ok:
            raise self._error(
                f"DROP TYPE {name}: type {name} is not defined; check the name",
                statement.start,
            )

    def _drop_object(
        self,
        kind: str,
        target: typing.Any,
        node: ast.DropStmt,
        statement: _Statement,
    ) -> None:
        if kind in ("function", "aggregate"):
            name = self._qualified_name(target.objname, statement.start)
            arguments = ", ".join(_deparse(arg) for arg in target.objargs or ())
            matches = [
                o
                for o in self.objects
                if o.kind == kind
                and (
                    o.name == f"{name}({arguments})"
                    or (target.args_unspecified and o.name.startswith(f"{name}("))
                )
            ]
        elif kind == "trigger":
            parts = _names(_unqualified(tuple(target)))
            drop = f"DROP TRIGGER {_quote(parts[-1])} ON {_quote(parts[-2])}"
            matches = [o for o in self.objects if o.kind == kind and o.drop == drop]
        else:
            name = self._qualified_name(target, statement.start)
            matches = [o for o in self.objects if o.kind == kind and o.name == name]
            if kind == "sequence" and name in self.sequences:
                del self.sequences[name]

        if not matches and not node.missing_ok:
            raise self._error(
                f"{self._head(statement)}: no such {kind.replace('_', ' ')} is "
                "defined; check the name and argument types",
                statement.start,
            )
        self.objects = [o for o in self.objects if o not in matches]

    def _forget_sequence(self, name: str) -> None:
        self.sequences.pop(name, None)
        self.objects = [
            o for o in self.objects if not (o.kind == "sequence" and o.name == name)
        ]


_OBJECT_KINDS = frozenset(typing.get_args(SqlObject.model_fields["kind"].annotation))

_DROPPED_OBJECT_KINDS = {
    ObjectType.OBJECT_VIEW: "view",
    ObjectType.OBJECT_MATVIEW: "materialized_view",
    ObjectType.OBJECT_FUNCTION: "function",
    ObjectType.OBJECT_PROCEDURE: "function",
    ObjectType.OBJECT_AGGREGATE: "aggregate",
    ObjectType.OBJECT_TRIGGER: "trigger",
    ObjectType.OBJECT_SEQUENCE: "sequence",
}


def _default_name(table: str, columns: typing.Sequence[str], suffix: str) -> str:
    """The name PostgreSQL gives an unnamed constraint or index (63 bytes max)."""
    name = "_".join([table, *columns, suffix]) if columns else f"{table}_{suffix}"
    return name.encode("utf-8")[:63].decode("utf-8", errors="ignore")


def _index_columns(index: Index) -> set[str]:
    columns = {element.column for element in index.elements if element.column}
    for element in index.elements:
        if element.expression is not None:
            columns.update(_expression_columns(element.expression))
    if index.where is not None:
        columns.update(_expression_columns(index.where))
    return columns | set(index.include)


def _rename_in_index(index: Index, old: str, new: str) -> Index:
    elements = [
        element.model_copy(
            update={
                "column": new if element.column == old else element.column,
                "expression": None
                if element.expression is None
                else _rename_in_expression(element.expression, old, new),
            }
        )
        for element in index.elements
    ]
    return index.model_copy(
        update={
            "elements": elements,
            "include": [new if name == old else name for name in index.include],
            "where": None
            if index.where is None
            else _rename_in_expression(index.where, old, new),
        }
    )


def _nextval_sequence(default: str | None) -> str | None:
    """The sequence named by a `nextval('seq'::regclass)` default, if it is one."""
    if default is None or not default.startswith("nextval("):
        return None
    call = _parse_expression(default)
    if not isinstance(call, ast.FuncCall) or len(call.args or ()) != 1:
        return None
    argument = call.args[0]
    if isinstance(argument, ast.TypeCast):
        argument = argument.arg
    if not (isinstance(argument, ast.A_Const) and isinstance(argument.val, ast.String)):
        return None
    return argument.val.sval.removeprefix("public.")


def _option_number(argument: ast.Node) -> int:
    """A sequence option's number; pglast gives those beyond 32 bits as Float."""
    if isinstance(argument, ast.Integer):
        return int(argument.ival)
    return int(argument.fval)


def _statement_end(tokens: list[typing.Any], binds: dict[int, int]) -> int:
    """Where a statement's last token ends: no semicolon, no trailing comment.

    A masked bind is a shorter `$1` token; its end is that of the original bind.
    """
    for token in reversed(tokens):
        if token.name not in _COMMENT_TOKENS and token.name != "ASCII_59":
            return binds.get(token.start, int(token.end) + 1)
    return 0


def _mask_binds(text: str) -> tuple[str, dict[int, int]]:
    """Replace psql binds (`:name`, `:'name'`, `:"name"`) with `$1` for parsing.

    Each bind becomes `$1` padded with spaces to the bind's own length, so every
    position in the masked text is the position in the original. Strings,
    quoted identifiers, comments, dollar-quoted bodies and `::` casts are left
    alone. Returns the masked text and where each bind starts and ends.
    """
    binds: dict[int, int] = {}
    out: list[str] = []
    index = 0
    size = len(text)
    while index < size:
        char = text[index]
        skip = _literal_end(text, index)
        if skip > index:
            out.append(text[index:skip])
            index = skip
            continue
        if char == ":" and index + 1 < size:
            bind_end = _bind_end(text, index)
            if bind_end > index:
                out.append("$1".ljust(bind_end - index))
                binds[index] = bind_end
                index = bind_end
                continue
            if text[index + 1] == ":":
                out.append("::")
                index += 2
                continue
        out.append(char)
        index += 1
    return "".join(out), binds


_BIND = re.compile(r":(?:[A-Za-z_]\w*|'[A-Za-z_]\w*'|\"[A-Za-z_]\w*\")")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def _bind_end(text: str, index: int) -> int:
    previous = text[index - 1] if index > 0 else " "
    # `a::b` is a cast; `arr[lo:hi]` and `x:y` after a name are not binds
    if previous == ":" or previous.isalnum() or previous in "_]).$\"'":
        return index
    match = _BIND.match(text, index)
    return match.end() if match else index


def _literal_end(text: str, index: int) -> int:
    """End of the string, identifier, comment or dollar body starting at `index`."""
    char = text[index]
    if text.startswith("--", index):
        newline = text.find("\n", index)
        return len(text) if newline < 0 else newline
    if text.startswith("/*", index):
        close = text.find("*/", index + 2)
        return len(text) if close < 0 else close + 2
    if char in "'\"":
        position = index + 1
        while position < len(text):
            if text[position] == char:
                if text.startswith(char * 2, position):
                    position += 2
                    continue
                return position + 1
            position += 1
        return len(text)
    if char == "$":
        previous = text[index - 1] if index > 0 else " "
        tag = _DOLLAR_TAG.match(text, index)
        if tag and not (previous.isalnum() or previous == "_"):
            close = text.find(tag.group(0), tag.end())
            return len(text) if close < 0 else close + len(tag.group(0))
    return index
