"""The review gate: lint errors send the work back, a bounded number of times."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparc.agents.outline import OutlineEngine
from sparc.backlog import load_task
from sparc.engines import EngineRegistry, Review, WorkContext, WorkResult
from sparc.init import init_workspace
from sparc.runner import Runner
from sparc.workflow import builtin_workflow

FLOAT_DDL = """CREATE TABLE wallet (
    id INTEGER PRIMARY KEY,
    owner_ref VARCHAR(64) NOT NULL,
    balance FLOAT NOT NULL DEFAULT 0
);
"""
FIXED_DDL = FLOAT_DDL.replace("FLOAT", "NUMERIC(12, 2)")

TASK = """id: DB-010
title: Add wallets
description: Customer wallets with a balance.
specialist: database-engineer
status: NEW
priority: high
references: [docs/data/wallet.sql]
"""


@pytest.fixture
def workspace(shop_workspace: Path) -> Path:
    """The shop example with one more data task whose design keeps money in FLOAT."""
    (shop_workspace / "docs/data/wallet.sql").write_text(FLOAT_DDL)
    (shop_workspace / "docs/backlog/DB-010.yaml").write_text(TASK)
    for task_id in ("DB-001", "DB-002", "DB-003"):
        (shop_workspace / f"docs/backlog/{task_id}.yaml").unlink()
    init_workspace(shop_workspace)
    return shop_workspace


class _AnalystWhoFixesTheDesign:
    """A specification analyst that corrects the DDL when review sends it back."""

    def __init__(self) -> None:
        self.findings_seen: list[str] = []
        self._outline = OutlineEngine()

    def work(self, context: WorkContext) -> WorkResult:
        self.findings_seen += [f.code for f in context.findings]
        outline = self._outline.work(context)
        if any(f.category == "wrong-data-type" for f in context.findings):
            return WorkResult(
                files={**outline.files, "docs/data/wallet.sql": FIXED_DDL}
            )
        return outline

    def review(self, context: WorkContext) -> Review:
        return self._outline.review(context)


def _hephaestus_verdicts(record: list[dict[str, str]], phase: str) -> list[str]:
    return [
        r["outcome"]
        for r in record
        if r["phase"] == phase
        and r["persona"] == "hephaestus"
        and r["role"] == "support"
    ]


def test_money_in_float_is_sent_back_once_then_approved(workspace: Path) -> None:
    """The finding reaches the owner, who fixes it; the next review approves."""
    analyst = _AnalystWhoFixesTheDesign()
    engines = EngineRegistry.default()
    engines.use("specification-analyst", analyst)

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-010")

    assert outcome.complete, outcome.reason
    assert _hephaestus_verdicts(outcome.record, "specification") == [
        "revise",
        "approve",
    ]
    assert analyst.findings_seen == ["HD201"]
    models = (workspace / "src/shop/db/models.py").read_text()
    assert "sa.Numeric(12, 2)" in models
    assert "Float" not in models


def test_money_in_float_never_fixed_ends_blocked(workspace: Path) -> None:
    """Past the workflow's bound the task is BLOCKED, the finding in its file."""
    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-010")

    assert outcome.status == "BLOCKED"
    bound = builtin_workflow("sparc").policy("specification").max_review_rounds
    verdicts = _hephaestus_verdicts(outcome.record, "specification")
    assert verdicts == ["revise"] * (bound + 1)
    task = load_task(workspace / "docs/backlog/DB-010.yaml").task
    assert task.status == "BLOCKED"
    assert "wallet.balance" in (task.blocked_reason or "")
    assert "HD201" in (task.blocked_reason or "")
    assert not (workspace / "src/shop/db/models.py").exists()
