"""Tests for sparc.gitops: repository checks, identity, path-scoped commits, locks."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from sparc.errors import ConfigError, GitError, WorkspaceError
from sparc.gitops import (
    Identity,
    _IndexLock,
    check_clean,
    commit_paths,
    conventional_message,
    find_task_commit,
    init_repository,
    open_repository,
    resolve_identity,
)

BOT = Identity(name="Schema Bot", email="schema-bot@example.invalid")
TRAILERS = {"Task": "DB-001", "Phase": "refinement", "Agent": "hephaestus"}

# The test's own setup commits use this identity, given only to that git call.
_SETUP_IDENTITY = {
    "GIT_AUTHOR_NAME": "Setup",
    "GIT_AUTHOR_EMAIL": "setup@example.invalid",
    "GIT_COMMITTER_NAME": "Setup",
    "GIT_COMMITTER_EMAIL": "setup@example.invalid",
}

_LIVE_HOLDER = """
import os, sys, time
lock = sys.argv[1]
fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
inode = os.fstat(fd).st_ino
print("held", flush=True)
time.sleep(float(sys.argv[2]))
try:
    still = os.stat(lock).st_ino
except FileNotFoundError:
    sys.exit(3)
if still != inode:
    sys.exit(4)
os.close(fd)
os.unlink(lock)
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment with no global or system git configuration and no identity."""
    home = tmp_path / "home"
    home.mkdir()
    empty_config = tmp_path / "empty-gitconfig"
    empty_config.write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty_config))
    for name in (*_SETUP_IDENTITY, "EMAIL", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def workspace(tmp_path: Path, home: Path) -> Path:
    root = tmp_path / "ws"
    init_repository(root)
    return root


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **_SETUP_IDENTITY},
    )
    return result.stdout


def _write(root: Path, relative: str, text: str = "content\n") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _files_in(root: Path, sha: str) -> list[str]:
    return sorted(_git(root, "show", "--name-only", "--format=", sha).split())


def _staged(root: Path) -> list[str]:
    return sorted(_git(root, "diff", "--cached", "--name-only").split())


def _commit_in_thread(
    workspace: Path,
    start: threading.Barrier,
    task_id: str,
    path: str,
    shas: dict[str, str | None],
    errors: list[BaseException],
) -> None:
    try:
        repo = open_repository(workspace)
        start.wait()
        shas[task_id] = commit_paths(
            repo,
            [path],
            message=f"feat(db): {task_id}",
            identity=BOT,
            trailers={"Task": task_id},
        )
    except BaseException as error:
        errors.append(error)


def _first_commit(root: Path) -> None:
    _write(root, "README.md", "readme\n")
    _git(root, "add", "README.md")
    _git(root, "commit", "-q", "-m", "initial")


# case 26: no git identity in the environment


def test_commit_with_configured_identity_and_no_git_config(
    workspace: Path, home: Path
) -> None:
    """Case 26 E1, E2, E3, E5: the configured identity, exactly the 4 files."""
    files = [
        "models.py",
        "migrations/versions/0001_init.py",
        "seed_data.sql",
        "performance_queries.sql",
    ]
    for name in files:
        _write(workspace, name)
    _write(workspace, "not_for_this_task.txt")
    repo = open_repository(workspace)

    sha = commit_paths(
        repo, files, message="feat(db): initial schema", identity=BOT, trailers={}
    )

    assert sha is not None
    printed = _git(workspace, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip()
    assert printed == (
        "Schema Bot <schema-bot@example.invalid>|"
        "Schema Bot <schema-bot@example.invalid>"
    )
    assert _files_in(workspace, sha) == sorted(files)
    assert not (home / ".gitconfig").exists()
    assert (home.parent / "empty-gitconfig").read_text() == ""


def test_resolve_identity_without_any_configuration(workspace: Path) -> None:
    """Case 26 E4: no invented identity; the error names both settings."""
    repo = open_repository(workspace)

    with pytest.raises(ConfigError) as caught:
        resolve_identity(repo, None)

    assert str(caught.value) == (
        "no git identity for sparc's commits (missing name and email): set "
        "git.identity (name and email) in .sparc/config.yaml, or run "
        '`git config user.name "Your Name"` and '
        "`git config user.email you@example.com` in the workspace"
    )
    assert caught.value.field == "git.identity"
    assert caught.value.exit_code == 2


def test_resolve_identity_names_the_missing_half(workspace: Path) -> None:
    _git(workspace, "config", "user.name", "Only Name")
    repo = open_repository(workspace)

    with pytest.raises(ConfigError, match=r"\(missing email\)"):
        resolve_identity(repo, None)


def test_resolve_identity_prefers_the_workspace_setting(workspace: Path) -> None:
    _git(workspace, "config", "user.name", "Local User")
    _git(workspace, "config", "user.email", "local@example.invalid")
    repo = open_repository(workspace)

    assert resolve_identity(repo, BOT) == BOT


def test_resolve_identity_uses_git_config_and_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git(workspace, "config", "user.name", "Local User")
    _git(workspace, "config", "user.email", "local@example.invalid")
    repo = open_repository(workspace)

    assert resolve_identity(repo, None) == Identity(
        "Local User", "local@example.invalid"
    )

    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env Author")
    assert resolve_identity(repo, None) == Identity(
        "Env Author", "local@example.invalid"
    )


def test_resolve_identity_reads_the_global_file_git_is_pointed_at(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    global_config = tmp_path / "global-gitconfig"
    global_config.write_text(
        "[user]\n\tname = Global User\n\temail = g@example.invalid\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    repo = open_repository(workspace)

    assert resolve_identity(repo, None) == Identity("Global User", "g@example.invalid")


@pytest.mark.parametrize(
    ("name", "email", "expected"),
    [
        ("", "a@example.invalid", "git.identity.name is empty"),
        ("Bot", "bot<x>@example.invalid", "git.identity.email holds '<' or '>'"),
        ("Bot\nEvil", "a@example.invalid", "git.identity.name holds a newline"),
        (" Bot", "a@example.invalid", "git.identity.name has leading or trailing"),
    ],
)
def test_identity_rejects_values_git_cannot_store(
    name: str, email: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Identity(name, email)

    assert str(caught.value).startswith(expected)
    assert caught.value.field == "git.identity"


# case 28: concurrency and index.lock


def test_concurrent_commits_each_hold_only_their_own_file(workspace: Path) -> None:
    """Case 28 E1, E2: two threads, one repository, 20 rounds, no cross-staging."""
    _first_commit(workspace)

    for round_number in range(20):
        files = {
            "DB-128a": f"migrations/versions/0003_label_{round_number}.py",
            "DB-128b": f"migrations/versions/0003_badge_{round_number}.py",
        }
        for name in files.values():
            _write(workspace, name)
        start = threading.Barrier(len(files))
        shas: dict[str, str | None] = {}
        errors: list[BaseException] = []

        threads = [
            threading.Thread(
                target=_commit_in_thread,
                args=(workspace, start, task_id, path, shas, errors),
            )
            for task_id, path in files.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        for task_id, path in files.items():
            sha = shas[task_id]
            assert sha is not None
            assert _files_in(workspace, sha) == [path]
        assert _staged(workspace) == []

    assert len(_git(workspace, "log", "--format=%H").split()) == 1 + 2 * 20


_COMMITTING_PROCESS = """
import sys
from pathlib import Path
from sparc.gitops import Identity, commit_paths, open_repository
repo = open_repository(Path(sys.argv[1]))
# structlog prints to stdout when unconfigured, so the sha is the last line
print(commit_paths(
    repo,
    [sys.argv[2]],
    message="feat(db): " + sys.argv[3],
    identity=Identity("Schema Bot", "schema-bot@example.invalid"),
    trailers={"Task": sys.argv[3]},
))
"""


def test_concurrent_commits_from_two_processes(workspace: Path) -> None:
    """Case 28 E2 across processes: every commit succeeds with its own file."""
    _first_commit(workspace)

    for round_number in range(5):
        files = {
            "DB-128a": f"migrations/versions/0003_label_{round_number}.py",
            "DB-128b": f"migrations/versions/0003_badge_{round_number}.py",
        }
        for name in files.values():
            _write(workspace, name)
        processes = {
            task_id: subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _COMMITTING_PROCESS,
                    str(workspace),
                    path,
                    task_id,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for task_id, path in files.items()
        }

        for task_id, process in processes.items():
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            sha = out.strip().splitlines()[-1]
            assert _files_in(workspace, sha) == [files[task_id]]
        assert _staged(workspace) == []


def test_commit_waits_for_a_live_index_lock_and_leaves_it_alone(
    workspace: Path,
) -> None:
    """Case 28 E3: wait for the live holder; its lock file is never removed."""
    _first_commit(workspace)
    _write(workspace, "migrations/versions/0003_label.py")
    repo = open_repository(workspace)
    lock = workspace / ".git" / "index.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _LIVE_HOLDER, str(lock), "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()

        sha = commit_paths(
            repo,
            ["migrations/versions/0003_label.py"],
            message="feat(db): add label table",
            identity=BOT,
            trailers={"Task": "DB-128a"},
            lock_timeout=15,
        )

        waited = time.monotonic() - started
    finally:
        holder_status = holder.wait(timeout=30)

    # 3 or 4 would mean the holder found its lock removed or replaced
    assert holder_status == 0
    assert waited > 1.0
    assert sha is not None
    assert _files_in(workspace, sha) == ["migrations/versions/0003_label.py"]


def test_stale_index_lock_is_reclaimed_once_and_logged(workspace: Path) -> None:
    """Case 28 E4: a lock an hour old with no holder is removed, with a warning."""
    _write(workspace, "migrations/versions/0003_badge.py")
    repo = open_repository(workspace)
    lock = workspace / ".git" / "index.lock"
    lock.write_text("")
    an_hour_ago = time.time() - 3600
    os.utime(lock, (an_hour_ago, an_hour_ago))

    with capture_logs() as logs:
        sha = commit_paths(
            repo,
            ["migrations/versions/0003_badge.py"],
            message="feat(db): add badge table",
            identity=BOT,
            trailers={"Task": "DB-128b"},
            lock_timeout=2,
        )

    assert sha is not None
    reclaimed = [e for e in logs if e["event"] == "git_stale_lock_reclaimed"]
    assert len(reclaimed) == 1
    assert reclaimed[0]["log_level"] == "warning"
    assert reclaimed[0]["path"] == str(repo.git_dir) + "/index.lock"
    assert reclaimed[0]["age_seconds"] >= 3600


def test_a_stale_lock_is_reclaimed_only_once(tmp_path: Path) -> None:
    lock_path = tmp_path / "index.lock"
    waiter = _IndexLock(
        lock_path, deadline=time.monotonic() + 0.3, timeout=0.3, stale_after=60
    )
    for _ in range(2):
        lock_path.write_text("")
        old = time.time() - 3600
        os.utime(lock_path, (old, old))
        if not waiter.reclaimed:
            waiter.wait_until_free()
            assert not lock_path.exists()

    with pytest.raises(GitError, match="held by another git process"):
        waiter.wait_until_free()
    assert lock_path.exists()


def test_a_lock_held_past_the_timeout_is_an_error(workspace: Path) -> None:
    """Case 28: a fresh lock is never removed; the error names it; nothing staged."""
    _first_commit(workspace)
    _write(workspace, "models.py")
    repo = open_repository(workspace)
    lock = workspace / ".git" / "index.lock"
    lock.write_text("")
    inode = lock.stat().st_ino

    with pytest.raises(GitError) as caught:
        commit_paths(
            repo,
            ["models.py"],
            message="feat(db): models",
            identity=BOT,
            trailers={},
            lock_timeout=0.3,
        )

    assert str(caught.value) == (
        f"{repo.git_dir}/index.lock is held by another git process (waited 0.3 s); "
        "wait for it to finish and run sparc again. If no git program is running, "
        "the file was left behind by a crash: remove it yourself"
    )
    assert lock.stat().st_ino == inode
    lock.unlink()
    assert _staged(workspace) == []
    assert _git(workspace, "status", "--porcelain").strip() == "?? models.py"


def test_another_sparc_commit_holding_the_commit_lock_is_waited_for(
    workspace: Path,
) -> None:
    """The per-repository file lock also serialises other processes."""
    _write(workspace, "models.py")
    repo = open_repository(workspace)
    lock_path = workspace / ".git" / "sparc-commit.lock"

    with open(lock_path, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(GitError, match="held by another sparc commit"):
            commit_paths(
                repo,
                ["models.py"],
                message="feat(db): models",
                identity=BOT,
                trailers={},
                lock_timeout=0.3,
            )
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)

    assert commit_paths(
        repo, ["models.py"], message="feat(db): models", identity=BOT, trailers={}
    )


# the state of the repository


def test_not_a_repository(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()

    with pytest.raises(GitError) as caught:
        open_repository(folder)

    assert str(caught.value) == (
        f"{folder} is not a git repository; run `sparc init` or `git init` in it"
    )


def test_bare_repository(tmp_path: Path, home: Path) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)

    with pytest.raises(GitError, match="is a bare repository; sparc needs a work tree"):
        open_repository(bare)


def test_detached_head(workspace: Path) -> None:
    _first_commit(workspace)
    sha = _git(workspace, "rev-parse", "HEAD").strip()
    _git(workspace, "switch", "-q", "--detach", "HEAD")

    with pytest.raises(GitError) as caught:
        open_repository(workspace)

    assert str(caught.value) == (
        f"{workspace}: HEAD is detached at {sha[:12]}; check out a branch "
        "(`git switch <branch>`, or `git switch -c <new-branch>` to keep this "
        "commit) so sparc's commits are not lost"
    )


def test_merge_in_progress(workspace: Path) -> None:
    _first_commit(workspace)
    _git(workspace, "switch", "-q", "-c", "other")
    _write(workspace, "README.md", "theirs\n")
    _git(workspace, "commit", "-q", "-am", "theirs")
    _git(workspace, "switch", "-q", "main")
    _write(workspace, "README.md", "ours\n")
    _git(workspace, "commit", "-q", "-am", "ours")
    with pytest.raises(subprocess.CalledProcessError):
        _git(workspace, "merge", "-q", "other")

    with pytest.raises(GitError) as caught:
        open_repository(workspace)

    assert str(caught.value) == (
        f"{workspace}: a merge is in progress; finish it with "
        "`git merge --continue` or `git merge --abort`, then run sparc again"
    )


def test_init_repository_creates_main_and_is_idempotent(
    tmp_path: Path, home: Path
) -> None:
    root = tmp_path / "new"

    repo = init_repository(root)
    again = init_repository(root)

    assert _git(root, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert again.git_dir == repo.git_dir
    assert open_repository(root).working_dir == str(root)


def test_workspace_inside_a_larger_repository(tmp_path: Path, home: Path) -> None:
    """Paths stay workspace-relative; the commit lands under the subfolder."""
    top = tmp_path / "mono"
    init_repository(top)
    workspace = top / "services" / "db"
    workspace.mkdir(parents=True)
    _write(workspace, "models.py")

    with capture_logs() as logs:
        repo = open_repository(workspace)
    with pytest.raises(
        GitError, match=r"sparc would overwrite: models.py \(untracked\)"
    ):
        check_clean(repo, ["models.py"])
    sha = commit_paths(
        repo, ["models.py"], message="feat(db): models", identity=BOT, trailers={}
    )

    assert sha is not None
    assert _files_in(top, sha) == ["services/db/models.py"]
    assert logs[0]["event"] == "git_workspace_inside_repository"
    assert logs[0]["workspace"] == "services/db"


def test_check_clean_lists_each_uncommitted_file(workspace: Path) -> None:
    for name in ("a.py", "c.py", "clean.py"):
        _write(workspace, name)
    _git(workspace, "add", ".")
    _git(workspace, "commit", "-q", "-m", "files")
    _write(workspace, "a.py", "edited\n")
    _write(workspace, "b.py", "new\n")
    _write(workspace, "c.py", "staged\n")
    _git(workspace, "add", "c.py")
    repo = open_repository(workspace)

    check_clean(repo, ["clean.py", "missing.py"])
    with pytest.raises(GitError) as caught:
        check_clean(repo, ["a.py", "b.py", "c.py", "clean.py", "missing.py"])

    assert str(caught.value) == (
        "uncommitted changes in 3 file(s) sparc would overwrite: a.py (modified), "
        "b.py (untracked), c.py (staged); commit, stash or discard them, "
        "then run sparc again"
    )


def test_paths_must_stay_in_the_workspace(workspace: Path) -> None:
    repo = open_repository(workspace)

    with pytest.raises(WorkspaceError, match="not a path inside the workspace"):
        commit_paths(repo, ["../x.py"], message="x", identity=BOT, trailers={})


# what a commit holds


def test_trailers_are_written_and_find_task_commit_finds_the_newest(
    workspace: Path,
) -> None:
    _write(workspace, "models.py", "v1\n")
    repo = open_repository(workspace)
    first = commit_paths(
        repo,
        ["models.py"],
        message="feat(db): create users\n\nThe users table.",
        identity=BOT,
        trailers={**TRAILERS, "Run": "run-1"},
    )
    _write(workspace, "models.py", "v2\n")
    second = commit_paths(
        repo,
        ["models.py"],
        message="fix(db): users email is unique",
        identity=BOT,
        trailers={**TRAILERS, "Run": "run-2"},
    )

    assert _git(workspace, "log", "-1", "--format=%B", str(first)) == (
        "feat(db): create users\n\nThe users table.\n\n"
        "Task: DB-001\nPhase: refinement\nAgent: hephaestus\nRun: run-1\n\n"
    )
    parsed = _git(workspace, "log", "-1", "--format=%(trailers:only)", str(first))
    assert parsed.split("\n")[:4] == [
        "Task: DB-001",
        "Phase: refinement",
        "Agent: hephaestus",
        "Run: run-1",
    ]
    assert find_task_commit(repo, "DB-001") == second
    assert find_task_commit(repo, "DB-001", run_id="run-1") == first
    assert find_task_commit(repo, "DB-001", run_id="run-3") is None
    assert find_task_commit(repo, "DB-00") is None
    assert find_task_commit(repo, "DB-002") is None


def test_find_task_commit_on_a_repository_without_commits(workspace: Path) -> None:
    assert find_task_commit(open_repository(workspace), "DB-001") is None


def test_unchanged_paths_make_no_commit(workspace: Path) -> None:
    _write(workspace, "models.py")
    repo = open_repository(workspace)
    sha = commit_paths(
        repo, ["models.py"], message="feat(db): models", identity=BOT, trailers={}
    )

    with capture_logs() as logs:
        again = commit_paths(
            repo,
            ["models.py", "never_written.py"],
            message="feat(db): models",
            identity=BOT,
            trailers={},
        )

    assert again is None
    assert _git(workspace, "rev-parse", "HEAD").strip() == sha
    assert [e["event"] for e in logs] == ["git_nothing_to_commit"]


def test_a_pre_staged_unrelated_file_stays_staged_and_out(workspace: Path) -> None:
    _first_commit(workspace)
    _write(workspace, "user_notes.txt", "mine\n")
    _git(workspace, "add", "user_notes.txt")
    _write(workspace, "models.py")
    repo = open_repository(workspace)

    sha = commit_paths(
        repo, ["models.py"], message="feat(db): models", identity=BOT, trailers={}
    )

    assert sha is not None
    assert _files_in(workspace, sha) == ["models.py"]
    assert _staged(workspace) == ["user_notes.txt"]


def test_deleted_and_modified_paths_are_committed(workspace: Path) -> None:
    _write(workspace, "old.py")
    _write(workspace, "models.py", "v1\n")
    _git(workspace, "add", ".")
    _git(workspace, "commit", "-q", "-m", "files")
    (workspace / "old.py").unlink()
    _write(workspace, "models.py", "v2\n")
    repo = open_repository(workspace)

    sha = commit_paths(
        repo,
        ["old.py", "models.py"],
        message="refactor(db): drop old",
        identity=BOT,
        trailers={},
    )

    assert sha is not None
    status = _git(workspace, "show", "--name-status", "--format=", sha).split("\n")
    assert sorted(filter(None, status)) == ["D\told.py", "M\tmodels.py"]
    assert _git(workspace, "status", "--porcelain") == ""


def test_a_refused_commit_leaves_the_index_as_it_was(workspace: Path) -> None:
    """A failing pre-commit hook: sparc's staging is undone, the user's kept."""
    _write(workspace, "tracked.py", "v1\n")
    _git(workspace, "add", "tracked.py")
    _git(workspace, "commit", "-q", "-m", "tracked")
    _write(workspace, "tracked.py", "user staged\n")
    _git(workspace, "add", "tracked.py")
    _write(workspace, "tracked.py", "sparc wrote\n")
    _write(workspace, "models.py")
    hook = workspace / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'refused by hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = _git(workspace, "ls-files", "--stage")
    repo = open_repository(workspace)

    with pytest.raises(GitError, match="refused by hook"):
        commit_paths(
            repo,
            ["models.py", "tracked.py"],
            message="feat(db): models",
            identity=BOT,
            trailers={},
        )

    assert _git(workspace, "ls-files", "--stage") == before
    assert _git(workspace, "rev-list", "--count", "HEAD").strip() == "1"


def test_conventional_message() -> None:
    assert (
        conventional_message(
            "feat", "db", "create users, products, orders, order_items"
        )
        == "feat(db): create users, products, orders, order_items"
    )
    assert conventional_message("docs", "", " spec ") == "docs: spec"
    with pytest.raises(GitError, match="commit type 'feature' is not one of"):
        conventional_message("feature", "db", "x")
    with pytest.raises(GitError, match="must be one non-empty line"):
        conventional_message("fix", "db", "two\nlines")


def _git_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the git subcommands sparc runs."""
    from git.cmd import Git

    commands: list[str] = []
    execute = Git.execute

    def recording(self: Git, command: list[str], **kwargs: object) -> object:
        commands.append(command[1])
        return execute(self, command, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Git, "execute", recording)
    return commands


def test_paths_known_to_be_tracked_are_committed_without_staging(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One git process for tracked paths; new paths alone are staged first."""
    _write(workspace, "task.yaml", "status: NEW\n")
    _git(workspace, "add", "task.yaml")
    _git(workspace, "commit", "-q", "-m", "task")
    _write(workspace, "user_notes.txt", "mine\n")
    _git(workspace, "add", "user_notes.txt")
    repo = open_repository(workspace)
    commands = _git_commands(monkeypatch)

    _write(workspace, "task.yaml", "status: IN_PROGRESS\n")
    alone = commit_paths(
        repo,
        ["task.yaml"],
        message="feat(db): start",
        identity=BOT,
        trailers={},
        tracked=["task.yaml"],
    )
    assert commands == ["commit"]

    commands.clear()
    _write(workspace, "task.yaml", "status: COMPLETE\n")
    _write(workspace, "models.py")
    both = commit_paths(
        repo,
        ["models.py", "task.yaml"],
        message="feat(db): models",
        identity=BOT,
        trailers={},
        tracked=["task.yaml"],
    )

    assert commands == ["add", "commit"]
    assert alone is not None and both is not None
    assert _files_in(workspace, alone) == ["task.yaml"]
    assert _files_in(workspace, both) == ["models.py", "task.yaml"]
    assert _git(workspace, "show", "HEAD:task.yaml") == "status: COMPLETE\n"
    assert _staged(workspace) == ["user_notes.txt"]


def test_a_path_wrongly_taken_for_tracked_is_staged_after_all(
    workspace: Path,
) -> None:
    _first_commit(workspace)
    _write(workspace, "task.yaml", "status: COMPLETE\n")
    _write(workspace, "models.py")
    repo = open_repository(workspace)

    sha = commit_paths(
        repo,
        ["models.py", "task.yaml"],
        message="feat(db): models",
        identity=BOT,
        trailers={},
        tracked=["task.yaml"],
    )

    assert sha is not None
    assert _files_in(workspace, sha) == ["models.py", "task.yaml"]
    assert _git(workspace, "status", "--porcelain") == ""
