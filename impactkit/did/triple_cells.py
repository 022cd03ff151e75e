"""Triple differences, the cell estimator: one DDD from three 2x2s, and the GMM combination of
several comparison cohorts.

Reference: Ortiz-Villavicencio, M. & Sant'Anna, P. H. C. (2025), "Better understanding triple
differences estimators", arXiv:2505.09942: eq. (3.5) (two periods) and eq. (4.8) (one
group-time cell with one comparison cohort ``g_c``); eq. (4.11)-(4.12) (several comparison
cohorts under not-yet-treated comparisons, combined by optimal GMM weights).

Units of a DDD sample fall in four cells (:data:`CELLS`) by the treatment-enabling group ``S``
(the cohort ``g`` against a comparison cohort) and the eligibility partition ``Q``. The DDD is
``DiD(4 vs 3) + DiD(4 vs 2) - DiD(4 vs 1)``, each DiD a panel 2x2 of Sant'Anna & Zhao (2020)
(:mod:`impactkit.did.drdid`: doubly robust eq. 3.1, IPW eq. 2.4 or regression eq. 2.2) on the
units of its two cells; its influence function is ``sum_k sign_k (n / n_k) psi_k`` (``psi_k`` zero
off comparison ``k``'s units). The nuisance fits of a comparison (:class:`Comparison`) depend only
on its units and covariates, so one fit serves every period of the same cohort and comparison
group.

With several comparison cohorts ``c = 1..m`` (each giving a DDD ``theta_c`` with influence
``psi_c`` over the cell's units), the GMM estimator is ``w' theta`` with
``w = Omega^-1 1 / (1' Omega^-1 1)``, ``Omega`` the sample covariance of the ``psi_c`` over the
cell's units, and influence function ``psi w`` (moderndid ``_gmm_aggregate``, R ``triplediff``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.did.base import DidPanel
from impactkit.did.drdid import ESTIMATORS, PANEL_ESTIMATORS, PropensityFit, control_gram_inverse, fit_logit
from impactkit.errors import EstimationError, InputError

#: The four cells of a DDD sample, by code.
CELLS = {4: "enabled, eligible", 3: "enabled, ineligible", 2: "not enabled, eligible", 1: "not enabled, ineligible"}
#: The three 2x2 comparisons of the eligible enabled units (cell 4) and their signs in the DDD.
COMPARISONS = ((3, 1.0), (2, 1.0), (1, -1.0))


def subgroups(enabled: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Cell codes 4/3/2/1 (:data:`CELLS`) from ``S`` (1 = enabled) and ``Q`` (1 = eligible)."""
    return np.where(enabled == 1, np.where(eligible == 1, 4, 3), np.where(eligible == 1, 2, 1))


@dataclass(frozen=True)
class Comparison:
    """The nuisance fits of one 2x2 of a DDD: cell 4 against cell ``code``.

    Attributes
    ----------
    code : int
        The comparison cell (3, 2 or 1).
    index : numpy.ndarray
        Positions of the 2x2's units within the DDD sample.
    treated : numpy.ndarray
        1 for cell 4, 0 for the comparison cell.
    design : numpy.ndarray
        ``[1, covariates]`` of those units.
    weights : numpy.ndarray
        Their weights, mean one.
    ps : PropensityFit or None
        Logit propensity score (``dr``, ``ipw``).
    gram_inv : numpy.ndarray or None
        Inverse Gram matrix of the comparison units' outcome regression (``dr``, ``reg``).
    """

    code: int
    index: np.ndarray
    treated: np.ndarray
    design: np.ndarray
    weights: np.ndarray
    ps: PropensityFit | None
    gram_inv: np.ndarray | None


def fit_comparisons(cell: np.ndarray, design: np.ndarray, weights: np.ndarray, est: str, label: str = "ddd",
                    names: tuple[str, ...] = ()) -> list[Comparison]:
    """Fit the nuisance models of the three 2x2s of one DDD sample.

    Parameters
    ----------
    cell : numpy.ndarray
        Cell code (4/3/2/1) of each unit of the sample.
    design : numpy.ndarray
        ``[1, covariates]`` per unit.
    weights : numpy.ndarray
        Sampling weights per unit.
    est : {"dr", "ipw", "reg"}
        The Sant'Anna & Zhao (2020) estimator.
    label : str
        What the DDD is (``"ddd"``, ``"ATT(g, t)"``), for messages.
    names : tuple of str
        Covariate names, for messages.

    Returns
    -------
    list of Comparison
        One per comparison of :data:`COMPARISONS`, in that order.

    Raises
    ------
    InputError
        Unknown ``est``.
    EstimationError
        A cell without units, a singular logit or regression.
    """
    if est not in ESTIMATORS:
        raise InputError(f"est must be one of {ESTIMATORS}, got {est!r}")
    for code in (4, 3, 2, 1):
        if not np.any(cell == code):
            raise EstimationError(f"{label}: no units in the cell '{CELLS[code]}'")
    out = []
    for code, _ in COMPARISONS:
        index = np.flatnonzero((cell == 4) | (cell == code))
        d = (cell[index] == 4).astype(float)
        x = design[index]
        w = weights[index]
        if not (np.any(w[d == 1] > 0) and np.any(w[d == 0] > 0)):
            raise EstimationError(f"{label}: sampling weights are zero for every unit of a cell")
        w = w / w.mean()
        what = f"{label} ({CELLS[4]} vs {CELLS[code]})"
        ps = fit_logit(d, x, w, what, names) if est in ("dr", "ipw") else None
        gram_inv = control_gram_inverse(d, x, w, what, names) if est in ("dr", "reg") else None
        out.append(Comparison(code, index, d, x, w, ps, gram_inv))
    return out


def ddd_estimate(delta_y: np.ndarray, comparisons: list[Comparison], est: str, label: str = "ddd",
                 names: tuple[str, ...] = ()) -> tuple[float, np.ndarray, list[float]]:
    """One DDD (eq. 3.5 / 4.8) from outcome changes and fitted comparisons.

    Parameters
    ----------
    delta_y : numpy.ndarray
        Outcome change (period t minus base period) per unit of the sample.
    comparisons : list of Comparison
        :func:`fit_comparisons` of the same sample.
    est : {"dr", "ipw", "reg"}
        The Sant'Anna & Zhao (2020) estimator.
    label, names
        Used in messages.

    Returns
    -------
    att : float
        ``DiD(4 vs 3) + DiD(4 vs 2) - DiD(4 vs 1)``.
    influence : numpy.ndarray
        Influence function per unit of the sample (``std / sqrt(n)`` is the standard error).
    components : list of float
        The three DiDs, in :data:`COMPARISONS` order.
    """
    n = delta_y.size
    influence = np.zeros(n)
    att = 0.0
    components = []
    for comparison, (_, sign) in zip(comparisons, COMPARISONS):
        index = comparison.index
        what = f"{label} ({CELLS[4]} vs {CELLS[comparison.code]})"
        estimate, inf = PANEL_ESTIMATORS[est](delta_y[index], comparison.treated, comparison.design,
                                              comparison.weights, comparison.ps, what, names, comparison.gram_inv)
        att += sign * estimate
        influence[index] += sign * (n / index.size) * inf
        components.append(float(estimate))
    return float(att), influence, components


def gmm_combine(estimates: np.ndarray, influence: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Optimal GMM combination of DDDs against several comparison cohorts, eq. (4.11)-(4.12).

    Parameters
    ----------
    estimates : numpy.ndarray
        The ``m`` DDD estimates of one ATT(g,t).
    influence : numpy.ndarray
        Their influence functions over the cell's units (``n_cell x m``, each scaled to ``n_cell``).

    Returns
    -------
    att : float
        ``w' estimates``.
    influence : numpy.ndarray
        ``influence @ w`` (per unit of the cell).
    weights : numpy.ndarray
        ``w = Omega^-1 1 / (1' Omega^-1 1)``, ``Omega`` the sample covariance of the columns
        (pseudo-inverse when singular).
    """
    omega = np.atleast_2d(np.cov(influence, rowvar=False))
    try:
        inverse = np.linalg.inv(omega)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(omega)
    ones = np.ones(len(estimates))
    weights = inverse @ ones / (ones @ inverse @ ones)
    return float(weights @ estimates), influence @ weights, weights


def unit_partition(panel: DidPanel, partition: str) -> np.ndarray:
    """The 0/1 ``partition`` column aligned with ``panel.frame`` rows; InputError if absent or not 0/1."""
    if partition not in panel.source.columns:
        raise InputError(f"ddd: partition column '{partition}' not in the data")
    q = pd.to_numeric(panel.source.loc[panel.frame.index, partition], errors="coerce").to_numpy()
    if np.any(~np.isin(q, (0, 1))):
        raise InputError(f"ddd: partition column '{partition}' must be 0/1 without missing values")
    return q.astype(int)


__all__ = ["CELLS", "COMPARISONS", "Comparison", "subgroups", "fit_comparisons", "ddd_estimate", "gmm_combine",
           "unit_partition"]
