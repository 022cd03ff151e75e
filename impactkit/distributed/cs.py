"""Callaway & Sant'Anna (2021) on Dask: cell statistics, distributed IRLS, reduced influence functions.

Same estimand, conventions and numbers as :func:`impactkit.did.cs.estimate_cs` (Callaway &
Sant'Anna 2021, *J. Econometrics* 225(2), eq. 2.6-2.8; Sant'Anna & Zhao 2020, *J. Econometrics*
219(1): doubly robust eq. 3.1, normalized IPW eq. 2.4, outcome regression eq. 2.2 for balanced
panels; on the observed rows of unbalanced panels, as R ``did`` with ``allow_unbalanced_panel``,
the repeated-cross-section doubly robust eq. 3.4, normalized IPW eq. 2.5 and outcome regression
eq. 2.3). ``control="notyet"`` without never-treated units follows R ``did``: the periods from the
last cohort's treatment on are dropped and that cohort is the comparison group. Every ingredient
of those estimators is a sum over the units (or rows) of a cell, so with every unit in one partition:

1. each partition becomes a *unit block* (unit x period outcome matrix, cohort, weight, cluster,
   covariates), kept in worker memory;
2. per cell, the partitions return counts, weight sums and the Gram matrices of the outcome
   regressions (``X'W X``, ``X'W y`` on comparison / treated units);
3. the propensity-score logit is fitted by distributed iteratively reweighted least squares
   (Newton-Raphson, the fixed point of R ``glm``): every iteration adds up per-partition
   gradients ``X'W(D - p)`` and Hessians ``X' diag(w p (1-p)) X``, all cells at once;
4. one pass adds up the weighted means and moment vectors of the estimator's influence
   function (Sant'Anna & Zhao 2020, proofs of Theorems 3.1 and 3.3);
5. one pass evaluates every unit's influence function and adds it up per (cluster, cohort):
   clustered standard errors, the aggregation of R ``did::aggte`` (its weight-estimation term
   needs only the cohort of each unit, see :mod:`impactkit.distributed.aggregate`) and the
   multiplier bootstrap all work on those sums, so nothing of size ``n_units`` leaves the workers.

Covariates may vary over time: as R ``did`` and the pandas engine, each panel 2x2 takes every unit's
covariates of the cell's earlier period (``min(t, base)``), the repeated-cross-section estimator each
row's own; a row with a missing covariate counts as unobserved. Units are partition-local, so this
costs nothing but the ``units x periods x covariates`` design array of each block.

Departures (said, not hidden): without a ``cluster`` the unit is the cluster, so the reduced
influence has one row per unit; messages about cohorts first treated after the last period (counted
as never treated, as on pandas) are not repeated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.cs import CONTROLS, CSResult, balanced_subpanel_notice
from impactkit.did.cs_cells import group_time_cells
from impactkit.did.drdid import ESTIMATORS
from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.distributed.cs_blocks import (CellSpec, CSColumns, attach_codes, block_facts, cohort_counts,
                                             drop_unobserved, keep_complete, last_cohort_as_control, periods_part,
                                             pseudo_weights, unit_block)
from impactkit.distributed.cs_params import check_sides, fit_logits, panel_params, rc_params
from impactkit.distributed.cs_passes import add_moments, pass_counts, pass_influence, pass_moments
from impactkit.distributed.reduce import add, map_blocks, partitions, persist
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

# (cluster, cohort) rows of the reduced influence function kept on the client (x cells x 8 bytes)
MAX_PSEUDO_UNITS = 2_000_000


@dataclass
class ReducedCSResult(CSResult):
    """A :class:`impactkit.did.cs.CSResult` whose influence rows are per-(cluster, cohort) sums.

    ``influence`` is ``n_pseudo x n_cells``; ``unit_cohort`` / ``unit_weights`` /
    ``cluster_codes`` describe those pseudo-units (their cohort, the sum of their units'
    weights, their cluster). Standard errors, the pre-trend test and the multiplier bootstrap
    only use cluster sums, so they equal the pandas engine's; :meth:`aggregate` uses
    :func:`impactkit.distributed.aggregate.aggregate_reduced` (the aggregation weights need the
    true ``n`` and cohort shares, kept here).
    """

    n_total: int = 0
    group_share: dict = field(default_factory=dict)
    cohort_counts: dict = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return int(self.n_total)

    def aggregate(self, kind: str = "simple", balance_e: int | None = None, min_e: float = -np.inf,
                  max_e: float = np.inf):
        from impactkit.distributed.aggregate import aggregate_reduced

        return aggregate_reduced(self, kind, balance_e=balance_e, min_e=min_e, max_e=max_e)


def estimate_cs(frame, *, y: str, unit: str, time: str, cohort: str, covariates: list[str] | None = None,
                control: str = "never", est: str = "dr", anticipation: int = 0, base_period: str = "varying",
                weights: str | None = None, cluster: str | None = None, alpha: float = 0.05,
                bootstrap: bool = False, biters: int = 999, seed: int | None = None,
                allow_unbalanced: bool = False) -> ReducedCSResult:
    """Callaway & Sant'Anna (2021) ATT(g,t) on a dask DataFrame; same numbers as
    :func:`impactkit.did.cs.estimate_cs` (see the module docstring for the passes and departures)."""
    from impactkit.distributed.data import by_unit

    if control not in CONTROLS or est not in ESTIMATORS:
        raise InputError(f"control must be one of {CONTROLS} and est one of {ESTIMATORS}")
    cols = CSColumns(y=y, unit=unit, time=time, cohort=cohort, covariates=tuple(covariates or ()),
                     weights=weights, cluster=cluster)
    frame = by_unit(frame[cols.needed()], unit)
    parts = partitions(frame)
    periods = np.unique(np.concatenate(map_blocks(periods_part, parts, cols)))
    blocks = persist([_delayed(unit_block)(p, cols, periods, anticipation) for p in parts])
    facts = map_blocks(block_facts, blocks)
    messages: list[str] = []
    n_early = sum(f["n_early"] for f in facts)
    if n_early:
        early = sorted({float(c) for f in facts for c in f["early_cohorts"]})
        text = (f"{n_early} unit(s) of cohort(s) {', '.join(f'{c:g}' for c in early)} have no "
                f"pre-treatment period and are dropped.")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
    all_missing = np.logical_and.reduce([f["all_missing"] for f in facts])
    if all_missing.any():
        raise InputError(f"outcome '{y}' is missing for every unit in {time} "
                         f"{', '.join(f'{p:g}' for p in periods[all_missing])}")
    cohorts = _cohorts_with_treated(facts, cohort)
    if not np.any(cohorts == 0):   # R did: the last cohort is the comparison group until it is treated
        if control == "never":
            raise EstimationError(f"no never-treated units (column '{cohort}' is never 0 or missing) to serve "
                                  "as controls; use control='notyet'")
        last = cohorts.max()
        keep = periods < last - anticipation
        if keep.sum() < 2 or not np.any((cohorts > 0) & (cohorts < last)):
            raise EstimationError(f"no never-treated units and no not-yet-treated controls: every unit is treated "
                                  f"by {periods[0]:g} or only one cohort ({last:g}) exists")
        periods = periods[keep]
        blocks = persist([_delayed(last_cohort_as_control)(b, keep, last, periods[-1]) for b in blocks])
        facts = map_blocks(block_facts, blocks)
        messages.append(f"No never-treated units: periods from {last - anticipation:g} on are dropped and cohort "
                        f"{last:g} is the comparison group.")
        _cohorts_with_treated(facts, cohort)
    unbalanced = sum(f["incomplete"] for f in facts) > 0
    if unbalanced and not allow_unbalanced:  # R did's default, as the pandas engine: the balanced sub-panel
        n_incomplete, n_units = sum(f["incomplete"] for f in facts), sum(f["n"] for f in facts)
        text = balanced_subpanel_notice(n_incomplete, n_units, y, unit)
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
        blocks = persist([_delayed(keep_complete)(b) for b in blocks])
        facts = map_blocks(block_facts, blocks)
        unbalanced = False
    if unbalanced:
        n_incomplete = sum(f["incomplete"] for f in facts)
        text = (f"Unbalanced panel: {n_incomplete} unit(s) miss some period; each ATT(g,t) uses the "
                "repeated-cross-section estimator on the observed rows, clustered by unit (R did's "
                "allow_unbalanced_panel).")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
        never_observed = sum(f["never_observed"] for f in facts)
        if never_observed:
            messages.append(f"{never_observed} unit(s) without any complete row are dropped.")
            blocks = persist([_delayed(drop_unobserved)(b) for b in blocks])
            facts = map_blocks(block_facts, blocks)
    n_total = sum(f["n"] for f in facts)
    cluster_labels = np.unique(np.concatenate([np.asarray(f["clusters"], dtype=object) for f in facts]))
    cohort_values = np.unique(np.concatenate([f["cohorts"] for f in facts]))
    blocks = persist([_delayed(attach_codes)(b, cluster_labels, cohort_values) for b in blocks])
    n_pseudo = len(cluster_labels) * len(cohort_values)
    if n_pseudo > MAX_PSEUDO_UNITS:
        raise InputError(f"{len(cluster_labels)} clusters x {len(cohort_values)} cohorts: the reduced influence "
                         f"function would hold {n_pseudo} rows per cell; give a coarser 'cluster' (without one, "
                         f"each {unit} is its own cluster)")
    groups = cohort_values[cohort_values > 0]

    cells_all = group_time_cells(groups, periods, anticipation, base_period)
    specs = [CellSpec(c.group, c.post, c.base, None if control == "never" else
                      float(periods[max(c.post, c.base)] + anticipation)) for c in cells_all]
    panel = not unbalanced
    labels = [f"group {c.group:g}, time {periods[c.post]:g}" for c in cells_all]
    counts = add(map_blocks(pass_counts, blocks, specs, panel))
    active = []
    for j, (cell, c) in enumerate(zip(cells_all, counts)):
        if cell.reference:
            active.append(False)
            continue
        if panel:
            ok = check_sides(c["n_treat"], c["n_cont"], labels[j], control, "")
        else:
            ok = (check_sides(c["n_treat_post"], c["n_cont_post"], labels[j], control, f" in {periods[cell.post]:g}")
                  and check_sides(c["n_treat_base"], c["n_cont_base"], labels[j], control,
                                   f" in base {periods[cell.base]:g}"))
        if not ok:
            text = (f"ATT({labels[j]}) skipped: no unit of the cohort is observed in "
                    f"{periods[cell.base]:g} or in {periods[cell.post]:g}.")
            warnings.warn(text, ImpactkitWarning, stacklevel=2)
            messages.append(text)
        active.append(ok)
    needs_ps = est in ("dr", "ipw")
    betas = fit_logits(blocks, specs, panel, counts, active, labels) if needs_ps else [None] * len(specs)
    params = [None if not on else (panel_params(est, c, b, None) if panel else rc_params(est, c, b, None, lab))
              for on, c, b, lab in zip(active, counts, betas, labels)]
    moments = add_moments(map_blocks(pass_moments, blocks, specs, panel, params))
    params = [None if p is None else (panel_params(est, c, b, m) if panel else rc_params(est, c, b, m, lab))
              for p, c, b, m, lab in zip(params, counts, betas, moments, labels)]
    influence = add(map_blocks(pass_influence, blocks, specs, panel, params, n_pseudo, n_total))

    keep = np.array([a or cell.reference for a, cell in zip(active, cells_all)])   # skipped cells dropped
    cells = [c for c, k in zip(cells_all, keep) if k]
    estimates = np.array([0.0 if p is None else p["att"] for p, k in zip(params, keep) if k])
    # a reference cell counts its cohort and comparison units, observed or not (as the pandas engine)
    sizes = np.array([int(c["cell_units"] if cell.reference else c["units"])
                      for c, cell, k in zip(counts, cells_all, keep) if k], dtype=np.int64)
    influence = influence[:, keep]
    pseudo_cluster = np.repeat(np.arange(len(cluster_labels)), len(cohort_values))
    pseudo_cohort = np.tile(cohort_values, len(cluster_labels))
    pseudo_weight = add(map_blocks(pseudo_weights, blocks, n_pseudo))
    se = influence_se(influence, n_total, pseudo_cluster)
    z = norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = np.where(se > 0, 2.0 * norm.sf(np.abs(estimates / np.where(se > 0, se, 1.0))), np.nan)
    att_gt = pd.DataFrame({"group": [c.group for c in cells], "time": [float(periods[c.post]) for c in cells],
                           "estimate": estimates, "std_error": se, "conf_low": estimates - z * se,
                           "conf_high": estimates + z * se, "p_value": p_value, "n": sizes})
    if np.all(periods == np.round(periods)) and np.all(att_gt["group"] == np.round(att_gt["group"])):
        att_gt = att_gt.astype({"group": np.int64, "time": np.int64})
    options = {"y": y, "unit": unit, "time": time, "cohort": cohort, "covariates": list(cols.covariates),
               "control": control, "est": est, "anticipation": int(anticipation), "base_period": base_period,
               "weights": weights, "cluster": cluster, "bootstrap": bool(bootstrap), "biters": int(biters),
               "seed": seed, "allow_unbalanced": allow_unbalanced, "engine": "dask"}
    critical_value = None
    if bootstrap:
        draws = multiplier_draws(influence, n_total, cluster_codes=pseudo_cluster, biters=int(biters), seed=seed,
                                 purpose="cs-multiplier")
        critical_value = sup_t_critical_value(draws, se, alpha)
    weight_by_cohort = {float(g): float(pseudo_weight[pseudo_cohort == g].sum()) for g in cohort_values}
    counts_by_cohort = add(map_blocks(cohort_counts, blocks, cohort_values))
    return ReducedCSResult(att_gt=att_gt, influence=influence, unit_cohort=pseudo_cohort,
                           unit_weights=pseudo_weight, cluster_codes=pseudo_cluster, periods=periods.copy(),
                           alpha=float(alpha), options=options, critical_value=critical_value, messages=messages,
                           n_total=n_total,
                           group_share={g: w / n_total for g, w in weight_by_cohort.items()},
                           cohort_counts={float(g): int(n) for g, n in zip(cohort_values, counts_by_cohort)})



def _cohorts_with_treated(facts: list[dict], cohort: str) -> np.ndarray:
    cohorts = np.unique(np.concatenate([f["cohorts"] for f in facts]))
    if not np.any(cohorts > 0):
        raise EstimationError(f"no treated units: column '{cohort}' has no cohort with a pre-treatment period")
    return cohorts


def _delayed(func):
    from dask import delayed

    return delayed(func, pure=True)
