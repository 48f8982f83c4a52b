"""Checkpoints in PostgreSQL: a paused run resumes from another Runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sparc.errors import ConfigError
from sparc.init import init_workspace
from sparc.runner import CHECKPOINT_URL_ENV, Runner, load_run_settings
from tests.conftest import libpq_url

pytestmark = pytest.mark.postgres


def test_a_paused_run_resumes_from_postgres_checkpoints(
    shop_workspace: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_workspace(shop_workspace)
    task = shop_workspace / "docs/backlog/DB-001.yaml"
    task.write_text(task.read_text() + "require_approval: [refinement]\n")
    monkeypatch.setenv(CHECKPOINT_URL_ENV, libpq_url(pg_url))

    with Runner.open(shop_workspace) as runner:
        assert runner.run("DB-001").waiting
    # the checkpoints are in PostgreSQL, not in the workspace
    assert not (shop_workspace / ".sparc/checkpoints.sqlite").exists()
    engine = sa.create_engine(pg_url)
    with engine.connect() as connection:
        threads = connection.execute(
            sa.text("SELECT count(DISTINCT thread_id) FROM checkpoints")
        ).scalar_one()
    engine.dispose()
    assert threads == 1

    with Runner.open(shop_workspace) as runner:
        outcome = runner.approve("DB-001")
    assert outcome.complete, outcome.reason


def test_an_unreachable_checkpoint_database_is_a_config_error(
    shop_workspace: Path,
) -> None:
    init_workspace(shop_workspace)
    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL"):
        Runner.open(
            shop_workspace,
            checkpoint_url="postgresql://postgres@127.0.0.1:1/none?connect_timeout=2",
        )


def test_run_settings_are_read_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / ".sparc").mkdir()
    config = tmp_path / ".sparc/config.yaml"
    config.write_text(
        "project: shop\nengines: {hephaestus: 'openai:gpt-x'}\n"
        "budget: {task: {steps: 5}, batch: {cost: 2.5}, on_exceed: block}\n"
        "checkpoints: {url: 'postgresql://db/x'}\n"
    )
    settings = load_run_settings(tmp_path)
    assert settings.engines == {"hephaestus": "openai:gpt-x"}
    assert settings.budget.task.steps == 5
    assert settings.budget.batch.cost == 2.5
    assert settings.budget.on_exceed == "block"
    assert settings.checkpoints.url == "postgresql://db/x"

    config.write_text("project: shop\nbudget: {on_exceed: later}\n")
    with pytest.raises(ConfigError, match="budget.on_exceed"):
        load_run_settings(tmp_path)
