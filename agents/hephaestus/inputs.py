"""The persona card's input documents: the stack decision and the data models.

Two documents of a workspace shape Hephaestus's output when they exist:

`docs/architecture/technology-decisions/stack-01.md` records the stack. sparc
reads three of its lines, in any markdown dress (plain, a list item, bold
labels or a two-column table row):

    Database: PostgreSQL 15
    ORM: SQLAlchemy            (or Prisma)
    Targets: postgresql, sqlite, mariadb

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from sparc.agents.hephaestus.ddl import ParsedSql, parse_file, sql_from_markdown
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
    "entity_request",
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
    path = root / STACK_DOC
    if not path.is_file():
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

    decision = StackDecision(orm=orm, database=database, targets=targets)
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
    path = root / DATA_MODELS_DOC
    if not path.is_file():
        return None
    return read_markdown_requirements(path, display=DATA_MODELS_DOC, base=base)


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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot read the file ({error}): check that it exists and is UTF-8",
            path=display,
        ) from error
    if sql_from_markdown(text):
        return parse_file(path, display=display, base=base)

    request = entity_request(text, source=display)
    if request is None:
        log.warning("markdown_without_schema", path=display)
        return None
    spec = apply_requests(base, request, source=display)
    return ParsedSql(spec=spec, queries=[])


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
