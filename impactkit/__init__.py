"""impactkit: impact evaluation and scale-readiness analytics.

The chain it makes routine: clean panel -> credible estimate -> scale-readiness
score -> evidence pack -> rerunnable proof.

Public entry points are imported lazily so that ``import impactkit`` stays fast and a
missing optional piece never breaks the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # data contracts (issue 3)
    "validate": ("impactkit.contracts", "validate"),
    "load_contract": ("impactkit.contracts", "load_contract"),
    "read_table": ("impactkit.io", "read_table"),
    # estimation (issues 4, 5)
    "did": ("impactkit.did", "did"),
    "iv": ("impactkit.iv", "iv"),
    "honest_did": ("impactkit.did.honest", "honest_did"),
    "etable": ("impactkit.etable", "etable"),
    # design checks (issue 5)
    "balance_table": ("impactkit.checks", "balance_table"),
    "attrition": ("impactkit.checks", "attrition"),
    "lee_bounds": ("impactkit.checks", "lee_bounds"),
    "heterogeneity": ("impactkit.checks", "heterogeneity"),
    "multiple_testing": ("impactkit.checks", "multiple_testing"),
    "power": ("impactkit.checks", "power"),
    # scale readiness (issue 6)
    "score": ("impactkit.analysis.link", "score"),
    # analyses, packs, pins (issues 2, 7, 8)
    "run_analysis": ("impactkit.analysis", "run_analysis"),
    "pack": ("impactkit.pack", "pack"),
    "pin": ("impactkit.pin", "pin"),
    "rerun": ("impactkit.pin", "rerun"),
    "datasets": ("impactkit.datasets", None),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'impactkit' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


def __dir__() -> list[str]:
    return __all__
