"""Prove index candidates with the planner's own cost estimates.

Two ways to ask the planner what an index would change, both leaving the
tuned database as it was:

- hypothetical indexes (hypopg): `hypopg_create_index` makes an index only
  this session's planner sees. It runs only when the caller allows it
  (`hypothetical=True`); if the extension is available but not created in the
  database, `CREATE EXTENSION hypopg` runs inside the same transaction, which
  is always rolled back.
- a scratch copy: `pg_dump --schema-only` of the database is loaded into a new
  database on a server the caller names, the rows are copied in with `COPY`
  from a read-only transaction (all of them up to `sample_rows` per table,
  else a `TABLESAMPLE SYSTEM` sample of about that many), the copy is
  ANALYZEd, and each candidate is built for real inside a transaction that is
  rolled back. Table statistics cannot be carried over on PostgreSQL 15, so
  on sampled tables the costs are those of the smaller table: the comparison
  with and without the index is what counts, not the absolute numbers. The
  scratch database is dropped afterwards.

A candidate is accepted when at least one statement's estimated cost falls by
`margin` (a fraction) or more; the statements that fall are the ones it
speeds up.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from sparc.agents.hephaestus.models_render import shorten_name
from sparc.agents.hephaestus.tune.collect import (
    DatabaseSnapshot,
    TableStats,
    libpq_url,
    read_only,
    sqlalchemy_url,
)
from sparc.agents.hephaestus.tune.explain import PlanError, total_cost
from sparc.agents.hephaestus.tune.workload import Candidate, Statement
from sparc.errors import VerificationError

log = structlog.get_logger(__name__)

Method = Literal["hypopg", "scratch"]
DEFAULT_SAMPLE_ROWS = 200_000
_INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class StatementCost:
    """A statement's estimated cost without and with an index."""

    statement: str
    text: str
    before: float
    after: float

    @property
    def reduction(self) -> float:
        return 1.0 - self.after / self.before if self.before > 0 else 0.0


@dataclass(frozen=True)
class IndexAdvice:
    """An index to create or drop, with the evidence for it."""

    action: Literal["create", "drop"]
    schema: str
    table: str
    name: str
    columns: tuple[str, ...]
    reasons: tuple[str, ...]
    definition: str
    method: str
    accepted: bool
    costs: tuple[StatementCost, ...] = ()
    note: str = ""

    @property
    def sped_up(self) -> tuple[StatementCost, ...]:
        """The statements whose cost fell, best first."""
        return tuple(
            sorted(
                (c for c in self.costs if c.after < c.before),
                key=lambda c: -c.reduction,
            )
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "schema": self.schema,
            "table": self.table,
            "name": self.name,
            "columns": list(self.columns),
            "reasons": list(self.reasons),
            "definition": self.definition,
            "method": self.method,
            "accepted": self.accepted,
            "note": self.note,
            "costs": [
                {
                    "statement": c.statement,
                    "before": round(c.before, 2),
                    "after": round(c.after, 2),
                    "reduction": round(c.reduction, 4),
                }
                for c in self.costs
            ],
        }


def index_name(table: str, columns: Sequence[str]) -> str:
    """`ix_<table>_<columns>`, shortened to PostgreSQL's 63 bytes when needed."""
    return shorten_name("_".join(["ix", table, *columns]))


def create_statement(candidate: Candidate, name: str, *, concurrently: bool) -> str:
    """The CREATE INDEX statement a candidate stands for."""
    keys = ", ".join(_quote(c) for c in candidate.columns)
    how = " CONCURRENTLY" if concurrently else ""
    return (
        f"CREATE INDEX{how} {_quote(name)} ON "
        f"{_quote(candidate.schema)}.{_quote(candidate.table)} ({keys})"
    )


def prove(
    url: str,
    snapshot: DatabaseSnapshot,
    candidates: Sequence[Candidate],
    *,
    method: Method,
    margin: float,
    scratch_url: str | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> tuple[list[IndexAdvice], list[str]]:
    """Measure each candidate and accept those that cut a cost by `margin`.

    Args:
        url: the tuned database.
        snapshot: its statistics, from `collect`.
        candidates: the indexes to measure.
        method: "hypopg" (session-local hypothetical indexes) or "scratch".
        margin: the fraction a statement's cost must fall by, e.g. 0.2.
        scratch_url: a server where a scratch database may be created (any
            database on it); the tuned server's `postgres` database when None.
        sample_rows: per-table row limit of the scratch copy.

    Returns:
        The advice, one per candidate, and notes on how it was measured.

    Raises:
        VerificationError: the scratch copy could not be made.
    """
    if not candidates:
        return [], []
    if method == "hypopg":
        with _hypothetical_session(url, snapshot) as (connection, build):

            def reset() -> None:
                connection.exec_driver_sql("SELECT hypopg_reset()")

            advice = _measure(connection, build, reset, candidates, "hypopg", margin)
        notes = ["costs from hypothetical indexes (hypopg) in a rolled-back session"]
    else:
        with _scratch_copy(url, snapshot, scratch_url, sample_rows) as (copied, engine):
            advice = _measure_on_copy(engine, candidates, margin)
        notes = [
            "costs measured on a scratch copy (schema from pg_dump, rows copied: "
            + ", ".join(f"{name} {rows}" for name, rows in copied)
            + "), each index built in a rolled-back transaction"
        ]
    return _without_prefixes(advice), notes


def _measure(
    connection: sa.Connection,
    build: Callable[[Candidate, str], None],
    reset: Callable[[], object],
    candidates: Sequence[Candidate],
    method: str,
    margin: float,
) -> list[IndexAdvice]:
    baseline: dict[str, float | None] = {}

    def cost(item: Statement) -> float | None:
        try:
            return total_cost(connection, item)
        except PlanError as error:
            log.warning(
                "statement_not_planned", statement=item.name, reason=error.reason
            )
            return None

    advice = []
    for candidate in candidates:
        name = index_name(candidate.table, candidate.columns)
        for item in candidate.statements:
            if item.positional not in baseline:
                baseline[item.positional] = cost(item)

        savepoint = connection.begin_nested()
        try:
            build(candidate, name)
        except DBAPIError as error:
            savepoint.rollback()
            reason = str(error.orig).strip()
            log.warning("index_candidate_not_built", index=name, reason=reason)
            advice.append(_unbuilt(candidate, name, method, reason))
            continue
        costs = []
        for item in candidate.statements:
            before = baseline[item.positional]
            after = cost(item) if before is not None else None
            if before is not None and after is not None:
                costs.append(StatementCost(item.name, item.text, before, after))
        # hypothetical indexes live outside transactions: forget them first
        reset()
        savepoint.rollback()

        accepted = any(c.reduction >= margin for c in costs)
        advice.append(
            IndexAdvice(
                action="create",
                schema=candidate.schema,
                table=candidate.table,
                name=name,
                columns=candidate.columns,
                reasons=candidate.reasons,
                definition=create_statement(candidate, name, concurrently=True),
                method=method,
                accepted=accepted,
                costs=tuple(costs),
                note="" if accepted else f"no statement's cost fell by {margin:.0%}",
            )
        )
        log.info(
            "index_candidate_measured",
            index=name,
            accepted=accepted,
            best=max((round(c.reduction, 3) for c in costs), default=None),
        )
    return advice


def _unbuilt(candidate: Candidate, name: str, method: str, reason: str) -> IndexAdvice:
    return IndexAdvice(
        action="create",
        schema=candidate.schema,
        table=candidate.table,
        name=name,
        columns=candidate.columns,
        reasons=candidate.reasons,
        definition=create_statement(candidate, name, concurrently=True),
        method=method,
        accepted=False,
        note=f"the index could not be built: {reason}",
    )


def _without_prefixes(advice: list[IndexAdvice]) -> list[IndexAdvice]:
    """Turn down an accepted index whose columns lead another accepted one."""
    accepted = [a for a in advice if a.accepted]
    kept = []
    for item in advice:
        wider = next(
            (
                other
                for other in accepted
                if other is not item
                and other.table == item.table
                and other.schema == item.schema
                and len(other.columns) > len(item.columns)
                and other.columns[: len(item.columns)] == item.columns
                and {c.statement for c in item.sped_up}
                <= {c.statement for c in other.sped_up}
            ),
            None,
        )
        if item.accepted and wider is not None:
            item = replace(
                item, accepted=False, note=f"{wider.name} leads with the same columns"
            )
        kept.append(item)
    return kept


def _measure_on_copy(
    engine: sa.Engine, candidates: Sequence[Candidate], margin: float
) -> list[IndexAdvice]:
    with engine.connect().execution_options(no_parameters=True) as connection:
        try:
            return _measure(
                connection,
                _build_real(connection),
                lambda: None,
                candidates,
                "scratch",
                margin,
            )
        finally:
            connection.rollback()


@contextmanager
def _hypothetical_session(
    url: str, snapshot: DatabaseSnapshot
) -> Iterator[tuple[sa.Connection, Callable[[Candidate, str], None]]]:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect().execution_options(no_parameters=True) as connection:
            try:
                if not snapshot.hypopg_installed:
                    connection.exec_driver_sql("CREATE EXTENSION hypopg")
                # from here on the server refuses any write, as in `collect`
                connection.exec_driver_sql("SET LOCAL transaction_read_only = on")

                def build(candidate: Candidate, name: str) -> None:
                    ddl = create_statement(candidate, name, concurrently=False)
                    connection.execute(
                        sa.text("SELECT indexrelid FROM hypopg_create_index(:ddl)"),
                        {"ddl": ddl},
                    )

                yield connection, build
            finally:
                connection.rollback()
    finally:
        engine.dispose()


def _build_real(connection: sa.Connection) -> Callable[[Candidate, str], None]:
    def build(candidate: Candidate, name: str) -> None:
        connection.exec_driver_sql(
            create_statement(candidate, name, concurrently=False)
        )

    return build


@contextmanager
def _scratch_copy(
    url: str, snapshot: DatabaseSnapshot, scratch_url: str | None, sample_rows: int
) -> Iterator[tuple[list[tuple[str, int]], sa.Engine]]:
    live = make_url(sqlalchemy_url(url))
    server = (
        make_url(sqlalchemy_url(scratch_url))
        if scratch_url
        else live.set(database="postgres")
    )
    name = f"sparc_tune_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    scratch = server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = sa.create_engine(scratch, poolclass=sa.pool.NullPool)
    try:
        _load_schema(url, scratch)
        copied = _copy_rows(url, engine, snapshot, sample_rows)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE")
        log.info("scratch_copy_ready", database=name, tables=len(copied))
        yield copied, engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _load_schema(url: str, scratch: str) -> None:
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", libpq_url(url)],
        capture_output=True,
        text=True,
    )
    if dump.returncode != 0:
        raise VerificationError(
            dump.stderr.strip(), step="pg_dump", dialect="postgresql"
        )
    load = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(scratch)],
        input=dump.stdout,
        capture_output=True,
        text=True,
    )
    if load.returncode != 0:
        raise VerificationError(
            load.stderr.strip(),
            step="load schema into scratch copy",
            dialect="postgresql",
        )


def _copy_rows(
    url: str, engine: sa.Engine, snapshot: DatabaseSnapshot, sample_rows: int
) -> list[tuple[str, int]]:
    copied = []
    with read_only(url) as source, engine.connect() as target:
        reader = source.connection.driver_connection.cursor()  # type: ignore[union-attr]
        writer = target.connection.driver_connection.cursor()  # type: ignore[union-attr]
        # the schema already holds its foreign keys; a sample need not satisfy them
        try:
            writer.execute("SET session_replication_role = replica")
        except Exception as error:
            if getattr(error, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            raise VerificationError(
                "the scratch copy needs a superuser on the scratch server to load "
                "sampled rows past foreign keys; name another server, or allow "
                "hypothetical indexes (hypopg) instead",
                step="scratch copy",
                dialect="postgresql",
            ) from error
        for table in snapshot.tables:
            if table.kind != "r":
                continue
            columns = _copyable_columns(source, table)
            listed = ", ".join(_quote(c) for c in columns)
            relation = f"{_quote(table.schema)}.{_quote(table.name)}"
            sample = ""
            if table.estimated_rows > sample_rows:
                percent = 100.0 * sample_rows / table.estimated_rows
                sample = f" TABLESAMPLE SYSTEM ({percent:.6f})"
            query = (
                f"COPY (SELECT {listed} FROM {relation}{sample}) "
                "TO STDOUT (FORMAT binary)"
            )
            with (
                reader.copy(query) as out,
                writer.copy(
                    f"COPY {relation} ({listed}) FROM STDIN (FORMAT binary)"
                ) as into,
            ):
                for block in out:
                    into.write(block)
            count = writer.execute(f"SELECT count(*) FROM {relation}").fetchone()
            copied.append((table.qualified, int(count[0]) if count else 0))
        target.commit()
    return copied


def _copyable_columns(source: sa.Connection, table: TableStats) -> list[str]:
    rows = source.execute(
        sa.text(
            "SELECT a.attname FROM pg_attribute a "
            "WHERE a.attrelid = CAST(:relation AS regclass) AND a.attnum > 0 "
            "AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum"
        ),
        {"relation": f"{_quote(table.schema)}.{_quote(table.name)}"},
    )
    return [str(row[0]) for row in rows]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
