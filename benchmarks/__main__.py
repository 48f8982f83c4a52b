"""`python -m benchmarks`: every benchmark, each ratio printed as it is measured.

Options:
    --docs        rewrite docs/benchmarks.md with this run's figures
    --json FILE   write the figures as JSON too
    --quick       small sizes, for a smoke test (figures not comparable)

The slow benchmarks get a time budget each so the whole run stays under ten
minutes; a benchmark that had to shrink says so in its line and in the docs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import backlog_load, batch, commit, forge, orchestration
from benchmarks.common import Measure, machine, quiet_logging
from benchmarks.report import render_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def run_all(*, quick: bool) -> list[Measure]:
    steps = [
        lambda: [commit.measure(20 if quick else 100)],
        lambda: [backlog_load.measure(500 if quick else 10_000)],
        lambda: [
            orchestration.measure(20 if quick else 300, budget_s=10 if quick else 90)
        ],
        lambda: forge.measure(
            20 if quick else 200, 100 if quick else 1000, budget_s=30 if quick else 150
        ),
        lambda: [batch.measure(30 if quick else 1000, budget_s=15 if quick else 150)],
    ]
    measures: list[Measure] = []
    for step in steps:
        for measure in step():
            print(measure.line(), flush=True)
            measures.append(measure)
    return measures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--docs", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args(argv)

    quiet_logging()
    began = time.perf_counter()
    measures = run_all(quick=options.quick)
    seconds = time.perf_counter() - began
    taken = datetime.now(UTC).isoformat(timespec="seconds")
    where = machine()

    missed = [m.name for m in measures if not m.met]
    print(
        f"{len(measures) - len(missed)} of {len(measures)} targets met in "
        f"{seconds:.0f} s" + (f"; not met: {', '.join(missed)}" if missed else "")
    )
    if options.json:
        document = {
            "taken": taken,
            "machine": where,
            "seconds": round(seconds, 1),
            "measures": [m.as_dict() for m in measures],
        }
        options.json.write_text(json.dumps(document, indent=2) + "\n")
    if options.docs and not options.quick:
        existing = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else ""
        DOCS.write_text(
            render_markdown(measures, where, taken, seconds, existing),
            encoding="utf-8",
        )
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
