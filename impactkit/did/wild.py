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
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.limits import MAX_BOOTSTRAP_DRAWS
from impactkit.results import Result, to_plain
from impactkit.seeds import rng

WeightType = Literal["rademacher", "webb", "mammen"]
PValueType = Literal["symmetric", "equal-tailed"]

WEIGHT_TYPES: tuple[str, ...] = ("rademacher", "webb", "mammen")
P_VALUE_TYPES: tuple[str, ...] = ("symmetric", "equal-tailed")
MIN_DRAWS = 99
MAX_ENUMERATION_CLUSTERS = 16
FEW_CLUSTERS_RADEMACHER = 6
# A bootstrap statistic within this relative distance of the observed one counts as a tie,
# and ties count as "at least as extreme" (the original sample is itself one of the draws:
# the all-ones Rademacher vector reproduces the observed WCR t-statistic exactly).
TIE_RTOL = 1e-10
_CHUNK_ROWS = 4096
_GRID_POINTS = 64
# Bounds beyond 2^13 standard errors are reported as infinite (nothing finite is rejected;
# the affine-in-r moments also lose the 1e-10 tie precision far beyond that).
_MAX_DOUBLINGS = 14
_MAX_BISECTIONS = 200

WEBB_VALUES = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])
MAMMEN_VALUES = np.array([-(math.sqrt(5.0) - 1.0) / 2.0, (math.sqrt(5.0) + 1.0) / 2.0])
MAMMEN_P_NEGATIVE = (math.sqrt(5.0) + 1.0) / (2.0 * math.sqrt(5.0))


# --------------------------------------------------------------------------- weights
def draw_weights(n_draws: int, n_clusters: int, weights: str = "rademacher",
                 seed: int | None = None) -> np.ndarray:
    """Bootstrap weights in a fixed ``(n_draws, n_clusters)`` layout, float64.

    Drawn in one call from ``impactkit.seeds.rng(seed, "wild-bootstrap")``, so they depend
    only on the seed, the weight type and the shape (never on threads or chunking).

    Parameters
    ----------
    n_draws : int
        Bootstrap draws ``B``.
    n_clusters : int
        Clusters ``G``.
    weights : {"rademacher", "webb", "mammen"}
        Weight distribution.
    seed : int, optional
        Seed of the ``"wild-bootstrap"`` stream.

    Returns
    -------
    numpy.ndarray
        ``(B, G)`` weights.
    """
    if weights not in WEIGHT_TYPES:
        raise InputError(f"weights={weights!r}: must be one of {', '.join(WEIGHT_TYPES)}")
    gen = rng(seed, "wild-bootstrap")
    shape = (int(n_draws), int(n_clusters))
    if weights == "rademacher":
        return 1.0 - 2.0 * gen.integers(0, 2, size=shape, dtype=np.int8)
    if weights == "webb":
        return WEBB_VALUES[gen.integers(0, 6, size=shape, dtype=np.int8)]
    negative = gen.random(shape) < MAMMEN_P_NEGATIVE
    return np.where(negative, MAMMEN_VALUES[0], MAMMEN_VALUES[1])


def enumerate_rademacher(n_clusters: int) -> np.ndarray:
    """All ``2^G`` Rademacher sign vectors, shape ``(2^G, G)``; row 0 is all ones.

    Row ``i`` has ``-1`` in column ``g`` when bit ``G-1-g`` of ``i`` is set.
    """
    if n_clusters > MAX_ENUMERATION_CLUSTERS:
        raise InputError(f"full_enumeration: G={n_clusters} clusters gives 2^{n_clusters} draws; "
                         f"enumeration is limited to G <= {MAX_ENUMERATION_CLUSTERS}")
    rows = np.arange(2 ** n_clusters, dtype=np.int64)[:, None]
    bits = (rows >> np.arange(n_clusters - 1, -1, -1, dtype=np.int64)[None, :]) & 1
    return 1.0 - 2.0 * bits.astype(np.float64)


# --------------------------------------------------------------------------- cluster sums
def cluster_codes(clusters: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes ``0..G-1`` of the cluster labels (sorted label order) and ``G``."""
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    codes = codes.reshape(-1)
    return codes.astype(np.int64), int(codes.max()) + 1 if codes.size else 0


def cluster_cross_products(X: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """``X_g'X_g`` for every cluster, shape ``(G, k, k)``.

    Parameters
    ----------
    X : numpy.ndarray
        Regressors (n x k).
    codes : numpy.ndarray
        Cluster code of each row, 0..G-1.
    n_clusters : int
        ``G``.

    Returns
    -------
    numpy.ndarray
    """
    k = X.shape[1]
    out = np.empty((n_clusters, k, k))
    for i in range(k):
        for j in range(i, k):
            block = np.bincount(codes, weights=X[:, i] * X[:, j], minlength=n_clusters)
            out[:, i, j] = block
            out[:, j, i] = block
    return out


def cluster_scores(X: np.ndarray, u: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """``X_g'u_g`` for every cluster, shape ``(G, k)``.

    Parameters
    ----------
    X : numpy.ndarray
        Regressors (n x k).
    u : numpy.ndarray
        Residuals (n).
    codes : numpy.ndarray
        Cluster code of each row, 0..G-1.
    n_clusters : int
        ``G``.

    Returns
    -------
    numpy.ndarray
    """
    return np.stack([np.bincount(codes, weights=X[:, i] * u, minlength=n_clusters)
                     for i in range(X.shape[1])], axis=1)


def crv1_factor(n_obs: int, n_params: int, n_clusters: int, small_sample: bool) -> float:
    """CRV1 small-sample factor ``G/(G-1) * (N-1)/(N-k)`` (1 when ``small_sample`` is False).

    Parameters
    ----------
    n_obs : int
        Observations ``N``.
    n_params : int
        Regressors ``k``.
    n_clusters : int
        Clusters ``G``.
    small_sample : bool
        Apply the factor.

    Returns
    -------
    float
    """
    if not small_sample:
        return 1.0
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)


# --------------------------------------------------------------------------- bootstrap core
@dataclass(frozen=True)
class BootstrapMoments:
    """Per-draw pieces of the bootstrap t-statistic as a function of ``d = beta_hat_j - r``.

    ``t*_b(d) = (num0_b + d num1_b) / sqrt(ssc (q0_b + 2 d q01_b + d^2 q1_b))``.
    """

    num0: np.ndarray
    num1: np.ndarray
    q0: np.ndarray
    q01: np.ndarray
    q1: np.ndarray
    ssc: float

    def t_stats(self, d: float) -> np.ndarray:
        numerator = self.num0 + d * self.num1
        variance = self.ssc * np.maximum(self.q0 + 2.0 * d * self.q01 + d * d * self.q1, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = numerator / np.sqrt(variance)
        # A draw with zero bootstrap variance: t is 0 when its numerator is 0, else +-inf.
        degenerate = variance == 0.0
        if degenerate.any():
            t[degenerate] = np.where(numerator[degenerate] == 0.0, 0.0,
                                     np.sign(numerator[degenerate]) * np.inf)
        return t


def bootstrap_moments(draws: np.ndarray, c0: np.ndarray, c1: np.ndarray, h0: np.ndarray,
                      h1: np.ndarray, ssc: float) -> BootstrapMoments:
    """Reduce the ``(B, G)`` draws to the five per-draw moments (chunked over draws).

    ``Z0 = V*C0 - V H0'`` and ``Z1 = V*C1 - V H1'`` are the affine pieces of the bootstrap
    cluster scores (Roodman et al. 2019, eq. 17 specialised to one restriction).

    Parameters
    ----------
    draws : numpy.ndarray
        ``(B, G)`` bootstrap weights ``V``.
    c0, c1 : numpy.ndarray
        Per-cluster constant and slope (in ``d``) of the tested coefficient's score, ``S0 a`` and ``S1 a`` (G).
    h0, h1 : numpy.ndarray
        ``(G, G)`` matrices ``a' X_g' X_g A S0_h'`` and the same with ``S1``: how each cluster's
        weight moves every cluster's score through the refitted coefficients.
    ssc : float
        Small-sample factor (:func:`crv1_factor`).

    Returns
    -------
    BootstrapMoments
    """
    n_draws = draws.shape[0]
    num0, num1 = np.empty(n_draws), np.empty(n_draws)
    q0, q01, q1 = np.empty(n_draws), np.empty(n_draws), np.empty(n_draws)
    for start in range(0, n_draws, _CHUNK_ROWS):
        v = draws[start:start + _CHUNK_ROWS]
        z0 = v * c0 - v @ h0.T
        z1 = v * c1 - v @ h1.T
        stop = start + v.shape[0]
        num0[start:stop] = v @ c0
        num1[start:stop] = v @ c1
        q0[start:stop] = np.einsum("bg,bg->b", z0, z0)
        q01[start:stop] = np.einsum("bg,bg->b", z0, z1)
        q1[start:stop] = np.einsum("bg,bg->b", z1, z1)
    return BootstrapMoments(num0, num1, q0, q01, q1, ssc)


def bootstrap_p_value(t_obs: float, t_boot: np.ndarray, p_value_type: str = "symmetric") -> float:
    """Share of bootstrap statistics at least as extreme as ``t_obs`` (ties count, see TIE_RTOL).

    symmetric:    ``mean(|t*| >= |t|)``;
    equal-tailed: ``2 min(mean(t* <= t), mean(t* >= t))``, capped at 1.

    Parameters
    ----------
    t_obs : float
        The observed t-statistic.
    t_boot : numpy.ndarray
        Bootstrap t-statistics.
    p_value_type : {"symmetric", "equal-tailed"}
        Two-sided p-value convention.

    Returns
    -------
    float
    """
    tol = TIE_RTOL * max(1.0, abs(t_obs))
    if p_value_type == "symmetric":
        return float(np.mean(np.abs(t_boot) >= abs(t_obs) - tol))
    lower = float(np.mean(t_boot <= t_obs + tol))
    upper = float(np.mean(t_boot >= t_obs - tol))
    return min(1.0, 2.0 * min(lower, upper))


def invert_p_value(p_at: Callable[[float], float], estimate: float, std_error: float,
                   alpha: float) -> tuple[float, float]:
    """Confidence set ``{r : p(r) >= alpha}`` by test inversion (its outermost crossings).

    On each side: double the distance (starting at one standard error) until the null is
    rejected, scan a 64-point grid between the estimate and that point for the outermost
    accepted value, then bisect the step function ``p(r)`` to 1e-10 standard errors.
    Returns an infinite bound when no value within 2^13 standard errors is rejected
    (e.g. too few clusters for the test to reach level alpha).

    Parameters
    ----------
    p_at : callable
        ``r -> p(r)``, the p-value of the null ``beta = r``.
    estimate : float
        The point estimate (accepted).
    std_error : float
        Its standard error: the unit of the search.
    alpha : float
        1 - confidence level.

    Returns
    -------
    tuple of float
        Lower and upper bound (``-inf`` / ``inf`` when not reached, NaN when no grid point is accepted).
    """
    bounds = []
    for side in (-1.0, 1.0):
        distance = std_error
        for _ in range(_MAX_DOUBLINGS):
            if p_at(estimate + side * distance) < alpha:
                break
            distance *= 2.0
        else:
            bounds.append(side * math.inf)
            continue
        grid = np.linspace(0.0, distance, _GRID_POINTS + 1)
        accepted = [i for i, g in enumerate(grid) if p_at(estimate + side * g) >= alpha]
        if not accepted:
            bounds.append(math.nan)
            continue
        inner = grid[accepted[-1]]
        outer = grid[accepted[-1] + 1]
        for _ in range(_MAX_BISECTIONS):
            if outer - inner <= 1e-10 * std_error:
                break
            middle = 0.5 * (inner + outer)
            if p_at(estimate + side * middle) >= alpha:
                inner = middle
            else:
                outer = middle
        bounds.append(estimate + side * 0.5 * (inner + outer))
    return bounds[0], bounds[1]


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
