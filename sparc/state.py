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
    rounds: dict[str, int]
    # the gate's merged verdict for the phase just reviewed
    verdict: str
    # findings that sent the work back, given to the next work round
    findings: list[dict[str, str]]
    written: Annotated[list[str], merge_paths]
    # one entry per engine invocation: phase, node, persona, role, verdict
    record: Annotated[list[dict[str, str]], extend_or_reset]
    report: Annotated[list[str], extend_or_reset]
    status: str
    reason: str
    commit: str
