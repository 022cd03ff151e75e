"""Multiple-hypothesis corrections for a family of outcomes tested on one treatment.

- :func:`holm`: Holm (1979) step-down family-wise error rate (FWER) control.
- :func:`sharpened_q`: Benjamini, Krieger & Yekutieli (2006) two-stage sharpened FDR
  q-values, computed as in Anderson (2008, JASA 103(484), sec. 3.2 and his published
  Stata code): the q-value of a hypothesis is the smallest level q (on a 0.001 grid)
  at which the two-stage procedure rejects it.
- :func:`romano_wolf`: Romano & Wolf (2005, Econometrica 73(4), Algorithm 4.1; 2016,
  Stat. Prob. Letters 113, 38-40) step-down adjusted p-values from a (cluster) bootstrap
  of the studentized statistics centred at the estimates, as in Clarke, Romano & Wolf
  (2020, Stata Journal 20(4)).
- :func:`westfall_young`: Westfall & Young (1993, *Resampling-Based Multiple Testing*,
  Algorithms 2.8 (minP) and 4.1 (maxT)) free step-down adjusted p-values, with the
  complete null imposed by re-randomizing the treatment (across clusters when it is
  assigned by cluster).
- :func:`multiple_testing`: declare the family once, get every correction side by side.

Every resampled statistic is the OLS coefficient of ``treat`` divided by its CR1
cluster-robust (HC1 without clusters) standard error recomputed in the resample; the
regressions of all outcomes and all draws are solved at once with numpy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
from impactkit.checks.regression import inference_label
from impactkit.checks.result import TableResult
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.results import to_plain
from impactkit.seeds import rng

# ---------------------------------------------------------------------------
# p-value adjustments
# ---------------------------------------------------------------------------


def _check_pvalues(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float).ravel()
    if p.size == 0:
        raise InputError("pvalues is empty")
    if np.isnan(p).any():
        raise InputError(f"pvalues has {int(np.isnan(p).sum())} missing value(s)")
    if (p < 0).any() or (p > 1).any():
        raise InputError("pvalues must lie in [0, 1]")
    return p


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values.

    With sorted p-values ``p_(1) <= ... <= p_(M)``, the adjusted value of the j-th is
    ``max_{i <= j} min(1, (M - i + 1) p_(i))`` (Holm 1979, Scand. J. Statistics 6, 65-70).

    Parameters
    ----------
    pvalues : sequence of float
        Unadjusted p-values.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the input order.
    """
    p = _check_pvalues(pvalues)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return out


def bky_rejections(pvalues: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Two-stage Benjamini-Krieger-Yekutieli (2006) rejections at each FDR level in ``q``.

    Returns a boolean array (len(q), M). Stage 1 runs Benjamini-Hochberg at
    ``q' = q / (1 + q)`` and counts ``r1`` rejections; stage 2 reruns it at
    ``q' M / (M - r1)`` (Anderson 2008, sec. 3.2).
    """
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    p_sorted = p[order]
    ranks = np.arange(1, m + 1)
    q1 = (q / (1 + q))[:, None]

    def bh_count(level: np.ndarray) -> np.ndarray:
        passes = p_sorted[None, :] <= ranks[None, :] * level / m
        # number rejected = largest rank whose p-value passes
        return np.where(passes.any(axis=1), m - np.argmax(passes[:, ::-1], axis=1), 0)

    r1 = bh_count(q1)
    with np.errstate(divide="ignore"):
        q2 = np.where(r1 < m, q1[:, 0] * m / np.maximum(m - r1, 1), np.inf)[:, None]
    r2 = bh_count(q2)
    reject_sorted = ranks[None, :] <= r2[:, None]
    reject = np.empty_like(reject_sorted)
    reject[:, order] = reject_sorted
    return reject


def sharpened_q(pvalues: Sequence[float] | np.ndarray, *, step: float = 0.001) -> np.ndarray:
    """Anderson (2008) sharpened two-stage q-values (Benjamini, Krieger & Yekutieli 2006).

    Following Anderson's published code, the procedure is run at every level
    ``q = 1, 1 - step, ..., step``; a hypothesis' q-value is the smallest level at which it
    is rejected (1 if it never is). Because the second stage adapts to the estimated
    number of true nulls, a q-value can be below its p-value when most hypotheses in the
    family are rejected; this is the intended behaviour of the procedure.

    Parameters
    ----------
    pvalues : sequence of float
        Unadjusted p-values.
    step : float, default 0.001
        Grid step of the levels ``q``.

    Returns
    -------
    numpy.ndarray
        Sharpened q-values, in the input order.
    """
    p = _check_pvalues(pvalues)
    n_steps = int(round(1 / step))
    levels = np.arange(n_steps, 0, -1) * step          # 1.000, 0.999, ..., 0.001
    reject = bky_rejections(p, levels)                 # (levels, M)
    q = np.ones(p.size)
    for j in range(p.size):
        hit = np.flatnonzero(reject[:, j])
        if hit.size:
            q[j] = levels[hit.max()]                   # levels decrease: last hit = smallest
    return np.round(q, 10)


def stepdown_maxt(t_observed: np.ndarray, t_resampled: np.ndarray) -> np.ndarray:
    """Free step-down maxT adjusted p-values (Westfall & Young 1993, Alg. 4.1; Romano & Wolf 2005).

    ``t_observed`` (M,) and ``t_resampled`` (B, M) hold absolute statistics; hypotheses are
    ordered by decreasing ``|t|`` and the s-th gets ``(1 + #{b: max_{j>=s} t*_bj >= t_s}) /
    (B + 1)``, made monotone by a running maximum.
    """
    t_obs = np.abs(np.asarray(t_observed, dtype=float))
    t_res = np.abs(np.asarray(t_resampled, dtype=float))
    order = np.argsort(-t_obs, kind="stable")
    tail_max = np.maximum.accumulate(t_res[:, order][:, ::-1], axis=1)[:, ::-1]
    count = (tail_max >= t_obs[order][None, :]).sum(axis=0)
    p_sorted = np.maximum.accumulate((1.0 + count) / (t_res.shape[0] + 1.0))
    out = np.empty_like(p_sorted)
    out[order] = p_sorted
    return out


def stepdown_minp(t_observed: np.ndarray, t_resampled: np.ndarray) -> np.ndarray:
    """Free step-down minP adjusted p-values (Westfall & Young 1993, Alg. 2.8).

    Marginal p-values of the observed and of each resampled statistic come from the
    resampling distribution of that outcome's own statistic, so outcomes with different
    null distributions are put on one scale before taking the minimum.
    """
    t_obs = np.abs(np.asarray(t_observed, dtype=float))
    t_res = np.abs(np.asarray(t_resampled, dtype=float))
    n_draws = t_res.shape[0]
    sorted_res = np.sort(t_res, axis=0)
    # p of a value v in column j: (1 + #{b: t*_bj >= v}) / (B + 1)
    def marginal_p(values: np.ndarray) -> np.ndarray:
        counts = np.column_stack([n_draws - np.searchsorted(sorted_res[:, j], values[..., j], side="left")
                                  for j in range(t_res.shape[1])])
        return (1.0 + counts) / (n_draws + 1.0)

    p_obs = marginal_p(t_obs[None, :])[0]
    p_res = marginal_p(t_res)
    order = np.argsort(p_obs, kind="stable")
    tail_min = np.minimum.accumulate(p_res[:, order][:, ::-1], axis=1)[:, ::-1]
    count = (tail_min <= p_obs[order][None, :]).sum(axis=0)
    p_sorted = np.maximum.accumulate((1.0 + count) / (n_draws + 1.0))
    out = np.empty_like(p_sorted)
    out[order] = p_sorted
    return out


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
    """Validate the family and return complete-case arrays sorted by cluster."""
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
    """The treatment per cluster when it is constant within every cluster, else None."""
    if family.codes is None:
        return None
    per_cluster = family.treat[family.starts]
    return per_cluster if np.array_equal(per_cluster[family.codes], family.treat) else None


def _chunks(total: int, width: int) -> list[slice]:
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


def _check_draws(B: int) -> int:
    if not isinstance(B, (int, np.integer)) or B < 19:
        raise InputError(f"B must be an integer >= 19 (got {B!r})")
    return int(B)


def romano_wolf(frame: pd.DataFrame, *, outcomes: str | Sequence[str], treat: str,
                controls: str | Sequence[str] | None = None, cluster: str | None = None,
                B: int = 999, seed: int | None = None) -> pd.Series:
    """Romano-Wolf step-down adjusted p-values of ``treat`` on each outcome.

    Romano & Wolf (2005, Econometrica, Algorithm 4.1) with the studentized bootstrap of
    Romano & Wolf (2016): clusters (rows without ``cluster``) are resampled with
    replacement, ``t*_bj = |b*_bj - b_j| / se*_bj`` is centred at the full-sample
    estimate, and hypotheses are stepped down by decreasing ``|t_j|`` with the maximum of
    the remaining ``t*`` (:func:`stepdown_maxt`). Returns a Series indexed by outcome.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.
    outcomes : str or sequence of str
        The family of outcome columns.
    treat : str
        0/1 treatment column.
    controls : str or sequence of str, optional
        Control variables (the same for every outcome).
    cluster : str, optional
        Cluster column (resampling and re-randomization by cluster).
    B : int, default 999
        Resampling draws.
    seed : int, optional
        Seed of :func:`impactkit.seeds.rng`.

    Returns
    -------
    pandas.Series
        Adjusted p-values indexed by outcome.
    """
    family = family_arrays(frame, outcomes=outcomes, treat=treat, controls=controls, cluster=cluster)
    est, se, _, _ = observed_stats(family)
    t_boot = bootstrap_t(family, est, _check_draws(B), seed)
    return pd.Series(stepdown_maxt(est / se, t_boot), index=family.outcomes, name="romano_wolf")


def westfall_young(frame: pd.DataFrame, *, outcomes: str | Sequence[str], treat: str,
                   controls: str | Sequence[str] | None = None, cluster: str | None = None,
                   B: int = 999, seed: int | None = None, statistic: str = "maxT") -> pd.Series:
    """Westfall-Young free step-down adjusted p-values of ``treat`` on each outcome.

    Westfall & Young (1993), maxT (Algorithm 4.1) or minP (Algorithm 2.8), with the
    resampling distribution under the complete null from re-randomizing the treatment
    (at the cluster level when it is assigned by cluster). Valid when treatment was
    randomly assigned (exchangeable under the null). Returns a Series indexed by outcome.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.
    outcomes : str or sequence of str
        The family of outcome columns.
    treat : str
        0/1 treatment column.
    controls : str or sequence of str, optional
        Control variables (the same for every outcome).
    cluster : str, optional
        Cluster column (resampling and re-randomization by cluster).
    B : int, default 999
        Resampling draws.
    seed : int, optional
        Seed of :func:`impactkit.seeds.rng`.
    statistic : {"maxT", "minP"}, default "maxT"
        Step-down statistic.

    Returns
    -------
    pandas.Series
        Adjusted p-values indexed by outcome.
    """
    if statistic not in ("maxT", "minP"):
        raise InputError(f"statistic must be 'maxT' or 'minP' (got {statistic!r})")
    family = family_arrays(frame, outcomes=outcomes, treat=treat, controls=controls, cluster=cluster)
    est, se, _, _ = observed_stats(family)
    t_perm = permutation_t(family, _check_draws(B), seed)
    rule = stepdown_maxt if statistic == "maxT" else stepdown_minp
    return pd.Series(rule(est / se, t_perm), index=family.outcomes, name="westfall_young")


@dataclass
class MultipleTestingResult(TableResult):
    """One family of outcomes: unadjusted and adjusted p-values side by side."""

    title: ClassVar[str] = "Multiple hypothesis testing"
    table: pd.DataFrame
    treat: str
    cluster: str | None
    B: int
    seed: int | None
    df: float
    messages: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        se = inference_label(self.cluster)
        return [
            f"Family of {len(self.table)} outcomes, effect of {self.treat!r}; {se} standard errors, t({self.df:g}).",
            "holm: Holm (1979) step-down FWER; sharpened_q: Anderson (2008) / Benjamini-Krieger-Yekutieli (2006) FDR q-values.",
            f"romano_wolf: Romano-Wolf (2005, 2016) step-down, studentized {'cluster ' if self.cluster else ''}bootstrap, "
            f"B = {self.B}, seed = {self.seed}.",
            f"westfall_young: Westfall-Young (1993) free step-down maxT, treatment re-randomized B = {self.B} times.",
            *self.messages,
        ]

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"title": self.title, "table": self.tidy(), "notes": self.notes(),
                         "B": self.B, "seed": self.seed})


def multiple_testing(frame: pd.DataFrame, *, outcomes: str | Sequence[str], treat: str,
                     controls: str | Sequence[str] | None = None, cluster: str | None = None,
                     B: int = 999, seed: int | None = None, alpha: float = 0.05) -> MultipleTestingResult:
    """Declare a family of outcomes once and report every correction.

    Per outcome: OLS ``y ~ treat + controls`` estimate, robust std_error (CR1 by
    ``cluster``, HC1 otherwise), unadjusted ``p_value`` (t with G-1 / n-k df), Holm (1979),
    Romano-Wolf (2005, 2016), Westfall-Young (1993) maxT, and Anderson (2008) sharpened
    q-values. All outcomes use the same complete-case sample. Deterministic given ``seed``.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.
    outcomes : str or sequence of str
        The family of outcome columns.
    treat : str
        0/1 treatment column.
    controls : str or sequence of str, optional
        Control variables (the same for every outcome).
    cluster : str, optional
        Cluster column (resampling and re-randomization by cluster).
    B : int, default 999
        Resampling draws.
    seed : int, optional
        Seed of :func:`impactkit.seeds.rng`.
    alpha : float, default 0.05
        Level for the rejection flags.

    Returns
    -------
    MultipleTestingResult
        One row per outcome with every adjustment.
    """
    family = family_arrays(frame, outcomes=outcomes, treat=treat, controls=controls, cluster=cluster)
    B = _check_draws(B)
    est, se, p, df = observed_stats(family)
    t_obs = est / se
    t_boot = bootstrap_t(family, est, B, seed)
    t_perm = permutation_t(family, B, seed)
    crit = stats.t.ppf(1 - alpha / 2, df)
    table = pd.DataFrame({
        "outcome": family.outcomes,
        "estimate": est,
        "std_error": se,
        "conf_low": est - crit * se,
        "conf_high": est + crit * se,
        "p_value": p,
        "holm": holm(p),
        "romano_wolf": stepdown_maxt(t_obs, t_boot),
        "westfall_young": stepdown_maxt(t_obs, t_perm),
        "sharpened_q": sharpened_q(p),
        "n": family.Y.shape[0],
    })
    messages = []
    if t_boot.shape[0] < B:
        messages.append(f"{B - t_boot.shape[0]} bootstrap draw(s) with an empty arm were dropped.")
    if family.codes is not None and family.n_clusters < 30:
        warnings.warn(f"only {family.n_clusters} clusters: cluster bootstrap p-values may be unreliable",
                      ImpactkitWarning, stacklevel=2)
    return MultipleTestingResult(table=table, treat=treat, cluster=cluster, B=B, seed=seed, df=df,
                                 messages=messages)
