"""Integer codes of a DiD panel's unit and time keys, for the fast panel checks.

:class:`UnitTimeCodes` is built once by :func:`unit_time_codes` (``value - min`` for compact
integer columns, else :func:`impactkit.numerics.within.factorize`); the checks of
:mod:`impactkit.did.data` then work with ``np.bincount`` / ``np.minimum.at`` per unit or period
instead of pandas group-bys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.errors import InputError
from impactkit.numerics.within import factorize

# a dense (unit x period) count table is used when it has at most this many cells per row
DENSE_PAIR_CELLS_PER_ROW = 8


# ---------------------------------------------------------------------------------------
# integer codes of the panel keys
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitTimeCodes:
    """Integer codes of a panel's unit and time columns, and its time values as floats.

    ``unit`` / ``time`` hold group codes 0..n-1 (:func:`group_codes`); ``times`` the time
    column as float64 (all finite); ``sorted_unit_time`` is True when the rows are sorted
    by unit (contiguous blocks) with strictly increasing time within each unit, which
    implies one row per (unit, time).
    """

    unit: np.ndarray
    n_units: int
    time: np.ndarray
    n_periods: int
    times: np.ndarray
    sorted_unit_time: bool


def numpy_values(series: pd.Series, kinds: str) -> np.ndarray | None:
    """The column as a numpy array when its dtype kind is in ``kinds`` (else None)."""
    if not isinstance(series.dtype, np.dtype) or series.dtype.kind not in kinds:
        return None
    return series.to_numpy()


def group_codes(series: pd.Series) -> tuple[np.ndarray, int]:
    """Integer group codes 0..n-1 of a column without missing values, and n.

    An integer column with a compact range is coded ``value - min`` (n is then the range,
    so some codes may be unused); anything else by :func:`factorize`. Equal values get
    equal codes, which is all the checks need.
    """
    values = numpy_values(series, "iu")
    if values is not None and values.size:
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * values.size + 1024:
            return (values - low).astype(np.intp, copy=False), high - low + 1
    return factorize(series)


def sorted_by_unit_then_time(unit_codes: np.ndarray, times: np.ndarray) -> bool:
    """True when unit codes never decrease and time strictly increases within a unit."""
    if unit_codes.size < 2:
        return True
    previous, current = unit_codes[:-1], unit_codes[1:]
    if not (current >= previous).all():
        return False
    return bool(((current != previous) | (times[1:] > times[:-1])).all())


def unit_time_codes(frame: pd.DataFrame, unit: str, time: str) -> UnitTimeCodes | None:
    """Codes of ``unit`` and ``time`` for the fast checks, or None when they do not apply.

    None when either column has missing values or ``time`` is not numeric or not finite;
    the checks then use their pandas reference implementation.
    """
    time_values = numpy_values(frame[time], "biuf")
    if time_values is None or frame[unit].isna().any():
        return None
    times = time_values.astype(np.float64, copy=False)
    if not np.isfinite(times).all():
        return None
    unit_codes, n_units = group_codes(frame[unit])
    time_codes, n_periods = group_codes(frame[time])
    return UnitTimeCodes(unit=unit_codes, n_units=n_units, time=time_codes, n_periods=n_periods,
                         times=times, sorted_unit_time=sorted_by_unit_then_time(unit_codes, times))


def has_duplicate_pairs(codes: UnitTimeCodes) -> bool:
    """True when some (unit, time) pair occurs in more than one row."""
    n_rows = codes.unit.shape[0]
    if n_rows < 2 or codes.sorted_unit_time:
        return False
    cells = codes.n_units * codes.n_periods
    if cells >= 2**62:  # the pair number would overflow int64
        order = np.lexsort((codes.time, codes.unit))
        unit, time = codes.unit[order], codes.time[order]
        return bool(((unit[1:] == unit[:-1]) & (time[1:] == time[:-1])).any())
    pair = codes.unit * codes.n_periods + codes.time
    if cells <= DENSE_PAIR_CELLS_PER_ROW * n_rows + 1024:
        return bool(np.bincount(pair, minlength=cells).max() > 1)
    ordered = np.sort(pair)
    return bool((ordered[1:] == ordered[:-1]).any())


def first_treated_time(codes: UnitTimeCodes, is_treated: np.ndarray) -> np.ndarray:
    """Per unit, the earliest time with ``is_treated`` (``inf`` when never).

    Parameters
    ----------
    codes : UnitTimeCodes
        Codes of the panel's unit and time columns.
    is_treated : numpy.ndarray
        Boolean per row.

    Returns
    -------
    numpy.ndarray
        One time per unit.
    """
    first = np.full(codes.n_units, np.inf)
    np.minimum.at(first, codes.unit, np.where(is_treated, codes.times, np.inf))
    return first


def has_reversal(codes: UnitTimeCodes, is_treated: np.ndarray) -> bool:
    """True when some unit has an untreated period after a treated one (pairs unique).

    On rows sorted by unit then time that is a treated row followed by an untreated row of
    the same unit; otherwise the unit's latest untreated time exceeds its earliest treated
    time.

    Parameters
    ----------
    codes : UnitTimeCodes
        Codes of the panel's unit and time columns (one row per pair).
    is_treated : numpy.ndarray
        Boolean per row.
    """
    if codes.sorted_unit_time:
        same_unit = codes.unit[1:] == codes.unit[:-1]
        return bool((is_treated[:-1] & ~is_treated[1:] & same_unit).any())
    last_untreated = np.full(codes.n_units, -np.inf)
    np.maximum.at(last_untreated, codes.unit, np.where(is_treated, -np.inf, codes.times))
    return bool((last_untreated > first_treated_time(codes, is_treated)).any())


def binary_values(series: pd.Series) -> np.ndarray | None:
    """A numeric numpy 0/1 column as a boolean array (None if not numeric numpy or not 0/1)."""
    values = numpy_values(series, "biuf")
    if values is None:
        return None
    if values.dtype.kind == "b":
        return values
    is_one = values == 1
    if not (is_one | (values == 0)).all():
        return None
    return is_one


def cohort_values(series: pd.Series) -> np.ndarray:
    """:func:`normalise_cohort` as a float array (numpy fast path for numeric columns)."""
    values = numpy_values(series, "biuf")
    if values is None:
        return normalise_cohort(series).to_numpy(dtype=float)
    cohort = values.astype(np.float64)  # a copy
    cohort[np.isnan(cohort)] = 0.0
    return cohort


def normalise_cohort(values: pd.Series) -> pd.Series:
    """Cohort as float: missing and 0 mean never treated (returned as 0.0)."""
    cohort = pd.to_numeric(values, errors="coerce").astype(float)
    bad = values.notna() & cohort.isna()
    if bad.any():
        raise InputError(f"column '{values.name}' (cohort) must be numeric first-treated periods; "
                         f"{int(bad.sum())} non-numeric value(s)")
    return cohort.fillna(0.0)
