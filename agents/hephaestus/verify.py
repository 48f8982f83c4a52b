"""Run a revision chain against a real database and prove it matches the models.

Each check runs `upgrade head`, `downgrade base` and `upgrade head` through
Alembic's command API, then compares the database with the models the way
`alembic check` does. On SQLite the new revision also has to upgrade a
database that holds rows at the previous head, as a deployed one does. A
failing step raises `VerificationError` naming it.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.sql.elements import ClauseElement

from sparc.agents.hephaestus.models_render import (
    load_metadata_and_spec,
    spec_from_models,
)
from sparc.agents.hephaestus.revision import (
    collection_paused,
    is_expression_index,
    postgresql_only_default,
    scratch_sqlite_engine,
)
from sparc.agents.hephaestus.scripts import render_seed_sql, seed_statements
from sparc.agents.hephaestus.spec import Column, SchemaSpec
from sparc.errors import SparcError, VerificationError

log = structlog.get_logger(__name__)

VERSION_TABLE = "alembic_version"

_T = TypeVar("_T")


@dataclass(frozen=True)
class VerificationReport:
    """What was run on which database, in order."""

    dialect: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class LoadedModels:
    """A `models.py` imported once, for every check made against it."""

    metadata: sa.MetaData
    # PostgreSQL partitions: tables made by the revisions' SQL, not by models
    partition_names: frozenset[str]

    @classmethod
    def from_file(cls, models_path: Path) -> LoadedModels:
        with collection_paused():
            metadata, spec = load_metadata_and_spec(models_path)
        return cls(metadata, frozenset(p.name for p in spec.partitions))

    @classmethod
    def through_env(
        cls, alembic_dir: Path, partition_names: Iterable[str]
    ) -> LoadedModels | None:
        """The metadata `env.py` hands Alembic, loaded as the `alembic` command does.

        env.py runs in offline mode with no migration to run: what it passes
        as `target_metadata` is proof that it finds and imports `models.py`,
        and the one import every later check can share.

        Args:
            alembic_dir: the folder with `env.py`.
            partition_names: the PostgreSQL partitions the models record.

        Returns:
            The models, or None when env.py hands Alembic no metadata.

        Raises:
            VerificationError: env.py failed (step "load models through env.py").
        """
        config = alembic_config(alembic_dir)
        config.output_buffer = io.StringIO()
        config.set_main_option("sqlalchemy.url", "postgresql://")
        script = ScriptDirectory.from_config(config)

        def no_migrations(revision: Any, context: Any) -> list[Any]:
            return []

        def load() -> object:
            with (
                collection_paused(),
                EnvironmentContext(
                    config, script, fn=no_migrations, as_sql=True
                ) as env,
            ):
                script.run_env()
                return env.get_context().opts.get("target_metadata")

        metadata = _step("load models through env.py", "postgresql", load)
        if not isinstance(metadata, sa.MetaData):
            return None
        return cls(metadata, frozenset(partition_names))


class _Chain:
    """A revision chain run through its env.py, its scripts loaded only once.

    Each Alembic command reads and compiles every revision again; the steps of
    one verification share this chain, or at least its `script` directory.
    """

    def __init__(self, config: Config, script: ScriptDirectory | None = None) -> None:
        self.config = config
        self.script = script or ScriptDirectory.from_config(config)

    def upgrade(self, destination: str) -> None:
        def revisions(revision: Any, context: Any) -> Any:
            return self.script._upgrade_revs(destination, revision)

        self._run(destination, revisions)

    def downgrade(self, destination: str) -> None:
        def revisions(revision: Any, context: Any) -> Any:
            return self.script._downgrade_revs(destination, revision)

        self._run(destination, revisions)

    def _run(self, destination: str, revisions: Callable[[Any, Any], Any]) -> None:
        with EnvironmentContext(
            self.config, self.script, fn=revisions, destination_rev=destination
        ):
            self.script.run_env()


def alembic_config(alembic_dir: Path) -> Config:
    """A Config for `alembic_dir` built in code, with no ini file."""
    config = Config()
    config.set_main_option("script_location", str(alembic_dir))
    config.set_main_option("version_locations", str(alembic_dir / "versions"))
    config.set_main_option("path_separator", "os")
    return config


def verify_sqlite(
    alembic_dir: Path,
    models_path: Path,
    *,
    previous_spec: SchemaSpec | None = None,
    previous_head: str | None = None,
    models: LoadedModels | None = None,
) -> VerificationReport:
    """Verify the chain on a scratch SQLite database in a temporary folder.

    Args:
        alembic_dir: the folder with `env.py` and `versions/`; it is copied,
            never run in place.
        models_path: the `models.py` the chain must end at.
        previous_spec: the schema at `previous_head`; with both given, a
            second database is upgraded to `previous_head`, given seed rows
            of `previous_spec`, then upgraded to head.
        previous_head: the revision before the new one.
        models: `models_path` already imported, when the caller has it.

    Raises:
        VerificationError: a step failed (`step` names it, dialect "sqlite").
    """
    if models is None:
        models = _step(
            "load models", "sqlite", lambda: LoadedModels.from_file(models_path)
        )
    with tempfile.TemporaryDirectory(prefix="sparc-verify-") as scratch:
        copy = Path(scratch) / "alembic"
        shutil.copytree(alembic_dir, copy)
        # both databases run the same revisions: read and compile them once
        script = _step(
            "upgrade head",
            "sqlite",
            lambda: ScriptDirectory.from_config(alembic_config(copy)),
        )
        engine = scratch_sqlite_engine(Path(scratch) / "verify.sqlite3")
        report = _verify_on(engine, copy, models, script)
        if previous_spec is None or previous_head is None:
            return report

        seeded = scratch_sqlite_engine(Path(scratch) / "seeded.sqlite3")
        steps = _upgrade_over_rows(
            seeded,
            _Chain(alembic_config(copy), script),
            models_path,
            models.metadata,
            previous_spec,
            previous_head,
        )
        return VerificationReport(report.dialect, report.steps + steps)


def _upgrade_over_rows(
    engine: sa.Engine,
    chain: _Chain,
    models_path: Path,
    metadata: sa.MetaData,
    previous_spec: SchemaSpec,
    previous_head: str,
) -> tuple[str, ...]:
    try:
        statements = seed_statements(render_seed_sql(previous_spec), "sqlite")
    except SparcError as error:
        log.warning("seeded_upgrade_skipped", reason=str(error))
        return ()
    if not statements:
        return ()

    try:
        with engine.connect() as connection:
            chain.config.attributes["connection"] = connection
            chain.config.attributes["target_metadata"] = metadata
            _step(
                "upgrade to the previous head",
                "sqlite",
                lambda: chain.upgrade(previous_head),
            )
            connection.commit()
            if not _seeded(connection, statements):
                return ()
            try:
                chain.upgrade("head")
                connection.commit()
            except Exception as error:
                connection.rollback()
                columns = columns_rows_cannot_fill(
                    previous_spec, spec_from_models(models_path)
                )
                if not columns:
                    # seed rows break a new constraint, or hold NULL where a
                    # column turns NOT NULL: real data may not, so no verdict
                    log.warning("seeded_upgrade_inconclusive", error=str(error))
                    return ()
                raise VerificationError(
                    rows_refused(columns, f"{type(error).__name__}: {error}"),
                    step="upgrade head over existing rows",
                    dialect="sqlite",
                ) from error
    finally:
        engine.dispose()
    return ("seed the previous head", "upgrade head over existing rows")


def _seeded(connection: sa.Connection, statements: list[str]) -> bool:
    # rows the previous schema cannot take are no fault of the new revision
    raw = connection.execution_options(no_parameters=True)
    try:
        for statement in statements:
            raw.exec_driver_sql(statement)
        connection.commit()
    except sa.exc.DBAPIError as error:
        connection.rollback()
        log.warning("seeded_upgrade_skipped", reason=str(error.orig))
        return False
    return True


def columns_rows_cannot_fill(previous: SchemaSpec, spec: SchemaSpec) -> list[str]:
    """New NOT NULL columns without a default on tables `previous` already has."""
    previous_columns = {
        table.name: {column.name for column in table.columns}
        for table in previous.tables
    }
    return [
        f"{table.name}.{column.name}"
        for table in spec.tables
        if (before := previous_columns.get(table.name)) is not None
        for column in table.columns
        if _needs_a_value(column) and column.name not in before
    ]


def rows_refused(columns: list[str], found: str | None = None) -> str:
    """Why new NOT NULL columns without a DEFAULT cannot go over existing rows.

    Args:
        columns: the columns as `table.column`.
        found: the error a database gave, when one was seen.
    """
    seen = f" ({found})" if found else ""
    return (
        f"column {', '.join(columns)} is NOT NULL without a DEFAULT, so the rows "
        "already in the table get no value and the upgrade fails on any database "
        "that holds data; give the column a DEFAULT, make it nullable, or "
        f"backfill it before setting NOT NULL{seen}"
    )


def _needs_a_value(column: Column) -> bool:
    return (
        not column.nullable
        and column.default is None
        and not column.serial
        and column.identity is None
    )


def verify_server(
    admin_url: str,
    alembic_dir: Path,
    models_path: Path,
    *,
    models: LoadedModels | None = None,
) -> VerificationReport:
    """Verify the chain in a scratch database created on a server, then dropped.

    Args:
        admin_url: a SQLAlchemy URL of a PostgreSQL or MariaDB server whose
            user may create databases; its database is only used to connect.
        alembic_dir: the folder with `env.py` and `versions/`.
        models_path: the `models.py` the chain must end at.
        models: `models_path` already imported, when the caller has it.

    Raises:
        VerificationError: the scratch database could not be made, or a step
            failed.
    """
    with scratch_database(admin_url) as url:
        return verify_url(url, alembic_dir, models_path, models=models)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """Create an empty database on the server at `admin_url`; drop it after use."""
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    dialect = admin.dialect.name
    name = f"sparc_verify_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception as error:
        admin.dispose()
        raise VerificationError(
            f"cannot create a scratch database on {admin.url!r}: {error}",
            step="create scratch database",
            dialect=dialect,
        ) from error
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if dialect == "postgresql" else ""
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


def verify_url(
    url: str,
    alembic_dir: Path,
    models_path: Path,
    *,
    models: LoadedModels | None = None,
) -> VerificationReport:
    """Verify the chain on the database at `url`, which should start empty.

    Args:
        url: a SQLAlchemy URL of an empty database.
        alembic_dir: the folder with `env.py` and `versions/`.
        models_path: the `models.py` the chain must end at.
        models: `models_path` already imported, when the caller has it.

    Raises:
        VerificationError: a step failed; `dialect` is the URL's backend.
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if models is None:
        dialect = engine.dialect.name
        models = _step(
            "load models", dialect, lambda: LoadedModels.from_file(models_path)
        )
    return _verify_on(engine, alembic_dir, models)


def _verify_on(
    engine: sa.Engine,
    alembic_dir: Path,
    models: LoadedModels,
    script: ScriptDirectory | None = None,
) -> VerificationReport:
    dialect = engine.dialect.name
    partitions = set(models.partition_names)
    try:
        with engine.connect() as connection:
            config = alembic_config(alembic_dir)
            config.attributes["connection"] = connection
            config.attributes["target_metadata"] = models.metadata
            config.attributes["partition_names"] = partitions
            chain = _step("upgrade head", dialect, lambda: _Chain(config, script))
            steps = _round_trip(chain, connection, models.metadata, dialect, partitions)
    finally:
        engine.dispose()
    log.info("revisions_verified", dialect=dialect, steps=len(steps))
    return VerificationReport(dialect=dialect, steps=steps)


def _round_trip(
    chain: _Chain,
    connection: sa.Connection,
    metadata: sa.MetaData,
    dialect: str,
    partitions: set[str],
) -> tuple[str, ...]:
    def run(step: str, action: Callable[[], None]) -> str:
        def act() -> None:
            action()
            connection.commit()

        _step(step, dialect, act)
        return step

    # the chain goes up through the previous head and down through it again:
    # the newest revision's downgrade must give back that catalog, not merely
    # a database the rest of the chain can go on from
    newest = chain.script.get_revision("head")
    previous = newest.down_revision if newest is not None else None
    snapshots: list[dict[str, object]] = []

    def upgrade_head() -> None:
        # MariaDB keeps the index a foreign key made for itself after a
        # downgrade drops the index that served it: not compared there
        if isinstance(previous, str) and dialect != "mysql":
            chain.upgrade(previous)
            snapshots.append(catalog_snapshot(connection))
            # reflection opened a transaction of its own; a revision with an
            # autocommit block (CREATE INDEX CONCURRENTLY) needs none open
            connection.commit()
        chain.upgrade("head")

    def downgrade_base() -> None:
        if snapshots and isinstance(previous, str):
            chain.downgrade(previous)
            _assert_same_catalog(snapshots[0], catalog_snapshot(connection))
            connection.commit()
        chain.downgrade("base")

    steps = [run("upgrade head", upgrade_head)]
    steps.append(run("downgrade base", downgrade_base))
    steps.append(run("empty after downgrade", lambda: _assert_empty(connection)))
    steps.append(run("upgrade head again", lambda: chain.upgrade("head")))
    steps.append(
        run("no drift", lambda: _assert_no_drift(connection, metadata, partitions))
    )
    return tuple(steps)


def catalog_snapshot(connection: sa.Connection) -> dict[str, object]:
    """Each table's columns (type, nullability, default, identity) and constraints."""
    inspector = sa.inspect(connection)
    snapshot: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        if table == VERSION_TABLE:
            continue
        columns = [
            (
                column["name"],
                str(column["type"].compile(dialect=connection.dialect)),
                column["nullable"],
                column.get("default"),
                repr(sorted((column.get("identity") or {}).items())),
            )
            for column in inspector.get_columns(table)
        ]
        snapshot[table] = (
            columns,
            _stable(inspector.get_pk_constraint(table)),
            sorted(map(_stable, inspector.get_foreign_keys(table))),
            sorted(map(_stable, inspector.get_unique_constraints(table))),
            sorted(map(_stable, inspector.get_indexes(table))),
            sorted(map(_stable, inspector.get_check_constraints(table))),
        )
    return snapshot


def _stable(value: object) -> str:
    """A reflected entry as text that two reflections of one catalog share.

    Reflection hands back SQL expressions (a partial index's WHERE) as objects
    whose repr holds their address; their SQL text is what must compare.
    """

    def text_of(item: object) -> str:
        return str(item) if isinstance(item, ClauseElement) else repr(item)

    return json.dumps(value, sort_keys=True, default=text_of)


def _assert_same_catalog(before: dict[str, object], after: dict[str, object]) -> None:
    if before == after:
        return
    changed = sorted(
        name for name in set(before) | set(after) if before.get(name) != after.get(name)
    )
    details = "; ".join(
        f"{name}: {before.get(name)!r} became {after.get(name)!r}" for name in changed
    )
    raise AssertionError(
        "downgrading the newest revision did not restore the previous head: " + details
    )


def _step(step: str, dialect: str, action: Callable[[], _T]) -> _T:
    try:
        return action()
    except VerificationError:
        raise
    except Exception as error:
        log.debug(
            "verification_step_failed", step=step, dialect=dialect, error=str(error)
        )
        raise VerificationError(
            f"{type(error).__name__}: {error}", step=step, dialect=dialect
        ) from error


def _assert_empty(connection: sa.Connection) -> None:
    inspector = sa.inspect(connection)
    left = [t for t in inspector.get_table_names() if t != VERSION_TABLE]
    if connection.dialect.name == "postgresql":
        left += [f"type {e['name']}" for e in inspector.get_enums()]  # type: ignore[attr-defined]
        left += connection.execute(sa.text(_POSTGRESQL_LEFTOVERS)).scalars().all()
    if left:
        raise AssertionError(f"downgrade base left {', '.join(sorted(left))} behind")


# what a downgrade to base must also remove on PostgreSQL
_POSTGRESQL_LEFTOVERS = """
SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
       WHEN 'S' THEN 'sequence ' ELSE 'relation ' END || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm', 'S', 'p')
UNION ALL
SELECT 'domain ' || t.typname FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = current_schema() AND t.typtype = 'd'
UNION ALL
SELECT 'function ' || p.proname FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = current_schema()
"""


# spellings one database reflects for what the models say another way
_DEFAULT_SYNONYMS = {
    "now": "current_timestamp",
    "current_timestamp": "current_timestamp",
    "localtimestamp": "current_timestamp",
    "curdate": "current_date",
    "current_date": "current_date",
    "true": "1",
    "false": "0",
}


def _default_key(text: str | None) -> str | None:
    if text is None:
        return None
    bare = text.strip().lower().replace("(", "").replace(")", "").strip("'\" ")
    return _DEFAULT_SYNONYMS.get(bare, bare)


def _same_default_or_defer(
    context: MigrationContext,
    inspected_column: object,
    metadata_column: object,
    inspected_default: str | None,
    metadata_default: object,
    rendered_metadata_default: str | None,
) -> bool | None:
    # MariaDB reflects now() as current_timestamp() and true as 1: the same
    # default; anything else is left to Alembic's own comparison
    if _default_key(inspected_default) == _default_key(rendered_metadata_default):
        return False
    # the revisions leave out defaults that call PostgreSQL-only functions
    text = getattr(getattr(metadata_default, "arg", None), "text", None)
    if inspected_default is None and text and postgresql_only_default(text):
        return False
    return None


def _without_deferrability(diffs: list[Any]) -> list[Any]:
    # MariaDB has no deferrable keys: the revision creates such a key plain,
    # which Alembic reports as the key removed and added again
    def key(fk: sa.ForeignKeyConstraint) -> tuple[object, ...]:
        return (fk.parent.name, fk.name, tuple(fk.column_keys), fk.referred_table.name)

    added = {
        key(diff[1]): diff
        for diff in diffs
        if isinstance(diff, tuple) and diff[0] == "add_fk" and diff[1].deferrable
    }
    removed = {
        key(diff[1]): diff
        for diff in diffs
        if isinstance(diff, tuple) and diff[0] == "remove_fk"
    }
    both = {id(d) for k in set(added) & set(removed) for d in (added[k], removed[k])}
    return [diff for diff in diffs if id(diff) not in both]


def _assert_no_drift(
    connection: sa.Connection, metadata: sa.MetaData, partitions: set[str]
) -> None:
    def include_object(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        # partitions are carried as SQL, not as models
        return not (type_ == "table" and reflected and name in partitions)

    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            # Alembic hands a callable the reflected identity of an identity
            # column raw and fails; on PostgreSQL its own comparison is right
            "compare_server_default": (
                True
                if connection.dialect.name == "postgresql"
                else _same_default_or_defer
            ),
            "include_object": include_object,
        },
    )
    with collection_paused():
        diffs = compare_metadata(context, metadata)
    if connection.dialect.name == "mysql":
        diffs = [
            diff
            for diff in _without_deferrability(diffs)
            if not (diff[0] == "add_index" and is_expression_index(diff[1]))
        ]
    if diffs:
        raise AssertionError(
            "the database at head differs from models.py: "
            + "; ".join(repr(diff) for diff in diffs)
        )
