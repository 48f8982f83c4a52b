"""The figures of a benchmark run as the table at the top of docs/benchmarks.md.

Only the part between the markers is rewritten; the analysis below it is
written by hand and kept.
"""

from __future__ import annotations

from benchmarks.common import Measure

BEGIN = "<!-- figures: written by `python -m benchmarks --docs` -->"
END = "<!-- end of figures -->"


def render_figures(
    measures: list[Measure], where: dict[str, str], taken: str, seconds: float
) -> str:
    lines = [
        BEGIN,
        "",
        f"Taken {taken} in {seconds:.0f} s on {where['cpu']} ({where['cpus']} CPUs, "
        f"{where['memory']}), {where['system']}, Python {where['python']}, "
        f"{where['git']}.",
        "",
        "| benchmark | what sparc does | floor | sparc s | floor s | ratio | target "
        "| met |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for m in measures:
        goal = (
            f"< {m.absolute_limit_s:g} s"
            if m.absolute_limit_s is not None
            else f"<= {m.target:g}"
        )
        lines.append(
            f"| {m.name} | {m.what} | {m.floor_what} | {m.sparc_s:.3f} | "
            f"{m.floor_s:.3f} | {m.ratio:.2f} | {goal} | "
            f"{'yes' if m.met else '**no**'} |"
        )
    lines.append("")
    for m in measures:
        if m.extra:
            shown = ", ".join(f"{key} {value}" for key, value in m.extra.items())
            lines.append(f"- {m.name}: {shown}")
    lines += ["", END]
    return "\n".join(lines)


def render_markdown(
    measures: list[Measure],
    where: dict[str, str],
    taken: str,
    seconds: float,
    existing: str,
) -> str:
    """`existing` (docs/benchmarks.md) with its figures replaced, the rest kept."""
    figures = render_figures(measures, where, taken, seconds)
    if BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + figures + tail
    return (
        "# Benchmarks\n\n`make bench` runs `python -m benchmarks`.\n\n" + figures + "\n"
    )
