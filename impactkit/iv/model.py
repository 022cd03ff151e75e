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
Those ``extra_df`` enter the small-sample factor ``n / (n - k - extra_df)``. The model
matrices are built in :mod:`impactkit.iv.design` (re-exported here).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from linearmodels import IV2SLS, IVLIML
from scipy import stats

from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv.design import (  # noqa: F401  (re-exported: the design lived here)
    IVDesign,
    absorbed_df,
    build_design,
    complete_rows,
    formula_columns,
    nested_in,
    parse_formula,
    residualised,
    singleton_mask,
)
from impactkit.iv import weak
from impactkit.iv.lewis_mertens import LewisMertensF, lewis_mertens_f
from impactkit.iv.results import IVResult

_METHODS = ("2sls", "liml")
_VCOVS = ("robust", "unadjusted")


def _as_list(value: str | Sequence[str] | None, what: str) -> list[str]:
    """``None`` -> ``[]``, a column name -> ``[name]``, a sequence of names -> a list.

    Parameters
    ----------
    value : str, sequence of str or None
        Column name(s).
    what : str
        The option (``"cluster"``, ``"absorb"``), for messages.

    Returns
    -------
    list of str
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = list(value)
    if not all(isinstance(v, str) for v in items):
        raise InputError(f"iv: {what} must be a column name or a list of column names")
    return items


def _validate_options(data: Any, method: str, vcov: str, alpha: float, cluster_cols: list[str],
                      weights: str | None) -> None:
    """InputError unless the options of :func:`iv` are of the right kind and in range.

    Parameters
    ----------
    data : Any
        Must be a pandas DataFrame.
    method : str
        ``"2sls"`` or ``"liml"``.
    vcov : str
        ``"robust"`` or ``"unadjusted"``.
    alpha : float
        In (0, 1).
    cluster_cols : list of str
        At most two.
    weights : str or None
        A column name.
    """
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


def fit_linearmodels(design: IVDesign, method: str, formula: str):
    """2SLS / LIML by linearmodels with the design's covariance and small-sample options.

    Parameters
    ----------
    design : IVDesign
        The model matrices.
    method : {"2sls", "liml"}
        Estimator.
    formula : str
        The formula, for messages.

    Returns
    -------
    linearmodels.iv.results.IVResults
    """
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
        "effective_f_method": "Montiel Olea-Pflueger", "lm_b_max": None,
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
        record_several_endogenous(diagnostics, lewis_mertens_f(y_t, d_t, z_t, spec, alpha=0.05), stacklevel=3)
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
    """Effective F, Anderson-Rubin test of 0 and AR set; fills ``diagnostics``; warns when weak.

    Parameters
    ----------
    diagnostics : dict
        The result's diagnostics; filled here.
    stage : impactkit.iv.weak.FirstStage
        The first stage of the one endogenous regressor.
    y_t, d_t, z_t : numpy.ndarray
        Residualised outcome, endogenous regressor and instruments (:func:`residualised`).
    spec : impactkit.iv.weak.CovarianceSpec
        Covariance of the Anderson-Rubin test.
    alpha : float
        1 - confidence level of the AR set.
    estimate, std_error : float
        The IV estimate and its standard error (centre and scale of the AR set's search).

    Returns
    -------
    ar_inputs : impactkit.iv.weak.ARTestInputs
    ar_set : impactkit.iv.weak.ARConfidenceSet
    """
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


def record_several_endogenous(diagnostics: dict[str, Any], generalised: LewisMertensF, *,
                              stacklevel: int = 3) -> None:
    """Fill ``diagnostics`` with the Lewis-Mertens effective F of several endogenous regressors and
    warn when the instruments are weak (shared by the pandas and Dask engines).

    Parameters
    ----------
    diagnostics : dict
        The result's diagnostics; filled here.
    generalised : impactkit.iv.lewis_mertens.LewisMertensF
        The statistic, its simplified critical value and ``B_max``.
    stacklevel : int
        Of the warning.
    """
    n_endog = len(diagnostics["endogenous"])
    diagnostics.update({"effective_f": generalised.g_min, "effective_f_critical_value": generalised.critical_value,
                        "effective_f_method": "Lewis-Mertens", "lm_b_max": generalised.b_max,
                        "weak_instruments": generalised.weak})
    diagnostics["weak_iv_note"] = ("The Anderson-Rubin set is reported for one endogenous regressor only; with "
                                   "several, see the joint Anderson-Rubin test that every endogenous effect is "
                                   "zero. The effective F is Lewis & Mertens's (2022) generalisation, with its "
                                   "simplified (conservative) critical value.")
    if generalised.weak:
        warnings.warn(f"iv: weak instruments: Lewis-Mertens effective F = {generalised.g_min:.2f} is below its "
                      f"critical value {generalised.critical_value:.2f} (tau=10%, 5%) with {n_endog} "
                      "endogenous regressors; rely on the joint Anderson-Rubin test", ImpactkitWarning,
                      stacklevel=stacklevel)


def coefficient_table(params: pd.Series, std_errors: pd.Series, df_resid: int, alpha: float, n: int) -> pd.DataFrame:
    """One row per term: estimate, standard error, t interval and p-value.

    Parameters
    ----------
    params, std_errors : pandas.Series
        Coefficients and standard errors by term.
    df_resid : int
        Degrees of freedom of the t distribution.
    alpha : float
        1 - confidence level.
    n : int
        Observations (a column of the table).

    Returns
    -------
    pandas.DataFrame
    """
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
    """One row per instrument of one first stage: coefficient, standard error, p-value, partial R2 and F.

    Parameters
    ----------
    stage : impactkit.iv.weak.FirstStage
        The first stage of one endogenous regressor.
    n : int
        Observations (a column of the table).

    Returns
    -------
    pandas.DataFrame
    """
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
    """:func:`instrument_rows` of every first stage, stacked.

    Parameters
    ----------
    stages : list of impactkit.iv.weak.FirstStage
        One per endogenous regressor.
    n : int
        Observations.

    Returns
    -------
    pandas.DataFrame
    """
    return pd.concat([instrument_rows(s, n) for s in stages], ignore_index=True)
