"""Forge a data task's schema into models, a revision, and proof that they work.

`forge` renders models.py, computes the next revision against the workspace's
chain, and verifies both in a scratch copy. It writes nothing in the
workspace: the caller gets the files to write.
"""

from __future__ import annotations

import io
import shutil
import string
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import structlog

from sparc.agents.hephaestus.ddl import Rename, apply_renames
from sparc.agents.hephaestus.models_render import (
    load_metadata,
    load_metadata_and_spec,
    render_models,
)
from sparc.agents.hephaestus.revision import (
    RevisionInfo,
    collection_paused,
    dialect_mappings,
    narrowing_notes,
    write_revision,
)
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import (
    LoadedModels,
    alembic_config,
    verify_server,
    verify_sqlite,
)
from sparc.errors import VerificationError

log = structlog.get_logger(__name__)

ALEMBIC_DIR = "alembic"
TEMPLATE_FILES = ("alembic.ini", "env.py")


@dataclass(frozen=True)
class ForgeResult:
    """Files to write (workspace-relative path to content), and what was proved."""

    files: dict[str, str]
    revision: RevisionInfo | None
    report: list[str] = field(default_factory=list)


def models_relative_path(project: str) -> str:
    return f"src/{project}/db/models.py"


def alembic_template(name: str, *, project: str) -> str:
    """The workspace template `alembic/<name>` with the project name filled in."""
    source = (
        resources.files("sparc.workspace_templates")
        .joinpath(f"alembic/{name}")
        .read_text(encoding="utf-8")
    )
    return string.Template(source).substitute(project=project)


def forge(
    root: Path,
    *,
    project: str,
    task_id: str,
    title: str,
    spec: SchemaSpec,
    verify_urls: Mapping[str, str] | None = None,
    renames: Sequence[Rename] = (),
) -> ForgeResult:
    """Render, migrate and verify `spec` for the workspace at `root`.

    Args:
        root: the workspace; only read.
        project: the package name under `src/`.
        task_id: the data task, quoted in the revision.
        title: the task title, for the revision's docstring and file name.
        spec: the whole schema the project must have after this task.
        verify_urls: server URLs by dialect name ("postgresql", "mariadb");
            the chain is also verified in a scratch database created, and
            dropped again, on each server.
        renames: tables and columns renamed by the task's DDL, in order
            (`ParsedSql.renames`); those of the committed schema become
            renames in the revision instead of a drop and an add.

    Returns:
        Files whose content changes, the revision (None when the schema is
        unchanged) and a report of what was checked, including each place a
        dialect takes the nearest form of a feature it lacks.

    Raises:
        VerificationError: the revision chain failed on a scratch database.
    """
    models_rel = models_relative_path(project)
    models_text = render_models(spec, project=project)
    files: dict[str, str] = {}
    report: list[str] = []

    with tempfile.TemporaryDirectory(prefix="sparc-forge-") as scratch_dir:
        scratch = Path(scratch_dir)
        alembic_dir = scratch / ALEMBIC_DIR
        _copy_alembic(root, alembic_dir, project, files)
        scratch_models = scratch / models_rel
        scratch_models.parent.mkdir(parents=True, exist_ok=True)
        scratch_models.write_text(models_text, encoding="utf-8")

        current_models = root / models_rel
        with collection_paused():
            previous, previous_spec = (
                load_metadata_and_spec(current_models)
                if current_models.is_file()
                else (None, None)
            )
        renamed_spec, applied = (
            apply_renames(previous_spec, list(renames))
            if previous_spec is not None
            else (None, [])
        )
        if applied:
            # compared with the new models as if the renames were done
            renamed_models = scratch / "renamed_head_models.py"
            renamed_models.write_text(
                render_models(renamed_spec or SchemaSpec(), project=project),
                encoding="utf-8",
            )
            with collection_paused():
                previous = load_metadata(renamed_models)
        # imported once, by env.py as Alembic will: the revision and every
        # verification share it
        partition_names = [p.name for p in spec.partitions]
        models = LoadedModels.through_env(
            alembic_dir, partition_names
        ) or LoadedModels.from_file(scratch_models)
        revision = write_revision(
            alembic_dir,
            models.metadata,
            task_id=task_id,
            title=title,
            previous_metadata=previous,
            spec=spec,
            previous_spec=renamed_spec,
            renames=applied,
        )
        if revision.has_operations:
            target = alembic_dir / "versions" / revision.file_name
            target.write_text(revision.text, encoding="utf-8")
            report.append(f"revision {revision.file_name} computed against head")
        else:
            report.append("schema unchanged: no revision")

        verification = verify_sqlite(
            alembic_dir,
            scratch_models,
            previous_spec=previous_spec if revision.has_operations else None,
            previous_head=revision.down_revision,
            models=models,
        )
        report.append(f"sqlite: {', '.join(verification.steps)}: passed")
        statements = _offline_sql(alembic_dir, models)
        report.append(
            f"postgresql: offline SQL of the chain rendered through env.py "
            f"({statements} statements)"
        )
        for dialect, url in sorted((verify_urls or {}).items()):
            verification = verify_server(
                url, alembic_dir, scratch_models, models=models
            )
            report.append(f"{dialect}: {', '.join(verification.steps)}: passed")
        report.extend(narrowing_notes(renamed_spec or SchemaSpec(), spec))
        report.extend(dialect_mappings(spec))

    if not current_models.is_file() or current_models.read_text("utf-8") != models_text:
        files[models_rel] = models_text
    if revision.has_operations:
        files[f"{ALEMBIC_DIR}/versions/{revision.file_name}"] = revision.text
    log.info("schema_forged", task_id=task_id, files=sorted(files))
    return ForgeResult(
        files=files,
        revision=revision if revision.has_operations else None,
        report=report,
    )


def _copy_alembic(
    root: Path, target: Path, project: str, files: dict[str, str]
) -> None:
    source = root / ALEMBIC_DIR
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    target.mkdir(parents=True, exist_ok=True)
    (target / "versions").mkdir(exist_ok=True)
    for name in TEMPLATE_FILES:
        if not (target / name).is_file():
            text = alembic_template(name, project=project)
            (target / name).write_text(text, encoding="utf-8")
            files[f"{ALEMBIC_DIR}/{name}"] = text


def _offline_sql(alembic_dir: Path, models: LoadedModels) -> int:
    # runs the workspace's env.py as a user would, on the models it loaded
    buffer = io.StringIO()
    config = alembic_config(alembic_dir)
    config.output_buffer = buffer
    config.set_main_option("sqlalchemy.url", "postgresql://")
    config.attributes["target_metadata"] = models.metadata
    config.attributes["partition_names"] = set(models.partition_names)
    try:
        from alembic import command

        command.upgrade(config, "head", sql=True)
    except Exception as error:
        raise VerificationError(
            f"{type(error).__name__}: {error}",
            step="offline upgrade through env.py",
            dialect="postgresql",
        ) from error
    return buffer.getvalue().count(";")
