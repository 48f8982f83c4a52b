"""Gates in depth: parallel reviews, send-back, human approval, budgets."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import git
import pytest

from sparc.backlog import load_task
from sparc.engines import (
    EngineRegistry,
    Finding,
    Review,
    Usage,
    WorkContext,
    WorkResult,
)
from sparc.errors import BacklogError
from sparc.init import init_workspace
from sparc.runner import Runner
from sparc.runtime import BudgetLimits, BudgetSettings


@pytest.fixture
def workspace(shop_workspace: Path) -> Path:
    init_workspace(shop_workspace)
    return shop_workspace


def _set_phases(workspace: Path, task_id: str, line: str) -> None:
    path = workspace / "docs/backlog" / f"{task_id}.yaml"
    path.write_text(path.read_text().replace("phases: [refinement]\n", line))


class _BarrierReviewer:
    """Approves only after every other reviewer of the phase has started too."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def work(self, context: WorkContext) -> WorkResult:
        return WorkResult()

    def review(self, context: WorkContext) -> Review:
        self.barrier.wait()
        return Review(verdict="approve")


def test_reviews_run_as_parallel_branches(workspace: Path) -> None:
    """Four architecture reviewers meet at a barrier: only parallel runs pass."""
    _set_phases(workspace, "DB-001", "phases: [architecture]\n")
    barrier = threading.Barrier(4, timeout=10)
    engines = EngineRegistry.default()
    for persona in ("deployment-engineer", "hephaestus", "planner", "python-engineer"):
        engines.use(persona, _BarrierReviewer(barrier))

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    reviewers = {r["persona"] for r in outcome.record if r["role"] == "support"}
    assert reviewers == {
        "deployment-engineer",
        "hephaestus",
        "planner",
        "python-engineer",
    }
    assert not barrier.broken


class _Verdict:
    """A reviewer giving a fixed verdict (once, when `times` is set)."""

    def __init__(self, verdict: str, *, send_back_to: str = "", times: int = 0):
        self.verdict = verdict
        self.send_back_to = send_back_to
        self.times = times
        self.calls = 0

    def work(self, context: WorkContext) -> WorkResult:
        return WorkResult()

    def review(self, context: WorkContext) -> Review:
        self.calls += 1
        if self.times and self.calls > self.times:
            return Review(verdict="approve")
        return Review(
            verdict=self.verdict,  # type: ignore[arg-type]
            send_back_to=self.send_back_to,
            findings=(
                Finding(code="QA9", severity="error", message=f"{self.verdict} it"),
            ),
        )


def test_any_block_blocks_over_approvals(workspace: Path) -> None:
    _set_phases(workspace, "DB-001", "phases: [architecture]\n")
    engines = EngineRegistry.default()
    engines.use("planner", _Verdict("block"))

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.status == "BLOCKED"
    task = load_task(workspace / "docs/backlog/DB-001.yaml").task
    assert "architecture: blocked by review: [QA9] block it" in (
        task.blocked_reason or ""
    )
    # the phase document was never written: nothing reaches disk before the gate
    assert not (workspace / "docs/architecture/DB-001.md").exists()


def test_a_reviewer_sends_the_task_back_to_the_specification(workspace: Path) -> None:
    _set_phases(
        workspace, "DB-001", "phases: [specification, pseudocode, architecture]\n"
    )
    engines = EngineRegistry.default()
    engines.use("planner", _Verdict("revise", send_back_to="specification", times=1))

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    primaries = [r["phase"] for r in outcome.record if r["role"] == "primary"]
    assert primaries == [
        "specification",
        "pseudocode",
        "architecture",
        "specification",
        "pseudocode",
        "architecture",
    ]
    spec = (workspace / "docs/specification/DB-001.md").read_text()
    assert "[QA9] revise it" in spec


def test_send_back_where_the_workflow_forbids_it_revises_in_place(
    workspace: Path,
) -> None:
    _set_phases(workspace, "DB-001", "phases: [specification, pseudocode]\n")
    engines = EngineRegistry.default()
    # pseudocode has no send_back_to in the sparc workflow
    engines.use("hephaestus", _Verdict("revise", send_back_to="specification", times=1))

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    primaries = [r["phase"] for r in outcome.record if r["role"] == "primary"]
    assert primaries == ["specification", "specification", "pseudocode"]


def _require_approval(workspace: Path, task_id: str) -> None:
    path = workspace / "docs/backlog" / f"{task_id}.yaml"
    path.write_text(path.read_text() + "require_approval: [refinement]\n")


def test_approval_pauses_and_approve_finishes_in_a_new_runner(workspace: Path) -> None:
    _require_approval(workspace, "DB-001")
    repo = git.Repo(workspace)
    before = repo.head.commit.hexsha

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-001")
        assert outcome.waiting and outcome.waiting_at == "refinement"
        assert runner.waiting()["DB-001"]["phase"] == "refinement"
        # a second run does not redo the work; it still waits
        assert runner.run("DB-001").waiting

    task = load_task(workspace / "docs/backlog/DB-001.yaml").task
    assert task.status == "IN_PROGRESS"
    assert repo.head.commit.hexsha == before
    assert not (workspace / "src/shop/db/models.py").exists()

    with Runner.open(workspace) as runner:
        outcome = runner.approve("DB-001")
        assert outcome.complete, outcome.reason
        assert runner.waiting() == {}
        with pytest.raises(BacklogError, match="not waiting for approval"):
            runner.approve("DB-001")
    assert (workspace / "src/shop/db/models.py").exists()
    assert len(list(repo.iter_commits(grep="Task: DB-001"))) == 1


def test_reject_ends_blocked_with_the_reason(workspace: Path) -> None:
    _require_approval(workspace, "DB-001")
    with Runner.open(workspace) as runner:
        assert runner.run("DB-001").waiting
        outcome = runner.reject("DB-001", "use BIGINT keys")

    assert outcome.status == "BLOCKED"
    task = load_task(workspace / "docs/backlog/DB-001.yaml").task
    assert task.status == "BLOCKED"
    assert "rejected at the approval gate: use BIGINT keys" in (
        task.blocked_reason or ""
    )


def _sparc(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "sparc"), "-C", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.slow
def test_approval_across_processes(workspace: Path, tmp_path: Path) -> None:
    """Pause in one process, approve (or reject) from another, later."""
    _require_approval(workspace, "DB-001")
    run = _sparc(workspace, "run", "DB-001")
    assert run.returncode == 0, run.stderr
    assert "DB-001 waiting for approval at refinement" in run.stdout

    shown = _sparc(workspace, "backlog")
    assert "IN_PROGRESS" in shown.stdout
    assert "DB-001 waiting for approval at refinement" in shown.stdout

    approved = _sparc(workspace, "approve", "DB-001")
    assert approved.returncode == 0, approved.stderr
    assert "DB-001 COMPLETE" in approved.stdout
    assert "waiting" not in _sparc(workspace, "backlog").stdout

    _require_approval(workspace, "DB-002")
    git.Repo(workspace).index.commit("approval wanted")  # keep the tree clean
    assert "waiting" in _sparc(workspace, "run", "DB-002").stdout
    rejected = _sparc(workspace, "reject", "DB-002", "--reason", "not today")
    assert rejected.returncode == 1
    task = load_task(workspace / "docs/backlog/DB-002.yaml").task
    assert task.status == "BLOCKED"
    assert "not today" in (task.blocked_reason or "")


class _Spender:
    """An engine whose reviews report model use: much at first, then little."""

    def __init__(self) -> None:
        self.tokens = [400, 100]

    def work(self, context: WorkContext) -> WorkResult:
        return WorkResult()

    def review(self, context: WorkContext) -> Review:
        assert context.meter is not None
        tokens = self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]
        context.meter.charge(tokens=tokens, cost=0.01, steps=1)
        return Review(verdict="approve", usage=Usage(tokens=tokens, steps=1))


def test_a_token_budget_pauses_then_an_approval_extends_it(workspace: Path) -> None:
    engines = EngineRegistry.default()
    engines.use("quality-engineer", _Spender())
    budget = BudgetSettings(task=BudgetLimits(tokens=300), on_exceed="pause")

    with Runner.open(workspace, engines=engines, budget=budget) as runner:
        outcome = runner.run("DB-001")
        assert outcome.waiting
        assert "task tokens budget reached" in outcome.reason
        outcome = runner.approve("DB-001")
    assert outcome.complete, outcome.reason

    saved = (workspace / ".sparc/runs/DB-001.json").read_text()
    assert '"per_persona"' in saved and '"quality-engineer"' in saved


def test_a_budget_set_to_block_blocks_naming_the_limit(workspace: Path) -> None:
    engines = EngineRegistry.default()
    engines.use("quality-engineer", _Spender())
    budget = BudgetSettings(task=BudgetLimits(cost=0.005), on_exceed="block")

    with Runner.open(workspace, engines=engines, budget=budget) as runner:
        outcome = runner.run("DB-001")

    assert outcome.status == "BLOCKED"
    assert "task cost budget reached" in outcome.reason


class _SteadySpender:
    """Every review uses 200 tokens."""

    def work(self, context: WorkContext) -> WorkResult:
        return WorkResult()

    def review(self, context: WorkContext) -> Review:
        assert context.meter is not None
        context.meter.charge(tokens=200, steps=1)
        return Review(verdict="approve")


def test_a_batch_budget_counts_every_run_of_the_batch(workspace: Path) -> None:
    engines = EngineRegistry.default()
    engines.use("quality-engineer", _SteadySpender())
    budget = BudgetSettings(
        task=BudgetLimits(tokens=300), batch=BudgetLimits(tokens=500), on_exceed="block"
    )

    with Runner.open(workspace, engines=engines, budget=budget) as runner:
        outcomes = runner.batch()

    assert [(o.task_id, o.status) for o in outcomes] == [
        ("DB-001", "COMPLETE"),
        ("DB-002", "COMPLETE"),
        ("DB-003", "BLOCKED"),
    ]
    assert "batch tokens budget reached" in outcomes[-1].reason
