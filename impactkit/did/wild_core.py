"""The core of the fast wild cluster bootstrap (Roodman, MacKinnon, Nielsen & Webb 2019).

Bootstrap weights (Rademacher, Webb, Mammen; all Rademacher sign vectors when enumerated),
cluster-level sums ``X_g'X_g`` and ``X_g'u_g``, the five per-draw moments that make the
bootstrap t-statistic an O(B) function of the hypothesised value, bootstrap p-values and
confidence sets by test inversion. :mod:`impactkit.did.wild` (the front door, notation in its
docstring) and the Dask engine's bootstrap from reduced sums share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from impactkit.errors import InputError
from impactkit.seeds import rng

WeightType = Literal["rademacher", "webb", "mammen"]
PValueType = Literal["symmetric", "equal-tailed"]

WEIGHT_TYPES: tuple[str, ...] = ("rademacher", "webb", "mammen")
P_VALUE_TYPES: tuple[str, ...] = ("symmetric", "equal-tailed")
MAX_ENUMERATION_CLUSTERS = 16
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
