"""Structured schema changes: the `schema` block of a task file.

A data task may describe its change as data instead of DDL:

    schema:
      targets: [postgresql, sqlite, mariadb]
      changes:
        - create_table:
            name: tag
            columns:
              - {name: id, type: integer, primary_key: true}
              - {name: label, type: string(100), nullable: false, unique: true}
        - add_column:
            table: account
            column: {name: is_verified, type: boolean, nullable: false,
                     default: false}
        - add_foreign_key: {table: attachment, columns: [folder_id],
                            references: folder.id, on_delete: cascade}

Each change is turned into the PostgreSQL statement it stands for and applied
with the DDL reader (`ddl.parse_sql`), so a `schema` block and a `.sql`
reference describing the same change give the same SchemaSpec. Names are taken
exactly as written (they are quoted). Before a change is applied its tables,
columns, types and expressions are checked, and every error names the task
file field, such as `schema.changes[2].add_column.table`.

Types are PostgreSQL type names (`integer`, `varchar(200)`, `numeric(20,6)`,
`timestamptz`, `boolean`, `text`, `jsonb`, an enum created earlier, ...) plus
portable aliases: `string(n)` is `varchar(n)`, and `string` alone is
`varchar(255)` (`STRING_DEFAULT_LENGTH`), because MariaDB refuses a VARCHAR
without a length and 255 characters of utf8mb4 still fit an index key. A bare
`varchar` is refused: give it a length or use `text`. `datetime` is
`timestamp`, `datetimetz` is `timestamptz`, `bytes` is `bytea`.

Defaults: YAML `true`/`false` and numbers are SQL literals, `now` is `now()`
(the renderer writes `sa.func.now()`, CURRENT_TIMESTAMP on SQLite), and any
other string is a SQL expression, so a text default is written with its
quotes: `default: "'open'"`.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from pglast import ast, parser
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.spec import ColumnType, SchemaSpec, Table
from sparc.errors import DDLError, InputError

log = structlog.get_logger(__name__)

__all__ = [
    "STRING_DEFAULT_LENGTH",
    "AddCheck",
    "AddColumn",
    "AddForeignKey",
    "AddUnique",
    "AlterColumn",
    "Change",
    "ColumnRequest",
    "CreateEnum",
    "CreateIndex",
    "CreateTable",
    "DropColumn",
    "DropTable",
    "SchemaRequest",
    "apply_requests",
    "parse_schema_request",
    "type_sql",
]

STRING_DEFAULT_LENGTH = 255
TARGETS = ("postgresql", "sqlite", "mariadb")
Target = Literal["postgresql", "sqlite", "mariadb"]

_ACTIONS = {
    "cascade": "CASCADE",
    "set null": "SET NULL",
    "set default": "SET DEFAULT",
    "restrict": "RESTRICT",
    "no action": "NO ACTION",
}
# types MariaDB cannot put in a key without a prefix length
_UNBOUNDED_KINDS = frozenset({"text", "json", "jsonb", "bytea", "tsvector"})
_TYPE_SHAPE = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(?: [A-Za-z_][A-Za-z0-9_]*)*"
    r"(?:\s*\(\s*\d+\s*(?:,\s*-?\d+\s*)?\))?"
    r"(?: with(?:out)? time zone)?"
    r"(?:\s*\[\s*\])*",
    re.IGNORECASE,
)
_STRING_ALIAS = re.compile(r"string(?:\s*\(\s*(\d+)\s*\))?", re.IGNORECASE)
_SIMPLE_ALIASES = {
    "datetime": "timestamp",
    "datetimetz": "timestamptz",
    "bytes": "bytea",
    "binary": "bytea",
}
_ORDERED_COLUMN = re.compile(r"(.+?)(?:\s+(asc|desc))?", re.IGNORECASE)


def _action(value: object) -> object:
    if isinstance(value, str):
        key = " ".join(value.replace("_", " ").lower().split())
        if key in _ACTIONS:
            return _ACTIONS[key]
    return value


Action = Annotated[
    Literal["CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"],
    BeforeValidator(_action),
]
Name = Annotated[str, Field(min_length=1, max_length=63)]
DefaultValue = bool | int | float | str


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRequest(_Request):
    """A column of `create_table` or `add_column`."""

    name: Name
    type: str
    primary_key: bool = False
    # None means nullable unless the column is part of the primary key
    nullable: bool | None = None
    unique: bool = False
    default: DefaultValue | None = None
    # "table.column"
    references: str | None = None
    on_delete: Action | None = None
    on_update: Action | None = None
    identity: Literal["always", "by_default"] | None = None
    comment: str | None = None


class CreateTable(_Request):
    name: Name
    columns: list[ColumnRequest] = Field(min_length=1)
    comment: str | None = None


class AddColumn(_Request):
    table: Name
    column: ColumnRequest


class AlterColumn(_Request):
    """Change a column; only the fields given change (`default: null` drops it)."""

    table: Name
    column: Name
    type: str | None = None
    nullable: bool | None = None
    default: DefaultValue | None = None


class ReferencedColumns(_Request):
    table: Name
    columns: list[Name] = Field(min_length=1)


class AddForeignKey(_Request):
    table: Name
    columns: list[Name] = Field(min_length=1)
    references: str | ReferencedColumns
    on_delete: Action | None = None
    on_update: Action | None = None
    deferrable: bool = False
    name: Name | None = None


class AddUnique(_Request):
    table: Name
    columns: list[Name] = Field(min_length=1)
    name: Name | None = None


class AddCheck(_Request):
    table: Name
    expression: str = Field(min_length=1)
    name: Name | None = None


class CreateEnum(_Request):
    name: Name
    values: list[str] = Field(min_length=1)


class CreateIndex(_Request):
    """An index; a column may carry an order: `created_at desc`."""

    table: Name
    columns: list[str] = Field(min_length=1)
    unique: bool = False
    where: str | None = None
    method: Name | None = None
    name: Name | None = None


class DropColumn(_Request):
    table: Name
    column: Name


class DropTable(_Request):
    name: Name


class Change(_Request):
    """One change; exactly one of its keys is set."""

    create_table: CreateTable | None = None
    add_column: AddColumn | None = None
    alter_column: AlterColumn | None = None
    add_foreign_key: AddForeignKey | None = None
    add_unique: AddUnique | None = None
    add_check: AddCheck | None = None
    create_enum: CreateEnum | None = None
    create_index: CreateIndex | None = None
    drop_column: DropColumn | None = None
    drop_table: DropTable | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Change:
        given = [name for name in type(self).model_fields if getattr(self, name)]
        if len(given) != 1:
            kinds = ", ".join(type(self).model_fields)
            raise ValueError(
                f"a change has exactly one of the keys {kinds}; found "
                f"{', '.join(given) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name))

    @property
    def body(self) -> _Request:
        return typing.cast(_Request, getattr(self, self.kind))


class SchemaRequest(_Request):
    """A task's `schema` block: the databases to serve and the changes, in order."""

    targets: tuple[Target, ...] = ("postgresql", "sqlite")
    changes: list[Change] = Field(min_length=1)


def parse_schema_request(
    data: object, *, source: Path | str | None = None
) -> SchemaRequest:
    """Validate a task's `schema` block.

    Args:
        data: the block as read from YAML.
        source: the task file, named in errors.

    Raises:
        InputError: the block does not have the documented shape; the message
            names the field, such as `schema.changes[1].add_column.column`.
    """
    split = _split_type(data, "schema")
    if split is not None:
        raise InputError(
            f"{split}: a type with a comma was split by YAML inside {{...}}; quote "
            "it, as in type: 'numeric(20,6)'",
            path=source,
            field=split,
        )
    try:
        return SchemaRequest.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{_field_path(item['loc'])}: {item['msg']}" for item in error.errors()
        ]
        first = _field_path(error.errors()[0]["loc"])
        raise InputError(
            f"the schema block is invalid: {'; '.join(problems)}",
            path=source,
            field=first,
        ) from None


def apply_requests(
    base: SchemaSpec,
    request: SchemaRequest,
    *,
    source: Path | str | None = None,
) -> SchemaSpec:
    """Apply the changes of `request` in order on top of `base`.

    Args:
        base: the schema the project has before the task.
        request: the task's validated `schema` block.
        source: the task file, named in errors.

    Returns:
        The schema after every change.

    Raises:
        InputError: a change names an unknown table or column, duplicates one,
            uses a type or expression that cannot be carried, or a key MariaDB
            could not index; `field` is the offending field's path.
    """
    spec = base
    for number, change in enumerate(request.changes):
        at = f"schema.changes[{number}].{change.kind}"
        step = _Step(spec=spec, at=at, source=source, targets=request.targets)
        sql = getattr(step, f"_{change.kind}")(change.body)
        try:
            spec = parse_sql(sql, source=at, base=spec).spec
        except DDLError as error:
            raise InputError(
                f"{error.message} (from the statement `{sql}`)", path=source, field=at
            ) from error
    log.info(
        "schema_request_applied",
        changes=len(request.changes),
        tables=len(spec.tables),
        targets=list(request.targets),
    )
    return spec


def type_sql(text: str, spec: SchemaSpec, *, field: str = "type") -> str:
    """The PostgreSQL spelling of a request's type string.

    Raises:
        InputError: the string is not a type sparc can carry to every target.
    """
    return _type(text, spec, field, None)[0]


def _split_type(data: object, path: str) -> str | None:
    """Find `{type: numeric(20,6)}` that YAML read as `numeric(20` and `6)`."""
    if isinstance(data, dict):
        value = data.get("type")
        unbalanced = isinstance(value, str) and value.count("(") > value.count(")")
        if unbalanced and any(str(key).endswith(")") for key in data):
            return f"{path}.type"
        for key, item in data.items():
            found = _split_type(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found = _split_type(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "schema"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}"
    return path


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _error(message: str, field: str, source: Path | str | None) -> InputError:
    return InputError(f"{field}: {message}", path=source, field=field)


def _type(
    text: str, spec: SchemaSpec, field: str, source: Path | str | None
) -> tuple[str, ColumnType]:
    """Check a type string and return its SQL and the ColumnType it reads as."""
    written = " ".join(text.split())
    alias = _STRING_ALIAS.fullmatch(written)
    if alias:
        written = f"varchar({alias.group(1) or STRING_DEFAULT_LENGTH})"
    written = _SIMPLE_ALIASES.get(written.lower(), written)
    if not _TYPE_SHAPE.fullmatch(written):
        raise _error(
            f"{text!r} is not a type name; write one like integer, varchar(200), "
            "numeric(20,6), timestamptz or an enum created earlier",
            field,
            source,
        )
    if re.fullmatch(r"(?:character varying|varchar)(?:\s*\[\s*\])*", written, re.I):
        raise _error(
            f"{text!r} has no length, which MariaDB refuses; write varchar(n) or "
            "string(n), or use text",
            field,
            source,
        )

    probe = f"CREATE TABLE sparc_type_probe (value {_quoted_type(written, spec)})"
    try:
        parsed = parse_sql(probe, source=field, base=_types_only(spec)).spec
    except DDLError as error:
        raise _error(
            f"{text!r} is not a type: {error.message}", field, source
        ) from None
    table = parsed.table("sparc_type_probe")
    if table is None or len(table.columns) != 1:
        raise _error(f"{text!r} is not a single type", field, source)
    column = table.columns[0]
    if column.type.kind == "other":
        raise _error(
            f"{text!r} is not a type sparc carries to its targets; use a standard "
            "type (integer, bigint, numeric(p,s), varchar(n), text, boolean, date, "
            "timestamp[tz], uuid, jsonb, bytea) or an enum",
            field,
            source,
        )
    return _quoted_type(written, spec), column.type


def _quoted_type(written: str, spec: SchemaSpec) -> str:
    # enum and domain names are quoted so that their case is kept
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)((?:\s*\[\s*\])*)", written)
    if match and (spec.enum(match.group(1)) or spec.domain(match.group(1))):
        return _quote(match.group(1)) + match.group(2)
    return written


def _types_only(spec: SchemaSpec) -> SchemaSpec:
    return SchemaSpec(enums=spec.enums, domains=spec.domains)


def _expression(text: str, field: str, source: Path | str | None) -> ast.Node:
    """Parse one SQL expression; refuse anything that is not exactly that."""
    try:
        statements = parser.parse_sql(f"SELECT {text}")
    except parser.ParseError as error:
        raise _error(
            f"{text!r} is not a SQL expression ({error.args[0]})", field, source
        ) from None
    if len(statements) != 1:
        raise _error(f"{text!r} is more than one expression", field, source)
    select = statements[0].stmt
    if (
        not isinstance(select, ast.SelectStmt)
        or select.fromClause
        or select.whereClause
        or len(select.targetList or ()) != 1
        or select.targetList[0].name is not None
    ):
        raise _error(f"{text!r} is not a single SQL expression", field, source)
    return typing.cast(ast.Node, select.targetList[0].val)


def _column_refs(node: ast.Node) -> set[str]:
    found: set[str] = set()

    def visit(item: Any) -> None:
        if isinstance(item, ast.ColumnRef):
            fields = [f.sval for f in item.fields if isinstance(f, ast.String)]
            if fields:
                found.add(fields[-1])
        if isinstance(item, ast.Node):
            for name in item:
                visit(getattr(item, name))
        elif isinstance(item, tuple):
            for element in item:
                visit(element)

    visit(node)
    return found


def _contains(node: ast.Node, kinds: tuple[type, ...]) -> bool:
    def visit(item: Any) -> bool:
        if isinstance(item, kinds):
            return True
        if isinstance(item, ast.Node):
            return any(visit(getattr(item, name)) for name in item)
        if isinstance(item, tuple):
            return any(visit(element) for element in item)
        return False

    return visit(node)


class _Step:
    """Checks one change against the current spec and writes its SQL."""

    def __init__(
        self,
        *,
        spec: SchemaSpec,
        at: str,
        source: Path | str | None,
        targets: tuple[str, ...],
    ) -> None:
        self.spec = spec
        self.at = at
        self.source = source
        self.targets = targets

    # -- checks -----------------------------------------------------------------

    def fail(self, field: str, message: str) -> InputError:
        return _error(message, f"{self.at}.{field}" if field else self.at, self.source)

    def table(self, name: str, field: str) -> Table:
        table = self.spec.table(name)
        if table is None:
            known = ", ".join(t.name for t in self.spec.tables) or "none yet"
            raise self.fail(
                field,
                f"table {name} does not exist (tables: {known}); create it in an "
                "earlier change or task",
            )
        return table

    def column(self, table: Table, name: str, field: str) -> None:
        if table.column(name) is None:
            known = ", ".join(c.name for c in table.columns)
            raise self.fail(
                field,
                f"column {table.name}.{name} does not exist (columns: {known})",
            )

    def columns(self, table: Table, names: list[str], field: str) -> None:
        if len(set(names)) != len(names):
            raise self.fail(field, f"lists a column twice: {', '.join(names)}")
        for index, name in enumerate(names):
            self.column(table, name, f"{field}[{index}]")

    def type(self, text: str, field: str) -> tuple[str, ColumnType]:
        return _type(text, self.spec, f"{self.at}.{field}", self.source)

    def keyable(self, table: Table, names: list[str], field: str) -> None:
        """MariaDB cannot index unbounded types without a prefix length."""
        if "mariadb" not in self.targets:
            return
        for name in names:
            column = table.column(name)
            if column is not None and column.type.kind in _UNBOUNDED_KINDS:
                raise self.fail(
                    field,
                    f"{table.name}.{name} is {column.type.kind}, which MariaDB "
                    "cannot use as a key; give it a bounded type such as "
                    "varchar(255)",
                )

    def default(self, value: DefaultValue, field: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        text = value.strip()
        if text.lower() == "now":
            return "now()"
        node = _expression(text, f"{self.at}.{field}", self.source)
        if _contains(node, (ast.ColumnRef, ast.SubLink)):
            raise self.fail(
                field,
                f"{value!r} is not a constant; a default cannot read columns or "
                f"tables (write a text default with quotes: \"'{text}'\")",
            )
        return text

    def expression(self, table: Table, text: str, field: str) -> str:
        node = _expression(text, f"{self.at}.{field}", self.source)
        if _contains(node, (ast.SubLink,)):
            raise self.fail(field, "a subquery cannot appear here")
        for name in sorted(_column_refs(node)):
            self.column(table, name, field)
        return text

    def reference(
        self, target: str | ReferencedColumns, count: int, field: str
    ) -> tuple[Table, list[str]]:
        if isinstance(target, str):
            table_name, dot, column = target.rpartition(".")
            if not dot or not table_name or not column:
                raise self.fail(
                    field, f"{target!r} is not table.column; write e.g. folder.id"
                )
            names = [column]
        else:
            table_name, names = target.table, list(target.columns)
        table = self.table(table_name, field)
        self.columns(table, names, field)
        if len(names) != count:
            raise self.fail(
                field,
                f"references {len(names)} column(s) for {count} local column(s)",
            )
        return table, names

    def single_reference(
        self, target: str, field: str, table: str, new_columns: list[str] | None
    ) -> tuple[str, str]:
        """A column's `references: table.column`, which may be its own new table."""
        table_name, dot, column = target.rpartition(".")
        if not dot or not table_name or not column:
            raise self.fail(
                field, f"{target!r} is not table.column; write e.g. folder.id"
            )
        if new_columns is not None and table_name == table:
            if column not in new_columns:
                raise self.fail(field, f"column {table}.{column} does not exist")
            return table_name, column
        ref_table, ref_columns = self.reference(target, 1, field)
        return ref_table.name, ref_columns[0]

    # -- SQL of each change -------------------------------------------------------

    def column_sql(
        self,
        column: ColumnRequest,
        field: str,
        *,
        own_key: bool,
        table: str,
        new_columns: list[str] | None = None,
    ) -> tuple[str, list[str]]:
        """The column definition and the statements that follow it."""
        sql_type, column_type = self.type(column.type, f"{field}.type")
        parts = [_quote(column.name), sql_type]
        nullable = column.nullable
        if nullable is None:
            nullable = not column.primary_key
        if column.primary_key and column.nullable:
            raise self.fail(f"{field}.nullable", "a primary key column cannot be null")
        if not nullable:
            parts.append("NOT NULL")
        if column.default is not None:
            parts.append(f"DEFAULT {self.default(column.default, f'{field}.default')}")
        if column.identity is not None:
            if column_type.kind not in ("smallint", "integer", "bigint"):
                raise self.fail(f"{field}.identity", "identity needs an integer type")
            when = "ALWAYS" if column.identity == "always" else "BY DEFAULT"
            parts.append(f"GENERATED {when} AS IDENTITY")
        if column.primary_key and own_key:
            parts.append("PRIMARY KEY")
        if column.unique:
            if "mariadb" in self.targets and column_type.kind in _UNBOUNDED_KINDS:
                raise self.fail(
                    f"{field}.unique",
                    f"{column.name} is {column_type.kind}, which MariaDB cannot "
                    "use as a key; give it a bounded type such as varchar(255)",
                )
            parts.append("UNIQUE")
        after = []
        if column.references is not None:
            ref_table, ref_column = self.single_reference(
                column.references, f"{field}.references", table, new_columns
            )
            # added after the table, so a table may reference itself
            after.append(
                " ".join(
                    [
                        f"ALTER TABLE {_quote(table)} ADD FOREIGN KEY",
                        f"({_quote(column.name)}) REFERENCES {_quote(ref_table)}",
                        f"({_quote(ref_column)})",
                        *_actions(column.on_delete, column.on_update),
                    ]
                )
            )
        elif column.on_delete or column.on_update:
            raise self.fail(
                f"{field}.on_delete", "on_delete and on_update need references"
            )
        if column.comment is not None:
            after.append(
                f"COMMENT ON COLUMN {_quote(table)}.{_quote(column.name)} IS "
                f"{_literal(column.comment)}"
            )
        return " ".join(parts), after

    def _create_table(self, change: CreateTable) -> str:
        if self.spec.table(change.name) is not None:
            raise self.fail("name", f"table {change.name} already exists")
        names = [column.name for column in change.columns]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise self.fail(f"columns[{index}].name", f"column {name} is repeated")
        keys = [column.name for column in change.columns if column.primary_key]
        if "mariadb" in self.targets:
            for index, column in enumerate(change.columns):
                if column.primary_key:
                    _, column_type = self.type(column.type, f"columns[{index}].type")
                    if column_type.kind in _UNBOUNDED_KINDS:
                        raise self.fail(
                            f"columns[{index}].type",
                            f"{column.name} is {column_type.kind}, which MariaDB "
                            "cannot use as a key",
                        )

        definitions, after = [], []
        for index, column in enumerate(change.columns):
            sql, more = self.column_sql(
                column,
                f"columns[{index}]",
                own_key=len(keys) == 1,
                table=change.name,
                new_columns=names,
            )
            definitions.append(sql)
            after.extend(more)
        if len(keys) > 1:
            definitions.append(f"PRIMARY KEY ({', '.join(map(_quote, keys))})")
        statements = [f"CREATE TABLE {_quote(change.name)} ({', '.join(definitions)})"]
        if change.comment is not None:
            statements.append(
                f"COMMENT ON TABLE {_quote(change.name)} IS {_literal(change.comment)}"
            )
        return ";\n".join([*statements, *after])

    def _add_column(self, change: AddColumn) -> str:
        table = self.table(change.table, "table")
        if table.column(change.column.name) is not None:
            raise self.fail(
                "column.name",
                f"column {table.name}.{change.column.name} already exists",
            )
        if change.column.primary_key and table.primary_key is not None:
            raise self.fail(
                "column.primary_key", f"table {table.name} already has a primary key"
            )
        sql, after = self.column_sql(
            change.column, "column", own_key=True, table=table.name
        )
        return ";\n".join(
            [f"ALTER TABLE {_quote(table.name)} ADD COLUMN {sql}", *after]
        )

    def _alter_column(self, change: AlterColumn) -> str:
        table = self.table(change.table, "table")
        self.column(table, change.column, "column")
        given = change.model_fields_set - {"table", "column"}
        if not given:
            raise self.fail("", "names no change: give type, nullable or default")
        target = (
            f"ALTER TABLE {_quote(table.name)} ALTER COLUMN {_quote(change.column)}"
        )
        commands = []
        if change.type is not None:
            sql_type, _ = self.type(change.type, "type")
            commands.append(f"{target} TYPE {sql_type}")
        elif "type" in given:
            raise self.fail("type", "a column cannot lose its type; name one")
        if change.nullable is not None:
            commands.append(f"{target} {'DROP' if change.nullable else 'SET'} NOT NULL")
        elif "nullable" in given:
            raise self.fail("nullable", "give true or false")
        if "default" in given:
            if change.default is None:
                commands.append(f"{target} DROP DEFAULT")
            else:
                default = self.default(change.default, "default")
                commands.append(f"{target} SET DEFAULT {default}")
        return ";\n".join(commands)

    def _add_foreign_key(self, change: AddForeignKey) -> str:
        table = self.table(change.table, "table")
        self.columns(table, list(change.columns), "columns")
        ref_table, ref_columns = self.reference(
            change.references, len(change.columns), "references"
        )
        name = f"CONSTRAINT {_quote(change.name)} " if change.name else ""
        parts = [
            f"ALTER TABLE {_quote(table.name)} ADD {name}FOREIGN KEY",
            f"({', '.join(map(_quote, change.columns))})",
            f"REFERENCES {_quote(ref_table.name)}",
            f"({', '.join(map(_quote, ref_columns))})",
            *_actions(change.on_delete, change.on_update),
        ]
        if change.deferrable:
            parts.append("DEFERRABLE")
        return " ".join(parts)

    def _add_unique(self, change: AddUnique) -> str:
        table = self.table(change.table, "table")
        self.columns(table, list(change.columns), "columns")
        self.keyable(table, list(change.columns), "columns")
        if any(u.columns == change.columns for u in table.unique_constraints):
            raise self.fail(
                "columns",
                f"{table.name} already has a unique constraint on "
                f"{', '.join(change.columns)}",
            )
        name = f"CONSTRAINT {_quote(change.name)} " if change.name else ""
        return (
            f"ALTER TABLE {_quote(table.name)} ADD {name}UNIQUE "
            f"({', '.join(map(_quote, change.columns))})"
        )

    def _add_check(self, change: AddCheck) -> str:
        table = self.table(change.table, "table")
        expression = self.expression(table, change.expression, "expression")
        name = f"CONSTRAINT {_quote(change.name)} " if change.name else ""
        return f"ALTER TABLE {_quote(table.name)} ADD {name}CHECK ({expression})"

    def _create_enum(self, change: CreateEnum) -> str:
        if self.spec.enum(change.name) or self.spec.domain(change.name):
            raise self.fail("name", f"type {change.name} already exists")
        if len(set(change.values)) != len(change.values):
            raise self.fail("values", "lists a value twice")
        values = ", ".join(_literal(value) for value in change.values)
        return f"CREATE TYPE {_quote(change.name)} AS ENUM ({values})"

    def _create_index(self, change: CreateIndex) -> str:
        table = self.table(change.table, "table")
        keys, names = [], []
        for index, entry in enumerate(change.columns):
            match = _ORDERED_COLUMN.fullmatch(entry.strip())
            assert match is not None
            column, order = match.group(1), match.group(2)
            self.column(table, column, f"columns[{index}]")
            names.append(column)
            keys.append(_quote(column) + (f" {order.upper()}" if order else ""))
        if change.unique:
            self.keyable(table, names, "columns")
        if change.name and any(
            i.name == change.name for t in self.spec.tables for i in t.indexes
        ):
            raise self.fail("name", f"index {change.name} already exists")
        parts = ["CREATE UNIQUE INDEX" if change.unique else "CREATE INDEX"]
        if change.name:
            parts.append(_quote(change.name))
        parts.append(f"ON {_quote(table.name)}")
        if change.method:
            parts.append(f"USING {change.method}")
        parts.append(f"({', '.join(keys)})")
        if change.where is not None:
            parts.append(f"WHERE {self.expression(table, change.where, 'where')}")
        return " ".join(parts)

    def _drop_column(self, change: DropColumn) -> str:
        table = self.table(change.table, "table")
        self.column(table, change.column, "column")
        return f"ALTER TABLE {_quote(table.name)} DROP COLUMN {_quote(change.column)}"

    def _drop_table(self, change: DropTable) -> str:
        table = self.table(change.name, "name")
        return f"DROP TABLE {_quote(table.name)}"


def _actions(on_delete: str | None, on_update: str | None) -> list[str]:
    parts = []
    if on_delete:
        parts.append(f"ON DELETE {on_delete}")
    if on_update:
        parts.append(f"ON UPDATE {on_update}")
    return parts
