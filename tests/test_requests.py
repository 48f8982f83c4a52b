"""Tests for sparc.agents.hephaestus.requests: a task's `schema` block."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.dialects import mysql

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.models_render import load_metadata, render_models
from sparc.agents.hephaestus.requests import (
    STRING_DEFAULT_LENGTH,
    SchemaRequest,
    apply_requests,
    parse_schema_request,
    type_sql,
)
from sparc.agents.hephaestus.spec import ColumnType, SchemaSpec, Table
from sparc.backlog import Backlog
from sparc.errors import InputError

from .conftest import CASES

REQUEST_CASES = ("06", "09", "11", "13", "24", "25")
needs_cases = pytest.mark.skipif(
    not CASES.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared cases not found at {CASES}",
)

BASE = parse_sql(
    """
    CREATE TABLE folder (id integer PRIMARY KEY, name varchar(80) NOT NULL);
    CREATE TABLE attachment (
        id integer PRIMARY KEY,
        file_name varchar(255) NOT NULL,
        body text
    );
    """,
    source="base.sql",
).spec


def _apply(changes: list[dict[str, Any]], **request: Any) -> SchemaSpec:
    parsed = parse_schema_request({"changes": changes, **request}, source="T.yaml")
    return apply_requests(BASE, parsed, source="T.yaml")


def _table(spec: SchemaSpec, name: str) -> Table:
    table = spec.table(name)
    assert table is not None
    return table


# -- cases as workspaces -----------------------------------------------------------


@dataclass(frozen=True)
class CaseWorkspace:
    """A workspace built from a case: a baseline task, then the request task."""

    root: Path
    baseline_task: str | None
    request_task: str
    seed: Path | None


def _unsplit(change: dict[str, Any]) -> dict[str, Any]:
    # the case files write `{type: numeric(20,6)}` unquoted inside a flow
    # mapping, which YAML reads as two keys; a task file quotes it
    for body in change.values():
        if not isinstance(body, dict):
            continue
        for key in [k for k in body if str(k).endswith(")")]:
            body.pop(key)
            body["type"] = f"{body['type']},{key}"
    return change


def workspace_from_case(case: Path, root: Path) -> CaseWorkspace:
    """Write a case's task as real task files.

    `baseline_ddl` becomes `docs/data/<id>-baseline.sql`, referenced by a first
    task `<id>-BASE`; `task.request` becomes the `schema.changes` of the task
    `<id>`, which depends on it; `task.targets` becomes `schema.targets`;
    `baseline_seed` is data a test loads before upgrading (tasks carry no
    data), written to `docs/data/<id>-seed.sql`.
    """
    task = yaml.safe_load(case.read_text(encoding="utf-8"))["task"]
    (root / ".sparc").mkdir(parents=True)
    (root / ".sparc/config.yaml").write_text(
        "project: cases\nworkflow: sparc\n", encoding="utf-8"
    )
    backlog = root / "docs/backlog"
    backlog.mkdir(parents=True)
    data = root / "docs/data"
    data.mkdir(parents=True)

    baseline_id = None
    depends_on: list[str] = []
    if task.get("baseline_ddl"):
        baseline_id = f"{task['id']}-BASE"
        (data / f"{task['id']}-baseline.sql").write_text(
            task["baseline_ddl"], encoding="utf-8"
        )
        baseline = {
            "id": baseline_id,
            "title": f"Baseline of {task['id']}",
            "specialist": "database-engineer",
            "references": [f"docs/data/{task['id']}-baseline.sql"],
            "phases": ["refinement"],
        }
        (backlog / f"{baseline_id}.yaml").write_text(
            yaml.safe_dump(baseline, sort_keys=False), encoding="utf-8"
        )
        depends_on.append(baseline_id)
    seed = None
    if task.get("baseline_seed"):
        seed = data / f"{task['id']}-seed.sql"
        seed.write_text(task["baseline_seed"], encoding="utf-8")

    request = {
        "id": task["id"],
        "title": task["title"],
        "specialist": "database-engineer",
        "depends_on": depends_on,
        "phases": ["refinement"],
        "schema": {
            "targets": task["targets"],
            "changes": [_unsplit(change) for change in task["request"]],
        },
    }
    (backlog / f"{task['id']}.yaml").write_text(
        yaml.safe_dump(request, sort_keys=False), encoding="utf-8"
    )
    return CaseWorkspace(root, baseline_id, task["id"], seed)


def _case_spec(number: str, tmp_path: Path) -> tuple[SchemaSpec, SchemaRequest]:
    case = next(CASES.glob(f"{number}-*.yaml"))
    workspace = workspace_from_case(case, tmp_path)
    backlog = Backlog.load(workspace.root / "docs/backlog")
    base = SchemaSpec()
    if workspace.baseline_task:
        reference = backlog.get(workspace.baseline_task).task.references[0]
        text = (workspace.root / reference).read_text(encoding="utf-8")
        base = parse_sql(text, source=reference).spec
    task_file = backlog.get(workspace.request_task)
    request = parse_schema_request(task_file.task.schema, source=task_file.path)
    return apply_requests(base, request, source=task_file.path), request


@needs_cases
@pytest.mark.parametrize("number", REQUEST_CASES)
def test_case_becomes_two_loadable_tasks(number: str, tmp_path: Path) -> None:
    """Every request case loads as a backlog and applies on its baseline."""
    spec, request = _case_spec(number, tmp_path)

    backlog = Backlog.load(tmp_path / "docs/backlog")
    assert len(request.changes) >= 1
    assert spec.tables
    ids = {task_file.task.id for task_file in backlog.tasks}
    assert any(i.endswith("-BASE") for i in ids) == (number != "24")


@needs_cases
def test_case_06_defaults_are_server_defaults(tmp_path: Path) -> None:
    spec, _ = _case_spec("06", tmp_path)

    account = _table(spec, "account")
    verified, created = account.column("is_verified"), account.column("created_at")
    assert verified is not None and created is not None
    assert (verified.nullable, verified.default) == (False, "false")
    assert (created.nullable, created.default) == (False, "now()")
    assert created.type == ColumnType(kind="timestamp", timezone=True)
    models = render_models(spec, project="cases")
    assert "server_default=sa.false()" in models
    assert "server_default=sa.func.now()" in models


@needs_cases
def test_case_09_foreign_key_and_unique(tmp_path: Path) -> None:
    spec, _ = _case_spec("09", tmp_path)

    attachment = _table(spec, "attachment")
    [key] = attachment.foreign_keys
    assert (key.columns, key.ref_table, key.ref_columns, key.on_delete) == (
        ["folder_id"],
        "folder",
        ["id"],
        "CASCADE",
    )
    assert [u.columns for u in attachment.unique_constraints] == [
        ["folder_id", "file_name"]
    ]


@needs_cases
def test_case_11_and_13_alter_columns(tmp_path: Path) -> None:
    spec, _ = _case_spec("11", tmp_path / "11")
    product = _table(spec, "product")
    assert product.column("sku").nullable is False  # type: ignore[union-attr]
    assert product.column("name").type.length == 120  # type: ignore[union-attr]
    assert [u.columns for u in product.unique_constraints] == [["sku"]]

    spec, _ = _case_spec("13", tmp_path / "13")
    line = _table(spec, "invoice_line")
    price, quantity = line.column("unit_price"), line.column("quantity")
    assert price is not None and quantity is not None
    assert (price.type.precision, price.type.scale, price.nullable) == (20, 6, False)
    assert (quantity.type.precision, quantity.type.scale) == (10, 4)


@needs_cases
def test_case_24_strings_get_a_length_mariadb_compiles(tmp_path: Path) -> None:
    """A `string` without length is varchar(255); every table compiles for MySQL."""
    spec, request = _case_spec("24", tmp_path)

    assert "mariadb" in request.targets
    tag = _table(spec, "tag")
    for name in ("label", "slug"):
        column = tag.column(name)
        assert column is not None
        assert column.type == ColumnType(kind="varchar", length=STRING_DEFAULT_LENGTH)
    assert tag.column("description").type.kind == "text"  # type: ignore[union-attr]

    with tempfile.TemporaryDirectory() as scratch:
        models = Path(scratch) / "models.py"
        models.write_text(render_models(spec, project="cases"), encoding="utf-8")
        metadata = load_metadata(models)
    for table in metadata.tables.values():
        sa.schema.CreateTable(table).compile(dialect=mysql.dialect())


# -- the request and DDL agree -------------------------------------------------------


def test_request_equals_the_same_change_as_ddl() -> None:
    """A `schema` block and DDL describing one change give one SchemaSpec."""
    spec = _apply(
        [
            {"create_enum": {"name": "status", "values": ["open", "done"]}},
            {
                "create_table": {
                    "name": "ticket",
                    "columns": [
                        {
                            "name": "id",
                            "type": "bigint",
                            "identity": "always",
                            "primary_key": True,
                        },
                        {
                            "name": "state",
                            "type": "status",
                            "nullable": False,
                            "default": "'open'",
                        },
                        {
                            "name": "parent_id",
                            "type": "bigint",
                            "references": "ticket.id",
                            "on_delete": "set_null",
                        },
                        {
                            "name": "folder_id",
                            "type": "int",
                            "references": "folder.id",
                            "on_delete": "cascade",
                        },
                        {"name": "price", "type": "numeric(10, 2)", "default": 0},
                        {"name": "tags", "type": "text[]"},
                        {
                            "name": "code",
                            "type": "string(12)",
                            "unique": True,
                            "comment": "public code",
                        },
                    ],
                }
            },
            {
                "add_check": {
                    "table": "ticket",
                    "expression": "price >= 0",
                    "name": "ck_ticket_price",
                }
            },
            {
                "create_index": {
                    "table": "ticket",
                    "columns": ["folder_id", "id desc"],
                    "where": "state = 'open'",
                }
            },
            {
                "alter_column": {
                    "table": "attachment",
                    "column": "body",
                    "type": "varchar(4000)",
                    "nullable": False,
                    "default": "''",
                }
            },
            {"drop_column": {"table": "attachment", "column": "file_name"}},
        ]
    )
    ddl = parse_sql(
        """
        CREATE TYPE status AS ENUM ('open', 'done');
        CREATE TABLE ticket (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            state status NOT NULL DEFAULT 'open',
            parent_id bigint,
            folder_id integer,
            price numeric(10,2) DEFAULT 0,
            tags text[],
            code varchar(12) UNIQUE
        );
        ALTER TABLE ticket ADD FOREIGN KEY (parent_id) REFERENCES ticket (id)
            ON DELETE SET NULL;
        ALTER TABLE ticket ADD FOREIGN KEY (folder_id) REFERENCES folder (id)
            ON DELETE CASCADE;
        COMMENT ON COLUMN ticket.code IS 'public code';
        ALTER TABLE ticket ADD CONSTRAINT ck_ticket_price CHECK (price >= 0);
        CREATE INDEX ON ticket (folder_id, id DESC) WHERE state = 'open';
        ALTER TABLE attachment ALTER COLUMN body TYPE varchar(4000);
        ALTER TABLE attachment ALTER COLUMN body SET NOT NULL;
        ALTER TABLE attachment ALTER COLUMN body SET DEFAULT '';
        ALTER TABLE attachment DROP COLUMN file_name;
        """,
        source="same.sql",
        base=BASE,
    ).spec

    assert spec == ddl


def test_composite_primary_key_and_foreign_key() -> None:
    spec = _apply(
        [
            {
                "create_table": {
                    "name": "folder_member",
                    "columns": [
                        {"name": "folder_id", "type": "integer", "primary_key": True},
                        {"name": "member", "type": "string(40)", "primary_key": True},
                    ],
                }
            },
            {
                "create_table": {
                    "name": "grant_row",
                    "columns": [
                        {"name": "id", "type": "serial", "primary_key": True},
                        {"name": "folder_id", "type": "integer", "nullable": False},
                        {"name": "member", "type": "varchar(40)", "nullable": False},
                    ],
                }
            },
            {
                "add_foreign_key": {
                    "table": "grant_row",
                    "columns": ["folder_id", "member"],
                    "references": {
                        "table": "folder_member",
                        "columns": ["folder_id", "member"],
                    },
                    "on_delete": "CASCADE",
                    "name": "fk_grant_member",
                }
            },
        ]
    )

    member = _table(spec, "folder_member")
    assert member.primary_key is not None
    assert member.primary_key.columns == ["folder_id", "member"]
    grant = _table(spec, "grant_row")
    assert grant.column("id").serial  # type: ignore[union-attr]
    [key] = grant.foreign_keys
    assert key.name == "fk_grant_member" and key.ref_columns == ["folder_id", "member"]


def test_alter_column_default_null_drops_the_default() -> None:
    with_default = _apply(
        [{"alter_column": {"table": "folder", "column": "name", "default": "'x'"}}]
    )
    dropped = apply_requests(
        with_default,
        parse_schema_request(
            {
                "changes": [
                    {
                        "alter_column": {
                            "table": "folder",
                            "column": "name",
                            "default": None,
                        }
                    }
                ]
            }
        ),
    )

    assert _table(with_default, "folder").column("name").default == "'x'"  # type: ignore[union-attr]
    assert _table(dropped, "folder").column("name").default is None  # type: ignore[union-attr]


def test_type_aliases() -> None:
    spec = SchemaSpec()
    assert type_sql("string", spec) == f"varchar({STRING_DEFAULT_LENGTH})"
    assert type_sql("String(80)", spec) == "varchar(80)"
    assert type_sql("datetime", spec) == "timestamp"
    assert type_sql("timestamp with time zone", spec) == "timestamp with time zone"
    assert type_sql("numeric(20,6)", spec) == "numeric(20,6)"


# -- errors name the field -----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            [
                {
                    "add_column": {
                        "table": "nope",
                        "column": {"name": "a", "type": "integer"},
                    }
                }
            ],
            "schema.changes[0].add_column.table",
            "table nope does not exist",
        ),
        (
            [{"add_unique": {"table": "folder", "columns": ["name", "nope"]}}],
            "schema.changes[0].add_unique.columns[1]",
            "folder.nope does not exist",
        ),
        (
            [
                {
                    "add_column": {
                        "table": "folder",
                        "column": {"name": "name", "type": "text"},
                    }
                }
            ],
            "schema.changes[0].add_column.column.name",
            "already exists",
        ),
        (
            [
                {
                    "add_column": {
                        "table": "folder",
                        "column": {"name": "x", "type": "varchar"},
                    }
                }
            ],
            "schema.changes[0].add_column.column.type",
            "no length",
        ),
        (
            [
                {
                    "add_column": {
                        "table": "folder",
                        "column": {"name": "x", "type": "inet"},
                    }
                }
            ],
            "schema.changes[0].add_column.column.type",
            "not a type sparc carries",
        ),
        (
            [
                {
                    "add_column": {
                        "table": "folder",
                        "column": {
                            "name": "x",
                            "type": "integer); DROP TABLE folder; --",
                        },
                    }
                }
            ],
            "schema.changes[0].add_column.column.type",
            "not a type name",
        ),
        (
            [
                {
                    "add_column": {
                        "table": "folder",
                        "column": {"name": "x", "type": "text", "default": "open"},
                    }
                }
            ],
            "schema.changes[0].add_column.column.default",
            "not a constant",
        ),
        (
            [{"add_check": {"table": "folder", "expression": "size > 0"}}],
            "schema.changes[0].add_check.expression",
            "folder.size does not exist",
        ),
        (
            [
                {
                    "add_check": {
                        "table": "folder",
                        "expression": "id > 0); DROP TABLE folder; --",
                    }
                }
            ],
            "schema.changes[0].add_check.expression",
            "not a SQL expression",
        ),
        (
            [
                {
                    "add_foreign_key": {
                        "table": "attachment",
                        "columns": ["id"],
                        "references": "folder",
                    }
                }
            ],
            "schema.changes[0].add_foreign_key.references",
            "is not table.column",
        ),
        (
            [
                {
                    "create_table": {
                        "name": "t",
                        "columns": [
                            {"name": "a", "type": "integer"},
                            {"name": "a", "type": "text"},
                        ],
                    }
                }
            ],
            "schema.changes[0].create_table.columns[1].name",
            "repeated",
        ),
        (
            [{"drop_table": {"name": "folder"}}],
            "schema.changes[0].drop_table",
            "reference it",
        ),
    ],
)
def test_errors_name_the_field(
    changes: list[dict[str, Any]], field: str, words: str
) -> None:
    base = parse_sql(
        "ALTER TABLE attachment ADD COLUMN folder_id integer REFERENCES folder;",
        source="x.sql",
        base=BASE,
    ).spec
    request = parse_schema_request({"changes": changes})

    with pytest.raises(InputError) as caught:
        apply_requests(base, request, source="docs/backlog/T.yaml")

    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith("docs/backlog/T.yaml: ")


def test_mariadb_target_refuses_a_text_key() -> None:
    changes = [{"add_unique": {"table": "attachment", "columns": ["body"]}}]
    assert _table(_apply(changes), "attachment").unique_constraints

    with pytest.raises(InputError, match="MariaDB cannot use as a key") as caught:
        _apply(changes, targets=["postgresql", "mariadb"])

    assert caught.value.field == "schema.changes[0].add_unique.columns"


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"changes": []}, "schema.changes"),
        (
            {"changes": [{"add_column": {"table": "a"}}]},
            "schema.changes[0].add_column.column",
        ),
        ({"changes": [{"add_colum": {}}]}, "schema.changes[0].add_colum"),
        ({"changes": [{}]}, "schema.changes[0]"),
        (
            {"targets": ["oracle"], "changes": [{"drop_table": {"name": "a"}}]},
            "schema.targets[0]",
        ),
        (
            {
                "changes": [
                    {
                        "add_column": {
                            "table": "a",
                            "column": {"name": "p", "type": "numeric(20", "6)": None},
                        }
                    }
                ]
            },
            "schema.changes[0].add_column.column.type",
        ),
    ],
)
def test_malformed_blocks_name_the_field(block: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_schema_request(block, source="T.yaml")

    assert caught.value.field == field
    assert field in str(caught.value)
