"""Read what PostgreSQL knows about its own workload, and change nothing.

Everything here runs inside one `REPEATABLE READ, READ ONLY` transaction that
is rolled back, so the numbers come from one snapshot and the server refuses
any write a query might attempt. The statistics views count since their last
reset (`stats_reset`), which the snapshot keeps as part of the evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from sparc.errors import InputError

log = structlog.get_logger(__name__)

USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') " + (
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
)


@dataclass(frozen=True)
class TableStats:
    """One table: size, scans and vacuum state from pg_class and pg_stat_user_tables."""

    schema: str
    name: str
    # pg_class.relkind: r table, p partitioned table, m materialized view
    kind: str
    columns: tuple[str, ...]
    live_rows: int
    dead_rows: int
    estimated_rows: float
    pages: int
    size_bytes: int
    seq_scan: int
    seq_rows_read: int
    idx_scan: int
    last_vacuum: str | None
    last_analyze: str | None
    fillfactor: int
    # sum of pg_stats.avg_width over the columns; None before the first ANALYZE
    row_width: int | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class IndexStats:
    """One index: definition, key signature and use from pg_stat_user_indexes."""

    schema: str
    table: str
    name: str
    definition: str
    keys: tuple[str, ...]
    method: str
    unique: bool
    primary: bool
    valid: bool
    predicate: str | None
    constraint: str | None
    signature: str
    scans: int
    size_bytes: int
    pages: int
    estimated_rows: float
    fillfactor: int
    # sum of pg_stats.avg_width over plain key columns; None with expressions
    key_width: int | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ForeignKeyInfo:
    schema: str
    table: str
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class StatementStats:
    """One normalized statement from pg_stat_statements."""

    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


@dataclass(frozen=True)
class DatabaseSnapshot:
    """Statistics and catalog facts of one database, read in one snapshot."""

    database: str
    server_version: str
    block_size: int
    stats_reset: str | None
    tables: tuple[TableStats, ...]
    indexes: tuple[IndexStats, ...]
    foreign_keys: tuple[ForeignKeyInfo, ...]
    # None when pg_stat_statements is not installed or not loaded
    statements: tuple[StatementStats, ...] | None
    hypopg_installed: bool
    hypopg_available: bool

    def table(self, schema: str, name: str) -> TableStats | None:
        for table in self.tables:
            if table.schema == schema and table.name == name:
                return table
        return None

    def indexes_of(self, schema: str, table: str) -> list[IndexStats]:
        return [i for i in self.indexes if i.schema == schema and i.table == table]


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy spelling (psycopg driver) of a PostgreSQL URL.

    Raises:
        InputError: the URL is not a PostgreSQL URL.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    try:
        parsed = make_url(url)
    except Exception as error:
        raise InputError(
            f"cannot read the database URL: {error}", field="url"
        ) from error
    if parsed.get_backend_name() != "postgresql":
        raise InputError(
            f"tuning needs a PostgreSQL URL, not {parsed.get_backend_name()!r}",
            field="url",
        )
    return url


def libpq_url(url: str) -> str:
    """The libpq spelling of a URL, for pg_dump and psql."""
    return (
        make_url(sqlalchemy_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


@contextmanager
def read_only(url: str) -> Iterator[sa.Connection]:
    """A connection inside a read-only snapshot transaction that is rolled back."""
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        # no_parameters: catalog SQL uses '%' in LIKE patterns
        with engine.connect().execution_options(no_parameters=True) as connection:
            connection.exec_driver_sql(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            )
            try:
                yield connection
            finally:
                connection.rollback()
    finally:
        engine.dispose()


def collect(connection: sa.Connection) -> DatabaseSnapshot:
    """Read the statistics of the database `connection` is open on.

    Args:
        connection: a connection in a read-only transaction (see `read_only`).

    Returns:
        The snapshot; `statements` is None without pg_stat_statements.
    """
    scalar = connection.exec_driver_sql
    database = str(scalar("SELECT current_database()").scalar_one())
    version = str(scalar("SHOW server_version").scalar_one())
    block_size = int(scalar("SHOW block_size").scalar_one())
    stats_reset = scalar(
        "SELECT stats_reset::text FROM pg_stat_database "
        "WHERE datname = current_database()"
    ).scalar()

    hypopg = connection.exec_driver_sql(
        "SELECT installed_version IS NOT NULL FROM pg_available_extensions "
        "WHERE name = 'hypopg'"
    ).scalar()
    snapshot = DatabaseSnapshot(
        database=database,
        server_version=version,
        block_size=block_size,
        stats_reset=stats_reset,
        tables=tuple(_tables(connection)),
        indexes=tuple(_indexes(connection)),
        foreign_keys=tuple(_foreign_keys(connection)),
        statements=_statements(connection),
        hypopg_installed=bool(hypopg),
        hypopg_available=hypopg is not None,
    )
    log.info(
        "statistics_collected",
        database=database,
        tables=len(snapshot.tables),
        indexes=len(snapshot.indexes),
        statements=None if snapshot.statements is None else len(snapshot.statements),
    )
    return snapshot


def _tables(connection: sa.Connection) -> Iterator[TableStats]:
    rows = connection.exec_driver_sql(
        f"""
        SELECT n.nspname, c.relname, c.relkind::text,
               ARRAY(SELECT a.attname::text FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                     ORDER BY a.attnum),
               coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0),
               c.reltuples, c.relpages, pg_table_size(c.oid),
               coalesce(s.seq_scan, 0), coalesce(s.seq_tup_read, 0),
               coalesce(s.idx_scan, 0),
               greatest(s.last_vacuum, s.last_autovacuum)::text,
               greatest(s.last_analyze, s.last_autoanalyze)::text,
               coalesce((SELECT split_part(o, '=', 2)::int
                         FROM unnest(c.reloptions) o
                         WHERE o LIKE 'fillfactor=%'), 100),
               (SELECT sum(st.avg_width)::int FROM pg_stats st
                WHERE st.schemaname = n.nspname AND st.tablename = c.relname)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE c.relkind IN ('r', 'p', 'm') AND {USER_SCHEMAS}
        ORDER BY n.nspname, c.relname
        """
    )
    for row in rows:
        yield TableStats(
            schema=row[0],
            name=row[1],
            kind=row[2],
            columns=tuple(row[3]),
            live_rows=int(row[4]),
            dead_rows=int(row[5]),
            estimated_rows=float(row[6]),
            pages=int(row[7]),
            size_bytes=int(row[8]),
            seq_scan=int(row[9]),
            seq_rows_read=int(row[10]),
            idx_scan=int(row[11]),
            last_vacuum=row[12],
            last_analyze=row[13],
            fillfactor=int(row[14]),
            row_width=row[15],
        )


def _indexes(connection: sa.Connection) -> Iterator[IndexStats]:
    rows = connection.exec_driver_sql(
        f"""
        SELECT n.nspname, t.relname, c.relname, pg_get_indexdef(c.oid),
               ARRAY(SELECT pg_get_indexdef(c.oid, k, true)
                     FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
               am.amname, i.indisunique, i.indisprimary, i.indisvalid,
               pg_get_expr(i.indpred, i.indrelid, true),
               (SELECT con.conname FROM pg_constraint con
                WHERE con.conindid = c.oid AND con.conrelid = t.oid LIMIT 1),
               concat_ws(' | ', am.amname, i.indkey::text, i.indclass::text,
                         i.indcollation::text, i.indoption::text,
                         pg_get_expr(i.indexprs, i.indrelid),
                         pg_get_expr(i.indpred, i.indrelid)),
               coalesce(s.idx_scan, 0), pg_relation_size(c.oid), c.relpages,
               c.reltuples,
               coalesce((SELECT split_part(o, '=', 2)::int
                         FROM unnest(c.reloptions) o
                         WHERE o LIKE 'fillfactor=%'), 90),
               CASE WHEN i.indexprs IS NULL THEN
                   (SELECT sum(st.avg_width)::int
                    FROM unnest(i.indkey[0:i.indnkeyatts - 1]) AS k(attnum)
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                    JOIN pg_stats st ON st.schemaname = n.nspname
                         AND st.tablename = t.relname AND st.attname = a.attname)
               END
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_am am ON am.oid = c.relam
        LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = c.oid
        WHERE t.relkind IN ('r', 'p', 'm') AND {USER_SCHEMAS}
        ORDER BY n.nspname, t.relname, c.relname
        """
    )
    for row in rows:
        yield IndexStats(
            schema=row[0],
            table=row[1],
            name=row[2],
            definition=row[3],
            keys=tuple(row[4]),
            method=row[5],
            unique=bool(row[6]),
            primary=bool(row[7]),
            valid=bool(row[8]),
            predicate=row[9],
            constraint=row[10],
            signature=row[11],
            scans=int(row[12]),
            size_bytes=int(row[13]),
            pages=int(row[14]),
            estimated_rows=float(row[15]),
            fillfactor=int(row[16]),
            key_width=row[17],
        )


def _foreign_keys(connection: sa.Connection) -> Iterator[ForeignKeyInfo]:
    rows = connection.exec_driver_sql(
        f"""
        SELECT n.nspname, t.relname, con.conname,
               ARRAY(SELECT a.attname::text
                     FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid
                          AND a.attnum = k.attnum
                     ORDER BY k.position),
               r.relname,
               ARRAY(SELECT a.attname::text
                     FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid
                          AND a.attnum = k.attnum
                     ORDER BY k.position)
        FROM pg_constraint con
        JOIN pg_class t ON t.oid = con.conrelid
        JOIN pg_class r ON r.oid = con.confrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE con.contype = 'f' AND {USER_SCHEMAS}
        ORDER BY n.nspname, t.relname, con.conname
        """
    )
    for row in rows:
        yield ForeignKeyInfo(
            schema=row[0],
            table=row[1],
            name=row[2],
            columns=tuple(row[3]),
            ref_table=row[4],
            ref_columns=tuple(row[5]),
        )


def _statements(connection: sa.Connection) -> tuple[StatementStats, ...] | None:
    installed = connection.exec_driver_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension "
        "WHERE extname = 'pg_stat_statements'"
    ).scalar()
    if installed is None:
        return None

    # the view raises when the library is not in shared_preload_libraries
    savepoint = connection.begin_nested()
    try:
        rows = connection.exec_driver_sql(
            f"""
            SELECT query, calls, total_exec_time, mean_exec_time, rows
            FROM {installed}.pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database
                          WHERE datname = current_database())
            ORDER BY total_exec_time DESC
            LIMIT 200
            """
        ).all()
    except DBAPIError as error:
        savepoint.rollback()
        log.warning("pg_stat_statements_unreadable", error=str(error.orig))
        return None
    savepoint.rollback()
    return tuple(
        StatementStats(
            query=str(row[0]),
            calls=int(row[1]),
            total_ms=float(row[2]),
            mean_ms=float(row[3]),
            rows=int(row[4]),
        )
        for row in rows
    )
