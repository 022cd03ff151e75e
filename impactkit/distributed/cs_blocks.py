"""Callaway-Sant'Anna on Dask, step 1: every partition as a *unit block*, and the cells' samples.

A unit block holds one partition's units as arrays (unit x period outcome, cohort, weight,
cluster, the design ``[1, covariates]`` per unit and period, NaN where a row is absent); it is built once per partition
and kept in worker memory (:func:`unit_block`). R ``did``'s cohort conventions are applied
there (cohorts after the last period never treated, cohorts without a pre-period dropped).
:func:`cell_sample` cuts a block down to the observations one ATT(g,t) uses (Callaway &
Sant'Anna 2021, *J. Econometrics* 225(2), eq. 2.6-2.8), as the pandas engine
(:mod:`impactkit.did.cs_cells`) does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.errors import InputError


@dataclass(frozen=True)
class CSColumns:
    y: str
    unit: str
    time: str
    cohort: str
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    cluster: str | None = None

    def needed(self) -> list[str]:
        return list(dict.fromkeys(c for c in (self.y, self.unit, self.time, self.cohort, *self.covariates,
                                               self.weights, self.cluster) if c))


# ------------------------------------------------------------------------------------------
# unit blocks (one per partition)
# ------------------------------------------------------------------------------------------
def periods_part(part: pd.DataFrame, cols: CSColumns) -> np.ndarray:
    return np.unique(part[cols.time].to_numpy(dtype=float))


def unit_block(part: pd.DataFrame, cols: CSColumns, periods: np.ndarray, anticipation: int) -> dict:
    """The partition as unit-level arrays; R ``did``'s cohort conventions applied (late cohorts
    never treated, cohorts without a pre-period dropped)."""
    codes, _ = pd.factorize(part[cols.unit], sort=True)
    n_units = int(codes.max()) + 1 if codes.size else 0
    pidx = np.searchsorted(periods, part[cols.time].to_numpy(dtype=float))
    cell = codes.astype(np.int64) * len(periods) + pidx
    if cell.size and np.bincount(cell).max() > 1:
        raise InputError(f"duplicated ({cols.unit}, {cols.time}) pair(s); rule: one row per unit and period")
    outcome = np.full((n_units, len(periods)), np.nan)
    outcome[codes, pidx] = part[cols.y].to_numpy(dtype=float, na_value=np.nan)
    cohort = np.zeros(n_units)
    np.maximum.at(cohort, codes, np.nan_to_num(pd.to_numeric(part[cols.cohort]).to_numpy(dtype=float), nan=0.0))
    weights = np.ones(n_units)
    if cols.weights:
        weights[codes] = part[cols.weights].to_numpy(dtype=float)
    first_row = np.full(n_units, codes.size)
    np.minimum.at(first_row, codes, np.arange(codes.size))
    cluster = part[cols.cluster if cols.cluster else cols.unit].to_numpy()[first_row]
    design = np.full((n_units, len(periods), 1 + len(cols.covariates)), np.nan)   # NaN: row absent
    design[codes, pidx, 0] = 1.0
    for j, c in enumerate(cols.covariates, start=1):
        design[codes, pidx, j] = part[c].to_numpy(dtype=float, na_value=np.nan)
    cohort[cohort > periods[-1]] = 0.0
    early = (cohort > 0) & (cohort - anticipation <= periods[0])
    keep = ~early
    return {"outcome": outcome[keep], "cohort": cohort[keep], "weights": weights[keep], "cluster": cluster[keep],
            "design": design[keep],
            "complete": np.isfinite(outcome[keep]) & np.isfinite(design[keep]).all(axis=2),
            "n_early": int(early.sum()), "early_cohorts": np.unique(cohort[early])}


def keep_complete(block: dict) -> dict:
    """The block's units observed (outcome and covariates) in every period."""
    keep = block["complete"].all(axis=1)
    return {k: (v[keep] if isinstance(v, np.ndarray) and v.shape[:1] == keep.shape else v) for k, v in block.items()}


def drop_unobserved(block: dict) -> dict:
    keep = block["complete"].any(axis=1)
    return {k: (v[keep] if isinstance(v, np.ndarray) and v.shape[:1] == keep.shape else v) for k, v in block.items()}


def last_cohort_as_control(block: dict, keep_periods: np.ndarray, last: float, last_period: float) -> dict:
    """Without never-treated units (``control="notyet"``, as R ``did`` and the pandas engine's
    ``prepare_cohorts``): the periods from the last cohort's treatment on are dropped (``keep_periods``
    the rest, ``last_period`` the latest kept) and that cohort becomes the comparison group; cohorts
    after the kept periods count as never treated."""
    cohort = block["cohort"].copy()
    cohort[(cohort == last) | (cohort > last_period)] = 0.0
    return {**block, "cohort": cohort, "outcome": block["outcome"][:, keep_periods],
            "design": block["design"][:, keep_periods], "complete": block["complete"][:, keep_periods]}


def block_facts(block: dict) -> dict:
    return {"n": block["cohort"].size, "incomplete": int((~block["complete"].all(axis=1)).sum()),
            "never_observed": int((~block["complete"].any(axis=1)).sum()),
            "clusters": pd.unique(block["cluster"]), "cohorts": np.unique(block["cohort"]),
            "all_missing": ~np.isfinite(block["outcome"]).any(axis=0), "n_early": block["n_early"],
            "early_cohorts": block["early_cohorts"]}


def attach_codes(block: dict, cluster_labels: np.ndarray, cohort_values: np.ndarray) -> dict:
    """Cluster codes (sorted labels) and the pseudo-unit (cluster, cohort) index of every unit."""
    cluster_code = np.searchsorted(cluster_labels, block["cluster"])
    cohort_code = np.searchsorted(cohort_values, block["cohort"])
    return {**block, "pseudo": cluster_code * len(cohort_values) + cohort_code}


# ------------------------------------------------------------------------------------------
# cell samples
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellSpec:
    group: float
    post: int
    base: int
    threshold: float | None   # not-yet-treated: controls have cohort > threshold


def cell_units(block: dict, cell: CellSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per unit of the block: in the cell's cohort, and in the cohort or its comparison group."""
    cohort = block["cohort"]
    treated = cohort == cell.group
    controls = cohort == 0
    if cell.threshold is not None:
        controls = controls | ((cohort > cell.threshold) & ~treated)
    return treated, treated | controls


def cell_sample(block: dict, cell: CellSpec, panel: bool):
    """The cell's observations in this block: (y or dy, d, x, w, post flag, unit index)."""
    treated, in_cell = cell_units(block, cell)
    if panel:
        idx = np.flatnonzero(in_cell)
        dy = block["outcome"][idx, cell.post] - block["outcome"][idx, cell.base]
        x = block["design"][idx, min(cell.post, cell.base)]        # covariates of the earlier period
        return dy, treated[idx].astype(float), x, block["weights"][idx], None, idx
    complete = block["complete"]
    rows_post = np.flatnonzero(in_cell & complete[:, cell.post])
    rows_base = np.flatnonzero(in_cell & complete[:, cell.base])
    idx = np.concatenate([rows_post, rows_base])
    y = np.concatenate([block["outcome"][rows_post, cell.post], block["outcome"][rows_base, cell.base]])
    post = np.concatenate([np.ones(rows_post.size), np.zeros(rows_base.size)])
    x = np.concatenate([block["design"][rows_post, cell.post], block["design"][rows_base, cell.base]])
    return y, treated[idx].astype(float), x, block["weights"][idx], post, idx


def gram(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x.T @ (x * w[:, None])



def pseudo_weights(block: dict, n_pseudo: int) -> np.ndarray:
    return np.bincount(block["pseudo"], weights=block["weights"], minlength=n_pseudo)


def cohort_counts(block: dict, cohort_values: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(cohort_values, block["cohort"]), minlength=len(cohort_values)).astype(float)
