"""The SPARC state machine: one LangGraph thread per task run.

    load_task -> <phase> -> <phase>_review -> gate
        approve -> next phase in the task's range, or commit
        revise  -> <phase> again with the findings (bounded rounds)
        block   -> block
    commit -> complete

The primary persona of each phase works; its support personas review. Only the
commit node touches git and only the load, commit and block nodes edit the
task file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from langgraph.graph import END, START, StateGraph

from sparc.backlog import TaskStatus
from sparc.engines import Finding, Review, WorkContext
from sparc.errors import SparcError
from sparc.state import RESET, RunState

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    from sparc.runtime import Runtime

log = structlog.get_logger(__name__)


def build_graph(
    runtime: Runtime, *, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """Compile the SPARC graph of `runtime`'s workflow.

    Args:
        runtime: the workspace, configuration, personas, engines and workflow.
        checkpointer: where the run's checkpoints go; none keeps them in memory
            only for the length of one invocation.

    Returns:
        A compiled LangGraph graph, usable alone or as a subgraph node.
    """
    builder = StateGraph(RunState)
    phases = [policy.name for policy in runtime.workflow.phases]

    builder.add_node("load_task", _load_task(runtime))
    for phase in phases:
        builder.add_node(phase, _work(runtime, phase))
        builder.add_node(f"{phase}_review", _review(runtime, phase))
    builder.add_node("commit", _commit(runtime))
    builder.add_node("complete", _complete(runtime))
    builder.add_node("block", _block(runtime))

    builder.add_edge(START, "load_task")
    builder.add_conditional_edges(
        "load_task", _route_after_load, [*phases, "commit", "block"]
    )
    for phase in phases:
        builder.add_conditional_edges(
            phase, _route_after_work(phase), [f"{phase}_review", "block"]
        )
        builder.add_conditional_edges(
            f"{phase}_review",
            _route_after_review(phase),
            [*phases, "commit", "block"],
        )
    builder.add_conditional_edges("commit", _route_after_commit, ["complete", "block"])
    builder.add_edge("complete", END)
    builder.add_edge("block", END)
    return builder.compile(checkpointer=checkpointer)


def initial_state(task_id: str, run_id: str) -> RunState:
    """The input of a fresh run; RESET clears what an earlier run left."""
    return {
        "task_id": task_id,
        "run_id": run_id,
        "rounds": {},
        "findings": [],
        "verdict": "",
        "status": "",
        "reason": "",
        "commit": "",
        "written": [RESET],
        "record": [RESET],
        "report": [RESET],
    }


# nodes


def _load_task(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def load_task(state: RunState) -> dict[str, Any]:
        task_file = runtime.task(state["task_id"])
        try:
            phases = [p.name for p in runtime.workflow.select(task_file.task.phases)]
        except SparcError as exc:
            return {"phases": [], "reason": str(exc)}

        runtime.set_status(task_file, TaskStatus.IN_PROGRESS)
        log.info("task_started", task_id=task_file.task.id, phases=phases)
        return {"phases": phases}

    return load_task


def _work(runtime: Runtime, phase: str) -> Callable[[RunState], dict[str, Any]]:
    def work(state: RunState) -> dict[str, Any]:
        task_file = runtime.task(state["task_id"])
        persona = runtime.personas.primary(phase, task_file.task.specialist)
        context = WorkContext(
            workspace=runtime.workspace,
            config=runtime.config,
            task=task_file,
            phase=phase,
            persona=persona,
            findings=tuple(Finding(**f) for f in state.get("findings", [])),
            written=tuple(state.get("written", [])),
        )
        entry = {"phase": phase, "node": phase, "persona": persona.key}

        with structlog.contextvars.bound_contextvars(
            task_id=task_file.task.id, phase=phase, persona=persona.key
        ):
            try:
                result = runtime.engines.get(persona.key).work(context)
                written = runtime.write_files(result.files, already=state["written"])
            except SparcError as exc:
                log.warning("phase_failed", error=str(exc))
                return {
                    "record": [{**entry, "role": "primary", "outcome": "failed"}],
                    "reason": f"{phase} ({persona.key}): {exc}",
                }
            log.info("phase_worked", files=sorted(result.files))

        return {
            "written": written,
            "record": [{**entry, "role": "primary", "outcome": "worked"}],
            "report": list(result.report),
            "reason": "",
        }

    return work


def _review(runtime: Runtime, phase: str) -> Callable[[RunState], dict[str, Any]]:
    policy = next(p for p in runtime.workflow.phases if p.name == phase)

    def review(state: RunState) -> dict[str, Any]:
        task_file = runtime.task(state["task_id"])
        primary = runtime.personas.primary(phase, task_file.task.specialist)
        reviewers = runtime.personas.support(phase, exclude=primary.key)
        written = tuple(state.get("written", []))

        reviews: list[Review] = []
        record = []
        for persona in reviewers:
            context = WorkContext(
                workspace=runtime.workspace,
                config=runtime.config,
                task=task_file,
                phase=phase,
                persona=persona,
                written=written,
            )
            with structlog.contextvars.bound_contextvars(
                task_id=task_file.task.id, phase=phase, persona=persona.key
            ):
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
            reviews.append(verdict)
            record.append(
                {
                    "phase": phase,
                    "node": f"{phase}_review",
                    "persona": persona.key,
                    "role": "support",
                    "outcome": verdict.verdict,
                }
            )

        merged = merge_verdicts(reviews)
        findings = [f.as_dict() for r in reviews for f in r.findings]
        rounds = dict(state.get("rounds", {}))
        update: dict[str, Any] = {"record": record, "verdict": merged}
        if merged == "revise":
            rounds[phase] = rounds.get(phase, 0) + 1
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
        return update

    return review


def _commit(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def commit(state: RunState) -> dict[str, Any]:
        task_file = runtime.task(state["task_id"])
        try:
            sha = runtime.commit_run(
                task_file,
                run_id=state["run_id"],
                written=state.get("written", []),
                record=state.get("record", []),
            )
        except SparcError as exc:
            return {"reason": f"commit: {exc}"}
        return {"commit": sha or "", "reason": ""}

    return commit


def _complete(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def complete(state: RunState) -> dict[str, Any]:
        log.info("task_completed", task_id=state["task_id"], commit=state["commit"])
        return {"status": TaskStatus.COMPLETE.value}

    return complete


def _block(runtime: Runtime) -> Callable[[RunState], dict[str, Any]]:
    def block(state: RunState) -> dict[str, Any]:
        reason = state.get("reason") or "blocked"
        task_file = runtime.task(state["task_id"])
        runtime.abandon_run(task_file, written=state.get("written", []), reason=reason)
        log.warning("task_blocked", task_id=state["task_id"], reason=reason)
        return {"status": TaskStatus.BLOCKED.value, "reason": reason}

    return block


# routers


def _route_after_load(state: RunState) -> str:
    if state.get("reason") or not state.get("phases"):
        return "block"
    return state["phases"][0]


def _route_after_work(phase: str) -> Callable[[RunState], str]:
    def route(state: RunState) -> str:
        return "block" if state.get("reason") else f"{phase}_review"

    route.__name__ = f"route_after_{phase}"
    return route


def _route_after_review(phase: str) -> Callable[[RunState], str]:
    def route(state: RunState) -> str:
        verdict = state.get("verdict")
        if verdict == "block":
            return "block"
        if verdict == "revise":
            return phase
        phases = state["phases"]
        position = phases.index(phase)
        return phases[position + 1] if position + 1 < len(phases) else "commit"

    route.__name__ = f"route_after_{phase}_review"
    return route


def _route_after_commit(state: RunState) -> str:
    return "block" if state.get("reason") else "complete"


def merge_verdicts(reviews: list[Review]) -> str:
    """Any block blocks; any revise revises; otherwise approve."""
    verdicts = {r.verdict for r in reviews}
    if "block" in verdicts:
        return "block"
    if "revise" in verdicts:
        return "revise"
    return "approve"


def _summarise(findings: list[dict[str, str]]) -> str:
    if not findings:
        return "no findings given"
    shown = "; ".join(f"[{f['code']}] {f['message']}" for f in findings[:3])
    more = len(findings) - 3
    return shown + (f" (+{more} more)" if more > 0 else "")
