"""One family of outcomes regressed on one treatment: the arrays, batched regressions and draws.

:func:`family_arrays` validates the family and sorts its complete cases by cluster;
:func:`batched_treat_t` solves the regressions of every outcome and every resample at once
(OLS of each outcome on the treatment, controls and a constant, with CR1 cluster-robust or
HC1 standard errors); :func:`moments_treat_t` gives the same numbers from per-cluster sums
when treatment is assigned by cluster. :class:`FamilyMoments` holds only those per-cluster sums
(the Dask engine builds it without gathering rows, :mod:`impactkit.distributed.multiple`).
:func:`observed_stats`, :func:`bootstrap_t` (cluster bootstrap, Romano & Wolf 2005) and
:func:`permutation_t` (re-randomized treatment, Westfall & Young 1993) take either a
:class:`Family` or a :class:`FamilyMoments`, with the same draw streams, and produce the
statistics that :mod:`impactkit.checks.multiple` turns into adjusted p-values.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from impactkit.checks.family_sums import FamilyMoments, check_fit, cluster_sums, moments_treat_t
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


__all__ = ["Family", "FamilyMoments", "batched_treat_t", "bootstrap_t", "check_fit", "cluster_moments",
           "cluster_sums", "clustered", "family_arrays", "family_moments", "moments_treat_t", "observed_stats",
           "permutation_t"]


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
    full_rank = np.linalg.matrix_rank(np.column_stack([t, rest])) == rest.shape[1] + 1
    starts = None
    if codes is not None:
        order = np.argsort(codes, kind="stable")
        t, rest, Y, codes = t[order], rest[order], Y[order], codes[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        n_clusters = int(starts.size)
    else:
        n_clusters = int(t.size)
    check_fit(outcomes, treat, cluster, full_rank=full_rank, constant=np.ptp(Y, axis=0) == 0,
              n_clusters=n_clusters)
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
    return cluster_sums(family.rest, family.Y, family.starts)


def family_moments(family: Family) -> FamilyMoments | None:
    """The family's :class:`FamilyMoments` when treatment is constant within every cluster, else None.

    Parameters
    ----------
    family : Family
        The family's arrays.

    Returns
    -------
    FamilyMoments or None
    """
    t_cluster = _cluster_level_treat(family)
    if t_cluster is None:
        return None
    return FamilyMoments(family.outcomes, **cluster_moments(family), t_cluster=t_cluster, n=family.n,
                         dropped=family.dropped)


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


def clustered(family: Family | FamilyMoments) -> bool:
    """Whether the family's inference is by cluster (a :class:`FamilyMoments` always is)."""
    return isinstance(family, FamilyMoments) or family.codes is not None


def observed_stats(family: Family | FamilyMoments) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(estimates, std errors, p-values, df) of the treatment on each outcome in the full sample.

    OLS of each outcome on the treatment, controls and a constant with CR1 (HC1 without
    clusters) standard errors and t(G-1) (t(n-k)) p-values (Cameron & Miller 2015, *J. Human
    Resources* 50(2)): row by row for a :class:`Family` (:func:`batched_treat_t`), from the
    per-cluster sums for a :class:`FamilyMoments` (:func:`moments_treat_t`, the same numbers).

    Parameters
    ----------
    family : Family or FamilyMoments
        The family.

    Returns
    -------
    tuple
        Estimates, standard errors and p-values (M,), and the degrees of freedom.

    Raises
    ------
    EstimationError
        A zero standard error.
    """
    ones = np.ones((1, family.n_clusters))
    if isinstance(family, FamilyMoments):
        est, se = moments_treat_t(family, family.moments, family.t_cluster, ones)
    else:
        est, se = batched_treat_t(family, family.treat, ones)
    est, se = est[0], se[0]
    if not np.all(se > 0):
        raise EstimationError("a standard error of the treatment coefficient is zero")
    df = float(family.n_clusters - 1 if clustered(family) else family.n - family.k)
    p = 2 * stats.t.sf(np.abs(est / se), df)
    return est, se, p, df


def _moment_stats(moments: FamilyMoments, counts: np.ndarray,
                  t_draws: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`moments_treat_t` over the draws in chunks: estimates and SEs (B, M).

    Parameters
    ----------
    moments : FamilyMoments
        The family's per-cluster sums.
    counts : numpy.ndarray
        (B, G) times each cluster is drawn.
    t_draws : numpy.ndarray or None
        (B, G) re-randomized treatment per cluster, or None for the observed one.

    Returns
    -------
    estimates, std_errors : numpy.ndarray
        Each (B, M).
    """
    n_draws, m = counts.shape[0], len(moments.outcomes)
    est, se = np.empty((n_draws, m)), np.empty((n_draws, m))
    for part in _chunks(n_draws, moments.n_clusters * moments.k * (moments.k + m)):
        t = moments.t_cluster if t_draws is None else t_draws[part]
        est[part], se[part] = moments_treat_t(moments, moments.moments, t, counts[part])
    return est, se


def _resampled_stats(family: Family | FamilyMoments, counts: np.ndarray, t_draws: np.ndarray | None = None,
                     fast: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Treatment estimates and SEs (B, M) for each draw.

    Clusters (rows without clusters) are weighted by ``counts`` (B, G); ``t_draws`` is a
    re-randomized treatment, (B, G) per cluster when treatment is assigned by cluster,
    (B, n) per row otherwise, or None for the observed one. With cluster-level treatment
    the per-cluster sums of :func:`moments_treat_t` are used (``fast=False`` forces the
    row-level :func:`batched_treat_t` on a :class:`Family`; both give the same numbers).

    Parameters
    ----------
    family : Family or FamilyMoments
        The family's arrays, or its per-cluster sums.
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
    if isinstance(family, FamilyMoments):
        return _moment_stats(family, counts, t_draws)
    t_cluster = _cluster_level_treat(family)
    if fast and t_cluster is not None and (t_draws is None or t_draws.shape[1] == family.n_clusters):
        return _moment_stats(family_moments(family), counts, t_draws)
    if t_draws is not None and t_cluster is not None and t_draws.shape[1] == family.n_clusters:
        t_draws = t_draws[:, family.codes]
    n_draws, m = counts.shape[0], family.Y.shape[1]
    est, se = np.empty((n_draws, m)), np.empty((n_draws, m))
    for part in _chunks(n_draws, family.n * (family.k + m)):
        t = family.treat if t_draws is None else t_draws[part]
        est[part], se[part] = batched_treat_t(family, t, counts[part])
    return est, se


def _both_arms(family: Family | FamilyMoments, counts: np.ndarray) -> np.ndarray:
    """(B,) whether each bootstrap draw gives weight to treated and to control rows.

    Parameters
    ----------
    family : Family or FamilyMoments
        The family.
    counts : numpy.ndarray
        (B, G) times each cluster (row without clusters) is drawn.

    Returns
    -------
    numpy.ndarray
        Boolean (B,).
    """
    if isinstance(family, FamilyMoments):
        w, treated = counts, family.t_cluster == 1       # every cluster has rows
    else:
        w = counts[:, family.codes] if family.codes is not None else counts
        treated = family.treat == 1
    return (w[:, treated].sum(axis=1) > 0) & (w[:, ~treated].sum(axis=1) > 0)


def bootstrap_t(family: Family | FamilyMoments, estimates: np.ndarray, B: int, seed: int | None,
                fast: bool = True) -> np.ndarray:
    """Studentized bootstrap statistics ``|b* - b| / se*`` (B', M), clusters resampled with replacement.

    Romano & Wolf (2016, *Stat. Prob. Letters* 113): each draw counts how many times every
    cluster (row without clusters) enters, multinomial from the ``("romano-wolf",
    "cluster-bootstrap")`` stream. Draws in which one arm gets no weight are dropped (they
    cannot estimate the effect).

    Parameters
    ----------
    family : Family or FamilyMoments
        The family's arrays, or its per-cluster sums (the same draws and statistics).
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
    valid = _both_arms(family, counts)
    est, se = _resampled_stats(family, counts[valid], fast=fast)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(est - estimates[None, :]) / se
    return np.nan_to_num(out, nan=np.inf, posinf=np.inf)


def permutation_t(family: Family | FamilyMoments, B: int, seed: int | None, fast: bool = True) -> np.ndarray:
    """|t| of the treatment under B re-randomizations of it (complete null imposed), (B, M).

    Westfall & Young (1993, ch. 2): the assignment is permuted across clusters when
    treatment is constant within cluster (always, for a :class:`FamilyMoments`), across
    rows otherwise, from the ``("westfall-young", "permutation")`` stream.

    Parameters
    ----------
    family : Family or FamilyMoments
        The family's arrays, or its per-cluster sums (the same draws and statistics).
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
    t_cluster = family.t_cluster if isinstance(family, FamilyMoments) else _cluster_level_treat(family)
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
