"""Fixtures shared by the test modules: scratch databases and workspaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SCHEMAS = SHARED / "data" / "schemas"
CASES = SHARED / "cases"
EXAMPLES = REPO_ROOT / "examples"

PG_ADMIN_URL = os.environ.get(
    "SPARC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_ADMIN_URL = os.environ.get(
    "SPARC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
IN_CI = os.environ.get("CI") == "true"


def _unreachable(what: str, error: Exception) -> None:
    message = f"{what} is unreachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


def _admin_engine(url: str, what: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:  # any driver error means the server is not there
        engine.dispose()
        _unreachable(what, error)
    return engine


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = _admin_engine(PG_ADMIN_URL, "PostgreSQL at 127.0.0.1:5432")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mariadb_admin() -> Iterator[sa.Engine]:
    engine = _admin_engine(MARIADB_ADMIN_URL, "MariaDB at 127.0.0.1:3306")
    yield engine
    engine.dispose()


class ScratchDatabases:
    """Creates uniquely named databases on a server and drops them afterwards."""

    def __init__(self, admin: sa.Engine) -> None:
        self._admin = admin
        self._names: list[str] = []

    def create(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        name = f"sparc_t_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
        self._names.append(name)
        return self._admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin.connect() as connection:
            for name in self._names:
                if self._admin.dialect.name == "postgresql":
                    connection.execute(
                        sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    )
                else:
                    connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))


@pytest.fixture
def pg_databases(pg_admin: sa.Engine) -> Iterator[ScratchDatabases]:
    """Scratch PostgreSQL databases: `pg_databases.create()` returns a URL."""
    scratch = ScratchDatabases(pg_admin)
    yield scratch
    scratch.drop_all()


@pytest.fixture
def pg_url(pg_databases: ScratchDatabases) -> str:
    """One empty scratch PostgreSQL database."""
    return pg_databases.create()


@pytest.fixture
def mariadb_databases(mariadb_admin: sa.Engine) -> Iterator[ScratchDatabases]:
    scratch = ScratchDatabases(mariadb_admin)
    yield scratch
    scratch.drop_all()


@pytest.fixture
def mariadb_url(mariadb_databases: ScratchDatabases) -> str:
    """One empty scratch MariaDB database."""
    return mariadb_databases.create()


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (for psql and pgfacts)."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


def psql_file(url: str, path: Path) -> None:
    """Load a SQL file with psql, stopping at the first error."""
    subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            libpq_url(url),
            "-f",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def git_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment with no global or system git configuration."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig-absent"))
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def shop_workspace(tmp_path: Path) -> Path:
    """A copy of the shop example, not yet initialised."""
    target = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "shop", target)
    return target


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """The CLI configures structlog; later tests start from the library defaults."""
    yield
    import structlog

    structlog.reset_defaults()


def partition_objects(url: str) -> set[tuple[str, str, str]]:
    """(partition, name, definition) of each partition's keys and indexes."""
    query = """
    select c.relname, k.conname, pg_get_constraintdef(k.oid)
      from pg_constraint k join pg_class c on c.oid = k.conrelid
     where c.relispartition and k.contype in ('p', 'u', 'c', 'f', 'x')
    union all
    select c.relname, x.relname, pg_get_indexdef(i.indexrelid)
      from pg_index i join pg_class c on c.oid = i.indrelid
      join pg_class x on x.oid = i.indexrelid
     where c.relispartition
    """
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(query).all()
    finally:
        engine.dispose()
    return {(row[0], row[1], row[2]) for row in rows}


def server_urls(pg_admin: sa.Engine, mariadb_admin: sa.Engine) -> dict[str, str]:
    """The `verify:` mapping that sends a forge to both local servers."""
    return {
        "postgresql": pg_admin.url.render_as_string(hide_password=False),
        "mariadb": mariadb_admin.url.render_as_string(hide_password=False),
    }
