"""Compute the next Alembic revision from new models and the existing chain.

The existing revisions are applied to a scratch SQLite database, Alembic's
autogenerate compares that database with the new metadata, and what
autogenerate does not see is added: check constraints on existing tables,
PostgreSQL enum types (created before the tables that use them, dropped after
them), and changed index definitions. The result is rendered with Alembic's
own renderers into a template kept in this package.
"""

from __future__ import annotations

import re
import string
import tempfile
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import ops
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.functions import FunctionElement

from sparc.agents.hephaestus.models_render import iter_enum_types
from sparc.errors import VerificationError

log = structlog.get_logger(__name__)

SLUG_LENGTH = 40


@dataclass(frozen=True)
class RevisionInfo:
    """The next revision: its id, file name and text, and whether it does anything."""

    revision_id: str
    down_revision: str | None
    file_name: str
    text: str
    has_operations: bool


def slugify(title: str) -> str:
    """Lowercase ASCII words joined by underscores, at most 40 characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore")
    words = re.findall(r"[a-z0-9]+", ascii_title.decode().lower())
    slug = ""
    for word in words:
        candidate = f"{slug}_{word}" if slug else word
        if len(candidate) > SLUG_LENGTH:
            break
        slug = candidate
    return slug or (words[0][:SLUG_LENGTH] if words else "revision")


def script_directory(alembic_dir: Path) -> ScriptDirectory:
    """The revision scripts under `alembic_dir/versions`, read without env.py."""
    return ScriptDirectory(
        str(alembic_dir), version_locations=[str(alembic_dir / "versions")]
    )


def current_head(alembic_dir: Path) -> str | None:
    """The single head of the chain, or None when there is no revision yet.

    Raises:
        VerificationError: the chain has more than one head.
    """
    heads = script_directory(alembic_dir).get_heads()
    if len(heads) > 1:
        raise VerificationError(
            f"the revisions in {alembic_dir / 'versions'} have several heads "
            f"({', '.join(sorted(heads))}); merge them before adding a revision",
            step="heads",
            dialect="sqlite",
        )
    return heads[0] if heads else None


def next_revision_id(head: str | None) -> str:
    """ "001" after no revision, then one more than the head's number."""
    if head is None:
        return "001"
    if not head.isdigit():
        raise VerificationError(
            f"head revision {head!r} is not numbered; sparc numbers revisions "
            "001, 002, ...",
            step="heads",
            dialect="sqlite",
        )
    return f"{int(head) + 1:0{max(3, len(head))}d}"


def write_revision(
    alembic_dir: Path,
    metadata: sa.MetaData,
    *,
    task_id: str,
    title: str,
    previous_metadata: sa.MetaData | None = None,
) -> RevisionInfo:
    """Compute the revision that takes the chain's head to `metadata`.

    Nothing is written: the caller decides where the text goes.

    Args:
        alembic_dir: the folder holding `versions/` (only read).
        metadata: the new models' metadata.
        task_id: the task the revision belongs to, quoted in its docstring.
        title: the task title; the revision's docstring and file name slug.
        previous_metadata: the models the chain's head was made from, when
            known; needed to see enum types and index changes SQLite hides.

    Returns:
        The revision; `has_operations` is False when the schema is unchanged.
    """
    head = current_head(alembic_dir)
    revision_id = next_revision_id(head)

    with tempfile.TemporaryDirectory(prefix="sparc-revision-") as scratch:
        engine = sa.create_engine(f"sqlite:///{Path(scratch) / 'head.sqlite3'}")
        try:
            with engine.begin() as connection:
                upgrade_to_head(alembic_dir, connection, metadata)
                upgrade_ops = _compare(connection, metadata)
                _add_missed_checks(connection, metadata, upgrade_ops)
        finally:
            engine.dispose()
    _add_changed_indexes(previous_metadata, metadata, upgrade_ops)
    created, dropped = _enum_changes(previous_metadata, metadata)

    has_operations = bool(upgrade_ops.ops or created or dropped)
    text = _render(
        upgrade_ops,
        metadata,
        created=created,
        dropped=dropped,
        revision_id=revision_id,
        down_revision=head,
        task_id=task_id,
        title=title,
    )
    file_name = f"{revision_id}_{slugify(title)}.py"
    log.info(
        "revision_computed",
        revision=revision_id,
        file=file_name,
        operations=len(upgrade_ops.ops),
    )
    return RevisionInfo(revision_id, head, file_name, text, has_operations)


def upgrade_to_head(
    alembic_dir: Path, connection: sa.Connection, metadata: sa.MetaData
) -> None:
    """Apply every revision under `alembic_dir` on `connection`, without env.py."""
    script = script_directory(alembic_dir)
    config = Config()
    config.set_main_option("script_location", str(alembic_dir))

    def upgrade(revision: Any, context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=upgrade, destination_rev="head") as env:
        env.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with env.begin_transaction():
            env.run_migrations()


def _compare(connection: sa.Connection, metadata: sa.MetaData) -> ops.UpgradeOps:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "target_metadata": metadata,
        },
    )
    script = produce_migrations(context, metadata)
    assert script.upgrade_ops is not None
    return script.upgrade_ops


def _add_missed_checks(
    connection: sa.Connection, metadata: sa.MetaData, upgrade_ops: ops.UpgradeOps
) -> None:
    # autogenerate never compares check constraints; do it by name on the
    # tables that exist on both sides
    inspector = sa.inspect(connection)
    existing_tables = set(inspector.get_table_names())
    for table in metadata.tables.values():
        if table.name not in existing_tables:
            continue
        present = {
            check["name"]
            for check in inspector.get_check_constraints(table.name)
            if check.get("name")
        }
        wanted = {
            str(c.name): c
            for c in table.constraints
            if isinstance(c, sa.CheckConstraint) and c.name
        }
        added = [
            ops.AddConstraintOp.from_constraint(wanted[name])
            for name in sorted(set(wanted) - present)
        ]
        dropped = [
            ops.DropConstraintOp(name, table.name, type_="check")
            for name in sorted(present - set(wanted))
        ]
        if added or dropped:
            upgrade_ops.ops.append(ops.ModifyTableOps(table.name, [*dropped, *added]))


def _index_signature(index: sa.Index) -> str:
    return str(sa.schema.CreateIndex(index).compile(dialect=postgresql.dialect()))


def _add_changed_indexes(
    previous: sa.MetaData | None, metadata: sa.MetaData, upgrade_ops: ops.UpgradeOps
) -> None:
    # SQLite does not reflect sort order, access method or included columns
    if previous is None:
        return
    touched = _touched_indexes(upgrade_ops)
    for table in metadata.tables.values():
        before = previous.tables.get(table.name)
        if before is None:
            continue
        old = {str(i.name): i for i in before.indexes}
        changes: list[ops.MigrateOperation] = []
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            name = str(index.name)
            if name in touched or name not in old:
                continue
            if _index_signature(old[name]) != _index_signature(index):
                changes.append(ops.DropIndexOp.from_index(old[name]))
                changes.append(ops.CreateIndexOp.from_index(index))
        if changes:
            upgrade_ops.ops.append(ops.ModifyTableOps(table.name, changes))


def _touched_indexes(upgrade_ops: ops.UpgradeOps) -> set[str]:
    names: set[str] = set()
    for op in upgrade_ops.ops:
        children = op.ops if isinstance(op, ops.ModifyTableOps) else [op]
        for child in children:
            if isinstance(child, ops.CreateIndexOp | ops.DropIndexOp):
                names.add(str(child.index_name))
    return names


def _enum_changes(
    previous: sa.MetaData | None, metadata: sa.MetaData
) -> tuple[list[sa.Enum], list[sa.Enum]]:
    before = {e.name: e for e in iter_enum_types(previous)} if previous else {}
    after = {e.name: e for e in iter_enum_types(metadata)}
    for name in sorted(set(before) & set(after)):
        if list(before[name].enums) != list(after[name].enums):
            log.warning(
                "enum_values_changed",
                enum=name,
                before=list(before[name].enums),
                after=list(after[name].enums),
            )
    created = [after[name] for name in after if name not in before]
    dropped = [before[name] for name in before if name not in after]
    return created, dropped


def _enum_variable(name: str) -> str:
    return "enum_" + re.sub(r"\W", "_", name, flags=re.ASCII)


def _render_item(type_: str, obj: Any, context: AutogenContext) -> str | bool:
    if type_ == "type" and isinstance(obj, sa.Enum) and obj.name:
        return _enum_variable(obj.name)
    if type_ == "server_default":
        return _render_server_default(obj)
    return False


def _render_server_default(default: Any) -> str | bool:
    if isinstance(default, sa.DefaultClause):
        default = default.arg
    if isinstance(default, TextClause):
        return f"sa.text({default.text!r})"
    if isinstance(default, sa.sql.elements.True_):
        return "sa.true()"
    if isinstance(default, sa.sql.elements.False_):
        return "sa.false()"
    if isinstance(default, FunctionElement) and not list(default.clauses):
        return f"sa.func.{default.name}()"  # type: ignore[attr-defined]
    return False


def _render_ops(operations: ops.UpgradeOps | ops.DowngradeOps) -> list[str]:
    context = MigrationContext.configure(dialect=postgresql.dialect())
    code = render_python_code(
        operations,
        render_as_batch=True,
        render_item=_render_item,
        migration_context=context,
    )
    lines = [line for line in code.splitlines() if not line.strip().startswith("# ###")]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _render(
    upgrade_ops: ops.UpgradeOps,
    metadata: sa.MetaData,
    *,
    created: list[sa.Enum],
    dropped: list[sa.Enum],
    revision_id: str,
    down_revision: str | None,
    task_id: str,
    title: str,
) -> str:
    downgrade_ops = upgrade_ops.reverse()
    upgrade_lines = [
        *(
            f"    {_enum_variable(e.name)}.create(op.get_bind(), checkfirst=False)"
            for e in created
        ),
        *(_render_ops(upgrade_ops) if upgrade_ops.ops else []),
        *(
            f"    {_enum_variable(e.name)}.drop(op.get_bind(), checkfirst=False)"
            for e in dropped
        ),
    ]
    downgrade_lines = [
        *(
            f"    {_enum_variable(e.name)}.create(op.get_bind(), checkfirst=False)"
            for e in dropped
        ),
        *(_render_ops(downgrade_ops) if downgrade_ops.ops else []),
        *(
            f"    {_enum_variable(e.name)}.drop(op.get_bind(), checkfirst=False)"
            for e in created
        ),
    ]
    enums = {e.name: e for e in [*iter_enum_types(metadata), *dropped]}
    module_objects = [
        f"{_enum_variable(name)} = postgresql.ENUM("
        + ", ".join(
            [*(repr(v) for v in enum.enums), f"name={name!r}", "create_type=False"]
        )
        + ")"
        for name, enum in enums.items()
    ]
    body = "\n".join([*upgrade_lines, *downgrade_lines, *module_objects])
    imports = (
        ["from sqlalchemy.dialects import postgresql"] if "postgresql." in body else []
    )
    template = string.Template(
        resources.files("sparc.agents.hephaestus")
        .joinpath("templates/revision.py.tmpl")
        .read_text(encoding="utf-8")
    )
    return template.substitute(
        title=title,
        revision=revision_id,
        down_revision=down_revision or "<base>",
        task_id=task_id,
        imports="".join(f"{line}\n" for line in imports),
        revision_literal=repr(revision_id),
        down_revision_literal=repr(down_revision),
        module_objects="".join(f"\n{line}\n" for line in module_objects),
        upgrade_body="\n".join(upgrade_lines) or "    pass",
        downgrade_body="\n".join(downgrade_lines) or "    pass",
    )
