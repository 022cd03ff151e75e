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

from impactkit.did.aggregate import ROW_COLUMN, AggregateResult, combine, share_influence, share_weighted_rows
from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.errors import EstimationError, InputError

KINDS = ("simple", "dynamic", "group", "calendar")


def aggregate_reduced(result, kind: str, balance_e: int | None = None, min_e: float = -np.inf,
                      max_e: float = np.inf) -> AggregateResult:
    """Aggregate a :class:`impactkit.distributed.cs.ReducedCSResult` (``simple``, ``dynamic``,
    ``group`` or ``calendar``); same numbers as :func:`impactkit.did.aggregate.aggregate_cs`."""
    if kind not in KINDS:
        raise InputError(f"aggregation kind must be one of {KINDS}, got {kind!r}")
    table = result.att_gt
    att = table["estimate"].to_numpy(dtype=float)
    cell_group = table["group"].to_numpy(dtype=float)
    cell_time = table["time"].to_numpy(dtype=float)
    inf, periods = result.influence, result.periods
    unit_cohort, unit_weights = result.unit_cohort, result.unit_weights
    group_list = np.unique(cell_group)
    group_share = np.array([result.group_share[float(g)] for g in group_list])
    cell_share = group_share[np.searchsorted(group_list, cell_group)]
    post = (cell_group <= cell_time) & (cell_time <= cell_group + max_e)
    rows_inf = None
    if kind == "simple":
        keepers = np.flatnonzero(post)
        if keepers.size == 0:
            raise EstimationError("no post-treatment ATT(g,t) to aggregate")
        wif = share_influence(keepers, cell_share, unit_weights, unit_cohort, cell_group)
        est, influence = combine(att, inf, keepers, cell_share[keepers] / cell_share[keepers].sum(), wif)
        overall_cohorts, values, row_est, row_cohorts = np.unique(cell_group[keepers]), [], [], []
    elif kind == "group":
        values, row_est, row_inf, row_cohorts, shares = [], [], [], [], []
        for g, share in zip(group_list, group_share):
            keepers = np.flatnonzero((cell_group == g) & post)
            if keepers.size == 0:
                continue
            e, i = combine(att, inf, keepers, np.full(keepers.size, 1.0 / keepers.size))
            values.append(g), row_est.append(e), row_inf.append(i), shares.append(share), row_cohorts.append(np.array([g]))
        rows_inf, shares_a = np.column_stack(row_inf), np.array(shares)
        all_rows = np.arange(len(values))
        wif = share_influence(all_rows, shares_a, unit_weights, unit_cohort, np.array(values))
        est, influence = combine(np.array(row_est), rows_inf, all_rows, shares_a / shares_a.sum(), wif)
        overall_cohorts = np.array(values)
    else:
        if kind == "calendar":
            selections = ((t, (cell_time == t) & (cell_group <= t)) for t in periods[periods >= group_list.min()])
        else:
            event_time = cell_time - cell_group
            include = np.ones(len(att), dtype=bool)
            e_values = np.unique(event_time)
            if balance_e is not None:
                include = (periods[-1] - cell_group) >= balance_e
                e_values = np.unique(event_time[include])
                e_values = e_values[(e_values <= balance_e) & (e_values >= balance_e - periods[-1] + periods[0])]
            e_values = e_values[(e_values >= min_e) & (e_values <= max_e)]
            selections = ((e, (event_time == e) & include) for e in e_values)
        values, row_est, row_inf, row_cohorts = share_weighted_rows(selections, att, inf, cell_share, cell_group,
                                                                    unit_weights, unit_cohort)
        if not values:
            raise EstimationError(f"no ATT(g,t) to aggregate ({kind})")
        rows_inf = np.column_stack(row_inf)
        values_a = np.array(values, dtype=float)
        chosen = np.arange(len(values)) if kind == "calendar" else np.flatnonzero(values_a >= 0)
        if chosen.size == 0:
            raise EstimationError("no event time >= 0 to aggregate (check min_e / max_e / balance_e)")
        est, influence = combine(np.array(row_est), rows_inf, chosen, np.full(chosen.size, 1.0 / chosen.size))
        overall_cohorts = np.unique(np.concatenate([row_cohorts[i] for i in chosen]))
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
