"""The typed results document and the import layers.

- the JSON Schema in docs/ is the model's (regenerated, not hand-edited);
- every results dict the runner returns validates against the model (the Peru analysis,
  computed once per session);
- the packages import each other in one direction only (parsed with ``ast``, function-level
  imports included, ``if TYPE_CHECKING:`` blocks excluded): no cycle, and no package imports
  one above it in the layer order.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "impactkit"
# low -> high; a package may import only packages at its level or below
LAYERS = [
    {"errors", "_modules", "seeds", "results", "atomic", "numerics", "docs", "provenance", "safeyaml",
     "frames", "console", "limits"},
    {"io", "contracts", "datasets", "privacy"},
    {"did", "iv", "checks", "etable"},
    {"scale"},
    {"analysis"},
    {"distributed"},
    {"pack"},
    {"pin"},
    {"cli", "__main__"},
]


def _level(name: str) -> int | None:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    return None


def _top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "impactkit" or len(parts) == 1:
        return None  # `from impactkit import __version__` reads the root's constants only
    return parts[1]


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("").parts
        source = rel[0] if rel[0] != "__init__" else None
        if source is None:
            continue
        for module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _top(module)
            if target and target != source:
                graph[source].add(target)
    return graph


def test_no_import_cycles_between_packages():
    graph = package_graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def dfs(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt):] + [node, nxt] if nxt in stack else [node, nxt])
                return True
            if state.get(nxt) is None and dfs(nxt, stack + [node]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and dfs(start, []):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_packages_import_only_downwards():
    wrong = []
    for source, targets in sorted(package_graph().items()):
        ls = _level(source)
        assert ls is not None, f"impactkit/{source}: add it to a layer in this test"
        for target in sorted(targets):
            lt = _level(target)
            assert lt is not None, f"impactkit/{target}: add it to a layer in this test"
            if lt > ls:
                wrong.append(f"{source} (layer {ls}) imports {target} (layer {lt})")
    assert not wrong, "\n".join(wrong)


def test_json_schema_in_docs_is_current():
    from impactkit.analysis.document import json_schema_text

    assert (ROOT / "docs" / "results-schema.json").read_text(encoding="utf-8") == json_schema_text(), \
        "regenerate: python -m impactkit.analysis.document > docs/results-schema.json"


def test_a_real_results_document_is_typed(peru_results):
    from impactkit.analysis.document import SCHEMA_VERSION, load_results

    doc = load_results(peru_results)
    assert doc.schema_ == SCHEMA_VERSION == peru_results["schema"]
    assert doc.headline.percent == pytest.approx(peru_results["headline"]["percent"], abs=0)
    assert doc.headline.money_per_unit is not None  # a money outcome
    assert doc.model_dump(by_alias=True, exclude_unset=True)["headline"]["estimate"] == \
        peru_results["headline"]["estimate"]


def test_an_undeclared_key_is_refused():
    from pydantic import ValidationError

    from impactkit.analysis.document import Headline

    with pytest.raises(ValidationError):
        Headline.model_validate({"estimate": 1.0, "conf_low": 0.0, "conf_high": 2.0, "estimator": "x", "method": "cs",
                                 "outcome": "y", "scale": "level", "units": "", "population": "p", "p_value": 0.1,
                                 "n_units": 3, "n_clusters": 3, "money_per_household": 5.0})
