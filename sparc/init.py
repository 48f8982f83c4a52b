"""`sparc init`: lay down a workspace from the templates and make it a repository."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

import structlog
import yaml

from sparc import gitops
from sparc.config import CONFIG_FILE, load_config, project_name_for
from sparc.errors import ConfigError
from sparc.workspace import Workspace, write_text_atomic

log = structlog.get_logger(__name__)

_IDENTITY = re.compile(r"^\s*(?P<name>[^<>\n]+?)\s*<(?P<email>[^<>\s]+@[^<>\s]+)>\s*$")
# the template folder is a package only so that it installs; its marker is not
# part of a workspace
_SKIPPED_AT_TOP = {"__init__.py"}
_SKIPPED = {"__pycache__"}


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: list[str] = field(default_factory=list)
    commit: str | None = None


def init_workspace(
    folder: Path, *, project: str | None = None, identity: str | None = None
) -> InitResult:
    """Lay down the workspace templates in `folder` without overwriting anything.

    A folder that is not a git repository becomes one, with a first commit of
    everything in it; in an existing repository only the laid-down files are
    committed.

    Raises:
        ConfigError: the project name or identity is invalid, or no commit
            identity can be found.
    """
    root = folder.expanduser().resolve()
    existing = load_config(root) if (root / CONFIG_FILE).is_file() else None
    name = project or (existing.project if existing else project_name_for(root))
    parsed_identity = _parse_identity(identity) if identity else None

    # everything is checked before the first file is written
    _check_project_name(name)
    root.mkdir(parents=True, exist_ok=True)
    configured = parsed_identity or (
        gitops.Identity(existing.git.identity.name, existing.git.identity.email)
        if existing and existing.git.identity
        else None
    )

    created = _lay_templates(root, name)
    if parsed_identity:
        _write_identity(root, parsed_identity)
        if CONFIG_FILE not in created:
            created.append(CONFIG_FILE)

    repo = gitops.init_repository(root)
    # a repository made just now takes everything in the folder as its first
    # commit; in an existing one only what init laid down is committed
    fresh = not repo.head.is_valid() and Path(repo.working_tree_dir or "") == root
    try:
        who = gitops.resolve_identity(repo, configured)
    except ConfigError:
        log.warning("init_not_committed", reason="no git identity")
        return InitResult(root=root, created=created)
    paths = _all_files(repo) if fresh else created
    commit = gitops.commit_paths(
        repo,
        paths,
        message="chore: lay down the sparc workspace",
        identity=who,
        trailers={"Agent": "sparc init"},
    )
    return InitResult(root=root, created=created, commit=commit)


def _check_project_name(name: str) -> None:
    from pydantic import ValidationError

    from sparc.config import SparcConfig

    try:
        SparcConfig(project=name)
    except ValidationError as exc:
        raise ConfigError(
            f"project: {exc.errors()[0]['msg'].removeprefix('Value error, ')}",
            field="project",
        ) from None


def _lay_templates(root: Path, project: str) -> list[str]:
    workspace = Workspace.at(root)
    template_root = files("sparc.workspace_templates")
    planned: list[tuple[Traversable, str]] = []
    for source, relative in sorted(_walk(template_root, ""), key=lambda p: p[1]):
        target_rel = relative.replace("__project__", project)
        target_rel = "/".join(
            "." + part.removeprefix("dot-") if part.startswith("dot-") else part
            for part in target_rel.split("/")
        )
        # every target is checked before the first is written: a folder of
        # the user's that links out of the workspace must not receive templates
        target = workspace.resolve(target_rel, field="template")
        if not target.exists():
            planned.append((source, target_rel))

    created: list[str] = []
    for source, target_rel in planned:
        text = Template(source.read_text(encoding="utf-8")).safe_substitute(
            project=project
        )
        write_text_atomic(root / target_rel, text)
        created.append(target_rel)
    return created


def _walk(node: Traversable, prefix: str) -> list[tuple[Traversable, str]]:
    found: list[tuple[Traversable, str]] = []
    for child in node.iterdir():
        if child.name in _SKIPPED or child.name.endswith(".pyc"):
            continue
        if not prefix and child.name in _SKIPPED_AT_TOP:
            continue
        relative = f"{prefix}{child.name}"
        if child.is_dir():
            found.extend(_walk(child, relative + "/"))
        else:
            found.append((child, relative))
    return found


def _parse_identity(value: str) -> gitops.Identity:
    match = _IDENTITY.match(value)
    if not match:
        raise ConfigError(
            f"--identity: {value!r} is not of the form 'Name <email@host>'",
            field="identity",
        )
    return gitops.Identity(match["name"], match["email"])


def _write_identity(root: Path, identity: gitops.Identity) -> None:
    path = root / CONFIG_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data.setdefault("git", {})["identity"] = {
        "name": identity.name,
        "email": identity.email,
    }
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def _all_files(repo: object) -> list[str]:
    output = repo.git.ls_files("--others", "--cached", "--exclude-standard")  # type: ignore[attr-defined]
    return [line for line in output.splitlines() if line]
