"""ANCOVA on Dask by cluster sums: the analysis engine's ANCOVA estimator row.

ANCOVA (McKenzie 2012, *J. Dev. Econ.* 99(2)): the final-period outcome on assignment, the
baseline outcome and the baseline controls, by WLS with CR1 standard errors clustered by the
design's cluster and t(G-1) inference (Cameron & Miller 2015), as
:func:`impactkit.checks.regression.robust_ols` does on the pandas engine.

Every unit lies in one partition, so each partition pairs its units' final and baseline rows
(:func:`impactkit.analysis.context.final_with_baseline`) and returns, per cluster, ``X_g'W_g X_g``
and ``X_g'W_g y_g`` with its unit and row counts; clusters may span partitions and are added by
label. The client solves the normal equations and forms the sandwich
(:func:`impactkit.distributed.balance.cluster_robust_fit`). Nothing else leaves the workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from impactkit.distributed.balance import cluster_robust_fit, cluster_sums, merge_cluster_sums
from impactkit.distributed.reduce import map_blocks, partitions
from impactkit.errors import EstimationError


def _ancova_part(part: pd.DataFrame, unit: str, time: str, final: int, baseline: int, y: str, controls: list[str],
                 cluster: str, weights: str | None) -> dict[str, Any]:
    from impactkit.analysis.context import final_with_baseline
    from impactkit.analysis.steps.estimation import ancova_design

    frame = final_with_baseline(part, unit, time, final, baseline, [y, *controls])
    frame = frame.dropna(subset=[y, f"{y}_baseline"]).dropna(subset=[f"{c}_baseline" for c in controls])
    X, yv = ancova_design(frame, y, controls)
    w = frame[weights].to_numpy(float) if weights else np.ones(len(frame))
    return {"sums": cluster_sums(X, yv, w, frame[cluster].to_numpy()), "n_units": int(frame[unit].nunique()),
            "n_obs": int(len(frame))}


def ancova_fit(panel, *, unit: str, time: str, final: int, baseline: int, y: str, controls: list[str],
               cluster: str, weights: str | None = None):
    """The ANCOVA fit on a unit-partitioned dask DataFrame.

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
        Columns whose baseline values enter as controls (rows missing one are dropped).
    cluster : str
        Cluster column.
    weights : str, optional
        Analytic weights.

    Returns
    -------
    tuple
        (:class:`~impactkit.checks.regression.RobustFit` of ``[1, ever_treated, y_baseline,
        controls_baseline]``, units, rows).

    Raises
    ------
    EstimationError
        Fewer than two clusters.
    """
    parts = map_blocks(_ancova_part, partitions(panel), unit, time, final, baseline, y, list(controls), cluster,
                       weights)
    n, grams, crosses = merge_cluster_sums([p["sums"] for p in parts])
    if len(grams) < 2:
        raise EstimationError("need at least two clusters for cluster-robust inference")
    return cluster_robust_fit(n, grams, crosses), sum(p["n_units"] for p in parts), sum(p["n_obs"] for p in parts)
