"""Aggregation of group-time ATTs into summary parameters, as R ``did::aggte``.

Callaway & Sant'Anna (2021), *J. Econometrics* 225(2), Sec. 3.1, eq. (3.3)-(3.10):

- ``simple``:   ``sum_{g<=t} ATT(g,t) P(G=g) / sum_{g<=t} P(G=g)``;
- ``group``:    ``theta(g) = mean_{t>=g} ATT(g,t)`` (eq. 3.6), overall ``sum_g theta(g) P(G=g|G<=T)`` (eq. 3.7);
- ``calendar``: ``theta(t) = sum_{g<=t} ATT(g,t) P(G=g|G<=t)`` (eq. 3.8), overall ``mean_t theta(t)``;
- ``dynamic``:  ``theta(e) = sum_g 1{g+e<=T} ATT(g,g+e) P(G=g|G+e<=T)`` (eq. 3.4), overall
  ``mean_{e>=0} theta(e)``; ``balance_e`` keeps only cohorts observed ``balance_e`` periods
  after treatment (eq. 3.5).

The influence function of each aggregate is ``sum_k w_k psi_k + sum_k ATT_k psi(w_k)``, the
second term accounting for the estimated cohort shares ``P(G=g)`` (R ``did``'s ``wif``).
Cohort shares use the sampling weights: ``P(G=g) = mean_i w_i 1{G_i = g}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.errors import EstimationError, InputError
from impactkit.results import Result, to_plain

KINDS = ("simple", "group", "calendar", "dynamic")
ROW_COLUMN = {"group": "group", "calendar": "time", "dynamic": "event_time"}


def share_influence(keepers: np.ndarray, cell_share: np.ndarray, unit_weights: np.ndarray,
                    unit_cohort: np.ndarray, cell_group: np.ndarray) -> np.ndarray:
    """Influence of the normalized weights ``P(G=g_k) / sum_j P(G=g_j)`` over ``keepers`` (n x m).

    Parameters
    ----------
    keepers : numpy.ndarray
        Indices of the ATT(g,t) cells being averaged (m of them).
    cell_share : numpy.ndarray
        Cohort share ``P(G = g)`` of each cell's group, one per cell.
    unit_weights : numpy.ndarray
        Sampling weight of each unit (row of the influence functions).
    unit_cohort : numpy.ndarray
        Cohort (first treated period) of each unit.
    cell_group : numpy.ndarray
        Group (cohort) of each cell.

    Returns
    -------
    numpy.ndarray
        n x m influence of the estimated weights, one column per kept cell.
    """
    shares = cell_share[keepers]
    total = shares.sum()
    centered = (unit_weights[:, None] * (unit_cohort[:, None] == cell_group[keepers][None, :])) - shares[None, :]
    return centered / total - centered.sum(axis=1, keepdims=True) * (shares / total ** 2)[None, :]


def combine(att: np.ndarray, inf: np.ndarray, keepers: np.ndarray, weights: np.ndarray,
            weight_inf: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Weighted combination of estimates and its influence function.

    Parameters
    ----------
    att : numpy.ndarray
        Estimates, one per cell (or row).
    inf : numpy.ndarray
        Their influence functions, n x K.
    keepers : numpy.ndarray
        Indices of the estimates combined.
    weights : numpy.ndarray
        One weight per kept estimate (summing to one).
    weight_inf : numpy.ndarray, optional
        n x m influence of estimated weights (:func:`share_influence`), added as ``weight_inf @ att``.

    Returns
    -------
    estimate : float
    influence : numpy.ndarray
        Influence function of the combination, one value per unit.
    """
    estimate = float(att[keepers] @ weights)
    influence = inf[:, keepers] @ weights
    if weight_inf is not None:
        influence = influence + weight_inf @ att[keepers]
    return estimate, influence


@dataclass
class Aggregation:
    """Plain output of :func:`aggregate_att_gt`: overall and per-row estimates with influence functions."""

    estimate: float
    influence: np.ndarray
    row_values: np.ndarray
    row_estimates: np.ndarray
    row_influence: np.ndarray
    overall_cohorts: np.ndarray
    row_cohorts: list[np.ndarray]


def share_weighted_rows(selections, att: np.ndarray, inf: np.ndarray, cell_share: np.ndarray,
                        cell_group: np.ndarray, unit_weights: np.ndarray, unit_cohort: np.ndarray):
    """One aggregated row per ``(value, cell mask)`` in ``selections``: the ATT(g,t) of the
    selected cells averaged with group-share weights, with the extra influence term for the
    estimated shares (R ``did::aggte``'s calendar and dynamic rows). Empty masks are skipped.

    Returns ``(values, row_estimates, row_influences, row_cohorts)`` as lists.

    Parameters
    ----------
    selections : iterable of (value, numpy.ndarray)
        The row's value (a period or an event time) and a boolean mask over cells.
    att, inf : numpy.ndarray
        ATT(g,t) estimates and their n x K influence functions.
    cell_share, cell_group : numpy.ndarray
        Cohort share and group of each cell.
    unit_weights, unit_cohort : numpy.ndarray
        Sampling weight and cohort of each unit.
    """
    values, row_est, row_inf, row_cohorts = [], [], [], []
    for value, mask in selections:
        keepers = np.flatnonzero(mask)
        if keepers.size == 0:
            continue
        wif = share_influence(keepers, cell_share, unit_weights, unit_cohort, cell_group)
        est, influence = combine(att, inf, keepers, cell_share[keepers] / cell_share[keepers].sum(), wif)
        values.append(value), row_est.append(est), row_inf.append(influence)
        row_cohorts.append(np.unique(cell_group[keepers]))
    return values, row_est, row_inf, row_cohorts


def aggregate_att_gt(att: np.ndarray, inf: np.ndarray, cell_group: np.ndarray, cell_time: np.ndarray,
                     unit_cohort: np.ndarray, unit_weights: np.ndarray, periods: np.ndarray, kind: str,
                     balance_e: int | None = None, min_e: float = -np.inf,
                     max_e: float = np.inf, group_share: np.ndarray | None = None) -> Aggregation:
    """Aggregate ATT(g,t) (``att``, influence ``inf`` n x K) exactly as R ``did::aggte``.

    ``group_share`` (one per sorted group of ``cell_group``) defaults to the weighted cohort
    shares of the rows of ``inf``; the Dask engine passes the shares of the full sample because
    its rows are (cluster, cohort) pseudo-units (:mod:`impactkit.distributed.aggregate`).

    Parameters
    ----------
    att : numpy.ndarray
        ATT(g,t), one per cell.
    inf : numpy.ndarray
        Influence functions, n units x K cells.
    cell_group, cell_time : numpy.ndarray
        Group (cohort) and period of each cell.
    unit_cohort, unit_weights : numpy.ndarray
        Cohort and sampling weight of each unit (row of ``inf``).
    periods : numpy.ndarray
        Sorted periods of the panel (rows of the calendar aggregation).
    kind : {"simple", "group", "calendar", "dynamic"}
        The aggregation of R ``did::aggte``.
    balance_e : int, optional
        Dynamic only: keep the cohorts observed for ``balance_e`` periods after treatment.
    min_e, max_e : float
        Event-time window (dynamic rows; ``max_e`` also bounds the post cells of every kind).
    group_share : numpy.ndarray, optional
        Cohort shares, one per sorted group.

    Returns
    -------
    Aggregation
        Overall estimate and per-row estimates, each with its influence function.
    """
    if kind not in KINDS:
        raise InputError(f"aggregation kind must be one of {KINDS}, got {kind!r}")
    group_list = np.unique(cell_group)
    if group_share is None:
        group_share = np.array([np.mean(unit_weights * (unit_cohort == g)) for g in group_list])
    cell_share = group_share[np.searchsorted(group_list, cell_group)]
    post = (cell_group <= cell_time) & (cell_time <= cell_group + max_e)
    empty = np.zeros((inf.shape[0], 0))

    if kind == "simple":
        keepers = np.flatnonzero(post)
        if keepers.size == 0:
            raise EstimationError("no post-treatment ATT(g,t) to aggregate")
        wif = share_influence(keepers, cell_share, unit_weights, unit_cohort, cell_group)
        est, influence = combine(att, inf, keepers, cell_share[keepers] / cell_share[keepers].sum(), wif)
        return Aggregation(est, influence, np.array([]), np.array([]), empty,
                           np.unique(cell_group[keepers]), [])

    if kind == "group":
        values, row_est, row_inf, row_cohorts, shares = [], [], [], [], []
        for g, share in zip(group_list, group_share):
            keepers = np.flatnonzero((cell_group == g) & post)
            if keepers.size == 0:
                continue
            est, influence = combine(att, inf, keepers, np.full(keepers.size, 1.0 / keepers.size))
            values.append(g), row_est.append(est), row_inf.append(influence), shares.append(share)
            row_cohorts.append(np.array([g]))
        if not values:
            raise EstimationError("no post-treatment ATT(g,t) to aggregate by group")
        row_est_a, row_inf_a, shares_a = np.array(row_est), np.column_stack(row_inf), np.array(shares)
        all_rows = np.arange(len(values))
        wif = share_influence(all_rows, shares_a, unit_weights, unit_cohort, np.array(values))
        est, influence = combine(row_est_a, row_inf_a, all_rows, shares_a / shares_a.sum(), wif)
        return Aggregation(est, influence, np.array(values), row_est_a, row_inf_a, np.array(values), row_cohorts)

    if kind == "calendar":
        values, row_est, row_inf, row_cohorts = share_weighted_rows(
            ((t, (cell_time == t) & (cell_group <= t)) for t in periods[periods >= group_list.min()]),
            att, inf, cell_share, cell_group, unit_weights, unit_cohort)
        if not values:
            raise EstimationError("no post-treatment ATT(g,t) to aggregate by calendar time")
        row_est_a, row_inf_a = np.array(row_est), np.column_stack(row_inf)
        all_rows = np.arange(len(values))
        est, influence = combine(row_est_a, row_inf_a, all_rows, np.full(len(values), 1.0 / len(values)))
        return Aggregation(est, influence, np.array(values), row_est_a, row_inf_a,
                           np.unique(np.concatenate(row_cohorts)), row_cohorts)

    # dynamic (event study)
    event_time = cell_time - cell_group
    include = np.ones(len(att), dtype=bool)
    e_values = np.unique(event_time)
    if balance_e is not None:
        include = (periods[-1] - cell_group) >= balance_e
        e_values = np.unique(event_time[include])
        e_values = e_values[(e_values <= balance_e) & (e_values >= balance_e - periods[-1] + periods[0])]
    e_values = e_values[(e_values >= min_e) & (e_values <= max_e)]
    values, row_est, row_inf, row_cohorts = share_weighted_rows(
        ((e, (event_time == e) & include) for e in e_values),
        att, inf, cell_share, cell_group, unit_weights, unit_cohort)
    values_a = np.array(values, dtype=float)
    positive = np.flatnonzero(values_a >= 0)
    if positive.size == 0:
        raise EstimationError("no event time >= 0 to aggregate (check min_e / max_e / balance_e)")
    row_est_a, row_inf_a = np.array(row_est), np.column_stack(row_inf)
    est, influence = combine(row_est_a, row_inf_a, positive, np.full(positive.size, 1.0 / positive.size))
    overall_cohorts = np.unique(np.concatenate([row_cohorts[i] for i in positive]))
    return Aggregation(est, influence, values_a, row_est_a, row_inf_a, overall_cohorts, row_cohorts)


@dataclass
class AggregateResult(Result):
    """An aggregated group-time parameter (``estimate``) and, except for ``simple``,
    its per-group / per-period / per-event-time components (``rows``). ``source`` names the
    estimator of the ATT(g,t) (Callaway-Sant'Anna, or staggered triple differences).
    """


    kind: str
    estimate: float
    std_error: float
    conf_low: float
    conf_high: float
    p_value: float
    n: int
    rows: pd.DataFrame
    alpha: float
    critical_value: float | None = None
    influence: np.ndarray | None = field(default=None, repr=False)
    row_influence: np.ndarray | None = field(default=None, repr=False)
    messages: list[str] = field(default_factory=list)
    source: str = "Callaway-Sant'Anna"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"{self.source} aggregated ATT"

    def tidy(self) -> pd.DataFrame:
        overall = {"term": "overall", "estimate": self.estimate, "std_error": self.std_error,
                   "conf_low": self.conf_low, "conf_high": self.conf_high, "p_value": self.p_value, "n": self.n}
        if self.kind == "simple":
            return pd.DataFrame([overall])
        column = ROW_COLUMN[self.kind]
        overall[column] = np.nan
        rows = self.rows.assign(term=self.kind)
        frame = pd.concat([pd.DataFrame([overall]), rows], ignore_index=True)
        return frame[["term", column, "estimate", "std_error", "conf_low", "conf_high", "p_value", "n"]]

    def band(self) -> pd.DataFrame | None:
        """Uniform sup-t band for the rows (``None`` without bootstrap or for ``simple``)."""
        if self.critical_value is None or self.kind == "simple":
            return None
        half = self.critical_value * self.rows["std_error"]
        column = ROW_COLUMN[self.kind]
        return pd.DataFrame({column: self.rows[column], "band_low": self.rows["estimate"] - half,
                             "band_high": self.rows["estimate"] + half})

    def notes(self) -> list[str]:
        lines = [f"Aggregation: {self.kind} (Callaway & Sant'Anna 2021, Sec. 3.1; weights as R did::aggte).",
                 f"{int(round((1 - self.alpha) * 100))}% pointwise intervals from the influence function."]
        if self.critical_value is not None and self.kind != "simple":
            lines.append(f"Uniform band: multiplier-bootstrap sup-t critical value {self.critical_value:.4f}.")
        return lines + list(self.messages)

    def plot(self, ax=None):
        """Estimates by event time / group / period with pointwise CIs and the uniform band if any."""
        from impactkit.did.event_study import plot_event_study

        if self.kind == "simple":
            raise NotImplementedError("the simple aggregate is a single number; plot the dynamic aggregate")
        band = self.band()
        column = ROW_COLUMN[self.kind]
        titles = {"dynamic": f"Event study ({self.source})", "group": f"ATT by cohort ({self.source})",
                  "calendar": f"ATT by period ({self.source})"}
        return plot_event_study(self.rows, band_low=None if band is None else band["band_low"].to_numpy(),
                                band_high=None if band is None else band["band_high"].to_numpy(),
                                title=titles[self.kind], ax=ax, x=column)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"kind": self.kind, "estimate": to_plain(self.estimate), "std_error": to_plain(self.std_error),
                    "critical_value": to_plain(self.critical_value)})
        band = self.band()
        if band is not None:
            out["band"] = to_plain(band)
        return out


def aggregate_cs(result, kind: str, balance_e: int | None = None, min_e: float = -np.inf,
                 max_e: float = np.inf) -> AggregateResult:
    """Aggregate a :class:`impactkit.did.cs.CSResult` (or a result with the same fields, such as the
    staggered triple differences of :mod:`impactkit.did.triple_staggered`); standard errors from the
    influence function (clustered as the fit), uniform band from the multiplier bootstrap if the fit
    used it (draws from ``rng(seed, "<bootstrap_purpose>-aggregate-<kind>")``, ``cs-multiplier`` for CS).

    Note: ``max_e`` in ``simple``/``group`` is applied in the time column's units (``t <= g + max_e``);
    R applies it to sequential period indices, which coincide for evenly spaced unit periods.

    Parameters
    ----------
    result : CSResult
        A group-time fit (Callaway-Sant'Anna or staggered triple differences).
    kind : {"simple", "dynamic", "group", "calendar"}
        Aggregation (Callaway & Sant'Anna 2021, Sec. 3.1; R ``did::aggte`` ``type``).
    balance_e : int, optional
        Dynamic only: keep cohorts observed for ``balance_e`` periods after treatment.
    min_e, max_e : float, optional
        Event-time window.

    Returns
    -------
    AggregateResult
        The overall parameter and, except for ``simple``, its rows.

    Raises
    ------
    InputError
        Unknown ``kind``.
    EstimationError
        Nothing to aggregate in the window.
    """
    table = result.att_gt
    periods = result.periods
    agg = aggregate_att_gt(table["estimate"].to_numpy(), result.influence, table["group"].to_numpy(),
                           table["time"].to_numpy(), result.unit_cohort, result.unit_weights, periods, kind,
                           balance_e=balance_e, min_e=min_e, max_e=max_e)
    n_units = result.n_units
    clusters = result.cluster_codes
    z = norm.ppf(1.0 - result.alpha / 2.0)
    se = float(influence_se(agg.influence[:, None], n_units, clusters)[0])
    if se <= 0:
        raise EstimationError(f"{kind} aggregate has zero standard error")
    overall_n = int(np.isin(result.unit_cohort, agg.overall_cohorts).sum())
    rows = pd.DataFrame()
    critical_value = None
    if kind != "simple":
        row_se = influence_se(agg.row_influence, n_units, clusters)
        with np.errstate(divide="ignore", invalid="ignore"):
            row_p = np.where(row_se > 0, 2.0 * norm.sf(np.abs(agg.row_estimates / np.where(row_se > 0, row_se, 1.0))),
                             np.nan)
        rows = pd.DataFrame({ROW_COLUMN[kind]: agg.row_values, "estimate": agg.row_estimates, "std_error": row_se,
                             "conf_low": agg.row_estimates - z * row_se, "conf_high": agg.row_estimates + z * row_se,
                             "p_value": row_p,
                             "n": [int(np.isin(result.unit_cohort, c).sum()) for c in agg.row_cohorts]})
        if result.options.get("bootstrap"):
            draws = multiplier_draws(agg.row_influence, n_units, cluster_codes=clusters,
                                     biters=result.options["biters"], seed=result.options["seed"],
                                     purpose=f"{getattr(result, 'bootstrap_purpose', 'cs-multiplier')}-aggregate-{kind}")
            critical_value = sup_t_critical_value(draws, row_se, result.alpha)
    est = agg.estimate
    return AggregateResult(kind=kind, estimate=est, std_error=se, conf_low=est - z * se, conf_high=est + z * se,
                           p_value=float(2.0 * norm.sf(abs(est / se))), n=overall_n, rows=rows,
                           alpha=result.alpha, critical_value=critical_value, influence=agg.influence,
                           row_influence=agg.row_influence if kind != "simple" else None,
                           source=getattr(result, "source", "Callaway-Sant'Anna"))
