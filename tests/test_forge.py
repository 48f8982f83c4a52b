"""forge renders, migrates and verifies, writing nothing in the workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sparc.agents.hephaestus.forge import forge
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import verify_url
from tests import hephaestus_specs as specs
from tests.conftest import SCHEMAS, SHARED, ScratchDatabases, libpq_url, psql_file

PGFACTS = SHARED / "tools" / "pgfacts.py"


def _forge_into(root: Path, step: str, spec: SchemaSpec) -> list[str]:
    before = sorted(p for p in root.rglob("*") if p.is_file())
    result = forge(root, project="shop", task_id=f"DB-{step}", title=step, spec=spec)
    assert sorted(p for p in root.rglob("*") if p.is_file()) == before
    for relative, text in result.files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sorted(result.files)


def _shop_workspace(root: Path) -> list[list[str]]:
    return [_forge_into(root, f"00{step}", specs.shop_step(step)) for step in (1, 2, 3)]


def _alembic(root: Path, *args: str, url: str | None = None) -> str:
    env = {**os.environ}
    env.pop("DATABASE_URL", None)
    if url:
        env["DATABASE_URL"] = url
    alembic = Path(sys.executable).parent / "alembic"
    done = subprocess.run(
        [str(alembic), "-c", "alembic/alembic.ini", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


def test_shop_in_three_steps_on_sqlite(tmp_path: Path) -> None:
    written = _shop_workspace(tmp_path)

    assert written[0] == [
        "alembic/alembic.ini",
        "alembic/env.py",
        "alembic/versions/001_001.py",
        "src/shop/db/models.py",
    ]
    assert written[1] == ["alembic/versions/002_002.py", "src/shop/db/models.py"]
    assert written[2] == ["alembic/versions/003_003.py", "src/shop/db/models.py"]
    (tmp_path / ".sparc").mkdir()
    _alembic(tmp_path, "upgrade", "head")
    _alembic(tmp_path, "downgrade", "base")
    _alembic(tmp_path, "upgrade", "head")
    assert "No new upgrade operations detected" in _alembic(tmp_path, "check")


def test_unchanged_spec_forges_nothing(tmp_path: Path) -> None:
    _forge_into(tmp_path, "001", specs.shop_step(1))

    result = forge(
        tmp_path, project="shop", task_id="X", title="x", spec=specs.shop_step(1)
    )

    assert result.files == {} and result.revision is None
    assert "schema unchanged: no revision" in result.report


@pytest.mark.postgres
def test_shop_migrations_rebuild_the_sql_catalog(
    tmp_path: Path, pg_databases: ScratchDatabases
) -> None:
    """Table-scope fidelity of the three revisions against the shop SQL is 100%."""
    _shop_workspace(tmp_path)
    reference, candidate = pg_databases.create(), pg_databases.create()
    for name in ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"):
        psql_file(reference, SCHEMAS / name)

    verify_url(candidate, tmp_path / "alembic", tmp_path / "src/shop/db/models.py")
    assert "No new upgrade operations" in _alembic(tmp_path, "check", url=candidate)
    facts = subprocess.run(
        [sys.executable, str(PGFACTS), libpq_url(reference), libpq_url(candidate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "table-scope fidelity 45/45 = 100.0%" in facts, facts


@pytest.mark.postgres
@pytest.mark.parametrize(
    "spec_name", ["ticket_enum", "meter_reading", "vehicle_listing", "api_client"]
)
def test_cases_round_trip_on_postgresql(
    tmp_path: Path, pg_url: str, spec_name: str
) -> None:
    """Cases 01, 03, 04 and 07: upgrade, downgrade (types gone), upgrade, no drift."""
    _forge_into(tmp_path, "001", getattr(specs, spec_name)())

    report = verify_url(
        pg_url, tmp_path / "alembic", tmp_path / "src/shop/db/models.py"
    )

    assert report.dialect == "postgresql" and "empty after downgrade" in report.steps
    engine = sa.create_engine(pg_url)
    with engine.connect() as connection:
        if spec_name == "meter_reading":
            names = (
                connection.execute(
                    sa.text(
                        "SELECT conname FROM pg_constraint WHERE contype = 'c' "
                        "AND conrelid = 'meter_reading'::regclass ORDER BY 1"
                    )
                )
                .scalars()
                .all()
            )
            assert names == ["ck_meter_reading_kwh_nonneg", "ck_meter_reading_quality"]
        if spec_name == "vehicle_listing":
            definition = connection.execute(
                sa.text(
                    "SELECT pg_get_indexdef('uq_vehicle_listing_vin_active'::regclass)"
                )
            ).scalar_one()
            assert definition.endswith("WHERE is_active")
        if spec_name == "api_client":
            row = connection.execute(
                sa.text(
                    "INSERT INTO api_client (label) VALUES ('x') "
                    "RETURNING id, created_at"
                )
            ).one()
            assert row.id is not None and row.created_at is not None
    engine.dispose()


def test_enum_offline_sql_creates_and_drops_the_type(tmp_path: Path) -> None:
    """Case 01 E3/E4 in offline mode for PostgreSQL."""
    _forge_into(tmp_path, "001", specs.ticket_enum())
    url = "postgresql://"

    up = _alembic(tmp_path, "upgrade", "head", "--sql", url=url)
    down = _alembic(tmp_path, "downgrade", "001:base", "--sql", url=url)

    create = "CREATE TYPE ticket_status AS ENUM ('open', 'in_progress', 'closed')"
    assert up.count(create) == 1 and up.index(create) < up.index("CREATE TABLE ticket")
    assert down.index("DROP TABLE ticket") < down.index("DROP TYPE ticket_status")
