"""The 2x2 difference-in-differences estimators of Sant'Anna & Zhao (2020).

Reference: Sant'Anna, P. H. C. & Zhao, J. (2020), "Doubly robust difference-in-differences
estimators", *Journal of Econometrics* 219(1), 101-122; R package ``DRDID``. One comparison of
a treated group with a comparison group between a base period and a later period:

=================  =============================  ==================================================
estimator          panel data                     repeated cross sections
=================  =============================  ==================================================
doubly robust      :func:`att_dr_panel` (3.1)      :func:`att_dr_rc` (3.4, locally efficient)
normalized IPW     :func:`att_ipw_panel` (2.4)     :func:`att_ipw_rc` (2.5)
outcome regression :func:`att_reg_panel` (2.2)     :func:`att_reg_rc` (2.3)
=================  =============================  ==================================================

Each returns the ATT and its influence function (one value per unit, or per row for repeated
cross sections), so callers aggregate and cluster without refitting. :func:`drdid_panel` and
:func:`drdid_rc` fit the propensity score / outcome regression and call the estimator; the
Callaway-Sant'Anna estimator (:mod:`impactkit.did.cs`) and the other staggered estimators share
them. The nuisance fits are in :mod:`impactkit.did.nuisance`, the repeated-cross-section
estimators in :mod:`impactkit.did.drdid_rc` (both re-exported here). Propensity scores are
clipped to ``[1e-6, 1 - 1e-6]`` and comparison units with a score of 0.995 or more get weight
zero (DRDID's trimming).
"""


from __future__ import annotations

import numpy as np

from impactkit.did.drdid_rc import RC_ESTIMATORS, att_dr_rc, att_ipw_rc, att_reg_rc  # noqa: F401 (re-exported)
from impactkit.did.nuisance import (  # noqa: F401  (re-exported: the nuisance fits lived here)
    ESTIMATORS,
    PS_CLIP,
    PS_TRIM,
    PropensityFit,
    collinear_columns,
    collinear_columns_from_gram,
    control_gram_inverse,
    control_ols,
    fit_logit,
    trimmed_control_weights,
)
from impactkit.errors import EstimationError, InputError


# --------------------------------------------------------------------------------------------
# the 2x2 panel estimators of Sant'Anna & Zhao (2020); inputs already restricted to the cell
# --------------------------------------------------------------------------------------------
def att_dr_panel(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                 ps: PropensityFit, label: str, names: tuple[str, ...] = (),
                 gram_inv: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Locally efficient DR DiD, Sant'Anna & Zhao (2020) eq. (3.1); ATT and influence function.

    Parameters
    ----------
    delta_y : numpy.ndarray
        Outcome change per unit.
    treated : numpy.ndarray
        0/1 group indicator.
    design : numpy.ndarray
        ``[1, covariates]`` at the base period.
    weights : numpy.ndarray
        Weights (mean one).
    ps : PropensityFit or None
        Propensity-score fit (:func:`fit_logit`); unused by the regression estimator.
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names.
    gram_inv : numpy.ndarray, optional
        :func:`control_gram_inverse`, when shared across cells.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function per unit.
    """
    fitted, ols_rep = control_ols(delta_y, treated, design, weights, label, names, gram_inv)
    w_treat, w_cont = trimmed_control_weights(treated, weights, ps)
    mean_treat, mean_cont = w_treat.mean(), w_cont.mean()
    if mean_cont == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    residual = delta_y - fitted
    dr_treat = w_treat * residual
    dr_cont = w_cont * residual
    eta_treat = dr_treat.mean() / mean_treat
    eta_cont = dr_cont.mean() / mean_cont
    inf_treat = (dr_treat - w_treat * eta_treat - ols_rep @ (w_treat @ design / len(design))) / mean_treat
    cont_centered = dr_cont - w_cont * eta_cont
    inf_cont = (cont_centered + ps.linear_rep @ (cont_centered @ design / len(design))
                - ols_rep @ (w_cont @ design / len(design))) / mean_cont
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def att_ipw_panel(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                  ps: PropensityFit, label: str, names: tuple[str, ...] = (),
                  gram_inv: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Normalized (Hajek) IPW DiD, Abadie (2005) / Sant'Anna & Zhao (2020) eq. (2.4).

    Parameters
    ----------
    delta_y : numpy.ndarray
        Outcome change per unit.
    treated : numpy.ndarray
        0/1 group indicator.
    design : numpy.ndarray
        ``[1, covariates]`` at the base period.
    weights : numpy.ndarray
        Weights (mean one).
    ps : PropensityFit or None
        Propensity-score fit (:func:`fit_logit`); unused by the regression estimator.
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names.
    gram_inv : numpy.ndarray, optional
        :func:`control_gram_inverse`, when shared across cells.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function per unit.
    """
    w_treat, w_cont = trimmed_control_weights(treated, weights, ps)
    mean_treat, mean_cont = w_treat.mean(), w_cont.mean()
    if mean_cont == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    att_treat = w_treat * delta_y
    att_cont = w_cont * delta_y
    eta_treat = att_treat.mean() / mean_treat
    eta_cont = att_cont.mean() / mean_cont
    inf_treat = (att_treat - w_treat * eta_treat) / mean_treat
    cont_centered = att_cont - w_cont * eta_cont
    inf_cont = (cont_centered + ps.linear_rep @ (cont_centered @ design / len(design))) / mean_cont
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def att_reg_panel(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                  ps: PropensityFit | None, label: str, names: tuple[str, ...] = (),
                  gram_inv: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD, Heckman, Ichimura & Todd (1997); Sant'Anna & Zhao (2020) eq. (2.2).

    Parameters
    ----------
    delta_y : numpy.ndarray
        Outcome change per unit.
    treated : numpy.ndarray
        0/1 group indicator.
    design : numpy.ndarray
        ``[1, covariates]`` at the base period.
    weights : numpy.ndarray
        Weights (mean one).
    ps : PropensityFit or None
        Propensity-score fit (:func:`fit_logit`); unused by the regression estimator.
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names.
    gram_inv : numpy.ndarray, optional
        :func:`control_gram_inverse`, when shared across cells.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function per unit.
    """
    fitted, ols_rep = control_ols(delta_y, treated, design, weights, label, names, gram_inv)
    w_treat = weights * treated
    mean_treat = w_treat.mean()
    att_treat = w_treat * delta_y
    att_cont = w_treat * fitted
    eta_treat = att_treat.mean() / mean_treat
    eta_cont = att_cont.mean() / mean_treat
    inf_treat = (att_treat - w_treat * eta_treat) / mean_treat
    inf_cont = (att_cont - w_treat * eta_cont + ols_rep @ (w_treat @ design / len(design))) / mean_treat
    return float(eta_treat - eta_cont), inf_treat - inf_cont


PANEL_ESTIMATORS = {"dr": att_dr_panel, "ipw": att_ipw_panel, "reg": att_reg_panel}


def drdid_panel(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray | None = None,
                weights: np.ndarray | None = None, est: str = "dr", label: str = "2x2",
                names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """One panel 2x2 by Sant'Anna & Zhao (2020): ATT and per-unit influence function.

    Parameters
    ----------
    delta_y : numpy.ndarray
        Outcome change (period t minus base period), one value per unit.
    treated : numpy.ndarray
        1 for the treated group, 0 for the comparison group.
    design : numpy.ndarray, optional
        ``[1, covariates]`` at the base period (n x (1 + k)); an intercept only by default.
    weights : numpy.ndarray, optional
        Sampling weights (normalized to mean one here).
    est : {"dr", "ipw", "reg"}
        Doubly robust (eq. 3.1), normalized IPW (eq. 2.4) or outcome regression (eq. 2.2).
    label, names
        Used in messages: what the 2x2 is, and the covariate names.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function, one value per unit; ``std(influence) / sqrt(n)`` is the standard error.

    Raises
    ------
    InputError
        Unknown ``est``.
    EstimationError
        No treated or comparison units, a singular logit or regression.
    """
    if est not in ESTIMATORS:
        raise InputError(f"est must be one of {ESTIMATORS}, got {est!r}")
    delta_y, treated = np.asarray(delta_y, float), np.asarray(treated, float)
    design = np.ones((len(delta_y), 1)) if design is None else np.asarray(design, float)
    weights = np.ones(len(delta_y)) if weights is None else np.asarray(weights, float)
    if not (np.any(treated == 1) and np.any(treated == 0)):
        raise EstimationError(f"{label}: needs treated and comparison units")
    weights = weights / weights.mean()
    ps = fit_logit(treated, design, weights, label, names) if est in ("dr", "ipw") else None
    gram_inv = control_gram_inverse(treated, design, weights, label, names) if est in ("dr", "reg") else None
    return PANEL_ESTIMATORS[est](delta_y, treated, design, weights, ps, label, names, gram_inv)


def drdid_rc(y: np.ndarray, post: np.ndarray, treated: np.ndarray, design: np.ndarray | None = None,
             weights: np.ndarray | None = None, est: str = "dr", label: str = "2x2",
             names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """One repeated-cross-section 2x2 by Sant'Anna & Zhao (2020): ATT and per-row influence function.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome, one value per row (rows of the base period and of period t stacked).
    post : numpy.ndarray
        1 for rows of period t, 0 for rows of the base period.
    treated : numpy.ndarray
        1 for rows of the treated group, 0 for the comparison group.
    design : numpy.ndarray, optional
        ``[1, covariates]`` per row; an intercept only by default.
    weights : numpy.ndarray, optional
        Sampling weights (normalized to mean one here).
    est : {"dr", "ipw", "reg"}
        Locally efficient doubly robust (eq. 3.4), normalized IPW (eq. 2.5) or outcome regression (eq. 2.3).
    label, names
        Used in messages.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function, one value per row.
    """
    if est not in ESTIMATORS:
        raise InputError(f"est must be one of {ESTIMATORS}, got {est!r}")
    y, post, treated = np.asarray(y, float), np.asarray(post, float), np.asarray(treated, float)
    design = np.ones((len(y), 1)) if design is None else np.asarray(design, float)
    weights = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    for d in (0, 1):
        for t in (0, 1):
            if not np.any((treated == d) & (post == t)):
                raise EstimationError(f"{label}: no {'treated' if d else 'comparison'} rows in the "
                                      f"{'later' if t else 'base'} period")
    weights = weights / weights.mean()
    ps = fit_logit(treated, design, weights, label, names) if est in ("dr", "ipw") else None
    return RC_ESTIMATORS[est](y, post, treated, design, weights, ps, label, names)
