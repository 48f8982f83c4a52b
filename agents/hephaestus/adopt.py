"""Adopt a live PostgreSQL database: baseline models and a revision that rebuild it.

`adopt_database` reads the database only (every read runs in a READ ONLY
transaction), refuses what it cannot carry, reflects the public schema into a
SchemaSpec and forges it against the workspace's empty chain: models.py, the
baseline revision 001, and the seed and query scripts a data task gets. The
baseline is then proved on a scratch database created, and dropped again, on
a PostgreSQL server: upgrade, downgrade, upgrade, no drift from the models,
and the scratch catalog at head compared fact by fact with the source's.

Nothing is written here, to the workspace or to the database: the caller
writes the files. `stamp_database` is the one write, for a caller that was
asked to record the baseline in the adopted database's `alembic_version`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import structlog
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from sparc.agents.hephaestus.engine import QUERY_SCRIPT, SEED_SCRIPT, models_path
from sparc.agents.hephaestus.forge import ALEMBIC_DIR, forge
from sparc.agents.hephaestus.inputs import STACK_DOC, read_stack
from sparc.agents.hephaestus.models_render import load_metadata
from sparc.agents.hephaestus.reflect import (
    VERSION_TABLE,
    read_only_connection,
    reflect_database,
    uncarried_objects,
)
from sparc.agents.hephaestus.revision import RevisionInfo, next_revision_id
from sparc.agents.hephaestus.scripts import (
    render_performance_queries,
    render_seed_sql,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import alembic_config, scratch_database, verify_url
from sparc.errors import AdoptionError, DDLError, InputError, VerificationError

log = structlog.get_logger(__name__)

__all__ = [
    "ADOPT_TASK_ID",
    "Adoption",
    "CatalogComparison",
    "adopt_database",
    "catalog_facts",
    "compare_catalogs",
    "stamp_database",
]

ADOPT_TASK_ID = "ADOPT"
# what pgfacts-style "table scope" counts; the whole catalog adds the rest
TABLE_SCOPE = ("table", "column", "constraint", "index", "enum", "domain")
WHOLE_CATALOG = (*TABLE_SCOPE, "sequence", "view", "function", "trigger", "partition")
# how much of a differing definition an error message quotes
_SHOWN = 160

_OWN = """not exists (select 1 from pg_depend dep where dep.objid = {alias}.oid
              and dep.classid = '{catalog}'::regclass and dep.deptype = 'e')"""
_PUBLIC_RELATION = (
    "n.nspname = 'public' and c.relname <> 'alembic_version' and "
    + _OWN.format(alias="c", catalog="pg_class")
)
# one row per fact of the public schema: (kind, key, definition); extensions'
# own objects and Alembic's table are left out, partitions' copies of their
# parent's indexes, keys and triggers too (a partition's own keys, checks and
# indexes are facts)
_FACTS = f"""
select 'table', c.relname,
       concat_ws(' ', 'partitioned by ' || pg_get_partkeydef(c.oid),
                 'comment ' || obj_description(c.oid, 'pg_class'))
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where {_PUBLIC_RELATION} and c.relkind in ('r', 'p') and not c.relispartition
union all
select 'column', c.relname || '.' || a.attname,
       concat_ws(' ', format_type(a.atttypid, a.atttypmod),
                 case when a.attnotnull then 'not null' end,
                 'default ' || pg_get_expr(d.adbin, d.adrelid),
                 'identity ' || nullif(a.attidentity::text, ''),
                 'generated ' || nullif(a.attgenerated::text, ''),
                 case when a.attcollation <> t.typcollation
                      then 'collate ' || a.attcollation::regcollation::text end,
                 'comment ' || col_description(c.oid, a.attnum))
  from pg_attribute a join pg_class c on c.oid = a.attrelid
  join pg_namespace n on n.oid = c.relnamespace
  join pg_type t on t.oid = a.atttypid
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where {_PUBLIC_RELATION} and c.relkind in ('r', 'p') and not c.relispartition
   and a.attnum > 0 and not a.attisdropped
union all
select 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
  from pg_constraint k join pg_class c on c.oid = k.conrelid
  join pg_namespace n on n.oid = c.relnamespace
 where {_PUBLIC_RELATION}
   and (not c.relispartition or k.conislocal and k.conparentid = 0)
union all
select 'index', x.relname, pg_get_indexdef(i.indexrelid)
  from pg_index i join pg_class c on c.oid = i.indrelid
  join pg_class x on x.oid = i.indexrelid
  join pg_namespace n on n.oid = c.relnamespace
 where {_PUBLIC_RELATION}
   and not exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid)
   and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
                   and k.contype in ('p', 'u', 'x'))
union all
select 'enum', t.typname, string_agg(e.enumlabel, ', ' order by e.enumsortorder)
  from pg_type t join pg_enum e on e.enumtypid = t.oid
  join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = 'public' and {_OWN.format(alias="t", catalog="pg_type")}
 group by t.typname
union all
select 'domain', t.typname,
       concat_ws(' ', format_type(t.typbasetype, t.typtypmod),
                 case when t.typnotnull then 'not null' end,
                 'default ' || t.typdefault,
                 (select string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid),
                                    ', ' order by k.conname)
                    from pg_constraint k where k.contypid = t.oid))
  from pg_type t join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = 'public' and t.typtype = 'd'
   and {_OWN.format(alias="t", catalog="pg_type")}
union all
select 'sequence', c.relname,
       case when used.rel is null
            then concat_ws(' ', format_type(s.seqtypid, null), s.seqmin, s.seqmax)
            else 'numbers ' || used.rel::regclass::text || '.' || a.attname end
       || concat_ws(' ', '', 'start', s.seqstart, 'by', s.seqincrement,
                    'cache', s.seqcache, case when s.seqcycle then 'cycle' end)
  from pg_class c join pg_sequence s on s.seqrelid = c.oid
  join pg_namespace n on n.oid = c.relnamespace
  left join lateral (
    select d.refobjid, d.refobjsubid from pg_depend d
     where d.objid = c.oid and d.classid = 'pg_class'::regclass
       and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
    union all
    select f.adrelid, f.adnum from pg_depend d join pg_attrdef f on f.oid = d.objid
     where d.classid = 'pg_attrdef'::regclass and d.refobjid = c.oid
       and d.refclassid = 'pg_class'::regclass
    limit 1) as used(rel, col) on true
  left join pg_attribute a on a.attrelid = used.rel and a.attnum = used.col
 where {_PUBLIC_RELATION} and c.relkind = 'S'
union all
select 'view', c.relname, c.relkind::text || ' ' || pg_get_viewdef(c.oid)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where {_PUBLIC_RELATION} and c.relkind in ('v', 'm')
union all
select 'function', p.oid::regprocedure::text,
       case when p.prokind = 'a'
            then concat_ws(' ', a.aggtransfn, a.aggtranstype::regtype,
                           nullif(a.aggfinalfn::oid, 0)::regproc, a.agginitval)
            else pg_get_functiondef(p.oid) end
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  left join pg_aggregate a on a.aggfnoid = p.oid
 where n.nspname = 'public' and {_OWN.format(alias="p", catalog="pg_proc")}
union all
select 'trigger', c.relname || '.' || g.tgname, pg_get_triggerdef(g.oid)
  from pg_trigger g join pg_class c on c.oid = g.tgrelid
  join pg_namespace n on n.oid = c.relnamespace
 where {_PUBLIC_RELATION} and not g.tgisinternal and g.tgparentid = 0
union all
select 'partition', c.relname,
       i.inhparent::regclass::text || ' ' || pg_get_expr(c.relpartbound, c.oid)
  from pg_class c join pg_inherits i on i.inhrelid = c.oid
  join pg_namespace n on n.oid = c.relnamespace
 where {_PUBLIC_RELATION} and c.relispartition and c.relkind in ('r', 'p')
"""
_SESSION = (
    # names print without schema, time-zoned bounds in UTC, in both databases
    "SET LOCAL search_path TO public",
    "SET LOCAL TimeZone TO 'UTC'",
)
# "line 7: t: a DEFERRABLE UNIQUE is not supported; line 9: ..."
_REFUSED = re.compile(r"line \d+: (.*?)(?=; line \d+: |$)", re.DOTALL)
_VERSIONS = "select version_num from alembic_version order by version_num"


@dataclass(frozen=True)
class CatalogComparison:
    """How much of the source's catalog a rebuilt database holds, by kind.

    `counts` maps each kind to (facts kept, facts in the source); `lost` names
    facts of the source the rebuilt database lacks or defines otherwise,
    `unexpected` facts only the rebuilt database has.
    """

    counts: dict[str, tuple[int, int]]
    lost: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()

    def figure(self, kinds: Iterable[str]) -> tuple[int, int]:
        """(kept, total) over `kinds`."""
        pairs = [self.counts.get(kind, (0, 0)) for kind in kinds]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    @property
    def table_scope(self) -> tuple[int, int]:
        return self.figure(TABLE_SCOPE)

    @property
    def whole(self) -> tuple[int, int]:
        return self.figure(WHOLE_CATALOG)

    @property
    def identical(self) -> bool:
        return not self.lost and not self.unexpected


@dataclass(frozen=True)
class Adoption:
    """A proved baseline for a database, ready to be written into a workspace."""

    database: str
    title: str
    spec: SchemaSpec
    files: dict[str, str]
    revision: RevisionInfo
    comparison: CatalogComparison
    # the database's alembic_version rows; None when it has no such table
    versions: tuple[str, ...] | None
    report: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stamped(self) -> bool:
        """Whether the database already records exactly the baseline."""
        return self.versions == (self.revision.revision_id,)


def adopt_database(
    root: Path,
    url: str,
    *,
    project: str,
    task_id: str = ADOPT_TASK_ID,
    title: str | None = None,
    scratch_url: str | None = None,
    stamp: bool = False,
) -> Adoption:
    """Reflect the database at `url` into a proved baseline for the workspace.

    Args:
        root: the workspace; only read. It must have no models.py and no
            revision yet.
        url: the PostgreSQL database to adopt; only read.
        project: the package name under `src/`.
        task_id: quoted in the revision's docstring.
        title: the revision's title and file name slug; "Adopt database
            <name>" by default.
        scratch_url: a PostgreSQL server (any database on it) where a scratch
            database may be created and dropped; the adopted database's own
            server (its `postgres` database) when None.
        stamp: the caller means to stamp the database with the baseline; an
            `alembic_version` that records another revision is then refused.

    Returns:
        The files to write, the baseline revision and the proof.

    Raises:
        AdoptionError: the workspace already has a schema, the database holds
            objects sparc cannot carry, or the rebuilt catalog differs from the
            source (each reason listed).
        InputError: the URL is not PostgreSQL or cannot be reached.
        VerificationError: the baseline failed on a scratch database.
    """
    _refuse_prisma_workspace(root)
    _refuse_existing_schema(root, project)
    source = _postgresql_url(url)
    shown = source.render_as_string(hide_password=True)

    with read_only_connection(source.render_as_string(hide_password=False)) as read:
        uncarried = uncarried_objects(read)
        if uncarried:
            raise AdoptionError(
                f"database {source.database} holds {len(uncarried)} object(s) sparc "
                "cannot carry into models and revisions, so nothing was written; "
                "drop or move them (for example adopt a copy without them), then "
                "run sparc db adopt again",
                reasons=uncarried,
            )
        versions = _versions(read)
        if stamp:
            _refuse_other_chain(str(source.database), versions)
        source_facts = catalog_facts(read)
    try:
        spec = reflect_database(source.render_as_string(hide_password=False))
    except DDLError as error:
        raise AdoptionError(
            f"database {source.database} holds definitions sparc cannot carry into "
            "models and revisions, so nothing was written; drop or change them "
            "(for example adopt a copy without them), then run sparc db adopt again",
            reasons=_refusals(error),
        ) from error
    if not spec.tables:
        raise AdoptionError(
            f"database {source.database} has no table in its public schema: there "
            "is nothing to adopt; start the schema with a data task instead"
        )

    title = title or f"Adopt database {source.database}"
    forged = forge(root, project=project, task_id=task_id, title=title, spec=spec)
    revision = forged.revision
    assert revision is not None, "a schema with tables always makes a revision"

    files = dict(forged.files)
    files[SEED_SCRIPT] = render_seed_sql(spec)
    files[QUERY_SCRIPT] = render_performance_queries(spec, [])
    admin = (
        _postgresql_url(scratch_url) if scratch_url else source.set(database="postgres")
    )
    try:
        steps, comparison = _prove(root, files, source_facts, admin, project)
    except VerificationError as error:
        if error.step != "create scratch database":
            raise
        raise VerificationError(
            f"{error.__cause__}; name a server where sparc may create databases "
            "with --scratch-url or `verify: {postgresql: URL}` in .sparc/config.yaml",
            step=error.step,
            dialect=error.dialect,
        ) from error
    if not comparison.identical:
        raise AdoptionError(
            f"the baseline rebuilds database {source.database} with "
            f"{len(comparison.lost) + len(comparison.unexpected)} difference(s), so "
            "nothing was written; the objects named below are ones sparc cannot "
            "carry exactly: drop or change them, or adopt a copy without them",
            reasons=[*comparison.lost, *comparison.unexpected],
        )

    kept, total = comparison.whole
    report = (
        *forged.report,
        f"postgresql: {', '.join(steps)}: passed",
        f"postgresql: catalog rebuilt from empty matches the database: "
        f"{kept}/{total} facts",
    )
    log.info(
        "database_adopted",
        url=shown,
        revision=revision.file_name,
        tables=len(spec.tables),
        facts=total,
    )
    return Adoption(
        database=shown,
        title=title,
        spec=spec,
        files=files,
        revision=revision,
        comparison=comparison,
        versions=versions,
        report=report,
    )


def stamp_database(url: str, alembic_dir: Path, revision_id: str) -> None:
    """Record `revision_id` in the database's `alembic_version` table.

    This writes to the adopted database: the table is created when missing and
    its one row set to the revision. Nothing else is touched.

    Raises:
        InputError: the database cannot be reached.
        VerificationError: the revision is not in `alembic_dir`, or the write
            was refused.
    """
    source = _postgresql_url(url)
    script = ScriptDirectory.from_config(alembic_config(alembic_dir))
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            MigrationContext.configure(connection).stamp(script, revision_id)
    except sa.exc.OperationalError as error:
        raise InputError(
            f"cannot reach the database to stamp it ({error.orig}); check the URL",
            field="url",
        ) from error
    except Exception as error:
        raise VerificationError(
            f"{type(error).__name__}: {error}", step="stamp", dialect="postgresql"
        ) from error
    finally:
        engine.dispose()
    log.info(
        "database_stamped",
        url=source.render_as_string(hide_password=True),
        revision=revision_id,
    )


def catalog_facts(connection: sa.Connection) -> frozenset[tuple[str, str, str]]:
    """The public schema's facts as (kind, key, definition), in the connection's
    transaction.

    Kinds: table, column, constraint, index, enum, domain, sequence, view,
    function, trigger, partition. Alembic's `alembic_version` and objects an
    extension made are left out. A sequence that numbers a column (owned by
    it or named in its default) is described by that column, its start, step
    and cache: rebuilt, it is the column's own serial sequence, whose value
    type and bounds follow the column.
    """
    for statement in _SESSION:
        connection.exec_driver_sql(statement)
    rows = connection.exec_driver_sql(_FACTS).all()
    return frozenset((kind, key, value or "") for kind, key, value in rows)


def compare_catalogs(
    reference: frozenset[tuple[str, str, str]],
    candidate: frozenset[tuple[str, str, str]],
) -> CatalogComparison:
    """How many of `reference`'s facts `candidate` holds, and which it does not."""
    totals = Counter(kind for kind, _, _ in reference)
    kept = Counter(kind for kind, _, _ in reference & candidate)
    theirs = {(kind, key): value for kind, key, value in candidate}
    ours = {(kind, key): value for kind, key, value in reference}

    lost = []
    for kind, key, value in sorted(reference - candidate):
        other = theirs.get((kind, key))
        if other is None:
            lost.append(f"{kind} {key}: missing after the baseline")
        else:
            lost.append(
                f"{kind} {key}: {_short(value)!r} in the database, "
                f"{_short(other)!r} after the baseline"
            )
    unexpected = [
        f"{kind} {key}: made by the baseline, not in the database"
        for kind, key, _ in sorted(candidate - reference)
        if (kind, key) not in ours
    ]
    return CatalogComparison(
        counts={kind: (kept[kind], total) for kind, total in sorted(totals.items())},
        lost=tuple(lost),
        unexpected=tuple(unexpected),
    )


def _refusals(error: DDLError) -> list[str]:
    """The DDL reader's refusals, without the lines of the catalog's script."""
    found = _REFUSED.findall(error.message)
    return [reason.strip() for reason in found] or [error.message]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _refuse_prisma_workspace(root: Path) -> None:
    """A Prisma workspace's next task would not read an Alembic baseline."""
    stack = read_stack(root)
    if stack.orm != "prisma":
        return
    raise InputError(
        "this workspace uses Prisma; adopt writes SQLAlchemy models and an "
        "Alembic baseline, which its Prisma tasks do not build on, so nothing "
        "was written. Adopt into a workspace whose stack decision chooses "
        "SQLAlchemy, or describe the existing schema to a Prisma data task as DDL",
        path=STACK_DOC,
        line=stack.orm_line,
    )


def _refuse_existing_schema(root: Path, project: str) -> None:
    found = []
    if (root / models_path(project)).is_file():
        found.append(models_path(project))
    versions = root / ALEMBIC_DIR / "versions"
    if versions.is_dir():
        found.extend(
            f"{ALEMBIC_DIR}/versions/{p.name}" for p in sorted(versions.glob("*.py"))
        )
    if found:
        raise AdoptionError(
            "the workspace already has a schema, so nothing was adopted: sparc db "
            "adopt gives an empty workspace its baseline. Adopt into a new "
            "workspace (sparc init FOLDER), or describe further changes to this "
            "one as data tasks",
            reasons=found,
        )


def _refuse_other_chain(database: str, versions: tuple[str, ...] | None) -> None:
    baseline = next_revision_id(None)
    if versions and versions != (baseline,):
        raise AdoptionError(
            f"database {database} is already stamped by another Alembic chain, so "
            "--stamp would lose that record; nothing was written. Adopt without "
            f"--stamp, then run `alembic stamp --purge {baseline}` yourself once the "
            "old chain is retired",
            reasons=[f"alembic_version holds {v}" for v in versions],
        )


def _postgresql_url(url: str) -> sa.URL:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as error:
        raise InputError(f"{error}; give a PostgreSQL URL", field="url") from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "postgresql":
        raise InputError(
            f"sparc db adopt reads PostgreSQL, not {parsed.get_backend_name()}; "
            "give a postgresql:// URL",
            field="url",
        )
    if not parsed.database:
        raise InputError(
            "the URL names no database; give postgresql://USER@HOST/DATABASE",
            field="url",
        )
    return parsed


def _versions(connection: sa.Connection) -> tuple[str, ...] | None:
    found = connection.exec_driver_sql(
        f"select to_regclass('public.{VERSION_TABLE}') is not null"
    ).scalar()
    if not found:
        return None
    return tuple(row[0] for row in connection.exec_driver_sql(_VERSIONS).all())


def _prove(
    workspace: Path,
    files: dict[str, str],
    source_facts: frozenset[tuple[str, str, str]],
    admin: sa.URL,
    project: str,
) -> tuple[tuple[str, ...], CatalogComparison]:
    """Run the baseline on a scratch database and compare it with the source."""
    with tempfile.TemporaryDirectory(prefix="sparc-adopt-") as folder:
        root = Path(folder)
        # the workspace's own alembic.ini and env.py, with the new files over them
        if (workspace / ALEMBIC_DIR).is_dir():
            shutil.copytree(
                workspace / ALEMBIC_DIR,
                root / ALEMBIC_DIR,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        for relative, text in files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        models = root / models_path(project)
        # the models import on their own, mappers configured (load_metadata)
        load_metadata(models)

        with scratch_database(admin.render_as_string(hide_password=False)) as scratch:
            report = verify_url(scratch, root / ALEMBIC_DIR, models)
            with _transaction(scratch) as connection:
                rebuilt = catalog_facts(connection)
    return ("models import", *report.steps), compare_catalogs(source_facts, rebuilt)


@contextmanager
def _transaction(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            try:
                yield connection
            finally:
                connection.rollback()
    finally:
        engine.dispose()
