"""Goodman-Bacon (2021) decomposition of the TWFE DiD coefficient.

Goodman-Bacon, A. (2021), "Difference-in-differences with variation in treatment timing",
*Journal of Econometrics* 225(2), 254-277, Theorem 1 (eq. 10a-10g): on a balanced panel
without covariates, the TWFE coefficient is a weighted average of all 2x2 DiD estimates
that compare a timing group with never-treated units ("Treated vs Never Treated"), an
earlier- with a later-treated group before the later one adopts ("Earlier vs Later
Treated"), and a later- with an earlier-treated group after the earlier one adopted
("Later vs Earlier Treated"; units treated throughout the panel act like an earlier group,
"Later vs Always Treated").

Each 2x2 uses the sub-panel of the two groups over its window; its estimate is the
two-way demeaned slope on that sub-panel (the four-cell DiD of means) and its weight is
``(obs share of the sub-panel)^2 * Var(demeaned D in sub-panel) / Var(demeaned D)``, which
is eq. 10e-10g written with sample shares ``n`` and treated-time shares ``Dbar``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from impactkit.did.data import prepare_panel
from impactkit.did.within import demean_balanced_two_way, factorize, is_balanced_two_way
from impactkit.errors import EstimationError
from impactkit.results import Result, to_plain

NEVER = np.inf


def _demeaned_slope(y: np.ndarray, d: np.ndarray, unit_codes: np.ndarray, time_codes: np.ndarray) -> tuple[float, float]:
    """Two-way demeaned slope of y on d and the mean square of demeaned d (balanced sub-panel).

    Parameters
    ----------
    y : numpy.ndarray
        Outcome of the sub-panel's rows.
    d : numpy.ndarray
        Treatment indicator of the same rows (float).
    unit_codes, time_codes : numpy.ndarray
        Unit and period of each row (any integers; recoded here to 0..k-1).

    Returns
    -------
    slope : float
        Coefficient of the two-way demeaned ``y`` on the demeaned ``d``.
    variance : float
        Mean square of the demeaned ``d`` (the variance the 2x2's weight uses).
    """
    u, nu = np.unique(unit_codes, return_inverse=True)
    t, nt = np.unique(time_codes, return_inverse=True)
    both = demean_balanced_two_way(np.column_stack([y, d]), nu, u.size, nt, t.size)
    d_dm = both[:, 1]
    ss = float(d_dm @ d_dm)
    return float(d_dm @ both[:, 0]) / ss, ss / d_dm.shape[0]


@dataclass
class BaconResult(Result):
    """The 2x2 components of a TWFE DiD estimate with their weights."""

    title: ClassVar[str] = "Goodman-Bacon decomposition of the TWFE estimate"

    components: pd.DataFrame
    twfe_estimate: float
    n_obs: int
    extras: dict[str, Any] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        return self.components.copy()

    def by_type(self) -> pd.DataFrame:
        """Total weight and weight-averaged estimate for each comparison type."""
        frame = self.components.assign(weighted=self.components["estimate"] * self.components["weight"])
        grouped = frame.groupby("type", sort=True).agg(weight=("weight", "sum"), weighted=("weighted", "sum"))
        grouped["estimate"] = grouped["weighted"] / grouped["weight"]
        return grouped[["weight", "estimate"]].reset_index()

    def notes(self) -> list[str]:
        total = float((self.components["estimate"] * self.components["weight"]).sum())
        return [f"TWFE estimate {self.twfe_estimate:.6f} = sum of weight x estimate ({total:.6f}); "
                f"weights sum to {self.components['weight'].sum():.6f}.",
                "Goodman-Bacon (2021), J. Econometrics 225(2), Theorem 1."]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"twfe_estimate": self.twfe_estimate, "by_type": to_plain(self.by_type()), "n_obs": self.n_obs})
        return to_plain(out)

    def plot(self, ax=None):
        """Scatter of each 2x2 estimate against its weight, by comparison type."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4.5))
        markers = {"Treated vs Never Treated": "o", "Earlier vs Later Treated": "^",
                   "Later vs Earlier Treated": "s", "Later vs Always Treated": "D"}
        for kind, part in self.components.groupby("type", sort=True):
            ax.scatter(part["weight"], part["estimate"], label=kind, marker=markers.get(kind, "o"), alpha=0.8)
        ax.axhline(self.twfe_estimate, color="black", linestyle="--", linewidth=1,
                   label=f"TWFE = {self.twfe_estimate:.3f}")
        ax.set_xlabel("Weight")
        ax.set_ylabel("2x2 DiD estimate")
        ax.set_title("Goodman-Bacon decomposition")
        ax.legend(frameon=False, fontsize="small")
        return ax.figure


def decompose(y: np.ndarray, unit_codes: np.ndarray, n_units: int, time_codes: np.ndarray, n_periods: int,
              treated: np.ndarray) -> tuple[pd.DataFrame, float]:
    """Goodman-Bacon components from arrays of a balanced panel with absorbing 0/1 treatment.

    Returns (components frame with treated/control timing and the window, TWFE slope).

    Parameters
    ----------
    y : numpy.ndarray
        Outcome, one per row.
    unit_codes : numpy.ndarray
        Unit code of each row, 0..n_units-1.
    n_units : int
        Number of units.
    time_codes : numpy.ndarray
        Period code of each row, 0..n_periods-1 (sorted periods).
    n_periods : int
        Number of periods.
    treated : numpy.ndarray
        0/1 absorbing treatment of each row.
    """
    d = treated.astype(float)
    both = demean_balanced_two_way(np.column_stack([y, d]), unit_codes, n_units, time_codes, n_periods)
    total_var = float(both[:, 1] @ both[:, 1]) / y.shape[0]
    if total_var <= 0:
        raise EstimationError("treatment has no variation left after unit and period fixed effects")
    twfe = float(both[:, 1] @ both[:, 0]) / (total_var * y.shape[0])
    # first treated period index per unit (n_periods = never treated within the panel)
    first = np.full(n_units, n_periods, dtype=np.int64)
    treated_rows = d > 0
    np.minimum.at(first, unit_codes[treated_rows], time_codes[treated_rows])
    groups = np.unique(first)
    rows = []
    n_total = y.shape[0]

    def add(kind: str, g_treat: int, g_ctrl: int, t_lo: int, t_hi: int) -> None:
        keep = np.isin(first[unit_codes], [g_treat, g_ctrl]) & (time_codes >= t_lo) & (time_codes < t_hi)
        est, var = _demeaned_slope(y[keep], d[keep], unit_codes[keep], time_codes[keep])
        share = keep.sum() / n_total
        rows.append({"type": kind, "treated_start": g_treat, "control_start": g_ctrl,
                     "window_start": t_lo, "window_end": t_hi - 1, "estimate": est,
                     "weight": share ** 2 * var / total_var, "n": int(keep.sum())})

    for comparison in comparisons(groups, n_periods):
        add(*comparison)
    return pd.DataFrame(rows), twfe


def comparisons(groups, n_periods: int) -> list[tuple[str, int, int, int, int]]:
    """The 2x2 comparisons of the Goodman-Bacon (2021) decomposition, Theorem 1.

    Parameters
    ----------
    groups : array-like of int
        The timing groups present: the first treated period's index, ``0`` for always treated and
        ``n_periods`` for never treated within the panel.
    n_periods : int
        Number of periods.

    Returns
    -------
    list of tuple
        ``(type, treated group, control group, first period index, end period index (exclusive))``,
        in the order of the decomposition's table.
    """
    present = {int(g) for g in groups}
    timing = sorted(g for g in present if 0 < g < n_periods)
    out = []
    for g in timing:
        if n_periods in present:
            out.append(("Treated vs Never Treated", g, n_periods, 0, n_periods))
        if 0 in present:
            out.append(("Later vs Always Treated", g, 0, 0, n_periods))
        for h in timing:
            if h > g:
                out.append(("Earlier vs Later Treated", g, h, 0, h))
                out.append(("Later vs Earlier Treated", h, g, g, n_periods))
    return out


def bacon_decomposition(frame: pd.DataFrame, *, y: str, unit: str, time: str, treated: str | None = None,
                        cohort: str | None = None) -> BaconResult:
    """Goodman-Bacon (2021) decomposition of ``y ~ treated | unit + time`` (Theorem 1).

    Needs a balanced panel, absorbing treatment and no covariates. ``tidy()`` has one row
    per 2x2 comparison: ``type``, the treated and control groups' first treated period
    (``inf`` = never treated, the first period = always treated), the window, ``estimate``,
    ``weight`` and ``n`` (rows used).

    Parameters
    ----------
    frame : pandas.DataFrame
        Balanced long panel.
    y, unit, time : str
        Outcome, unit and period columns.
    treated : str, optional
        0/1 absorbing treatment column.
    cohort : str, optional
        First treated period (0 or missing for never treated); give it or ``treated``.

    Returns
    -------
    BaconResult
        The 2x2 comparisons with their weights; the weighted sum is the TWFE coefficient.

    Raises
    ------
    InputError
        Unbalanced panel, reversing treatment, missing columns.
    """
    panel = prepare_panel(frame, y=y, unit=unit, time=time, cohort=cohort, treated=treated)
    unit_codes, n_units = factorize(panel["_unit"])
    time_values = np.sort(panel["_time"].unique())
    time_codes = np.searchsorted(time_values, panel["_time"].to_numpy()).astype(np.intp)
    n_periods = time_values.size
    if not is_balanced_two_way(unit_codes, n_units, time_codes, n_periods):
        raise EstimationError(f"Goodman-Bacon decomposition needs a balanced panel: {panel.shape[0]} rows "
                              f"for {n_units} units x {n_periods} periods of '{time}'")
    components, twfe = decompose(panel["_y"].to_numpy(), unit_codes, n_units, time_codes, n_periods,
                                 panel["_treated"].to_numpy())
    if components.empty:
        raise EstimationError("no 2x2 comparisons: need at least one timing group and a comparison group")

    def label(index: int) -> float:
        return NEVER if index >= n_periods else float(time_values[index])

    for col in ("treated_start", "control_start"):
        components[col] = components[col].map(label)
    for col in ("window_start", "window_end"):
        components[col] = components[col].map(lambda i: float(time_values[i]))
    return BaconResult(components=components, twfe_estimate=twfe, n_obs=int(panel.shape[0]))
