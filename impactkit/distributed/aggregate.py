"""Aggregation of reduced ATT(g,t) as R ``did::aggte`` (Callaway & Sant'Anna 2021, Sec. 3.1).

The aggregate's influence function is ``sum_k w_k psi_k + sum_k ATT_k psi(w_k)``; the second
term (the estimated cohort shares ``P(G=g)``) is, per unit, ``a_ik / T - (sum_k a_ik) s_k / T^2``
with ``a_ik = w_i 1{G_i = g_k}`` (the ``- s_k`` centring of R's ``wif`` cancels exactly), which
is linear in ``a_i``. Summed over the units of a (cluster, cohort) pseudo-unit it only needs
that pseudo-unit's weight sum, so :func:`impactkit.did.aggregate.share_weighted_rows` and
:func:`~impactkit.did.aggregate.combine` run unchanged on the reduced rows, with the cohort
shares ``s_k`` taken from the true ``n`` (not from the number of pseudo-units).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.aggregate import ROW_COLUMN, AggregateResult, aggregate_att_gt
from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.errors import EstimationError

def aggregate_reduced(result, kind: str, balance_e: int | None = None, min_e: float = -np.inf,
                      max_e: float = np.inf) -> AggregateResult:
    """Aggregate a :class:`impactkit.distributed.cs.ReducedCSResult` (``simple``, ``dynamic``,
    ``group`` or ``calendar``); same numbers as :func:`impactkit.did.aggregate.aggregate_cs`."""
    table = result.att_gt
    att = table["estimate"].to_numpy(dtype=float)
    cell_group = table["group"].to_numpy(dtype=float)
    cell_time = table["time"].to_numpy(dtype=float)
    inf, periods = result.influence, result.periods
    unit_cohort, unit_weights = result.unit_cohort, result.unit_weights
    group_share = np.array([result.group_share[float(g)] for g in np.unique(cell_group)])
    agg = aggregate_att_gt(att, inf, cell_group, cell_time, unit_cohort, unit_weights, periods, kind,
                           balance_e=balance_e, min_e=min_e, max_e=max_e, group_share=group_share)
    est, influence, row_est, row_cohorts = agg.estimate, agg.influence, agg.row_estimates, agg.row_cohorts
    values, overall_cohorts = agg.row_values, agg.overall_cohorts
    rows_inf = agg.row_influence
    n, clusters = result.n_units, result.cluster_codes
    z = norm.ppf(1.0 - result.alpha / 2.0)
    se = float(influence_se(influence[:, None], n, clusters)[0])
    if se <= 0:
        raise EstimationError(f"{kind} aggregate has zero standard error")
    count = lambda cohorts: int(sum(result.cohort_counts.get(float(c), 0) for c in cohorts))  # noqa: E731
    rows = pd.DataFrame()
    critical_value = None
    if kind != "simple":
        row_est_a = np.array(row_est)
        row_se = influence_se(rows_inf, n, clusters)
        with np.errstate(divide="ignore", invalid="ignore"):
            row_p = np.where(row_se > 0, 2.0 * norm.sf(np.abs(row_est_a / np.where(row_se > 0, row_se, 1.0))), np.nan)
        rows = pd.DataFrame({ROW_COLUMN[kind]: np.array(values, dtype=float) if kind == "dynamic" else np.array(values),
                             "estimate": row_est_a, "std_error": row_se, "conf_low": row_est_a - z * row_se,
                             "conf_high": row_est_a + z * row_se, "p_value": row_p,
                             "n": [count(c) for c in row_cohorts]})
        if result.options.get("bootstrap"):
            draws = multiplier_draws(rows_inf, n, cluster_codes=clusters, biters=result.options["biters"],
                                     seed=result.options["seed"], purpose=f"cs-multiplier-aggregate-{kind}")
            critical_value = sup_t_critical_value(draws, row_se, result.alpha)
    return AggregateResult(kind=kind, estimate=est, std_error=se, conf_low=est - z * se, conf_high=est + z * se,
                           p_value=float(2.0 * norm.sf(abs(est / se))), n=count(overall_cohorts), rows=rows,
                           alpha=result.alpha, critical_value=critical_value, influence=influence,
                           row_influence=rows_inf if kind != "simple" else None)
