"""Baseline balance table and joint orthogonality test.

The input checks shared by every design check live in :mod:`impactkit.checks.inputs`,
the cluster-robust regression in :mod:`impactkit.checks.regression`.

References
----------
- Imbens, G. W. and Rubin, D. B. (2015), *Causal Inference for Statistics, Social, and
  Biomedical Sciences*, CUP, sec. 14.2, eq. (14.1): normalized difference
  ``(m1 - m0) / sqrt((s1^2 + s0^2) / 2)``.
- Bruhn, M. and McKenzie, D. (2009), "In Pursuit of Balance", *AEJ: Applied* 1(4),
  200-232: report the joint test of orthogonality (regress treatment on all baseline
  covariates, F test that every slope is zero) with standard errors clustered at the
  level of randomization.
- Cameron, A. C. and Miller, D. L. (2015), "A Practitioner's Guide to Cluster-Robust
  Inference", *J. Human Resources* 50(2): CR1 variance, t(G-1) reference distribution.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from impactkit.checks.inputs import (
    as_list,
    binary_arm,
    check_weights,
    cluster_codes,
    numeric_column,
    require_columns,
    require_frame,
)
from impactkit.checks.regression import robust_ols
from impactkit.checks.result import TableResult
from impactkit.errors import ImpactkitWarning, InputError
from impactkit.results import format_table, to_plain

def weighted_mean_sd(values: np.ndarray, weights: np.ndarray | None) -> tuple[float, float]:
    """Mean and SD; weighted as Stata's aweights: ``sum w (x-m)^2 / sum w * n / (n-1)``.

    Without weights this is the usual sample SD (n-1 divisor); the weighted version is
    invariant to rescaling the weights and reduces to it when all weights are equal.

    Parameters
    ----------
    values : numpy.ndarray
        One covariate's values.
    weights : numpy.ndarray or None
        Analytic weights.

    Returns
    -------
    mean, sd : float
        SD is NaN with fewer than two values.
    """
    n = values.size
    if weights is None:
        return float(values.mean()), float(values.std(ddof=1)) if n > 1 else float("nan")
    total = weights.sum()
    mean = float(np.sum(weights * values) / total)
    if n < 2:
        return mean, float("nan")
    var = float(np.sum(weights * (values - mean) ** 2) / total * n / (n - 1))
    return mean, float(np.sqrt(var))


# ---------------------------------------------------------------------------
# balance table
# ---------------------------------------------------------------------------


@dataclass
class BalanceResult(TableResult):
    """Per-covariate means by arm, differences, normalized differences and the joint F test."""

    title: ClassVar[str] = "Baseline balance"
    table: pd.DataFrame
    joint_f: float
    joint_p: float
    joint_df: tuple[float, float]
    joint_n: int
    arm: str
    cluster: str | None
    weighted: bool
    messages: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        inference = (f"standard errors clustered by {self.cluster!r} (CR1, t with G-1 df)"
                     if self.cluster else "heteroskedasticity-robust (HC1) standard errors")
        lines = [
            f"Difference = mean(treated) - mean(control); p-value from OLS of each covariate on {self.arm!r}, {inference}.",
            "Normalized difference (Imbens & Rubin 2015, eq. 14.1): (m1 - m0) / sqrt((s1^2 + s0^2) / 2).",
            f"Joint orthogonality test ({self.arm!r} on all covariates): F({self.joint_df[0]:g}, "
            f"{self.joint_df[1]:g}) = {self.joint_f:.3f}, p = {self.joint_p:.4f}, n = {self.joint_n}.",
        ]
        if self.weighted:
            lines.append("Means, SDs and regressions use the sampling weights.")
        return lines + list(self.messages)

    def plot(self, ax=None):
        """Normalized differences by covariate with the |0.25| rule-of-thumb lines (Imbens & Rubin 2015)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.4 * len(self.table) + 1.5))
        shown = self.table[~self.table["suppressed"].astype(bool)]
        ax.scatter(shown["normalized_difference"], shown["covariate"], color="black", zorder=3)
        for x in (-0.25, 0.0, 0.25):
            ax.axvline(x, color="grey", linestyle="--" if x else "-", linewidth=0.8)
        ax.set_xlabel("normalized difference (treated - control)")
        ax.set_title(self.title)
        return ax.figure

    def summary(self) -> str:
        shown = self.table[["covariate", "mean_control", "mean_treated", "difference",
                            "normalized_difference", "p_value", "n_control", "n_treated", "suppressed"]]
        return format_table(shown, self.title, self.notes())

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"title": self.title, "table": self.tidy(), "notes": self.notes(),
                         "joint_test": {"f": self.joint_f, "p_value": self.joint_p,
                                        "df_num": self.joint_df[0], "df_denom": self.joint_df[1],
                                        "n": self.joint_n}})


def restrict_to_period(frame: pd.DataFrame, *, time: str | None, period: Any,
                       unit: str | None, arm: str) -> pd.DataFrame:
    """Rows of the pre-period (``time == period`` or ``time in period``); arm must not vary within unit.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel, or one row per unit.
    time : str or None
        Period column.
    period : Any
        The pre-period, or a list of them.
    unit : str or None
        Unit column (checks that ``arm`` is constant within unit).
    arm : str
        Arm column.

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself when neither ``time`` nor ``period`` is given.
    """
    if time is None and period is None:
        return frame
    if time is None or period is None:
        raise InputError("give both 'time' and 'pre_period' to restrict to the pre-period")
    periods = list(period) if isinstance(period, (list, tuple, set)) else [period]
    subset = frame.loc[frame[time].isin(periods)]
    if subset.empty:
        raise InputError(f"no rows with column {time!r} in pre-period {periods!r}")
    if unit is not None:
        varying = subset.groupby(unit, sort=False)[arm].nunique(dropna=False)
        varying = varying[varying > 1]
        if len(varying):
            raise InputError(f"column {arm!r} varies within {len(varying)} unit(s) of {unit!r} in the pre-period")
    return subset


def balance_table(frame: pd.DataFrame, *, arm: str, covariates: str | Sequence[str],
                  cluster: str | None = None, weights: str | None = None,
                  pre_period: Any = None, time: str | None = None, unit: str | None = None,
                  min_cell: int = 10) -> BalanceResult:
    """Baseline balance of ``covariates`` between the two arms of ``arm``.

    For each covariate: mean and SD by arm, the difference in means, the normalized
    difference of Imbens & Rubin (2015, eq. 14.1), and the p-value of the difference from
    an OLS of the covariate on the arm indicator with cluster-robust (CR1) standard errors
    (HC1 without ``cluster``). The joint test of orthogonality regresses the arm on every
    covariate (complete cases) and tests all slopes with a cluster-robust Wald F
    (Bruhn & McKenzie 2009; McKenzie's recommended practice).

    With ``time`` and ``pre_period`` only the pre-period rows are used; with ``unit`` the
    arm must be constant within unit there. Cells (covariate x arm) with fewer than
    ``min_cell`` non-missing rows are suppressed: NaN statistics and ``suppressed=True``.

    Raises :class:`InputError` for missing columns, non-binary arm, bad weights, and
    :class:`EstimationError` for a constant arm.

    Parameters
    ----------
    frame : pandas.DataFrame
        Data (one row per unit, or a panel with ``time``/``pre_period``).
    arm : str
        0/1 treatment-arm column.
    covariates : str or sequence of str
        Covariates to compare.
    cluster : str, optional
        Cluster column for CR1 standard errors.
    weights : str, optional
        Sampling weights.
    pre_period : Any, optional
        The value of ``time`` whose rows are used.
    time : str, optional
        Period column (with ``pre_period``).
    unit : str, optional
        Unit column (the arm must be constant within unit).
    min_cell : int, default 10
        Smallest number of non-missing rows per covariate and arm that is shown.

    Returns
    -------
    BalanceResult
        One row per covariate and the joint orthogonality test.
    """
    frame = require_frame(frame)
    covariates = as_list(covariates)
    if not covariates:
        raise InputError("give at least one covariate")
    require_columns(frame, [arm, cluster, weights, time, unit, *covariates])
    frame = restrict_to_period(frame, time=time, period=pre_period, unit=unit, arm=arm)
    treated = binary_arm(frame, arm)
    w_all = check_weights(frame, weights)
    codes_all = cluster_codes(frame, cluster)
    values = {c: numeric_column(frame, c) for c in covariates}

    rows = []
    messages: list[str] = []
    for name in covariates:
        x = values[name]
        ok = ~np.isnan(x)
        n1 = int(np.sum(ok & (treated == 1)))
        n0 = int(np.sum(ok & (treated == 0)))
        row: dict[str, Any] = {"covariate": name, "n_control": n0, "n_treated": n1,
                               "n_missing": int((~ok).sum())}
        if min(n0, n1) < min_cell:
            row.update(mean_control=np.nan, sd_control=np.nan, mean_treated=np.nan, sd_treated=np.nan,
                       difference=np.nan, normalized_difference=np.nan, std_error=np.nan,
                       p_value=np.nan, suppressed=True)
            messages.append(f"{name!r}: a cell has fewer than {min_cell} units; statistics suppressed.")
            rows.append(row)
            continue
        sel1, sel0 = ok & (treated == 1), ok & (treated == 0)
        w1 = None if w_all is None else w_all[sel1]
        w0 = None if w_all is None else w_all[sel0]
        m1, s1 = weighted_mean_sd(x[sel1], w1)
        m0, s0 = weighted_mean_sd(x[sel0], w0)
        pooled = np.sqrt((s1**2 + s0**2) / 2)
        nd = (m1 - m0) / pooled if pooled > 0 else np.nan
        X = np.column_stack([np.ones(ok.sum()), treated[ok]])
        if np.ptp(x[ok]) == 0:
            est, se, p = m1 - m0, 0.0, float("nan")
            messages.append(f"{name!r} is constant; no test.")
        else:
            fit = robust_ols(x[ok], X, clusters=None if codes_all is None else codes_all[ok],
                             weights=None if w_all is None else w_all[ok])
            est, se, p = fit.t_test(1)
        row.update(mean_control=m0, sd_control=s0, mean_treated=m1, sd_treated=s1,
                   difference=m1 - m0, normalized_difference=nd, std_error=se, p_value=p, suppressed=False)
        rows.append(row)
    if any(r["suppressed"] for r in rows):
        warnings.warn(f"balance_table: {sum(r['suppressed'] for r in rows)} covariate(s) have a cell below "
                      f"min_cell={min_cell}; statistics suppressed", ImpactkitWarning, stacklevel=2)
    table = pd.DataFrame(rows)
    table["estimate"] = table["difference"]
    table["n"] = table["n_control"] + table["n_treated"]
    order = ["covariate", "mean_control", "sd_control", "mean_treated", "sd_treated", "difference",
             "estimate", "normalized_difference", "std_error", "p_value", "n_control", "n_treated", "n",
             "n_missing", "suppressed"]
    table = table[order]

    # joint orthogonality: arm ~ all (non-suppressed, non-constant) covariates, complete cases
    usable = [r["covariate"] for r in rows if not r["suppressed"] and np.isfinite(r["p_value"])]
    joint_f = joint_p = float("nan")
    joint_df = (float("nan"), float("nan"))
    joint_n = 0
    if usable:
        Xc = np.column_stack([values[c] for c in usable])
        complete = ~np.isnan(Xc).any(axis=1)
        dropped = int((~complete).sum())
        if dropped:
            messages.append(f"Joint test uses {int(complete.sum())} complete cases ({dropped} rows with a missing covariate dropped).")
        X = np.column_stack([np.ones(complete.sum()), Xc[complete]])
        fit = robust_ols(treated[complete], X, clusters=None if codes_all is None else codes_all[complete],
                         weights=None if w_all is None else w_all[complete])
        joint_f, joint_p, dfn, dfd = fit.f_test(range(1, X.shape[1]))
        joint_df = (dfn, dfd)
        joint_n = int(complete.sum())
    return BalanceResult(table=table, joint_f=joint_f, joint_p=joint_p, joint_df=joint_df, joint_n=joint_n,
                         arm=arm, cluster=cluster, weighted=weights is not None, messages=messages)
