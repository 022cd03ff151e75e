"""Panel checks and treatment bookkeeping for difference-in-differences.

A DiD panel has one row per (unit, time); ``time`` is numeric (periods, years); the
treatment is absorbing (staggered adoption). Treatment is given either as ``cohort``
(each unit's first treated period; 0 or missing = never treated) or ``treated`` (0/1);
the other is derived here. Each check raises an :mod:`impactkit.errors` exception whose
one-line message names the column, rows or units and the rule broken.

Speed: the checks run on integer codes of unit and time (:mod:`impactkit.did.panel_codes`,
re-exported here: :class:`UnitTimeCodes`, built once by :func:`unit_time_codes`) and on
``np.bincount`` / ``np.minimum.at`` / ``np.maximum.at`` per unit or period, without pandas
group-bys or sorting of the rows. A fast path only ever *accepts* input; when it finds a
problem (or meets input it does not cover, such as missing keys or non-numeric values),
the pandas reference implementation (``_*_pandas``) runs and raises, so behaviour and
messages are those of the reference. All functions are pure (frame/arrays in, values
out), so they can run per partition.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from impactkit.did.panel_codes import (  # noqa: F401  (re-exported: the panel codes lived here)
    DENSE_PAIR_CELLS_PER_ROW,
    UnitTimeCodes,
    binary_values,
    cohort_values,
    first_treated_time,
    group_codes,
    has_duplicate_pairs,
    has_reversal,
    normalise_cohort,
    numpy_values,
    unit_time_codes,
)
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

MAX_EXAMPLES = 5


def _examples(values: Iterable) -> str:
    shown = [str(v) for v in list(values)[:MAX_EXAMPLES]]
    return ", ".join(shown)


# ---------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------

def require_columns(frame: pd.DataFrame, roles: dict[str, str | Sequence[str] | None]) -> None:
    """Raise :class:`InputError` naming every missing column and its role."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    missing = []
    for role, names in roles.items():
        if names is None:
            continue
        for name in [names] if isinstance(names, str) else list(names):
            if name not in frame.columns:
                missing.append(f"'{name}' ({role})")
    if missing:
        raise InputError(f"missing column(s): {', '.join(missing)}")


def check_numeric(frame: pd.DataFrame, column: str, role: str) -> None:
    """Raise :class:`InputError` if ``column`` is not numeric (booleans are accepted).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    column : str
        Column to check.
    role : str
        What the column is for, named in the message (``"outcome"``, ``"covariate"``).
    """
    dtype = frame[column].dtype
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        raise InputError(f"column '{column}' ({role}) must be numeric, found dtype {dtype}")


def check_no_missing(frame: pd.DataFrame, column: str, role: str) -> None:
    """Raise :class:`InputError` if ``column`` has missing values (count and first rows).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data; its index gives the row numbers in the message.
    column : str
        Column to check.
    role : str
        What the column is for, named in the message.
    """
    missing = frame[column].isna().to_numpy()
    if missing.any():
        rows = frame.index[missing]
        raise InputError(f"column '{column}' ({role}) has {int(missing.sum())} missing value(s), "
                         f"rows {_examples(rows)}")


def check_unique_unit_time(frame: pd.DataFrame, unit: str, time: str, *,
                           codes: UnitTimeCodes | None = None) -> None:
    """Raise :class:`InputError` if a (unit, time) pair occurs more than once.

    ``codes`` (from :func:`unit_time_codes` on the same frame) saves recomputing them.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    unit, time : str
        Unit and period columns.
    codes : UnitTimeCodes, optional
        Their integer codes; None computes them (or falls back to pandas when they do not apply).
    """
    if codes is None:
        codes = unit_time_codes(frame, unit, time)
    if codes is not None and not has_duplicate_pairs(codes):
        return
    _check_unique_unit_time_pandas(frame, unit, time)


def _check_unique_unit_time_pandas(frame: pd.DataFrame, unit: str, time: str) -> None:
    dup = frame.duplicated([unit, time], keep="first").to_numpy()
    if dup.any():
        keys = frame.loc[dup, [unit, time]].drop_duplicates().head(MAX_EXAMPLES)
        shown = ", ".join(f"({u}, {t})" for u, t in keys.itertuples(index=False))
        raise InputError(f"{int(dup.sum())} duplicate ({unit}, {time}) row(s); "
                         f"rule: one row per unit and period; e.g. {shown}")


def check_outcome_per_period(frame: pd.DataFrame, y: str, time: str, *,
                             codes: UnitTimeCodes | None = None) -> None:
    """Raise :class:`InputError` if the outcome is missing for every unit in some period.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    y, time : str
        Outcome and period columns.
    codes : UnitTimeCodes, optional
        Integer codes of the panel keys, from :func:`unit_time_codes` on the same frame.
    """
    observed = frame[y].notna().to_numpy()
    if observed.all():
        return
    time_codes = None
    if codes is not None:
        time_codes, n_periods = codes.time, codes.n_periods
    elif not frame[time].isna().any():
        time_codes, n_periods = group_codes(frame[time])
    if time_codes is not None and (np.bincount(time_codes[observed], minlength=n_periods) > 0).all():
        return
    _check_outcome_per_period_pandas(frame, y, time)


def _check_outcome_per_period_pandas(frame: pd.DataFrame, y: str, time: str) -> None:
    observed = frame[y].notna().groupby(frame[time], sort=True).any()
    empty = observed.index[~observed.to_numpy()]
    if len(empty):
        raise InputError(f"outcome '{y}' is missing in every row of period(s) {_examples(empty)} "
                         f"of '{time}'")


def check_cohort_constant(frame: pd.DataFrame, unit: str, cohort: str, *,
                          codes: UnitTimeCodes | None = None) -> None:
    """Raise :class:`InputError` if ``cohort`` takes more than one value within a unit.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    unit, cohort : str
        Unit and cohort (first treated period) columns.
    codes : UnitTimeCodes, optional
        Integer codes of the panel keys, from :func:`unit_time_codes` on the same frame.
    """
    column = frame[cohort]
    if numpy_values(column, "biuf") is not None:
        unit_codes = None
        if codes is not None:
            unit_codes, n_units = codes.unit, codes.n_units
        elif not frame[unit].isna().any():
            unit_codes, n_units = group_codes(frame[unit])
        if unit_codes is not None:
            values = cohort_values(column)
            low = np.full(n_units, np.inf)
            high = np.full(n_units, -np.inf)
            np.minimum.at(low, unit_codes, values)
            np.maximum.at(high, unit_codes, values)
            if (low == high).all():
                return
    _check_cohort_constant_pandas(frame, unit, cohort)


def _check_cohort_constant_pandas(frame: pd.DataFrame, unit: str, cohort: str) -> None:
    values = normalise_cohort(frame[cohort])
    per_unit = values.groupby(frame[unit], sort=False).nunique()
    varying = per_unit.index[per_unit.to_numpy() > 1]
    if len(varying):
        raise InputError(f"column '{cohort}' (cohort) varies within {len(varying)} unit(s) of "
                         f"'{unit}': {_examples(varying)}; rule: one first-treated period per unit")


def check_binary(frame: pd.DataFrame, column: str, role: str) -> None:
    """Raise :class:`InputError` unless ``column`` holds only 0 and 1.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data; its index gives the row numbers in the message.
    column : str
        Column to check.
    role : str
        What the column is for, named in the message.
    """
    if binary_values(frame[column]) is not None:
        return
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        raise InputError(f"column '{column}' ({role}) must be 0/1; {int(bad.sum())} other value(s), "
                         f"rows {_examples(frame.index[bad.to_numpy()])}")


def check_absorbing(frame: pd.DataFrame, unit: str, time: str, treated: str, *,
                    codes: UnitTimeCodes | None = None) -> None:
    """Raise :class:`InputError` naming units whose treatment switches off (1 then 0).

    A unit reverses when some untreated period follows a treated one: its latest untreated
    time exceeds its earliest treated time. Given ``codes``, the caller vouches that each
    (unit, time) pair occurs once (:func:`check_unique_unit_time`); without them this is
    checked here, and panels with duplicates use the reference (sort and difference).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    unit, time, treated : str
        Unit, period and 0/1 treatment columns.
    codes : UnitTimeCodes, optional
        Integer codes of the panel keys, pairs known to be unique.
    """
    is_treated = binary_values(frame[treated])
    if is_treated is not None:
        if codes is None:
            codes = unit_time_codes(frame, unit, time)
            if codes is not None and has_duplicate_pairs(codes):
                codes = None
        if codes is not None and not has_reversal(codes, is_treated):
            return
    _check_absorbing_pandas(frame, unit, time, treated)


def _check_absorbing_pandas(frame: pd.DataFrame, unit: str, time: str, treated: str) -> None:
    ordered = frame[[unit, time, treated]].sort_values([unit, time], kind="stable")
    step = ordered[treated].astype(float).groupby(ordered[unit], sort=False).diff()
    reversed_units = pd.unique(ordered.loc[(step < 0).to_numpy(), unit])
    if len(reversed_units):
        raise InputError(f"treatment '{treated}' reverses (1 then 0) within {len(reversed_units)} "
                         f"unit(s) of '{unit}': {_examples(reversed_units)}; rule: treatment is absorbing")


# ---------------------------------------------------------------------------------------
# treatment bookkeeping
# ---------------------------------------------------------------------------------------

def derive_cohort(frame: pd.DataFrame, *, unit: str, time: str, treated: str,
                  codes: UnitTimeCodes | None = None) -> pd.Series:
    """Each row's cohort: the unit's first period with ``treated == 1`` (0.0 if never).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    unit, time, treated : str
        Unit, period and 0/1 treatment columns.
    codes : UnitTimeCodes, optional
        Precomputed integer codes of ``unit`` and ``time``.

    Returns
    -------
    pandas.Series
        The cohort of each row, aligned with ``frame``.
    """
    values = numpy_values(frame[treated], "biuf")
    if codes is None and values is not None:
        codes = unit_time_codes(frame, unit, time)
    if values is None or codes is None:
        return _derive_cohort_pandas(frame, unit=unit, time=time, treated=treated)
    first = first_treated_time(codes, values == 1)
    first[np.isinf(first)] = 0.0
    return pd.Series(first[codes.unit], index=frame.index, name="cohort", dtype=float)


def _derive_cohort_pandas(frame: pd.DataFrame, *, unit: str, time: str, treated: str) -> pd.Series:
    is_treated = pd.to_numeric(frame[treated]).to_numpy() == 1
    times = frame[time].astype(float).where(is_treated)
    first = times.groupby(frame[unit], sort=False).transform("min")
    return first.fillna(0.0).astype(float).rename("cohort")


def warn_unobserved_adoption(frame: pd.DataFrame, cohort: pd.Series | np.ndarray, *, unit: str,
                             clusters: list[str], treated_name: str = "treated",
                             codes: UnitTimeCodes | None = None) -> None:
    """Warn when units derived as never treated sit in clusters where others were treated.

    With ``treated`` alone, a unit that left the panel before its cluster's rollout looks
    never treated and silently joins the comparison group; passing ``cohort`` (the cluster's
    rollout period) avoids that.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    cohort : pandas.Series or numpy.ndarray
        Each row's derived cohort (0 = never treated).
    unit : str
        Unit column.
    clusters : list of str
        Cluster columns; the first is checked, none means no check.
    treated_name : str, default "treated"
        The user's treatment column (message).
    codes : UnitTimeCodes, optional
        Integer codes of the panel keys, to count units fast.
    """
    if not clusters:
        return
    cluster = frame[clusters[0]]
    cohort_values = np.asarray(cohort, dtype=float)
    if cluster.isna().any():
        cohort_series = pd.Series(cohort_values, index=frame.index)
        treated_cluster = (cohort_series > 0).groupby(cluster.to_numpy(), sort=False).transform("any").to_numpy()
        suspect = (cohort_values == 0) & treated_cluster
    else:
        cluster_codes, n_clusters = group_codes(cluster)
        treated_cluster = np.bincount(cluster_codes[cohort_values > 0], minlength=n_clusters) > 0
        suspect = (cohort_values == 0) & treated_cluster[cluster_codes]
    if suspect.any():
        if codes is not None:
            n_units = int(np.count_nonzero(np.bincount(codes.unit[suspect], minlength=codes.n_units)))
        else:
            n_units = frame.loc[suspect, unit].nunique()
        warnings.warn(f"{n_units} unit(s) never observed treated belong to '{clusters[0]}' clusters that were "
                      f"treated (left before the rollout?); with only '{treated_name}' given they count as never "
                      "treated: pass cohort= (the cluster's first treated period) to keep them in their cohort",
                      ImpactkitWarning, stacklevel=4)


def treated_from_cohort(times: np.ndarray, cohort: np.ndarray) -> np.ndarray:
    """0/1 treatment (int8) of rows with these times and cohorts: ``cohort > 0`` and ``time >= cohort``.

    Parameters
    ----------
    times : numpy.ndarray
        Period of each row (float).
    cohort : numpy.ndarray
        Cohort of each row (0 = never treated).

    Returns
    -------
    numpy.ndarray
        int8, one per row.
    """
    return ((cohort > 0) & (times >= cohort)).astype(np.int8)


def derive_treated(frame: pd.DataFrame, *, time: str, cohort: str) -> pd.Series:
    """Each row's 0/1 treatment: ``cohort > 0`` and ``time >= cohort``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    time, cohort : str
        Period and cohort columns.

    Returns
    -------
    pandas.Series
        0/1 treatment of each row.
    """
    g = cohort_values(frame[cohort])
    t = frame[time].astype(float).to_numpy()
    return pd.Series(treated_from_cohort(t, g), index=frame.index, name="treated")


def drop_missing_outcome(frame: pd.DataFrame, y: str) -> pd.DataFrame:
    """Drop rows with a missing outcome, warning with the count (never a silent drop)."""
    missing = frame[y].isna().to_numpy()
    if missing.any():
        warnings.warn(f"dropped {int(missing.sum())} row(s) with missing outcome '{y}'",
                      ImpactkitWarning, stacklevel=3)
        return frame.loc[~missing]
    return frame


def prepare_panel(frame: pd.DataFrame, *, y: str, unit: str, time: str, cohort: str | None = None,
                  treated: str | None = None, covariates: Sequence[str] | None = None,
                  weights: str | None = None, cluster: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Check a DiD panel and return a frame with columns ``_y, _unit, _time, _cohort, _treated``.

    The returned index is the row position in ``frame`` (0-based), also used in messages.

    Covariates, weights and cluster columns are carried along under their own names. Rows
    with a missing outcome are dropped with an :class:`ImpactkitWarning`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and period.
    y, unit, time : str
        Outcome, unit and period columns.
    cohort : str, optional
        First treated period (0 or missing = never treated).
    treated : str, optional
        0/1 absorbing treatment column; give it, ``cohort`` or both (they must agree).
    covariates : sequence of str, optional
        Numeric covariates (no missing values where the outcome is observed).
    weights : str, optional
        Positive weights.
    cluster : str or sequence of str, optional
        Cluster column(s) (no missing values).

    Returns
    -------
    pandas.DataFrame
        ``_y, _unit, _time, _cohort, _treated`` plus the covariate, weight and cluster columns.

    Raises
    ------
    InputError
        Missing or non-numeric columns, duplicate unit-periods, reversing treatment, a cohort varying
        within a unit, an outcome missing in a whole period, ``treated`` and ``cohort`` disagreeing.
    """
    covariates = list(covariates or [])
    if isinstance(frame, pd.DataFrame):
        frame = frame.reset_index(drop=True)  # rows are named by position in messages
    cluster_cols = [] if cluster is None else ([cluster] if isinstance(cluster, str) else list(cluster))
    require_columns(frame, {"outcome": y, "unit": unit, "time": time, "cohort": cohort,
                            "treated": treated, "covariates": covariates, "weights": weights,
                            "cluster": cluster_cols})
    if cohort is None and treated is None:
        raise InputError("give the treatment as 'cohort' (first treated period) or 'treated' (0/1)")
    check_numeric(frame, y, "outcome")
    check_numeric(frame, time, "time")
    for col, role in [(unit, "unit"), (time, "time")] + [(c, "cluster") for c in cluster_cols]:
        check_no_missing(frame, col, role)
    codes = unit_time_codes(frame, unit, time)
    check_unique_unit_time(frame, unit, time, codes=codes)
    check_outcome_per_period(frame, y, time, codes=codes)
    if treated is not None:
        check_no_missing(frame, treated, "treated")
        check_binary(frame, treated, "treated")
        check_absorbing(frame, unit, time, treated, codes=codes)
    if cohort is not None:
        check_cohort_constant(frame, unit, cohort, codes=codes)
    for col in covariates:
        check_numeric(frame, col, "covariate")
    if weights is not None:
        check_numeric(frame, weights, "weights")

    keep = list(dict.fromkeys([y, unit, time] + [c for c in (cohort, treated) if c]
                              + covariates + ([weights] if weights else []) + cluster_cols))
    work = drop_missing_outcome(frame[keep], y)
    for col in covariates:
        check_no_missing(work, col, "covariate")
    if weights is not None:
        check_no_missing(work, weights, "weights")
        if (work[weights].to_numpy(dtype=float) <= 0).any():
            raise InputError(f"column '{weights}' (weights) must be positive; "
                             f"{int((work[weights] <= 0).sum())} value(s) <= 0")

    # Treatment status is derived from the full panel (a missing outcome does not move a cohort).
    if cohort is not None:
        cohort_full = cohort_values(frame[cohort])
    else:
        cohort_full = derive_cohort(frame, unit=unit, time=time, treated=treated, codes=codes).to_numpy()
        warn_unobserved_adoption(frame, cohort_full, unit=unit, clusters=cluster_cols, treated_name=treated,
                                 codes=codes)
    times_full = codes.times if codes is not None else frame[time].to_numpy(dtype=float)
    treated_full = treated_from_cohort(times_full, cohort_full)
    if cohort is not None and treated is not None:
        given = pd.to_numeric(frame[treated]).to_numpy()
        clash = given != treated_full
        if clash.any():
            raise InputError(f"columns '{treated}' and '{cohort}' disagree in {int(clash.sum())} row(s) "
                             f"(rule: treated = time >= cohort > 0), rows {_examples(frame.index[clash])}")
    kept = None if len(work) == len(frame) else work.index.to_numpy()
    out = pd.DataFrame({
        "_y": work[y].to_numpy(dtype=float),
        "_unit": work[unit].to_numpy(),
        "_time": times_full if kept is None else times_full[kept],
        "_cohort": cohort_full if kept is None else cohort_full[kept],
        "_treated": treated_full if kept is None else treated_full[kept],
    }, index=work.index)
    for col in covariates + ([weights] if weights else []) + cluster_cols:
        if col not in out.columns:
            out[col] = work[col].to_numpy()
    return out


def check_has_controls(panel: pd.DataFrame, *, need_never_treated: bool, unit: str = "unit") -> None:
    """Raise :class:`EstimationError` when there is nothing to compare the treated with.

    Parameters
    ----------
    panel : pandas.DataFrame
        Output of :func:`prepare_panel`.
    need_never_treated : bool
        Require never-treated units (``cohort == 0``).
    unit : str
        The user's unit column, for the message.

    Raises
    ------
    EstimationError
        No (never-)treated controls, or no treated rows.
    """
    never = panel["_cohort"].to_numpy() == 0
    if need_never_treated and not never.any():
        raise EstimationError(f"no control units: every unit of '{unit}' is treated at some point "
                              f"(rule: this method compares with never-treated units; "
                              f"use control='notyet' or 'last')")
    if not (panel["_treated"].to_numpy() == 0).any():
        raise EstimationError("no control units: every row is treated")
    if not (panel["_treated"].to_numpy() == 1).any():
        raise EstimationError("no treated units: treatment is 0 in every row")
