"""Design checks: balance, attrition and Lee bounds, heterogeneity, multiple testing, power.

Every function takes a pandas frame and column names and returns an
:class:`impactkit.results.Result` (or, for the p-value adjustments and power helpers,
plain numbers/arrays).
"""

from __future__ import annotations

from impactkit.checks.attrition import attrition, attrition_weights, lee_bounds
from impactkit.checks.balance import balance_table
from impactkit.checks.heterogeneity import heterogeneity
from impactkit.checks.multiple import holm, multiple_testing, romano_wolf, sharpened_q, westfall_young
from impactkit.checks.power import achieved_power, mde, power, required_sample

__all__ = [
    "achieved_power",
    "attrition",
    "attrition_weights",
    "balance_table",
    "heterogeneity",
    "holm",
    "lee_bounds",
    "mde",
    "multiple_testing",
    "power",
    "required_sample",
    "romano_wolf",
    "sharpened_q",
    "westfall_young",
]
