"""Triple differences (DDD), doubly robust (Ortiz-Villavicencio & Sant'Anna 2025).

Ortiz-Villavicencio, M. & Sant'Anna, P. H. C. (2025). Better understanding triple differences
estimators. arXiv:2505.09942: Sec. 3, eq. (3.5) (two periods); Sec. 4, eq. (4.8)-(4.12)
(staggered adoption).

Units are split by a treatment-enabling group ``S`` (the first period in which the policy is
enabled for the unit's group, the ``cohort`` column; 0 = never enabled) and an eligibility
partition ``Q`` (the ``partition`` column, 1 eligible). The target is the ATT of the eligible
units of the enabled group, ``E[Y_t(g) - Y_t(inf) | S=g, Q=1]``, identified when the
eligible-minus-ineligible trend gap is the same in the enabled and the comparison groups (DDD
conditional parallel trends). With the cells ``4 = (S=g,Q=1)``, ``3 = (S=g,Q=0)``,
``2 = (S=g_c,Q=1)``, ``1 = (S=g_c,Q=0)``, the estimator is

``ATT_DDD = DiD(4 vs 3) + DiD(4 vs 2) - DiD(4 vs 1)``

where each DiD is the 2x2 of Sant'Anna & Zhao (2020) (doubly robust by default; IPW or
outcome regression) on the units of its two cells (:mod:`impactkit.did.triple_cells`). Note that
the doubly robust DDD is *not* the difference of two DiDs when covariates matter (paper,
Sec. 3.2).

- **Two periods** (this module, :func:`fit_ddd_panel`): one ATT; covariates from the first period;
  influence function ``(n/n_3) psi_3 + (n/n_2) psi_2 - (n/n_1) psi_1`` (each ``psi`` zero off its
  sub-sample); standard error its standard deviation over ``sqrt(n)``, or cluster sums; with
  ``bootstrap=True`` the interval uses the multiplier-bootstrap critical value.
- **More periods or several cohorts** (:mod:`impactkit.did.triple_staggered`): ATT(g,t) for every
  cohort and period against never-treated or not-yet-treated comparison cohorts (GMM-combined
  when there are several), aggregated as R ``triplediff::agg_ddd`` / R ``did::aggte``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.base import DidEstimator, DidPanel, DidResult
from impactkit.did.cs import BASE_PERIODS, CONTROLS, one_cluster
from impactkit.did.multiplier import multiplier_draws, sup_t_critical_value
from impactkit.did.triple_cells import CELLS, ddd_estimate, fit_comparisons, subgroups, unit_partition
from impactkit.did.triple_staggered import TripleGTResult, fit_ddd_staggered
from impactkit.errors import EstimationError, InputError


@dataclass
class TripleResult(DidResult):
    """The two-period DDD ATT, its three component DiDs and cell counts."""

    title: ClassVar[str] = "Triple differences (Ortiz-Villavicencio & Sant'Anna 2025)"
    method: ClassVar[str] = "ddd"

    estimate: float
    std_error: float
    alpha: float
    components: pd.DataFrame
    counts: dict[int, int]
    influence: np.ndarray
    n_units: int
    critical_value: float | None = None

    def att(self) -> dict[str, float]:
        z = norm.ppf(1 - self.alpha / 2) if self.critical_value is None else self.critical_value
        p = float(2 * norm.sf(abs(self.estimate / self.std_error))) if self.std_error > 0 else math.nan
        return {"estimate": self.estimate, "std_error": self.std_error, "conf_low": self.estimate - z * self.std_error,
                "conf_high": self.estimate + z * self.std_error, "p_value": p}

    def tidy(self) -> pd.DataFrame:
        return pd.DataFrame([{"term": "ATT (DDD)", **self.att(), "n": self.n_units}])

    def event_study(self) -> pd.DataFrame:
        """Two periods give one effect: EstimationError (more periods give ATT(g,t) and an event study)."""
        raise EstimationError("ddd with two periods estimates one effect and has no event study; "
                              "with more periods it estimates ATT(g,t) and their event study")

    def pretrend(self):
        """Two periods leave no pre-treatment effect to test: EstimationError."""
        raise EstimationError("ddd with two periods has no pre-treatment effects to test; it needs more periods")

    def notes(self) -> list[str]:
        cells = ", ".join(f"{CELLS[k]}: {v}" for k, v in sorted(self.counts.items(), reverse=True))
        parts = "; ".join(f"{r.comparison}: {r.estimate:.4g}" for r in self.components.itertuples())
        lines = [f"Units by cell: {cells}.", f"Component DiDs ({parts}); DDD = first + second - third."]
        if self.critical_value is not None:
            lines.append(f"Interval: multiplier-bootstrap critical value {self.critical_value:.4f}.")
        return lines


def estimate_ddd_arrays(delta_y: np.ndarray, cell: np.ndarray, design: np.ndarray | None,
                        weights: np.ndarray | None, est: str = "dr", clusters: np.ndarray | None = None,
                        names: tuple[str, ...] = ()) -> tuple[float, float, list[tuple[str, float]], np.ndarray]:
    """Two-period DDD (eq. 3.5) from per-unit outcome changes and cells.

    Parameters
    ----------
    delta_y : numpy.ndarray
        Outcome change per unit.
    cell : numpy.ndarray
        Cell code 4/3/2/1 per unit (:func:`impactkit.did.triple_cells.subgroups`).
    design : numpy.ndarray or None
        ``[1, covariates]`` per unit; an intercept only when ``None``.
    weights : numpy.ndarray or None
        Sampling weights per unit.
    est : {"dr", "ipw", "reg"}
        The Sant'Anna & Zhao (2020) 2x2 estimator.
    clusters : numpy.ndarray, optional
        Cluster of each unit (Liang-Zeger sums of the influence function).
    names : tuple of str
        Covariate names, for messages.

    Returns
    -------
    att, se : float
    components : list of (str, float)
        The three component DiDs.
    influence : numpy.ndarray
        Influence function per unit.
    """
    n = delta_y.size
    design = np.ones((n, 1)) if design is None else np.asarray(design, float)
    weights = np.ones(n) if weights is None else np.asarray(weights, float)
    comparisons = fit_comparisons(cell, design, weights, est, "ddd", names)
    att, total_inf, parts = ddd_estimate(delta_y, comparisons, est, "ddd", names)
    components = [(f"vs {CELLS[c.code]}", value) for c, value in zip(comparisons, parts)]
    if clusters is None:
        se = float(np.std(total_inf, ddof=1) / math.sqrt(n))
    else:
        _, codes = np.unique(clusters, return_inverse=True)
        sums = np.bincount(codes.ravel(), weights=total_inf)
        g = sums.size
        se = float(math.sqrt(g / (g - 1.0) * float(sums @ sums)) / n)
    return float(att), se, components, total_inf


def fit_ddd_panel(panel: DidPanel, *, partition: str, est: str = "dr", alpha: float = 0.05, bootstrap: bool = False,
                  biters: int = 999, seed: int | None = None) -> TripleResult:
    """Two-period DDD on a prepared panel: ``S`` from the cohort (enabled in the second period),
    ``Q`` from the ``partition`` column (0/1, constant within unit); ``bootstrap`` draws from
    ``rng(seed, "ddd-multiplier")``."""
    frame = panel.frame
    q = unit_partition(panel, partition)
    times = np.sort(frame["_time"].unique())
    if times.size != 2:
        raise InputError(f"ddd: fit_ddd_panel takes two periods; '{panel.time}' has {times.size}")
    cohorts = set(frame["_cohort"].unique()) - {0.0}
    if cohorts - {float(times[1])}:
        raise InputError(f"ddd: with two periods the enabled group must start treatment in the second period "
                         f"{times[1]:g}; cohort(s) {sorted(cohorts)} found")
    codes, uniques = pd.factorize(frame["_unit"], sort=False)
    n_units = uniques.size
    is_pre = frame["_time"].to_numpy() == times[0]
    counts_pre = np.bincount(codes[is_pre], minlength=n_units)
    counts_post = np.bincount(codes[~is_pre], minlength=n_units)
    if np.any(counts_pre != 1) or np.any(counts_post != 1):
        raise InputError("ddd: the panel must be balanced over the two periods (a unit misses a period)")
    pre_rows = np.empty(n_units, dtype=np.int64)
    post_rows = np.empty(n_units, dtype=np.int64)
    pre_rows[codes[is_pre]] = np.flatnonzero(is_pre)
    post_rows[codes[~is_pre]] = np.flatnonzero(~is_pre)
    if np.any(q[pre_rows] != q[post_rows]):
        raise InputError(f"ddd: partition column '{partition}' varies within a unit")
    y_all = frame["_y"].to_numpy(dtype=float)
    delta_y = y_all[post_rows] - y_all[pre_rows]
    enabled = (frame["_cohort"].to_numpy()[pre_rows] == times[1]).astype(int)
    cell = subgroups(enabled, q[pre_rows])
    design = None
    if panel.covariates:
        design = np.column_stack([np.ones(n_units), frame[list(panel.covariates)].to_numpy(dtype=float)[pre_rows]])
    weights = frame[panel.weights].to_numpy(dtype=float)[pre_rows] if panel.weights else None
    clusters = None
    column = one_cluster(panel.cluster, "triple differences")
    if column is not None:
        clusters = frame[column].to_numpy()[pre_rows]
    att, se, comps, inf = estimate_ddd_arrays(delta_y, cell, design, weights, est, clusters, tuple(panel.covariates))
    critical_value = None
    if bootstrap:
        cluster_codes = None if clusters is None else np.unique(clusters, return_inverse=True)[1].ravel()
        draws = multiplier_draws(inf[:, None], n_units, cluster_codes=cluster_codes, biters=int(biters), seed=seed,
                                 purpose="ddd-multiplier")
        critical_value = sup_t_critical_value(draws, np.array([se]), alpha)
    counts = {int(k): int(v) for k, v in zip(*np.unique(cell, return_counts=True))}
    table = pd.DataFrame(comps, columns=["comparison", "estimate"])
    return TripleResult(estimate=att, std_error=se, alpha=alpha, components=table, counts=counts, influence=inf,
                        n_units=int(delta_y.size), critical_value=critical_value)


def check_ddd_options(partition: str | None, control: str, base_period: str, alpha: float, biters: int) -> str:
    """The partition column name; InputError for a missing partition or an invalid option."""
    if partition is None:
        raise InputError("ddd: give partition='column' (0/1 eligibility within the enabled group)")
    if control not in CONTROLS:
        raise InputError(f"control must be one of {CONTROLS}, got {control!r}")
    if base_period not in BASE_PERIODS:
        raise InputError(f"base_period must be one of {BASE_PERIODS}, got {base_period!r}")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    if int(biters) < 1:
        raise InputError(f"biters must be a positive integer, got {biters!r}")
    return partition


class TripleEstimator(DidEstimator):
    """Doubly robust triple differences: two periods (:func:`fit_ddd_panel`) or staggered adoption
    (:func:`impactkit.did.triple_staggered.fit_ddd_staggered`).

    Options: ``partition`` (the 0/1 eligibility column, required), ``covariates``, ``weights``,
    ``cluster``, ``est`` (``"dr"``, ``"ipw"``, ``"reg"``), ``control`` (``"never"`` or
    ``"notyet"``; staggered only), ``base_period`` (``"varying"`` or ``"universal"``; staggered
    only; moderndid and R ``triplediff`` default to ``"universal"``, impactkit keeps ``did()``'s
    ``"varying"`` for every method), ``alpha``, ``bootstrap``, ``biters``, ``seed``.
    """

    name = "ddd"
    label = "Triple differences (doubly robust)"
    reference = "Ortiz-Villavicencio & Sant'Anna (2025), arXiv:2505.09942, eq. 3.5 and 4.8-4.12"
    options = {"covariates": None, "cluster": None, "weights": None, "est": "dr", "alpha": 0.05, "partition": None,
               "control": "never", "base_period": "varying", "bootstrap": False, "biters": 999, "seed": None}
    has_event_study = True

    def fit(self, panel: DidPanel, *, partition: str | None = None, est: str = "dr", alpha: float = 0.05,
            control: str = "never", base_period: str = "varying", bootstrap: bool = False, biters: int = 999,
            seed: int | None = None, **_: object) -> DidResult:
        """DDD on ``panel``; ``partition`` names the 0/1 eligibility column. Two periods with one
        cohort enabled in the second give :class:`TripleResult`; more periods or cohorts give
        :class:`TripleGTResult` (ATT(g,t), aggregations)."""
        partition = check_ddd_options(partition, control, base_period, alpha, biters)
        if panel.frame["_time"].nunique() == 2:
            return fit_ddd_panel(panel, partition=partition, est=est, alpha=alpha, bootstrap=bootstrap,
                                 biters=biters, seed=seed)
        return fit_ddd_staggered(panel, partition=partition, est=est, alpha=alpha, control=control,
                                 base_period=base_period, bootstrap=bootstrap, biters=biters, seed=seed)


__all__ = ["TripleEstimator", "TripleResult", "TripleGTResult", "estimate_ddd_arrays", "fit_ddd_panel",
           "check_ddd_options"]
