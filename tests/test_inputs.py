"""Tests for sparc.agents.hephaestus.inputs: the stack and data-models documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.inputs import (
    DATA_MODELS_DOC,
    STACK_DOC,
    StackDecision,
    markdown_requirements,
    read_data_models,
    read_stack,
)
from sparc.agents.hephaestus.spec import ColumnType, SchemaSpec
from sparc.errors import InputError


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_absent_stack_means_sqlalchemy_on_postgresql(tmp_path: Path) -> None:
    assert read_stack(tmp_path) == StackDecision(
        orm="sqlalchemy", database="postgresql", targets=("postgresql", "sqlite")
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "# Stack\n\nDatabase: PostgreSQL 15\nORM: Prisma\n",
            StackDecision("prisma", "postgresql", ("postgresql",)),
        ),
        (
            "- **Database**: PostgreSQL 16\n- **ORM**: SQLAlchemy 2 with Alembic\n"
            "- **Targets**: postgresql, sqlite, mariadb\n",
            StackDecision(
                "sqlalchemy", "postgresql", ("postgresql", "sqlite", "mariadb")
            ),
        ),
        (
            "| Decision | Choice |\n|---|---|\n| Database | MariaDB 11 |\n"
            "| ORM | SQLAlchemy |\n",
            StackDecision("sqlalchemy", "mariadb", ("mariadb", "sqlite")),
        ),
        (
            "Database: PostgreSQL\nTargets: sqlite\n",
            StackDecision("sqlalchemy", "postgresql", ("postgresql", "sqlite")),
        ),
    ],
)
def test_stack_lines_in_any_markdown_dress(
    tmp_path: Path, text: str, expected: StackDecision
) -> None:
    _write(tmp_path, STACK_DOC, text)

    assert read_stack(tmp_path) == expected


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("Database: PostgreSQL\nORM: Django\n", 2, "ORM 'Django'"),
        ("Database: Oracle 19c\n", 1, "database 'Oracle 19c'"),
        ("Database: MariaDB\nORM: Prisma\n", 1, "PostgreSQL only"),
        ("Targets: postgresql, mssql\n", 1, "target"),
    ],
)
def test_stack_refuses_what_sparc_cannot_generate(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    _write(tmp_path, STACK_DOC, text)

    with pytest.raises(InputError, match=words) as caught:
        read_stack(tmp_path)

    assert caught.value.line == line


def test_absent_data_models_is_none(tmp_path: Path) -> None:
    assert read_data_models(tmp_path, SchemaSpec()) is None


def test_data_models_sql_blocks(tmp_path: Path) -> None:
    _write(
        tmp_path,
        DATA_MODELS_DOC,
        "# Data models\n\n```sql\nCREATE TABLE users (id serial PRIMARY KEY,"
        " email varchar(255) NOT NULL UNIQUE);\n```\n",
    )

    parsed = read_data_models(tmp_path, SchemaSpec())

    assert parsed is not None
    users = parsed.spec.table("users")
    assert users is not None and [c.name for c in users.columns] == ["id", "email"]


ENTITY_DOC = """\
# Data models

Orders reference users; listed first on purpose.

### order_items

| Field    | Type       | Constraints                                        |
|----------|------------|----------------------------------------------------|
| order_id | integer    | primary key, references orders.id on delete cascade |
| line     | smallint   | primary key                                        |
| sku      | string(40) | not null                                           |
| quantity | integer    | not null, default 1, check (quantity > 0)          |
| note     | text       |                                                    |

### `orders`

| Field   | Type          | Constraints                         |
| ------- | ------------- | ----------------------------------- |
| id      | serial        | pk                                  |
| user_id | integer       | required, references users(id)      |
| status  | varchar(20)   | not null, default 'open'            |
| total   | numeric(10,2) | not null, default 0, check (total >= 0) |

### users

| Field | Type         | Constraints      |
|-------|--------------|------------------|
| id    | serial       | primary key      |
| email | varchar(255) | not null, unique |
"""

ENTITY_DDL = """
CREATE TABLE order_items (
    order_id integer, line smallint, sku varchar(40) NOT NULL,
    quantity integer NOT NULL DEFAULT 1, note text, PRIMARY KEY (order_id, line)
);
CREATE TABLE orders (
    id serial PRIMARY KEY, user_id integer NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'open', total numeric(10,2) NOT NULL DEFAULT 0
);
CREATE TABLE users (id serial PRIMARY KEY, email varchar(255) NOT NULL UNIQUE);
ALTER TABLE order_items ADD FOREIGN KEY (order_id) REFERENCES orders (id)
    ON DELETE CASCADE;
ALTER TABLE order_items ADD CHECK (quantity > 0);
ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE orders ADD CHECK (total >= 0);
"""


def test_entity_tables_read_like_the_same_ddl(tmp_path: Path) -> None:
    """The documented table format gives the spec of the equivalent DDL."""
    _write(tmp_path, DATA_MODELS_DOC, ENTITY_DOC)

    parsed = read_data_models(tmp_path, SchemaSpec())

    assert parsed is not None and parsed.queries == []
    assert parsed.spec == parse_sql(ENTITY_DDL, source="same.sql").spec
    items = parsed.spec.table("order_items")
    assert items is not None and items.primary_key is not None
    assert items.primary_key.columns == ["order_id", "line"]
    assert items.column("sku").type == ColumnType(kind="varchar", length=40)  # type: ignore[union-attr]


def test_entities_build_on_the_base(tmp_path: Path) -> None:
    base = parse_sql(
        "CREATE TABLE users (id serial PRIMARY KEY);", source="base.sql"
    ).spec
    _write(
        tmp_path,
        DATA_MODELS_DOC,
        "### tokens\n| Field | Type | Constraints |\n|---|---|---|\n"
        "| id | bigserial | primary key |\n"
        "| user_id | integer | not null, references users.id on delete cascade |\n",
    )

    parsed = read_data_models(tmp_path, base)

    assert parsed is not None
    assert [t.name for t in parsed.spec.tables] == ["users", "tokens"]


@pytest.mark.parametrize(
    ("doc", "line", "words"),
    [
        (
            "### Order Items\n| Field | Type | Constraints |\n|---|---|---|\n"
            "| id | integer | primary key |\n",
            1,
            "not a table name",
        ),
        (
            "### items\n| Field | Type | Constraints |\n|---|---|---|\n"
            "| id | integer | primary key |\n| qty | integer | positive |\n",
            5,
            "'positive' is not a constraint",
        ),
        (
            "### items\n| Field | Type | Constraints |\n|---|---|---|\n"
            "| id | integer | references nowhere |\n",
            4,
            "is not `references",
        ),
    ],
)
def test_entity_errors_name_the_line(
    tmp_path: Path, doc: str, line: int, words: str
) -> None:
    _write(tmp_path, DATA_MODELS_DOC, doc)

    with pytest.raises(InputError, match=words) as caught:
        read_data_models(tmp_path, SchemaSpec())

    assert caught.value.line == line
    assert str(caught.value).startswith(DATA_MODELS_DOC)


def test_entity_with_unknown_reference_names_the_field(tmp_path: Path) -> None:
    _write(
        tmp_path,
        DATA_MODELS_DOC,
        "### items\n| Field | Type | Constraints |\n|---|---|---|\n"
        "| id | integer | references ghosts.id |\n",
    )

    with pytest.raises(InputError, match="table ghosts does not exist"):
        read_data_models(tmp_path, SchemaSpec())


def test_document_without_entities_is_none(tmp_path: Path) -> None:
    _write(tmp_path, DATA_MODELS_DOC, "# Data models\n\nTo be decided.\n")

    assert read_data_models(tmp_path, SchemaSpec()) is None


def test_prisma_stack_refuses_other_targets(tmp_path: Path) -> None:
    """Prisma migrations are PostgreSQL SQL: another target cannot be proved."""
    _write(
        tmp_path, STACK_DOC, "ORM: Prisma\nDatabase: PostgreSQL\nTargets: pg, sqlite\n"
    )

    with pytest.raises(InputError, match="cannot be proved on sqlite") as caught:
        read_stack(tmp_path)

    assert caught.value.line == 3


def test_data_models_restate_committed_tables_in_place(tmp_path: Path) -> None:
    """A table the document defines replaces the committed one and keeps its place."""
    base = parse_sql(
        "CREATE TABLE users (id serial PRIMARY KEY);"
        "CREATE TABLE notes (id serial PRIMARY KEY, user_id integer REFERENCES users);",
        source="base.sql",
    ).spec
    _write(
        tmp_path,
        DATA_MODELS_DOC,
        "### users\n| Field | Type | Constraints |\n|---|---|---|\n"
        "| id | serial | primary key |\n| email | string(200) | not null, unique |\n"
        "### tags\n| Field | Type | Constraints |\n|---|---|---|\n"
        "| id | serial | primary key |\n",
    )

    parsed = read_data_models(tmp_path, base)

    assert parsed is not None
    assert [t.name for t in parsed.spec.tables] == ["users", "notes", "tags"]
    users = parsed.spec.table("users")
    assert users is not None and [c.name for c in users.columns] == ["id", "email"]
    assert parsed.spec.table("notes") == base.table("notes")


def test_data_models_that_restate_the_schema_change_nothing(tmp_path: Path) -> None:
    ddl = "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);"
    base = parse_sql(ddl, source="base.sql").spec
    _write(tmp_path, DATA_MODELS_DOC, f"# Models\n\n```sql\n{ddl}\n```\n")

    parsed = read_data_models(tmp_path, base)

    assert parsed is not None and parsed.spec == base


def test_markdown_requirements_reads_sql_blocks_or_entities() -> None:
    sql = "intro\n\n```sql\nCREATE TABLE a (id integer PRIMARY KEY);\n```\n"
    entities = (
        "### b\n| Field | Type | Constraints |\n|---|---|---|\n| id | integer | pk |\n"
    )

    from_sql = markdown_requirements(sql, source="a.md", base=SchemaSpec())
    from_entities = markdown_requirements(entities, source="b.md", base=SchemaSpec())

    assert from_sql is not None and from_sql.spec.table("a") is not None
    assert from_entities is not None and from_entities.spec.table("b") is not None
    assert markdown_requirements("# nothing", source="c.md", base=SchemaSpec()) is None
    with pytest.raises(InputError, match=r"c\.md:4"):
        markdown_requirements(
            "x\n\n```sql\nCREATE TABLE (;\n```\n", source="c.md", base=SchemaSpec()
        )


def test_stack_document_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.md"
    outside.write_text("ORM: Prisma\n", encoding="utf-8")
    root = tmp_path / "workspace"
    link = root / STACK_DOC
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)

    with pytest.raises(InputError, match="outside the workspace"):
        read_stack(root)
