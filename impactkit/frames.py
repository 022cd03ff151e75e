"""Data frames as evaluators hold them: pandas, polars, pyarrow... -> pandas.

impactkit computes on pandas; every public entry point that takes a frame passes it through
:func:`as_pandas`, which accepts any eager frame narwhals knows (pandas, polars, pyarrow,
modin, cuDF) and converts it once. Anything else is an :class:`InputError` naming what was
given. A leaf module: it imports nothing from impactkit but the errors.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from impactkit.errors import InputError


def as_pandas(data: Any, who: str = "data") -> pd.DataFrame:
    """``data`` as a pandas DataFrame (unchanged when it already is one)."""
    if isinstance(data, pd.DataFrame):
        return data
    import narwhals as nw

    try:
        frame = nw.from_native(data, eager_only=True)
    except TypeError:
        raise InputError(f"{who}: expected a data frame (pandas, polars, pyarrow), got {type(data).__name__}") from None
    if not isinstance(frame, nw.DataFrame):
        raise InputError(f"{who}: expected a data frame, got a one-column series ({type(data).__name__})")
    return frame.to_pandas()
