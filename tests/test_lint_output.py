"""Lint reports as text, JSON and SARIF 2.1.0, and the exit code they give."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sparc.agents.hephaestus.lint import (
    RULES,
    LintReport,
    exit_code,
    lint_path,
    render_json,
    render_sarif,
    render_text,
)
from sparc.cli import main
from sparc.engines import Finding
from tests.conftest import CASES, SCHEMAS

SARIF_LEVELS = {"error", "warning", "note", "none"}


def _report() -> LintReport:
    return lint_path(
        SCHEMAS / "shop-3-indexes.sql",
        context=[SCHEMAS / "shop-1-core.sql", SCHEMAS / "shop-2-auth.sql"],
    )


def _finding(severity: str, location: str = "schema.sql:3") -> Finding:
    return Finding(
        code="HD201",
        severity=severity,  # type: ignore[arg-type]
        message="wallet.balance looks like money",
        location=location,
        hint="use NUMERIC(12, 2)",
        category="wrong-data-type",
    )


def test_text_names_location_code_category_and_fix() -> None:
    text = render_text(_report())
    first, fix, summary = text.splitlines()
    assert first.startswith(f"{SCHEMAS / 'shop-3-indexes.sql'}:5: warning HD402 ")
    assert "[over-indexing]" in first and "idx_users_email" in first
    assert fix.startswith("    fix: drop index idx_users_email")
    assert summary == "1 finding (0 error, 1 warning, 0 info)"


def test_json_lists_findings_in_report_order() -> None:
    report = lint_path(CASES / "22-duplicate-redundant-indexes.sql")
    document = json.loads(render_json(report))
    assert [f["code"] for f in document["findings"]] == [
        f.code for f in report.findings
    ]
    assert set(document["findings"][0]) == {
        "code",
        "severity",
        "category",
        "message",
        "location",
        "hint",
    }
    assert document["sources"] == [str(CASES / "22-duplicate-redundant-indexes.sql")]


def test_findings_are_sorted_by_file_line_and_code() -> None:
    report = lint_path(SCHEMAS / "pagila.sql")
    lines = [int(f.location.rsplit(":", 1)[1]) for f in report.findings]
    assert lines == sorted(lines)
    assert render_json(report) == render_json(lint_path(SCHEMAS / "pagila.sql"))


def test_sarif_has_the_required_structure() -> None:
    """No SARIF schema ships with an installed package: check field by field."""
    report = lint_path(CASES / "20-m2m-association-uniqueness.sql")
    log = json.loads(render_sarif(report))

    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert isinstance(driver["name"], str) and driver["name"]

    rules = driver["rules"]
    assert [rule["id"] for rule in rules] == list(RULES)
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in SARIF_LEVELS
        assert rule["properties"]["category"] == RULES[rule["id"]].category

    results = run["results"]
    assert len(results) == len(report.findings)
    for result, finding in zip(results, report.findings, strict=True):
        assert result["ruleId"] == finding.code
        assert rules[result["ruleIndex"]]["id"] == finding.code
        assert result["level"] in SARIF_LEVELS
        assert result["message"]["text"] == finding.message
        assert result["properties"]["category"] == finding.category
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"].endswith(
            "20-m2m-association-uniqueness.sql"
        )
        assert isinstance(physical["region"]["startLine"], int)
        assert physical["region"]["startLine"] >= 1
    assert {r["level"] for r in results} == {"warning", "note"}


def test_sarif_uses_logical_locations_without_a_file() -> None:
    report = LintReport(findings=(_finding("error", location="wallet.balance"),))
    (result,) = json.loads(render_sarif(report))["runs"][0]["results"]
    assert result["locations"] == [
        {"logicalLocations": [{"fullyQualifiedName": "wallet.balance"}]}
    ]


def test_exit_code_follows_the_failing_severity() -> None:
    warnings = LintReport(findings=(_finding("warning"),))
    errors = LintReport(findings=(_finding("error"), _finding("info")))
    empty = LintReport(findings=())

    assert exit_code(warnings) == 0
    assert exit_code(warnings, fail_on="warning") == 1
    assert exit_code(errors) == 1
    assert exit_code(errors, fail_on="never") == 0
    assert exit_code(empty, fail_on="info") == 0
    assert exit_code(_report(), fail_on="warning") == 1


def test_review_command_on_shop_step_three_with_and_without_context(
    tmp_path: Path,
) -> None:
    indexes = str(SCHEMAS / "shop-3-indexes.sql")
    runner = CliRunner()

    alone = runner.invoke(main, ["-C", str(tmp_path), "review", indexes])
    assert alone.exit_code == 2
    assert "shop-3-indexes.sql:3:13: ALTER TABLE users: table users is not " in (
        alone.output
    )
    assert "pass that file with --context FILE" in alone.output

    earlier = [str(SCHEMAS / name) for name in ("shop-1-core.sql", "shop-2-auth.sql")]
    context = [arg for path in earlier for arg in ("--context", path)]
    with_context = runner.invoke(
        main, ["-C", str(tmp_path), "review", indexes, *context]
    )
    assert with_context.exit_code == 0, with_context.output
    lines = with_context.output.splitlines()
    assert "HD402 [over-indexing] index idx_users_email" in lines[0]
    assert lines[-1] == "1 finding (0 error, 1 warning, 0 info)"

    missing = runner.invoke(main, ["-C", str(tmp_path), "review", "nope.sql"])
    assert missing.exit_code == 2
    assert "nope.sql: does not exist; check the path" in missing.output


def test_review_command_names_a_missing_context_file_and_output_folder(
    tmp_path: Path,
) -> None:
    indexes = str(SCHEMAS / "shop-3-indexes.sql")
    runner = CliRunner()

    missing = runner.invoke(
        main, ["-C", str(tmp_path), "review", indexes, "--context", "nosuch.sql"]
    )
    assert missing.exit_code == 2
    assert "nosuch.sql: does not exist; check the path" in missing.output

    nowhere = tmp_path / "no" / "folder" / "x.sarif"
    core = str(SCHEMAS / "shop-1-core.sql")
    unwritable = runner.invoke(
        main, ["-C", str(tmp_path), "review", core, "--output", str(nowhere)]
    )
    assert unwritable.exit_code == 2
    assert "--output: cannot write the report: No such file or directory" in (
        unwritable.output
    )
    assert not (tmp_path / "no").exists()
