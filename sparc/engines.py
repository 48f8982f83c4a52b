"""Engines do a persona's work. The graph knows them only through this protocol.

An engine gets a `WorkContext` and returns the files of the phase's deliverables
(it never writes them itself: the graph writes, commits and edits task status);
as a reviewer it returns a `Review` with a verdict and findings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import structlog

from sparc.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from sparc.backlog import TaskFile
    from sparc.config import SparcConfig
    from sparc.personas import PersonaCard
    from sparc.workspace import Workspace

log = structlog.get_logger(__name__)

Verdict = Literal["approve", "revise", "block"]
Severity = Literal["error", "warning", "info"]
ENTRY_POINT_GROUP = "sparc.engines"


@dataclass(frozen=True)
class Finding:
    """One thing a reviewer found, stable enough to test and to suppress."""

    code: str
    severity: Severity
    message: str
    location: str = ""
    hint: str = ""
    category: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity,
            "category": self.category,
            "message": self.message,
            "location": self.location,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class WorkContext:
    """What an engine may read while working on or reviewing one phase."""

    workspace: Workspace
    config: SparcConfig
    task: TaskFile
    phase: str
    persona: PersonaCard
    # findings of the last review round, when the gate sent the work back
    findings: tuple[Finding, ...] = ()
    # files written earlier in this run, workspace-relative
    written: tuple[str, ...] = ()
    # the deliverables under review: path -> text, not yet written to the workspace
    files: Mapping[str, str] = field(default_factory=dict)
    # counts model calls, tokens and cost against the run's budget
    meter: Meter | None = None

    def deliverable(self, path: str) -> str | None:
        """The text of `path` as this phase produced it, else as on disk."""
        if path in self.files:
            return self.files[path]
        target = self.workspace.resolve(path, field="path")
        return target.read_text(encoding="utf-8") if target.is_file() else None


@dataclass
class Usage:
    """Tokens, cost and model steps one engine invocation used."""

    tokens: int = 0
    cost: float = 0.0
    steps: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"tokens": self.tokens, "cost": round(self.cost, 6), "steps": self.steps}


class Meter:
    """Counts what an engine uses and stops it when a budget limit is reached.

    The graph gives each engine invocation a meter holding what the task (and
    batch) has left; an engine calls `charge` after every model call. Once a
    limit is reached `exceeded` names it and `charge` raises EngineError.
    """

    def __init__(
        self,
        remaining: Mapping[str, float] | None = None,
        *,
        scopes: Mapping[str, str] | None = None,
        task_id: str = "",
        phase: str = "",
        persona: str = "",
    ) -> None:
        self.used = Usage()
        self.exceeded = ""
        self._remaining = dict(remaining or {})
        self._scopes = dict(scopes or {})
        self._where = {"task_id": task_id, "phase": phase, "persona": persona}

    def charge(self, *, tokens: int = 0, cost: float = 0.0, steps: int = 1) -> None:
        """Add one model call's usage.

        Raises:
            EngineError: a limit is passed; `exceeded` names it.
        """
        self.used.tokens += tokens
        self.used.cost += cost
        self.used.steps += steps
        used = self.used.as_dict()
        for name, left in self._remaining.items():
            if used[name] > left:
                scope = self._scopes.get(name, "task")
                self.exceeded = (
                    f"{scope} {name} budget reached: this invocation used "
                    f"{used[name]:g} of the {left:g} left"
                )
                raise EngineError(self.exceeded, **self._where)


@dataclass(frozen=True)
class WorkResult:
    """Deliverables of a phase: workspace-relative path -> full file text."""

    files: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    report: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Review:
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    summary: str = ""
    # an earlier phase the work must go back to (a "revise" that reopens it)
    send_back_to: str = ""
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class Engine(Protocol):
    """A persona's worker: `work` as a phase's owner, `review` as its support."""

    def work(self, context: WorkContext) -> WorkResult: ...

    def review(self, context: WorkContext) -> Review: ...


EngineFactory = Callable[[], Engine]


class EngineRegistry:
    """Engines by persona key, with a fallback for personas without their own."""

    def __init__(self, fallback: EngineFactory) -> None:
        self._factories: dict[str, EngineFactory] = {}
        self._instances: dict[str, Engine] = {}
        self._fallback = fallback

    @classmethod
    def default(cls) -> EngineRegistry:
        """Built-in deterministic engines, then third-party entry points."""
        from sparc.agents.hephaestus.engine import HephaestusEngine
        from sparc.agents.outline import OutlineEngine

        registry = cls(fallback=OutlineEngine)
        registry.register("hephaestus", HephaestusEngine)
        registry.load_entry_points()
        return registry

    def register(self, persona: str, factory: EngineFactory) -> None:
        self._factories[persona] = factory
        self._instances.pop(persona, None)

    def use(self, persona: str, engine: Engine) -> None:
        """Use a ready-made engine instance for a persona (tests, embedding)."""
        if not isinstance(engine, Engine):
            raise ConfigError(
                f"engine for {persona!r} lacks work() or review()", field="engines"
            )
        self._instances[persona] = engine

    def load_entry_points(self) -> None:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            factory: Any = point.load()
            self.register(point.name, factory)
            log.debug(
                "engine_entry_point_loaded", persona=point.name, value=point.value
            )

    def get(self, persona: str) -> Engine:
        engine = self._instances.get(persona)
        if engine is None:
            factory = self._factories.get(persona, self._fallback)
            engine = factory()
            self._instances[persona] = engine
        return engine
