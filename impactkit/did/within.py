"""Fixed-effect demeaning for DiD: moved to :mod:`impactkit.numerics.within` (re-exported)."""

from impactkit.numerics.within import (
    demean,
    demean_balanced_two_way,
    demean_column_inplace,
    factorize,
    group_sums,
    is_balanced_two_way,
)

__all__ = ["demean", "demean_balanced_two_way", "demean_column_inplace", "factorize", "group_sums",
           "is_balanced_two_way"]
