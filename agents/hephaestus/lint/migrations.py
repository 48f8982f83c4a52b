"""Migration safety: each Alembic revision judged on its own offline SQL.

Every revision is rendered as PostgreSQL SQL one at a time (`alembic upgrade
<prev>:<rev> --sql`), so a revision that alters an existing table is seen as
an ALTER and not as part of one big CREATE of the whole history. That SQL goes
to squawk for PostgreSQL's lock and rewrite rules; the same statements, parsed
with pglast and read against the schema as it stood before the revision, feed
the checks squawk lacks: SQLite table copies under foreign keys, columns that
views use, type narrowing, and MariaDB ALTERs that cannot run INSTANT/INPLACE.

The project's own env.py is not run: it imports the models and picks its URL
from the environment. A small env.py in a scratch folder renders the project's
revision files for PostgreSQL instead.
"""

from __future__ import annotations

import ast as pyast
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pglast
import structlog
from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from pglast import ast
from pglast.enums.parsenodes import AlterTableType, ConstrType
from pglast.stream import RawStream

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.lint.rules import (
    SQUAWK_BY_NAME,
    SQUAWK_EXCLUDED,
    UNKNOWN_SQUAWK_CODE,
    make_finding,
)
from sparc.agents.hephaestus.lint.sources import (
    Statement,
    python_suppressions,
    split_statements,
)
from sparc.agents.hephaestus.spec import ColumnType, SchemaSpec
from sparc.engines import Finding
from sparc.errors import DDLError

log = structlog.get_logger(__name__)

DEFAULT_TARGETS: tuple[str, ...] = ("postgresql", "sqlite")
SQUAWK_PG_VERSION = "15"
SQUAWK_TIMEOUT_SECONDS = 60
_OFFLINE_URL = "postgresql+psycopg://"
_VERSION_TABLE = "alembic_version"
_SNIPPET_LENGTH = 90

_OFFLINE_ENV = '''\
"""Render revisions as offline SQL for sparc's migration lint."""

from alembic import context

config = context.config
context.configure(
    url=config.get_main_option("sqlalchemy.url"),
    literal_binds=True,
    dialect_opts={"paramstyle": "named"},
    output_buffer=config.attributes["sparc_output"],
)
with context.begin_transaction():
    context.run_migrations()
'''

# ALTER TABLE commands SQLite cannot run in place: Alembic's batch mode copies
# the table for them. Dropping a column, or adding one with a non-constant
# default, copies only inside batch_alter_table (SQLite >= 3.35 drops columns
# in place; a non-constant default outside batch mode is refused)
_SQLITE_COPIES = frozenset(
    {
        AlterTableType.AT_AlterColumnType,
        AlterTableType.AT_SetNotNull,
        AlterTableType.AT_DropNotNull,
        AlterTableType.AT_ColumnDefault,
        AlterTableType.AT_AddConstraint,
        AlterTableType.AT_DropConstraint,
    }
)
_INTEGER_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_FLOAT_RANK = {"real": 1, "double": 2}
# utf8mb4 stores up to 4 bytes per character; past 255 bytes a VARCHAR needs a
# 2-byte length prefix, and crossing that line rebuilds the table
_MARIADB_ONE_BYTE_CHARS = 63


def find_squawk() -> Path | None:
    """The squawk binary next to the running interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return beside
    found = shutil.which("squawk")
    return Path(found) if found else None


def lint_migrations(
    alembic_dir: Path,
    *,
    display: str | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
    squawk: Path | None = None,
) -> list[Finding]:
    """Check every revision of an Alembic folder for production safety.

    Args:
        alembic_dir: an `alembic/` folder (with `versions/`) or a versions
            folder itself.
        display: how to name `alembic_dir` in locations; defaults to its path.
        targets: dialects the migrations run on; SQLite and MariaDB checks run
            only for the targets that name them.
        squawk: the squawk binary; found next to the interpreter or on PATH
            when None.

    Returns:
        Findings located at `revision file:line`, the line of the operation
        that produced the statement where it can be told.
    """
    root = Path(alembic_dir)
    versions = root / "versions" if (root / "versions").is_dir() else root
    shown = display or str(root)
    dialects = {target.lower() for target in targets}
    binary = squawk or find_squawk()
    copies_unguarded = not _env_switches_foreign_keys_off(root)

    findings: list[Finding] = []
    if binary is None:
        findings.append(
            make_finding(
                "HM001",
                "squawk was not found next to the Python interpreter or on PATH; "
                "PostgreSQL lock and rewrite checks were skipped",
                shown,
            )
        )

    with tempfile.TemporaryDirectory(prefix="sparc-lint-") as scratch:
        env_dir = Path(scratch)
        (env_dir / "env.py").write_text(_OFFLINE_ENV, encoding="utf-8")
        try:
            revisions = _revisions_in_order(env_dir, versions)
        except Exception as error:
            # revision files are user code: any failure to import them is
            # reported, not raised, so the rest of a review still runs
            findings.append(
                make_finding(
                    "HM002",
                    f"the revisions in {shown} cannot be loaded: {error}",
                    shown,
                )
            )
            return findings

        spec = SchemaSpec()
        for revision in revisions:
            where = f"{shown}/{_relative(Path(revision.path), root)}"
            spec, found = _lint_revision(
                revision,
                env_dir,
                versions,
                where,
                spec,
                dialects,
                binary,
                copies_unguarded=copies_unguarded,
            )
            findings.extend(found)
    log.info("migrations_linted", path=shown, findings=len(findings))
    return findings


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


_FOREIGN_KEYS_OFF = re.compile(r"pragma\s+foreign_keys\s*=\s*(off|0|false|no)\b")


def _env_switches_foreign_keys_off(alembic_dir: Path) -> bool:
    """Whether the folder's env.py turns SQLite's foreign keys off.

    SQLite takes `PRAGMA foreign_keys` only outside a transaction, so only the
    environment (not a revision) can guard batch-mode table copies; a literal
    in env.py's code (not a comment) is taken as that guard.
    """
    env = alembic_dir / "env.py"
    if not env.is_file():
        return False
    try:
        tree = pyast.parse(env.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return False
    return any(
        isinstance(node, pyast.Constant)
        and isinstance(node.value, str)
        and _FOREIGN_KEYS_OFF.search(node.value.lower()) is not None
        for node in pyast.walk(tree)
    )


def _config(env_dir: Path, versions: Path, output: io.StringIO) -> Config:
    config = Config()
    config.set_main_option("script_location", _escaped(env_dir))
    config.set_main_option("version_locations", _escaped(versions))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", _OFFLINE_URL)
    config.attributes["sparc_output"] = output
    return config


def _escaped(path: Path) -> str:
    return str(path).replace("%", "%%")


def _revisions_in_order(env_dir: Path, versions: Path) -> list[Script]:
    script = ScriptDirectory.from_config(_config(env_dir, versions, io.StringIO()))
    return list(reversed(list(script.walk_revisions())))


def _offline_sql(env_dir: Path, versions: Path, revision: Script) -> str:
    output = io.StringIO()
    previous = revision.down_revision
    target = (
        revision.revision if previous is None else f"{previous}:{revision.revision}"
    )
    command.upgrade(_config(env_dir, versions, output), target, sql=True)
    return output.getvalue()


def _lint_revision(
    revision: Script,
    env_dir: Path,
    versions: Path,
    where: str,
    spec: SchemaSpec,
    dialects: set[str],
    binary: Path | None,
    *,
    copies_unguarded: bool,
) -> tuple[SchemaSpec, list[Finding]]:
    source = _RevisionSource(Path(revision.path), where)
    if isinstance(revision.down_revision, tuple):
        log.warning("merge_revision_skipped", revision=revision.revision)
        return spec, []
    try:
        sql = _offline_sql(env_dir, versions, revision)
        statements = split_statements(sql)
    except Exception as error:
        # see lint_migrations: a broken revision becomes a finding
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        return spec, [
            make_finding(
                "HM002",
                f"revision {revision.revision} cannot be rendered offline: {message}",
                source.at(None),
            )
        ]

    source.locate(statements)
    after = _advance(spec, sql, revision.revision)
    findings: list[Finding] = []
    if binary is not None:
        findings.extend(_squawk(binary, sql, statements, source))
    findings.extend(
        _own_checks(
            statements, spec, after, dialects, source, copies_unguarded=copies_unguarded
        )
    )
    return after, [f for f in findings if not source.is_suppressed(f)]


def _advance(spec: SchemaSpec, sql: str, revision: str) -> SchemaSpec:
    """The schema after the revision, or the one before if it cannot be read."""
    try:
        return parse_sql(sql, source=f"revision {revision}", base=spec).spec
    except DDLError as error:
        log.warning("revision_schema_unknown", revision=revision, error=str(error))
        return spec


# -- where in the revision file ------------------------------------------------


class _RevisionSource:
    """Lines of a revision file: finds the operation behind a statement."""

    def __init__(self, path: Path, display: str) -> None:
        self.display = display
        text = path.read_text(encoding="utf-8")
        self.lines = text.split("\n")
        self.suppressed = python_suppressions(text)
        self.lines_of: dict[int, int] = {}
        self.first, self.last = 1, len(self.lines)
        try:
            tree = pyast.parse(text)
        except SyntaxError:
            return
        for node in tree.body:
            if isinstance(node, pyast.FunctionDef) and node.name == "upgrade":
                self.first, self.last = node.lineno, node.end_lineno or node.lineno

    def at(self, line: int | None) -> str:
        return f"{self.display}:{line or self.first}"

    def locate(self, statements: Sequence[Statement]) -> None:
        """Find each statement's operation, walking the file in step with them.

        Operations run in source order, so each search starts at the line of
        the previous statement: a name also used by an earlier operation (a
        column indexed, then altered) is found at its later use.
        """
        cursor = self.first
        for statement in statements:
            table, names = _statement_names(statement.node)
            line = self._line_for(table, names, cursor)
            self.lines_of[statement.start] = line
            cursor = line

    def _line_for(self, table: str | None, names: Sequence[str], cursor: int) -> int:
        for name in names:
            for origin in (cursor + 1, cursor, self.first):
                found = self._find(name, origin)
                if found is not None:
                    return found
        if table:
            for origin in (cursor, self.first):
                found = self._find(table, origin)
                if found is not None:
                    return found
        return cursor

    def statement_at(self, statement: Statement) -> str:
        return self.at(self.lines_of.get(statement.start))

    def uses_batch(self, table: str) -> bool:
        """Whether upgrade() opens batch_alter_table for `table`."""
        pattern = re.compile(rf"""batch_alter_table\(\s*["']{re.escape(table)}["']""")
        body = "\n".join(self.lines[self.first - 1 : self.last])
        return pattern.search(body) is not None

    def _find(self, name: str, origin: int) -> int | None:
        quoted = (f'"{name}"', f"'{name}'")
        for number in range(origin, self.last + 1):
            line = self.lines[number - 1]
            if any(q in line for q in quoted):
                return number
        return None

    def is_suppressed(self, finding: Finding) -> bool:
        line = int(finding.location.rsplit(":", 1)[1])
        return finding.code in self.suppressed.get(line, frozenset())


def _statement_names(node: Any) -> tuple[str | None, list[str]]:
    """The table a statement works on and its more specific object names."""
    table: str | None = None
    names: list[str] = []
    if isinstance(node, ast.IndexStmt):
        table = node.relation.relname
        names = [node.idxname] if node.idxname else []
    elif isinstance(node, ast.AlterTableStmt):
        table = node.relation.relname
        for command_node in node.cmds or ():
            definition = command_node.def_
            if isinstance(definition, ast.Constraint) and definition.conname:
                names.append(definition.conname)
            if isinstance(definition, ast.ColumnDef):
                names.append(definition.colname)
            if command_node.name:
                names.append(command_node.name)
    elif isinstance(node, ast.RenameStmt):
        table = node.relation.relname if node.relation else None
        names = [n for n in (node.subname, node.newname) if n]
    elif isinstance(node, ast.DropStmt):
        for item in node.objects or ():
            parts = item if isinstance(item, tuple) else (item,)
            names.extend(p.sval for p in parts if isinstance(p, ast.String))
        names = names[-1:]
    elif isinstance(node, ast.CreateStmt):
        table = node.relation.relname
    return table, names


def _located(statement: Statement, source: _RevisionSource) -> str:
    return source.statement_at(statement)


def _snippet(statement: Statement) -> str:
    text = " ".join(statement.text.split())
    if len(text) > _SNIPPET_LENGTH:
        return text[: _SNIPPET_LENGTH - 3] + "..."
    return text


def _is_bookkeeping(statement: Statement) -> bool:
    return _VERSION_TABLE in statement.text


# -- squawk --------------------------------------------------------------------


def _squawk(
    binary: Path, sql: str, statements: list[Statement], source: _RevisionSource
) -> list[Finding]:
    try:
        completed = subprocess.run(
            [
                str(binary),
                "--reporter",
                "json",
                "--pg-version",
                SQUAWK_PG_VERSION,
                "--exclude",
                ",".join(SQUAWK_EXCLUDED),
                "--stdin-filepath",
                source.display,
            ],
            input=sql,
            capture_output=True,
            text=True,
            timeout=SQUAWK_TIMEOUT_SECONDS,
            check=False,
        )
        reports = json.loads(completed.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as error:
        return [_squawk_failed(source, str(error))]
    if completed.returncode not in (0, 1) or not isinstance(reports, list):
        return [_squawk_failed(source, completed.stderr.strip() or "no output")]

    findings: list[Finding] = []
    for report in reports:
        statement = _statement_at(statements, int(report.get("line", 0)) + 1)
        if statement is not None and _is_bookkeeping(statement):
            continue
        name = str(report.get("rule_name", "unknown"))
        if name == _NOT_VALID_RULE and _adds_key(statement):
            # PostgreSQL has no NOT VALID for UNIQUE and PRIMARY KEY; squawk's
            # own unique-constraint rule already gives the right advice
            continue
        rule = SQUAWK_BY_NAME.get(name)
        snippet = f": {_snippet(statement)}" if statement else ""
        help_text = report.get("help")
        findings.append(
            make_finding(
                rule.code if rule else UNKNOWN_SQUAWK_CODE,
                f"squawk {name}: {report.get('message', '')}{snippet}",
                _located(statement, source) if statement else source.at(None),
                hint=str(help_text) if help_text else None,
            )
        )
    return findings


_NOT_VALID_RULE = "constraint-missing-not-valid"


def _adds_key(statement: Statement | None) -> bool:
    """Whether the statement only adds UNIQUE or PRIMARY KEY constraints."""
    if statement is None or not isinstance(statement.node, ast.AlterTableStmt):
        return False
    added = [
        command.def_
        for command in statement.node.cmds or ()
        if isinstance(command, ast.AlterTableCmd)
        and command.subtype == AlterTableType.AT_AddConstraint
    ]
    return bool(added) and all(
        isinstance(constraint, ast.Constraint)
        and constraint.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY)
        for constraint in added
    )


def _squawk_failed(source: _RevisionSource, reason: str) -> Finding:
    first_line = reason.splitlines()[0] if reason else "unknown error"
    return make_finding(
        "HM003", f"squawk failed on this revision: {first_line}", source.at(None)
    )


def _statement_at(statements: list[Statement], line: int) -> Statement | None:
    for statement in statements:
        if statement.first_line <= line <= statement.last_line:
            return statement
    return None


# -- checks squawk lacks -------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    """One ALTER TABLE command of a revision, with its statement."""

    statement: Statement
    table: str
    command: ast.AlterTableCmd


def _changes(statements: list[Statement]) -> Iterator[_Change]:
    for statement in statements:
        node = statement.node
        if isinstance(node, ast.AlterTableStmt) and node.relation is not None:
            for command_node in node.cmds or ():
                yield _Change(statement, node.relation.relname, command_node)


def _own_checks(
    statements: list[Statement],
    before: SchemaSpec,
    after: SchemaSpec,
    dialects: set[str],
    source: _RevisionSource,
    *,
    copies_unguarded: bool = True,
) -> list[Finding]:
    created = {
        s.node.relation.relname
        for s in statements
        if isinstance(s.node, ast.CreateStmt)
    }
    changes = [c for c in _changes(statements) if not _is_bookkeeping(c.statement)]
    findings: list[Finding] = []
    findings.extend(_dropped_view_columns(changes, before, source))
    findings.extend(_narrowed_types(changes, before, created, source))
    if "sqlite" in dialects:
        findings.extend(
            _sqlite_checks(
                changes,
                before,
                after,
                created,
                source,
                copies_unguarded=copies_unguarded,
            )
        )
    if dialects & {"mariadb", "mysql"}:
        findings.extend(_mariadb_checks(changes, before, created, source))
    return findings


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _walk(getattr(node, attribute))


def _view_uses(create_sql: str, table: str, column: str) -> bool:
    try:
        nodes = list(_walk([raw.stmt for raw in pglast.parse_sql(create_sql)]))
    except pglast.parser.ParseError:
        return False
    tables = {n.relname for n in nodes if isinstance(n, ast.RangeVar)}
    if table not in tables:
        return False
    for node in nodes:
        if isinstance(node, ast.ColumnRef):
            last = node.fields[-1]
            if isinstance(last, ast.A_Star):
                return True
            if isinstance(last, ast.String) and last.sval == column:
                return True
    return False


def _dropped_view_columns(
    changes: list[_Change], before: SchemaSpec, source: _RevisionSource
) -> Iterator[Finding]:
    views = [o for o in before.objects if o.kind in ("view", "materialized_view")]
    for change in changes:
        if change.command.subtype != AlterTableType.AT_DropColumn:
            continue
        column = change.command.name
        users = [v.name for v in views if _view_uses(v.create, change.table, column)]
        if users:
            yield make_finding(
                "HM011",
                f"dropping {change.table}.{column}, which view {', '.join(users)} "
                f"uses: {_snippet(change.statement)}",
                _located(change.statement, source),
            )


def _narrowing(old: ColumnType, new: ColumnType) -> str | None:
    strings = old.kind in ("varchar", "char", "text") and new.kind in (
        "varchar",
        "char",
    )
    if (
        strings
        and new.length is not None
        and (old.length is None or new.length < old.length)
    ):
        return f"length {old.length or 'unbounded'} -> {new.length}"
    if old.kind == "numeric" and new.kind == "numeric":
        if new.precision is not None and (
            old.precision is None or new.precision < old.precision
        ):
            return f"precision {old.precision or 'unbounded'} -> {new.precision}"
        if (old.scale or 0) > (new.scale or 0):
            return f"scale {old.scale} -> {new.scale or 0}"
    for ranks in (_INTEGER_RANK, _FLOAT_RANK):
        if (
            old.kind in ranks
            and new.kind in ranks
            and ranks[new.kind] < ranks[old.kind]
        ):
            return f"{old.kind} -> {new.kind}"
    return None


def _column_types(
    change: _Change, before: SchemaSpec
) -> tuple[ColumnType, ColumnType] | None:
    """The column's type before the revision and the type this ALTER sets."""
    table = before.table(change.table)
    old = table.column(change.command.name) if table and change.command.name else None
    definition = change.command.def_
    if old is None or not isinstance(definition, ast.ColumnDef):
        return None
    spelled = RawStream()(definition.typeName)
    try:
        probe = parse_sql(f"CREATE TABLE _sparc_probe (c {spelled});", source="type")
    except DDLError:
        return None
    return old.type, probe.spec.tables[0].columns[0].type


def _narrowed_types(
    changes: list[_Change],
    before: SchemaSpec,
    created: set[str],
    source: _RevisionSource,
) -> Iterator[Finding]:
    for change in changes:
        if (
            change.command.subtype != AlterTableType.AT_AlterColumnType
            or change.table in created
        ):
            continue
        types = _column_types(change, before)
        narrowed = _narrowing(*types) if types else None
        if narrowed:
            yield make_finding(
                "HM020",
                f"{change.table}.{change.command.name} narrows ({narrowed}): "
                f"{_snippet(change.statement)}",
                _located(change.statement, source),
            )


def _is_constant(expression: Any) -> bool:
    if isinstance(expression, ast.TypeCast):
        return _is_constant(expression.arg)
    if isinstance(expression, ast.A_Expr) and expression.lexpr is None:
        return _is_constant(expression.rexpr)
    return isinstance(expression, ast.A_Const)


def _added_column(change: _Change) -> ast.ColumnDef | None:
    if change.command.subtype == AlterTableType.AT_AddColumn:
        definition = change.command.def_
        if isinstance(definition, ast.ColumnDef):
            return definition
    return None


def _constraint_types(column: ast.ColumnDef) -> dict[int, ast.Constraint]:
    return {c.contype: c for c in column.constraints or ()}


def _sqlite_checks(
    changes: list[_Change],
    before: SchemaSpec,
    after: SchemaSpec,
    created: set[str],
    source: _RevisionSource,
    *,
    copies_unguarded: bool,
) -> Iterator[Finding]:
    copied: dict[str, _Change] = {}
    for change in changes:
        column = _added_column(change)
        if column is not None:
            constraints = _constraint_types(column)
            default = constraints.get(ConstrType.CONSTR_DEFAULT)
            generated = {ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED}
            if (
                ConstrType.CONSTR_NOTNULL in constraints
                and default is None
                and not generated & constraints.keys()
            ):
                yield make_finding(
                    "HM012",
                    f"{change.table}.{column.colname} is added NOT NULL without a "
                    f"default: {_snippet(change.statement)}",
                    _located(change.statement, source),
                )
            in_batch = source.uses_batch(change.table)
            if default is not None and not _is_constant(default.raw_expr):
                if in_batch:
                    copied.setdefault(change.table, change)
                else:
                    yield make_finding(
                        "HM013",
                        f"{change.table}.{column.colname} is added with a "
                        f"non-constant default outside batch mode: "
                        f"{_snippet(change.statement)}",
                        _located(change.statement, source),
                    )
        elif change.command.subtype in _SQLITE_COPIES or (
            change.command.subtype == AlterTableType.AT_DropColumn
            and source.uses_batch(change.table)
        ):
            copied.setdefault(change.table, change)

    for table, change in copied.items():
        if table in created or not copies_unguarded:
            continue
        referencing = sorted(
            {
                other.name
                for spec in (before, after)
                for other in spec.tables
                if other.name != table
                and any(fk.ref_table == table for fk in other.foreign_keys)
            }
        )
        if referencing:
            yield make_finding(
                "HM010",
                f"on SQLite this copies table {table}, which "
                f"{', '.join(referencing)} reference by foreign key: "
                f"{_snippet(change.statement)}",
                _located(change.statement, source),
            )


def _mariadb_checks(
    changes: list[_Change],
    before: SchemaSpec,
    created: set[str],
    source: _RevisionSource,
) -> Iterator[Finding]:
    for change in changes:
        if change.table in created:
            continue
        subtype = change.command.subtype
        definition = change.command.def_
        location = _located(change.statement, source)
        if subtype == AlterTableType.AT_AlterColumnType:
            types = _column_types(change, before)
            if types is None or not _mariadb_inplace_widening(*types):
                yield make_finding(
                    "HM030",
                    f"{change.table}.{change.command.name} changes type, which "
                    f"MariaDB runs as a table copy: {_snippet(change.statement)}",
                    location,
                )
        elif (
            subtype == AlterTableType.AT_AddConstraint
            and isinstance(definition, ast.Constraint)
            and definition.contype == ConstrType.CONSTR_FOREIGN
        ):
            yield make_finding(
                "HM031",
                f"foreign key added to {change.table}, which MariaDB runs as a "
                f"table copy: {_snippet(change.statement)}",
                location,
            )
        elif subtype == AlterTableType.AT_DropConstraint:
            table = before.table(change.table)
            key = table.primary_key if table else None
            if key is not None and key.name and key.name == change.command.name:
                yield make_finding(
                    "HM032",
                    f"primary key of {change.table} dropped on its own, which "
                    f"MariaDB runs as a table copy: {_snippet(change.statement)}",
                    location,
                )


def _mariadb_inplace_widening(old: ColumnType, new: ColumnType) -> bool:
    if old.kind != "varchar" or new.kind != "varchar":
        return False
    if old.length is None or new.length is None or new.length < old.length:
        return False
    return (old.length <= _MARIADB_ONE_BYTE_CHARS) == (
        new.length <= _MARIADB_ONE_BYTE_CHARS
    )
