"""Optimal fixed-length confidence intervals (FLCI) under ``Delta^SD(M)``.

Armstrong & Kolesar (2018, *Econometrica* 86(2); 2021, *Quant. Econ.*), as used by Rambachan &
Roth (2023, *Rev. Econ. Stud.* 90(5), Sec. 4.1): an affine estimator ``v' beta_hat`` with
``v_post = l``, chosen to minimise ``sigma_v * cv_alpha(b(v) / sigma_v)`` where
``b(v) = max_{delta in Delta} |v' delta|`` is the worst-case bias and ``cv_alpha(t)`` the
``1 - alpha`` quantile of ``|N(t, 1)|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.special import ndtr
from scipy.stats import norm

from impactkit.did.honest_delta import EventStudy, second_difference_matrix
from impactkit.errors import EstimationError

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

    def optimum(self, m: float) -> tuple[np.ndarray, float]:
        """The optimal affine estimator ``v`` (over ``beta``) and the half-length for one ``M``."""
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
        return self.problem.v0 + self.problem.null @ best, self.half_length(best, m)

    def interval(self, m: float) -> tuple[float, float]:
        """``(conf_low, conf_high)`` for one ``M``."""
        v, half = self.optimum(m)
        center = float(v @ self.study.beta)
        return center - half, center + half
