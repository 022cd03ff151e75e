"""One YAML loader for every untrusted spec: contracts, interventions, portfolios.

YAML can make a tiny file cost unbounded work: aliases (``*name``) re-use a node, so a
2 KB "billion laughs" document expands to gigabytes once walked or validated; tags
(``!!python/name:...``, ``!local``) ask for objects other than plain data; and deep nesting
overflows the recursive composer. This module parses with PyYAML's safe machinery and
refuses, before any object is built:

- more than :data:`MAX_ALIASES` aliases, a document whose expansion (every alias counted
  as a copy of what it names) exceeds :data:`MAX_NODES` nodes or :data:`MAX_DEPTH`
  levels, and recursive aliases (an anchor used inside itself); a few aliases, as
  ``yaml.safe_dump`` writes for a repeated object, are fine;
- merge keys (``<<``) and any tag other than YAML's plain ones (str, int, float, bool,
  null, map, seq, timestamp);
- nesting deeper than :data:`MAX_DEPTH` levels and files larger than :data:`MAX_BYTES`.

Every refusal is the caller's error class (exit 2) naming the file and the line. The
result is plain data (dict / list / scalars) and the composed node tree, whose marks give
the line of each key.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from impactkit.errors import InputError

MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 200_000
MAX_BYTES = 5_000_000
_PLAIN = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(_PLAIN + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp"))


class _Refused(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class _BoundedLoader(Reader, Scanner, Parser, Composer, Resolver):
    """PyYAML's composer with aliases, anchors, foreign tags and deep nesting refused."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(line, f"more than {MAX_ALIASES} aliases")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(line, f"nesting deeper than {MAX_DEPTH} levels")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node.tag == _PLAIN + "value":  # a bare '=' is text
            node.tag = _PLAIN + "str"
        if node.tag == _PLAIN + "merge":
            raise _Refused(line, "merge key '<<' is not allowed (write the keys out)")
        if node.tag not in ALLOWED_TAGS:
            raise _Refused(line, f"tag '{node.tag}' is not allowed (plain YAML data only)")
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Refuse recursive aliases and expansions beyond MAX_NODES nodes or MAX_DEPTH levels.

    Iterative, memoised by node identity: linear in the distinct nodes, whatever the
    expansion would be.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES:
                raise _Refused(node.start_mark.line + 1, f"expands to more than {MAX_NODES:,} nodes (aliases)")
            if depth[key] > MAX_DEPTH:
                raise _Refused(node.start_mark.line + 1, f"expands deeper than {MAX_DEPTH} levels (aliases)")
            continue
        if key in size:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise _Refused(child.start_mark.line + 1, "recursive alias (an anchor used inside itself)")
            if id(child) not in size:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _fail(error: type[InputError], source: str, line: int | None, reason: str) -> InputError:
    where = f":{line}" if line else ""
    return error(f"{source}{where}: not valid YAML ({reason})")


def compose(text: str, source: str, error: type[InputError] = InputError) -> yaml.Node | None:
    """Parse ``text`` into a node tree with the bounds above; ``None`` for an empty document."""
    if len(text) > MAX_BYTES:
        raise _fail(error, source, None, f"larger than {MAX_BYTES:,} characters")
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters here
        root = loader.get_single_node()
        if root is not None:
            _check_expansion(root)
        return root
    except _Refused as exc:
        raise _fail(error, source, exc.line, exc.reason) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["invalid YAML"])[0]
        raise _fail(error, source, mark.line + 1 if mark is not None else None, problem) from None
    except RecursionError:  # pragma: no cover - the depth bound comes first
        raise _fail(error, source, None, "nesting too deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def construct(node: yaml.Node, source: str, error: type[InputError] = InputError) -> Any:
    """Plain Python data of a node from :func:`compose` (scalars that cannot be built -> ``error``)."""
    constructor = SafeConstructor()
    try:
        return constructor.construct_document(node)
    except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        reason = getattr(exc, "problem", None) or f"a value cannot be read ({type(exc).__name__})"
        raise _fail(error, source, line + 1 if line is not None else None, reason) from None


def load(text: str, source: str, error: type[InputError] = InputError) -> Any:
    """Parse and build plain data in one step (``None`` for an empty document)."""
    node = compose(text, source, error)
    return None if node is None else construct(node, source, error)
