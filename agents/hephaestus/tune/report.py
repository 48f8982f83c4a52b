"""The tuning report as text, JSON or markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sparc.agents.hephaestus.tune.advise import IndexAdvice
from sparc.engines import Finding

Format = Literal["text", "json", "markdown"]


@dataclass(frozen=True)
class TuneReport:
    """What `tune` found and proposes for one database."""

    database: str
    server_version: str
    method: str | None
    margin: float
    findings: tuple[Finding, ...]
    advice: tuple[IndexAdvice, ...]
    notes: tuple[str, ...] = ()
    stats_reset: str | None = None
    query_findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def accepted(self) -> tuple[IndexAdvice, ...]:
        """The advice to turn into a revision: proven creates and safe drops."""
        return tuple(a for a in self.advice if a.accepted)

    def as_dict(self) -> dict[str, object]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "stats_reset": self.stats_reset,
            "method": self.method,
            "margin": self.margin,
            "notes": list(self.notes),
            "findings": [f.as_dict() for f in self.findings],
            "query_findings": [f.as_dict() for f in self.query_findings],
            "advice": [a.as_dict() for a in self.advice],
        }


def render(report: TuneReport, form: Format = "text", *, task_id: str = "") -> str:
    """The report in `form`; the same report always gives the same text.

    Args:
        report: what `tune` returned.
        form: "text" for a terminal, "json" for programs, "markdown" to attach
            to a task.
        task_id: the task the markdown report belongs to, named in its title.
    """
    if form == "json":
        return json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n"
    if form == "markdown":
        return _markdown(report, task_id)
    return _text(report)


def _text(report: TuneReport) -> str:
    lines = [
        f"database {report.database} (PostgreSQL {report.server_version}), "
        f"{_since(report)}",
        *(f"note: {n}" for n in report.notes),
        "",
    ]
    for finding in (*report.findings, *report.query_findings):
        where = f"{finding.code} {finding.severity:<7} {finding.location}"
        lines.append(f"{where}: {finding.message}")
        if finding.hint:
            lines.append(f"    fix: {finding.hint}")
    lines.append("")
    lines.append(_advice_heading(report))
    for item in report.advice:
        mark = "+" if item.accepted else "-"
        lines.append(
            f"{mark} {item.action} {item.name} on {item.table} "
            f"({', '.join(item.columns)}): {'; '.join(item.reasons)}"
        )
        for cost in item.costs:
            lines.append(
                f"    {cost.statement}: cost {cost.before:.2f} -> {cost.after:.2f} "
                f"({cost.reduction:.0%} lower)"
            )
        if item.note:
            lines.append(f"    {item.note}")
    return "\n".join(lines).rstrip() + "\n"


def _markdown(report: TuneReport, task_id: str) -> str:
    task = f"{task_id}: " if task_id else ""
    lines = [
        f"# {task}Tuning report: {report.database}",
        "",
        f"PostgreSQL {report.server_version}; {_since(report)}; proof by "
        f"{report.method or 'catalog only'}; margin {report.margin:.0%}.",
        "",
        *(f"- {n}" for n in report.notes),
        "",
        "## Findings",
        "",
        "| code | severity | where | finding | fix |",
        "|---|---|---|---|---|",
    ]
    for finding in (*report.findings, *report.query_findings):
        lines.append(
            f"| {finding.code} | {finding.severity} | `{finding.location}` | "
            f"{_cell(finding.message)} | {_cell(finding.hint)} |"
        )
    lines += ["", "## Index advice", ""]
    lines += _advice_table(report.advice)
    return "\n".join(lines).rstrip() + "\n"


def _advice_table(advice: Sequence[IndexAdvice]) -> list[str]:
    if not advice:
        return ["No index to create or drop."]
    lines = [
        "| proposed | action | index | table | columns | evidence |",
        "|---|---|---|---|---|---|",
    ]
    for item in advice:
        evidence = "; ".join(
            f"{c.statement}: {c.before:.2f} -> {c.after:.2f}" for c in item.costs
        )
        evidence = "; ".join(p for p in (evidence, item.note, *item.reasons) if p)
        lines.append(
            f"| {'yes' if item.accepted else 'no'} | {item.action} | `{item.name}` | "
            f"{item.table} | {', '.join(item.columns)} | {_cell(evidence)} |"
        )
    return lines


def _advice_heading(report: TuneReport) -> str:
    count = len(report.accepted)
    how = f"proven by {report.method}" if report.method else "from the catalog"
    return f"index advice ({count} proposed, {how}, margin {report.margin:.0%}):"


def _since(report: TuneReport) -> str:
    if report.stats_reset:
        return f"statistics since {report.stats_reset}"
    return "statistics never reset"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
