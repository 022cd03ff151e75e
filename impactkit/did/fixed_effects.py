"""Least squares with fixed effects absorbed, and its cluster-robust covariance.

:func:`fit_within` partials out any number of fixed effects by alternating projections
(:mod:`impactkit.numerics.within`) and solves the remaining least squares;
:func:`fit_covariance` gives HC1, CRV1 with fixest's small-sample correction, or CRV3
(leave-one-cluster-out jackknife refits, :func:`jackknife_coefs`), and warns when there are
fewer than 42 clusters (MacKinnon & Webb 2018). Shared by TWFE, the 2x2
(:mod:`impactkit.did.twfe`) and Sun-Abraham (:mod:`impactkit.did.sa`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.numerics import covariance as cov
from impactkit.numerics.ols import least_squares
from impactkit.numerics.within import demean_inplace, factorize

FEW_CLUSTERS = 42
VCOV_TYPES = ("CRV1", "CRV3", "HC1")


@dataclass
class WithinFit:
    """Coefficients of a regression after partialling out fixed effects.

    ``design`` / ``outcome`` are demeaned and ``sqrt(weights)``-scaled, so OLS on them
    reproduces the weighted fixed-effects regression; ``bread`` is ``(X~'X~)^-1``.
    """

    coef: np.ndarray
    design: np.ndarray
    outcome: np.ndarray
    residuals: np.ndarray
    bread: np.ndarray | None = None


def fit_within(outcome: np.ndarray, design: np.ndarray, fe_codes: Sequence[np.ndarray],
               fe_sizes: Sequence[int], weights: np.ndarray | None = None,
               names: Sequence[str] | None = None) -> WithinFit:
    """Least squares of ``outcome`` on ``design`` with the given fixed effects absorbed.

    Parameters
    ----------
    outcome : numpy.ndarray
        Outcome (n).
    design : numpy.ndarray
        Regressors (n x k).
    fe_codes : sequence of numpy.ndarray
        Integer codes of each fixed effect.
    fe_sizes : sequence of int
        Number of levels of each fixed effect.
    weights : numpy.ndarray, optional
        Analytic weights.
    names : sequence of str, optional
        Regressor names (messages).

    Returns
    -------
    WithinFit
        Coefficients, demeaned data and residuals.
    """
    demeaned = np.empty((outcome.shape[0], design.shape[1] + 1), order="F")
    demeaned[:, 0] = outcome
    demeaned[:, 1:] = design
    demean_inplace(demeaned, fe_codes, fe_sizes, weights=weights)
    if weights is not None:
        demeaned *= np.sqrt(weights)[:, None]
    y_dm, x_dm = demeaned[:, 0], demeaned[:, 1:]
    names = list(names or [f"x{j}" for j in range(x_dm.shape[1])])
    raw_ss = np.einsum("ij,ij->j", design, design) if design.size else np.zeros(0)
    dm_ss = np.einsum("ij,ij->j", x_dm, x_dm)
    collinear = [n for n, a, b in zip(names, raw_ss, dm_ss) if b <= 1e-10 * max(a, 1e-300)]
    if collinear:
        raise EstimationError(f"regressor(s) {', '.join(collinear)} collinear with the fixed effects "
                              f"(no variation left after removing unit and period means)")
    try:
        fit = least_squares(y_dm, x_dm, names=names)
    except EstimationError:
        raise EstimationError(f"regressors {', '.join(names)} are collinear after removing fixed effects") from None
    return WithinFit(coef=fit.coef, design=x_dm, outcome=y_dm, residuals=fit.residuals, bread=fit.bread)


def _subset_codes(codes: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes of the rows kept by ``keep``, renumbered 0..k-1, and k.

    Parameters
    ----------
    codes : numpy.ndarray
        Integer codes of one fixed effect, one per row.
    keep : numpy.ndarray
        Boolean per row.

    Returns
    -------
    codes : numpy.ndarray
        Codes of the kept rows (levels left without rows disappear).
    n_levels : int
    """
    uniques, inverse = np.unique(codes[keep], return_inverse=True)
    return inverse.astype(np.intp), int(uniques.size)


def jackknife_coefs(outcome: np.ndarray, design: np.ndarray, fe_codes: Sequence[np.ndarray],
                    clusters: cov.ClusterInfo, weights: np.ndarray | None = None) -> np.ndarray:
    """Leave-one-cluster-out coefficients (G x k): fixed effects re-absorbed in each refit.

    Parameters
    ----------
    outcome : numpy.ndarray
        Outcome (n), not demeaned.
    design : numpy.ndarray
        Regressors (n x k), not demeaned.
    fe_codes : sequence of numpy.ndarray
        Integer codes of each fixed effect.
    clusters : impactkit.numerics.covariance.ClusterInfo
        One clustering dimension: the clusters left out in turn.
    weights : numpy.ndarray, optional
        Analytic weights.

    Returns
    -------
    numpy.ndarray
        G x k coefficients, one row per cluster left out.
    """
    codes = clusters.codes[0]
    rows = []
    for g in range(clusters.sizes[0]):
        keep = codes != g
        sub = [_subset_codes(c, keep) for c in fe_codes]
        fit = fit_within(outcome[keep], design[keep], [s[0] for s in sub], [s[1] for s in sub],
                         None if weights is None else weights[keep])
        rows.append(fit.coef)
    return np.vstack(rows)


def _cluster_info(panel: pd.DataFrame, cluster_cols: list[str]) -> cov.ClusterInfo:
    """Integer codes and sizes of the cluster columns of a prepared panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        Prepared panel holding the cluster columns.
    cluster_cols : list of str
        One or two cluster columns (:func:`cluster_columns`).

    Returns
    -------
    impactkit.numerics.covariance.ClusterInfo
    """
    codes, sizes = [], []
    for col in cluster_cols:
        c, g = factorize(panel[col])
        codes.append(c)
        sizes.append(g)
    return cov.ClusterInfo(codes=tuple(codes), sizes=tuple(sizes), names=tuple(cluster_cols))


def cluster_columns(cluster: str | Sequence[str] | None, unit_label: str, vcov: str) -> list[str]:
    """Cluster columns of a prepared panel for ``vcov`` (``["_unit"]`` by default, none for HC1).

    Parameters
    ----------
    cluster : str, sequence of str or None
        One or two cluster columns; ``None`` clusters by unit.
    unit_label : str
        The user's unit column (messages only).
    vcov : {"CRV1", "CRV3", "HC1"}
        Covariance type.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        Unknown ``vcov``, clusters with HC1, more than two clusters, or two with CRV3.
    """
    if vcov not in VCOV_TYPES:
        raise InputError(f"vcov must be one of {', '.join(VCOV_TYPES)}, got {vcov!r}")
    if vcov == "HC1":
        if cluster is not None:
            raise InputError("vcov='HC1' is not clustered; drop 'cluster' or use vcov='CRV1'")
        return []
    cols = ["_unit"] if cluster is None else ([cluster] if isinstance(cluster, str) else list(cluster))
    if not 1 <= len(cols) <= 2:
        raise InputError(f"cluster must name one or two columns, got {len(cols)}")
    if vcov == "CRV3" and len(cols) != 1:
        raise InputError("vcov='CRV3' supports one clustering dimension")
    return cols


def fit_covariance(fit: WithinFit, outcome: np.ndarray, design_matrix: np.ndarray,
                   fe_codes: Sequence[np.ndarray], fe_sizes: Sequence[int], panel: pd.DataFrame,
                   cluster_cols: list[str], vcov: str, weights: np.ndarray | None
                   ) -> tuple[np.ndarray, int, cov.ClusterInfo | None, list[str], int]:
    """Covariance of a :class:`WithinFit`: (matrix, t df, clusters, notes, fixest parameter count K).

    HC1 (t with N-K df), CRV1 with fixest's small-sample correction, or CRV3 (t with G-1 df);
    warns with :class:`ImpactkitWarning` when there are fewer than 42 clusters.

    Parameters
    ----------
    fit : WithinFit
        The fitted regression (:func:`fit_within`).
    outcome : numpy.ndarray
        Outcome (n), not demeaned (CRV3 refits).
    design_matrix : numpy.ndarray
        Regressors (n x k), not demeaned (CRV3 refits).
    fe_codes : sequence of numpy.ndarray
        Integer codes of each fixed effect.
    fe_sizes : sequence of int
        Number of levels of each fixed effect (fixest's parameter count K).
    panel : pandas.DataFrame
        Prepared panel holding the cluster columns.
    cluster_cols : list of str
        Cluster columns (:func:`cluster_columns`); empty for HC1.
    vcov : {"CRV1", "CRV3", "HC1"}
        Covariance type.
    weights : numpy.ndarray or None
        Analytic weights (CRV3 refits).

    Returns
    -------
    tuple
        ``(covariance matrix, t degrees of freedom, ClusterInfo or None, notes, K)``.

    Raises
    ------
    EstimationError
        Fewer than two clusters, or a non-positive variance.
    """
    n_coef = fit.coef.shape[0]
    n_obs = outcome.shape[0]
    messages: list[str] = []
    if vcov == "HC1":
        df_k = cov.fixest_df_k(n_coef, fe_codes, fe_sizes, None)
        matrix = cov.vcov_hc1(fit.design, fit.residuals, df_k, xtx_inv=fit.bread)
        return matrix, int(n_obs - df_k), None, messages, df_k
    clusters = _cluster_info(panel, cluster_cols)
    n_clusters = clusters.n_clusters
    if n_clusters < 2:
        raise EstimationError(f"clustered standard errors need at least 2 clusters; "
                              f"'{cluster_cols[0]}' has {n_clusters}")
    df_k = cov.fixest_df_k(n_coef, fe_codes, fe_sizes, clusters)
    if vcov == "CRV1":
        matrix = cov.vcov_crv1(fit.design, fit.residuals, clusters, df_k, xtx_inv=fit.bread)
    else:
        jack = jackknife_coefs(outcome, design_matrix, fe_codes, clusters, weights)
        matrix = cov.vcov_crv3(fit.coef, jack)
    if n_clusters < FEW_CLUSTERS:
        text = (f"only {n_clusters} clusters (< {FEW_CLUSTERS}): cluster-robust t-tests over-reject; "
                f"use result.wild_bootstrap() (MacKinnon & Webb 2018)")
        warnings.warn(text, ImpactkitWarning, stacklevel=4)
        messages.append("Warning: " + text + ".")
    if not cov.make_psd_check(matrix):
        raise EstimationError("the covariance matrix has a non-positive variance; too few clusters "
                              "or a regressor without within-cluster variation")
    return matrix, int(n_clusters - 1), clusters, messages, df_k
