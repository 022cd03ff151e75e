"""Silence great-expectations: its INFO logs, usage analytics and tqdm progress bars.

great-expectations 1.x logs at INFO on every context and validation and draws a tqdm bar
("Calculating Metrics") per run. A validation library must not write to the user's
terminal, so :func:`quiet_gx` lowers the GX loggers to ERROR, turns analytics off through
the documented environment variable, and :func:`ephemeral_context` builds an in-memory
context whose ``progress_bars`` setting is off. impactkit draws its own rich progress bar
for long runs instead (see :mod:`impactkit.contracts`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

_GX_LOGGERS = ("great_expectations", "great_expectations.core", "great_expectations.data_context",
               "great_expectations.datasource", "great_expectations.validator",
               "great_expectations.expectations", "great_expectations.execution_engine")


_QUIETED: set[str] = set()


def quiet_gx() -> None:
    """Set GX loggers to ERROR and disable GX analytics (idempotent; call before importing GX)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    names = set(_GX_LOGGERS) | {n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")}
    for name in names - _QUIETED:  # some GX modules set their own logger to INFO: lower every one
        logging.getLogger(name).setLevel(logging.ERROR)
    _QUIETED.update(names)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Context manager: GX quiet and its Python warnings (deprecations, pandas) suppressed."""
    quiet_gx()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"great_expectations(\..*)?")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def import_gx() -> Any:
    """Import great_expectations quietly and return the module."""
    quiet_gx()
    with silenced():
        import great_expectations as gx
    quiet_gx()  # GX may reset its loggers at import
    return gx


def ephemeral_context() -> Any:
    """An in-memory GX data context with progress bars and analytics off."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    with silenced():
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    quiet_gx()
    return context
