"""One family of outcomes regressed on one treatment: the arrays, batched regressions and draws.

:func:`family_arrays` validates the family and sorts its complete cases by cluster;
:func:`batched_treat_t` solves the regressions of every outcome and every resample at once
(OLS of each outcome on the treatment, controls and a constant, with CR1 cluster-robust or
HC1 standard errors); :func:`moments_treat_t` gives the same numbers from per-cluster sums
when treatment is assigned by cluster. :func:`bootstrap_t` (cluster bootstrap, Romano & Wolf
2005) and :func:`permutation_t` (re-randomized treatment, Westfall & Young 1993) produce the
resampled statistics that :mod:`impactkit.checks.multiple` turns into adjusted p-values.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from impactkit.checks.inputs import (
    as_list,
    binary_arm,
    cluster_codes,
    numeric_column,
    require_columns,
    require_frame,
)
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.seeds import rng


# ---------------------------------------------------------------------------
# batched regressions
# ---------------------------------------------------------------------------


@dataclass
class Family:
    """The numeric arrays of one family, rows sorted by cluster.

    ``treat`` (n,), ``rest`` (n, k-1) the controls and the constant, ``Y`` (n, M);
    ``codes`` the cluster of each row (None: every row its own cluster) and ``starts``
    the first row of each cluster.
    """

    outcomes: list[str]
    Y: np.ndarray
    treat: np.ndarray
    rest: np.ndarray
    codes: np.ndarray | None
    starts: np.ndarray | None
    n_clusters: int
    dropped: int

    @property
    def n(self) -> int:
        return int(self.Y.shape[0])

    @property
    def k(self) -> int:
        return int(self.rest.shape[1] + 1)


def family_arrays(frame: pd.DataFrame, *, outcomes: str | Sequence[str], treat: str,
                  controls: str | Sequence[str] | None, cluster: str | None) -> Family:
    """Validate the family and return complete-case arrays sorted by cluster.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.
    outcomes : str or sequence of str
        The family of outcome columns (distinct).
    treat : str
        0/1 treatment column.
    controls : str, sequence of str or None
        Control columns.
    cluster : str or None
        Cluster column.

    Returns
    -------
    Family

    Raises
    ------
    InputError
        Missing columns, no outcome, repeated outcomes, a non-binary treatment.
    EstimationError
        Collinear treatment and controls, a constant outcome, fewer than two clusters.
    """
    frame = require_frame(frame)
    outcomes = as_list(outcomes)
    controls = as_list(controls)
    if not outcomes:
        raise InputError("give at least one outcome")
    if len(set(outcomes)) != len(outcomes):
        raise InputError("outcomes must be distinct")
    require_columns(frame, [treat, cluster, *outcomes, *controls])
    Y = np.column_stack([numeric_column(frame, c) for c in outcomes])
    C = np.column_stack([numeric_column(frame, c) for c in controls]) if controls else np.empty((len(frame), 0))
    t = numeric_column(frame, treat)
    complete = ~(np.isnan(Y).any(axis=1) | np.isnan(C).any(axis=1) | np.isnan(t))
    dropped = int((~complete).sum())
    if dropped:
        warnings.warn(f"multiple testing: {dropped} row(s) with a missing outcome, control or {treat!r} dropped "
                      "so that every outcome uses the same sample", ImpactkitWarning, stacklevel=3)
    kept = frame.loc[complete]
    t = binary_arm(kept, treat)
    codes = cluster_codes(kept, cluster)
    rest = np.column_stack([C[complete], np.ones(int(complete.sum()))])
    Y = Y[complete]
    if np.linalg.matrix_rank(np.column_stack([t, rest])) < rest.shape[1] + 1:
        raise EstimationError(f"{treat!r} and the controls are collinear")
    for j, name in enumerate(outcomes):
        if np.ptp(Y[:, j]) == 0:
            raise EstimationError(f"outcome {name!r} is constant")
    starts = None
    if codes is not None:
        order = np.argsort(codes, kind="stable")
        t, rest, Y, codes = t[order], rest[order], Y[order], codes[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        n_clusters = int(starts.size)
        if n_clusters < 2:
            raise EstimationError(f"cluster column {cluster!r} has fewer than two clusters")
    else:
        n_clusters = int(t.size)
    return Family(outcomes, Y, t, rest, codes, starts, n_clusters, dropped)


def batched_treat_t(family: Family, treat: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient on the treatment and its robust SE, for every draw and outcome.

    ``treat`` is (n,) or (B, n) (re-randomized); ``counts`` (B, G) are how many times each
    cluster (each row without clusters) enters the draw, its rows weighted accordingly.
    A cluster drawn c times counts as c distinct clusters in the CR1 meat,
    ``sum_g c_g (sum_{i in g} h_i e_i)^2`` with ``h`` row 0 of ``(X'WX)^{-1} X'``, times the
    small-sample factor ``G/(G-1) (N-1)/(N-k)`` (CR1) or ``N/(N-k)`` (HC1) of the original
    sample. Returns (estimates, std errors), each (B, M).

    Parameters
    ----------
    family : Family
        The family's arrays.
    treat : numpy.ndarray
        Treatment, (n,) or (B, n).
    counts : numpy.ndarray
        (B, G) times each cluster (each row without clusters) is drawn.
    """
    Y, rest = family.Y, family.rest
    n, k, m = family.n, family.k, Y.shape[1]
    n_draws = counts.shape[0]
    w = counts[:, family.codes] if family.codes is not None else counts         # (B, n)
    T = np.broadcast_to(treat, (n_draws, n))
    wT = w * T
    xtx = np.empty((n_draws, k, k))
    xtx[:, 0, 0] = np.sum(wT * T, axis=1)
    xtx[:, 0, 1:] = wT @ rest
    xtx[:, 1:, 0] = xtx[:, 0, 1:]
    xtx[:, 1:, 1:] = (w @ (rest[:, :, None] * rest[:, None, :]).reshape(n, -1)).reshape(n_draws, k - 1, k - 1)
    xty = np.empty((n_draws, k, m))
    xty[:, 0, :] = wT @ Y
    xty[:, 1:, :] = (w @ (rest[:, :, None] * Y[:, None, :]).reshape(n, -1)).reshape(n_draws, k - 1, m)
    try:
        inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(xtx)
    beta = inv @ xty                                                           # (B, k, M)
    resid = Y[None, :, :] - T[:, :, None] * beta[:, None, 0, :] - rest @ beta[:, 1:, :]
    h = T * inv[:, 0, 0:1] + (rest @ inv[:, 0, 1:].T).T                         # (B, n)
    contrib = h[:, :, None] * resid                                            # (B, n, M)
    if family.codes is not None:
        per_cluster = np.add.reduceat(contrib, family.starts, axis=1)          # (B, G, M)
        factor = family.n_clusters / (family.n_clusters - 1) * (n - 1) / (n - k)
    else:
        per_cluster = contrib
        factor = n / (n - k)
    meat = np.einsum("bg,bgm->bm", counts, per_cluster**2)
    return beta[:, 0, :], np.sqrt(factor * meat)


def cluster_moments(family: Family) -> dict[str, np.ndarray]:
    """Per-cluster sums of the design, for the fast clustered path of :func:`moments_treat_t`.

    Splitting ``x_i = (t_i, r_i)``: ``A`` holds the parts of ``sum x x'`` that are
    multiplied by the (cluster-level, binary) treatment, ``R`` the parts that are not;
    likewise ``Ay`` / ``Ry`` for ``sum x y'``. Then ``sum_{i in g} x x' = t_g A_g + R_g``.

    Parameters
    ----------
    family : Family
        The family's arrays, with clusters.

    Returns
    -------
    dict of numpy.ndarray
        ``A``, ``R`` (G, k, k) and ``Ay``, ``Ry`` (G, k, M).
    """
    rest, Y, starts = family.rest, family.Y, family.starts
    G, k, m = family.n_clusters, family.k, Y.shape[1]
    sizes = np.diff(np.r_[starts, family.n])
    r_sum = np.add.reduceat(rest, starts, axis=0)                                  # (G, k-1)
    rr = np.add.reduceat((rest[:, :, None] * rest[:, None, :]).reshape(family.n, -1), starts, axis=0)
    ry = np.add.reduceat((rest[:, :, None] * Y[:, None, :]).reshape(family.n, -1), starts, axis=0)
    A = np.zeros((G, k, k))
    A[:, 0, 0] = sizes
    A[:, 0, 1:] = r_sum
    A[:, 1:, 0] = r_sum
    R = np.zeros((G, k, k))
    R[:, 1:, 1:] = rr.reshape(G, k - 1, k - 1)
    Ay = np.zeros((G, k, m))
    Ay[:, 0, :] = np.add.reduceat(Y, starts, axis=0)
    Ry = np.zeros((G, k, m))
    Ry[:, 1:, :] = ry.reshape(G, k - 1, m)
    return {"A": A, "R": R, "Ay": Ay, "Ry": Ry}


def moments_treat_t(family: Family, moments: dict[str, np.ndarray], t_cluster: np.ndarray,
                    counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same numbers as :func:`batched_treat_t` from per-cluster sums, in O(B G k (k + M)).

    Valid when treatment is constant within cluster: ``t_cluster`` is (G,) or (B, G).
    The CR1 score of cluster g is ``a' (sum x y') - a' (sum x x') beta`` with ``a`` row 0
    of ``(X'WX)^{-1}``, so no row-level residual is ever formed.

    Parameters
    ----------
    family : Family
        The family's arrays, with clusters.
    moments : dict of numpy.ndarray
        :func:`cluster_moments` of the family.
    t_cluster : numpy.ndarray
        Treatment per cluster, (G,) or (B, G).
    counts : numpy.ndarray
        (B, G) times each cluster is drawn.

    Returns
    -------
    estimates, std_errors : numpy.ndarray
        Each (B, M).
    """
    n_draws = counts.shape[0]
    t = np.broadcast_to(t_cluster, (n_draws, family.n_clusters))
    A, R, Ay, Ry = moments["A"], moments["R"], moments["Ay"], moments["Ry"]
    ct = counts * t
    k, m = family.k, family.Y.shape[1]
    xtx = (ct @ A.reshape(A.shape[0], -1) + counts @ R.reshape(R.shape[0], -1)).reshape(n_draws, k, k)
    xty = (ct @ Ay.reshape(Ay.shape[0], -1) + counts @ Ry.reshape(Ry.shape[0], -1)).reshape(n_draws, k, m)
    try:
        inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(xtx)
    beta = inv @ xty                                                               # (B, k, M)
    a = inv[:, 0, :]                                                               # (B, k)
    a_xy = t[:, :, None] * np.einsum("bk,gkm->bgm", a, Ay) + np.einsum("bk,gkm->bgm", a, Ry)
    a_xx = t[:, :, None] * np.einsum("bk,gkl->bgl", a, A) + np.einsum("bk,gkl->bgl", a, R)
    score = a_xy - a_xx @ beta                                                     # (B, G, M)
    meat = np.einsum("bg,bgm->bm", counts, score**2)
    G, n = family.n_clusters, family.n
    factor = G / (G - 1) * (n - 1) / (n - k)
    return beta[:, 0, :], np.sqrt(factor * meat)


def _cluster_level_treat(family: Family) -> np.ndarray | None:
    """The treatment per cluster when it is constant within every cluster, else None.

    Parameters
    ----------
    family : Family
        The family's arrays.

    Returns
    -------
    numpy.ndarray or None
        (G,) treatment per cluster.
    """
    if family.codes is None:
        return None
    per_cluster = family.treat[family.starts]
    return per_cluster if np.array_equal(per_cluster[family.codes], family.treat) else None


def _chunks(total: int, width: int) -> list[slice]:
    """Slices of ``range(total)`` holding about 2 million array elements each (``width`` per item).

    Parameters
    ----------
    total : int
        Items (draws).
    width : int
        Array elements per item.

    Returns
    -------
    list of slice
    """
    size = max(1, int(2_000_000 // max(1, width)))
    return [slice(i, min(i + size, total)) for i in range(0, total, size)]


def observed_stats(family: Family) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(estimates, std errors, p-values, df) of the treatment on each outcome in the full sample."""
    est, se = batched_treat_t(family, family.treat, np.ones((1, family.n_clusters)))
    est, se = est[0], se[0]
    if not np.all(se > 0):
        raise EstimationError("a standard error of the treatment coefficient is zero")
    df = float(family.n_clusters - 1 if family.codes is not None else family.n - family.k)
    p = 2 * stats.t.sf(np.abs(est / se), df)
    return est, se, p, df


def _resampled_stats(family: Family, counts: np.ndarray, t_draws: np.ndarray | None = None,
                     fast: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Treatment estimates and SEs (B, M) for each draw.

    Clusters (rows without clusters) are weighted by ``counts`` (B, G); ``t_draws`` is a
    re-randomized treatment, (B, G) per cluster when treatment is assigned by cluster,
    (B, n) per row otherwise, or None for the observed one. With cluster-level treatment
    the per-cluster sums of :func:`moments_treat_t` are used (``fast=False`` forces the
    row-level :func:`batched_treat_t`; both give the same numbers).

    Parameters
    ----------
    family : Family
        The family's arrays.
    counts : numpy.ndarray
        (B, G) times each cluster is drawn.
    t_draws : numpy.ndarray, optional
        Re-randomized treatment, (B, G) or (B, n).
    fast : bool, default True
        Use the per-cluster sums when treatment is assigned by cluster.

    Returns
    -------
    estimates, std_errors : numpy.ndarray
        Each (B, M).
    """
    t_cluster = _cluster_level_treat(family)
    n_draws, m = counts.shape[0], family.Y.shape[1]
    est, se = np.empty((n_draws, m)), np.empty((n_draws, m))
    if fast and t_cluster is not None and (t_draws is None or t_draws.shape[1] == family.n_clusters):
        moments = cluster_moments(family)
        for part in _chunks(n_draws, family.n_clusters * family.k * (family.k + m)):
            t = t_cluster if t_draws is None else t_draws[part]
            est[part], se[part] = moments_treat_t(family, moments, t, counts[part])
        return est, se
    if t_draws is not None and t_cluster is not None and t_draws.shape[1] == family.n_clusters:
        t_draws = t_draws[:, family.codes]
    for part in _chunks(n_draws, family.n * (family.k + m)):
        t = family.treat if t_draws is None else t_draws[part]
        est[part], se[part] = batched_treat_t(family, t, counts[part])
    return est, se


def bootstrap_t(family: Family, estimates: np.ndarray, B: int, seed: int | None, fast: bool = True) -> np.ndarray:
    """Studentized bootstrap statistics ``|b* - b| / se*`` (B', M), clusters resampled with replacement.

    Draws in which one arm gets no weight are dropped (they cannot estimate the effect).

    Parameters
    ----------
    family : Family
        The family's arrays.
    estimates : numpy.ndarray
        Full-sample estimates (M,), the centre of the statistics.
    B : int
        Bootstrap draws.
    seed : int or None
        Seed of the ``("romano-wolf", "cluster-bootstrap")`` stream.
    fast : bool, default True
        Use the per-cluster sums when treatment is assigned by cluster.

    Returns
    -------
    numpy.ndarray
        (B', M); NaN and infinite values become ``inf`` (a draw that cannot refute).
    """
    gen = rng(seed, "romano-wolf", "cluster-bootstrap")
    G = family.n_clusters
    counts = gen.multinomial(G, np.full(G, 1.0 / G), size=B).astype(float)
    w = counts[:, family.codes] if family.codes is not None else counts
    treated = family.treat == 1
    valid = (w[:, treated].sum(axis=1) > 0) & (w[:, ~treated].sum(axis=1) > 0)
    est, se = _resampled_stats(family, counts[valid], fast=fast)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(est - estimates[None, :]) / se
    return np.nan_to_num(out, nan=np.inf, posinf=np.inf)


def permutation_t(family: Family, B: int, seed: int | None, fast: bool = True) -> np.ndarray:
    """|t| of the treatment under B re-randomizations of it (complete null imposed), (B, M).

    The assignment is permuted across clusters when treatment is constant within cluster,
    across rows otherwise.

    Parameters
    ----------
    family : Family
        The family's arrays.
    B : int
        Re-randomizations.
    seed : int or None
        Seed of the ``("westfall-young", "permutation")`` stream.
    fast : bool, default True
        Use the per-cluster sums when treatment is assigned by cluster.

    Returns
    -------
    numpy.ndarray
        (B, M); NaN becomes 0.
    """
    gen = rng(seed, "westfall-young", "permutation")
    t_cluster = _cluster_level_treat(family)
    if t_cluster is not None:
        draws = gen.permuted(np.tile(t_cluster, (B, 1)), axis=1)
    else:
        if family.codes is not None:
            warnings.warn("treatment varies within clusters: Westfall-Young permutes it across rows",
                          ImpactkitWarning, stacklevel=3)
        draws = gen.permuted(np.tile(family.treat, (B, 1)), axis=1)
    est, se = _resampled_stats(family, np.ones((B, family.n_clusters)), draws, fast=fast)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(est) / se
    return np.nan_to_num(out, nan=0.0)
