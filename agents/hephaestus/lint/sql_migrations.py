"""Migration safety for plain SQL migrations: Prisma's `migration.sql` files.

The same rules as for Alembic revisions (`lint.migrations`), read straight
from the SQL: squawk for PostgreSQL's lock and rewrite rules, and sparc's own
checks against the schema as the earlier migrations left it. A finding is
located at `prisma/migrations/<folder>/migration.sql:<line>`, and a
`-- sparc: ignore HMxxx` comment on a statement silences it there.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sparc.agents.hephaestus.lint.migrations import (
    _advance,
    _own_checks,
    _squawk,
    find_squawk,
)
from sparc.agents.hephaestus.lint.rules import make_finding
from sparc.agents.hephaestus.lint.sources import (
    Statement,
    split_statements,
    suppressions,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.engines import Finding

log = structlog.get_logger(__name__)

__all__ = ["SqlMigration", "lint_sql_migrations"]

# Prisma migrations run on PostgreSQL only
DEFAULT_TARGETS: tuple[str, ...] = ("postgresql",)


@dataclass(frozen=True)
class SqlMigration:
    """One migration: how findings name it, and its SQL."""

    display: str
    sql: str


def lint_sql_migrations(
    migrations: Sequence[SqlMigration],
    *,
    report_on: Collection[str] | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
    squawk: Path | None = None,
) -> list[Finding]:
    """Check SQL migrations, in applying order, each against the ones before it.

    Args:
        migrations: every migration of the project, oldest first; the earlier
            ones give the schema a later one changes.
        report_on: the displays of the migrations to report on (a task's new
            ones); None reports on all.
        targets: dialects the migrations run on (SQLite and MariaDB checks
            run only for the targets that name them).
        squawk: the squawk binary; found next to the interpreter or on PATH
            when None.

    Returns:
        Findings located at `display:line`; squawk's absence is an info
        finding.
    """
    dialects = {target.lower() for target in targets}
    binary = squawk or find_squawk()
    findings: list[Finding] = []
    checked = [m for m in migrations if report_on is None or m.display in report_on]
    if binary is None and checked:
        findings.append(
            make_finding(
                "HM001",
                "squawk was not found next to the Python interpreter or on PATH; "
                "PostgreSQL lock and rewrite checks were skipped",
                checked[0].display,
            )
        )

    spec = SchemaSpec()
    for migration in migrations:
        reported = report_on is None or migration.display in report_on
        statements = split_statements(migration.sql)
        after = _advance(spec, migration.sql, migration.display)
        if reported:
            findings.extend(
                _lint_one(migration, statements, spec, after, dialects, binary)
            )
        spec = after
    log.info("sql_migrations_linted", migrations=len(checked), findings=len(findings))
    return findings


def _lint_one(
    migration: SqlMigration,
    statements: list[Statement],
    before: SchemaSpec,
    after: SchemaSpec,
    dialects: set[str],
    binary: Path | None,
) -> list[Finding]:
    source = _SqlSource(migration, statements)
    found: list[Finding] = []
    if binary is not None:
        # PostgreSQL runs a migration script as one implicit transaction, so
        # squawk is told so (on the first line: line numbers stay the same);
        # what the script itself creates is then not taken as live tables
        wrapped = f"BEGIN; {migration.sql}\nCOMMIT;\n"
        found.extend(_squawk(binary, wrapped, statements, source))
    found.extend(_own_checks(statements, before, after, dialects, source))
    return [f for f in found if not source.is_suppressed(f)]


class _SqlSource:
    """Where a statement of a SQL migration is: its own first line."""

    def __init__(self, migration: SqlMigration, statements: list[Statement]) -> None:
        self.display = migration.display
        self.suppressed = suppressions(
            migration.sql, ((s.first_line, s.last_line) for s in statements)
        )

    def at(self, line: int | None) -> str:
        return f"{self.display}:{line or 1}"

    def statement_at(self, statement: Statement) -> str:
        return self.at(statement.first_line)

    def uses_batch(self, table: str) -> bool:
        # plain SQL has no Alembic batch mode
        return False

    def is_suppressed(self, finding: Finding) -> bool:
        line = int(finding.location.rsplit(":", 1)[1])
        return finding.code in self.suppressed.get(line, frozenset())
