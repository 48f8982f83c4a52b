"""Read a live database into a SchemaSpec, to adopt an existing database.

PostgreSQL is read from its catalog inside a read-only transaction. The
catalog's own definitions (`format_type`, `pg_get_expr`,
`pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_viewdef`,
`pg_get_functiondef`, `pg_get_triggerdef`, the partition bounds) are put
together as one DDL script and applied with the DDL reader, so a database and
the DDL that built it are described the same way: serial columns are folded
from their sequences, names keep their case, expressions are PostgreSQL's.
SQLAlchemy's inspector has no words for enums' order, domains, index
predicates and methods, INCLUDE columns, identity, deferrable keys or
partitions, which is why the catalog is read directly.

SQLite and MariaDB are read through SQLAlchemy's inspector: tables, columns,
keys, unique constraints, checks and indexes.

Objects an extension made come back with its CREATE EXTENSION and are not
read one by one; Alembic's `alembic_version` table is bookkeeping, not schema,
and is left out. Views, functions and aggregates are ordered so that each comes
after what it uses. `uncarried_objects` lists what the catalog holds that
reflection does not carry, so a caller can refuse instead of losing it.

Nothing is written: PostgreSQL and MariaDB run the reads in a transaction
declared READ ONLY, and SQLite's connection is rolled back.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Inspector

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.spec import (
    CheckConstraint,
    Column,
    ColumnType,
    EnumType,
    ForeignKey,
    Index,
    IndexElement,
    PrimaryKey,
    SchemaSpec,
    Table,
    UniqueConstraint,
)
from sparc.errors import InputError

log = structlog.get_logger(__name__)

__all__ = [
    "VERSION_TABLE",
    "catalog_ddl",
    "read_only_connection",
    "reflect_database",
    "spec_differences",
    "uncarried_objects",
]

# Alembic's bookkeeping table: never part of a reflected schema
VERSION_TABLE = "alembic_version"

_PG_SETUP = (
    "SET TRANSACTION READ ONLY",
    # types, defaults and bounds print without schema and in UTC
    "SET LOCAL search_path TO public",
    "SET LOCAL TimeZone TO 'UTC'",
)


def _own(alias: str, catalog: str = "pg_class") -> str:
    """SQL: the object `alias` was not made by an extension (which makes it again)."""
    return (
        f"not exists (select 1 from pg_depend e where e.objid = {alias}.oid "
        f"and e.classid = '{catalog}'::regclass and e.deptype = 'e')"
    )


_ENUMS = f"""
select t.typname, array_agg(e.enumlabel order by e.enumsortorder)
  from pg_type t join pg_enum e on e.enumtypid = t.oid
  join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = 'public' and {_own("t", "pg_type")}
 group by t.oid, t.typname order by t.oid
"""
_DOMAINS = f"""
select t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
       t.typdefault,
       coalesce((select array_agg(c.conname || ' ' || pg_get_constraintdef(c.oid)
                                  order by c.conname)
                   from pg_constraint c where c.contypid = t.oid), '{{}}')
  from pg_type t join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = 'public' and t.typtype = 'd' and {_own("t", "pg_type")}
 order by t.oid
"""
_EXTENSIONS = """
select e.extname from pg_extension e where e.extname <> 'plpgsql' order by e.extname
"""
_SEQUENCES = f"""
select c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement,
       s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       (select t.relname || '.' || a.attname
          from pg_depend d join pg_class t on t.oid = d.refobjid
          join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
         where d.objid = c.oid and d.classid = 'pg_class'::regclass
           and d.deptype = 'a')
  from pg_class c join pg_sequence s on s.seqrelid = c.oid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind = 'S' and {_own("c")}
   and not exists (select 1 from pg_depend d where d.objid = c.oid
                   and d.classid = 'pg_class'::regclass and d.deptype = 'i')
 order by c.relname
"""
_TABLES = f"""
select c.oid, c.relname, c.relkind = 'p', pg_get_partkeydef(c.oid),
       obj_description(c.oid, 'pg_class')
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
   and {_own("c")}
 order by c.oid
"""
# an identity column's sequence is tied to it by an internal ('i') dependency
_COLUMNS = """
select a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       col_description(a.attrelid, a.attnum), a.attcollation <> t.typcollation,
       q.relname, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
       s.seqcycle
  from pg_attribute a join pg_type t on t.oid = a.atttypid
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
  left join pg_depend i on a.attidentity <> ''
        and i.refclassid = 'pg_class'::regclass and i.refobjid = a.attrelid
        and i.refobjsubid = a.attnum and i.classid = 'pg_class'::regclass
        and i.deptype = 'i'
  left join pg_sequence s on s.seqrelid = i.objid
  left join pg_class q on q.oid = s.seqrelid
 where a.attrelid = any(:tables) and a.attnum > 0 and not a.attisdropped
 order by a.attrelid, a.attnum
"""
_PARTITIONS = """
select c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid)
  from pg_class c join pg_inherits i on i.inhrelid = c.oid
  join pg_class p on p.oid = i.inhparent
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relispartition and c.relkind in ('r', 'p')
 order by c.oid
"""
# a partition's own constraints, not the copies of its parent's (conparentid)
_CONSTRAINTS = f"""
select c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
  from pg_constraint k join pg_class c on c.oid = k.conrelid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and k.conislocal and k.conparentid = 0
   and k.contype in ('p', 'u', 'c', 'f', 'x') and {_own("c")}
 order by k.contype = 'f', c.oid, k.contype, k.conname
"""
# a partition's own indexes, not the copies of its parent's: those are
# attached to the parent's index (pg_inherits)
_INDEXES = f"""
select pg_get_indexdef(i.indexrelid)
  from pg_index i join pg_class c on c.oid = i.indrelid
  join pg_class x on x.oid = i.indexrelid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'p', 'm')
   and not exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid)
   and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
                   and k.contype in ('p', 'u', 'x'))
   and {_own("c")}
 order by c.oid, x.relname
"""
_VIEWS = f"""
select c.oid, c.relname, c.relkind, pg_get_viewdef(c.oid)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('v', 'm') and {_own("c")}
 order by c.oid
"""
_NOT_IN_EXTENSION = _own("p", "pg_proc")
_FUNCTIONS = f"""
select p.oid, pg_get_functiondef(p.oid)
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind in ('f', 'p') and {_NOT_IN_EXTENSION}
 order by p.oid
"""
_AGGREGATES = f"""
select p.oid, p.proname, pg_get_function_identity_arguments(p.oid),
       a.aggtransfn::regproc::text, format_type(a.aggtranstype, null),
       nullif(a.aggfinalfn::oid, 0)::regproc::text, a.agginitval
  from pg_proc p join pg_aggregate a on a.aggfnoid = p.oid
  join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind = 'a' and {_NOT_IN_EXTENSION}
 order by p.oid
"""
# what views and routines use: a view's rule names the relations, row types
# and functions it reads; a routine names its argument and result types
_OBJECT_DEPENDENCIES = """
select case when d.classid = 'pg_rewrite'::regclass then 'class' else 'proc' end,
       case when d.classid = 'pg_rewrite'::regclass then r.ev_class
            else d.objid end,
       case when d.refclassid = 'pg_proc'::regclass then 'proc' else 'class' end,
       case when d.refclassid = 'pg_type'::regclass then t.typrelid
            else d.refobjid end
  from pg_depend d
  left join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and r.oid = d.objid
  left join pg_type t on d.refclassid = 'pg_type'::regclass and t.oid = d.refobjid
 where d.classid in ('pg_rewrite'::regclass, 'pg_proc'::regclass)
   and d.refclassid in ('pg_proc'::regclass, 'pg_class'::regclass,
                        'pg_type'::regclass)
   and d.deptype = 'n'
"""
_TRIGGERS = f"""
select pg_get_triggerdef(t.oid)
  from pg_trigger t join pg_class c on c.oid = t.tgrelid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and not t.tgisinternal and t.tgparentid = 0
   and {_own("c")}
 order by c.oid, t.tgname
"""
_COMMENTS = f"""
select c.relname, c.relkind, obj_description(c.oid, 'pg_class')
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('v', 'm')
   and obj_description(c.oid, 'pg_class') is not null and {_own("c")}
 order by c.oid
"""


# schemas other than public that hold users' objects
_ELSEWHERE = "n.nspname not in ('public', 'information_schema') and n.nspname !~ '^pg_'"
# what the catalog holds that reflection leaves out, one row per object with
# the reason; pg_identify_object names each the same way
_UNCARRIED = f"""
with found(classid, objid, subid, reason) as (
  select 'pg_class'::regclass::oid, c.oid, 0, 'outside the public schema'
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where {_ELSEWHERE} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S', 'c')
     and {_own("c")}
     and not exists (select 1 from pg_depend o where o.objid = c.oid
                     and o.classid = 'pg_class'::regclass and o.deptype in ('a', 'i')
                     and c.relkind = 'S')
  union all
  select 'pg_proc'::regclass::oid, p.oid, 0, 'outside the public schema'
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where {_ELSEWHERE} and {_own("p", "pg_proc")}
  union all
  select 'pg_type'::regclass::oid, t.oid, 0, 'outside the public schema'
    from pg_type t join pg_namespace n on n.oid = t.typnamespace
   where {_ELSEWHERE} and t.typtype in ('e', 'd', 'r', 'b') and t.typcategory <> 'A'
     and {_own("t", "pg_type")}
  union all
  select 'pg_class'::regclass::oid, c.oid, 0,
         case c.relkind when 'f' then 'a foreign table' else 'a composite type' end
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind in ('f', 'c') and {_own("c")}
  union all
  select 'pg_type'::regclass::oid, t.oid, 0,
         case t.typtype when 'r' then 'a range type' else 'a base type' end
    from pg_type t join pg_namespace n on n.oid = t.typnamespace
   where n.nspname = 'public' and t.typtype in ('r', 'b') and t.typcategory <> 'A'
     and {_own("t", "pg_type")}
  union all
  select 'pg_class'::regclass::oid, c.oid, 0, reason
    from pg_class c join pg_namespace n on n.oid = c.relnamespace,
         lateral (values
           (case when c.relpersistence = 'u' then 'unlogged' end),
           (case when c.relrowsecurity then 'row level security is enabled' end),
           (case when c.reloptions is not null
                 then 'storage parameters ' || array_to_string(c.reloptions, ', ')
            end)) as r(reason)
   where n.nspname = 'public' and c.relkind in ('r', 'p', 'm') and {_own("c")}
     and reason is not null
  union all
  select 'pg_class'::regclass::oid, c.oid, 0,
         'inherits from ' || i.inhparent::regclass::text
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and not c.relispartition and {_own("c")}
  union all
  select 'pg_class'::regclass::oid, c.oid, a.attnum,
         'collation ' || quote_ident(k.collname)
    from pg_attribute a join pg_type t on t.oid = a.atttypid
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_collation k on k.oid = a.attcollation
   where n.nspname = 'public' and c.relkind in ('r', 'p') and a.attnum > 0
     and not a.attisdropped and a.attcollation <> t.typcollation and {_own("c")}
  union all
  select 'pg_policy'::regclass::oid, y.oid, 0, 'a row security policy'
    from pg_policy y join pg_class c on c.oid = y.polrelid
    join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public'
  union all
  select 'pg_rewrite'::regclass::oid, w.oid, 0, 'a rule'
    from pg_rewrite w join pg_class c on c.oid = w.ev_class
    join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and w.rulename <> '_RETURN' and {_own("c")}
  union all
  select 'pg_statistic_ext'::regclass::oid, x.oid, 0, 'extended statistics'
    from pg_statistic_ext x join pg_namespace n on n.oid = x.stxnamespace
   where n.nspname = 'public'
  union all
  select 'pg_proc'::regclass::oid, p.oid, 0, 'a window function'
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and p.prokind = 'w' and {_own("p", "pg_proc")}
  union all
  select 'pg_operator'::regclass::oid, o.oid, 0, 'an operator'
    from pg_operator o join pg_namespace n on n.oid = o.oprnamespace
   where n.nspname = 'public' and {_own("o", "pg_operator")}
  union all
  select 'pg_collation'::regclass::oid, k.oid, 0, 'a collation'
    from pg_collation k join pg_namespace n on n.oid = k.collnamespace
   where n.nspname = 'public' and {_own("k", "pg_collation")}
  union all
  select 'pg_ts_config'::regclass::oid, s.oid, 0, 'a text search configuration'
    from pg_ts_config s join pg_namespace n on n.oid = s.cfgnamespace
   where n.nspname = 'public' and {_own("s", "pg_ts_config")}
  union all
  select 'pg_ts_dict'::regclass::oid, s.oid, 0, 'a text search dictionary'
    from pg_ts_dict s join pg_namespace n on n.oid = s.dictnamespace
   where n.nspname = 'public' and {_own("s", "pg_ts_dict")}
  union all
  select 'pg_event_trigger'::regclass::oid, v.oid, 0, 'an event trigger'
    from pg_event_trigger v where {_own("v", "pg_event_trigger")}
  union all
  select d.classoid, d.objoid, d.objsubid, 'a comment'
    from pg_description d,
         lateral pg_identify_object(d.classoid, d.objoid, d.objsubid) i
   where i.schema = 'public'
     and i.type not in ('table', 'table column', 'view', 'materialized view')
     and not exists (select 1 from pg_depend e where e.classid = d.classoid
                     and e.objid = d.objoid and e.deptype = 'e')
)
select i.type || ' ' || i.identity || ': ' || f.reason
  from found f, lateral pg_identify_object(f.classid, f.objid, f.subid) i
 order by 1
"""


def reflect_database(url: str) -> SchemaSpec:
    """Describe the live database at `url` as a SchemaSpec, reading only.

    Alembic's own `alembic_version` table is left out: it is bookkeeping that
    revisions make themselves, not part of the schema.

    Args:
        url: a SQLAlchemy URL (postgresql+psycopg://, sqlite:///, mysql+pymysql://);
            `postgresql://` is read with psycopg.

    Returns:
        The public schema (PostgreSQL) or the database's tables.

    Raises:
        InputError: the URL is for another database, the server cannot be
            reached, or the catalog holds something a SchemaSpec cannot carry.
    """
    with read_only_connection(url) as connection:
        engine = connection.engine
        if engine.dialect.name == "postgresql":
            spec = parse_sql(
                catalog_ddl(connection),
                source=f"catalog of database {engine.url.database}",
            ).spec
        else:
            spec = _inspected(connection)
    spec = spec.model_copy(
        update={"tables": [t for t in spec.tables if t.name != VERSION_TABLE]}
    )
    log.info(
        "database_reflected",
        url=engine.url.render_as_string(hide_password=True),
        tables=len(spec.tables),
        objects=len(spec.objects),
    )
    return spec


@contextmanager
def read_only_connection(url: str) -> Iterator[Connection]:
    """A connection to `url` whose reads run in a transaction that writes nothing.

    PostgreSQL and MariaDB declare the transaction READ ONLY; every
    connection is rolled back at the end.

    Raises:
        InputError: the URL is not one sparc reads, its driver is missing, or
            the server cannot be reached.
    """
    engine = _engine(url)
    try:
        with _read_only(engine) as connection:
            yield connection
    except sa.exc.OperationalError as error:
        raise InputError(
            f"cannot read the database ({error.orig}); check the URL and that "
            "the server runs",
            field="url",
        ) from error
    finally:
        engine.dispose()


def uncarried_objects(connection: Connection) -> list[str]:
    """What the PostgreSQL catalog holds that a reflected SchemaSpec leaves out.

    Objects outside the public schema, kinds reflection does not read (foreign
    tables, composite, range and base types, rules, row security, inheritance,
    collations, operators, text search objects, extended statistics, event
    triggers, window functions), column collations, storage parameters and
    comments on objects other than tables, columns and views. Objects made by
    an extension come with the extension and are not listed.

    Returns:
        One line per object, `kind identity: reason`, sorted.
    """
    return [row[0] for row in connection.exec_driver_sql(_UNCARRIED).all()]


def _engine(url: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as error:
        raise InputError(f"{error}; give a SQLAlchemy URL", field="url") from error
    if parsed.drivername in ("postgresql", "postgres"):
        # psycopg (3) is the driver sparc installs; psycopg2 may be absent
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("postgresql", "sqlite", "mysql", "mariadb"):
        raise InputError(
            f"cannot reflect {backend}: sparc reads PostgreSQL, SQLite and MariaDB",
            field="url",
        )
    try:
        return sa.create_engine(parsed)
    except (ImportError, sa.exc.NoSuchModuleError) as error:
        raise InputError(
            f"the database driver of {backend} is not installed ({error})",
            field="url",
        ) from error


@contextmanager
def _read_only(engine: sa.Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            for statement in _PG_SETUP:
                connection.exec_driver_sql(statement)
        elif engine.dialect.name in ("mysql", "mariadb"):
            # applies to the transaction the next read starts
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield connection
        finally:
            connection.rollback()


# --- PostgreSQL ------------------------------------------------------------------


def _ident(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        return f'"{name}"' if name in _QUOTED else name
    return '"' + name.replace('"', '""') + '"'


# names that must be quoted even when lowercase: reading them back unquoted
# would parse as keywords
_QUOTED = frozenset(
    {
        "user", "group", "order", "desc", "asc", "select", "table", "from",
        "where", "default", "check", "primary", "references", "column", "limit",
        "offset", "end", "all", "and", "or", "not", "null", "true", "false",
        "to", "as", "by", "on", "in", "is", "when", "then", "else", "case",
        "grant", "union", "unique", "using", "with", "year", "time", "timestamp",
        "constraint", "foreign", "key", "index", "create", "current_user",
        "analyse", "analyze", "any", "array", "both", "cast", "collate",
        "current_date", "current_time", "current_timestamp", "deferrable", "distinct",
        "do", "except", "fetch", "for", "having", "initially", "intersect", "into",
        "lateral", "leading", "localtime", "localtimestamp", "only", "placing",
        "returning", "session_user", "some", "symmetric", "trailing", "variadic",
        "window",
    }
)  # fmt: skip


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def catalog_ddl(connection: Connection) -> str:
    """The DDL script that rebuilds the public schema the catalog describes.

    The connection must be PostgreSQL; the reads change nothing.
    """
    statements: list[str] = []
    run = connection.exec_driver_sql

    def rows(sql: str, **parameters: typing.Any) -> list[typing.Any]:
        return list(connection.execute(sa.text(sql), parameters).all())

    for (name,) in run(_EXTENSIONS).all():
        statements.append(f"CREATE EXTENSION IF NOT EXISTS {_ident(name)}")
    for name, values in rows(_ENUMS):
        labels = ", ".join(_literal(v) for v in values)
        statements.append(f"CREATE TYPE {_ident(name)} AS ENUM ({labels})")
    for name, base, not_null, default, checks in rows(_DOMAINS):
        parts = [f"CREATE DOMAIN {_ident(name)} AS {base}"]
        if default is not None:
            parts.append(f"DEFAULT {default}")
        if not_null:
            parts.append("NOT NULL")
        for check in checks:
            constraint, _, definition = check.partition(" ")
            parts.append(f"CONSTRAINT {_ident(constraint)} {definition}")
        statements.append(" ".join(parts))

    owned: list[str] = []
    for name, type_, start, step, low, high, cache, cycle, owner in rows(_SEQUENCES):
        statements.append(
            f"CREATE SEQUENCE {_ident(name)} AS {type_} START WITH {start} "
            f"INCREMENT BY {step} MINVALUE {low} MAXVALUE {high} CACHE {cache}"
            + (" CYCLE" if cycle else "")
        )
        if owner is not None:
            table, _, column = owner.partition(".")
            target = f"{_ident(table)}.{_ident(column)}"
            owned.append(f"ALTER SEQUENCE {_ident(name)} OWNED BY {target}")

    tables = rows(_TABLES)
    columns: dict[int, list[typing.Any]] = {}
    for row in rows(_COLUMNS, tables=[t[0] for t in tables]):
        columns.setdefault(row[0], []).append(row)
    comments: list[str] = []
    for oid, name, partitioned, key, comment in tables:
        definitions = [
            _column_definition(name, row, comments) for row in columns.get(oid, [])
        ]
        sql = f"CREATE TABLE {_ident(name)} ({', '.join(definitions)})"
        if partitioned:
            sql += f" PARTITION BY {key}"
        statements.append(sql)
        if comment is not None:
            comments.append(f"COMMENT ON TABLE {_ident(name)} IS {_literal(comment)}")
    statements.extend(comments)

    for child, parent, bound in rows(_PARTITIONS):
        statements.append(
            f"CREATE TABLE {_ident(child)} PARTITION OF {_ident(parent)} {bound}"
        )
    for table, name, _, definition in rows(_CONSTRAINTS):
        statements.append(
            f"ALTER TABLE {_ident(table)} ADD CONSTRAINT {_ident(name)} {definition}"
        )
    statements.extend(owned)

    # views and routines in an order that creates what each uses first
    routines: list[tuple[tuple[str, int], str]] = [
        (("proc", oid), definition.strip()) for oid, definition in rows(_FUNCTIONS)
    ]
    for oid, name, arguments, transition, state, final, initial in rows(_AGGREGATES):
        options = [f"SFUNC = {transition}", f"STYPE = {state}"]
        if final is not None:
            options.append(f"FINALFUNC = {final}")
        if initial is not None:
            options.append(f"INITCOND = {_literal(initial)}")
        routines.append(
            (
                ("proc", oid),
                f"CREATE AGGREGATE {_ident(name)}({arguments or '*'}) "
                f"({', '.join(options)})",
            )
        )
    for oid, name, kind, definition in rows(_VIEWS):
        body = definition.strip().rstrip(";")
        if kind == "m":
            sql = f"CREATE MATERIALIZED VIEW {_ident(name)} AS {body} WITH NO DATA"
        else:
            sql = f"CREATE VIEW {_ident(name)} AS {body}"
        routines.append((("class", oid), sql))
    uses: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for kind, oid, used_kind, used_oid in rows(_OBJECT_DEPENDENCIES):
        uses.setdefault((kind, oid), set()).add((used_kind, used_oid))
    statements.extend(_dependencies_first(routines, uses))

    for name, kind, comment in rows(_COMMENTS):
        what = "MATERIALIZED VIEW" if kind == "m" else "VIEW"
        statements.append(f"COMMENT ON {what} {_ident(name)} IS {_literal(comment)}")
    # after the views: an index on a materialized view travels with it
    statements.extend(definition for (definition,) in rows(_INDEXES))
    statements.extend(definition for (definition,) in rows(_TRIGGERS))
    return ";\n\n".join(statements) + ";\n" if statements else ""


def _dependencies_first(
    items: list[tuple[tuple[str, int], str]],
    uses: dict[tuple[str, int], set[tuple[str, int]]],
) -> list[str]:
    """Statements ordered so that each comes after those it uses.

    Among statements free to go, the given order is kept. A loop (which
    PostgreSQL itself would not allow) leaves its statements in that order.
    """
    pending = list(items)
    keys = {key for key, _ in items}
    done: set[tuple[str, int]] = set()
    ordered: list[str] = []
    while pending:
        ready = next(
            (
                entry
                for entry in pending
                if not (uses.get(entry[0], set()) & keys) - done - {entry[0]}
            ),
            pending[0],
        )
        pending.remove(ready)
        done.add(ready[0])
        ordered.append(ready[1])
    return ordered


def _column_definition(table: str, row: typing.Any, comments: list[str]) -> str:
    _, name, type_, not_null, default, identity, generated, comment, collated = row[:9]
    parts = [_ident(name), type_]
    if collated:
        log.warning(
            "column_collation_not_kept",
            table=table,
            column=name,
            reason="the SchemaSpec has no collation; the type's default is used",
        )
    if generated == "s":
        parts.append(f"GENERATED ALWAYS AS ({default}) STORED")
    elif default is not None:
        parts.append(f"DEFAULT {default}")
    if identity in ("a", "d"):
        when = "ALWAYS" if identity == "a" else "BY DEFAULT"
        parts.append(f"GENERATED {when} AS IDENTITY{_identity_options(row[9:])}")
    if not_null:
        parts.append("NOT NULL")
    if comment is not None:
        comments.append(
            f"COMMENT ON COLUMN {_ident(table)}.{_ident(name)} IS {_literal(comment)}"
        )
    return " ".join(parts)


def _identity_options(sequence: typing.Sequence[typing.Any]) -> str:
    """Every option of an identity's sequence; the DDL reader drops the defaults."""
    name, start, increment, low, high, cache, cycle = sequence
    if name is None:
        return ""
    return (
        f" (SEQUENCE NAME {_ident(name)} START WITH {start} INCREMENT BY "
        f"{increment} MINVALUE {low} MAXVALUE {high} CACHE {cache}"
        + (" CYCLE)" if cycle else ")")
    )


# --- SQLite and MariaDB ------------------------------------------------------------


def _inspected(connection: Connection) -> SchemaSpec:
    inspector = sa.inspect(connection)
    enums: dict[str, EnumType] = {}
    tables = [
        _inspected_table(inspector, name, enums)
        for name in sorted(inspector.get_table_names())
        if not name.startswith("sqlite_")
    ]
    return SchemaSpec(tables=tables, enums=list(enums.values()))


def _inspected_table(
    inspector: Inspector, name: str, enums: dict[str, EnumType]
) -> Table:
    dialect = inspector.dialect.name
    primary = inspector.get_pk_constraint(name)
    key_columns = list(primary.get("constrained_columns") or [])

    columns = []
    for info in inspector.get_columns(name):
        column_type = _column_type(info["type"], name, info["name"], enums)
        single_key = key_columns == [info["name"]]
        integer = column_type.kind in ("smallint", "integer", "bigint")
        serial = (
            single_key
            and integer
            and bool(
                info.get("autoincrement") is True
                or (dialect == "sqlite" and column_type.kind == "integer")
            )
        )
        columns.append(
            Column(
                name=info["name"],
                type=column_type,
                nullable=bool(info["nullable"]) and info["name"] not in key_columns,
                default=None if serial else _default(info.get("default"), column_type),
                serial=serial,
                comment=info.get("comment"),
            )
        )

    foreign_keys = [
        ForeignKey(
            name=fk.get("name") or None,
            columns=list(fk["constrained_columns"]),
            ref_table=fk["referred_table"],
            ref_columns=list(fk["referred_columns"]),
            on_delete=_action(fk.get("options", {}).get("ondelete")),
            on_update=_action(fk.get("options", {}).get("onupdate")),
            deferrable=bool(fk.get("options", {}).get("deferrable")),
            initially_deferred=str(fk.get("options", {}).get("initially", "")).upper()
            == "DEFERRED",
        )
        for fk in inspector.get_foreign_keys(name)
    ]
    uniques = [
        UniqueConstraint(name=u.get("name") or None, columns=list(u["column_names"]))
        for u in inspector.get_unique_constraints(name)
    ]
    unique_names = {u.name for u in uniques}
    checks = [
        CheckConstraint(name=c.get("name") or None, expression=_unquoted(c["sqltext"]))
        for c in inspector.get_check_constraints(name)
        if not _json_check(c["sqltext"])
    ]
    # MariaDB creates an index for each foreign key that has none, named
    # after the key: it comes with the key, not from the schema
    key_indexes = {
        (fk.name, tuple(fk.columns)) for fk in foreign_keys if dialect != "sqlite"
    }
    indexes = [
        _index(info, _descending(inspector, name, info["name"]))
        for info in inspector.get_indexes(name)
        if info["name"] not in unique_names
        and not info.get("duplicates_constraint")
        and (info["name"], tuple(info["column_names"])) not in key_indexes
    ]
    return Table(
        name=name,
        columns=columns,
        primary_key=PrimaryKey(name=primary.get("name") or None, columns=key_columns)
        if key_columns
        else None,
        foreign_keys=foreign_keys,
        unique_constraints=uniques,
        check_constraints=checks,
        indexes=indexes,
        comment=inspector.get_table_comment(name).get("text")
        if inspector.dialect.name != "sqlite"
        else None,
    )


def _json_check(sqltext: str) -> bool:
    # MariaDB spells a JSON column as LONGTEXT with this check
    return bool(re.fullmatch(r"json_valid\(`[^`]+`\)", sqltext.strip()))


def _descending(inspector: Inspector, table: str, index: str) -> set[str]:
    """Columns an index sorts descending (the inspector does not say)."""
    connection = typing.cast(Connection, inspector.bind)
    if inspector.dialect.name == "sqlite":
        quoted = '"' + index.replace('"', '""') + '"'
        rows = connection.exec_driver_sql(f"PRAGMA index_xinfo({quoted})").all()
        return {row[2] for row in rows if row[5] and row[3]}
    rows = connection.execute(
        sa.text(
            "SELECT column_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name = :table "
            "AND index_name = :index AND collation = 'D'"
        ),
        {"table": table, "index": index},
    ).all()
    return {row[0] for row in rows}


def _index(info: typing.Any, descending: set[str]) -> Index:
    sorting = info.get("column_sorting") or {}
    elements = []
    expressions = info.get("expressions") or []
    for position, column in enumerate(info["column_names"]):
        order = sorting.get(column, ())
        if column is None:
            elements.append(IndexElement(expression=expressions[position]))
            continue
        elements.append(
            IndexElement(
                column=column, descending="desc" in order or column in descending
            )
        )
    options = info.get("dialect_options") or {}
    where = options.get("sqlite_where")
    return Index(
        name=info["name"],
        elements=elements,
        unique=bool(info.get("unique")),
        where=None if where is None else str(where),
    )


def _action(value: str | None) -> typing.Any:
    if value is None:
        return None
    action = " ".join(value.upper().split())
    return None if action == "NO ACTION" else action


def _unquoted(sqltext: str) -> str:
    """MariaDB's `name` quoting as PostgreSQL's: plain, or "name" when needed."""

    def plain(match: re.Match[str]) -> str:
        name = match.group(1).replace("``", "`")
        return _ident(name)

    return re.sub(r"`((?:[^`]|``)+)`", plain, sqltext)


def _default(value: str | None, column_type: ColumnType) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if text.upper() in ("NULL", ""):
        return None
    if column_type.kind == "boolean" and text.strip("'") in ("0", "1"):
        return "true" if text.strip("'") == "1" else "false"
    if re.fullmatch(r"current_timestamp(\(\))?", text, re.IGNORECASE):
        return "CURRENT_TIMESTAMP"
    return text


def _column_type(
    type_: sa.types.TypeEngine[typing.Any],
    table: str,
    column: str,
    enums: dict[str, EnumType],
) -> ColumnType:
    if isinstance(type_, sa.Enum):
        name = type_.name or f"{table}_{column}"
        enums.setdefault(name, EnumType(name=name, values=list(type_.enums)))
        return ColumnType(kind="enum", name=name)
    if isinstance(type_, sa.Boolean):
        return ColumnType(kind="boolean")
    if isinstance(type_, sa.BigInteger):
        return ColumnType(kind="bigint")
    if isinstance(type_, sa.SmallInteger):
        # MySQL's BOOLEAN is TINYINT(1)
        if getattr(type_, "display_width", None) == 1:
            return ColumnType(kind="boolean")
        return ColumnType(kind="smallint")
    if isinstance(type_, sa.Integer):
        if (
            getattr(type_, "display_width", None) == 1
            and "TINY" in str(type_.__visit_name__).upper()
        ):
            return ColumnType(kind="boolean")
        return ColumnType(kind="integer")
    if isinstance(type_, sa.Float):
        precision = getattr(type_, "precision", None)
        name = type(type_).__name__.upper()
        if name in ("REAL",) or (name == "FLOAT" and precision and precision <= 24):
            return ColumnType(kind="real")
        return ColumnType(kind="double")
    if isinstance(type_, sa.Numeric):
        return ColumnType(kind="numeric", precision=type_.precision, scale=type_.scale)
    if isinstance(type_, sa.Uuid):
        return ColumnType(kind="uuid")
    if isinstance(type_, sa.JSON):
        return ColumnType(kind="json")
    if isinstance(type_, sa.CHAR | sa.NCHAR):
        return ColumnType(kind="char", length=type_.length)
    if isinstance(type_, sa.Text):
        return ColumnType(kind="text")
    if isinstance(type_, sa.String):
        if type_.length is None:
            return ColumnType(kind="text")
        return ColumnType(kind="varchar", length=type_.length)
    if isinstance(type_, sa.DateTime):
        return ColumnType(kind="timestamp", timezone=bool(type_.timezone))
    if isinstance(type_, sa.Date):
        return ColumnType(kind="date")
    if isinstance(type_, sa.Time):
        return ColumnType(kind="time", timezone=bool(type_.timezone))
    if isinstance(type_, sa.Interval):
        return ColumnType(kind="interval")
    if isinstance(type_, sa.LargeBinary | sa.types._Binary):
        return ColumnType(kind="bytea")
    log.warning("column_type_not_mapped", table=table, column=column, type=str(type_))
    return ColumnType(kind="other", name=str(type_).lower())


# --- comparison ------------------------------------------------------------------

_LITERAL_CAST = re.compile(
    r"\(?('(?:[^']|'')*'|-?\d+(?:\.\d+)?)\)?::"
    r"[a-z_][a-z0-9_ ]*(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*",
    re.IGNORECASE,
)
_CAST_CALL = re.compile(
    r"CAST\(('(?:[^']|'')*'|-?\d+(?:\.\d+)?) AS "
    r"[a-z_][a-z0-9_ .]*(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*\)",
    re.IGNORECASE,
)


def spec_differences(expected: SchemaSpec, actual: SchemaSpec) -> list[str]:
    """What differs between two specs, one line per difference.

    Tables, columns (type, nullability, default, serial, identity and its
    sequence options), keys, unique and check constraints, indexes, enums,
    domains, partitions and the names of other objects are compared.
    Expressions are compared after the casts PostgreSQL adds to literals
    (`(0)::numeric`, `'x'::text`) are removed. A constraint name counts only
    where `expected` names it: a database names every constraint, DDL often
    does not.

    Args:
        expected: the reference, e.g. the DDL's spec.
        actual: the spec to check, e.g. a reflected database.

    Returns:
        Readable differences; empty when the two agree.
    """
    found: list[str] = []
    _compare_names(
        "table",
        [t.name for t in expected.tables],
        [t.name for t in actual.tables],
        found,
    )
    for table in expected.tables:
        other = actual.table(table.name)
        if other is not None:
            found.extend(_table_differences(table, other))

    found.extend(
        f"enum {e.name}: values {e.values} != {o.values if o else None}"
        for e in expected.enums
        if (o := actual.enum(e.name)) is None or o.values != e.values
    )
    for domain in expected.domains:
        other_domain = actual.domain(domain.name)
        if other_domain is None:
            found.append(f"domain {domain.name}: missing")
        elif (domain.type, domain.nullable) != (
            other_domain.type,
            other_domain.nullable,
        ):
            found.append(f"domain {domain.name}: {domain} != {other_domain}")
    partitions = {p.name: p for p in actual.partitions}
    for partition in expected.partitions:
        other_partition = partitions.get(partition.name)
        if other_partition is None or other_partition.parent != partition.parent:
            found.append(f"partition {partition.name}: missing or moved")
        elif _instants(partition.bound) != _instants(other_partition.bound):
            found.append(
                f"partition {partition.name}: bound {partition.bound} != "
                f"{other_partition.bound}"
            )
    _compare_names(
        "object",
        [f"{o.kind} {o.name}" for o in expected.objects],
        [f"{o.kind} {o.name}" for o in actual.objects],
        found,
    )
    return found


def _compare_names(
    what: str, expected: list[str], actual: list[str], found: list[str]
) -> None:
    found.extend(f"{what} {n}: missing" for n in expected if n not in actual)
    found.extend(f"{what} {n}: unexpected" for n in actual if n not in expected)


def _normal(expression: str | None) -> str | None:
    """An expression without literal casts, spelled by pglast."""
    if expression is None:
        return None
    from pglast import parser
    from pglast.stream import RawStream

    def deparse(text: str) -> str:
        try:
            statement = parser.parse_sql(f"SELECT {text}")[0].stmt
            return RawStream()(statement.targetList[0].val)
        except Exception:  # not an expression on its own (a bound): keep text
            return " ".join(text.split())

    def strip(text: str) -> str:
        return _CAST_CALL.sub(r"\1", _LITERAL_CAST.sub(r"\1", text))

    text = deparse(expression)
    stripped = strip(text)
    while stripped != text:
        text, stripped = stripped, strip(stripped)
    return deparse(text)


_OFFSET_TIMESTAMP = re.compile(r"'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?[+-]\d\d)'")


def _instants(bound: str) -> str:
    """A partition bound with its time-zoned literals written in UTC.

    The catalog prints timestamptz bounds in the session's time zone, a dump
    in the time zone it was made in: the same instant, spelt two ways.
    """

    def utc(match: re.Match[str]) -> str:
        moment = dt.datetime.fromisoformat(match.group(1))
        return "'" + moment.astimezone(dt.UTC).isoformat(sep=" ") + "'"

    return " ".join(_OFFSET_TIMESTAMP.sub(utc, bound).split())


def _table_differences(expected: Table, actual: Table) -> list[str]:
    found: list[str] = []
    name = expected.name
    _compare_names(
        f"{name} column",
        [c.name for c in expected.columns],
        [c.name for c in actual.columns],
        found,
    )
    for column in expected.columns:
        other = actual.column(column.name)
        if other is None:
            continue
        where = f"{name}.{column.name}"
        if column.type != other.type:
            found.append(f"{where}: type {column.type} != {other.type}")
        if column.nullable != other.nullable:
            found.append(f"{where}: nullable {column.nullable} != {other.nullable}")
        if _normal(column.default) != _normal(other.default):
            found.append(f"{where}: default {column.default} != {other.default}")
        if (column.serial, column.identity) != (other.serial, other.identity):
            found.append(
                f"{where}: serial/identity {column.serial}/{column.identity} != "
                f"{other.serial}/{other.identity}"
            )
        elif column.identity_options != other.identity_options:
            found.append(
                f"{where}: identity options {column.identity_options} != "
                f"{other.identity_options}"
            )
        if column.comment != other.comment:
            found.append(f"{where}: comment {column.comment!r} != {other.comment!r}")

    def named(item_name: str | None, other_name: str | None) -> bool:
        return item_name is None or item_name == other_name

    key, other_key = expected.primary_key, actual.primary_key
    if (key is None) != (other_key is None) or (
        key is not None
        and other_key is not None
        and (key.columns != other_key.columns or not named(key.name, other_key.name))
    ):
        found.append(f"{name}: primary key {key} != {other_key}")

    for fk in expected.foreign_keys:
        if not any(
            (o.columns, o.ref_table, o.ref_columns, o.on_delete, o.on_update)
            == (fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete, fk.on_update)
            and (o.deferrable, o.initially_deferred)
            == (fk.deferrable, fk.initially_deferred)
            and named(fk.name, o.name)
            for o in actual.foreign_keys
        ):
            found.append(f"{name}: foreign key {fk} missing")
    if len(actual.foreign_keys) != len(expected.foreign_keys):
        found.append(
            f"{name}: {len(actual.foreign_keys)} foreign keys, expected "
            f"{len(expected.foreign_keys)}"
        )
    for unique in expected.unique_constraints:
        if not any(
            o.columns == unique.columns and named(unique.name, o.name)
            for o in actual.unique_constraints
        ):
            found.append(f"{name}: unique {unique} missing")
    if len(actual.unique_constraints) != len(expected.unique_constraints):
        found.append(f"{name}: unique constraint count differs")
    expected_checks = sorted(
        str(_normal(c.expression)) for c in expected.check_constraints
    )
    actual_checks = sorted(str(_normal(c.expression)) for c in actual.check_constraints)
    if expected_checks != actual_checks:
        found.append(f"{name}: checks {expected_checks} != {actual_checks}")

    indexes = {i.name: i for i in actual.indexes}
    _compare_names(
        f"{name} index", [i.name for i in expected.indexes], list(indexes), found
    )
    for index in expected.indexes:
        other_index = indexes.get(index.name)
        if other_index is None:
            continue
        mine = index.model_copy(
            update={
                "where": _normal(index.where),
                "elements": [
                    e.model_copy(update={"expression": _normal(e.expression)})
                    for e in index.elements
                ],
            }
        )
        theirs = other_index.model_copy(
            update={
                "where": _normal(other_index.where),
                "elements": [
                    e.model_copy(update={"expression": _normal(e.expression)})
                    for e in other_index.elements
                ],
            }
        )
        if mine != theirs:
            found.append(f"{name}: index {index} != {other_index}")
    return found
