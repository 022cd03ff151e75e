"""Sensitivity of an event study to violations of parallel trends (Rambachan & Roth 2023).

An event study ``beta = (beta_pre, beta_post)`` with covariance ``Sigma`` decomposes as
``beta = tau + delta``: treatment effects (``tau_pre = 0``) plus a differential trend
``delta``. Exact parallel trends sets ``delta_post = 0``; this module instead assumes
``delta`` lies in a set ``Delta`` and reports confidence sets for
``theta = l' tau_post`` (one event time, or an average of post effects) that are valid for
every ``delta`` in ``Delta`` (Rambachan & Roth 2023, *Rev. Econ. Stud.* 90(5), Sec. 2-4).

Restrictions (the reference period ``-1`` is normalised to ``delta = 0``):

- ``"smoothness"``, ``Delta^SD(M)`` (eq. 2.6 of the paper): every second difference of
  ``delta`` is at most ``M`` in absolute value. Confidence interval: the optimal
  fixed-length confidence interval (FLCI) of Armstrong & Kolesar (2018, 2021), Sec. 4.1 of
  the paper: an affine estimator ``v' beta_hat`` with ``v_post = l``, chosen to minimise
  ``sigma_v * cv_alpha(b(v) / sigma_v)`` where ``b(v) = max_{delta in Delta} |v' delta|``
  is the worst-case bias and ``cv_alpha(t)`` the ``1 - alpha`` quantile of ``|N(t, 1)|``.
- ``"relative_magnitude"``, ``Delta^RM(Mbar)`` (eq. 2.5): each post-period change of
  ``delta`` is at most ``Mbar`` times the largest pre-period change. ``Delta^RM`` is a union
  of ``2 * T_pre`` polyhedra (where the largest pre change sits, and its sign); the
  confidence set is the union of the per-polyhedron sets from the conditional test of
  Andrews, Roth & Pakes (2023, *Rev. Econ. Stud.*, Sec. 3) with nuisance parameters
  (Rambachan & Roth, Sec. 4.2 and eq. 12-14), or its least-favourable hybrid
  (``"C-LF"``, ARP Sec. 3.3, first-stage size ``kappa = alpha / 10``; the default, as in
  HonestDiD).

The linear programs of the conditional test are solved by enumerating the vertices of the
dual polytope ``{gamma >= 0, X' gamma = 0, sigma' gamma = 1}`` once per polyhedron: the
test statistic ``max_gamma gamma' Y(theta)`` and the truncation points ``V^lo``, ``V^up``
then follow for every ``theta`` on the grid by vector arithmetic (exact, no LP per point).
The grid, the moments kept (post-period moments only when ``T_post > 1``) and the
union over polyhedra follow R HonestDiD 0.2.6 (``createSensitivityResults_relativeMagnitudes``).

:func:`honest_did` is the front door; it takes estimates and covariance (from any event
study) or a Callaway-Sant'Anna dynamic aggregation (``universal`` base period). The result
has :meth:`HonestResult.breakdown` (smallest ``M``/``Mbar`` whose set includes a null value)
and :meth:`HonestResult.plot` (the sensitivity plot).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.special import ndtr
from scipy.stats import norm

from impactkit.errors import EstimationError, InputError
from impactkit.results import Result, to_plain
from impactkit.seeds import rng

RESTRICTIONS = ("smoothness", "relative_magnitude")
METHODS = {"smoothness": ("FLCI",), "relative_magnitude": ("C-LF", "Conditional")}
MAX_VERTEX_SUBSETS = 500_000
LF_SIMULATIONS = 1000


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class EventStudy:
    """Plain inputs: ``beta`` (pre then post, reference period excluded) and ``sigma``."""

    beta: np.ndarray
    sigma: np.ndarray
    num_pre: int
    num_post: int

    @property
    def post(self) -> slice:
        return slice(self.num_pre, self.num_pre + self.num_post)


def check_event_study(beta, sigma, num_pre: int, num_post: int) -> EventStudy:
    """Validate and normalise the event study (one-line :class:`InputError` otherwise)."""
    beta = np.asarray(beta, dtype=float).ravel()
    sigma = np.asarray(sigma, dtype=float)
    if num_pre < 1 or num_post < 1:
        raise InputError(f"honest_did: need at least one pre and one post period, got {num_pre} and {num_post}")
    if beta.size != num_pre + num_post:
        raise InputError(f"honest_did: {beta.size} estimates but num_pre + num_post = {num_pre + num_post}")
    if sigma.shape != (beta.size, beta.size):
        raise InputError(f"honest_did: covariance has shape {sigma.shape}, expected {(beta.size, beta.size)}")
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(sigma))):
        raise InputError("honest_did: estimates and covariance must be finite")
    if not np.allclose(sigma, sigma.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(sigma).max())):
        raise InputError("honest_did: covariance matrix is not symmetric")
    if np.linalg.eigvalsh(sigma).min() < -1e-10 * max(1.0, np.abs(sigma).max()):
        raise InputError("honest_did: covariance matrix is not positive semi-definite")
    return EventStudy(beta, (sigma + sigma.T) / 2.0, int(num_pre), int(num_post))


def target_vector(num_post: int, l_vec=None, event_time: int | None = None) -> np.ndarray:
    """``l`` of ``theta = l' tau_post``: a given vector, one event time (0 = on impact), or
    the first post period by default."""
    if l_vec is not None and event_time is not None:
        raise InputError("honest_did: give l_vec or event_time, not both")
    if l_vec is not None:
        l_vec = np.asarray(l_vec, dtype=float).ravel()
        if l_vec.size != num_post or not np.any(l_vec != 0):
            raise InputError(f"honest_did: l_vec must have {num_post} entries, not all zero")
        return l_vec
    e = 0 if event_time is None else int(event_time)
    if not 0 <= e < num_post:
        raise InputError(f"honest_did: event_time must be in 0..{num_post - 1}, got {event_time}")
    out = np.zeros(num_post)
    out[e] = 1.0
    return out


# ------------------------------------------------------------------ smoothness (FLCI)


def second_difference_matrix(num_pre: int, num_post: int) -> np.ndarray:
    """Second differences of ``(delta_pre, 0, delta_post)`` as a ``(T-1) x T`` matrix in ``delta``
    (the reference period's zero column dropped); ``T = num_pre + num_post``."""
    total = num_pre + num_post + 1
    full = np.zeros((total - 2, total))
    for r in range(total - 2):
        full[r, r:r + 3] = (1.0, -2.0, 1.0)
    return np.delete(full, num_pre, axis=1)


def folded_normal_quantile(t: float, alpha: float) -> float:
    """``cv_alpha(t)``: the ``1 - alpha`` quantile of ``|N(t, 1)|`` (Armstrong & Kolesar 2021, eq. 4)."""
    t = abs(t)
    target = 1.0 - alpha
    if t > 40:   # the lower tail is negligible
        return t + norm.ppf(target)
    return brentq(lambda c: ndtr(c - t) - ndtr(-c - t) - target, 0.0, t + 10.0, xtol=1e-14)


@dataclass(frozen=True)
class _FlciProblem:
    """``v = v0 + N u`` with ``v_post = l`` and ``v`` orthogonal to linear trends;
    ``w(u) = w0 + W u`` solves ``D' w = v`` so that ``b(v) = M ||w||_1``."""

    v0: np.ndarray
    null: np.ndarray
    w0: np.ndarray
    w_map: np.ndarray
    sigma: np.ndarray

    def variance(self, u: np.ndarray) -> float:
        v = self.v0 + self.null @ u
        return float(v @ self.sigma @ v)


def _flci_problem(study: EventStudy, l_vec: np.ndarray) -> _FlciProblem:
    """Affine estimators with finite worst-case bias under ``Delta^SD``: ``D' w = v`` must be
    solvable, i.e. ``v`` orthogonal to ``delta_t = t`` (the null space of ``D``)."""
    npre, npost = study.num_pre, study.num_post
    trend_pre = np.arange(-npre, 0, dtype=float)
    trend_post = np.arange(1, npost + 1, dtype=float)
    # v_pre . trend_pre = -l . trend_post: a particular solution plus the null space
    rhs = -float(l_vec @ trend_post)
    vpre0 = trend_pre * rhs / float(trend_pre @ trend_pre)
    _, _, vt = np.linalg.svd(trend_pre[None, :])
    null_pre = vt[1:].T                               # npre x (npre - 1)
    v0 = np.concatenate([vpre0, l_vec])
    null = np.vstack([null_pre, np.zeros((npost, null_pre.shape[1]))])
    dmat = second_difference_matrix(npre, npost)
    solve = np.linalg.solve(dmat @ dmat.T, dmat)      # w = (D D')^{-1} D v for v in range(D')
    return _FlciProblem(v0, null, solve @ v0, solve @ null, study.sigma)


def _min_variance_given_bias(problem: _FlciProblem, budget: float, start: np.ndarray) -> np.ndarray:
    """``argmin_u Var(v(u)'beta_hat)`` subject to ``||w(u)||_1 <= budget`` (a convex QP in
    ``(u, s)`` with ``-s <= w0 + W u <= s``, ``sum s <= budget``)."""
    k = problem.null.shape[1]
    if k == 0:
        return np.zeros(0)
    nw = problem.w0.size
    quad = problem.null.T @ problem.sigma @ problem.null
    lin = problem.null.T @ problem.sigma @ problem.v0

    def objective(x):
        u = x[:k]
        return float(u @ quad @ u + 2.0 * lin @ u), np.concatenate([2.0 * (quad @ u + lin), np.zeros(nw)])

    wmap, w0 = problem.w_map, problem.w0
    cons = [
        {"type": "ineq", "fun": lambda x: x[k:] - (w0 + wmap @ x[:k]),
         "jac": lambda x: np.hstack([-wmap, np.eye(nw)])},
        {"type": "ineq", "fun": lambda x: x[k:] + (w0 + wmap @ x[:k]),
         "jac": lambda x: np.hstack([wmap, np.eye(nw)])},
        {"type": "ineq", "fun": lambda x: np.array([budget - x[k:].sum()]),
         "jac": lambda x: np.concatenate([np.zeros(k), -np.ones(nw)])[None, :]},
    ]
    w_start = np.abs(w0 + wmap @ start)
    scale = budget / max(w_start.sum(), 1e-300)
    x0 = np.concatenate([start, w_start * min(scale, 1.0)])
    fit = minimize(objective, x0, jac=True, constraints=cons, method="SLSQP",
                   options={"ftol": 1e-15, "maxiter": 500})
    return fit.x[:k]


def _min_bias(problem: _FlciProblem) -> tuple[float, np.ndarray]:
    """Smallest ``||w(u)||_1`` over ``u`` (a linear program)."""
    from scipy.optimize import linprog

    k = problem.null.shape[1]
    if k == 0:
        return float(np.abs(problem.w0).sum()), np.zeros(0)
    nw = problem.w0.size
    cost = np.concatenate([np.zeros(k), np.ones(nw)])
    a_ub = np.block([[problem.w_map, -np.eye(nw)], [-problem.w_map, -np.eye(nw)]])
    b_ub = np.concatenate([-problem.w0, problem.w0])
    fit = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * k + [(0, None)] * nw, method="highs")
    if fit.status != 0:   # pragma: no cover - the LP is always feasible and bounded
        raise EstimationError(f"honest_did: FLCI bias LP failed ({fit.message})")
    return float(fit.fun), fit.x[:k]


class FlciSolver:
    """Optimal FLCIs for ``theta = l' tau_post`` under ``Delta^SD(M)`` (Rambachan & Roth 2023,
    Sec. 4.1; Armstrong & Kolesar 2018). The variance-bias frontier
    ``sigma(b) = min {sd(v' beta_hat) : ||w(v)||_1 <= b}`` does not depend on ``M``; it is
    computed once (cached QPs) and each ``M`` minimises ``sigma(b) cv_alpha(M b / sigma(b))`` over ``b``."""

    def __init__(self, study: EventStudy, l_vec: np.ndarray, alpha: float):
        self.study, self.alpha = study, alpha
        self.problem = _flci_problem(study, l_vec)
        p = self.problem
        k = p.null.shape[1]
        quad = p.null.T @ p.sigma @ p.null
        lin = p.null.T @ p.sigma @ p.v0
        self.u_var = -np.linalg.lstsq(quad, lin, rcond=None)[0] if k else np.zeros(0)
        self.b_high = self.norm1(self.u_var)
        if k:
            self.b_low, self.u_low = _min_bias(p)
        else:
            self.b_low, self.u_low = self.b_high, self.u_var
        self._cache: dict[float, np.ndarray] = {}
        self.frontier = np.linspace(self.b_low, self.b_high, 41)

    def norm1(self, u: np.ndarray) -> float:
        return float(np.abs(self.problem.w0 + self.problem.w_map @ u).sum())

    def at_budget(self, budget: float) -> np.ndarray:
        if budget >= self.b_high:
            return self.u_var
        if budget <= self.b_low:
            return self.u_low
        if budget not in self._cache:
            self._cache[budget] = _min_variance_given_bias(self.problem, budget, self.u_var)
        return self._cache[budget]

    def half_length(self, u: np.ndarray, m: float) -> float:
        sd = math.sqrt(max(self.problem.variance(u), 0.0))
        bias = m * self.norm1(u)
        return bias if sd == 0.0 else sd * folded_normal_quantile(bias / sd, self.alpha)

    def interval(self, m: float) -> tuple[float, float]:
        """``(conf_low, conf_high)`` for one ``M``."""
        if m == 0 or self.b_high <= self.b_low * (1 + 1e-12):
            best = self.u_var
        else:
            grid = self.frontier
            values = [self.half_length(self.at_budget(b), m) for b in grid]
            i = int(np.argmin(values))
            lo_b, hi_b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
            fit = minimize_scalar(lambda b: self.half_length(self.at_budget(b), m), bounds=(lo_b, hi_b),
                                  method="bounded", options={"xatol": 1e-9 * max(self.b_high, 1e-300)})
            best = min([self.at_budget(grid[i]), self.at_budget(fit.x)], key=lambda u: self.half_length(u, m))
        v = self.problem.v0 + self.problem.null @ best
        center = float(v @ self.study.beta)
        half = self.half_length(best, m)
        return center - half, center + half


# --------------------------------------------------- relative magnitudes (ARP tests)


def first_difference_matrix(num_pre: int, num_post: int) -> np.ndarray:
    """First differences of ``(delta_pre, 0, delta_post)``; rows ``T_pre`` pre then ``T_post``
    post changes, columns over ``T + 1`` periods (reference included)."""
    total = num_pre + num_post + 1
    out = np.zeros((total - 1, total))
    for r in range(total - 1):
        out[r, r:r + 2] = (-1.0, 1.0)
    return out


def relative_magnitude_polyhedron(num_pre: int, num_post: int, mbar: float, s: int,
                                  positive: bool) -> np.ndarray:
    """``A`` with ``Delta^RM_{s,sign}(Mbar) = {delta : A delta <= 0}``: the pre change number ``s``
    (0-based) is the largest in absolute value, with the given sign, and every post change is at
    most ``Mbar`` times it (Rambachan & Roth 2023, Sec. 2.4.1 and Appendix)."""
    diffs = first_difference_matrix(num_pre, num_post)
    lead = diffs[s] if positive else -diffs[s]
    bound = np.vstack([np.tile(lead, (num_pre, 1)), np.tile(mbar * lead, (num_post, 1))])
    a = np.vstack([diffs - bound, -diffs - bound])
    a = a[~np.all(np.abs(a) <= 1e-10, axis=1)]
    return np.delete(a, num_pre, axis=1)


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


# ------------------------------------------------------------------------- result


@dataclass
class HonestResult(Result):
    """Robust confidence sets by restriction size, plus the original (parallel-trends) interval."""

    title: ClassVar[str] = "Sensitivity to parallel trends (Rambachan & Roth 2023)"

    restriction: str
    method: str
    table: pd.DataFrame
    original: tuple[float, float, float]
    alpha: float
    l_vec: np.ndarray
    _study: EventStudy = field(repr=False)
    _options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def parameter(self) -> str:
        return "Mbar" if self.restriction == "relative_magnitude" else "M"

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()

    def notes(self) -> list[str]:
        est, lo, hi = self.original
        kind = ("Delta^RM(Mbar): post changes of the trend at most Mbar x the largest pre change"
                if self.restriction == "relative_magnitude"
                else "Delta^SD(M): second differences of the trend at most M")
        return [f"Restriction {kind}; method {self.method}; "
                f"{int(round((1 - self.alpha) * 100))}% robust confidence sets for l'tau_post, l = {np.round(self.l_vec, 4).tolist()}.",
                f"Under exact parallel trends: estimate {est:.4g}, interval [{lo:.4g}, {hi:.4g}]."]

    def breakdown(self, null: float = 0.0, upper: float | None = None, tol: float = 1e-4) -> float:
        """Smallest ``M`` (or ``Mbar``) whose robust set contains ``null`` (bisection to ``tol``
        relative to ``upper``); ``0`` when the original interval already contains it, ``inf``
        when even ``upper`` (default: 10 x the largest value in the table, at least 1) does not."""
        if self.original[1] <= null <= self.original[2]:
            return 0.0
        hi = upper if upper is not None else max(10.0 * float(self.table[self.parameter].max()), 1.0)

        def covers(value):
            lo_, hi_ = self._interval(value)
            return bool(np.isnan(lo_) or lo_ <= null <= hi_)

        if not covers(hi):
            return math.inf
        lo = 0.0
        while hi - lo > tol * max(hi, 1e-12):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if covers(mid) else (mid, hi)
        return hi

    def _interval(self, value: float) -> tuple[float, float]:
        return robust_interval(self._study, self.l_vec, self.restriction, value, self.alpha, self.method,
                               **self._options)

    def plot(self, ax=None):
        """The sensitivity plot: robust intervals by ``M``/``Mbar`` next to the original one."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4))
        else:
            fig = ax.figure
        values = self.table[self.parameter].to_numpy(dtype=float)
        step = float(np.min(np.diff(np.unique(values)))) if np.unique(values).size > 1 else 1.0
        x_orig = values.min() - step
        est, lo, hi = self.original
        ax.plot([x_orig, x_orig], [lo, hi], color="#636363", linewidth=2.0, label="original")
        ax.scatter([x_orig], [est], color="#636363", zorder=3, s=24)
        for v, l_, h_ in zip(values, self.table["conf_low"], self.table["conf_high"]):
            ax.plot([v, v], [l_, h_], color="#08519c", linewidth=2.0)
        ax.plot([], [], color="#08519c", linewidth=2.0, label=f"robust ({self.method})")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(self.parameter)
        ax.set_ylabel("Confidence set for l'tau_post")
        ax.set_title(self.title)
        ax.legend(loc="best", frameon=False, fontsize=8)
        fig.tight_layout()
        fig._impactkit_alt_text = (
            f"Sensitivity plot: {len(values)} robust confidence intervals for {self.parameter} from "
            f"{values.min():g} to {values.max():g}, next to the original interval [{lo:.3g}, {hi:.3g}].")
        return fig

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"restriction": self.restriction, "method": self.method,
                    "original": to_plain(list(self.original)), "l_vec": to_plain(self.l_vec)})
        return out


def robust_interval(study: EventStudy, l_vec: np.ndarray, restriction: str, value: float, alpha: float,
                    method: str, grid_points: int = 1000, seed: int | None = None,
                    solver: FlciSolver | None = None) -> tuple[float, float]:
    """One robust confidence set ``(conf_low, conf_high)`` for one ``M``/``Mbar``."""
    if restriction == "smoothness":
        return (solver or FlciSolver(study, l_vec, alpha)).interval(value)
    return rm_interval(study, l_vec, value, alpha, method, grid_points, seed)


def honest_did(estimates=None, vcov=None, *, num_pre: int | None = None, num_post: int | None = None,
               event_study=None, restriction: str = "relative_magnitude", m: Sequence[float] | None = None,
               event_time: int | None = None, l_vec=None, method: str | None = None, alpha: float = 0.05,
               grid_points: int = 1000, seed: int | None = None) -> HonestResult:
    """Robust confidence sets under bounded violations of parallel trends.

    Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends. *Review of
    Economic Studies* 90(5), 2555-2591: ``Delta^SD`` (eq. 2.6) with the FLCI (Sec. 4.1),
    ``Delta^RM`` (eq. 2.5) with the ARP conditional / least-favourable hybrid test (Sec. 4.2,
    Andrews, Roth & Pakes 2023).

    Parameters
    ----------
    estimates, vcov : array-like, optional
        Event-study coefficients, pre periods first then post, the reference period (``-1``)
        excluded, and their covariance. Give these with ``num_pre``/``num_post``, or
        ``event_study``.
    num_pre, num_post : int, optional
        Number of pre-treatment and post-treatment coefficients.
    event_study : AggregateResult, optional
        A Callaway-Sant'Anna ``aggregate("dynamic")`` result estimated with
        ``base_period="universal"``; its covariance is ``Psi'Psi / n^2`` of the event-time
        influence functions (as R HonestDiD's ``honest_did.AGGTEobj``).
    restriction : {"relative_magnitude", "smoothness"}
        ``Delta^RM(Mbar)`` or ``Delta^SD(M)``.
    m : sequence of float, optional
        Values of ``Mbar`` (default ``0.5, 1, 1.5, 2``) or ``M`` (default 0 to 5 x the
        standard error of the target, six values).
    event_time, l_vec : optional
        The target ``theta = l' tau_post``: one post event time (``0`` = on impact, the
        default) or a weight vector over the post periods (``[0.5, 0.5]`` = average).
    method : str, optional
        ``"FLCI"`` for smoothness; ``"C-LF"`` (default) or ``"Conditional"`` for relative
        magnitudes.
    alpha : float
        One minus the confidence level.
    grid_points : int
        Grid size for the test inversion (relative magnitudes).
    seed : int, optional
        Seed of the least-favourable critical value simulation (``C-LF``).

    Returns
    -------
    HonestResult
        ``tidy()``: one row per ``M``/``Mbar`` with ``conf_low``, ``conf_high``;
        ``breakdown()``; ``plot()``.

    Raises
    ------
    InputError
        Shapes that do not conform, a covariance that is not symmetric PSD, an unknown
        restriction or method, fewer than two pre periods for relative magnitudes.
    """
    if restriction not in RESTRICTIONS:
        raise InputError(f"honest_did: restriction must be one of {', '.join(RESTRICTIONS)}, got {restriction!r}")
    method = method or METHODS[restriction][0]
    if method not in METHODS[restriction]:
        raise InputError(f"honest_did: method for {restriction} must be one of "
                         f"{', '.join(METHODS[restriction])}, got {method!r}")
    if not 0 < alpha < 1:
        raise InputError(f"honest_did: alpha must be in (0, 1), got {alpha!r}")
    if event_study is not None:
        estimates, vcov, num_pre, num_post = event_study_inputs(event_study)
    if estimates is None or vcov is None or num_pre is None or num_post is None:
        raise InputError("honest_did: give estimates, vcov, num_pre and num_post, or event_study")
    study = check_event_study(estimates, vcov, num_pre, num_post)
    if restriction == "relative_magnitude" and study.num_pre < 2:
        raise InputError("honest_did: relative magnitudes need at least two pre-treatment coefficients")
    if grid_points < 10:
        raise InputError(f"honest_did: grid_points must be at least 10, got {grid_points}")
    lv = target_vector(study.num_post, l_vec, event_time)
    est = float(lv @ study.beta[study.post])
    se = math.sqrt(float(lv @ study.sigma[study.post, study.post] @ lv))
    z = norm.ppf(1 - alpha / 2)
    if m is None:
        m = [0.5, 1.0, 1.5, 2.0] if restriction == "relative_magnitude" else list(np.linspace(0, 5 * se, 6))
    values = np.asarray(list(m), dtype=float)
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values < 0):
        raise InputError("honest_did: m must be a non-empty list of non-negative numbers")
    options = {"grid_points": int(grid_points), "seed": seed}
    if restriction == "smoothness":
        options["solver"] = FlciSolver(study, lv, alpha)
    rows = []
    for value in values:
        lo, hi = robust_interval(study, lv, restriction, float(value), alpha, method, **options)
        rows.append({"M" if restriction == "smoothness" else "Mbar": float(value), "conf_low": lo,
                     "conf_high": hi, "method": method,
                     "restriction": "DeltaSD" if restriction == "smoothness" else "DeltaRM"})
    return HonestResult(restriction=restriction, method=method, table=pd.DataFrame(rows),
                        original=(est, est - z * se, est + z * se), alpha=alpha, l_vec=lv, _study=study,
                        _options=options)


def event_study_inputs(event_study) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(beta, sigma, num_pre, num_post)`` from a Callaway-Sant'Anna dynamic aggregation: event
    time ``-1`` (the universal base period) dropped, consecutive event times required."""
    rows = getattr(event_study, "rows", None)
    influence = getattr(event_study, "row_influence", None)
    if getattr(event_study, "kind", None) != "dynamic" or rows is None or influence is None:
        raise InputError("honest_did: event_study must be a dynamic aggregation with influence functions "
                         "(result.aggregate('dynamic'))")
    times = rows["event_time"].to_numpy(dtype=float)
    beta = rows["estimate"].to_numpy(dtype=float)
    keep = times != -1
    if np.any(np.isclose(beta[~keep], 0.0) == False):  # noqa: E712 - the base period must be 0
        raise InputError("honest_did: event time -1 is not normalised to zero; estimate with "
                         "base_period='universal'")
    times, beta, psi = times[keep], beta[keep], np.asarray(influence, dtype=float)[:, keep]
    if np.any(np.diff(times) != 1) and times.size > 1:
        gaps = times[1:][np.diff(times) != 1]
        if not (gaps.size == 1 and gaps[0] == 0 and -2 in times):
            raise InputError("honest_did: event times must be consecutive (apart from the reference -1)")
    n = psi.shape[0]
    sigma = psi.T @ psi / float(n) ** 2
    return beta, sigma, int(np.sum(times < -1)), int(np.sum(times >= 0))
