"""Revisions rebuild real schemas exactly: pgfacts on PostgreSQL, round trips elsewhere.

`scripts/fidelity.py` (`make fidelity`) measures the figures; these tests run
the same measurement and hold it at 100%.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.forge import forge
from sparc.agents.hephaestus.verify import verify_sqlite, verify_url
from tests.conftest import (
    PG_ADMIN_URL,
    REPO_ROOT,
    SCHEMAS,
    ScratchDatabases,
    partition_objects,
    psql_file,
)

pytestmark = pytest.mark.skipif(
    not SCHEMAS.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared schemas not found at {SCHEMAS}",
)

SCRIPT = REPO_ROOT / "scripts" / "fidelity.py"


def _fidelity_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_sparc_fidelity_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fidelity = _fidelity_module()
ALL_SCHEMAS = list(fidelity.SCHEMAS)


def _workspace(root: Path, schema: str) -> tuple[Path, Path]:
    fidelity.forge_workspace(root, fidelity.SCHEMAS[schema])
    return _paths(root)


def _paths(root: Path) -> tuple[Path, Path]:
    return root / "alembic", root / "src" / fidelity.PROJECT / "db" / "models.py"


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each schema forged once per module into its own workspace."""
    roots: dict[str, Path] = {}

    def workspace(schema: str) -> Path:
        if schema not in roots:
            roots[schema] = tmp_path_factory.mktemp(schema)
            _workspace(roots[schema], schema)
        return roots[schema]

    return workspace


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_revisions_rebuild_the_catalog(schema: str, pg_admin: sa.Engine) -> None:
    """Table scope is 100% for every input; Pagila's whole catalog is 100% too."""
    result = fidelity.measure(schema, PG_ADMIN_URL)

    kept, total = result.table_scope
    assert total > 0 and kept == total, result.output
    if schema == "pagila":
        assert result.whole == (242, 242), result.output
        for kind in ("view", "function", "trigger", "partition", "domain"):
            assert f"\n{kind}" in f"\n{result.output}"


@pytest.mark.postgres
@pytest.mark.slow
def test_pagila_partitions_keep_their_own_keys_and_indexes(
    forged: Callable[[str], Path], pg_databases: ScratchDatabases
) -> None:
    """pgfacts leaves partitions out: their keys and indexes are compared here."""
    root = forged("pagila")
    source, rebuilt = pg_databases.create(), pg_databases.create()
    psql_file(source, SCHEMAS / "pagila.sql")

    # upgrade, downgrade to an empty database, upgrade again
    report = verify_url(rebuilt, *_paths(root))

    assert report.steps[-1] == "no drift"
    own = partition_objects(source)
    assert sum(d.startswith("FOREIGN KEY") for _, _, d in own) == 18
    assert partition_objects(rebuilt) == own


@pytest.mark.postgres
@pytest.mark.slow
def test_script_prints_the_figures(pg_admin: sa.Engine) -> None:
    """`make fidelity` runs the script; it prints both figures per schema."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--pg-url", PG_ADMIN_URL, "shop-1"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "shop-1   table-scope fidelity 29/29 = 100.0%" in done.stdout
    assert "whole-catalog fidelity 29/29 = 100.0%" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_round_trip_on_sqlite(schema: str, forged: Callable[[str], Path]) -> None:
    """upgrade, downgrade to an empty database, upgrade, no drift."""
    alembic_dir, models = _paths(forged(schema))

    report = verify_sqlite(alembic_dir, models)

    assert report.steps[-1] == "no drift" and "empty after downgrade" in report.steps


@pytest.mark.mariadb
@pytest.mark.slow
@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_round_trip_on_mariadb(
    schema: str, forged: Callable[[str], Path], mariadb_url: str
) -> None:
    """The same revisions run upgrade, downgrade, upgrade on MariaDB."""
    alembic_dir, models = _paths(forged(schema))

    report = verify_url(mariadb_url, alembic_dir, models)

    assert report.dialect == "mysql" and report.steps[-1] == "no drift"


@pytest.mark.slow
def test_pagila_report_lists_each_dialect_mapping(tmp_path: Path) -> None:
    """What SQLite and MariaDB cannot hold is named in the run report."""
    spec = parse_sql(
        (SCHEMAS / "pagila.sql").read_text(encoding="utf-8"), source="pagila.sql"
    ).spec

    report = forge(
        tmp_path, project="pagila", task_id="DB-1", title="Pagila", spec=spec
    ).report

    text = "\n".join(report)
    assert "sqlite, mariadb: domain year is its base type integer" in text
    assert "partitions payment_p2022_01, payment_p2022_02" in text
    assert "materialized view SQL not run: rental_by_category" in text
    assert "trigger SQL not run: film_fulltext_trigger ON film" in text
    assert "sqlite, mariadb: payment.payment_id has no sequence default" in text
    for item in spec.objects:
        assert item.name.split("(")[0] in text


@pytest.mark.slow
def test_same_task_twice_gives_the_same_bytes(
    tmp_path: Path, forged: Callable[[str], Path]
) -> None:
    """Two fresh workspaces forged from the same inputs hold identical files."""
    second = tmp_path / "second"
    _workspace(second, "pagila")
    first = forged("pagila")

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        }

    assert files(first) == files(second)
    assert len(files(first)) == 4
