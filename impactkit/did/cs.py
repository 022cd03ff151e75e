"""Callaway & Sant'Anna (2021) group-time average treatment effects for staggered adoption.

Reference: Callaway, B. & Sant'Anna, P. H. C. (2021), "Difference-in-Differences with multiple
time periods", *Journal of Econometrics* 225(2), 200-230. ``ATT(g,t)`` is identified by a
2x2 comparison of the units first treated in ``g`` with a comparison group (never-treated,
eq. 2.5-2.7, or not-yet-treated, eq. 2.8) between period ``t`` and a base period
(``g - anticipation - 1`` for post-treatment cells; ``t - 1`` for pre-treatment cells when
``base_period="varying"``; always ``g - anticipation - 1`` when ``"universal"``).

Each 2x2 is estimated with the panel estimators of Sant'Anna & Zhao (2020), "Doubly robust
difference-in-differences estimators", *J. Econometrics* 219(1), 101-122, exactly as R
``DRDID`` (used by R ``did`` 2.x):

- ``est="dr"``: locally efficient doubly robust estimator, eq. (3.1) (``drdid_panel``), with a
  logit propensity score and a linear outcome-change regression on the comparison units;
- ``est="ipw"``: normalized (Hajek) inverse-probability-weighted estimator, eq. (2.4)
  (``std_ipw_did_panel``);
- ``est="reg"``: outcome regression, eq. (2.2) (``reg_did_panel``, Heckman, Ichimura & Todd 1997).

Propensity scores are clipped to ``[1e-6, 1 - 1e-6]`` and comparison units with a score of
0.995 or more get weight zero (DRDID's trimming). Every estimate keeps its influence function
(``n_units x n_cells``), so aggregation (:mod:`impactkit.did.aggregate`), clustered standard
errors and the multiplier bootstrap (:mod:`impactkit.did.multiplier`) need no refit.

Conventions shared with R ``did`` (documented departures marked *):

- cohort ``0`` or missing means never treated; a cohort after the last period is treated as
  never treated; units whose cohort leaves no pre-treatment period (``cohort - anticipation <=``
  first period) are dropped with an :class:`ImpactkitWarning` (R drops those treated in the
  first period);
- ``control="notyet"`` without never-treated units keeps only periods before
  ``max(cohort) - anticipation`` and uses the last cohort as the comparison group;
- covariates enter at the earlier period of each 2x2 (time-invariant covariates are typical);
- sampling ``weights`` must be constant within unit; they are normalized to mean one within each
  2x2 and enter the aggregation weights as in ``did::aggte``;
- unbalanced panels, by default (``allow_unbalanced=False``, R's default): the balanced sub-panel is
  kept (units observed with outcome and covariates in every period) and an :class:`ImpactkitWarning`
  says how many units were dropped;
- unbalanced panels with ``allow_unbalanced=True`` (R ``allow_unbalanced_panel=TRUE``): each ATT(g,t)
  stacks the observed rows (outcome and covariates present) of its two periods and uses the
  repeated-cross-section estimators of Sant'Anna & Zhao (2020, Sec. 3.2: ``drdid_rc``,
  ``std_ipw_did_rc``, ``reg_did_rc``) with each row's own covariates; the row influence function,
  scaled by ``n_units / n_rows``, is summed within unit. Units without any complete row are dropped.
  A balanced panel always uses the panel estimators;
- clustering: analytic standard errors sum the influence function within clusters (Liang-Zeger),
  as csdid 0.4.3 does for R ``did`` 2.5 with ``bstrap=FALSE``; clusters must nest units;
- a cell whose cohort has no observed row in one of its two periods is skipped with an
  :class:`ImpactkitWarning`; a cell without comparison units raises :class:`EstimationError`;
- \\* uniform bands: sup-t critical value from the multiplier bootstrap, studentized by the analytic
  standard errors (R studentizes by bootstrap interquartile-range standard errors);
- a cohort with a single unit gives an :class:`ImpactkitWarning` (its ATT(g,t) is estimable but
  its influence-function standard error rests on one unit).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from impactkit.did.base import DidEstimator, DidPanel, DidResult, att_dict, event_study_frame
from impactkit.did.data import check_has_controls
from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.results import Result, to_plain

ESTIMATORS = ("dr", "ipw", "reg")
CONTROLS = ("never", "notyet")
BASE_PERIODS = ("varying", "universal")
PS_CLIP = 1e-6
PS_TRIM = 0.995
ATT_GT_COLUMNS = ("group", "time", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n")


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


def _numeric_column(frame: pd.DataFrame, column: str, role: str) -> np.ndarray:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=float, na_value=np.nan)
    raise InputError(f"column '{column}' ({role}) must be numeric, found dtype {series.dtype}")


def _per_unit_constant(values: np.ndarray, codes: np.ndarray, period_index: np.ndarray, shape: tuple[int, int],
                       column: str, rule: str) -> np.ndarray:
    """The value each unit carries in ``values``; InputError if it varies within a unit."""
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


def _collinear_columns_from_gram(gram: np.ndarray, names: tuple[str, ...], rel_tol: float = 1e-10) -> list[str]:
    """Names of covariates that are linear combinations of the intercept and earlier covariates.

    ``gram`` is ``X'X/n`` for ``X = [1, covariates]``. Column ``j`` is collinear when its residual
    second moment after projecting on the kept earlier columns (a Schur complement, i.e. the
    squared diagonal of R in a QR decomposition) is below ``rel_tol`` times its own (R^2 > 1 - 1e-10).
    """
    labels = ("(intercept)",) + names
    kept: list[int] = []
    collinear = []
    for j in range(gram.shape[0]):
        own = gram[j, j]
        residual = own
        if kept:
            cross = gram[np.ix_(kept, [j])]
            residual = own - float((cross.T @ np.linalg.solve(gram[np.ix_(kept, kept)], cross))[0, 0])
        if own <= 0 or residual <= rel_tol * own:
            if j > 0:
                collinear.append(labels[j])
            continue
        kept.append(j)
    return collinear


def _collinear_columns(design: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """:func:`_collinear_columns_from_gram` for a design matrix ``[1, covariates]``."""
    if design.shape[0] == 0:
        return []
    return _collinear_columns_from_gram(design.T @ design / design.shape[0], names)


def _unit_design(frame: pd.DataFrame, covariate_names: tuple[str, ...], codes: np.ndarray,
                 period_index: np.ndarray, wide_shape: tuple[int, int],
                 outcome_values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Design ``[1, covariates]`` per unit: ``1 x n x (1+k)`` when covariates never change within a
    unit (and no row with an observed outcome lacks one), else ``T x n x (1+k)`` (NaN = unobserved).
    Raises InputError naming covariates collinear with the intercept or earlier covariates."""
    n_units, n_periods = wide_shape
    if not covariate_names:
        return np.ones((1, n_units, 1)), True
    columns = [_numeric_column(frame, c, "covariate") for c in covariate_names]
    covariates_finite = np.isfinite(np.sum(columns, axis=0))
    complete_rows = covariates_finite & np.isfinite(outcome_values)
    kept = [np.ones(int(complete_rows.sum()))] + [c[complete_rows] for c in columns]
    # einsum (no BLAS): OpenBLAS's threaded vector dot stalls on busy machines
    gram = np.array([[np.einsum("i,i->", a, b) for b in kept] for a in kept]) / max(len(kept[0]), 1)
    collinear = _collinear_columns_from_gram(gram, covariate_names)
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
    """Validate the long panel and reshape it into unit x period arrays (one pass, no groupby)."""
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
    time_values = _numeric_column(frame, time, "time")
    outcome_values = _numeric_column(frame, y, "outcome")
    cohort_values = np.nan_to_num(_numeric_column(frame, cohort, "cohort"), nan=0.0)
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
        weight_values = _numeric_column(frame, weights, "sampling weight")
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


# --------------------------------------------------------------------------------------------
# the 2x2 panel estimators of Sant'Anna & Zhao (2020); inputs already restricted to the cell
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PropensityFit:
    """Fitted logit scores (clipped) and the asymptotic linear representation of its coefficients."""

    score: np.ndarray
    linear_rep: np.ndarray   # n x k: psi of the logit coefficients (score x n * inverse Hessian)


def fit_logit(treated: np.ndarray, design: np.ndarray, weights: np.ndarray, label: str,
              names: tuple[str, ...] = (), max_iter: int = 100, tol: float = 1e-13) -> PropensityFit:
    """Weighted logit MLE by Newton-Raphson (the fixed point of R ``glm(..., binomial)``).

    Returns scores clipped to ``[1e-6, 1 - 1e-6]`` and ``psi_beta = w (D - p) X (X'WX/n)^-1``
    (Sant'Anna & Zhao 2020, proof of Theorem 3.1), with ``W = w p (1 - p)``.
    """
    n, k = design.shape
    if np.linalg.cond(design.T @ (design * weights[:, None])) > 1.0 / np.finfo(float).eps:
        bad = _collinear_columns(design * np.sqrt(weights)[:, None], names)
        raise EstimationError(f"propensity score for {label} is not identified: covariates collinear"
                              f"{' ' + str(bad) if bad else ''} in the cohort and its comparison units")
    share = np.sum(weights * treated) / np.sum(weights)
    beta = np.zeros(k)
    beta[0] = np.log(share / (1.0 - share))
    converged = False
    for _ in range(max_iter):
        prob = expit(design @ beta)
        gradient = design.T @ (weights * (treated - prob))
        hessian = design.T @ (design * (weights * prob * (1.0 - prob))[:, None])
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError as exc:
            raise EstimationError(f"propensity score for {label} is not identified (singular logit Hessian; "
                                  "separation?)") from exc
        beta = beta + step
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(beta))):
            converged = True
            break
    if not converged or not np.all(np.isfinite(beta)):
        warnings.warn(f"propensity score logit for {label} did not converge (possible separation)",
                      ImpactkitWarning, stacklevel=3)
    score = np.clip(expit(design @ beta), PS_CLIP, 1.0 - PS_CLIP)
    info = design.T @ (design * (weights * score * (1.0 - score))[:, None]) / n
    linear_rep = (weights * (treated - score))[:, None] * design @ np.linalg.inv(info)
    return PropensityFit(score, linear_rep)


def control_gram_inverse(treated: np.ndarray, design: np.ndarray, weights: np.ndarray, label: str,
                         names: tuple[str, ...]) -> np.ndarray:
    """``(X' W0 X / n)^-1`` over comparison units (``W0 = w (1 - D)``); EstimationError if singular."""
    control_weights = weights * (1.0 - treated)
    gram = design.T @ (design * control_weights[:, None]) / len(design)
    if np.linalg.cond(gram) > 1.0 / np.finfo(float).eps:
        bad = _collinear_columns(design[treated == 0], names)
        raise EstimationError(f"outcome regression for {label} is singular among comparison units"
                              f"{': collinear ' + str(bad) if bad else ''}")
    return np.linalg.inv(gram)


def _control_ols(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                 label: str, names: tuple[str, ...], gram_inv: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS of the outcome change on covariates among comparison units.

    Returns fitted changes for every unit and the coefficients' linear representation
    ``w (1 - D) e X (X'W0X/n)^-1``; ``gram_inv`` may be passed when shared across cells.
    """
    n = len(delta_y)
    control_weights = weights * (1.0 - treated)
    if gram_inv is None:
        gram_inv = control_gram_inverse(treated, design, weights, label, names)
    beta = gram_inv @ (design.T @ (control_weights * delta_y) / n)
    fitted = design @ beta
    linear_rep = (control_weights * (delta_y - fitted))[:, None] * design @ gram_inv
    return fitted, linear_rep


def _trimmed_control_weights(treated: np.ndarray, weights: np.ndarray,
                             ps: PropensityFit) -> tuple[np.ndarray, np.ndarray]:
    """Treated weights ``w D`` and comparison weights ``w p (1 - D) / (1 - p)``, zero if ``p >= 0.995``."""
    keep = np.where(treated == 1, True, ps.score < PS_TRIM)
    w_treat = weights * treated
    w_cont = keep * weights * ps.score * (1.0 - treated) / (1.0 - ps.score)
    return w_treat, w_cont


def att_dr_panel(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                 ps: PropensityFit, label: str, names: tuple[str, ...] = (),
                 gram_inv: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Locally efficient DR DiD, Sant'Anna & Zhao (2020) eq. (3.1); ATT and influence function."""
    fitted, ols_rep = _control_ols(delta_y, treated, design, weights, label, names, gram_inv)
    w_treat, w_cont = _trimmed_control_weights(treated, weights, ps)
    mean_treat, mean_cont = w_treat.mean(), w_cont.mean()
    if mean_cont == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    residual = delta_y - fitted
    dr_treat = w_treat * residual
    dr_cont = w_cont * residual
    eta_treat = dr_treat.mean() / mean_treat
    eta_cont = dr_cont.mean() / mean_cont
    inf_treat = (dr_treat - w_treat * eta_treat - ols_rep @ (w_treat @ design / len(design))) / mean_treat
    cont_centered = dr_cont - w_cont * eta_cont
    inf_cont = (cont_centered + ps.linear_rep @ (cont_centered @ design / len(design))
                - ols_rep @ (w_cont @ design / len(design))) / mean_cont
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def att_ipw_panel(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                  ps: PropensityFit, label: str, names: tuple[str, ...] = (),
                  gram_inv: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Normalized (Hajek) IPW DiD, Abadie (2005) / Sant'Anna & Zhao (2020) eq. (2.4)."""
    w_treat, w_cont = _trimmed_control_weights(treated, weights, ps)
    mean_treat, mean_cont = w_treat.mean(), w_cont.mean()
    if mean_cont == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    att_treat = w_treat * delta_y
    att_cont = w_cont * delta_y
    eta_treat = att_treat.mean() / mean_treat
    eta_cont = att_cont.mean() / mean_cont
    inf_treat = (att_treat - w_treat * eta_treat) / mean_treat
    cont_centered = att_cont - w_cont * eta_cont
    inf_cont = (cont_centered + ps.linear_rep @ (cont_centered @ design / len(design))) / mean_cont
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def att_reg_panel(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                  ps: PropensityFit | None, label: str, names: tuple[str, ...] = (),
                  gram_inv: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD, Heckman, Ichimura & Todd (1997); Sant'Anna & Zhao (2020) eq. (2.2)."""
    fitted, ols_rep = _control_ols(delta_y, treated, design, weights, label, names, gram_inv)
    w_treat = weights * treated
    mean_treat = w_treat.mean()
    att_treat = w_treat * delta_y
    att_cont = w_treat * fitted
    eta_treat = att_treat.mean() / mean_treat
    eta_cont = att_cont.mean() / mean_treat
    inf_treat = (att_treat - w_treat * eta_treat) / mean_treat
    inf_cont = (att_cont - w_treat * eta_cont + ols_rep @ (w_treat @ design / len(design))) / mean_treat
    return float(eta_treat - eta_cont), inf_treat - inf_cont


_ESTIMATOR_FUNCTIONS = {"dr": att_dr_panel, "ipw": att_ipw_panel, "reg": att_reg_panel}


# --------------------------------------------------------------------------------------------
# repeated-cross-section estimators (Sant'Anna & Zhao 2020, Sec. 3.2), used for unbalanced
# panels as R ``did`` does with ``allow_unbalanced_panel=TRUE``; inputs are the stacked rows of
# the cell (``post`` = 1 for rows of period t, 0 for rows of the base period)
# --------------------------------------------------------------------------------------------
def _subset_ols(y: np.ndarray, subset: np.ndarray, design: np.ndarray, weights: np.ndarray,
                label: str, names: tuple[str, ...], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS of ``y`` on ``design`` within ``subset`` (0/1): fitted values for all rows and
    the coefficients' linear representation ``w s e X (X'WsX/n)^-1``."""
    n = len(y)
    ols_weights = weights * subset
    gram = design.T @ (design * ols_weights[:, None]) / n
    if np.linalg.cond(gram) > 1.0 / np.finfo(float).eps:
        bad = _collinear_columns(design[subset == 1], names)
        raise EstimationError(f"outcome regression for {label} is singular among {what}"
                              f"{': collinear ' + str(bad) if bad else ''}")
    gram_inv = np.linalg.inv(gram)
    fitted = design @ (gram_inv @ (design.T @ (ols_weights * y) / n))
    linear_rep = (ols_weights * (y - fitted))[:, None] * design @ gram_inv
    return fitted, linear_rep


def _colmeans(weights: np.ndarray, design: np.ndarray) -> np.ndarray:
    return weights @ design / len(design)


def att_dr_rc(y: np.ndarray, post: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
              ps: PropensityFit, label: str, names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """Locally efficient DR DiD for repeated cross sections, Sant'Anna & Zhao (2020) eq. (3.4)
    (R ``DRDID::drdid_rc``): ATT and its influence function over the stacked rows.

    The base-period outcome-regression estimation effects enter with a minus sign (the base-period
    terms are subtracted in the estimator), as in R DRDID and csdid; moderndid 0.2.0 adds them.
    """
    pre = 1.0 - post
    control = 1.0 - treated
    cont_pre, rep_cont_pre = _subset_ols(y, control * pre, design, weights, label, names, "comparison units (base)")
    cont_post, rep_cont_post = _subset_ols(y, control * post, design, weights, label, names, "comparison units (t)")
    treat_pre, rep_treat_pre = _subset_ols(y, treated * pre, design, weights, label, names, "treated units (base)")
    treat_post, rep_treat_post = _subset_ols(y, treated * post, design, weights, label, names, "treated units (t)")
    cont_fit = post * cont_post + pre * cont_pre
    keep = np.where(treated == 1, True, ps.score < PS_TRIM)
    odds = ps.score / (1.0 - ps.score)
    w_treat_pre, w_treat_post = keep * weights * treated * pre, keep * weights * treated * post
    w_cont_pre, w_cont_post = keep * weights * odds * control * pre, keep * weights * odds * control * post
    w_d, w_dt1, w_dt0 = keep * weights * treated, w_treat_post, w_treat_pre
    if min(w_cont_pre.mean(), w_cont_post.mean()) == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    residual = y - cont_fit

    def eta(w: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
        scaled = w * values / w.mean()
        return scaled, float(scaled.mean())

    eta_treat_pre, att_treat_pre = eta(w_treat_pre, residual)
    eta_treat_post, att_treat_post = eta(w_treat_post, residual)
    eta_cont_pre, att_cont_pre = eta(w_cont_pre, residual)
    eta_cont_post, att_cont_post = eta(w_cont_post, residual)
    eta_d_post, att_d_post = eta(w_d, treat_post - cont_post)
    eta_dt1_post, att_dt1_post = eta(w_dt1, treat_post - cont_post)
    eta_d_pre, att_d_pre = eta(w_d, treat_pre - cont_pre)
    eta_dt0_pre, att_dt0_pre = eta(w_dt0, treat_pre - cont_pre)
    att = ((att_treat_post - att_treat_pre) - (att_cont_post - att_cont_pre)
           + (att_d_post - att_dt1_post) - (att_d_pre - att_dt0_pre))

    inf_treat = ((eta_treat_post - w_treat_post * att_treat_post / w_treat_post.mean())
                 - (eta_treat_pre - w_treat_pre * att_treat_pre / w_treat_pre.mean())
                 + rep_cont_post @ (-_colmeans(w_treat_post * post, design) / w_treat_post.mean())
                 - rep_cont_pre @ (-_colmeans(w_treat_pre * pre, design) / w_treat_pre.mean()))
    ps_moment = (_colmeans(w_cont_post * (residual - att_cont_post), design) / w_cont_post.mean()
                 - _colmeans(w_cont_pre * (residual - att_cont_pre), design) / w_cont_pre.mean())
    inf_cont = ((eta_cont_post - w_cont_post * att_cont_post / w_cont_post.mean())
                - (eta_cont_pre - w_cont_pre * att_cont_pre / w_cont_pre.mean())
                + ps.linear_rep @ ps_moment
                + rep_cont_post @ (-_colmeans(w_cont_post * post, design) / w_cont_post.mean())
                - rep_cont_pre @ (-_colmeans(w_cont_pre * pre, design) / w_cont_pre.mean()))
    inf_eff = ((eta_d_post - w_d * att_d_post / w_d.mean()) - (eta_dt1_post - w_dt1 * att_dt1_post / w_dt1.mean())
               - (eta_d_pre - w_d * att_d_pre / w_d.mean()) + (eta_dt0_pre - w_dt0 * att_dt0_pre / w_dt0.mean()))
    moment_post = _colmeans(w_d / w_d.mean() - w_dt1 / w_dt1.mean(), design)
    moment_pre = _colmeans(w_d / w_d.mean() - w_dt0 / w_dt0.mean(), design)
    inf_or = (rep_treat_post - rep_cont_post) @ moment_post - (rep_treat_pre - rep_cont_pre) @ moment_pre
    return float(att), inf_treat - inf_cont + inf_eff + inf_or


def att_ipw_rc(y: np.ndarray, post: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
               ps: PropensityFit, label: str, names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """Normalized IPW DiD for repeated cross sections, Sant'Anna & Zhao (2020) eq. (2.5)
    (R ``DRDID::std_ipw_did_rc``)."""
    pre = 1.0 - post
    keep = np.where(treated == 1, True, ps.score < PS_TRIM)
    odds = ps.score / (1.0 - ps.score)
    parts = {"treat_pre": keep * weights * treated * pre, "treat_post": keep * weights * treated * post,
             "cont_pre": keep * weights * odds * (1.0 - treated) * pre,
             "cont_post": keep * weights * odds * (1.0 - treated) * post}
    if min(parts["cont_pre"].mean(), parts["cont_post"].mean()) == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    means = {k: float((w * y).mean() / w.mean()) for k, w in parts.items()}
    inf = {k: (w * y - w * means[k]) / w.mean() for k, w in parts.items()}
    att = (means["treat_post"] - means["treat_pre"]) - (means["cont_post"] - means["cont_pre"])
    ps_moment = (_colmeans(parts["cont_post"] * (y - means["cont_post"]), design) / parts["cont_post"].mean()
                 - _colmeans(parts["cont_pre"] * (y - means["cont_pre"]), design) / parts["cont_pre"].mean())
    inf_cont = inf["cont_post"] - inf["cont_pre"] + ps.linear_rep @ ps_moment
    return float(att), (inf["treat_post"] - inf["treat_pre"]) - inf_cont


def att_reg_rc(y: np.ndarray, post: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
               ps: PropensityFit | None, label: str, names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD for repeated cross sections, Sant'Anna & Zhao (2020) eq. (2.3)
    (R ``DRDID::reg_did_rc``)."""
    pre = 1.0 - post
    control = 1.0 - treated
    fit_pre, rep_pre = _subset_ols(y, control * pre, design, weights, label, names, "comparison units (base)")
    fit_post, rep_post = _subset_ols(y, control * post, design, weights, label, names, "comparison units (t)")
    w_treat_pre, w_treat_post, w_cont = weights * treated * pre, weights * treated * post, weights * treated
    eta_treat_pre = (w_treat_pre * y).mean() / w_treat_pre.mean()
    eta_treat_post = (w_treat_post * y).mean() / w_treat_post.mean()
    cont_change = w_cont * (fit_post - fit_pre)
    eta_cont = cont_change.mean() / w_cont.mean()
    att = (eta_treat_post - eta_treat_pre) - eta_cont
    inf_treat = ((w_treat_post * y - w_treat_post * eta_treat_post) / w_treat_post.mean()
                 - (w_treat_pre * y - w_treat_pre * eta_treat_pre) / w_treat_pre.mean())
    moment = _colmeans(w_cont, design)
    inf_cont = (cont_change - w_cont * eta_cont + rep_post @ moment - rep_pre @ moment) / w_cont.mean()
    return float(att), inf_treat - inf_cont


_RC_ESTIMATOR_FUNCTIONS = {"dr": att_dr_rc, "ipw": att_ipw_rc, "reg": att_reg_rc}


# --------------------------------------------------------------------------------------------
# group-time cells
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One ATT(g,t): cohort ``group``, period index ``post`` and its base period index ``base``."""

    group: float
    post: int
    base: int
    reference: bool   # the universal base period itself (ATT fixed at 0)


def group_time_cells(groups: np.ndarray, periods: np.ndarray, anticipation: int,
                     base_period: str) -> list[Cell]:
    """The (g,t) cells and base periods in R ``did`` order (group, then time)."""
    cells = []
    for g in groups:
        last_pre = np.flatnonzero(periods + anticipation < g)
        universal_base = int(last_pre[-1])
        if base_period == "universal":
            cells.extend(Cell(float(g), p, universal_base, p == universal_base) for p in range(len(periods)))
            continue
        for p in range(1, len(periods)):
            base = universal_base if g <= periods[p] else p - 1
            cells.append(Cell(float(g), p, base, False))
    return cells


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass
class CSResult(DidResult):
    """Callaway-Sant'Anna ATT(g,t) with their influence functions.

    ``att_gt`` / :meth:`tidy` hold one row per (group, time) with analytic standard errors
    (clustered when ``cluster`` was given) and pointwise ``1 - alpha`` intervals;
    ``critical_value`` is the sup-t value of the multiplier bootstrap (``None`` without it).
    """

    title: ClassVar[str] = "Callaway-Sant'Anna group-time average treatment effects"
    method: ClassVar[str] = "cs"

    att_gt: pd.DataFrame
    influence: np.ndarray
    unit_cohort: np.ndarray
    unit_weights: np.ndarray
    cluster_codes: np.ndarray | None
    periods: np.ndarray
    alpha: float
    options: dict[str, Any]
    critical_value: float | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return int(self.influence.shape[0])

    def tidy(self) -> pd.DataFrame:
        return self.att_gt.copy()

    def band(self) -> pd.DataFrame | None:
        """Uniform (sup-t) band for all ATT(g,t), or ``None`` when no bootstrap was run."""
        if self.critical_value is None:
            return None
        half = self.critical_value * self.att_gt["std_error"]
        return pd.DataFrame({"group": self.att_gt["group"], "time": self.att_gt["time"],
                             "band_low": self.att_gt["estimate"] - half,
                             "band_high": self.att_gt["estimate"] + half})

    def aggregate(self, kind: str = "simple", balance_e: int | None = None,
                  min_e: float = -np.inf, max_e: float = np.inf):
        """Aggregate ATT(g,t) as R ``did::aggte`` (see :func:`impactkit.did.aggregate.aggregate_cs`)."""
        from impactkit.did.aggregate import aggregate_cs

        return aggregate_cs(self, kind, balance_e=balance_e, min_e=min_e, max_e=max_e)

    def att(self) -> dict[str, float]:
        """The simple aggregate (R ``aggte(type = "simple")``) as :data:`~impactkit.did.base.ATT_KEYS`."""
        simple = self.aggregate("simple")
        return att_dict(simple.estimate, simple.std_error, simple.conf_low, simple.conf_high, simple.p_value)

    def event_study(self) -> pd.DataFrame:
        """The dynamic aggregate's rows (R ``aggte(type = "dynamic")``), one per event time."""
        rows = self.aggregate("dynamic").rows
        return event_study_frame(rows)

    def pretrend(self):
        """Joint Wald test that every pre-treatment ATT(g,t) is zero (:meth:`pretrend_test`)."""
        return self.pretrend_test()

    def pretrend_test(self):
        """Joint Wald test that every pre-treatment ATT(g,t) is zero.

        ``W = theta_pre' V_pre^+ theta_pre`` with ``V_pre`` the influence-function covariance
        (clustered when ``cluster`` was given) of the pre-treatment cells (``t < g - anticipation``,
        reference cells of a universal base excluded); ``W ~ chi2(rank V_pre)`` under the null
        (Callaway & Sant'Anna 2021, Sec. 4.2; R ``did`` reports the same statistic).
        """
        from impactkit.did.event_study import wald_test

        pre = self._pre_mask() & (self.att_gt["std_error"].to_numpy() > 0)
        if not pre.any():
            raise EstimationError("no pre-treatment ATT(g,t) to test (need a period before each cohort's base period)")
        return wald_test(self.att_gt["estimate"].to_numpy()[pre], self.influence[:, pre], self.n_units,
                         self.cluster_codes, description="pre-treatment ATT(g,t) = 0")

    def _pre_mask(self) -> np.ndarray:
        anticipation = self.options["anticipation"]
        return (self.att_gt["time"].to_numpy() < self.att_gt["group"].to_numpy() - anticipation)

    def plot(self, ax=None):
        """Event-study figure: dynamic aggregation, pointwise CIs, sup-t band if bootstrapped."""
        return self.aggregate("dynamic").plot(ax=ax)

    def notes(self) -> list[str]:
        o = self.options
        lines = [f"Estimator: {o['est']} (Sant'Anna & Zhao 2020), comparison group: {o['control']}-treated, "
                 f"base period: {o['base_period']}, anticipation: {o['anticipation']}.",
                 f"Units: {self.n_units}; covariates: {', '.join(o['covariates']) or 'none'}; "
                 f"weights: {o['weights'] or 'none'}.",
                 f"Standard errors: influence function{', clustered by ' + o['cluster'] if o['cluster'] else ''}; "
                 f"{int(round((1 - self.alpha) * 100))}% pointwise intervals."]
        if self.critical_value is not None:
            lines.append(f"Uniform band: multiplier bootstrap ({o['biters']} draws, seed {o['seed']}), "
                         f"sup-t critical value {self.critical_value:.4f}.")
        return lines + list(self.messages)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"options": to_plain(self.options), "n_units": self.n_units,
                    "critical_value": to_plain(self.critical_value)})
        band = self.band()
        if band is not None:
            out["band"] = to_plain(band)
        return out


def _check_cell_sides(n_treated: int, n_controls: int, treated_w: np.ndarray, control_w: np.ndarray,
                      label: str, control: str, where: str) -> bool:
    """False when the cohort is unobserved (cell skipped); EstimationError without controls."""
    if n_controls == 0:
        hint = "use control='notyet'" if control == "never" else "drop this cohort"
        raise EstimationError(f"no {control}-treated control units for {label}{where}; {hint}")
    if n_treated == 0:
        return False
    if not (np.any(treated_w > 0) and np.any(control_w > 0)):
        raise EstimationError(f"sampling weights are zero for every treated or every control unit of {label}")
    return True


def _panel_cell(arrays: PanelArrays, outcome_by_period: np.ndarray, in_cell: np.ndarray, treated: np.ndarray,
                p: int, b: int, est: str, label: str, control: str, sample_cache: dict,
                sample_key: tuple) -> tuple[float, np.ndarray, np.ndarray, int] | None:
    """ATT(g,t) by a Sant'Anna-Zhao panel estimator on a balanced panel.

    Returns the estimate, the indices of the cell's units, their influence function scaled to all
    units (``n / n_cell``) and ``n_cell``. The cell's sample (units, design, weights, propensity
    fit) is shared by every cell with the same cohort, comparison group and covariate period.
    """
    cov_period = min(p, b)
    key = (*sample_key, None if arrays.design_time_invariant else cov_period)
    sample = sample_cache.get(key)
    if sample is None:
        index = np.flatnonzero(in_cell)
        d = treated[index].astype(float)
        w = arrays.weights[index]
        if not _check_cell_sides(int(d.sum()), int(index.size - d.sum()), w[d == 1], w[d == 0], label, control, ""):
            return None
        w = w / w.mean()
        x = arrays.design_at(cov_period)[index]
        names = arrays.covariate_names
        ps = fit_logit(d, x, w, label, names) if est in ("dr", "ipw") else None
        gram_inv = control_gram_inverse(d, x, w, label, names) if est in ("dr", "reg") else None
        sample = sample_cache[key] = (index, d, x, w, ps, gram_inv)
    index, d, x, w, ps, gram_inv = sample
    delta_y = outcome_by_period[p][index] - outcome_by_period[b][index]
    att, inf = _ESTIMATOR_FUNCTIONS[est](delta_y, d, x, w, ps, label, arrays.covariate_names, gram_inv)
    n = arrays.n_units
    return att, index, (n / index.size) * inf, int(index.size)


def _rc_cell(arrays: PanelArrays, in_cell: np.ndarray, treated: np.ndarray, complete: np.ndarray, p: int, b: int,
             est: str, label: str, control: str) -> tuple[float, np.ndarray, np.ndarray, int] | None:
    """ATT(g,t) on an unbalanced panel as R ``did`` (``allow_unbalanced_panel=TRUE``): the observed rows
    of periods t and base are stacked as repeated cross sections, estimated by the Sant'Anna-Zhao RC
    estimator, and the row influence function (scaled by n_units / n_rows) is summed within unit."""
    n = arrays.n_units
    rows_post = np.flatnonzero(in_cell & complete[:, p])
    rows_base = np.flatnonzero(in_cell & complete[:, b])
    for rows, where in ((rows_post, f" in {arrays.periods[p]:g}"), (rows_base, f" in base {arrays.periods[b]:g}")):
        if not _check_cell_sides(int(treated[rows].sum()), int((~treated[rows]).sum()),
                                 arrays.weights[rows[treated[rows]]], arrays.weights[rows[~treated[rows]]],
                                 label, control, where):
            return None
    unit_index = np.concatenate([rows_post, rows_base])
    y = np.concatenate([arrays.outcome[rows_post, p], arrays.outcome[rows_base, b]])
    post = np.concatenate([np.ones(rows_post.size), np.zeros(rows_base.size)])
    d = treated[unit_index].astype(float)
    x = np.concatenate([arrays.design_at(p)[rows_post], arrays.design_at(b)[rows_base]])
    w = arrays.weights[unit_index]
    w = w / w.mean()
    ps = fit_logit(d, x, w, label, arrays.covariate_names) if est in ("dr", "ipw") else None
    att, inf_rows = _RC_ESTIMATOR_FUNCTIONS[est](y, post, d, x, w, ps, label, arrays.covariate_names)
    full = np.bincount(unit_index, weights=(n / unit_index.size) * inf_rows, minlength=n)
    units = np.unique(unit_index)
    return att, units, full[units], int(units.size)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def _check_options(control: str, est: str, anticipation: int, base_period: str, alpha: float,
                   biters: int) -> None:
    if control not in CONTROLS:
        raise InputError(f"control must be one of {CONTROLS}, got {control!r}")
    if est not in ESTIMATORS:
        raise InputError(f"est must be one of {ESTIMATORS}, got {est!r}")
    if base_period not in BASE_PERIODS:
        raise InputError(f"base_period must be one of {BASE_PERIODS}, got {base_period!r}")
    if not isinstance(anticipation, (int, np.integer)) or anticipation < 0:
        raise InputError(f"anticipation must be a non-negative integer, got {anticipation!r}")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    if int(biters) < 1:
        raise InputError(f"biters must be a positive integer, got {biters!r}")


def _prepare_cohorts(arrays: PanelArrays, control: str, anticipation: int, cohort: str,
                     messages: list[str]) -> PanelArrays:
    """Apply R ``did``'s cohort conventions (late cohorts, early cohorts, no never-treated)."""
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
        return _prepare_cohorts(arrays, control, anticipation, cohort, messages)
    return arrays


def _balance(arrays: PanelArrays, complete: np.ndarray, y: str, unit: str,
             messages: list[str]) -> tuple[PanelArrays, np.ndarray]:
    """Keep the units observed (outcome and covariates) in every period, as R ``did`` does by
    default (``allow_unbalanced_panel = FALSE``); warn with the number of units dropped."""
    full = complete.all(axis=1)
    n_dropped = int((~full).sum())
    if not full.any():
        raise EstimationError(f"no unit of '{unit}' has '{y}' (and covariates) in every period; "
                              "pass allow_unbalanced=True for the unbalanced-panel estimator")
    text = (f"Unbalanced panel: {n_dropped} of {full.size} unit(s) of '{unit}' miss '{y}' or a covariate in "
            "some period and are dropped to keep the balanced sub-panel (R did's default); pass "
            "allow_unbalanced=True for the unbalanced-panel estimator.")
    warnings.warn(text, ImpactkitWarning, stacklevel=3)
    messages.append(text)
    return arrays.keep_units(full), complete[full]


def estimate_cs(frame: pd.DataFrame, *, y: str, unit: str, time: str, cohort: str,
                covariates: list[str] | None = None, control: str = "never",
                est: str = "dr",
                anticipation: int = 0, base_period: str = "varying",
                weights: str | None = None, cluster: str | None = None,
                alpha: float = 0.05, bootstrap: bool = False, biters: int = 999,
                seed: int | None = None, allow_unbalanced: bool = False) -> CSResult:
    """Callaway & Sant'Anna (2021) ATT(g,t) for a staggered-adoption panel.

    ``frame`` is a long panel (one row per unit and period); ``cohort`` holds each unit's first
    treated period (0 or missing for never treated). Each ATT(g,t) is the 2x2 DiD of
    Callaway & Sant'Anna (2021, eq. 2.6 never-treated / eq. 2.8 not-yet-treated comparison)
    estimated by Sant'Anna & Zhao's (2020) doubly robust (eq. 3.1), normalized IPW (eq. 2.4) or
    outcome-regression (eq. 2.2) panel estimator; standard errors come from the influence
    functions (clustered within ``cluster``) and, with ``bootstrap=True``, a uniform sup-t band
    from the multiplier bootstrap (Callaway & Sant'Anna 2021, Alg. 1) seeded by
    ``impactkit.seeds.rng(seed, "cs-multiplier")``. See the module docstring for conventions.
    """
    _check_options(control, est, anticipation, base_period, alpha, biters)
    cluster = _one_cluster(cluster)
    arrays = build_panel_arrays(frame, y=y, unit=unit, time=time, cohort=cohort, covariates=covariates,
                                weights=weights, cluster=cluster)
    return fit_cs(arrays, names={"y": y, "unit": unit, "time": time, "cohort": cohort, "weights": weights,
                                 "cluster": cluster},
                  control=control, est=est, anticipation=anticipation, base_period=base_period, alpha=alpha,
                  bootstrap=bootstrap, biters=biters, seed=seed, allow_unbalanced=allow_unbalanced)


def _one_cluster(cluster: str | list[str] | tuple[str, ...] | None) -> str | None:
    if isinstance(cluster, (list, tuple)):
        if len(cluster) > 1:
            raise InputError(f"Callaway-Sant'Anna clusters on one column, got {list(cluster)}")
        return cluster[0] if cluster else None
    return cluster


def fit_cs(arrays: PanelArrays, *, names: dict[str, Any], control: str = "never", est: str = "dr",
           anticipation: int = 0, base_period: str = "varying", alpha: float = 0.05, bootstrap: bool = False,
           biters: int = 999, seed: int | None = None, allow_unbalanced: bool = False) -> CSResult:
    """Callaway-Sant'Anna on checked unit x period arrays (:func:`build_panel_arrays`).

    Parameters
    ----------
    arrays : PanelArrays
        The panel as unit x period arrays.
    names : dict
        The user's column names (``y, unit, time, cohort, weights, cluster``), for messages
        and the result's options.
    control, est, anticipation, base_period, alpha, bootstrap, biters, seed, allow_unbalanced
        As for :func:`estimate_cs`.

    Returns
    -------
    CSResult
    """
    _check_options(control, est, anticipation, base_period, alpha, biters)
    y, unit, time, cohort = names["y"], names["unit"], names["time"], names["cohort"]
    weights, cluster = names.get("weights"), names.get("cluster")
    messages: list[str] = []
    arrays = _prepare_cohorts(arrays, control, anticipation, cohort, messages)

    observed = np.isfinite(arrays.outcome)
    if arrays.design_time_invariant:
        design_observed = np.all(np.isfinite(arrays.design[0]), axis=1)[:, None] & np.ones_like(observed)
    else:
        design_observed = np.all(np.isfinite(arrays.design), axis=2).T
    complete = observed & design_observed
    unbalanced = not bool(complete.all())
    if unbalanced and not allow_unbalanced:
        arrays, complete = _balance(arrays, complete, y, unit, messages)
        unbalanced = False
    elif unbalanced:
        n_incomplete = int((~complete.all(axis=1)).sum())
        text = (f"Unbalanced panel: {n_incomplete} unit(s) miss some period; each ATT(g,t) uses the "
                "repeated-cross-section estimator on the observed rows, clustered by unit (R did's "
                "allow_unbalanced_panel).")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
        never_observed = ~complete.any(axis=1)
        if never_observed.any():
            messages.append(f"{int(never_observed.sum())} unit(s) without any complete row are dropped.")
            arrays = arrays.keep_units(~never_observed)
            complete = complete[~never_observed]

    groups = np.unique(arrays.cohort[arrays.cohort > 0])
    sizes = {float(g): int((arrays.cohort == g).sum()) for g in groups}
    singles = [g for g, size in sizes.items() if size == 1]
    if singles:
        text = (f"cohort(s) {', '.join(f'{g:g}' for g in singles)} have a single unit: their ATT(g,t) standard "
                "errors rest on one unit")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text[0].upper() + text[1:] + ".")

    cells = group_time_cells(groups, arrays.periods, anticipation, base_period)
    n = arrays.n_units
    periods = arrays.periods
    never = arrays.cohort == 0
    sample_cache: dict[tuple, tuple] = {}
    outcome_by_period = np.ascontiguousarray(arrays.outcome.T)
    influence = np.zeros((n, len(cells)), order="F")   # column-major: one contiguous column per cell
    estimates = np.zeros(len(cells))
    cell_sizes = np.zeros(len(cells), dtype=np.int64)
    kept = np.ones(len(cells), dtype=bool)

    for j, cell in enumerate(cells):
        g, p, b = cell.group, cell.post, cell.base
        treated = arrays.cohort == g
        label = f"group {g:g}, time {periods[p]:g}"
        if control == "never":
            controls, control_key = never, None
        else:
            threshold = periods[max(p, b)] + anticipation
            controls = never | ((arrays.cohort > threshold) & ~treated)
            control_key = threshold
        if cell.reference:
            cell_sizes[j] = int((treated | controls).sum())
            continue
        in_cell = treated | controls
        if unbalanced:
            outcome = _rc_cell(arrays, in_cell, treated, complete, p, b, est, label, control)
        else:
            outcome = _panel_cell(arrays, outcome_by_period, in_cell, treated, p, b, est, label, control,
                                  sample_cache, (g, control_key))
        if outcome is None:
            text = (f"ATT({label}) skipped: no unit of the cohort is observed in "
                    f"{periods[b]:g} or in {periods[p]:g}.")
            warnings.warn(text, ImpactkitWarning, stacklevel=2)
            messages.append(text)
            kept[j] = False
            continue
        estimates[j], units, unit_influence, cell_sizes[j] = outcome
        influence[units, j] = unit_influence

    cells = [c for c, k in zip(cells, kept) if k]
    estimates, influence, cell_sizes = estimates[kept], influence[:, kept], cell_sizes[kept]
    se = influence_se(influence, n, arrays.cluster_codes)
    z = norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = np.where(se > 0, 2.0 * norm.sf(np.abs(estimates / np.where(se > 0, se, 1.0))), np.nan)
    if base_period == "universal":
        messages.append("Universal base period: ATT(g, g - 1 - anticipation) is the reference, fixed at 0 "
                        "(standard error 0, no p-value).")
    att_gt = pd.DataFrame({"group": [c.group for c in cells], "time": [float(periods[c.post]) for c in cells],
                           "estimate": estimates, "std_error": se, "conf_low": estimates - z * se,
                           "conf_high": estimates + z * se, "p_value": p_value,
                           "n": cell_sizes})[list(ATT_GT_COLUMNS)]
    if np.all(periods == np.round(periods)) and np.all(att_gt["group"] == np.round(att_gt["group"])):
        att_gt = att_gt.astype({"group": np.int64, "time": np.int64})   # integer periods print as such
    options = {"y": y, "unit": unit, "time": time, "cohort": cohort, "covariates": list(arrays.covariate_names),
               "control": control, "est": est, "anticipation": int(anticipation), "base_period": base_period,
               "weights": weights, "cluster": cluster, "bootstrap": bool(bootstrap), "biters": int(biters),
               "seed": seed, "allow_unbalanced": bool(allow_unbalanced)}
    critical_value = None
    if bootstrap:
        draws = multiplier_draws(influence, n, cluster_codes=arrays.cluster_codes, biters=int(biters),
                                 seed=seed, purpose="cs-multiplier")
        critical_value = sup_t_critical_value(draws, se, alpha)
    return CSResult(att_gt=att_gt, influence=influence, unit_cohort=arrays.cohort.copy(),
                    unit_weights=arrays.weights.copy(), cluster_codes=arrays.cluster_codes,
                    periods=periods.copy(), alpha=float(alpha), options=options,
                    critical_value=critical_value, messages=messages)


class CSEstimator(DidEstimator):
    """Callaway & Sant'Anna (2021) group-time ATTs (:func:`estimate_cs`)."""

    name = "cs"
    label = "Callaway-Sant'Anna (doubly robust)"
    reference = ("Callaway & Sant'Anna (2021), J. Econometrics 225(2), 200-230; 2x2 by Sant'Anna & Zhao "
                 "(2020), J. Econometrics 219(1), 101-122")
    options = {"covariates": None, "cluster": None, "weights": None, "control": "never", "est": "dr",
               "anticipation": 0, "base_period": "varying", "alpha": 0.05, "bootstrap": False, "biters": 999,
               "seed": None, "allow_unbalanced": False}
    has_event_study = True

    def fit(self, panel: DidPanel, *, control: str = "never", est: str = "dr", anticipation: int = 0,
            base_period: str = "varying", alpha: float = 0.05, bootstrap: bool = False, biters: int = 999,
            seed: int | None = None, allow_unbalanced: bool = False, **_: object) -> CSResult:
        """Callaway-Sant'Anna on ``panel``; see :func:`estimate_cs`."""
        _check_options(control, est, anticipation, base_period, alpha, biters)
        check_has_controls(panel.frame, need_never_treated=control == "never", unit=panel.unit)
        cluster = _one_cluster(panel.cluster)
        arrays = build_panel_arrays(panel.frame, y="_y", unit="_unit", time="_time", cohort="_cohort",
                                    covariates=list(panel.covariates), weights=panel.weights, cluster=cluster)
        names = {"y": panel.y, "unit": panel.unit, "time": panel.time,
                 "cohort": panel.cohort or panel.treated, "weights": panel.weights, "cluster": cluster}
        return fit_cs(arrays, names=names, control=control, est=est, anticipation=anticipation,
                      base_period=base_period, alpha=alpha, bootstrap=bootstrap, biters=biters, seed=seed,
                      allow_unbalanced=allow_unbalanced)
