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
them. Propensity scores are clipped to ``[1e-6, 1 - 1e-6]`` and comparison units with a score
of 0.995 or more get weight zero (DRDID's trimming).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from impactkit.errors import EstimationError, ImpactkitWarning, InputError

ESTIMATORS = ("dr", "ipw", "reg")
PS_CLIP = 1e-6
PS_TRIM = 0.995


def collinear_columns_from_gram(gram: np.ndarray, names: tuple[str, ...], rel_tol: float = 1e-10) -> list[str]:
    """Names of covariates that are linear combinations of the intercept and earlier covariates.

    ``gram`` is ``X'X/n`` for ``X = [1, covariates]``. Column ``j`` is collinear when its residual
    second moment after projecting on the kept earlier columns (a Schur complement, i.e. the
    squared diagonal of R in a QR decomposition) is below ``rel_tol`` times its own (R^2 > 1 - 1e-10).
    """
    labels = ("(intercept)",) + names
    kept: list[int] = []
    collinear = []
    for j in range(gram.shape[0]):
        own = gram[j, j]
        residual = own
        if kept:
            cross = gram[np.ix_(kept, [j])]
            residual = own - float((cross.T @ np.linalg.solve(gram[np.ix_(kept, kept)], cross))[0, 0])
        if own <= 0 or residual <= rel_tol * own:
            if j > 0:
                collinear.append(labels[j])
            continue
        kept.append(j)
    return collinear


def collinear_columns(design: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """:func:`collinear_columns_from_gram` for a design matrix ``[1, covariates]``."""
    if design.shape[0] == 0:
        return []
    return collinear_columns_from_gram(design.T @ design / design.shape[0], names)



# --------------------------------------------------------------------------------------------
# the 2x2 panel estimators of Sant'Anna & Zhao (2020); inputs already restricted to the cell
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PropensityFit:
    """Fitted logit scores (clipped) and the asymptotic linear representation of its coefficients."""

    score: np.ndarray
    linear_rep: np.ndarray   # n x k: psi of the logit coefficients (score x n * inverse Hessian)


def fit_logit(treated: np.ndarray, design: np.ndarray, weights: np.ndarray, label: str,
              names: tuple[str, ...] = (), max_iter: int = 100, tol: float = 1e-13) -> PropensityFit:
    """Weighted logit MLE by Newton-Raphson (the fixed point of R ``glm(..., binomial)``).

    Returns scores clipped to ``[1e-6, 1 - 1e-6]`` and ``psi_beta = w (D - p) X (X'WX/n)^-1``
    (Sant'Anna & Zhao 2020, proof of Theorem 3.1), with ``W = w p (1 - p)``.

    Parameters
    ----------
    treated : numpy.ndarray
        0/1 group indicator.
    design : numpy.ndarray
        ``[1, covariates]`` (n x k).
    weights : numpy.ndarray
        Weights (mean one).
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names, for messages.
    max_iter : int, default 100
        Newton iterations.
    tol : float, default 1e-13
        Relative step tolerance.

    Returns
    -------
    PropensityFit
        Clipped scores and the coefficients' linear representation.

    Raises
    ------
    EstimationError
        Collinear covariates or a singular Hessian (separation).
    """
    n, k = design.shape
    if np.linalg.cond(design.T @ (design * weights[:, None])) > 1.0 / np.finfo(float).eps:
        bad = collinear_columns(design * np.sqrt(weights)[:, None], names)
        raise EstimationError(f"propensity score for {label} is not identified: covariates collinear"
                              f"{' ' + str(bad) if bad else ''} in the cohort and its comparison units")
    share = np.sum(weights * treated) / np.sum(weights)
    beta = np.zeros(k)
    beta[0] = np.log(share / (1.0 - share))
    converged = False
    for _ in range(max_iter):
        prob = expit(design @ beta)
        gradient = design.T @ (weights * (treated - prob))
        hessian = design.T @ (design * (weights * prob * (1.0 - prob))[:, None])
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError as exc:
            raise EstimationError(f"propensity score for {label} is not identified (singular logit Hessian; "
                                  "separation?)") from exc
        beta = beta + step
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(beta))):
            converged = True
            break
    if not converged or not np.all(np.isfinite(beta)):
        warnings.warn(f"propensity score logit for {label} did not converge (possible separation)",
                      ImpactkitWarning, stacklevel=3)
    score = np.clip(expit(design @ beta), PS_CLIP, 1.0 - PS_CLIP)
    info = design.T @ (design * (weights * score * (1.0 - score))[:, None]) / n
    linear_rep = (weights * (treated - score))[:, None] * design @ np.linalg.inv(info)
    return PropensityFit(score, linear_rep)


def control_gram_inverse(treated: np.ndarray, design: np.ndarray, weights: np.ndarray, label: str,
                         names: tuple[str, ...]) -> np.ndarray:
    """``(X' W0 X / n)^-1`` over comparison units (``W0 = w (1 - D)``); EstimationError if singular.

    Parameters
    ----------
    treated : numpy.ndarray
        0/1 group indicator.
    design : numpy.ndarray
        ``[1, covariates]`` (n x k).
    weights : numpy.ndarray
        Weights (mean one).
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names, for messages.

    Returns
    -------
    numpy.ndarray
        ``k x k`` inverse.
    """
    control_weights = weights * (1.0 - treated)
    gram = design.T @ (design * control_weights[:, None]) / len(design)
    if np.linalg.cond(gram) > 1.0 / np.finfo(float).eps:
        bad = collinear_columns(design[treated == 0], names)
        raise EstimationError(f"outcome regression for {label} is singular among comparison units"
                              f"{': collinear ' + str(bad) if bad else ''}")
    return np.linalg.inv(gram)


def _control_ols(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                 label: str, names: tuple[str, ...], gram_inv: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS of the outcome change on covariates among comparison units.

    Returns fitted changes for every unit and the coefficients' linear representation
    ``w (1 - D) e X (X'W0X/n)^-1``; ``gram_inv`` may be passed when shared across cells.
    """
    n = len(delta_y)
    control_weights = weights * (1.0 - treated)
    if gram_inv is None:
        gram_inv = control_gram_inverse(treated, design, weights, label, names)
    beta = gram_inv @ (design.T @ (control_weights * delta_y) / n)
    fitted = design @ beta
    linear_rep = (control_weights * (delta_y - fitted))[:, None] * design @ gram_inv
    return fitted, linear_rep


def _trimmed_control_weights(treated: np.ndarray, weights: np.ndarray,
                             ps: PropensityFit) -> tuple[np.ndarray, np.ndarray]:
    """Treated weights ``w D`` and comparison weights ``w p (1 - D) / (1 - p)``, zero if ``p >= 0.995``."""
    keep = np.where(treated == 1, True, ps.score < PS_TRIM)
    w_treat = weights * treated
    w_cont = keep * weights * ps.score * (1.0 - treated) / (1.0 - ps.score)
    return w_treat, w_cont


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
    fitted, ols_rep = _control_ols(delta_y, treated, design, weights, label, names, gram_inv)
    w_treat, w_cont = _trimmed_control_weights(treated, weights, ps)
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
    w_treat, w_cont = _trimmed_control_weights(treated, weights, ps)
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
    fitted, ols_rep = _control_ols(delta_y, treated, design, weights, label, names, gram_inv)
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


# --------------------------------------------------------------------------------------------
# repeated-cross-section estimators (Sant'Anna & Zhao 2020, Sec. 3.2), used for unbalanced
# panels as R ``did`` does with ``allow_unbalanced_panel=TRUE``; inputs are the stacked rows of
# the cell (``post`` = 1 for rows of period t, 0 for rows of the base period)
# --------------------------------------------------------------------------------------------
def _subset_ols(y: np.ndarray, subset: np.ndarray, design: np.ndarray, weights: np.ndarray,
                label: str, names: tuple[str, ...], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS of ``y`` on ``design`` within ``subset`` (0/1): fitted values for all rows and
    the coefficients' linear representation ``w s e X (X'WsX/n)^-1``."""
    n = len(y)
    ols_weights = weights * subset
    gram = design.T @ (design * ols_weights[:, None]) / n
    if np.linalg.cond(gram) > 1.0 / np.finfo(float).eps:
        bad = collinear_columns(design[subset == 1], names)
        raise EstimationError(f"outcome regression for {label} is singular among {what}"
                              f"{': collinear ' + str(bad) if bad else ''}")
    gram_inv = np.linalg.inv(gram)
    fitted = design @ (gram_inv @ (design.T @ (ols_weights * y) / n))
    linear_rep = (ols_weights * (y - fitted))[:, None] * design @ gram_inv
    return fitted, linear_rep


def _colmeans(weights: np.ndarray, design: np.ndarray) -> np.ndarray:
    return weights @ design / len(design)


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
    cont_pre, rep_cont_pre = _subset_ols(y, control * pre, design, weights, label, names, "comparison units (base)")
    cont_post, rep_cont_post = _subset_ols(y, control * post, design, weights, label, names, "comparison units (t)")
    treat_pre, rep_treat_pre = _subset_ols(y, treated * pre, design, weights, label, names, "treated units (base)")
    treat_post, rep_treat_post = _subset_ols(y, treated * post, design, weights, label, names, "treated units (t)")
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
                 + rep_cont_post @ (-_colmeans(w_treat_post * post, design) / w_treat_post.mean())
                 - rep_cont_pre @ (-_colmeans(w_treat_pre * pre, design) / w_treat_pre.mean()))
    ps_moment = (_colmeans(w_cont_post * (residual - att_cont_post), design) / w_cont_post.mean()
                 - _colmeans(w_cont_pre * (residual - att_cont_pre), design) / w_cont_pre.mean())
    inf_cont = ((eta_cont_post - w_cont_post * att_cont_post / w_cont_post.mean())
                - (eta_cont_pre - w_cont_pre * att_cont_pre / w_cont_pre.mean())
                + ps.linear_rep @ ps_moment
                + rep_cont_post @ (-_colmeans(w_cont_post * post, design) / w_cont_post.mean())
                - rep_cont_pre @ (-_colmeans(w_cont_pre * pre, design) / w_cont_pre.mean()))
    inf_eff = ((eta_d_post - w_d * att_d_post / w_d.mean()) - (eta_dt1_post - w_dt1 * att_dt1_post / w_dt1.mean())
               - (eta_d_pre - w_d * att_d_pre / w_d.mean()) + (eta_dt0_pre - w_dt0 * att_dt0_pre / w_dt0.mean()))
    moment_post = _colmeans(w_d / w_d.mean() - w_dt1 / w_dt1.mean(), design)
    moment_pre = _colmeans(w_d / w_d.mean() - w_dt0 / w_dt0.mean(), design)
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
    ps_moment = (_colmeans(parts["cont_post"] * (y - means["cont_post"]), design) / parts["cont_post"].mean()
                 - _colmeans(parts["cont_pre"] * (y - means["cont_pre"]), design) / parts["cont_pre"].mean())
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
    fit_pre, rep_pre = _subset_ols(y, control * pre, design, weights, label, names, "comparison units (base)")
    fit_post, rep_post = _subset_ols(y, control * post, design, weights, label, names, "comparison units (t)")
    w_treat_pre, w_treat_post, w_cont = weights * treated * pre, weights * treated * post, weights * treated
    eta_treat_pre = (w_treat_pre * y).mean() / w_treat_pre.mean()
    eta_treat_post = (w_treat_post * y).mean() / w_treat_post.mean()
    cont_change = w_cont * (fit_post - fit_pre)
    eta_cont = cont_change.mean() / w_cont.mean()
    att = (eta_treat_post - eta_treat_pre) - eta_cont
    inf_treat = ((w_treat_post * y - w_treat_post * eta_treat_post) / w_treat_post.mean()
                 - (w_treat_pre * y - w_treat_pre * eta_treat_pre) / w_treat_pre.mean())
    moment = _colmeans(w_cont, design)
    inf_cont = (cont_change - w_cont * eta_cont + rep_post @ moment - rep_pre @ moment) / w_cont.mean()
    return float(att), inf_treat - inf_cont


RC_ESTIMATORS = {"dr": att_dr_rc, "ipw": att_ipw_rc, "reg": att_reg_rc}


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
