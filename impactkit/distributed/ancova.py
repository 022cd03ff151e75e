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
The same per-cluster sums (:class:`AncovaSums`, with each cluster's arm) give the randomization
inference of the ANCOVA coefficient (:func:`impactkit.distributed.ri.ancova_randomization_inference`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impactkit.distributed.balance import cluster_robust_fit, cluster_sums, merge_cluster_sums
from impactkit.distributed.reduce import map_blocks, merge_by_label, partitions
from impactkit.errors import EstimationError


def _ancova_part(part: pd.DataFrame, unit: str, time: str, final: int, baseline: int, y: str, controls: list[str],
                 cluster: str, weights: str | None) -> dict[str, Any]:
    from impactkit.analysis.context import final_with_baseline
    from impactkit.analysis.steps.estimation import ancova_design

    frame = final_with_baseline(part, unit, time, final, baseline, [y, *controls])
    frame = frame.dropna(subset=[y, f"{y}_baseline"]).dropna(subset=[f"{c}_baseline" for c in controls])
    X, yv = ancova_design(frame, y, controls)
    w = frame[weights].to_numpy(float) if weights else np.ones(len(frame))
    arm = frame.groupby(cluster, sort=False)["ever_treated"].agg(["min", "max"])
    return {"sums": cluster_sums(X, yv, w, frame[cluster].to_numpy()), "n_units": int(frame[unit].nunique()),
            "n_obs": int(len(frame)),
            "arm": dict(zip(arm.index, zip(arm["min"].to_numpy(dtype=float), arm["max"].to_numpy(dtype=float))))}


@dataclass(frozen=True)
class AncovaSums:
    """The per-cluster sums of the ANCOVA regression, clusters in sorted order.

    ``grams[g]`` and ``crosses[g]`` are ``X_g'W_g X_g`` and ``X_g'W_g y_g`` of the design
    ``[1, ever_treated, y_baseline, controls_baseline]``; ``arm[g]`` is the largest
    ``ever_treated`` of cluster ``g`` (its assignment), ``n_mixed`` the clusters holding both
    arms; ``n`` the rows.
    """

    n: int
    grams: np.ndarray
    crosses: np.ndarray
    arm: np.ndarray
    n_units: int
    n_mixed: int = 0

    @property
    def n_clusters(self) -> int:
        return int(self.grams.shape[0])


def ancova_sums(panel, *, unit: str, time: str, final: int, baseline: int, y: str, controls: list[str],
                cluster: str, weights: str | None = None) -> AncovaSums:
    """Per-cluster sums of the ANCOVA regression on a unit-partitioned dask DataFrame (arguments
    as :func:`ancova_fit`); clusters spanning partitions are added by label."""
    parts = map_blocks(_ancova_part, partitions(panel), unit, time, final, baseline, y, list(controls), cluster,
                       weights)
    n, grams, crosses = merge_cluster_sums([p["sums"] for p in parts])
    arm = merge_by_label([p["arm"] for p in parts], lambda a, b: (min(a[0], b[0]), max(a[1], b[1])))
    return AncovaSums(n=n, grams=np.array(grams) if grams else np.empty((0, 0, 0)),
                      crosses=np.array(crosses) if crosses else np.empty((0, 0)),
                      arm=np.array([arm[k][1] for k in sorted(arm)], dtype=float),
                      n_mixed=sum(low != high for low, high in arm.values()),
                      n_units=sum(p["n_units"] for p in parts))


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
        controls_baseline]``, units, rows, :class:`AncovaSums`).

    Raises
    ------
    EstimationError
        Fewer than two clusters.
    """
    sums = ancova_sums(panel, unit=unit, time=time, final=final, baseline=baseline, y=y, controls=controls,
                       cluster=cluster, weights=weights)
    if sums.n_clusters < 2:
        raise EstimationError("need at least two clusters for cluster-robust inference")
    return cluster_robust_fit(sums.n, list(sums.grams), list(sums.crosses)), sums.n_units, sums.n, sums
