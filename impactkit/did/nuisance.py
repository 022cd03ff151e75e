"""The nuisance fits shared by the 2x2 estimators of Sant'Anna & Zhao (2020).

The logit propensity score (:func:`fit_logit`), weighted least squares within a subset of rows
(:func:`subset_ols`; the comparison group's regression :func:`control_ols`), the trimmed
inverse-probability weights and the collinearity diagnostics that name the covariates to drop.
Each fit also returns the asymptotic linear representation of its coefficients, which the
estimators in :mod:`impactkit.did.drdid` and :mod:`impactkit.did.drdid_rc` add to their
influence functions (Sant'Anna & Zhao 2020, proof of Theorem 3.1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from impactkit.errors import EstimationError, ImpactkitWarning

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


def subset_gram_inverse(subset: np.ndarray, design: np.ndarray, weights: np.ndarray, label: str,
                        names: tuple[str, ...], what: str) -> np.ndarray:
    """``(X' Ws X / n)^-1`` over the rows of ``subset`` (``Ws = w s``); EstimationError if singular.

    Parameters
    ----------
    subset : numpy.ndarray
        0/1 per row: the rows the regression uses.
    design : numpy.ndarray
        ``[1, covariates]`` (n x k).
    weights : numpy.ndarray
        Weights (mean one).
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names, for messages.
    what : str
        The rows of ``subset`` in words (``"comparison units"``), for messages.

    Returns
    -------
    numpy.ndarray
        ``k x k`` inverse.

    Raises
    ------
    EstimationError
        The subset's Gram matrix is singular; the message names the collinear covariates.
    """
    gram = design.T @ (design * (weights * subset)[:, None]) / len(design)
    if np.linalg.cond(gram) > 1.0 / np.finfo(float).eps:
        bad = collinear_columns(design[subset == 1], names)
        raise EstimationError(f"outcome regression for {label} is singular among {what}"
                              f"{': collinear ' + str(bad) if bad else ''}")
    return np.linalg.inv(gram)


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
    return subset_gram_inverse(1.0 - treated, design, weights, label, names, "comparison units")


def subset_ols(y: np.ndarray, subset: np.ndarray, design: np.ndarray, weights: np.ndarray, label: str,
               names: tuple[str, ...], what: str, gram_inv: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS of ``y`` on ``design`` within ``subset``: fitted values for every row and the
    coefficients' linear representation ``w s e X (X'WsX/n)^-1``.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome (or outcome change) per row.
    subset : numpy.ndarray
        0/1 per row: the rows the regression uses.
    design : numpy.ndarray
        ``[1, covariates]`` (n x k).
    weights : numpy.ndarray
        Weights (mean one).
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names, for messages.
    what : str
        The rows of ``subset`` in words, for messages.
    gram_inv : numpy.ndarray, optional
        :func:`subset_gram_inverse` of the same subset, when shared across cells.

    Returns
    -------
    fitted : numpy.ndarray
        Fitted values, one per row (outside the subset too).
    linear_rep : numpy.ndarray
        n x k linear representation of the coefficients (zero outside the subset).
    """
    n = len(y)
    ols_weights = weights * subset
    if gram_inv is None:
        gram_inv = subset_gram_inverse(subset, design, weights, label, names, what)
    fitted = design @ (gram_inv @ (design.T @ (ols_weights * y) / n))
    linear_rep = (ols_weights * (y - fitted))[:, None] * design @ gram_inv
    return fitted, linear_rep


def control_ols(delta_y: np.ndarray, treated: np.ndarray, design: np.ndarray, weights: np.ndarray,
                label: str, names: tuple[str, ...], gram_inv: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`subset_ols` of the outcome change among comparison units (``treated == 0``).

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
    label : str
        The 2x2, for messages.
    names : tuple of str
        Covariate names, for messages.
    gram_inv : numpy.ndarray, optional
        :func:`control_gram_inverse`, when shared across cells.

    Returns
    -------
    fitted : numpy.ndarray
        Fitted changes for every unit.
    linear_rep : numpy.ndarray
        ``w (1 - D) e X (X'W0X/n)^-1``, n x k.
    """
    return subset_ols(delta_y, 1.0 - treated, design, weights, label, names, "comparison units", gram_inv)


def trimmed_control_weights(treated: np.ndarray, weights: np.ndarray,
                            ps: PropensityFit) -> tuple[np.ndarray, np.ndarray]:
    """Treated weights ``w D`` and comparison weights ``w p (1 - D) / (1 - p)``, zero if ``p >= 0.995``.

    Parameters
    ----------
    treated : numpy.ndarray
        0/1 group indicator.
    weights : numpy.ndarray
        Weights (mean one).
    ps : PropensityFit
        Fitted propensity scores (:func:`fit_logit`).

    Returns
    -------
    w_treat, w_cont : numpy.ndarray
        Treated and (trimmed) comparison weights per unit.
    """
    keep = np.where(treated == 1, True, ps.score < PS_TRIM)
    w_treat = weights * treated
    w_cont = keep * weights * ps.score * (1.0 - treated) / (1.0 - ps.score)
    return w_treat, w_cont


def colmeans(weights: np.ndarray, design: np.ndarray) -> np.ndarray:
    """``sum_i w_i x_i / n``: the weighted column means of ``design`` over all ``n`` rows.

    Parameters
    ----------
    weights : numpy.ndarray
        One weight per row (zero outside the group being averaged).
    design : numpy.ndarray
        ``[1, covariates]`` (n x k).

    Returns
    -------
    numpy.ndarray
        k values.
    """
    return weights @ design / len(design)
