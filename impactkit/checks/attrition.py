"""Attrition: rates by arm and wave, differential-attrition tests, IPW weights; Lee bounds (in
:mod:`impactkit.checks.lee`, re-exported here).

References
----------
- Lee, D. S. (2009), "Training, Wages, and Sample Selection: Estimating Sharp Bounds on
  Treatment Effects", *Review of Economic Studies* 76(3), 1071-1102: trimming bounds
  (Proposition 1a) and their asymptotic variance (Proposition 3).
- Imbens, G. W. and Manski, C. F. (2004), "Confidence Intervals for Partially Identified
  Parameters", *Econometrica* 72(6), 1845-1857, eq. (6): confidence interval covering
  the true parameter (not the whole identified set) with probability 1 - alpha.
- Ghanem, D., Hirshleifer, S. and Ortiz-Becerra, K. (2023), "Testing Attrition Bias in
  Field Experiments", *J. Human Resources*: the test of differential attrition on
  baseline covariates (joint test of arm x covariate interactions).
- Lee (2009), Sec. 3.2 / Proposition 1b: bounds tightened by discrete baseline covariates
  (trimming within covariate cells, averaged over the always-observed).
- Cluster-robust inference: the influence function of the trimmed-mean bound (Lee 2009,
  proof of Proposition 3) summed within clusters (Liang & Zeger 1986); bootstrap intervals
  resample clusters (or units) with replacement (Horowitz & Manski 2000 bootstrap for bounds).
- Wooldridge, J. M. (2002), "Inverse probability weighted M-estimators for sample
  selection, attrition, and stratification", *Portuguese Economic Journal* 1, 117-139:
  inverse-probability-of-remaining weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from impactkit.checks.inputs import (
    as_list,
    binary_arm,
    cluster_codes,
    numeric_column,
    observed_flags,
    require_columns,
    require_frame,
)
from impactkit.checks.lee import (  # noqa: F401  (re-exported: Lee bounds lived here)
    LeeBoundsResult,
    imbens_manski_critical,
    lee_bounds,
    lee_influence,
    lee_point,
    lee_point_cells,
    trimmed_moments,
)
from impactkit.checks.regression import inference_label, robust_ols
from impactkit.checks.result import TableResult
from impactkit.errors import EstimationError, InputError
from impactkit.results import to_plain

# ---------------------------------------------------------------------------
# panel bookkeeping
# ---------------------------------------------------------------------------



def stay_matrix(frame: pd.DataFrame, *, unit: str, time: str, arm: str, baseline: Any,
                observed: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline rows (one per unit) and a unit x follow-up-wave table of 0/1 "observed".

    A unit is observed in a wave when it has a row there (and ``observed`` is 1 if given).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel, one row per unit and wave where the unit was interviewed.
    unit, time : str
        Unit and wave columns.
    arm : str
        0/1 treatment-arm column.
    baseline : Any
        The baseline wave's value of ``time``.
    observed : str, optional
        0/1 column: the row's outcome observed.

    Returns
    -------
    base : pandas.DataFrame
        Baseline rows indexed by unit.
    stay : pandas.DataFrame
        Units x follow-up waves, 1 when observed.
    """
    frame = require_frame(frame)
    require_columns(frame, [unit, time, arm, observed])
    if frame[unit].isna().any() or frame[time].isna().any():
        raise InputError(f"columns {unit!r} and {time!r} must not have missing values")
    dup = frame.duplicated([unit, time])
    if dup.any():
        raise InputError(f"{int(dup.sum())} duplicated ({unit!r}, {time!r}) rows")
    at_base = frame[time] == baseline
    if not at_base.any():
        raise InputError(f"no rows with {time!r} == {baseline!r} (the baseline)")
    base = frame.loc[at_base].set_index(unit, drop=False)
    binary_arm(base, arm)
    waves = sorted(w for w in frame[time].unique() if w != baseline)
    if not waves:
        raise InputError(f"column {time!r} has no follow-up wave after the baseline")
    flags = observed_flags(frame, observed)
    seen = frame.loc[~at_base & flags, [unit, time]]
    stay = pd.DataFrame(0, index=base.index, columns=waves, dtype="int64")
    seen = seen[seen[unit].isin(base.index)]
    for wave, units in seen.groupby(time, sort=True)[unit]:
        stay.loc[units.to_numpy(), wave] = 1
    return base, stay


@dataclass
class AttritionResult(TableResult):
    """Attrition rates by arm (per wave and overall) and differential-attrition tests."""

    title: ClassVar[str] = "Attrition"
    table: pd.DataFrame
    covariate_test: dict[str, Any] | None
    arm: str
    cluster: str | None
    messages: list[str] = field(default_factory=list)

    @property
    def differential_attrition_p(self) -> float:
        """p-value of the difference in overall ("any") attrition rates between arms."""
        return float(self.table.loc[self.table["wave"] == "any", "p_value"].iloc[0])

    def notes(self) -> list[str]:
        se = inference_label(self.cluster)
        lines = [f"Attrited = baseline unit not observed in the wave ('any' = missing in at least one "
                 f"follow-up). estimate = rate(treated) - rate(control) from OLS of attrited on {self.arm!r}, {se}."]
        if self.covariate_test:
            ct = self.covariate_test
            lines.append(f"Differential attrition on baseline covariates (attrited ~ arm x covariates, joint test of "
                         f"{ct['df_num']:g} interactions): F = {ct['f']:.3f}, p = {ct['p_value']:.4f}.")
        return lines + list(self.messages)

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"title": self.title, "table": self.tidy(), "notes": self.notes(),
                         "covariate_test": self.covariate_test})


def attrition(frame: pd.DataFrame, *, unit: str, time: str, arm: str, baseline: Any,
              covariates: str | Sequence[str] | None = None, cluster: str | None = None,
              observed: str | None = None) -> AttritionResult:
    """Attrition rates by arm, per follow-up wave and overall, with differential tests.

    For each follow-up wave and for "any" (missing in at least one follow-up), the share
    of baseline units not observed in each arm, and the difference with its p-value from
    an OLS of the attrition indicator on the arm (CR1 by ``cluster``, HC1 otherwise). With
    ``covariates`` (baseline values), "any" attrition is regressed on arm, covariates and
    arm x covariate interactions, and the interactions are tested jointly: a significant
    F means attrition differs by arm in who leaves (Ghanem, Hirshleifer & Ortiz-Becerra
    2023), which threatens internal validity even when rates are equal.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and wave (baseline and follow-ups).
    unit, time : str
        Unit and wave columns.
    arm : str
        0/1 treatment-arm column (constant within unit).
    baseline : Any
        The baseline value of ``time``; units present at baseline define the sample.
    covariates : str or sequence of str, optional
        Baseline covariates for the test of differential attrition by characteristics.
    cluster : str, optional
        Cluster column for CR1 standard errors (HC1 without it).
    observed : str, optional
        0/1 column marking rows with the outcome observed (default: a row exists).

    Returns
    -------
    AttritionResult
        Rates by arm and wave, the differences and their p-values, and the covariate test.

    Raises
    ------
    InputError
        Missing columns, a non-binary or time-varying arm, no baseline rows.
    """
    covariates = as_list(covariates)
    require_columns(frame, [unit, time, arm, cluster, observed, *covariates])
    base, stay = stay_matrix(frame, unit=unit, time=time, arm=arm, baseline=baseline, observed=observed)
    treated = binary_arm(base, arm)
    codes = cluster_codes(base, cluster)
    attrited = 1 - stay.to_numpy()
    columns = {str(w): attrited[:, j] for j, w in enumerate(stay.columns)}
    columns["any"] = attrited.max(axis=1)
    rows = []
    X = np.column_stack([np.ones(len(base)), treated])
    for wave, a in columns.items():
        row: dict[str, Any] = {"wave": wave, "rate_control": float(a[treated == 0].mean()),
                               "rate_treated": float(a[treated == 1].mean()),
                               "n_control": int((treated == 0).sum()), "n_treated": int((treated == 1).sum())}
        if np.ptp(a) == 0:
            row.update(estimate=row["rate_treated"] - row["rate_control"], std_error=0.0, p_value=1.0)
        else:
            est, se, p = robust_ols(a, X, clusters=codes).t_test(1)
            row.update(estimate=est, std_error=se, p_value=p)
        row["n"] = row["n_control"] + row["n_treated"]
        rows.append(row)
    table = pd.DataFrame(rows)[["wave", "rate_control", "rate_treated", "estimate", "std_error", "p_value",
                                "n_control", "n_treated", "n"]]
    covariate_test = None
    messages: list[str] = []
    if covariates:
        C = np.column_stack([numeric_column(base, c) for c in covariates])
        complete = ~np.isnan(C).any(axis=1)
        if (~complete).any():
            messages.append(f"Covariate test uses {int(complete.sum())} units with complete baseline covariates.")
        a = columns["any"][complete]
        if np.ptp(a) == 0:
            messages.append("No attrition: covariate test not run.")
        else:
            t, Cc = treated[complete], C[complete]
            Xc = np.column_stack([np.ones(complete.sum()), t, Cc, t[:, None] * Cc])
            fit = robust_ols(a, Xc, clusters=None if codes is None else codes[complete])
            k = len(covariates)
            f, p, dfn, dfd = fit.f_test(range(2 + k, 2 + 2 * k))
            covariate_test = {"f": f, "p_value": p, "df_num": dfn, "df_denom": dfd, "n": int(complete.sum()),
                              "covariates": covariates}
    return AttritionResult(table=table, covariate_test=covariate_test, arm=arm, cluster=cluster, messages=messages)


# ---------------------------------------------------------------------------
# inverse probability of remaining weights
# ---------------------------------------------------------------------------


def attrition_weights(frame: pd.DataFrame, *, unit: str, time: str, arm: str, baseline: Any,
                      covariates: str | Sequence[str], observed: str | None = None,
                      min_probability: float = 0.02) -> pd.Series:
    """Inverse-probability-of-remaining weights, one per row of ``frame``.

    For each follow-up wave, a logit of "observed" on the baseline ``covariates``, the
    arm and their interactions (so each arm gets its own selection model) is fitted on
    the baseline units; an observed follow-up row gets ``1 / p_hat``, an unobserved one 0,
    a baseline row 1 (Wooldridge 2002, IPW M-estimation under selection on observables).
    Fitted probabilities below ``min_probability`` raise: the weights would be unstable.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and wave.
    unit, time : str
        Unit and wave columns.
    arm : str
        0/1 treatment-arm column.
    baseline : Any
        The baseline value of ``time``.
    covariates : str or sequence of str
        Baseline covariates of the selection model.
    observed : str, optional
        0/1 column marking observed rows (default: a row exists).
    min_probability : float, default 0.02
        Smallest fitted probability of remaining accepted.

    Returns
    -------
    pandas.Series
        One weight per row of ``frame`` (1 at baseline, ``1 / p_hat`` when observed, 0 otherwise).

    Raises
    ------
    EstimationError
        A fitted probability below ``min_probability``.
    """
    covariates = as_list(covariates)
    if not covariates:
        raise InputError("attrition_weights needs at least one baseline covariate")
    require_columns(frame, [unit, time, arm, observed, *covariates])
    import statsmodels.api as sm

    base, stay = stay_matrix(frame, unit=unit, time=time, arm=arm, baseline=baseline, observed=observed)
    treated = binary_arm(base, arm)
    C = np.column_stack([numeric_column(base, c) for c in covariates])
    if np.isnan(C).any():
        bad = [c for j, c in enumerate(covariates) if np.isnan(C[:, j]).any()]
        raise InputError(f"baseline covariate(s) {bad} have missing values; impute or drop before weighting")
    X = np.column_stack([np.ones(len(base)), treated, C, treated[:, None] * C])
    probability = pd.DataFrame(index=base.index, columns=stay.columns, dtype="float64")
    for wave in stay.columns:
        s = stay[wave].to_numpy()
        if s.min() == 1:
            probability[wave] = 1.0
            continue
        for d in (0, 1):
            if np.ptp(s[treated == d]) == 0 and s[treated == d].min() == 0:
                raise EstimationError(f"wave {wave!r}: no unit of {arm!r} == {d} is observed")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = sm.Logit(s, X).fit(disp=0, maxiter=200)
            except Exception as exc:  # perfect separation, singular Hessian
                raise EstimationError(f"wave {wave!r}: the logit of staying cannot be fitted ({type(exc).__name__})") from exc
        if not fit.mle_retvals.get("converged", True):
            raise EstimationError(f"wave {wave!r}: the logit of staying did not converge")
        prob = np.asarray(fit.predict(X))
        if prob.min() < min_probability:
            raise EstimationError(f"wave {wave!r}: a fitted probability of staying is below {min_probability}; "
                                  "weights would be extreme")
        probability[wave] = prob
    weight = np.ones(len(frame))
    times = frame[time].to_numpy()
    units = frame[unit].to_numpy()
    flags = observed_flags(frame, observed)
    follow = times != baseline
    in_base = pd.Index(base.index)
    for wave in stay.columns:
        rows = np.flatnonzero(follow & (times == wave))
        pos = in_base.get_indexer(units[rows])
        prob = np.where(pos >= 0, probability[wave].to_numpy()[np.maximum(pos, 0)], np.nan)
        weight[rows] = np.where(flags[rows] & (pos >= 0), 1.0 / prob, 0.0)
    weight = np.nan_to_num(weight, nan=0.0)
    return pd.Series(weight, index=frame.index, name="attrition_weight")
