"""Randomization inference on Dask by per-cluster sums: TWFE and ANCOVA, no refit per permutation.

Fisher's (1935) test of the sharp null re-assigns treatment across clusters (Young 2019, *QJE*
134(2); Imbens & Rubin 2015, ch. 5) and recomputes the estimate under each re-assignment. Done
naively that is one pass over every row per permutation. With assignment by cluster it is not
needed: the statistic is a ratio of sums in which each cluster enters through sums that depend
only on the label it receives, so one pass over the data gives every permutation.

**TWFE** (:func:`twfe_randomization_inference`). By Frisch-Waugh-Lovell the coefficient of the
treatment ``D`` in ``y ~ D + covariates | unit + period`` is

    b = (D~'W y~ - D~'W Q~ (Q~'W Q~)^-1 Q~'W y~) / (D~'W D~ - D~'W Q~ (Q~'W Q~)^-1 Q~'W D~)

with ``~`` the within-unit demeaning and ``Q`` the covariates and the ``T - 1`` period dummies
(as :mod:`impactkit.distributed.twfe`). Under a re-assignment, a cluster that receives cohort
label ``g`` has ``D = 1{g > 0, t >= g}`` on its rows; when units are nested in clusters, ``D~``
of its rows depends on ``g`` alone. So one pass over the partitions computes, for every cluster
``c`` and every label ``g``, the sums ``S[c, g] = (D~_g'W D~_g, D~_g'W y~, D~_g'W Q~)`` over the
cluster's rows (plus ``Q~'W Q~`` and ``Q~'W y~`` once), and the statistic of any assignment
``a`` is the formula above with ``sum_c S[c, a_c]``. The assignments are those of the pandas
engine (:func:`impactkit.did.ri.permute_assignments` or :func:`~impactkit.did.ri.enumerate_assignments`
on the same clusters and labels, same seed), so the p-value is the same.

**ANCOVA** (:func:`ancova_randomization_inference`). With the arm constant within cluster, the
rows of cluster ``c`` enter ``X'WX`` and ``X'Wy`` of ``[1, arm, y_baseline, controls]`` through its
sums ``X_c'W X_c`` and ``X_c'W y_c`` (:class:`impactkit.distributed.ancova.AncovaSums`); under a
re-assigned arm ``a_c`` the arm's row is ``a_c`` times the constant's row. The permutations are
the pandas engine's (:func:`impactkit.analysis.steps.estimation.ancova_reassignments`).

The permutation statistics are computed from the ``G x labels`` sums in fixed blocks of
assignments on the cluster's futures (the block layout does not depend on the worker count).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.distributed.fanout import on_futures
from impactkit.distributed.reduce import add, map_blocks, partitions
from impactkit.distributed.twfe import TWFEColumns, _unit_demeaned, demean_within
from impactkit.errors import EstimationError, InputError

#: assignments per fan-out task
BLOCK = 128


class CohortVaries(InputError):
    """The cohort varies within ``n_levels`` assignment levels: there is no single label to re-assign."""

    def __init__(self, message: str, n_levels: int):
        super().__init__(message)
        self.n_levels = n_levels


class NotReducible(EstimationError):
    """The design has no per-cluster reduction (units span clusters): the Dask engine omits the
    section with this reason rather than refit once per permutation."""


# ------------------------------------------------------------------------------------------ TWFE
@dataclass(frozen=True)
class AssignmentFacts:
    """What the first pass finds: the re-randomisation levels (sorted), their labels, the periods."""

    levels: pd.Index            # cluster (or unit) labels, sorted as pandas' factorize(sort=True)
    label_values: np.ndarray    # the distinct cohort labels, sorted (0 = never treated)
    label_codes: np.ndarray     # label code of each level
    periods: np.ndarray
    nested: bool                # every unit inside one level
    n_obs: int


def _cohort(rows: pd.DataFrame, cols: TWFEColumns) -> np.ndarray:
    """The normalised cohort: missing and 0 mean never treated (0.0)."""
    return pd.to_numeric(rows[cols.cohort]).fillna(0.0).to_numpy(dtype=float)


def _facts_part(part: pd.DataFrame, cols: TWFEColumns, level: str) -> dict:
    rows = cols.select(part)
    missing = int(rows[level].isna().sum())
    if missing:
        raise InputError(f"column '{level}' has {missing} missing value(s) where '{cols.y}' is observed; "
                         "randomization inference needs every row's cluster")
    frame = pd.DataFrame({"level": rows[level].to_numpy(), "cohort": _cohort(rows, cols)})
    by_level = frame.groupby("level", sort=False)["cohort"].agg(["min", "max"])
    nested = bool((rows.groupby(cols.unit, sort=False)[level].nunique() <= 1).all())
    return {"by_level": by_level, "nested": nested, "periods": np.unique(rows[cols.time].to_numpy(dtype=float)),
            "n_obs": len(rows)}


def assignment_facts(parts: list, cols: TWFEColumns, level: str) -> AssignmentFacts:
    """The levels, their cohort labels and the periods, from one pass; InputError when the cohort
    varies within a level (the pandas engine's rule, :func:`impactkit.did.ri.assignment_levels`)."""
    facts = map_blocks(_facts_part, parts, cols, level)
    by_level = pd.concat([f["by_level"] for f in facts]).groupby(level=0, sort=False).agg({"min": "min", "max": "max"})
    varies = by_level["min"] != by_level["max"]
    if varies.any():
        raise CohortVaries(f"{cols.cohort}: varies within {int(varies.sum())} {level} group(s); it must be constant "
                         f"within each {level} for randomization inference", int(varies.sum()))
    codes, levels = pd.factorize(by_level.index, sort=True)
    label_of_level = np.empty(len(levels))
    label_of_level[codes] = by_level["min"].to_numpy()
    label_values, label_codes = np.unique(label_of_level, return_inverse=True)
    return AssignmentFacts(levels=pd.Index(levels), label_values=label_values,
                           label_codes=label_codes.astype(np.int64),
                           periods=np.unique(np.concatenate([f["periods"] for f in facts])),
                           nested=all(f["nested"] for f in facts), n_obs=sum(f["n_obs"] for f in facts))


def _label_sums_part(part: pd.DataFrame, cols: TWFEColumns, level: str, facts: AssignmentFacts) -> dict:
    """Per level of the partition and per label ``g``: ``(D~_g'W D~_g, D~_g'W y~, D~_g'W Q~)``."""
    rows, z, w = _unit_demeaned(part, cols, facts.periods)
    y, q = z[:, 0], z[:, 2:]                       # column 1 is the observed D, not needed
    unit_codes = pd.factorize(rows[cols.unit])[0]
    level_codes, present = pd.factorize(facts.levels.get_indexer(rows[level]))
    times = rows[cols.time].to_numpy(dtype=float)
    sums = np.empty((len(present), facts.label_values.size, 2 + q.shape[1]))
    for j, g in enumerate(facts.label_values):
        d = demean_within(((g > 0) & (times >= g)).astype(float), unit_codes, w)
        dw = d if w is None else d * w
        for col, values in enumerate((d, y, *q.T)):
            sums[:, j, col] = np.bincount(level_codes, weights=dw * values, minlength=len(present))
    qw = q if w is None else q * w[:, None]
    return {"levels": present, "sums": sums, "qq": qw.T @ q, "qy": qw.T @ y}


def _twfe_block(sums: np.ndarray, qq_inv: np.ndarray, b_q: np.ndarray, arrangements: np.ndarray) -> np.ndarray:
    """The TWFE coefficient under each assignment (rows of label codes per level) from the sums."""
    total = sums[np.arange(sums.shape[0])[None, :], arrangements].sum(axis=1)     # (b, 2 + q)
    dd, dy, dq = total[:, 0], total[:, 1], total[:, 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (dy - dq @ b_q) / (dd - np.einsum("bi,ij,bj->b", dq, qq_inv, dq))


def twfe_randomization_inference(frame, *, y: str, unit: str, time: str, cohort: str, cluster: str | None = None,
                                 covariates: Sequence[str] = (), weights: str | None = None,
                                 n_permutations: int = 999, seed: int | None = None,
                                 exact: bool | str = "auto", term: str = "treated", client=None):
    """Randomization inference of the TWFE coefficient on a dask DataFrame, by per-cluster sums.

    Fisher (1935) / Young (2019, *QJE* 134(2)): the cohorts are re-assigned across clusters
    (units when ``cluster`` is None) and the coefficient of ``D = 1{t >= cohort > 0}`` in
    ``y ~ D + covariates | unit + period`` recomputed for each assignment from the sums of the
    module docstring (one pass over the data in all). Same assignments, statistics and p-value
    as :meth:`impactkit.did.twfe.TWFEResult.randomization_inference` on the pandas engine.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The panel.
    y, unit, time, cohort : str
        Outcome, unit, period and first-treated-period columns (missing or 0: never treated).
    cluster : str, optional
        The level of assignment (default: the unit).
    covariates : sequence of str
        Controls of the regression.
    weights : str, optional
        Analytic weights.
    n_permutations : int, default 999
        Random re-assignments (or the cap for full enumeration).
    seed : int, optional
        Seed of :func:`impactkit.seeds.rng` (``"randomization-inference"`` stream, as pandas).
    exact : bool or "auto", default "auto"
        Enumerate every distinct assignment when their number is at most ``n_permutations``.
    term : str
        Label of the estimate.
    client : distributed.Client, optional
        Default: the current client.

    Returns
    -------
    impactkit.did.ri.RandomizationResult
        Observed estimate, permutation p-value and the permutation statistics (no interval).

    Raises
    ------
    CohortVaries
        The cohort varies within a cluster (an :class:`~impactkit.errors.InputError`).
    NotReducible
        Units span clusters (no per-cluster reduction exists).
    EstimationError
        Every cluster has the same label, or an assignment leaves the treatment collinear with the fixed effects.
    """
    from impactkit.did import ri
    from impactkit.distributed.data import by_unit

    level = cluster or unit
    cols = TWFEColumns(y=y, unit=unit, time=time, cohort=cohort, covariates=tuple(covariates), weights=weights,
                       cluster=cluster)
    parts = partitions(by_unit(frame[cols.needed()], unit))
    facts = assignment_facts(parts, cols, level)
    if not facts.nested:
        raise NotReducible(f"units of '{unit}' span several '{level}' groups: the treatment of a unit would "
                              "then depend on several clusters' labels and has no per-cluster reduction")
    levels = ri.AssignmentLevels(row_level=np.empty(0, dtype=np.int64), first_row=np.arange(len(facts.levels)),
                                 label_codes=facts.label_codes, stratum=np.zeros(len(facts.levels), dtype=np.int64))
    arrangements, n_assignments, use_exact = ri.assignments_to_test(levels, n_permutations, seed, exact,
                                                                    assignment=cohort, level=level)
    reduced = map_blocks(_label_sums_part, parts, cols, level, facts)
    sums = np.zeros((len(facts.levels), facts.label_values.size, reduced[0]["sums"].shape[2]))
    for part in reduced:
        sums[part["levels"]] += part["sums"]
    totals = add([{"qq": p["qq"], "qy": p["qy"]} for p in reduced])
    try:
        qq_inv = np.linalg.inv(totals["qq"])
    except np.linalg.LinAlgError:
        raise EstimationError("the covariates are collinear with the fixed effects") from None
    b_q = qq_inv @ totals["qy"]
    observed = float(_twfe_block(sums, qq_inv, b_q, facts.label_codes[None, :])[0])
    permuted = on_futures(_twfe_block, sums, (qq_inv, b_q), arrangements, BLOCK, client)
    if not math.isfinite(observed) or not np.isfinite(permuted).all():
        raise EstimationError("an assignment leaves the treatment collinear with the unit and period effects")
    return ri.RandomizationResult(
        term=term, estimate=observed, p_value=ri.permutation_p_value(observed, permuted, use_exact),
        conf_low=math.nan, conf_high=math.nan, alpha=0.05, n_permutations=int(arrangements.shape[0]),
        n_assignments=int(n_assignments), exact=bool(use_exact), n_clusters=len(facts.levels), n_obs=facts.n_obs,
        design="cluster" if cluster else "unit", strata=None, seed=None if seed is None else int(seed),
        permutation_stats=permuted)


# ------------------------------------------------------------------------------------------ ANCOVA
def _ancova_block(sums: np.ndarray, arms: np.ndarray) -> np.ndarray:
    """The ANCOVA arm coefficient under each re-assigned arm vector (rows of ``arms``);
    ``sums[c]`` is ``[X_c'W X_c | X_c'W y_c]`` (k x k+1)."""
    grams, crosses = sums[:, :, :-1], sums[:, :, -1]
    xtx, xty = grams.sum(axis=0), crosses.sum(axis=0)
    constant_row, constant_y = grams[:, 0, :], crosses[:, 0]
    n_draws, k = arms.shape[0], xtx.shape[0]
    a = np.broadcast_to(xtx, (n_draws, k, k)).copy()
    b = np.broadcast_to(xty, (n_draws, k)).copy()
    arm_row = arms @ constant_row                                    # (draws, k): sum_c a_c X_c'W 1
    a[:, 1, :] = arm_row
    a[:, :, 1] = arm_row
    a[:, 1, 1] = (arms**2) @ grams[:, 0, 0]
    b[:, 1] = arms @ constant_y
    return np.linalg.solve(a, b[:, :, None])[:, 1, 0]


def ancova_randomization_inference(sums, *, draws: int, seed: int | None, client=None) -> tuple[np.ndarray, int]:
    """The ANCOVA coefficient under ``draws`` re-assignments of the clusters' arms (the pandas
    engine's permutations, :func:`impactkit.analysis.steps.estimation.ancova_reassignments`),
    from the per-cluster sums :class:`impactkit.distributed.ancova.AncovaSums`.

    Returns
    -------
    tuple
        (permuted coefficients, clusters); the section is
        :func:`impactkit.analysis.steps.estimation.ancova_ri_section` of them.
    """
    from impactkit.analysis.steps.estimation import ancova_reassignments

    arms = ancova_reassignments(sums.arm, int(draws), seed)
    shared = np.concatenate([sums.grams, sums.crosses[:, :, None]], axis=2)
    permuted = on_futures(_ancova_block, shared, (), arms, BLOCK, client)
    return permuted, sums.n_clusters
