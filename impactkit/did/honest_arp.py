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

import numpy as np
from scipy.stats import norm

from impactkit.did.honest_delta import EventStudy, relative_magnitude_polyhedron
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


def conditional_test_grid(y0: np.ndarray, slope: np.ndarray, x: np.ndarray, sigma_y: np.ndarray,
                          thetas: np.ndarray, alpha: float, lf_cv: float | None,
                          kappa: float) -> np.ndarray:
    """Accept (True) / reject the ARP conditional (or LF-hybrid) test of
    ``E[Y(theta) - X xi] <= 0 for some xi`` with ``Y(theta) = y0 - slope * theta``, for every
    ``theta``. Andrews, Roth & Pakes (2023), Sec. 3.2 (conditional test: ``eta_hat`` is
    truncated normal on ``[V^lo, V^up]`` given the optimal dual vertex) and Sec. 3.3
    (hybrid: reject when ``eta_hat > c_LF``, else a conditional test of size
    ``(alpha - kappa) / (1 - kappa)`` with ``V^up`` capped at ``c_LF``)."""
    sd = np.sqrt(np.diag(sigma_y))
    if np.any(sd <= 0):
        raise EstimationError("honest_did: a moment of the restriction has zero variance")
    vertices = dual_vertices(x, sd)
    if vertices.shape[0] == 0:        # dual infeasible: the statistic is -inf, never reject
        return np.ones(thetas.size, dtype=bool)
    values = vertices @ y0[:, None] - (vertices @ slope)[:, None] * thetas[None, :]   # (nv, ngrid)
    best = np.argmax(values, axis=0)
    eta = values[best, np.arange(thetas.size)]
    q = vertices @ sigma_y @ vertices.T                                              # gamma_j' S gamma_i
    var_best = q[best, best]
    size = alpha if lf_cv is None else (alpha - kappa) / (1 - kappa)
    degenerate = var_best <= np.finfo(float).eps
    var_safe = np.where(degenerate, 1.0, var_best)
    b = q[:, best] / var_safe[None, :]                       # direction of gamma*' Y, per grid point
    a = values - b * eta[None, :]                            # the part of each line not moving with eta
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = -a / (b - 1.0)
    vup = np.where(b > 1 + 1e-10, ratio, np.inf).min(axis=0)
    vlo = np.where(b < 1 - 1e-10, ratio, -np.inf).max(axis=0)
    if lf_cv is not None:
        vup = np.minimum(vup, lf_cv)
    sd_g = np.sqrt(var_safe)
    zlo, zup, stat = vlo / sd_g, vup / sd_g, eta / sd_g
    pl, pu = norm.cdf(zlo), norm.cdf(zup)
    with np.errstate(invalid="ignore"):
        cval = np.clip(norm.ppf(pl + (1 - size) * (pu - pl)), zlo, zup)
    cval = np.maximum(0.0, np.nan_to_num(cval, nan=0.0, posinf=np.inf, neginf=0.0))
    inside = (stat >= zlo - 1e-9) & (stat <= zup + 1e-9)
    accept = ~inside | ~(stat > cval)
    if lf_cv is not None:
        accept &= ~(eta > lf_cv)
    return np.where(degenerate, ~(eta > 0), accept)


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


def rm_grid(study: EventStudy, l_vec: np.ndarray, mbar: float, points: int) -> np.ndarray:
    """The grid of HonestDiD: ``l'beta_post +- (Mbar * sum_t t |l_t| * max pre change + 20 sd)``."""
    sd_theta = math.sqrt(float(l_vec @ study.sigma[study.post, study.post] @ l_vec))
    pre = np.concatenate([study.beta[:study.num_pre], [0.0]])
    max_pre = float(np.max(np.abs(np.diff(pre)))) if study.num_pre > 1 else abs(float(study.beta[0]))
    center = float(study.beta[study.post] @ l_vec)
    half = mbar * float(np.arange(1, study.num_post + 1) @ np.abs(l_vec)) * max_pre + 20 * sd_theta
    return np.linspace(center - half, center + half, points)


def rm_accept(study: EventStudy, l_vec: np.ndarray, mbar: float, thetas: np.ndarray, alpha: float,
              method: str, seed: int | None) -> np.ndarray:
    """Union over the ``2 T_pre`` polyhedra of ``Delta^RM(Mbar)`` of the accepted grid points."""
    npre, npost = study.num_pre, study.num_post
    kappa = alpha / 10
    accept = np.zeros(thetas.size, dtype=bool)
    gamma_inv = np.linalg.inv(reparametrise(l_vec))
    for s in range(npre):
        for positive in (True, False):
            a = relative_magnitude_polyhedron(npre, npost, mbar, s, positive)
            a_post = a[:, study.post] @ gamma_inv
            if npost > 1:
                rows = np.flatnonzero(np.any(a[:, study.post] != 0, axis=1))
                x = a_post[rows, 1:]
            else:
                rows = np.arange(a.shape[0])
                x = np.zeros((rows.size, 0))
            y0 = (a @ study.beta)[rows]
            slope = a_post[rows, 0]
            sigma_y = (a @ study.sigma @ a.T)[np.ix_(rows, rows)]
            lf_cv = None
            if method == "C-LF":
                lf_cv = least_favorable_cv(x, sigma_y, kappa, seed, f"rm-{mbar!r}-{s}-{positive}")
            accept |= conditional_test_grid(y0, slope, x, sigma_y, thetas, alpha, lf_cv, kappa)
    return accept


def rm_interval(study: EventStudy, l_vec: np.ndarray, mbar: float, alpha: float, method: str,
                points: int, seed: int | None) -> tuple[float, float]:
    """Robust confidence set under ``Delta^RM(Mbar)`` as ``(min, max)`` of the accepted grid."""
    thetas = rm_grid(study, l_vec, mbar, points)
    accept = rm_accept(study, l_vec, mbar, thetas, alpha, method, seed)
    if not accept.any():
        return math.nan, math.nan
    kept = thetas[accept]
    return float(kept.min()), float(kept.max())

