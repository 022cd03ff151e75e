"""Cluster-robust and heteroskedasticity-robust covariance of least-squares coefficients.

- HC1: White (1980, *Econometrica* 48(4), eq. 2) sandwich with the ``n / (n - k)``
  correction (MacKinnon & White 1985, *J. Econometrics* 29, "HC1").
- CRV1: Liang & Zeger (1986, *Biometrika* 73(1)) / Arellano (1987) cluster sandwich
  ``(X'X)^-1 (sum_g s_g s_g') (X'X)^-1`` with fixest's small-sample correction
  ``G/(G-1) * (N-1)/(N-K)``, where ``K`` counts the fixed effects that are *not* nested
  in a cluster variable (Berge 2018, fixest vignette "On standard errors";
  pyfixest's default ``ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min")``).
- Two-way clustering: Cameron, Gelbach & Miller (2011, *JBES* 29(2), eq. 2.12)
  ``V = V_1 + V_2 - V_{1 and 2}``, each term with the ``min(G)`` correction (fixest's
  ``cluster.df = "min"``).
- CRV3: the leave-one-cluster-out jackknife of MacKinnon, Nielsen & Webb (2023,
  *J. Econometrics* 232(2), eq. 12): ``(G-1)/G * sum_g (b_(g) - b)(b_(g) - b)'``,
  the jackknife form of the Bell & McCaffrey (2002) CV3 estimator.

Small-sample factors, with ``n`` observations, ``K`` parameters (``df_k``; fixed effects
counted as in :func:`fixest_df_k`) and ``G`` clusters (the smallest dimension):

====== =====================================================================
HC1    ``n / (n - K)``
CRV1   ``G / (G - 1) * (n - 1) / (n - K)`` (Stata's ``regress, vce(cluster)``,
       statsmodels' ``cov_type="cluster"``, fixest/pyfixest's default)
CRV3   ``(G - 1) / G`` on the jackknife sum
====== =====================================================================

Every function takes the (``sqrt(w)``-scaled, fixed-effect-demeaned) design and residuals,
so weighted and fixed-effect regressions share them. Pure functions over numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from impactkit.errors import EstimationError
from impactkit.numerics.within import group_sums


@dataclass(frozen=True)
class ClusterInfo:
    """Integer cluster codes (one array per clustering dimension) and their counts."""

    codes: tuple[np.ndarray, ...]
    sizes: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def n_clusters(self) -> int:
        """The smallest number of clusters across dimensions (drives the t degrees of freedom)."""
        return int(min(self.sizes))


def intersect_codes(codes_a: np.ndarray, size_a: int, codes_b: np.ndarray, size_b: int) -> tuple[np.ndarray, int]:
    """Codes of the intersection of two clusterings (each non-empty pair one cluster)."""
    pair = codes_a.astype(np.int64) * size_b + codes_b
    uniques, inverse = np.unique(pair, return_inverse=True)
    return inverse.astype(np.intp), int(uniques.size)


def is_nested(inner_codes: np.ndarray, inner_size: int, outer_codes: np.ndarray) -> bool:
    """True when each level of ``inner`` lies inside a single level of ``outer``."""
    outer_of_inner = np.zeros(inner_size, dtype=np.int64)
    outer_of_inner[inner_codes] = outer_codes  # one of each level's outer codes
    return bool(np.array_equal(outer_of_inner[inner_codes], outer_codes))


def fixest_df_k(n_coef: int, fe_codes: Sequence[np.ndarray], fe_sizes: Sequence[int],
                clusters: ClusterInfo | None) -> int:
    """Parameter count ``K`` of fixest's small-sample correction (``k_fixef="nonnested"``).

    All fixed-effect levels count, minus one per extra fixed effect (the identified
    levels); fixed effects fully nested in a cluster variable are removed (but one
    level is kept for each), as in fixest/pyfixest.
    """
    n_fe = len(fe_sizes)
    if n_fe == 0:
        return n_coef
    levels = int(sum(fe_sizes))
    k_fe_adj = levels - (n_fe - 1)
    if clusters is None:
        return n_coef + k_fe_adj
    cluster_sets = list(zip(clusters.codes, clusters.sizes))
    if len(cluster_sets) == 2:
        cluster_sets.append(intersect_codes(*cluster_sets[0], *cluster_sets[1]))
    nested_levels = 0
    nested_count = 0
    for codes, size in zip(fe_codes, fe_sizes):
        if any(is_nested(codes, size, cl_codes) for cl_codes, _ in cluster_sets):
            nested_levels += size
            nested_count += 1
    return n_coef + k_fe_adj - nested_levels + nested_count


def bread(design: np.ndarray) -> np.ndarray:
    """``(X'X)^-1`` of the (already weighted / demeaned) design."""
    return np.linalg.inv(design.T @ design)


def cluster_meat(scores: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """``sum_g s_g s_g'`` with ``s_g`` the within-cluster sum of the score rows."""
    sums = group_sums(scores, codes, n_groups)
    return sums.T @ sums


def vcov_hc1(design: np.ndarray, residuals: np.ndarray, df_k: int,
             xtx_inv: np.ndarray | None = None) -> np.ndarray:
    """HC1 covariance: ``n/(n-K) (X'X)^-1 X' diag(u^2) X (X'X)^-1`` (``xtx_inv``: the bread, if known)."""
    n = design.shape[0]
    xtx_inv = bread(design) if xtx_inv is None else xtx_inv
    scores = design * residuals[:, None]
    return (n / (n - df_k)) * xtx_inv @ (scores.T @ scores) @ xtx_inv


def vcov_crv1(design: np.ndarray, residuals: np.ndarray, clusters: ClusterInfo, df_k: int,
              xtx_inv: np.ndarray | None = None) -> np.ndarray:
    """CRV1 covariance, one- or two-way (CGM 2011), fixest small-sample correction.

    ``design`` and ``residuals`` are the weighted (``sqrt(w)``-scaled) demeaned regression's;
    ``xtx_inv`` the bread ``(X'X)^-1`` if already known (else computed).
    """
    n = design.shape[0]
    xtx_inv = bread(design) if xtx_inv is None else xtx_inv
    scores = design * residuals[:, None]
    g_min = clusters.n_clusters
    if len(clusters.codes) == 1:
        meat = cluster_meat(scores, clusters.codes[0], clusters.sizes[0])
    elif len(clusters.codes) == 2:
        inter_codes, inter_size = intersect_codes(clusters.codes[0], clusters.sizes[0],
                                                  clusters.codes[1], clusters.sizes[1])
        meat = (cluster_meat(scores, clusters.codes[0], clusters.sizes[0])
                + cluster_meat(scores, clusters.codes[1], clusters.sizes[1])
                - cluster_meat(scores, inter_codes, inter_size))
    else:
        raise EstimationError("vcov_crv1: one or two clustering dimensions are supported")
    return sandwich(xtx_inv, meat) * (g_min / (g_min - 1.0) * ((n - 1.0) / (n - df_k)))


def sandwich(xtx_inv: np.ndarray, meat: np.ndarray) -> np.ndarray:
    """``(X'X)^-1 meat (X'X)^-1'``, multiplied in that order (as statsmodels does, so that the
    design checks reproduce their statsmodels-era numbers bit for bit)."""
    return np.dot(np.dot(xtx_inv, meat), xtx_inv.T)


def vcov_crv3(coef: np.ndarray, jackknife_coefs: np.ndarray) -> np.ndarray:
    """CRV3 (MacKinnon, Nielsen & Webb 2023, eq. 12) from leave-one-cluster-out coefficients.

    ``jackknife_coefs`` is (G x k): row g holds the estimate without cluster g.
    """
    n_groups = jackknife_coefs.shape[0]
    centred = jackknife_coefs - coef[None, :]
    return (n_groups - 1) / n_groups * centred.T @ centred


def make_psd_check(vcov: np.ndarray) -> bool:
    """True when every variance on the diagonal is positive and finite."""
    diag = np.diag(vcov)
    return bool(np.all(np.isfinite(diag)) and np.all(diag > 0))
