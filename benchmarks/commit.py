"""Commit: sparc's path-scoped, locked, identity-checked commit of four files.

Floor: `git add` then `git commit` of the same four files, by hand, in a
repository of the same shape. Both sides alternate, so machine load falls
on both alike.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import GIT_IDENTITY, Measure, git, git_identity

FILES = (
    "src/bench/db/models.py",
    "alembic/versions/{n:04d}_step.py",
    "alembic/scripts/seed_data.sql",
    "alembic/scripts/performance_queries.sql",
)


def _repository(root: Path) -> None:
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "README.md").write_text("bench\n")
    git(root, "add", "README.md")
    git(root, "commit", "--quiet", "-m", "initial")


def _write(root: Path, n: int) -> list[str]:
    paths = [pattern.format(n=n) for pattern in FILES]
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"# step {n} of {path}\n" + "x = 1\n" * 40)
    return paths


def measure(commits: int = 100) -> Measure:
    from sparc.gitops import Identity, commit_paths, open_repository

    identity = Identity(
        GIT_IDENTITY["GIT_AUTHOR_NAME"], GIT_IDENTITY["GIT_AUTHOR_EMAIL"]
    )
    sparc = floor = 0.0
    with (
        tempfile.TemporaryDirectory(prefix="sparc-bench-commit-") as folder,
        git_identity(),
    ):
        mine, plain = Path(folder) / "sparc", Path(folder) / "plain"
        _repository(mine)
        _repository(plain)
        repo = open_repository(mine)
        for n in range(commits):
            paths = _write(mine, n)
            start = time.perf_counter()
            commit_paths(
                repo,
                paths,
                message=f"feat(db): step {n}",
                identity=identity,
                trailers={"Task": f"DB-{n}", "Run": f"DB-{n}:bench"},
            )
            sparc += time.perf_counter() - start

            paths = _write(plain, n)
            start = time.perf_counter()
            subprocess.run(
                ["git", "-C", str(plain), "add", "--", *paths],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(plain),
                    "commit",
                    "--quiet",
                    f"--message=feat(db): step {n}",
                    "--",
                    *paths,
                ],
                check=True,
                capture_output=True,
            )
            floor += time.perf_counter() - start
        made = int(git(mine, "rev-list", "--count", "HEAD"))
    if made != commits + 1:
        raise RuntimeError(f"commit benchmark made {made - 1} of {commits} commits")
    return Measure(
        name="commit",
        what=f"gitops.commit_paths of 4 files, {commits} times",
        floor_what="git add + git commit of the same 4 files",
        sparc_s=sparc,
        floor_s=floor,
        target=1.2,
        extra={
            "commits": commits,
            "sparc_ms_per_commit": round(sparc / commits * 1000, 2),
            "floor_ms_per_commit": round(floor / commits * 1000, 2),
        },
    )
