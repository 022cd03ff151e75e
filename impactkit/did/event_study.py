"""Event-study helpers shared by Callaway-Sant'Anna and Sun-Abraham: pre-trend Wald test and plot.

- :func:`wald_test`: joint Wald test ``W = theta' V^+ theta ~ chi2(rank V)`` of ``theta = 0`` with
  ``V`` the influence-function covariance ``(1/n^2) sum_c S_c S_c'`` (Newey & McFadden 1994,
  Sec. 9; used as the pre-trend test by Callaway & Sant'Anna 2021, Sec. 4.2). A
  Moore-Penrose inverse handles singular ``V`` (eigenvalues below ``1e-10 x`` the largest are
  dropped, and the degrees of freedom are the rank); for full-rank ``V`` it equals R ``did``'s test.
- :func:`plot_event_study`: estimates by event time with pointwise intervals and an optional
  uniform band; returns a matplotlib Figure carrying ``fig._impactkit_alt_text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import chi2

from impactkit.did.multiplier import influence_vcov
from impactkit.errors import EstimationError, InputError
from impactkit.results import Result


@dataclass
class WaldTestResult(Result):
    """A joint Wald test of ``theta = 0``: statistic, degrees of freedom, chi-square p-value."""

    title: ClassVar[str] = "Joint Wald test"

    statistic: float
    df: int
    p_value: float
    n_restrictions: int
    description: str
    extras: dict = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        return pd.DataFrame([{"term": self.description, "statistic": self.statistic, "df": self.df,
                              "p_value": self.p_value, "n": self.n_restrictions}])

    def notes(self) -> list[str]:
        lines = [f"H0: {self.description}; W = theta' V^+ theta ~ chi2({self.df}), V from the influence function."]
        if self.df < self.n_restrictions:
            lines.append(f"V has rank {self.df} < {self.n_restrictions} restrictions; a pseudo-inverse is used.")
        return lines


def wald_statistic(estimates: np.ndarray, vcov: np.ndarray, rel_tol: float = 1e-10) -> tuple[float, int]:
    """``theta' V^+ theta`` and ``rank(V)`` with eigenvalues below ``rel_tol * max`` dropped.

    Parameters
    ----------
    estimates : numpy.ndarray
        The tested estimates ``theta`` (k).
    vcov : numpy.ndarray
        Their k x k covariance ``V`` (symmetrised here).
    rel_tol : float, default 1e-10
        Eigenvalues below ``rel_tol`` times the largest count as zero.

    Returns
    -------
    statistic : float
    rank : int
        Degrees of freedom of the chi-squared reference distribution.

    Raises
    ------
    EstimationError
        The covariance is zero.
    """
    eigval, eigvec = np.linalg.eigh((vcov + vcov.T) / 2.0)
    keep = eigval > rel_tol * max(eigval.max(), 0.0)
    if not keep.any():
        raise EstimationError("Wald test: the covariance of the tested estimates is zero")
    projected = eigvec[:, keep].T @ estimates
    return float(np.sum(projected ** 2 / eigval[keep])), int(keep.sum())


def wald_test(estimates: np.ndarray, influence: np.ndarray, n: int, cluster_codes: np.ndarray | None = None,
              description: str = "all coefficients = 0") -> WaldTestResult:
    """Joint Wald test that ``estimates`` are zero, covariance from their influence functions.

    Parameters
    ----------
    estimates : numpy.ndarray
        The tested estimates (k).
    influence : numpy.ndarray
        Their influence functions (n x k).
    n : int
        Number of units.
    cluster_codes : numpy.ndarray, optional
        Cluster of each unit (clustered covariance).
    description : str
        The null hypothesis, for the report.

    Returns
    -------
    WaldTestResult
        ``W = theta' V^+ theta``, its degrees of freedom (rank of ``V``) and chi-square p-value.
    """
    estimates = np.asarray(estimates, dtype=float)
    if estimates.size == 0:
        raise EstimationError(f"Wald test of {description}: nothing to test")
    vcov = influence_vcov(influence, n, cluster_codes)
    statistic, df = wald_statistic(estimates, vcov)
    return WaldTestResult(statistic=statistic, df=df, p_value=float(chi2.sf(statistic, df)),
                          n_restrictions=int(estimates.size), description=description)


def plot_event_study(tidy_frame: pd.DataFrame, band_low=None, band_high=None,
                     title: str = "Event study", ax=None, x: str = "event_time"):
    """Draw estimates against ``x`` with pointwise intervals (``conf_low``/``conf_high``) and an
    optional uniform band (arrays aligned with the rows of ``tidy_frame``).

    Rows whose ``x`` is missing (an ``overall`` row of a tidy table) are skipped. For event time,
    pre-treatment estimates (``x < 0``) are grey and post-treatment ones blue. Returns the Figure,
    with a one-sentence description in ``fig._impactkit_alt_text``.

    Parameters
    ----------
    tidy_frame : pandas.DataFrame
        Rows with ``x``, ``estimate``, ``conf_low``, ``conf_high``.
    band_low, band_high : array-like, optional
        Uniform band, aligned with the rows.
    title : str
        Figure title.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    x : str, default "event_time"
        Column on the horizontal axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    needed = [x, "estimate", "conf_low", "conf_high"]
    missing = [c for c in needed if c not in tidy_frame.columns]
    if missing:
        raise InputError(f"plot_event_study: column(s) {missing} not in the table")
    keep = tidy_frame[x].notna().to_numpy()
    frame = tidy_frame.loc[keep]
    if frame.empty:
        raise InputError(f"plot_event_study: no row with a value of '{x}'")
    xs = frame[x].to_numpy(dtype=float)
    est = frame["estimate"].to_numpy(dtype=float)
    low = frame["conf_low"].to_numpy(dtype=float)
    high = frame["conf_high"].to_numpy(dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    has_band = band_low is not None and band_high is not None
    if has_band:
        blo, bhi = np.asarray(band_low, dtype=float), np.asarray(band_high, dtype=float)
        if len(blo) == len(tidy_frame):   # aligned with all rows: drop the skipped ones
            blo, bhi = blo[keep], bhi[keep]
        if len(blo) != len(xs) or len(bhi) != len(xs):
            raise InputError(f"plot_event_study: band arrays have {len(blo)}/{len(bhi)} values for {len(xs)} rows")
        ax.vlines(xs, blo, bhi, color="#9ecae1", linewidth=7, alpha=0.8, label="uniform band")
    is_event = x == "event_time"
    colors = np.where((xs < 0) & is_event, "#636363", "#08519c")
    for xi, lo, hi, c in zip(xs, low, high, colors):
        ax.plot([xi, xi], [lo, hi], color=c, linewidth=1.6)
    ax.scatter(xs, est, c=list(colors), zorder=3, s=28, label="estimate")
    ax.axhline(0.0, color="black", linewidth=0.8)
    if is_event:
        ax.axvline(-0.5, color="#bdbdbd", linestyle="--", linewidth=0.8)
    ax.set_xlabel({"event_time": "Event time (periods since treatment)", "group": "Cohort (first treated period)",
                   "time": "Period"}.get(x, x))
    ax.set_ylabel("Estimate")
    ax.set_title(title)
    if has_band:
        ax.legend(loc="best", frameon=False, fontsize=8)
    fig.tight_layout()
    n_pre = int(np.sum(xs < 0)) if is_event else 0
    band_text = " and a uniform confidence band" if has_band else ""
    fig._impactkit_alt_text = (
        f"{title}: {len(xs)} estimates for {x.replace('_', ' ')} {xs.min():g} to {xs.max():g} "
        f"({n_pre} pre-treatment) with pointwise confidence intervals{band_text}; "
        f"estimates range from {est.min():.3g} to {est.max():.3g}.")
    return fig
