"""The registry of difference-in-differences estimators.

One line per estimator: the ``method=`` key and ``"module:Class"`` of its
:class:`impactkit.did.base.DidEstimator`. :func:`impactkit.did.did`, the analysis spec
(``[estimators] headline / compare``) and the report labels all derive from it, so adding an
estimator is one new module and one line here. Modules are imported on first use.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from impactkit.did.base import DidEstimator
from impactkit.errors import InputError

ENTRIES: dict[str, str] = {
    "2x2": "impactkit.did.twfe:TwoByTwoEstimator",
    "twfe": "impactkit.did.twfe:TWFEEstimator",
    "cs": "impactkit.did.cs:CSEstimator",
    "sa": "impactkit.did.sa:SAEstimator",
    "imputation": "impactkit.did.imputation:ImputationEstimator",
    "ddd": "impactkit.did.triple:TripleEstimator",
    "dcdh": "impactkit.did.dcdh:DCDHEstimator",
}


def names() -> tuple[str, ...]:
    """The registered ``method=`` keys, in registry order."""
    return tuple(ENTRIES)


@cache
def get(name: str) -> type[DidEstimator]:
    """The estimator class registered as ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`ENTRIES`.

    Returns
    -------
    type[DidEstimator]

    Raises
    ------
    InputError
        ``name`` is not registered (the message lists the registered names).
    """
    if name not in ENTRIES:
        raise InputError(f"method must be one of {', '.join(ENTRIES)}, got {name!r}")
    module, _, attribute = ENTRIES[name].partition(":")
    cls = getattr(import_module(module), attribute)
    if cls.name != name:
        raise RuntimeError(f"registry entry {name!r} points at an estimator named {cls.name!r}")
    return cls


def estimators() -> dict[str, type[DidEstimator]]:
    """Every registered estimator class by name."""
    return {name: get(name) for name in ENTRIES}


def labels() -> dict[str, str]:
    """``{name: label}`` for reports and tables."""
    return {name: cls.label for name, cls in estimators().items()}
