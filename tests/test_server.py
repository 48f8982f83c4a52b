"""The SPARC graph on LangGraph Server: `langgraph dev` runs a two-task backlog."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from sparc.backlog import Backlog, TaskStatus
from sparc.init import init_workspace
from tests.conftest import IN_CI, REPO_ROOT

IDENTITY = "Sparc Tests <tests@example.invalid>"

LIBRARY_DDL = """\
CREATE TABLE authors (
    id SERIAL PRIMARY KEY,
    name VARCHAR(200) NOT NULL
);
CREATE TABLE books (
    id SERIAL PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES authors(id),
    title VARCHAR(300) NOT NULL,
    published DATE
);
"""

LOANS_DDL = """\
CREATE TABLE loans (
    id SERIAL PRIMARY KEY,
    book_id INTEGER NOT NULL REFERENCES books(id),
    borrowed_on DATE NOT NULL
);
"""

TASK = """\
id: {id}
title: {title}
specialist: database-engineer
status: READY
priority: {priority}
depends_on: [{depends}]
references: [{ddl}]
acceptance_criteria: [Every table has a primary key]
phases: [refinement]
"""


def library_workspace(root: Path) -> Path:
    """A workspace with two data tasks, the second depending on the first.

    The dependent task has the higher priority, so only honouring the
    dependency runs them in the right order.
    """
    init_workspace(root, project="library", identity=IDENTITY)
    data = root / "docs" / "data"
    data.mkdir(parents=True)
    (data / "library.sql").write_text(LIBRARY_DDL, encoding="utf-8")
    (data / "loans.sql").write_text(LOANS_DDL, encoding="utf-8")
    backlog = root / "docs" / "backlog"
    (backlog / "DB-001.yaml").write_text(
        TASK.format(
            id="DB-001",
            title="Create the library tables",
            priority="low",
            depends="",
            ddl="docs/data/library.sql",
        ),
        encoding="utf-8",
    )
    (backlog / "DB-002.yaml").write_text(
        TASK.format(
            id="DB-002",
            title="Add book loans",
            priority="critical",
            depends="DB-001",
            ddl="docs/data/loans.sql",
        ),
        encoding="utf-8",
    )
    repo = git.Repo(root)
    repo.git.add("--all")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Library Author")
        config.set_value("user", "email", "author@example.invalid")
    repo.git.commit("-m", "docs: library backlog")
    return root


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_environment() -> dict[str, str]:
    """The test's environment with every phone-home switch of the server off."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_"))
        and key != "SPARC_WORKSPACE"
    }
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
    )
    return env


@pytest.fixture
def dev_server(tmp_path: Path, git_env: None) -> Iterator[str]:
    """`langgraph dev` serving the repository's langgraph.json on a loopback port."""
    langgraph = Path(sys.executable).with_name("langgraph")
    if not langgraph.is_file():
        message = "langgraph-cli[inmem] is not installed (no langgraph command)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it", pytrace=False)
        pytest.skip(message)

    port = _free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    # its in-memory store is flushed into the working folder: keep it in tmp
    cwd = tmp_path / "server"
    cwd.mkdir()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [
                str(langgraph),
                "dev",
                "--config",
                str(REPO_ROOT / "langgraph.json"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-browser",
                "--no-reload",
            ],
            cwd=cwd,
            env=_server_environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(url, server, log_path)
        yield url
    finally:
        # shown by pytest only when the test fails
        print(log_path.read_text(errors="replace")[-6000:])
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"langgraph dev exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                if json.loads(response.read()).get("ok"):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(f"langgraph dev did not answer:\n{log_path.read_text()[-3000:]}")


@pytest.mark.slow
def test_dev_server_commits_a_two_task_backlog(dev_server: str, tmp_path: Path) -> None:
    """Both tasks run on the server, dependency first, each in its own commit."""
    from sparc.server import submit_backlog

    workspace = library_workspace(tmp_path / "library")
    finished: list[str] = []

    outcomes = submit_backlog(
        dev_server, workspace, on_finish=lambda o: finished.append(o.task_id)
    )

    assert [(o.task_id, o.status) for o in outcomes] == [
        ("DB-001", "COMPLETE"),
        ("DB-002", "COMPLETE"),
    ], [o.reason for o in outcomes]
    assert finished == ["DB-001", "DB-002"]
    repo = git.Repo(workspace)
    subjects = [c.summary for c in repo.iter_commits("HEAD", max_count=2)][::-1]
    assert subjects == [
        "feat(db): Create the library tables",
        "feat(db): Add book loans",
    ]
    assert [o.commit for o in outcomes] == [
        c.hexsha for c in list(repo.iter_commits("HEAD", max_count=2))[::-1]
    ]
    models = (workspace / "src" / "library" / "db" / "models.py").read_text()
    assert "class Loan" in models and "class Book" in models
    backlog = Backlog.load(workspace / "docs" / "backlog")
    assert {tf.task.id: tf.task.status for tf in backlog.tasks} == {
        "DB-001": TaskStatus.COMPLETE,
        "DB-002": TaskStatus.COMPLETE,
    }
    record = json.loads((workspace / ".sparc" / "runs" / "DB-002.json").read_text())
    assert record["status"] == "COMPLETE"
    assert not (workspace / ".sparc" / "checkpoints.sqlite").exists()
    assert not repo.is_dirty(untracked_files=True)


def test_a_pinned_server_refuses_other_workspaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SPARC_WORKSPACE set, a run cannot point the server elsewhere."""
    from sparc.errors import ConfigError
    from sparc.server import workspace_for

    served = tmp_path / "served"
    monkeypatch.setenv("SPARC_WORKSPACE", str(served))

    assert workspace_for({}) == served.resolve()
    assert workspace_for({"configurable": {"workspace": str(served)}}) == (
        served.resolve()
    )
    with pytest.raises(ConfigError, match="serves the workspace"):
        workspace_for({"configurable": {"workspace": str(tmp_path / "other")}})

    monkeypatch.delenv("SPARC_WORKSPACE")
    with pytest.raises(ConfigError, match="no workspace"):
        workspace_for({"configurable": {}})


def test_outcome_of_a_paused_or_failed_server_thread() -> None:
    """An interrupt is WAITING at its phase; a failed run is BLOCKED with why."""
    from sparc.server import _outcome

    paused = _outcome(
        "DB-001",
        "DB-001:abc",
        {
            "values": {"status": "", "record": []},
            "interrupts": {"t1": [{"value": {"phase": "refinement"}, "id": "i"}]},
        },
        ended="success",
    )
    failed = _outcome(
        "DB-002",
        "DB-002:def",
        {"values": {"status": ""}, "interrupts": {}},
        ended="error",
        error={"message": "boom"},
        server_run_id="r-1",
    )

    assert (paused.status, paused.waiting_at) == ("WAITING", "refinement")
    assert (failed.status, failed.reason) == (
        "BLOCKED",
        "server run r-1 ended error: boom",
    )
