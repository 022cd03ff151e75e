"""The imputation estimator of Borusyak, Jaravel & Spiess (2024).

Borusyak, K., Jaravel, X. & Spiess, J. (2024). Revisiting event-study designs: robust and
efficient estimation. *Review of Economic Studies* 91(6), 3253-3285.

Staggered adoption, unit ``i`` first treated in period ``E_i`` (never-treated: ``E_i = inf``).
With ``Omega_0`` the untreated observations (never treated, or ``t < E_i``) and ``Omega_1``
the treated ones:

1. fit ``Y_it = alpha_i + lambda_t + X_it' beta + e_it`` by (weighted) OLS on ``Omega_0``
   (Theorem 2, step 1);
2. impute ``tau_hat_it = Y_it - alpha_hat_i - lambda_hat_t - X_it' beta_hat`` on ``Omega_1``
   (step 2);
3. average: the ATT weights every treated observation equally (by its sampling weight); the
   event-study effect at horizon ``h`` averages the treated observations with
   ``t - E_i = h`` (step 3).

Each estimate is ``sum_it v_it Y_it`` with implicit weights ``v = w_1`` on ``Omega_1`` and
``v = -Z_0 (Z_0'Z_0)^{-1} Z_1' w_1`` on ``Omega_0`` (Z the fixed-effect and covariate design).
Standard errors follow Theorem 3 (the conservative, cluster-robust variance
``sum_c (sum_{it in c} v_it e~_it)^2``, eq. 8), with ``e~`` the step-1 residuals on
``Omega_0`` and ``tau_hat_it - tau_bar_g`` on ``Omega_1``, where ``tau_bar_g`` averages
``tau_hat`` within cohort x period with weights ``v_it^2`` (Sec. 4.3). Units with no untreated
period (always treated) cannot be imputed and are dropped with a warning.

:meth:`ImputationResult.pretrend` is the test of Sec. 4.4: on ``Omega_0`` only, regress
``Y`` on the unit and period effects and indicators of the ``K`` periods before treatment,
and test their joint nullity (cluster-robust Wald test).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from scipy.stats import chi2, norm

from impactkit.did.base import ATT_KEYS, DidEstimator, DidPanel, DidResult
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of ``values`` (sorted order) and k.

    Parameters
    ----------
    values : numpy.ndarray
        Any values numpy can sort.

    Returns
    -------
    codes : numpy.ndarray
    n_levels : int
    """
    uniq, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1), int(uniq.size)


def fe_design(unit: np.ndarray, n_units: int, time: np.ndarray, n_times: int,
              covariates: np.ndarray | None) -> sp.csc_matrix:
    """Sparse ``[unit dummies, period dummies (first dropped), covariates]``.

    Parameters
    ----------
    unit : numpy.ndarray
        Unit code of each row, 0..n_units-1.
    n_units : int
        Number of units.
    time : numpy.ndarray
        Period code of each row, 0..n_times-1 (code 0 is the dropped period).
    n_times : int
        Number of periods.
    covariates : numpy.ndarray or None
        n x k covariates, or None.

    Returns
    -------
    scipy.sparse.csc_matrix
        n x (n_units + n_times - 1 + k).
    """
    n = unit.size
    rows = np.arange(n)
    d_unit = sp.csr_matrix((np.ones(n), (rows, unit)), shape=(n, n_units))
    keep = time > 0
    d_time = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], time[keep] - 1)), shape=(n, n_times - 1))
    blocks = [d_unit, d_time]
    if covariates is not None and covariates.shape[1]:
        blocks.append(sp.csr_matrix(covariates))
    return sp.hstack(blocks, format="csc")


@dataclass
class ImputationFit:
    """Plain output of :func:`fit_imputation` (arrays over the estimation sample)."""

    tau: np.ndarray                 # imputed effects on Omega_1 (NaN on Omega_0)
    residual: np.ndarray            # step-1 residuals on Omega_0 (NaN on Omega_1)
    treated: np.ndarray             # bool, Omega_1
    horizon: np.ndarray             # t - E_i (NaN for never treated)
    cohort: np.ndarray
    time_codes: np.ndarray
    clusters: np.ndarray
    n_clusters: int
    weights: np.ndarray
    design: sp.csc_matrix
    lu: Any = field(repr=False)


def fit_imputation(y: np.ndarray, unit: np.ndarray, time: np.ndarray, cohort: np.ndarray,
                   covariates: np.ndarray | None, weights: np.ndarray, clusters: np.ndarray) -> ImputationFit:
    """Steps 1-2 of Borusyak, Jaravel & Spiess (2024, Theorem 2) on one panel.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome per row.
    unit, time : numpy.ndarray
        Unit and period of each row (any values; coded here).
    cohort : numpy.ndarray
        First treated period of each row's unit (``inf`` = never treated).
    covariates : numpy.ndarray or None
        n x k time-varying covariates, or None.
    weights : numpy.ndarray
        Weight of each row.
    clusters : numpy.ndarray
        Cluster of each row.

    Returns
    -------
    ImputationFit
        Imputed effects on the treated rows, step-1 residuals on the untreated rows and the
        factorised Gram matrix.
    """
    unit_c, n_units = _codes(unit)
    time_c, n_times = _codes(time)
    treated = np.isfinite(cohort) & (time >= cohort)
    untreated = ~treated
    has_untreated = np.bincount(unit_c, weights=untreated.astype(float), minlength=n_units) > 0
    if not has_untreated.all():
        lost = int((~has_untreated).sum())
        warnings.warn(f"imputation: {lost} unit(s) have no untreated period (always treated) and are dropped",
                      ImpactkitWarning, stacklevel=3)
        keep = has_untreated[unit_c]
        return fit_imputation(y[keep], unit[keep], time[keep], cohort[keep],
                              None if covariates is None else covariates[keep], weights[keep], clusters[keep])
    periods_untreated = np.bincount(time_c, weights=untreated.astype(float), minlength=n_times)
    if np.any(periods_untreated[np.unique(time_c[treated])] == 0):
        raise EstimationError("imputation: some treated periods have no untreated observation to impute from "
                              "(every unit is treated by then); restrict the horizon or add never-treated units")
    design = fe_design(unit_c, n_units, time_c, n_times, covariates)
    root_w = np.sqrt(weights)
    z0 = sp.diags(root_w[untreated]) @ design[untreated]
    gram = (z0.T @ z0).tocsc()
    try:
        lu = splu(gram)
    except RuntimeError as exc:
        raise EstimationError("imputation: the untreated observations do not identify the unit and period "
                              "effects (and covariates); check for collinear covariates") from exc
    coef = lu.solve(np.asarray(z0.T @ (root_w[untreated] * y[untreated])).ravel())
    fitted = design @ coef
    tau = np.where(treated, y - fitted, np.nan)
    residual = np.where(untreated, y - fitted, np.nan)
    horizon = np.where(np.isfinite(cohort), time - cohort, np.nan)
    cl_codes, n_cl = _codes(clusters)
    return ImputationFit(tau=tau, residual=residual, treated=treated, horizon=horizon, cohort=cohort,
                         time_codes=time_c, clusters=cl_codes, n_clusters=n_cl, weights=weights,
                         design=design, lu=lu)


def implicit_weights(fit: ImputationFit, targets: np.ndarray) -> np.ndarray:
    """``v`` (n x k) for the target weights ``targets`` (n x k, zero off ``Omega_1``):
    ``w_1`` on ``Omega_1`` and ``-W_0 Z_0 (Z_0' W_0 Z_0)^{-1} Z_1' w_1`` on ``Omega_0`` (BJS, Sec. 4.1).

    Parameters
    ----------
    fit : ImputationFit
        The fitted steps 1-2.
    targets : numpy.ndarray
        n x k weights defining each estimand (zero on untreated rows).

    Returns
    -------
    numpy.ndarray
        n x k implicit weights ``v``.
    """
    treated = fit.treated
    z1 = fit.design[treated]
    rhs = np.asarray(z1.T @ targets[treated])
    gamma = fit.lu.solve(rhs)
    v = targets.copy()
    untreated = ~treated
    v[untreated] = -(fit.weights[untreated, None] * np.asarray(fit.design[untreated] @ gamma))
    return v


def theorem3_se(fit: ImputationFit, v: np.ndarray) -> np.ndarray:
    """Conservative cluster-robust standard errors of BJS Theorem 3 (eq. 8) for each column of ``v``.

    Parameters
    ----------
    fit : ImputationFit
        The fitted steps 1-2.
    v : numpy.ndarray
        n x k implicit weights (:func:`implicit_weights`).

    Returns
    -------
    numpy.ndarray
        One standard error per estimand (column of ``v``).
    """
    n, k = v.shape
    out = np.empty(k)
    groups, n_groups = _codes(fit.cohort[fit.treated] * 1e6 + fit.time_codes[fit.treated])
    tau1 = fit.tau[fit.treated]
    for j in range(k):
        v1 = v[fit.treated, j]
        sq = v1 ** 2
        den = np.bincount(groups, weights=sq, minlength=n_groups)
        num = np.bincount(groups, weights=sq * tau1, minlength=n_groups)
        tau_bar = np.divide(num, den, out=np.zeros(n_groups), where=den > 0)
        resid = fit.residual.copy()
        resid[fit.treated] = tau1 - tau_bar[groups]
        scores = np.bincount(fit.clusters, weights=v[:, j] * resid, minlength=fit.n_clusters)
        out[j] = math.sqrt(float(scores @ scores))
    return out


@dataclass
class ImputationResult(DidResult):
    """ATT and event study from the imputation estimator (Borusyak, Jaravel & Spiess 2024)."""

    title: ClassVar[str] = "Imputation estimator (Borusyak, Jaravel & Spiess 2024)"
    method: ClassVar[str] = "imputation"

    overall: dict[str, float]
    horizons: pd.DataFrame
    alpha: float
    n_obs: int
    n_treated_obs: int
    n_clusters: int
    _panel: DidPanel | None = field(default=None, repr=False)
    _pretrend_periods: int | None = field(default=None, repr=False)

    def att(self) -> dict[str, float]:
        return {k: float(self.overall[k]) for k in ATT_KEYS}

    def event_study(self) -> pd.DataFrame:
        return self.horizons.copy()

    def tidy(self) -> pd.DataFrame:
        overall = pd.DataFrame([{"term": "ATT", "event_time": np.nan, **self.overall, "n": self.n_treated_obs}])
        rows = self.horizons.assign(term="event_time")
        return pd.concat([overall, rows], ignore_index=True)[
            ["term", "event_time", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n"]]

    def notes(self) -> list[str]:
        return [f"{self.n_obs} observations, {self.n_treated_obs} treated; imputation from the untreated "
                f"observations (unit and period effects); SEs: BJS (2024) Theorem 3, clustered "
                f"({self.n_clusters} clusters)."]

    def pretrend(self, periods: int | None = None):
        """BJS (2024) Sec. 4.4 test: on untreated observations, the ``periods`` (default: every
        available) pre-treatment indicators are jointly zero given unit and period effects."""
        from impactkit.did.event_study import WaldTestResult, wald_statistic

        if self._panel is None:
            raise EstimationError("imputation: pretrend needs the panel the result was fitted on")
        return pretrend_test(self._panel, periods or self._pretrend_periods, WaldTestResult, wald_statistic)


def pretrend_test(panel: DidPanel, periods: int | None, result_cls, wald_statistic):
    """OLS of ``Y`` on unit and period effects and lead indicators ``1{t - E_i = -k}``,
    ``k = 1..K``, on the untreated observations; CRV1 (cluster) Wald test that the leads are zero.
    ``K`` defaults to one less than the deepest lead (with every lead the indicators would sum to
    the treated units' effects).

    Parameters
    ----------
    panel : DidPanel
        The prepared panel the estimator was fitted on.
    periods : int or None
        Number of leads ``K`` tested; None for the default.
    result_cls : type
        The Wald result class (:class:`impactkit.did.event_study.WaldTestResult`), passed in to keep
        this module free of the event-study import.
    wald_statistic : callable
        :func:`impactkit.did.event_study.wald_statistic`.

    Returns
    -------
    WaldTestResult

    Raises
    ------
    InputError
        ``periods`` would cover every untreated period of the treated units.
    EstimationError
        Fewer than two pre-treatment periods of treated units.
    """
    frame = panel.frame
    cohort = _cohort_array(frame)
    time = frame["_time"].to_numpy(dtype=float)
    untreated = ~(np.isfinite(cohort) & (time >= cohort))
    rel = np.where(np.isfinite(cohort), time - cohort, np.nan)[untreated]
    available = sorted({int(-r) for r in rel[np.isfinite(rel)] if r < 0})
    deepest = max(available) if available else 0
    if periods is not None and periods >= deepest:
        raise InputError(f"imputation: pretrend periods={periods} would cover every untreated period of the "
                         f"treated units (collinear with their unit effects); use at most {deepest - 1}")
    k_max = periods if periods is not None else deepest - 1
    leads = [k for k in range(1, k_max + 1) if k in available]
    if not leads:
        raise EstimationError("imputation: fewer than two pre-treatment periods of treated units; nothing to test")
    x = np.column_stack([(rel == -k).astype(float) for k in leads])
    y = frame["_y"].to_numpy(dtype=float)[untreated]
    unit_c, n_units = _codes(frame["_unit"].to_numpy()[untreated])
    time_c, n_times = _codes(time[untreated])
    design = fe_design(unit_c, n_units, time_c, n_times, x)
    gram = (design.T @ design).tocsc()
    lu = splu(gram)
    coef = lu.solve(np.asarray(design.T @ y).ravel())
    resid = y - design @ coef
    k = len(leads)
    # rows of (Z'Z)^{-1} for the lead coefficients
    sel = np.zeros((design.shape[1], k))
    sel[-k:, :] = np.eye(k)
    bread_rows = lu.solve(sel)                                # p x k
    infl = np.asarray(design @ bread_rows) * resid[:, None]   # n x k
    clusters = _cluster_values(panel)[untreated]
    cl, g = _codes(clusters)
    sums = np.vstack([np.bincount(cl, weights=infl[:, j], minlength=g) for j in range(k)]).T
    n, p = design.shape
    # fixest's small-sample factor: unit effects nested in the clusters are not counted
    pairs = np.unique(np.column_stack([unit_c, cl]), axis=0)
    nested = pairs.shape[0] == n_units
    df_k = k + n_times if nested else p
    vcov = sums.T @ sums * (g / (g - 1.0)) * ((n - 1.0) / (n - df_k))
    stat, df = wald_statistic(coef[-k:], vcov)
    return result_cls(statistic=stat, df=df, p_value=float(chi2.sf(stat, df)), n_restrictions=k,
                      description=f"pre-treatment effects at leads {leads} = 0 (untreated observations)")


def _cohort_array(frame: pd.DataFrame) -> np.ndarray:
    """The panel's ``_cohort`` as floats with never treated (0 or missing) as ``inf``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Prepared panel.

    Returns
    -------
    numpy.ndarray
    """
    cohort = frame["_cohort"].to_numpy(dtype=float)
    return np.where((cohort == 0) | np.isnan(cohort), np.inf, cohort)


def _cluster_values(panel: DidPanel) -> np.ndarray:
    """Cluster of each row of a prepared panel: its one cluster column, else the unit.

    Parameters
    ----------
    panel : DidPanel
        Prepared panel.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    InputError
        More than one cluster column (Theorem 3 is one-way).
    """
    if panel.cluster is None:
        return panel.frame["_unit"].to_numpy()
    if not isinstance(panel.cluster, str):
        if len(panel.cluster) != 1:
            raise InputError("imputation: one cluster column is supported (Theorem 3 is one-way)")
        return panel.frame[panel.cluster[0]].to_numpy()
    return panel.frame[panel.cluster].to_numpy()


def fit_imputation_panel(panel: DidPanel, *, alpha: float = 0.05, horizons: int | None = None,
                         pretrend_periods: int | None = None) -> ImputationResult:
    """Fit the imputation estimator on a prepared panel; ``horizons`` caps the event times reported
    (``0..horizons``; default all).

    Parameters
    ----------
    panel : DidPanel
        Prepared panel (:func:`impactkit.did.data.prepare_panel`).
    alpha : float, default 0.05
        1 - confidence level.
    horizons : int, optional
        Largest event time reported.
    pretrend_periods : int, optional
        Leads of the pre-trend test (:func:`pretrend_test`).

    Returns
    -------
    ImputationResult
    """
    frame = panel.frame
    cohort = _cohort_array(frame)
    weights = frame[panel.weights].to_numpy(dtype=float) if panel.weights else np.ones(len(frame))
    covariates = frame[list(panel.covariates)].to_numpy(dtype=float) if panel.covariates else None
    clusters = _cluster_values(panel)
    fit = fit_imputation(frame["_y"].to_numpy(dtype=float), frame["_unit"].to_numpy(),
                         frame["_time"].to_numpy(dtype=float), cohort, covariates, weights, clusters)
    if not fit.treated.any():
        raise EstimationError("imputation: no treated observations")
    h_all = fit.horizon[fit.treated].astype(int)
    hs = np.unique(h_all)
    if horizons is not None:
        hs = hs[hs <= int(horizons)]
    w1 = np.where(fit.treated, fit.weights, 0.0)
    targets = [w1 / w1.sum()]
    for h in hs:
        mask = fit.treated & (fit.horizon == h)
        wh = np.where(mask, fit.weights, 0.0)
        targets.append(wh / wh.sum())
    tmat = np.column_stack(targets)
    v = implicit_weights(fit, tmat)
    estimates = np.nansum(tmat * np.nan_to_num(fit.tau)[:, None], axis=0)
    se = theorem3_se(fit, v)
    z = norm.ppf(1 - alpha / 2)

    def row(est, s):
        return {"estimate": float(est), "std_error": float(s), "conf_low": float(est - z * s),
                "conf_high": float(est + z * s), "p_value": float(2 * norm.sf(abs(est / s))) if s > 0 else math.nan}

    counts = [int((fit.treated & (fit.horizon == h)).sum()) for h in hs]
    table = pd.DataFrame([{"event_time": int(h), **row(e, s), "n": c}
                          for h, e, s, c in zip(hs, estimates[1:], se[1:], counts)])
    return ImputationResult(overall=row(estimates[0], se[0]), horizons=table, alpha=alpha, n_obs=int(len(fit.tau)),
                            n_treated_obs=int(fit.treated.sum()), n_clusters=fit.n_clusters, _panel=panel,
                            _pretrend_periods=pretrend_periods)


class ImputationEstimator(DidEstimator):
    """Borusyak, Jaravel & Spiess (2024) imputation estimator (:func:`fit_imputation_panel`)."""

    name = "imputation"
    label = "Imputation (Borusyak-Jaravel-Spiess)"
    reference = "Borusyak, Jaravel & Spiess (2024), Rev. Econ. Stud. 91(6), Theorems 2-3, eq. 8"
    options = {"covariates": None, "cluster": None, "weights": None, "alpha": 0.05, "horizons": None,
               "pretrend_periods": None}
    has_event_study = True

    def fit(self, panel: DidPanel, *, alpha: float = 0.05, horizons: int | None = None,
            pretrend_periods: int | None = None, **_: object) -> ImputationResult:
        """Imputation estimator on ``panel``; see :func:`fit_imputation_panel`."""
        return fit_imputation_panel(panel, alpha=alpha, horizons=horizons, pretrend_periods=pretrend_periods)
