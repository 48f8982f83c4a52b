"""Workflows: which SPARC phases a run goes through, and how each phase is gated.

A workflow file is YAML:

    name: sparc
    description: every phase, from specification to completion
    phases:
      - name: specification
        max_review_rounds: 2
        require_approval: false
      - pseudocode            # a bare name takes the default policy
      - name: architecture
        send_back_to: [specification]   # reviewers may reopen these phases

Phases use the lowercase keys of `SPARC_PHASES`, appear in SPARC order and at
most once. This module is plain data: it does not import LangGraph.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sparc.errors import WorkflowError
from sparc.safe_yaml import load_yaml

log = structlog.get_logger(__name__)

SPARC_PHASES: tuple[str, ...] = (
    "specification",
    "pseudocode",
    "architecture",
    "planning",
    "refinement",
    "completion",
)

MAX_WORKFLOW_BYTES = 64 * 1024

_BUILTIN_PACKAGE = "sparc.workflows"


def phase_key(name: str) -> str | None:
    """Return the lowercase key of a SPARC phase name, or None if it is not one.

    Cards write phases capitalised ("Refinement"); everything else uses keys.
    """
    key = name.strip().lower()
    return key if key in SPARC_PHASES else None


def normalize_phase(name: str) -> str:
    """Return the lowercase key of a SPARC phase name.

    Raises:
        WorkflowError: `name` is not a SPARC phase.
    """
    key = phase_key(name) if isinstance(name, str) else None
    if key is None:
        raise WorkflowError(
            f"unknown SPARC phase {name!r}; valid phases: {', '.join(SPARC_PHASES)}",
            field="phase",
        )
    return key


class PhasePolicy(BaseModel):
    """How one phase is gated: review rounds before giving up, human approval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    max_review_rounds: int = Field(default=2, ge=0, strict=True)
    require_approval: bool = Field(default=False, strict=True)
    # earlier phases a reviewer of this phase may send the task back to
    send_back_to: tuple[str, ...] = ()

    @field_validator("name", mode="before")
    @classmethod
    def _known_phase(cls, value: object) -> str:
        key = phase_key(value) if isinstance(value, str) else None
        if key is None:
            raise ValueError(
                f"unknown phase {value!r}; valid phases: {', '.join(SPARC_PHASES)}"
            )
        return key

    @field_validator("send_back_to", mode="before")
    @classmethod
    def _known_targets(cls, value: object) -> object:
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of phase names")
        keys = []
        for item in value:
            key = phase_key(item) if isinstance(item, str) else None
            if key is None:
                raise ValueError(
                    f"unknown phase {item!r}; valid phases: {', '.join(SPARC_PHASES)}"
                )
            keys.append(key)
        return tuple(dict.fromkeys(keys))


class Workflow(BaseModel):
    """An ordered run of SPARC phases with the gate policy of each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    phases: list[PhasePolicy] = Field(min_length=1)

    @field_validator("phases", mode="before")
    @classmethod
    def _bare_names(cls, value: object) -> object:
        # A bare phase name in the file stands for that phase's default policy.
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("phases")
    @classmethod
    def _sparc_order(cls, phases: list[PhasePolicy]) -> list[PhasePolicy]:
        seen: list[str] = []
        for policy in phases:
            if policy.name in seen:
                raise ValueError(f"phase {policy.name!r} is listed twice")
            if seen and _rank(policy.name) < _rank(seen[-1]):
                raise ValueError(
                    f"phase {policy.name!r} comes after {seen[-1]!r}; list phases "
                    f"in SPARC order: {', '.join(SPARC_PHASES)}"
                )
            seen.append(policy.name)
        for policy in phases:
            for target in policy.send_back_to:
                if target not in seen or _rank(target) >= _rank(policy.name):
                    raise ValueError(
                        f"phase {policy.name!r} may send back only to an earlier "
                        f"phase of this workflow, not {target!r}"
                    )
        return phases

    @property
    def phase_names(self) -> tuple[str, ...]:
        """The phase keys of this workflow, in order."""
        return tuple(policy.name for policy in self.phases)

    def policy(self, phase: str) -> PhasePolicy:
        """Return the policy of `phase` (a key or a capitalised name).

        Raises:
            WorkflowError: the phase is not part of this workflow.
        """
        return self.phases[self._index(phase, field="phase")]

    def phase_range(
        self, first: str | None = None, last: str | None = None
    ) -> list[PhasePolicy]:
        """Return the phases from `first` to `last`, both included.

        Args:
            first: the first phase to run; None starts at the workflow's first.
            last: the last phase to run; None ends at the workflow's last.

        Raises:
            WorkflowError: a phase is not in this workflow, or `first` comes
                after `last`.
        """
        start = 0 if first is None else self._index(first, field="first")
        stop = len(self.phases) - 1 if last is None else self._index(last, field="last")
        if start > stop:
            raise WorkflowError(
                f"first phase {self.phases[start].name!r} comes after last phase "
                f"{self.phases[stop].name!r} in workflow {self.name!r}; valid "
                f"phases in order: {self._valid()}",
                field="first",
            )
        return self.phases[start : stop + 1]

    def select(self, phases: Sequence[str] | None) -> list[PhasePolicy]:
        """Return the policies of a task's requested phases.

        Args:
            phases: phase names in order; None means every phase of the workflow.

        Raises:
            WorkflowError: the list is empty, names a phase this workflow lacks,
                repeats or reorders phases, or skips a phase in the middle.
        """
        if phases is None:
            return list(self.phases)
        if isinstance(phases, str) or not phases:
            raise WorkflowError(
                f"the phase list must name at least one phase of workflow "
                f"{self.name!r}: {self._valid()}",
                field="phases",
            )

        indexes: list[int] = []
        for requested in phases:
            index = self._index(requested, field="phases")
            if index in indexes:
                raise WorkflowError(
                    f"phase {self.phases[index].name!r} is listed twice; valid "
                    f"phases in order: {self._valid()}",
                    field="phases",
                )
            if indexes and index < indexes[-1]:
                raise WorkflowError(
                    f"phase {self.phases[index].name!r} comes after "
                    f"{self.phases[indexes[-1]].name!r}; list phases in workflow "
                    f"order: {self._valid()}",
                    field="phases",
                )
            if indexes and index > indexes[-1] + 1:
                missing = self.phases[indexes[-1] + 1].name
                raise WorkflowError(
                    f"phases must be a contiguous run of workflow {self.name!r}: "
                    f"{missing!r} is missing between "
                    f"{self.phases[indexes[-1]].name!r} and "
                    f"{self.phases[index].name!r}",
                    field="phases",
                )
            indexes.append(index)

        return [self.phases[index] for index in indexes]

    def _index(self, phase: str, *, field: str) -> int:
        key = phase_key(phase) if isinstance(phase, str) else None
        if key not in self.phase_names:
            raise WorkflowError(
                f"phase {phase!r} is not in workflow {self.name!r}; valid phases: "
                f"{self._valid()}",
                field=field,
            )
        return self.phase_names.index(key)

    def _valid(self) -> str:
        return ", ".join(self.phase_names)


def load_workflow(path: Path | str) -> Workflow:
    """Read a workflow file.

    A file without a `name` takes its file name stem as the name.

    Raises:
        WorkflowError: the file is missing, too large, not UTF-8, not YAML, or
            a field is invalid; the message names the file, line and field.
    """
    path = Path(path)
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise WorkflowError(
                "not a regular file; a workflow file must be a file", path=path
            )
        size = status.st_size
        if size > MAX_WORKFLOW_BYTES:
            raise _too_large(size, path)
        data = path.read_bytes()
    except OSError as exc:
        raise WorkflowError(
            f"cannot read the workflow file: {exc.strerror or exc}", path=path
        ) from exc
    return _parse_workflow(data, source=path, default_name=path.stem)


def builtin_workflow_names() -> list[str]:
    """Names of the workflows shipped in `sparc.workflows`, sorted."""
    folder = resources.files(_BUILTIN_PACKAGE)
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    )


def builtin_workflow(name: str) -> Workflow:
    """Load a shipped workflow by name, for example "sparc" or "refinement".

    Raises:
        WorkflowError: no shipped workflow has that name.
    """
    names = builtin_workflow_names()
    if name not in names:
        raise WorkflowError(
            f"no built-in workflow named {name!r}; built-in workflows: "
            f"{', '.join(names)}",
            field="workflow",
        )

    entry = resources.files(_BUILTIN_PACKAGE) / f"{name}.yaml"
    return _parse_workflow(entry.read_bytes(), source=str(entry), default_name=name)


def _parse_workflow(data: bytes, *, source: Path | str, default_name: str) -> Workflow:
    if len(data) > MAX_WORKFLOW_BYTES:
        raise _too_large(len(data), source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkflowError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            path=source,
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from exc

    def error(message: str, line: int | None, column: int | None) -> WorkflowError:
        return WorkflowError(message, path=source, line=line)

    root, document = load_yaml(
        text, error, prefix="not valid YAML: ", with_context=False
    )
    if not isinstance(document, dict):
        raise WorkflowError(
            "a workflow file must be a mapping with 'name', 'description' and 'phases'",
            path=source,
            line=1,
        )

    document.setdefault("name", default_name)
    try:
        workflow = Workflow.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = tuple(error["loc"])
        field = ".".join(str(part) for part in location) or "workflow"
        raise WorkflowError(
            f"{field}: {_describe(error)}",
            path=source,
            line=_line_of(root, location),
            field=field,
        ) from exc

    log.debug("workflow_loaded", workflow=workflow.name, path=str(source))
    return workflow


def _too_large(size: int, source: Path | str) -> WorkflowError:
    return WorkflowError(
        f"the workflow file is {size} bytes, over the {MAX_WORKFLOW_BYTES} byte "
        "limit; a workflow lists at most six phases",
        path=source,
    )


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field; remove it or check its spelling"
    if kind == "missing":
        return "required field is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _line_of(root: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the YAML node at `location`, or of its nearest parent."""
    if root is None:
        return None
    node: yaml.Node = root
    line = node.start_mark.line + 1
    for part in location:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _rank(phase: str) -> int:
    return SPARC_PHASES.index(phase)
