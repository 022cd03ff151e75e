"""Callaway-Sant'Anna on Dask, step 3: global parameters from the reduced sums.

The propensity-score logit of every cell is fitted by distributed iteratively reweighted least
squares (Newton-Raphson, the fixed point of R ``glm``; McCullagh & Nelder 1989, Sec. 2.5): each
iteration adds up per-block gradients ``X'W(D - p)`` and Hessians ``X' diag(w p (1-p)) X`` for all
cells at once (:func:`fit_logits`). :func:`panel_params` and :func:`rc_params` turn the reduced
counts and moments into the outcome-regression coefficients, the means and the moment vectors of
the Sant'Anna & Zhao (2020) panel and repeated-cross-section estimators (doubly robust eq. 3.4,
normalized IPW eq. 2.5, outcome regression eq. 2.3, as :mod:`impactkit.did.drdid_rc`).
"""

from __future__ import annotations

import warnings

import numpy as np

from impactkit.distributed.cs_passes import RC_SUBSETS, pass_logit
from impactkit.distributed.reduce import add, map_blocks
from impactkit.errors import EstimationError, ImpactkitWarning

LOGIT_MAX_ITER = 100
LOGIT_TOL = 1e-13


def check_sides(n_treat: float, n_cont: float, label: str, control: str, where: str) -> bool:
    if n_cont == 0:
        hint = "use control='notyet'" if control == "never" else "drop this cohort"
        raise EstimationError(f"no {control}-treated control units for {label}{where}; {hint}")
    return n_treat > 0


def checked_inverse(matrix: np.ndarray, what: str, label: str) -> np.ndarray:
    if np.linalg.cond(matrix) > 1.0 / np.finfo(float).eps:
        raise EstimationError(f"{what} for {label} is singular (collinear covariates?)")
    return np.linalg.inv(matrix)


def fit_logits(blocks, cells, panel, counts, active, labels) -> list:
    """Distributed Newton-Raphson of every active cell's logit, all cells per pass."""
    betas, wbars = [], []
    for c, on, label in zip(counts, active, labels):
        if not on:
            betas.append(None), wbars.append(None)
            continue
        checked_inverse(c["xwx"], "propensity score", label)
        share = c["sum_wd"] / c["sum_w"]
        beta = np.zeros(c["xwx"].shape[0])
        beta[0] = np.log(share / (1.0 - share))
        betas.append(beta), wbars.append(c["sum_w"] / c["N"])
    running = [b is not None for b in betas]
    for _ in range(LOGIT_MAX_ITER):
        if not any(running):
            break
        current = [b if r else None for b, r in zip(betas, running)]
        sums = add(map_blocks(pass_logit, blocks, cells, panel, current, wbars))
        for j, s in enumerate(sums):
            if not running[j]:
                continue
            try:
                step = np.linalg.solve(s["hess"], s["grad"])
            except np.linalg.LinAlgError:
                raise EstimationError(f"propensity score for {labels[j]} is not identified (singular logit "
                                      "Hessian; separation?)") from None
            betas[j] = betas[j] + step
            if np.max(np.abs(step)) <= LOGIT_TOL * (1.0 + np.max(np.abs(betas[j]))):
                running[j] = False
    for j, r in enumerate(running):
        if r:
            warnings.warn(f"propensity score logit for {labels[j]} did not converge (possible separation)",
                          ImpactkitWarning, stacklevel=3)
    return betas


def panel_params(est: str, c: dict, beta, m: dict | None) -> dict:
    N, wbar = c["N"], c["sum_w"] / c["N"]
    p = {"est": est, "N": N, "wbar": wbar, "ps_beta": beta, "ols_beta": None}
    if est in ("dr", "reg"):
        gram = c["ols_gram"] / wbar / N
        p["ols_inv"] = checked_inverse(gram, "outcome regression", "cell")
        p["ols_beta"] = p["ols_inv"] @ (c["ols_xy"] / wbar / N)
    if m is None:
        return p
    p["mean_treat"] = m["s_treat"] / N
    if est == "reg":
        p["eta_treat"] = m["s_treat_y"] / N / p["mean_treat"]
        p["eta_cont"] = m["s_treat_fit"] / N / p["mean_treat"]
        p["m_treat"] = m["x_treat"] / N
        p["att"] = p["eta_treat"] - p["eta_cont"]
        return p
    p["mean_cont"] = m["s_cont"] / N
    if p["mean_cont"] == 0:
        raise EstimationError("no comparison units left after propensity-score trimming")
    p["eta_treat"] = m["s_treat_res"] / N / p["mean_treat"]
    p["eta_cont"] = m["s_cont_res"] / N / p["mean_cont"]
    p["m_treat"], p["m_cont"] = m["x_treat"] / N, m["x_cont"] / N
    p["m_ps"] = (m["x_cont_res"] - p["eta_cont"] * m["x_cont"]) / N
    p["info_inv"] = np.linalg.inv(m["info"] / N)
    p["att"] = p["eta_treat"] - p["eta_cont"]
    return p


# Outcome regressions each repeated-cross-section estimator fits (Sant'Anna & Zhao 2020, Sec. 3.2):
# the DR estimator (eq. 3.4) all four, the regression estimator (eq. 2.3) the comparison group's two,
# normalized IPW (eq. 2.5) none: it is eq. 3.4 with every outcome regression set to zero.
RC_FITTED = {"dr": RC_SUBSETS, "reg": ("cont_pre", "cont_post"), "ipw": ()}


def rc_params(est: str, c: dict, beta, m: dict | None, label: str) -> dict:
    """Repeated-cross-section parameters of one cell: the outcome regressions (before the moment
    pass), then the means, moment vectors and ATT of ``est`` (after it)."""
    N, wbar = c["N"], c["sum_w"] / c["N"]
    p = {"est": est, "N": N, "wbar": wbar, "ps_beta": beta, "rc_beta": {}, "rc_inv": {}}
    for name in RC_FITTED[est]:
        inv = checked_inverse(c[f"gram_{name}"] / wbar / N, f"outcome regression ({name.replace('_', ' ')})", label)
        p["rc_inv"][name] = inv
        p["rc_beta"][name] = inv @ (c[f"xy_{name}"] / wbar / N)
    if m is None:
        return p
    if est == "reg":
        M = {k: m[f"S_{k}"] / N for k in ("tp", "tq", "d")}
        A = {"tp": m["R_tp"] / N / M["tp"], "tq": m["R_tq"] / N / M["tq"], "change": m["E_change"] / N / M["d"]}
        p.update(M=M, A=A, moment_change=m["X_d"] / N / M["d"])
        p["att"] = (A["tq"] - A["tp"]) - A["change"]
        return p
    M = {k: m[f"S_{k}"] / N for k in ("tp", "tq", "cp", "cq", "d")}
    if min(M["cp"], M["cq"]) == 0:
        raise EstimationError(f"no comparison units left for {label} after propensity-score trimming")
    A = {k: m[f"R_{k}"] / N / M[k] for k in ("tp", "tq", "cp", "cq")}
    A.update(d_post=m["E_d_post"] / N / M["d"], dt1_post=m["E_dt1_post"] / N / M["tq"],
             d_pre=m["E_d_pre"] / N / M["d"], dt0_pre=m["E_dt0_pre"] / N / M["tp"])
    cm = {k: m[f"X_{k}"] / N for k in ("tp", "tq", "cp", "cq", "d")}
    p.update(M=M, A=A, cm=cm, info_inv=np.linalg.inv(m["info"] / N))
    p["ps_moment"] = ((m["XR_cq"] - A["cq"] * m["X_cq"]) / N / M["cq"]
                      - (m["XR_cp"] - A["cp"] * m["X_cp"]) / N / M["cp"])
    p["moment_post"] = cm["d"] / M["d"] - cm["tq"] / M["tq"]
    p["moment_pre"] = cm["d"] / M["d"] - cm["tp"] / M["tp"]
    p["att"] = ((A["tq"] - A["tp"]) - (A["cq"] - A["cp"]) + (A["d_post"] - A["dt1_post"])
                - (A["d_pre"] - A["dt0_pre"]))
    return p
