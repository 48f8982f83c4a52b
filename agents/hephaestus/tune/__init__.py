"""Hephaestus tunes a live PostgreSQL database, reading and never writing it.

`tune` reads the statistics views and the catalog in a read-only transaction,
turns them into findings, proposes indexes for the workload and proves each
with the planner's estimated costs, and proposes dropping indexes nothing
uses. `review_queries` explains a project's queries. `advice_revision` turns
accepted advice into the next Alembic revision with models to match.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import structlog

from sparc.agents.hephaestus.tune.advise import (
    IndexAdvice,
    StatementCost,
    prove,
)
from sparc.agents.hephaestus.tune.collect import DatabaseSnapshot, collect, read_only
from sparc.agents.hephaestus.tune.diagnose import (
    Thresholds,
    foreign_key_findings,
    index_findings,
    statement_findings,
    table_findings,
)
from sparc.agents.hephaestus.tune.report import TuneReport, render
from sparc.agents.hephaestus.tune.review import review_queries, review_statements
from sparc.agents.hephaestus.tune.revision import QUERY_SCRIPT, advice_revision
from sparc.agents.hephaestus.tune.workload import (
    Statement,
    candidates,
    read_workload,
    statement,
)
from sparc.engines import Finding
from sparc.errors import InputError

__all__ = [
    "IndexAdvice",
    "StatementCost",
    "Thresholds",
    "TuneReport",
    "advice_revision",
    "read_workload",
    "Statement",
    "render",
    "review_queries",
    "review_statements",
    "tune",
    "tune_workspace",
]

log = structlog.get_logger(__name__)

Proof = Literal["auto", "hypopg", "scratch"]
WORKLOAD_FROM_STATISTICS = 20


def tune(
    url: str,
    *,
    workload: Sequence[str | Statement] | None = None,
    hypothetical: bool = False,
    analyze: bool = False,
    margin: float = 0.2,
    proof: Proof = "auto",
    scratch_url: str | None = None,
    thresholds: Thresholds | None = None,
) -> TuneReport:
    """Find what slows the database at `url` and propose proven index changes.

    The database is only read (a read-only transaction), with one exception
    the caller opts into: with `hypothetical=True` the planner is asked about
    hypothetical indexes (hypopg) in a session whose transaction is rolled
    back, creating the extension there first when it is not yet created.

    Args:
        url: the database to tune.
        workload: statements to tune for (`:name` binds allowed), as text or
            as read by `read_workload`; the most expensive statements of
            pg_stat_statements are added when it is installed.
        hypothetical: allow hypothetical indexes on the live database.
        analyze: review the workload's plans with EXPLAIN ANALYZE (plain
            SELECTs without binds only).
        margin: the fraction a statement's estimated cost must fall by for
            an index to be proposed.
        proof: "auto" uses hypopg when allowed and available, else a scratch
            copy; "hypopg" or "scratch" force one ("hypopg" needs
            `hypothetical`).
        scratch_url: a server where the scratch copy may be created; the
            tuned server when None.
        thresholds: when numbers become findings.

    Returns:
        The report: findings, advice (accepted or not, with costs), notes.

    Raises:
        InputError: the URL is not PostgreSQL, or "hypopg" was asked for
            without `hypothetical`.
    """
    limits = thresholds or Thresholds()
    if proof == "hypopg" and not hypothetical:
        raise InputError(
            "hypothetical indexes touch the live session; pass hypothetical=True "
            "(--hypothetical) to allow them",
            field="proof",
        )
    with read_only(url) as connection:
        snapshot = collect(connection)

    given = [
        item if isinstance(item, Statement) else statement(f"workload_{n}", item)
        for n, item in enumerate(workload or (), 1)
    ]
    statements = given + _statistics_workload(snapshot)
    findings: list[Finding] = [
        *statement_findings(snapshot),
        *table_findings(snapshot, limits),
        *foreign_key_findings(snapshot),
    ]
    index_notes, drops = index_findings(snapshot)
    findings += index_notes

    if proof == "hypopg" and not snapshot.hypopg_available:
        raise InputError(
            "hypopg is not available on the server; install it (Debian: "
            "apt-get install postgresql-15-hypopg) or leave the proof to a "
            "scratch copy",
            field="proof",
        )
    method = _method(proof, hypothetical, snapshot.hypopg_available)
    notes = []
    if hypothetical and not snapshot.hypopg_available and proof == "auto":
        notes.append("hypopg is not available on the server: used a scratch copy")
    found = candidates(statements, snapshot)
    created, proof_notes = prove(
        url, snapshot, found, method=method, margin=margin, scratch_url=scratch_url
    )
    notes += proof_notes

    query_findings: list[Finding] = []
    if given:
        query_findings = review_statements(url, given, analyze=analyze)
    report = TuneReport(
        database=snapshot.database,
        server_version=snapshot.server_version,
        method=method if found else None,
        margin=margin,
        findings=tuple(findings),
        advice=tuple([*created, *drops]),
        notes=tuple(notes),
        stats_reset=snapshot.stats_reset,
        query_findings=tuple(query_findings),
    )
    log.info(
        "database_tuned",
        database=snapshot.database,
        findings=len(findings),
        proposed=len(report.accepted),
    )
    return report


def tune_workspace(
    root: Path,
    url: str,
    *,
    task_id: str,
    title: str,
    workload_file: Path | None = None,
    hypothetical: bool = False,
    analyze: bool = False,
    margin: float = 0.2,
    postgres_url: str | None = None,
) -> tuple[TuneReport, dict[str, str]]:
    """A tuning task's deliverables for the workspace at `root`.

    The workload is `workload_file`, else the workspace's
    `performance_queries.sql` when it exists.

    Args:
        root: the workspace (only read).
        url: the database to tune (only read; see `tune`).
        task_id: the tuning task.
        title: the revision's title.
        workload_file: statements to tune for.
        hypothetical: allow hypothetical indexes on the live database.
        analyze: review plans with EXPLAIN ANALYZE where it is safe.
        margin: the cost reduction an index must bring.
        postgres_url: an empty PostgreSQL database to verify the revision on.

    Returns:
        The report and the files to write (see `advice_revision`).

    Raises:
        InputError: the workload file cannot be read.
    """
    path = workload_file or root / QUERY_SCRIPT
    statements: list[Statement] = []
    if workload_file is not None or path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(
                f"cannot read the workload: {error.strerror}", path=path
            ) from error
        statements = read_workload(text, source=path.name)
    report = tune(
        url,
        workload=statements,
        hypothetical=hypothetical,
        analyze=analyze,
        margin=margin,
    )
    files = advice_revision(
        root, report, task_id=task_id, title=title, postgres_url=postgres_url
    )
    return report, files


def _method(
    proof: Proof, hypothetical: bool, available: bool
) -> Literal["hypopg", "scratch"]:
    if proof == "auto":
        return "hypopg" if hypothetical and available else "scratch"
    return proof


def _statistics_workload(snapshot: DatabaseSnapshot) -> list[Statement]:
    if not snapshot.statements:
        return []
    chosen = []
    for item in snapshot.statements:
        head = item.query.lstrip().split(None, 1)
        verb = head[0].upper() if head else ""
        if verb not in ("SELECT", "WITH", "UPDATE", "DELETE"):
            continue
        if "pg_catalog" in item.query or "pg_stat" in item.query:
            continue
        chosen.append(statement(f"pg_stat_statements_{len(chosen) + 1}", item.query))
        if len(chosen) == WORKLOAD_FROM_STATISTICS:
            break
    return chosen
