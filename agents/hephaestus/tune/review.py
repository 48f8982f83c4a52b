"""Review the plans of a project's queries on a live database.

Each query is explained inside a read-only transaction. Without `analyze` the
plan is the planner's estimate; with it, queries without binds run (SELECT
only, in a savepoint rolled back) so actual row counts and sort methods can
be compared with the estimates.

Codes: HT060 a sequential scan on a large table; HT061 a row estimate off by
a large factor; HT062 a sort that spilled to disk; HT063 a sort estimated
larger than work_mem; HT064 a query that was not analyzed, and why; HT065 a
query that does not plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
import structlog

from sparc.agents.hephaestus.tune.collect import read_only
from sparc.agents.hephaestus.tune.explain import PlanError, nodes, plan
from sparc.agents.hephaestus.tune.workload import Statement, read_workload
from sparc.engines import Finding

log = structlog.get_logger(__name__)

LARGE_ROWS = 10_000
MISESTIMATE_FACTOR = 10.0


def review_queries(
    url: str,
    sql_text: str,
    *,
    analyze: bool = False,
    large_rows: int = LARGE_ROWS,
    misestimate_factor: float = MISESTIMATE_FACTOR,
    source: str = "performance_queries.sql",
) -> list[Finding]:
    """Explain each query of `sql_text` on the database at `url`.

    Args:
        url: the live database; only read.
        sql_text: queries in the `performance_queries.sql` format, or plain
            statements separated by semicolons.
        analyze: run the queries that can run safely (plain SELECTs without
            binds) for actual rows and sort methods.
        large_rows: a table with at least this many rows is large.
        misestimate_factor: actual/estimated rows (either way) that is flagged.
        source: how findings name the file.

    Returns:
        Findings HT060 to HT065, in query order.
    """
    statements = read_workload(sql_text, source=source)
    return review_statements(
        url,
        statements,
        analyze=analyze,
        large_rows=large_rows,
        misestimate_factor=misestimate_factor,
    )


def review_statements(
    url: str,
    statements: Sequence[Statement],
    *,
    analyze: bool = False,
    large_rows: int = LARGE_ROWS,
    misestimate_factor: float = MISESTIMATE_FACTOR,
) -> list[Finding]:
    """`review_queries` for statements already read (see `read_workload`)."""
    findings: list[Finding] = []
    with read_only(url) as connection:
        rows = _table_rows(connection)
        work_mem = int(
            connection.exec_driver_sql(
                "SELECT setting::bigint * 1024 FROM pg_settings WHERE name = 'work_mem'"
            ).scalar_one()
        )
        for item in statements:
            findings.extend(
                _review_one(
                    connection,
                    item,
                    analyze,
                    rows,
                    work_mem,
                    large_rows,
                    misestimate_factor,
                )
            )
    log.info("queries_reviewed", findings=len(findings), analyze=analyze)
    return findings


def _review_one(
    connection: sa.Connection,
    item: Statement,
    analyze: bool,
    rows: dict[str, float],
    work_mem: int,
    large_rows: int,
    factor: float,
) -> Iterator[Finding]:
    location = f"{item.source}:{item.name}"
    runs = analyze and _safe_to_run(item)
    if analyze and not runs:
        yield Finding(
            code="HT064",
            severity="info",
            category="plans",
            message=f"{item.name} was explained, not analyzed: "
            + ("it has binds" if item.binds else "it is not a plain SELECT"),
            location=location,
        )
    try:
        document = plan(connection, item, analyze=runs)
    except PlanError as error:
        yield Finding(
            code="HT065",
            severity="error",
            category="plans",
            message=f"{item.name} does not plan: {error.reason}",
            location=location,
        )
        return

    for node in nodes(document["Plan"]):
        kind = node.get("Node Type", "")
        relation = node.get("Relation Name")
        if kind == "Seq Scan" and relation:
            size = rows.get(f"{node.get('Schema', 'public')}.{relation}", 0.0)
            if size >= large_rows:
                yield Finding(
                    code="HT060",
                    severity="warning",
                    category="plans",
                    message=f"{item.name} reads {relation} ({int(size)} rows) by a "
                    f"sequential scan{_filter(node)}, estimated cost "
                    f"{node['Total Cost']}",
                    location=location,
                    hint="give sparc db tune this query as workload for a proven index",
                )
        if runs and "Actual Rows" in node:
            actual = float(node["Actual Rows"]) * float(node.get("Actual Loops", 1))
            estimated = float(node["Plan Rows"]) * float(node.get("Actual Loops", 1))
            ratio = max(actual, 1.0) / max(estimated, 1.0)
            if ratio >= factor or 1 / ratio >= factor:
                yield Finding(
                    code="HT061",
                    severity="warning",
                    category="plans",
                    message=f"{item.name}: {kind}{_on(node)} estimated "
                    f"{int(estimated)} rows, got {int(actual)} "
                    f"(off by {max(ratio, 1 / ratio):.0f}x)",
                    location=location,
                    hint="ANALYZE the table, or raise its statistics target / "
                    "add extended statistics on correlated columns",
                )
        if kind in ("Sort", "Incremental Sort"):
            yield from _sort_finding(item, node, runs, work_mem, location)


def _sort_finding(
    item: Statement, node: Any, runs: bool, work_mem: int, location: str
) -> Iterator[Finding]:
    if runs:
        if node.get("Sort Space Type") == "Disk":
            yield Finding(
                code="HT062",
                severity="warning",
                category="plans",
                message=f"{item.name}: sort by {', '.join(node.get('Sort Key', []))} "
                f"spilled {node.get('Sort Space Used')} kB to disk "
                f"({node.get('Sort Method')})",
                location=location,
                hint="raise work_mem for this query, or serve the order from an index",
            )
        return
    estimated = float(node.get("Plan Rows", 0)) * float(node.get("Plan Width", 0))
    if estimated > work_mem:
        yield Finding(
            code="HT063",
            severity="info",
            category="plans",
            message=f"{item.name}: sort of about {int(estimated / 1024)} kB "
            f"(by {', '.join(node.get('Sort Key', []))}) exceeds work_mem "
            f"({work_mem // 1024} kB) and would spill to disk",
            location=location,
            hint="confirm with --analyze; raise work_mem or serve the order "
            "from an index",
        )


def _safe_to_run(item: Statement) -> bool:
    if item.binds or "$" in item.positional:
        return False
    head = item.positional.lstrip("( \n\t").split(None, 1)
    verb = head[0].upper() if head else ""
    lowered = item.positional.lower()
    writes = any(w in lowered for w in ("insert ", "update ", "delete ", "merge "))
    return verb in ("SELECT", "WITH", "VALUES", "TABLE") and not writes


def _table_rows(connection: sa.Connection) -> dict[str, float]:
    rows = connection.exec_driver_sql(
        "SELECT n.nspname || '.' || c.relname, greatest(c.reltuples, 0) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'm')"
    )
    return {str(r[0]): float(r[1]) for r in rows}


def _filter(node: Any) -> str:
    condition = node.get("Filter")
    return f" filtering {condition}" if condition else ""


def _on(node: Any) -> str:
    relation = node.get("Relation Name")
    return f" on {relation}" if relation else ""
