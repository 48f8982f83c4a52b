"""Measure how exactly Hephaestus's revisions rebuild real PostgreSQL schemas.

For each schema (the shop after each of its three steps, Chinook, Pagila):
load its DDL into one scratch PostgreSQL database, forge the same DDL into a
scratch workspace (one data task per file), apply the revisions to a second,
empty scratch database, and compare the two catalogs with
`../shared/tools/pgfacts.py`. Both databases are dropped afterwards.

Usage:
    .venv/bin/python scripts/fidelity.py [--pg-url URL] [SCHEMA ...]

SCHEMA is one of shop-1, shop-2, shop-3 (the shop after its first one, two or
three data tasks), chinook, pagila; all five by default. The exit code
is 1 when a table-scope figure, or Pagila's whole-catalog figure, is below
100%.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import structlog

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.forge import forge
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import verify_url

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SCHEMAS_DIR = SHARED / "data" / "schemas"
PGFACTS = SHARED / "tools" / "pgfacts.py"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROJECT = "fidelity"

# each schema's DDL files, one data task per file, in order
SCHEMAS: dict[str, tuple[str, ...]] = {
    "shop-1": ("shop-1-core.sql",),
    "shop-2": ("shop-1-core.sql", "shop-2-auth.sql"),
    "shop-3": ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"),
    "chinook": ("chinook.sql",),
    "pagila": ("pagila.sql",),
}
# schemas whose whole catalog (views, functions, triggers, partitions) counts
WHOLE_CATALOG = {"pagila"}

_FIGURE = re.compile(r"^(table-scope fidelity|fidelity) (\d+)/(\d+) = ", re.M)


@dataclass(frozen=True)
class Fidelity:
    """pgfacts's figures for one schema, and its full output."""

    schema: str
    table_scope: tuple[int, int]
    whole: tuple[int, int]
    output: str

    @property
    def complete(self) -> bool:
        """Table scope at 100%, and the whole catalog too where it counts."""
        kept, total = self.table_scope
        if kept != total:
            return False
        return self.schema not in WHOLE_CATALOG or self.whole[0] == self.whole[1]


def libpq_url(url: str) -> str:
    """The libpq form (for psql and pgfacts) of a SQLAlchemy PostgreSQL URL."""
    return (
        sa.engine.make_url(url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def forge_workspace(root: Path, files: tuple[str, ...]) -> None:
    """Forge each DDL file in turn as a data task of a workspace at `root`."""
    spec: SchemaSpec | None = None
    for number, name in enumerate(files, start=1):
        path = SCHEMAS_DIR / name
        spec = parse_sql(path.read_text(encoding="utf-8"), source=name, base=spec).spec
        result = forge(
            root,
            project=PROJECT,
            task_id=f"DB-{number:03d}",
            title=f"Schema from {name}",
            spec=spec,
        )
        for relative, text in result.files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def measure(schema: str, admin_url: str) -> Fidelity:
    """Load, forge, migrate and compare one schema; scratch databases are dropped."""
    files = SCHEMAS[schema]
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    prefix = f"sparc_fidelity_{uuid.uuid4().hex[:10]}"
    reference, candidate = f"{prefix}_ref", f"{prefix}_new"
    base = sa.engine.make_url(admin_url)
    try:
        with admin.connect() as connection:
            for name in (reference, candidate):
                connection.execute(sa.text(f"CREATE DATABASE {name}"))
        reference_url = base.set(database=reference).render_as_string(False)
        candidate_url = base.set(database=candidate).render_as_string(False)

        for name in files:
            _psql_file(reference_url, SCHEMAS_DIR / name)
        with tempfile.TemporaryDirectory(prefix="sparc-fidelity-") as scratch:
            root = Path(scratch)
            forge_workspace(root, files)
            verify_url(
                candidate_url,
                root / "alembic",
                root / "src" / PROJECT / "db" / "models.py",
            )
        output = subprocess.run(
            [
                sys.executable,
                str(PGFACTS),
                libpq_url(reference_url),
                libpq_url(candidate_url),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        with admin.connect() as connection:
            for name in (reference, candidate):
                connection.execute(
                    sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                )
        admin.dispose()
    figures = {
        m.group(1): (int(m.group(2)), int(m.group(3))) for m in _FIGURE.finditer(output)
    }
    return Fidelity(
        schema=schema,
        table_scope=figures["table-scope fidelity"],
        whole=figures["fidelity"],
        output=output,
    )


def _psql_file(url: str, path: Path) -> None:
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


def _percent(kept: int, total: int) -> str:
    return f"{kept}/{total} = {kept / max(total, 1):.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SPARC_TEST_PG_URL", DEFAULT_PG_URL),
        help="a PostgreSQL server URL whose user may create databases",
    )
    parser.add_argument(
        "--details", action="store_true", help="print pgfacts's full output too"
    )
    parser.add_argument("schemas", nargs="*", help=f"of {', '.join(SCHEMAS)}")
    args = parser.parse_args(argv)
    # the figures are the output; the forge's progress events would bury them
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR)
    )
    unknown = sorted(set(args.schemas) - set(SCHEMAS))
    if unknown:
        parser.error(f"unknown schema {', '.join(unknown)}; use {', '.join(SCHEMAS)}")

    complete = True
    for schema in args.schemas or list(SCHEMAS):
        result = measure(schema, args.pg_url)
        if args.details:
            print(result.output)
        print(
            f"{schema:8s} table-scope fidelity {_percent(*result.table_scope)}   "
            f"whole-catalog fidelity {_percent(*result.whole)}"
        )
        complete = complete and result.complete
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
