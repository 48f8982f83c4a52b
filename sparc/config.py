"""The workspace configuration: `.sparc/config.yaml`."""

from __future__ import annotations

import keyword
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.nodes import MappingNode, Node, ScalarNode

from sparc.errors import ConfigError
from sparc.safe_yaml import load_yaml

CONFIG_FILE = ".sparc/config.yaml"
MAX_CONFIG_BYTES = 256 * 1024

_PROJECT_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# server name in `verify:` -> (SQLAlchemy backend, an example URL)
_VERIFY_BACKENDS = {
    "postgresql": ("postgresql", "postgresql+psycopg://user@127.0.0.1:5432/postgres"),
    "mariadb": ("mysql", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
_WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class IdentitySetting(BaseModel):
    """Who sparc's commits are by when git has no identity of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    email: str = Field(min_length=3)


class GitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: IdentitySetting | None = None
    lock_timeout: float = Field(default=30.0, gt=0)


class SparcConfig(BaseModel):
    """Settings of one workspace; every field has a default but `project`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str
    workflow: str = "sparc"
    git: GitSettings = GitSettings()
    # Hephaestus's review settings (ignore, severity, fail_on, targets), checked
    # by the linter's own model where it is used
    review: dict[str, Any] = Field(default_factory=dict)
    # database servers to verify revisions on besides SQLite: dialect -> URL
    verify: dict[str, str] = Field(default_factory=dict)
    # persona -> "provider:model"; budgets; the checkpoint store. The runner
    # validates their contents (sparc.runner.load_run_settings).
    engines: dict[str, str] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    checkpoints: dict[str, Any] = Field(default_factory=dict)

    @field_validator("workflow")
    @classmethod
    def _workflow_is_a_name(cls, value: str) -> str:
        # the name picks .sparc/workflows/<name>.yaml; a path would leave it
        if not _WORKFLOW_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a workflow name; use letters, digits, '-' and "
                "'_' (like sparc or refinement)"
            )
        return value

    @field_validator("verify")
    @classmethod
    def _verify_names_servers(cls, value: dict[str, str]) -> dict[str, str]:
        # a typo here would otherwise surface as a traceback mid-run
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        for dialect, url in value.items():
            if dialect not in _VERIFY_BACKENDS:
                raise ValueError(
                    f"{dialect!r} is not a server sparc verifies on; use "
                    f"{' or '.join(sorted(_VERIFY_BACKENDS))} (SQLite is always "
                    "verified)"
                )
            try:
                backend = make_url(url).get_backend_name()
            except ArgumentError:
                raise ValueError(
                    f"{dialect}: not a database URL; write it like "
                    f"{_VERIFY_BACKENDS[dialect][1]}"
                ) from None
            if backend != _VERIFY_BACKENDS[dialect][0]:
                raise ValueError(
                    f"{dialect}: the URL is for {backend}, not {dialect}; write it "
                    f"like {_VERIFY_BACKENDS[dialect][1]}"
                )
        return value

    @field_validator("project")
    @classmethod
    def _project_is_a_package_name(cls, value: str) -> str:
        if not _PROJECT_NAME.fullmatch(value) or keyword.iskeyword(value):
            raise ValueError(
                f"{value!r} is not a Python package name; use lowercase letters, "
                "digits and '_', not starting with a digit, not a Python keyword"
            )
        return value


def project_name_for(folder: Path) -> str:
    """A valid project name derived from a folder name (`my-shop` -> `my_shop`)."""
    name = re.sub(r"[^a-z0-9_]", "_", folder.name.lower()).strip("_") or "project"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"project_{name}"
    return name[:63]


def load_config(root: Path) -> SparcConfig:
    """Read `.sparc/config.yaml`; a workspace without one gets the defaults.

    Raises:
        ConfigError: the file is not a regular file, is larger than 256 KiB,
            is not UTF-8 YAML (repeated keys and nesting deeper than 32
            levels included), or has an unknown or wrong field.
    """
    path = root / CONFIG_FILE
    if not path.exists() and not path.is_symlink():
        return SparcConfig(project=project_name_for(root))

    root_node, data = _read_yaml_mapping(path)
    data.setdefault("project", project_name_for(root))
    try:
        return SparcConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"]) or "configuration"
        if error["type"] == "extra_forbidden":
            problem = "unknown setting; remove it or check its spelling"
        else:
            problem = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(
            f"{field}: {problem}",
            path=CONFIG_FILE,
            field=field,
            line=_line_of(root_node, error["loc"]),
        ) from None


def _line_of(node: Node | None, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the deepest mapping key along `loc` that exists."""
    line = None
    for part in loc:
        if not isinstance(node, MappingNode):
            break
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == str(part):
                line, node = key.start_mark.line + 1, value
                break
        else:
            break
    return line


def _read_yaml_mapping(path: Path) -> tuple[Node | None, dict[str, Any]]:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise ConfigError(
                "not a regular file; the configuration must be a YAML file",
                path=CONFIG_FILE,
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the configuration: {exc.strerror or exc}", path=CONFIG_FILE
        ) from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"file is larger than {MAX_CONFIG_BYTES // 1024} KiB; keep the "
            "configuration short",
            path=CONFIG_FILE,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            path=CONFIG_FILE,
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from None

    def error(message: str, line: int | None, column: int | None) -> ConfigError:
        return ConfigError(message, path=CONFIG_FILE, line=line, column=column)

    root, document = load_yaml(text, error)
    if document is None:
        return None, {}
    if not isinstance(document, dict):
        raise ConfigError("must be a mapping of settings", path=CONFIG_FILE)
    return root, document
