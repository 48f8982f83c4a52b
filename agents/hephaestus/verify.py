"""Run a revision chain against a real database and prove it matches the models.

Each check runs `upgrade head`, `downgrade base` and `upgrade head` through
Alembic's command API, then compares the database with the models the way
`alembic check` does. A failing step raises `VerificationError` naming it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from sparc.agents.hephaestus.models_render import load_metadata
from sparc.errors import VerificationError

log = structlog.get_logger(__name__)

VERSION_TABLE = "alembic_version"

_T = TypeVar("_T")


@dataclass(frozen=True)
class VerificationReport:
    """What was run on which database, in order."""

    dialect: str
    steps: tuple[str, ...]


def alembic_config(alembic_dir: Path) -> Config:
    """A Config for `alembic_dir` built in code, with no ini file."""
    config = Config()
    config.set_main_option("script_location", str(alembic_dir))
    config.set_main_option("version_locations", str(alembic_dir / "versions"))
    config.set_main_option("path_separator", "os")
    return config


def verify_sqlite(alembic_dir: Path, models_path: Path) -> VerificationReport:
    """Verify the chain on a scratch SQLite database in a temporary folder.

    Args:
        alembic_dir: the folder with `env.py` and `versions/`; it is copied,
            never run in place.
        models_path: the `models.py` the chain must end at.

    Raises:
        VerificationError: a step failed (`step` names it, dialect "sqlite").
    """
    with tempfile.TemporaryDirectory(prefix="sparc-verify-") as scratch:
        copy = Path(scratch) / "alembic"
        shutil.copytree(alembic_dir, copy)
        url = f"sqlite:///{Path(scratch) / 'verify.sqlite3'}"
        return verify_url(url, copy, models_path)


def verify_url(url: str, alembic_dir: Path, models_path: Path) -> VerificationReport:
    """Verify the chain on the database at `url`, which should start empty.

    Raises:
        VerificationError: a step failed; `dialect` is the URL's backend.
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    dialect = engine.dialect.name
    try:
        metadata = _step("load models", dialect, lambda: load_metadata(models_path))
        with engine.connect() as connection:
            config = alembic_config(alembic_dir)
            config.attributes["connection"] = connection
            config.attributes["target_metadata"] = metadata
            steps = _round_trip(config, connection, metadata, dialect)
    finally:
        engine.dispose()
    log.info("revisions_verified", dialect=dialect, steps=len(steps))
    return VerificationReport(dialect=dialect, steps=steps)


def _round_trip(
    config: Config, connection: sa.Connection, metadata: sa.MetaData, dialect: str
) -> tuple[str, ...]:
    def run(step: str, action: Callable[[], None]) -> str:
        def act() -> None:
            action()
            connection.commit()

        _step(step, dialect, act)
        return step

    steps = [run("upgrade head", lambda: command.upgrade(config, "head"))]
    steps.append(run("downgrade base", lambda: command.downgrade(config, "base")))
    steps.append(run("empty after downgrade", lambda: _assert_empty(connection)))
    steps.append(run("upgrade head again", lambda: command.upgrade(config, "head")))
    steps.append(run("no drift", lambda: _assert_no_drift(connection, metadata)))
    return tuple(steps)


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
    if left:
        raise AssertionError(f"downgrade base left {', '.join(sorted(left))} behind")


def _assert_no_drift(connection: sa.Connection, metadata: sa.MetaData) -> None:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    diffs = compare_metadata(context, metadata)
    if diffs:
        raise AssertionError(
            "the database at head differs from models.py: "
            + "; ".join(repr(diff) for diff in diffs)
        )
