"""sparc over MCP: the SDK's own stdio client lists the tools and runs a task."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import git
import pytest

from tests.conftest import IN_CI
from tests.test_server import library_workspace

try:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client
except ImportError as error:  # the SDK is an optional dependency
    if IN_CI:
        raise
    pytest.skip(f"the mcp SDK is not installed ({error})", allow_module_level=True)


def _result_data(result: Any) -> dict[str, Any]:
    """The tool's dict: structured content, else the JSON of its text."""
    if result.structured_content is not None:
        data: dict[str, Any] = result.structured_content
        return data["result"] if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


async def _session_calls(
    workspace: Path, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[list[str], list[Any]]:
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "sparc.mcp_server", "--workspace", str(workspace)],
        env=dict(os.environ),
    )
    async with (
        stdio_client(parameters) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        results = [await session.call_tool(name, args) for name, args in calls]
    return sorted(tool.name for tool in listed.tools), results


@pytest.mark.slow
def test_mcp_client_lists_tools_and_commits_a_task(
    tmp_path: Path, git_env: None
) -> None:
    """The client sees every tool; run_task through the server commits DB-001."""
    workspace = library_workspace(tmp_path / "library")

    names, results = asyncio.run(
        _session_calls(
            workspace,
            [
                ("show_backlog", {}),
                ("run_task", {"task_id": "DB-001"}),
                ("run_task", {"task_id": "NOPE-1"}),
                ("forge_schema", {"ddl": "CREATE TABLE shelves (id INT PRIMARY KEY);"}),
                ("review_schema", {"path": "docs/data/library.sql"}),
            ],
        )
    )

    assert names == ["forge_schema", "review_schema", "run_task", "show_backlog"]
    backlog, run, unknown, forged, review = results
    assert _result_data(backlog)["ready"] == ["DB-001"]

    outcome = _result_data(run)
    assert outcome["status"] == "COMPLETE", outcome["reason"]
    head = git.Repo(workspace).head.commit
    assert outcome["commit"] == head.hexsha
    assert head.summary == "feat(db): Create the library tables"
    assert "Task: DB-001" in head.message

    assert unknown.is_error
    assert "NOPE-1" in unknown.content[0].text

    forged_data = _result_data(forged)
    assert (
        "__tablename__ = 'shelves'" in forged_data["files"]["src/library/db/models.py"]
    )
    assert forged_data["revision"] == "002_forged_schema.py"
    # a preview: nothing of it is written
    assert not (workspace / "alembic" / "versions" / "002_forged_schema.py").exists()
    assert not git.Repo(workspace).is_dirty(untracked_files=True)

    codes = {f["code"] for f in _result_data(review)["findings"]}
    assert "HD501" in codes  # books.author_id has no index


def test_server_refuses_a_missing_workspace(tmp_path: Path) -> None:
    """A wrong --workspace is an input error on stderr, not a hung server."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "sparc.mcp_server", "--workspace", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not a folder" in result.stderr
    assert result.stdout == ""
