"""Callaway-Sant'Anna on Dask, step 2: the passes over the unit blocks.

Each pass maps a pure function over the blocks and returns one dict (or array) per cell;
:func:`impactkit.distributed.reduce.add` sums them in block order. The sums are those of the
Sant'Anna & Zhao (2020, *J. Econometrics* 219(1)) estimators: cell counts and outcome-regression
Gram matrices (:func:`pass_counts`), logit gradients and Hessians (:func:`pass_logit`), the
weighted means and moment vectors of the influence function (:func:`pass_moments`, proofs of
Theorems 3.1 and 3.3), and every unit's influence function summed per (cluster, cohort)
pseudo-unit (:func:`pass_influence`). Unbalanced panels use the repeated-cross-section doubly
robust (eq. 3.4), normalized IPW (eq. 2.5) and regression (eq. 2.3) estimators on the observed rows.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from impactkit.did.drdid import PS_CLIP, PS_TRIM
from impactkit.distributed.cs_blocks import CellSpec, cell_sample, cell_units, gram
from impactkit.distributed.reduce import add


RC_SUBSETS = ("cont_pre", "cont_post", "treat_pre", "treat_post")


def rc_subset(name: str, d: np.ndarray, post: np.ndarray) -> np.ndarray:
    side = 1.0 - d if name.startswith("cont") else d
    return side * (post if name.endswith("post") else 1.0 - post)


def pass_counts(block: dict, cells: list[CellSpec], panel: bool) -> list[dict]:
    out = []
    for cell in cells:
        y, d, x, w, post, idx = cell_sample(block, cell, panel)
        item = {"N": float(y.size), "sum_w": float(w.sum()), "sum_wd": float((w * d).sum()),
                "xwx": gram(x, w), "cell_units": float(cell_units(block, cell)[1].sum())}
        if panel:
            item.update(n_treat=float(d.sum()), n_cont=float(d.size - d.sum()),
                        ols_gram=gram(x, w * (1 - d)), ols_xy=x.T @ (w * (1 - d) * y),
                        units=float(idx.size))
        else:
            item.update(n_treat_post=float((d * post).sum()), n_cont_post=float(((1 - d) * post).sum()),
                        n_treat_base=float((d * (1 - post)).sum()), n_cont_base=float(((1 - d) * (1 - post)).sum()),
                        units=float(np.unique(idx).size))
            for name in RC_SUBSETS:
                s = rc_subset(name, d, post)
                item[f"gram_{name}"] = gram(x, w * s)
                item[f"xy_{name}"] = x.T @ (w * s * y)
        out.append(item)
    return out


def pass_logit(block: dict, cells: list[CellSpec], panel: bool, betas: list, wbars: list) -> list[dict]:
    out = []
    for cell, beta, wbar in zip(cells, betas, wbars):
        if beta is None:
            out.append({"grad": 0.0, "hess": 0.0})
            continue
        _, d, x, w, _, _ = cell_sample(block, cell, panel)
        w = w / wbar
        prob = expit(x @ beta)
        out.append({"grad": x.T @ (w * (d - prob)), "hess": gram(x, w * prob * (1.0 - prob))})
    return out


def _score(x: np.ndarray, beta: np.ndarray | None) -> np.ndarray:
    return np.clip(expit(x @ beta), PS_CLIP, 1.0 - PS_CLIP)


def _panel_parts(y, d, x, w, p: dict):
    """Per-unit pieces of the panel estimators given the cell's global parameters ``p``."""
    fitted = x @ p["ols_beta"] if p["ols_beta"] is not None else np.zeros_like(y)
    score = _score(x, p["ps_beta"]) if p["ps_beta"] is not None else None
    w_treat = w * d
    if score is not None:
        keep = np.where(d == 1, True, score < PS_TRIM)
        w_cont = keep * w * score * (1.0 - d) / (1.0 - score)
    else:
        w_cont = np.zeros_like(w)
    return fitted, score, w_treat, w_cont


def pass_moments(block: dict, cells: list[CellSpec], panel: bool, params: list[dict]) -> list[dict]:
    out = []
    for cell, p in zip(cells, params):
        if p is None:
            out.append({})
            continue
        y, d, x, w, post, _ = cell_sample(block, cell, panel)
        w = w / p["wbar"]
        if panel:
            fitted, score, w_treat, w_cont = _panel_parts(y, d, x, w, p)
            res = y - fitted
            item = {"s_treat": w_treat.sum(), "s_cont": w_cont.sum(), "s_treat_res": (w_treat * res).sum(),
                    "s_cont_res": (w_cont * res).sum(), "s_treat_y": (w_treat * y).sum(),
                    "s_treat_fit": (w_treat * fitted).sum(), "x_treat": w_treat @ x, "x_cont": w_cont @ x,
                    "x_cont_res": (w_cont * res) @ x}
            if score is not None:
                item["info"] = gram(x, w * score * (1.0 - score))
        else:
            item = _rc_moments(y, d, x, w, post, p)
        out.append(item)
    return out


def _rc_weights(y, d, x, w, post, p):
    """Fitted outcome regressions (zero where the estimator fits none), scores and the row weights."""
    pre = 1.0 - post
    zero = np.zeros(y.size)
    fits = {name: x @ p["rc_beta"][name] if name in p["rc_beta"] else zero for name in RC_SUBSETS}
    if p["ps_beta"] is None:   # outcome regression: no propensity score
        return fits, None, {"tp": w * d * pre, "tq": w * d * post, "d": w * d}
    score = _score(x, p["ps_beta"])
    keep = np.where(d == 1, True, score < PS_TRIM)
    odds = score / (1.0 - score)
    ws = {"tp": keep * w * d * pre, "tq": keep * w * d * post, "cp": keep * w * odds * (1 - d) * pre,
          "cq": keep * w * odds * (1 - d) * post, "d": keep * w * d}
    return fits, score, ws


def _rc_moments(y, d, x, w, post, p) -> dict:
    fits, score, ws = _rc_weights(y, d, x, w, post, p)
    item = {f"S_{k}": v.sum() for k, v in ws.items()}
    item.update({f"X_{k}": ws[k] @ x for k in ws})
    if score is None:   # regression estimator (eq. 2.3): treated means of y, mean fitted change of the treated
        item.update(R_tp=(ws["tp"] * y).sum(), R_tq=(ws["tq"] * y).sum(),
                    E_change=(ws["d"] * (fits["cont_post"] - fits["cont_pre"])).sum())
        return item
    res = y - (post * fits["cont_post"] + (1 - post) * fits["cont_pre"])
    eff_post = fits["treat_post"] - fits["cont_post"]
    eff_pre = fits["treat_pre"] - fits["cont_pre"]
    item.update({f"R_{k}": (ws[k] * res).sum() for k in ("tp", "tq", "cp", "cq")})
    item.update({"E_d_post": (ws["d"] * eff_post).sum(), "E_dt1_post": (ws["tq"] * eff_post).sum(),
                 "E_d_pre": (ws["d"] * eff_pre).sum(), "E_dt0_pre": (ws["tp"] * eff_pre).sum()})
    item.update({"XR_cq": (ws["cq"] * res) @ x, "XR_cp": (ws["cp"] * res) @ x,
                 "info": gram(x, w * score * (1.0 - score))})
    return item


def pass_influence(block: dict, cells: list[CellSpec], panel: bool, params: list[dict],
                    n_pseudo: int, n_total: int) -> np.ndarray:
    """Influence functions of every unit for every cell, added up per pseudo-unit (cluster, cohort)."""
    out = np.zeros((n_pseudo, len(cells)))
    for j, (cell, p) in enumerate(zip(cells, params)):
        if p is None:
            continue
        y, d, x, w, post, idx = cell_sample(block, cell, panel)
        w = w / p["wbar"]
        inf = _panel_influence(y, d, x, w, p) if panel else _rc_influence(y, d, x, w, post, p)
        inf = (n_total / p["N"]) * inf
        out[:, j] = np.bincount(block["pseudo"][idx], weights=inf, minlength=n_pseudo)
    return out


def _panel_influence(y, d, x, w, p) -> np.ndarray:
    est = p["est"]
    fitted, score, w_treat, w_cont = _panel_parts(y, d, x, w, p)
    ols_rep = ((w * (1.0 - d) * (y - fitted))[:, None] * x) @ p["ols_inv"] if p["ols_beta"] is not None else None
    if est == "reg":
        inf_treat = (w_treat * y - w_treat * p["eta_treat"]) / p["mean_treat"]
        inf_cont = (w_treat * fitted - w_treat * p["eta_cont"] + ols_rep @ p["m_treat"]) / p["mean_treat"]
        return inf_treat - inf_cont
    res = y - fitted
    ps_rep = ((w * (d - score))[:, None] * x) @ p["info_inv"]
    inf_treat = w_treat * res - w_treat * p["eta_treat"]
    cont_centered = w_cont * res - w_cont * p["eta_cont"]
    inf_cont = cont_centered + ps_rep @ p["m_ps"]
    if est == "dr":
        inf_treat = inf_treat - ols_rep @ p["m_treat"]
        inf_cont = inf_cont - ols_rep @ p["m_cont"]
    return inf_treat / p["mean_treat"] - inf_cont / p["mean_cont"]


def _rc_influence(y, d, x, w, post, p) -> np.ndarray:
    """Row influence functions of the repeated-cross-section estimators (:mod:`impactkit.did.drdid_rc`);
    normalized IPW is the DR formula with zero outcome regressions (their fits and estimation effects vanish)."""
    fits, score, ws = _rc_weights(y, d, x, w, post, p)
    M, A = p["M"], p["A"]
    no_fit = np.zeros_like(x)
    reps = {name: ((w * rc_subset(name, d, post) * (y - fits[name]))[:, None] * x) @ p["rc_inv"][name]
            if name in p["rc_inv"] else no_fit for name in RC_SUBSETS}

    def centred(k, values, att):
        return ws[k] * values / M[k] - ws[k] * att / M[k]

    if score is None:   # regression estimator, eq. 2.3
        inf_treat = centred("tq", y, A["tq"]) - centred("tp", y, A["tp"])
        inf_cont = (centred("d", fits["cont_post"] - fits["cont_pre"], A["change"])
                    + (reps["cont_post"] - reps["cont_pre"]) @ p["moment_change"])
        return inf_treat - inf_cont
    res = y - (post * fits["cont_post"] + (1 - post) * fits["cont_pre"])
    ps_rep = ((w * (d - score))[:, None] * x) @ p["info_inv"]
    inf_treat = (centred("tq", res, A["tq"]) - centred("tp", res, A["tp"])
                 + reps["cont_post"] @ (-p["cm"]["tq"] / M["tq"]) - reps["cont_pre"] @ (-p["cm"]["tp"] / M["tp"]))
    inf_cont = (centred("cq", res, A["cq"]) - centred("cp", res, A["cp"]) + ps_rep @ p["ps_moment"]
                + reps["cont_post"] @ (-p["cm"]["cq"] / M["cq"]) - reps["cont_pre"] @ (-p["cm"]["cp"] / M["cp"]))
    eff_post = fits["treat_post"] - fits["cont_post"]
    eff_pre = fits["treat_pre"] - fits["cont_pre"]
    inf_eff = (centred("d", eff_post, A["d_post"]) - centred("tq", eff_post, A["dt1_post"])
               - centred("d", eff_pre, A["d_pre"]) + centred("tp", eff_pre, A["dt0_pre"]))
    inf_or = ((reps["treat_post"] - reps["cont_post"]) @ p["moment_post"]
              - (reps["treat_pre"] - reps["cont_pre"]) @ p["moment_pre"])
    return inf_treat - inf_cont + inf_eff + inf_or


def add_moments(per_block: list[list[dict]]) -> list[dict]:
    """Add per-block moment dicts cell by cell (empty dicts for inactive cells stay empty)."""
    out = []
    for j in range(len(per_block[0])):
        items = [blk[j] for blk in per_block]
        out.append(add(items) if items[0] else {})
    return out
