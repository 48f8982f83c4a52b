"""Prove a Prisma project's migrations without Prisma's CLI.

Prisma's engines are binaries fetched at install time, so sparc proves the
files itself, in two parts:

- Offline, always: the migrations under `prisma/migrations` are read back in
  folder order with the DDL reader, and `schema.prisma` and `seed.ts` must be
  exactly what that schema renders. This is the drift check `prisma migrate
  diff --from-migrations --to-schema-datamodel` makes: the schema file
  describes what the migrations build, nothing more or less.
- On a PostgreSQL server, when one is configured: in a scratch database
  every migration.sql runs in folder order, each as one script (as `prisma
  migrate deploy` sends it), and the seed statements run in one transaction,
  as seed.ts runs them. Then, in a fresh `public` schema, the same schema is
  built in one step. The two catalogs must be equal: tables, columns (type,
  NOT NULL, default, identity), constraints and indexes by name and
  definition, enum labels in order, domains, views, functions, triggers,
  partition bounds and comments. The scratch database is dropped after.

seed.ts itself is not executed (it needs Node and the Prisma client); the
offline part proves it holds exactly the statements that ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import structlog

from sparc.agents.hephaestus.prisma import (
    LOCK_FILE,
    SCHEMA_FILE,
    SEED_FILE,
    migration_files,
    render_prisma_migration,
    render_prisma_schema,
    render_prisma_seed,
    spec_from_prisma_migrations,
)
from sparc.agents.hephaestus.scripts import render_seed_sql, seed_statements
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import scratch_database
from sparc.errors import SparcError, VerificationError

log = structlog.get_logger(__name__)

__all__ = ["PrismaProof", "catalog_facts", "prove_prisma"]

DIALECT = "postgresql"
# differences named in a drift error; the rest are counted
_SHOWN_DIFFERENCES = 8

# one row per fact of the current schema: (kind, key, value)
_CATALOG_QUERIES = (
    """
    SELECT 'table', c.relname, c.relkind::text
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    """,
    """
    SELECT 'column', c.relname || '.' || a.attname,
           format_type(a.atttypid, a.atttypmod)
           || ' not null=' || a.attnotnull
           || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
           || ' identity=' || a.attidentity::text
           || ' generated=' || a.attgenerated::text
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
       AND a.attnum > 0 AND NOT a.attisdropped
    """,
    """
    SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
      FROM pg_constraint k
      JOIN pg_class c ON c.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema()
    """,
    """
    SELECT 'index', c.relname || '.' || i.relname,
           -- the table is always schema-qualified here; the schema is not a fact
           replace(pg_get_indexdef(i.oid), ' ON ' || quote_ident(n.nspname) || '.',
                   ' ON ')
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class c ON c.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema()
    """,
    """
    SELECT 'enum', t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
      FROM pg_type t
      JOIN pg_enum e ON e.enumtypid = t.oid
      JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = current_schema()
     GROUP BY t.typname
    """,
    """
    SELECT 'domain', t.typname,
           format_type(t.typbasetype, t.typtypmod) || ' not null=' || t.typnotnull
           || ' default=' || coalesce(t.typdefault, '')
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = current_schema() AND t.typtype = 'd'
    """,
    """
    SELECT 'view', c.relname, c.relkind::text || ' ' || pg_get_viewdef(c.oid)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm')
    """,
    """
    SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid)
           || ')', md5(coalesce(p.prosrc, ''))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = current_schema()
    """,
    """
    SELECT 'trigger', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
      FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND NOT t.tgisinternal
    """,
    """
    SELECT 'partition', c.relname, pg_get_expr(c.relpartbound, c.oid)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relispartition
    """,
    """
    SELECT 'comment', c.relname || coalesce('.' || a.attname, ''), d.description
      FROM pg_description d
      JOIN pg_class c ON c.oid = d.objoid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
     WHERE n.nspname = current_schema() AND d.classoid = 'pg_class'::regclass
    """,
)


@dataclass(frozen=True)
class PrismaProof:
    """The schema the migrations build, and what was checked, in order."""

    spec: SchemaSpec
    report: tuple[str, ...]


def prove_prisma(root: Path, *, server_url: str | None) -> PrismaProof:
    """Check the Prisma files under `root`; apply them on the server when given.

    Args:
        root: a folder holding `prisma/` (the workspace, or a scratch copy).
        server_url: a SQLAlchemy URL of a PostgreSQL server whose user may
            create databases (the `verify: {postgresql: ...}` setting); two
            scratch databases are made there and dropped again. None: the
            offline checks only, and the report says so.

    Returns:
        The schema the migrations build and one report line per check.

    Raises:
        VerificationError: a migration does not read back or does not run,
            schema.prisma or seed.ts is not what the migrations build, the
            migrated catalog differs from a one-step build, or the seed fails.
    """
    migrations = migration_files(root)
    if not migrations:
        return PrismaProof(spec=SchemaSpec(), report=())
    try:
        spec = spec_from_prisma_migrations(root)
    except SparcError as error:
        raise VerificationError(
            str(error), step="read the migrations back", dialect=DIALECT
        ) from error

    _expect(root, SCHEMA_FILE, render_prisma_schema(spec))
    _expect(root, SEED_FILE, render_prisma_seed(spec))
    lock = root / LOCK_FILE
    if lock.is_file() and 'provider = "postgresql"' not in lock.read_text("utf-8"):
        raise VerificationError(
            f"{LOCK_FILE} names another provider; these migrations are "
            'PostgreSQL SQL: set provider = "postgresql"',
            step="check the lock file",
            dialect=DIALECT,
        )
    report = [
        f"prisma: {len(migrations)} migrations read back; schema.prisma and "
        "seed.ts are what they build"
    ]

    if server_url is None:
        log.warning("prisma_not_applied", reason="no PostgreSQL server configured")
        report.append(
            "postgresql: not applied: no server under `verify: {postgresql: URL}` "
            "in .sparc/config.yaml; the migrations were read back only"
        )
        return PrismaProof(spec=spec, report=tuple(report))

    report.append(_prove_on_server(root, migrations, spec, server_url))
    return PrismaProof(spec=spec, report=tuple(report))


def catalog_facts(connection: sa.Connection) -> set[tuple[str, str, str]]:
    """The facts of the connection's current schema: (kind, key, definition)."""
    facts: set[tuple[str, str, str]] = set()
    for query in _CATALOG_QUERIES:
        for kind, key, value in connection.execute(sa.text(query)):
            facts.add((str(kind), str(key), str(value)))
    return facts


def _expect(root: Path, relative: str, text: str) -> None:
    path = root / relative
    found = path.read_text(encoding="utf-8") if path.is_file() else None
    if found == text:
        return
    if found is None:
        problem = "is missing"
    else:
        pairs = zip(found.splitlines(), text.splitlines(), strict=False)
        line = next(
            (n for n, (a, b) in enumerate(pairs, 1) if a != b),
            min(len(found.splitlines()), len(text.splitlines())) + 1,
        )
        problem = f"differs from it from line {line} on"
    raise VerificationError(
        f"{relative} {problem}: it must be what the migrations under "
        "prisma/migrations build; run the data task again instead of editing it",
        step=f"compare {relative} with the migrations",
        dialect=DIALECT,
    )


def _prove_on_server(
    root: Path, migrations: list[Path], spec: SchemaSpec, server_url: str
) -> str:
    with scratch_database(server_url) as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            # autocommit: each script is its own implicit transaction
            with engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                for path in migrations:
                    relative = path.relative_to(root).as_posix()
                    sql = path.read_text(encoding="utf-8")
                    _run_script(connection, sql, relative)
                migrated_facts = catalog_facts(connection)
                seeded = _seed(connection, spec)
                built_facts = _one_step_facts(connection, spec)
                if migrated_facts != built_facts:
                    raise VerificationError(
                        _drift_message(migrated_facts, built_facts),
                        step="no drift",
                        dialect=DIALECT,
                    )
        finally:
            engine.dispose()

    log.info(
        "prisma_migrations_verified",
        migrations=len(migrations),
        facts=len(built_facts),
    )
    seed = f"seed ran ({seeded} statements)" if seeded else "no seed rows"
    return (
        f"postgresql: {len(migrations)} migrations applied in order; catalog "
        f"equals a one-step build ({len(built_facts)} facts); {seed}"
    )


def _one_step_facts(
    connection: sa.Connection, spec: SchemaSpec
) -> set[tuple[str, str, str]]:
    """Empty `public`, build `spec` there in one step, and read its catalog.

    Both builds happen in `public` of one scratch database, one after the
    other: migrations may name `public.` objects (pg_dump's output does), and
    creating a database is the slow part of a proof. Dropping the schema
    drops the extensions created in it too.
    """
    _run_script(
        connection,
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
        "emptying the scratch database",
    )
    _run_script(connection, render_prisma_migration(None, spec), "a one-step build")
    return catalog_facts(connection)


def _run_script(connection: sa.Connection, sql: str, what: str) -> None:
    # one script, as Prisma sends a migration: PostgreSQL runs a query string
    # of several statements as one implicit transaction
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
    except Exception as error:  # any driver error: the migration does not run
        raise VerificationError(
            f"{what}: {type(error).__name__}: {error}",
            step=f"apply {what}",
            dialect=DIALECT,
        ) from error
    finally:
        cursor.close()


def _drift_message(
    migrated: set[tuple[str, str, str]], built: set[tuple[str, str, str]]
) -> str:
    differences = [
        f"migrations have {kind} {key}: {value}"
        for kind, key, value in sorted(migrated - built)
    ] + [
        f"schema.prisma's schema has {kind} {key}: {value}"
        for kind, key, value in sorted(built - migrated)
    ]
    shown = "; ".join(differences[:_SHOWN_DIFFERENCES])
    more = len(differences) - _SHOWN_DIFFERENCES
    suffix = f"; and {more} more" if more > 0 else ""
    return (
        "the migrations build a different catalog than the schema they describe "
        f"does in one step: {shown}{suffix}"
    )


def _seed(connection: sa.Connection, spec: SchemaSpec) -> int:
    try:
        statements = seed_statements(render_seed_sql(spec), "postgresql")
    except SparcError as error:
        raise VerificationError(
            f"the seed rows cannot be made: {error}", step="seed", dialect=DIALECT
        ) from error

    # one transaction, as seed.ts's $transaction
    script = "\n".join(f"{statement};" for statement in statements)
    try:
        _run_script(connection, f"BEGIN;\n{script}\nCOMMIT;", "the seed")
    except VerificationError as error:
        raise VerificationError(
            f"seed.ts's statements fail on the migrated database: {error}",
            step="seed",
            dialect=DIALECT,
        ) from error
    return len(statements)
