"""The persona card's input documents: the stack decision and the data models.

Two documents of a workspace shape Hephaestus's output when they exist:

`docs/architecture/technology-decisions/stack-01.md` records the stack. sparc
reads three of its lines, in any markdown dress (plain, a list item, bold
labels or a two-column table row):

    Database: PostgreSQL 15
    ORM: SQLAlchemy            (or Prisma)
    Targets: postgresql, sqlite, mariadb

Prisma generates for PostgreSQL only, so a Prisma stack's database and
targets may name nothing else.

`docs/design/pseudocode/data-models-01.md` describes the entities. Fenced
```sql blocks are read as DDL. Without them, each entity is a `### <table>`
heading followed by a markdown table with the columns `Field | Type |
Constraints`:

    ### order_items
    | Field    | Type          | Constraints                                  |
    |----------|---------------|----------------------------------------------|
    | id       | serial        | primary key                                  |
    | order_id | integer       | not null, references orders.id on delete cascade |
    | sku      | string(40)    | not null, unique                             |
    | quantity | integer       | not null, default 1, check (quantity > 0)    |

Types are those of a task's `schema` block (see `requests`). Constraints are
comma-separated: `primary key` (on several rows: a composite key), `not null`
(or `required`), `null`, `unique`, `default <expression>`, `references
<table>.<column>` with optional `on delete <action>` / `on update <action>`,
and `check (<expression>)`. Foreign keys are added after every table exists,
so entities may be listed in any order.

The data-models document states the entities as they should be: a table it
defines replaces the committed table of that name (the next migration carries
the difference), tables it does not mention are kept as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pglast
import structlog

from sparc.agents.hephaestus.ddl import ParsedSql, parse_sql, sql_from_markdown
from sparc.agents.hephaestus.requests import (
    AddCheck,
    AddForeignKey,
    Change,
    ColumnRequest,
    CreateTable,
    SchemaRequest,
    apply_requests,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.errors import InputError

log = structlog.get_logger(__name__)

__all__ = [
    "DATA_MODELS_DOC",
    "STACK_DOC",
    "StackDecision",
    "data_models_requirements",
    "entity_request",
    "markdown_requirements",
    "read_data_models",
    "read_markdown_requirements",
    "read_stack",
]

STACK_DOC = "docs/architecture/technology-decisions/stack-01.md"
DATA_MODELS_DOC = "docs/design/pseudocode/data-models-01.md"

Orm = Literal["sqlalchemy", "prisma"]

_DATABASES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "pg": "postgresql",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "mariadb": "mariadb",
}
_ORMS: dict[str, Orm] = {
    "sqlalchemy": "sqlalchemy",
    "alembic": "sqlalchemy",
    "prisma": "prisma",
}
_DECISION = re.compile(
    r"^\s*(?:[-*+]\s+|\|\s*)?[*_`]*(database|orm|targets)[*_`]*\s*(?::|\|)\s*(.+?)"
    r"\s*\|?\s*$",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^#{2,4}\s+(.+?)\s*#*\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_DIVIDER = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(
    r"references\s+([A-Za-z_][\w]*)\s*(?:\.\s*([A-Za-z_]\w*)|\(\s*([A-Za-z_]\w*)\s*\))"
    r"((?:\s+on\s+(?:delete|update)\s+(?:cascade|restrict|no\s+action|set\s+null"
    r"|set\s+default))*)\s*$",
    re.IGNORECASE,
)
_ACTION = re.compile(
    r"on\s+(delete|update)\s+(cascade|restrict|no\s+action|set\s+null|set\s+default)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StackDecision:
    """What the stack document decided: the ORM, the database and the targets."""

    orm: Orm = "sqlalchemy"
    database: str = "postgresql"
    targets: tuple[str, ...] = ("postgresql", "sqlite")
    # where the document names the ORM, for messages that point at it
    orm_line: int | None = field(default=None, compare=False)


def read_stack(root: Path) -> StackDecision:
    """Read the stack decision of the workspace at `root`.

    Args:
        root: the workspace.

    Returns:
        The decision; SQLAlchemy on PostgreSQL, verified on SQLite too, when
        the document is absent or leaves a line out.

    Raises:
        InputError: the document names an ORM or database sparc does not
            generate for; the message names the line.
    """
    path = _document(root, STACK_DOC)
    if path is None:
        return StackDecision()

    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _DECISION.match(line)
        if match and match.group(1).lower() not in found:
            value = match.group(2).strip().strip("*_`").strip()
            found[match.group(1).lower()] = (number, value)

    orm: Orm = "sqlalchemy"
    if "orm" in found:
        line, value = found["orm"]
        orm = _choice(value, _ORMS, path, line, "ORM")
    database = "postgresql"
    if "database" in found:
        line, value = found["database"]
        database = _choice(value, _DATABASES, path, line, "database")
    targets: tuple[str, ...] = (database,)
    if "targets" in found:
        line, value = found["targets"]
        named = [part for part in re.split(r"[,\s]+", value) if part]
        targets = tuple(
            dict.fromkeys(_choice(t, _DATABASES, path, line, "target") for t in named)
        )
    elif orm == "sqlalchemy" and database != "sqlite":
        targets = (database, "sqlite")
    if database not in targets:
        targets = (database, *targets)
    if orm == "prisma" and database != "postgresql":
        raise InputError(
            f"sparc writes Prisma migrations for PostgreSQL only, not {database}; "
            "choose PostgreSQL or SQLAlchemy",
            path=path,
            line=found["database"][0],
        )
    if orm == "prisma" and targets != ("postgresql",):
        others = ", ".join(t for t in targets if t != "postgresql")
        raise InputError(
            f"Prisma migrations are PostgreSQL SQL and cannot be proved on "
            f"{others}; list only postgresql as a target, or choose SQLAlchemy",
            path=path,
            line=found["targets"][0],
        )

    decision = StackDecision(
        orm=orm,
        database=database,
        targets=targets,
        orm_line=found["orm"][0] if "orm" in found else None,
    )
    log.info("stack_read", orm=orm, database=database, targets=list(targets))
    return decision


def read_data_models(root: Path, base: SchemaSpec) -> ParsedSql | None:
    """Read the entities of the data-models document on top of `base`.

    Args:
        root: the workspace.
        base: the schema the entities build on.

    Returns:
        The schema with the document's entities, or None when the document is
        absent or describes no entity.

    Raises:
        InputError: the document's SQL or entity tables cannot be read; the
            message names the line.
    """
    path = _document(root, DATA_MODELS_DOC)
    if path is None:
        return None
    return data_models_requirements(_read(path, DATA_MODELS_DOC), base=base)


def data_models_requirements(text: str, *, base: SchemaSpec) -> ParsedSql | None:
    """The data-models document's entities as the tables they should be.

    A table the document defines replaces the table of that name in `base`
    and keeps its place; the other tables of `base` stay as they are, so the
    document can reference them.

    Args:
        text: the document (`DATA_MODELS_DOC`).
        base: the committed schema.

    Returns:
        The schema with the document's entities, or None when it defines none.

    Raises:
        InputError: the SQL or an entity table cannot be read; names the line.
    """
    defined = _defined_tables(text, DATA_MODELS_DOC)
    kept = [t for t in base.tables if t.name not in defined]
    start = base.model_copy(update={"tables": kept})
    parsed = markdown_requirements(text, source=DATA_MODELS_DOC, base=start)
    if parsed is None or len(kept) == len(base.tables):
        return parsed

    # the replaced tables go back where they were, so a document that
    # restates the committed tables compares equal to them
    ordered = [parsed.spec.table(t.name) for t in base.tables]
    added = [t for t in parsed.spec.tables if base.table(t.name) is None]
    tables = [t for t in ordered if t is not None] + added
    spec = parsed.spec.model_copy(update={"tables": tables})
    return ParsedSql(spec=spec, queries=parsed.queries, renames=parsed.renames)


def read_markdown_requirements(
    path: Path, *, display: str, base: SchemaSpec
) -> ParsedSql | None:
    """Read a markdown document's ```sql blocks, or else its entity tables.

    Args:
        path: the document.
        display: how errors name it (relative to the workspace).
        base: the schema it builds on.

    Returns:
        The schema with the document applied, or None when it has neither
        SQL blocks nor entity tables.

    Raises:
        InputError: the SQL or an entity table cannot be read; names the line.
    """
    parsed = markdown_requirements(_read(path, display), source=display, base=base)
    if parsed is None:
        log.warning("markdown_without_schema", path=display)
    return parsed


def markdown_requirements(
    text: str, *, source: str, base: SchemaSpec
) -> ParsedSql | None:
    """Apply a markdown text's ```sql blocks, or else its entity tables, on `base`.

    Args:
        text: the markdown.
        source: how errors name it; lines are the markdown's own.
        base: the schema it builds on.

    Returns:
        The schema with the text applied, or None when it has neither SQL
        blocks nor entity tables.

    Raises:
        InputError: the SQL or an entity table cannot be read; names the line.
    """
    blocks = sql_from_markdown(text)
    if blocks:
        spec, queries, renames = base, [], []
        for start, block in blocks:
            # padded with blank lines: an error names the markdown's own line
            parsed = parse_sql("\n" * (start - 1) + block, source=source, base=spec)
            spec = parsed.spec
            queries.extend(parsed.queries)
            renames.extend(parsed.renames)
        return ParsedSql(spec=spec, queries=queries, renames=renames)

    request = entity_request(text, source=source)
    if request is None:
        return None
    spec = apply_requests(base, request, source=source)
    return ParsedSql(spec=spec, queries=[])


def _document(root: Path, relative: str) -> Path | None:
    """The workspace document at `relative`, or None; never one outside it."""
    path = root / relative
    if not path.is_file():
        return None
    if not path.resolve().is_relative_to(root.resolve()):
        raise InputError(
            "the document leads outside the workspace (through a symlink); put "
            "the file itself in the workspace",
            path=relative,
        )
    return path


def _read(path: Path, display: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot read the file ({error}): check that it exists and is UTF-8",
            path=display,
        ) from error


def _defined_tables(text: str, source: str) -> set[str]:
    """Names of the tables a markdown text creates (its SQL or its entities)."""
    blocks = sql_from_markdown(text)
    if not blocks:
        request = entity_request(text, source=source)
        changes = request.changes if request is not None else []
        return {c.create_table.name for c in changes if c.create_table is not None}

    names: set[str] = set()
    for _, block in blocks:
        try:
            statements = pglast.parse_sql(block)
        except pglast.parser.ParseError:
            # the reader that follows reports it with its line
            continue
        names.update(
            raw.stmt.relation.relname
            for raw in statements
            if isinstance(raw.stmt, pglast.ast.CreateStmt)
        )
    return names


def entity_request(text: str, *, source: str) -> SchemaRequest | None:
    """Turn the `### table` + `Field | Type | Constraints` tables into changes.

    Returns:
        The changes that create the entities, or None when there is none.

    Raises:
        InputError: a table or constraint cannot be read; names the line.
    """
    creates: list[Change] = []
    after: list[Change] = []
    heading: tuple[int, str] | None = None
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        match = _HEADING.match(line)
        if match:
            heading = (number, match.group(1).strip().strip("`*_"))
            continue
        if not _TABLE_ROW.match(line) or heading is None:
            continue

        header = [cell.strip().lower() for cell in _cells(line)]
        if header[:2] != ["field", "type"]:
            continue
        if number < len(lines) and _DIVIDER.match(lines[number]):
            number += 1
        heading_line, table = heading
        heading = None
        if not _IDENTIFIER.fullmatch(table):
            raise InputError(
                f"heading {table!r} is not a table name; write the table's name "
                "(letters, digits and _) as the heading of its field table",
                path=source,
                line=heading_line,
            )

        columns: list[ColumnRequest] = []
        while number < len(lines) and _TABLE_ROW.match(lines[number]):
            cells = [cell.strip() for cell in _cells(lines[number])]
            number += 1
            row = dict(zip(header, cells, strict=False))
            column, more = _column(table, row, source, number)
            columns.append(column)
            after.extend(more)
        if not columns:
            raise InputError(
                f"entity {table} lists no fields", path=source, line=heading_line
            )
        creates.append(Change(create_table=CreateTable(name=table, columns=columns)))

    if not creates:
        return None
    return SchemaRequest(changes=[*creates, *after])


def _choice(
    value: str, choices: dict[str, str], path: Path, line: int, what: str
) -> str:
    words = re.findall(r"[A-Za-z0-9]+", value.lower())
    for word in words:
        if word in choices:
            return choices[word]
    accepted = ", ".join(sorted(set(choices.values())))
    raise InputError(
        f"{what} {value!r} is not one sparc generates for; use one of {accepted}",
        path=path,
        line=line,
    )


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [cell.replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def _split_constraints(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, current, depth, quoted = [], "", 0, False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _column(
    table: str, row: dict[str, str], source: str, line: int
) -> tuple[ColumnRequest, list[Change]]:
    name = row.get("field", "").strip("`*_ ")
    type_text = row.get("type", "").strip("` ")
    if not _IDENTIFIER.fullmatch(name) or not type_text:
        raise InputError(
            f"entity {table}: a row needs a field name and a type, got "
            f"{name!r} and {type_text!r}",
            path=source,
            line=line,
        )

    fields: dict[str, object] = {"name": name, "type": type_text}
    later: list[Change] = []
    for part in _split_constraints(row.get("constraints", "").strip("` ")):
        lowered = " ".join(part.lower().split())
        if lowered in ("primary key", "pk"):
            fields["primary_key"] = True
        elif lowered in ("not null", "required"):
            fields["nullable"] = False
        elif lowered in ("null", "nullable", "optional"):
            fields["nullable"] = True
        elif lowered == "unique":
            fields["unique"] = True
        elif lowered.startswith("default "):
            fields["default"] = part.split(None, 1)[1]
        elif lowered.startswith("check"):
            expression = part[len("check") :].strip()
            if expression.startswith("(") and expression.endswith(")"):
                expression = expression[1:-1]
            later.append(Change(add_check=AddCheck(table=table, expression=expression)))
        elif lowered.startswith("references"):
            later.append(_foreign_key(table, name, part, source, line))
        elif lowered:
            raise InputError(
                f"entity {table}, field {name}: {part!r} is not a constraint sparc "
                "reads; use primary key, not null, null, unique, default <value>, "
                "references <table>.<column> [on delete <action>] or check (...)",
                path=source,
                line=line,
            )
    return ColumnRequest.model_validate(fields), later


def _foreign_key(table: str, column: str, text: str, source: str, line: int) -> Change:
    match = _REFERENCE.match(text.strip())
    if match is None:
        raise InputError(
            f"entity {table}, field {column}: {text!r} is not `references "
            "<table>.<column> [on delete <action>]`",
            path=source,
            line=line,
        )
    ref_table = match.group(1)
    ref_column = match.group(2) or match.group(3)
    actions = {
        kind.lower(): " ".join(action.upper().split())
        for kind, action in _ACTION.findall(match.group(4) or "")
    }
    return Change(
        add_foreign_key=AddForeignKey.model_validate(
            {
                "table": table,
                "columns": [column],
                "references": f"{ref_table}.{ref_column}",
                "on_delete": actions.get("delete"),
                "on_update": actions.get("update"),
            }
        )
    )
