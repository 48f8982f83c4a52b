"""No credential reaches a log line or a run report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest
import sqlalchemy as sa
import structlog
from hypothesis import given
from hypothesis import strategies as st

from sparc.redact import (
    MASK,
    environment_secrets,
    is_secret_name,
    redact_data,
    redact_event,
    redact_text,
)
from tests.test_server import library_workspace

DB_PASSWORD = "pg-Pa55word-do-not-log"
API_KEY = "sk-test-0123456789abcdefDONOTLOG"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql+psycopg://app:p@ss/w0rd@127.0.0.1:5432/x?sslmode=require",
            "postgresql+psycopg://app:***@127.0.0.1:5432/x?sslmode=require",
        ),
        (
            "two: mysql://r:one@h1/a, redis://:two@h2:6379/0",
            "two: mysql://r:***@h1/a, redis://:***@h2:6379/0",
        ),
        ('{"url": "postgresql://u:pw@h/db"}', '{"url": "postgresql://u:***@h/db"}'),
        ("api_key=abc123 and token: 'zzz'", "api_key=*** and token: '***'"),
        ("OPENAI_API_KEY=sk-1 DB_PASSWORD=x", "OPENAI_API_KEY=*** DB_PASSWORD=***"),
        ("Authorization: Bearer abcdefghijkl", "Authorization: *** ***"),
    ],
)
def test_redact_text_masks_secrets(text: str, expected: str) -> None:
    assert redact_text(text, secrets=()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:///tmp/x.db and https://example.com/a/b?x=1",
        "user@example.com wrote 3 tokens=12 primary_key=id",
        "postgresql://postgres@127.0.0.1:5432/test",
        "docs/data/shop-1-core.sql:4:7: CREATE TABLE users",
    ],
)
def test_redact_text_keeps_what_is_not_secret(text: str) -> None:
    assert redact_text(text, secrets=()) == text


def test_secret_names() -> None:
    secret = ["api_key", "OPENAI_API_KEY", "token", "PASSWORD", "aws_secret", "X-Token"]
    plain = ["tokens", "PWD", "OLDPWD", "primary_key", "task_id", "key", "path"]
    assert [n for n in secret if not is_secret_name(n)] == []
    assert [n for n in plain if is_secret_name(n)] == []


def test_environment_secrets_are_masked_wherever_they_appear() -> None:
    env = {
        "ANTHROPIC_API_KEY": API_KEY,
        "SPARC_CHECKPOINT_URL": f"postgresql://u:{DB_PASSWORD}@h/db",
        "SHORT_TOKEN": "abc",
        "PWD": "/home/someone/project",
    }
    found = environment_secrets(env)
    assert found == {API_KEY, DB_PASSWORD}
    text = f"request failed with header x-api-key {API_KEY} ({DB_PASSWORD})"
    assert redact_text(text, secrets=found) == (
        f"request failed with header x-api-key {MASK} ({MASK})"
    )


def test_redact_data_walks_structures_and_keeps_numbers() -> None:
    data = {
        "api_key": "k-123",
        "tokens": 1200,
        "nested": [{"password": "p"}, ("postgresql://a:b@c/d",)],
        "primary_key": True,
        "empty_token": "",
    }
    assert redact_data(data, secrets=()) == {
        "api_key": MASK,
        "tokens": 1200,
        "nested": [{"password": MASK}, ("postgresql://a:***@c/d",)],
        "primary_key": True,
        "empty_token": "",
    }


def test_redact_event_in_a_structlog_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Event values, keys named like secrets and tracebacks are all cleaned."""
    monkeypatch.setenv("SOME_SERVICE_KEY", API_KEY)
    rendered: list[str] = []
    structlog.configure(
        processors=[
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=lambda *_: _Collect(rendered),
    )
    log = structlog.get_logger()
    log.info("connecting", url=f"postgresql://u:{DB_PASSWORD}@h/db", api_key="x" * 9)
    try:
        raise RuntimeError(f"auth failed for key {API_KEY}")
    except RuntimeError:
        log.exception("failed", path=Path("/srv/x"))

    joined = "\n".join(rendered)
    assert DB_PASSWORD not in joined and API_KEY not in joined and "x" * 9 not in joined
    first = json.loads(rendered[0])
    assert first["url"] == "postgresql://u:***@h/db"
    assert first["api_key"] == MASK
    assert (
        "RuntimeError: auth failed for key ***" in json.loads(rendered[1])["exception"]
    )


class _Collect:
    def __init__(self, into: list[str]) -> None:
        self._into = into

    def info(self, message: str) -> None:
        self._into.append(message)

    error = info


@given(
    user=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    password=st.from_regex(r"[A-Za-z0-9!$%^*()_+=~-]{1,24}", fullmatch=True),
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
)
def test_no_url_password_survives(user: str, password: str, host: str) -> None:
    url = f"postgresql://{user}:{password}@{host}:5432/db"
    cleaned = redact_text(f"connecting to {url} now", secrets=())
    assert cleaned == f"connecting to postgresql://{user}:***@{host}:5432/db now"


@dataclass(frozen=True)
class CliRun:
    workspace: Path
    stdout: str
    stderr: str
    events: list[dict[str, Any]]


@pytest.fixture
def secret_run(tmp_path: Path, git_env: None, pg_url: str) -> CliRun:
    """`sparc --log-format json -vv batch` on two tasks, with secrets about.

    Checkpoints go to PostgreSQL through a URL with a password, an API key is in
    the environment, and the first task's title quotes the URL as a user might
    paste it, so the commit subject logged at info level carries it too.
    """
    workspace = library_workspace(tmp_path / "library")
    url = sa.make_url(pg_url).set(password=DB_PASSWORD)
    secret_url = url.render_as_string(hide_password=False)
    task = workspace / "docs" / "backlog" / "DB-001.yaml"
    task.write_text(
        task.read_text().replace(
            "title: Create the library tables",
            f"title: Create the library tables for {secret_url}",
        ),
        encoding="utf-8",
    )
    git.Repo(workspace).git.commit("-am", "docs: point at the database")
    env = {
        **os.environ,
        "SPARC_CHECKPOINT_URL": secret_url,
        "OPENAI_API_KEY": API_KEY,
        "SPARC_LLM_API_KEY": API_KEY,
    }

    result = subprocess.run(
        [str(Path(sys.executable).with_name("sparc")), "-C", str(workspace)]
        + ["--log-format", "json", "-vv", "batch"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    events = [json.loads(line) for line in result.stderr.splitlines() if line]
    return CliRun(workspace, result.stdout, result.stderr, events)


@pytest.mark.postgres
@pytest.mark.slow
def test_every_event_of_a_task_run_names_task_phase_and_persona(
    secret_run: CliRun,
) -> None:
    """From a task's start to its end, every log line carries the context."""
    inside = False
    seen = 0
    for event in secret_run.events:
        if event["event"] == "task_started":
            inside = True
        if inside:
            assert {"task_id", "phase", "persona"} <= set(event), event
            seen += 1
        if event["event"] in ("task_completed", "task_blocked"):
            inside = False
    worked = [e for e in secret_run.events if e["event"] == "phase_worked"]
    assert [(e["task_id"], e["phase"], e["persona"]) for e in worked] == [
        ("DB-001", "refinement", "hephaestus"),
        ("DB-002", "refinement", "hephaestus"),
    ]
    assert seen > 10


@pytest.mark.postgres
@pytest.mark.slow
def test_no_secret_in_cli_logs_or_reports(secret_run: CliRun) -> None:
    """Neither the database password nor the API key is in stderr or a report."""
    assert any(e["event"] == "task_committed" for e in secret_run.events)
    runs = secret_run.workspace / ".sparc" / "runs"
    reports = [p.read_text() for p in runs.glob("*.json")]
    assert len(reports) == 2
    for text in [secret_run.stderr, secret_run.stdout, *reports]:
        assert DB_PASSWORD not in text
        assert API_KEY not in text
