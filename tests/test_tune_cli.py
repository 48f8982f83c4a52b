"""`sparc db tune` on the command line: read-only by default, a report on stdout."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sparc.cli import main
from tests.conftest import SCHEMAS, psql_file


@pytest.mark.postgres
def test_tune_reports_an_unindexed_foreign_key_as_json(pg_url: str) -> None:
    """The shop's order_items(order_id) has no index; the report says so."""
    for step in ("shop-1-core.sql", "shop-2-auth.sql"):
        psql_file(pg_url, SCHEMAS / step)

    result = CliRunner().invoke(main, ["db", "tune", pg_url, "--format", "json"])

    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(result.stdout)
    text = json.dumps(report)
    assert "order_items" in text and "order_id" in text


def test_tune_without_a_url_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["db", "tune"])
    assert result.exit_code == 2
