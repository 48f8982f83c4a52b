"""`sparc db adopt`: an existing PostgreSQL becomes a workspace's proved baseline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import git
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from sparc.agents.hephaestus.adopt import catalog_facts, compare_catalogs
from sparc.cli import main
from sparc.init import init_workspace
from sparc.runner import Runner
from tests.conftest import (
    SCHEMAS,
    SHARED,
    ScratchDatabases,
    libpq_url,
    partition_objects,
    psql_file,
)

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared schemas not found at {SCHEMAS}",
)

PGFACTS = SHARED / "tools" / "pgfacts.py"
PASSWORD = "Adopt-Secret-4242"
PROJECT = "legacy"
BASELINE = "alembic/versions/001_adopt_database_{}.py"
MODELS = f"src/{PROJECT}/db/models.py"
_FIDELITY = re.compile(r"^(table-scope fidelity|fidelity) (\d+)/(\d+) = ", re.M)


@pytest.fixture
def workspace(tmp_path: Path, git_env: None) -> Path:
    """An initialised, committed workspace with no schema yet."""
    root = tmp_path / "legacy"
    init_workspace(root, project=PROJECT, identity="Sparc Test <sparc@example.com>")
    # the tests' own commits (planning tasks) need an identity too
    with git.Repo(root).config_writer() as config:
        config.set_value("user", "name", "Sparc Test")
        config.set_value("user", "email", "sparc@example.com")
    return root


def _loaded(databases: ScratchDatabases, *files: str) -> str:
    url = databases.create()
    for name in files:
        psql_file(url, SCHEMAS / name)
    return url


def _with_password(url: str) -> str:
    # the local server trusts its users: the password is carried, never checked
    return sa.engine.make_url(url).set(password=PASSWORD).render_as_string(False)


def _adopt(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["-C", str(root), "db", "adopt", *args])


def _database(url: str) -> str:
    return str(sa.engine.make_url(url).database)


def _schema_dump(url: str) -> str:
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "-d", libpq_url(url)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # pg_dump fences its output with a key that is new on every run
    return "\n".join(
        line
        for line in dump.splitlines()
        if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def _pgfacts(reference: str, candidate: str) -> tuple[dict[str, tuple[int, int]], str]:
    output = subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(reference), libpq_url(candidate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in _FIDELITY.finditer(output)
    }
    return figures, output


def _alembic(root: Path, url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "alembic/alembic.ini", *args],
        cwd=root,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


def _unchanged(root: Path, head: str) -> None:
    repo = git.Repo(root)
    assert repo.head.commit.hexsha == head
    assert repo.git.status("--porcelain", "--untracked-files=all") == ""


# --- adopting real schemas ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(
    ("schema", "tables"), [("chinook.sql", 11), ("pagila.sql", 15)]
)
def test_baseline_rebuilds_the_catalog(
    schema: str, tables: int, workspace: Path, pg_databases: ScratchDatabases
) -> None:
    """Revision 001 on an empty database gives the source's catalog (pgfacts)."""
    source = _loaded(pg_databases, schema)
    before = _schema_dump(source)

    result = _adopt(workspace, source, "--format", "json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    name = _database(source)
    assert summary["tables"] == tables
    assert summary["revision"] == {
        "id": "001",
        "file": f"001_adopt_database_{name}.py",
    }
    kept, total = summary["fidelity"]["whole_catalog"]
    assert kept == total > 0
    # read only: the catalog is as it was, and no alembic_version appeared
    assert _schema_dump(source) == before
    assert summary["alembic_version"]["before"] is None
    assert summary["alembic_version"]["stamp_command"].endswith("stamp 001")

    # the committed baseline, applied as a user would, rebuilds the source
    repo = git.Repo(workspace)
    committed = set(repo.head.commit.stats.files)
    assert {BASELINE.format(name), MODELS} <= committed
    assert repo.head.commit.message.startswith(f"feat(db): Adopt database {name}")
    assert "Task: ADOPT" in repo.head.commit.message
    rebuilt = pg_databases.create()
    _alembic(workspace, rebuilt, "upgrade", "head")
    figures, output = _pgfacts(source, rebuilt)
    kept, total = figures["table-scope fidelity"]
    assert kept == total > 0, output
    if schema == "pagila.sql":
        assert figures["fidelity"] == (242, 242), output
        # pgfacts leaves partitions out: their own keys and indexes
        own = partition_objects(source)
        assert sum(d.startswith("FOREIGN KEY") for _, _, d in own) == 18
        assert sum(d.startswith("CREATE INDEX") for _, _, d in own) == 18
        assert partition_objects(rebuilt) == own


@pytest.mark.postgres
@pytest.mark.slow
def test_later_task_adds_only_its_change(
    workspace: Path, pg_databases: ScratchDatabases
) -> None:
    """Adopt shop step 1 (stamped), then a data task for step 2: a delta-only 002."""
    source = _loaded(pg_databases, "shop-1-core.sql")

    result = _adopt(workspace, source, "--stamp")

    assert result.exit_code == 0, result.output
    assert "stamped the database at revision 001" in result.stdout
    engine = sa.create_engine(source)
    with engine.connect() as connection:
        version = connection.exec_driver_sql("select version_num from alembic_version")
        assert version.scalars().all() == ["001"]

    (workspace / "docs/data").mkdir(parents=True)
    (workspace / "docs/data/shop-2-auth.sql").write_text(
        (SCHEMAS / "shop-2-auth.sql").read_text()
    )
    (workspace / "docs/backlog/DB-002.yaml").write_text(
        "id: DB-002\ntitle: Add auth tokens\nspecialist: database-engineer\n"
        "status: READY\npriority: high\nphases: [refinement]\n"
        "references: [docs/data/shop-2-auth.sql]\n"
    )
    repo = git.Repo(workspace)
    repo.git.add("docs")
    repo.git.commit("-m", "plan DB-002")
    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-002")

    assert outcome.complete, outcome.reason
    [revision] = [
        f for f in repo.head.commit.stats.files if f.startswith("alembic/versions/")
    ]
    text = (workspace / revision).read_text()
    assert revision == "alembic/versions/002_add_auth_tokens.py"
    assert "down_revision = '001'" in text
    assert re.findall(r"op\.create_table\('(\w+)'", text) == ["auth_tokens"]
    assert "drop_table('users')" not in text
    # the stamped source takes exactly that change
    _alembic(workspace, source, "upgrade", "head")
    with engine.connect() as connection:
        version = connection.exec_driver_sql("select version_num from alembic_version")
        assert version.scalars().all() == ["002"]
        assert sa.inspect(connection).has_table("auth_tokens")
    engine.dispose()


@pytest.mark.postgres
def test_output_and_logs_carry_no_password(
    workspace: Path, pg_databases: ScratchDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL comes from --url-env; no output, log or commit shows its password."""
    source = _with_password(_loaded(pg_databases, "shop-1-core.sql"))
    monkeypatch.setenv("LEGACY_DB", source)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    result = CliRunner().invoke(
        main, ["-C", str(workspace), "-vv", "db", "adopt", "--url-env", "LEGACY_DB"]
    )

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.stdout + result.stderr
    assert "postgres:***@" in result.stdout
    assert "database_adopted" in result.stderr
    found = subprocess.run(["git", "grep", "-q", PASSWORD, "HEAD"], cwd=workspace)
    assert found.returncode == 1


@pytest.mark.postgres
def test_no_commit_writes_the_files_only(
    workspace: Path, pg_databases: ScratchDatabases
) -> None:
    source = _loaded(pg_databases, "shop-1-core.sql")
    head = git.Repo(workspace).head.commit.hexsha

    result = _adopt(workspace, source, "--no-commit")

    assert result.exit_code == 0, result.output
    assert "not committed (--no-commit)" in result.stdout
    repo = git.Repo(workspace)
    assert repo.head.commit.hexsha == head
    name = _database(source)
    assert sorted(repo.untracked_files) == sorted(
        [
            "alembic/scripts/performance_queries.sql",
            "alembic/scripts/seed_data.sql",
            BASELINE.format(name),
            MODELS,
        ]
    )
    # the written models import on their own, mappers configured
    check = (
        "import runpy, sqlalchemy.orm; "
        f"runpy.run_path({str(workspace / MODELS)!r}); "
        "sqlalchemy.orm.configure_mappers()"
    )
    subprocess.run([sys.executable, "-c", check], check=True)


@pytest.mark.postgres
def test_a_planned_task_is_completed_by_the_adoption(
    workspace: Path, pg_databases: ScratchDatabases
) -> None:
    source = _loaded(pg_databases, "shop-1-core.sql")
    task = workspace / "docs/backlog/DB-001.yaml"
    task.write_text(
        "id: DB-001\ntitle: Adopt the shop database\n"
        "specialist: database-engineer\nstatus: READY\npriority: high\n"
    )
    repo = git.Repo(workspace)
    repo.git.add("docs")
    repo.git.commit("-m", "plan DB-001")

    result = _adopt(workspace, source, "--task", "DB-001")

    assert result.exit_code == 0, result.output
    commit = repo.head.commit
    assert commit.message.startswith("feat(db): Adopt the shop database")
    assert "Task: DB-001" in commit.message
    assert "docs/backlog/DB-001.yaml" in commit.stats.files
    assert "alembic/versions/001_adopt_the_shop_database.py" in commit.stats.files
    assert "status: COMPLETE" in task.read_text()


# --- refusals: exit 2, nothing written ------------------------------------------------


def test_a_workspace_with_a_schema_is_refused(workspace: Path) -> None:
    """Adopting twice: the check runs before the database is even read."""
    versions = workspace / "alembic/versions"
    versions.mkdir()
    (versions / "001_first.py").write_text("revision = '001'\n")
    repo = git.Repo(workspace)
    repo.git.add("alembic")
    repo.git.commit("-m", "a revision")
    head = repo.head.commit.hexsha

    result = _adopt(workspace, "postgresql://nobody@127.0.0.1:1/none")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: the workspace already has a schema, so nothing was adopted: "
        "sparc db adopt gives an empty workspace its baseline. Adopt into a new "
        "workspace (sparc init FOLDER), or describe further changes to this one "
        "as data tasks\n"
        "  - alembic/versions/001_first.py\n"
    )
    _unchanged(workspace, head)


def test_an_unreachable_database_is_refused(workspace: Path) -> None:
    head = git.Repo(workspace).head.commit.hexsha
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:1/legacy"

    result = _adopt(workspace, url)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot read the database (")
    assert result.stderr.endswith("); check the URL and that the server runs\n"), (
        result.stderr
    )
    assert PASSWORD not in result.output
    _unchanged(workspace, head)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite:///legacy.sqlite3",
            "error: sparc db adopt reads PostgreSQL, not sqlite; give a "
            "postgresql:// URL\n",
        ),
        (
            "postgresql://someone@127.0.0.1:5432",
            "error: the URL names no database; give postgresql://USER@HOST/DATABASE\n",
        ),
    ],
)
def test_urls_sparc_cannot_adopt_are_refused(
    workspace: Path, url: str, message: str
) -> None:
    result = _adopt(workspace, url)

    assert result.exit_code == 2
    assert result.stderr == message


def test_no_url_is_a_usage_error(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)

    result = _adopt(workspace)

    assert result.exit_code == 2
    assert "give the database URL, set DATABASE_URL" in result.stderr


@pytest.mark.postgres
def test_objects_sparc_cannot_carry_are_each_named(
    workspace: Path, pg_url: str
) -> None:
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for statement in (
            "create schema audit",
            "create table audit.log (id int primary key)",
            'create table notes (id int primary key, body text collate "C")',
            "create unlogged table hits (id int)",
            "create rule quiet as on insert to hits do instead nothing",
        ):
            connection.exec_driver_sql(statement)
    engine.dispose()
    head = git.Repo(workspace).head.commit.hexsha

    result = _adopt(workspace, pg_url)

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: database {_database(pg_url)} holds 4 object(s) sparc cannot carry "
        "into models and revisions, so nothing was written; drop or move them (for "
        "example adopt a copy without them), then run sparc db adopt again\n"
        "  - rule quiet on public.hits: a rule\n"
        "  - table audit.log: outside the public schema\n"
        '  - table column public.notes.body: collation "C"\n'
        "  - table public.hits: unlogged\n"
    )
    _unchanged(workspace, head)


@pytest.mark.postgres
def test_a_definition_the_baseline_changes_is_refused(
    workspace: Path, pg_url: str
) -> None:
    """The scratch catalog is compared fact by fact: a lost option is named."""
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("create table t (id int primary key, a int)")
        connection.exec_driver_sql(
            "alter table t add constraint a_positive check (a > 0) not valid"
        )
    engine.dispose()
    head = git.Repo(workspace).head.commit.hexsha

    result = _adopt(workspace, pg_url)

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: the baseline rebuilds database {_database(pg_url)} with 1 "
        "difference(s), so nothing was written; the objects named below are ones "
        "sparc cannot carry exactly: drop or change them, or adopt a copy without "
        "them\n"
        "  - constraint t.a_positive: 'CHECK ((a > 0)) NOT VALID' in the database, "
        "'CHECK ((a > 0))' after the baseline\n"
    )
    _unchanged(workspace, head)


@pytest.mark.postgres
def test_a_definition_the_schema_cannot_hold_is_refused(
    workspace: Path, pg_url: str
) -> None:
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(
            "create table t (id int primary key, code text unique "
            "deferrable initially deferred)"
        )
    engine.dispose()

    result = _adopt(workspace, pg_url)

    assert result.exit_code == 2
    assert result.stderr.endswith("\n  - t: a DEFERRABLE UNIQUE is not supported\n"), (
        result.stderr
    )


@pytest.mark.postgres
def test_an_empty_database_is_refused(workspace: Path, pg_url: str) -> None:
    result = _adopt(workspace, pg_url)

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: database {_database(pg_url)} has no table in its public schema: "
        "there is nothing to adopt; start the schema with a data task instead\n"
    )


@pytest.mark.postgres
def test_stamp_keeps_another_chains_record(
    workspace: Path, pg_databases: ScratchDatabases
) -> None:
    """--stamp refuses to overwrite a revision of another Alembic chain."""
    source = _loaded(pg_databases, "shop-1-core.sql")
    engine = sa.create_engine(source, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(
            "create table alembic_version (version_num varchar(32) primary key)"
        )
        connection.exec_driver_sql("insert into alembic_version values ('ae1027a6')")
    engine.dispose()
    head = git.Repo(workspace).head.commit.hexsha

    refused = _adopt(workspace, source, "--stamp")
    adopted = _adopt(workspace, source, "--no-commit")

    assert refused.exit_code == 2
    assert refused.stderr.endswith(
        "run `alembic stamp --purge 001` yourself once the old chain is retired\n"
        "  - alembic_version holds ae1027a6\n"
    ), refused.stderr
    assert adopted.exit_code == 0, adopted.output
    assert "the database records ae1027a6" in adopted.stdout
    assert "alembic/alembic.ini stamp --purge 001" in adopted.stdout
    # the bookkeeping table is not part of the adopted schema
    assert "alembic_version" not in (workspace / MODELS).read_text()
    assert git.Repo(workspace).head.commit.hexsha == head


@pytest.mark.postgres
def test_a_scratch_server_that_refuses_says_what_to_give(
    workspace: Path, pg_databases: ScratchDatabases
) -> None:
    source = _loaded(pg_databases, "shop-1-core.sql")
    head = git.Repo(workspace).head.commit.hexsha
    scratch = f"postgresql://someone:{PASSWORD}@127.0.0.1:1/postgres"

    result = _adopt(workspace, source, "--scratch-url", scratch)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: postgresql: create scratch database: "), (
        result.stderr
    )
    assert result.stderr.endswith(
        "; name a server where sparc may create databases with --scratch-url or "
        "`verify: {postgresql: URL}` in .sparc/config.yaml\n"
    ), result.stderr
    assert PASSWORD not in result.output
    _unchanged(workspace, head)


# --- the catalog comparison -----------------------------------------------------------


def test_comparison_counts_kept_facts_and_names_the_rest() -> None:
    source = frozenset(
        {
            ("table", "t", ""),
            ("column", "t.id", "integer not null"),
            ("column", "t.a", "text"),
            ("view", "v", "v SELECT 1"),
        }
    )
    rebuilt = frozenset(
        {
            ("table", "t", ""),
            ("column", "t.id", "integer not null"),
            ("column", "t.a", "character varying"),
            ("index", "t_a_idx", "CREATE INDEX t_a_idx ON t (a)"),
        }
    )

    comparison = compare_catalogs(source, rebuilt)

    assert comparison.counts == {"column": (1, 2), "table": (1, 1), "view": (0, 1)}
    assert comparison.table_scope == (2, 3)
    assert comparison.whole == (2, 4)
    assert comparison.lost == (
        "column t.a: 'text' in the database, 'character varying' after the baseline",
        "view v: missing after the baseline",
    )
    assert comparison.unexpected == (
        "index t_a_idx: made by the baseline, not in the database",
    )
    assert not comparison.identical
    assert compare_catalogs(source, source).identical


def test_a_prisma_workspace_is_refused_before_anything_is_written(
    workspace: Path,
) -> None:
    """Its Prisma tasks would not build on an Alembic baseline."""
    stack = workspace / "docs/architecture/technology-decisions/stack-01.md"
    stack.parent.mkdir(parents=True, exist_ok=True)
    stack.write_text("# Stack\n\nDatabase: PostgreSQL\nORM: Prisma 5\n")
    repo = git.Repo(workspace)
    repo.git.add("docs")
    repo.git.commit("-m", "choose Prisma")
    head = repo.head.commit.hexsha

    result = _adopt(workspace, "postgresql://nobody@127.0.0.1:1/none")

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "error: docs/architecture/technology-decisions/stack-01.md:4: this "
        "workspace uses Prisma; adopt writes SQLAlchemy models and an Alembic "
        "baseline"
    ), result.stderr
    _unchanged(workspace, head)


@pytest.mark.postgres
def test_generated_columns_and_exclusions_are_named_for_users(
    workspace: Path, pg_url: str
) -> None:
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(
            "create table prices (id int primary key, net int, "
            "gross int generated always as (net * 2) stored)"
        )
        connection.exec_driver_sql(
            "create table slots (id int primary key, room int, "
            "constraint one_booking exclude using btree (room with =))"
        )
    engine.dispose()

    result = _adopt(workspace, pg_url)

    assert result.exit_code == 2
    assert (
        "  - generated column prices.gross (GENERATED ALWAYS AS (net * 2) STORED) "
        "cannot be carried yet;" in result.stderr
    ), result.stderr
    assert (
        "  - exclusion constraint one_booking on slots (EXCLUDE USING ...) cannot "
        "be carried yet;" in result.stderr
    ), result.stderr
    assert "SchemaSpec" not in result.stderr


@pytest.mark.postgres
def test_facts_hold_a_partitions_own_keys_and_indexes_only(
    pg_databases: ScratchDatabases,
) -> None:
    """A partition's own key and index are facts; its copies of the parent's not."""
    url = pg_databases.create()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for sql in (
                "CREATE TABLE r (id int PRIMARY KEY)",
                "CREATE TABLE p (id int, at date, ref int, PRIMARY KEY (id, at))"
                " PARTITION BY RANGE (at)",
                "CREATE INDEX p_at ON p (at)",
                "CREATE TABLE p1 PARTITION OF p"
                " FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')",
            ):
                connection.exec_driver_sql(sql)
            bare = catalog_facts(connection)
            for sql in (
                "ALTER TABLE p1 ADD CONSTRAINT p1_ref FOREIGN KEY (ref) REFERENCES r",
                "CREATE INDEX p1_ref_idx ON p1 (ref)",
            ):
                connection.exec_driver_sql(sql)
            carried = catalog_facts(connection)
    finally:
        engine.dispose()

    comparison = compare_catalogs(carried, bare)

    assert comparison.lost == (
        "constraint p1.p1_ref: missing after the baseline",
        "index p1_ref_idx: missing after the baseline",
    )
    assert [f for f in bare if "p1_pkey" in f[1] or "p1_at" in f[1]] == []
