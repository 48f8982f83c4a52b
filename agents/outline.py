"""The default engine for personas without one of their own.

It writes the phase's document as an outline built from the task's own fields,
marked at the top as generated, and reviews by checking that the phase left a
non-empty deliverable behind. Deterministic and offline.
"""

from __future__ import annotations

from sparc.engines import Finding, Review, WorkContext, WorkResult

# Where each phase's documents live, following the persona cards' input layout.
PHASE_DOCUMENT_DIRS = {
    "specification": "docs/specification",
    "pseudocode": "docs/design/pseudocode",
    "architecture": "docs/architecture",
    "planning": "docs/planning",
    "refinement": "docs/refinement",
    "completion": "docs/completion",
}

GENERATED_MARK = "<!-- generated outline"


def document_path(phase: str, task_id: str) -> str:
    return f"{PHASE_DOCUMENT_DIRS[phase]}/{task_id}.md"


class OutlineEngine:
    """Writes a phase document outline from the task file; approves non-empty work."""

    def work(self, context: WorkContext) -> WorkResult:
        path = document_path(context.phase, context.task.task.id)
        text = render_outline(context)
        return WorkResult(files={path: text}, summary=f"outline written to {path}")

    def review(self, context: WorkContext) -> Review:
        missing = [
            path
            for path in context.files or context.written
            if not (context.deliverable(path) or "").strip()
        ]
        if missing:
            return Review(
                verdict="revise",
                findings=tuple(
                    Finding(
                        code="SP001",
                        severity="error",
                        category="missing-deliverable",
                        message=f"deliverable {path} is missing or empty",
                        location=path,
                        hint="write the phase's document again",
                    )
                    for path in missing
                ),
            )
        return Review(verdict="approve", summary="deliverables present")


def render_outline(context: WorkContext) -> str:
    """The outline document for one phase of one task."""
    task = context.task.task
    persona = context.persona
    deliverable = persona.deliverable(context.phase) or context.phase.title()
    source = context.workspace.relative(context.task.path)
    lines = [
        f"{GENERATED_MARK} by sparc ({persona.key}) from {source}; "
        "replace it with the real document -->",
        f"# {context.phase.title()}: {task.title}",
        "",
        f"- Task: {task.id}",
        f"- Owner: {persona.name} ({persona.role})",
        f"- Deliverable: {deliverable}",
        f"- Priority: {task.priority}",
        "",
        "## Objective",
        "",
        task.description.strip() or "(the task file gives no description)",
        "",
    ]

    lines += ["## Acceptance criteria", ""]
    lines += [f"- {item}" for item in task.acceptance_criteria] or ["- (none given)"]
    lines.append("")

    if task.references:
        lines += ["## References", ""]
        lines += [f"- `{ref}`" for ref in task.references]
        lines.append("")

    if task.depends_on:
        lines += ["## Depends on", ""]
        lines += [f"- {dep}" for dep in task.depends_on]
        lines.append("")

    if context.findings:
        lines += ["## Review findings to address", ""]
        lines += [f"- [{f.code}] {f.message}" for f in context.findings]
        lines.append("")
    return "\n".join(lines)
