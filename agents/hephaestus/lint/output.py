"""A lint report as text for people, JSON for scripts, SARIF 2.1.0 for code hosts."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from sparc.agents.hephaestus.lint.report import LintReport
from sparc.agents.hephaestus.lint.rules import RULES
from sparc.agents.hephaestus.lint.sources import split_location
from sparc.engines import Finding

TOOL_NAME = "sparc-hephaestus"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

# SARIF's levels: "note" is its word for information
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_text(report: LintReport) -> str:
    """One block per finding, then a count by severity."""
    lines: list[str] = []
    for finding in report.findings:
        where = finding.location or "(schema)"
        lines.append(
            f"{where}: {finding.severity} {finding.code} [{finding.category}] "
            f"{finding.message}"
        )
        if finding.hint:
            lines.append(f"    fix: {finding.hint}")

    counts = {level: 0 for level in ("error", "warning", "info")}
    for finding in report.findings:
        counts[finding.severity] += 1
    summary = ", ".join(f"{count} {level}" for level, count in counts.items())
    if report.suppressed:
        summary += f"; {report.suppressed} suppressed"
    count = len(report.findings)
    lines.append(f"{count} finding{'' if count == 1 else 's'} ({summary})")
    return "\n".join(lines) + "\n"


def render_json(report: LintReport) -> str:
    """The findings as a JSON document with the sources and a summary."""
    document = {
        "sources": list(report.sources),
        "suppressed": report.suppressed,
        "findings": [finding.as_dict() for finding in report.findings],
    }
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def render_sarif(report: LintReport) -> str:
    """A SARIF 2.1.0 log with one run; rules come from the registry."""
    codes = list(RULES)
    rules = [_sarif_rule(code) for code in codes]
    results = [_sarif_result(finding, codes) for finding in report.findings]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _sarif_rule(code: str) -> dict[str, Any]:
    rule = RULES[code]
    return {
        "id": rule.code,
        "name": _pascal(rule.title),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        "properties": {"category": rule.category},
    }


def _pascal(title: str) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in title).split()
    return "".join(word[:1].upper() + word[1:] for word in words)


def _sarif_result(finding: Finding, codes: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": _SARIF_LEVEL[finding.severity],
        "message": {"text": finding.message},
        "properties": {"category": finding.category, "hint": finding.hint},
    }
    if finding.code in codes:
        result["ruleIndex"] = codes.index(finding.code)

    path, line = split_location(finding.location)
    if line is not None:
        result["locations"] = [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": quote(path)},
                    "region": {"startLine": line},
                }
            }
        ]
    elif finding.location:
        result["locations"] = [
            {"logicalLocations": [{"fullyQualifiedName": finding.location}]}
        ]
    return result
