"""Lee (2009) trimming bounds on the effect for the always-observed, with their inference.

References
----------
- Lee, D. S. (2009), "Training, Wages, and Sample Selection: Estimating Sharp Bounds on
  Treatment Effects", *Review of Economic Studies* 76(3), 1071-1102: trimming bounds
  (Proposition 1a), their asymptotic variance (Proposition 3), and bounds tightened by
  discrete baseline covariates (Sec. 3.2 / Proposition 1b).
- Imbens, G. W. and Manski, C. F. (2004), "Confidence Intervals for Partially Identified
  Parameters", *Econometrica* 72(6), 1845-1857, eq. (6).
- Cluster-robust inference: the influence function of the trimmed-mean bound (Lee 2009,
  proof of Proposition 3) summed within clusters (Liang & Zeger 1986); bootstrap intervals
  resample clusters (or units) with replacement (Horowitz & Manski 2000).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats

from impactkit.checks.inputs import (
    as_list,
    binary_arm,
    check_weights,
    cluster_codes,
    numeric_column,
    observed_flags,
    require_columns,
    require_frame,
)
from impactkit.errors import EstimationError, InputError
from impactkit.results import Result



def trimmed_moments(values: np.ndarray, weights: np.ndarray, share: float, side: str) -> tuple[float, float, float]:
    """Mean and variance after removing ``share`` of the weight from the ``side`` tail, and the cut point.

    Removal is exact: the observation straddling the cut keeps a fraction of its weight
    (Lee 2009, eq. (2) with the empirical quantile). ``side`` is "bottom" or "top".

    Parameters
    ----------
    values : numpy.ndarray
        Observed outcomes of the trimmed arm.
    weights : numpy.ndarray
        Their weights.
    share : float
        Share of the total weight removed, in [0, 1).
    side : {"bottom", "top"}
        The tail removed.

    Returns
    -------
    mean, variance, cut : float
        Weighted mean and variance of what is kept, and the outcome at the cut.
    """
    order = np.argsort(values, kind="stable")
    if side == "top":
        order = order[::-1]
    v, w = values[order], weights[order]
    cut = share * w.sum()
    kept = np.clip(np.cumsum(w) - cut, 0.0, w)
    boundary = v[np.argmax(np.cumsum(w) >= cut)] if share > 0 else v[0]
    mean = float(np.sum(kept * v) / kept.sum())
    var = float(np.sum(kept * (v - mean) ** 2) / kept.sum())
    return mean, var, float(boundary)


def imbens_manski_critical(gap: float, se_low: float, se_high: float, alpha: float) -> float:
    """C solving ``Phi(C + gap / max(se)) - Phi(-C) = 1 - alpha`` (Imbens & Manski 2004, eq. 6).

    Parameters
    ----------
    gap : float
        Width of the estimated identified set, upper minus lower bound.
    se_low, se_high : float
        Standard errors of the two bounds.
    alpha : float
        1 - confidence level.

    Returns
    -------
    float
        Between ``Phi^-1(1 - alpha)`` (wide set) and ``Phi^-1(1 - alpha / 2)`` (point identified).
    """
    scale = max(se_low, se_high)
    if scale <= 0:
        raise EstimationError("Lee bounds: zero standard error")
    ratio = gap / scale
    fun = lambda c: stats.norm.cdf(c + ratio) - stats.norm.cdf(-c) - (1 - alpha)  # noqa: E731
    return float(optimize.brentq(fun, 0.0, stats.norm.ppf(1 - alpha / 2) + 1e-9, xtol=1e-14))


@dataclass
class LeeBoundsResult(Result):
    """Lee (2009) lower and upper bounds with the Imbens-Manski confidence interval."""

    title: ClassVar[str] = "Lee (2009) bounds"
    lower: float
    upper: float
    se_lower: float
    se_upper: float
    conf_low: float
    conf_high: float
    trim_share: float
    trimmed_arm: str
    observed_share_control: float
    observed_share_treated: float
    n: int
    alpha: float
    inference: str = "analytic"
    n_clusters: int | None = None
    covariates: tuple[str, ...] = ()
    bootstrap_draws: int | None = None

    def tidy(self) -> pd.DataFrame:
        return pd.DataFrame({
            "bound": ["lower", "upper"],
            "estimate": [self.lower, self.upper],
            "std_error": [self.se_lower, self.se_upper],
            "conf_low": [self.conf_low, self.conf_low],
            "conf_high": [self.conf_high, self.conf_high],
            "n": [self.n, self.n],
            "trim_share": [self.trim_share] * 2,
            "trimmed_arm": [self.trimmed_arm] * 2,
        })

    def notes(self) -> list[str]:
        return [
            f"Observed share: control {self.observed_share_control:.4f}, treated {self.observed_share_treated:.4f}; "
            f"the {self.trimmed_arm} arm is trimmed by {self.trim_share:.4f} of its observed units.",
            f"Standard errors: {self._inference_text()}; conf_low/conf_high: Imbens-Manski (2004) "
            f"{100 * (1 - self.alpha):g}% interval for the effect (same on both rows).",
        ] + ([f"Bounds tightened by trimming within cells of {', '.join(self.covariates)} (Lee 2009, Sec. 3.2)."]
             if self.covariates else [])

    def _inference_text(self) -> str:
        where = f" over {self.n_clusters} clusters" if self.n_clusters else ""
        if self.inference == "bootstrap":
            return f"bootstrap ({self.bootstrap_draws} draws, resampling {'clusters' if self.n_clusters else 'units'})"
        if self.n_clusters:
            return f"cluster-robust influence functions{where}"
        return "Lee (2009) Proposition 3"


def _arm_moments(outcome, treated, seen, w):
    """Per arm (0 and 1): observation rate ``q``, units, observed units and their outcomes and weights.

    Parameters
    ----------
    outcome : numpy.ndarray
        Outcome per unit (anything where unobserved).
    treated : numpy.ndarray
        0/1 arm per unit.
    seen : numpy.ndarray
        Boolean per unit: outcome observed.
    w : numpy.ndarray
        Weight per unit.

    Returns
    -------
    dict
        ``{0: {...}, 1: {...}}`` with keys ``q``, ``n``, ``n_obs``, ``y``, ``w``.
    """
    arms = {}
    for d in (0, 1):
        in_arm = treated == d
        obs = in_arm & seen
        arms[d] = {"q": float(w[obs].sum() / w[in_arm].sum()) if w[in_arm].sum() > 0 else np.nan,
                   "n": int(in_arm.sum()), "n_obs": int(obs.sum()), "y": outcome[obs], "w": w[obs]}
    return arms


def lee_point(outcome: np.ndarray, treated: np.ndarray, seen: np.ndarray, w: np.ndarray) -> tuple[float, float, float, int]:
    """Lee (2009, Proposition 1a) bounds ``(lower, upper, trim share p, trimmed arm)`` from arrays.

    Parameters
    ----------
    outcome : numpy.ndarray
        Outcome per unit (anything where unobserved).
    treated : numpy.ndarray
        0/1 arm per unit.
    seen : numpy.ndarray
        Boolean per unit: outcome observed.
    w : numpy.ndarray
        Weight per unit.

    Returns
    -------
    tuple
        ``(lower, upper, p, trimmed arm)``.
    """
    arms = _arm_moments(outcome, treated, seen, w)
    trim_arm = 1 if arms[1]["q"] >= arms[0]["q"] else 0
    t, o = arms[trim_arm], arms[1 - trim_arm]
    p = (t["q"] - o["q"]) / t["q"]
    mu_o = float(np.sum(o["w"] * o["y"]) / o["w"].sum())
    top = trimmed_moments(t["y"], t["w"], p, "top")[0]
    bottom = trimmed_moments(t["y"], t["w"], p, "bottom")[0]
    if trim_arm == 1:
        return top - mu_o, bottom - mu_o, float(p), 1
    return mu_o - bottom, mu_o - top, float(p), 0


def lee_point_cells(outcome, treated, seen, w, cells: np.ndarray) -> tuple[float, float, float, int]:
    """Covariate-tightened bounds (Lee 2009, Sec. 3.2): bounds within each cell of the discrete
    covariates, averaged with the cell's share of the always-observed, ``q_untrimmed(x) P(X = x)``.
    The trimmed arm is the overall one (monotonicity holds in every cell); a cell where the other
    arm is observed more often is not trimmed (its share difference is set to zero).

    Parameters
    ----------
    outcome, treated, seen, w : numpy.ndarray
        As in :func:`lee_point`.
    cells : numpy.ndarray
        Covariate cell of each unit (integer codes).

    Returns
    -------
    tuple
        ``(lower, upper, overall p, trimmed arm)``.

    Raises
    ------
    EstimationError
        A cell has an arm without observed units.
    """
    overall = _arm_moments(outcome, treated, seen, w)
    trim_arm = 1 if overall[1]["q"] >= overall[0]["q"] else 0
    lows, highs, shares = [], [], []
    for code in np.unique(cells):
        m = cells == code
        arms = _arm_moments(outcome[m], treated[m], seen[m], w[m])
        if min(arms[0]["n_obs"], arms[1]["n_obs"]) < 1:
            raise EstimationError(f"Lee bounds: covariate cell {int(code)} has an arm with no observed unit")
        t, o = arms[trim_arm], arms[1 - trim_arm]
        p = max((t["q"] - o["q"]) / t["q"], 0.0)
        mu_o = float(np.sum(o["w"] * o["y"]) / o["w"].sum())
        top = trimmed_moments(t["y"], t["w"], p, "top")[0]
        bottom = trimmed_moments(t["y"], t["w"], p, "bottom")[0]
        low, high = (top - mu_o, bottom - mu_o) if trim_arm == 1 else (mu_o - bottom, mu_o - top)
        lows.append(low), highs.append(high), shares.append(o["q"] * w[m].sum())
    shares = np.asarray(shares) / np.sum(shares)
    t, o = overall[trim_arm], overall[1 - trim_arm]
    return float(shares @ lows), float(shares @ highs), float((t["q"] - o["q"]) / t["q"]), trim_arm


def lee_influence(outcome, treated, seen, w, side: str) -> np.ndarray:
    """Per-unit influence function of one Lee bound (no covariates): the trimmed mean at the
    estimated quantile, its dependence on the estimated trim share through the two observation
    rates, and the untrimmed arm's mean (Lee 2009, proof of Proposition 3). ``side`` is the tail
    trimmed in the trimmed arm ("top" gives the lower bound when the treated arm is trimmed).

    Parameters
    ----------
    outcome, treated, seen, w : numpy.ndarray
        As in :func:`lee_point`.
    side : {"top", "bottom"}
        The tail trimmed.

    Returns
    -------
    numpy.ndarray
        One value per unit; ``sqrt(sum(psi^2)) / n`` is the standard error.
    """
    n = outcome.size
    arms = _arm_moments(outcome, treated, seen, w)
    trim_arm = 1 if arms[1]["q"] >= arms[0]["q"] else 0
    t, o = arms[trim_arm], arms[1 - trim_arm]
    kappa = o["q"] / t["q"]                       # kept share of the trimmed arm's observed
    mu, _, cut = trimmed_moments(t["y"], t["w"], 1 - kappa, side)
    wbar = w.mean()
    pi = {d: float(np.mean(w * (treated == d))) / wbar for d in (0, 1)}
    y0 = np.nan_to_num(outcome)
    infl = np.zeros(n)
    # observation rates
    if_q = {d: (treated == d) * (w / wbar) * (seen - arms[d]["q"]) / pi[d] for d in (0, 1)}
    if_kappa = if_q[1 - trim_arm] / t["q"] - o["q"] * if_q[trim_arm] / t["q"] ** 2
    # trimmed mean with the quantile fixed
    in_t = (treated == trim_arm) & seen
    pi_t = float(np.mean(w * in_t)) / wbar
    kept = (y0 <= cut) if side == "top" else (y0 >= cut)
    psi_t = in_t * (w / wbar) * ((y0 - cut) * kept + kappa * (cut - mu)) / (kappa * pi_t)
    dmu = (cut - mu) / kappa
    in_o = (treated == 1 - trim_arm) & seen
    pi_o = float(np.mean(w * in_o)) / wbar
    mu_o = float(np.sum(o["w"] * o["y"]) / o["w"].sum())
    psi_o = in_o * (w / wbar) * (y0 - mu_o) / pi_o
    infl = psi_t + dmu * if_kappa
    return infl - psi_o if trim_arm == 1 else psi_o - infl


def _cluster_se(infl: np.ndarray, clusters: np.ndarray) -> float:
    """CR1-style standard error ``sqrt(G / (G - 1) sum_g S_g^2) / n`` of an influence function.

    Parameters
    ----------
    infl : numpy.ndarray
        Influence function, one value per unit.
    clusters : numpy.ndarray
        Cluster code of each unit, 0..G-1.

    Returns
    -------
    float
    """
    sums = np.bincount(clusters, weights=infl)
    g = sums.size
    return float(np.sqrt(g / (g - 1.0) * float(sums @ sums)) / infl.size)


def lee_bounds(frame: pd.DataFrame, *, y: str, arm: str, observed: str, weights: str | None = None,
               alpha: float = 0.05, cluster: str | None = None, covariates: Sequence[str] | None = None,
               inference: str | None = None, draws: int = 999, seed: int | None = None) -> LeeBoundsResult:
    """Lee (2009) sharp bounds on the effect for the always-observed, with Imbens-Manski CI.

    With observation rates ``q1`` (treated) and ``q0`` (control), and ``q1 > q0``, the
    treated observed outcomes are trimmed by ``p = (q1 - q0) / q1``: dropping the top
    ``p`` share gives the lower bound, the bottom share the upper bound, each minus the
    control observed mean (Lee 2009, Proposition 1a); the control arm is trimmed when
    ``q0 > q1``. Standard errors (without clusters or covariates) follow Lee (2009,
    Proposition 3): the trimmed-mean variance ``[V_trim + p (y_p - mu)^2] / ((1 - p) n_obs)``,
    the term from estimating ``p`` ``((mu - y_p) / (1 - p))^2 Var(p_hat)``, and the untrimmed
    arm's ``V / n_obs``. The confidence interval is Imbens & Manski (2004, eq. 6). Weights enter
    shares, quantiles and means; the variance then treats them as fixed.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per randomized unit (attriters included).
    y : str
        Outcome column (missing or ignored where ``observed`` is 0).
    arm : str
        0/1 treatment-arm column.
    observed : str
        0/1 column: outcome observed.
    weights : str, optional
        Sampling weights.
    alpha : float, default 0.05
        1 - confidence level of the Imbens-Manski interval.
    cluster : str, optional
        Cluster column (e.g. the unit of randomisation in a cluster-randomised trial):
        standard errors sum the influence functions within clusters, and the bootstrap
        resamples whole clusters.
    covariates : sequence of str, optional
        Discrete baseline covariates: bounds are computed within their cells and averaged
        over the always-observed (Lee 2009, Sec. 3.2), which can only tighten them when
        the covariates predict the outcome. Inference is then by bootstrap.
    inference : {"analytic", "bootstrap"}, optional
        Default: analytic (Lee 2009, Proposition 3 without clusters; clustered influence
        functions with ``cluster``) unless ``covariates`` are given.
    draws : int, default 999
        Bootstrap draws.
    seed : int, optional
        Seed of the bootstrap stream (:func:`impactkit.seeds.rng`).

    Returns
    -------
    LeeBoundsResult
        Lower and upper bounds, their standard errors, the Imbens-Manski interval, the trimming
        share and the trimmed arm.

    Raises
    ------
    InputError
        Missing columns, non-binary arm or ``observed``, bad weights, ``inference="analytic"``
        with covariates.
    EstimationError
        Fewer than two observed units in an arm, a covariate cell without observed units.
    """
    frame = require_frame(frame)
    cov_list = tuple(as_list(covariates))
    require_columns(frame, [y, arm, observed, weights, cluster, *cov_list])
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1) (got {alpha})")
    inference = inference or ("bootstrap" if cov_list else "analytic")
    if inference not in ("analytic", "bootstrap"):
        raise InputError(f"Lee bounds: inference must be 'analytic' or 'bootstrap' (got {inference!r})")
    if cov_list and inference == "analytic":
        raise InputError("Lee bounds: covariate-tightened bounds need inference='bootstrap'")
    if inference == "bootstrap" and draws < 50:
        raise InputError(f"Lee bounds: draws must be at least 50 (got {draws})")
    treated = binary_arm(frame, arm)
    seen = observed_flags(frame, observed)
    w = check_weights(frame, weights)
    w = np.ones(len(frame)) if w is None else w
    outcome = numeric_column(frame, y)
    clusters = cluster_codes(frame, cluster)
    cells = None
    if cov_list:
        if frame[list(cov_list)].isna().any().any():
            raise InputError(f"Lee bounds: covariate column(s) {list(cov_list)} have missing values")
        cells = frame.groupby(list(cov_list), sort=True).ngroup().to_numpy()
    missing_seen = seen & np.isnan(outcome)
    if missing_seen.any():
        raise InputError(f"column {y!r} is missing in {int(missing_seen.sum())} row(s) flagged observed by {observed!r}")
    arms = _arm_moments(outcome, treated, seen, w)
    for d in (0, 1):
        if arms[d]["n_obs"] < 2:
            raise EstimationError(f"Lee bounds: fewer than two observed units in {arm!r} == {d}")
    q0, q1 = arms[0]["q"], arms[1]["q"]
    trim_arm = 1 if q1 >= q0 else 0
    other = 1 - trim_arm
    p = (arms[trim_arm]["q"] - arms[other]["q"]) / arms[trim_arm]["q"]
    low_side, high_side = ("top", "bottom") if trim_arm == 1 else ("bottom", "top")
    if cells is not None:
        lower, upper, _, _ = lee_point_cells(outcome, treated, seen, w, cells)
    else:
        lower, upper, _, _ = lee_point(outcome, treated, seen, w)
    n_draws = None
    if inference == "bootstrap":
        se_l, se_u = _bootstrap_se(outcome, treated, seen, w, cells, clusters, draws, seed)
        n_draws = draws
    elif clusters is not None:
        se_l = _cluster_se(lee_influence(outcome, treated, seen, w, low_side), clusters)
        se_u = _cluster_se(lee_influence(outcome, treated, seen, w, high_side), clusters)
    else:
        se_l, se_u = _proposition3_se(arms, trim_arm, p, low_side, high_side)
    c = imbens_manski_critical(upper - lower, se_l, se_u, alpha)
    return LeeBoundsResult(lower=lower, upper=upper, se_lower=se_l, se_upper=se_u,
                           conf_low=lower - c * se_l, conf_high=upper + c * se_u, trim_share=float(p),
                           trimmed_arm="treated" if trim_arm == 1 else "control",
                           observed_share_control=q0, observed_share_treated=q1, n=len(frame), alpha=alpha,
                           inference=inference, n_clusters=None if clusters is None else int(clusters.max() + 1),
                           covariates=cov_list, bootstrap_draws=n_draws)


def _proposition3_se(arms, trim_arm, p, low_side, high_side) -> tuple[float, float]:
    """Lee (2009, Proposition 3): the trimmed-mean variance ``[V_trim + p (y_p - mu)^2] / ((1 - p)
    n_obs)``, the term from estimating ``p``, ``((mu - y_p) / (1 - p))^2 Var(p_hat)``, and the
    untrimmed arm's ``V / n_obs``.

    Parameters
    ----------
    arms : dict
        :func:`_arm_moments` of the sample.
    trim_arm : int
        The trimmed arm (0 or 1).
    p : float
        Trim share.
    low_side, high_side : {"top", "bottom"}
        The tail trimmed for the lower and for the upper bound.

    Returns
    -------
    se_lower, se_upper : float
    """
    t, o = arms[trim_arm], arms[1 - trim_arm]
    mu_o = float(np.sum(o["w"] * o["y"]) / o["w"].sum())
    var_o = float(np.sum(o["w"] * (o["y"] - mu_o) ** 2) / o["w"].sum())
    var_p = (1 - p) ** 2 * sum((1 - a["q"]) / (a["q"] * a["n"]) for a in arms.values())
    out = {}
    for side in (low_side, high_side):
        mu, var, cut = trimmed_moments(t["y"], t["w"], p, side)
        v_trim = (var + p * (cut - mu) ** 2) / ((1 - p) * t["n_obs"])
        v_p = ((mu - cut) / (1 - p)) ** 2 * var_p
        out[side] = float(np.sqrt(v_trim + v_p + var_o / o["n_obs"]))
    return out[low_side], out[high_side]


def _bootstrap_se(outcome, treated, seen, w, cells, clusters, draws: int, seed: int | None) -> tuple[float, float]:
    """Standard deviations of the bounds over ``draws`` resamples of clusters (or units).

    Parameters
    ----------
    outcome, treated, seen, w : numpy.ndarray
        As in :func:`lee_point`.
    cells : numpy.ndarray or None
        Covariate cell of each unit (covariate-tightened bounds), or None.
    clusters : numpy.ndarray or None
        Cluster code of each unit; None resamples units.
    draws : int
        Bootstrap draws.
    seed : int or None
        Seed of the ``"lee-bounds-bootstrap"`` stream.

    Returns
    -------
    se_lower, se_upper : float

    Raises
    ------
    EstimationError
        Fewer than 90% of the draws could be computed.
    """
    from impactkit.seeds import rng

    gen = rng(seed, "lee-bounds-bootstrap")
    groups = np.arange(outcome.size) if clusters is None else clusters
    n_groups = int(groups.max()) + 1
    order = np.argsort(groups, kind="stable")
    starts = np.searchsorted(groups[order], np.arange(n_groups))
    ends = np.append(starts[1:], outcome.size)
    members = [order[a:b] for a, b in zip(starts, ends)]
    point = lee_point if cells is None else (lambda *a: lee_point_cells(*a, cells_b))
    lows, highs = [], []
    for _ in range(draws):
        pick = gen.integers(0, n_groups, size=n_groups)
        idx = np.concatenate([members[g] for g in pick])
        cells_b = None if cells is None else cells[idx]
        try:
            low, high, _, _ = point(outcome[idx], treated[idx], seen[idx], w[idx])
        except (EstimationError, ZeroDivisionError, ValueError, IndexError):
            continue
        lows.append(low), highs.append(high)
    if len(lows) < 0.9 * draws:
        raise EstimationError(f"Lee bounds: only {len(lows)} of {draws} bootstrap draws could be computed")
    return float(np.std(lows, ddof=1)), float(np.std(highs, ddof=1))

