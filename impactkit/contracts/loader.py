"""Load a contract YAML file, keeping the line of every key for error messages.

The YAML is composed into nodes by :mod:`impactkit.safeyaml` (no aliases, no foreign tags,
bounded depth: a hostile contract costs bounded work) and converted by hand so that
each key path (``("schema", 0, "properties", 3, "logicalType")``) maps to its line. A
pydantic validation error is then reported as ``file:line: field 'a.b[3].c': reason``,
as a :class:`impactkit.errors.ContractError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from impactkit import safeyaml
from impactkit.contracts.model import Contract, reference_problems
from impactkit.errors import ContractError

KeyPath = tuple[str | int, ...]


def _convert(node: yaml.Node, loader: Any, path: KeyPath, lines: dict[KeyPath, int],
             source: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = safeyaml.construct(key_node, source, ContractError)
            if not isinstance(key, str):
                raise ContractError(f"{source}:{key_node.start_mark.line + 1}: key {key!r} must be text")
            if key in out:
                raise ContractError(f"{source}:{key_node.start_mark.line + 1}: key '{key}' appears twice")
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, loader, path + (key,), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_convert(item, loader, path + (i,), lines, source))
        return items
    return safeyaml.construct(node, source, ContractError)


def load_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML text; return the data and a map key path -> 1-based line."""
    root = safeyaml.compose(text, source, ContractError)
    loader = None
    if root is None:
        raise ContractError(f"{source}: the contract is empty")
    lines: dict[KeyPath, int] = {(): root.start_mark.line + 1}
    return _convert(root, loader, (), lines, source), lines


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(loc: tuple[Any, ...], lines: dict[KeyPath, int]) -> tuple[int, tuple[Any, ...]]:
    """Best line for a pydantic error location; returns (line, data path actually matched)."""
    path: KeyPath = ()
    for part in loc:
        candidate = path + (part,)
        if candidate in lines:
            path = candidate
        # parts absent from the data (union tags, model names) are skipped
    return lines.get(path, lines[()]), path


def _named(path: tuple[Any, ...], data: Any) -> str:
    """Dotted path, plus the ``name`` of the innermost list item that has one (a property)."""
    shown = _dotted(path) or "(top level)"
    node, name = data, None
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(node, dict) and isinstance(node.get("name"), str):
            name = node["name"]
    return f"{shown} (property '{name}')" if name else shown


def _priority(err: dict[str, Any]) -> int:
    """Report typos first: a misspelt key also makes the intended key 'missing'."""
    return 0 if err["type"] == "extra_forbidden" else 1


def format_validation_error(exc: ValidationError, lines: dict[KeyPath, int], source: str,
                            data: Any = None) -> str:
    """One line naming the file, the line and the field of the first error."""
    err = sorted(exc.errors(include_url=False), key=_priority)[0]
    loc = tuple(err["loc"])
    line, matched = _locate(loc, lines)
    field_path = [p for p in loc if not (isinstance(p, str) and p in {"panel", "other"}) or p in matched]
    shown = _named(tuple(field_path), data)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (typo?)"
    elif err["type"] == "missing":
        message = "required key is missing"
    elif err["type"] in ("literal_error", "enum"):
        message = f"{message}, got {err.get('input')!r}"
    elif err["type"].endswith("_type") or err["type"].endswith("_parsing"):
        message = f"{message}, got {type(err.get('input')).__name__} {err.get('input')!r}"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{source}:{line}: field '{shown}': {message}{suffix}"


def load_contract(path: str | Path) -> Contract:
    """Read and validate a contract file; raise ContractError naming file, line and field."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{source}: contract file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{source}: cannot read the contract ({type(exc).__name__})") from None
    return parse_contract(text, source)


def parse_contract(text: str, source: str = "<contract>") -> Contract:
    """Validate contract YAML text (see :func:`load_contract`)."""
    data, lines = load_yaml_with_lines(text, source)
    if not isinstance(data, dict):
        raise ContractError(f"{source}:1: the contract must be a mapping of keys")
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        raise ContractError(format_validation_error(exc, lines, source, data)) from None
    problems = reference_problems(contract)
    if problems:
        path, message = problems[0]
        line, _ = _locate(path, lines)
        raise ContractError(f"{source}:{line}: field '{_dotted(path)}': {message}")
    return contract
