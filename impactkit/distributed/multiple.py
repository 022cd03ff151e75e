"""Multiple-outcome corrections on Dask by per-cluster sums: the analysis engine's family step.

The family of outcomes is regressed on ``ever_treated``, the baseline outcome and the baseline
controls on the final rows paired with baseline, by OLS with CR1 standard errors clustered by the
design's cluster (Cameron & Miller 2015, *J. Human Resources* 50(2)), then corrected by Holm
(1979), Romano & Wolf (2005, 2016; cluster bootstrap), Westfall & Young (1993; re-randomized
treatment) and Anderson (2008) sharpened q-values, as :func:`impactkit.checks.multiple_testing`.

When treatment is constant within every cluster (a cluster-randomised design), every regression
of the corrections (the full sample, each bootstrap draw, each re-randomization) needs only the
per-cluster sums of :func:`impactkit.checks.family_sums.cluster_sums` and the clusters'
treatment. Every unit lies in one partition, so each partition pairs its units' final and
baseline rows (:func:`impactkit.analysis.context.final_with_baseline`), drops the rows missing an
outcome or a control (as the pandas step), and returns per cluster those sums with the smallest
and largest treatment, plus row counts and each outcome's range. Clusters may span partitions:
the client adds their sums by cluster label, orders the clusters as
:func:`impactkit.checks.inputs.cluster_codes` does (sorted labels) and builds a
:class:`~impactkit.checks.family_sums.FamilyMoments`; the draws then run on the client with the
pandas engine's streams (:func:`impactkit.checks.multiple.family_testing`). Rows never leave the
workers.

When treatment varies within a cluster, the corrections re-randomize rows, which per-cluster sums
cannot reproduce: :func:`family_sums` then returns no sums and the number of such clusters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from impactkit.checks.family_sums import FamilyMoments, check_fit, cluster_sums
from impactkit.checks.inputs import numeric_column
from impactkit.distributed.reduce import map_blocks, merge_by_label, partitions
from impactkit.errors import EstimationError, InputError

TREAT = "ever_treated"


def _part_sums(part: pd.DataFrame, unit: str, time: str, final: int, baseline: int, y: str, controls_raw: list[str],
               outcomes: list[str], cluster: str) -> dict[str, Any]:
    """One partition's per-cluster sums, treatment range, row counts and outcome ranges."""
    from impactkit.analysis.context import final_with_baseline

    frame = final_with_baseline(part, unit, time, final, baseline, [y, *controls_raw])
    controls = [f"{y}_baseline", *(f"{c}_baseline" for c in controls_raw)]
    frame = frame.dropna(subset=[*outcomes, *controls])
    t = numeric_column(frame, TREAT)
    observed = ~np.isnan(t)
    frame, t = frame.loc[observed], t[observed]
    labels = frame[cluster]
    missing = labels.isna().to_numpy()
    frame, t = frame.loc[~missing], t[~missing]
    m = len(outcomes)
    out = {"clusters": {}, "n": int(len(frame)), "dropped": int((~observed).sum()),
           "missing_cluster": int(missing.sum()), "not_binary": int((~np.isin(t, (0.0, 1.0))).sum()),
           "y_min": np.full(m, np.inf), "y_max": np.full(m, -np.inf)}
    if frame.empty:
        return out
    Y = np.column_stack([numeric_column(frame, c) for c in outcomes])
    rest = np.column_stack([*(numeric_column(frame, c) for c in controls), np.ones(len(frame))])
    codes, uniques = pd.factorize(frame[cluster], sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
    sums = cluster_sums(rest[order], Y[order], starts)
    t_min, t_max = np.minimum.reduceat(t[order], starts), np.maximum.reduceat(t[order], starts)
    out["clusters"] = {label: (sums["A"][g], sums["R"][g], sums["Ay"][g], sums["Ry"][g], t_min[g], t_max[g])
                       for g, label in enumerate(uniques)}
    out["y_min"], out["y_max"] = Y.min(axis=0), Y.max(axis=0)
    return out


def _join(a: tuple, b: tuple) -> tuple:
    """One cluster's sums over two partitions: ``A, R, Ay, Ry`` added, treatment range widened."""
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], min(a[4], b[4]), max(a[5], b[5])


def family_sums(panel, *, unit: str, time: str, final: int, baseline: int, y: str, controls: list[str],
                outcomes: list[str], cluster: str) -> tuple[FamilyMoments | None, int]:
    """The family's per-cluster sums from a unit-partitioned dask DataFrame.

    Parameters
    ----------
    panel : dask.dataframe.DataFrame
        The prepared panel (with ``ever_treated``), every unit inside one partition.
    unit, time : str
        Unit and period columns.
    final, baseline : int
        The final and baseline periods.
    y : str
        The primary outcome (its baseline value is a control).
    controls : list of str
        Columns whose baseline values enter as controls.
    outcomes : list of str
        The family of outcomes.
    cluster : str
        Cluster column.

    Returns
    -------
    tuple
        (:class:`~impactkit.checks.family_sums.FamilyMoments`, 0) when treatment is constant
        within every cluster; (None, the number of clusters where it varies) otherwise.

    Raises
    ------
    InputError
        Repeated outcomes, missing cluster labels, a treatment that is not 0/1.
    EstimationError
        A single arm, collinear treatment and controls, a constant outcome, fewer than two clusters.
    """
    if len(set(outcomes)) != len(outcomes):
        raise InputError("outcomes must be distinct")
    parts = map_blocks(_part_sums, partitions(panel), unit, time, final, baseline, y, list(controls),
                       list(outcomes), cluster)
    merged = merge_by_label([p["clusters"] for p in parts], _join)
    labels = sorted(merged)
    t_min = np.array([merged[g][4] for g in labels], dtype=float)
    t_max = np.array([merged[g][5] for g in labels], dtype=float)
    if np.unique(np.r_[t_min, t_max]).size < 2:
        raise EstimationError(f"column {TREAT!r} is constant; need both treated and control units")
    not_binary = sum(p["not_binary"] for p in parts)
    if not_binary:
        raise InputError(f"column {TREAT!r} must be binary 0/1 ({not_binary} row(s) are not)")
    missing = sum(p["missing_cluster"] for p in parts)
    if missing:
        raise InputError(f"cluster column {cluster!r} has {missing} missing value(s)")
    varying = int(np.sum(t_min != t_max))
    if varying:
        return None, varying
    A, R, Ay, Ry = (np.stack([merged[g][i] for g in labels]) for i in range(4))
    xtx = np.einsum("g,gkl->kl", t_min, A) + R.sum(axis=0)
    constant = np.min([p["y_min"] for p in parts], axis=0) == np.max([p["y_max"] for p in parts], axis=0)
    check_fit(list(outcomes), TREAT, cluster, full_rank=np.linalg.matrix_rank(xtx) == xtx.shape[0],
              constant=constant, n_clusters=len(labels))
    return FamilyMoments(list(outcomes), A, R, Ay, Ry, t_cluster=t_min, n=sum(p["n"] for p in parts),
                         dropped=sum(p["dropped"] for p in parts)), 0
