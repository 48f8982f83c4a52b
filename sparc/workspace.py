"""The workspace: the user's project folder, and every path sparc touches in it."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sparc.errors import WorkspaceError

BACKLOG_DIR = "docs/backlog"
STATE_DIR = ".sparc"

# Names that must stay usable on every filesystem and in a git tree.
_PORTABLE_PART = re.compile(r"[A-Za-z0-9._+@-][A-Za-z0-9 ._+@-]*")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10))}
_WINDOWS_RESERVED |= {f"lpt{i}" for i in range(10)}


@dataclass(frozen=True)
class Workspace:
    """A project folder holding a backlog, SPARC documents and generated code."""

    root: Path

    @classmethod
    def at(cls, path: Path | str) -> Workspace:
        """Open the workspace at `path`, which must be an existing folder.

        Raises:
            WorkspaceError: `path` is not a folder, or its backlog or state
                folder is a symbolic link that leads outside it.
        """
        root = Path(path).expanduser()
        if not root.is_dir():
            raise WorkspaceError(
                "not a folder; pass an existing workspace or run `sparc init` first",
                path=root,
            )
        workspace = cls(root.resolve())
        # the backlog and the state folder are written to; a link that takes
        # either out of the workspace would take those writes with it
        for folder in (BACKLOG_DIR, STATE_DIR):
            if (workspace.root / folder).exists():
                workspace.resolve(folder, field=folder)
        return workspace

    @property
    def backlog_dir(self) -> Path:
        return self.root / BACKLOG_DIR

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def resolve(self, relative: str, *, field: str = "path") -> Path:
        """Return the absolute path of `relative`, refusing anything that leaves.

        Raises:
            WorkspaceError: the value is absolute, climbs out with `..`, passes
                through a symlink that leads outside, names a device, or has a
                part that is not portable.
        """
        if not isinstance(relative, str) or not relative.strip():
            raise WorkspaceError(f"{field}: empty path", field=field)
        if "\x00" in relative or "\\" in relative:
            raise WorkspaceError(
                f"{field}: {relative!r} is not a portable path; use '/' separators",
                field=field,
            )
        pure = PurePosixPath(relative)
        if pure.is_absolute() or re.match(r"^[A-Za-z]:", relative):
            raise WorkspaceError(
                f"{field}: {relative!r} is absolute; give a path inside the workspace",
                field=field,
            )
        kept: list[str] = []
        for part in pure.parts:
            if part == "..":
                # `docs/../docs/x.sql` is inside; `docs/../../x` is not. A '..'
                # after a symlink would climb from the link's target instead,
                # so it is taken only after real folders
                if not kept or self.root.joinpath(*kept).is_symlink():
                    raise WorkspaceError(
                        f"{field}: {relative!r} climbs out of the workspace with '..'",
                        field=field,
                    )
                kept.pop()
                continue
            kept.append(part)
            if not _PORTABLE_PART.fullmatch(part) or part.split(".")[0].lower() in (
                _WINDOWS_RESERVED
            ):
                raise WorkspaceError(
                    f"{field}: {relative!r} has a name that is not portable: {part!r}",
                    field=field,
                )

        candidate = self.root.joinpath(*kept)
        real = Path(os.path.realpath(candidate))
        if real != self.root and self.root not in real.parents:
            raise WorkspaceError(
                f"{field}: {relative!r} leads outside the workspace through a symlink",
                field=field,
            )
        if real.exists() and not (real.is_file() or real.is_dir()):
            raise WorkspaceError(
                f"{field}: {relative!r} is not a regular file or folder", field=field
            )
        return candidate

    def relative(self, path: Path) -> str:
        """The workspace-relative POSIX form of an absolute path inside it."""
        return path.resolve().relative_to(self.root).as_posix()

    def write_text(self, relative: str, text: str, *, field: str = "path") -> bool:
        """Write `text` atomically; return False when the file already holds it."""
        return write_text_atomic(self.resolve(relative, field=field), text)


def write_text_atomic(path: Path, text: str) -> bool:
    """Replace `path` with `text` through a temporary file and a rename.

    Returns False, writing nothing, when the file already holds exactly `text`.
    """
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return False

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
