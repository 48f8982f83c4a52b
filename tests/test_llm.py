"""LLM engines with fake chat models: structured output, tools, budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from sparc.backlog import load_task
from sparc.engines import EngineRegistry
from sparc.errors import ConfigError
from sparc.init import init_workspace
from sparc.llm import LLMEngine, configured_engines
from sparc.runner import Runner
from sparc.runtime import BudgetLimits, BudgetSettings

SPEC_DDL = "CREATE TABLE customer (id integer PRIMARY KEY, email text NOT NULL);"


class _ToolModel(GenericFakeChatModel):
    """A fake model that accepts tools (the answers already hold the calls)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> _ToolModel:
        return self


def _model(*answers: str | AIMessage) -> _ToolModel:
    return _ToolModel(messages=iter(answers))


@pytest.fixture
def workspace(shop_workspace: Path) -> Path:
    init_workspace(shop_workspace)
    return shop_workspace


def _spec_json() -> str:
    from sparc.agents.hephaestus.ddl import parse_sql

    return parse_sql(SPEC_DDL, source="spec.sql").spec.model_dump_json()


def test_hephaestus_renders_a_valid_spec_from_the_model(workspace: Path) -> None:
    from sparc.agents.hephaestus.engine import HephaestusEngine

    engines = EngineRegistry.default()
    engines.use("hephaestus", HephaestusEngine(model=_model(_spec_json())))

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    models = (workspace / "src/shop/db/models.py").read_text()
    assert "class Customer" in models and "email" in models
    assert "orders" not in models  # the DDL was not read: the model's spec was


def test_invalid_json_twice_then_valid(workspace: Path) -> None:
    from sparc.agents.hephaestus.engine import HephaestusEngine

    engines = EngineRegistry.default()
    engines.use(
        "hephaestus",
        HephaestusEngine(
            model=_model("not json at all", '{"tables": [{"nome": 1}]}', _spec_json())
        ),
    )
    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    steps = [u for u in outcome.usage if u["persona"] == "hephaestus"]
    assert steps[0]["steps"] == 3


def test_invalid_output_every_time_fails_clearly(workspace: Path) -> None:
    from sparc.agents.hephaestus.engine import HephaestusEngine

    engines = EngineRegistry.default()
    engines.use("hephaestus", HephaestusEngine(model=_model("no", "{}x", "[1]")))
    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.status == "BLOCKED"
    assert "no valid SchemaSpec in 3 answers" in outcome.reason


def _call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": call_id}]
    )


def _python_task(workspace: Path) -> None:
    path = workspace / "docs/backlog/DB-001.yaml"
    path.write_text(
        path.read_text().replace(
            "specialist: database-engineer", "specialist: python-engineer"
        )
    )


def test_a_write_outside_the_workspace_is_refused(
    workspace: Path, tmp_path: Path
) -> None:
    _python_task(workspace)
    outside = tmp_path / "escaped.txt"
    model = _model(
        _call("write_file", "1", path="../escaped.txt", content="x"),
        _call("write_file", "2", path=str(outside), content="x"),
        _call("write_file", "3", path="src/shop/service.py", content="VALUE = 1\n"),
        "done",
    )
    engines = EngineRegistry.default()
    engines.use("python-engineer", LLMEngine(model))

    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    assert not outside.exists()
    assert not (workspace.parent / "escaped.txt").exists()
    refused = [line for line in outcome.report if line.startswith("refused")]
    assert len(refused) == 2 and "climbs out" in refused[0]
    assert (workspace / "src/shop/service.py").read_text() == "VALUE = 1\n"


def test_a_model_that_loops_forever_is_stopped_by_the_step_budget(
    workspace: Path,
) -> None:
    _python_task(workspace)

    def forever() -> Any:
        n = 0
        while True:
            n += 1
            yield _call("list_files", str(n), path=".")

    engines = EngineRegistry.default()
    engines.use("python-engineer", LLMEngine(_ToolModel(messages=forever())))
    budget = BudgetSettings(task=BudgetLimits(steps=12), on_exceed="block")

    with Runner.open(workspace, engines=engines, budget=budget) as runner:
        outcome = runner.run("DB-001")

    assert outcome.status == "BLOCKED"
    assert "task steps budget reached" in outcome.reason
    task = load_task(workspace / "docs/backlog/DB-001.yaml").task
    assert "steps budget" in (task.blocked_reason or "")
    totals = json.loads((workspace / ".sparc/runs/DB-001.json").read_text())["usage"]
    assert totals["per_persona"]["python-engineer"]["steps"] == 13


def test_provider_errors_are_retried_with_backoff(workspace: Path) -> None:
    from sparc.agents.hephaestus.engine import HephaestusEngine

    class _Flaky(GenericFakeChatModel):
        failures: int = 2

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("provider unavailable")
            return super()._generate(*args, **kwargs)

    delays: list[float] = []
    engine = HephaestusEngine(
        model=_Flaky(messages=iter([_spec_json()])), sleep=delays.append
    )
    engines = EngineRegistry.default()
    engines.use("hephaestus", engine)
    with Runner.open(workspace, engines=engines) as runner:
        assert runner.run("DB-001").complete
    assert delays == [1.0, 2.0]


def test_a_model_reviewer_gives_a_verdict(workspace: Path) -> None:
    verdict = {
        "verdict": "block",
        "findings": [{"code": "QA7", "severity": "error", "message": "no tests"}],
    }
    engines = EngineRegistry.default()
    engines.use("quality-engineer", LLMEngine(_model("{oops", json.dumps(verdict))))
    with Runner.open(workspace, engines=engines) as runner:
        outcome = runner.run("DB-001")
    assert outcome.status == "BLOCKED"
    assert "[QA7] no tests" in outcome.reason


def test_configured_models_need_the_langchain_package() -> None:
    pytest.importorskip("langchain_core")
    try:
        import langchain.chat_models  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="needs the package 'langchain'"):
            configured_engines(EngineRegistry.default(), {"hephaestus": "openai:x"})
    else:
        pytest.skip("langchain is installed; the missing-package error cannot occur")


def test_the_command_tool_runs_only_allowed_programs_without_a_shell(
    workspace: Path,
) -> None:
    from sparc.engines import WorkContext
    from sparc.llm import WorkspaceTools
    from sparc.runner import open_runtime

    runtime = open_runtime(workspace)
    context = WorkContext(
        workspace=runtime.workspace,
        config=runtime.config,
        task=load_task(workspace / "docs/backlog/DB-001.yaml"),
        phase="refinement",
        persona=runtime.personas.get("python-engineer"),
    )
    tools = WorkspaceTools(
        context, allowed_commands=["git", "sleep"], command_timeout=1
    )

    assert tools.call("run_command", {"argv": ["rm", "-rf", "."]}).startswith(
        "refused: command 'rm' is not allowed"
    )
    # no shell: the metacharacters reach git as one literal argument
    answer = tools.call("run_command", {"argv": ["git", "status; rm -rf ."]})
    assert answer.startswith("exit code ") and (workspace / "docs").is_dir()
    assert "ran longer than 1 s" in tools.call("run_command", {"argv": ["sleep", "5"]})
    assert tools.call("read_file", {"path": ".sparc/config.yaml"}).startswith("refused")
    assert tools.call("write_file", {"path": ".git/config", "content": ""}).startswith(
        "refused"
    )
    assert "docs/" in tools.call("list_files", {"path": "."})
    assert tools.files == {}
