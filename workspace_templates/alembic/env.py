"""Alembic environment of ${project}, laid down by `sparc init`.

The target metadata is the canonical schema in `src/${project}/db/models.py`,
loaded by file path so this works from any current directory. The database URL
comes from a connection handed over by a program (sparc's verifier), else from
the DATABASE_URL environment variable, else from alembic.ini.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from alembic import context
from alembic.operations import ops
from sqlalchemy import MetaData, TextClause, engine_from_config, pool
from sqlalchemy.engine import Connection, make_url

MODELS_PATH = (
    Path(__file__).resolve().parent.parent / "src" / "${project}" / "db" / "models.py"
)

config = context.config

if config.config_file_name is not None and not config.attributes.get("connection"):
    from logging.config import fileConfig

    fileConfig(config.config_file_name, disable_existing_loggers=False)


def load_models(path: Path) -> tuple[MetaData, set[str]]:
    """Import models.py under a private name: its metadata and partition names."""
    name = "_alembic_models_${project}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the models from {path}")
    module = importlib.util.module_from_spec(spec)
    # declarative resolves annotations through sys.modules while classes build
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        # configure while every class is alive, so no registry stays pending
        module.Base.registry.configure()
    finally:
        sys.modules.pop(name, None)
    partitions = {record[0] for record in getattr(module, "PARTITIONS", ())}
    return module.Base.metadata, partitions


if config.attributes.get("target_metadata") is not None:
    target_metadata = config.attributes["target_metadata"]
    partition_names = set(config.attributes.get("partition_names", ()))
else:
    target_metadata, partition_names = load_models(MODELS_PATH)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # PostgreSQL partitions are made by the revisions' SQL, not by the models
    return not (type_ == "table" and reflected and name in partition_names)


# spellings one database reflects for what the models say another way
DEFAULT_SYNONYMS = {
    "now": "current_timestamp",
    "current_timestamp": "current_timestamp",
    "localtimestamp": "current_timestamp",
    "curdate": "current_date",
    "current_date": "current_date",
    "true": "1",
    "false": "0",
}
# function calls every supported database understands in a DEFAULT
PORTABLE_CALLS = {"now", "current_timestamp", "current_date", "current_time"}
CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\(")


def default_key(text: str | None) -> str | None:
    if text is None:
        return None
    bare = text.strip().lower().replace("(", "").replace(")", "").strip("'\" ")
    return DEFAULT_SYNONYMS.get(bare, bare)


def postgresql_only_default(expression: str) -> bool:
    unquoted = re.sub(r"'(?:[^']|'')*'", "''", expression)
    return any(name.lower() not in PORTABLE_CALLS for name in CALL.findall(unquoted))


def compare_server_default(
    context: object,
    inspected_column: object,
    metadata_column: object,
    inspected_default: str | None,
    metadata_default: object,
    rendered_metadata_default: str | None,
) -> bool | None:
    # SQLite and MariaDB reflect now() as CURRENT_TIMESTAMP and true as 1: the
    # same default; the revisions leave out defaults calling PostgreSQL-only
    # functions there. Anything else is left to Alembic's own comparison.
    if default_key(inspected_default) == default_key(rendered_metadata_default):
        return False
    text = getattr(getattr(metadata_default, "arg", None), "text", None)
    if inspected_default is None and text and postgresql_only_default(text):
        return False
    return None


def is_expression_index(operation: ops.CreateIndexOp) -> bool:
    # Alembic wraps a textual key of a compared index in its own element
    return any(
        isinstance(e, TextClause) or type(e).__name__ == "_textual_index_element"
        for e in operation.to_index().expressions
    )


def without_mariadb_gaps(
    operations: list[ops.MigrateOperation],
) -> list[ops.MigrateOperation]:
    # MariaDB has no deferrable keys and no indexes on expressions: the
    # revisions create such a key plain and leave such an index out there
    deferrable = {
        o.constraint_name
        for o in operations
        if isinstance(o, ops.CreateForeignKeyOp) and o.kw.get("deferrable")
    }
    dropped = {
        o.constraint_name
        for o in operations
        if isinstance(o, ops.DropConstraintOp) and o.constraint_type == "foreignkey"
    }
    plain_again = deferrable & dropped
    kept: list[ops.MigrateOperation] = []
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            operation.ops = without_mariadb_gaps(operation.ops)
            if operation.ops:
                kept.append(operation)
        elif not mariadb_lacks(operation, plain_again):
            kept.append(operation)
    return kept


def mariadb_lacks(operation: ops.MigrateOperation, plain_again: set[str]) -> bool:
    if isinstance(operation, ops.CreateIndexOp):
        return is_expression_index(operation)
    if isinstance(operation, ops.CreateForeignKeyOp | ops.DropConstraintOp):
        return operation.constraint_name in plain_again
    return False


def process_revision_directives(
    migration_context: object, revision: object, directives: list[object]
) -> None:
    # `alembic check` and autogenerate see on MariaDB what it cannot hold
    if migration_context.dialect.name != "mysql":  # type: ignore[attr-defined]
        return
    for script in directives:
        pairs = zip(
            script.upgrade_ops_list,  # type: ignore[attr-defined]
            script.downgrade_ops_list,  # type: ignore[attr-defined]
            strict=True,
        )
        for upgrade_ops, downgrade_ops in pairs:
            upgrade_ops.ops = without_mariadb_gaps(upgrade_ops.ops)
            upgrade_ops.reverse_into(downgrade_ops)


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set DATABASE_URL or sqlalchemy.url in alembic.ini")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (
        None,
        "",
        ":memory:",
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.drivername in ("postgresql", "postgres"):
        # the bare scheme means psycopg2, which sparc does not install
        return parsed.set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False
        )
    return url


def configure_options(dialect_name: str) -> dict[str, object]:
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        # PostgreSQL's defaults are compared by Alembic itself, which also
        # understands identity columns (a callable here is handed them raw)
        "compare_server_default": (
            True if dialect_name == "postgresql" else compare_server_default
        ),
        "include_object": include_object,
        "process_revision_directives": process_revision_directives,
        # SQLite cannot ALTER constraints or columns in place: recreate tables
        "render_as_batch": dialect_name == "sqlite",
    }


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    enforced = False
    if connection.dialect.name == "sqlite":
        # a batch copy drops the old table: with foreign keys enforced that
        # would delete or refuse the child rows; SQLite takes the switch only
        # outside a transaction
        enforced = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection, **configure_options(connection.dialect.name)
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if enforced:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = engine_from_config(
        {"sqlalchemy.url": database_url()},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        run_on(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
