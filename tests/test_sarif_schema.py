"""SARIF output validates against the SARIF 2.1.0 JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from sparc.agents.hephaestus.lint import lint_path, render_sarif
from tests.conftest import CASES, SCHEMAS

# The 2.1.0 schema as published with SARIF's final text (rtm.5), from
# @microsoft/jest-sarif (MIT).
SCHEMA = Path(__file__).parent / "fixtures" / "sarif-2.1.0-rtm.5.json"


def _validate(document: str) -> dict:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    log = json.loads(document)
    jsonschema.Draft4Validator(schema).validate(log)
    return log


def test_sarif_of_findings_is_valid() -> None:
    """A report with findings of several rules is a valid SARIF 2.1.0 log."""
    report = lint_path(
        SCHEMAS / "shop-3-indexes.sql",
        context=(SCHEMAS / "shop-1-core.sql", SCHEMAS / "shop-2-auth.sql"),
    )
    log = _validate(render_sarif(report))

    results = log["runs"][0]["results"]
    assert results, "shop step 3 has at least the duplicate email index"
    rule_ids = {rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert {result["ruleId"] for result in results} <= rule_ids


def test_sarif_of_many_cases_is_valid() -> None:
    """Every case file's findings render as valid SARIF."""
    for path in sorted(CASES.glob("*.sql")):
        _validate(render_sarif(lint_path(path)))


def test_sarif_without_findings_is_valid(tmp_path: Path) -> None:
    clean = tmp_path / "clean.sql"
    clean.write_text("CREATE TABLE t (id integer PRIMARY KEY);\n", encoding="utf-8")
    log = _validate(render_sarif(lint_path(clean)))
    assert log["runs"][0]["results"] == []
