"""Goodman-Bacon (2021) decomposition on Dask, from timing-group x period cell sums.

Goodman-Bacon, A. (2021), *Journal of Econometrics* 225(2), 254-277, Theorem 1: on a balanced
panel with absorbing treatment and no covariates the TWFE coefficient is a weighted average of
2x2 DiD estimates. Every quantity of the theorem is a function of the timing groups (units
sharing their first treated period) and periods only: within a 2x2's sub-panel the two-way
demeaned treatment ``D~(g, t) = D(g, t) - Dbar_g - Dbar_t + Dbar`` is constant within a
(group, period) cell, and ``D~'y~ = D~'y``. So each 2x2 estimate is
``sum_{g,t} D~(g,t) S(g,t) / sum_{g,t} n_g D~(g,t)^2`` with ``S(g,t)`` the outcome's sum and
``n_g`` the units of group ``g``, and its weight ``(obs share)^2 Var(D~_sub) / Var(D~)`` (eq.
10e-10g). One pass over the unit-partitioned data reduces those cell sums; the decomposition
runs on a ``(T+1) x T`` table. Same rows, labels and numbers as
:func:`impactkit.did.bacon.bacon_decomposition` (tested to 1e-10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactkit.did.bacon import comparisons
from impactkit.distributed.reduce import map_blocks, partitions
from impactkit.errors import EstimationError, InputError


def _cells_part(part: pd.DataFrame, y: str, unit: str, time: str, cohort: str | None, treated: str | None) -> dict:
    """Per (cohort, period) of one partition: units and outcome sums; per-partition checks."""
    rows = part.loc[part[y].notna()]
    times = rows[time].to_numpy(dtype=float)
    units = rows[unit].to_numpy()
    if rows.duplicated([unit, time]).any():
        raise InputError(f"duplicated ({unit}, {time}) pair(s); rule: one row per unit and period")
    if cohort is not None and (part.groupby(unit)[cohort].nunique() > 1).any():
        raise InputError(f"column '{cohort}' (cohort) varies within unit; rule: one cohort per unit")
    if cohort is not None:
        first = pd.to_numeric(part[cohort]).fillna(0).to_numpy(dtype=float)[part[y].notna().to_numpy()]
        first = np.where(first > 0, first, np.inf)
    else:
        on = rows[treated].to_numpy(dtype=float)
        order = np.lexsort((times, pd.factorize(units)[0]))
        step = pd.Series(on[order]).groupby(units[order], sort=False).diff().fillna(0).to_numpy()
        if (step < 0).any():
            raise InputError(f"column '{treated}' (treated) must be absorbing: it switches off within a unit")
        start = pd.Series(np.where(on == 1, times, np.inf)).groupby(units, sort=False).transform("min")
        first = start.to_numpy()
    table = pd.DataFrame({"first": first, "time": times, "y": rows[y].to_numpy(dtype=float)})
    return {"cells": table.groupby(["first", "time"]).agg(units=("y", "size"), total=("y", "sum")),
            "n_units": int(pd.unique(units).size), "n_rows": len(rows)}


def _slope(n: np.ndarray, sums: np.ndarray, first: np.ndarray, lo: int, hi: int, n_periods: int):
    """Two-way demeaned slope and mean square of D~ on the balanced sub-panel of groups ``first``."""
    t = np.arange(lo, hi)
    d = ((first[:, None] < n_periods) & (t[None, :] >= first[:, None])).astype(float)
    mass = n.sum()
    d_dm = d - d.mean(axis=1)[:, None] - (n @ d / mass)[None, :] + float(n @ d.mean(axis=1)) / mass
    ss = float((n[:, None] * d_dm ** 2).sum())
    return float((d_dm * sums[:, lo:hi]).sum()) / ss, ss / (mass * (hi - lo))


def decompose_cells(n_g: np.ndarray, sums: np.ndarray, n_periods: int) -> tuple[pd.DataFrame, float]:
    """The 2x2 components and the TWFE slope from groups' unit counts ``n_g`` (index = first treated
    period index, ``n_periods`` = never) and outcome sums ``sums[g, t]``; rows as
    :func:`impactkit.did.bacon.decompose`."""
    groups = np.flatnonzero(n_g > 0)
    n_total = float(n_g.sum() * n_periods)
    twfe, total_var = _slope(n_g[groups], sums[groups], groups, 0, n_periods, n_periods)
    if total_var <= 0:
        raise EstimationError("treatment has no variation left after unit and period fixed effects")
    rows = []

    def add(kind: str, g_treat: int, g_ctrl: int, t_lo: int, t_hi: int) -> None:
        pair = np.array([g_treat, g_ctrl])
        est, var = _slope(n_g[pair], sums[pair], pair, t_lo, t_hi, n_periods)
        n = int(n_g[pair].sum() * (t_hi - t_lo))
        rows.append({"type": kind, "treated_start": g_treat, "control_start": g_ctrl, "window_start": t_lo,
                     "window_end": t_hi - 1, "estimate": est, "weight": (n / n_total) ** 2 * var / total_var,
                     "n": n})

    for comparison in comparisons(groups, n_periods):
        add(*comparison)
    return pd.DataFrame(rows), twfe


def bacon_decomposition(frame, *, y: str, unit: str, time: str, treated: str | None = None,
                        cohort: str | None = None):
    """Goodman-Bacon (2021) decomposition of ``y ~ treated | unit + time`` on a dask DataFrame.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        Balanced long panel (:func:`impactkit.distributed.data.read_panel`).
    y, unit, time : str
        Outcome, unit and period columns.
    treated : str, optional
        0/1 absorbing treatment column.
    cohort : str, optional
        First treated period (0 or missing = never treated); give it or ``treated``.

    Returns
    -------
    impactkit.did.bacon.BaconResult
        The pandas engine's result: one row per 2x2 comparison, weights summing to one, the TWFE slope.

    Raises
    ------
    InputError
        No treatment column, a treatment that switches off, duplicated unit-periods.
    EstimationError
        An unbalanced panel, no variation in the treatment, no comparison.
    """
    from impactkit.did.bacon import NEVER, BaconResult
    from impactkit.distributed.data import by_unit

    if cohort is None and treated is None:
        raise InputError("give the treatment as 'cohort' (first treated period) or 'treated' (0/1)")
    needed = list(dict.fromkeys(c for c in (y, unit, time, cohort, treated) if c))
    parts = partitions(by_unit(frame[needed], unit))
    facts = map_blocks(_cells_part, parts, y, unit, time, cohort, treated)
    cells = pd.concat([f["cells"] for f in facts]).groupby(level=[0, 1]).sum()
    periods = np.unique(cells.index.get_level_values("time").to_numpy(dtype=float))
    n_periods, n_units = periods.size, sum(f["n_units"] for f in facts)
    n_rows = sum(f["n_rows"] for f in facts)
    if n_rows != n_units * n_periods:
        raise EstimationError(f"Goodman-Bacon decomposition needs a balanced panel: {n_rows} rows "
                              f"for {n_units} units x {n_periods} periods of '{time}'")
    first = cells.index.get_level_values("first").to_numpy(dtype=float)
    index = np.searchsorted(periods, first, side="left")      # first period at or after the cohort; never = T
    t_index = np.searchsorted(periods, cells.index.get_level_values("time").to_numpy(dtype=float))
    n_g = np.zeros(n_periods + 1)
    sums = np.zeros((n_periods + 1, n_periods))
    np.add.at(sums, (index, t_index), cells["total"].to_numpy(dtype=float))
    np.add.at(n_g, index[t_index == 0], cells["units"].to_numpy(dtype=float)[t_index == 0])
    components, twfe = decompose_cells(n_g, sums, n_periods)
    if components.empty:
        raise EstimationError("no 2x2 comparisons: need at least one timing group and a comparison group")

    def label(i: int) -> float:
        return NEVER if i >= n_periods else float(periods[i])

    for col in ("treated_start", "control_start"):
        components[col] = components[col].map(label)
    for col in ("window_start", "window_end"):
        components[col] = components[col].map(lambda i: float(periods[i]))
    return BaconResult(components=components, twfe_estimate=twfe, n_obs=n_rows)
