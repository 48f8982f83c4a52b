"""write_revision computes the next revision against the chain's head."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from sparc.agents.hephaestus.forge import alembic_template
from sparc.agents.hephaestus.models_render import load_metadata, render_models
from sparc.agents.hephaestus.revision import (
    RevisionInfo,
    collection_paused,
    scratch_sqlite_engine,
    slugify,
    write_revision,
)
from sparc.agents.hephaestus.spec import CheckConstraint, SchemaSpec
from sparc.agents.hephaestus.verify import verify_sqlite
from sparc.errors import VerificationError
from tests import hephaestus_specs as specs


def _models(tmp_path: Path, spec: SchemaSpec, name: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(render_models(spec, project="demo"), encoding="utf-8")
    return path


def _alembic(tmp_path: Path) -> Path:
    alembic_dir = tmp_path / "alembic"
    (alembic_dir / "versions").mkdir(parents=True)
    env = alembic_template("env.py", project="demo")
    (alembic_dir / "env.py").write_text(env, encoding="utf-8")
    return alembic_dir


def _add(alembic_dir: Path, revision: RevisionInfo) -> None:
    (alembic_dir / "versions" / revision.file_name).write_text(revision.text)


def test_slug_is_short_lowercase_ascii() -> None:
    assert slugify("Add user authentication tables") == "add_user_authentication_tables"
    assert slugify("Ünïcode — and/or PUNCT!") == "unicode_and_or_punct"
    assert len(slugify("word " * 30)) <= 40


def test_first_revision_is_001_and_deterministic(tmp_path: Path) -> None:
    alembic_dir = _alembic(tmp_path)
    metadata = load_metadata(_models(tmp_path, specs.shop_step(1), "m1"))

    first = write_revision(alembic_dir, metadata, task_id="DB-001", title="Shop core")
    second = write_revision(alembic_dir, metadata, task_id="DB-001", title="Shop core")

    assert first == second
    assert first.revision_id == "001" and first.down_revision is None
    assert first.file_name == "001_shop_core.py" and first.has_operations
    assert "Revision ID: 001\nRevises: <base>\nTask: DB-001" in first.text
    assert "revision = '001'\ndown_revision = None" in first.text
    compile(first.text, first.file_name, "exec")


def test_unchanged_schema_gives_no_operations(tmp_path: Path) -> None:
    alembic_dir = _alembic(tmp_path)
    models = _models(tmp_path, specs.shop_step(2), "m")
    metadata = load_metadata(models)
    _add(alembic_dir, write_revision(alembic_dir, metadata, task_id="A", title="a"))

    again = write_revision(alembic_dir, metadata, task_id="B", title="b")

    assert again.revision_id == "002" and again.down_revision == "001"
    assert not again.has_operations


def test_check_added_to_an_existing_table_is_migrated(tmp_path: Path) -> None:
    """Autogenerate ignores checks; the revision adds it in a batch block."""
    alembic_dir = _alembic(tmp_path)
    before = specs.shop_step(1)
    previous = load_metadata(_models(tmp_path, before, "m1"))
    _add(alembic_dir, write_revision(alembic_dir, previous, task_id="A", title="a"))
    users = before.tables[0].model_copy(
        update={"check_constraints": [CheckConstraint(expression="length(name) > 0")]}
    )
    after = before.model_copy(update={"tables": [users, *before.tables[1:]]})
    models = _models(tmp_path, after, "m2")

    revision = write_revision(
        alembic_dir,
        load_metadata(models),
        task_id="B",
        title="b",
        previous_metadata=previous,
    )
    _add(alembic_dir, revision)

    assert (
        "batch_op.create_check_constraint(batch_op.f('ck_users_name')" in revision.text
    )
    assert "batch_op.drop_constraint(batch_op.f('ck_users_name')" in revision.text
    assert verify_sqlite(alembic_dir, models).steps[-1] == "no drift"


def test_enum_type_created_first_and_dropped_last(tmp_path: Path) -> None:
    """Case 01: explicit CREATE TYPE before the table, DROP TYPE after it."""
    alembic_dir = _alembic(tmp_path)
    metadata = load_metadata(_models(tmp_path, specs.ticket_enum(), "m"))

    text = write_revision(alembic_dir, metadata, task_id="T", title="tickets").text
    upgrade, downgrade = text.split("def downgrade")

    assert upgrade.index("enum_ticket_status.create(") < upgrade.index("create_table")
    assert downgrade.index("drop_table('ticket')") < downgrade.index(
        "enum_ticket_status.drop("
    )
    assert "create_type=False" in text


def test_index_definition_change_is_migrated(tmp_path: Path) -> None:
    """SQLite hides sort order; the previous models reveal the change."""
    alembic_dir = _alembic(tmp_path)
    step3 = specs.shop_step(3)
    orders = step3.tables[2]
    ascending = orders.model_copy(
        update={
            "indexes": [
                index.model_copy(
                    update={
                        "elements": [
                            e.model_copy(update={"descending": False})
                            for e in index.elements
                        ]
                    }
                )
                for index in orders.indexes
            ]
        }
    )
    before = step3.model_copy(
        update={"tables": [*step3.tables[:2], ascending, *step3.tables[3:]]}
    )
    previous = load_metadata(_models(tmp_path, before, "m1"))
    _add(alembic_dir, write_revision(alembic_dir, previous, task_id="A", title="a"))
    models = _models(tmp_path, step3, "m2")

    revision = write_revision(
        alembic_dir,
        load_metadata(models),
        task_id="B",
        title="b",
        previous_metadata=previous,
    )

    assert revision.has_operations
    assert "drop_index('idx_orders_user_date')" in revision.text
    assert "DESC" in revision.text


def test_two_heads_are_refused(tmp_path: Path) -> None:
    alembic_dir = _alembic(tmp_path)
    for name in ("a", "b"):
        (alembic_dir / "versions" / f"{name}.py").write_text(
            f"revision = {name!r}\ndown_revision = None\n"
            "def upgrade():\n    pass\ndef downgrade():\n    pass\n"
        )
    metadata = load_metadata(_models(tmp_path, specs.shop_step(1), "m"))

    with pytest.raises(VerificationError) as raised:
        write_revision(alembic_dir, metadata, task_id="X", title="x")
    assert raised.value.step == "heads"


def test_scratch_database_does_not_sync_to_disk(tmp_path: Path) -> None:
    engine = scratch_sqlite_engine(tmp_path / "scratch.sqlite3")

    with engine.connect() as connection:
        synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()

    assert (synchronous, journal) == (0, "memory")


def test_collection_pause_restores_the_collector_state() -> None:
    was_enabled = gc.isenabled()
    try:
        gc.enable()
        with pytest.raises(RuntimeError), collection_paused():
            assert not gc.isenabled()
            raise RuntimeError("step failed")
        assert gc.isenabled()

        gc.disable()
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        (gc.enable if was_enabled else gc.disable)()
