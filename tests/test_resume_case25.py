"""Case 25: resuming after an approval and a crash repeats no side effect.

Scenario (from the case file): start -> interrupted for approval -> approve ->
the process dies right after the migration was applied -> resume from the last
checkpoint -> completed. Writing the revision file, applying the migration to
the scratch database and committing must each have happened exactly once.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypedDict

import git
import pytest
import sqlalchemy as sa
import yaml
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

import sparc
from sparc import gitops
from sparc.agents.hephaestus import engine as hephaestus_engine
from sparc.init import init_workspace
from sparc.runner import Runner
from sparc.workspace import Workspace
from tests.conftest import CASES

CASE = CASES / "25-langgraph-resume-side-effects.yaml"

pytestmark = pytest.mark.skipif(
    not CASE.is_file() and os.environ.get("CI") != "true",
    reason=f"shared case not found at {CASE}",
)


class _Killed(BaseException):
    """The process dying: nothing after it runs, no checkpoint is written."""


def _column_ddl(request: dict[str, Any]) -> str:
    change = request["add_column"]
    column = change["column"]
    null = "" if column.get("nullable", True) else " NOT NULL"
    return (
        f"ALTER TABLE {change['table']} ADD COLUMN {column['name']} "
        f"{column['type']}{null};\n"
    )


def _workspace(root: Path) -> tuple[Path, dict[str, Any]]:
    case = yaml.safe_load(CASE.read_text())
    task = case["task"]
    (root / "docs/data").mkdir(parents=True)
    (root / "docs/backlog").mkdir(parents=True)
    (root / "docs/data/baseline.sql").write_text(task["baseline_ddl"])
    (root / "docs/data/change.sql").write_text(
        "".join(_column_ddl(r) for r in task["request"])
    )
    (root / "docs/backlog/DB-124.yaml").write_text(
        "id: DB-124\ntitle: Baseline invoice table\nspecialist: database-engineer\n"
        "status: NEW\nreferences: [docs/data/baseline.sql]\nphases: [refinement]\n"
    )
    approval = task["workflow"]["require_human_approval"]
    (root / f"docs/backlog/{task['id']}.yaml").write_text(
        f"id: {task['id']}\ntitle: {task['title']}\nspecialist: database-engineer\n"
        "status: NEW\ndepends_on: [DB-124]\nreferences: [docs/data/change.sql]\n"
        "phases: [refinement]\n"
        + ("require_approval: [refinement]\n" if approval else "")
    )
    init_workspace(root, project="billing")
    return root, case


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Counts of the three side effects; `kill_after_apply` arms a crash."""
    counts: dict[str, Any] = {
        "write_files": 0,
        "apply_migration": 0,
        "git_commit": 0,
        "kill_after_apply": False,
    }
    real_write = Workspace.write_text

    def counting_write(self: Workspace, relative: str, text: str, **kw: Any) -> bool:
        wrote = real_write(self, relative, text, **kw)
        if wrote and "/versions/" in relative:
            counts["write_files"] += 1
        return wrote

    real_upgrade = hephaestus_engine.command.upgrade

    def counting_upgrade(config: Any, revision: str) -> None:
        real_upgrade(config, revision)
        counts["apply_migration"] += 1
        if counts["kill_after_apply"]:
            counts["kill_after_apply"] = False
            raise _Killed

    real_commit = gitops.commit_paths

    def counting_commit(*args: Any, **kwargs: Any) -> str:
        counts["git_commit"] += 1
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(Workspace, "write_text", counting_write)
    monkeypatch.setattr(
        hephaestus_engine, "command", SimpleNamespace(upgrade=counting_upgrade)
    )
    monkeypatch.setattr(gitops, "commit_paths", counting_commit)
    return counts


def _effects(counts: dict[str, Any]) -> tuple[int, int, int]:
    return counts["write_files"], counts["apply_migration"], counts["git_commit"]


def _check_results(root: Path, task_id: str) -> None:
    # E1: one revision file for the task, E3: one commit naming it
    revisions = [
        p for p in (root / "alembic/versions").glob("*.py") if task_id in p.read_text()
    ]
    assert len(revisions) == 1
    repo = git.Repo(root)
    assert len(list(repo.iter_commits(grep=f"Task: {task_id}"))) == 1

    # E2: the scratch database holds the task's revision and the new column
    scratch = sa.create_engine(f"sqlite:///{root}/.sparc/scratch/{task_id}.sqlite3")
    with scratch.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        assert version.scalar_one() in revisions[0].read_text()
        columns = {c["name"] for c in sa.inspect(connection).get_columns("invoice")}
    scratch.dispose()
    assert "note" in columns


def test_case_25_side_effects_happen_once(
    tmp_path: Path, counters: dict[str, Any]
) -> None:
    root, case = _workspace(tmp_path / "billing")
    task_id = case["task"]["id"]
    with Runner.open(root) as runner:
        assert runner.run("DB-124").complete
    counters.update(write_files=0, apply_migration=0, git_commit=0)

    # start -> interrupted at the approval gate; nothing has happened yet
    with Runner.open(root) as runner:
        outcome = runner.run(task_id)
    assert outcome.waiting and outcome.waiting_at == "refinement"
    assert _effects(counters) == (0, 0, 0)

    # approve, and the process dies right after the migration is applied
    counters["kill_after_apply"] = True
    with Runner.open(root) as runner, pytest.raises(_Killed):
        runner.approve(task_id)
    assert _effects(counters) == (1, 1, 0)

    # a new process resumes from the last checkpoint and completes
    with Runner.open(root) as runner:
        outcome = runner.resume(task_id)
    assert outcome.complete, outcome.reason
    assert _effects(counters) == (1, 1, 1)

    _check_results(root, task_id)


def test_case_25_with_the_approval_inside_a_subgraph(
    tmp_path: Path, counters: dict[str, Any]
) -> None:
    """E6: sparc mounted in a parent graph; the parent resumes after the crash."""
    root, case = _workspace(tmp_path / "billing")
    task_id = case["task"]["id"]
    with Runner.open(root) as runner:
        assert runner.run("DB-124").complete
    counters.update(write_files=0, apply_migration=0, git_commit=0)
    checkpoints = tmp_path / "parent.sqlite"
    config = {"configurable": {"thread_id": case["scenario"]["thread_id"]}}

    with _parent_app(root, checkpoints) as app:
        paused = app.invoke(
            {"task_id": task_id, "run_id": f"{task_id}:embedded", "reason": ""},
            config,
        )
        assert paused["__interrupt__"][0].value["phase"] == "refinement"
        assert _effects(counters) == (0, 0, 0)

        counters["kill_after_apply"] = True
        with pytest.raises(_Killed):
            app.invoke(Command(resume={"approved": True}), config)
        assert _effects(counters) == (1, 1, 0)

    with _parent_app(root, checkpoints) as app:
        final = app.invoke(None, config)
    assert final["status"] == "COMPLETE", final.get("reason")
    assert _effects(counters) == (1, 1, 1)
    _check_results(root, task_id)


class _ParentState(TypedDict, total=False):
    task_id: str
    run_id: str
    status: str
    reason: str
    commit: str


@contextmanager
def _parent_app(root: Path, checkpoints: Path) -> Iterator[Any]:
    """A parent graph with sparc as its only node, checkpointed in SQLite."""
    connection = sqlite3.connect(str(checkpoints), check_same_thread=False)
    try:
        parent = StateGraph(_ParentState)
        parent.add_node("sparc", sparc.build_graph(root))
        parent.add_edge(START, "sparc")
        parent.add_edge("sparc", END)
        yield parent.compile(checkpointer=SqliteSaver(connection))
    finally:
        connection.close()
