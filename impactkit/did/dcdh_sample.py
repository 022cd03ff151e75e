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
from dataclasses import dataclass, field, replace

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
    _cohorts: np.ndarray | None = field(default=None, repr=False, compare=False)

    def cohorts(self) -> np.ndarray:
        """Integer code of each group's switcher cohort ``(stratum, F_g, D_{g,F_g})`` (cached).

        Returns
        -------
        numpy.ndarray
        """
        if self._cohorts is None:
            keys = pd.DataFrame({"s": self.strata, "f": np.where(np.isinf(self.f), -1, self.f), "d": self.d_fg})
            self._cohorts = keys.groupby(["s", "f", "d"], sort=True, dropna=False).ngroup().to_numpy()
        return self._cohorts

    @property
    def n_groups(self) -> int:
        """Number of groups ``G`` in the sample."""
        return int(self.y.shape[0])

    def subset(self, keep: np.ndarray) -> Groups:
        """The groups where ``keep`` is true (``t_g`` recomputed).

        Parameters
        ----------
        keep : numpy.ndarray
            Boolean mask over groups.

        Returns
        -------
        Groups
        """
        out = Groups(self.y[keep], self.d[keep], self.w[keep], self.d_sq[keep], self.f[keep], self.s[keep],
                     self.d_fg[keep], self.last[keep], self.t_g[keep], self.strata[keep],
                     None if self.clusters is None else self.clusters[keep],
                     None if self.units is None else self.units[keep], self.periods,
                     None if self.x is None else self.x[:, keep])
        out.t_g = last_control_period(out.f, out.last, out.strata)
        return out


def last_control_period(f: np.ndarray, last: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``T_g``, the last period with a not-yet-switched group in the stratum.

    Parameters
    ----------
    f, last, strata : numpy.ndarray
        First switch, last observed position and stratum of each group.

    Returns
    -------
    numpy.ndarray
        The largest ``F_{g'} - 1`` within each group's stratum, never switchers counting as ``last + 1``.
    """
    f_trunc = np.where(np.isinf(f), last + 1, f)
    out = np.empty(f.size)
    for code in np.unique(strata):
        m = strata == code
        out[m] = f_trunc[m].max() - 1
    return out


def _per_unit(values: np.ndarray, code: np.ndarray, n_units: int, name: str, unit: str) -> np.ndarray:
    """The one value of a time-invariant column per unit (an ``InputError`` if it varies)."""
    vcode, labels = pd.factorize(values)
    pairs = np.unique(code.astype(np.int64) * (len(labels) + 1) + vcode)
    per_unit = np.bincount(pairs // (len(labels) + 1), minlength=n_units)
    if (per_unit > 1).any():
        raise InputError(f"dcdh: column '{name}' varies within {int((per_unit > 1).sum())} unit(s) of '{unit}'; "
                         f"a cluster or trends_nonparam column must be constant within each unit")
    out = np.empty(n_units, dtype=object)
    out[pairs // (len(labels) + 1)] = np.asarray(labels, dtype=object)[pairs % (len(labels) + 1)]
    return out


def _reversed(dmat: np.ndarray) -> np.ndarray:
    """Cells from which a unit's treatment has been both above and below its baseline (cumulatively)."""
    observed = ~np.isnan(dmat)
    base = dmat[np.arange(dmat.shape[0]), observed.argmax(axis=1)][:, None]
    with np.errstate(invalid="ignore"):
        above = np.maximum.accumulate(observed & (dmat > base), axis=1)
        below = np.maximum.accumulate(observed & (dmat < base), axis=1)
    return above & below


def _switching(dmat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Baseline, first switch position (inf: never), its sign and last observed position, from a
    ``(units, T)`` treatment matrix."""
    n_u, n_t = dmat.shape
    rows = np.arange(n_u)
    observed = ~np.isnan(dmat)
    first_obs = observed.argmax(axis=1)
    base = dmat[rows, first_obs]
    last_seen = np.maximum.accumulate(np.where(observed, np.arange(n_t), -1), axis=1)
    prev = np.full((n_u, n_t), -1)
    prev[:, 1:] = last_seen[:, :-1]
    d_prev = np.where(prev >= 0, dmat[rows[:, None], np.maximum(prev, 0)], np.nan)
    change = dmat - d_prev
    switched = observed & (prev >= 0) & (change != 0) & ~np.isnan(change)
    any_switch = switched.any(axis=1)
    first_col = switched.argmax(axis=1)
    f = np.where(any_switch, first_col + 1.0, np.inf)
    sign = np.where(any_switch, np.sign(change[rows, first_col]), 0.0)
    last = (n_t - np.argmax(observed[:, ::-1], axis=1)).astype(float)
    return base, f, sign, last


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

    Raises
    ------
    InputError
        Duplicate unit-period rows; a cluster or ``trends_nonparam`` column varying within a unit.
    EstimationError
        No stratum with both switchers and never switchers.

    Notes
    -----
    Rows with a missing treatment (and, with ``cluster``, a missing cluster) are dropped, as
    ``did_multiplegt_dyn`` does. A unit whose treatment has gone both above and below its baseline
    loses its rows from that period on (R's ``ever_strict_increase`` / ``ever_strict_decrease``
    rule). Strata in which no unit switches, or no unit never switches, are dropped.
    """
    by = list(trends_nonparam)
    cols = list(dict.fromkeys(c for c in (y, unit, time, treatment, weights, cluster, *by, *controls) if c))
    data = frame[cols].dropna(subset=[treatment, *([cluster] if cluster else []), *by])
    code, labels = pd.factorize(data[unit], sort=True)
    times = np.sort(data[time].unique())
    col = np.searchsorted(times, data[time].to_numpy())
    n_all = len(labels)
    if np.unique(code.astype(np.int64) * times.size + col).size < len(data):
        raise InputError(f"dcdh: duplicate rows for the same '{unit}' and '{time}'")
    dall = np.full((n_all, times.size), np.nan)
    dall[code, col] = data[treatment].to_numpy(dtype=float)
    reversed_cells = _reversed(dall)
    dall[reversed_cells] = np.nan
    kept_rows = ~reversed_cells[code, col]
    base, f, first_sign, last = _switching(dall)
    keys = pd.DataFrame({"d_sq": base})
    fixed = {name: _per_unit(data[name].to_numpy(), code, n_all, name, unit)
             for name in ([cluster] if cluster else []) + by}
    for name in by:
        keys[name] = fixed[name]
    strata = keys.groupby(list(keys.columns), sort=True, dropna=False).ngroup().to_numpy()
    # each stratum needs variation in F_g and at least one never switcher
    ok = np.ones(n_all, dtype=bool)
    fz = np.where(np.isinf(f), 0.0, f)
    for stratum in np.unique(strata[ok]):
        m = ok & (strata == stratum)
        spread = np.std(fz[m], ddof=1) if m.sum() > 1 else 0.0
        if np.round(spread, 3) <= 0 or not np.isinf(f[m]).any():
            ok[m] = False
    if not ok.any():
        raise EstimationError("dcdh: no baseline-treatment group has both switchers and never switchers")
    new_code = np.cumsum(ok) - 1
    row_ok = ok[code] & kept_rows
    code, col = new_code[code[row_ok]], col[row_ok]
    shape = (int(ok.sum()), times.size)
    ymat, wmat = np.full(shape, np.nan), np.zeros(shape)
    yvals = data[y].to_numpy(dtype=float)[row_ok]
    ymat[code, col] = yvals
    wvals = data[weights].to_numpy(dtype=float)[row_ok] if weights else np.ones(yvals.size)
    wmat[code, col] = np.where(np.isnan(yvals), 0.0, np.nan_to_num(wvals))
    dmat = dall[ok]
    f, d_sq, strata, last = f[ok], base[ok], strata[ok], last[ok]
    s = np.where(np.isinf(f), 0.0, first_sign[ok])
    d_fg = np.full(f.size, np.nan)
    sw = np.isfinite(f)
    d_fg[sw] = dmat[np.flatnonzero(sw), f[sw].astype(int) - 1]
    xmat = None
    if controls:
        xmat = np.full((len(controls), *shape), np.nan)
        for k, name in enumerate(controls):
            xmat[k, code, col] = data[name].to_numpy(dtype=float)[row_ok]
    clusters = fixed[cluster][ok] if cluster else None
    return Groups(ymat, dmat, wmat, d_sq, f, s, d_fg, last, last_control_period(f, last, strata), strata,
                  clusters, np.asarray(labels)[ok], times, xmat)


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
