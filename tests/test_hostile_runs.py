"""Hostile input through whole runs: confinement and failures at every effect.

A task whose references lead out of the workspace must change nothing, in the
workspace, outside it or in git. A failure injected after any side-effecting
step (writing deliverables, editing the task file, verifying, committing)
must leave no commit, no half-written file and nothing outside touched; the
stronger promise, that the workspace and the task file are exactly as before,
is checked separately so a flaw in the runtime shows as a named strict xfail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparc import runtime as runtime_module
from sparc.agents.hephaestus import forge as forge_module
from sparc.backlog import load_task
from sparc.cli import main
from sparc.config import SparcConfig
from sparc.engines import WorkContext
from sparc.errors import SparcError
from sparc.init import init_workspace
from sparc.llm import WorkspaceTools
from sparc.persona import PersonaRegistry
from sparc.runner import Runner
from sparc.runtime import Runtime
from sparc.workspace import Workspace

TASK = "docs/backlog/DB-001.yaml"
OUTSIDE_DDL = "CREATE TABLE secret (id int PRIMARY KEY, payload text);\n"

pytestmark = pytest.mark.slow


class NotRestored(AssertionError):
    """The workspace or the task file differs from before the run."""


@pytest.fixture
def workspace(shop_workspace: Path) -> Path:
    init_workspace(shop_workspace)
    return shop_workspace


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "outside.sql").write_text(OUTSIDE_DDL)
    (folder / "versions").mkdir()
    return folder


def _snapshot(root: Path, *, skip: tuple[str, ...] = (".sparc", ".git")) -> dict:
    """Every path under `root` with its bytes (or link target), minus `skip`."""
    shot: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in skip:
            continue
        if path.is_symlink():
            shot[relative.as_posix()] = ("link", str(path.readlink()))
        elif path.is_file():
            shot[relative.as_posix()] = path.read_bytes()
        else:
            shot[relative.as_posix()] = "dir"
    return shot


def _git(workspace: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(workspace), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _history(workspace: Path) -> str:
    return _git(workspace, "log", "--all", "--format=%H %s")


def _set_references(workspace: Path, references: list[str]) -> None:
    path = workspace / TASK
    text = path.read_text()
    start = text.index("references:\n")
    end = text.index("acceptance_criteria:")
    listed = "".join(f"  - {reference}\n" for reference in references)
    path.write_text(text[:start] + "references:\n" + listed + text[end:])


# -- confinement


@pytest.mark.parametrize("reference", ["../outside/outside.sql", "/etc/passwd"])
def test_a_reference_out_of_the_workspace_is_refused_before_any_change(
    workspace: Path, outside: Path, reference: str
) -> None:
    """`..` and absolute references: exit 2, and nothing changes anywhere."""
    _set_references(workspace, [reference, "docs/data/shop-queries.sql"])
    before = (_snapshot(workspace), _snapshot(outside), _history(workspace))

    result = CliRunner().invoke(main, ["-C", str(workspace), "run", "DB-001"])

    assert result.exit_code == 2, result.output
    assert reference in result.output
    assert "leaves the workspace" in result.output
    assert (_snapshot(workspace), _snapshot(outside), _history(workspace)) == before
    assert not (workspace / ".sparc" / "runs" / "DB-001.json").exists()


def test_a_reference_through_a_symlink_out_is_refused_and_nothing_leaks(
    workspace: Path, outside: Path
) -> None:
    """A symlinked reference: the run ends BLOCKED naming it; nothing is read."""
    (workspace / "docs/data/linked.sql").symlink_to(outside / "outside.sql")
    _set_references(workspace, ["docs/data/linked.sql"])
    task_before = (workspace / TASK).read_text()
    before = _snapshot(workspace, skip=(".sparc", ".git", *TASK.split("/")[:1]))
    outside_before, history = _snapshot(outside), _history(workspace)

    with Runner.open(workspace) as runner:
        try:
            outcome = runner.run("DB-001")
        except SparcError as error:
            # refused before the run: the stronger behaviour tested below
            assert error.exit_code == 2
            reason, report = str(error), ""
        else:
            assert outcome.status == "BLOCKED"
            reason, report = outcome.reason, str(outcome.as_dict())

    assert "'docs/data/linked.sql' leads outside the workspace" in reason
    assert "secret" not in report
    assert _snapshot(outside) == outside_before
    assert _history(workspace) == history
    assert _snapshot(workspace, skip=(".sparc", ".git", "docs")) == before
    # the task file changes only in its status and the reason it was blocked
    task_after = (workspace / TASK).read_text()
    changed = set(task_after.splitlines()) ^ set(task_before.splitlines())
    assert {line.split(":")[0] for line in changed} <= {"status", "blocked_reason"}


def test_a_symlinked_reference_changes_nothing_at_all(
    workspace: Path, outside: Path
) -> None:
    """The strict promise: refused before the run, the task file untouched."""
    (workspace / "docs/data/linked.sql").symlink_to(outside / "outside.sql")
    _set_references(workspace, ["docs/data/linked.sql"])
    before = (_snapshot(workspace), _snapshot(outside), _history(workspace))

    result = CliRunner().invoke(main, ["-C", str(workspace), "run", "DB-001"])

    assert (_snapshot(outside), _history(workspace)) == before[1:]
    if _snapshot(workspace) != before[0] or result.exit_code != 2:
        raise NotRestored(result.output)


def test_deliverables_through_a_symlinked_folder_are_not_written_outside(
    workspace: Path, outside: Path
) -> None:
    """alembic/versions linked out of the workspace: the revision is refused."""
    versions = workspace / "alembic" / "versions"
    if versions.exists():
        for child in versions.iterdir():
            child.unlink()
        versions.rmdir()
    versions.symlink_to(outside / "versions", target_is_directory=True)
    outside_before, history = _snapshot(outside), _history(workspace)

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-001")

    assert outcome.status == "BLOCKED"
    assert "leads outside the workspace through a symlink" in outcome.reason
    assert _snapshot(outside) == outside_before
    assert _history(workspace) == history
    assert not list((workspace / "src").rglob("models.py.*.tmp"))


# -- failures injected after each side-effecting step


def _fail_writes_after(count: int) -> Callable[[pytest.MonkeyPatch], None]:
    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        def write_files(self: Runtime, files: dict[str, str], **_: object) -> list:
            for relative in sorted(files)[:count]:
                self.workspace.write_text(relative, files[relative])
            raise OSError(28, "No space left on device (injected)")

        monkeypatch.setattr(Runtime, "write_files", write_files)

    return inject


def _fail_status_update(call: int) -> Callable[[pytest.MonkeyPatch], None]:
    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        original = runtime_module.set_status
        calls = []

        def set_status(*args: object, **kwargs: object) -> None:
            calls.append(args)
            if len(calls) == call:
                raise OSError(5, "Input/output error (injected)")
            original(*args, **kwargs)

        monkeypatch.setattr(runtime_module, "set_status", set_status)

    return inject


def _fail_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    def commit_paths(*args: object, **kwargs: object) -> str:
        raise OSError(5, "Input/output error (injected)")

    monkeypatch.setattr(runtime_module.gitops, "commit_paths", commit_paths)


def _fail_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    def verify_sqlite(*args: object, **kwargs: object) -> object:
        raise OSError(5, "Input/output error (injected)")

    monkeypatch.setattr(forge_module, "verify_sqlite", verify_sqlite)


INJECTIONS = {
    "write-files-0": _fail_writes_after(0),
    "write-files-1": _fail_writes_after(1),
    "write-files-3": _fail_writes_after(3),
    "status-in-progress": _fail_status_update(1),
    "status-complete": _fail_status_update(2),
    "forge-verification": _fail_verification,
    "commit": _fail_commit,
}


def _injections(*, exact: bool) -> list[object]:
    params = []
    for name, inject in INJECTIONS.items():
        params.append(pytest.param(inject, id=name))
    return params


def _run_with_failure(
    workspace: Path,
    outside: Path,
    inject: Callable[[pytest.MonkeyPatch], None],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[dict, dict]:
    """Run DB-001 with the failure injected; check what must always hold."""
    before = _snapshot(workspace)
    outside_before, history = _snapshot(outside), _history(workspace)
    inject(monkeypatch)

    with Runner.open(workspace) as runner:
        try:
            outcome = runner.run("DB-001")
        except OSError as error:
            assert "(injected)" in str(error)
        else:
            assert outcome.status == "BLOCKED", outcome

    # whatever else happened: no commit, nothing outside, no half-written file
    assert _history(workspace) == history
    assert _snapshot(outside) == outside_before
    after = _snapshot(workspace)
    assert not [name for name in after if name.endswith(".tmp")]
    return before, after


@pytest.mark.parametrize("inject", _injections(exact=False))
def test_a_failure_leaves_no_commit_and_no_half_written_file(
    workspace: Path,
    outside: Path,
    inject: Callable[[pytest.MonkeyPatch], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure at any effect: git history, the outside and temp names as before."""
    _run_with_failure(workspace, outside, inject, monkeypatch)


@pytest.mark.parametrize("inject", _injections(exact=True))
def test_a_failure_leaves_the_workspace_exactly_as_before(
    workspace: Path,
    outside: Path,
    inject: Callable[[pytest.MonkeyPatch], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure at any effect: every byte of the workspace and task file as before."""
    before, after = _run_with_failure(workspace, outside, inject, monkeypatch)

    if after != before:
        changed = sorted(
            name
            for name in set(before) | set(after)
            if before.get(name) != after.get(name)
        )
        raise NotRestored(f"changed: {changed}")


def test_init_lays_no_template_through_a_folder_linked_out(
    tmp_path: Path, outside: Path
) -> None:
    """`sparc init` in a folder whose src/ links out: refused, nothing written."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "src").symlink_to(outside, target_is_directory=True)
    outside_before = _snapshot(outside)

    result = CliRunner().invoke(main, ["init", str(folder), "--project", "shop"])

    assert result.exit_code == 2, result.output
    assert "leads outside the workspace through a symlink" in result.output
    assert _snapshot(outside) == outside_before
    assert sorted(p.name for p in folder.iterdir()) == ["src"]


# -- the model's command tool


@pytest.fixture
def tools(tmp_path: Path) -> WorkspaceTools:
    root = tmp_path / "ws"
    (root / "docs" / "backlog").mkdir(parents=True)
    (root / "docs" / "backlog" / "T-1.yaml").write_text("id: T-1\ntitle: tools\n")
    (root / "outside-link").symlink_to(tmp_path, target_is_directory=True)
    context = WorkContext(
        workspace=Workspace.at(root),
        config=SparcConfig(project="shop"),
        task=load_task(root / "docs" / "backlog" / "T-1.yaml"),
        phase="refinement",
        persona=PersonaRegistry.builtin().get("hephaestus"),
    )
    return WorkspaceTools(
        context, allowed_commands=["echo", "sleep"], command_timeout=1
    )


@pytest.mark.parametrize(
    ("name", "arguments", "answer"),
    [
        pytest.param(
            "run_command",
            {"argv": "echo hi; touch pwned"},
            "error: argv must be",
            id="argv-as-string",
        ),
        ("run_command", {"argv": ["sh", "-c", "touch pwned"]}, "refused: command 'sh'"),
        ("run_command", {"argv": ["./echo", "x"]}, "refused: command './echo'"),
        ("run_command", {"argv": ["/bin/echo", "x"]}, "refused: command '/bin/echo'"),
        ("run_command", {"argv": ["echo", "$(touch pwned)"]}, "exit code 0\n$(touch"),
        ("run_command", {"argv": ["sleep", "5"]}, "error: sleep ran longer than 1 s"),
        ("read_file", {"path": "../secret"}, "refused: read ../secret"),
        ("read_file", {"path": "/etc/passwd"}, "refused: read /etc/passwd"),
        ("read_file", {"path": "outside-link/x"}, "refused: read outside-link/x"),
        ("write_file", {"path": ".git/hooks/pre-commit", "content": "x"}, "refused"),
        ("write_file", {"path": "docs/backlog/T-1.yaml", "content": "x"}, "refused"),
        ("list_files", {"path": ".."}, "refused: list .."),
    ],
)
def test_the_model_tools_stay_in_their_lane(
    tools: WorkspaceTools, name: str, arguments: dict[str, object], answer: str
) -> None:
    """Only allow-listed programs, no shell, a timeout, no path out."""
    result = tools.call(name, arguments)

    assert result.startswith(answer), result
    root = tools.context.workspace.root
    assert not (root / "pwned").exists()
    assert tools.files == {}
