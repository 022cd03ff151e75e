"""The cluster-robust regression every design check runs (balance, attrition, heterogeneity).

OLS / WLS by :func:`impactkit.numerics.ols.least_squares`; covariance CR1 clustered
(:func:`impactkit.numerics.covariance.vcov_crv1`, factor ``G/(G-1) (n-1)/(n-k)``) with
t(G-1) and F(q, G-1) references, or HC1 (``n/(n-k)``) with t(n-k) and F(q, n-k) without
clusters (Cameron & Miller 2015, *J. Human Resources* 50(2), sec. II.C and VI.C; the
conventions of Stata's ``regress, vce(cluster)`` and statsmodels' ``cov_type="cluster"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from impactkit.errors import EstimationError, ImpactkitWarning
from impactkit.numerics.covariance import ClusterInfo, vcov_crv1, vcov_hc1
from impactkit.numerics.ols import least_squares


@dataclass
class RobustFit:
    """Coefficients, their cluster-robust (CR1) or HC1 covariance and the t/F degrees of freedom."""

    params: np.ndarray
    cov: np.ndarray
    df_resid: float
    nobs: int
    n_clusters: int | None

    def t_test(self, index: int) -> tuple[float, float, float]:
        """(estimate, std_error, two-sided p-value) of coefficient ``index``."""
        est = float(self.params[index])
        se = float(np.sqrt(self.cov[index, index]))
        if not np.isfinite(se) or se <= 0:
            raise EstimationError(f"standard error of coefficient {index} is zero or undefined")
        p = float(2 * stats.t.sf(abs(est / se), self.df_resid))
        return est, se, p

    def f_test(self, indices: Sequence[int]) -> tuple[float, float, float, float]:
        """Wald F of ``params[indices] == 0``: (F, p-value, df_num, df_denom)."""
        idx = np.asarray(indices)
        b = self.params[idx]
        v = self.cov[np.ix_(idx, idx)]
        q = idx.size
        try:
            stat = float(b @ np.linalg.solve(v, b)) / q
        except np.linalg.LinAlgError as exc:
            raise EstimationError("the covariance of the tested coefficients is singular") from exc
        if q > self.df_resid:
            warnings.warn(f"joint test of {q} restrictions with only {self.df_resid:g} denominator "
                          "degrees of freedom: the cluster-robust F is unreliable", ImpactkitWarning, stacklevel=3)
        return stat, float(stats.f.sf(stat, q, self.df_resid)), float(q), float(self.df_resid)


def robust_ols(y: np.ndarray, X: np.ndarray, *, clusters: np.ndarray | None = None,
               weights: np.ndarray | None = None) -> RobustFit:
    """OLS/WLS of ``y`` on ``X`` (include the constant yourself) with robust inference.

    Cluster-robust CR1 covariance with t(G-1) inference when ``clusters`` (one label per
    row) is given, otherwise HC1 with t(n-k) (Cameron & Miller 2015, sec. II.C and VI.C).
    Coefficients by the SVD pseudo-inverse (:func:`impactkit.numerics.ols.least_squares`).

    Parameters
    ----------
    y : numpy.ndarray
        Outcome (n).
    X : numpy.ndarray
        Regressors (n x k), constant included.
    clusters : numpy.ndarray, optional
        Cluster label of each row.
    weights : numpy.ndarray, optional
        Analytic weights.

    Returns
    -------
    RobustFit
        Coefficients, covariance and degrees of freedom, with t and F tests.
    """
    fit = least_squares(y, X, weights, solver="svd")
    n, k = fit.n_obs, fit.n_coef
    if clusters is not None:
        labels, codes = np.unique(np.asarray(clusters), return_inverse=True)  # clusters in sorted order
        n_clusters = int(labels.size)
        if n_clusters < 2:
            raise EstimationError("need at least two clusters for cluster-robust inference")
        info = ClusterInfo(codes=(codes,), sizes=(n_clusters,), names=("cluster",))
        cov = vcov_crv1(fit.design, fit.residuals, info, df_k=k, xtx_inv=fit.bread)
        return RobustFit(fit.coef, cov, float(n_clusters - 1), n, n_clusters)
    cov = vcov_hc1(fit.design, fit.residuals, df_k=k, xtx_inv=fit.bread)
    return RobustFit(fit.coef, cov, float(n - k), n, None)


def inference_label(cluster: str | None) -> str:
    """How :func:`robust_ols` inferred: ``"CR1 clustered by 'x'"`` or ``"HC1"``."""
    return f"CR1 clustered by {cluster!r}" if cluster else "HC1"
