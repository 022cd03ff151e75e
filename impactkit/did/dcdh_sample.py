"""The estimation sample of de Chaisemartin & D'Haultfoeuille (2024): wide matrices and switching facts.

de Chaisemartin, C. & D'Haultfoeuille, X. (2024). Difference-in-differences estimators of
intertemporal treatment effects. *Review of Economics and Statistics* 106(6), 1723-1736, and its
Web Appendix (Sections 1.3, linear trends, and 1.4, non-parametric trends); sample rules as in the
R / Stata command ``did_multiplegt_dyn`` (DIDmultiplegtDYN 2.3.4).

:func:`build_groups` pivots a long panel into ``G x T`` matrices (positions ``1..T`` of the sorted
periods) and computes, per group ``g``: the baseline treatment ``D_{g,1}``, the first switch
``F_g``, its sign ``S_g``, the treatment at ``F_g``, the last observed period and ``T_g`` (the last
period at which a group of the same stratum has not switched yet). The stratum is the baseline
treatment, crossed with the ``trends_nonparam`` columns when given. :func:`first_differences`
turns the sample into the one of the linear-trends estimator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError, InputError


@dataclass
class Groups:
    """Wide (G x T) outcome, treatment and weights of the estimation sample, and per-group facts.

    Attributes
    ----------
    y, d, w : numpy.ndarray
        Outcome, treatment and weight by group (rows) and period position (columns); ``nan`` where
        a group is not observed, weight 0 where the outcome or treatment is missing.
    d_sq : numpy.ndarray
        Baseline (first-period) treatment.
    f : numpy.ndarray
        First switch position (1-based), ``inf`` for never switchers.
    s : numpy.ndarray
        Sign of the first switch (+1 in, -1 out, 0 never).
    d_fg : numpy.ndarray
        Treatment at ``F_g`` (``nan`` for never switchers).
    last : numpy.ndarray
        Last observed position.
    t_g : numpy.ndarray
        Last position at which a group of the same stratum has not switched yet.
    strata : numpy.ndarray
        Integer code of the baseline treatment (crossed with ``trends_nonparam`` columns).
    clusters : numpy.ndarray or None
        Cluster of each group (``None``: the group is its own cluster).
    units, periods : numpy.ndarray or None
        Group labels and sorted period values.
    x : numpy.ndarray or None
        ``(K, G, T)`` covariates (``controls``).
    """

    y: np.ndarray
    d: np.ndarray
    w: np.ndarray
    d_sq: np.ndarray
    f: np.ndarray
    s: np.ndarray
    d_fg: np.ndarray
    last: np.ndarray
    t_g: np.ndarray
    strata: np.ndarray
    clusters: np.ndarray | None
    units: np.ndarray | None = None
    periods: np.ndarray | None = None
    x: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        """Number of groups ``G`` in the sample."""
        return int(self.y.shape[0])

    def subset(self, keep: np.ndarray) -> Groups:
        """The groups where ``keep`` is true (``t_g`` recomputed)."""
        out = Groups(self.y[keep], self.d[keep], self.w[keep], self.d_sq[keep], self.f[keep], self.s[keep],
                     self.d_fg[keep], self.last[keep], self.t_g[keep], self.strata[keep],
                     None if self.clusters is None else self.clusters[keep],
                     None if self.units is None else self.units[keep], self.periods,
                     None if self.x is None else self.x[:, keep])
        out.t_g = last_control_period(out.f, out.last, out.strata)
        return out


def last_control_period(f: np.ndarray, last: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``T_g``: the largest ``F_{g'} - 1`` within the stratum, never switchers counting as ``last + 1``."""
    f_trunc = np.where(np.isinf(f), last + 1, f)
    out = np.empty(f.size)
    for code in np.unique(strata):
        m = strata == code
        out[m] = f_trunc[m].max() - 1
    return out


def _time_invariant(data: pd.DataFrame, unit: str, columns: Sequence[str], role: str) -> None:
    for col in columns:
        varying = data.groupby(unit)[col].nunique(dropna=True)
        if (varying > 1).any():
            n = int((varying > 1).sum())
            raise InputError(f"dcdh: {role} column '{col}' varies within {n} unit(s) of '{unit}'; it must be "
                             f"constant within each unit")


def build_groups(frame: pd.DataFrame, y: str, unit: str, time: str, treatment: str, weights: str | None,
                 cluster: str | None, trends_nonparam: Sequence[str] = (), controls: Sequence[str] = ()) -> Groups:
    """Pivot to wide matrices and apply the ``did_multiplegt_dyn`` sample rules.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    y, unit, time, treatment : str
        Outcome, group, period and treatment columns.
    weights, cluster : str or None
        Weight and cluster columns.
    trends_nonparam : sequence of str
        Time-invariant columns whose values define strata within which switchers are compared
        (Web Appendix Section 1.4).
    controls : sequence of str
        Time-varying covariates, pivoted into ``Groups.x``.

    Returns
    -------
    Groups

    Notes
    -----
    Rows with a missing treatment (and, with ``cluster``, a missing cluster) are dropped, as
    ``did_multiplegt_dyn`` does. Units whose treatment goes both above and below its baseline are
    dropped. Strata in which no unit switches, or no unit never switches, are dropped.
    """
    by = list(trends_nonparam)
    cols = list(dict.fromkeys(c for c in (y, unit, time, treatment, weights, cluster, *by, *controls) if c))
    data = frame[cols].dropna(subset=[treatment, *([cluster] if cluster else []), *by]).copy()
    _time_invariant(data, unit, [c for c in ([cluster] if cluster else []) + by], "cluster / trends_nonparam")
    times = np.sort(data[time].unique())
    pos = {t: i + 1 for i, t in enumerate(times)}
    data["_t"] = data[time].map(pos)
    data = data.sort_values([unit, "_t"])
    prev = data.groupby(unit)[treatment].shift(1)
    change = data[treatment] - prev
    switched = change.notna() & (change != 0)
    first = data.loc[switched].groupby(unit)["_t"].min()
    first_sign = np.sign(change[switched].groupby(data.loc[switched, unit]).first())
    base = data.groupby(unit)[treatment].first()
    above = (data[treatment] > data[unit].map(base)).groupby(data[unit]).any()
    below = (data[treatment] < data[unit].map(base)).groupby(data[unit]).any()
    units = pd.Index(above.index[~(above & below)])
    f = first.reindex(units).to_numpy(dtype=float)
    f = np.where(np.isnan(f), np.inf, f)
    d_sq = base.reindex(units).to_numpy(dtype=float)
    keys = pd.DataFrame({"d_sq": d_sq}, index=units)
    for col in by:
        keys[col] = data.groupby(unit)[col].first().reindex(units).to_numpy()
    strata = keys.groupby(list(keys.columns), sort=True, dropna=False).ngroup().to_numpy()
    # each stratum needs variation in F_g and at least one never switcher
    fz = np.where(np.isinf(f), 0.0, f)
    ok = np.ones(units.size, dtype=bool)
    for code in np.unique(strata):
        m = strata == code
        spread = np.std(fz[m], ddof=1) if m.sum() > 1 else 0.0
        if np.round(spread, 3) <= 0 or not np.isinf(f[m]).any():
            ok[m] = False
    units = units[ok]
    if units.size == 0:
        raise EstimationError("dcdh: no baseline-treatment group has both switchers and never switchers")
    data = data[data[unit].isin(units)]
    code = units.get_indexer(data[unit])
    shape = (units.size, times.size)
    col = data["_t"].to_numpy() - 1
    ymat, dmat, wmat = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    yvals = data[y].to_numpy(dtype=float)
    ymat[code, col] = yvals
    dmat[code, col] = data[treatment].to_numpy(dtype=float)
    wvals = data[weights].to_numpy(dtype=float) if weights else np.ones(len(data))
    wmat[code, col] = np.where(np.isnan(yvals), 0.0, np.nan_to_num(wvals))
    f, d_sq, strata = f[ok], d_sq[ok], strata[ok]
    s = np.where(np.isinf(f), 0.0, first_sign.reindex(units).fillna(0).to_numpy(dtype=float))
    d_fg = np.full(units.size, np.nan)
    sw = np.isfinite(f)
    d_fg[sw] = dmat[np.flatnonzero(sw), f[sw].astype(int) - 1]
    last = data.groupby(unit)["_t"].max().reindex(units).to_numpy(dtype=float)
    clusters = data.groupby(unit)[cluster].first().reindex(units).to_numpy() if cluster else None
    xmat = None
    if controls:
        xmat = np.full((len(controls), *shape), np.nan)
        for k, name in enumerate(controls):
            xmat[k, code, col] = data[name].to_numpy(dtype=float)
    return Groups(ymat, dmat, wmat, d_sq, f, s, d_fg, last, last_control_period(f, last, strata), strata,
                  clusters, np.asarray(units), times, xmat)


def first_differences(groups: Groups) -> Groups:
    """The sample of the linear-trends estimator (Web Appendix Section 1.3).

    Groups whose first switch is at period 2 are dropped (no pre-switch first difference), the
    outcome (and each covariate) is replaced by its first difference ``Y_{g,t} - Y_{g,t-1}`` and period 1 is dropped,
    as ``did_multiplegt_dyn`` with ``trends_lin`` does.

    Parameters
    ----------
    groups : Groups

    Returns
    -------
    Groups
    """
    kept = groups.subset(groups.f != 2)
    if kept.y.shape[1] < 3:
        raise EstimationError("dcdh: trends_lin needs at least three periods")
    dy = kept.y[:, 1:] - kept.y[:, :-1]
    w = np.where(np.isnan(dy), 0.0, kept.w[:, 1:])
    dx = None if kept.x is None else kept.x[:, :, 1:] - kept.x[:, :, :-1]
    out = replace(kept, y=dy, d=kept.d[:, 1:], w=w, f=kept.f - 1, last=kept.last - 1,
                  periods=None if kept.periods is None else kept.periods[1:], x=dx)
    out.t_g = last_control_period(out.f, out.last, out.strata)
    return out


__all__ = ["Groups", "build_groups", "first_differences", "last_control_period"]
