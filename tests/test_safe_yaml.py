"""Tests for sparc.safe_yaml: libyaml's reading is the pure-Python one, or none.

`load_yaml` reads a document with libyaml when PyYAML has it and falls back to
the pure-Python loader for every refusal and every document the two might
read differently. These tests hold the two readings side by side: whenever
the libyaml one answers, its nodes (tags, values, styles, marks) and its value
are the pure-Python ones, and `load_yaml` always gives what the pure-Python
loader alone gives, error text, line and column included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode

from sparc import safe_yaml
from sparc.errors import InputError
from sparc.safe_yaml import MAX_YAML_DEPTH, MAX_YAML_NODES, load_yaml

pytestmark = pytest.mark.skipif(
    safe_yaml._LibyamlLoader is None, reason="PyYAML is built without libyaml"
)

CORPUS = Path(__file__).parent / "hostile"
HOSTILE_YAML = sorted(
    path
    for kind in ("task", "config", "workflow")
    for path in (CORPUS / kind).glob("*.yaml")
)
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").rglob("*.yaml"))

TASK = (
    "id: DB-001\n"
    "title: Create the core tables\n"
    "description: >\n"
    "  Users and orders,\n"
    "  normalized.\n"
    "status: NEW\n"
    "priority: high\n"
    "estimated_hours: 2.5\n"
    "depends_on: [DB-000]\n"
    "references:\n"
    "- docs/data/core.sql\n"
    "acceptance_criteria:\n"
    "  - 'Every table has a primary key'\n"
    '  - "Prices cannot go negative"\n'
    "schema: {tables: 3, since: 2024-01-31, ratio: .nan}\n"
)


def _error(message: str, line: int | None, column: int | None) -> InputError:
    return InputError(message, line=line, column=column)


def _shape(node: Node | None, seen: dict[int, int] | None = None) -> Any:
    """Everything a caller can read from a node tree, aliases as back references."""
    if node is None:
        return None
    seen = {} if seen is None else seen
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)

    start, end = node.start_mark, node.end_mark
    marks = (start.line, start.column, start.index, end.line, end.column, end.index)
    if isinstance(node, ScalarNode):
        return ("scalar", node.tag, node.value, node.style, marks)
    if isinstance(node, MappingNode):
        pairs = [(_shape(k, seen), _shape(v, seen)) for k, v in node.value]
        return ("mapping", node.tag, node.flow_style, marks, pairs)
    items = [_shape(item, seen) for item in node.value]
    return ("sequence", node.tag, node.flow_style, marks, items)


def _in_python(text: str) -> tuple[str, Any, str]:
    """The pure-Python loader's outcome: ("ok", nodes, value) or the error."""
    try:
        root, data = safe_yaml._load_with_python(
            text,
            _error,
            max_depth=MAX_YAML_DEPTH,
            max_nodes=MAX_YAML_NODES,
            prefix="invalid YAML: ",
            with_context=True,
        )
    except InputError as exc:
        return ("error", (exc.line, exc.column), str(exc))
    return ("ok", _shape(root), repr(data))


def _in_libyaml(text: str) -> tuple[str, Any, str] | None:
    loaded = safe_yaml._load_with_libyaml(
        text, max_depth=MAX_YAML_DEPTH, max_nodes=MAX_YAML_NODES
    )
    if loaded is None:
        return None
    return ("ok", _shape(loaded[0]), repr(loaded[1]))


def _through_load_yaml(text: str) -> tuple[str, Any, str]:
    try:
        root, data = load_yaml(text, _error)
    except InputError as exc:
        return ("error", (exc.line, exc.column), str(exc))
    return ("ok", _shape(root), repr(data))


def assert_same_reading(text: str) -> bool:
    """Both readings agree; returns whether libyaml's answered at all."""
    expected = _in_python(text)
    fast = _in_libyaml(text)
    if fast is not None:
        assert fast == expected, text
    assert _through_load_yaml(text) == expected, text
    return fast is not None


@pytest.mark.parametrize(
    "path", HOSTILE_YAML, ids=lambda path: f"{path.parent.name}/{path.stem}"
)
def test_hostile_yaml_reads_the_same(path: Path) -> None:
    """Every hostile YAML input: same value or same error, line and column."""
    assert_same_reading(path.read_bytes().decode("utf-8", errors="replace"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_files_are_read_by_libyaml(path: Path) -> None:
    """The shipped examples take the libyaml reading, and it is the same."""
    assert assert_same_reading(path.read_text(encoding="utf-8"))


def test_ordinary_task_file_is_read_by_libyaml() -> None:
    """A task file with block, flow, quoted and folded values takes libyaml."""
    assert assert_same_reading(TASK)
    assert assert_same_reading(TASK.replace("\n", "\r\n"))
    assert assert_same_reading(TASK.rstrip("\n"))


@pytest.mark.parametrize(
    "text",
    [
        "a: b",
        "a:",
        "- - ",
        "? a",
        "--- ",
        "a:\n- b\n- c\n",
        "a:\n  b:\n  - c\nd: [e]\n",
        "a: &x [1, 2]\nb: *x\n",
        "a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n",
        "=: 1\n",
        'é: [ü, 😀]\nb: "\\u00e9\\x41"\n',
        "a: |-\n  text\n\n",
        "a: >2\n   indented\n",
    ],
)
def test_what_libyaml_reads_is_made_the_same(text: str) -> None:
    """Plain styles, unindented lists, ends without a line break, merges."""
    assert assert_same_reading(text)


@pytest.mark.parametrize(
    "text",
    [
        # libyaml takes a tab as space between tokens
        "a:\tb\n",
        "a: [1,\t2]\n",
        # libyaml reads `?` inside a flow scalar as part of it
        "[a?b]\n",
        "{a: b?}\n",
        "[a\n?b]\n",
        # libyaml ends a tag at a flow indicator
        "[!!str,x]\n",
        "[!a,b]\n",
        # libyaml skips a byte order mark at any line start
        "a: 1\n\ufeffb: 2\n",
        "\ufeffa: 1\n",
        # libyaml places empty values inside flow collections elsewhere
        "a: [b: ]\n",
        "{a: }\n",
        # libyaml accepts a comment right after a block scalar indicator
        "a: |# c\n  x\n",
        # directives are checked differently
        "%YAML 1.3\n---\na: 1\n",
        # explicit tags and other properties where positions would differ
        "a: !!str 1\n",
        "a: &x\n- b\n",
        # the pure-Python reader owns every refusal and its wording
        "a: 1\na: 2\n",
        "a: &a [*a]\n",
        "a: " + "[" * 40 + "]" * 40 + "\n",
        "a: *nothing\n",
        "a: [1, 2\n",
        "a: b\x07\n",
    ],
)
def test_libyaml_declines_what_it_might_read_differently(text: str) -> None:
    """Documents the two readers part on, and refusals, go to the pure-Python one."""
    assert _in_libyaml(text) is None
    assert_same_reading(text)


def test_alias_expansion_is_counted_once_per_node() -> None:
    """An alias bomb is refused without expanding it, with the same message."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 6)]
    text = "\n".join(lines) + "\n"

    assert _in_libyaml(text) is None
    outcome = _through_load_yaml(text)
    assert outcome[0] == "error"
    assert "more than 100000 values" in outcome[2]


def test_bounds_hold_for_smaller_limits() -> None:
    """The libyaml reading keeps the caller's own depth and size limits."""
    text = "a: [[1, 2], [3, 4]]\n"
    assert safe_yaml._load_with_libyaml(text, max_depth=3, max_nodes=9) is not None
    assert safe_yaml._load_with_libyaml(text, max_depth=2, max_nodes=9) is None
    assert safe_yaml._load_with_libyaml(text, max_depth=3, max_nodes=8) is None

    with pytest.raises(InputError, match="nesting deeper than 2 levels"):
        load_yaml(text, _error, max_depth=2)
    with pytest.raises(InputError, match="more than 8 values"):
        load_yaml(text, _error, max_nodes=8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k: !!int \n", "cannot read this value: '' is not a valid int"),
        ("k: !!float \n", "cannot read this value: '' is not a valid float"),
        ("k: !!bool maybe\n", "cannot read this value: 'maybe' is not a valid bool"),
        (
            "k: !!timestamp 2001-13\n",
            "cannot read this value: '2001-13' is not a valid timestamp",
        ),
    ],
)
def test_bad_tagged_scalar_is_an_input_error(text: str, message: str) -> None:
    """A tagged value the constructor trips over is refused at its position."""
    with pytest.raises(InputError) as caught:
        load_yaml(text, _error)

    assert caught.value.message == f"invalid YAML: {message}"
    assert (caught.value.line, caught.value.column) == (1, 4)


@pytest.mark.parametrize("escape", ["\\U0a001000", "\\Ua0001000", "\\UFFFFFFFF"])
def test_escape_naming_no_character_is_an_input_error(escape: str) -> None:
    """`\\U` with eight hex digits beyond Unicode is refused at its position."""
    with pytest.raises(InputError) as caught:
        load_yaml(f'k: "ab{escape}"\n', _error)

    assert caught.value.message == (
        "invalid YAML: while scanning a double-quoted scalar (line 1): found "
        f"escape {escape}, which names no Unicode character"
    )
    assert (caught.value.line, caught.value.column) == (1, 9)


def test_without_libyaml_the_python_loader_reads_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PyYAML without libyaml reads with the pure-Python loader."""
    monkeypatch.setattr(safe_yaml, "_LibyamlLoader", None)

    assert safe_yaml._load_with_libyaml(TASK, max_depth=32, max_nodes=100) is None
    assert _through_load_yaml(TASK) == _in_python(TASK)


# Generated documents: fragments thrown together, and dumped values, cut.

_FRAGMENTS = [
    "a", "key", "1", "0x1F", "1.5", ".nan", "~", "true", "2001-12-14", "=", "<<",
    ":", ": ", " ", "\n", "\n  ", "\n- ", "- ", "-", "?", "? ", ",", "[", "]", "{",
    "}", "#", " #", "'", '"', "|", ">", "|-", ">+", "!", "!!str ", "&a ", "*a",
    "<<: ", "%", "---", "...", "\t", "\r\n", "\r", "\\", "\\x41", "é", "😀",
    "\ufeff", "\x85", "\u2028", "\x07", "@", "`", "*", "&", "a: b\n", "k: [x, y]\n",
    "k: {x: y}\n", "k: |\n  text\n", "? a\n: b\n", "- a\n", "k:\n- x\n",
]  # fmt: skip
_SCALARS = st.one_of(
    st.text(alphabet="ab :-?,[]{}#&*!|>'\"%@`\\é\n\r\t~=<.01", max_size=8),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["yes", "0o17", "1_000", "1:30", "2001-12-14", "<<", "="]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=10,
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Fragment soup, or a dumped value in some style, maybe cut or patched."""
    if draw(st.booleans()):
        return "".join(draw(st.lists(st.sampled_from(_FRAGMENTS), max_size=25)))

    text = yaml.safe_dump(
        draw(_VALUES),
        default_flow_style=draw(st.sampled_from([None, True, False])),
        default_style=draw(st.sampled_from([None, None, "'", '"', "|", ">"])),
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([10, 80])),
        sort_keys=False,
    )
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    cut = draw(st.integers(min_value=0, max_value=len(text)))
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        text = text[:cut] + draw(st.sampled_from(_FRAGMENTS)) + text[cut:]
    elif draw(st.integers(min_value=0, max_value=3)) == 0:
        text = text[:cut]
    return text


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=documents())
def test_generated_documents_read_the_same(text: str) -> None:
    """Any generated document: libyaml's reading, when given, is the Python one."""
    assert_same_reading(text)
