"""The SPARC state machine: one LangGraph thread per task run.

    load_task -> <phase> -> <phase>_review (one branch per support persona, in
        parallel through `Send`) -> <phase>_gate
            approve -> <phase>_approval (a person, where required) -> <phase>_write
                       (skipped when the phase has no files to write)
            revise  -> <phase> again with the findings (bounded rounds), or an
                       earlier phase the workflow lets reviewers send back to
            block   -> block
        <phase>_write -> next phase, or verify (when an engine of the run
            verifies its work) -> commit -> complete
    a budget limit reached in any engine -> budget (pause for a person, or block)

Engines only compute: the work node keeps the phase's files in the state and
every effect lives in a node of its own after the gate (write, verify, commit),
each checking its completion marker first (file content, the scratch
database's revision, the commit's `Run:` trailer). A replayed node, after a
crash or an approval, therefore never repeats an effect. Only the load, commit
and block nodes edit the task file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

from sparc import gitops
from sparc.backlog import TaskStatus
from sparc.engines import Finding, Meter, Review, WorkContext
from sparc.errors import SparcError
from sparc.state import RESET, ReviewInput, RunState

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    from sparc.runtime import Runtime

log = structlog.get_logger(__name__)

LIMITS = ("tokens", "cost", "steps")

# A `configurable` key: False when the caller starts this invocation as a fresh
# run, so no earlier attempt of it can have committed.
RESUMED_KEY = "sparc_resumed"


@contextmanager
def bound_run(task_id: str, phase: str = "", persona: str = "") -> Iterator[None]:
    """Bind task, phase and persona to every log event emitted inside."""
    with structlog.contextvars.bound_contextvars(
        task_id=task_id, phase=phase, persona=persona
    ):
        yield


def build_graph(
    runtime: Runtime, *, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """Compile the SPARC graph of `runtime`'s workflow.

    Args:
        runtime: the workspace, configuration, personas, engines and workflow.
        checkpointer: where the run's checkpoints go; none keeps them in memory
            only for the length of one invocation (or inherits the parent's
            when the graph is mounted as a subgraph).

    Returns:
        A compiled LangGraph graph, usable alone or as a subgraph node. Its
        input is `initial_state(task_id, run_id)`; approvals and budget pauses
        resume with `Command(resume={"approved": bool, "reason": str})`.
    """
    builder = StateGraph(RunState)
    phases = [policy.name for policy in runtime.workflow.phases]

    builder.add_node("load_task", _load_task(runtime))
    for phase in phases:
        builder.add_node(phase, _work(runtime, phase))
        builder.add_node(f"{phase}_review", _review(runtime, phase))
        builder.add_node(f"{phase}_gate", _gate(runtime, phase))
        builder.add_node(f"{phase}_approval", _approval(phase))
        builder.add_node(f"{phase}_write", _write(runtime, phase))
    builder.add_node("budget", _budget(runtime))
    builder.add_node("verify", _verify(runtime))
    builder.add_node("commit", _commit(runtime))
    builder.add_node("complete", _complete(runtime))
    builder.add_node("block", _block(runtime))

    builder.add_edge(START, "load_task")
    builder.add_conditional_edges("load_task", _route_after_load, [*phases, "block"])
    for phase in phases:
        builder.add_conditional_edges(
            phase,
            _route_after_work(runtime, phase),
            [f"{phase}_review", f"{phase}_gate", "budget", "block"],
        )
        builder.add_edge(f"{phase}_review", f"{phase}_gate")
        builder.add_conditional_edges(
            f"{phase}_gate",
            _route_after_gate(runtime, phase),
            [
                *phases,
                f"{phase}_approval",
                f"{phase}_write",
                "verify",
                "commit",
                "budget",
                "block",
            ],
        )
        builder.add_conditional_edges(
            f"{phase}_approval",
            _route_after_approval(phase),
            [f"{phase}_write", "block"],
        )
        builder.add_conditional_edges(
            f"{phase}_write",
            _route_after_write(runtime, phase),
            [*phases, "verify", "commit", "block"],
        )
    builder.add_conditional_edges("budget", _route_after_budget, [*phases, "block"])
    builder.add_conditional_edges(
        "verify", _route_on_reason("commit"), ["commit", "block"]
    )
    builder.add_conditional_edges(
        "commit", _route_on_reason("complete"), ["complete", "block"]
    )
    builder.add_edge("complete", END)
    builder.add_edge("block", END)
    return builder.compile(checkpointer=checkpointer)


def initial_state(task_id: str, run_id: str) -> RunState:
    """The input of a fresh run; RESET clears what an earlier run left."""
    return {
        "task_id": task_id,
        "run_id": run_id,
        "rounds": {},
        "pending": {},
        "findings": [],
        "verdict": "",
        "send_back": "",
        "status": "",
        "reason": "",
        "commit": "",
        "verified": "",
        "budget_hit": "",
        "budget_base": {},
        "written": [RESET],
        "record": [RESET],
        "report": [RESET],
        "reviews": [RESET],
        "usage": [RESET],
    }


# nodes


def _load_task(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def load_task(state: RunState) -> dict[str, Any]:
        task_file = runtime.run_task(state["task_id"], state["run_id"])
        task = task_file.task
        with bound_run(task.id):
            try:
                phases = [p.name for p in runtime.workflow.select(task.phases)]
            except SparcError as exc:
                return {"phases": [], "reason": str(exc)}

            runtime.set_status(
                task_file, TaskStatus.IN_PROGRESS, run_id=state["run_id"]
            )
            log.info("task_started", phases=phases)
        # what the routers need from the task travels in the state, and
        # where history stood, for a resumed commit to look no further back
        return {
            "phases": phases,
            "base_commit": gitops.head_commit(runtime.repo) or "",
            "specialist": task.specialist or "",
            "approval_phases": _approval_phases(runtime, task.require_approval),
        }

    return load_task


def _work(
    runtime: Runtime, phase: str
) -> Callable[[RunState, RunnableConfig], dict[str, Any]]:
    def work(state: RunState, config: RunnableConfig) -> dict[str, Any]:
        task_file = runtime.run_task(state["task_id"], state["run_id"])
        persona = runtime.personas.primary(phase, task_file.task.specialist)
        meter = _meter(runtime, state, config, phase, persona.key)
        context = WorkContext(
            workspace=runtime.workspace,
            config=runtime.config,
            task=task_file,
            phase=phase,
            persona=persona,
            findings=tuple(Finding(**f) for f in state.get("findings", [])),
            written=tuple(state.get("written", [])),
            meter=meter,
        )
        entry = {"phase": phase, "node": phase, "persona": persona.key}

        with bound_run(task_file.task.id, phase, persona.key):
            try:
                result = runtime.engines.get(persona.key).work(context)
                for rel in result.files:
                    runtime.workspace.resolve(rel, field="deliverable")
            except SparcError as exc:
                log.warning("phase_failed", error=str(exc))
                return {
                    "record": [{**entry, "role": "primary", "outcome": "failed"}],
                    "usage": [_usage_entry(phase, persona.key, meter.used)],
                    "budget_hit": meter.exceeded,
                    "reason": f"{phase} ({persona.key}): {exc}",
                }
            log.info("phase_worked", files=sorted(result.files))

        used = meter.used if meter.used.steps else result.usage
        return {
            "pending": dict(result.files),
            "reviews": [RESET],
            "record": [{**entry, "role": "primary", "outcome": "worked"}],
            "report": list(result.report),
            "usage": [_usage_entry(phase, persona.key, used)],
            "budget_hit": "",
            "reason": "",
        }

    return work


def _review(
    runtime: Runtime, phase: str
) -> Callable[[ReviewInput, RunnableConfig], dict[str, Any]]:
    def review(branch: ReviewInput, config: RunnableConfig) -> dict[str, Any]:
        task_file = runtime.run_task(branch["task_id"], branch["run_id"])
        persona = runtime.personas.get(branch["reviewer"])
        meter = _meter(runtime, branch, config, phase, persona.key)
        context = WorkContext(
            workspace=runtime.workspace,
            config=runtime.config,
            task=task_file,
            phase=phase,
            persona=persona,
            written=tuple(branch["written"]),
            files=dict(branch["pending"]),
            meter=meter,
        )
        with bound_run(task_file.task.id, phase, persona.key):
            try:
                verdict = runtime.engines.get(persona.key).review(context)
            except SparcError as exc:
                verdict = Review(
                    verdict="block",
                    findings=(
                        Finding(
                            code="SP000",
                            severity="error",
                            category="review-failed",
                            message=str(exc),
                        ),
                    ),
                )
            log.info(
                "phase_reviewed",
                verdict=verdict.verdict,
                findings=len(verdict.findings),
            )

        used = meter.used if meter.used.steps else verdict.usage
        return {
            "reviews": [
                {
                    "persona": persona.key,
                    "verdict": verdict.verdict,
                    "findings": [f.as_dict() for f in verdict.findings],
                    "send_back_to": verdict.send_back_to,
                    "budget_hit": meter.exceeded,
                }
            ],
            "record": [
                {
                    "phase": phase,
                    "node": f"{phase}_review",
                    "persona": persona.key,
                    "role": "support",
                    "outcome": verdict.verdict,
                }
            ],
            "usage": [_usage_entry(phase, persona.key, used)],
        }

    return review


def _gate(runtime: Runtime, phase: str) -> Callable[[RunState], dict[str, Any]]:
    policy = runtime.workflow.policy(phase)

    def gate(state: RunState) -> dict[str, Any]:
        # branches finish in any order; sort so the merged result is stable
        reviews = sorted(state.get("reviews", []), key=lambda r: r["persona"])
        budget_hit = next((r["budget_hit"] for r in reviews if r["budget_hit"]), "")
        if budget_hit:
            return {"budget_hit": budget_hit, "verdict": "", "reason": ""}

        merged = merge_verdicts([Review(verdict=r["verdict"]) for r in reviews])
        findings = [f for r in reviews for f in r["findings"]]
        rounds = dict(state.get("rounds", {}))
        update: dict[str, Any] = {"verdict": merged, "send_back": "", "reason": ""}
        if merged == "revise":
            rounds[phase] = rounds.get(phase, 0) + 1
            targets = [
                r["send_back_to"]
                for r in reviews
                if r["verdict"] == "revise" and r["send_back_to"]
            ]
            allowed = [
                t
                for t in policy.send_back_to
                if t in targets and t in state.get("phases", [])
            ]
            if allowed:
                update["send_back"] = allowed[0]
            if rounds[phase] > policy.max_review_rounds:
                update["verdict"] = "block"
                update["reason"] = (
                    f"{phase}: still not approved after {policy.max_review_rounds} "
                    f"review rounds: {_summarise(findings)}"
                )
        elif merged == "block":
            update["reason"] = f"{phase}: blocked by review: {_summarise(findings)}"
        update["rounds"] = rounds
        update["findings"] = findings if update["verdict"] == "revise" else []
        with bound_run(state["task_id"], phase):
            log.info("gate_decided", verdict=update["verdict"], to=update["send_back"])
        return update

    return gate


def _approval(phase: str) -> Callable[[RunState], dict[str, Any]]:
    def approval(state: RunState) -> dict[str, Any]:
        # Nothing but the question happens here: on resume LangGraph runs this
        # node again from its start.
        answer = interrupt(
            {
                "kind": "approval",
                "task_id": state["task_id"],
                "phase": phase,
                "files": sorted(state.get("pending", {})),
            }
        )
        approved, reason = _decision(answer)
        with bound_run(state["task_id"], phase):
            log.info("approval_given" if approved else "approval_refused")
        if approved:
            return {"reason": ""}
        return {"reason": f"{phase}: rejected at the approval gate: {reason}"}

    return approval


def _write(runtime: Runtime, phase: str) -> Callable[[RunState], dict[str, Any]]:
    def write(state: RunState) -> dict[str, Any]:
        files = state.get("pending", {})
        with bound_run(state["task_id"], phase):
            try:
                written = runtime.write_files(files, already=state["written"])
            except SparcError as exc:
                return {"reason": f"{phase}: {exc}"}
        return {"written": written, "pending": {}, "reason": ""}

    return write


def _budget(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def budget(state: RunState) -> dict[str, Any]:
        hit = state["budget_hit"]
        if runtime.budget.on_exceed == "block":
            return {"reason": f"budget: {hit}"}

        answer = interrupt(
            {
                "kind": "budget",
                "task_id": state["task_id"],
                "phase": _current_phase(state),
                "limit": hit,
            }
        )
        approved, reason = _decision(answer)
        if not approved:
            return {"reason": f"budget: {hit}; not extended: {reason}"}
        return {
            "budget_base": usage_totals(state.get("usage", [])),
            "budget_hit": "",
            "reason": "",
        }

    return budget


def _verify(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def verify(state: RunState) -> dict[str, Any]:
        task_file = runtime.run_task(state["task_id"], state["run_id"])
        owners = dict.fromkeys(
            (r["phase"], r["persona"])
            for r in state.get("record", [])
            if r["role"] == "primary"
        )
        done = []
        for phase, persona_key in owners:
            engine = runtime.engines.get(persona_key)
            check = getattr(engine, "verify", None)
            if check is None:
                continue
            context = WorkContext(
                workspace=runtime.workspace,
                config=runtime.config,
                task=task_file,
                phase=phase,
                persona=runtime.personas.get(persona_key),
                written=tuple(state.get("written", [])),
            )
            with bound_run(task_file.task.id, phase, persona_key):
                try:
                    done.append(check(context))
                except SparcError as exc:
                    return {"reason": f"verify ({persona_key}): {exc}"}
        return {"verified": "; ".join(d for d in done if d), "reason": ""}

    return verify


def _commit(
    runtime: Runtime,
) -> Callable[[RunState, RunnableConfig], dict[str, Any]]:
    def commit(state: RunState, config: RunnableConfig) -> dict[str, Any]:
        task_file = runtime.run_task(state["task_id"], state["run_id"])
        # unless the caller says this invocation started the run afresh, an
        # earlier attempt (before a crash or a pause) may have committed it
        configurable = config.get("configurable") or {}
        resumed = configurable.get(RESUMED_KEY) is not False
        with bound_run(task_file.task.id, "commit"):
            try:
                sha = runtime.commit_run(
                    task_file,
                    run_id=state["run_id"],
                    written=state.get("written", []),
                    record=state.get("record", []),
                    resumed=resumed,
                    since=state.get("base_commit") or None,
                )
            except SparcError as exc:
                return {"reason": f"commit: {exc}"}
        return {"commit": sha or "", "reason": ""}

    return commit


def _complete(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def complete(state: RunState) -> dict[str, Any]:
        with bound_run(state["task_id"]):
            log.info("task_completed", commit=state["commit"])
        runtime.end_run(state["run_id"])
        return {"status": TaskStatus.COMPLETE.value}

    return complete


def _block(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def block(state: RunState) -> dict[str, Any]:
        reason = state.get("reason") or "blocked"
        task_file = runtime.run_task(state["task_id"], state["run_id"])
        with bound_run(state["task_id"]):
            runtime.abandon_run(
                task_file, written=state.get("written", []), reason=reason
            )
            log.warning("task_blocked", reason=reason)
        runtime.end_run(state["run_id"])
        return {"status": TaskStatus.BLOCKED.value, "reason": reason}

    return block


# routers


def _route_after_load(state: RunState) -> str:
    if state.get("reason") or not state.get("phases"):
        return "block"
    return state["phases"][0]


def _route_after_work(
    runtime: Runtime, phase: str
) -> Callable[[RunState], str | list[Send]]:
    def route(state: RunState) -> str | list[Send]:
        if state.get("budget_hit"):
            return "budget"
        if state.get("reason"):
            return "block"
        primary = runtime.personas.primary(phase, _specialist(runtime, state))
        reviewers = runtime.personas.support(phase, exclude=primary.key)
        if not reviewers:
            return f"{phase}_gate"
        return [
            Send(
                f"{phase}_review",
                ReviewInput(
                    task_id=state["task_id"],
                    run_id=state["run_id"],
                    phase=phase,
                    reviewer=persona.key,
                    pending=state.get("pending", {}),
                    written=list(state.get("written", [])),
                    # the branch's meter needs the totals only; every checkpoint
                    # until the branches run would carry the whole list
                    usage=[usage_totals(state.get("usage", []))],
                    budget_base=state.get("budget_base", {}),
                ),
            )
            for persona in reviewers
        ]

    route.__name__ = f"route_after_{phase}"
    return route


def _route_after_gate(runtime: Runtime, phase: str) -> Callable[[RunState], str]:
    def route(state: RunState) -> str:
        if state.get("budget_hit"):
            return "budget"
        verdict = state.get("verdict")
        if verdict == "block":
            return "block"
        if verdict == "revise":
            return state.get("send_back") or phase
        if phase in _approvals(runtime, state):
            return f"{phase}_approval"
        if not state.get("pending"):
            # nothing to write: the write step would do nothing
            return _after_phase(runtime, phase, state)
        return f"{phase}_write"

    route.__name__ = f"route_after_{phase}_gate"
    return route


def _route_after_approval(phase: str) -> Callable[[RunState], str]:
    def route(state: RunState) -> str:
        return "block" if state.get("reason") else f"{phase}_write"

    route.__name__ = f"route_after_{phase}_approval"
    return route


def _route_after_write(runtime: Runtime, phase: str) -> Callable[[RunState], str]:
    def route(state: RunState) -> str:
        if state.get("reason"):
            return "block"
        return _after_phase(runtime, phase, state)

    route.__name__ = f"route_after_{phase}_write"
    return route


def _route_after_budget(state: RunState) -> str:
    if state.get("reason"):
        return "block"
    return _current_phase(state)


def _route_on_reason(then: str) -> Callable[[RunState], str]:
    def route(state: RunState) -> str:
        return "block" if state.get("reason") else then

    route.__name__ = f"route_to_{then}"
    return route


# helpers


def _after_phase(runtime: Runtime, phase: str, state: RunState) -> str:
    """The next phase; after the last, verify, or commit when no engine verifies."""
    phases = state["phases"]
    position = phases.index(phase)
    if position + 1 < len(phases):
        return phases[position + 1]
    owners = {r["persona"] for r in state.get("record", []) if r["role"] == "primary"}
    verifies = any(
        getattr(runtime.engines.get(persona), "verify", None) is not None
        for persona in owners
    )
    return "verify" if verifies else "commit"


def _approval_phases(runtime: Runtime, asked: tuple[str, ...] | None) -> list[str]:
    """Phases whose gate waits for a person: by the workflow or by the task."""
    return [
        policy.name
        for policy in runtime.workflow.phases
        if policy.require_approval or policy.name in (asked or ())
    ]


def _specialist(runtime: Runtime, state: RunState) -> str | None:
    if "specialist" in state:
        return state["specialist"] or None
    # a run checkpointed before the state carried it
    return runtime.run_task(state["task_id"], state["run_id"]).task.specialist


def _approvals(runtime: Runtime, state: RunState) -> list[str]:
    if "approval_phases" in state:
        return state["approval_phases"]
    # a run checkpointed before the state carried them
    task = runtime.run_task(state["task_id"], state["run_id"]).task
    return _approval_phases(runtime, task.require_approval)


def merge_verdicts(reviews: list[Review]) -> str:
    """Any block blocks; any revise revises; otherwise approve."""
    verdicts = {r.verdict for r in reviews}
    if "block" in verdicts:
        return "block"
    if "revise" in verdicts:
        return "revise"
    return "approve"


def usage_totals(entries: list[dict[str, Any]]) -> dict[str, float]:
    """Sum of tokens, cost and steps over usage entries."""
    return {
        name: round(sum(e.get(name, 0) for e in entries), 6)
        if name == "cost"
        else sum(e.get(name, 0) for e in entries)
        for name in LIMITS
    }


def _meter(
    runtime: Runtime,
    state: RunState | ReviewInput,
    config: RunnableConfig,
    phase: str,
    persona: str,
) -> Meter:
    """A meter holding what the task's and the batch's budgets have left."""
    base = state.get("budget_base") or {}
    used = usage_totals(state.get("usage", []))
    batch_used = (config.get("configurable") or {}).get("sparc_batch_used") or {}
    remaining: dict[str, float] = {}
    scopes: dict[str, str] = {}
    for name in LIMITS:
        for scope, limits, spent in (
            ("task", runtime.budget.task, used[name]),
            ("batch", runtime.budget.batch, used[name] + batch_used.get(name, 0)),
        ):
            limit = getattr(limits, name)
            if limit is None:
                continue
            left = limit - spent + base.get(name, 0)
            if name not in remaining or left < remaining[name]:
                remaining[name] = left
                scopes[name] = scope
    return Meter(
        remaining,
        scopes=scopes,
        task_id=state["task_id"],
        phase=phase,
        persona=persona,
    )


def _usage_entry(phase: str, persona: str, used: Any) -> dict[str, Any]:
    return {"phase": phase, "persona": persona, **used.as_dict()}


def _current_phase(state: RunState) -> str:
    record = state.get("record", [])
    return record[-1]["phase"] if record else state["phases"][0]


def _decision(answer: object) -> tuple[bool, str]:
    if isinstance(answer, dict):
        return bool(answer.get("approved")), str(answer.get("reason") or "")
    return bool(answer), ""


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _summarise(findings: list[dict[str, str]]) -> str:
    """The reason line: errors first (what decided the gate), then the rest."""
    if not findings:
        return "no findings given"
    ordered = sorted(findings, key=lambda f: _SEVERITY_ORDER.get(f["severity"], 3))
    shown = "; ".join(f"[{f['code']}] {f['message']}" for f in ordered[:3])
    more = len(ordered) - 3
    return shown + (f" (+{more} more)" if more > 0 else "")
