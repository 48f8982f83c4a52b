"""Workflows: the shipped files, loading errors, and choosing a task's phases."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from sparc.errors import WorkflowError
from sparc.workflow import (
    MAX_WORKFLOW_BYTES,
    SPARC_PHASES,
    PhasePolicy,
    Workflow,
    builtin_workflow,
    builtin_workflow_names,
    load_workflow,
    normalize_phase,
    phase_key,
)

ALL = "specification, pseudocode, architecture, planning, refinement, completion"


@pytest.fixture
def sparc() -> Workflow:
    return builtin_workflow("sparc")


def _write(tmp_path: Path, text: str, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    return caught.value


# -------------------------------------------------------------------- builtin


def test_phase_keys() -> None:
    assert SPARC_PHASES == (
        "specification",
        "pseudocode",
        "architecture",
        "planning",
        "refinement",
        "completion",
    )
    assert phase_key("Refinement") == "refinement"
    assert phase_key(" PLANNING ") == "planning"
    assert phase_key("deploy") is None
    assert normalize_phase("Completion") == "completion"
    with pytest.raises(WorkflowError) as caught:
        normalize_phase("deploy")
    assert str(caught.value) == f"unknown SPARC phase 'deploy'; valid phases: {ALL}"


def test_builtin_workflows_are_listed() -> None:
    assert builtin_workflow_names() == ["refinement", "sparc"]


def test_sparc_workflow_has_every_phase(sparc: Workflow) -> None:
    assert sparc.name == "sparc"
    assert sparc.description.startswith("Every SPARC phase in order")
    assert sparc.phase_names == SPARC_PHASES
    assert all(not policy.require_approval for policy in sparc.phases)
    assert sparc.policy("Refinement") == PhasePolicy(
        name="refinement", max_review_rounds=3
    )
    assert sparc.policy("planning").max_review_rounds == 2


def test_refinement_workflow_has_only_refinement() -> None:
    workflow = builtin_workflow("refinement")

    assert workflow.name == "refinement"
    assert workflow.phase_names == ("refinement",)
    assert workflow.select(None) == [
        PhasePolicy(name="refinement", max_review_rounds=3)
    ]


def test_unknown_builtin_workflow() -> None:
    with pytest.raises(WorkflowError) as caught:
        builtin_workflow("../sparc")

    assert str(caught.value) == (
        "no built-in workflow named '../sparc'; built-in workflows: refinement, sparc"
    )
    assert caught.value.exit_code == 2


# ------------------------------------------------------------ select and range


def test_select_returns_the_requested_run(sparc: Workflow) -> None:
    assert sparc.select(None) == sparc.phases
    assert [p.name for p in sparc.select(["Pseudocode", "architecture"])] == [
        "pseudocode",
        "architecture",
    ]
    assert [p.name for p in sparc.select(("completion",))] == ["completion"]
    assert [p.name for p in sparc.select(list(SPARC_PHASES))] == list(SPARC_PHASES)


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        pytest.param(
            [],
            f"the phase list must name at least one phase of workflow 'sparc': {ALL}",
            id="empty",
        ),
        pytest.param(
            "refinement",
            f"the phase list must name at least one phase of workflow 'sparc': {ALL}",
            id="a-string-not-a-list",
        ),
        pytest.param(
            ["specification", "deploy"],
            f"phase 'deploy' is not in workflow 'sparc'; valid phases: {ALL}",
            id="unknown",
        ),
        pytest.param(
            ["planning", "planning"],
            f"phase 'planning' is listed twice; valid phases in order: {ALL}",
            id="repeated",
        ),
        pytest.param(
            ["architecture", "pseudocode"],
            "phase 'pseudocode' comes after 'architecture'; list phases in workflow "
            f"order: {ALL}",
            id="reversed",
        ),
        pytest.param(
            ["specification", "architecture"],
            "phases must be a contiguous run of workflow 'sparc': 'pseudocode' is "
            "missing between 'specification' and 'architecture'",
            id="gap",
        ),
    ],
)
def test_select_errors(sparc: Workflow, phases: list[str], message: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        sparc.select(phases)

    assert str(caught.value) == message
    assert caught.value.field == "phases"


def test_select_refuses_a_phase_the_workflow_lacks() -> None:
    with pytest.raises(WorkflowError) as caught:
        builtin_workflow("refinement").select(["planning", "refinement"])

    assert str(caught.value) == (
        "phase 'planning' is not in workflow 'refinement'; valid phases: refinement"
    )


def test_phase_range(sparc: Workflow) -> None:
    def names(policies: list[PhasePolicy]) -> list[str]:
        return [policy.name for policy in policies]

    assert names(sparc.phase_range()) == list(SPARC_PHASES)
    assert names(sparc.phase_range("planning")) == [
        "planning",
        "refinement",
        "completion",
    ]
    assert names(sparc.phase_range(None, "Pseudocode")) == [
        "specification",
        "pseudocode",
    ]
    assert names(sparc.phase_range("refinement", "refinement")) == ["refinement"]


def test_phase_range_errors(sparc: Workflow) -> None:
    with pytest.raises(WorkflowError) as caught:
        sparc.phase_range("completion", "specification")
    assert str(caught.value) == (
        "first phase 'completion' comes after last phase 'specification' in "
        f"workflow 'sparc'; valid phases in order: {ALL}"
    )

    with pytest.raises(WorkflowError) as caught:
        builtin_workflow("refinement").phase_range(None, "completion")
    assert str(caught.value) == (
        "phase 'completion' is not in workflow 'refinement'; valid phases: refinement"
    )
    assert caught.value.field == "last"


def test_policy_of_a_missing_phase(sparc: Workflow) -> None:
    with pytest.raises(WorkflowError, match="phase 'review' is not in workflow"):
        sparc.policy("review")


# -------------------------------------------------------------------- loading


def test_load_a_custom_workflow(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "phases:\n"
        "  - Specification\n"
        "  - name: architecture\n"
        "    max_review_rounds: 0\n"
        "    require_approval: true\n"
        "  - refinement\n",
        name="design-then-build.yaml",
    )

    workflow = load_workflow(path)

    assert workflow.name == "design-then-build"
    assert workflow.description == ""
    assert workflow.phases == [
        PhasePolicy(name="specification"),
        PhasePolicy(name="architecture", max_review_rounds=0, require_approval=True),
        PhasePolicy(name="refinement"),
    ]
    # a workflow may skip phases; a task's run must still be contiguous in it
    assert [p.name for p in workflow.select(["architecture", "refinement"])] == [
        "architecture",
        "refinement",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "name: x\nphases:\n  - specification\n  - deploy\n",
            f"4: phases.1.name: unknown phase 'deploy'; valid phases: {ALL}",
            id="unknown-phase",
        ),
        pytest.param(
            "name: x\nphases:\n  - refinement\n  - planning\n",
            "2: phases: phase 'planning' comes after 'refinement'; list phases in "
            f"SPARC order: {ALL}",
            id="out-of-order",
        ),
        pytest.param(
            "name: x\nphases: [planning, Planning]\n",
            "2: phases: phase 'planning' is listed twice",
            id="repeated",
        ),
        pytest.param(
            "name: x\nphases: []\n",
            "2: phases: List should have at least 1 item after validation, not 0",
            id="no-phases",
        ),
        pytest.param(
            "name: x\n",
            "1: phases: required field is missing",
            id="missing-phases",
        ),
        pytest.param(
            "name: x\nphases:\n  - name: planning\n    max_review_rounds: -1\n",
            "4: phases.0.max_review_rounds: Input should be greater than or equal to 0",
            id="negative-rounds",
        ),
        pytest.param(
            "name: x\nphases:\n  - name: planning\n    max_review_rounds: '2'\n",
            "4: phases.0.max_review_rounds: Input should be a valid integer",
            id="rounds-as-text",
        ),
        pytest.param(
            "name: x\nphases:\n  - name: planning\n    require_approval: maybe\n",
            "4: phases.0.require_approval: Input should be a valid boolean",
            id="approval-not-bool",
        ),
        pytest.param(
            "name: x\nphases:\n  - name: planning\n    max_rounds: 3\n",
            "4: phases.0.max_rounds: unknown field; remove it or check its spelling",
            id="unknown-field",
        ),
        pytest.param(
            "name: x\nstages: []\nphases: [planning]\n",
            "2: stages: unknown field; remove it or check its spelling",
            id="unknown-top-field",
        ),
        pytest.param(
            "name: ''\nphases: [planning]\n",
            "1: name: String should have at least 1 character",
            id="empty-name",
        ),
        pytest.param(
            "- specification\n- pseudocode\n",
            "1: a workflow file must be a mapping with 'name', 'description' and "
            "'phases'",
            id="a-list",
        ),
        pytest.param(
            "",
            "1: a workflow file must be a mapping with 'name', 'description' and "
            "'phases'",
            id="empty-file",
        ),
        pytest.param(
            "name: x\nphases: [planning\n",
            "3: not valid YAML: expected ',' or ']', but got '<stream end>'",
            id="bad-yaml",
        ),
        pytest.param(
            "name: !!python/object:os.system x\nphases: [planning]\n",
            "1: not valid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system'",
            id="unsafe-tag",
        ),
    ],
)
def test_workflow_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)

    error = _error(path)

    assert str(error) == f"{path}:{message}"
    assert error.path == path


def test_error_field_is_recorded(tmp_path: Path) -> None:
    path = _write(tmp_path, "phases:\n  - name: planning\n    max_review_rounds: -1\n")

    error = _error(path)

    assert error.field == "phases.0.max_review_rounds"
    assert error.line == 3


def test_missing_workflow_file(tmp_path: Path) -> None:
    error = _error(tmp_path / "none.yaml")

    assert str(error) == (
        f"{tmp_path / 'none.yaml'}: cannot read the workflow file: No such file or "
        "directory"
    )


def test_oversized_workflow_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "phases: [planning]\n" + "#" * MAX_WORKFLOW_BYTES)

    error = _error(path)

    assert str(error) == (
        f"{path}: the workflow file is {path.stat().st_size} bytes, over the 65536 "
        "byte limit; a workflow lists at most six phases"
    )


def test_non_utf8_workflow_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: x\ndescription: caf\xe9\nphases: [planning]\n")

    error = _error(path)

    assert str(error) == (
        f"{path}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )


def test_workflow_model_refuses_bad_order_when_built_in_code() -> None:
    with pytest.raises(pydantic.ValidationError, match="comes after 'refinement'"):
        Workflow(
            name="x",
            phases=[PhasePolicy(name="refinement"), PhasePolicy(name="planning")],
        )


def test_policies_are_frozen() -> None:
    policy = PhasePolicy(name="Planning")

    assert policy.name == "planning"
    with pytest.raises(pydantic.ValidationError):
        policy.max_review_rounds = 5  # type: ignore[misc]


def test_send_back_targets_are_earlier_phases(tmp_path: Path) -> None:
    """A phase may reopen only phases before it in the same workflow."""
    path = tmp_path / "back.yaml"
    path.write_text(
        "name: back\nphases:\n  - specification\n  - name: architecture\n"
        "    send_back_to: [Specification]\n"
    )
    assert load_workflow(path).policy("architecture").send_back_to == ("specification",)

    path.write_text(
        "name: back\nphases:\n  - name: specification\n"
        "    send_back_to: [architecture]\n  - architecture\n"
    )
    with pytest.raises(WorkflowError, match="only to an earlier phase"):
        load_workflow(path)

    path.write_text(
        "name: back\nphases:\n  - specification\n  - name: architecture\n"
        "    send_back_to: [pseudocode]\n"
    )
    with pytest.raises(WorkflowError, match="not 'pseudocode'"):
        load_workflow(path)


def test_sparc_workflow_lets_architecture_reopen_the_specification() -> None:
    policy = builtin_workflow("sparc").policy("architecture")
    assert policy.send_back_to == ("specification",)
