"""Two-stage least squares on Dask, by sufficient statistics.

Same model, conventions and numbers as :func:`impactkit.iv.model.iv` with ``method="2sls"``
(2SLS: Theil 1953, Basmann 1957; inference as ivreg2 ``small`` / linearmodels ``debiased``;
absorbed fixed effects as ivreghdfe; weak-IV diagnostics of :mod:`impactkit.iv.weak`), tested
to 1e-10. Three kinds of pass over unit-partitioned data (:mod:`impactkit.distributed.iv_sums`):

1. singleton levels of the absorbed fixed effects, iterated to the fixed point (reghdfe's rule);
2. the cross-products ``A'WA`` of ``A = [y, exog, endog, instruments, dummies]`` after within-unit
   demeaning. The client partials the dummies out (a Schur complement, Frisch-Waugh-Lovell), drops
   constant and collinear exogenous regressors, and gets everything that is a function of
   cross-products: ``Z'Z``, ``Z'X``, ``X'X``, ``Z'y``, the 2SLS coefficients
   ``b = (X'P_Z X)^-1 X'P_Z y``, the first stages and reduced form on the instruments residualised
   on the exogenous regressors, their residual cross-products, the Cragg-Donald F;
3. given those coefficients, per partition the 2SLS scores ``xhat_i e_i`` and the instruments'
   scores ``z_i u_i`` of the first-stage and reduced-form residuals, summed per cluster (CRV1) or as
   outer products (HC1): the 2SLS covariance, the first-stage Wald F, the Kleibergen-Paap rk F
   (Kleibergen & Paap 2006), the Montiel Olea-Pflueger effective F and the Anderson-Rubin test and
   set (their sandwich is bilinear in the residuals, so the sums of every residual pair suffice).

Departures (said, not hidden): 2SLS only (no LIML); one cluster column; the unit (the partition
key) and at most one other fixed effect can be absorbed, the other one as dummies, so it should
have few levels (periods, regions); the collinearity checks compare squared norms from
cross-products, so their threshold has a floor at ``1e3`` machine epsilons of the raw norm.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from impactkit.distributed.iv_sums import IVColumns, gram_part, scores_part, singleton_counts
from impactkit.distributed.reduce import add, map_blocks, partitions
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv import weak
from impactkit.iv.lewis_mertens import lewis_mertens_from_moments
from impactkit.iv.model import (coefficient_table, first_stage_table, formula_columns, instrument_rows,
                                parse_formula, record_several_endogenous, record_single_endogenous)

NORM_FLOOR = 1e3 * np.finfo(float).eps   # squared-norm ratio below which a column counts as gone


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    return [] if value is None else ([value] if isinstance(value, str) else list(value))


def _gone(ss_after: np.ndarray, ss_before: np.ndarray) -> np.ndarray:
    """The pandas engine's ``norm(after) <= 1e-9 norm(before)``, on squared norms with a rounding floor."""
    return ss_after <= max(1e-18, NORM_FLOOR) * np.maximum(ss_before, 1e-300)


@dataclass(frozen=True)
class Meats:
    """Scaled sandwich meats of the instrument scores of every residual pair (``meat_pair`` of
    :mod:`impactkit.iv.weak` from sums): residual 0 is the reduced form's, ``1 + j`` endogenous ``j``'s."""

    raw: np.ndarray          # (R, R, L, L) unscaled meats
    cov_type: str
    n: int
    dof: int
    n_clusters: int | None

    def __call__(self, a: int, b: int) -> np.ndarray:
        if self.dof <= 0:
            raise EstimationError(f"iv: {self.n} observations leave no residual degrees of freedom")
        if self.cov_type == "unadjusted":
            return self.raw[a, b] / self.dof
        if self.cov_type == "robust":
            return self.n / self.dof * self.raw[a, b]
        g = self.n_clusters
        if g < 2:
            raise EstimationError("iv: clustered covariance needs at least 2 clusters")
        return self.raw[a, b] * (g / (g - 1)) * ((self.n - 1) / self.dof)

    def combined(self, weights: np.ndarray) -> np.ndarray:
        """The meat of the residual ``sum_a weights[a] u_a`` (bilinearity)."""
        return sum(weights[a] * weights[b] * self(a, b) for a in range(len(weights)) for b in range(len(weights)))


@dataclass(frozen=True)
class ReducedARJoint:
    """:class:`impactkit.iv.weak.ARJointInputs` from reduced sums: the joint Anderson-Rubin test of
    ``beta = b0`` (Anderson & Rubin 1949; robust form of Chernozhukov & Hansen 2008)."""

    bread: np.ndarray
    pi_y: np.ndarray
    pi_d: np.ndarray
    meats: Meats
    df_denom: int

    @property
    def n_endogenous(self) -> int:
        return self.pi_d.shape[1]

    def test(self, b0) -> dict[str, float]:
        return weak.joint_ar_test(self.pi_y, self.pi_d, self.bread, self.meats.combined, self.df_denom, b0)


def _singletons(parts, cols: IVColumns, absorb: list[str]) -> tuple[IVColumns, int]:
    """Iterate the singleton rule to its fixed point; warn as the pandas engine does."""
    first = None
    while True:
        facts = map_blocks(singleton_counts, parts, cols)
        first = first or facts
        counts = pd.concat([f["counts"] for f in facts]).groupby(level=0).sum() if cols.dummy_fe else None
        if counts is None or not absorb:
            break
        new = [v for v in counts.index[counts == 1] if v not in cols.dropped_levels]
        if not new:
            break
        cols = replace(cols, dropped_levels=cols.dropped_levels + tuple(new))
    n, n_complete = sum(f["n"] for f in first), sum(f["complete"] for f in first)
    if n_complete < n:
        missing = {c: sum(f["missing"][c] for f in first) for c in cols.used}
        holes = [c for c in cols.used if missing[c]]
        warnings.warn(f"iv: dropped {n - n_complete} of {n} rows with missing values in {', '.join(holes)}",
                      ImpactkitWarning, stacklevel=3)
    if n_complete == 0:
        raise EstimationError("iv: no complete rows left")
    kept = sum(f["kept"] for f in facts)
    if kept < n_complete:
        warnings.warn(f"iv: dropped {n_complete - kept} singleton observation(s) (alone in a group of "
                      f"{', '.join(absorb)}), as reghdfe does", ImpactkitWarning, stacklevel=3)
    if counts is not None:
        cols = replace(cols, levels=tuple(sorted(counts.index[counts > 0])))
    return cols, kept


def _absorbed_df(facts: list[dict], cols: IVColumns) -> int:
    """ivreghdfe's parameters of the absorbed effects (:func:`impactkit.iv.model.absorbed_df`) from facts."""
    counted = []
    if cols.demean_unit and not (cols.cluster and all(f["unit_in_cluster"] for f in facts)):
        counted.append(sum(f["n_units"] for f in facts))
    if cols.dummy_fe is not None:
        clusters_of: dict = {}
        for f in facts:
            for level, found in f["level_clusters"].items():
                clusters_of.setdefault(level, set()).update(found)
        nested = bool(cols.cluster) and all(len(c) == 1 for c in clusters_of.values())
        if not nested:
            counted.append(len(cols.levels))
    df = 1 + sum(g - 1 for g in counted)
    if len(counted) == 2:   # unit and dummy effect: connected components of their bipartite graph, found on
        from scipy import sparse                         # the levels (units link the levels they touch)
        from scipy.sparse.csgraph import connected_components

        edges = np.concatenate([f["level_edges"] for f in facts])
        size = len(cols.levels)
        graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(size, size))
        df -= connected_components(graph, directed=False)[0] - 1
    return df


def estimate_iv(frame, formula: str, *, unit: str, cluster: str | Sequence[str] | None = None,
                absorb: str | Sequence[str] | None = None, weights: str | None = None, alpha: float = 0.05,
                vcov: str = "robust", method: str = "2sls"):
    """2SLS with weak-instrument diagnostics on a dask DataFrame; same numbers as :func:`impactkit.iv.iv`.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The data (:func:`impactkit.distributed.data.read_panel`).
    formula : str
        linearmodels syntax ``"y ~ 1 + x + [d ~ z1 + z2]"``.
    unit : str
        The unit column: partitions are made to hold whole units, so it can be absorbed exactly.
    cluster : str, optional
        One cluster column (CRV1, Liang & Zeger 1986, ivreg2's small-sample factor).
    absorb : str or list of str, optional
        Fixed effects: ``unit`` and at most one other column (with few levels).
    weights : str, optional
        Positive analytic weights.
    alpha : float, default 0.05
        Level of the intervals and of the Anderson-Rubin set.
    vcov : {"robust", "unadjusted"}, default "robust"
        Covariance without ``cluster``: HC1 (White 1980) or homoskedastic.
    method : {"2sls"}
        Only 2SLS on this engine.

    Returns
    -------
    impactkit.iv.results.IVResult
        The pandas engine's result type (``ar_joint`` is a :class:`ReducedARJoint`).

    Raises
    ------
    InputError
        Bad options, columns or weights; a formula whose model matrices differ between partitions.
    EstimationError
        Under-identified model, constant or vanishing regressors, no rows or degrees of freedom left.
    """
    from impactkit.distributed.data import by_unit
    from impactkit.iv.results import IVResult

    if method != "2sls":
        raise InputError(f"iv: method={method!r} is not available on the dask engine; use method='2sls'")
    if vcov not in ("robust", "unadjusted"):
        raise InputError(f"iv: vcov must be one of ('robust', 'unadjusted'), got {vcov!r}")
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise InputError(f"iv: alpha must be a float in (0, 1), got {alpha!r}")
    cluster_cols, absorb_cols = _as_list(cluster), _as_list(absorb)
    if len(cluster_cols) > 1:
        raise InputError(f"iv: the dask engine clusters on one column, got {cluster_cols}")
    others = [c for c in absorb_cols if c != unit]
    if len(others) > 1:
        raise InputError(f"iv: the dask engine absorbs the unit '{unit}' and at most one other fixed effect, "
                         f"got {absorb_cols}")
    model_cols = formula_columns(parse_formula(formula, frame._meta))
    needed = list(dict.fromkeys(model_cols + cluster_cols + absorb_cols + [unit] + ([weights] if weights else [])))
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"iv: column(s) {', '.join(repr(c) for c in missing)} not found in data")
    cols = IVColumns(formula=formula, unit=unit, used=tuple(dict.fromkeys(model_cols + cluster_cols + absorb_cols)),
                     demean_unit=unit in absorb_cols, dummy_fe=others[0] if others else None,
                     cluster=cluster_cols[0] if cluster_cols else None, weights=weights)
    parts = partitions(by_unit(frame[needed], unit))
    cols, n = _singletons(parts, cols, absorb_cols)
    facts = map_blocks(gram_part, parts, cols)
    names = next(f["names"] for f in facts if f["n"])
    if any(f["names"] != names for f in facts if f["n"]):
        raise InputError(f"iv: the model matrices of {formula!r} differ between partitions (a categorical term "
                         "whose levels differ?); give numeric columns")
    dep_name, exog_names, endog_names, instr_names = names
    n_exog0, n_endog, n_instr = len(exog_names), len(endog_names), len(instr_names)
    if n_instr < n_endog:
        raise EstimationError(f"iv: under-identified: {n_instr} instrument(s) for {n_endog} endogenous "
                              f"regressor(s) {endog_names}")
    low = np.min([f["low"] for f in facts], axis=0)
    high = np.max([f["high"] for f in facts], axis=0)
    for j, (name, role) in enumerate([(c, "endogenous regressor") for c in endog_names]
                                     + [(c, "instrument") for c in instr_names], start=n_exog0):
        if high[j] - low[j] <= 1e-12 * max(abs(low[j]), abs(high[j]), 1.0):
            raise EstimationError(f"iv: {role} {name!r} is constant (no variation in the estimation sample)")
    raw_ss = add([f["raw_ss_weighted"] for f in facts])
    gram = add([f["gram"] for f in facts])
    n_main = 1 + n_exog0 + n_endog + n_instr
    gamma = None
    if gram.shape[0] > n_main:                 # partial the dummies out (Frisch-Waugh-Lovell)
        gamma = np.linalg.solve(gram[n_main:, n_main:], gram[n_main:, :n_main])
        gram = gram[:n_main, :n_main] - gram[:n_main, n_main:] @ gamma
    else:
        gram = gram[:n_main, :n_main]
    exog_keep = list(range(n_exog0))
    if absorb_cols:
        exog_keep = [j for j in exog_keep if high[j] > low[j]]
        collinear = [j for j in exog_keep if _gone(gram[1 + j, 1 + j], raw_ss[j])]
        if collinear:
            warnings.warn(f"iv: dropped regressor(s) {', '.join(exog_names[j] for j in collinear)}: collinear with "
                          "the absorbed fixed effects", ImpactkitWarning, stacklevel=2)
            exog_keep = [j for j in exog_keep if j not in collinear]
    n_exog = len(exog_keep)
    keep = np.array([0] + [1 + j for j in exog_keep] + list(range(1 + n_exog0, n_main)))
    g = gram[np.ix_(keep, keep)]
    ex = list(range(1, 1 + n_exog))
    dd = list(range(1 + n_exog, 1 + n_exog + n_endog))
    zz_ = list(range(1 + n_exog + n_endog, len(keep)))
    x_index, z_index, r_index = ex + dd, ex + zz_, [0] + dd + zz_

    # residualised on the exogenous regressors: [y, D, Z] (the weak-IV arrays of the pandas engine)
    b_exog = np.linalg.solve(g[np.ix_(ex, ex)], g[np.ix_(ex, r_index)]) if n_exog else None
    h = g[np.ix_(r_index, r_index)] - (g[np.ix_(r_index, ex)] @ b_exog if n_exog else 0.0)
    yd, zc = list(range(1 + n_endog)), list(range(1 + n_endog, 1 + n_endog + n_instr))
    after = "the exogenous regressors" + (" and absorbed fixed effects" if absorb_cols else "")
    for j, name in enumerate(instr_names):
        if _gone(h[zc[j], zc[j]], raw_ss[n_exog0 + n_endog + j]):
            raise EstimationError(f"iv: instrument {name!r} has no variation left after {after}")
    for j, name in enumerate(endog_names):
        if _gone(h[1 + j, 1 + j], raw_ss[n_exog0 + j]):
            raise EstimationError(f"iv: endogenous regressor {name!r} has no variation left after {after}")
    zz = h[np.ix_(zc, zc)]
    pi_yd = np.linalg.solve(zz, h[np.ix_(zc, yd)])
    uu = h[np.ix_(yd, yd)] - h[np.ix_(yd, zc)] @ pi_yd

    # 2SLS on [exog, endog] with instruments [exog, instruments]
    zf_zf, zf_x = g[np.ix_(z_index, z_index)], g[np.ix_(z_index, x_index)]
    pi_full = np.linalg.solve(zf_zf, zf_x)
    xpx = zf_x.T @ pi_full
    beta = np.linalg.solve(xpx, pi_full.T @ g[z_index, 0])
    k = len(x_index)
    ee = float(g[0, 0] - 2.0 * beta @ g[x_index, 0] + beta @ g[np.ix_(x_index, x_index)] @ beta)

    params = {"n_main": n_main, "gamma": gamma, "keep": keep, "x_index": x_index, "z_index": z_index,
              "pi_full": pi_full, "beta": beta, "r_index": r_index, "exog_index": ex, "b_exog": b_exog,
              "z_cols": zc, "yd_cols": yd, "pi_yd": pi_yd}
    cov_type = "clustered" if cols.cluster else vcov
    n_clusters = None
    if cov_type == "unadjusted":
        main_meat = None
        raw_pairs = np.einsum("ab,lm->ablm", uu, zz)
    else:
        sums = map_blocks(scores_part, parts, cols, params)
        if cols.cluster:
            per = pd.concat([s["clusters"] for s in sums]).groupby(level=0, sort=False).sum()
            n_clusters = len(per)
            sx = per[[f"x{j}" for j in range(k)]].to_numpy()
            sz = np.stack([per[[f"z{a}_{l}" for l in range(n_instr)]].to_numpy() for a in range(1 + n_endog)])
            main_meat = sx.T @ sx
            raw_pairs = np.einsum("agl,bgm->ablm", sz, sz)
        else:
            main_meat = add([s["xx"] for s in sums])
            raw_pairs = add([s["pairs"] for s in sums])
    extra_df = _absorbed_df(facts, cols) if absorb_cols else 0
    if n - k - extra_df <= 0:
        raise EstimationError(f"iv: no residual degrees of freedom (n={n}, parameters={k + extra_df})")
    bread = np.linalg.inv(xpx)
    denom = n - k - extra_df
    if cov_type == "unadjusted":
        main_vcov = ee / denom * bread
    elif cov_type == "robust":
        main_vcov = bread @ main_meat @ bread * (n / denom)
    else:
        if n_clusters < 2:
            raise EstimationError("iv: clustered covariance needs at least 2 clusters")
        main_vcov = bread @ main_meat @ bread * (n_clusters / (n_clusters - 1) * (n - 1) / denom)
    main_vcov, _ = weak.repair_psd((main_vcov + main_vcov.T) / 2)
    df_resid = n_clusters - 1 if cov_type == "clustered" else denom
    terms = [exog_names[j] for j in exog_keep] + endog_names
    coefficients = coefficient_table(pd.Series(beta, index=terms), pd.Series(np.sqrt(np.diag(main_vcov)), index=terms),
                                     df_resid, alpha, n)

    # weak-instrument diagnostics on the residualised arrays, from the sums
    stage_extra = extra_df + n_exog
    meats = Meats(raw=raw_pairs, cov_type=cov_type, n=n, dof=n - n_instr - stage_extra, n_clusters=n_clusters)
    df_denom = n_clusters - 1 if cov_type == "clustered" else n - n_instr - stage_extra
    bread_z = np.linalg.inv(zz)

    def stage(a: int, name: str) -> weak.FirstStage:
        coef = pi_yd[:, a]
        vc, _ = weak.repair_psd(bread_z @ meats(a, a) @ bread_z)
        wald = float(coef @ np.linalg.pinv(vc, hermitian=True) @ coef)
        return weak.FirstStage(name, tuple(instr_names), coef, vc, 1.0 - uu[a, a] / h[a, a], wald, n_instr,
                               df_denom, np.empty(0))

    stages = [stage(1 + j, name) for j, name in enumerate(endog_names)]
    reduced = stage(0, dep_name[0])
    s_vv = uu[1:, 1:] / (n - n_instr - stage_extra)
    values, vectors = np.linalg.eigh(s_vv)
    if values.min() <= 0:
        raise EstimationError("iv: first-stage residual covariance is singular "
                              "(an endogenous regressor is perfectly predicted by the instruments)")
    root_inv = vectors @ np.diag(values ** -0.5) @ vectors.T
    pi_d = pi_yd[:, 1:]
    concentration = root_inv @ (pi_d.T @ zz @ pi_d) @ root_inv
    kp_meat = np.block([[meats(1 + j, 1 + l) for l in range(n_endog)] for j in range(n_endog)])
    diagnostics: dict[str, Any] = {
        "method": method, "cov_type": cov_type, "n": n, "df_resid": df_resid, "n_clusters": n_clusters,
        "absorbed": absorb_cols, "absorbed_df": extra_df, "endogenous": endog_names, "instruments": instr_names,
        "kappa": None, "cragg_donald_f": float(np.linalg.eigvalsh(concentration).min() / n_instr),
        "kleibergen_paap_f": weak.kleibergen_paap_from_moments(zz, pi_d, s_vv, kp_meat),
        "effective_f": None, "effective_f_critical_value": None, "k_eff": None,
        "effective_f_method": "Montiel Olea-Pflueger", "lm_b_max": None,
        "weak_instruments": None, "anderson_rubin": None, "ar_set": None,
        "stock_yogo_size": weak.STOCK_YOGO_SIZE.get(n_instr) if n_endog == 1 else None,
    }
    joint = ReducedARJoint(bread_z, pi_yd[:, 0], pi_d, meats, df_denom)
    ar_set = ar_inputs = None
    if n_endog == 1:
        root = np.linalg.cholesky(zz).T          # any z with z'z = Z'Z gives the effective F
        eff = weak.effective_f(stages[0], root, alpha=0.05)
        vc = lambda a, b: bread_z @ meats(a, b) @ bread_z  # noqa: E731
        ar_inputs = weak.ARTestInputs(pi_yd[:, 0], pi_d[:, 0], vc(0, 0), vc(0, 1), vc(1, 1), n_instr, df_denom)
        row = coefficients.loc[coefficients["term"] == endog_names[0]].iloc[0]
        ar_set = record_single_endogenous(diagnostics, stages[0], eff, ar_inputs, alpha=alpha,
                                          estimate=float(row["estimate"]), std_error=float(row["std_error"]))
    else:
        diagnostics["anderson_rubin"] = {"b0": [0.0] * n_endog, **joint.test(np.zeros(n_endog))}
        generalised = lewis_mertens_from_moments(zz, pi_d, meats, alpha=0.05)
        record_several_endogenous(diagnostics, generalised)
    reduced_form = instrument_rows(reduced, n).drop(columns=["partial_r2", "partial_f", "partial_f_p_value"])
    return IVResult(coefficients=coefficients, first_stage=first_stage_table(stages, n),
                    reduced_form=reduced_form.rename(columns={"endogenous": "outcome"}), diagnostics=diagnostics,
                    formula=formula, method=method, alpha=alpha, ar_set=ar_set, ar_inputs=ar_inputs, ar_joint=joint)
