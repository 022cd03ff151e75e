"""Callaway-Sant'Anna, stage 1: the long panel checked and reshaped into unit x period arrays.

Built once per call (one pass, no groupby); the cells of :mod:`impactkit.did.cs_cells` index it.
R ``did``'s cohort conventions (:func:`prepare_cohorts`) and its balanced sub-panel default
(:func:`balance_panel`) are applied here too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.did.drdid import collinear_columns_from_gram
from impactkit.errors import EstimationError, ImpactkitWarning, InputError


# --------------------------------------------------------------------------------------------
# data preparation: one wide unit x period matrix, built once
# --------------------------------------------------------------------------------------------
@dataclass
class PanelArrays:
    """The long panel as unit-level numpy arrays (rows = units sorted by id, columns = periods)."""

    unit_ids: np.ndarray
    periods: np.ndarray
    outcome: np.ndarray                 # n x T, NaN where unobserved
    design: np.ndarray                  # T x n x (1 + k) with intercept, or 1 x n x (1 + k)
    design_time_invariant: bool
    cohort: np.ndarray                  # n, float, 0 = never treated
    weights: np.ndarray                 # n
    cluster_codes: np.ndarray | None    # n
    covariate_names: tuple[str, ...]

    @property
    def n_units(self) -> int:
        return int(self.outcome.shape[0])

    def design_at(self, period_index: int) -> np.ndarray:
        return self.design[0 if self.design_time_invariant else period_index]

    def keep_units(self, mask: np.ndarray) -> PanelArrays:
        codes = self.cluster_codes
        if codes is not None:
            codes = np.unique(codes[mask], return_inverse=True)[1].astype(np.intp)
        return PanelArrays(self.unit_ids[mask], self.periods, self.outcome[mask], self.design[:, mask],
                           self.design_time_invariant, self.cohort[mask], self.weights[mask], codes,
                           self.covariate_names)

    def keep_periods(self, mask: np.ndarray) -> PanelArrays:
        design = self.design if self.design_time_invariant else self.design[mask]
        return PanelArrays(self.unit_ids, self.periods[mask], self.outcome[:, mask], design,
                           self.design_time_invariant, self.cohort, self.weights, self.cluster_codes,
                           self.covariate_names)


def numeric_column(frame: pd.DataFrame, column: str, role: str) -> np.ndarray:
    """A numeric (or boolean) column as floats.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    column : str
        Column to read.
    role : str
        What the column is for (messages: ``"covariate"``, ``"weights"``).

    Returns
    -------
    numpy.ndarray
        Float values, NaN where missing.

    Raises
    ------
    InputError
        The column is not numeric or boolean.
    """
    series = frame[column]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=float, na_value=np.nan)
    raise InputError(f"column '{column}' ({role}) must be numeric, found dtype {series.dtype}")


def _per_unit_constant(values: np.ndarray, codes: np.ndarray, period_index: np.ndarray, shape: tuple[int, int],
                       column: str, rule: str) -> np.ndarray:
    """The value each unit carries in ``values``; InputError if it varies within a unit.

    Parameters
    ----------
    values : numpy.ndarray
        One value per row.
    codes : numpy.ndarray
        Unit code of each row, 0..n_units-1.
    period_index : numpy.ndarray
        Period index of each row.
    shape : tuple of int
        ``(n_units, n_periods)``.
    column : str
        The column, for messages.
    rule : str
        Why it must be constant, for messages.

    Returns
    -------
    numpy.ndarray
        One value per unit.
    """
    low = np.full(shape, np.inf)
    high = np.full(shape, -np.inf)
    low[codes, period_index] = values
    high[codes, period_index] = values
    low, high = low.min(axis=1), high.max(axis=1)
    varying = np.flatnonzero(low != high)
    if varying.size:
        rows = np.flatnonzero(codes == varying[0])   # row positions, never the (possibly personal) unit id
        raise InputError(f"column '{column}' varies within unit for {varying.size} unit(s) "
                         f"(first: rows {', '.join(str(r) for r in rows[:5])}); rule: {rule}")
    return low




def _unit_design(frame: pd.DataFrame, covariate_names: tuple[str, ...], codes: np.ndarray,
                 period_index: np.ndarray, wide_shape: tuple[int, int],
                 outcome_values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Design ``[1, covariates]`` per unit: ``1 x n x (1+k)`` when covariates never change within a
    unit (and no row with an observed outcome lacks one), else ``T x n x (1+k)`` (NaN = unobserved).
    Raises InputError naming covariates collinear with the intercept or earlier covariates.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel with the covariate columns.
    covariate_names : tuple of str
        Covariates, in design order.
    codes : numpy.ndarray
        Unit code of each row, 0..n_units-1.
    period_index : numpy.ndarray
        Period index of each row.
    wide_shape : tuple of int
        ``(n_units, n_periods)``.
    outcome_values : numpy.ndarray
        Outcome of each row (NaN where missing).

    Returns
    -------
    design : numpy.ndarray
        ``1 x n x (1+k)`` or ``T x n x (1+k)``.
    time_invariant : bool
        True for the ``1 x n x (1+k)`` form.
    """
    n_units, n_periods = wide_shape
    if not covariate_names:
        return np.ones((1, n_units, 1)), True
    columns = [numeric_column(frame, c, "covariate") for c in covariate_names]
    covariates_finite = np.isfinite(np.sum(columns, axis=0))
    complete_rows = covariates_finite & np.isfinite(outcome_values)
    kept = [np.ones(int(complete_rows.sum()))] + [c[complete_rows] for c in columns]
    # einsum (no BLAS): OpenBLAS's threaded vector dot stalls on busy machines
    gram = np.array([[np.einsum("i,i->", a, b) for b in kept] for a in kept]) / max(len(kept[0]), 1)
    collinear = collinear_columns_from_gram(gram, covariate_names)
    if collinear:
        raise InputError(f"covariate(s) {collinear} are collinear with the intercept or earlier covariates")
    row_gap = bool(np.any(np.isfinite(outcome_values) & ~covariates_finite))
    unit_values = []
    invariant = not row_gap
    for column in columns:
        finite = np.isfinite(column)
        low = np.full(wide_shape, np.inf)
        high = np.full(wide_shape, -np.inf)
        low[codes, period_index] = np.where(finite, column, np.inf)
        high[codes, period_index] = np.where(finite, column, -np.inf)
        low, high = low.min(axis=1), high.max(axis=1)
        invariant = invariant and bool(np.all((low == high) | np.isinf(low)))
        unit_values.append(np.where(np.isinf(high), np.nan, high))
    if invariant:
        return np.column_stack([np.ones(n_units)] + unit_values)[np.newaxis], True
    design = np.full((n_periods, n_units, 1 + len(columns)), np.nan)
    design[:, :, 0] = 1.0
    for j, column in enumerate(columns, start=1):
        design[period_index, codes, j] = column
    return design, False


def build_panel_arrays(frame: pd.DataFrame, *, y: str, unit: str, time: str, cohort: str,
                       covariates: list[str] | None = None, weights: str | None = None,
                       cluster: str | None = None) -> PanelArrays:
    """Validate the long panel and reshape it into unit x period arrays (one pass, no groupby).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and period (rows with a missing outcome are unobserved).
    y, unit, time, cohort : str
        Outcome, unit, period and first-treated-period columns.
    covariates : list of str, optional
        Covariates.
    weights : str, optional
        Sampling weights, constant within unit.
    cluster : str, optional
        Cluster column, constant within unit.

    Returns
    -------
    PanelArrays

    Raises
    ------
    InputError
        Missing or non-numeric columns, duplicate unit-periods, a cohort, weight or cluster varying
        within a unit, an outcome missing in a whole period, collinear covariates.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    covariate_names = tuple(covariates or ())
    needed = [y, unit, time, cohort, *covariate_names] + [c for c in (weights, cluster) if c]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not found in data")
    if len(frame) == 0:
        raise InputError("data has no rows")
    for column, role in ((unit, "unit"), (time, "time")):
        n_null = int(frame[column].isna().sum())
        if n_null:
            raise InputError(f"column '{column}' ({role}) has {n_null} missing value(s)")
    time_values = numeric_column(frame, time, "time")
    outcome_values = numeric_column(frame, y, "outcome")
    cohort_values = np.nan_to_num(numeric_column(frame, cohort, "cohort"), nan=0.0)
    if np.any(cohort_values < 0) or np.any(~np.isfinite(cohort_values)):
        raise InputError(f"column '{cohort}' (cohort) must hold the first treated period, 0 or missing "
                         "for never treated; found negative or infinite values")

    codes, unit_ids = pd.factorize(frame[unit], sort=True)
    unit_ids = np.asarray(unit_ids)
    n_units = len(unit_ids)
    periods = np.unique(time_values)
    period_index = np.searchsorted(periods, time_values)
    wide_shape = (n_units, len(periods))
    cell = codes.astype(np.int64) * len(periods) + period_index
    counts = np.bincount(cell, minlength=n_units * len(periods))
    if np.any(counts > 1):
        first = int(np.argmax(counts > 1))
        rows = np.flatnonzero(cell == first)
        raise InputError(f"{int((counts > 1).sum())} duplicated ({unit}, {time}) pair(s) (first: rows "
                         f"{', '.join(str(r) for r in rows[:5])}, {time} {periods[first % len(periods)]:g}); "
                         "rule: one row per unit and period")

    outcome = np.full((n_units, len(periods)), np.nan)
    outcome[codes, period_index] = outcome_values
    all_missing = np.flatnonzero(np.all(np.isnan(outcome), axis=0))
    if all_missing.size:
        raise InputError(f"outcome '{y}' is missing for every unit in {time} "
                         f"{', '.join(f'{p:g}' for p in periods[all_missing])}")

    unit_cohort = _per_unit_constant(cohort_values, codes, period_index, wide_shape, cohort,
                                     "the first treated period is fixed per unit (no treatment reversal)")
    if weights:
        weight_values = numeric_column(frame, weights, "sampling weight")
        if np.any(~np.isfinite(weight_values)) or np.any(weight_values < 0):
            raise InputError(f"column '{weights}' (sampling weight) has missing, infinite or negative values")
        unit_weights = _per_unit_constant(weight_values, codes, period_index, wide_shape, weights,
                                          "sampling weights are fixed per unit")
        if not np.any(unit_weights > 0):
            raise InputError(f"column '{weights}' (sampling weight) is zero for every unit")
    else:
        unit_weights = np.ones(n_units)

    cluster_codes = None
    if cluster:
        if frame[cluster].isna().any():
            raise InputError(f"column '{cluster}' (cluster) has {int(frame[cluster].isna().sum())} missing value(s)")
        row_clusters = pd.factorize(frame[cluster], sort=True)[0].astype(float)
        cluster_codes = _per_unit_constant(row_clusters, codes, period_index, wide_shape, cluster,
                                           "clusters must nest units").astype(np.intp)
        cluster_codes = np.unique(cluster_codes, return_inverse=True)[1].astype(np.intp)

    design, invariant = _unit_design(frame, covariate_names, codes, period_index, wide_shape, outcome_values)
    return PanelArrays(unit_ids, periods, outcome, design, invariant, unit_cohort, unit_weights,
                       cluster_codes, covariate_names)


def prepare_cohorts(arrays: PanelArrays, control: str, anticipation: int, cohort: str,
                     messages: list[str]) -> PanelArrays:
    """Apply R ``did``'s cohort conventions (late cohorts, early cohorts, no never-treated).

    Parameters
    ----------
    arrays : PanelArrays
        The wide panel (:mod:`impactkit.did.cs_panel`); its ``cohort`` is edited in place.
    control : {"never", "notyet"}
        Comparison group; without never-treated units ``"notyet"`` uses the last cohort.
    anticipation : int
        Periods of anticipation.
    cohort : str
        The user's cohort column (messages).
    messages : list of str
        Notes for the result; appended to.

    Returns
    -------
    PanelArrays
        The panel without cohorts lacking a pre-period (and, without never-treated units, without
        the last cohort's treated periods).
    """
    periods = arrays.periods
    late = arrays.cohort > periods[-1]
    if late.any():
        arrays.cohort[late] = 0.0
        messages.append(f"{int(late.sum())} unit(s) first treated after the last period are treated as never treated.")
    early = (arrays.cohort > 0) & (arrays.cohort - anticipation <= periods[0])
    if early.any():
        cohorts = sorted({float(c) for c in arrays.cohort[early]})
        text = (f"{int(early.sum())} unit(s) of cohort(s) {', '.join(f'{c:g}' for c in cohorts)} have no "
                f"pre-treatment period and are dropped.")
        warnings.warn(text, ImpactkitWarning, stacklevel=3)
        messages.append(text)
        arrays = arrays.keep_units(~early)
    if not np.any(arrays.cohort > 0):
        raise EstimationError(f"no treated units: column '{cohort}' has no cohort with a pre-treatment period")
    if not np.any(arrays.cohort == 0):
        if control == "never":
            raise EstimationError(f"no never-treated units (column '{cohort}' is never 0 or missing) to serve "
                                  "as controls; use control='notyet'")
        last = arrays.cohort.max()
        keep = arrays.periods < last - anticipation
        if keep.sum() < 2 or not np.any((arrays.cohort > 0) & (arrays.cohort < last)):
            raise EstimationError(f"no never-treated units and no not-yet-treated controls: every unit is treated "
                                  f"by {arrays.periods[0]:g} or only one cohort ({last:g}) exists")
        arrays = arrays.keep_periods(keep)
        arrays.cohort[arrays.cohort == last] = 0.0
        messages.append(f"No never-treated units: periods from {last - anticipation:g} on are dropped and cohort "
                        f"{last:g} is the comparison group.")
        return prepare_cohorts(arrays, control, anticipation, cohort, messages)
    return arrays


def balanced_subpanel_notice(n_dropped: int, n_units: int, y: str, unit: str) -> str:
    """The warning for units dropped to keep the balanced sub-panel (R ``did``'s default);
    :class:`EstimationError` when no unit is left. Shared by the pandas and Dask engines.

    Parameters
    ----------
    n_dropped : int
        Units missing the outcome or a covariate in some period.
    n_units : int
        All units.
    y, unit : str
        Outcome and unit columns (messages).

    Returns
    -------
    str
        The one-line warning.
    """
    if n_dropped >= n_units:
        raise EstimationError(f"no unit of '{unit}' has '{y}' (and covariates) in every period; "
                              "pass allow_unbalanced=True for the unbalanced-panel estimator")
    return (f"Unbalanced panel: {n_dropped} of {n_units} unit(s) of '{unit}' miss '{y}' or a covariate in "
            "some period and are dropped to keep the balanced sub-panel (R did's default); pass "
            "allow_unbalanced=True for the unbalanced-panel estimator.")


def balance_panel(arrays: PanelArrays, complete: np.ndarray, y: str, unit: str,
             messages: list[str]) -> tuple[PanelArrays, np.ndarray]:
    """Keep the units observed (outcome and covariates) in every period, as R ``did`` does by
    default (``allow_unbalanced_panel = FALSE``); warn with the number of units dropped.

    Parameters
    ----------
    arrays : PanelArrays
        The wide panel.
    complete : numpy.ndarray
        n_units x n_periods, True where the outcome and covariates are observed.
    y, unit : str
        Outcome and unit columns (messages).
    messages : list of str
        Notes for the result; appended to.

    Returns
    -------
    arrays : PanelArrays
        The balanced sub-panel.
    complete : numpy.ndarray
        ``complete`` restricted to its units.
    """
    full = complete.all(axis=1)
    text = balanced_subpanel_notice(int((~full).sum()), full.size, y, unit)
    warnings.warn(text, ImpactkitWarning, stacklevel=3)
    messages.append(text)
    return arrays.keep_units(full), complete[full]
