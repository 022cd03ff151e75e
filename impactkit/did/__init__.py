"""Difference-in-differences: 2x2, TWFE, Goodman-Bacon, Callaway-Sant'Anna, Sun-Abraham.

Start with :func:`did` (the front door); estimators live one per module.
"""

from impactkit.did.api import did
from impactkit.did.bacon import bacon_decomposition
from impactkit.did.sa import estimate_sa
from impactkit.did.twfe import estimate_2x2, estimate_twfe

__all__ = ["did", "estimate_twfe", "estimate_2x2", "estimate_sa", "bacon_decomposition"]

from impactkit._modules import make_callable as _make_callable

_make_callable(__name__, did)
