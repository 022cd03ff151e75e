"""Lee (2009) bounds on Dask, by exact weighted selection: the analysis engine's Lee bounds.

Same estimator and numbers as :func:`impactkit.checks.lee.lee_bounds` with analytic inference,
no clusters and no covariates (the analysis's call; Lee 2009, Proposition 1a for the bounds,
Proposition 3 for their standard errors; Imbens & Manski 2004, eq. 6 for the interval), tested
to 1e-10. Every unit lies in one partition, so each partition makes its baseline units' change
in the outcome (:func:`impactkit.analysis.steps.checks.lee_frame`). Then:

1. per arm: units, observed units, their weight sums and weighted outcome sums; then the
   untrimmed arm's centred sum of squares;
2. for each tail of the trimmed arm, the cut: the value where the cumulative weight in sorted
   order reaches ``p`` times the arm's observed weight, found by
   :func:`impactkit.distributed.select.weighted_cut` (histogram narrowing; only bin counts,
   weight sums and at most ``max_gather`` values leave the workers, never the column);
3. the kept part's weight and outcome sums beyond the cut, plus the share of the tie at the cut
   that is kept (the fractional weight of Lee's eq. 2), then its centred sum of squares.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactkit.distributed.reduce import map_reduce, partitions
from impactkit.distributed.select import weighted_cut
from impactkit.errors import EstimationError

Y, ARM, SEEN = "_lee_y", "_lee_arm", "_lee_seen"


def _units(part: pd.DataFrame, unit: str, time: str, baseline: int, final: int, y: str,
           weights: str | None) -> pd.DataFrame:
    from impactkit.analysis.steps.checks import lee_frame

    frame = lee_frame(part, unit, time, baseline, final, y, weights)
    return pd.DataFrame({Y: frame[y].to_numpy(float), ARM: frame["ever_treated"].to_numpy(float),
                         SEEN: frame["observed"].to_numpy(bool),
                         "_w": frame[weights].to_numpy(float) if weights else np.ones(len(frame))})


def _arm_values(part, arm: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Observed outcomes (times ``sign``: -1 sorts the top tail first) and weights of one arm."""
    keep = part[SEEN].to_numpy() & (part[ARM].to_numpy() == arm)
    return sign * part[Y].to_numpy()[keep], part["_w"].to_numpy()[keep]


def _arm_sums(part) -> np.ndarray:
    """Per arm 0 and 1: units, observed units, weight, observed weight, observed weighted outcome."""
    out = []
    for a in (0, 1):
        in_arm = part[ARM].to_numpy() == a
        obs = in_arm & part[SEEN].to_numpy()
        w, y = part["_w"].to_numpy(), part[Y].to_numpy()
        out += [in_arm.sum(), obs.sum(), w[in_arm].sum(), w[obs].sum(), np.sum(w[obs] * y[obs])]
    return np.array(out, dtype=float)


def _centred(part, arm: int, sign: float, beyond: float | None, mean: float) -> float:
    """Weighted squares about ``mean`` of an arm's (signed) outcomes ``> beyond`` (all if None)."""
    v, w = _arm_values(part, arm, sign)
    keep = np.ones(v.size, bool) if beyond is None else v > beyond
    return float(np.sum(w[keep] * (v[keep] - mean) ** 2))


def _beyond(part, arm: int, sign: float, cut_value: float) -> np.ndarray:
    v, w = _arm_values(part, arm, sign)
    keep = v > cut_value
    return np.array([w[keep].sum(), np.sum(w[keep] * v[keep])])


def _trimmed(parts, arm: int, share: float, total: float, side: str) -> tuple[float, float, float]:
    """:func:`impactkit.checks.lee.trimmed_moments` of one arm: (mean, variance, cut) after removing
    ``share`` of its observed weight ``total`` from ``side``."""
    sign = 1.0 if side == "bottom" else -1.0
    cut = share * total
    c, _, through = weighted_cut(parts, _arm_values, (arm, sign), cut)
    tie_kept = through - cut
    w_beyond, s_beyond = map_reduce(_beyond, parts, arm, sign, c)
    kept = w_beyond + tie_kept
    mean = (s_beyond + tie_kept * c) / kept
    squares = map_reduce(_centred, parts, arm, sign, c, mean) + tie_kept * (c - mean) ** 2
    return float(sign * mean), float(squares / kept), float(sign * c)


def lee_bounds(panel, *, unit: str, time: str, baseline: int, final: int, y: str, weights: str | None = None,
               alpha: float = 0.05):
    """Lee (2009) bounds of the change in ``y`` from ``baseline`` to ``final`` between the arms of
    ``ever_treated``, on a unit-partitioned dask DataFrame (:func:`impactkit.checks.lee.lee_bounds`
    on :func:`impactkit.analysis.steps.checks.lee_frame`, analytic inference).

    Parameters
    ----------
    panel : dask.dataframe.DataFrame
        The prepared panel (with ``ever_treated``), every unit in one partition.
    unit, time : str
        Unit and period columns.
    baseline, final : int
        Baseline and final periods.
    y : str
        Outcome column.
    weights : str, optional
        Sampling weights.
    alpha : float, default 0.05
        1 - confidence level of the Imbens-Manski interval.

    Returns
    -------
    impactkit.checks.lee.LeeBoundsResult
        The pandas engine's result type.

    Raises
    ------
    EstimationError
        Fewer than two observed units in an arm.
    """
    from impactkit.checks.lee import LeeBoundsResult, imbens_manski_critical

    meta = _units(panel._meta, unit, time, baseline, final, y, weights)
    units = panel.map_partitions(_units, unit, time, baseline, final, y, weights, meta=meta).persist()
    parts = partitions(units)
    sums = map_reduce(_arm_sums, parts)
    arms = {a: dict(zip(("n", "n_obs", "w", "w_obs", "s_obs"), sums[5 * a:5 * a + 5])) for a in (0, 1)}
    for a in (0, 1):
        if arms[a]["n_obs"] < 2:
            raise EstimationError(f"Lee bounds: fewer than two observed units in 'ever_treated' == {a}")
        arms[a]["q"] = float(arms[a]["w_obs"] / arms[a]["w"]) if arms[a]["w"] > 0 else np.nan
    q0, q1 = arms[0]["q"], arms[1]["q"]
    trim_arm = 1 if q1 >= q0 else 0
    t, o = arms[trim_arm], arms[1 - trim_arm]
    p = (t["q"] - o["q"]) / t["q"]
    mu_o = float(o["s_obs"] / o["w_obs"])
    var_o = float(map_reduce(_centred, parts, 1 - trim_arm, 1.0, None, mu_o) / o["w_obs"])
    low_side, high_side = ("top", "bottom") if trim_arm == 1 else ("bottom", "top")
    var_p = (1 - p) ** 2 * sum((1 - a["q"]) / (a["q"] * a["n"]) for a in arms.values())
    means, ses = {}, {}
    for side in (low_side, high_side):
        mu, var, cut = _trimmed(parts, trim_arm, p, t["w_obs"], side)
        means[side] = mu
        v_trim = (var + p * (cut - mu) ** 2) / ((1 - p) * t["n_obs"])
        v_p = ((mu - cut) / (1 - p)) ** 2 * var_p
        ses[side] = float(np.sqrt(v_trim + v_p + var_o / o["n_obs"]))
    if trim_arm == 1:
        lower, upper = means["top"] - mu_o, means["bottom"] - mu_o
    else:
        lower, upper = mu_o - means["bottom"], mu_o - means["top"]
    se_l, se_u = ses[low_side], ses[high_side]
    c = imbens_manski_critical(upper - lower, se_l, se_u, alpha)
    return LeeBoundsResult(lower=lower, upper=upper, se_lower=se_l, se_upper=se_u, conf_low=lower - c * se_l,
                           conf_high=upper + c * se_u, trim_share=float(p),
                           trimmed_arm="treated" if trim_arm == 1 else "control", observed_share_control=q0,
                           observed_share_treated=q1, n=int(arms[0]["n"] + arms[1]["n"]), alpha=alpha)
