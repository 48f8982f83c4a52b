"""Where schema objects are written, and which findings a comment silences.

The SchemaSpec has no positions, so this module reads the same SQL (or
models.py) again and maps each object to `file:line` under a key:

    table                    `orders`
    column                   `orders.user_id`
    index                    `orders.index:idx_orders_user_date`
    primary key              `orders.pk`
    unique / foreign key     `orders.unique:email`, `orders.fk:user_id`

An inline `-- sparc: ignore HD301, HD402` comment inside a statement or on the
line right above it silences those codes for findings located in that
statement (`# sparc: ignore ...` does the same in Python files).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast
from pglast import ast
from pglast.enums.parsenodes import AlterTableType, ConstrType

from sparc.agents.hephaestus.ddl import MARKDOWN_SUFFIXES, sql_from_markdown

_IGNORE = re.compile(
    r"(?:--|#)\s*sparc:\s*ignore\s+([A-Z]{2}\d{3}(?:[\s,]+[A-Z]{2}\d{3})*)",
    re.IGNORECASE,
)
_CODE = re.compile(r"[A-Z]{2}\d{3}", re.IGNORECASE)
_DIALECTS = re.compile(r"^\s*--\s*dialects:\s*([a-z0-9_, ]+)", re.IGNORECASE | re.M)


def table_key(table: str) -> str:
    return table


def column_key(table: str, column: str) -> str:
    return f"{table}.{column}"


def index_key(table: str, name: str) -> str:
    return f"{table}.index:{name}"


def primary_key_key(table: str) -> str:
    return f"{table}.pk"


def unique_key(table: str, columns: Iterable[str]) -> str:
    return f"{table}.unique:{','.join(columns)}"


def foreign_key_key(table: str, columns: Iterable[str]) -> str:
    return f"{table}.fk:{','.join(columns)}"


@dataclass
class SourceMap:
    """Positions of the objects of one or more files, and their suppressions."""

    locations: dict[str, str] = field(default_factory=dict)
    # display name -> line -> codes silenced there
    suppressed: dict[str, dict[int, frozenset[str]]] = field(default_factory=dict)

    def merge(self, other: SourceMap) -> None:
        """Add `other`; later files win for objects both define (ALTERs)."""
        self.locations.update(other.locations)
        self.suppressed.update(other.suppressed)

    def is_suppressed(self, code: str, location: str) -> bool:
        path, line = split_location(location)
        if line is None:
            return False
        return code.upper() in self.suppressed.get(path, {}).get(line, frozenset())


def split_location(location: str) -> tuple[str, int | None]:
    """`file:line` -> (file, line); anything else -> (location, None)."""
    path, sep, line = location.rpartition(":")
    if sep and line.isdigit():
        return path, int(line)
    return location, None


def declared_dialects(text: str) -> tuple[str, ...] | None:
    """The `-- dialects: postgresql, sqlite` header of a case-style SQL file."""
    match = _DIALECTS.search(text)
    if match is None:
        return None
    names = [name.strip().lower() for name in match.group(1).split(",")]
    return tuple(name for name in names if name) or None


def sql_text_of(path: Path, text: str) -> str:
    """The SQL of a file with line numbers kept: markdown prose becomes blank."""
    if path.suffix.lower() not in MARKDOWN_SUFFIXES:
        return text
    lines = [""] * (text.count("\n") + 1)
    for first_line, sql in sql_from_markdown(text):
        for offset, line in enumerate(sql.split("\n")):
            lines[first_line - 1 + offset] = line
    return "\n".join(lines)


class _Lines:
    def __init__(self, text: str) -> None:
        self._starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


@dataclass(frozen=True)
class Statement:
    """One SQL statement: its parsed node and its 1-based line span."""

    node: Any
    text: str
    first_line: int
    last_line: int
    start: int
    # where the parsed text begins: node locations are relative to it
    offset: int = 0


def split_statements(sql: str) -> list[Statement]:
    """Parse `sql` with PostgreSQL's parser; spans skip leading comments.

    Statements are cut by PostgreSQL's scanner first and parsed one by one, so
    a statement the parser refuses (a query with psql binds such as `:limit`)
    is skipped instead of hiding the positions of all the others.
    """
    lines = _Lines(sql)
    statements: list[Statement] = []
    for piece in pglast.split(sql, with_parser=False, only_slices=True):
        offset = piece.start or 0
        text = sql[piece]
        try:
            parsed = pglast.parse_sql(text)
        except pglast.parser.ParseError:
            continue
        for raw in parsed:
            begin = offset + (raw.stmt_location or 0)
            end = begin + raw.stmt_len if raw.stmt_len else offset + len(text)
            start = _skip_blank_and_comments(sql, begin)
            statements.append(
                Statement(
                    node=raw.stmt,
                    text=sql[start:end].strip(),
                    first_line=lines.line_of(start),
                    last_line=lines.line_of(max(start, end - 1)),
                    start=start,
                    offset=offset,
                )
            )
    return statements


def _skip_blank_and_comments(sql: str, position: int) -> int:
    while position < len(sql):
        if sql[position].isspace():
            position += 1
        elif sql.startswith("--", position):
            newline = sql.find("\n", position)
            position = len(sql) if newline < 0 else newline + 1
        elif sql.startswith("/*", position):
            close = sql.find("*/", position)
            position = len(sql) if close < 0 else close + 2
        else:
            break
    return position


def suppressions(
    text: str, spans: Iterable[tuple[int, int]]
) -> dict[int, frozenset[str]]:
    """Codes silenced per line: a comment applies to its whole statement span."""
    by_line: dict[int, set[str]] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        for match in _IGNORE.finditer(line):
            codes = {code.upper() for code in _CODE.findall(match.group(1))}
            by_line.setdefault(number, set()).update(codes)
    if not by_line:
        return {}

    silenced: dict[int, frozenset[str]] = {}
    for first, last in spans:
        codes: set[str] = set()
        for number in range(first - 1, last + 1):
            codes |= by_line.get(number, set())
        if codes:
            for number in range(first, last + 1):
                silenced[number] = frozenset(codes | silenced.get(number, set()))
    return silenced


def map_sql(sql: str, *, display: str) -> SourceMap:
    """Positions and suppressions of the objects the statements of `sql` define."""
    lines = _Lines(sql)
    source = SourceMap()
    statements = split_statements(sql)

    def put(key: str, offset: int) -> None:
        source.locations[key] = f"{display}:{lines.line_of(offset)}"

    for statement in statements:
        for key, offset in _statement_objects(statement):
            put(key, offset)
    source.suppressed[display] = suppressions(
        sql, ((s.first_line, s.last_line) for s in statements)
    )
    return source


def _statement_objects(statement: Statement) -> Iterator[tuple[str, int]]:
    node = statement.node
    start = statement.start

    def _located(item: Any, fallback: int) -> int:
        location = getattr(item, "location", None)
        if isinstance(location, int) and location >= 0:
            return statement.offset + location
        return fallback

    if isinstance(node, ast.CreateStmt):
        table = node.relation.relname
        yield table_key(table), start
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                at = _located(element, start)
                yield column_key(table, element.colname), at
                for constraint in element.constraints or ():
                    yield from _constraint_keys(
                        table, constraint, _located(constraint, at), element.colname
                    )
            elif isinstance(element, ast.Constraint):
                yield from _constraint_keys(
                    table, element, _located(element, start), None
                )
    elif isinstance(node, ast.IndexStmt) and node.idxname:
        yield index_key(node.relation.relname, node.idxname), start
    elif isinstance(node, ast.AlterTableStmt) and node.relation is not None:
        table = node.relation.relname
        for command in node.cmds or ():
            at = start
            if command.subtype == AlterTableType.AT_AddColumn:
                column = command.def_
                at = _located(column, start)
                yield column_key(table, column.colname), at
                for constraint in column.constraints or ():
                    yield from _constraint_keys(
                        table, constraint, _located(constraint, at), column.colname
                    )
            elif command.subtype == AlterTableType.AT_AddConstraint:
                yield from _constraint_keys(
                    table, command.def_, _located(command.def_, start), None
                )


def _constraint_keys(
    table: str, constraint: ast.Constraint, at: int, column: str | None
) -> Iterator[tuple[str, int]]:
    kind = constraint.contype
    if kind == ConstrType.CONSTR_PRIMARY:
        yield primary_key_key(table), at
    elif kind == ConstrType.CONSTR_UNIQUE:
        columns = _names(constraint.keys) or ([column] if column else [])
        yield unique_key(table, columns), at
    elif kind == ConstrType.CONSTR_FOREIGN:
        columns = _names(constraint.fk_attrs) or ([column] if column else [])
        yield foreign_key_key(table, columns), at


def _names(items: Any) -> list[str]:
    return [item.sval for item in items or ()]


# -- models.py -------------------------------------------------------------------

_TABLENAME = re.compile(r"""^\s+__tablename__\s*=\s*["']([^"']+)["']""")
_CLASS = re.compile(r"^class\s")
_ATTRIBUTE = re.compile(r"^\s+(\w+)\s*:\s*Mapped\[")
_EXPLICIT_NAME = re.compile(r"""mapped_column\(\s*["']([^"']+)["']""")
_INDEX = re.compile(r"""\bIndex\(\s*["']([^"']+)["']""")
# a Core table: `name = sa.Table(`, its name and each `sa.Column(` name on a
# line of their own or after the opening parenthesis
_CORE_TABLE = re.compile(r"^\w+\s*=\s*sa\.Table\(\s*$")
_NAME_LINE = re.compile(r"""^\s+["']([^"']+)["'],\s*$""")
_CORE_COLUMN = re.compile(r"""\bsa\.Column\((?:\s*["']([^"']+)["'])?""")


def map_models(text: str, *, display: str) -> SourceMap:
    """Positions of tables, columns and indexes in a typed declarative models.py."""
    source = SourceMap()
    lines = text.split("\n")
    class_start = 0
    table: str | None = None
    pending: list[tuple[str, int]] = []
    core = False
    column_at: int | None = None
    for number, line in enumerate(lines, start=1):
        if _CLASS.match(line) or _CORE_TABLE.match(line):
            class_start, table, pending = number, None, []
            core, column_at = not _CLASS.match(line), None
            continue
        named = _NAME_LINE.match(line) if core else None
        if named and table is None:
            table = named.group(1)
            source.locations[table_key(table)] = f"{display}:{class_start}"
            continue
        if named and column_at is not None:
            source.locations[f"{table}.{named.group(1)}"] = f"{display}:{column_at}"
            column_at = None
            continue
        column = _CORE_COLUMN.search(line) if core and table else None
        if column and column.group(1):
            source.locations[f"{table}.{column.group(1)}"] = f"{display}:{number}"
        elif column:
            column_at = number
        named = _TABLENAME.match(line)
        if named:
            table = named.group(1)
            source.locations[table_key(table)] = f"{display}:{class_start}"
            for key, at in pending:
                source.locations[f"{table}{key}"] = f"{display}:{at}"
            continue
        for key, at in _model_keys(line, number):
            if table is None:
                pending.append((key, at))
            else:
                source.locations[f"{table}{key}"] = f"{display}:{at}"
    source.suppressed[display] = _python_suppressions(lines)
    return source


def _model_keys(line: str, number: int) -> Iterator[tuple[str, int]]:
    attribute = _ATTRIBUTE.match(line)
    if attribute:
        explicit = _EXPLICIT_NAME.search(line)
        name = explicit.group(1) if explicit else attribute.group(1)
        yield f".{name}", number
    for index in _INDEX.finditer(line):
        yield f".index:{index.group(1)}", number


def _python_suppressions(lines: list[str]) -> dict[int, frozenset[str]]:
    """A `# sparc: ignore` comment covers its own line and the line below."""
    silenced: dict[int, set[str]] = {}
    for number, line in enumerate(lines, start=1):
        for match in _IGNORE.finditer(line):
            codes = {code.upper() for code in _CODE.findall(match.group(1))}
            for target in (number, number + 1):
                silenced.setdefault(target, set()).update(codes)
    return {number: frozenset(codes) for number, codes in silenced.items()}


def python_suppressions(text: str) -> dict[int, frozenset[str]]:
    return _python_suppressions(text.split("\n"))
