"""The workload: statements to tune for, and the index candidates they suggest.

Statements are read with pglast (PostgreSQL's own parser). A column is a
candidate key when a statement compares it with a value (equality, range,
IN, BETWEEN) or joins on it; columns a foreign key points from are
candidates even without a statement, because PostgreSQL looks them up on
every delete or key update of the referenced row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pglast
import structlog
from pglast import ast
from pglast.enums import A_Expr_Kind

from sparc.agents.hephaestus.scripts import read_named_queries
from sparc.agents.hephaestus.tune.collect import DatabaseSnapshot, IndexStats
from sparc.errors import InputError

log = structlog.get_logger(__name__)

_NAME_LINE = re.compile(r"^--\s*name:\s*\S+\s*$", re.MULTILINE)
_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_POSITIONAL = re.compile(r"\$(\d+)\b")
_RANGE_OPERATORS = {"<", "<=", ">", ">="}
_SCANNED_KINDS = (
    A_Expr_Kind.AEXPR_OP,
    A_Expr_Kind.AEXPR_IN,
    A_Expr_Kind.AEXPR_BETWEEN,
)


@dataclass(frozen=True)
class Statement:
    """One workload statement: its text as written and how PostgreSQL takes it."""

    name: str
    text: str
    # `:name` binds rewritten as $1, $2, ... for PREPARE
    positional: str
    binds: tuple[str, ...]
    source: str = "workload"


@dataclass(frozen=True)
class Candidate:
    """An index worth measuring: a table, its key columns and why."""

    schema: str
    table: str
    columns: tuple[str, ...]
    reasons: tuple[str, ...]
    statements: tuple[Statement, ...]


@dataclass
class _Access:
    equality: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)


def read_workload(sql_text: str, *, source: str = "workload") -> list[Statement]:
    """The statements of a workload file.

    A file in the `performance_queries.sql` format (`-- name:` lines) keeps its
    names; other text is split at semicolons and named `<source>_<n>`.

    Raises:
        InputError: the text does not split into statements.
    """
    if _NAME_LINE.search(sql_text):
        pairs = read_named_queries(sql_text)
    else:
        try:
            parts = pglast.split(sql_text, with_parser=False)
        except pglast.parser.ParseError as error:
            raise InputError(
                f"cannot split the workload: {error}", path=source
            ) from error
        stem = re.sub(r"\W", "_", source.rsplit("/", 1)[-1].split(".")[0]) or "query"
        pairs = [
            (f"{stem}_{n}", p.strip()) for n, p in enumerate(parts, 1) if p.strip()
        ]
    return [statement(name, text, source=source) for name, text in pairs]


def statement(name: str, text: str, *, source: str = "workload") -> Statement:
    """A workload statement; psql `:name` binds become positional parameters."""
    binds: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in binds:
            binds.append(match.group(1))
        return f"${binds.index(match.group(1)) + 1}"

    out = []
    for kind, chunk in _tokens(text):
        if kind == "code":
            # hide casts so `x::int` is not read as a bind named int
            chunk = "::".join(_BIND.sub(number, part) for part in chunk.split("::"))
        out.append(chunk)
    return Statement(name, text.strip(), "".join(out).strip(), tuple(binds), source)


def named_binds(text: str) -> str:
    """`$1`-style parameters (as pg_stat_statements shows them) as `:p1` binds."""
    out = []
    for kind, chunk in _tokens(text):
        out.append(_POSITIONAL.sub(r":p\1", chunk) if kind == "code" else chunk)
    return "".join(out)


def candidates(
    statements: Sequence[Statement], snapshot: DatabaseSnapshot
) -> list[Candidate]:
    """Index candidates from the workload's predicates and unindexed foreign keys.

    A candidate already served by an index (its columns lead a valid btree
    index without predicate) is left out.
    """
    found: dict[tuple[str, str, tuple[str, ...]], Candidate] = {}

    def add(
        schema: str,
        table: str,
        columns: Sequence[str],
        reason: str,
        used_by: list[Statement],
    ) -> None:
        key = (schema, table, tuple(columns))
        if _served(snapshot.indexes_of(schema, table), key[2]):
            return
        earlier = found.get(key)
        if earlier is None:
            found[key] = Candidate(schema, table, key[2], (reason,), tuple(used_by))
            return
        reasons = earlier.reasons + ((reason,) if reason not in earlier.reasons else ())
        merged = earlier.statements + tuple(
            s for s in used_by if s not in earlier.statements
        )
        found[key] = Candidate(schema, table, key[2], reasons, merged)

    for item in statements:
        for (schema, table), access in _accesses(item, snapshot).items():
            for column in access.equality + access.ranges:
                add(schema, table, [column], f"filtered in {item.name}", [item])
            for column in access.joins:
                add(schema, table, [column], f"joined on in {item.name}", [item])
            keys = list(dict.fromkeys(access.equality))
            tail = [c for c in access.ranges if c not in keys][:1]
            if len(keys) + len(tail) > 1:
                add(schema, table, keys + tail, f"filtered in {item.name}", [item])

    for fk in snapshot.foreign_keys:
        probe = statement(
            f"fk_{fk.name}",
            f"SELECT 1 FROM ONLY {_quote(fk.schema)}.{_quote(fk.table)} WHERE "
            + " AND ".join(f"{_quote(c)} = :{_bind(c)}" for c in fk.columns),
            source="foreign key lookup",
        )
        users = [
            s for s in statements if (fk.schema, fk.table) in _accesses(s, snapshot)
        ]
        add(
            fk.schema,
            fk.table,
            fk.columns,
            f"foreign key {fk.name} to {fk.ref_table}",
            [*users, probe],
        )
    log.debug("index_candidates", count=len(found))
    return list(found.values())


def referenced_tables(
    item: Statement, snapshot: DatabaseSnapshot
) -> set[tuple[str, str]]:
    """The tables of the snapshot a statement reads or writes."""
    tree = _parse(item)
    if tree is None:
        return set()
    names = set()
    for node in _walk(tree):
        if isinstance(node, ast.RangeVar):
            resolved = _resolve(node, snapshot)
            if resolved is not None:
                names.add(resolved)
    return names


def _accesses(
    item: Statement, snapshot: DatabaseSnapshot
) -> dict[tuple[str, str], _Access]:
    tree = _parse(item)
    if tree is None:
        return {}
    accesses: dict[tuple[str, str], _Access] = {}
    for node in _walk(tree):
        if isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt):
            scope = _scope(node, snapshot)
            for qual in _quals(node):
                _read_predicate(qual, scope, snapshot, accesses)
    return accesses


def _parse(item: Statement) -> Any:
    try:
        return pglast.parse_sql(item.positional)
    except pglast.parser.ParseError:
        log.warning("workload_statement_unparsed", statement=item.name)
        return None


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, tuple | list):
        for child in node:
            yield from _walk(child)
    elif isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _walk(getattr(node, attribute))


def _scope(node: Any, snapshot: DatabaseSnapshot) -> dict[str, tuple[str, str]]:
    """Alias (or table name) -> table, for the relations in one query level."""
    scope: dict[str, tuple[str, str]] = {}
    roots: list[Any] = []
    if isinstance(node, ast.SelectStmt):
        roots = list(node.fromClause or ())
    elif isinstance(node, ast.UpdateStmt):
        roots = [node.relation, *(node.fromClause or ())]
    elif isinstance(node, ast.DeleteStmt):
        roots = [node.relation, *(node.usingClause or ())]
    pending = list(roots)
    while pending:
        item = pending.pop()
        if isinstance(item, ast.JoinExpr):
            pending.extend([item.larg, item.rarg])
        elif isinstance(item, ast.RangeVar):
            resolved = _resolve(item, snapshot)
            if resolved is not None:
                alias = item.alias.aliasname if item.alias else item.relname
                scope[alias] = resolved
    return scope


def _quals(node: Any) -> Iterator[Any]:
    if node.whereClause is not None:
        yield node.whereClause
    pending = list(getattr(node, "fromClause", None) or ())
    while pending:
        item = pending.pop()
        if isinstance(item, ast.JoinExpr):
            if item.quals is not None:
                yield item.quals
            pending.extend([item.larg, item.rarg])


def _resolve(node: ast.RangeVar, snapshot: DatabaseSnapshot) -> tuple[str, str] | None:
    schemas = [node.schemaname] if node.schemaname else ["public"]
    for schema in schemas:
        if snapshot.table(schema, node.relname) is not None:
            return (schema, node.relname)
    matches = [t for t in snapshot.tables if t.name == node.relname]
    if not node.schemaname and len(matches) == 1:
        return (matches[0].schema, matches[0].name)
    return None


def _read_predicate(
    node: Any,
    scope: dict[str, tuple[str, str]],
    snapshot: DatabaseSnapshot,
    accesses: dict[tuple[str, str], _Access],
) -> None:
    if isinstance(node, ast.BoolExpr):
        for argument in node.args:
            _read_predicate(argument, scope, snapshot, accesses)
        return
    if not isinstance(node, ast.A_Expr) or node.kind not in _SCANNED_KINDS:
        return

    operator = node.name[-1].sval if node.name else ""
    left = _column(node.lexpr, scope, snapshot)
    right = (
        _column(node.rexpr, scope, snapshot)
        if isinstance(node.rexpr, ast.Node)
        else None
    )
    if node.kind == A_Expr_Kind.AEXPR_OP and left and right:
        if operator == "=" and left[0] != right[0]:
            for table, column in (left, right):
                accesses.setdefault(table, _Access()).joins.append(column)
        return
    for found, other in ((left, node.rexpr), (right, node.lexpr)):
        if found is None or _mentions_column(other):
            continue
        access = accesses.setdefault(found[0], _Access())
        ranged = node.kind == A_Expr_Kind.AEXPR_BETWEEN or (
            node.kind == A_Expr_Kind.AEXPR_OP and operator in _RANGE_OPERATORS
        )
        if ranged:
            access.ranges.append(found[1])
        elif operator == "=":
            access.equality.append(found[1])


def _column(
    node: Any, scope: dict[str, tuple[str, str]], snapshot: DatabaseSnapshot
) -> tuple[tuple[str, str], str] | None:
    if isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.ColumnRef):
        return None
    names = [f.sval for f in node.fields if isinstance(f, ast.String)]
    if len(names) != len(node.fields) or not names:
        return None
    column = names[-1]
    if len(names) >= 2:
        table = scope.get(names[-2])
        return (table, column) if table is not None else None
    owners = []
    for key in dict.fromkeys(scope.values()):
        table = snapshot.table(*key)
        if table is not None and column in table.columns:
            owners.append(key)
    return (owners[0], column) if len(owners) == 1 else None


def _mentions_column(node: Any) -> bool:
    return any(isinstance(n, ast.ColumnRef) for n in _walk(node))


def _served(indexes: Sequence[IndexStats], columns: tuple[str, ...]) -> bool:
    for index in indexes:
        usable = index.valid and index.method == "btree" and index.predicate is None
        keys = tuple(k.strip('"') for k in index.keys)
        if usable and keys[: len(columns)] == columns:
            return True
    return False


def _quote(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _bind(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    """Split SQL into code, quoted text and comments; binds live only in code."""
    pattern = re.compile(
        r"(?P<comment>--[^\n]*|/\*.*?\*/)"
        r"|(?P<string>'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")"
        r"|(?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)",
        re.DOTALL,
    )
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            yield "code", text[position : match.start()]
        yield match.lastgroup or "code", match.group(0)
        position = match.end()
    if position < len(text):
        yield "code", text[position:]
