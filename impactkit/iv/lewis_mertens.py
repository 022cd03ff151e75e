"""Lewis & Mertens (2022) generalised effective F for several endogenous regressors.

Lewis, D. J. & Mertens, K. (2022). A robust test for weak instruments with multiple endogenous
regressors. Federal Reserve Bank of New York Staff Report 1020 (published in the *Review of
Economic Studies*, 2025, doi:10.1093/restud/rdaf103). It generalises the effective F of Montiel
Olea & Pflueger (2013) to ``N >= 1`` endogenous regressors and any (heteroskedastic, clustered)
covariance of the first stage.

Arrays are the residualised (and weight-scaled) arrays of :mod:`impactkit.iv.weak`. With
``W_ab = (Z'Z)^{-1/2} M_ab (Z'Z)^{-1/2}`` the robust covariance (same small-sample factors as the
rest of :mod:`impactkit.iv.weak`) of ``Z'e_a`` and ``Z'e_b`` under the normalisation ``Z'Z = I``,
``e_0`` the reduced-form residual of ``y`` and ``e_1..e_N`` the first-stage residuals:

- the statistic is ``g_min = mineig(Phi^{-1/2} D'P_Z D Phi^{-1/2})`` with
  ``Phi_ij = tr(W_ij)`` (LM 2022; with ``N = 1`` it is MOP's effective F; under
  conditional homoskedasticity it is the Cragg-Donald statistic);
- the critical value is the paper's *simplified*, conservative one for the relative-bias
  criterion (the Nagar bias of 2SLS relative to its benchmark at most ``tau``): the bound
  ``B_max`` on the bias in closed form (capped at 1 with one regressor, as
  MOP), ``lambda_min = B_max / tau``, upper bounds on the first three cumulants of the limiting
  quadratic form and the three-cumulant (shifted, scaled chi-square) approximation of its
  ``1 - alpha`` quantile, maximised over cumulants below those bounds (the paper's check that the
  bounds give the largest quantile). The sharp critical value, which needs a numerical
  optimisation of ``B_max`` over the Stiefel manifold, is not computed: the simplified one is
  larger or equal, so a test that rejects with it rejects with the sharp one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from impactkit.errors import EstimationError
from impactkit.iv.weak import CovarianceSpec, meat_pair


@dataclass(frozen=True)
class LewisMertensF:
    """The generalised effective F ``g_min``, its simplified critical value and the bias bound."""

    g_min: float
    critical_value: float
    b_max: float
    tau: float
    alpha: float
    n_endogenous: int
    n_instruments: int

    @property
    def weak(self) -> bool:
        return self.g_min < self.critical_value


def _power_psd(matrix: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    if values.min() <= 1e-12 * max(float(np.abs(values).max()), 1e-300):
        raise EstimationError("iv: the first-stage covariance is singular; the Lewis-Mertens effective F "
                              "is not defined")
    return vectors @ np.diag(values ** power) @ vectors.T


def normalised_covariance(residuals: np.ndarray, z: np.ndarray, spec: CovarianceSpec) -> np.ndarray:
    """``W``: the ``(m K) x (m K)`` covariance of ``vec(Z'E)`` under ``Z'Z = I`` for the ``m`` residual
    columns of ``residuals``, block ``(a, b)`` = ``(Z'Z)^{-1/2} M_ab (Z'Z)^{-1/2}``."""
    k = z.shape[1]
    root_inv = _power_psd(z.T @ z, -0.5)
    m = residuals.shape[1]
    out = np.zeros((m * k, m * k))
    for a in range(m):
        for b in range(a, m):
            block = root_inv @ meat_pair(z, residuals[:, a], residuals[:, b], spec) @ root_inv
            out[a * k:(a + 1) * k, b * k:(b + 1) * k] = block
            out[b * k:(b + 1) * k, a * k:(a + 1) * k] = block.T
    return out


def block_traces(w: np.ndarray, k: int) -> np.ndarray:
    """``[tr(W_ij)]``: the matrix of traces of the ``K x K`` blocks of ``W``."""
    m = w.shape[0] // k
    return np.array([[np.trace(w[i * k:(i + 1) * k, j * k:(j + 1) * k]) for j in range(m)] for i in range(m)])


def g_min_statistic(d: np.ndarray, z: np.ndarray, w2: np.ndarray) -> float:
    """``mineig(Phi^{-1/2} D'P_Z D Phi^{-1/2})`` with ``Phi = [tr(W2_ij)]`` (LM 2022)."""
    coef, *_ = np.linalg.lstsq(z, d, rcond=None)
    fitted = z @ coef
    phi_inv_root = _power_psd(block_traces(w2, z.shape[1]), -0.5)
    return float(np.linalg.eigvalsh(phi_inv_root @ (fitted.T @ fitted) @ phi_inv_root).min())


def _trace_selector(m: int, k: int) -> np.ndarray:
    """``I_m kron vec(I_K)``: ``S'(A kron I_K)S = [tr(A_ij)]`` for an ``(m K) x (m K)`` matrix ``A``."""
    return np.kron(np.eye(m), np.eye(k).reshape(k * k, 1))


def simplified_bias_bound(w: np.ndarray, n: int, k: int) -> tuple[float, np.ndarray]:
    """``B_max`` (simplified, relative-bias criterion) and ``Sigma = (Phi/K)^{-1/2} W2 (Phi/K)^{-1/2}``
    (blockwise), after LM 2022: ``Psi`` maps the normalised covariance into the
    Nagar bias, ``M2`` removes its ``Phi``-direction; ``B_max = min(sqrt(2 (N+1) / K) ||M2 Psi||, ||Psi||)``
    when ``K > N + 1`` (the larger of the two otherwise), at most 1 when ``N = 1``."""
    sel_n, sel_np = _trace_selector(n, k), _trace_selector(n + 1, k)
    w2, w12 = w[k:, k:], w[:k, k:]
    phi = sel_n.T @ np.kron(w2, np.eye(k)) @ sel_n
    scale = np.kron(_power_psd(phi / k, -0.5), np.eye(k))
    sigma = scale @ w2 @ scale.T
    inner = scale @ np.vstack([w12, w2]).T
    psi_bar = np.kron(inner, np.eye(k)) @ sel_np
    relative = sel_np.T @ np.kron(w, np.eye(k)) @ sel_np
    psi = psi_bar @ _power_psd(relative, -0.5)
    m2 = sel_n @ sel_n.T / (1 + n) - np.eye(n * k * k)
    first, second = math.sqrt(2 * (n + 1) / k) * np.linalg.norm(m2 @ psi, 2), np.linalg.norm(psi, 2)
    bound = min(first, second) if k > n + 1 else max(first, second)
    return (min(bound, 1.0) if n == 1 else bound), sigma


def _cumulant_quantile(c1: float, c2: float, c3: float, alpha: float) -> float:
    """``1 - alpha`` quantile of the shifted, scaled chi-square with cumulants ``c1, c2, c3``:
    ``c1 + (chi2_nu - nu) / (4 omega)`` with ``omega = c2 / c3``, ``nu = 8 c2 omega^2``."""
    omega = c2 / c3
    nu = 8 * c2 * omega ** 2
    return (float(stats.chi2.ppf(1 - alpha, nu)) - nu) / (4 * omega) + c1


def simplified_critical_value(w: np.ndarray, n: int, k: int, *, tau: float = 0.10,
                              alpha: float = 0.05) -> tuple[float, float]:
    """The simplified critical value for ``g_min`` and ``B_max`` (LM 2022).

    Cumulant bounds ``kappa_j = 2^{j-1} (j-1)! (||[tr((Sigma^j)_il)]|| + j K lambda ||Sigma||^{j-1})``
    with ``lambda = B_max / tau`` (``tau / 0.455`` when ``K = N = 1``, as the paper); the critical value
    is the largest three-cumulant quantile over ``0.01 <= kappa_2, kappa_3 <=`` their bounds (attained at
    the bounds when the paper's Kuhn-Tucker conditions hold), divided by ``K``.
    """
    b_max, sigma = simplified_bias_bound(w, n, k)
    if k == n == 1:
        tau = tau / 0.455
    lam = b_max / tau
    sel = _trace_selector(n, k)
    sigma_norm = np.linalg.norm(sigma, 2)
    power = np.eye(sigma.shape[0])
    cumulants = []
    for j in (1, 2, 3):
        power = power @ sigma
        traces = sel.T @ np.kron(power, np.eye(k)) @ sel
        cumulants.append(2 ** (j - 1) * math.factorial(j - 1)
                         * (np.linalg.norm(traces, 2) + j * k * lam * sigma_norm ** (j - 1)))
    c1, c2, c3 = cumulants
    fit = optimize.minimize(lambda x: -_cumulant_quantile(c1, x[0], x[1], alpha), x0=[c2, c3],
                            method="L-BFGS-B", bounds=[(0.01, c2), (0.01, c3)])
    best = max(_cumulant_quantile(c1, c2, c3, alpha), -float(fit.fun))
    return best / k, b_max


def lewis_mertens_f(y: np.ndarray, d: np.ndarray, z: np.ndarray, spec: CovarianceSpec, *,
                    tau: float = 0.10, alpha: float = 0.05) -> LewisMertensF:
    """The Lewis-Mertens generalised effective F for ``N = d.shape[1]`` endogenous regressors.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Residualised outcome.
    d : ndarray, shape (n, N)
        Residualised endogenous regressors.
    z : ndarray, shape (n, K)
        Residualised excluded instruments, ``K >= N``.
    spec : CovarianceSpec
        Covariance of the first stage (unadjusted, robust, clustered).
    tau : float
        Largest acceptable Nagar bias of 2SLS relative to its benchmark (LM's relative criterion).
    alpha : float
        Size of the test.

    Returns
    -------
    LewisMertensF
        ``g_min``, the simplified critical value, ``B_max``; ``weak`` when ``g_min`` is below it.

    Raises
    ------
    EstimationError
        Fewer instruments than endogenous regressors, or a singular first-stage covariance.
    """
    d2 = d.reshape(len(d), -1)
    n_endog, k = d2.shape[1], z.shape[1]
    if k < n_endog:
        raise EstimationError(f"iv: {k} instrument(s) for {n_endog} endogenous regressors: not identified")
    coef, *_ = np.linalg.lstsq(z, np.column_stack([y, d2]), rcond=None)
    residuals = np.column_stack([y, d2]) - z @ coef
    return lewis_mertens_from_moments(z.T @ z, coef[:, 1:],
                                      lambda a, b: meat_pair(z, residuals[:, a], residuals[:, b], spec),
                                      tau=tau, alpha=alpha)


def lewis_mertens_from_moments(zz: np.ndarray, pi_d: np.ndarray, meat: Callable[[int, int], np.ndarray], *,
                               tau: float = 0.10, alpha: float = 0.05) -> LewisMertensF:
    """:func:`lewis_mertens_f` from moments: what a distributed engine reduces.

    Parameters
    ----------
    zz : ndarray, shape (K, K)
        ``Z'Z`` of the residualised excluded instruments.
    pi_d : ndarray, shape (K, N)
        First-stage coefficients of the ``N`` endogenous regressors.
    meat : callable
        ``meat(a, b)``: the scaled meat ``M_ab`` (:func:`impactkit.iv.weak.meat_pair`) of residual
        ``a`` and ``b``, residual 0 the reduced form's and ``1 + j`` endogenous regressor ``j``'s.
    tau, alpha : float
        As :func:`lewis_mertens_f`.

    Returns
    -------
    LewisMertensF
    """
    k, n_endog = pi_d.shape
    if k < n_endog:
        raise EstimationError(f"iv: {k} instrument(s) for {n_endog} endogenous regressors: not identified")
    root_inv = _power_psd(zz, -0.5)
    m = n_endog + 1
    w = np.zeros((m * k, m * k))
    for a in range(m):
        for b in range(a, m):
            block = root_inv @ meat(a, b) @ root_inv
            w[a * k:(a + 1) * k, b * k:(b + 1) * k] = block
            w[b * k:(b + 1) * k, a * k:(a + 1) * k] = block.T
    phi_inv_root = _power_psd(block_traces(w[k:, k:], k), -0.5)
    stat = float(np.linalg.eigvalsh(phi_inv_root @ (pi_d.T @ zz @ pi_d) @ phi_inv_root).min())
    critical, b_max = simplified_critical_value(w, n_endog, k, tau=tau, alpha=alpha)
    return LewisMertensF(stat, critical, b_max, tau, alpha, n_endog, k)
