"""Callaway-Sant'Anna, stage 2: the group-time cells and one ATT(g,t) per cell.

Each cell is a 2x2 of :mod:`impactkit.did.drdid` (panel estimators on a balanced panel, the
repeated-cross-section ones on the stacked rows of an unbalanced panel or of repeated cross
sections).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impactkit.did.cs_panel import PanelArrays
from impactkit.did.drdid import PANEL_ESTIMATORS, RC_ESTIMATORS, control_gram_inverse, fit_logit
from impactkit.errors import EstimationError


# --------------------------------------------------------------------------------------------
# group-time cells
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One ATT(g,t): cohort ``group``, period index ``post`` and its base period index ``base``."""

    group: float
    post: int
    base: int
    reference: bool   # the universal base period itself (ATT fixed at 0)


def group_time_cells(groups: np.ndarray, periods: np.ndarray, anticipation: int,
                     base_period: str) -> list[Cell]:
    """The (g,t) cells and base periods in R ``did`` order (group, then time).

    Parameters
    ----------
    groups : numpy.ndarray
        Treated cohorts (first treated periods), sorted.
    periods : numpy.ndarray
        Sorted periods of the panel.
    anticipation : int
        Periods of anticipation: the last pre-period of cohort g is before ``g - anticipation``.
    base_period : {"varying", "universal"}
        ``"varying"``: pre-period cells compare with the period before; ``"universal"``: every cell
        compares with the last pre-period (which gets a reference cell).

    Returns
    -------
    list of Cell
        Cohort, period index, base-period index and whether the cell is the reference.
    """
    cells = []
    for g in groups:
        last_pre = np.flatnonzero(periods + anticipation < g)
        universal_base = int(last_pre[-1])
        if base_period == "universal":
            cells.extend(Cell(float(g), p, universal_base, p == universal_base) for p in range(len(periods)))
            continue
        for p in range(1, len(periods)):
            base = universal_base if g <= periods[p] else p - 1
            cells.append(Cell(float(g), p, base, False))
    return cells



def check_cell_sides(n_treated: int, n_controls: int, treated_w: np.ndarray, control_w: np.ndarray,
                      label: str, control: str, where: str) -> bool:
    """False when the cohort is unobserved (cell skipped); EstimationError without controls.

    Parameters
    ----------
    n_treated, n_controls : int
        Units (or rows) of the cohort and of the comparison group in the cell.
    treated_w, control_w : numpy.ndarray
        Their sampling weights.
    label : str
        The cell, for messages (``"ATT(2004, 2006)"``).
    control : {"never", "notyet"}
        Comparison group (messages).
    where : str
        Which period's rows, for messages (empty for panels).

    Returns
    -------
    bool
        True when the cell can be estimated.
    """
    if n_controls == 0:
        hint = "use control='notyet'" if control == "never" else "drop this cohort"
        raise EstimationError(f"no {control}-treated control units for {label}{where}; {hint}")
    if n_treated == 0:
        return False
    if not (np.any(treated_w > 0) and np.any(control_w > 0)):
        raise EstimationError(f"sampling weights are zero for every treated or every control unit of {label}")
    return True


def panel_cell(arrays: PanelArrays, outcome_by_period: np.ndarray, in_cell: np.ndarray, treated: np.ndarray,
                p: int, b: int, est: str, label: str, control: str, sample_cache: dict,
                sample_key: tuple) -> tuple[float, np.ndarray, np.ndarray, int] | None:
    """ATT(g,t) by a Sant'Anna-Zhao panel estimator on a balanced panel.

    Returns the estimate, the indices of the cell's units, their influence function scaled to all
    units (``n / n_cell``) and ``n_cell``. The cell's sample (units, design, weights, propensity
    fit) is shared by every cell with the same cohort, comparison group and covariate period.

    Parameters
    ----------
    arrays : PanelArrays
        The balanced wide panel.
    outcome_by_period : numpy.ndarray
        Outcome, periods x units.
    in_cell : numpy.ndarray
        Boolean per unit: the cohort or its comparison group.
    treated : numpy.ndarray
        Boolean per unit: the cohort.
    p, b : int
        Index of the cell's period and of its base period.
    est : {"dr", "ipw", "reg"}
        Sant'Anna-Zhao estimator.
    label : str
        The cell, for messages.
    control : {"never", "notyet"}
        Comparison group (messages).
    sample_cache : dict
        Fitted samples by key, shared across cells; filled here.
    sample_key : tuple
        The cell's cohort and comparison group (the covariate period is appended).
    """
    cov_period = min(p, b)
    key = (*sample_key, None if arrays.design_time_invariant else cov_period)
    sample = sample_cache.get(key)
    if sample is None:
        index = np.flatnonzero(in_cell)
        d = treated[index].astype(float)
        w = arrays.weights[index]
        if not check_cell_sides(int(d.sum()), int(index.size - d.sum()), w[d == 1], w[d == 0], label, control, ""):
            return None
        w = w / w.mean()
        x = arrays.design_at(cov_period)[index]
        names = arrays.covariate_names
        ps = fit_logit(d, x, w, label, names) if est in ("dr", "ipw") else None
        gram_inv = control_gram_inverse(d, x, w, label, names) if est in ("dr", "reg") else None
        sample = sample_cache[key] = (index, d, x, w, ps, gram_inv)
    index, d, x, w, ps, gram_inv = sample
    delta_y = outcome_by_period[p][index] - outcome_by_period[b][index]
    att, inf = PANEL_ESTIMATORS[est](delta_y, d, x, w, ps, label, arrays.covariate_names, gram_inv)
    n = arrays.n_units
    return att, index, (n / index.size) * inf, int(index.size)


def rc_cell(arrays: PanelArrays, in_cell: np.ndarray, treated: np.ndarray, complete: np.ndarray, p: int, b: int,
             est: str, label: str, control: str) -> tuple[float, np.ndarray, np.ndarray, int] | None:
    """ATT(g,t) on an unbalanced panel as R ``did`` (``allow_unbalanced_panel=TRUE``): the observed rows
    of periods t and base are stacked as repeated cross sections, estimated by the Sant'Anna-Zhao RC
    estimator, and the row influence function (scaled by n_units / n_rows) is summed within unit.

    Parameters
    ----------
    arrays : PanelArrays
        The (unbalanced) wide panel.
    in_cell : numpy.ndarray
        Boolean per unit: the cohort or its comparison group.
    treated : numpy.ndarray
        Boolean per unit: the cohort.
    complete : numpy.ndarray
        n_units x n_periods, True where the outcome and covariates are observed.
    p, b : int
        Index of the cell's period and of its base period.
    est : {"dr", "ipw", "reg"}
        Sant'Anna-Zhao estimator.
    label : str
        The cell, for messages.
    control : {"never", "notyet"}
        Comparison group (messages).

    Returns
    -------
    tuple or None
        The estimate, the indices of the cell's units, their influence function and the number of
        units; None when the cohort is unobserved in a period.
    """
    n = arrays.n_units
    rows_post = np.flatnonzero(in_cell & complete[:, p])
    rows_base = np.flatnonzero(in_cell & complete[:, b])
    for rows, where in ((rows_post, f" in {arrays.periods[p]:g}"), (rows_base, f" in base {arrays.periods[b]:g}")):
        if not check_cell_sides(int(treated[rows].sum()), int((~treated[rows]).sum()),
                                 arrays.weights[rows[treated[rows]]], arrays.weights[rows[~treated[rows]]],
                                 label, control, where):
            return None
    unit_index = np.concatenate([rows_post, rows_base])
    y = np.concatenate([arrays.outcome[rows_post, p], arrays.outcome[rows_base, b]])
    post = np.concatenate([np.ones(rows_post.size), np.zeros(rows_base.size)])
    d = treated[unit_index].astype(float)
    x = np.concatenate([arrays.design_at(p)[rows_post], arrays.design_at(b)[rows_base]])
    w = arrays.weights[unit_index]
    w = w / w.mean()
    ps = fit_logit(d, x, w, label, arrays.covariate_names) if est in ("dr", "ipw") else None
    att, inf_rows = RC_ESTIMATORS[est](y, post, d, x, w, ps, label, arrays.covariate_names)
    full = np.bincount(unit_index, weights=(n / unit_index.size) * inf_rows, minlength=n)
    units = np.unique(unit_index)
    return att, units, full[units], int(units.size)

