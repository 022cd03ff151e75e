"""Wild cluster bootstrap (WCR / WCU) for one coefficient of a linear regression.

The bootstrap follows the "fast and wild" algorithm of Roodman, MacKinnon, Nielsen and
Webb (2019), *Fast and wild: Bootstrap inference in Stata using boottest*, The Stata
Journal 19(1): 4-60 (section 3 and eqs. 11-20 for the one-restriction case):

- Only cluster-level sums are kept: the k x k blocks ``X_g'X_g`` and the k-vector scores
  ``X_g'u_g``. Every bootstrap draw then costs O(G^2) (the G x G matrix ``H`` below)
  instead of O(N) refits of the whole regression.
- For the restricted bootstrap (WCR, null imposed) the restricted residuals, hence the
  scores, the bootstrap numerators and the bootstrap CRV1 "Z" vectors, are affine in the
  hypothesised value ``r``. Keeping the two pieces separately (``Z = Z0 + d Z1`` with
  ``d = beta_hat_j - r``) makes the bootstrap t-statistic at any ``r`` an O(B) evaluation,
  which is what makes the confidence interval by test inversion cheap (boottest's
  approach, Roodman et al. 2019 section 3.5).

Notation (one restriction ``beta_j = r``): ``A = (X'X)^-1``, ``a = A e_j``. With cluster
scores ``S_g = X_g' u~_g``, the bootstrap estimate is ``beta* = beta~ + A sum_g S_g v_g`` so the
numerator is ``sum_g C_g v_g`` with ``C_g = a'S_g``; the bootstrap cluster score of the
coefficient is ``Z_g = C_g v_g - sum_h H_gh v_h`` with ``H_gh = a' X_g'X_g A S_h``, and the
CRV1 variance is ``ssc * sum_g Z_g^2`` with ``ssc = G/(G-1) * (N-1)/(N-k)`` (the factor used by
boottest, fixest and the ``wildboottest`` package).

Weights: Rademacher (+-1), Webb's (2014/2023) six-point distribution and Mammen's (1993)
two-point distribution. With Rademacher weights and ``2^G <= B`` every sign vector is
enumerated (MacKinnon & Webb 2018 recommend this when G is small).

The weights, cluster sums, per-draw moments, p-values and test inversion are in
:mod:`impactkit.did.wild_core` (re-exported here); this module checks the input, runs the
bootstrap and holds its result.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from impactkit.did.wild_core import (  # noqa: F401  (re-exported: the bootstrap core lived here)
    MAMMEN_P_NEGATIVE,
    MAMMEN_VALUES,
    MAX_ENUMERATION_CLUSTERS,
    P_VALUE_TYPES,
    TIE_RTOL,
    WEBB_VALUES,
    WEIGHT_TYPES,
    BootstrapMoments,
    PValueType,
    WeightType,
    bootstrap_moments,
    bootstrap_p_value,
    cluster_codes,
    cluster_cross_products,
    cluster_scores,
    crv1_factor,
    draw_weights,
    enumerate_rademacher,
    invert_p_value,
)
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.limits import MAX_BOOTSTRAP_DRAWS
from impactkit.results import Result, to_plain

MIN_DRAWS = 99
FEW_CLUSTERS_RADEMACHER = 6


# --------------------------------------------------------------------------- validation
def _as_inputs(y: Any, X: Any, clusters: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y``, ``X`` and ``clusters`` as float arrays of one length, finite, no missing cluster.

    Parameters
    ----------
    y : array_like
        Outcome (n).
    X : array_like
        Regressors (n x k, or n for one).
    clusters : array_like
        Cluster label of each row.

    Returns
    -------
    tuple of numpy.ndarray

    Raises
    ------
    InputError
        Lengths differ, no rows, or a missing or non-finite value (rows named).
    """
    y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
    X_arr = np.asarray(X, dtype=np.float64)
    if X_arr.ndim == 1:
        X_arr = X_arr[:, None]
    if X_arr.ndim != 2:
        raise InputError(f"X: must be a 2-D array (n x k), got {X_arr.ndim} dimensions")
    cl = np.asarray(clusters).reshape(-1)
    n = y_arr.shape[0]
    if X_arr.shape[0] != n or cl.shape[0] != n:
        raise InputError(f"y, X, clusters: lengths differ (y {n}, X {X_arr.shape[0]}, clusters {cl.shape[0]})")
    if n == 0:
        raise InputError("y: no observations")
    for name, bad in (("y", ~np.isfinite(y_arr)), ("X", ~np.isfinite(X_arr).all(axis=1)),
                      ("clusters", pd.isna(cl))):
        if bad.any():
            rows = np.flatnonzero(bad)
            shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
            raise InputError(f"{name}: {rows.size} missing or non-finite value(s) at rows {shown}; "
                             "drop or impute them before the bootstrap")
    return y_arr, X_arr, cl


# --------------------------------------------------------------------------- result
@dataclass
class WildBootstrapResult(Result):
    """Wild cluster bootstrap test of ``beta_j = r`` and its test-inversion interval."""

    title = "Wild cluster bootstrap"

    term: str
    estimate: float
    std_error: float
    t_stat: float
    p_value: float
    conf_low: float
    conf_high: float
    r: float
    alpha: float
    n_draws: int
    n_clusters: int
    n_obs: int
    weights: str
    impose_null: bool
    full_enumeration: bool
    p_value_type: str
    small_sample: bool
    seed: int | None
    t_boot: np.ndarray = field(repr=False)

    @property
    def bootstrap_type(self) -> str:
        return "WCR" if self.impose_null else "WCU"

    def tidy(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "term": self.term, "estimate": self.estimate, "std_error": self.std_error,
            "t_stat": self.t_stat, "p_value": self.p_value, "conf_low": self.conf_low,
            "conf_high": self.conf_high, "B": self.n_draws, "n_clusters": self.n_clusters,
            "n": self.n_obs, "weights": self.weights,
        }])

    def notes(self) -> list[str]:
        kind = ("restricted (WCR, null imposed)" if self.impose_null
                else "unrestricted (WCU, null not imposed)")
        draws = (f"all 2^{self.n_clusters} = {self.n_draws} Rademacher sign vectors enumerated"
                 if self.full_enumeration else f"{self.n_draws} {self.weights} draws (seed {self.seed})")
        ssc = "G/(G-1)*(N-1)/(N-k)" if self.small_sample else "none"
        lines = [
            f"Wild cluster bootstrap, {kind}; {draws}.",
            f"H0: {self.term} = {self.r:g}; {self.p_value_type} p-value; CRV1 t-statistics, "
            f"small-sample factor {ssc}; {self.n_clusters} clusters, {self.n_obs} observations.",
            f"{100 * (1 - self.alpha):g}% confidence interval by inverting the bootstrap test "
            "(Roodman, MacKinnon, Nielsen & Webb 2019, Stata Journal 19(1)).",
        ]
        if self.weights == "rademacher" and self.n_clusters < FEW_CLUSTERS_RADEMACHER:
            lines.append(f"Only {self.n_clusters} clusters: Rademacher weights give at most "
                         f"{2 ** (self.n_clusters - 1)} distinct |t*|; Webb weights are recommended.")
        if math.isinf(self.conf_low) or math.isinf(self.conf_high):
            lines.append("The confidence interval is unbounded: no finite value is rejected at this level.")
        return lines

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(to_plain({
            "bootstrap_type": self.bootstrap_type, "r": self.r, "alpha": self.alpha,
            "impose_null": self.impose_null, "full_enumeration": self.full_enumeration,
            "p_value_type": self.p_value_type, "small_sample": self.small_sample,
            "seed": self.seed,
            "t_boot_quantiles": distribution_quantiles(self.t_boot),
        }))
        return out

    def plot(self, ax=None):
        """Histogram of the bootstrap t-statistics with the observed t marked."""
        finite = self.t_boot[np.isfinite(self.t_boot)]
        return resampling_histogram(
            finite, self.t_stat, ax=ax, max_bins=60, color="#9db4c0", mirror=self.p_value_type == "symmetric",
            observed_label=f"observed t = {self.t_stat:.3f}",
            xlabel=f"bootstrap t-statistic ({self.bootstrap_type}, {self.weights})", ylabel="draws",
            title=f"{self.term}: p = {self.p_value:.4f}",
            alt_text=(f"Histogram of {self.n_draws} {self.bootstrap_type} wild cluster bootstrap "
                      f"t-statistics for {self.term}; the observed t-statistic {self.t_stat:.3f} is marked "
                      f"with a red line; bootstrap p-value {self.p_value:.4f}."))


def distribution_quantiles(draws: np.ndarray) -> dict[str, float]:
    """The 2.5%, 50% and 97.5% quantiles of resampled statistics (keys q025, q50, q975)."""
    return dict(zip(("q025", "q50", "q975"), np.quantile(draws, [0.025, 0.5, 0.975])))


def resampling_histogram(draws: np.ndarray, observed: float, *, ax=None, max_bins: int, color: str, mirror: bool,
                         observed_label: str, xlabel: str, ylabel: str, title: str, alt_text: str):
    """Histogram of resampled statistics with the observed one (and, if ``mirror``, its negative) marked.

    Shared by the wild bootstrap and randomization inference plots; the figure carries
    ``alt_text`` for the evidence pack.

    Parameters
    ----------
    draws : numpy.ndarray
        Resampled statistics (finite).
    observed : float
        The observed statistic (a red line).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure otherwise.
    max_bins : int
        Upper limit on histogram bins.
    color : str
        Bar colour.
    mirror : bool
        Also mark ``-observed`` (dashed): two-sided symmetric tests.
    observed_label, xlabel, ylabel, title : str
        Texts of the legend entry, axes and title.
    alt_text : str
        Description of the figure for screen readers.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    ax.hist(draws, bins=min(max_bins, max(10, int(np.sqrt(draws.size)))), color=color, edgecolor="white")
    ax.axvline(observed, color="#c0392b", linewidth=2, label=observed_label)
    if mirror:
        ax.axvline(-observed, color="#c0392b", linewidth=1, linestyle="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    ax.set_title(title)
    fig._impactkit_alt_text = alt_text
    return fig


# --------------------------------------------------------------------------- front door
def wild_cluster_bootstrap(
    y: Any,
    X: Any,
    clusters: Any,
    param_index: int,
    *,
    r: float = 0.0,
    B: int = 9999,
    weights: WeightType = "rademacher",
    impose_null: bool = True,
    seed: int | None = None,
    alpha: float = 0.05,
    small_sample: bool = True,
    full_enumeration: bool | Literal["auto"] = "auto",
    ci: bool = True,
    p_value_type: PValueType = "symmetric",
    n_params: int | None = None,
    term: str | None = None,
) -> WildBootstrapResult:
    """Wild cluster bootstrap test of ``H0: beta_j = r`` in ``y = X beta + u``.

    Implements the WCR (``impose_null=True``, restricted residuals) and WCU wild cluster
    bootstraps of Cameron, Gelbach & Miller (2008, REStat 90(3)) with the fast algorithm
    of Roodman, MacKinnon, Nielsen & Webb (2019, Stata Journal 19(1), section 3): cluster
    sums are computed once, each draw costs O(G^2), and the confidence interval is found by
    inverting the bootstrap test (section 3.5) with the statistic affine in ``r``.

    Parameters
    ----------
    y, X, clusters:
        Outcome (n), regressors (n x k, already demeaned if fixed effects are partialled
        out) and cluster labels (n). Column ``g`` of the draws goes to the ``g``-th cluster
        in sorted label order.
    param_index:
        Column ``j`` of ``X`` tested.
    r:
        Hypothesised value of ``beta_j``.
    B:
        Number of bootstrap draws (>= 99). Ignored under full enumeration (2^G draws).
    weights:
        ``"rademacher"``, ``"webb"`` (six-point, Webb 2023 CJE 56(3)) or ``"mammen"``.
    impose_null:
        WCR (True, recommended by MacKinnon & Webb 2017) or WCU (False).
    seed:
        Seed of ``impactkit.seeds.rng(seed, "wild-bootstrap")``.
    alpha:
        Level of the confidence interval.
    small_sample:
        Multiply CRV1 variances by ``G/(G-1) * (N-1)/(N-k)``.
    full_enumeration:
        ``"auto"``: enumerate all 2^G Rademacher vectors when ``2^G <= B``; True forces it
        (Rademacher only, G <= 16); False never enumerates.
    ci:
        Compute the test-inversion confidence interval (NaN bounds otherwise).
    p_value_type:
        ``"symmetric"`` (``mean |t*| >= |t|``) or ``"equal-tailed"``.
    n_params:
        ``k`` in the small-sample factor (defaults to ``X.shape[1]``; pass the count
        including absorbed fixed effects to reproduce a dummy-variable regression).
    term:
        Name shown for the coefficient (default ``"x{j}"``).
    """
    y_arr, X_arr, cl = _as_inputs(y, X, clusters)
    n_obs, k = X_arr.shape
    if not isinstance(param_index, (int, np.integer)) or not 0 <= int(param_index) < k:
        raise InputError(f"param_index={param_index!r}: must be an integer in 0..{k - 1} (X has {k} columns)")
    j = int(param_index)
    if weights not in WEIGHT_TYPES:
        raise InputError(f"weights={weights!r}: must be one of {', '.join(WEIGHT_TYPES)}")
    if p_value_type not in P_VALUE_TYPES:
        raise InputError(f"p_value_type={p_value_type!r}: must be one of {', '.join(P_VALUE_TYPES)}")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha={alpha!r}: must lie strictly between 0 and 1")
    if full_enumeration not in ("auto", True, False):
        raise InputError(f"full_enumeration={full_enumeration!r}: must be 'auto', True or False")
    if int(B) < MIN_DRAWS:
        raise InputError(f"B={B}: at least {MIN_DRAWS} bootstrap draws are required")
    if int(B) > MAX_BOOTSTRAP_DRAWS:
        raise InputError(f"B={B}: at most {MAX_BOOTSTRAP_DRAWS:,} bootstrap draws (impactkit.limits)")
    if not math.isfinite(float(r)):
        raise InputError(f"r={r!r}: the hypothesised value must be finite")

    codes, n_clusters = cluster_codes(cl)
    if n_clusters < 2:
        raise InputError(f"clusters: only {n_clusters} cluster; the wild cluster bootstrap needs at least 2")
    params = k if n_params is None else int(n_params)
    if not k <= params < n_obs:
        raise InputError(f"n_params={n_params}: must be between {k} (columns of X) and N-1={n_obs - 1}")
    if full_enumeration is True and weights != "rademacher":
        raise InputError(f"full_enumeration=True: only Rademacher weights can be enumerated, not {weights!r}")
    if weights == "rademacher" and n_clusters < FEW_CLUSTERS_RADEMACHER:
        warnings.warn(f"clusters: only {n_clusters} clusters; Rademacher weights give at most "
                      f"{2 ** (n_clusters - 1)} distinct |t*|, use weights='webb'", ImpactkitWarning,
                      stacklevel=2)

    enumerate_all = weights == "rademacher" and (
        full_enumeration is True
        or (full_enumeration == "auto" and n_clusters <= MAX_ENUMERATION_CLUSTERS and 2 ** n_clusters <= B))
    draws = enumerate_rademacher(n_clusters) if enumerate_all else draw_weights(B, n_clusters, weights, seed)

    # ---- one pass over the data: cluster sums
    xx_g = cluster_cross_products(X_arr, codes, n_clusters)
    xtx = xx_g.sum(axis=0)
    if np.linalg.matrix_rank(xtx) < k:
        raise EstimationError("X: the regressors are collinear (X'X is singular); drop redundant columns")
    xtx_inv = np.linalg.inv(xtx)
    xtx_inv = 0.5 * (xtx_inv + xtx_inv.T)
    beta_hat = xtx_inv @ (X_arr.T @ y_arr)
    resid = y_arr - X_arr @ beta_hat
    s0 = cluster_scores(X_arr, resid, codes, n_clusters)                     # (G, k)

    a = xtx_inv[:, j]
    ssc = crv1_factor(n_obs, params, n_clusters, small_sample)
    c0 = s0 @ a
    std_error = math.sqrt(ssc * float(c0 @ c0))
    if not std_error > 0.0:
        raise EstimationError(f"X column {j}: the cluster-robust standard error is zero; "
                              "the coefficient is fitted exactly")
    # Restricted residuals u~(r) = u^ + X a d / A_jj, d = beta_hat_j - r (WCR); so scores are
    # S0 + d S1. Under WCU the bootstrap DGP does not depend on r: S1 = 0.
    s1 = (xx_g @ a) / xtx_inv[j, j] if impose_null else np.zeros_like(s0)
    c1 = s1 @ a
    w = (xx_g @ a) @ xtx_inv                                                 # rows: a'X_g'X_g A
    moments = bootstrap_moments(draws, c0, c1, w @ s0.T, w @ s1.T, ssc)

    estimate = float(beta_hat[j])

    def p_at(value: float) -> float:
        d = estimate - value
        return bootstrap_p_value(d / std_error, moments.t_stats(d), p_value_type)

    d_obs = estimate - float(r)
    t_boot = moments.t_stats(d_obs)
    t_stat = d_obs / std_error
    p_value = bootstrap_p_value(t_stat, t_boot, p_value_type)
    conf_low, conf_high = invert_p_value(p_at, estimate, std_error, alpha) if ci else (math.nan, math.nan)
    if ci and (math.isnan(conf_low) or math.isnan(conf_high)):
        warnings.warn(f"{term or f'x{j}'}: the bootstrap test rejects every value near the estimate; "
                      "no confidence interval", ImpactkitWarning, stacklevel=2)
    return WildBootstrapResult(
        term=term or f"x{j}", estimate=estimate, std_error=std_error, t_stat=float(t_stat),
        p_value=p_value, conf_low=float(conf_low), conf_high=float(conf_high), r=float(r),
        alpha=float(alpha), n_draws=int(draws.shape[0]), n_clusters=n_clusters, n_obs=n_obs,
        weights=weights, impose_null=bool(impose_null), full_enumeration=bool(enumerate_all),
        p_value_type=p_value_type, small_sample=bool(small_sample),
        seed=None if seed is None else int(seed), t_boot=t_boot,
    )
