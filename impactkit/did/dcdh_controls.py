"""Covariates in de Chaisemartin & D'Haultfoeuille (2024): residualised outcome changes.

Web Appendix of de Chaisemartin & D'Haultfoeuille (2024), Section 1.2, and the ``controls``
option of ``did_multiplegt_dyn``: for each baseline treatment ``d``, the first difference of the
outcome is regressed on the first differences of the covariates and time effects (one per period
and stratum), with weights, in the sample of control cells ``(g, t)``: ``D_{g,1} = d`` and ``t <
F_g`` (the group's treatment has not changed yet). The estimators then use ``Y - theta_d' X``
in place of ``Y`` (every outcome change ``Y_t - Y_{t-ell}`` becomes ``Y_t - Y_{t-ell} - theta_d'
(X_t - X_{t-ell})``).

The influence function adds the estimation of ``theta_d`` by the delta method: with ``M_d`` the
DID estimator applied to the covariates of the level-``d`` switchers and their controls (the
derivative of ``DID_ell`` in ``theta_d``), group ``g`` of level ``d`` contributes
``- M_d' psi_g`` with ``psi_g = G A_d^{-1} sum_t w_{g,t} Xtilde_{g,t} e_{g,t}`` (``A_d = sum w Xtilde
Xtilde'`` over the control cells, ``Xtilde`` the covariate changes net of the time effects, ``e``
the regression residuals). This is impactkit's derivation; R's ``did_multiplegt_dyn`` adds a
small-cell factor and could not be run here, so the standard errors are checked by simulation,
not against R (see ``tests/test_did_dcdh_controls.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impactkit.did.dcdh_sample import Groups
from impactkit.errors import EstimationError


@dataclass(frozen=True)
class ControlFit:
    """Per-level covariate coefficients and the influence function of their estimates.

    Attributes
    ----------
    theta : numpy.ndarray
        ``(G, K)``: the coefficients of each group's baseline level.
    psi : numpy.ndarray
        ``(G, K)``: group ``g``'s influence on its level's coefficients (``G A^{-1} sum_t w Xtilde e``).
    x : numpy.ndarray
        ``(K, G, T)`` covariates.
    level : numpy.ndarray
        ``(G,)`` index of each group's baseline level.
    """

    theta: np.ndarray
    psi: np.ndarray
    x: np.ndarray
    level: np.ndarray


def _within(values: np.ndarray, cells: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``values`` (rows) minus their weighted mean within ``cells``."""
    _, inv = np.unique(cells, return_inverse=True)
    wsum = np.bincount(inv, weights=weights)
    out = np.empty_like(values)
    for k in range(values.shape[1]):
        means = np.bincount(inv, weights=weights * values[:, k]) / wsum
        out[:, k] = values[:, k] - means[inv]
    return out


def fit_controls(groups: Groups, x: np.ndarray) -> ControlFit:
    """Estimate ``theta_d`` for each baseline level ``d`` (see the module docstring).

    Parameters
    ----------
    groups : Groups
        The estimation sample.
    x : numpy.ndarray
        ``(K, G, T)`` covariates, aligned with ``groups``.

    Returns
    -------
    ControlFit

    Raises
    ------
    EstimationError
        A level has fewer control cells than covariates, or collinear covariate changes.
    """
    n_k = x.shape[0]
    n_g, n_t = groups.y.shape
    dy = np.full(groups.y.shape, np.nan)
    dy[:, 1:] = groups.y[:, 1:] - groups.y[:, :-1]
    dx = np.full(x.shape, np.nan)
    dx[:, :, 1:] = x[:, :, 1:] - x[:, :, :-1]
    t_idx = np.arange(1, n_t + 1)[None, :]
    sample = (~np.isnan(dy) & ~np.isnan(dx).any(axis=0) & (groups.w > 0) & (t_idx < groups.f[:, None])
              & ~np.isnan(groups.w))
    theta = np.zeros((n_g, n_k))
    psi = np.zeros((n_g, n_k))
    rows, cols = np.nonzero(sample)
    for level in np.unique(groups.d_sq):
        m = groups.d_sq[rows] == level
        r, c = rows[m], cols[m]
        if r.size <= n_k:
            raise EstimationError(f"dcdh: controls: baseline treatment {level:g} has {r.size} control cells for "
                                  f"{n_k} covariate(s)")
        w = groups.w[r, c]
        cells = groups.strata[r] * (n_t + 1) + c
        xt = _within(dx[:, r, c].T, cells, w)
        yt = _within(dy[r, c][:, None], cells, w)[:, 0]
        a = (xt * w[:, None]).T @ xt
        if np.linalg.matrix_rank(a) < n_k:
            raise EstimationError(f"dcdh: controls: the covariate changes are collinear among the controls of "
                                  f"baseline treatment {level:g} (after time effects)")
        coef = np.linalg.solve(a, (xt * w[:, None]).T @ yt)
        resid = yt - xt @ coef
        score = np.zeros((n_g, n_k))
        np.add.at(score, r, xt * (w * resid)[:, None])
        in_level = groups.d_sq == level
        theta[in_level] = coef
        psi[in_level] = n_g * np.linalg.solve(a, score[in_level].T).T
    return ControlFit(theta, psi, x, np.unique(groups.d_sq, return_inverse=True)[1])


def adjusted_outcome(groups: Groups, fit: ControlFit) -> np.ndarray:
    """The residualised outcome.

    Parameters
    ----------
    groups : Groups
        The estimation sample.
    fit : ControlFit
        Covariate coefficients.

    Returns
    -------
    numpy.ndarray
        ``Y_{g,t} - theta_{D_{g,1}}' X_{g,t}``.
    """
    return groups.y - np.einsum("gk,kgt->gt", fit.theta, fit.x)


def correction(fit: ControlFit, factor: np.ndarray, valid: np.ndarray, n_switchers: float, ell: int,
               placebo: bool, change) -> np.ndarray:
    """The term the estimation of ``theta`` adds to each group's influence function.

    Parameters
    ----------
    fit : ControlFit
        Covariate coefficients and their influence functions.
    factor : numpy.ndarray
        ``(G, T)`` weights of the horizon's estimator (``w (dist - N_t / N_c never)``).
    valid : numpy.ndarray
        Entries with an outcome change.
    n_switchers : float
        Weighted number of switchers ``N``.
    ell : int
        Horizon.
    placebo : bool
        Placebo horizon.
    change : callable
        :func:`impactkit.did.dcdh_horizon.outcome_change`.

    Returns
    -------
    numpy.ndarray
        ``M_d' psi_g`` per group (``M_d`` the estimator applied to level ``d``'s covariates).
    """
    n_g = factor.shape[0]
    n_k = fit.x.shape[0]
    per_group = np.zeros((n_g, n_k))
    for k in range(n_k):
        dx = change(fit.x[k], ell, placebo)
        per_group[:, k] = np.sum(np.where(valid, factor * np.nan_to_num(dx), 0.0), axis=1) / n_switchers
    out = np.zeros(n_g)
    for level in np.unique(fit.level):
        in_level = fit.level == level
        out[in_level] = fit.psi[in_level] @ per_group[in_level].sum(axis=0)
    return out


__all__ = ["ControlFit", "adjusted_outcome", "correction", "fit_controls"]
