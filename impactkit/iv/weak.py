"""Weak-instrument diagnostics and weak-IV-robust inference for linear IV models.

Every function works on numpy arrays that have already been

1. multiplied by ``sqrt(weights)`` (weighted least squares as a transformation), and
2. residualised on the exogenous regressors and any absorbed fixed effects
   (Frisch-Waugh-Lovell), see :func:`partial_out`,

so that the first stage is the regression of the endogenous regressor(s) ``D`` on the
excluded instruments ``Z`` alone. Sandwich covariances computed on the residualised
arrays equal the corresponding block of the full-regression sandwich exactly (the
residuals are identical and the projection is the same), so the statistics below
match a regression that includes the exogenous regressors explicitly.

Covariance conventions (a :class:`CovarianceSpec`) follow Stata's ``small`` options,
as ivreg2/ivreghdfe use them:

- ``"unadjusted"``: ``s^2 (Z'Z)^-1`` with ``s^2 = e'e / (n - k)``;
- ``"robust"``: HC1, ``n/(n-k)`` times the Eicker-Huber-White sandwich;
- ``"clustered"``: ``G/(G-1) * (n-1)/(n-k)`` times the cluster sandwich; two-way
  clustering (Cameron, Gelbach & Miller 2011) adds the two one-way sandwiches and
  subtracts the intersection one, each with its own ``G``.

``k`` counts every parameter of the regression: exogenous regressors, instruments and
absorbed fixed effects (the ``extra_df`` of the design).

What holds for more than one endogenous regressor: :func:`cragg_donald_f` (minimum
eigenvalue form, Cragg & Donald 1993) and :func:`kleibergen_paap_f` (rank test of
``rank(Pi) = K-1``) are defined for any number. The Montiel Olea-Pflueger effective F here is for
exactly one endogenous regressor; its generalisation to several (Lewis & Mertens 2022) is
:mod:`impactkit.iv.lewis_mertens`. The Anderson-Rubin confidence set is for one endogenous
regressor (with several it is a joint region in R^K that this module does not invert); with more,
the model reports the joint Anderson-Rubin test (:class:`ARJointInputs`: ``H0: beta = b0`` for the
whole vector, Anderson & Rubin 1949, robust covariance as in Chernozhukov & Hansen 2008), and asking
for the AR set raises an :class:`~impactkit.errors.InputError` naming that limit.

The effective-F critical value is the one for the worst-case bias of TSLS; it is also
reported when ``method="liml"`` (MOP's LIML threshold needs the full procedure).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import optimize, stats

from impactkit.errors import EstimationError, InputError

CovType = Literal["unadjusted", "robust", "clustered"]

#: Stock & Yogo (2005), Table 5.2: critical values of the Cragg-Donald F statistic for
#: one endogenous regressor, keyed by the number of excluded instruments, for a
#: maximal size of a nominal 5% Wald test of 10%, 15%, 20% and 25%.
STOCK_YOGO_SIZE: dict[int, dict[str, float]] = {
    1: {"10%": 16.38, "15%": 8.96, "20%": 6.66, "25%": 5.53},
    2: {"10%": 19.93, "15%": 11.59, "20%": 8.75, "25%": 7.25},
    3: {"10%": 22.30, "15%": 12.83, "20%": 9.54, "25%": 7.80},
}


@dataclass(frozen=True)
class CovarianceSpec:
    """How to estimate coefficient covariances on residualised arrays.

    ``clusters`` holds integer cluster codes, shape ``(n,)`` or ``(n, 2)``;
    ``extra_df`` counts parameters already removed from the arrays (exogenous
    regressors and absorbed effects), added to ``k`` in the small-sample factor.
    """

    cov_type: CovType = "robust"
    clusters: np.ndarray | None = None
    extra_df: int = 0

    def n_clusters(self) -> int | None:
        """The smallest number of clusters over the clustering dimensions (or None)."""
        if self.clusters is None:
            return None
        codes = self.clusters.reshape(len(self.clusters), -1)
        return int(min(len(np.unique(codes[:, j])) for j in range(codes.shape[1])))

    def df_resid(self, n: int, k: int) -> int:
        """Denominator degrees of freedom of t and F tests: ``G-1`` if clustered, else ``n-k``."""
        if self.cov_type == "clustered":
            return int(self.n_clusters()) - 1  # type: ignore[operator]
        return n - k - self.extra_df


def partial_out(target: np.ndarray, regressors: np.ndarray | None) -> np.ndarray:
    """Residuals of the least-squares projection of ``target`` on ``regressors``."""
    if regressors is None or regressors.shape[1] == 0:
        return target.copy()
    coef, *_ = np.linalg.lstsq(regressors, target, rcond=None)
    return target - regressors @ coef


def _cluster_meat(scores_a: np.ndarray, scores_b: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, int]:
    """sum_g (sum_{i in g} a_i)(sum_{i in g} b_i)' for per-observation score rows."""
    _, inverse = np.unique(codes, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    sum_a = np.zeros((n_groups, scores_a.shape[1]))
    sum_b = np.zeros((n_groups, scores_b.shape[1]))
    np.add.at(sum_a, inverse, scores_a)
    np.add.at(sum_b, inverse, scores_b)
    return sum_a.T @ sum_b, n_groups


def meat_pair(z: np.ndarray, e_a: np.ndarray, e_b: np.ndarray, spec: CovarianceSpec) -> np.ndarray:
    """Scaled "meat" M_ab of the sandwich for residual vectors ``e_a`` and ``e_b``.

    The coefficient covariance of a regression of ``e`` on ``z`` is
    ``(Z'Z)^-1 M (Z'Z)^-1``; M is bilinear in the residuals, which makes the covariance
    of ``y - b d`` a quadratic function of ``b`` (used by the Anderson-Rubin set).
    The small-sample factors of the module docstring are included.
    """
    n, k = z.shape
    dof = n - k - spec.extra_df
    if dof <= 0:
        raise EstimationError(f"iv: {n} observations leave no residual degrees of freedom for "
                              f"{k + spec.extra_df} parameters")
    if spec.cov_type == "unadjusted":
        return (e_a @ e_b) / dof * (z.T @ z)
    scores_a = z * e_a[:, None]
    scores_b = z * e_b[:, None]
    if spec.cov_type == "robust":
        return n / dof * (scores_a.T @ scores_b)
    if spec.cov_type != "clustered" or spec.clusters is None:
        raise EstimationError(f"iv: unknown covariance type {spec.cov_type!r}")
    codes = spec.clusters.reshape(n, -1)

    def one_way(labels: np.ndarray) -> np.ndarray:
        meat, n_groups = _cluster_meat(scores_a, scores_b, labels)
        if n_groups < 2:
            raise EstimationError("iv: clustered covariance needs at least 2 clusters")
        return meat * (n_groups / (n_groups - 1)) * ((n - 1) / dof)

    if codes.shape[1] == 1:
        return one_way(codes[:, 0])
    both = codes[:, 0].astype(np.int64) * (int(codes[:, 1].max()) + 1) + codes[:, 1].astype(np.int64)
    return one_way(codes[:, 0]) + one_way(codes[:, 1]) - one_way(both)


def coefficient_vcov(z: np.ndarray, e_a: np.ndarray, e_b: np.ndarray, spec: CovarianceSpec) -> np.ndarray:
    """``(Z'Z)^-1 M_ab (Z'Z)^-1``: covariance between the coefficients of two regressions on ``z``."""
    bread = np.linalg.inv(z.T @ z)
    return bread @ meat_pair(z, e_a, e_b, spec) @ bread


def repair_psd(vcov: np.ndarray) -> tuple[np.ndarray, bool]:
    """Zero the negative eigenvalues of a covariance matrix (Cameron, Gelbach & Miller 2011,
    for two-way clustered covariances that are not positive semi-definite).
    Returns the matrix and whether it was changed."""
    values, vectors = np.linalg.eigh((vcov + vcov.T) / 2)
    if values.min() >= -1e-12 * max(float(np.abs(values).max()), 1e-300):  # rounding is not a defect
        return vcov, False
    return vectors @ np.diag(np.clip(values, 0.0, None)) @ vectors.T, True


@dataclass(frozen=True)
class FirstStage:
    """First-stage regression of one endogenous regressor on the excluded instruments."""

    endogenous: str
    instruments: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    partial_r2: float
    wald: float
    df_num: int
    df_denom: int
    residuals: np.ndarray = field(repr=False)

    @property
    def partial_f(self) -> float:
        """Wald statistic over the number of instruments (the robust first-stage F)."""
        return self.wald / self.df_num

    @property
    def partial_f_p_value(self) -> float:
        return float(stats.f.sf(self.partial_f, self.df_num, self.df_denom))


def first_stage(d: np.ndarray, z: np.ndarray, spec: CovarianceSpec, *, endogenous: str = "d",
                instruments: tuple[str, ...] = ()) -> FirstStage:
    """Regress residualised ``d`` on residualised instruments ``z``; Wald test of all coefficients.

    The partial R^2 is ``1 - v'v / d'd`` (Bound, Jaeger & Baker 1995; Shea 1997 with one
    endogenous regressor).
    """
    coef, *_ = np.linalg.lstsq(z, d, rcond=None)
    resid = d - z @ coef
    vcov, _ = repair_psd(coefficient_vcov(z, resid, resid, spec))
    wald = float(coef @ np.linalg.pinv(vcov, hermitian=True) @ coef)
    total = float(d @ d)
    partial_r2 = 1.0 - float(resid @ resid) / total
    names = instruments or tuple(f"z{j}" for j in range(z.shape[1]))
    return FirstStage(endogenous, names, coef, vcov, partial_r2, wald, z.shape[1],
                      spec.df_resid(len(d), z.shape[1]), resid)


def cragg_donald_f(d: np.ndarray, z: np.ndarray, extra_df: int = 0) -> float:
    """Cragg-Donald (1993) Wald F statistic for underidentification / weak identification.

    ``min eig( S_vv^{-1/2} D'P_Z D S_vv^{-1/2} ) / L`` with ``S_vv = V'V / (n - L - extra_df)``,
    ``V`` the first-stage residuals and ``L`` the number of excluded instruments
    (Cragg & Donald 1993; Stock & Yogo 2005, with ivreg2's small-sample scaling). With one endogenous
    regressor it equals the classical (homoskedastic) first-stage F statistic.
    ``d`` may have one column per endogenous regressor.
    """
    d2 = d.reshape(len(d), -1)
    n, n_instr = z.shape
    coef, *_ = np.linalg.lstsq(z, d2, rcond=None)
    fitted = z @ coef
    resid = d2 - fitted
    s_vv = resid.T @ resid / (n - n_instr - extra_df)
    root_inv = _inverse_sqrt(s_vv)
    concentration = root_inv @ (fitted.T @ fitted) @ root_inv
    return float(np.linalg.eigvalsh(concentration).min() / n_instr)


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    if values.min() <= 0:
        raise EstimationError("iv: first-stage residual covariance is singular "
                              "(an endogenous regressor is perfectly predicted by the instruments)")
    return vectors @ np.diag(values ** -0.5) @ vectors.T


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def kleibergen_paap_f(d: np.ndarray, z: np.ndarray, spec: CovarianceSpec) -> float:
    """Kleibergen-Paap (2006) rk Wald F statistic: the rk statistic for ``rank(Pi) = K-1``
    divided by the number of excluded instruments ``L`` (as ivreg2 reports it).

    Kleibergen & Paap (2006): with ``G = (Z'Z)^{1/2}`` and ``F = S_vv^{-1/2}``
    (``S_vv`` the first-stage residual covariance with ``n - L - extra_df`` degrees of
    freedom), ``Theta = G Pi F'`` has the singular value decomposition ``U S V'``;
    for ``q = K-1``, ``A_q = [U_12; U_22] U_22^{-1} (U_22 U_22')^{1/2}`` and
    ``B_q = (V_22 V_22')^{1/2} V_22'^{-1} [V_12' V_22']``,
    ``lambda_q = (B_q kron A_q') vec(Theta)`` and
    ``rk = lambda_q' [(B_q kron A_q') V(vec Theta) (B_q kron A_q')']^{-1} lambda_q``,
    with ``V(vec Theta) = (F kron G) V(vec Pi) (F kron G)'`` and ``V(vec Pi)`` the
    robust / clustered covariance of :class:`CovarianceSpec`. With one endogenous regressor
    this is the robust first-stage Wald statistic; with the homoskedastic covariance it
    equals ``L`` times the Cragg-Donald F.
    """
    d2 = d.reshape(len(d), -1)
    n, n_instr = z.shape
    n_endog = d2.shape[1]
    zz = z.T @ z
    pi = np.linalg.inv(zz) @ (z.T @ d2)
    resid = d2 - z @ pi
    s_vv = resid.T @ resid / (n - n_instr - spec.extra_df)
    meat = np.block([[meat_pair(z, resid[:, j], resid[:, k], spec) for k in range(n_endog)]
                     for j in range(n_endog)])
    return kleibergen_paap_from_moments(zz, pi, s_vv, meat)


def kleibergen_paap_from_moments(zz: np.ndarray, pi: np.ndarray, s_vv: np.ndarray, meat: np.ndarray) -> float:
    """:func:`kleibergen_paap_f` from moments: ``zz = Z'Z`` (L x L), the first-stage coefficients
    ``pi`` (L x K), their residual covariance ``s_vv`` (K x K) and the scaled meat of every pair of
    first-stage residuals, ``meat[jL:(j+1)L, kL:(k+1)L] = meat_pair(z, v_j, v_k, spec)``.
    (Sums the Dask engine reduces per partition give the same statistic.)"""
    n_instr, n_endog = pi.shape
    bread = np.linalg.inv(zz)
    g = _sqrt_psd(zz)
    f = _inverse_sqrt(s_vv)
    theta = g @ pi @ f.T
    u, _, vt = np.linalg.svd(theta, full_matrices=True)
    v = vt.T
    q = n_endog - 1
    u12, u22 = u[:q, q:], u[q:, q:]
    v12, v22 = v[:q, q:], v[q:, q:]
    a = np.vstack([u12, u22]) @ np.linalg.inv(u22) @ _sqrt_psd(u22 @ u22.T)
    b = _sqrt_psd(v22 @ v22.T) @ np.linalg.inv(v22.T) @ np.vstack([v12, v22]).T
    transform = np.kron(b, a.T)
    lam = transform @ theta.flatten(order="F")
    expand = np.kron(np.eye(n_endog), bread)
    var_pi = expand @ meat @ expand
    scale = np.kron(f, g)
    omega = transform @ scale @ var_pi @ scale.T @ transform.T
    rk = float(lam @ np.linalg.pinv(omega, hermitian=True) @ lam)
    return rk / n_instr


@dataclass(frozen=True)
class EffectiveF:
    """Montiel Olea & Pflueger (2013) effective F and its simplified critical value."""

    f_eff: float
    k_eff: float
    critical_value: float
    tau: float
    alpha: float

    @property
    def weak(self) -> bool:
        return self.f_eff < self.critical_value


def effective_f(stage: FirstStage, z: np.ndarray, *, tau: float = 0.10, alpha: float = 0.05) -> EffectiveF:
    """Montiel Olea & Pflueger (2013) effective F statistic with the simplified critical value.

    ``F_eff = pi' Z'Z pi / tr(W)`` with ``W = (Z'Z)^{1/2} V(pi) (Z'Z)^{1/2}`` the robust
    covariance of the first-stage coefficients under the normalisation ``Z'Z = I``
    (MOP 2013). With one instrument ``F_eff`` equals the robust first-stage F.

    Critical value (MOP 2013, the "simplified" conservative test that
    Stata's ``weakivtest`` also reports): for TSLS with worst-case bias threshold
    ``tau``, set ``x = 1/tau`` and the effective degrees of freedom by the Patnaik (1949)
    approximation

        K_eff = tr(W)^2 (1 + 2x) / ( tr(W'W) + 2 x tr(W) maxeig(W) ),

    then ``c = chi2^{-1}_{K_eff}(x K_eff)(1 - alpha) / K_eff``, the ``1 - alpha`` quantile
    of a non-central chi-square with ``K_eff`` degrees of freedom and non-centrality
    ``x K_eff``, divided by ``K_eff``. Under homoskedasticity ``K_eff = L``; with
    ``L = 1``, ``tau = 10%``, ``alpha = 5%`` the critical value is 23.1.
    """
    zz = z.T @ z
    root = _sqrt_psd(zz)
    w = root @ stage.vcov @ root
    trace = float(np.trace(w))
    f_eff = float(stage.coef @ zz @ stage.coef) / trace
    x = 1.0 / tau
    max_eig = float(np.linalg.eigvalsh(w).max())
    k_eff = trace ** 2 * (1 + 2 * x) / (float(np.trace(w.T @ w)) + 2 * x * trace * max_eig)
    critical = float(stats.ncx2.ppf(1 - alpha, k_eff, x * k_eff)) / k_eff
    return EffectiveF(f_eff, k_eff, critical, tau, alpha)


@dataclass(frozen=True)
class ARTestInputs:
    """Reduced-form (y on Z) and first-stage (d on Z) pieces of the Anderson-Rubin statistic.

    ``W(b) = g(b)' V(b)^-1 g(b)`` with ``g(b) = pi_y - b pi_d`` and
    ``V(b) = V_yy - b (V_yd + V_dy) + b^2 V_dd``, exact because the sandwich is bilinear
    in the residuals. Inverses are Moore-Penrose pseudo-inverses, so that a singular
    (e.g. repaired two-way clustered) covariance still gives a statistic.
    """

    pi_y: np.ndarray
    pi_d: np.ndarray
    v_yy: np.ndarray
    v_yd: np.ndarray
    v_dd: np.ndarray
    df_num: int
    df_denom: int

    def wald(self, b0: float) -> float:
        gap = self.pi_y - b0 * self.pi_d
        vcov = self.v_yy - b0 * (self.v_yd + self.v_yd.T) + b0 * b0 * self.v_dd
        return float(gap @ np.linalg.pinv(vcov, hermitian=True) @ gap)

    def wald_many(self, b0: np.ndarray) -> np.ndarray:
        """:meth:`wald` at each value of ``b0`` (vectorised)."""
        b = np.asarray(b0, dtype=float)
        gap = self.pi_y[None, :] - b[:, None] * self.pi_d[None, :]
        cross = self.v_yd + self.v_yd.T
        vcov = self.v_yy[None] - b[:, None, None] * cross[None] + (b * b)[:, None, None] * self.v_dd[None]
        solved = (np.linalg.pinv(vcov, hermitian=True) @ gap[..., None])[..., 0]
        return np.einsum("ij,ij->i", gap, solved)

    def wald_at_infinity(self) -> float:
        """lim W(b) as |b| -> inf: the first-stage Wald statistic."""
        return float(self.pi_d @ np.linalg.pinv(self.v_dd, hermitian=True) @ self.pi_d)

    def critical_wald(self, alpha: float) -> float:
        return self.df_num * float(stats.f.isf(alpha, self.df_num, self.df_denom))

    def p_value(self, b0: float) -> float:
        return float(stats.f.sf(self.wald(b0) / self.df_num, self.df_num, self.df_denom))


def anderson_rubin_inputs(y: np.ndarray, d: np.ndarray, z: np.ndarray, spec: CovarianceSpec) -> ARTestInputs:
    """Reduced-form and first-stage coefficients and their joint robust covariance."""
    bread = np.linalg.inv(z.T @ z)
    pi_y = bread @ (z.T @ y)
    pi_d = bread @ (z.T @ d)
    u_y = y - z @ pi_y
    u_d = d - z @ pi_d

    def vc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return bread @ meat_pair(z, a, b, spec) @ bread

    return ARTestInputs(pi_y, pi_d, vc(u_y, u_y), vc(u_y, u_d), vc(u_d, u_d), z.shape[1],
                        spec.df_resid(len(y), z.shape[1]))


@dataclass(frozen=True)
class ARConfidenceSet:
    """Anderson-Rubin confidence set: a union of intervals (endpoints may be infinite).

    ``kind`` is ``"bounded"`` (one finite interval), ``"two rays"`` (the complement of a
    finite interval), ``"whole line"``, ``"empty"`` or ``"union"`` (several pieces,
    possible with more than one instrument).
    """

    kind: str
    intervals: tuple[tuple[float, float], ...]
    level: float

    @property
    def bounded(self) -> bool:
        return self.kind in ("bounded", "empty") or (
            self.kind == "union" and all(math.isfinite(a) and math.isfinite(b) for a, b in self.intervals))

    def describe(self) -> str:
        if self.kind == "empty":
            return "empty"
        parts = [f"[{_fmt(a)}, {_fmt(b)}]" for a, b in self.intervals]
        return " U ".join(parts)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "level": self.level, "intervals": [list(p) for p in self.intervals]}


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return f"{value:.4f}"


def anderson_rubin_set(inputs: ARTestInputs, *, alpha: float = 0.05, center: float = 0.0,
                       scale: float = 1.0, grid_size: int = 4001) -> ARConfidenceSet:
    """Invert the Anderson-Rubin (1949) test: ``{b : W(b) <= c}`` with ``c = L F_{1-alpha}(L, df)``.

    The whole real line is searched on the grid ``b = center + scale tan(theta)`` with
    ``theta`` equally spaced in ``(-pi/2, pi/2)``; each sign change of ``W(b) - c`` is
    refined to machine precision with Brent's method, and the behaviour at ``+-inf`` is
    exact: ``W(b) -> pi_d' V_dd^-1 pi_d`` (the first-stage Wald statistic), so the set is
    unbounded exactly when the first stage is not significant at level ``alpha``
    (Dufour 1997; Mikusheva 2010 for the one-instrument quadratic case).
    """
    critical = inputs.critical_wald(alpha)
    scale = scale if scale > 0 and math.isfinite(scale) else 1.0

    def excess(theta: float) -> float:
        return inputs.wald(center + scale * math.tan(theta)) - critical

    edge = math.pi / 2
    far = 1e-10  # tan(pi/2 - 1e-10) = 1e10: the grid reaches b = center +- 1e10 scale
    thetas = np.concatenate([[-edge + far], np.linspace(-edge, edge, grid_size)[1:-1], [edge - far]])
    values = inputs.wald_many(center + scale * np.tan(thetas)) - critical
    at_infinity = inputs.wald_at_infinity() - critical
    inside = values <= 0
    crossings: list[float] = []
    for j in range(len(thetas) - 1):
        if inside[j] != inside[j + 1]:
            root = optimize.brentq(excess, thetas[j], thetas[j + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps)
            crossings.append(center + scale * math.tan(root))
    unbounded = at_infinity <= 0
    if not crossings:
        if bool(inside[0]) or unbounded:
            return ARConfidenceSet("whole line", ((-math.inf, math.inf),), 1 - alpha)
        return ARConfidenceSet("empty", (), 1 - alpha)
    intervals: list[tuple[float, float]] = []
    low = -math.inf if inside[0] else None
    for point in crossings:
        if low is None:
            low = point
        else:
            intervals.append((low, point))
            low = None
    if low is not None:
        intervals.append((low, math.inf))
    if len(intervals) == 1 and all(math.isfinite(v) for v in intervals[0]):
        kind = "bounded"
    elif len(intervals) == 2 and math.isinf(intervals[0][0]) and math.isinf(intervals[1][1]):
        kind = "two rays"
    else:
        kind = "union"
    return ARConfidenceSet(kind, tuple(intervals), 1 - alpha)


@dataclass(frozen=True)
class ARJointInputs:
    """Joint Anderson-Rubin test of ``H0: beta = b0`` with ``K >= 1`` endogenous regressors.

    Under ``H0`` the instruments have no effect on ``y - D b0``: with the reduced form
    ``pi_y`` and first stages ``Pi_d`` (on the residualised arrays), ``g(b0) = pi_y - Pi_d b0`` and
    its sandwich covariance from the residuals ``u_y - U_d b0`` give
    ``W(b0) = g' V(b0)^+ g``, compared with ``L F(L, df)`` (Anderson & Rubin 1949; the
    heteroskedasticity/cluster-robust form of Chernozhukov & Hansen 2008). With ``K = 1`` it equals
    :meth:`ARTestInputs.wald`.
    """

    z: np.ndarray
    bread: np.ndarray
    pi_y: np.ndarray
    pi_d: np.ndarray
    u_y: np.ndarray
    u_d: np.ndarray
    spec: CovarianceSpec
    df_denom: int

    @property
    def n_endogenous(self) -> int:
        return self.pi_d.shape[1]

    def test(self, b0) -> dict[str, float]:
        """``{"f", "p_value", "df_num", "df_denom"}`` of the joint test of ``beta = b0``."""
        def meat(coef: np.ndarray) -> np.ndarray:
            resid = coef[0] * self.u_y + self.u_d @ coef[1:]
            return meat_pair(self.z, resid, resid, self.spec)

        return joint_ar_test(self.pi_y, self.pi_d, self.bread, meat, self.df_denom, b0)


def joint_ar_test(pi_y: np.ndarray, pi_d: np.ndarray, bread: np.ndarray, meat: Callable[[np.ndarray], np.ndarray],
                  df_denom: int, b0) -> dict[str, float]:
    """The joint Anderson-Rubin test of ``beta = b0`` (Anderson & Rubin 1949; robust form of
    Chernozhukov & Hansen 2008) from the reduced-form and first-stage coefficients, shared by the
    in-memory and the Dask engines (which differ only in how they get the meat).

    Parameters
    ----------
    pi_y : numpy.ndarray, shape (K,)
        Reduced-form coefficients of the outcome on the instruments.
    pi_d : numpy.ndarray, shape (K, N)
        First-stage coefficients of the ``N`` endogenous regressors.
    bread : numpy.ndarray
        ``(Z'Z)^{-1}``.
    meat : callable
        ``meat(c)``: the scaled meat (:func:`meat_pair`) of the residual ``c[0] u_y + u_D c[1:]``.
    df_denom : int
        Denominator degrees of freedom of the F.
    b0 : float or array-like
        The hypothesised effects, one per endogenous regressor.

    Returns
    -------
    dict
        ``{"f", "p_value", "df_num", "df_denom"}``.
    """
    b0 = np.atleast_1d(np.asarray(b0, dtype=float))
    if b0.size != pi_d.shape[1]:
        raise InputError(f"iv: the Anderson-Rubin test needs {pi_d.shape[1]} value(s) in b0, got {b0.size}")
    gap = pi_y - pi_d @ b0
    vcov = bread @ meat(np.concatenate([[1.0], -b0])) @ bread
    wald = float(gap @ np.linalg.pinv(vcov, hermitian=True) @ gap)
    df_num = pi_d.shape[0]
    return {"f": wald / df_num, "p_value": float(stats.f.sf(wald / df_num, df_num, df_denom)),
            "df_num": df_num, "df_denom": df_denom}


def anderson_rubin_joint_inputs(y: np.ndarray, d: np.ndarray, z: np.ndarray, spec: CovarianceSpec) -> ARJointInputs:
    """Pieces of :class:`ARJointInputs` from residualised ``y``, ``D`` (n x K) and ``Z``."""
    d2 = d.reshape(len(d), -1)
    bread = np.linalg.inv(z.T @ z)
    pi_y = bread @ (z.T @ y)
    pi_d = bread @ (z.T @ d2)
    return ARJointInputs(z, bread, pi_y, pi_d, y - z @ pi_y, d2 - z @ pi_d, spec, spec.df_resid(len(y), z.shape[1]))


def require_one_endogenous(n_endogenous: int, what: str) -> None:
    """:class:`InputError` naming the limit when ``what`` needs exactly one endogenous regressor."""
    if n_endogenous != 1:
        limits = {"Anderson-Rubin set": "with several endogenous regressors the set is a joint region in R^K, "
                                        "not inverted here; test points with anderson_rubin_test(b0)"}
        raise InputError(f"iv: the {what} needs exactly one endogenous regressor, the model has {n_endogenous} "
                         f"({limits[what]}); the Kleibergen-Paap, Cragg-Donald and Lewis-Mertens F cover several")
