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

The family's arrays, batched regressions and resampled statistics are in
:mod:`impactkit.checks.family`. Every resampled statistic is the OLS coefficient of ``treat`` divided by its CR1
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

from impactkit.checks.family import (  # noqa: F401  (re-exported: the family's arrays and draws lived here)
    Family,
    FamilyMoments,
    batched_treat_t,
    bootstrap_t,
    cluster_moments,
    clustered,
    family_arrays,
    family_moments,
    moments_treat_t,
    observed_stats,
    permutation_t,
)
from impactkit.checks.regression import inference_label
from impactkit.checks.result import TableResult
from impactkit.errors import ImpactkitWarning, InputError
from impactkit.results import to_plain

# ---------------------------------------------------------------------------
# p-value adjustments
# ---------------------------------------------------------------------------


def _check_pvalues(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """The p-values as a flat float array; InputError when empty, missing or outside [0, 1].

    Parameters
    ----------
    pvalues : sequence of float or numpy.ndarray
        Unadjusted p-values.

    Returns
    -------
    numpy.ndarray
    """
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

    Parameters
    ----------
    pvalues : numpy.ndarray
        Unadjusted p-values (M,).
    q : numpy.ndarray
        FDR levels.
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

    Parameters
    ----------
    t_observed : numpy.ndarray
        Observed statistics (M,).
    t_resampled : numpy.ndarray
        Resampled statistics (B, M), under the null.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (M,).
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

    Parameters
    ----------
    t_observed : numpy.ndarray
        Observed statistics (M,).
    t_resampled : numpy.ndarray
        Resampled statistics (B, M), under the null.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (M,).
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


def _check_draws(B: int) -> int:
    """``B`` as an int; InputError unless it is an integer of at least 19 (the smallest useful at 5%).

    Parameters
    ----------
    B : int
        Resampling draws.

    Returns
    -------
    int
    """
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
    return family_testing(family, treat=treat, cluster=cluster, B=B, seed=seed, alpha=alpha)


def family_testing(family: Family | FamilyMoments, *, treat: str, cluster: str | None, B: int = 999,
                   seed: int | None = None, alpha: float = 0.05) -> MultipleTestingResult:
    """:func:`multiple_testing` of a family given as rows (:class:`Family`) or per-cluster sums
    (:class:`FamilyMoments`, the Dask engine's): the same draws, statistics and table.

    Parameters
    ----------
    family : Family or FamilyMoments
        The family's arrays, or its per-cluster sums.
    treat : str
        Treatment column (for the notes).
    cluster : str or None
        Cluster column (for the notes).
    B : int, default 999
        Resampling draws.
    seed : int, optional
        Seed of :func:`impactkit.seeds.rng`.
    alpha : float, default 0.05
        Level of the confidence intervals.

    Returns
    -------
    MultipleTestingResult
        One row per outcome with every adjustment.
    """
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
        "n": family.n,
    })
    messages = []
    if t_boot.shape[0] < B:
        messages.append(f"{B - t_boot.shape[0]} bootstrap draw(s) with an empty arm were dropped.")
    if clustered(family) and family.n_clusters < 30:
        warnings.warn(f"only {family.n_clusters} clusters: cluster bootstrap p-values may be unreliable",
                      ImpactkitWarning, stacklevel=3)
    return MultipleTestingResult(table=table, treat=treat, cluster=cluster, B=B, seed=seed, df=df,
                                 messages=messages)
