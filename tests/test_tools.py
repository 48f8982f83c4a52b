"""The workspace operations as LangChain tools."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from sparc.tools import SparcOperations, langchain_tools, review_available
from tests.test_server import LIBRARY_DDL, library_workspace


@pytest.fixture
def library(tmp_path: Path, git_env: None) -> Path:
    return library_workspace(tmp_path / "library")


def test_tools_have_names_descriptions_and_argument_schemas(library: Path) -> None:
    tools = {tool.name: tool for tool in langchain_tools(library)}

    assert set(tools) == {"show_backlog", "run_task", "forge_schema", "review_schema"}
    assert review_available()
    assert tools["run_task"].args == {"task_id": {"title": "Task Id", "type": "string"}}
    assert set(tools["forge_schema"].args) == {"ddl", "title"}
    assert all(len(tool.description) > 40 for tool in tools.values())


def test_show_backlog_and_run_task(library: Path) -> None:
    """The dependent task waits; running the first commits and readies it."""
    tools = {tool.name: tool for tool in langchain_tools(library)}

    before = tools["show_backlog"].invoke({})
    outcome = tools["run_task"].invoke({"task_id": "DB-001"})
    after = tools["show_backlog"].invoke({})

    assert before["ready"] == ["DB-001"]
    assert before["tasks"][1]["waiting_for"] == ["DB-001"]
    assert outcome["status"] == "COMPLETE"
    assert outcome["commit"] == git.Repo(library).head.commit.hexsha
    assert after["ready"] == ["DB-002"]


def test_sparc_errors_come_back_as_the_tool_answer(library: Path) -> None:
    """The model reads what went wrong instead of the agent crashing."""
    tools = {tool.name: tool for tool in langchain_tools(library)}

    unknown = tools["run_task"].invoke({"task_id": "DB-404"})
    broken = tools["forge_schema"].invoke({"ddl": "CREATE TABLE t (id INT"})
    outside = tools["review_schema"].invoke({"path": "../elsewhere.sql"})

    assert unknown.startswith("error:") and "DB-404" in unknown
    assert broken.startswith("error: ddl:1:")
    assert outside.startswith("error:") and ".." in outside


def test_forge_schema_previews_without_writing(library: Path) -> None:
    result = SparcOperations(library).forge_schema(LIBRARY_DDL, title="Library")

    assert result["tables"] == ["authors", "books"]
    assert result["revision"] == "001_library.py"
    assert "__tablename__ = 'books'" in result["files"]["src/library/db/models.py"]
    assert any("no drift: passed" in line for line in result["report"])
    assert not git.Repo(library).is_dirty(untracked_files=True)


def test_review_schema_of_a_file_and_of_the_workspace(library: Path) -> None:
    operations = SparcOperations(library)

    one_file = operations.review_schema("docs/data/library.sql")
    whole = operations.review_schema(".")

    assert [f["code"] for f in one_file["findings"]] == ["HD501"]
    assert one_file["findings"][0]["location"] == "docs/data/library.sql:7"
    assert one_file["errors"] == 0
    assert one_file["sources"] == ["docs/data/library.sql"]
    assert "HD501" in {f["code"] for f in whole["findings"]}
