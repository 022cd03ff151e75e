"""Staggered triple differences: ATT(g,t) for every enabling cohort and period.

Reference: Ortiz-Villavicencio, M. & Sant'Anna, P. H. C. (2025), "Better understanding triple
differences estimators", arXiv:2505.09942, Sec. 4: eq. (4.8) for one comparison cohort, eq.
(4.11)-(4.12) for the GMM combination of several; aggregation as Callaway & Sant'Anna (2021,
Sec. 3.1), which R ``triplediff::agg_ddd`` follows.

For cohort ``g`` (units whose group is enabled from period ``g``) and period ``t``, ATT(g,t) is the
DDD of :mod:`impactkit.did.triple_cells` between ``t`` and a base period: ``g - 1`` (the last
period before ``g``) for ``t >= g``; for ``t < g`` the period before ``t`` (``base_period=
"varying"``) or ``g - 1`` (``"universal"``, which also reports the reference cell ``t = g - 1``
fixed at 0). The comparison units are the never-enabled (``control="never"``) or, in addition,
the cohorts not yet enabled by ``max(t, base)`` (``"notyet"``). When the comparison units come
from several cohorts, one DDD per comparison cohort is combined by GMM (eq. 4.11-4.12).

Influence functions are scaled to all ``n`` units (``n / n_cell`` on the cell's units, zero
elsewhere), so standard errors (clustered by Liang-Zeger sums), aggregations
(:func:`impactkit.did.aggregate.aggregate_att_gt`: simple, dynamic, group, calendar) and the
multiplier bootstrap (:mod:`impactkit.did.multiplier`, sup-t bands) need no refit.

Conventions and departures from moderndid 0.2.0 ``ddd`` / ``agg_ddd`` (the peer in the tests):

- the panel must be balanced: by default units missing an outcome or covariate in some period are
  dropped with a warning (as CS does, R ``did``'s default); moderndid uses, cell by cell, the units
  observed in both periods;
- covariates are taken at the earlier period of each cell (as CS); moderndid takes period ``t``.
  They coincide for time-invariant covariates;
- cohort conventions are those of CS (:func:`impactkit.did.cs_panel.prepare_cohorts`): a cohort after the
  last period is never enabled, a cohort without a pre-period is dropped with a warning, and
  ``control="notyet"`` without never-enabled units keeps the periods before the last cohort;
- sampling weights enter every 2x2 and the cohort shares; moderndid's multi-period ``ddd``
  ignores ``weightsname``;
- the standard error of a GMM-combined ATT(g,t) is that of its influence function,
  ``sqrt(w' Omega w / n_cell)``; moderndid reports ``sqrt(1 / (n 1' Omega^-1 1))``, smaller by the
  factor ``sqrt(n_cell / n)`` (its aggregates use the influence function, as here);
- aggregations include the estimation effect of the cohort shares in the simple, dynamic and
  calendar influence functions, as R ``triplediff`` and R ``did`` do; moderndid 0.2.0 omits it
  there (its estimates are the same, its standard errors differ);
- analytic standard errors are clustered (``cluster``); the bootstrap gives only the uniform
  sup-t critical value (Mammen multipliers per cluster), as impactkit's CS does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.base import DidPanel
from impactkit.did.cs import ATT_GT_COLUMNS, CSResult, one_cluster
from impactkit.did.cs_panel import balance_panel, prepare_cohorts
from impactkit.did.cs_cells import group_time_cells
from impactkit.did.cs_panel import PanelArrays, build_panel_arrays
from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.did.triple_cells import (Comparison, ddd_estimate, fit_comparisons, gmm_combine, subgroups,
                                        unit_partition)
from impactkit.errors import EstimationError, InputError


@dataclass
class TripleGTResult(CSResult):
    """Staggered triple differences: ATT(g,t) with influence functions, aggregated as CS.

    The same views as :class:`impactkit.did.cs.CSResult`: ``att()`` (simple aggregate),
    ``event_study()`` (dynamic aggregate), ``pretrend()`` (Wald test of the pre-treatment
    ATT(g,t)), ``aggregate(kind)``, ``tidy()`` (the ATT(g,t) table), ``band()``, ``plot()``.
    """

    title: ClassVar[str] = "Staggered triple differences (Ortiz-Villavicencio & Sant'Anna 2025)"
    method: ClassVar[str] = "ddd"
    source: ClassVar[str] = "Triple differences"
    bootstrap_purpose: ClassVar[str] = "ddd-multiplier"

    def notes(self) -> list[str]:
        o = self.options
        lines = [f"Estimator: DDD (Ortiz-Villavicencio & Sant'Anna 2025, eq. 4.8), 2x2s by {o['est']} "
                 f"(Sant'Anna & Zhao 2020); eligibility partition: {o['partition']}; comparison: "
                 f"{o['control']}-enabled cohorts (several combined by GMM, eq. 4.12); base period: "
                 f"{o['base_period']}.",
                 f"Units: {self.n_units}; covariates: {', '.join(o['covariates']) or 'none'}; "
                 f"weights: {o['weights'] or 'none'}.",
                 f"Standard errors: influence function{', clustered by ' + o['cluster'] if o['cluster'] else ''}; "
                 f"{int(round((1 - self.alpha) * 100))}% pointwise intervals."]
        if self.critical_value is not None:
            lines.append(f"Uniform band: multiplier bootstrap ({o['biters']} draws, seed {o['seed']}), "
                         f"sup-t critical value {self.critical_value:.4f}.")
        return lines + list(self.messages)


def partition_by_unit(panel: DidPanel, partition: str, unit_ids: np.ndarray) -> np.ndarray:
    """The partition of each unit of ``unit_ids`` (sorted as :func:`build_panel_arrays` sorts them);
    InputError naming rows when it varies within a unit."""
    q = unit_partition(panel, partition)
    codes = pd.Index(unit_ids).get_indexer(panel.frame["_unit"])
    low = np.full(unit_ids.size, 2)
    high = np.full(unit_ids.size, -1)
    np.minimum.at(low, codes, q)
    np.maximum.at(high, codes, q)
    varying = np.flatnonzero(low != high)
    if varying.size:
        rows = np.flatnonzero(codes == varying[0])[:5]
        raise InputError(f"ddd: partition column '{partition}' varies within a unit for {varying.size} unit(s) "
                         f"(first: rows {', '.join(str(r) for r in rows)})")
    return low


def _balanced(arrays: PanelArrays, panel: DidPanel, messages: list[str]) -> PanelArrays:
    """``arrays`` restricted to the units observed (outcome and covariates) in every period; a warning
    and a message say how many were dropped (:func:`impactkit.did.cs_panel.balance_panel`)."""
    observed = np.isfinite(arrays.outcome)
    if arrays.design_time_invariant:
        design_observed = np.all(np.isfinite(arrays.design[0]), axis=1)[:, None] & np.ones_like(observed)
    else:
        design_observed = np.all(np.isfinite(arrays.design), axis=2).T
    complete = observed & design_observed
    if complete.all():
        return arrays
    return balance_panel(arrays, complete, panel.y, panel.unit, messages)[0]


class _Samples:
    """Nuisance fits per DDD sample, fitted once and shared by every period of the sample.

    A sample is the cohort ``g`` and its comparison cohorts (and the covariate period when covariates
    vary over time); :meth:`get` returns the sample's unit indices and its three fitted
    :class:`~impactkit.did.triple_cells.Comparison` s.
    """

    def __init__(self, arrays: PanelArrays, eligible: np.ndarray, est: str):
        self.arrays, self.eligible, self.est = arrays, eligible, est
        self.cache: dict[tuple, tuple[np.ndarray, list[Comparison]]] = {}

    def get(self, g: float, comparison_cohorts: tuple[float, ...], cov_period: int,
            label: str) -> tuple[np.ndarray, list[Comparison]]:
        arrays = self.arrays
        key = (g, comparison_cohorts, None if arrays.design_time_invariant else cov_period)
        if key not in self.cache:
            treated = arrays.cohort == g
            index = np.flatnonzero(treated | np.isin(arrays.cohort, comparison_cohorts))
            cell = subgroups(treated[index].astype(int), self.eligible[index])
            design = arrays.design_at(cov_period)[index]
            self.cache[key] = index, fit_comparisons(cell, design, arrays.weights[index], self.est, label,
                                                     arrays.covariate_names)
        return self.cache[key]


def _cell_att(samples: _Samples, outcome_by_period: np.ndarray, g: float, p: int, b: int,
              comparison_cohorts: np.ndarray, label: str) -> tuple[float, np.ndarray, np.ndarray]:
    """One ATT(g,t) between period index ``p`` and base ``b``.

    One comparison cohort: the DDD of eq. (4.8). Several: one DDD per comparison cohort, each
    influence function rescaled to the cell's units (``n_cell / n_c``), combined by
    :func:`~impactkit.did.triple_cells.gmm_combine` (eq. 4.11-4.12). Returns the estimate, the
    indices of the cell's units and the influence function over them (scaled to ``n_cell``).
    """
    arrays, est = samples.arrays, samples.est
    cov_period = min(p, b)
    names = arrays.covariate_names
    if comparison_cohorts.size == 1:
        index, comparisons = samples.get(g, (float(comparison_cohorts[0]),), cov_period, label)
        delta = outcome_by_period[p][index] - outcome_by_period[b][index]
        att, inf, _ = ddd_estimate(delta, comparisons, est, label, names)
        return att, index, inf
    index = np.flatnonzero((arrays.cohort == g) | np.isin(arrays.cohort, comparison_cohorts))
    position = np.full(arrays.n_units, -1)
    position[index] = np.arange(index.size)
    estimates = np.empty(comparison_cohorts.size)
    local = np.zeros((index.size, comparison_cohorts.size))
    for k, c in enumerate(comparison_cohorts):
        what = f"{label} vs cohort {c:g}"
        sub, comparisons = samples.get(g, (float(c),), cov_period, what)
        delta = outcome_by_period[p][sub] - outcome_by_period[b][sub]
        estimates[k], inf, _ = ddd_estimate(delta, comparisons, est, what, names)
        local[position[sub], k] = (index.size / sub.size) * inf
    att, inf, _ = gmm_combine(estimates, local)
    return att, index, inf


def fit_ddd_staggered(panel: DidPanel, *, partition: str, est: str = "dr", alpha: float = 0.05,
                      control: str = "never", base_period: str = "varying", bootstrap: bool = False,
                      biters: int = 999, seed: int | None = None) -> TripleGTResult:
    """Staggered triple differences (Ortiz-Villavicencio & Sant'Anna 2025, Sec. 4) on a prepared panel.

    Parameters
    ----------
    panel : DidPanel
        The checked long panel (:meth:`impactkit.did.base.DidEstimator.prepare`); its cohort is the
        first period in which the unit's group is enabled (0 = never).
    partition : str
        The 0/1 eligibility column (constant within unit).
    est : {"dr", "ipw", "reg"}, default "dr"
        Sant'Anna & Zhao (2020) estimator of each 2x2.
    alpha : float, default 0.05
        1 - confidence level.
    control : {"never", "notyet"}, default "never"
        Comparison units: never-enabled, or also the cohorts not yet enabled (GMM over cohorts).
    base_period : {"varying", "universal"}, default "varying"
        Base period of the pre-treatment cells.
    bootstrap : bool, default False
        Multiplier bootstrap (Mammen weights, per cluster) for the uniform sup-t band, draws from
        ``rng(seed, "ddd-multiplier")``.
    biters : int, default 999
        Bootstrap draws.
    seed : int, optional
        Bootstrap seed.

    Returns
    -------
    TripleGTResult
        ATT(g,t) with analytic (clustered) standard errors and influence functions.

    Raises
    ------
    InputError
        A partition that is not 0/1 or varies within a unit; invalid columns.
    EstimationError
        No enabled or comparison units, an empty cell of a DDD sample, singular fits.
    """
    cluster = one_cluster(panel.cluster, "triple differences")
    arrays = build_panel_arrays(panel.frame, y="_y", unit="_unit", time="_time", cohort="_cohort",
                                covariates=list(panel.covariates), weights=panel.weights, cluster=cluster)
    eligible_all = partition_by_unit(panel, partition, arrays.unit_ids)
    all_ids = arrays.unit_ids
    messages: list[str] = []
    arrays = _balanced(arrays, panel, messages)
    arrays = prepare_cohorts(arrays, control, 0, panel.cohort or panel.treated or "cohort", messages)
    eligible = eligible_all[pd.Index(all_ids).get_indexer(arrays.unit_ids)]

    periods, n = arrays.periods, arrays.n_units
    groups = np.unique(arrays.cohort[arrays.cohort > 0])
    cells = group_time_cells(groups, periods, 0, base_period)
    outcome_by_period = np.ascontiguousarray(arrays.outcome.T)
    samples = _Samples(arrays, eligible, est)
    never = arrays.cohort == 0
    influence = np.zeros((n, len(cells)), order="F")
    estimates = np.zeros(len(cells))
    sizes = np.zeros(len(cells), dtype=np.int64)
    for j, cell in enumerate(cells):
        g, p, b = cell.group, cell.post, cell.base
        treated = arrays.cohort == g
        controls = never if control == "never" else never | ((arrays.cohort > periods[max(p, b)]) & ~treated)
        sizes[j] = int((treated | controls).sum())
        if cell.reference:
            continue
        label = f"ATT(group {g:g}, time {periods[p]:g})"
        if not controls.any():
            raise EstimationError(f"{label}: no {control}-enabled comparison units")
        att, index, inf = _cell_att(samples, outcome_by_period, g, p, b, np.unique(arrays.cohort[controls]), label)
        estimates[j] = att
        influence[index, j] = (n / index.size) * inf

    se = influence_se(influence, n, arrays.cluster_codes)
    z = norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = np.where(se > 0, 2.0 * norm.sf(np.abs(estimates / np.where(se > 0, se, 1.0))), np.nan)
    if base_period == "universal":
        messages.append("Universal base period: ATT(g, g - 1) is the reference, fixed at 0 (standard error 0).")
    att_gt = pd.DataFrame({"group": [c.group for c in cells], "time": [float(periods[c.post]) for c in cells],
                           "estimate": estimates, "std_error": se, "conf_low": estimates - z * se,
                           "conf_high": estimates + z * se, "p_value": p_value, "n": sizes})[list(ATT_GT_COLUMNS)]
    if np.all(periods == np.round(periods)) and np.all(att_gt["group"] == np.round(att_gt["group"])):
        att_gt = att_gt.astype({"group": np.int64, "time": np.int64})
    critical_value = None
    if bootstrap:
        draws = multiplier_draws(influence, n, cluster_codes=arrays.cluster_codes, biters=int(biters), seed=seed,
                                 purpose=TripleGTResult.bootstrap_purpose)
        critical_value = sup_t_critical_value(draws, se, alpha)
    options = {"y": panel.y, "unit": panel.unit, "time": panel.time, "cohort": panel.cohort, "partition": partition,
               "covariates": list(arrays.covariate_names), "control": control, "est": est, "anticipation": 0,
               "base_period": base_period, "weights": panel.weights, "cluster": cluster, "bootstrap": bool(bootstrap),
               "biters": int(biters), "seed": seed}
    return TripleGTResult(att_gt=att_gt, influence=influence, unit_cohort=arrays.cohort.copy(),
                          unit_weights=arrays.weights.copy(), cluster_codes=arrays.cluster_codes,
                          periods=periods.copy(), alpha=float(alpha), options=options,
                          critical_value=critical_value, messages=messages)


__all__ = ["TripleGTResult", "fit_ddd_staggered", "partition_by_unit"]
