"""Power, minimum detectable effect (MDE) and required sample size for (cluster) RCTs.

Standard error of the difference in means of the ITT comparison with ``n`` units randomized
in ``J = n / m`` clusters of ``m``, a share ``P`` treated and baseline covariates explaining
``R^2`` (Duflo, Glennerster & Kremer 2007, "Using Randomization in Development Economics
Research: A Toolkit", Handbook of Development Economics 4, eqs. (10)-(12)):

    se = sd * sqrt( (1 - R^2) * (1 + (m' - 1) ICC) / (P (1 - P) J' m') * panel )

with the design effect ``1 + (m' - 1) ICC`` for the clusters as analysed. Attrition comes in
two kinds (both at random, independent of treatment):

- ``attrition`` (``a``): units that drop out *within* clusters (members lost to follow-up).
  Clusters keep ``m' = m (1 - a)`` units each, all ``J`` clusters remain; with ``m = 1``
  (individual randomization) it removes units, ``J' = n (1 - a)``. Exact when every cluster
  loses the same share; with binomial losses ``E[1/m']`` is slightly above ``1/E[m']``;
- ``cluster_attrition`` (``a_c``): whole clusters lost (a village that cannot be surveyed):
  ``J' = J (1 - a_c)`` clusters of ``m'``.

So ``J' = J (1 - a_c)`` (times ``1 - a`` when ``m = 1``) and the t reference has ``J' - 2``
degrees of freedom. Until issue 16 ``attrition`` removed whole clusters,
which overstates the MDE of a cluster design whose attrition is within clusters. ``panel`` is the
McKenzie (2012, "Beyond baseline and follow-up", J. Dev. Econ. 99(2), eqs. (3)-(5))
variance factor for ``n_pre`` baseline and ``n_periods`` follow-up rounds with
autocorrelation ``rho`` of the outcome across rounds:

    post only : (1 + (r - 1) rho) / r
    ANCOVA    : (1 + (r - 1) rho) / r - m_pre rho^2 / (1 + (m_pre - 1) rho)
    DiD       : (1 + (r - 1) rho) / r + (1 + (m_pre - 1) rho) / m_pre - 2 rho

The MDE solves the exact two-sided power equation
``Phi(d/se - z_{1-alpha/2}) + Phi(-d/se - z_{1-alpha/2}) = power`` (the DGK closed form
``(z_{1-alpha/2} + z_power) se`` drops the second, negligible, term); with
``distribution="t"`` power uses the noncentral t with ``n_clusters - 2`` (``n - 2``
without clusters) degrees of freedom, as statsmodels' ``TTestIndPower``. Imperfect
take-up ``c`` (difference in take-up between arms) dilutes the ITT: the detectable
effect on compliers is ``MDE_ITT / c``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats

from impactkit.checks.result import TableResult
from impactkit.errors import InputError
from impactkit.results import to_plain


@dataclass(frozen=True)
class Design:
    """Every design parameter of the power calculation, validated."""

    alpha: float = 0.05
    power: float = 0.8
    sd: float = 1.0
    icc: float = 0.0
    cluster_size: float = 1.0
    take_up: float = 1.0
    r2: float = 0.0
    attrition: float = 0.0
    cluster_attrition: float = 0.0
    share_treated: float = 0.5
    n_periods: int = 1
    n_pre: int = 0
    autocorr: float = 0.0
    estimator: str = "ancova"
    distribution: str = "normal"

    def __post_init__(self) -> None:
        checks = {
            "alpha": 0 < self.alpha < 1, "power": 0 < self.power < 1, "sd": self.sd > 0,
            "icc": 0 <= self.icc <= 1, "cluster_size": self.cluster_size >= 1,
            "take_up": 0 < self.take_up <= 1, "r2": 0 <= self.r2 < 1, "attrition": 0 <= self.attrition < 1,
            "cluster_attrition": 0 <= self.cluster_attrition < 1,
            "share_treated": 0 < self.share_treated < 1, "n_periods": self.n_periods >= 1,
            "n_pre": self.n_pre >= 0, "autocorr": -1 < self.autocorr <= 1,
            "estimator": self.estimator in ("ancova", "did", "post"),
            "distribution": self.distribution in ("normal", "t"),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"invalid power parameter(s) {bad}: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")
        if self.estimator == "did" and self.n_pre == 0:
            raise InputError("estimator='did' needs n_pre >= 1 baseline round")

    def panel_factor(self) -> float:
        """McKenzie (2012) variance factor of the chosen estimator (1 for one post round)."""
        r, m, rho = self.n_periods, self.n_pre, self.autocorr
        post = (1 + (r - 1) * rho) / r
        if self.estimator == "post" or m == 0:
            return post
        if self.estimator == "ancova":
            return post - m * rho**2 / (1 + (m - 1) * rho)
        return post + (1 + (m - 1) * rho) / m - 2 * rho

    def analysed_cluster_size(self) -> float:
        """Units per cluster after within-cluster attrition, ``m' = m (1 - a)`` (``m`` when ``m = 1``)."""
        return self.cluster_size if self.cluster_size == 1 else self.cluster_size * (1 - self.attrition)

    def analysed_clusters(self, n: float) -> float:
        """Clusters analysed, ``J' = (n / m) (1 - a_c)``, times ``1 - a`` for individual randomization."""
        clusters = n / self.cluster_size * (1 - self.cluster_attrition)
        return clusters * (1 - self.attrition) if self.cluster_size == 1 else clusters

    def design_effect(self) -> float:
        """``1 + (m' - 1) ICC`` for the clusters as analysed (after within-cluster attrition)."""
        return 1 + (self.analysed_cluster_size() - 1) * self.icc

    def std_error(self, n: float) -> float:
        """Standard error of the ITT difference in means with ``n`` units randomized."""
        if n <= 0:
            raise InputError(f"n must be positive (got {n})")
        p = self.share_treated
        var = self.sd**2 * (1 - self.r2) * self.design_effect() * self.panel_factor()
        analysed = self.analysed_clusters(n) * self.analysed_cluster_size()
        return math.sqrt(var / (p * (1 - p) * analysed))

    def df(self, n: float) -> float:
        """Degrees of freedom of the t reference: analysed clusters (units without clusters) - 2."""
        return self.analysed_clusters(n) - 2


def _design(**kwargs: Any) -> Design:
    try:
        return Design(**kwargs)
    except TypeError as exc:
        raise InputError(f"unknown power parameter: {exc}") from None


def achieved_power(effect: float, n: float, **design: Any) -> float:
    """Probability that the two-sided level-alpha test rejects when the complier effect is ``effect``.

    Parameters
    ----------
    effect : float
        Effect on compliers.
    n : float
        Units randomized.
    **design
        Design parameters as for :func:`mde` (``alpha``, ``sd``, ``icc``, ``cluster_size``,
        ``take_up``, ``r2``, ``attrition``, ``cluster_attrition``, ``distribution``, ...).

    Returns
    -------
    float
        Power in [0, 1]; finite also near 1 with ``distribution="t"``.
    """
    d = _design(**design)
    return _power(d, abs(effect) * d.take_up, n)


def _power(d: Design, itt: float, n: float) -> float:
    """Two-sided power at intention-to-treat effect ``itt`` with ``n`` units randomized.

    Parameters
    ----------
    d : Design
        The validated design (:func:`_design`).
    itt : float
        Effect on everyone offered (effect on compliers times take-up), non-negative.
    n : float
        Units randomized.

    Returns
    -------
    float
    """
    se = d.std_error(n)
    if d.distribution == "normal":
        z = stats.norm.ppf(1 - d.alpha / 2)
        return float(stats.norm.sf(z - itt / se) + stats.norm.cdf(-z - itt / se))
    df = d.df(n)
    if df <= 0:
        raise InputError(f"n = {n} leaves no degrees of freedom for a t test")
    crit = stats.t.ppf(1 - d.alpha / 2, df)
    nc = itt / se
    # the lower tail P(T < -crit | nc) = P(T > crit | -nc): scipy's nct.cdf returns NaN far in
    # that tail (power near 1), its sf underflows cleanly to 0
    return float(min(1.0, _nct_sf(crit, df, nc) + _nct_sf(crit, df, -nc)))


def _nct_sf(x: float, df: float, nc: float) -> float:
    """``P(T > x)`` for a noncentral t; when scipy gives no finite value (far tails), the normal
    approximation of Abramowitz & Stegun (1964, 26.7.10).

    Parameters
    ----------
    x : float
        The point.
    df : float
        Degrees of freedom.
    nc : float
        Noncentrality.

    Returns
    -------
    float
    """
    with np.errstate(all="ignore"):
        value = float(stats.nct.sf(x, df, nc))
    if np.isfinite(value):
        return value
    z = (x * (1 - 1 / (4 * df)) - nc) / math.sqrt(1 + x * x / (2 * df))
    return float(stats.norm.sf(z))


def mde(n: float, *, alpha: float = 0.05, power: float = 0.8, sd: float = 1.0, icc: float = 0.0,
        cluster_size: float = 1.0, take_up: float = 1.0, r2: float = 0.0, attrition: float = 0.0,
        cluster_attrition: float = 0.0,
        share_treated: float = 0.5, n_periods: int = 1, n_pre: int = 0, autocorr: float = 0.0,
        estimator: str = "ancova", distribution: str = "normal") -> float:
    """Minimum detectable effect (in outcome units, on compliers) with ``n`` units randomized.

    Duflo, Glennerster & Kremer (2007, eq. 12) with the design effect for clusters,
    R^2 variance reduction, attrition, take-up dilution ``1/c``, and McKenzie (2012) panel
    factors; exact two-sided power equation (see the module docstring).

    Parameters
    ----------
    n : float
        Units randomized.
    alpha : float, default 0.05
        Level of the two-sided test.
    power : float, default 0.8
        Target power.
    sd : float, default 1.0
        Outcome standard deviation.
    icc : float, default 0.0
        Intra-cluster correlation.
    cluster_size : float, default 1.0
        Units per cluster as randomized (1 = individual randomization).
    take_up : float, default 1.0
        Difference in take-up between arms (the ITT is diluted by it).
    r2 : float, default 0.0
        Share of variance explained by baseline covariates.
    attrition : float, default 0.0
        Share of units lost within clusters (units, without clusters).
    cluster_attrition : float, default 0.0
        Share of whole clusters lost.
    share_treated : float, default 0.5
        Share of clusters assigned to treatment.
    n_periods : int, default 1
        Follow-up rounds.
    n_pre : int, default 0
        Baseline rounds.
    autocorr : float, default 0.0
        Autocorrelation of the outcome across rounds.
    estimator : {"ancova", "did", "post"}, default "ancova"
        Analysis of the rounds (McKenzie 2012).
    distribution : {"normal", "t"}, default "normal"
        Reference distribution; ``"t"`` uses the noncentral t with analysed clusters - 2 df.

    Returns
    -------
    float
        Minimum detectable effect on compliers, in outcome units.

    Raises
    ------
    InputError
        A design parameter out of range.
    """
    d = _design(alpha=alpha, power=power, sd=sd, icc=icc, cluster_size=cluster_size, take_up=take_up, r2=r2,
                attrition=attrition, cluster_attrition=cluster_attrition,
                share_treated=share_treated, n_periods=n_periods, n_pre=n_pre,
                autocorr=autocorr, estimator=estimator, distribution=distribution)
    return _mde(d, n)


def _mde(d: Design, n: float) -> float:
    """The effect on compliers reaching the design's power with ``n`` units (root of :func:`_power`).

    Parameters
    ----------
    d : Design
        The validated design.
    n : float
        Units randomized.

    Returns
    -------
    float
    """
    se = d.std_error(n)
    guess = (stats.norm.ppf(1 - d.alpha / 2) + stats.norm.ppf(d.power)) * se
    high = guess * 2
    while _power(d, high, n) < d.power:
        high *= 2
    itt = optimize.brentq(lambda e: _power(d, e, n) - d.power, 0.0, high, xtol=1e-14 * max(1.0, high), rtol=1e-14)
    return float(itt / d.take_up)


def required_sample(effect: float, *, alpha: float = 0.05, power: float = 0.8, sd: float = 1.0, icc: float = 0.0,
                    cluster_size: float = 1.0, take_up: float = 1.0, r2: float = 0.0, attrition: float = 0.0,
                    cluster_attrition: float = 0.0,
                    share_treated: float = 0.5, n_periods: int = 1, n_pre: int = 0, autocorr: float = 0.0,
                    estimator: str = "ancova", distribution: str = "normal", exact: bool = False) -> float:
    """Total units to randomize so that a complier effect ``effect`` is detected with ``power``.

    Inverts :func:`mde`. Returns the smallest whole number of clusters times
    ``cluster_size`` (whole units without clusters), or the continuous solution with
    ``exact=True``.

    Parameters
    ----------
    effect : float
        Effect on compliers to detect.
    alpha : float, default 0.05
        Level of the two-sided test.
    power : float, default 0.8
        Target power.
    sd : float, default 1.0
        Outcome standard deviation.
    icc : float, default 0.0
        Intra-cluster correlation.
    cluster_size : float, default 1.0
        Units per cluster as randomized (1 = individual randomization).
    take_up : float, default 1.0
        Difference in take-up between arms (the ITT is diluted by it).
    r2 : float, default 0.0
        Share of variance explained by baseline covariates.
    attrition : float, default 0.0
        Share of units lost within clusters (units, without clusters).
    cluster_attrition : float, default 0.0
        Share of whole clusters lost.
    share_treated : float, default 0.5
        Share of clusters assigned to treatment.
    n_periods : int, default 1
        Follow-up rounds.
    n_pre : int, default 0
        Baseline rounds.
    autocorr : float, default 0.0
        Autocorrelation of the outcome across rounds.
    estimator : {"ancova", "did", "post"}, default "ancova"
        Analysis of the rounds (McKenzie 2012).
    distribution : {"normal", "t"}, default "normal"
        Reference distribution; ``"t"`` uses the noncentral t with analysed clusters - 2 df.
    exact : bool, default False
        Return the continuous solution instead of whole clusters.

    Returns
    -------
    float
        Units to randomize.

    Raises
    ------
    InputError
        A zero or non-finite effect, or a design parameter out of range.
    """
    if not effect or not np.isfinite(effect):
        raise InputError(f"effect must be a non-zero finite number (got {effect})")
    d = _design(alpha=alpha, power=power, sd=sd, icc=icc, cluster_size=cluster_size, take_up=take_up, r2=r2,
                attrition=attrition, cluster_attrition=cluster_attrition,
                share_treated=share_treated, n_periods=n_periods, n_pre=n_pre,
                autocorr=autocorr, estimator=estimator, distribution=distribution)
    return _required(d, effect, exact)


def _required(d: Design, effect: float, exact: bool) -> float:
    """Units to randomize for the design's power at ``effect`` (root of :func:`_power` in ``n``).

    Parameters
    ----------
    d : Design
        The validated design.
    effect : float
        Effect on compliers (non-zero, finite).
    exact : bool
        Return the fractional root; otherwise round up to whole clusters.

    Returns
    -------
    float
    """
    if not effect or not np.isfinite(effect):
        raise InputError(f"effect must be a non-zero finite number (got {effect})")
    itt = abs(effect) * d.take_up
    # smallest n with positive t degrees of freedom
    low = 1e-9
    if d.distribution == "t":
        low = 2.5 * d.cluster_size / (1 - d.cluster_attrition) / ((1 - d.attrition) if d.cluster_size == 1 else 1)
    high = max(4.0 * low, 16.0)
    while _power(d, itt, high) < d.power:
        high *= 2
    if _power(d, itt, low) >= d.power:
        n = low
    else:
        n = optimize.brentq(lambda v: _power(d, itt, v) - d.power, low, high, xtol=1e-10, rtol=1e-14)
    if exact:
        return float(n)
    clusters = math.ceil(n / d.cluster_size - 1e-9)
    return float(clusters * d.cluster_size)


POWER_COLUMNS = ("n", "n_clusters", "cluster_size", "icc", "design_effect", "effect", "std_error", "mde", "power",
                 "required_n", "required_clusters")


@dataclass
class PowerResult(TableResult):
    """A grid of designs with their MDE, achieved power and required sample."""

    title: ClassVar[str] = "Power and minimum detectable effect"
    table: pd.DataFrame
    design: dict[str, Any]

    def notes(self) -> list[str]:
        d = self.design
        return [
            f"Two-sided test at alpha = {d['alpha']}, target power {d['power']}, {d['distribution']} reference.",
            "MDE in outcome units on compliers (ITT MDE / take-up); DGK (2007) design effect 1 + (m - 1) ICC; "
            "McKenzie (2012) panel factor.",
        ]

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        table = self.table
        if "n" in table and table["n"].notna().all() and table["n"].nunique() > 1:
            for key, part in table.groupby(["icc", "cluster_size"], sort=True):
                ax.plot(part["n"], part["mde"], marker="o", label=f"ICC={key[0]:g}, m={key[1]:g}")
            ax.set_xlabel("units randomized")
            ax.set_ylabel("minimum detectable effect")
            ax.legend()
        return ax.figure

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"title": self.title, "table": self.tidy(), "notes": self.notes(), "design": self.design})


def _as_grid(value: Any) -> list[Any]:
    """A grid argument of :func:`power` as a list (a scalar or None becomes one item).

    Parameters
    ----------
    value : Any
        Scalar, sequence, array, Series or None.

    Returns
    -------
    list
    """
    if value is None:
        return [None]
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return list(value)
    return [value]


def power(*, n: float | Sequence[float] | None = None, effect: float | Sequence[float] | None = None,
          icc: float | Sequence[float] = 0.0, cluster_size: float | Sequence[float] = 1.0,
          alpha: float = 0.05, power: float = 0.8, sd: float = 1.0, take_up: float = 1.0, r2: float = 0.0,
          attrition: float = 0.0, cluster_attrition: float = 0.0, share_treated: float = 0.5,
          n_periods: int = 1, n_pre: int = 0,
          autocorr: float = 0.0, estimator: str = "ancova", distribution: str = "normal") -> PowerResult:
    """Power table over a grid of ``n``, ``effect``, ``icc`` and ``cluster_size`` (each scalar or list).

    Per grid point: ``std_error`` of the ITT estimate and ``mde`` (when ``n`` is given),
    achieved ``power`` (when both ``n`` and ``effect`` are given) and ``required_n`` /
    ``required_clusters`` (when ``effect`` is given): how large a (scale-up) trial must be.
    Formulas: Duflo, Glennerster & Kremer (2007) and McKenzie (2012), see :mod:`impactkit.checks.power`.

    Parameters
    ----------
    n : float or sequence of float, optional
        Units randomized (gives ``std_error``, ``mde``).
    effect : float or sequence of float, optional
        Effect on compliers (gives ``required_n``, ``required_clusters``; with ``n`` also ``power``).
    icc : float or sequence of float, default 0.0
        Intra-cluster correlation(s).
    cluster_size : float or sequence of float, default 1.0
        Cluster size(s).
    alpha : float, default 0.05
        Level of the two-sided test.
    power : float, default 0.8
        Target power.
    sd : float, default 1.0
        Outcome standard deviation.
    take_up : float, default 1.0
        Difference in take-up between arms (the ITT is diluted by it).
    r2 : float, default 0.0
        Share of variance explained by baseline covariates.
    attrition : float, default 0.0
        Share of units lost within clusters (units, without clusters).
    cluster_attrition : float, default 0.0
        Share of whole clusters lost.
    share_treated : float, default 0.5
        Share of clusters assigned to treatment.
    n_periods : int, default 1
        Follow-up rounds.
    n_pre : int, default 0
        Baseline rounds.
    autocorr : float, default 0.0
        Autocorrelation of the outcome across rounds.
    estimator : {"ancova", "did", "post"}, default "ancova"
        Analysis of the rounds (McKenzie 2012).
    distribution : {"normal", "t"}, default "normal"
        Reference distribution; ``"t"`` uses the noncentral t with analysed clusters - 2 df.

    Returns
    -------
    PowerResult
        One row per grid point; the columns follow the inputs given, never the values.
    """
    if n is None and effect is None:
        raise InputError("give n (for the MDE), effect (for the required sample) or both")
    fixed = dict(alpha=alpha, power=power, sd=sd, take_up=take_up, r2=r2, attrition=attrition,
                 cluster_attrition=cluster_attrition, share_treated=share_treated, n_periods=n_periods, n_pre=n_pre, autocorr=autocorr,
                 estimator=estimator, distribution=distribution)
    rows = []
    for n_i, e_i, icc_i, m_i in itertools.product(_as_grid(n), _as_grid(effect), _as_grid(icc), _as_grid(cluster_size)):
        d = _design(icc=icc_i, cluster_size=m_i, **fixed)
        row: dict[str, Any] = {"n": np.nan if n_i is None else float(n_i), "effect": np.nan if e_i is None else float(e_i),
                               "icc": float(icc_i), "cluster_size": float(m_i), "design_effect": d.design_effect()}
        row["n_clusters"] = row["n"] / m_i
        if n_i is not None:
            row["std_error"] = d.std_error(float(n_i))
            row["mde"] = _mde(d, float(n_i))
        else:
            row["std_error"] = row["mde"] = np.nan
        if e_i is not None:
            row["power"] = _power(d, abs(float(e_i)) * d.take_up, float(n_i)) if n_i is not None else np.nan
            row["required_n"] = _required(d, float(e_i), exact=False)
            row["required_clusters"] = row["required_n"] / m_i
        else:
            row["power"] = row["required_n"] = row["required_clusters"] = np.nan
        rows.append(row)
    given = {"cluster_size", "icc", "design_effect"}
    given |= {"n", "n_clusters", "std_error", "mde"} if n is not None else set()
    given |= {"effect", "required_n", "required_clusters"} if effect is not None else set()
    given |= {"power"} if n is not None and effect is not None else set()
    columns = [c for c in POWER_COLUMNS if c in given]
    table = pd.DataFrame(rows)[columns]   # the columns follow the inputs given, never the values
    return PowerResult(table=table, design=fixed)
