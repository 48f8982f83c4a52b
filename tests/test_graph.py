"""The SPARC graph: routing by persona cards, gates, and the run's own record."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sparc.backlog import load_task
from sparc.engines import EngineRegistry, Finding, Review, WorkContext, WorkResult
from sparc.init import init_workspace
from sparc.runner import Runner
from sparc.workflow import builtin_workflow

PHASES = (
    "specification",
    "pseudocode",
    "architecture",
    "planning",
    "refinement",
    "completion",
)


def _all_phases(workspace: Path, task_id: str) -> None:
    """Let a shop task run through every phase instead of Refinement only."""
    path = workspace / "docs/backlog" / f"{task_id}.yaml"
    path.write_text(path.read_text().replace("phases: [refinement]\n", ""))


@pytest.fixture
def workspace(shop_workspace: Path) -> Path:
    init_workspace(shop_workspace)
    return shop_workspace


def test_hephaestus_roles_from_the_runs_own_record(workspace: Path) -> None:
    """Owner only in Refinement, reviewer in four support phases, never Planning."""
    _all_phases(workspace, "DB-001")

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    hephaestus = [r for r in outcome.record if r["persona"] == "hephaestus"]
    owned = {r["phase"] for r in hephaestus if r["role"] == "primary"}
    reviewed = {r["phase"] for r in hephaestus if r["role"] == "support"}
    assert owned == {"refinement"}
    assert reviewed == {"specification", "pseudocode", "architecture", "completion"}
    assert all(r["phase"] != "planning" for r in hephaestus)

    # every phase ran, in SPARC order, each with one primary
    primaries = [r["phase"] for r in outcome.record if r["role"] == "primary"]
    assert primaries == list(PHASES)

    # the record written to .sparc/runs says the same
    saved = yaml.safe_load((workspace / ".sparc/runs/DB-001.json").read_text())
    assert saved["record"] == outcome.record


class _AlwaysRevise:
    """A reviewer that never approves."""

    def work(self, context: WorkContext) -> WorkResult:
        return WorkResult()

    def review(self, context: WorkContext) -> Review:
        return Review(
            verdict="revise",
            findings=(
                Finding(
                    code="QA001",
                    severity="error",
                    message="money stored in a FLOAT column",
                    category="wrong-data-type",
                ),
            ),
        )


def test_revise_rounds_are_bounded_and_end_blocked(workspace: Path) -> None:
    """A phase never approved ends BLOCKED with the reason in the task file."""
    engines = EngineRegistry.default()
    engines.use("quality-engineer", _AlwaysRevise())

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.status == "BLOCKED"
    work_rounds = [
        r
        for r in outcome.record
        if r["phase"] == "refinement" and r["role"] == "primary"
    ]
    # the first round, then one per allowed revision
    bound = builtin_workflow("sparc").policy("refinement").max_review_rounds
    assert len(work_rounds) == 1 + bound
    task = load_task(workspace / "docs/backlog/DB-001.yaml").task
    assert task.status == "BLOCKED"
    assert "money stored in a FLOAT column" in (task.blocked_reason or "")
    # nothing the run wrote is left behind
    assert not (workspace / "src/shop/db/models.py").exists()
    assert not list((workspace / "alembic/versions").glob("*.py"))


def test_a_complete_task_commits_once_with_trailers(workspace: Path) -> None:
    """One commit per task run, holding the run's files and the task file."""
    import git

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-001")
    assert outcome.complete, outcome.reason

    repo = git.Repo(workspace)
    head = repo.head.commit
    assert head.hexsha == outcome.commit
    assert "Task: DB-001" in head.message
    assert "Agent: hephaestus" in head.message
    assert "Phase: refinement" in head.message
    assert head.message.startswith("feat(db): ")
    files = set(head.stats.files)
    assert "docs/backlog/DB-001.yaml" in files
    assert "src/shop/db/models.py" in files
    assert repo.is_dirty(untracked_files=True) is False


def test_completing_clears_an_earlier_blocked_reason(workspace: Path) -> None:
    """A task that once ended BLOCKED and is then completed keeps no stale reason."""
    import git

    from sparc.backlog import TaskStatus, set_status

    path = workspace / "docs/backlog/DB-001.yaml"
    set_status(path, TaskStatus.BLOCKED, reason="earlier trouble")
    set_status(path, TaskStatus.READY)
    git.Repo(workspace).git.commit("-am", "retry DB-001")

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    task = load_task(path).task
    assert task.status == "COMPLETE"
    assert not task.blocked_reason


def _count_task_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count how often the runtime reads each task file, by file name."""
    from sparc import runtime as runtime_module

    reads: dict[str, int] = {}
    real = runtime_module.load_task

    def counting(path: Path) -> object:
        reads[path.name] = reads.get(path.name, 0) + 1
        return real(path)

    monkeypatch.setattr(runtime_module, "load_task", counting)
    return reads


def test_a_run_reads_its_task_file_once(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes and routers work from what the run read, not from the file again."""
    _all_phases(workspace, "DB-002")
    with Runner.open(workspace) as runner:
        assert runner.run("DB-001").complete
        reads = _count_task_reads(monkeypatch)
        outcome = runner.run("DB-002")

    assert outcome.complete, outcome.reason
    # its own file, and the one it depends on for that task's status
    assert reads == {"DB-002.yaml": 1, "DB-001.yaml": 1}
    assert load_task(workspace / "docs/backlog/DB-002.yaml").task.status == "COMPLETE"


def _ready_again(workspace: Path, task_id: str) -> Path:
    import git

    from sparc.backlog import TaskStatus, set_status

    path = workspace / "docs/backlog" / f"{task_id}.yaml"
    set_status(path, TaskStatus.READY)
    git.Repo(workspace).git.commit("-am", f"run {task_id} again")
    return path


class _Idle:
    """Does nothing and approves: only the task file changes in a run."""

    def work(self, context: WorkContext) -> WorkResult:
        return WorkResult()

    def review(self, context: WorkContext) -> Review:
        return Review(verdict="approve")


def test_a_task_run_again_ends_complete_and_committed(workspace: Path) -> None:
    """A rerun with the same content is a new run: its status change is committed."""
    import git

    engines = EngineRegistry(fallback=_Idle)
    with Runner.open(workspace, engines=engines) as runner:
        first = runner.run("DB-001")
        path = _ready_again(workspace, "DB-001")
        again = runner.run("DB-001")

    assert again.complete, again.reason
    assert again.run_id == first.run_id
    assert again.commit and again.commit != first.commit
    assert load_task(path).task.status == "COMPLETE"
    repo = git.Repo(workspace)
    assert repo.head.commit.hexsha == again.commit
    assert repo.is_dirty(untracked_files=True) is False


def test_a_resumed_rerun_commits_instead_of_finding_the_first_run(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted rerun does not take the first run's commit for its own."""
    import git

    from sparc import gitops

    class Killed(BaseException):
        """The process dying before the rerun's commit."""

    engines = EngineRegistry(fallback=_Idle)
    with Runner.open(workspace, engines=engines) as runner:
        first = runner.run("DB-001")
    path = _ready_again(workspace, "DB-001")

    real_commit = gitops.commit_paths

    def dying(*args: object, **kwargs: object) -> str | None:
        raise Killed

    monkeypatch.setattr(gitops, "commit_paths", dying)
    with Runner.open(workspace, engines=engines) as runner, pytest.raises(Killed):
        runner.run("DB-001")
    monkeypatch.setattr(gitops, "commit_paths", real_commit)

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.resume("DB-001")

    assert outcome.complete, outcome.reason
    assert outcome.run_id == first.run_id
    assert outcome.commit and outcome.commit != first.commit
    assert load_task(path).task.status == "COMPLETE"
    assert git.Repo(workspace).is_dirty(untracked_files=True) is False
