"""The conditional test of Andrews, Roth & Pakes (2023) and its hybrids, for
:mod:`impactkit.did.honest`.

The linear programs of the conditional test are solved by enumerating the vertices of the
dual polytope ``{gamma >= 0, X' gamma = 0, sigma' gamma = 1}`` once per polyhedron: the
test statistic ``max_gamma gamma' Y(theta)`` and the truncation points ``V^lo``, ``V^up``
then follow for every ``theta`` on the grid by vector arithmetic (exact, no LP per point).
The grid, the moments kept (post-period moments only when ``T_post > 1``) and the
union over polyhedra follow R HonestDiD 0.2.6 (``createSensitivityResults_relativeMagnitudes``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtri_exp

from impactkit.did.honest_delta import EventStudy, Polyhedron
from impactkit.errors import EstimationError
from impactkit.seeds import rng

MAX_VERTEX_SUBSETS = 500_000
LF_SIMULATIONS = 1000


def dual_vertices(x: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """All vertices of ``{gamma >= 0, X' gamma = 0, sd' gamma = 1}`` (rows of the result).

    Basic solutions have ``rank [sd, X]`` non-zeros; each subset of that size with a
    non-singular system is solved in one batch and kept when non-negative.
    """
    m, k = x.shape
    full = np.column_stack([sd, x]).T                        # (k+1) x m, right-hand side e_1
    keep = [0]
    for r in range(1, k + 1):                                # drop X columns that add no rank
        if np.linalg.matrix_rank(full[keep + [r]]) > len(keep):
            keep.append(r)
    system = full[keep]
    rank = len(keep)
    rhs = np.eye(rank)[:, 0]
    count = math.comb(m, rank)
    if count > MAX_VERTEX_SUBSETS:
        raise EstimationError(f"honest_did: {count} candidate vertices for {m} moments and {k} nuisance "
                              f"parameters exceed the limit of {MAX_VERTEX_SUBSETS}; use fewer post periods")
    subsets = np.array(list(itertools.combinations(range(m), rank)), dtype=int)
    blocks = system[:, subsets].transpose(1, 0, 2)             # (count, rank, rank)
    det = np.linalg.det(blocks)
    ok = np.abs(det) > 1e-12 * np.abs(blocks).max(axis=(1, 2)) ** rank
    sol = np.linalg.solve(blocks[ok], np.broadcast_to(rhs, (int(ok.sum()), rank))[..., None])[..., 0]
    feasible = np.all(sol >= -1e-10, axis=1)
    vertices = np.zeros((int(feasible.sum()), m))
    rows = np.repeat(np.arange(vertices.shape[0]), rank)
    vertices[rows, subsets[ok][feasible].ravel()] = np.clip(sol[feasible], 0.0, None).ravel()
    if rank < k + 1:                                         # keep those solving the whole system
        residual = np.abs(vertices @ full.T - np.eye(k + 1)[0]).max(axis=1) if vertices.size else np.zeros(0)
        vertices = vertices[residual < 1e-8]
    return np.unique(np.round(vertices, 14), axis=0) if vertices.size else vertices


@dataclass(frozen=True)
class Moments:
    """The moments of one polyhedron ``{A delta <= d}`` after the change of basis of Rambachan &
    Roth (2023, eq. 13): ``Y(theta) = y0 - slope * theta``, nuisance columns ``x``, covariance
    ``sigma_y``; ``a`` holds the rows of ``A`` kept (every row involving a post period)."""

    y0: np.ndarray
    slope: np.ndarray
    x: np.ndarray
    sigma_y: np.ndarray
    a: np.ndarray


@dataclass(frozen=True)
class FlciStage:
    """First stage of the FLCI hybrid (ARP 2023, Sec. 3.3; Rambachan & Roth 2023, Sec. 4.3):
    the size-``kappa`` FLCI ``v' beta_hat +- half``."""

    vec: np.ndarray
    half: float
    kappa: float


def polyhedron_moments(study: EventStudy, l_vec: np.ndarray, a: np.ndarray, d: np.ndarray,
                       post_rows_with_one_post: bool) -> Moments:
    """Moments of ``{A delta <= d}`` for ``theta = l' tau_post``. With several post periods only
    the rows involving a post period are kept (HonestDiD's ``postPeriodMomentsOnly``); with one,
    all rows, or the post rows when ``post_rows_with_one_post`` (as HonestDiD does for ``Delta^RM``
    and its intersections)."""
    a_post = a[:, study.post] @ np.linalg.inv(reparametrise(l_vec))
    involves_post = np.any(a[:, study.post] != 0, axis=1)
    if study.num_post > 1 or post_rows_with_one_post:
        rows = np.flatnonzero(involves_post)
    else:
        rows = np.arange(a.shape[0])
    x = a_post[rows, 1:] if study.num_post > 1 else np.zeros((rows.size, 0))
    kept = a[rows]
    return Moments((kept @ study.beta - d[rows]), a_post[rows, 0], x, kept @ study.sigma @ kept.T, kept)


def conditional_test_grid(m: Moments, thetas: np.ndarray, alpha: float, lf_cv: float | None = None,
                          flci: tuple[np.ndarray, np.ndarray, float] | None = None) -> np.ndarray:
    """Accept (True) / reject the ARP conditional test of ``E[Y(theta) - X xi] <= 0 for some xi``
    with ``Y(theta) = y0 - slope * theta``, for every ``theta``.

    Andrews, Roth & Pakes (2023), Sec. 3.2: ``eta_hat`` is truncated normal on ``[V^lo, V^up]``
    given the optimal dual vertex. Hybrids (Sec. 3.3, first-stage size ``kappa = alpha / 10``,
    second stage of size ``(alpha - kappa) / (1 - kappa)``):

    - ``lf_cv``: least favourable; reject when ``eta_hat > c_LF``, else ``V^up <= c_LF``;
    - ``flci = (c, r, half)``: FLCI (Rambachan & Roth 2023, Sec. 4.3); reject when
      ``|r(theta)| > half`` with ``r = v' beta_hat - theta``, else condition on the FLCI event too:
      along the conditioning direction ``r`` moves by ``k = gamma' c / gamma' Sigma_Y gamma`` per
      unit of ``gamma' Y`` (``c = A Sigma v``), which bounds ``V^lo``, ``V^up``.
    """
    kappa = alpha / 10
    sd = np.sqrt(np.diag(m.sigma_y))
    if np.any(sd <= 0):
        raise EstimationError("honest_did: a moment of the restriction has zero variance")
    vertices = dual_vertices(m.x, sd)
    if vertices.shape[0] == 0:        # dual infeasible: the statistic is -inf, never reject
        return np.ones(thetas.size, dtype=bool)
    values = vertices @ m.y0[:, None] - (vertices @ m.slope)[:, None] * thetas[None, :]   # (nv, ngrid)
    best = np.argmax(values, axis=0)
    eta = values[best, np.arange(thetas.size)]
    q = vertices @ m.sigma_y @ vertices.T                                              # gamma_j' S gamma_i
    var_best = q[best, best]
    size = alpha if lf_cv is None and flci is None else (alpha - kappa) / (1 - kappa)
    degenerate = var_best <= np.finfo(float).eps
    var_safe = np.where(degenerate, 1.0, var_best)
    b = q[:, best] / var_safe[None, :]                       # direction of gamma*' Y, per grid point
    a = values - b * eta[None, :]                            # the part of each line not moving with eta
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = -a / (b - 1.0)
    vup = np.where(b > 1 + 1e-10, ratio, np.inf).min(axis=0)
    vlo = np.where(b < 1 - 1e-10, ratio, -np.inf).max(axis=0)
    first_stage = np.zeros(thetas.size, dtype=bool)
    if lf_cv is not None:
        vup = np.minimum(vup, lf_cv)
        first_stage = eta > lf_cv
    if flci is not None:
        c, r, half = flci
        k = (vertices @ c)[best] / var_safe
        with np.errstate(divide="ignore", invalid="ignore"):
            cut_a, cut_b = eta + (half - r) / k, eta - (half + r) / k
        vup = np.where(k > 0, np.minimum(vup, cut_a), np.where(k < 0, np.minimum(vup, cut_b), vup))
        vlo = np.where(k > 0, np.maximum(vlo, cut_b), np.where(k < 0, np.maximum(vlo, cut_a), vlo))
        first_stage = np.abs(r) > half
    sd_g = np.sqrt(var_safe)
    zlo, zup, stat = vlo / sd_g, vup / sd_g, eta / sd_g
    cval = np.maximum(0.0, np.nan_to_num(truncated_normal_quantile(1 - size, zlo, zup), nan=0.0,
                                         posinf=np.inf, neginf=0.0))
    inside = (stat >= zlo - 1e-9) & (stat <= zup + 1e-9)
    accept = ~inside | ~(stat > cval)
    return np.where(degenerate, ~(eta > 0), accept) & ~first_stage


def truncated_normal_quantile(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The ``p`` quantile of ``N(0, 1)`` truncated to ``[lo, hi]``, accurate far in either tail:
    computed on the log scale of the lower tail (``log_ndtr``/``ndtri_exp``), mirroring
    ``X -> -X`` when the interval lies above zero (where ``cdf(lo)`` rounds to 1)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    mirror = lo > 0
    a, b = np.where(mirror, -hi, lo), np.where(mirror, -lo, hi)
    pp = np.where(mirror, 1.0 - p, p)
    log_a, log_b = log_ndtr(a), log_ndtr(b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        target = log_b + np.log(pp + (1.0 - pp) * np.exp(log_a - log_b))
        q = ndtri_exp(np.minimum(target, 0.0))
    return np.clip(np.where(mirror, -q, q), lo, hi)


def least_favorable_cv(x: np.ndarray, sigma_y: np.ndarray, kappa: float, seed: int | None,
                       purpose: str) -> float:
    """``1 - kappa`` quantile of ``max_gamma gamma' xi`` with ``xi ~ N(0, Sigma_Y)`` (ARP 2023,
    Sec. 3.3), from :data:`LF_SIMULATIONS` draws of the named random stream."""
    sd = np.sqrt(np.diag(sigma_y))
    vertices = dual_vertices(x, sd)
    draws = rng(seed, "honest-did-lf", purpose).multivariate_normal(np.zeros(len(sd)), sigma_y,
                                                                     size=LF_SIMULATIONS, method="eigh")
    return float(np.quantile((draws @ vertices.T).max(axis=1), 1 - kappa))


def reparametrise(l_vec: np.ndarray) -> np.ndarray:
    """Invertible ``Gamma`` with first row ``l'`` (unit rows elsewhere): ``tau = Gamma^{-1}(theta, xi)``."""
    n = l_vec.size
    drop = int(np.argmax(np.abs(l_vec)))
    gamma = np.zeros((n, n))
    gamma[0] = l_vec
    rows = [i for i in range(n) if i != drop]
    for r, i in enumerate(rows, start=1):
        gamma[r, i] = 1.0
    return gamma


def accept_union(study: EventStudy, l_vec: np.ndarray, polys: list[Polyhedron], thetas: np.ndarray,
                 alpha: float, method: str, seed: int | None, labels: list[str],
                 post_rows_with_one_post: bool, flci: FlciStage | None = None) -> np.ndarray:
    """Grid points accepted for at least one polyhedron of ``Delta`` (the confidence set of a union
    is the union of the sets, Rambachan & Roth 2023, Sec. 4.2). ``method``: ``"Conditional"``,
    ``"C-LF"`` (least-favourable critical value simulated from the stream named by ``labels[i]``) or
    ``"C-F"`` (FLCI hybrid, ``flci`` given)."""
    accept = np.zeros(thetas.size, dtype=bool)
    for (a, d), label in zip(polys, labels):
        m = polyhedron_moments(study, l_vec, a, d, post_rows_with_one_post)
        lf_cv = least_favorable_cv(m.x, m.sigma_y, alpha / 10, seed, label) if method == "C-LF" else None
        stage = None
        if flci is not None:
            stage = (m.a @ study.sigma @ flci.vec, float(flci.vec @ study.beta) - thetas, flci.half)
        accept |= conditional_test_grid(m, thetas, alpha, lf_cv, stage)
    return accept
