"""Generated hostile input: task files and DDL thrown at the loaders.

Each loader must either succeed or raise a `SparcError` with a message; any
other exception is a bug. Nothing may be written outside the workspace: the
folder around it is compared byte for byte before and after every example.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sparc.agents.hephaestus.ddl import parse_file, parse_sql
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.backlog import Backlog, TaskStatus, load_task, set_status
from sparc.errors import SparcError

pytestmark = pytest.mark.slow

# Stable in CI: the same examples every run. Examples are built from large
# nested strategies on purpose, so the data-size health check does not apply.
FUZZ = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- task files

_HOSTILE_TEXT = st.sampled_from(
    [
        "../outside.sql",
        "/etc/passwd",
        "C:/Windows/win.ini",
        "docs\\data.sql",
        "docs/\x00.sql",
        "docs/../../x",
        "CON",
        "!!python/object/apply:os.system ['x']",
        "$(rm -rf /)",
        "; DROP TABLE t; --",
        "\u202e\u2028",
        "",
        " ",
        "*alias",
        "&anchor",
    ]
)
_TEXT = st.one_of(_HOSTILE_TEXT, st.text(max_size=30))
_SCALAR = st.one_of(
    _TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = st.sampled_from(
    [
        "title",
        "description",
        "specialist",
        "status",
        "priority",
        "estimated_hours",
        "depends_on",
        "references",
        "acceptance_criteria",
        "phases",
        "schema",
        "blocked_reason",
        "workflow",
        "require_approval",
        "unknown",
    ]
)
_FIELD_VALUES = {
    "status": st.one_of(st.sampled_from([s.value for s in TaskStatus]), _VALUE),
    "references": st.lists(_TEXT, max_size=4),
    "depends_on": st.lists(st.sampled_from(["T-1", "T-2", "../T", "t-1"]), max_size=3),
    "phases": st.lists(st.sampled_from(["refinement", "planning", "X"]), max_size=3),
}


_VALID = {
    "description": st.text(max_size=40),
    "status": st.sampled_from([s.value for s in TaskStatus]),
    "priority": st.sampled_from(["critical", "high", "medium", "low"]),
    "estimated_hours": st.floats(min_value=0, max_value=1e6),
    "references": st.lists(
        st.sampled_from(["docs/a.sql", "docs/b c.md", "x.sql"]), unique=True
    ),
    "acceptance_criteria": st.lists(st.text(max_size=20), max_size=3),
    "blocked_reason": st.text(max_size=30),
    "schema": st.dictionaries(st.text(max_size=5), _SCALAR, max_size=3),
}


@st.composite
def task_documents(draw: st.DrawFn) -> str:
    """A task file: mostly well-formed YAML with hostile values, or raw text."""
    shape = draw(st.integers(min_value=0, max_value=9))
    if shape == 0:
        return draw(st.text(max_size=200))
    if shape == 1:
        return draw(st.binary(max_size=200)).decode("latin-1")

    task: dict[str, object] = {"id": draw(st.sampled_from(["T-1", "T-2", "x/y"]))}
    if draw(st.booleans()) or shape > 3:
        task["title"] = draw(_TEXT)
    if shape >= 6:
        # plausible files, so that status updates get exercised too
        task["id"] = "T-1"
        task["title"] = draw(st.text(min_size=1, max_size=30).filter(str.strip))
        for field in draw(st.lists(st.sampled_from(list(_VALID)), unique=True)):
            task[field] = draw(_VALID[field])
    else:
        for field in draw(st.lists(_FIELDS, max_size=6, unique=True)):
            task[field] = draw(_FIELD_VALUES.get(field, _VALUE))
    text = yaml.safe_dump(task, allow_unicode=draw(st.booleans()), sort_keys=False)
    if shape == 2:
        # cut the document anywhere: a half-written file
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    if shape == 3:
        text += draw(st.sampled_from(["title: twice\n", "\t- x\n", "? [a]\n: b\n"]))
    return text


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        path.relative_to(root).as_posix(): (
            path.read_bytes() if path.is_file() and not path.is_symlink() else None
        )
        for path in sorted(root.rglob("*"))
    }


@FUZZ
@given(documents=st.lists(task_documents(), min_size=1, max_size=2))
def test_backlog_load_refuses_or_accepts_generated_task_files(
    documents: list[str],
) -> None:
    """Backlog.load and set_status: success or a SparcError, no write outside."""
    with tempfile.TemporaryDirectory(prefix="sparc-fuzz-") as scratch:
        around = Path(scratch)
        (around / "outside.sql").write_text("CREATE TABLE secret (id int);\n")
        backlog = around / "ws" / "docs" / "backlog"
        backlog.mkdir(parents=True)
        for number, document in enumerate(documents, start=1):
            (backlog / f"T-{number}.yaml").write_text(document, encoding="utf-8")
        before = _snapshot(around)

        try:
            loaded = Backlog.load(backlog)
        except SparcError as error:
            assert str(error).strip()
            assert _snapshot(around) == before
            event("refused")
            return

        event("loaded")
        assert _snapshot(around) == before
        for task_file in loaded.tasks:
            _update_status(task_file.path, around, _snapshot(around))


def _update_status(path: Path, around: Path, before: dict[str, bytes | None]) -> None:
    """A status update changes only its own file, and only its status."""
    task = load_task(path).task
    try:
        set_status(path, TaskStatus.BLOCKED, reason="fuzzed \x00 \u2028 ' \" reason")
    except SparcError as error:
        assert str(error).strip()
        assert _snapshot(around) == before
        return

    after = _snapshot(around)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed <= {path.relative_to(around).as_posix()}
    assert set(after) == set(before)
    updated = load_task(path).task
    assert updated.status is TaskStatus.BLOCKED
    assert updated.model_dump(exclude={"status", "blocked_reason"}) == task.model_dump(
        exclude={"status", "blocked_reason"}
    )


# -- DDL

_IDENTIFIER = st.one_of(
    st.sampled_from(["t", "orders", "class", "import", "select", "x y", 'q"t', "é"]),
    st.text(min_size=1, max_size=12),
)
_TYPES = st.sampled_from(
    [
        "int",
        "bigint",
        "serial",
        "numeric(10,2)",
        "numeric(-1)",
        "varchar(0)",
        "text[][]",
        "timestamptz",
        "mood",
        "unknown_type",
        "int4range",
        "double precision",
        "bit(3)",
    ]
)
_CONSTRAINTS = st.sampled_from(
    [
        "",
        " NOT NULL",
        " PRIMARY KEY",
        " UNIQUE",
        " DEFAULT 0",
        " DEFAULT 'x'",
        " DEFAULT now()",
        " CHECK (a > 0)",
        " REFERENCES t(a)",
        " REFERENCES nowhere(x) ON DELETE CASCADE",
        " GENERATED ALWAYS AS IDENTITY",
        " DEFAULT nextval('s')",
    ]
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@st.composite
def ddl_scripts(draw: st.DrawFn) -> str:
    """A DDL script of table, index, enum and alter statements, or raw text."""
    if draw(st.integers(min_value=0, max_value=7)) == 0:
        return draw(st.text(max_size=300))

    names = draw(st.lists(_IDENTIFIER, min_size=1, max_size=3))
    statements = []
    for name in names:
        columns = [
            f"{_quoted(draw(_IDENTIFIER))} {draw(_TYPES)}{draw(_CONSTRAINTS)}"
            for _ in range(draw(st.integers(min_value=0, max_value=4)))
        ]
        statements.append(f"CREATE TABLE {_quoted(name)} ({', '.join(columns)})")
    extra = st.sampled_from(
        [
            "CREATE TYPE mood AS ENUM ('a', 'b', 'a')",
            f"CREATE INDEX i ON {_quoted(names[0])} (a)",
            f"CREATE UNIQUE INDEX ON {_quoted(names[-1])} (lower(b)) WHERE a > 0",
            f"ALTER TABLE {_quoted(names[0])} ADD COLUMN z int",
            f"ALTER TABLE {_quoted(names[0])} DROP COLUMN a",
            f"ALTER TABLE {_quoted(names[-1])} ADD PRIMARY KEY (a)",
            f"ALTER TABLE {_quoted(names[0])} RENAME TO {_quoted(names[-1])}",
            f"DROP TABLE {_quoted(names[-1])}",
            "CREATE SEQUENCE s OWNED BY t.a",
            "CREATE VIEW v AS SELECT 1",
            "COMMENT ON TABLE t IS 'x'",
            "CREATE DOMAIN d AS int CHECK (VALUE > 0)",
            "SELECT * FROM t WHERE a = :value",
            "COPY t FROM PROGRAM 'x'",
            "DO $$ BEGIN END $$",
        ]
    )
    statements += draw(st.lists(extra, max_size=4))
    script = ";\n".join(statements) + ";\n"
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=0, max_value=len(script)))
        script = script[:cut] + draw(st.text(max_size=5)) + script[cut:]
    return script


@FUZZ
@given(script=ddl_scripts())
def test_parse_sql_refuses_or_accepts_generated_ddl(script: str) -> None:
    """parse_sql and parse_file: a SchemaSpec or a DDLError, no write anywhere."""
    with tempfile.TemporaryDirectory(prefix="sparc-fuzz-") as scratch:
        around = Path(scratch)
        path = around / "ws" / "schema.sql"
        path.parent.mkdir()
        path.write_text(script, encoding="utf-8")
        before = _snapshot(around)

        outcomes = []
        for read in (
            lambda: parse_sql(script, source="schema.sql"),
            lambda: parse_file(path, display="schema.sql"),
        ):
            try:
                parsed = read()
            except SparcError as error:
                assert str(error).startswith("schema.sql")
                outcomes.append(str(error))
            else:
                assert isinstance(parsed.spec, SchemaSpec)
                outcomes.append(parsed.spec)

        assert _snapshot(around) == before
        assert outcomes[0] == outcomes[1]
        event("parsed" if isinstance(outcomes[0], SchemaSpec) else "refused")


# -- persona cards, workflow files and the configuration

_CARD_LINES = st.sampled_from(
    [
        "# 🔨 Tess (Test Engineer)",
        "# Tess",
        "### 0. Initialization",
        '"Ready."',
        "### 1. Core Responsibility",
        "Tests things.",
        "### 2. SPARC Phase Ownership",
        "| Phase | Primary | Support | Deliverable |",
        "|-------|---------|---------|-------------|",
        "| Specification | ✗ | ✓ | Review |",
        "| Pseudocode | ✗ | ✓ | Review |",
        "| Architecture | ✗ | ✓ | — |",
        "| Planning | ✗ | ✗ | — |",
        "| Refinement | ✓ | ✗ | Code |",
        "| Completion | ✗ | ✓ | Review |",
        "| Completion | âœ“ | âœ— | \\| |",
        "```",
        "## " + " #" * 40,
        "",
    ]
)


@FUZZ
@given(
    lines=st.lists(st.one_of(_CARD_LINES, st.text(max_size=40)), max_size=30),
    workflow=st.one_of(task_documents(), st.text(max_size=100)),
)
def test_cards_workflows_and_config_refuse_or_accept(
    lines: list[str], workflow: str
) -> None:
    """load_card, load_workflow and load_config: success or a SparcError."""
    from sparc.config import load_config
    from sparc.persona import load_card
    from sparc.workflow import load_workflow

    with tempfile.TemporaryDirectory(prefix="sparc-fuzz-") as scratch:
        around = Path(scratch)
        card = around / "tess.md"
        card.write_text("\n".join(lines), encoding="utf-8")
        flow = around / "flow.yaml"
        flow.write_text(workflow, encoding="utf-8")
        (around / ".sparc").mkdir()
        (around / ".sparc" / "config.yaml").write_text(workflow, encoding="utf-8")
        before = _snapshot(around)

        for read in (
            lambda: load_card(card),
            lambda: load_workflow(flow),
            lambda: load_config(around),
        ):
            try:
                read()
            except SparcError as error:
                assert str(error).strip()
        assert _snapshot(around) == before
