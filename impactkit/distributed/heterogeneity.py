"""Treatment-effect heterogeneity on Dask by cluster sums: the analysis engine's subgroup step.

The interaction model of :func:`impactkit.checks.heterogeneity.heterogeneity` (Gerber & Green
2012, *Field Experiments*, ch. 9) on the final rows paired with baseline: the outcome on
``treat x 1{subgroup = g}`` for every estimated subgroup, a constant, the subgroup main effects
and the baseline controls, by OLS with CR1 standard errors clustered by the design's cluster and
t(G-1) / F(q, G-1) inference (Cameron & Miller 2015).

Every unit lies in one partition, so each partition pairs its units' final and baseline rows
(:func:`impactkit.analysis.context.final_with_baseline`). A first pass returns the treated and
control counts per subgroup (the ``min_cell`` suppression); a second returns, per cluster,
``X_g'X_g`` and ``X_g'y_g`` of the kept subgroups' rows, added by cluster label on the client
(:func:`impactkit.distributed.balance.cluster_robust_fit`). Nothing else leaves the workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from impactkit.checks.heterogeneity import HeterogeneityResult, all_suppressed_result, subgroup_result
from impactkit.distributed.balance import cluster_robust_fit, cluster_sums, merge_cluster_sums
from impactkit.distributed.reduce import map_blocks, partitions
from impactkit.errors import EstimationError, InputError

TREAT = "ever_treated"


def _rows(part: pd.DataFrame, unit: str, time: str, final: int, baseline: int, y: str, controls_raw: list[str],
          by: str, cluster: str) -> pd.DataFrame:
    """The partition's final rows with baseline values, complete in outcome, controls, subgroup, cluster."""
    from impactkit.analysis.context import final_with_baseline

    frame = final_with_baseline(part, unit, time, final, baseline, [y, *controls_raw])
    controls = [f"{y}_baseline", *(f"{c}_baseline" for c in controls_raw)]
    return frame.dropna(subset=[y, *controls, by, cluster])


def _count_part(part: pd.DataFrame, *args) -> dict[Any, tuple[int, int]]:
    frame = _rows(part, *args)
    by = args[6]
    t = frame[TREAT].to_numpy(float)
    return {g: (int(np.sum(t[idx] == 1)), int(np.sum(t[idx] == 0)))
            for g, idx in frame.groupby(by, sort=False).indices.items()}


def _sums_part(part: pd.DataFrame, kept: list, *args) -> dict[Any, tuple]:
    frame = _rows(part, *args)
    y, controls_raw, by, cluster = args[4], args[5], args[6], args[7]
    frame = frame[frame[by].isin(kept)]
    t = frame[TREAT].to_numpy(float)
    groups = frame[by].to_numpy()
    indicator = np.column_stack([groups == g for g in kept]).astype(float)
    controls = [f"{y}_baseline", *(f"{c}_baseline" for c in controls_raw)]
    C = frame[controls].to_numpy(float)
    X = np.column_stack([indicator * t[:, None], np.ones(len(t)), indicator[:, 1:], C])
    return cluster_sums(X, frame[y].to_numpy(float), np.ones(len(t)), frame[cluster].to_numpy())


def heterogeneity_fit(panel, *, unit: str, time: str, final: int, baseline: int, y: str, controls: list[str],
                      by: str, cluster: str, min_cell: int, alpha: float = 0.05) -> HeterogeneityResult:
    """The subgroup effects and equality test on a unit-partitioned dask DataFrame.

    Parameters
    ----------
    panel : dask.dataframe.DataFrame
        The prepared panel (with ``ever_treated``), every unit inside one partition.
    unit, time : str
        Unit and period columns.
    final, baseline : int
        The final and baseline periods.
    y : str
        Outcome column.
    controls : list of str
        Columns whose baseline values enter as controls (the baseline outcome always does).
    by : str
        Subgroup column.
    cluster : str
        Cluster column.
    min_cell : int
        Smallest number of treated and of control rows for a subgroup to be estimated.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    HeterogeneityResult
        As :func:`impactkit.checks.heterogeneity.heterogeneity` on the gathered rows.

    Raises
    ------
    InputError
        A single subgroup.
    EstimationError
        Fewer than two clusters, or controls collinear with the subgroups.
    """
    args = (unit, time, final, baseline, y, list(controls), by, cluster)
    parts = partitions(panel)
    counts: dict[Any, list[int]] = {}
    for part in map_blocks(_count_part, parts, *args):
        for g, (n1, n0) in part.items():
            c = counts.setdefault(g, [0, 0])
            c[0], c[1] = c[0] + n1, c[1] + n0
    levels = sorted(counts, key=lambda v: (str(type(v)), v))
    if len(levels) < 2:
        raise InputError(f"column {by!r} has a single subgroup; nothing to compare")
    rows = [{"term": "effect", "group": str(g), "n": sum(counts[g]), "n_treated": counts[g][0],
             "n_control": counts[g][1], "suppressed": min(counts[g]) < min_cell} for g in levels]
    kept = [g for g in levels if min(counts[g]) >= min_cell]
    messages: list[str] = []
    suppressed = [r["group"] for r in rows if r["suppressed"]]
    if suppressed:
        messages.append(f"Suppressed (fewer than {min_cell} treated or control rows): {', '.join(suppressed)}.")
    if not kept:
        return all_suppressed_result(rows, by=by, treat=TREAT, cluster=cluster, min_cell=min_cell, messages=messages)
    n, grams, crosses = merge_cluster_sums(map_blocks(_sums_part, parts, kept, *args))
    if len(grams) < 2:
        raise EstimationError("need at least two clusters for cluster-robust inference")
    xtx = np.sum(grams, axis=0)
    if np.linalg.matrix_rank(xtx) < xtx.shape[0]:
        raise EstimationError(f"control(s) {list(controls)} are collinear with the subgroups")
    fit = cluster_robust_fit(n, grams, crosses)
    return subgroup_result(fit, rows, [str(g) for g in kept], by=by, treat=TREAT, cluster=cluster,
                           min_cell=min_cell, alpha=alpha, messages=messages)
