"""The command line: exit codes, one-line errors, and an untouched workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sparc.cli import main


def snapshot(root: Path, *, with_state: bool = True) -> dict[str, bytes]:
    """Every file under `root` (git objects included) with its bytes.

    Without `with_state`, sparc's own bookkeeping in `.sparc/` (checkpoint
    database, locks, run records) is left out; its config is kept.
    """
    files = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    if not with_state:
        files = {
            k: v
            for k, v in files.items()
            if not k.startswith(".sparc/") or k == ".sparc/config.yaml"
        }
    return files


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def workspace(shop_workspace: Path) -> Path:
    code, out, err = invoke("init", str(shop_workspace))
    assert code == 0, err
    return shop_workspace


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("command", ["batch", "backlog", "run"])
def test_malformed_yaml_is_exit_2_naming_the_file(
    workspace: Path, command: str
) -> None:
    """A task file that is not YAML stops every command before any work."""
    _write(workspace / "docs/backlog/DB-002.yaml", "id: DB-002\ntitle: [unclosed\n")
    before = snapshot(workspace)

    args = ["-C", str(workspace), command] + (["DB-001"] if command == "run" else [])
    code, out, err = invoke(*args)

    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: docs/backlog/DB-002.yaml:") or (
        "DB-002.yaml:" in lines[0]
    )
    assert snapshot(workspace) == before


def test_dependency_cycle_is_exit_2_naming_every_file(workspace: Path) -> None:
    """A cycle names each task in it and each file."""
    path = workspace / "docs/backlog/DB-001.yaml"
    _write(path, path.read_text().replace("depends_on: []", "depends_on: [DB-003]"))
    before = snapshot(workspace)

    code, out, err = invoke("-C", str(workspace), "batch")

    assert code == 2
    line = err.strip()
    assert "\n" not in line
    assert "cycle" in line
    for task_id in ("DB-001", "DB-002", "DB-003"):
        assert f"{task_id}.yaml" in line
    assert snapshot(workspace) == before


def test_unknown_dependency_is_exit_2_naming_the_file(workspace: Path) -> None:
    """A dependency on a task that does not exist names the file and the id."""
    path = workspace / "docs/backlog/DB-002.yaml"
    _write(path, path.read_text().replace("[DB-001]", "[DB-404]"))
    before = snapshot(workspace)

    code, out, err = invoke("-C", str(workspace), "batch")

    assert code == 2
    line = err.strip()
    assert "\n" not in line
    assert "DB-002.yaml" in line and "DB-404" in line
    assert snapshot(workspace) == before


def test_personas_prints_hephaestus_as_the_card_says() -> None:
    """Primary in Refinement, support in four phases, nothing in Planning."""
    code, out, err = invoke("personas")

    assert code == 0, err
    row = next(line for line in out.splitlines() if "hephaestus" in line.lower())
    header = next(line for line in out.splitlines() if "refinement" in line)
    cells = {}
    for phase in (
        "Specification",
        "Pseudocode",
        "Architecture",
        "Planning",
        "Refinement",
        "Completion",
    ):
        start = header.index(phase.lower())
        cells[phase] = row[start : start + len(phase)].strip().lower()
    assert cells["Refinement"] == "primary"
    for phase in ("Specification", "Pseudocode", "Architecture", "Completion"):
        assert cells[phase] == "support", (phase, row)
    assert cells["Planning"] == ""


def test_run_of_unknown_task_is_exit_2(workspace: Path) -> None:
    code, out, err = invoke("-C", str(workspace), "run", "DB-999")
    assert code == 2
    assert "DB-999" in err


def test_init_refuses_a_bad_project_name(tmp_path: Path) -> None:
    """Nothing is laid down when the project name is not a package name."""
    code, out, err = invoke("init", str(tmp_path / "w"), "--project", "class")
    assert code == 2
    assert "project" in err
    assert not (tmp_path / "w" / ".sparc").exists()


def test_approve_and_reject_of_a_task_that_is_not_waiting_are_exit_2(
    workspace: Path,
) -> None:
    code, _, err = invoke("-C", str(workspace), "approve", "DB-001")
    assert code == 2 and "DB-001 is not waiting for approval" in err
    code, _, err = invoke("-C", str(workspace), "reject", "DB-001", "--reason", "no")
    assert code == 2 and "not waiting for approval" in err
    code, _, err = invoke("-C", str(workspace), "reject", "DB-001")
    assert code == 2 and "--reason" in err


def test_resume_refuses_a_task_that_never_ran(workspace: Path) -> None:
    """Nothing interrupted, nothing to resume: exit 2, and the task is untouched."""
    before = snapshot(workspace, with_state=False)
    code, out, err = invoke("-C", str(workspace), "resume", "DB-001")
    assert code == 2
    assert "DB-001 has no interrupted run to resume" in err
    assert snapshot(workspace, with_state=False) == before


def test_missing_reference_is_exit_2_before_any_work(workspace: Path) -> None:
    """A reference to a missing file names the task file and field."""
    task = workspace / "docs/backlog/DB-001.yaml"
    _write(task, task.read_text().replace("shop-queries.sql", "nope.sql"))
    before = snapshot(workspace, with_state=False)

    code, out, err = invoke("-C", str(workspace), "run", "DB-001")

    assert code == 2
    assert err.strip() == (
        "error: docs/backlog/DB-001.yaml: references[1]: docs/data/nope.sql "
        "does not exist; create it or correct the path"
    )
    assert snapshot(workspace, with_state=False) == before


def test_resume_finishes_a_task_and_waiting_shows_in_backlog(workspace: Path) -> None:
    task = workspace / "docs/backlog/DB-001.yaml"
    _write(task, task.read_text() + "require_approval: [refinement]\n")

    code, out, err = invoke("-C", str(workspace), "run", "DB-001")
    assert code == 0, err
    assert out == "DB-001 waiting for approval at refinement\n"
    code, out, _ = invoke("-C", str(workspace), "backlog")
    assert "DB-001 waiting for approval at refinement" in out

    code, out, err = invoke("-C", str(workspace), "approve", "DB-001")
    assert code == 0, err
    assert out.startswith("DB-001 COMPLETE ")
    code, out, _ = invoke("-C", str(workspace), "backlog")
    assert "waiting" not in out


def test_commands_find_the_workspace_from_a_subfolder(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like git, a command run inside the workspace's folders finds its root."""
    monkeypatch.chdir(workspace / "docs" / "backlog")

    code, out, err = invoke("backlog")

    assert code == 0, err
    assert "DB-001" in out and "DB-003" in out


def test_init_in_a_subfolder_makes_a_new_workspace_there(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = workspace / "services" / "billing"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)

    code, out, err = invoke("init")

    assert code == 0, err
    assert (nested / ".sparc" / "config.yaml").is_file()


@pytest.mark.parametrize("command", [["run", "DB-001"], ["batch"]])
def test_a_folder_that_is_no_repository_is_exit_2(
    shop_workspace: Path, command: list[str]
) -> None:
    before = snapshot(shop_workspace)

    code, out, err = invoke("-C", str(shop_workspace), *command)

    assert code == 2
    assert "is not a git repository; run `sparc init` or `git init` in it" in err
    assert snapshot(shop_workspace) == before


def test_a_phase_the_workflow_lacks_is_exit_2_naming_the_line(
    workspace: Path,
) -> None:
    _write(
        workspace / "docs/backlog/DB-009.yaml",
        "id: DB-009\ntitle: Typo\nspecialist: database-engineer\nstatus: NEW\n"
        "phases: [refinment]\n",
    )
    before = snapshot(workspace, with_state=False)

    code, out, err = invoke("-C", str(workspace), "run", "DB-009")

    assert code == 2
    assert "DB-009.yaml:5: phase 'refinment' is not in workflow 'sparc'" in err
    assert snapshot(workspace, with_state=False) == before


def test_a_specialist_no_card_owns_is_exit_2_naming_the_line(
    workspace: Path,
) -> None:
    _write(
        workspace / "docs/backlog/DB-009.yaml",
        "id: DB-009\ntitle: Unknown\nspecialist: dba\nstatus: NEW\n",
    )
    before = snapshot(workspace, with_state=False)

    for command in (["run", "DB-009"], ["batch"]):
        code, out, err = invoke("-C", str(workspace), *command)

        assert code == 2
        assert "DB-009.yaml:3: no persona primary for refinement has specialist " in err
        assert "Traceback" not in err
        assert snapshot(workspace, with_state=False) == before
