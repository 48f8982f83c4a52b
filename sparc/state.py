"""The state of one task run, as the graph checkpoints it."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

# A list update that starts with RESET replaces the list instead of extending it,
# so a new run on an existing thread starts from an empty record.
RESET = "__reset__"


def extend_or_reset(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer: append `right` to `left`, or replace `left` when `right` resets."""
    left = left or []
    right = right or []
    if right and right[0] == RESET:
        return list(right[1:])
    return left + right


def merge_paths(left: list[str] | None, right: list[str] | None) -> list[str]:
    """Reducer: the union of written paths, in first-written order."""
    if right and right[0] == RESET:
        return list(dict.fromkeys(right[1:]))
    return list(dict.fromkeys([*(left or []), *(right or [])]))


class RunState(TypedDict, total=False):
    """What a task run carries from node to node (JSON-serialisable only)."""

    task_id: str
    run_id: str
    phases: list[str]
    # the task's specialist and the phases whose gate waits for a person, as
    # the load node read them: routers decide from the state alone
    specialist: str
    approval_phases: list[str]
    # HEAD when the run started: a resumed run looks for its own commit after it
    base_commit: str
    rounds: dict[str, int]
    # the deliverables of the phase under review: path -> text, written to the
    # workspace only once the gate (and a person, where required) approves them
    pending: dict[str, str]
    # verdicts of the current review round, one per support persona
    reviews: Annotated[list[dict[str, Any]], extend_or_reset]
    # the gate's merged verdict for the phase just reviewed
    verdict: str
    # the earlier phase a reviewer reopened, when the gate sends the task back
    send_back: str
    # findings that sent the work back, given to the next work round
    findings: list[dict[str, str]]
    written: Annotated[list[str], merge_paths]
    # one entry per engine invocation: phase, node, persona, role, verdict
    record: Annotated[list[dict[str, str]], extend_or_reset]
    report: Annotated[list[str], extend_or_reset]
    # one entry per engine invocation: phase, persona, tokens, cost, steps
    usage: Annotated[list[dict[str, Any]], extend_or_reset]
    # which budget limit stopped the run, and the usage when a person last
    # extended the budget (limits count from there)
    budget_hit: str
    budget_base: dict[str, float]
    status: str
    reason: str
    commit: str
    verified: str


class ReviewInput(TypedDict):
    """What one parallel review branch gets (through `Send`)."""

    task_id: str
    run_id: str
    phase: str
    reviewer: str
    pending: dict[str, str]
    written: list[str]
    # what the run has used so far, summed into one entry
    usage: list[dict[str, Any]]
    budget_base: dict[str, float]
