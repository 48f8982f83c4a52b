"""Hostile input: every loader refuses a bad file with the exact message expected.

The corpus lives in `tests/hostile/<kind>/<name>.<ext>`; beside each input,
`<name>.expect` holds the expected outcome: the exact error text, or `re:`
and a regular expression the text must match, or `ok:` and a summary of what
was read when the input is hostile but harmless (a table named like an SQL
injection must come out as a correctly quoted name, never as code).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pglast import parser as pg_parser
from sqlalchemy.orm import Mapper

from sparc.agents.hephaestus.ddl import parse_file
from sparc.agents.hephaestus.models_render import render_models
from sparc.agents.hephaestus.spec_check import spec_from_json
from sparc.backlog import Backlog, load_task
from sparc.config import load_config
from sparc.errors import SparcError, paths_relative_to
from sparc.persona import load_card
from sparc.workflow import load_workflow

CORPUS = Path(__file__).parent / "hostile"
SUFFIXES = {
    "task": (".yaml",),
    "card": (".md",),
    "workflow": (".yaml",),
    "ddl": (".sql", ".md", ".txt"),
    "config": (".yaml",),
    "llm": (".json",),
}
# Inputs that expose a flaw in a module this suite does not own; each entry
# names the flaw so the test turns green (and strict xfail red) once fixed.
KNOWN_FLAWS: dict[str, str] = {}
_imports = itertools.count()


def corpus() -> list[Path]:
    """Every input of the corpus, in a stable order."""
    return sorted(
        path
        for kind, suffixes in SUFFIXES.items()
        for path in (CORPUS / kind).iterdir()
        if path.suffix in suffixes
    )


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _params() -> list[object]:
    params = []
    for path in corpus():
        marks = []
        if _case_id(path) in KNOWN_FLAWS:
            marks.append(
                pytest.mark.xfail(strict=True, reason=KNOWN_FLAWS[_case_id(path)])
            )
        params.append(pytest.param(path, id=_case_id(path), marks=marks))
    return params


# -- one reader per kind: returns the error text or "ok:" and a summary


def _read_task(path: Path, scratch: Path) -> str:
    with paths_relative_to(path.parent):
        first = _outcome(lambda: load_task(path))

    # the backlog reads the same file the same way
    backlog = scratch / "docs" / "backlog"
    backlog.mkdir(parents=True)
    shutil.copyfile(path, backlog / path.name)
    with paths_relative_to(backlog):
        second = _outcome(lambda: Backlog.load(backlog))
    assert second == first
    return first


def _read_card(path: Path, scratch: Path) -> str:
    with paths_relative_to(path.parent):
        return _outcome(lambda: load_card(path))


def _read_workflow(path: Path, scratch: Path) -> str:
    with paths_relative_to(path.parent):
        return _outcome(lambda: load_workflow(path))


def _read_ddl(path: Path, scratch: Path) -> str:
    def summary() -> str:
        spec = parse_file(path, display=path.name).spec
        tables = [
            f"{t.name}: {', '.join(c.name for c in t.columns)}" for t in spec.tables
        ]
        return "\n".join(["ok:", *tables])

    return _outcome(summary)


def _read_config(path: Path, scratch: Path) -> str:
    (scratch / ".sparc").mkdir()
    shutil.copyfile(path, scratch / ".sparc" / "config.yaml")
    return _outcome(lambda: load_config(scratch))


def _read_llm(path: Path, scratch: Path) -> str:
    def summary() -> str:
        spec = spec_from_json(path.read_bytes(), source=path.name)
        module = scratch / "models.py"
        module.write_text(render_models(spec, project="hostile"), encoding="utf-8")
        with _imported(module) as imported:
            mappers: list[Mapper[object]] = sorted(
                imported.Base.registry.mappers, key=lambda m: m.class_.__name__
            )
            lines = [
                f"{mapper.local_table.name} -> {mapper.class_.__name__}: "
                + ", ".join(
                    f"{attribute.key}={attribute.columns[0].name}"
                    for attribute in mapper.column_attrs
                )
                for mapper in mappers
            ]
        return "\n".join(["ok:", *lines])

    return _outcome(summary)


READERS: dict[str, Callable[[Path, Path], str]] = {
    "task": _read_task,
    "card": _read_card,
    "workflow": _read_workflow,
    "ddl": _read_ddl,
    "config": _read_config,
    "llm": _read_llm,
}


def _outcome(read: Callable[[], object]) -> str:
    try:
        result = read()
    except SparcError as error:
        assert str(error).strip(), "an error must say what is wrong"
        return str(error)
    return result if isinstance(result, str) else "ok:"


@contextmanager
def _imported(path: Path) -> Iterator[object]:
    """Import a generated module in its own folder, as the working directory."""
    name = f"_hostile_models_{next(_imports)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    cwd = Path.cwd()
    os.chdir(path.parent)
    try:
        spec.loader.exec_module(module)
        module.Base.registry.configure()
        yield module
    finally:
        os.chdir(cwd)
        sys.modules.pop(name, None)


def outcome_of(path: Path, scratch: Path) -> str:
    """What reading the corpus input at `path` gives."""
    return READERS[path.parent.name](path, scratch)


def test_corpus_is_large_and_complete() -> None:
    """At least 60 inputs over every kind, each with its expectation."""
    inputs = corpus()
    assert len(inputs) >= 60
    assert {path.parent.name for path in inputs} == set(SUFFIXES)
    for path in inputs:
        assert path.with_suffix(".expect").is_file(), f"{path} has no .expect"
    for expect in CORPUS.glob("*/*.expect"):
        assert any(p.with_suffix(".expect") == expect for p in inputs), expect


@pytest.mark.parametrize("path", _params())
def test_hostile_input(path: Path, tmp_path: Path) -> None:
    """The loader gives exactly the expected error (or harmless result)."""
    expected = path.with_suffix(".expect").read_text(encoding="utf-8").rstrip("\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    actual = outcome_of(path, scratch)

    if expected.startswith("re:"):
        assert re.fullmatch(expected.removeprefix("re:").strip(), actual), actual
    else:
        assert actual == expected
    # nothing escaped into the working folder of a generated module
    assert {p.name for p in scratch.iterdir()} <= {
        "models.py",
        "__pycache__",
        ".sparc",
        "docs",
    }
    assert not Path("/tmp/pwned").exists()


# -- inputs too large to keep in the corpus, and files that are not files


def _oversize_cases() -> list[object]:
    huge_yaml = "# padding\n" * 200_000
    return [
        pytest.param(
            "docs/backlog/BIG.yaml",
            "id: BIG\ntitle: big\n" + huge_yaml,
            lambda ws: load_task(ws / "docs/backlog/BIG.yaml"),
            "docs/backlog/BIG.yaml: file is larger than 1 MiB; a task file must "
            "be smaller",
            id="task",
        ),
        pytest.param(
            "card.md",
            "# A (b)\n" + "x" * 300_000,
            lambda ws: load_card(ws / "card.md"),
            "card.md: the card is 300008 bytes, over the 262144 byte limit; keep "
            "persona cards short",
            id="card",
        ),
        pytest.param(
            "flow.yaml",
            "name: x\n" + "#" * 70_000,
            lambda ws: load_workflow(ws / "flow.yaml"),
            "flow.yaml: the workflow file is 70008 bytes, over the 65536 byte "
            "limit; a workflow lists at most six phases",
            id="workflow",
        ),
        pytest.param(
            ".sparc/config.yaml",
            "project: shop\n" + huge_yaml,
            lambda ws: load_config(ws),
            ".sparc/config.yaml: file is larger than 256 KiB; keep the "
            "configuration short",
            id="config",
        ),
        pytest.param(
            "schema.sql",
            "-- padding\n" * 1_600_000,
            lambda ws: parse_file(ws / "schema.sql", display="schema.sql"),
            "schema.sql: the file is larger than 16 MiB; split the schema into "
            "several files",
            id="ddl",
        ),
        pytest.param(
            "spec.json",
            '{"tables": []' + " " * 1_100_000 + "}",
            lambda ws: spec_from_json((ws / "spec.json").read_text(), source="spec"),
            "spec: the schema is 1100014 bytes, over the 1048576 byte limit; send "
            "a smaller schema",
            id="llm",
        ),
    ]


@pytest.mark.parametrize(("relative", "text", "read", "message"), _oversize_cases())
def test_oversized_input_is_refused(
    tmp_path: Path,
    relative: str,
    text: str,
    read: Callable[[Path], object],
    message: str,
) -> None:
    """Every loader has a size limit and says so."""
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

    with paths_relative_to(tmp_path), pytest.raises(SparcError) as caught:
        read(tmp_path)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("relative", "read", "message"),
    [
        pytest.param(
            "docs/backlog/PIPE.yaml",
            lambda ws: load_task(ws / "docs/backlog/PIPE.yaml"),
            "docs/backlog/PIPE.yaml: not a regular file; a task file must be a "
            "YAML file",
            id="task",
        ),
        pytest.param(
            "card.md",
            lambda ws: load_card(ws / "card.md"),
            "card.md: not a regular file; a persona card must be a file",
            id="card",
        ),
        pytest.param(
            "flow.yaml",
            lambda ws: load_workflow(ws / "flow.yaml"),
            "flow.yaml: not a regular file; a workflow file must be a file",
            id="workflow",
        ),
        pytest.param(
            ".sparc/config.yaml",
            load_config,
            ".sparc/config.yaml: not a regular file; the configuration must be a "
            "YAML file",
            id="config",
        ),
        pytest.param(
            "schema.sql",
            lambda ws: parse_file(ws / "schema.sql", display="schema.sql"),
            "schema.sql: not a regular file; reference a .sql or .md file",
            id="ddl",
        ),
    ],
)
def test_a_named_pipe_is_refused_without_blocking(
    tmp_path: Path, relative: str, read: Callable[[Path], object], message: str
) -> None:
    """Reading a FIFO would wait forever for a writer; it is refused instead."""
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)

    with paths_relative_to(tmp_path), pytest.raises(SparcError) as caught:
        read(tmp_path)

    assert str(caught.value) == message


def test_a_task_file_linked_from_outside_is_refused(tmp_path: Path) -> None:
    """A symlinked task file is neither read nor replaced by a status update."""
    outside = tmp_path / "outside.yaml"
    outside.write_text("id: LINK\ntitle: lives elsewhere\n")
    backlog = tmp_path / "ws" / "docs" / "backlog"
    backlog.mkdir(parents=True)
    (backlog / "LINK.yaml").symlink_to(outside)

    with paths_relative_to(tmp_path / "ws"), pytest.raises(SparcError) as caught:
        Backlog.load(backlog)

    assert str(caught.value) == (
        "docs/backlog/LINK.yaml: is a symbolic link; a task file must be a regular "
        "file in the backlog folder"
    )


@pytest.mark.parametrize("folder", ["docs/backlog", ".sparc"])
def test_a_workspace_whose_folders_lead_outside_is_refused(
    tmp_path: Path, folder: str
) -> None:
    """The backlog and state folders are written to; a link out is refused."""
    from sparc.workspace import Workspace

    outside = tmp_path / "outside"
    outside.mkdir()
    link = tmp_path / "ws" / folder
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)

    with pytest.raises(SparcError) as caught:
        Workspace.at(tmp_path / "ws")

    assert str(caught.value) == (
        f"{folder}: {folder!r} leads outside the workspace through a symlink"
    )
    assert caught.value.exit_code == 2


def test_dot_dot_that_stays_inside_is_the_same_path(tmp_path: Path) -> None:
    from sparc.workspace import Workspace

    (tmp_path / "docs" / "real").mkdir(parents=True)
    (tmp_path / "docs" / "link").symlink_to(tmp_path / "docs" / "real")
    workspace = Workspace.at(tmp_path)

    resolved = workspace.resolve("docs/../docs/x.sql", field="ref")
    assert resolved == workspace.root / "docs" / "x.sql"

    # from a link, '..' would climb from wherever the link points
    with pytest.raises(SparcError, match="climbs out of the workspace"):
        workspace.resolve("docs/link/../x.sql", field="ref")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("../x.sql", "ref: '../x.sql' climbs out of the workspace with '..'"),
        ("docs/../../x", "ref: 'docs/../../x' climbs out of the workspace with '..'"),
        (
            "/etc/passwd",
            "ref: '/etc/passwd' is absolute; give a path inside the workspace",
        ),
        ("C:/x.sql", "ref: 'C:/x.sql' is absolute; give a path inside the workspace"),
        ("a\\b.sql", "ref: 'a\\\\b.sql' is not a portable path; use '/' separators"),
        ("a\x00.sql", "ref: 'a\\x00.sql' is not a portable path; use '/' separators"),
        (
            "docs/x.sql\n",
            "ref: 'docs/x.sql\\n' has a name that is not portable: 'x.sql\\n'",
        ),
        (
            "docs/con.txt",
            "ref: 'docs/con.txt' has a name that is not portable: 'con.txt'",
        ),
        ("docs/a:b", "ref: 'docs/a:b' has a name that is not portable: 'a:b'"),
        ("  ", "ref: empty path"),
        (
            "link-out/x.sql",
            "ref: 'link-out/x.sql' leads outside the workspace through a symlink",
        ),
        (
            "dangling.sql",
            "ref: 'dangling.sql' leads outside the workspace through a symlink",
        ),
        ("null.sql", "ref: 'null.sql' leads outside the workspace through a symlink"),
        ("pipe.sql", "ref: 'pipe.sql' is not a regular file or folder"),
    ],
)
def test_workspace_paths_stay_inside(tmp_path: Path, value: str, message: str) -> None:
    """Every way out of the workspace is refused with the offending value named."""
    from sparc.workspace import Workspace

    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "ws"
    root.mkdir()
    (root / "link-out").symlink_to(outside, target_is_directory=True)
    (root / "dangling.sql").symlink_to(outside / "missing.sql")
    (root / "null.sql").symlink_to("/dev/null")
    os.mkfifo(root / "pipe.sql")
    workspace = Workspace.at(root)

    with pytest.raises(SparcError) as caught:
        workspace.resolve(value, field="ref")

    assert str(caught.value) == message
    assert caught.value.exit_code == 2


def _quoted_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def test_a_name_with_a_line_break_never_leaves_a_sql_comment() -> None:
    """Even a spec that skipped the checks cannot turn a name into a statement."""
    from sparc.agents.hephaestus.scripts import (
        render_performance_queries,
        render_seed_sql,
    )
    from sparc.agents.hephaestus.spec import SchemaSpec

    evil = "x\nDROP TABLE users; --"
    spec = SchemaSpec.model_validate(
        {
            "tables": [
                {
                    "name": "parent",
                    "columns": [{"name": "id", "type": {"kind": "integer"}}],
                    "primary_key": {"columns": ["id"]},
                },
                {
                    "name": evil,
                    "columns": [
                        {"name": "id", "type": {"kind": "integer"}, "nullable": False},
                        {"name": "parent_id", "type": {"kind": "integer"}},
                    ],
                    "primary_key": {"columns": ["id"]},
                    "foreign_keys": [
                        {
                            "columns": ["parent_id"],
                            "ref_table": "parent",
                            "ref_columns": ["id"],
                        }
                    ],
                },
            ]
        }
    )

    for sql in (render_seed_sql(spec), render_performance_queries(spec, [])):
        # PostgreSQL's own lexer: DROP inside a comment or a quoted name is not
        # a token of its own
        keywords = {token.name for token in pg_parser.scan(sql)}
        assert "DROP" not in keywords
        assert evil in sql or _quoted_name(evil) in sql
