"""Input checks shared by every design check in :mod:`impactkit.checks`.

Each raises :class:`~impactkit.errors.InputError` (or
:class:`~impactkit.errors.EstimationError` for a constant arm) with a one-line message
naming the column, the rows and the rule; none shows a value of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError, InputError


def require_frame(frame: Any) -> pd.DataFrame:
    """``frame`` as pandas (polars, pyarrow... converted); :class:`InputError` if not a frame."""
    from impactkit.frames import as_pandas

    return as_pandas(frame)


def require_columns(frame: pd.DataFrame, columns: Sequence[str | None]) -> None:
    """Raise :class:`InputError` naming every requested column absent from ``frame``."""
    wanted = [c for c in columns if c is not None]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(map(repr, missing))}: not in the data")


def as_list(columns: str | Sequence[str] | None) -> list[str]:
    """``None`` -> ``[]``, a single name -> ``[name]``, a sequence -> a list."""
    if columns is None:
        return []
    if isinstance(columns, str):
        return [columns]
    return list(columns)


def numeric_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The column as float64; booleans become 0/1; non-numeric columns raise."""
    series = frame[column]
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy()
    if not pd.api.types.is_numeric_dtype(series):
        raise InputError(f"column {column!r} must be numeric (dtype {series.dtype})")
    return series.astype("float64").to_numpy(na_value=np.nan)


def binary_arm(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The treatment column as 0/1 floats; error if missing, constant or not binary."""
    values = numeric_column(frame, column)
    bad = np.isnan(values)
    if bad.any():
        raise InputError(f"column {column!r} has {int(bad.sum())} missing value(s); treatment must be observed")
    levels = np.unique(values)
    if levels.size < 2:
        raise EstimationError(f"column {column!r} is constant; need both treated and control units")
    if not np.all(np.isin(levels, (0.0, 1.0))):
        raise InputError(f"column {column!r} must be binary 0/1 (found {levels.size} distinct values)")
    return values


def check_weights(frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """Sampling weights as float64; error if missing, negative, infinite or all zero."""
    if column is None:
        return None
    values = numeric_column(frame, column)
    if np.isnan(values).any():
        rows = np.flatnonzero(np.isnan(values))[:5].tolist()
        raise InputError(f"weights column {column!r} has missing values (rows {rows}...)")
    if not np.isfinite(values).all():
        raise InputError(f"weights column {column!r} has infinite values")
    if (values < 0).any():
        rows = np.flatnonzero(values < 0)[:5].tolist()
        raise InputError(f"weights column {column!r} has negative values (rows {rows}...)")
    if values.sum() <= 0:
        raise InputError(f"weights column {column!r} sums to zero")
    return values


def cluster_codes(frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """Integer codes 0..G-1 of the cluster column; error on missing cluster ids."""
    if column is None:
        return None
    series = frame[column]
    if series.isna().any():
        raise InputError(f"cluster column {column!r} has {int(series.isna().sum())} missing value(s)")
    codes, _ = pd.factorize(series, sort=True)
    return codes.astype(np.int64)


def observed_flags(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    """The 0/1 (or boolean) ``column`` as a boolean array; every row observed when ``column`` is None.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    column : str or None
        Column flagging rows whose outcome was observed (1) or lost (0).

    Returns
    -------
    numpy.ndarray
        Boolean array, one entry per row of ``frame``.

    Raises
    ------
    InputError
        The column has missing values or values other than 0 and 1.
    """
    if column is None:
        return np.ones(len(frame), dtype=bool)
    values = numeric_column(frame, column)
    if np.isnan(values).any():
        raise InputError(f"observed column {column!r} has missing values")
    if not np.all(np.isin(values, (0.0, 1.0))):
        raise InputError(f"observed column {column!r} must be 0/1 or boolean")
    return values == 1
