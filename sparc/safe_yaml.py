"""YAML read safely: no objects built, bounded nesting and size, no repeated keys.

Task files, workflow files and the workspace configuration come from outside.
They are read with PyYAML's safe constructors only, and the composer refuses
documents that nest too deep (which would exhaust Python's recursion limit),
aliases that expand into huge values, and mappings that repeat a key (where
the last value would silently win).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sparc.errors import InputError

__all__ = ["MAX_YAML_DEPTH", "MAX_YAML_NODES", "load_yaml"]

MAX_YAML_DEPTH = 32
# Aliases let a small file expand into a huge value; this bounds the expansion.
MAX_YAML_NODES = 100_000

# Builds the caller's error from a message and a 1-based line and column.
ErrorFactory = Callable[[str, int | None, int | None], InputError]


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

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        # Some tagged scalars (`!!int x`, an impossible date) fail with a plain
        # exception that carries no position; give it the node's.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ConstructorError(
                None, None, f"cannot read this value: {exc}", node.start_mark
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
