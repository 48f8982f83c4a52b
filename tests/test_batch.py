"""Tests for sparc.batch: parallel scheduling, priorities, reports and git states."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from sparc.backlog import Backlog, TaskStatus, load_task
from sparc.batch import (
    WHOLE_WORKSPACE,
    BatchResult,
    ProgressDisplay,
    TaskRun,
    format_progress,
    paths_overlap,
    predicted_paths,
    run_batch,
)
from sparc.config import load_config
from sparc.engines import EngineRegistry, Review, WorkContext, WorkResult
from sparc.errors import ConfigError, GitError
from sparc.init import init_workspace
from sparc.runner import Runner

BOT = "Batch Bot <batch-bot@example.invalid>"
_SETUP_IDENTITY = {
    "GIT_AUTHOR_NAME": "Setup",
    "GIT_AUTHOR_EMAIL": "setup@example.invalid",
    "GIT_COMMITTER_NAME": "Setup",
    "GIT_COMMITTER_EMAIL": "setup@example.invalid",
}
RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}

# one table per data task; each task only adds to the schema of the one before
_TABLE_SQL = """CREATE TABLE {name} (
    id BIGSERIAL PRIMARY KEY,
    label VARCHAR(80) NOT NULL
);
"""


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **_SETUP_IDENTITY},
    )
    return result.stdout


def _task_yaml(
    task_id: str,
    *,
    priority: str = "medium",
    depends_on: tuple[str, ...] = (),
    specialist: str = "python-engineer",
    phases: tuple[str, ...] = ("specification", "pseudocode"),
    references: tuple[str, ...] = (),
) -> str:
    return (
        f"id: {task_id}\n"
        f"title: Task {task_id}\n"
        f"specialist: {specialist}\n"
        "status: NEW\n"
        f"priority: {priority}\n"
        f"depends_on: [{', '.join(depends_on)}]\n"
        f"references: [{', '.join(references)}]\n"
        f"phases: [{', '.join(phases)}]\n"
    )


def _workspace(
    root: Path, tasks: dict[str, str], data: dict[str, str] | None = None
) -> Path:
    root.mkdir(parents=True)
    backlog = root / "docs" / "backlog"
    backlog.mkdir(parents=True)
    for task_id, text in tasks.items():
        (backlog / f"{task_id}.yaml").write_text(text)
    for relative, text in (data or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    init_workspace(root, project="shop", identity=BOT)
    return root


def _thirty_tasks() -> tuple[dict[str, str], dict[str, str]]:
    """27 document tasks in a dependency web and 3 data tasks all ready at once."""
    priorities = ["low", "medium", "high", "critical"]
    tasks: dict[str, str] = {}
    for n in range(27):
        task_id = f"APP-{n:02d}"
        depends = ()
        if n >= 9:
            depends = (f"APP-{n - 9:02d}",)
        if n >= 18:
            depends = (*depends, f"APP-{n - 17:02d}")
        tasks[task_id] = _task_yaml(
            task_id, priority=priorities[(n * 7) % 4], depends_on=depends
        )
    data: dict[str, str] = {}
    for task_id, priority, table in (
        ("DB-1", "low", "labels"),
        ("DB-2", "critical", "badges"),
        ("DB-3", "high", "ribbons"),
    ):
        sql = f"docs/data/{table}.sql"
        data[sql] = _TABLE_SQL.format(name=table)
        tasks[task_id] = _task_yaml(
            task_id,
            priority=priority,
            specialist="database-engineer",
            phases=("refinement",),
            references=(sql,),
        )
    return tasks, data


@pytest.mark.slow
def test_thirty_tasks_with_four_workers(tmp_path: Path, git_env: None) -> None:
    tasks, data = _thirty_tasks()
    root = _workspace(tmp_path / "ws", tasks, data)
    commits_before = int(_git(root, "rev-list", "--count", "HEAD"))
    backlog = Backlog.load(root / "docs" / "backlog")
    events: list[tuple[str, str]] = []

    with Runner.open(root, engines=EngineRegistry.default()) as runner:
        result = run_batch(
            runner,
            workers=4,
            on_start=lambda task_id: events.append(("start", task_id)),
            on_finish=lambda run: events.append(("finish", run.task_id)),
        )

    # every run completed, no git error anywhere
    assert [r.outcome.reason for r in result.blocked] == []
    assert sorted(r.task_id for r in result.runs) == sorted(tasks)
    assert result.exit_code == 0 and result.not_run == {}

    # dependencies finished before their dependents started
    finished: set[str] = set()
    started: set[str] = set()
    running: set[str] = set()
    data_tasks = {t for t in tasks if t.startswith("DB-")}
    for kind, task_id in events:
        if kind == "finish":
            finished.add(task_id)
            running.discard(task_id)
            continue
        task = backlog.get(task_id).task
        assert set(task.depends_on) <= finished, task_id

        # priority: no more urgent ready task was passed over unless it had to
        # wait for a running (or more urgent) task writing the same files
        ready = [
            other
            for other in tasks
            if other not in started
            and set(backlog.get(other).task.depends_on) <= finished
        ]
        for other in ready:
            other_task = backlog.get(other).task
            if (RANK[other_task.priority], other) >= (RANK[task.priority], task_id):
                continue
            assert other in data_tasks, f"{task_id} started before {other}"
            assert running & data_tasks or any(
                d in ready
                and RANK[backlog.get(d).task.priority] < RANK[other_task.priority]
                for d in data_tasks
            )
        started.add(task_id)
        running.add(task_id)

    # tasks writing the same files (the models) ran one at a time, most urgent first
    data_runs = sorted(
        (r for r in result.runs if r.task_id in data_tasks), key=lambda r: r.started
    )
    assert [r.task_id for r in data_runs] == ["DB-2", "DB-3", "DB-1"]
    for earlier, later in zip(data_runs, data_runs[1:], strict=False):
        assert earlier.started + earlier.duration <= later.started + 1e-6

    # and their revisions form one chain with a single head (case 28, E5)
    config = Config(str(root / "alembic" / "alembic.ini"))
    config.set_main_option("script_location", str(root / "alembic"))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    assert len(list(script.walk_revisions())) == 3

    # one commit per task, each carrying its own task file
    log = _git(root, "log", "--format=%(trailers:key=Task,valueonly)%x00")
    committed = [t.strip() for t in log.split("\0") if t.strip()]
    assert sorted(committed) == sorted(tasks)
    assert int(_git(root, "rev-list", "--count", "HEAD")) == commits_before + 30
    # every commit under the workspace's identity: git has none configured here
    people = _git(root, "log", "-30", "--format=%an <%ae>|%cn <%ce>").splitlines()
    assert set(people) == {f"{BOT}|{BOT}"}
    assert _git(root, "status", "--porcelain") == ""
    for task_id in tasks:
        task_file = load_task(root / "docs" / "backlog" / f"{task_id}.yaml")
        assert task_file.task.status is TaskStatus.COMPLETE

    # the JSON report names every run with what the CLI promises
    report = json.loads(json.dumps(result.as_report()))
    assert report["summary"]["complete"] == 30
    assert report["summary"]["workers"] == 4
    by_id = {entry["task_id"]: entry for entry in report["tasks"]}
    assert sorted(by_id) == sorted(tasks)
    heads = set(committed)
    for task_id, entry in by_id.items():
        assert entry["status"] == "COMPLETE"
        assert len(entry["commit"]) == 40
        assert entry["reason"] == ""
        assert entry["duration_s"] > 0
        assert isinstance(entry["findings"], list)
        expected = (
            ["refinement"] if task_id in data_tasks else ["specification", "pseudocode"]
        )
        assert entry["phases"] == expected
        assert task_id in heads


class _Failing:
    """Fails one task's work and approves everything."""

    def __init__(self, failing: str) -> None:
        self.failing = failing

    def work(self, context: WorkContext) -> WorkResult:
        if context.task.task.id == self.failing:
            raise ValueError("disk on fire")
        path = f"docs/notes/{context.task.task.id}-{context.phase}.md"
        return WorkResult(files={path: f"# {context.phase}\n"})

    def review(self, context: WorkContext) -> Review:
        return Review(verdict="approve")

    def predicted_paths(self, phase: str, task_id: str, config: object) -> set[str]:
        return {f"docs/notes/{task_id}-{phase}.md"}


def _failing_runner(root: Path, failing: str) -> Runner:
    engines = EngineRegistry(fallback=lambda: _Failing(failing))
    return Runner.open(root, engines=engines)


def test_a_failed_task_is_blocked_and_the_rest_continue(
    tmp_path: Path, git_env: None
) -> None:
    tasks = {
        "T-1": _task_yaml("T-1", priority="critical", phases=("specification",)),
        "T-2": _task_yaml("T-2", depends_on=("T-1",), phases=("specification",)),
        "T-3": _task_yaml("T-3", priority="low", phases=("specification",)),
    }
    root = _workspace(tmp_path / "ws", tasks)

    with _failing_runner(root, "T-1") as runner:
        result = run_batch(runner, workers=2)

    assert [r.task_id for r in result.complete] == ["T-3"]
    assert [r.task_id for r in result.blocked] == ["T-1"]
    assert "disk on fire" in result.blocked[0].outcome.reason
    assert result.not_run == {"T-2": "waits for T-1 (BLOCKED)"}
    assert result.exit_code == 1
    blocked = load_task(root / "docs" / "backlog" / "T-1.yaml").task
    assert blocked.status is TaskStatus.BLOCKED
    assert "disk on fire" in (blocked.blocked_reason or "")
    report = result.as_report()
    assert report["not_run"] == [
        {"task_id": "T-2", "reason": "waits for T-1 (BLOCKED)"}
    ]


def test_fail_fast_stops_at_the_first_blocked_task(
    tmp_path: Path, git_env: None
) -> None:
    tasks = {
        "T-1": _task_yaml("T-1", priority="critical", phases=("specification",)),
        "T-2": _task_yaml("T-2", priority="high", phases=("specification",)),
        "T-3": _task_yaml("T-3", priority="low", phases=("specification",)),
    }
    root = _workspace(tmp_path / "ws", tasks)

    with _failing_runner(root, "T-1") as runner:
        result = run_batch(runner, workers=1, fail_fast=True)

    assert [r.task_id for r in result.runs] == ["T-1"]
    assert result.stopped_early
    assert set(result.not_run) == {"T-2", "T-3"}
    assert "--fail-fast" in result.summary()


def test_each_run_reads_its_own_task_file_and_its_dependencies_only(
    tmp_path: Path, git_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reads the backlog once; a run never reads the tasks of others."""
    from sparc import backlog as backlog_module
    from sparc import runtime as runtime_module

    tasks = {
        f"T-{n:02d}": _task_yaml(
            f"T-{n:02d}",
            depends_on=(f"T-{n - 1:02d}",) if n else (),
            phases=("specification",),
        )
        for n in range(12)
    }
    root = _workspace(tmp_path / "ws", tasks)
    reads: dict[str, int] = dict.fromkeys(tasks, 0)

    def counting(module: object) -> None:
        real = module.load_task  # type: ignore[attr-defined]

        def load_task(path: Path) -> object:
            reads[path.stem] += 1
            return real(path)

        monkeypatch.setattr(module, "load_task", load_task)

    with _failing_runner(root, "none") as runner:
        counting(backlog_module)
        counting(runtime_module)
        result = run_batch(runner, workers=2)

    assert len(result.complete) == len(tasks)
    # once by its own run, once by its dependent's (the batch's plan reads the
    # folder through Backlog.load, not through load_task)
    assert reads == {task_id: 1 if task_id == "T-11" else 2 for task_id in tasks}


def test_workers_must_be_positive(tmp_path: Path, git_env: None) -> None:
    root = _workspace(tmp_path / "ws", {"T-1": _task_yaml("T-1")})
    with (
        Runner.open(root, engines=EngineRegistry.default()) as runner,
        pytest.raises(ConfigError, match="workers"),
    ):
        run_batch(runner, workers=0)


def test_predicted_paths_of_data_and_document_tasks(
    tmp_path: Path, git_env: None
) -> None:
    tasks, data = _thirty_tasks()
    root = _workspace(tmp_path / "ws", tasks, data)
    config = load_config(root)
    backlog = Backlog.load(root / "docs" / "backlog")

    data_paths = predicted_paths(backlog.get("DB-1"), config)
    doc_paths = predicted_paths(backlog.get("APP-00"), config)

    assert "src/shop/db/models.py" in data_paths
    assert "alembic/" in data_paths
    assert doc_paths == {
        "docs/backlog/APP-00.yaml",
        "docs/specification/APP-00.md",
        "docs/design/pseudocode/APP-00.md",
    }
    with Runner.open(root, engines=EngineRegistry.default()) as runner:
        assert (
            predicted_paths(backlog.get("DB-1"), config, runtime=runner.runtime)
            == data_paths
        )
    assert paths_overlap(data_paths, predicted_paths(backlog.get("DB-2"), config))
    assert not paths_overlap(doc_paths, data_paths)
    assert paths_overlap({"alembic/"}, {"alembic/versions/001_x.py"})
    assert paths_overlap({WHOLE_WORKSPACE}, {"README.md"})


def test_progress_bar_and_plain_lines() -> None:
    assert format_progress(0, 4, width=8) == "[--------] 0/4"
    assert format_progress(2, 4, running=["A", "B"], width=8) == (
        "[####----] 2/4 running: A, B"
    )

    from io import StringIO

    from sparc.runner import RunOutcome

    run = TaskRun(
        outcome=RunOutcome(task_id="T-1", run_id="r", status="BLOCKED", reason="no"),
        started=0.0,
        duration=1.25,
    )
    plain = StringIO()
    display = ProgressDisplay(plain, total=1, terminal=False)
    display.started("T-1")
    display.finished(run)
    display.close()
    assert plain.getvalue() == "T-1 BLOCKED 1.2s: no\n"

    terminal = StringIO()
    display = ProgressDisplay(terminal, total=1, terminal=True)
    display.started("T-1")
    display.finished(run)
    display.close()
    assert "[" in terminal.getvalue() and "\r" in terminal.getvalue()
    assert BatchResult(runs=[run]).exit_code == 1


# git states: each refused with a clear error before any work


def test_not_a_repository_is_refused_before_any_work(
    tmp_path: Path, git_env: None
) -> None:
    root = tmp_path / "plain"
    (root / "docs" / "backlog").mkdir(parents=True)
    (root / "docs" / "backlog" / "T-1.yaml").write_text(_task_yaml("T-1"))

    with pytest.raises(GitError, match=r"is not a git repository; run `sparc init`"):
        Runner.open(root, engines=EngineRegistry.default())
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["T-1.yaml"]


def test_detached_head_is_refused_before_any_work(
    tmp_path: Path, git_env: None
) -> None:
    root = _workspace(tmp_path / "ws", {"T-1": _task_yaml("T-1")})
    _git(root, "checkout", "--quiet", "--detach", "HEAD")

    with pytest.raises(GitError, match=r"HEAD is detached at [0-9a-f]{12}; check out"):
        Runner.open(root, engines=EngineRegistry.default())
    assert _git(root, "status", "--porcelain") == ""


def test_no_identity_is_refused_before_any_work(tmp_path: Path, git_env: None) -> None:
    root = _workspace(tmp_path / "ws", {"T-1": _task_yaml("T-1")})
    config = root / ".sparc" / "config.yaml"
    config.write_text("project: shop\n")
    _git(root, "commit", "--quiet", "-am", "no identity")

    with pytest.raises(
        ConfigError,
        match=r"no git identity for sparc's commits \(missing name and email\)",
    ):
        Runner.open(root, engines=EngineRegistry.default())
    assert _git(root, "status", "--porcelain") == ""


def test_a_dirty_file_a_task_would_overwrite_stops_the_batch_before_any_work(
    tmp_path: Path, git_env: None
) -> None:
    tasks = {
        "T-1": _task_yaml("T-1", phases=("specification",)),
        "T-2": _task_yaml("T-2", phases=("specification",)),
    }
    root = _workspace(tmp_path / "ws", tasks)
    mine = root / "docs" / "specification" / "T-2.md"
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("my own notes\n")

    with (
        Runner.open(root, engines=EngineRegistry.default()) as runner,
        pytest.raises(
            GitError,
            match=r"uncommitted changes in 1 file\(s\) sparc would overwrite: "
            r"docs/specification/T-2.md \(untracked\)",
        ),
    ):
        run_batch(runner, workers=2)

    assert mine.read_text() == "my own notes\n"
    for task_id in tasks:
        task_file = load_task(root / "docs" / "backlog" / f"{task_id}.yaml")
        assert task_file.task.status is TaskStatus.NEW


def test_a_live_index_lock_is_waited_for_then_reported_never_deleted(
    tmp_path: Path, git_env: None
) -> None:
    root = _workspace(
        tmp_path / "ws", {"T-1": _task_yaml("T-1", phases=("specification",))}
    )
    config = root / ".sparc" / "config.yaml"
    settings = config.read_text()
    assert "lock_timeout: 30\n" in settings
    config.write_text(settings.replace("lock_timeout: 30\n", "lock_timeout: 0.3\n"))
    _git(root, "commit", "--quiet", "-am", "short lock timeout")
    lock = root / ".git" / "index.lock"
    lock.write_text("held by another program\n")
    inode = lock.stat().st_ino

    with Runner.open(root, engines=EngineRegistry.default()) as runner:
        result = run_batch(runner, workers=1)

    assert [r.task_id for r in result.blocked] == ["T-1"]
    reason = result.blocked[0].outcome.reason
    assert "index.lock is held by another git process (waited 0.3 s)" in reason
    assert lock.stat().st_ino == inode
    assert load_task(root / "docs" / "backlog" / "T-1.yaml").task.status is (
        TaskStatus.BLOCKED
    )
