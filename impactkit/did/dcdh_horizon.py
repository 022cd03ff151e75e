"""One horizon of de Chaisemartin & D'Haultfoeuille (2024): estimate and influence function.

For switchers of one sign ``S`` (in: +1, out: -1) and horizon ``ell``, :func:`horizon_part`
computes ``DID_ell`` of eq. 3 of the paper (placebo: the outcome change ``Y_{F_g-1-ell} -
Y_{F_g-1}`` instead of ``Y_{F_g-1+ell} - Y_{F_g-1}``), the variance influence function of each
group (Web Appendix, Section 2: outcome changes demeaned within switcher cohorts ``(stratum, F_g,
D_{g,F_g})`` and within control cells ``(t, stratum)``, falling back to the union cell when a
cohort or cell has one member (one cluster), each scaled by ``sqrt(n / (n - 1))`` with ``n`` the
number of members, or of distinct clusters, in the cell) and the average cumulative dose change
used by normalised effects. :func:`combine` pools switchers in and out as ``did_multiplegt_dyn``
does: ``DID_ell = (N_in DID_in - N_out DID_out) / (N_in + N_out)``, so that both estimate the
effect of a weakly higher dose.

:func:`same_switchers` gives the switchers for which every effect ``1..L`` (and every placebo
``1..P``) can be estimated, by the rule of ``did_multiplegt_dyn``'s ``same_switchers`` options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.did.dcdh_controls import ControlFit, correction
from impactkit.did.dcdh_sample import Groups


@dataclass(frozen=True)
class Part:
    """``DID_ell`` for one sign of switchers.

    Attributes
    ----------
    estimate : float
        The estimate.
    influence : numpy.ndarray
        Variance influence function by group (its squared sum over ``G^2`` is the variance).
    n : int
        Number of switchers used.
    weight : float
        Weighted number of switchers ``N``.
    delta : float
        Weighted mean over those switchers of ``S_g sum_{t=F_g}^{F_g-1+ell} (D_{g,t} - D_{g,1})``.
    """

    estimate: float
    influence: np.ndarray
    n: int
    weight: float
    delta: float


def outcome_change(y: np.ndarray, ell: int, placebo: bool) -> np.ndarray:
    """Outcome change by group and position.

    Parameters
    ----------
    y : numpy.ndarray
        ``(G, T)`` outcome.
    ell : int
        Horizon.
    placebo : bool
        Placebo change instead of the effect's.

    Returns
    -------
    numpy.ndarray
        At position ``t``: ``Y_t - Y_{t-ell}``, or for a placebo ``Y_{t-2 ell} - Y_{t-ell}``
        (``nan`` where not defined).
    """
    n_t = y.shape[1]
    diff = np.full(y.shape, np.nan)
    if placebo:
        if n_t > 2 * ell:
            diff[:, 2 * ell:] = y[:, :n_t - 2 * ell] - y[:, ell:n_t - ell]
    elif n_t > ell:
        diff[:, ell:] = y[:, ell:] - y[:, :n_t - ell]
    return diff


def control_weight(groups: Groups, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Controls of one horizon and the size of their cells.

    Parameters
    ----------
    groups : Groups
        The estimation sample.
    diff : numpy.ndarray
        ``(G, T)`` outcome changes of the horizon (:func:`outcome_change`).

    Returns
    -------
    never : numpy.ndarray
        Not-yet-switched cells with an outcome change and a positive weight.
    cells : numpy.ndarray
        Integer code of each cell's ``(t, stratum)``.
    n_control : numpy.ndarray
        Weighted number of controls in the cell of each entry.
    """
    n_g, n_t = groups.y.shape
    t_idx = np.arange(1, n_t + 1)[None, :]
    valid = ~np.isnan(diff) & (groups.w > 0)
    never = valid & (groups.f[:, None] > t_idx)
    cells = np.broadcast_to(groups.strata[:, None] * (n_t + 1) + t_idx, (n_g, n_t))
    sums = np.bincount(cells[never], weights=groups.w[never], minlength=int(cells.max()) + 1)
    return never, cells, sums[cells]


def _cell_stats(values: np.ndarray, member: np.ndarray, keys: np.ndarray, weights: np.ndarray,
                counts_by: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of ``values`` over ``member`` entries within cells ``keys`` and the number of
    distinct ``counts_by`` values (clusters; ``None``: members) among them; 0 / 0 outside ``member``."""
    mean = np.zeros(values.shape)
    dof = np.zeros(values.shape)
    if not member.any():
        return mean, dof
    inv = keys[member]                         # small non-negative cell codes
    size = int(inv.max()) + 1
    wsum = np.bincount(inv, weights=weights[member], minlength=size)
    vsum = np.bincount(inv, weights=(weights * values)[member], minlength=size)
    if counts_by is None:                      # each group once per cell: members are distinct groups
        distinct = np.bincount(inv, minlength=size)
    else:
        who = counts_by[member].astype(np.int64)
        pairs = np.unique(inv.astype(np.int64) * (int(who.max()) + 1) + who)
        distinct = np.bincount(pairs // (int(who.max()) + 1), minlength=size)
    mean[member] = np.divide(vsum, wsum, out=np.zeros_like(vsum), where=wsum > 0)[inv]
    dof[member] = distinct[inv]
    return mean, dof


def _demeaned(groups: Groups, d0: np.ndarray, dist: np.ndarray, never: np.ndarray, cells: np.ndarray,
              ell: int) -> tuple[np.ndarray, np.ndarray]:
    """``E_hat`` (the cell mean an outcome change is demeaned by) and the ``sqrt(n/(n-1))`` scale."""
    n_g, n_t = d0.shape
    t_idx = np.arange(1, n_t + 1)[None, :]
    f = groups.f[:, None]
    who = None if groups.clusters is None else np.broadcast_to(pd.factorize(groups.clusters)[0][:, None], d0.shape)
    cohorts = np.broadcast_to(groups.cohorts()[:, None], d0.shape)
    union = dist | never
    mean_s, dof_s = _cell_stats(d0, dist, cohorts, groups.w, who)
    mean_c, dof_c = _cell_stats(d0, never, cells, groups.w, who)
    mean_u, dof_u = _cell_stats(d0, union, cells, groups.w, who)
    at_target, before = t_idx == f - 1 + ell, t_idx < f
    n_s, n_c, n_u = np.where(dist, dof_s, 9999.0), np.where(never, dof_c, 9999.0), np.where(union, dof_u, 9999.0)
    use_s = at_target & (n_s >= 2)
    use_c = before & ~use_s & (n_c >= 2)
    single = (at_target & (n_s == 1)) | (before & (n_c == 1))
    use_u = ~use_s & ~use_c & (n_u >= 2) & single
    e_hat = np.where(use_s & dist, mean_s, np.where(use_c & never, mean_c, np.where(use_u & union, mean_u, 0.0)))

    def ratio(dof, member):
        return np.where(member & (dof > 1), np.sqrt(dof / np.maximum(dof - 1, 1e-300)), 1.0)

    scale = np.where(at_target & (n_s > 1), ratio(dof_s, dist),
                     np.where(before & (n_c > 1), ratio(dof_c, never),
                              np.where(single & (n_u >= 2), ratio(dof_u, union), 1.0)))
    return e_hat, scale


def eligible(groups: Groups, ell: int, placebo: bool) -> np.ndarray:
    """Switchers a horizon can use, before the sign and ``same_switchers`` restrictions.

    Parameters
    ----------
    groups : Groups
        The estimation sample.
    ell : int
        Horizon.
    placebo : bool
        Placebo horizon.

    Returns
    -------
    numpy.ndarray
        Per group: observed at ``F_g - 1 + ell`` with an outcome change and a non-empty control cell.
    """
    diff = outcome_change(groups.y, ell, placebo)
    never, _, n_control = control_weight(groups, diff)
    n_t = groups.y.shape[1]
    t_idx = np.arange(1, n_t + 1)[None, :]
    valid = ~np.isnan(diff) & (groups.w > 0)
    l_g = np.where(np.isfinite(groups.f), groups.last - groups.f + 1, 0.0)[:, None]
    at = valid & (t_idx == groups.f[:, None] - 1 + ell) & (l_g >= ell) & (n_control > 0) & (groups.s[:, None] != 0)
    return at.any(axis=1)


def same_switchers(groups: Groups, effects: int, placebos: int = 0,
                   cache: dict[tuple[int, bool], np.ndarray] | None = None) -> np.ndarray:
    """Switchers for which every effect (and placebo) can be estimated (``did_multiplegt_dyn``'s rule).

    Parameters
    ----------
    groups : Groups
        The estimation sample.
    effects : int
        Effects ``1..effects`` must all exist.
    placebos : int, default 0
        Placebos ``1..placebos`` must all exist too.
    cache : dict, optional
        ``{(horizon, placebo): mask}`` of :func:`eligible` results, filled and reused across calls.

    Returns
    -------
    numpy.ndarray
        Per group: ``F_g - 1 + effects <= T_g`` and, at every horizon, an outcome change and
        controls in the switcher's cell.
    """
    keep = np.isfinite(groups.f) & (groups.f - 1 + effects <= groups.t_g)
    cache = {} if cache is None else cache
    for key in [(q, False) for q in range(1, effects + 1)] + [(q, True) for q in range(1, placebos + 1)]:
        if key not in cache:
            cache[key] = eligible(groups, *key)
        keep &= cache[key]
    return keep


def horizon_part(groups: Groups, ell: int, placebo: bool, sign: int, keep: np.ndarray | None = None,
                 controls: ControlFit | None = None) -> Part | None:
    """``DID_ell`` (or placebo ``ell``) for one sign of switchers (see the module docstring).

    Parameters
    ----------
    groups : Groups
        The estimation sample (with ``controls``: its outcome residualised,
        :func:`impactkit.did.dcdh_controls.adjusted_outcome`).
    ell : int
        Horizon.
    placebo : bool
        Placebo horizon.
    sign : {1, -1}
        Switchers in or out.
    keep : numpy.ndarray, optional
        Switchers allowed (``same_switchers``).
    controls : ControlFit, optional
        Covariate coefficients; their estimation adds a term to the influence function.

    Returns
    -------
    Part or None
        ``None`` when no such switcher reaches the horizon.
    """
    chosen = (groups.s == sign) if keep is None else (groups.s == sign) & keep
    if not chosen.any():
        return None
    y, w = groups.y, groups.w
    n_g, n_t = y.shape
    t_idx = np.arange(1, n_t + 1)[None, :]
    diff = outcome_change(y, ell, placebo)
    valid = ~np.isnan(diff) & (w > 0)
    never, cells, n_control = control_weight(groups, diff)
    f = groups.f[:, None]
    l_g = np.where(np.isfinite(groups.f), groups.last - groups.f + 1, 0.0)[:, None]
    dist = valid & (t_idx == f - 1 + ell) & (l_g >= ell) & (n_control > 0) & chosen[:, None]
    n_switchers = int(dist.any(axis=1).sum())
    if n_switchers == 0:
        return None
    treated = np.bincount(cells[dist], weights=w[dist], minlength=int(cells.max()) + 1)[cells]
    n_s = float(w[dist].sum())
    factor = w * (dist - treated / np.where(n_control > 0, n_control, 1.0) * never)
    d0 = np.where(valid, diff, 0.0)
    estimate = float(np.sum(factor * d0) / n_s)
    e_hat, scale = _demeaned(groups, d0, dist, never, cells, ell)
    in_window = (t_idx >= ell + 1) & (t_idx <= groups.t_g[:, None]) & ((groups.t_g - 1) >= ell)[:, None]
    influence = np.where(valid, (n_g / n_s) * in_window * factor * scale * (d0 - e_hat), 0.0).sum(axis=1)
    if controls is not None:
        influence = influence - correction(controls, factor, valid, n_s, ell, placebo, outcome_change)
    # average cumulative dose change of these switchers, F_g .. F_g - 1 + ell (normalised effects)
    rows = np.flatnonzero(dist.any(axis=1))
    window = (t_idx >= f) & (t_idx <= f - 1 + ell)
    dose = groups.s[rows] * np.nansum(np.where(window, groups.d - groups.d_sq[:, None], 0.0), axis=1)[rows]
    w_at = (w * dist).sum(axis=1)[rows]
    delta = float(np.sum(w_at * dose) / w_at.sum())
    return Part(estimate, influence, n_switchers, n_s, delta)


def combine(parts: list[Part | None], n_groups: int) -> Part | None:
    """Pool switchers in and out as ``did_multiplegt_dyn`` does.

    Parameters
    ----------
    parts : list of Part or None
        The part of switchers in, then of switchers out (``None`` when absent).
    n_groups : int
        ``G``.

    Returns
    -------
    Part or None
        Estimate and influence ``N_in / N`` times the in part minus ``N_out / N`` times the out
        part; ``delta`` the ``N``-weighted mean.
    """
    signed = [(p, s) for p, s in zip(parts, (1.0, -1.0)) if p is not None]
    if not signed:
        return None
    total = sum(p.weight for p, _ in signed)
    estimate = sum(s * p.weight * p.estimate for p, s in signed) / total
    influence = sum(s * (p.weight / total) * p.influence for p, s in signed)
    delta = sum(p.weight * p.delta for p, _ in signed) / total
    return Part(float(estimate), np.asarray(influence, dtype=float) + np.zeros(n_groups),
                sum(p.n for p, _ in signed), total, float(delta))


__all__ = ["Part", "combine", "eligible", "horizon_part", "outcome_change", "same_switchers"]
