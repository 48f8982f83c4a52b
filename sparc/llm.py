"""Engines backed by any LangChain chat model (`BaseChatModel`).

The persona card is the model's instruction (its system prompt). As a phase's
owner the model works with four tools confined to the workspace: read a file,
write a file, list a folder, and run an allow-listed command (an argument
list, never a shell, with a timeout). Files it writes are kept as the phase's
deliverables and reach the workspace only through the graph, after its gate.
As a reviewer it answers with a JSON verdict, validated with pydantic; an
invalid answer is sent back with the validation error, a bounded number of
times. Provider errors are retried with exponential backoff.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sparc.engines import (
    EngineRegistry,
    Finding,
    Meter,
    Review,
    Usage,
    WorkContext,
    WorkResult,
)
from sparc.errors import ConfigError, EngineError, SparcError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage

log = structlog.get_logger(__name__)

_T = TypeVar("_T", bound=BaseModel)

DEFAULT_COMMANDS = ("pytest", "ruff", "alembic", "git")
# folders a model may neither read nor write: sparc's own state and git's
_PRIVATE_PREFIXES = (".git/", ".sparc/", "docs/backlog/")
_MAX_READ_CHARS = 100_000
_MAX_OUTPUT_CHARS = 8_000
_FENCED_JSON = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.DOTALL)


class _FindingAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str = Field(min_length=1)
    severity: Literal["error", "warning", "info"]
    message: str = Field(min_length=1)
    location: str = ""
    hint: str = ""


class ReviewAnswer(BaseModel):
    """The JSON a reviewing model must answer with."""

    model_config = ConfigDict(extra="ignore")

    verdict: Literal["approve", "revise", "block"]
    findings: list[_FindingAnswer] = []
    send_back_to: str = ""
    summary: str = ""


class ModelCaller:
    """Calls a chat model with retries, backoff and budget metering."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        retries: int = 3,
        backoff: float = 1.0,
        cost_per_1k_tokens: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model
        self.retries = retries
        self.backoff = backoff
        self.cost_per_1k_tokens = cost_per_1k_tokens
        self._sleep = sleep

    def invoke(
        self,
        messages: Sequence[BaseMessage],
        context: WorkContext,
        meter: Meter,
        *,
        runnable: Any = None,
    ) -> AIMessage:
        """One model call: retried on provider errors, then charged to `meter`.

        Raises:
            EngineError: every attempt failed, or a budget limit is reached.
        """
        target = runnable or self.model
        for attempt in range(self.retries + 1):
            try:
                message = target.invoke(list(messages))
                break
            except SparcError:
                raise
            except Exception as exc:  # a provider's own error type is unknown here
                if attempt == self.retries:
                    raise _engine_error(
                        context,
                        f"the model failed {attempt + 1} times; last error: "
                        f"{type(exc).__name__}: {exc}",
                    ) from exc
                delay = self.backoff * 2**attempt
                log.warning("model_call_retried", attempt=attempt + 1, delay=delay)
                self._sleep(delay)
        tokens = _tokens(message)
        meter.charge(
            tokens=tokens, cost=tokens / 1000 * self.cost_per_1k_tokens, steps=1
        )
        return message

    def structured(
        self,
        messages: list[BaseMessage],
        schema: type[_T],
        context: WorkContext,
        meter: Meter,
        *,
        attempts: int = 3,
    ) -> _T:
        """Ask for a JSON object matching `schema`, feeding errors back.

        Raises:
            EngineError: no valid answer after `attempts` answers.
        """
        from langchain_core.messages import HumanMessage

        error = ""
        for attempt in range(1, attempts + 1):
            answer = self.invoke(messages, context, meter)
            try:
                return schema.model_validate(_json_object(_text(answer)))
            except (ValueError, ValidationError) as exc:
                error = _short_error(exc)
                log.warning("structured_output_invalid", attempt=attempt, error=error)
                messages = [
                    *messages,
                    answer,
                    HumanMessage(
                        f"That answer is not valid: {error}. Answer again with only "
                        f"one JSON object matching this schema:\n"
                        f"{json.dumps(schema.model_json_schema())}"
                    ),
                ]
        raise _engine_error(
            context,
            f"the model gave no valid {schema.__name__} in {attempts} answers; "
            f"last error: {error}",
        )


class WorkspaceTools:
    """File and command tools for a model, confined to one workspace.

    Writes are collected in `files`, never put on disk here. Refusals are
    returned to the model as the tool's answer and kept in `refused`.
    """

    def __init__(
        self,
        context: WorkContext,
        *,
        allowed_commands: Sequence[str],
        command_timeout: float,
    ) -> None:
        self.context = context
        self.allowed_commands = tuple(allowed_commands)
        self.command_timeout = command_timeout
        self.files: dict[str, str] = {}
        self.refused: list[str] = []

    def definitions(self) -> list[Any]:
        """The tools as LangChain tools, for `bind_tools`."""
        from langchain_core.tools import StructuredTool

        return [
            StructuredTool.from_function(
                self.read_file,
                name="read_file",
                description="Read a text file; path relative to the workspace.",
            ),
            StructuredTool.from_function(
                self.write_file,
                name="write_file",
                description="Write a whole text file (a deliverable of this "
                "phase); path relative to the workspace.",
            ),
            StructuredTool.from_function(
                self.list_files,
                name="list_files",
                description="List a folder; path relative to the workspace.",
            ),
            StructuredTool.from_function(
                self.run_command,
                name="run_command",
                description="Run a program with arguments in the workspace. "
                f"Allowed programs: {', '.join(self.allowed_commands) or 'none'}.",
            ),
        ]

    def call(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Run one tool call; a bad call is answered, not raised."""
        tools: dict[str, Callable[..., str]] = {
            "read_file": self.read_file,
            "write_file": self.write_file,
            "list_files": self.list_files,
            "run_command": self.run_command,
        }
        tool = tools.get(name)
        if tool is None:
            return f"error: no tool named {name!r}; tools: {', '.join(tools)}"
        try:
            return tool(**arguments)
        except TypeError as exc:
            return f"error: bad arguments for {name}: {exc}"

    def read_file(self, path: str) -> str:
        """Read a file of the workspace (or one written earlier in this phase)."""
        if path in self.files:
            return self.files[path]
        target = self._resolve(path, "read")
        if isinstance(target, str):
            return target
        if not target.is_file():
            return f"error: {path} is not a file"
        return target.read_text(encoding="utf-8", errors="replace")[:_MAX_READ_CHARS]

    def write_file(self, path: str, content: str) -> str:
        """Keep `content` as the deliverable at `path`."""
        target = self._resolve(path, "write")
        if isinstance(target, str):
            return target
        self.files[path] = content
        return f"ok: {path} ({len(content)} characters) kept as a deliverable"

    def list_files(self, path: str = ".") -> str:
        """List a folder of the workspace."""
        target = self.context.workspace.root if path in ("", ".") else None
        if target is None:
            resolved = self._resolve(path, "list")
            if isinstance(resolved, str):
                return resolved
            target = resolved
        if not target.is_dir():
            return f"error: {path} is not a folder"
        names = sorted(
            f"{p.name}/" if p.is_dir() else p.name
            for p in target.iterdir()
            if p.name not in (".git", ".sparc")
        )
        return "\n".join(names) or "(empty)"

    def run_command(self, argv: list[str]) -> str:
        """Run an allow-listed program with arguments, no shell, with a timeout."""
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(a, str) for a in argv)
        ):
            return "error: argv must be a non-empty list of strings"
        if argv[0] not in self.allowed_commands:
            return self._refuse(
                f"command {argv[0]!r} is not allowed; allowed: "
                f"{', '.join(self.allowed_commands) or 'none'}"
            )
        try:
            done = subprocess.run(
                argv,
                cwd=self.context.workspace.root,
                capture_output=True,
                text=True,
                timeout=self.command_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"error: {argv[0]} ran longer than {self.command_timeout:g} s"
        except OSError as exc:
            return f"error: cannot run {argv[0]}: {exc.strerror or exc}"
        output = (done.stdout + done.stderr)[-_MAX_OUTPUT_CHARS:]
        return f"exit code {done.returncode}\n{output}"

    def _resolve(self, path: str, action: str) -> Any:
        if not isinstance(path, str):
            return self._refuse(f"{action}: the path must be a string")
        normal = path.lstrip("./") if path.startswith("./") else path
        if any(f"{normal}/".startswith(p) for p in _PRIVATE_PREFIXES):
            return self._refuse(f"{action} {path}: sparc's own files are off limits")
        try:
            return self.context.workspace.resolve(path, field=action)
        except SparcError as exc:
            return self._refuse(f"{action} {path}: {exc}")

    def _refuse(self, message: str) -> str:
        self.refused.append(message)
        log.warning("tool_refused", reason=message)
        return f"refused: {message}"


class LLMEngine:
    """A persona's engine driven by a chat model, with the card as instruction."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        allowed_commands: Sequence[str] = DEFAULT_COMMANDS,
        command_timeout: float = 120.0,
        max_steps: int = 50,
        attempts: int = 3,
        retries: int = 3,
        backoff: float = 1.0,
        cost_per_1k_tokens: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.caller = ModelCaller(
            model,
            retries=retries,
            backoff=backoff,
            cost_per_1k_tokens=cost_per_1k_tokens,
            sleep=sleep,
        )
        self.allowed_commands = tuple(allowed_commands)
        self.command_timeout = command_timeout
        self.max_steps = max_steps
        self.attempts = attempts

    def work(self, context: WorkContext) -> WorkResult:
        """Let the model work with the workspace tools until it answers in text.

        Raises:
            EngineError: the model failed, ran out of budget or of steps.
        """
        from langchain_core.messages import HumanMessage, ToolMessage

        from sparc.agents.outline import document_path

        meter = context.meter or Meter()
        tools = WorkspaceTools(
            context,
            allowed_commands=self.allowed_commands,
            command_timeout=self.command_timeout,
        )
        try:
            runnable = self.caller.model.bind_tools(tools.definitions())
        except NotImplementedError:
            runnable = self.caller.model
        document = document_path(context.phase, context.task.task.id)
        messages: list[BaseMessage] = [
            *instructions(context),
            HumanMessage(_work_prompt(context, document)),
        ]

        for _ in range(self.max_steps):
            answer = self.caller.invoke(messages, context, meter, runnable=runnable)
            messages.append(answer)
            if not answer.tool_calls:
                break
            for call in answer.tool_calls:
                result = tools.call(call["name"], call.get("args") or {})
                messages.append(ToolMessage(result, tool_call_id=call["id"] or ""))
        else:
            raise _engine_error(
                context,
                f"the model was still calling tools after {self.max_steps} steps",
            )

        files = dict(tools.files)
        text = _text(answer).strip()
        if not files and text:
            files[document] = text + "\n"
        report = tuple(f"refused: {r}" for r in tools.refused)
        return WorkResult(
            files=files, summary=text[:200], report=report, usage=meter.used
        )

    def review(self, context: WorkContext) -> Review:
        """Ask the model for a verdict on the phase's deliverables.

        Raises:
            EngineError: the model failed or never gave a valid verdict.
        """
        from langchain_core.messages import HumanMessage

        meter = context.meter or Meter()
        messages = [*instructions(context), HumanMessage(_review_prompt(context))]
        answer = self.caller.structured(
            messages, ReviewAnswer, context, meter, attempts=self.attempts
        )
        return Review(
            verdict=answer.verdict,
            findings=tuple(
                Finding(
                    code=f.code,
                    severity=f.severity,
                    message=f.message,
                    location=f.location,
                    hint=f.hint,
                )
                for f in answer.findings
            ),
            summary=answer.summary,
            send_back_to=answer.send_back_to,
            usage=meter.used,
        )


def instructions(context: WorkContext) -> list[BaseMessage]:
    """The persona card as the system prompt."""
    from langchain_core.messages import SystemMessage

    return [SystemMessage(context.persona.body)]


def task_brief(context: WorkContext) -> str:
    """The task as the model sees it: its file's fields, as JSON."""
    task = context.task.task.model_dump(
        mode="json", exclude={"status", "blocked_reason"}, exclude_none=True
    )
    return json.dumps(task, indent=2)


def configured_engines(registry: EngineRegistry, models: Mapping[str, str]) -> None:
    """Use the chat models named in `engines:` ("provider:model") per persona.

    Raises:
        ConfigError: the `langchain` package is missing, or a model cannot be
            made.
    """
    if not models:
        return
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise ConfigError(
            "engines: naming a model needs the package 'langchain' (pip install "
            "langchain and the provider's package, e.g. langchain-openai)",
            path=".sparc/config.yaml",
            field="engines",
        ) from None
    from sparc.agents.hephaestus.engine import HephaestusEngine

    for persona, name in models.items():
        try:
            model = init_chat_model(name)
        except Exception as exc:  # init_chat_model raises several kinds
            raise ConfigError(
                f"engines.{persona}: cannot make model {name!r}: {exc}",
                path=".sparc/config.yaml",
                field=f"engines.{persona}",
            ) from None
        engine = HephaestusEngine(model=model) if persona == "hephaestus" else None
        registry.use(persona, engine or LLMEngine(model))
        log.info("model_engine_configured", persona=persona, model=name)


# helpers


def _work_prompt(context: WorkContext, document: str) -> str:
    task = context.task.task
    deliverable = context.persona.deliverable(context.phase) or context.phase
    lines = [
        f"You own the {context.phase} phase of task {task.id}.",
        f"Deliverable: {deliverable}. Write it with write_file (the phase "
        f"document goes to {document}), or answer with the document's text.",
        "Paths are relative to the workspace; files outside it are refused.",
        "When done, answer in text without calling a tool.",
        "",
        "The task:",
        task_brief(context),
    ]
    if context.findings:
        lines += ["", "Review findings to address:"]
        lines += [f"- [{f.code}] {f.message}" for f in context.findings]
    return "\n".join(lines)


def _review_prompt(context: WorkContext) -> str:
    lines = [
        f"Review the {context.phase} deliverables of task {context.task.task.id}.",
        'Answer with only one JSON object: {"verdict": "approve" | "revise" | '
        '"block", "findings": [{"code", "severity": "error" | "warning" | '
        '"info", "message", "location", "hint"}], "send_back_to": "" or an '
        'earlier phase that must be redone, "summary": "..."}',
        "",
        "The task:",
        task_brief(context),
    ]
    for path, text in sorted(context.files.items()):
        lines += ["", f"--- {path}", text[:_MAX_READ_CHARS]]
    return "\n".join(lines)


def _json_object(text: str) -> Any:
    fenced = _FENCED_JSON.search(text)
    candidate = fenced.group(1) if fenced else text.strip()
    try:
        return json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
    return str(exc)


def _text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part)
        for part in content
    )


def _tokens(message: AIMessage) -> int:
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("total_tokens", 0))


def _engine_error(context: WorkContext, message: str) -> EngineError:
    return EngineError(
        message,
        task_id=context.task.task.id,
        phase=context.phase,
        persona=context.persona.key,
    )


__all__ = [
    "LLMEngine",
    "ModelCaller",
    "ReviewAnswer",
    "Usage",
    "WorkspaceTools",
    "configured_engines",
    "instructions",
    "task_brief",
]
