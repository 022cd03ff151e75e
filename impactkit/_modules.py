"""Packages that are also functions: ``impactkit.did(...)`` next to ``impactkit.did.cs``.

Importing a subpackage binds it to the parent's attribute, so a lazily exported function
of the same name (``impactkit.did``) would be replaced by the package after the first
import. :func:`make_callable` turns the package's module object into one that forwards
calls to the function, so both spellings keep working.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Callable


def make_callable(module_name: str, function: Callable[..., Any]) -> None:
    """Make ``sys.modules[module_name]`` callable as ``function``."""

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

    _CallableModule.__call__.__doc__ = function.__doc__
    sys.modules[module_name].__class__ = _CallableModule
