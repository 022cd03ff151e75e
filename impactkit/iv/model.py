"""Linear instrumental-variables estimation: 2SLS and LIML with absorbed fixed effects.

Estimation is done by ``linearmodels`` (:class:`~linearmodels.iv.model.IV2SLS`,
:class:`~linearmodels.iv.model.IVLIML`); this module validates the input, partials out
absorbed fixed effects, sets the covariance options and computes the first-stage and
weak-instrument diagnostics of :mod:`impactkit.iv.weak`.

Absorbed fixed effects (``absorb=``). The outcome, the exogenous regressors, the
endogenous regressors and the instruments are all demeaned within the levels of each
fixed effect (weighted means with ``weights``): exactly in one pass for one fixed
effect, by alternating projections (Gaure 2013, CSDA 66, section 3) to a relative
change below 1e-14 for several (:func:`impactkit.numerics.within.demean`). Singleton
observations (alone in a fixed-effect group) are dropped first, with a warning, as
reghdfe does. By the Frisch-Waugh-Lovell theorem 2SLS and LIML on the demeaned data
equal the dummy-variable estimates. The intercept is absorbed. Degrees
of freedom follow ivreg2/ivreghdfe (Correia 2016, reghdfe, "degrees of freedom"):
the absorbed effects use ``1 + sum_j (G_j - 1)`` parameters, minus the redundant
``C - 1`` of the first two fixed effects (``C`` = connected components of their
bipartite graph; exact for two fixed effects, conservative for more); a fixed effect
nested within the (one of the) cluster variable(s) uses none beyond the intercept.
Those ``extra_df`` enter the small-sample factor ``n / (n - k - extra_df)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula
from linearmodels import IV2SLS, IVLIML
from linearmodels.iv._utility import IVFormulaParser
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv import weak
from impactkit.iv.results import IVResult
from impactkit.numerics.within import demean

_FORMULA_CONTEXT = {"np": np}
_METHODS = ("2sls", "liml")
_VCOVS = ("robust", "unadjusted")


def _as_list(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = list(value)
    if not all(isinstance(v, str) for v in items):
        raise InputError(f"iv: {what} must be a column name or a list of column names")
    return items


def parse_formula(formula: str, data: pd.DataFrame) -> dict[str, str]:
    """Split a linearmodels IV formula into its dependent/exog/endog/instruments parts."""
    if not isinstance(formula, str) or "~" not in formula:
        raise InputError(f"iv: formula must be a string 'y ~ 1 + x + [d ~ z]', got {formula!r}")
    try:
        parts = IVFormulaParser(formula, data, context=_FORMULA_CONTEXT).components
    except ValueError as exc:
        raise InputError(f"iv: formula {formula!r} not understood: {exc}") from None
    if parts["endog"].strip() in ("", "0") or parts["instruments"].strip() in ("", "0"):
        raise InputError(f"iv: formula {formula!r} has no '[endogenous ~ instruments]' block; IV needs instruments")
    return parts


def formula_columns(parts: dict[str, str]) -> list[str]:
    """Data columns the formula refers to, in order of appearance by part."""
    names: list[str] = []
    for key in ("dependent", "exog", "endog", "instruments"):
        for name in sorted(Formula(parts[key]).required_variables):
            if name not in names and name not in _FORMULA_CONTEXT:
                names.append(name)
    return names


def complete_rows(data: pd.DataFrame, columns: list[str], weights: str | None) -> pd.Series:
    """Rows with every used column present; missing weights or non-positive weights raise."""
    if weights is not None:
        w = pd.to_numeric(data[weights], errors="coerce")
        bad = w.isna()
        if bad.any():
            raise InputError(f"iv: weights column {weights!r} has {int(bad.sum())} missing or non-numeric rows")
        if (w <= 0).any():
            raise InputError(f"iv: weights column {weights!r} has {int((w <= 0).sum())} rows <= 0; "
                             "weights must be positive")
    present = data[columns].notna().all(axis=1)
    return present


def singleton_mask(codes: list[np.ndarray]) -> np.ndarray:
    """Rows that stay after iteratively dropping singleton groups of any fixed effect.

    A row alone in its fixed-effect group is fitted exactly by its own dummy: it carries no
    information about the slopes but would inflate ``n`` (and ``G``) in the covariance,
    so reghdfe / ivreghdfe / pyfixest drop it (Correia 2015, "Singletons, cluster-robust
    standard errors and fixed effects: a bad mix"); so does :func:`iv`.
    """
    keep = np.ones(len(codes[0]), dtype=bool)
    while True:
        drop = np.zeros_like(keep)
        for c in codes:
            counts = np.bincount(c[keep], minlength=int(c.max()) + 1)
            drop |= keep & (counts[c] == 1)
        if not drop.any():
            return keep
        keep &= ~drop


def nested_in(fe_codes: np.ndarray, cluster_codes: np.ndarray) -> bool:
    """True when every level of the fixed effect lies within a single cluster."""
    pairs = pd.DataFrame({"fe": fe_codes, "cl": cluster_codes}).drop_duplicates()
    return bool(pairs["fe"].is_unique)


def absorbed_df(codes: list[np.ndarray], clusters: np.ndarray | None) -> int:
    """Parameters used by absorbed fixed effects (ivreghdfe convention, see module docstring)."""
    cluster_cols = [] if clusters is None else [clusters.reshape(len(clusters), -1)[:, j]
                                                for j in range(clusters.reshape(len(clusters), -1).shape[1])]
    counted = [c for c in codes if not any(nested_in(c, cl) for cl in cluster_cols)]
    df = 1 + sum(int(c.max()) + 1 - 1 for c in counted)
    if len(counted) >= 2:
        a, b = counted[0], counted[1]
        n_a = int(a.max()) + 1
        graph = sparse.coo_matrix((np.ones(len(a)), (a, n_a + b)), shape=(n_a + int(b.max()) + 1,) * 2)
        n_components, _ = connected_components(graph, directed=False)
        df -= n_components - 1
    return df


def _group_codes(frame: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    return [pd.factorize(frame[c])[0].astype(np.intp) for c in columns]


def _check_constant(name: str, values: np.ndarray, role: str) -> None:
    scale = max(float(np.abs(values).max()), 1.0)
    if float(np.ptp(values)) <= 1e-12 * scale:
        raise EstimationError(f"iv: {role} {name!r} is constant (no variation in the estimation sample)")


def _check_residual(name: str, residual: np.ndarray, original_norm: float, role: str, after: str) -> None:
    if float(np.linalg.norm(residual)) <= 1e-9 * max(float(original_norm), 1e-300):
        raise EstimationError(f"iv: {role} {name!r} has no variation left after {after}")


@dataclass
class IVDesign:
    """The estimation sample as model matrices (fixed effects already absorbed)."""

    dependent: pd.DataFrame
    exog: pd.DataFrame
    endog: pd.DataFrame
    instruments: pd.DataFrame
    weights: np.ndarray | None
    clusters: np.ndarray | None
    extra_df: int
    cov_type: str
    absorbed: list[str]
    endog_norms: np.ndarray  # norms of the sqrt(w)-weighted columns before any partialling
    instr_norms: np.ndarray

    @property
    def n(self) -> int:
        return len(self.dependent)

    @property
    def sqrt_weights(self) -> np.ndarray:
        return np.ones(self.n) if self.weights is None else np.sqrt(self.weights)


def _validate_options(data: Any, method: str, vcov: str, alpha: float, cluster_cols: list[str],
                      weights: str | None) -> None:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"iv: data must be a pandas DataFrame, got {type(data).__name__}")
    if method not in _METHODS:
        raise InputError(f"iv: method must be one of {_METHODS}, got {method!r}")
    if vcov not in _VCOVS:
        raise InputError(f"iv: vcov must be one of {_VCOVS}, got {vcov!r}")
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise InputError(f"iv: alpha must be a float in (0, 1), got {alpha!r}")
    if len(cluster_cols) > 2:
        raise InputError(f"iv: at most two cluster columns, got {cluster_cols}")
    if weights is not None and not isinstance(weights, str):
        raise InputError("iv: weights must be the name of a column")


def build_design(data: pd.DataFrame, formula: str, *, cluster_cols: list[str], absorb_cols: list[str],
                 weights: str | None, vcov: str) -> IVDesign:
    """Check columns and rows, build the model matrices and absorb the fixed effects."""
    parts = parse_formula(formula, data)
    model_cols = formula_columns(parts)
    extra_cols = cluster_cols + absorb_cols + ([weights] if weights else [])
    missing = [c for c in dict.fromkeys(model_cols + extra_cols) if c not in data.columns]
    if missing:
        raise InputError(f"iv: column(s) {', '.join(repr(c) for c in missing)} not found in data")
    used = list(dict.fromkeys(model_cols + cluster_cols + absorb_cols))
    keep = complete_rows(data, used, weights)
    if not keep.all():
        holes = [c for c in used if data[c].isna().any()]
        warnings.warn(f"iv: dropped {int((~keep).sum())} of {len(data)} rows with missing values in "
                      f"{', '.join(holes)}", ImpactkitWarning, stacklevel=3)
    frame = data.loc[keep, list(dict.fromkeys(used + ([weights] if weights else [])))].reset_index(drop=True)
    if len(frame) == 0:
        raise EstimationError("iv: no complete rows left")
    if absorb_cols:
        keep_rows = singleton_mask(_group_codes(frame, absorb_cols))
        if not keep_rows.all():
            warnings.warn(f"iv: dropped {int((~keep_rows).sum())} singleton observation(s) (alone in a group of "
                          f"{', '.join(absorb_cols)}), as reghdfe does", ImpactkitWarning, stacklevel=3)
            frame = frame.loc[keep_rows].reset_index(drop=True)
    try:
        parser = IVFormulaParser(formula, frame, context=_FORMULA_CONTEXT)
        dep_df, exog_df, endog_df, instr_df = parser.dependent, parser.exog, parser.endog, parser.instruments
    except Exception as exc:  # formulaic evaluation errors
        raise InputError(f"iv: cannot build the model matrices of {formula!r}: {exc}") from None
    endog_names = [str(c) for c in endog_df.columns]
    instr_names = [str(c) for c in instr_df.columns]
    if len(instr_names) < len(endog_names):
        raise EstimationError(f"iv: under-identified: {len(instr_names)} instrument(s) for "
                              f"{len(endog_names)} endogenous regressor(s) {endog_names}")
    for name in endog_names:
        _check_constant(name, endog_df[name].to_numpy(float), "endogenous regressor")
    for name in instr_names:
        _check_constant(name, instr_df[name].to_numpy(float), "instrument")

    w = frame[weights].to_numpy(float) if weights else None
    root_w = np.ones(len(frame)) if w is None else np.sqrt(w)
    endog_norms = np.linalg.norm(endog_df.to_numpy(float) * root_w[:, None], axis=0)
    instr_norms = np.linalg.norm(instr_df.to_numpy(float) * root_w[:, None], axis=0)
    clusters = None
    if cluster_cols:
        clusters = np.column_stack(_group_codes(frame, cluster_cols))
        clusters = clusters[:, 0] if clusters.shape[1] == 1 else clusters
    exog_df = exog_df if exog_df is not None else pd.DataFrame(index=frame.index)
    extra_df = 0
    if absorb_cols:
        codes = _group_codes(frame, absorb_cols)
        extra_df = absorbed_df(codes, clusters)
        sizes = [int(c.max()) + 1 for c in codes]

        def within(block: pd.DataFrame) -> pd.DataFrame:
            # alternating projections to 1e-14 even on a balanced panel: keeps the pinned numbers
            values = demean(block.to_numpy(float), codes, sizes, weights=w, tol=1e-14, method="projections")
            return pd.DataFrame(values, index=block.index, columns=block.columns)

        exog_df = exog_df.loc[:, [c for c in exog_df.columns if float(np.ptp(exog_df[c].to_numpy(float))) > 0]]
        raw_norms = np.linalg.norm(exog_df.to_numpy(float), axis=0)
        dep_df, exog_df, endog_df, instr_df = within(dep_df), within(exog_df), within(endog_df), within(instr_df)
        collinear = [str(c) for j, c in enumerate(exog_df.columns)
                     if np.linalg.norm(exog_df[c].to_numpy()) <= 1e-9 * raw_norms[j]]
        if collinear:
            warnings.warn(f"iv: dropped regressor(s) {', '.join(collinear)}: collinear with the absorbed fixed effects",
                          ImpactkitWarning, stacklevel=3)
            exog_df = exog_df.drop(columns=collinear)
    return IVDesign(dep_df, exog_df, endog_df, instr_df, w, clusters, extra_df,
                    "clustered" if cluster_cols else vcov, absorb_cols, endog_norms, instr_norms)


def residualised(design: IVDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """sqrt(w)-weighted outcome, endogenous regressors and instruments residualised on the exogenous
    regressors (fixed effects are already out); raises when nothing is left of a regressor."""
    root_w = design.sqrt_weights
    exog_w = design.exog.to_numpy(float) * root_w[:, None] if design.exog.shape[1] else None
    y_t = weak.partial_out(design.dependent.to_numpy(float)[:, 0] * root_w, exog_w)
    d_t = weak.partial_out(design.endog.to_numpy(float) * root_w[:, None], exog_w)
    z_t = weak.partial_out(design.instruments.to_numpy(float) * root_w[:, None], exog_w)
    after = "the exogenous regressors" + (" and absorbed fixed effects" if design.absorbed else "")
    for j, name in enumerate(design.instruments.columns):
        _check_residual(str(name), z_t[:, j], design.instr_norms[j], "instrument", after)
    for j, name in enumerate(design.endog.columns):
        _check_residual(str(name), d_t[:, j], design.endog_norms[j], "endogenous regressor", after)
    return y_t, d_t, z_t, 0 if exog_w is None else exog_w.shape[1]


def fit_linearmodels(design: IVDesign, method: str, formula: str):
    """2SLS / LIML by linearmodels with the design's covariance and small-sample options."""
    fit_kwargs: dict[str, Any] = {"cov_type": design.cov_type, "debiased": True, "extra_df": design.extra_df}
    if design.clusters is not None:
        fit_kwargs["clusters"] = pd.DataFrame(design.clusters.reshape(design.n, -1), index=design.dependent.index)
    estimator = IV2SLS if method == "2sls" else IVLIML
    weights = None if design.weights is None else pd.Series(design.weights, index=design.dependent.index)
    try:
        model = estimator(design.dependent, design.exog if design.exog.shape[1] else None, design.endog,
                          design.instruments, weights=weights)
        return model.fit(**fit_kwargs)
    except ValueError as exc:
        raise EstimationError(f"iv: linearmodels could not estimate {formula!r}: {exc}") from None


def iv(data: pd.DataFrame, formula: str, *, method: str = "2sls", cluster: str | Sequence[str] | None = None,
       absorb: str | Sequence[str] | None = None, weights: str | None = None, alpha: float = 0.05,
       vcov: str = "robust") -> IVResult:
    """Instrumental-variables regression (2SLS or LIML) with weak-instrument diagnostics.

    Parameters
    ----------
    data : DataFrame
    formula : str
        linearmodels syntax ``"y ~ 1 + x + [d ~ z1 + z2]"`` (the ``1`` adds an intercept;
        it is dropped when fixed effects are absorbed).
    method : "2sls" or "liml"
        Two-stage least squares (Theil 1953; Basmann 1957) or limited-information maximum
        likelihood (Anderson & Rubin 1949), the k-class estimator with kappa the smallest
        eigenvalue of the Anderson-Rubin variance ratio (Davidson & MacKinnon 1993, 18.5).
    cluster : column or list of up to two columns
        Cluster-robust covariance (one- or two-way, Cameron, Gelbach & Miller 2011).
    absorb : column or list of columns
        Fixed effects partialled out of every variable (see the module docstring).
    weights : column
        Positive analytic weights (weighted least squares in both stages).
    alpha : float
        Level of the confidence intervals and of the Anderson-Rubin set.
    vcov : "robust" or "unadjusted"
        Covariance when ``cluster`` is not given: HC1 heteroskedasticity-robust
        (White 1980) or the classical homoskedastic one.

    Inference uses Stata's small-sample conventions (ivreg2 ``small``): the covariance
    is scaled by ``n/(n-k)`` (robust), ``s^2 = e'e/(n-k)`` (unadjusted) or
    ``G/(G-1) (n-1)/(n-k)`` (clustered), with ``k`` counting absorbed effects, and t
    statistics use ``n-k`` degrees of freedom, ``G-1`` when clustered (smallest ``G``).

    Raises :class:`InputError` for a malformed formula, missing columns, missing or
    non-positive weights; :class:`EstimationError` for a constant endogenous regressor or
    instrument or an under-identified model. Warns (:class:`ImpactkitWarning`) about
    dropped incomplete rows and weak instruments.
    """
    from impactkit.frames import as_pandas

    data = as_pandas(data, "iv: data")
    cluster_cols = _as_list(cluster, "cluster")
    absorb_cols = _as_list(absorb, "absorb")
    _validate_options(data, method, vcov, alpha, cluster_cols, weights)
    design = build_design(data, formula, cluster_cols=cluster_cols, absorb_cols=absorb_cols, weights=weights,
                          vcov=vcov)
    y_t, d_t, z_t, n_exog = residualised(design)
    fitted = fit_linearmodels(design, method, formula)
    n, k = int(fitted.nobs), len(fitted.params)
    spec_main = weak.CovarianceSpec(design.cov_type, design.clusters, design.extra_df)
    df_resid = spec_main.df_resid(n, k)
    if df_resid <= 0:
        raise EstimationError(f"iv: no residual degrees of freedom (n={n}, parameters={k + design.extra_df})")
    main_vcov, repaired = weak.repair_psd(fitted.cov.to_numpy(float))
    if repaired:
        warnings.warn("iv: the two-way clustered covariance is not positive semi-definite (too few clusters in "
                      "one dimension); negative eigenvalues set to zero (Cameron, Gelbach & Miller 2011)",
                      ImpactkitWarning, stacklevel=2)
    std_errors = pd.Series(np.sqrt(np.diag(main_vcov)), index=fitted.params.index)
    coefficients = coefficient_table(fitted.params, std_errors, df_resid, alpha, n)

    spec = weak.CovarianceSpec(design.cov_type, design.clusters, design.extra_df + n_exog)
    endog_names = [str(c) for c in design.endog.columns]
    instr_names = tuple(str(c) for c in design.instruments.columns)
    stages = [weak.first_stage(d_t[:, j], z_t, spec, endogenous=name, instruments=instr_names)
              for j, name in enumerate(endog_names)]
    reduced = weak.first_stage(y_t, z_t, spec, endogenous=str(design.dependent.columns[0]), instruments=instr_names)
    diagnostics: dict[str, Any] = {
        "method": method, "cov_type": design.cov_type, "n": n, "df_resid": df_resid,
        "n_clusters": spec_main.n_clusters(), "absorbed": design.absorbed, "absorbed_df": design.extra_df,
        "endogenous": endog_names, "instruments": list(instr_names),
        "kappa": float(fitted.kappa) if method == "liml" else None,
        "cragg_donald_f": weak.cragg_donald_f(d_t, z_t, spec.extra_df),
        "kleibergen_paap_f": weak.kleibergen_paap_f(d_t, z_t, spec),
        "effective_f": None, "effective_f_critical_value": None, "k_eff": None,
        "weak_instruments": None, "anderson_rubin": None, "ar_set": None,
        "stock_yogo_size": weak.STOCK_YOGO_SIZE.get(len(instr_names)) if len(endog_names) == 1 else None,
    }
    ar_set = ar_inputs = None
    if len(endog_names) == 1:
        row = coefficients.loc[coefficients["term"] == endog_names[0]].iloc[0]
        ar_inputs, ar_set = single_endogenous_diagnostics(diagnostics, stages[0], y_t, d_t[:, 0], z_t, spec,
                                                          alpha=alpha, estimate=float(row["estimate"]),
                                                          std_error=float(row["std_error"]))
    else:
        joint = weak.anderson_rubin_joint_inputs(y_t, d_t, z_t, spec).test(np.zeros(len(endog_names)))
        diagnostics["anderson_rubin"] = {"b0": [0.0] * len(endog_names), **joint}
        diagnostics["weak_iv_note"] = ("The effective F and the Anderson-Rubin set are reported for one endogenous "
                                       "regressor only (Montiel Olea-Pflueger 2013); with several, see the "
                                       "Kleibergen-Paap F, the per-regressor partial F and the joint Anderson-Rubin "
                                       "test that every endogenous effect is zero.")
        if diagnostics["kleibergen_paap_f"] < 10:
            warnings.warn(f"iv: Kleibergen-Paap rk Wald F = {diagnostics['kleibergen_paap_f']:.2f} < 10 with "
                          f"{len(endog_names)} endogenous regressors: instruments may be weak", ImpactkitWarning,
                          stacklevel=2)
    first_stage = first_stage_table(stages, n)
    reduced_form = instrument_rows(reduced, n).drop(columns=["partial_r2", "partial_f", "partial_f_p_value"])
    reduced_form = reduced_form.rename(columns={"endogenous": "outcome"})
    return IVResult(coefficients=coefficients, first_stage=first_stage, reduced_form=reduced_form,
                    diagnostics=diagnostics, formula=formula, method=method, alpha=alpha,
                    ar_set=ar_set, ar_inputs=ar_inputs,
                    ar_joint=weak.anderson_rubin_joint_inputs(y_t, d_t, z_t, spec))


def single_endogenous_diagnostics(diagnostics: dict[str, Any], stage: weak.FirstStage, y_t: np.ndarray,
                                  d_t: np.ndarray, z_t: np.ndarray, spec: weak.CovarianceSpec, *, alpha: float,
                                  estimate: float, std_error: float
                                  ) -> tuple[weak.ARTestInputs, weak.ARConfidenceSet]:
    """Effective F, Anderson-Rubin test of 0 and AR set; fills ``diagnostics``; warns when weak."""
    eff = weak.effective_f(stage, z_t, alpha=0.05)
    ar_inputs = weak.anderson_rubin_inputs(y_t, d_t, z_t, spec)
    return ar_inputs, record_single_endogenous(diagnostics, stage, eff, ar_inputs, alpha=alpha, estimate=estimate,
                                               std_error=std_error)


def record_single_endogenous(diagnostics: dict[str, Any], stage: weak.FirstStage, eff: weak.EffectiveF,
                             ar_inputs: weak.ARTestInputs, *, alpha: float, estimate: float,
                             std_error: float) -> weak.ARConfidenceSet:
    """The Anderson-Rubin set from ``ar_inputs``; fills ``diagnostics`` with it and the effective F
    ``eff``; warns when the instruments are weak (shared by the pandas and Dask engines)."""
    ar_set = weak.anderson_rubin_set(ar_inputs, alpha=alpha, center=estimate, scale=std_error)
    diagnostics.update({
        "effective_f": eff.f_eff, "effective_f_critical_value": eff.critical_value, "k_eff": eff.k_eff,
        "weak_instruments": eff.weak,
        "anderson_rubin": {"b0": 0.0, "f": ar_inputs.wald(0.0) / ar_inputs.df_num, "p_value": ar_inputs.p_value(0.0),
                           "df_num": ar_inputs.df_num, "df_denom": ar_inputs.df_denom},
        "ar_set": ar_set.to_dict(),
    })
    if eff.weak:
        warnings.warn(
            f"iv: weak instrument(s) for {stage.endogenous!r}: effective F = {eff.f_eff:.2f} is below the "
            f"Montiel Olea-Pflueger critical value {eff.critical_value:.2f} (tau=10%, 5%); rely on the "
            f"Anderson-Rubin {100 * (1 - alpha):.0f}% set {ar_set.describe()} ({ar_set.kind})",
            ImpactkitWarning, stacklevel=4)
    return ar_set


def coefficient_table(params: pd.Series, std_errors: pd.Series, df_resid: int, alpha: float, n: int) -> pd.DataFrame:
    est = params.to_numpy(float)
    se = std_errors.to_numpy(float)
    t_crit = float(stats.t.ppf(1 - alpha / 2, df_resid))
    return pd.DataFrame({
        "term": [str(t) for t in params.index],
        "estimate": est,
        "std_error": se,
        "conf_low": est - t_crit * se,
        "conf_high": est + t_crit * se,
        "p_value": 2 * stats.t.sf(np.abs(est / se), df_resid),
        "n": n,
    })


def instrument_rows(stage: weak.FirstStage, n: int) -> pd.DataFrame:
    se = np.sqrt(np.diag(stage.vcov))
    return pd.DataFrame({
        "endogenous": stage.endogenous,
        "instrument": list(stage.instruments),
        "estimate": stage.coef,
        "std_error": se,
        "p_value": 2 * stats.t.sf(np.abs(stage.coef / se), stage.df_denom),
        "partial_r2": stage.partial_r2,
        "partial_f": stage.partial_f,
        "partial_f_p_value": stage.partial_f_p_value,
        "n": n,
    })


def first_stage_table(stages: list[weak.FirstStage], n: int) -> pd.DataFrame:
    return pd.concat([instrument_rows(s, n) for s in stages], ignore_index=True)
