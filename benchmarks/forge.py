"""Forge: Hephaestus's models, revision and SQLite verification of a large schema.

Floor: Alembic autogenerate against an empty SQLite database, rendering the
operations to Python, and `create_all`, on the very metadata Hephaestus's
models.py defines. Hephaestus verifies more (upgrade, downgrade, upgrade
again and a drift check), which the ratio includes. A second figure checks
that cost grows linearly: 1,000 tables against 200.

Both sides use throwaway SQLite files that skip the disk syncs, as
Hephaestus's scratch databases do: with syncs on, each DDL statement waits
for the disk and the ratio would measure the disk rather than the work. The
floor with SQLite's default syncing is recorded too, as `floor_synced_s`.
Each side keeps the faster of two runs, the one the machine disturbed least.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext

from benchmarks.common import Measure, best_of

if TYPE_CHECKING:
    from sparc.agents.hephaestus.spec import SchemaSpec

RUNS = 2


def schema_sql(tables: int) -> str:
    """DDL of `tables` tables: keys, a foreign key to the previous, checks, an index."""
    parts = []
    for n in range(tables):
        refers = f"t{n - 1:04d}" if n else None
        columns = [
            "    id BIGSERIAL PRIMARY KEY",
            "    name VARCHAR(120) NOT NULL",
            "    amount NUMERIC(10, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0)",
            "    created_at TIMESTAMPTZ NOT NULL DEFAULT now()",
        ]
        if refers:
            columns.append(f"    {refers}_id BIGINT REFERENCES {refers} (id)")
        parts.append(f"CREATE TABLE t{n:04d} (\n" + ",\n".join(columns) + "\n);")
        parts.append(f"CREATE INDEX ix_t{n:04d}_name ON t{n:04d} (name);")
    return "\n".join(parts) + "\n"


def _spec(tables: int) -> SchemaSpec:
    from sparc.agents.hephaestus.ddl import parse_sql

    return parse_sql(schema_sql(tables), source=f"bench-{tables}.sql").spec


def _workspace(folder: Path) -> Path:
    from sparc.agents.hephaestus.forge import ALEMBIC_DIR, alembic_template

    root = folder / "ws"
    (root / ALEMBIC_DIR / "versions").mkdir(parents=True)
    for name in ("alembic.ini", "env.py"):
        text = alembic_template(name, project="bench")
        (root / ALEMBIC_DIR / name).write_text(text, encoding="utf-8")
    return root


def forge_seconds(tables: int, folder: Path) -> tuple[float, str]:
    """Time `forge` on an empty workspace; return its models.py too."""
    from sparc.agents.hephaestus.forge import forge, models_relative_path

    spec = _spec(tables)
    root = _workspace(folder)
    result = None

    def run() -> None:
        nonlocal result
        result = forge(root, project="bench", task_id="DB-1", title="Bench", spec=spec)

    # forge writes nothing in the workspace: every run starts from the same
    seconds = best_of(RUNS, run)
    assert result is not None and result.revision is not None
    return seconds, result.files[models_relative_path("bench")]


def floor_seconds(
    models_text: str, folder: Path, *, synced: bool = False, runs: int = RUNS
) -> float:
    """Alembic autogenerate + render + create_all on the same metadata.

    `synced` keeps SQLite's default disk syncs instead of the scratch
    settings both sides use.
    """
    from sparc.agents.hephaestus.models_render import load_metadata
    from sparc.agents.hephaestus.revision import scratch_sqlite_engine

    models = folder / "floor_models.py"
    models.write_text(models_text, encoding="utf-8")
    metadata = load_metadata(models)

    def run() -> None:
        database = folder / "floor.sqlite3"
        database.unlink(missing_ok=True)
        engine = (
            sa.create_engine(f"sqlite:///{database}")
            if synced
            else scratch_sqlite_engine(database)
        )
        try:
            with engine.begin() as connection:
                context = MigrationContext.configure(connection)
                operations = produce_migrations(context, metadata)
                render_python_code(operations.upgrade_ops)
                metadata.create_all(connection)
        finally:
            engine.dispose()

    return best_of(runs, run)


def measure(
    tables: int = 200, large: int = 1000, *, budget_s: float = float("inf")
) -> list[Measure]:
    """Forge `tables` and `large` tables; `large` shrinks to fit `budget_s`.

    The large size is chosen from the first forge's time, assuming linear
    growth with 50% to spare for each of its runs; when that does not fit
    the budget, the largest of 800, 600 and 400 tables that does is used
    and the scaling target follows the size.
    """
    with tempfile.TemporaryDirectory(prefix="sparc-bench-forge-") as folder:
        scratch = Path(folder)
        (scratch / "a").mkdir()
        (scratch / "b").mkdir()
        sparc, models_text = forge_seconds(tables, scratch / "a")
        floor = floor_seconds(models_text, scratch / "a")
        floor_synced = floor_seconds(models_text, scratch / "a", synced=True, runs=1)
        requested = large
        sizes = [large, *(s for s in (800, 600, 400) if s < large)]
        for size in sizes:
            large = size
            if RUNS * sparc / tables * size * 1.5 + sparc < budget_s:
                break
        sparc_large, large_models = forge_seconds(large, scratch / "b")
        floor_large = floor_seconds(large_models, scratch / "b")
    return [
        Measure(
            name="forge",
            what=f"{tables}-table schema: models, revision, SQLite verification",
            floor_what="Alembic autogenerate + render + create_all, same metadata",
            sparc_s=sparc,
            floor_s=floor,
            target=3.0,
            extra={"tables": tables, "floor_synced_s": round(floor_synced, 4)},
        ),
        Measure(
            name="forge scaling",
            what=f"forge of {large} tables against forge of {tables} tables"
            + (
                f" (scaled down from {requested}: time budget)"
                if large < requested
                else ""
            ),
            floor_what=f"forge of {tables} tables",
            sparc_s=sparc_large,
            floor_s=sparc,
            target=large / tables * 1.2,
            extra={
                "tables": large,
                "floor_of_large_s": round(floor_large, 4),
                "ratio_to_own_floor": round(sparc_large / floor_large, 3),
            },
        ),
    ]
