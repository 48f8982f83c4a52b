"""The review rules: stable codes, categories, severities, and why they matter.

Codes never change meaning and are never reused: design rules are `HD`, rules
about migrations are `HM`. Squawk's PostgreSQL rules each get their own `HM1xx`
code; a squawk rule this table does not know yet is reported as `HM199` with
its name in the message, so a newer squawk never goes unheard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sparc.engines import Finding, Severity

Category = Literal[
    "missing-foreign-key",
    "wrong-data-type",
    "missing-constraint",
    "over-indexing",
    "unindexed-foreign-key",
    "naming",
    "normalization",
    "migration-safety",
]

CATEGORIES: tuple[Category, ...] = (
    "missing-foreign-key",
    "wrong-data-type",
    "missing-constraint",
    "over-indexing",
    "unindexed-foreign-key",
    "naming",
    "normalization",
    "migration-safety",
)

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Rule:
    """One review rule: what it catches (`title`), `why` it matters, the `fix`."""

    code: str
    category: Category
    severity: Severity
    title: str
    why: str
    fix: str


_DESIGN_RULES = (
    Rule(
        "HD101",
        "missing-foreign-key",
        "warning",
        "Column named like a reference has no foreign key",
        "A column such as `customer_id` that holds another table's key but has no "
        "FOREIGN KEY lets rows point at nothing; joins then drop or invent rows.",
        "Declare FOREIGN KEY (column) REFERENCES table (key) with the ON DELETE "
        "action the relationship needs.",
    ),
    Rule(
        "HD201",
        "wrong-data-type",
        "error",
        "Money stored in binary floating point",
        "FLOAT, REAL and DOUBLE PRECISION cannot represent most decimal cents: sums "
        "drift (0.1 + 0.2 is not 0.3) and equality checks on amounts fail.",
        "Use NUMERIC(p, 2) with p >= 12 (Mapped[Decimal]), or store integer minor "
        "units such as `amount_cents`.",
    ),
    Rule(
        "HD202",
        "wrong-data-type",
        "info",
        "Rate stored in binary floating point",
        "Rates and ratios in floating point are approximate; that is acceptable for "
        "statistics but not when the rate is applied to money.",
        "Use NUMERIC with an explicit scale (e.g. NUMERIC(7, 6)) when the rate is "
        "used in billing.",
    ),
    Rule(
        "HD203",
        "wrong-data-type",
        "warning",
        "Date or time stored as text",
        "Text timestamps sort and compare as strings, accept invalid values and "
        "lose the time zone; range queries cannot use date arithmetic.",
        "Use TIMESTAMP WITH TIME ZONE (or DATE) and convert the values in the "
        "migration.",
    ),
    Rule(
        "HD204",
        "wrong-data-type",
        "error",
        "VARCHAR without a length on MariaDB",
        "MariaDB and MySQL refuse VARCHAR without a length, so the table cannot be "
        "created there at all.",
        "Give every VARCHAR a length that fits its values, or use TEXT.",
    ),
    Rule(
        "HD205",
        "wrong-data-type",
        "warning",
        "Boolean stored as a one-character string",
        "A CHAR(1) flag accepts any character ('Y', 'y', 'T', '1'), so queries miss "
        "rows and every client invents its own mapping.",
        "Use BOOLEAN (Mapped[bool]) with a NOT NULL constraint and a server default.",
    ),
    Rule(
        "HD301",
        "missing-constraint",
        "warning",
        "Table without a primary key",
        "Without a primary key rows cannot be addressed, updated or referenced "
        "reliably, and duplicates go unnoticed.",
        "Add a PRIMARY KEY: a surrogate identity column or the natural key.",
    ),
    Rule(
        "HD302",
        "missing-constraint",
        "warning",
        "Link table without uniqueness on its pair",
        "A many-to-many table keyed only by a surrogate id accepts the same pair "
        "many times; counts and permission checks then go wrong.",
        "Make the pair the PRIMARY KEY, or add UNIQUE (a_id, b_id).",
    ),
    Rule(
        "HD303",
        "missing-constraint",
        "warning",
        "Nullable foreign key column in a link table",
        "A link row with a NULL side links nothing; it only exists because the "
        "column allows it.",
        "Declare the link table's foreign key columns NOT NULL.",
    ),
    Rule(
        "HD304",
        "missing-constraint",
        "info",
        "Link table foreign key without an ON DELETE action",
        "With NO ACTION (the default when none is given), deleting either side "
        "fails while links exist (or an ORM nulls the column first); whether links "
        "should die with their rows was never decided.",
        "Declare ON DELETE CASCADE (links die with either side), or RESTRICT to "
        "make refusing the delete explicit.",
    ),
    Rule(
        "HD401",
        "over-indexing",
        "warning",
        "Index duplicates the primary key",
        "The primary key already has a unique index on these columns; a second one "
        "costs every write and its disk space and serves no query.",
        "Drop the duplicate index.",
    ),
    Rule(
        "HD402",
        "over-indexing",
        "warning",
        "Index duplicates a unique constraint",
        "A UNIQUE constraint is enforced by an index on the same columns; an extra "
        "index on them (e.g. `unique=True` plus `index=True`) is pure overhead.",
        "Drop the extra index; keep the UNIQUE constraint.",
    ),
    Rule(
        "HD403",
        "over-indexing",
        "warning",
        "Identical indexes",
        "Two indexes with the same columns, order, method, predicate and operator "
        "classes are maintained twice and used once.",
        "Drop one of them.",
    ),
    Rule(
        "HD404",
        "over-indexing",
        "warning",
        "Index is a left prefix of another index",
        "A B-tree on (a, b) also serves lookups on a alone, so a non-unique index "
        "on (a) with the same predicate is redundant.",
        "Drop the shorter index unless measurements show it helps (it is smaller).",
    ),
    Rule(
        "HD501",
        "unindexed-foreign-key",
        "warning",
        "Foreign key without a supporting index",
        "Deleting or updating a parent row scans the child table for references, "
        "and joins from parent to children cannot use an index.",
        "Create an index whose leading columns are the foreign key columns.",
    ),
    Rule(
        "HD601",
        "naming",
        "warning",
        "Reserved word used as an identifier",
        "Reserved words must be quoted in every hand-written statement; unquoted, "
        "they are syntax errors or, like `user` on PostgreSQL, silently mean "
        "something else.",
        "Rename the object (e.g. `app_user`, `customer_order`) or quote it "
        "consistently everywhere.",
    ),
    Rule(
        "HD602",
        "naming",
        "warning",
        "Identifier longer than 63 bytes",
        "PostgreSQL silently truncates identifiers to 63 bytes, so two long names "
        "can collide and migrations look for names that do not exist.",
        "Shorten the name to at most 63 bytes.",
    ),
    Rule(
        "HD603",
        "naming",
        "info",
        "Table names mix singular and plural",
        "Mixed conventions make names guessable only by looking them up, and "
        "generated model names inherit the inconsistency.",
        "Pick one convention for table names and rename the exceptions.",
    ),
    Rule(
        "HD604",
        "naming",
        "info",
        "Identifier in mixed case",
        "PostgreSQL folds unquoted names to lower case, so a mixed-case name must "
        "be quoted in every statement, unlike the rest of the schema.",
        "Use lower-case snake_case names.",
    ),
    Rule(
        "HD701",
        "normalization",
        "warning",
        "Repeating group of numbered columns",
        "Columns like phone1, phone2, phone3 cap the number of values, leave most "
        "of them NULL and make 'find by phone' a query over every column. Address "
        "lines (address, address2, address_line_1, ...) are exempt: they are "
        "ordered parts of one postal address, not repeated values.",
        "Move the repeated attribute into a child table with one row per value.",
    ),
    Rule(
        "HD702",
        "normalization",
        "info",
        "Text column that looks like a delimited list",
        "A column such as `tags` in TEXT usually holds comma-separated values that "
        "cannot be indexed, constrained or joined.",
        "Use a child table (or an array / JSON column on PostgreSQL) instead of a "
        "delimited string.",
    ),
)

_MIGRATION_RULES = (
    Rule(
        "HM001",
        "migration-safety",
        "info",
        "squawk is not available",
        "PostgreSQL lock and rewrite checks come from squawk; without it those "
        "checks did not run.",
        "Install the `squawk-cli` package into the environment that runs sparc.",
    ),
    Rule(
        "HM002",
        "migration-safety",
        "warning",
        "Revision cannot be rendered as offline SQL",
        "The revision's SQL could not be produced without a database, so what it "
        "does could not be reviewed.",
        "Make the revision work with `alembic upgrade --sql` (no reflection or "
        "queries in upgrade(); pass `copy_from` to batch_alter_table).",
    ),
    Rule(
        "HM003",
        "migration-safety",
        "info",
        "squawk could not check a revision",
        "squawk failed on the revision's SQL, so its PostgreSQL checks are missing "
        "for this revision.",
        "Run squawk on the revision's offline SQL by hand to see the error.",
    ),
    Rule(
        "HM010",
        "migration-safety",
        "warning",
        "SQLite table copy of a table other tables reference",
        "SQLite cannot alter this in place, so Alembic's batch mode copies the "
        "table and drops the original. With PRAGMA foreign_keys=ON that DROP TABLE "
        "deletes every row first: children with ON DELETE CASCADE lose their rows, "
        "other references make the migration fail.",
        "Run the migration with PRAGMA foreign_keys=OFF (set it before the "
        "transaction starts) and check PRAGMA foreign_key_check afterwards.",
    ),
    Rule(
        "HM011",
        "migration-safety",
        "error",
        "Dropping a column a view uses",
        "PostgreSQL refuses to drop a column a view depends on, and SQLite fails "
        "with 'error in view' while altering or copying the table.",
        "Drop or redefine the view first, then drop the column, then recreate it.",
    ),
    Rule(
        "HM012",
        "migration-safety",
        "error",
        "NOT NULL column without a default on SQLite",
        "SQLite refuses ALTER TABLE ADD COLUMN ... NOT NULL without a default, even "
        "on an empty table.",
        "Give the column a server_default, or add it nullable, backfill, then set "
        "NOT NULL in batch mode.",
    ),
    Rule(
        "HM013",
        "migration-safety",
        "error",
        "Non-constant default added outside batch mode on SQLite",
        "SQLite refuses ALTER TABLE ADD COLUMN with a default such as "
        "CURRENT_TIMESTAMP or now() ('Cannot add a column with non-constant "
        "default'); only a table copy can add it.",
        "Add the column inside op.batch_alter_table(...) so Alembic copies the "
        "table on SQLite.",
    ),
    Rule(
        "HM020",
        "migration-safety",
        "warning",
        "Column type narrowed",
        "A shorter VARCHAR, a smaller integer or a NUMERIC with less precision or "
        "scale fails on existing values that no longer fit, or silently rounds "
        "them.",
        "Check the data first (SELECT max(length(col)) ...) or keep the wider type.",
    ),
    Rule(
        "HM030",
        "migration-safety",
        "warning",
        "MariaDB column type change copies the table",
        "Changing a column's type cannot run as ALGORITHM=INSTANT or INPLACE on "
        "MariaDB (except widening a VARCHAR within its length-byte class): the "
        "table is copied and writes are blocked meanwhile.",
        "Schedule it for a quiet period, or add a new column, backfill, and switch.",
    ),
    Rule(
        "HM031",
        "migration-safety",
        "warning",
        "MariaDB foreign key added with a table copy",
        "Adding a FOREIGN KEY runs INPLACE only with foreign_key_checks=0; "
        "otherwise MariaDB copies the table and blocks writes.",
        "Add the key with SET foreign_key_checks=0 after checking the data, or "
        "accept the copy on a small table.",
    ),
    Rule(
        "HM032",
        "migration-safety",
        "warning",
        "MariaDB primary key dropped with a table copy",
        "Dropping a primary key without adding another in the same statement "
        "rebuilds the table with ALGORITHM=COPY on MariaDB.",
        "Drop and add the primary key in one ALTER TABLE statement.",
    ),
)


@dataclass(frozen=True)
class SquawkRule:
    name: str
    code: str
    category: Category
    severity: Severity
    title: str


# Squawk's rule names mapped onto sparc's codes and categories. Append only.
SQUAWK_RULES: tuple[SquawkRule, ...] = (
    SquawkRule(
        "require-concurrent-index-creation",
        "HM101",
        "migration-safety",
        "warning",
        "Index created without CONCURRENTLY",
    ),
    SquawkRule(
        "require-concurrent-index-deletion",
        "HM102",
        "migration-safety",
        "warning",
        "Index dropped without CONCURRENTLY",
    ),
    SquawkRule(
        "constraint-missing-not-valid",
        "HM103",
        "migration-safety",
        "warning",
        "Constraint added without NOT VALID",
    ),
    SquawkRule(
        "adding-field-with-default",
        "HM104",
        "migration-safety",
        "warning",
        "Column added with a volatile default (table rewrite)",
    ),
    SquawkRule(
        "adding-foreign-key-constraint",
        "HM105",
        "migration-safety",
        "warning",
        "Foreign key added without NOT VALID",
    ),
    SquawkRule(
        "changing-column-type",
        "HM106",
        "migration-safety",
        "warning",
        "Column type changed (table rewrite)",
    ),
    SquawkRule(
        "adding-not-nullable-field",
        "HM107",
        "migration-safety",
        "warning",
        "SET NOT NULL scans the table under lock",
    ),
    SquawkRule(
        "adding-serial-primary-key-field",
        "HM108",
        "migration-safety",
        "warning",
        "Serial primary key added to an existing table",
    ),
    SquawkRule(
        "renaming-column",
        "HM109",
        "migration-safety",
        "warning",
        "Column renamed (breaks running clients)",
    ),
    SquawkRule(
        "renaming-table",
        "HM110",
        "migration-safety",
        "warning",
        "Table renamed (breaks running clients)",
    ),
    SquawkRule(
        "disallowed-unique-constraint",
        "HM111",
        "migration-safety",
        "warning",
        "UNIQUE constraint added without a concurrently built index",
    ),
    SquawkRule(
        "ban-drop-database", "HM112", "migration-safety", "error", "Database dropped"
    ),
    SquawkRule(
        "ban-drop-column",
        "HM113",
        "migration-safety",
        "warning",
        "Column dropped (destructive, breaks running clients)",
    ),
    SquawkRule(
        "ban-drop-table",
        "HM114",
        "migration-safety",
        "warning",
        "Table dropped (destructive, breaks running clients)",
    ),
    SquawkRule(
        "ban-drop-not-null",
        "HM115",
        "migration-safety",
        "warning",
        "NOT NULL dropped (backward-incompatible)",
    ),
    SquawkRule(
        "adding-required-field",
        "HM116",
        "migration-safety",
        "error",
        "NOT NULL column added without a default",
    ),
    SquawkRule(
        "ban-concurrent-index-creation-in-transaction",
        "HM117",
        "migration-safety",
        "error",
        "CONCURRENTLY inside a transaction",
    ),
    SquawkRule(
        "transaction-nesting",
        "HM118",
        "migration-safety",
        "warning",
        "Nested transaction statements",
    ),
    SquawkRule("ban-char-field", "HM119", "wrong-data-type", "info", "CHAR(n) column"),
    SquawkRule(
        "ban-truncate-cascade",
        "HM120",
        "migration-safety",
        "error",
        "TRUNCATE ... CASCADE",
    ),
    SquawkRule(
        "ban-create-domain-with-constraint",
        "HM121",
        "migration-safety",
        "warning",
        "Domain created with a constraint",
    ),
    SquawkRule(
        "ban-alter-domain-with-add-constraint",
        "HM122",
        "migration-safety",
        "warning",
        "Constraint added to a domain",
    ),
    SquawkRule(
        "ban-uncommitted-transaction",
        "HM123",
        "migration-safety",
        "warning",
        "Transaction left open",
    ),
    SquawkRule(
        "identifier-too-long",
        "HM124",
        "naming",
        "warning",
        "Identifier longer than PostgreSQL allows",
    ),
    SquawkRule(
        "require-concurrent-reindex",
        "HM125",
        "migration-safety",
        "warning",
        "REINDEX without CONCURRENTLY",
    ),
    SquawkRule(
        "require-concurrent-partition-detach",
        "HM126",
        "migration-safety",
        "warning",
        "Partition detached without CONCURRENTLY",
    ),
    SquawkRule(
        "require-enum-value-ordering",
        "HM127",
        "migration-safety",
        "info",
        "Enum value added without BEFORE/AFTER",
    ),
)

UNKNOWN_SQUAWK_CODE = "HM199"

# Squawk rules sparc turns off: style preferences rather than hazards, which
# would fire on nearly every revision (32-bit keys, VARCHAR, TIMESTAMP,
# SERIAL, IF NOT EXISTS) or on every statement (timeouts).
SQUAWK_EXCLUDED: tuple[str, ...] = (
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-robust-stmts",
    "prefer-text-field",
    "prefer-timestamp-tz",
    "require-lock-timeout",
    "require-statement-timeout",
    "require-timeout-settings",
)

SQUAWK_BY_NAME: dict[str, SquawkRule] = {rule.name: rule for rule in SQUAWK_RULES}


def _squawk_rule(rule: SquawkRule) -> Rule:
    return Rule(
        rule.code,
        rule.category,
        rule.severity,
        f"{rule.title} (squawk: {rule.name})",
        f"Reported by squawk's `{rule.name}` rule on the revision's PostgreSQL "
        "SQL; see https://squawkhq.com/docs/ for the rule's reasoning.",
        "Follow squawk's help text in the message; for lock-heavy changes split "
        "the revision so the slow step runs without blocking.",
    )


_UNKNOWN_SQUAWK = Rule(
    UNKNOWN_SQUAWK_CODE,
    "migration-safety",
    "warning",
    "Other squawk rule",
    "squawk reported a rule this version of sparc has no code for yet; the "
    "message names it.",
    "Read squawk's documentation for the named rule.",
)

RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        *_DESIGN_RULES,
        *_MIGRATION_RULES,
        *(_squawk_rule(rule) for rule in SQUAWK_RULES),
        _UNKNOWN_SQUAWK,
    )
}


def make_finding(
    code: str, message: str, location: str, *, hint: str | None = None
) -> Finding:
    """A finding of rule `code`, with its category and default severity."""
    rule = RULES[code]
    return Finding(
        code=code,
        severity=rule.severity,
        message=message,
        location=location,
        hint=hint if hint is not None else rule.fix,
        category=rule.category,
    )
