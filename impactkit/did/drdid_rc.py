"""Repeated-cross-section 2x2 estimators of Sant'Anna & Zhao (2020, Sec. 3.2).

Used for repeated cross sections and for unbalanced panels, as R ``did`` does with
``allow_unbalanced_panel=TRUE``. Inputs are the stacked rows of the cell (``post`` = 1 for rows
of period t, 0 for rows of the base period); each estimator returns the ATT and its influence
function, one value per row. :func:`impactkit.did.drdid.drdid_rc` fits the nuisance models and
calls them.
"""

from __future__ import annotations

import numpy as np

from impactkit.did.nuisance import PS_TRIM, PropensityFit, colmeans, subset_ols
from impactkit.errors import EstimationError


def att_dr_rc(y: np.ndarray, post: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
              ps: PropensityFit, label: str, names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """Locally efficient DR DiD for repeated cross sections, Sant'Anna & Zhao (2020) eq. (3.4)
    (R ``DRDID::drdid_rc``): ATT and its influence function over the stacked rows.

    The base-period outcome-regression estimation effects enter with a minus sign (the base-period
    terms are subtracted in the estimator), as in R DRDID and csdid; moderndid 0.2.0 adds them.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome per row (both periods stacked).
    post : numpy.ndarray
        1 for rows of the later period, 0 for the base period.
    treated : numpy.ndarray
        0/1 group indicator per row.
    design : numpy.ndarray
        ``[1, covariates]`` per row.
    weights : numpy.ndarray
        Weights (mean one).
    ps : PropensityFit or None
        Propensity-score fit (:func:`fit_logit`); unused by the regression estimator.
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function per row.
    """
    pre = 1.0 - post
    control = 1.0 - treated
    cont_pre, rep_cont_pre = subset_ols(y, control * pre, design, weights, label, names, "comparison units (base)")
    cont_post, rep_cont_post = subset_ols(y, control * post, design, weights, label, names, "comparison units (t)")
    treat_pre, rep_treat_pre = subset_ols(y, treated * pre, design, weights, label, names, "treated units (base)")
    treat_post, rep_treat_post = subset_ols(y, treated * post, design, weights, label, names, "treated units (t)")
    cont_fit = post * cont_post + pre * cont_pre
    keep = np.where(treated == 1, True, ps.score < PS_TRIM)
    odds = ps.score / (1.0 - ps.score)
    w_treat_pre, w_treat_post = keep * weights * treated * pre, keep * weights * treated * post
    w_cont_pre, w_cont_post = keep * weights * odds * control * pre, keep * weights * odds * control * post
    w_d, w_dt1, w_dt0 = keep * weights * treated, w_treat_post, w_treat_pre
    if min(w_cont_pre.mean(), w_cont_post.mean()) == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    residual = y - cont_fit

    def eta(w: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
        scaled = w * values / w.mean()
        return scaled, float(scaled.mean())

    eta_treat_pre, att_treat_pre = eta(w_treat_pre, residual)
    eta_treat_post, att_treat_post = eta(w_treat_post, residual)
    eta_cont_pre, att_cont_pre = eta(w_cont_pre, residual)
    eta_cont_post, att_cont_post = eta(w_cont_post, residual)
    eta_d_post, att_d_post = eta(w_d, treat_post - cont_post)
    eta_dt1_post, att_dt1_post = eta(w_dt1, treat_post - cont_post)
    eta_d_pre, att_d_pre = eta(w_d, treat_pre - cont_pre)
    eta_dt0_pre, att_dt0_pre = eta(w_dt0, treat_pre - cont_pre)
    att = ((att_treat_post - att_treat_pre) - (att_cont_post - att_cont_pre)
           + (att_d_post - att_dt1_post) - (att_d_pre - att_dt0_pre))

    inf_treat = ((eta_treat_post - w_treat_post * att_treat_post / w_treat_post.mean())
                 - (eta_treat_pre - w_treat_pre * att_treat_pre / w_treat_pre.mean())
                 + rep_cont_post @ (-colmeans(w_treat_post * post, design) / w_treat_post.mean())
                 - rep_cont_pre @ (-colmeans(w_treat_pre * pre, design) / w_treat_pre.mean()))
    ps_moment = (colmeans(w_cont_post * (residual - att_cont_post), design) / w_cont_post.mean()
                 - colmeans(w_cont_pre * (residual - att_cont_pre), design) / w_cont_pre.mean())
    inf_cont = ((eta_cont_post - w_cont_post * att_cont_post / w_cont_post.mean())
                - (eta_cont_pre - w_cont_pre * att_cont_pre / w_cont_pre.mean())
                + ps.linear_rep @ ps_moment
                + rep_cont_post @ (-colmeans(w_cont_post * post, design) / w_cont_post.mean())
                - rep_cont_pre @ (-colmeans(w_cont_pre * pre, design) / w_cont_pre.mean()))
    inf_eff = ((eta_d_post - w_d * att_d_post / w_d.mean()) - (eta_dt1_post - w_dt1 * att_dt1_post / w_dt1.mean())
               - (eta_d_pre - w_d * att_d_pre / w_d.mean()) + (eta_dt0_pre - w_dt0 * att_dt0_pre / w_dt0.mean()))
    moment_post = colmeans(w_d / w_d.mean() - w_dt1 / w_dt1.mean(), design)
    moment_pre = colmeans(w_d / w_d.mean() - w_dt0 / w_dt0.mean(), design)
    inf_or = (rep_treat_post - rep_cont_post) @ moment_post - (rep_treat_pre - rep_cont_pre) @ moment_pre
    return float(att), inf_treat - inf_cont + inf_eff + inf_or


def att_ipw_rc(y: np.ndarray, post: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
               ps: PropensityFit, label: str, names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """Normalized IPW DiD for repeated cross sections, Sant'Anna & Zhao (2020) eq. (2.5)
    (R ``DRDID::std_ipw_did_rc``).

    Parameters
    ----------
    y : numpy.ndarray
        Outcome per row (both periods stacked).
    post : numpy.ndarray
        1 for rows of the later period, 0 for the base period.
    treated : numpy.ndarray
        0/1 group indicator per row.
    design : numpy.ndarray
        ``[1, covariates]`` per row.
    weights : numpy.ndarray
        Weights (mean one).
    ps : PropensityFit or None
        Propensity-score fit (:func:`fit_logit`); unused by the regression estimator.
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function per row.
    """
    pre = 1.0 - post
    keep = np.where(treated == 1, True, ps.score < PS_TRIM)
    odds = ps.score / (1.0 - ps.score)
    parts = {"treat_pre": keep * weights * treated * pre, "treat_post": keep * weights * treated * post,
             "cont_pre": keep * weights * odds * (1.0 - treated) * pre,
             "cont_post": keep * weights * odds * (1.0 - treated) * post}
    if min(parts["cont_pre"].mean(), parts["cont_post"].mean()) == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    means = {k: float((w * y).mean() / w.mean()) for k, w in parts.items()}
    inf = {k: (w * y - w * means[k]) / w.mean() for k, w in parts.items()}
    att = (means["treat_post"] - means["treat_pre"]) - (means["cont_post"] - means["cont_pre"])
    ps_moment = (colmeans(parts["cont_post"] * (y - means["cont_post"]), design) / parts["cont_post"].mean()
                 - colmeans(parts["cont_pre"] * (y - means["cont_pre"]), design) / parts["cont_pre"].mean())
    inf_cont = inf["cont_post"] - inf["cont_pre"] + ps.linear_rep @ ps_moment
    return float(att), (inf["treat_post"] - inf["treat_pre"]) - inf_cont


def att_reg_rc(y: np.ndarray, post: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
               ps: PropensityFit | None, label: str, names: tuple[str, ...] = ()) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD for repeated cross sections, Sant'Anna & Zhao (2020) eq. (2.3)
    (R ``DRDID::reg_did_rc``).

    Parameters
    ----------
    y : numpy.ndarray
        Outcome per row (both periods stacked).
    post : numpy.ndarray
        1 for rows of the later period, 0 for the base period.
    treated : numpy.ndarray
        0/1 group indicator per row.
    design : numpy.ndarray
        ``[1, covariates]`` per row.
    weights : numpy.ndarray
        Weights (mean one).
    ps : PropensityFit or None
        Propensity-score fit (:func:`fit_logit`); unused by the regression estimator.
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names.

    Returns
    -------
    att : float
    influence : numpy.ndarray
        Influence function per row.
    """
    pre = 1.0 - post
    control = 1.0 - treated
    fit_pre, rep_pre = subset_ols(y, control * pre, design, weights, label, names, "comparison units (base)")
    fit_post, rep_post = subset_ols(y, control * post, design, weights, label, names, "comparison units (t)")
    w_treat_pre, w_treat_post, w_cont = weights * treated * pre, weights * treated * post, weights * treated
    eta_treat_pre = (w_treat_pre * y).mean() / w_treat_pre.mean()
    eta_treat_post = (w_treat_post * y).mean() / w_treat_post.mean()
    cont_change = w_cont * (fit_post - fit_pre)
    eta_cont = cont_change.mean() / w_cont.mean()
    att = (eta_treat_post - eta_treat_pre) - eta_cont
    inf_treat = ((w_treat_post * y - w_treat_post * eta_treat_post) / w_treat_post.mean()
                 - (w_treat_pre * y - w_treat_pre * eta_treat_pre) / w_treat_pre.mean())
    moment = colmeans(w_cont, design)
    inf_cont = (cont_change - w_cont * eta_cont + rep_post @ moment - rep_pre @ moment) / w_cont.mean()
    return float(att), inf_treat - inf_cont


RC_ESTIMATORS = {"dr": att_dr_rc, "ipw": att_ipw_rc, "reg": att_reg_rc}
