"""YAML read safely: no objects built, bounded nesting and size, no repeated keys.

Task files, workflow files and the workspace configuration come from outside.
They are read with PyYAML's safe constructors only, and the composer refuses
documents that nest too deep (which would exhaust Python's recursion limit),
aliases that expand into huge values, and mappings that repeat a key (where
the last value would silently win).

When PyYAML has its libyaml extension, a document is first read by libyaml and
checked against the same bounds; anything libyaml and the pure-Python reader
might read differently, and every refusal, is read again by the pure-Python
loader, which alone words the errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.scanner import ScannerError

from sparc.errors import InputError

__all__ = ["MAX_YAML_DEPTH", "MAX_YAML_NODES", "load_yaml"]

MAX_YAML_DEPTH = 32
# Aliases let a small file expand into a huge value; this bounds the expansion.
MAX_YAML_NODES = 100_000

# Builds the caller's error from a message and a 1-based line and column.
ErrorFactory = Callable[[str, int | None, int | None], InputError]

try:
    from yaml import CSafeLoader as _LibyamlLoader
except ImportError:  # PyYAML built without libyaml
    _LibyamlLoader = None

# Where libyaml and the pure-Python reader part ways: libyaml takes a tab as
# space between tokens and a byte order mark at any line start, counts marks
# from after a leading byte order mark, and checks directives differently.
# Such documents, and those with the rarer line breaks, go to the pure-Python
# loader.
_LIBYAML_MAY_DIFFER = re.compile(r"[\t\ufeff\x85\u2028\u2029]")
_DIRECTIVE = re.compile(r"(?:\A|[\r\n])%")
# A block scalar header both read alike: libyaml also takes `|#...`.
_BLOCK_SCALAR_HEADER = re.compile(r"[|>](?:[+-][1-9]?|[1-9][+-]?)?(?=[ \r\n]|\Z)")


def load_yaml(
    text: str,
    error: ErrorFactory,
    *,
    max_depth: int = MAX_YAML_DEPTH,
    max_nodes: int = MAX_YAML_NODES,
    prefix: str = "invalid YAML: ",
    with_context: bool = True,
) -> tuple[Node | None, Any]:
    """Compose and construct one YAML document with the safe constructors.

    Args:
        text: the document.
        error: makes the caller's error class from (message, line, column).
        max_depth: how deep sequences and mappings may nest.
        max_nodes: how many values the document may expand to.
        prefix: what every message starts with.
        with_context: name the construct a syntax error happened in, like
            "while parsing a flow sequence (line 2)".

    Returns:
        The root node (None for an empty document) and the plain value.

    Raises:
        InputError: whatever `error` builds, with a message starting
            "invalid YAML: " and the line and column where known.
    """
    loaded = _load_with_libyaml(text, max_depth=max_depth, max_nodes=max_nodes)
    if loaded is not None:
        return loaded
    return _load_with_python(
        text,
        error,
        max_depth=max_depth,
        max_nodes=max_nodes,
        prefix=prefix,
        with_context=with_context,
    )


def _load_with_python(
    text: str,
    error: ErrorFactory,
    *,
    max_depth: int,
    max_nodes: int,
    prefix: str,
    with_context: bool,
) -> tuple[Node | None, Any]:
    """`load_yaml` with the pure-Python loader, the one that words every error."""
    try:
        loader = _BoundedLoader(text, max_depth=max_depth, max_nodes=max_nodes)
        try:
            root = loader.get_single_node()
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or "").split())
        if with_context and exc.context and exc.context_mark is not None:
            context = " ".join(exc.context.split())
            problem = f"{context} (line {exc.context_mark.line + 1}): {problem}"
        raise error(
            f"{prefix}{problem}",
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        raise error(
            f"{prefix}unacceptable character #x{exc.character:04x}; "
            "remove it or write it as an escape in a double-quoted string",
            before.count("\n") + 1,
            exc.position - (before.rfind("\n") + 1) + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise error(f"{prefix}{' '.join(str(exc).split())}", None, None) from None
    return root, data


class _Unfit(Exception):
    """The libyaml reading cannot be used as it is; read the document again."""


def _load_with_libyaml(
    text: str, *, max_depth: int, max_nodes: int
) -> tuple[Node | None, Any] | None:
    """What `load_yaml` returns, read by libyaml; None to read it in Python."""
    if _LibyamlLoader is None or _LIBYAML_MAY_DIFFER.search(text):
        return None
    if "%" in text and _DIRECTIVE.search(text):
        return None

    loader = None
    try:
        loader = _LibyamlLoader(text)
        root = loader.get_single_node()
        if root is None:
            return None, None
        tree = _LibyamlTree(text, loader, max_depth=max_depth, max_nodes=max_nodes)
        data = tree.value(root)
        if tree.merges:
            data = loader.construct_document(root)
    except Exception:
        # Invalid, refused or unusual: the pure-Python loader reads it again
        # and reports the error with its own words, line and column.
        return None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data


_STR_TAG = "tag:yaml.org,2002:str"
# Keys the safe constructor rewrites (`<<` merges, `=` becomes a string).
_REWRITTEN_KEY_TAGS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")


class _LibyamlTree:
    """One pass over a tree libyaml composed: check, conform, build the value.

    The bounds are those `_BoundedLoader` keeps: nesting depth and the number
    of values counted with every alias expanded, each collection measured
    once, and no repeated key. The nodes are made the same as the pure-Python
    composer's, and whatever cannot be made the same raises `_Unfit`: an
    explicit tag, a plain scalar holding `?` inside a flow collection (libyaml
    reads more of it as the scalar), an empty value inside a flow collection
    (libyaml places it elsewhere), a block scalar header libyaml alone
    accepts. The value is what the safe constructor builds, collections
    shared where aliases share them; a mapping with keys the constructor
    rewrites sets `merges`, and the caller builds the value with it.
    """

    def __init__(
        self, text: str, loader: Any, *, max_depth: int, max_nodes: int
    ) -> None:
        self.merges = False
        self._text = text
        self._loader = loader
        self._max_depth = max_depth
        self._max_nodes = max_nodes
        self._may_have_tags = "!" in text
        self._may_have_questions = "?" in text
        # libyaml ends a document that lacks a final line break on a line of
        # its own; the pure-Python reader ends it where the text ends
        self._end = len(text)
        self._end_line_column: tuple[int, int] | None = None
        if text and not text.endswith(("\n", "\r")):
            last_break = max(text.rfind("\n"), text.rfind("\r"))
            lines = text.count("\n") + text.count("\r") - text.count("\r\n")
            self._end_line_column = (lines, self._end - last_break - 1)
        # id of a collection done -> (values it expands to, height, value)
        self._done: dict[int, tuple[int, int, Any]] = {}

    def value(self, root: Node) -> Any:
        values, _height, value = self._node(root, 0, False)
        if values > self._max_nodes:
            raise _Unfit
        return value

    def _node(self, node: Node, depth: int, in_flow: bool) -> tuple[int, int, Any]:
        """(values, nesting height, value) of a node `depth` collections deep."""
        if isinstance(node, ScalarNode):
            return 1, 0, self._scalar(node, in_flow)

        done = self._done.get(id(node))
        if done is not None:
            # an alias: the value it names nests `height` levels below here
            if depth + done[1] > self._max_depth:
                raise _Unfit
            return done

        # The first visit is where the collection is written, ahead of any
        # alias to it. One still being built is reached again only through a
        # recursive alias, which nests without end and so fails the depth.
        depth += 1
        if depth > self._max_depth:
            raise _Unfit
        self._conform(node)
        in_flow = in_flow or bool(node.flow_style)
        if isinstance(node, MappingNode):
            done = self._mapping(node, depth, in_flow)
        else:
            done = self._sequence(node, depth, in_flow)
        self._done[id(node)] = done
        return done

    def _mapping(
        self, node: MappingNode, depth: int, in_flow: bool
    ) -> tuple[int, int, Any]:
        block = node.flow_style is False
        keys: set[tuple[str, str]] = set()
        mapping: dict[Any, Any] = {}
        values, height = 1, 0
        for key_node, value_node in node.value:
            # a list or mapping as a key is refused by the safe constructor
            if not isinstance(key_node, ScalarNode):
                raise _Unfit
            if (key_node.tag, key_node.value) in keys:
                raise _Unfit
            keys.add((key_node.tag, key_node.value))
            if key_node.tag in _REWRITTEN_KEY_TAGS:
                # the value built here is dropped for the constructor's
                self.merges = True
                self._check_scalar(key_node, in_flow)
                key: Any = key_node
            else:
                key = self._scalar(key_node, in_flow)
            if isinstance(value_node, ScalarNode):
                mapping[key] = self._scalar(value_node, in_flow)
                values += 2
            else:
                if block and isinstance(value_node, SequenceNode):
                    self._mark_indentless(value_node, node)
                child_values, child_height, value = self._node(
                    value_node, depth, in_flow
                )
                mapping[key] = value
                values += 1 + child_values
                height = max(height, child_height)
            if values > self._max_nodes:
                raise _Unfit
        return values, height + 1, mapping

    def _sequence(
        self, node: SequenceNode, depth: int, in_flow: bool
    ) -> tuple[int, int, Any]:
        sequence: list[Any] = []
        values, height = 1, 0
        for item in node.value:
            if isinstance(item, ScalarNode):
                sequence.append(self._scalar(item, in_flow))
                values += 1
            else:
                child_values, child_height, value = self._node(item, depth, in_flow)
                sequence.append(value)
                values += child_values
                height = max(height, child_height)
            if values > self._max_nodes:
                raise _Unfit
        return values, height + 1, sequence

    def _scalar(self, node: ScalarNode, in_flow: bool) -> Any:
        self._check_scalar(node, in_flow)
        if node.tag == _STR_TAG:
            return node.value
        return self._loader.construct_object(node)

    def _check_scalar(self, node: ScalarNode, in_flow: bool) -> None:
        if self._may_have_tags or self._end_line_column is not None:
            self._conform(node)
        style = node.style
        # libyaml marks a plain scalar with "", the pure-Python reader with
        # None, which is what callers test for
        if style == "":
            node.style = style = None
        elif style in ("|", ">") and not _BLOCK_SCALAR_HEADER.match(
            self._text, node.start_mark.index
        ):
            raise _Unfit
        if in_flow and style is None:
            if not node.value and node.start_mark.index == node.end_mark.index:
                raise _Unfit
            if self._may_have_questions and "?" in node.value:
                raise _Unfit

    def _conform(self, node: Node) -> None:
        if self._end_line_column is not None:
            if node.start_mark.index == self._end:
                node.start_mark = self._end_mark(node.start_mark)
            if node.end_mark.index == self._end:
                node.end_mark = self._end_mark(node.end_mark)
        # a node's first property starts its mark; a tag is `!`, an anchor `&`
        if self._may_have_tags and self._text.startswith(
            ("!", "&"), node.start_mark.index
        ):
            raise _Unfit

    def _end_mark(self, mark: Mark) -> Mark:
        # libyaml's marks cannot be changed; the pure-Python reader's can
        line, column = self._end_line_column or (mark.line, mark.column)
        return Mark(mark.name, mark.index, line, column, None, None)

    def _mark_indentless(self, sequence: SequenceNode, mapping: MappingNode) -> None:
        # The pure-Python composer leaves flow_style None on a block sequence
        # written at its key's indentation ("key:\n- item"). Without
        # properties, both start where their first entry or key is written.
        if sequence.flow_style is not False or id(sequence) in self._done:
            return
        if self._text.startswith(("&", "!"), sequence.start_mark.index):
            raise _Unfit
        if self._text.startswith(("&", "!"), mapping.start_mark.index):
            raise _Unfit
        if sequence.start_mark.column == mapping.start_mark.column:
            sequence.flow_style = None


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that refuses deep nesting, alias bombs and repeated keys."""

    def __init__(self, text: str, *, max_depth: int, max_nodes: int) -> None:
        super().__init__(text)
        self._max_depth = max_depth
        self._max_nodes = max_nodes
        self._depth = 0
        self._heights: dict[int, int] = {}
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            self._check_alias(self.peek_event())
            return super().compose_node(parent, index)

        nests = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if nests:
            self._depth += 1
            if self._depth > self._max_depth:
                raise ComposerError(
                    None,
                    None,
                    f"nesting deeper than {self._max_depth} levels",
                    self.peek_event().start_mark,
                )
        try:
            node = super().compose_node(parent, index)
        finally:
            if nests:
                self._depth -= 1

        self._measure(node)
        if isinstance(node, MappingNode):
            _refuse_repeated_keys(node)
        return node

    def scan_flow_scalar_non_spaces(self, double: bool, start_mark: Mark) -> list[str]:
        # `\U` takes eight hex digits, which can name no character at all
        try:
            return super().scan_flow_scalar_non_spaces(double, start_mark)
        except (ValueError, OverflowError):
            raise ScannerError(
                "while scanning a double-quoted scalar",
                start_mark,
                f"found escape \\U{self.prefix(8)}, which names no Unicode character",
                self.get_mark(),
            ) from None

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        # Some tagged scalars (`!!int x`, an impossible date) fail with a plain
        # exception that carries no position; give it the node's.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ConstructorError(
                None, None, f"cannot read this value: {exc}", node.start_mark
            ) from exc
        except (IndexError, KeyError, AttributeError) as exc:
            # `!!bool x`, `!!timestamp x`, an empty `!!int`: the constructor
            # trips over the text without saying why
            kind = node.tag.removeprefix("tag:yaml.org,2002:")
            raise ConstructorError(
                None,
                None,
                f"cannot read this value: {node.value!r} is not a valid {kind}",
                node.start_mark,
            ) from exc

    def _check_alias(self, event: yaml.AliasEvent) -> None:
        target = self.anchors.get(event.anchor)
        if target is None:
            return
        if id(target) not in self._heights:
            raise ComposerError(
                None,
                None,
                f"alias *{event.anchor} refers to a value that contains it",
                event.start_mark,
            )
        if self._depth + self._heights[id(target)] > self._max_depth:
            raise ComposerError(
                None,
                None,
                f"nesting deeper than {self._max_depth} levels "
                f"(through alias *{event.anchor})",
                event.start_mark,
            )

    def _measure(self, node: Node) -> None:
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []

        height = 0
        if not isinstance(node, ScalarNode):
            height = 1 + max((self._heights[id(c)] for c in children), default=0)
        size = 1 + sum(self._sizes[id(c)] for c in children)
        if size > self._max_nodes:
            raise ComposerError(
                None,
                None,
                f"the document expands to more than {self._max_nodes} values "
                "through aliases",
                node.start_mark,
            )
        self._heights[id(node)] = height
        self._sizes[id(node)] = size


def _refuse_repeated_keys(node: MappingNode) -> None:
    first_seen: dict[tuple[str, str], Node] = {}
    for key, _value in node.value:
        if not isinstance(key, ScalarNode):
            continue
        earlier = first_seen.setdefault((key.tag, key.value), key)
        if earlier is not key:
            raise ComposerError(
                None,
                None,
                f"key {key.value!r} appears twice (first at line "
                f"{earlier.start_mark.line + 1}); keep one",
                key.start_mark,
            )
