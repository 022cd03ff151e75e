"""Attrition: rates by arm and wave, differential-attrition tests, Lee bounds, IPW weights.

References
----------
- Lee, D. S. (2009), "Training, Wages, and Sample Selection: Estimating Sharp Bounds on
  Treatment Effects", *Review of Economic Studies* 76(3), 1071-1102: trimming bounds
  (Proposition 1a) and their asymptotic variance (Proposition 3).
- Imbens, G. W. and Manski, C. F. (2004), "Confidence Intervals for Partially Identified
  Parameters", *Econometrica* 72(6), 1845-1857, eq. (6): confidence interval covering
  the true parameter (not the whole identified set) with probability 1 - alpha.
- Ghanem, D., Hirshleifer, S. and Ortiz-Becerra, K. (2023), "Testing Attrition Bias in
  Field Experiments", *J. Human Resources*: the test of differential attrition on
  baseline covariates (joint test of arm x covariate interactions).
- Lee (2009), Sec. 3.2 / Proposition 1b: bounds tightened by discrete baseline covariates
  (trimming within covariate cells, averaged over the always-observed).
- Cluster-robust inference: the influence function of the trimmed-mean bound (Lee 2009,
  proof of Proposition 3) summed within clusters (Liang & Zeger 1986); bootstrap intervals
  resample clusters (or units) with replacement (Horowitz & Manski 2000 bootstrap for bounds).
- Wooldridge, J. M. (2002), "Inverse probability weighted M-estimators for sample
  selection, attrition, and stratification", *Portuguese Economic Journal* 1, 117-139:
  inverse-probability-of-remaining weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats

from impactkit.checks.inputs import (
    as_list,
    binary_arm,
    check_weights,
    cluster_codes,
    numeric_column,
    require_columns,
    require_frame,
)
from impactkit.checks.regression import inference_label, robust_ols
from impactkit.checks.result import TableResult
from impactkit.errors import EstimationError, InputError
from impactkit.results import Result, to_plain

# ---------------------------------------------------------------------------
# panel bookkeeping
# ---------------------------------------------------------------------------


def _observed_flags(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.ones(len(frame), dtype=bool)
    values = numeric_column(frame, column)
    if np.isnan(values).any():
        raise InputError(f"observed column {column!r} has missing values")
    if not np.all(np.isin(values, (0.0, 1.0))):
        raise InputError(f"observed column {column!r} must be 0/1 or boolean")
    return values == 1


def stay_matrix(frame: pd.DataFrame, *, unit: str, time: str, arm: str, baseline: Any,
                observed: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline rows (one per unit) and a unit x follow-up-wave table of 0/1 "observed".

    A unit is observed in a wave when it has a row there (and ``observed`` is 1 if given).
    """
    frame = require_frame(frame)
    require_columns(frame, [unit, time, arm, observed])
    if frame[unit].isna().any() or frame[time].isna().any():
        raise InputError(f"columns {unit!r} and {time!r} must not have missing values")
    dup = frame.duplicated([unit, time])
    if dup.any():
        raise InputError(f"{int(dup.sum())} duplicated ({unit!r}, {time!r}) rows")
    at_base = frame[time] == baseline
    if not at_base.any():
        raise InputError(f"no rows with {time!r} == {baseline!r} (the baseline)")
    base = frame.loc[at_base].set_index(unit, drop=False)
    binary_arm(base, arm)
    waves = sorted(w for w in frame[time].unique() if w != baseline)
    if not waves:
        raise InputError(f"column {time!r} has no follow-up wave after the baseline")
    flags = _observed_flags(frame, observed)
    seen = frame.loc[~at_base & flags, [unit, time]]
    stay = pd.DataFrame(0, index=base.index, columns=waves, dtype="int64")
    seen = seen[seen[unit].isin(base.index)]
    for wave, units in seen.groupby(time, sort=True)[unit]:
        stay.loc[units.to_numpy(), wave] = 1
    return base, stay


@dataclass
class AttritionResult(TableResult):
    """Attrition rates by arm (per wave and overall) and differential-attrition tests."""

    title: ClassVar[str] = "Attrition"
    table: pd.DataFrame
    covariate_test: dict[str, Any] | None
    arm: str
    cluster: str | None
    messages: list[str] = field(default_factory=list)

    @property
    def differential_attrition_p(self) -> float:
        """p-value of the difference in overall ("any") attrition rates between arms."""
        return float(self.table.loc[self.table["wave"] == "any", "p_value"].iloc[0])

    def notes(self) -> list[str]:
        se = inference_label(self.cluster)
        lines = [f"Attrited = baseline unit not observed in the wave ('any' = missing in at least one "
                 f"follow-up). estimate = rate(treated) - rate(control) from OLS of attrited on {self.arm!r}, {se}."]
        if self.covariate_test:
            ct = self.covariate_test
            lines.append(f"Differential attrition on baseline covariates (attrited ~ arm x covariates, joint test of "
                         f"{ct['df_num']:g} interactions): F = {ct['f']:.3f}, p = {ct['p_value']:.4f}.")
        return lines + list(self.messages)

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"title": self.title, "table": self.tidy(), "notes": self.notes(),
                         "covariate_test": self.covariate_test})


def attrition(frame: pd.DataFrame, *, unit: str, time: str, arm: str, baseline: Any,
              covariates: str | Sequence[str] | None = None, cluster: str | None = None,
              observed: str | None = None) -> AttritionResult:
    """Attrition rates by arm, per follow-up wave and overall, with differential tests.

    For each follow-up wave and for "any" (missing in at least one follow-up), the share
    of baseline units not observed in each arm, and the difference with its p-value from
    an OLS of the attrition indicator on the arm (CR1 by ``cluster``, HC1 otherwise). With
    ``covariates`` (baseline values), "any" attrition is regressed on arm, covariates and
    arm x covariate interactions, and the interactions are tested jointly: a significant
    F means attrition differs by arm in who leaves (Ghanem, Hirshleifer & Ortiz-Becerra
    2023), which threatens internal validity even when rates are equal.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and wave (baseline and follow-ups).
    unit, time : str
        Unit and wave columns.
    arm : str
        0/1 treatment-arm column (constant within unit).
    baseline : Any
        The baseline value of ``time``; units present at baseline define the sample.
    covariates : str or sequence of str, optional
        Baseline covariates for the test of differential attrition by characteristics.
    cluster : str, optional
        Cluster column for CR1 standard errors (HC1 without it).
    observed : str, optional
        0/1 column marking rows with the outcome observed (default: a row exists).

    Returns
    -------
    AttritionResult
        Rates by arm and wave, the differences and their p-values, and the covariate test.

    Raises
    ------
    InputError
        Missing columns, a non-binary or time-varying arm, no baseline rows.
    """
    covariates = as_list(covariates)
    require_columns(frame, [unit, time, arm, cluster, observed, *covariates])
    base, stay = stay_matrix(frame, unit=unit, time=time, arm=arm, baseline=baseline, observed=observed)
    treated = binary_arm(base, arm)
    codes = cluster_codes(base, cluster)
    attrited = 1 - stay.to_numpy()
    columns = {str(w): attrited[:, j] for j, w in enumerate(stay.columns)}
    columns["any"] = attrited.max(axis=1)
    rows = []
    X = np.column_stack([np.ones(len(base)), treated])
    for wave, a in columns.items():
        row: dict[str, Any] = {"wave": wave, "rate_control": float(a[treated == 0].mean()),
                               "rate_treated": float(a[treated == 1].mean()),
                               "n_control": int((treated == 0).sum()), "n_treated": int((treated == 1).sum())}
        if np.ptp(a) == 0:
            row.update(estimate=row["rate_treated"] - row["rate_control"], std_error=0.0, p_value=1.0)
        else:
            est, se, p = robust_ols(a, X, clusters=codes).t_test(1)
            row.update(estimate=est, std_error=se, p_value=p)
        row["n"] = row["n_control"] + row["n_treated"]
        rows.append(row)
    table = pd.DataFrame(rows)[["wave", "rate_control", "rate_treated", "estimate", "std_error", "p_value",
                                "n_control", "n_treated", "n"]]
    covariate_test = None
    messages: list[str] = []
    if covariates:
        C = np.column_stack([numeric_column(base, c) for c in covariates])
        complete = ~np.isnan(C).any(axis=1)
        if (~complete).any():
            messages.append(f"Covariate test uses {int(complete.sum())} units with complete baseline covariates.")
        a = columns["any"][complete]
        if np.ptp(a) == 0:
            messages.append("No attrition: covariate test not run.")
        else:
            t, Cc = treated[complete], C[complete]
            Xc = np.column_stack([np.ones(complete.sum()), t, Cc, t[:, None] * Cc])
            fit = robust_ols(a, Xc, clusters=None if codes is None else codes[complete])
            k = len(covariates)
            f, p, dfn, dfd = fit.f_test(range(2 + k, 2 + 2 * k))
            covariate_test = {"f": f, "p_value": p, "df_num": dfn, "df_denom": dfd, "n": int(complete.sum()),
                              "covariates": covariates}
    return AttritionResult(table=table, covariate_test=covariate_test, arm=arm, cluster=cluster, messages=messages)


# ---------------------------------------------------------------------------
# Lee (2009) bounds
# ---------------------------------------------------------------------------


def trimmed_moments(values: np.ndarray, weights: np.ndarray, share: float, side: str) -> tuple[float, float, float]:
    """Mean and variance after removing ``share`` of the weight from the ``side`` tail, and the cut point.

    Removal is exact: the observation straddling the cut keeps a fraction of its weight
    (Lee 2009, eq. (2) with the empirical quantile). ``side`` is "bottom" or "top".
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
    """C solving ``Phi(C + gap / max(se)) - Phi(-C) = 1 - alpha`` (Imbens & Manski 2004, eq. 6)."""
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
    arms = {}
    for d in (0, 1):
        in_arm = treated == d
        obs = in_arm & seen
        arms[d] = {"q": float(w[obs].sum() / w[in_arm].sum()) if w[in_arm].sum() > 0 else np.nan,
                   "n": int(in_arm.sum()), "n_obs": int(obs.sum()), "y": outcome[obs], "w": w[obs]}
    return arms


def lee_point(outcome: np.ndarray, treated: np.ndarray, seen: np.ndarray, w: np.ndarray) -> tuple[float, float, float, int]:
    """Lee (2009, Proposition 1a) bounds ``(lower, upper, trim share p, trimmed arm)`` from arrays."""
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
    arm is observed more often is not trimmed (its share difference is set to zero)."""
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
    trimmed in the trimmed arm ("top" gives the lower bound when the treated arm is trimmed)."""
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
    seen = _observed_flags(frame, observed)
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
    untrimmed arm's ``V / n_obs``."""
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
    """Standard deviations of the bounds over ``draws`` resamples of clusters (or units)."""
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


# ---------------------------------------------------------------------------
# inverse probability of remaining weights
# ---------------------------------------------------------------------------


def attrition_weights(frame: pd.DataFrame, *, unit: str, time: str, arm: str, baseline: Any,
                      covariates: str | Sequence[str], observed: str | None = None,
                      min_probability: float = 0.02) -> pd.Series:
    """Inverse-probability-of-remaining weights, one per row of ``frame``.

    For each follow-up wave, a logit of "observed" on the baseline ``covariates``, the
    arm and their interactions (so each arm gets its own selection model) is fitted on
    the baseline units; an observed follow-up row gets ``1 / p_hat``, an unobserved one 0,
    a baseline row 1 (Wooldridge 2002, IPW M-estimation under selection on observables).
    Fitted probabilities below ``min_probability`` raise: the weights would be unstable.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and wave.
    unit, time : str
        Unit and wave columns.
    arm : str
        0/1 treatment-arm column.
    baseline : Any
        The baseline value of ``time``.
    covariates : str or sequence of str
        Baseline covariates of the selection model.
    observed : str, optional
        0/1 column marking observed rows (default: a row exists).
    min_probability : float, default 0.02
        Smallest fitted probability of remaining accepted.

    Returns
    -------
    pandas.Series
        One weight per row of ``frame`` (1 at baseline, ``1 / p_hat`` when observed, 0 otherwise).

    Raises
    ------
    EstimationError
        A fitted probability below ``min_probability``.
    """
    covariates = as_list(covariates)
    if not covariates:
        raise InputError("attrition_weights needs at least one baseline covariate")
    require_columns(frame, [unit, time, arm, observed, *covariates])
    import statsmodels.api as sm

    base, stay = stay_matrix(frame, unit=unit, time=time, arm=arm, baseline=baseline, observed=observed)
    treated = binary_arm(base, arm)
    C = np.column_stack([numeric_column(base, c) for c in covariates])
    if np.isnan(C).any():
        bad = [c for j, c in enumerate(covariates) if np.isnan(C[:, j]).any()]
        raise InputError(f"baseline covariate(s) {bad} have missing values; impute or drop before weighting")
    X = np.column_stack([np.ones(len(base)), treated, C, treated[:, None] * C])
    probability = pd.DataFrame(index=base.index, columns=stay.columns, dtype="float64")
    for wave in stay.columns:
        s = stay[wave].to_numpy()
        if s.min() == 1:
            probability[wave] = 1.0
            continue
        for d in (0, 1):
            if np.ptp(s[treated == d]) == 0 and s[treated == d].min() == 0:
                raise EstimationError(f"wave {wave!r}: no unit of {arm!r} == {d} is observed")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = sm.Logit(s, X).fit(disp=0, maxiter=200)
            except Exception as exc:  # perfect separation, singular Hessian
                raise EstimationError(f"wave {wave!r}: the logit of staying cannot be fitted ({type(exc).__name__})") from exc
        if not fit.mle_retvals.get("converged", True):
            raise EstimationError(f"wave {wave!r}: the logit of staying did not converge")
        prob = np.asarray(fit.predict(X))
        if prob.min() < min_probability:
            raise EstimationError(f"wave {wave!r}: a fitted probability of staying is below {min_probability}; "
                                  "weights would be extreme")
        probability[wave] = prob
    weight = np.ones(len(frame))
    times = frame[time].to_numpy()
    units = frame[unit].to_numpy()
    flags = _observed_flags(frame, observed)
    follow = times != baseline
    in_base = pd.Index(base.index)
    for wave in stay.columns:
        rows = np.flatnonzero(follow & (times == wave))
        pos = in_base.get_indexer(units[rows])
        prob = np.where(pos >= 0, probability[wave].to_numpy()[np.maximum(pos, 0)], np.nan)
        weight[rows] = np.where(flags[rows] & (pos >= 0), 1.0 / prob, 0.0)
    weight = np.nan_to_num(weight, nan=0.0)
    return pd.Series(weight, index=frame.index, name="attrition_weight")
