"""Git operations: open the workspace repository and commit what a run wrote.

A commit takes exactly the paths a task wrote (path-scoped, like
`git commit --only -- paths`), under an identity that the workspace or git
itself configures, never one git would invent from the OS user and host name.
Commits are serialised per repository across threads and processes, and a
`.git/index.lock` held by another program is waited for, never deleted while it
may be live.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import structlog
from git import Repo
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from sparc.errors import ConfigError, GitError, RepositoryStateError, WorkspaceError

log = structlog.get_logger(__name__)

COMMIT_LOCK_NAME = "sparc-commit.lock"
INDEX_LOCK_NAME = "index.lock"
CONFIG_FILE = ".sparc/config.yaml"
IDENTITY_SETTING = "git.identity"

CONVENTIONAL_KINDS = frozenset(
    {
        "build",
        "chore",
        "ci",
        "docs",
        "feat",
        "fix",
        "perf",
        "refactor",
        "revert",
        "style",
        "test",
    }
)

# Files git leaves in its directory while an operation waits for the user.
_OPERATIONS_IN_PROGRESS = {
    "MERGE_HEAD": ("a merge", "git merge --continue` or `git merge --abort"),
    "rebase-merge": ("a rebase", "git rebase --continue` or `git rebase --abort"),
    "rebase-apply": ("a rebase or `git am`", "git rebase --abort` or `git am --abort"),
    "CHERRY_PICK_HEAD": (
        "a cherry-pick",
        "git cherry-pick --continue` or `git cherry-pick --abort",
    ),
    "REVERT_HEAD": ("a revert", "git revert --continue` or `git revert --abort"),
}

_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_OBJECT_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# git prints these (with LC_ALL=C, which GitPython sets) when `commit --only`
# finds its paths unchanged
_NOTHING_TO_COMMIT = re.compile(r"nothing (?:added )?to commit|no changes added")
# and this when a path given to `commit --only` is not in the index
_UNKNOWN_PATH = "did not match any file(s) known to git"

_FIRST_WAIT = 0.05
_LONGEST_WAIT = 1.0

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Identity:
    """The author and committer of sparc's commits.

    Raises:
        ConfigError: the name or email is empty, has surrounding spaces, or
            holds a newline, a control character, `<` or `>`.
    """

    name: str
    email: str

    def __post_init__(self) -> None:
        for part, value in (("name", self.name), ("email", self.email)):
            problem = _identity_problem(value)
            if problem is not None:
                raise ConfigError(
                    f"{IDENTITY_SETTING}.{part} {problem}: {value!r}",
                    field=IDENTITY_SETTING,
                )

    def environment(self) -> dict[str, str]:
        """Return the variables that make git use this identity for both roles."""
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


class _NothingToCommit(Exception):
    """`git commit` found none of the given paths changed since HEAD."""


class _UnknownPath(Exception):
    """`git commit` was given a path that git does not track."""


class WorkspaceRepo(Repo):
    """A repository opened for a workspace, which may be a folder inside its tree.

    `workspace_prefix` is the workspace's path relative to the top of the work
    tree, as a POSIX string ending in `/`, or empty when they are the same.
    """

    workspace_prefix: str = ""


def open_repository(root: Path) -> Repo:
    """Open the git repository holding the workspace at `root`.

    A workspace inside a larger work tree is accepted; the paths given to the
    other functions stay relative to the workspace.

    Args:
        root: The workspace folder.

    Returns:
        The repository, ready for `check_clean` and `commit_paths`.

    Raises:
        GitError: `root` is not in a git work tree, the repository is bare,
            HEAD is detached, or a merge, rebase, cherry-pick or revert waits
            to be finished.
    """
    root = Path(root)
    repo = _find_repository(root)
    if repo is None:
        raise RepositoryStateError(
            f"{root} is not a git repository; run `sparc init` or `git init` in it"
        )

    if repo.bare:
        raise RepositoryStateError(
            f"{repo.git_dir} is a bare repository; sparc needs a work tree, "
            "so clone it and run sparc in the clone"
        )

    git_dir = Path(repo.git_dir)
    for marker, (operation, finish) in _OPERATIONS_IN_PROGRESS.items():
        if (git_dir / marker).exists():
            raise RepositoryStateError(
                f"{repo.working_dir}: {operation} is in progress; "
                f"finish it with `{finish}`, then run sparc again"
            )

    if repo.head.is_detached:
        sha = repo.head.commit.hexsha
        raise RepositoryStateError(
            f"{repo.working_dir}: HEAD is detached at {sha[:12]}; check out a "
            "branch (`git switch <branch>`, or `git switch -c <new-branch>` to "
            "keep this commit) so sparc's commits are not lost"
        )

    if repo.workspace_prefix:
        log.warning(
            "git_workspace_inside_repository",
            repository=repo.working_dir,
            workspace=repo.workspace_prefix.rstrip("/"),
        )
    return repo


def init_repository(root: Path, *, branch: str = "main") -> Repo:
    """Make `root` a git repository on `branch` unless it is in one already.

    Args:
        root: The workspace folder; created when missing.
        branch: The name of the first branch of a new repository.

    Returns:
        The new repository, or the one that already holds `root`.

    Raises:
        GitError: git refused to create the repository (for example an invalid
            branch name).
    """
    root = Path(root)
    existing = _find_repository(root)
    if existing is not None and not _ignores(existing, root):
        return existing

    try:
        repo = WorkspaceRepo.init(root, initial_branch=branch)
    except GitCommandError as error:
        raise GitError(f"{root}: git init failed: {_stderr(error)}") from error

    log.info("git_repository_initialised", path=str(root), branch=branch)
    return repo


def _ignores(repo: Repo, folder: Path) -> bool:
    """Whether an enclosing repository ignores `folder` (it then gets its own)."""
    top = Path(repo.working_tree_dir or ".").resolve()
    target = folder.resolve()
    if target == top:
        return False
    try:
        repo.git.check_ignore("-q", "--", target.relative_to(top).as_posix() + "/")
    except GitCommandError:
        return False
    return True


def resolve_identity(repo: Repo, configured: Identity | None) -> Identity:
    """Choose who authors and commits sparc's commits.

    The workspace's `git.identity` wins. Otherwise the identity git has been
    told about is used: `GIT_AUTHOR_*`/`GIT_COMMITTER_*` variables, then
    `author.*`, `user.*` and `committer.*` settings as git reads them
    (repository, global and system files). git's guess from the OS user and
    host name is never used.

    Args:
        repo: The workspace repository.
        configured: The identity from `.sparc/config.yaml`, if any.

    Returns:
        The identity to pass to `commit_paths`.

    Raises:
        ConfigError: no identity is configured anywhere, only half of one is,
            or git's configured value is not usable.
    """
    if configured is not None:
        return configured

    settings = _git_identity_settings(repo)
    name = _first_set(
        os.environ.get("GIT_AUTHOR_NAME"),
        settings.get("author.name"),
        settings.get("user.name"),
        os.environ.get("GIT_COMMITTER_NAME"),
        settings.get("committer.name"),
    )
    email = _first_set(
        os.environ.get("GIT_AUTHOR_EMAIL"),
        settings.get("author.email"),
        settings.get("user.email"),
        os.environ.get("GIT_COMMITTER_EMAIL"),
        settings.get("committer.email"),
    )

    if name is None or email is None:
        missing = [
            key for key, value in (("name", name), ("email", email)) if not value
        ]
        raise ConfigError(
            f"no git identity for sparc's commits (missing {' and '.join(missing)}): "
            f"set {IDENTITY_SETTING} (name and email) in {CONFIG_FILE}, or run "
            '`git config user.name "Your Name"` and '
            "`git config user.email you@example.com` in the workspace",
            field=IDENTITY_SETTING,
        )

    for key, value in (("user.name", name), ("user.email", email)):
        problem = _identity_problem(value)
        if problem is not None:
            raise ConfigError(
                f"git's {key} {problem}: {value!r}; fix it with `git config {key}` "
                f"or set {IDENTITY_SETTING} in {CONFIG_FILE}",
                field=IDENTITY_SETTING,
            )
    return Identity(name=name, email=email)


def check_clean(repo: Repo, paths: Sequence[str]) -> None:
    """Refuse to go on when any of `paths` holds an edit git has not committed.

    Args:
        repo: The workspace repository.
        paths: Workspace-relative POSIX paths sparc is about to write.

    Raises:
        GitError: Lists each file with uncommitted changes (staged, modified,
            deleted, unmerged, or untracked and about to be overwritten).
        WorkspaceError: A path is empty, absolute or climbs out with `..`.
    """
    if not paths:
        return
    prefix = _prefix(repo)
    pathspecs = _pathspecs(repo, paths)

    output = _git(
        repo,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignored=no",
        "--no-renames",
        "--",
        *pathspecs,
        # status would otherwise refresh the index under index.lock and make
        # a parallel task's commit wait
        env={"GIT_OPTIONAL_LOCKS": "0"},
    )

    dirty: list[str] = []
    for entry in output.split("\0"):
        if not entry:
            continue
        state, path = entry[:2], entry[3:]
        shown = path[len(prefix) :] if path.startswith(prefix) else f"/{path}"
        dirty.append(f"{shown} ({_describe_status(state)})")
    if dirty:
        raise GitError(
            f"uncommitted changes in {len(dirty)} file(s) sparc would overwrite: "
            f"{', '.join(sorted(dirty))}; commit, stash or discard them, "
            "then run sparc again"
        )


def commit_paths(
    repo: Repo,
    paths: Sequence[str],
    *,
    message: str,
    identity: Identity,
    trailers: Mapping[str, str],
    lock_timeout: float = 30.0,
    stale_after: float = 600.0,
    tracked: Collection[str] = (),
) -> str | None:
    """Commit exactly `paths` as they are in the working tree, and nothing else.

    Other changes the user staged stay staged and out of the commit. The
    commit runs git's hooks. When it fails, the index entries of `paths` are
    put back as they were.

    Args:
        repo: The workspace repository.
        paths: Workspace-relative POSIX paths (files added, modified or deleted).
        message: The subject line, optionally followed by a blank line and a body.
        identity: Author and committer.
        trailers: Lines such as `Task: DB-001` appended in git's trailer format.
        lock_timeout: Seconds to wait for another sparc commit, and then for a
            `.git/index.lock` another program holds.
        stale_after: Age in seconds after which an `index.lock` is taken as
            left behind by a crashed program and removed (once per call).
        tracked: Those of `paths` the caller knows git tracks: they are
            committed without staging them first, which spares a git process
            when no other path is given. Should git not know one of them,
            every path is staged after all.

    Returns:
        The new commit's sha, or None when none of `paths` changed.

    Raises:
        GitError: a lock stayed held past `lock_timeout`, or git refused the
            commit (a hook, an ignored path, ...).
        WorkspaceError: A path is empty, absolute or climbs out with `..`.
    """
    full_message = _message_with_trailers(message, trailers)
    pathspecs = _pathspecs(repo, paths)
    if not pathspecs:
        return None
    known = set(_pathspecs(repo, [path for path in tracked if path in paths]))
    git_dir = Path(repo.git_dir)

    with _commit_lock(git_dir, lock_timeout):
        index_lock = _IndexLock(
            git_dir / INDEX_LOCK_NAME,
            deadline=time.monotonic() + lock_timeout,
            timeout=lock_timeout,
            stale_after=stale_after,
        )
        # a copy of the index is the cheapest record of how it was: git
        # replaces the index by renaming, so the copy is always one whole file
        with tempfile.TemporaryDirectory(prefix="sparc-index-") as scratch:
            backup = _backup_index(git_dir, Path(scratch))
            try:
                return _stage_and_commit(
                    repo, index_lock, pathspecs, known, full_message, identity
                )
            except BaseException:
                _restore_index(repo, index_lock, pathspecs, backup)
                raise


def find_task_commit(
    repo: Repo, task_id: str, *, run_id: str | None = None, since: str | None = None
) -> str | None:
    """Find the newest commit on HEAD made for `task_id` (and `run_id`).

    Args:
        repo: The workspace repository.
        task_id: The value of the commit's `Task:` trailer.
        run_id: When given, the value its `Run:` trailer must have too.
        since: When given, only commits made after this one are searched
            (the whole history when git no longer knows it).

    Returns:
        The commit's sha, or None when HEAD has no such commit (or no commits).
    """
    # not `repo.head.is_valid()`: GitPython's object lookups share one
    # `git cat-file` process per Repo, which parallel tasks would interleave on
    if _current_commit(repo) is None:
        return None

    log_args = [
        "log",
        "--fixed-strings",
        f"--grep={task_id}",
        "--format=%H%x1f%(trailers:key=Task,valueonly,unfold,separator=%x1e)"
        "%x1f%(trailers:key=Run,valueonly,unfold,separator=%x1e)%x00",
    ]
    try:
        output = _git(repo, *log_args, f"{since}..HEAD" if since else "HEAD", "--")
    except GitError:
        if not since:
            raise
        output = _git(repo, *log_args, "HEAD", "--")

    for record in output.split("\0"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) != 3:
            continue
        sha, tasks, runs = fields
        if task_id not in _trailer_values(tasks):
            continue
        if run_id is not None and run_id not in _trailer_values(runs):
            continue
        return sha
    return None


def head_commit(repo: Repo) -> str | None:
    """The commit HEAD points at, or None on a branch without commits."""
    return _current_commit(repo)


def conventional_message(kind: str, scope: str, summary: str) -> str:
    """Build a Conventional Commits subject such as `feat(db): create users`.

    Args:
        kind: The change type (`feat`, `fix`, `docs`, ...).
        scope: The area touched, or empty for none.
        summary: One line saying what the commit does.

    Raises:
        GitError: `kind` is not a known type, or `scope` or `summary` is not a
            single clean line.
    """
    if kind not in CONVENTIONAL_KINDS:
        known = ", ".join(sorted(CONVENTIONAL_KINDS))
        raise GitError(f"commit type {kind!r} is not one of {known}")
    if scope and not _SCOPE.match(scope):
        raise GitError(
            f"commit scope {scope!r} must be a word such as `db` (letters, digits, "
            "'.', '_', '/', '-')"
        )
    summary = summary.strip()
    if not summary or _CONTROL.search(summary):
        raise GitError(f"commit summary {summary!r} must be one non-empty line")
    head = f"{kind}({scope})" if scope else kind
    return f"{head}: {summary}"


@dataclass
class _IndexLock:
    """Waits for `.git/index.lock` to be free, reclaiming a stale one once."""

    path: Path
    deadline: float
    timeout: float
    stale_after: float
    reclaimed: bool = False
    _pause: float = field(default=_FIRST_WAIT, init=False)

    def wait_until_free(self) -> None:
        while True:
            try:
                held = self.path.stat()
            except FileNotFoundError:
                return

            age = time.time() - held.st_mtime
            if age > self.stale_after and not self.reclaimed:
                self._reclaim(held, age)
                continue
            self.backoff()

    def backoff(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise GitError(
                f"{self.path} is held by another git process (waited "
                f"{self.timeout:g} s); wait for it to finish and run sparc again. "
                "If no git program is running, the file was left behind by a "
                "crash: remove it yourself"
            )
        log.debug("git_index_lock_wait", path=str(self.path), seconds=self._pause)
        time.sleep(min(self._pause, remaining))
        self._pause = min(self._pause * 2, _LONGEST_WAIT)

    def _reclaim(self, seen: os.stat_result, age: float) -> None:
        # Only a file that is still the one judged stale is removed; a lock a
        # new git process just created has another inode or mtime.
        self.reclaimed = True
        try:
            now = self.path.stat()
            if (now.st_ino, now.st_mtime_ns) != (seen.st_ino, seen.st_mtime_ns):
                return
            self.path.unlink()
        except FileNotFoundError:
            return
        log.warning(
            "git_stale_lock_reclaimed",
            path=str(self.path),
            age_seconds=round(age),
            stale_after=self.stale_after,
        )


@contextmanager
def _commit_lock(git_dir: Path, timeout: float) -> Iterator[None]:
    """Hold sparc's commit lock for this repository, in this process and across."""
    key = os.path.realpath(git_dir)
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(key, threading.Lock())

    lock_path = git_dir / COMMIT_LOCK_NAME
    if not thread_lock.acquire(timeout=timeout):
        raise GitError(_busy_message(lock_path, timeout))
    try:
        with open(lock_path, "a") as handle:
            _flock(handle.fileno(), lock_path, timeout)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        thread_lock.release()


def _flock(fd: int, lock_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = _FIRST_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GitError(_busy_message(lock_path, timeout)) from None
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _LONGEST_WAIT)


def _busy_message(lock_path: Path, timeout: float) -> str:
    return (
        f"{lock_path} is held by another sparc commit (waited {timeout:g} s); "
        "wait for the other sparc run to finish and try again"
    )


def _stage_and_commit(
    repo: Repo,
    index_lock: _IndexLock,
    pathspecs: list[str],
    known: set[str],
    message: str,
    identity: Identity,
) -> str | None:
    # At most two git processes, as few as a hand-made commit: `add` makes new
    # files known, `commit --only` commits exactly the paths and leaves
    # whatever else the user staged alone. Paths git tracks need no `add`.
    unknown = [spec for spec in pathspecs if spec not in known]
    staged = set(_stageable(repo, index_lock, unknown)) if unknown else set()
    committed = [spec for spec in pathspecs if spec in known or spec in staged]
    if not committed:
        log.info("git_nothing_to_commit", paths=_unspec(pathspecs))
        return None
    if staged:
        _git_locked(
            repo, index_lock, "add", "--all", "--", *[s for s in unknown if s in staged]
        )

    try:
        try:
            _commit_only(repo, index_lock, committed, message, identity)
        except _UnknownPath:
            # a path the caller took for tracked is not: stage them all
            committed = _stageable(repo, index_lock, pathspecs)
            if not committed:
                log.info("git_nothing_to_commit", paths=_unspec(pathspecs))
                return None
            _git_locked(repo, index_lock, "add", "--all", "--", *committed)
            _commit_only(repo, index_lock, committed, message, identity)
    except _NothingToCommit:
        log.info("git_nothing_to_commit", paths=_unspec(pathspecs))
        return None
    sha = _current_commit(repo)
    if sha is None:
        raise GitError(f"git commit made no commit on HEAD in {repo.working_dir}")

    log.info(
        "git_committed",
        sha=sha,
        files=len(committed),
        subject=message.splitlines()[0],
    )
    return sha


def _commit_only(
    repo: Repo,
    index_lock: _IndexLock,
    pathspecs: list[str],
    message: str,
    identity: Identity,
) -> None:
    _git_locked(
        repo,
        index_lock,
        "commit",
        "--quiet",
        "--only",
        "--cleanup=whitespace",
        f"--message={message}",
        "--",
        *pathspecs,
        env=identity.environment(),
    )


def _stageable(repo: Repo, index_lock: _IndexLock, pathspecs: list[str]) -> list[str]:
    """The pathspecs git can stage: on disk, or in the index (a deletion).

    A path that is neither would make `git add` fail; only when some path is
    missing on disk is git asked which of them the index knows.
    """
    root = Path(repo.working_dir)
    paths = _unspec(pathspecs)
    missing = [
        spec
        for spec, path in zip(pathspecs, paths, strict=True)
        if not os.path.lexists(root / path)
    ]
    if not missing:
        return pathspecs

    known = _index_entries(repo, index_lock, missing)
    return [
        spec
        for spec, path in zip(pathspecs, paths, strict=True)
        if spec not in missing
        or any(p == path or p.startswith(f"{path}/") for p in known)
    ]


def _backup_index(git_dir: Path, scratch: Path) -> Path | None:
    index = git_dir / "index"
    backup = scratch / "index"
    try:
        shutil.copyfile(index, backup)
    except FileNotFoundError:
        return None
    return backup


def _current_commit(repo: Repo) -> str | None:
    """HEAD's commit, read from the ref files; git is asked only when unsure.

    Returns:
        The sha, or None on a branch without commits.
    """
    git_dir = Path(repo.git_dir)
    common_dir = Path(repo.common_dir)
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            sha = head
        else:
            ref = head.removeprefix("ref: ")
            loose = common_dir / ref
            sha = (
                loose.read_text(encoding="utf-8").strip()
                if loose.is_file()
                else _packed_ref(common_dir, ref)
            )
    except (OSError, UnicodeDecodeError):
        sha = ""
    if _OBJECT_ID.match(sha):
        return sha

    try:
        return _run(repo, ["rev-parse", "--verify", "--quiet", "HEAD"]).strip()
    except GitCommandError:
        return None


def _packed_ref(common_dir: Path, ref: str) -> str:
    packed = common_dir / "packed-refs"
    if not packed.is_file():
        return ""
    for line in packed.read_text(encoding="utf-8").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref:
            return sha
    return ""


def _index_entries(
    repo: Repo,
    index_lock: _IndexLock,
    pathspecs: list[str],
    *,
    index_file: Path | None = None,
) -> dict[str, str]:
    """Return `git ls-files --stage` lines for `pathspecs`, keyed by path."""
    env = {"GIT_INDEX_FILE": str(index_file)} if index_file else None
    output = _git_locked(
        repo, index_lock, "ls-files", "--stage", "-z", "--", *pathspecs, env=env
    )
    entries: dict[str, str] = {}
    for line in output.split("\0"):
        if line:
            entries[line.split("\t", 1)[1]] = line
    return entries


def _restore_index(
    repo: Repo, index_lock: _IndexLock, pathspecs: list[str], backup: Path | None
) -> None:
    """Put the index entries of `pathspecs` back as the backup copy has them."""
    try:
        # the lock wait gets a fresh budget: the commit may have used it all
        index_lock.deadline = time.monotonic() + index_lock.timeout
        before = (
            _index_entries(repo, index_lock, pathspecs, index_file=backup)
            if backup
            else {}
        )
        after = _index_entries(repo, index_lock, pathspecs)
        removed = [path for path in after if path not in before]
        zero = "0" * _object_id_length(repo) if removed else ""
        lines = [f"0 {zero}\t{path}" for path in removed]
        lines += before.values()
        if not lines:
            return
        with tempfile.TemporaryFile() as stdin:
            stdin.write(("\0".join(lines) + "\0").encode())
            stdin.seek(0)
            _git_locked(
                repo, index_lock, "update-index", "-z", "--index-info", stdin=stdin
            )
        log.info("git_index_restored", paths=_unspec(pathspecs))
    except Exception:
        log.exception("git_index_restore_failed", paths=_unspec(pathspecs))


def _git_locked(
    repo: Repo,
    index_lock: _IndexLock,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
) -> str:
    """Run git once `index.lock` is free, again if another program took it first.

    Raises:
        _NothingToCommit: `git commit` found none of its paths changed.
        _UnknownPath: `git commit` was given a path git does not track.
        GitError: git failed for any other reason.
    """
    while True:
        index_lock.wait_until_free()
        try:
            return _run(repo, args, env=env, stdin=stdin)
        except GitCommandError as error:
            stderr = _stderr(error)
            if f"{INDEX_LOCK_NAME}': File exists" in stderr:
                index_lock.backoff()
                continue
            if args[0] == "commit" and _NOTHING_TO_COMMIT.search(_stdout(error)):
                raise _NothingToCommit from error
            if args[0] == "commit" and _UNKNOWN_PATH in stderr:
                raise _UnknownPath from error
            raise GitError(
                f"git {args[0]} failed in {repo.working_dir}: {stderr}"
            ) from error


def _git(repo: Repo, *args: str, env: Mapping[str, str] | None = None) -> str:
    try:
        return _run(repo, args, env=env)
    except GitCommandError as error:
        raise GitError(
            f"git {args[0]} failed in {repo.working_dir}: {_stderr(error)}"
        ) from error


def _run(
    repo: Repo,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
) -> str:
    command = [repo.git.GIT_PYTHON_GIT_EXECUTABLE, *args]
    output = repo.git.execute(
        command,
        env=env,
        istream=stdin,
        strip_newline_in_stdout=False,
    )
    return str(output)


def _find_repository(root: Path) -> WorkspaceRepo | None:
    try:
        repo = WorkspaceRepo(root, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None

    if repo.working_tree_dir is None:
        return repo
    top = Path(repo.working_tree_dir).resolve()
    try:
        relative = Path(root).resolve().relative_to(top)
    except ValueError:
        relative = None
    if relative is None or (relative.parts and relative.parts[0] == ".git"):
        raise GitError(
            f"{root} is not inside the work tree of {top}; run sparc in the "
            "project folder"
        )
    repo.workspace_prefix = "" if relative == Path(".") else f"{relative.as_posix()}/"
    return repo


def _object_id_length(repo: Repo) -> int:
    object_format = _git(repo, "rev-parse", "--show-object-format").strip()
    return 64 if object_format == "sha256" else 40


def _git_identity_settings(repo: Repo) -> dict[str, str]:
    """Return the identity settings git resolves, the last value of each winning."""
    try:
        output = _run(
            repo,
            [
                "config",
                "--null",
                "--get-regexp",
                r"^(user|author|committer)\.(name|email)$",
            ],
        )
    except GitCommandError as error:
        # status 1 means none of the keys is set anywhere
        if error.status == 1:
            return {}
        raise GitError(f"git config failed: {_stderr(error)}") from error

    settings: dict[str, str] = {}
    for record in output.split("\0"):
        key, _, value = record.partition("\n")
        if key:
            settings[key.lower()] = value
    return settings


def _first_set(*values: str | None) -> str | None:
    for value in values:
        if value is not None and value.strip():
            return value
    return None


def _identity_problem(value: str) -> str | None:
    if not value.strip():
        return "is empty"
    if value != value.strip():
        return "has leading or trailing spaces"
    if "\n" in value or _CONTROL.search(value):
        return "holds a newline or control character"
    if "<" in value or ">" in value:
        return "holds '<' or '>'"
    return None


def _message_with_trailers(message: str, trailers: Mapping[str, str]) -> str:
    text = message.strip()
    subject = text.splitlines()[0].strip() if text else ""
    if not subject:
        raise GitError("a commit needs a message with a subject line")

    lines = []
    for key, value in trailers.items():
        if not _TRAILER_KEY.match(key):
            raise GitError(f"commit trailer key {key!r} must be a word like `Task`")
        value = str(value).strip()
        if not value or _CONTROL.search(value):
            raise GitError(f"commit trailer {key} must be one non-empty line")
        lines.append(f"{key}: {value}")
    if not lines:
        return text
    return f"{text}\n\n" + "\n".join(lines)


def _pathspecs(repo: Repo, paths: Sequence[str]) -> list[str]:
    """Turn workspace-relative paths into literal, repository-relative pathspecs."""
    prefix = _prefix(repo)
    specs: list[str] = []
    for path in paths:
        pure = PurePosixPath(path)
        if not path or not path.strip() or pure.is_absolute() or ".." in pure.parts:
            raise WorkspaceError(
                f"{path!r} is not a path inside the workspace", field="paths"
            )
        spec = _literal(prefix + pure.as_posix())
        if spec not in specs:
            specs.append(spec)
    return specs


def _literal(path: str) -> str:
    # literal magic keeps `*`, `?` and `[` in file names from matching others
    return f":(literal){path}"


def _unspec(pathspecs: Sequence[str]) -> list[str]:
    return [spec.removeprefix(":(literal)") for spec in pathspecs]


def _prefix(repo: Repo) -> str:
    return repo.workspace_prefix if isinstance(repo, WorkspaceRepo) else ""


def _describe_status(state: str) -> str:
    if state == "??":
        return "untracked"
    if "U" in state or state in ("AA", "DD"):
        return "unmerged"
    staged, worktree = state[0], state[1]
    parts = []
    if staged != " ":
        parts.append("staged")
    if worktree == "M":
        parts.append("modified")
    elif worktree == "D":
        parts.append("deleted")
    return ", ".join(parts) or "changed"


def _trailer_values(text: str) -> list[str]:
    return [value.strip() for value in text.split("\x1e") if value.strip()]


def _stdout(error: GitCommandError) -> str:
    text = error.stdout if isinstance(error.stdout, str) else str(error.stdout)
    return text


def _stderr(error: GitCommandError) -> str:
    text = error.stderr if isinstance(error.stderr, str) else str(error.stderr)
    text = text.strip()
    if text.startswith("stderr:"):
        text = text.removeprefix("stderr:").strip().strip("'").strip()
    return text or str(error)
