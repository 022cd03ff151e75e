"""Callaway & Sant'Anna (2021) on Dask: cell statistics, distributed IRLS, reduced influence functions.

Same estimand, conventions and numbers as :func:`impactkit.did.cs.estimate_cs` (Callaway &
Sant'Anna 2021, *J. Econometrics* 225(2), eq. 2.6-2.8; Sant'Anna & Zhao 2020, *J. Econometrics*
219(1): doubly robust eq. 3.1, normalized IPW eq. 2.4, outcome regression eq. 2.2 for balanced
panels; the repeated-cross-section DR estimator eq. 3.4 on the observed rows of unbalanced panels,
as R ``did`` with ``allow_unbalanced_panel``). Every ingredient of those estimators is a sum over
the units (or rows) of a cell, so with every unit in one partition:

1. each partition becomes a *unit block* (unit x period outcome matrix, cohort, weight, cluster,
   covariates), kept in worker memory;
2. per cell, the partitions return counts, weight sums and the Gram matrices of the outcome
   regressions (``X'W X``, ``X'W y`` on comparison / treated units);
3. the propensity-score logit is fitted by distributed iteratively reweighted least squares
   (Newton-Raphson, the fixed point of R ``glm``): every iteration adds up per-partition
   gradients ``X'W(D - p)`` and Hessians ``X' diag(w p (1-p)) X``, all cells at once;
4. one pass adds up the weighted means and moment vectors of the estimator's influence
   function (Sant'Anna & Zhao 2020, proofs of Theorems 3.1 and 3.3);
5. one pass evaluates every unit's influence function and adds it up per (cluster, cohort):
   clustered standard errors, the aggregation of R ``did::aggte`` (its weight-estimation term
   needs only the cohort of each unit, see :mod:`impactkit.distributed.aggregate`) and the
   multiplier bootstrap all work on those sums, so nothing of size ``n_units`` leaves the workers.

Departures (said, not hidden): covariates must be time-invariant within unit; ``est="ipw"`` and
``"reg"`` on unbalanced panels are not available on this engine yet (``"dr"`` is); without a
``cluster`` the unit is the cluster, so the reduced influence has one row per unit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from impactkit.did.cs import CONTROLS, CSResult, balanced_subpanel_notice
from impactkit.did.cs_cells import group_time_cells
from impactkit.did.drdid import ESTIMATORS, PS_CLIP, PS_TRIM
from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.distributed.reduce import add, map_blocks, partitions, persist
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

LOGIT_MAX_ITER = 100
LOGIT_TOL = 1e-13
# (cluster, cohort) rows of the reduced influence function kept on the client (x cells x 8 bytes)
MAX_PSEUDO_UNITS = 2_000_000


@dataclass(frozen=True)
class CSColumns:
    y: str
    unit: str
    time: str
    cohort: str
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    cluster: str | None = None

    def needed(self) -> list[str]:
        return list(dict.fromkeys(c for c in (self.y, self.unit, self.time, self.cohort, *self.covariates,
                                               self.weights, self.cluster) if c))


# ------------------------------------------------------------------------------------------
# unit blocks (one per partition)
# ------------------------------------------------------------------------------------------
def _periods_part(part: pd.DataFrame, cols: CSColumns) -> np.ndarray:
    return np.unique(part[cols.time].to_numpy(dtype=float))


def _unit_block(part: pd.DataFrame, cols: CSColumns, periods: np.ndarray, anticipation: int) -> dict:
    """The partition as unit-level arrays; R ``did``'s cohort conventions applied (late cohorts
    never treated, cohorts without a pre-period dropped)."""
    codes, _ = pd.factorize(part[cols.unit], sort=True)
    n_units = int(codes.max()) + 1 if codes.size else 0
    pidx = np.searchsorted(periods, part[cols.time].to_numpy(dtype=float))
    cell = codes.astype(np.int64) * len(periods) + pidx
    if cell.size and np.bincount(cell).max() > 1:
        raise InputError(f"duplicated ({cols.unit}, {cols.time}) pair(s); rule: one row per unit and period")
    outcome = np.full((n_units, len(periods)), np.nan)
    outcome[codes, pidx] = part[cols.y].to_numpy(dtype=float, na_value=np.nan)
    cohort = np.zeros(n_units)
    np.maximum.at(cohort, codes, np.nan_to_num(pd.to_numeric(part[cols.cohort]).to_numpy(dtype=float), nan=0.0))
    weights = np.ones(n_units)
    if cols.weights:
        weights[codes] = part[cols.weights].to_numpy(dtype=float)
    first_row = np.full(n_units, codes.size)
    np.minimum.at(first_row, codes, np.arange(codes.size))
    cluster = part[cols.cluster if cols.cluster else cols.unit].to_numpy()[first_row]
    design = np.ones((n_units, 1 + len(cols.covariates)))
    complete_x = np.ones(n_units, dtype=bool)
    for j, c in enumerate(cols.covariates, start=1):
        values = part[c].to_numpy(dtype=float, na_value=np.nan)
        low, high = np.full(n_units, np.inf), np.full(n_units, -np.inf)
        np.minimum.at(low, codes, np.where(np.isfinite(values), values, np.inf))
        np.maximum.at(high, codes, np.where(np.isfinite(values), values, -np.inf))
        if np.any((low != high) & np.isfinite(low)):
            raise InputError(f"covariate '{c}' varies within unit: the dask engine takes time-invariant covariates")
        design[:, j] = np.where(np.isfinite(low), low, np.nan)
        complete_x &= np.isfinite(low)
    cohort[cohort > periods[-1]] = 0.0
    early = (cohort > 0) & (cohort - anticipation <= periods[0])
    keep = ~early
    return {"outcome": outcome[keep], "cohort": cohort[keep], "weights": weights[keep], "cluster": cluster[keep],
            "design": design[keep], "complete": np.isfinite(outcome[keep]) & complete_x[keep][:, None],
            "n_early": int(early.sum()), "early_cohorts": np.unique(cohort[early])}


def _keep_complete(block: dict) -> dict:
    """The block's units observed (outcome and covariates) in every period."""
    keep = block["complete"].all(axis=1)
    return {k: (v[keep] if isinstance(v, np.ndarray) and v.shape[:1] == keep.shape else v) for k, v in block.items()}


def _drop_unobserved(block: dict) -> dict:
    keep = block["complete"].any(axis=1)
    return {k: (v[keep] if isinstance(v, np.ndarray) and v.shape[:1] == keep.shape else v) for k, v in block.items()}


def _block_facts(block: dict) -> dict:
    return {"n": block["cohort"].size, "incomplete": int((~block["complete"].all(axis=1)).sum()),
            "never_observed": int((~block["complete"].any(axis=1)).sum()),
            "clusters": pd.unique(block["cluster"]), "cohorts": np.unique(block["cohort"]),
            "all_missing": ~np.isfinite(block["outcome"]).any(axis=0), "n_early": block["n_early"],
            "early_cohorts": block["early_cohorts"]}


def _attach_codes(block: dict, cluster_labels: np.ndarray, cohort_values: np.ndarray) -> dict:
    """Cluster codes (sorted labels) and the pseudo-unit (cluster, cohort) index of every unit."""
    cluster_code = np.searchsorted(cluster_labels, block["cluster"])
    cohort_code = np.searchsorted(cohort_values, block["cohort"])
    return {**block, "pseudo": cluster_code * len(cohort_values) + cohort_code}


# ------------------------------------------------------------------------------------------
# cell samples
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellSpec:
    group: float
    post: int
    base: int
    threshold: float | None   # not-yet-treated: controls have cohort > threshold


def _sample(block: dict, cell: CellSpec, panel: bool):
    """The cell's observations in this block: (y or dy, d, x, w, post flag, unit index)."""
    cohort = block["cohort"]
    treated = cohort == cell.group
    controls = cohort == 0
    if cell.threshold is not None:
        controls = controls | ((cohort > cell.threshold) & ~treated)
    in_cell = treated | controls
    if panel:
        idx = np.flatnonzero(in_cell)
        dy = block["outcome"][idx, cell.post] - block["outcome"][idx, cell.base]
        return dy, treated[idx].astype(float), block["design"][idx], block["weights"][idx], None, idx
    complete = block["complete"]
    rows_post = np.flatnonzero(in_cell & complete[:, cell.post])
    rows_base = np.flatnonzero(in_cell & complete[:, cell.base])
    idx = np.concatenate([rows_post, rows_base])
    y = np.concatenate([block["outcome"][rows_post, cell.post], block["outcome"][rows_base, cell.base]])
    post = np.concatenate([np.ones(rows_post.size), np.zeros(rows_base.size)])
    return y, treated[idx].astype(float), block["design"][idx], block["weights"][idx], post, idx


def _gram(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x.T @ (x * w[:, None])


# ------------------------------------------------------------------------------------------
# passes (each returns one dict per cell; dicts are added across blocks)
# ------------------------------------------------------------------------------------------
RC_SUBSETS = ("cont_pre", "cont_post", "treat_pre", "treat_post")


def _rc_subset(name: str, d: np.ndarray, post: np.ndarray) -> np.ndarray:
    side = 1.0 - d if name.startswith("cont") else d
    return side * (post if name.endswith("post") else 1.0 - post)


def _pass_counts(block: dict, cells: list[CellSpec], panel: bool) -> list[dict]:
    out = []
    for cell in cells:
        y, d, x, w, post, idx = _sample(block, cell, panel)
        item = {"N": float(y.size), "sum_w": float(w.sum()), "sum_wd": float((w * d).sum()),
                "xwx": _gram(x, w)}
        if panel:
            item.update(n_treat=float(d.sum()), n_cont=float(d.size - d.sum()),
                        ols_gram=_gram(x, w * (1 - d)), ols_xy=x.T @ (w * (1 - d) * y),
                        units=float(idx.size))
        else:
            item.update(n_treat_post=float((d * post).sum()), n_cont_post=float(((1 - d) * post).sum()),
                        n_treat_base=float((d * (1 - post)).sum()), n_cont_base=float(((1 - d) * (1 - post)).sum()),
                        units=float(np.unique(idx).size))
            for name in RC_SUBSETS:
                s = _rc_subset(name, d, post)
                item[f"gram_{name}"] = _gram(x, w * s)
                item[f"xy_{name}"] = x.T @ (w * s * y)
        out.append(item)
    return out


def _pass_logit(block: dict, cells: list[CellSpec], panel: bool, betas: list, wbars: list) -> list[dict]:
    out = []
    for cell, beta, wbar in zip(cells, betas, wbars):
        if beta is None:
            out.append({"grad": 0.0, "hess": 0.0})
            continue
        _, d, x, w, _, _ = _sample(block, cell, panel)
        w = w / wbar
        prob = expit(x @ beta)
        out.append({"grad": x.T @ (w * (d - prob)), "hess": _gram(x, w * prob * (1.0 - prob))})
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


def _pass_moments(block: dict, cells: list[CellSpec], panel: bool, params: list[dict]) -> list[dict]:
    out = []
    for cell, p in zip(cells, params):
        if p is None:
            out.append({})
            continue
        y, d, x, w, post, _ = _sample(block, cell, panel)
        w = w / p["wbar"]
        if panel:
            fitted, score, w_treat, w_cont = _panel_parts(y, d, x, w, p)
            res = y - fitted
            item = {"s_treat": w_treat.sum(), "s_cont": w_cont.sum(), "s_treat_res": (w_treat * res).sum(),
                    "s_cont_res": (w_cont * res).sum(), "s_treat_y": (w_treat * y).sum(),
                    "s_treat_fit": (w_treat * fitted).sum(), "x_treat": w_treat @ x, "x_cont": w_cont @ x,
                    "x_cont_res": (w_cont * res) @ x}
            if score is not None:
                item["info"] = _gram(x, w * score * (1.0 - score))
        else:
            item = _rc_moments(y, d, x, w, post, p)
        out.append(item)
    return out


def _rc_weights(d, x, w, post, p):
    pre = 1.0 - post
    fits = {name: x @ p["rc_beta"][name] for name in RC_SUBSETS}
    score = _score(x, p["ps_beta"])
    keep = np.where(d == 1, True, score < PS_TRIM)
    odds = score / (1.0 - score)
    ws = {"tp": keep * w * d * pre, "tq": keep * w * d * post, "cp": keep * w * odds * (1 - d) * pre,
          "cq": keep * w * odds * (1 - d) * post, "d": keep * w * d}
    return fits, score, ws


def _rc_moments(y, d, x, w, post, p) -> dict:
    fits, score, ws = _rc_weights(d, x, w, post, p)
    res = y - (post * fits["cont_post"] + (1 - post) * fits["cont_pre"])
    eff_post = fits["treat_post"] - fits["cont_post"]
    eff_pre = fits["treat_pre"] - fits["cont_pre"]
    item = {f"S_{k}": v.sum() for k, v in ws.items()}
    item.update({f"R_{k}": (ws[k] * res).sum() for k in ("tp", "tq", "cp", "cq")})
    item.update({"E_d_post": (ws["d"] * eff_post).sum(), "E_dt1_post": (ws["tq"] * eff_post).sum(),
                 "E_d_pre": (ws["d"] * eff_pre).sum(), "E_dt0_pre": (ws["tp"] * eff_pre).sum()})
    item.update({f"X_{k}": ws[k] @ x for k in ws})
    item.update({"XR_cq": (ws["cq"] * res) @ x, "XR_cp": (ws["cp"] * res) @ x,
                 "info": _gram(x, w * score * (1.0 - score))})
    return item


def _pass_influence(block: dict, cells: list[CellSpec], panel: bool, params: list[dict],
                    n_pseudo: int, n_total: int) -> np.ndarray:
    """Influence functions of every unit for every cell, added up per pseudo-unit (cluster, cohort)."""
    out = np.zeros((n_pseudo, len(cells)))
    for j, (cell, p) in enumerate(zip(cells, params)):
        if p is None:
            continue
        y, d, x, w, post, idx = _sample(block, cell, panel)
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
    fits, score, ws = _rc_weights(d, x, w, post, p)
    res = y - (post * fits["cont_post"] + (1 - post) * fits["cont_pre"])
    M, A = p["M"], p["A"]
    reps = {name: ((w * _rc_subset(name, d, post) * (y - fits[name]))[:, None] * x) @ p["rc_inv"][name]
            for name in RC_SUBSETS}
    ps_rep = ((w * (d - score))[:, None] * x) @ p["info_inv"]

    def centred(k, values, att):
        return ws[k] * values / M[k] - ws[k] * att / M[k]

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


# ------------------------------------------------------------------------------------------
# the driver: global parameters from the reduced sums
# ------------------------------------------------------------------------------------------
def _check_sides(n_treat: float, n_cont: float, label: str, control: str, where: str) -> bool:
    if n_cont == 0:
        hint = "use control='notyet'" if control == "never" else "drop this cohort"
        raise EstimationError(f"no {control}-treated control units for {label}{where}; {hint}")
    return n_treat > 0


def _inverse(matrix: np.ndarray, what: str, label: str) -> np.ndarray:
    if np.linalg.cond(matrix) > 1.0 / np.finfo(float).eps:
        raise EstimationError(f"{what} for {label} is singular (collinear covariates?)")
    return np.linalg.inv(matrix)


def _fit_logits(blocks, cells, panel, counts, active, labels) -> list:
    """Distributed Newton-Raphson of every active cell's logit, all cells per pass."""
    betas, wbars = [], []
    for c, on, label in zip(counts, active, labels):
        if not on:
            betas.append(None), wbars.append(None)
            continue
        _inverse(c["xwx"], "propensity score", label)
        share = c["sum_wd"] / c["sum_w"]
        beta = np.zeros(c["xwx"].shape[0])
        beta[0] = np.log(share / (1.0 - share))
        betas.append(beta), wbars.append(c["sum_w"] / c["N"])
    running = [b is not None for b in betas]
    for _ in range(LOGIT_MAX_ITER):
        if not any(running):
            break
        current = [b if r else None for b, r in zip(betas, running)]
        sums = add(map_blocks(_pass_logit, blocks, cells, panel, current, wbars))
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


def _panel_params(est: str, c: dict, beta, m: dict | None) -> dict:
    N, wbar = c["N"], c["sum_w"] / c["N"]
    p = {"est": est, "N": N, "wbar": wbar, "ps_beta": beta, "ols_beta": None}
    if est in ("dr", "reg"):
        gram = c["ols_gram"] / wbar / N
        p["ols_inv"] = _inverse(gram, "outcome regression", "cell")
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


def _rc_params(c: dict, beta, m: dict | None, label: str) -> dict:
    N, wbar = c["N"], c["sum_w"] / c["N"]
    p = {"est": "dr", "N": N, "wbar": wbar, "ps_beta": beta, "rc_beta": {}, "rc_inv": {}}
    for name in RC_SUBSETS:
        inv = _inverse(c[f"gram_{name}"] / wbar / N, f"outcome regression ({name.replace('_', ' ')})", label)
        p["rc_inv"][name] = inv
        p["rc_beta"][name] = inv @ (c[f"xy_{name}"] / wbar / N)
    if m is None:
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


@dataclass
class ReducedCSResult(CSResult):
    """A :class:`impactkit.did.cs.CSResult` whose influence rows are per-(cluster, cohort) sums.

    ``influence`` is ``n_pseudo x n_cells``; ``unit_cohort`` / ``unit_weights`` /
    ``cluster_codes`` describe those pseudo-units (their cohort, the sum of their units'
    weights, their cluster). Standard errors, the pre-trend test and the multiplier bootstrap
    only use cluster sums, so they equal the pandas engine's; :meth:`aggregate` uses
    :func:`impactkit.distributed.aggregate.aggregate_reduced` (the aggregation weights need the
    true ``n`` and cohort shares, kept here).
    """

    n_total: int = 0
    group_share: dict = field(default_factory=dict)
    cohort_counts: dict = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return int(self.n_total)

    def aggregate(self, kind: str = "simple", balance_e: int | None = None, min_e: float = -np.inf,
                  max_e: float = np.inf):
        from impactkit.distributed.aggregate import aggregate_reduced

        return aggregate_reduced(self, kind, balance_e=balance_e, min_e=min_e, max_e=max_e)


def estimate_cs(frame, *, y: str, unit: str, time: str, cohort: str, covariates: list[str] | None = None,
                control: str = "never", est: str = "dr", anticipation: int = 0, base_period: str = "varying",
                weights: str | None = None, cluster: str | None = None, alpha: float = 0.05,
                bootstrap: bool = False, biters: int = 999, seed: int | None = None,
                allow_unbalanced: bool = False) -> ReducedCSResult:
    """Callaway & Sant'Anna (2021) ATT(g,t) on a dask DataFrame; same numbers as
    :func:`impactkit.did.cs.estimate_cs` (see the module docstring for the passes and departures)."""
    from impactkit.distributed.data import by_unit

    if control not in CONTROLS or est not in ESTIMATORS:
        raise InputError(f"control must be one of {CONTROLS} and est one of {ESTIMATORS}")
    cols = CSColumns(y=y, unit=unit, time=time, cohort=cohort, covariates=tuple(covariates or ()),
                     weights=weights, cluster=cluster)
    frame = by_unit(frame[cols.needed()], unit)
    parts = partitions(frame)
    periods = np.unique(np.concatenate(map_blocks(_periods_part, parts, cols)))
    blocks = persist([_delayed(_unit_block)(p, cols, periods, anticipation) for p in parts])
    facts = map_blocks(_block_facts, blocks)
    messages: list[str] = []
    n_early = sum(f["n_early"] for f in facts)
    if n_early:
        early = sorted({float(c) for f in facts for c in f["early_cohorts"]})
        text = (f"{n_early} unit(s) of cohort(s) {', '.join(f'{c:g}' for c in early)} have no "
                f"pre-treatment period and are dropped.")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
    all_missing = np.logical_and.reduce([f["all_missing"] for f in facts])
    if all_missing.any():
        raise InputError(f"outcome '{y}' is missing for every unit in {time} "
                         f"{', '.join(f'{p:g}' for p in periods[all_missing])}")
    cohorts = np.unique(np.concatenate([f["cohorts"] for f in facts]))
    if not np.any(cohorts > 0):
        raise EstimationError(f"no treated units: column '{cohort}' has no cohort with a pre-treatment period")
    if not np.any(cohorts == 0):
        raise EstimationError(f"no never-treated units (column '{cohort}' is never 0 or missing): the dask "
                              "engine needs never-treated units")
    unbalanced = sum(f["incomplete"] for f in facts) > 0
    if unbalanced and not allow_unbalanced:  # R did's default, as the pandas engine: the balanced sub-panel
        n_incomplete, n_units = sum(f["incomplete"] for f in facts), sum(f["n"] for f in facts)
        text = balanced_subpanel_notice(n_incomplete, n_units, y, unit)
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
        blocks = persist([_delayed(_keep_complete)(b) for b in blocks])
        facts = map_blocks(_block_facts, blocks)
        unbalanced = False
    if unbalanced:
        n_incomplete = sum(f["incomplete"] for f in facts)
        text = (f"Unbalanced panel: {n_incomplete} unit(s) miss some period; each ATT(g,t) uses the "
                "repeated-cross-section estimator on the observed rows, clustered by unit (R did's "
                "allow_unbalanced_panel).")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
        never_observed = sum(f["never_observed"] for f in facts)
        if never_observed:
            messages.append(f"{never_observed} unit(s) without any complete row are dropped.")
            blocks = persist([_delayed(_drop_unobserved)(b) for b in blocks])
            facts = map_blocks(_block_facts, blocks)
        if est != "dr":
            raise InputError(f"est='{est}' on an unbalanced panel is not available on the dask engine yet; use est='dr'")
    n_total = sum(f["n"] for f in facts)
    cluster_labels = np.unique(np.concatenate([np.asarray(f["clusters"], dtype=object) for f in facts]))
    cohort_values = np.unique(np.concatenate([f["cohorts"] for f in facts]))
    blocks = persist([_delayed(_attach_codes)(b, cluster_labels, cohort_values) for b in blocks])
    n_pseudo = len(cluster_labels) * len(cohort_values)
    if n_pseudo > MAX_PSEUDO_UNITS:
        raise InputError(f"{len(cluster_labels)} clusters x {len(cohort_values)} cohorts: the reduced influence "
                         f"function would hold {n_pseudo} rows per cell; give a coarser 'cluster' (without one, "
                         f"each {unit} is its own cluster)")
    groups = cohort_values[cohort_values > 0]

    cells_all = group_time_cells(groups, periods, anticipation, base_period)
    specs = [CellSpec(c.group, c.post, c.base, None if control == "never" else
                      float(periods[max(c.post, c.base)] + anticipation)) for c in cells_all]
    panel = not unbalanced
    labels = [f"group {c.group:g}, time {periods[c.post]:g}" for c in cells_all]
    counts = add(map_blocks(_pass_counts, blocks, specs, panel))
    active = []
    for j, (cell, c) in enumerate(zip(cells_all, counts)):
        if cell.reference:
            active.append(False)
            continue
        if panel:
            ok = _check_sides(c["n_treat"], c["n_cont"], labels[j], control, "")
        else:
            ok = (_check_sides(c["n_treat_post"], c["n_cont_post"], labels[j], control, f" in {periods[cell.post]:g}")
                  and _check_sides(c["n_treat_base"], c["n_cont_base"], labels[j], control,
                                   f" in base {periods[cell.base]:g}"))
        if not ok:
            text = (f"ATT({labels[j]}) skipped: no unit of the cohort is observed in "
                    f"{periods[cell.base]:g} or in {periods[cell.post]:g}.")
            warnings.warn(text, ImpactkitWarning, stacklevel=2)
            messages.append(text)
        active.append(ok)
    needs_ps = est in ("dr", "ipw")
    betas = _fit_logits(blocks, specs, panel, counts, active, labels) if needs_ps else [None] * len(specs)
    params = [None if not on else (_panel_params(est, c, b, None) if panel else _rc_params(c, b, None, lab))
              for on, c, b, lab in zip(active, counts, betas, labels)]
    moments = add_moments(map_blocks(_pass_moments, blocks, specs, panel, params))
    params = [None if p is None else (_panel_params(est, c, b, m) if panel else _rc_params(c, b, m, lab))
              for p, c, b, m, lab in zip(params, counts, betas, moments, labels)]
    influence = add(map_blocks(_pass_influence, blocks, specs, panel, params, n_pseudo, n_total))

    keep = np.array([a or cell.reference for a, cell in zip(active, cells_all)])
    skipped = np.array([not a and not cell.reference for a, cell in zip(active, cells_all)])
    keep = ~skipped
    cells = [c for c, k in zip(cells_all, keep) if k]
    estimates = np.array([0.0 if p is None else p["att"] for p, k in zip(params, keep) if k])
    sizes = np.array([int(c["units"]) for c, k in zip(counts, keep) if k], dtype=np.int64)
    influence = influence[:, keep]
    pseudo_cluster = np.repeat(np.arange(len(cluster_labels)), len(cohort_values))
    pseudo_cohort = np.tile(cohort_values, len(cluster_labels))
    pseudo_weight = add(map_blocks(_pseudo_weights, blocks, n_pseudo))
    se = influence_se(influence, n_total, pseudo_cluster)
    z = norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = np.where(se > 0, 2.0 * norm.sf(np.abs(estimates / np.where(se > 0, se, 1.0))), np.nan)
    att_gt = pd.DataFrame({"group": [c.group for c in cells], "time": [float(periods[c.post]) for c in cells],
                           "estimate": estimates, "std_error": se, "conf_low": estimates - z * se,
                           "conf_high": estimates + z * se, "p_value": p_value, "n": sizes})
    if np.all(periods == np.round(periods)) and np.all(att_gt["group"] == np.round(att_gt["group"])):
        att_gt = att_gt.astype({"group": np.int64, "time": np.int64})
    options = {"y": y, "unit": unit, "time": time, "cohort": cohort, "covariates": list(cols.covariates),
               "control": control, "est": est, "anticipation": int(anticipation), "base_period": base_period,
               "weights": weights, "cluster": cluster, "bootstrap": bool(bootstrap), "biters": int(biters),
               "seed": seed, "allow_unbalanced": allow_unbalanced, "engine": "dask"}
    critical_value = None
    if bootstrap:
        draws = multiplier_draws(influence, n_total, cluster_codes=pseudo_cluster, biters=int(biters), seed=seed,
                                 purpose="cs-multiplier")
        critical_value = sup_t_critical_value(draws, se, alpha)
    weight_by_cohort = {float(g): float(pseudo_weight[pseudo_cohort == g].sum()) for g in cohort_values}
    counts_by_cohort = add(map_blocks(_cohort_counts, blocks, cohort_values))
    return ReducedCSResult(att_gt=att_gt, influence=influence, unit_cohort=pseudo_cohort,
                           unit_weights=pseudo_weight, cluster_codes=pseudo_cluster, periods=periods.copy(),
                           alpha=float(alpha), options=options, critical_value=critical_value, messages=messages,
                           n_total=n_total,
                           group_share={g: w / n_total for g, w in weight_by_cohort.items()},
                           cohort_counts={float(g): int(n) for g, n in zip(cohort_values, counts_by_cohort)})


def add_moments(per_block: list[list[dict]]) -> list[dict]:
    """Add per-block moment dicts cell by cell (empty dicts for inactive cells stay empty)."""
    out = []
    for j in range(len(per_block[0])):
        items = [blk[j] for blk in per_block]
        out.append(add(items) if items[0] else {})
    return out


def _pseudo_weights(block: dict, n_pseudo: int) -> np.ndarray:
    return np.bincount(block["pseudo"], weights=block["weights"], minlength=n_pseudo)


def _cohort_counts(block: dict, cohort_values: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(cohort_values, block["cohort"]), minlength=len(cohort_values)).astype(float)


def _delayed(func):
    from dask import delayed

    return delayed(func, pure=True)
