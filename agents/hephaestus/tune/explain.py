"""Ask the PostgreSQL planner for a statement's plan, with binds left generic.

A statement with `:name` binds is prepared with positional parameters (so the
server infers their types) and explained under `plan_cache_mode =
force_generic_plan`, which plans it for any value, the way a prepared
statement of an application runs. The settings are `SET LOCAL`: they end with
the transaction.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from sparc.agents.hephaestus.tune.workload import Statement

_handles = itertools.count(1)


class PlanError(Exception):
    """The server could not plan a statement; `reason` is its message."""

    def __init__(self, statement: str, reason: str) -> None:
        super().__init__(f"{statement}: {reason}")
        self.statement = statement
        self.reason = reason


def plan(connection: sa.Connection, item: Statement, *, analyze: bool = False) -> Any:
    """The JSON plan of `item` (the top plan node, a dict).

    ANALYZE runs the statement, so it is used only for statements without
    binds; it happens in a savepoint that is rolled back.

    Raises:
        PlanError: the statement does not plan; the connection is left usable.
    """
    # VERBOSE names each scanned relation's schema
    options = "FORMAT JSON, VERBOSE" + (", ANALYZE, BUFFERS" if analyze else "")
    raw = connection.execution_options(no_parameters=True)
    savepoint = connection.begin_nested()
    try:
        if not item.binds and "$" not in item.positional:
            document = raw.exec_driver_sql(
                f"EXPLAIN ({options}) {item.positional}"
            ).scalar_one()
        else:
            document = _explain_generic(raw, item.positional)
    except DBAPIError as error:
        savepoint.rollback()
        raise PlanError(item.name, str(error.orig).strip()) from error
    savepoint.rollback()
    if isinstance(document, str):
        document = json.loads(document)
    return document[0]


def total_cost(connection: sa.Connection, item: Statement) -> float:
    """The planner's estimated total cost of `item`."""
    return float(plan(connection, item)["Plan"]["Total Cost"])


def nodes(node: Any) -> Iterator[Any]:
    """Every node of a plan tree, depth first."""
    yield node
    for child in node.get("Plans", ()):
        yield from nodes(child)


def _explain_generic(raw: sa.Connection, positional: str) -> Any:
    handle = f"sparc_tune_{next(_handles)}"
    raw.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    raw.exec_driver_sql(f"PREPARE {handle} AS {positional}")
    count = raw.exec_driver_sql(
        "SELECT cardinality(parameter_types) FROM pg_prepared_statements "
        f"WHERE name = '{handle}'"
    ).scalar_one()
    arguments = ", ".join(["NULL"] * int(count))
    execute = f"EXECUTE {handle}({arguments})" if count else f"EXECUTE {handle}"
    document = raw.exec_driver_sql(
        f"EXPLAIN (FORMAT JSON, VERBOSE) {execute}"
    ).scalar_one()
    # prepared statements outlive transactions; a failed one above is left to
    # the session's end, which the caller's connection brings soon
    raw.exec_driver_sql(f"DEALLOCATE {handle}")
    return document
