"""Turn accepted index advice into the next Alembic revision, models and queries.

Index-only changes get their own small renderer rather than autogenerate: on
PostgreSQL an index on a live table is built or dropped `CONCURRENTLY`, which
cannot run inside a transaction, so every operation sits in
`op.get_context().autocommit_block()` with `postgresql_concurrently=True`;
other dialects ignore the option and keep the operations in the migration's
transaction, so building a later revision on SQLite still works. The models
get the same indexes, the revision is verified like any other (SQLite always,
PostgreSQL when a scratch server is given), and `performance_queries.sql`
gains the statements each new index speeds up.
"""

from __future__ import annotations

import shutil
import string
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import structlog

from sparc.agents.hephaestus.forge import ALEMBIC_DIR, models_relative_path
from sparc.agents.hephaestus.models_render import (
    index_dialect_options,
    render_models,
    spec_from_models,
)
from sparc.agents.hephaestus.revision import current_head, next_revision_id, slugify
from sparc.agents.hephaestus.scripts import GENERATED_SECTION_MARKER, read_named_queries
from sparc.agents.hephaestus.spec import Index, IndexElement, SchemaSpec
from sparc.agents.hephaestus.tune.advise import IndexAdvice
from sparc.agents.hephaestus.tune.report import TuneReport, render
from sparc.agents.hephaestus.tune.workload import named_binds
from sparc.agents.hephaestus.verify import verify_sqlite, verify_url
from sparc.config import load_config

log = structlog.get_logger(__name__)

QUERY_SCRIPT = f"{ALEMBIC_DIR}/scripts/performance_queries.sql"
REPORT_DIR = "docs/tuning"
_INDENT = " " * 8
# Rendered into each revision: PostgreSQL cannot build or drop an index
# CONCURRENTLY inside a transaction; elsewhere the option is ignored and the
# operations stay in the migration's transaction.
_OUTSIDE_TRANSACTION = '''

def _outside_transaction() -> AbstractContextManager[None]:
    """On PostgreSQL, run the block outside the migration's transaction."""
    context = op.get_context()
    if context.dialect.name == "postgresql":
        return context.autocommit_block()
    return nullcontext()
'''


def advice_revision(
    root: Path,
    report: TuneReport,
    *,
    task_id: str,
    title: str,
    project: str | None = None,
    postgres_url: str | None = None,
) -> dict[str, str]:
    """The files of a tuning task: revision, models, queries and the report.

    Args:
        root: the workspace (only read).
        report: the result of `tune`; its accepted advice is applied.
        task_id: the tuning task, quoted in the revision.
        title: the revision's docstring and file name slug.
        project: the package under `src/`; from the workspace config when None.
        postgres_url: an empty PostgreSQL database to verify the chain on.

    Returns:
        Workspace-relative path -> text. Without applicable advice only the
        report is returned.

    Raises:
        VerificationError: the new chain failed on SQLite or PostgreSQL.
    """
    project = project or load_config(root).project
    models_rel = models_relative_path(project)
    spec = spec_from_models(root / models_rel)
    files = {f"{REPORT_DIR}/{task_id}.md": render(report, "markdown", task_id=task_id)}

    changed, applied, dropped = _apply(spec, report.accepted)
    if not applied:
        log.info("no_index_advice_applies", task_id=task_id)
        return files

    alembic_dir = root / ALEMBIC_DIR
    head = current_head(alembic_dir) if alembic_dir.is_dir() else None
    revision_id = next_revision_id(head)
    file_name = f"{revision_id}_{slugify(title)}.py"
    text = render_revision(
        applied,
        dropped,
        revision_id=revision_id,
        down_revision=head,
        task_id=task_id,
        title=title,
    )
    models_text = render_models(changed, project=project)
    _verify(root, models_rel, models_text, file_name, text, postgres_url)

    files[models_rel] = models_text
    files[f"{ALEMBIC_DIR}/versions/{file_name}"] = text
    queries = root / QUERY_SCRIPT
    existing = queries.read_text(encoding="utf-8") if queries.is_file() else ""
    files[QUERY_SCRIPT] = add_sped_up_queries(existing, applied)
    log.info("tuning_revision_written", task_id=task_id, revision=revision_id)
    return files


def render_revision(
    advice: Sequence[IndexAdvice],
    dropped: dict[str, Index],
    *,
    revision_id: str,
    down_revision: str | None,
    task_id: str,
    title: str,
) -> str:
    """The revision text: creates and drops, each concurrent on PostgreSQL."""
    upgrade: list[str] = []
    downgrade: list[str] = []
    for item in advice:
        if item.action == "create":
            index = _new_index(item)
            upgrade += _create(index, item.table)
            downgrade += _drop(index.name, item.table)
        else:
            upgrade += _drop(item.name, item.table)
            downgrade += _create(dropped[item.name], item.table)
    template = string.Template(
        resources.files("sparc.agents.hephaestus")
        .joinpath("templates/revision.py.tmpl")
        .read_text(encoding="utf-8")
    )
    text = template.substitute(
        title=title,
        revision=revision_id,
        down_revision=down_revision or "<base>",
        task_id=task_id,
        imports="",
        revision_literal=repr(revision_id),
        down_revision_literal=repr(down_revision),
        module_objects=_OUTSIDE_TRANSACTION,
        upgrade_body=_block(upgrade),
        downgrade_body=_block(_reversed_groups(downgrade)),
    )
    # the helper's standard-library import goes before the template's imports
    future = "from __future__ import annotations\n\n"
    stdlib = "from contextlib import AbstractContextManager, nullcontext\n\n"
    return text.replace(future, future + stdlib, 1)


def _reversed_groups(lines: list[str]) -> list[str]:
    """Operation groups (each ends with a line of `)`) in reverse order."""
    groups: list[list[str]] = [[]]
    for line in lines:
        groups[-1].append(line)
        if line == f"{_INDENT})":
            groups.append([])
    return [line for group in reversed(groups) for line in group]


def add_sped_up_queries(existing: str, advice: Sequence[IndexAdvice]) -> str:
    """`performance_queries.sql` with the statements each new index speeds up.

    A statement already in the file is not repeated; new ones go above the
    generated section so later runs keep them.
    """
    known = {" ".join(sql.split()) for _, sql in read_named_queries(existing)}
    names = {name for name, _ in read_named_queries(existing)}
    sections = []
    for item in advice:
        for cost in item.sped_up:
            if cost.statement.startswith("fk_"):
                continue
            body = named_binds(cost.text.strip().rstrip(";"))
            if " ".join(body.split()) in known:
                continue
            known.add(" ".join(body.split()))
            name = f"tuned_{cost.statement}"
            while name in names:
                name += "_"
            names.add(name)
            sections.append(
                f"-- name: {name}\n"
                f"-- sped up by index {item.name}: estimated cost "
                f"{cost.before:.2f} -> {cost.after:.2f} ({item.method})\n{body};\n"
            )
    if not sections:
        return existing
    added = "\n".join(sections)
    head, marker, tail = existing.partition(GENERATED_SECTION_MARKER)
    if not marker:
        return (existing.rstrip("\n") + "\n\n" if existing.strip() else "") + added
    return head.rstrip("\n") + "\n\n" + added + "\n" + marker + tail


def _apply(
    spec: SchemaSpec, advice: Sequence[IndexAdvice]
) -> tuple[SchemaSpec, list[IndexAdvice], dict[str, Index]]:
    indexes = {table.name: list(table.indexes) for table in spec.tables}
    applied: list[IndexAdvice] = []
    dropped: dict[str, Index] = {}
    for item in advice:
        if item.table not in indexes:
            log.warning("advice_table_not_in_models", table=item.table, index=item.name)
            continue
        present = {i.name: i for i in indexes[item.table]}
        if item.action == "create":
            if item.name in present:
                continue
            indexes[item.table].append(_new_index(item))
        else:
            if item.name not in present:
                log.warning("dropped_index_not_in_models", index=item.name)
                continue
            dropped[item.name] = present[item.name]
            indexes[item.table].remove(present[item.name])
        applied.append(item)
    tables = [t.model_copy(update={"indexes": indexes[t.name]}) for t in spec.tables]
    return spec.model_copy(update={"tables": tables}), applied, dropped


def _new_index(item: IndexAdvice) -> Index:
    return Index(
        name=item.name, elements=[IndexElement(column=c) for c in item.columns]
    )


def _create(index: Index, table: str) -> list[str]:
    keys = ", ".join(_element(e) for e in index.elements)
    options = [f"unique={index.unique!r}", *index_dialect_options(index, index.where)]
    arguments = [repr(index.name), repr(table), f"[{keys}]", *options]
    arguments.append("postgresql_concurrently=True")
    return [
        f"{_INDENT}op.create_index(",
        *(f"{_INDENT}    {a}," for a in arguments),
        f"{_INDENT})",
    ]


def _drop(name: str, table: str) -> list[str]:
    arguments = [repr(name), f"table_name={table!r}", "postgresql_concurrently=True"]
    return [
        f"{_INDENT}op.drop_index(",
        *(f"{_INDENT}    {a}," for a in arguments),
        f"{_INDENT})",
    ]


def _element(element: IndexElement) -> str:
    if element.expression is not None:
        return f"sa.text({element.expression!r})"
    if not element.descending and element.nulls is None:
        return repr(element.column)
    quoted = '"' + str(element.column).replace('"', '""') + '"'
    suffix = " DESC" if element.descending else ""
    suffix += f" NULLS {element.nulls.upper()}" if element.nulls else ""
    return f"sa.text({quoted + suffix!r})"


def _block(lines: list[str]) -> str:
    if not lines:
        return "    pass"
    return "\n".join(
        [
            "    with _outside_transaction():",
            *lines,
        ]
    )


def _verify(
    root: Path,
    models_rel: str,
    models_text: str,
    file_name: str,
    text: str,
    postgres_url: str | None,
) -> None:
    with tempfile.TemporaryDirectory(prefix="sparc-tune-") as scratch_dir:
        scratch = Path(scratch_dir)
        alembic_dir = scratch / ALEMBIC_DIR
        shutil.copytree(
            root / ALEMBIC_DIR,
            alembic_dir,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        (alembic_dir / "versions" / file_name).write_text(text, encoding="utf-8")
        models = scratch / models_rel
        models.parent.mkdir(parents=True, exist_ok=True)
        models.write_text(models_text, encoding="utf-8")
        verify_sqlite(alembic_dir, models)
        if postgres_url is not None:
            verify_url(postgres_url, alembic_dir, models)
