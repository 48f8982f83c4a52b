"""The workspace configuration: `.sparc/config.yaml`."""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sparc.errors import ConfigError

CONFIG_FILE = ".sparc/config.yaml"
MAX_CONFIG_BYTES = 256 * 1024

_PROJECT_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


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

    @field_validator("project")
    @classmethod
    def _project_is_a_package_name(cls, value: str) -> str:
        if not _PROJECT_NAME.match(value) or keyword.iskeyword(value):
            raise ValueError(
                "must be a Python package name: lowercase letters, digits and '_', "
                "not starting with a digit, not a Python keyword"
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
        ConfigError: the file is not YAML, too large, or has a wrong field.
    """
    path = root / CONFIG_FILE
    if not path.is_file():
        return SparcConfig(project=project_name_for(root))

    data = _read_yaml_mapping(path)
    data.setdefault("project", project_name_for(root))
    try:
        return SparcConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise ConfigError(
            f"{field}: {error['msg']}", path=CONFIG_FILE, field=field
        ) from None


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"file is larger than {MAX_CONFIG_BYTES // 1024} KiB", path=CONFIG_FILE
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(problem, path=CONFIG_FILE, line=line, column=column) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=CONFIG_FILE) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of settings", path=CONFIG_FILE)
    return data
