"""A lint run's result, the `review:` settings, and the exit code they give."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sparc.agents.hephaestus.lint.rules import RULES, SEVERITY_RANK
from sparc.agents.hephaestus.lint.sources import split_location
from sparc.engines import Finding, Severity

FailOn = Literal["error", "warning", "info", "never"]


class ReviewSettings(BaseModel):
    """The `review:` section of `.sparc/config.yaml`.

    Example:
        review: {ignore: [HD301], severity: {HD205: info}, fail_on: error}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ignore: tuple[str, ...] = ()
    severity: dict[str, Severity] = Field(default_factory=dict)
    fail_on: FailOn = "error"
    # dialects the schema must run on; decides reserved words, VARCHAR lengths,
    # and which migration checks (SQLite, MariaDB) apply
    targets: tuple[str, ...] = ("postgresql", "sqlite")

    @field_validator("ignore")
    @classmethod
    def _known_ignored(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_known(code) for code in codes)

    @field_validator("severity")
    @classmethod
    def _known_overridden(cls, levels: dict[str, Severity]) -> dict[str, Severity]:
        return {_known(code): level for code, level in levels.items()}

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"postgresql", "sqlite", "mariadb", "mysql"}
        for target in targets:
            if target not in allowed:
                raise ValueError(
                    f"unknown target {target!r}; use {', '.join(sorted(allowed))}"
                )
        return targets


def _known(code: str) -> str:
    upper = code.upper()
    if upper not in RULES:
        raise ValueError(
            f"unknown rule code {code!r}; see docs/review-rules.md for the codes"
        )
    return upper


@dataclass(frozen=True)
class LintReport:
    """Findings of one lint run, sorted, with what was read to get them."""

    findings: tuple[Finding, ...]
    sources: tuple[str, ...] = ()
    # findings silenced by inline comments or the `ignore` setting
    suppressed: int = 0


def sort_key(finding: Finding) -> tuple[str, int, str, str]:
    """File, line, code, message: the order findings are reported in."""
    path, line = split_location(finding.location)
    return (path, line if line is not None else 0, finding.code, finding.message)


def sorted_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(set(findings), key=sort_key))


def apply_settings(
    findings: Iterable[Finding], settings: ReviewSettings
) -> tuple[list[Finding], int]:
    """Drop ignored codes and re-level overridden ones; count what was dropped."""
    kept: list[Finding] = []
    dropped = 0
    for finding in findings:
        if finding.code in settings.ignore:
            dropped += 1
            continue
        level = settings.severity.get(finding.code)
        kept.append(replace(finding, severity=level) if level else finding)
    return kept, dropped


def exit_code(report: LintReport, fail_on: FailOn = "error") -> int:
    """0 when no finding reaches `fail_on` (`ReviewSettings.fail_on`), else 1."""
    if fail_on == "never":
        return 0
    limit = SEVERITY_RANK[fail_on]
    failing = any(SEVERITY_RANK[f.severity] >= limit for f in report.findings)
    return 1 if failing else 0
