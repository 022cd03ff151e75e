"""Instrumental variables: 2SLS/LIML with absorbed fixed effects, weak-IV diagnostics,
Anderson-Rubin confidence sets and encouragement designs.

>>> from impactkit.iv import iv, encouragement

``impactkit.iv`` is both this package and (through ``impactkit``'s lazy attribute) the
:func:`iv` function. Importing a subpackage binds the package object to the parent's
attribute, so after the first access ``impactkit.iv`` is this module; the module is
therefore made callable and forwards calls to :func:`iv`, so that ``impactkit.iv(data,
formula)`` works however often it is looked up.
"""

import sys
import types

from impactkit.iv.encouragement import encouragement
from impactkit.iv.model import iv
from impactkit.iv.results import EncouragementResult, IVResult
from impactkit.iv.weak import ARConfidenceSet

__all__ = ["iv", "encouragement", "IVResult", "EncouragementResult", "ARConfidenceSet"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> IVResult:
        return iv(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
