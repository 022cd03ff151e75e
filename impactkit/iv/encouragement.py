"""Encouragement designs: ITT, compliance, LATE and complier characteristics.

A randomised encouragement ``Z`` (0/1) shifts take-up ``D`` (0/1). Under independence,
exclusion and monotonicity (Imbens & Angrist 1994; Angrist, Imbens & Rubin 1996):

- ITT (reduced form)   ``E[Y | Z=1] - E[Y | Z=0]``;
- first stage          ``E[D | Z=1] - E[D | Z=0]`` = the share of compliers;
- LATE / TOT           ``ITT / first stage``, the Wald estimator = 2SLS of Y on D
  instrumented by Z (with covariates or absorbed effects: the 2SLS coefficient).
  With one-sided non-compliance (nobody takes up without encouragement) the LATE is
  the effect of treatment on the treated (Bloom 1984).
- complier mean of a characteristic X (Abadie 2003; Angrist & Pischke 2009,
  Section 4.4.4): ``E[X | complier] = (E[XD | Z=1] - E[XD | Z=0]) / (E[D | Z=1] - E[D | Z=0])``,
  computed as the 2SLS coefficient of ``X*D`` on ``D`` instrumented by ``Z`` (so it has
  a standard error, clustered when asked). Never-taker and always-taker means are
  ``E[X | D=0, Z=1]`` and ``E[X | D=1, Z=0]``. Complier means are unconditional
  (no covariates or absorbed effects): the independence of ``Z`` is assumed marginally.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv.model import iv
from impactkit.iv.results import EncouragementResult


def _quote(name: str) -> str:
    return f"`{name}`"


def _binary(frame: pd.DataFrame, column: str, role: str) -> None:
    """InputError unless ``column`` is coded 0/1; EstimationError when it is constant.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    column : str
        Column to check.
    role : str
        What the column is (``"take-up"``, ``"instrument"``), for messages.
    """
    values = pd.to_numeric(frame[column], errors="coerce").dropna().unique()
    if not set(values.tolist()) <= {0, 1}:
        raise InputError(f"encouragement: {role} column {column!r} must be coded 0/1")
    if len(values) < 2:
        raise EstimationError(f"encouragement: {role} column {column!r} is constant")


def encouragement(data: pd.DataFrame, *, y: str, take_up: str, instrument: str,
                  covariates: Sequence[str] | None = None, cluster: str | Sequence[str] | None = None,
                  absorb: str | Sequence[str] | None = None, characteristics: Sequence[str] | None = None,
                  weights: str | None = None, alpha: float = 0.05) -> EncouragementResult:
    """Analyse a randomised encouragement design (see the module docstring for the estimands).

    ``covariates`` enter every regression as controls; ``characteristics`` (default:
    the covariates) are the columns whose complier means are reported. ``cluster``,
    ``absorb``, ``weights`` and ``alpha`` are passed to :func:`impactkit.iv.iv`
    (heteroskedasticity-robust covariance unless clustered).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit.
    y : str
        Outcome column.
    take_up : str
        0/1 (or dose) take-up column, the endogenous treatment.
    instrument : str
        Randomized 0/1 encouragement column.
    covariates : sequence of str, optional
        Controls in every regression.
    cluster : str or sequence of str, optional
        Cluster column(s).
    absorb : str or sequence of str, optional
        Fixed effects partialled out.
    characteristics : sequence of str, optional
        Columns whose complier means are reported (default: the covariates).
    weights : str, optional
        Analytic weights.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    EncouragementResult
        ITT, first stage (take-up difference), LATE (Wald/2SLS) and complier characteristics.
    """
    from impactkit.frames import as_pandas

    data = as_pandas(data, "encouragement: data")
    covariates = list(covariates or [])
    characteristics = list(characteristics if characteristics is not None else covariates)
    cluster_cols = [cluster] if isinstance(cluster, str) else list(cluster or [])
    absorb_cols = [absorb] if isinstance(absorb, str) else list(absorb or [])
    needed = list(dict.fromkeys([y, take_up, instrument, *covariates, *characteristics, *cluster_cols,
                                 *absorb_cols, *([weights] if weights else [])]))
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise InputError(f"encouragement: column(s) {', '.join(repr(c) for c in missing)} not found in data")
    _binary(data, instrument, "instrument")
    _binary(data, take_up, "take-up")
    # 0/1 as floats, so that boolean or integer codings enter the formulas as numbers
    data = data.assign(**{take_up: pd.to_numeric(data[take_up]).astype(float),
                          instrument: pd.to_numeric(data[instrument]).astype(float)})

    controls = "".join(f" + {_quote(c)}" for c in covariates)
    formula = f"{_quote(y)} ~ 1{controls} + [{_quote(take_up)} ~ {_quote(instrument)}]"
    result = iv(data, formula, cluster=cluster, absorb=absorb, weights=weights, alpha=alpha)
    estimates = encouragement_estimates(result, take_up=take_up, alpha=alpha)
    means = complier_means(data, take_up=take_up, instrument=instrument, characteristics=characteristics,
                           cluster=cluster, weights=weights, alpha=alpha)
    settings = {"y": y, "take_up": take_up, "instrument": instrument, "covariates": covariates,
                "absorb": absorb_cols, "cluster": cluster_cols, "characteristics": characteristics}
    return EncouragementResult(estimates=estimates, complier_means=means, iv_result=result, settings=settings)


def complier_means(data: pd.DataFrame, *, take_up: str, instrument: str, characteristics: Sequence[str],
                   cluster: str | Sequence[str] | None = None, weights: str | None = None,
                   alpha: float = 0.05) -> pd.DataFrame:
    """Complier, population, never-taker and always-taker means of each characteristic.

    Complier mean = 2SLS coefficient of ``X*D`` on ``D`` instrumented by ``Z`` with an
    intercept (Abadie 2003, Lemma 3.1 / Theorem 3.1 with a constant instrument
    propensity; the first-stage-ratio form of Angrist & Pischke 2009, Section 4.4.4). Rows with a
    missing characteristic are left out of that characteristic's row only.
    """
    rows = []
    for name in characteristics:
        keep = [take_up, instrument, name] + ([cluster] if isinstance(cluster, str) else list(cluster or []))
        keep += [weights] if weights else []
        frame = data.loc[data[keep].notna().all(axis=1), list(dict.fromkeys(keep))].copy()
        x = pd.to_numeric(frame[name], errors="coerce")
        if x.isna().any():
            raise InputError(f"encouragement: characteristic {name!r} is not numeric")
        d = frame[take_up].to_numpy(float)
        z = frame[instrument].to_numpy(float)
        frame["_xd"] = x.to_numpy(float) * d
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImpactkitWarning)  # weak-IV warnings are given once, above
            fit = iv(frame, f"_xd ~ 1 + [{_quote(take_up)} ~ {_quote(instrument)}]", cluster=cluster,
                     weights=weights, alpha=alpha)
        w = frame[weights].to_numpy(float) if weights else np.ones(len(frame))
        xv = x.to_numpy(float)
        never = (d == 0) & (z == 1)
        always = (d == 1) & (z == 0)
        means = {"population": float(np.average(xv, weights=w)),
                 "never": float(np.average(xv[never], weights=w[never])) if never.any() else None,
                 "always": float(np.average(xv[always], weights=w[always])) if always.any() else None}
        rows.append(complier_row(name, fit, take_up, means, len(frame)))
    return pd.DataFrame(rows, columns=COMPLIER_COLUMNS)


def encouragement_estimates(result, *, take_up: str, alpha: float = 0.05) -> pd.DataFrame:
    """The ITT, first-stage and LATE rows of a fitted encouragement 2SLS (either engine's
    :class:`~impactkit.iv.results.IVResult`): the reduced form, the first stage and the take-up
    coefficient, with t intervals on the 2SLS residual degrees of freedom.

    Parameters
    ----------
    result : IVResult
        The 2SLS fit of ``y ~ ... + [take_up ~ instrument]``.
    take_up : str
        The endogenous take-up column.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        Rows ``itt``, ``first_stage``, ``late`` (estimate, std_error, conf_low, conf_high, p_value, n).
    """
    n = result.diagnostics["n"]
    df = result.diagnostics["df_resid"]
    stage = result.first_stage.iloc[0]
    reduced = result.reduced_form.iloc[0]
    late = result.coefficients.loc[result.coefficients["term"] == take_up].iloc[0]
    if stage["estimate"] < 0:
        warnings.warn(f"encouragement: the encouragement lowers take-up (first stage {stage['estimate']:.3f}); "
                      "monotonicity is then read with the roles of Z reversed", ImpactkitWarning, stacklevel=3)
    t_crit = float(stats.t.ppf(1 - alpha / 2, df))
    rows = []
    for label, est, se, p in (("itt", reduced["estimate"], reduced["std_error"], reduced["p_value"]),
                              ("first_stage", stage["estimate"], stage["std_error"], stage["p_value"])):
        rows.append({"estimand": label, "estimate": float(est), "std_error": float(se),
                     "conf_low": float(est - t_crit * se), "conf_high": float(est + t_crit * se),
                     "p_value": float(p), "n": n})
    rows.append({"estimand": "late", **{k: float(late[k]) for k in
                                         ("estimate", "std_error", "conf_low", "conf_high", "p_value")}, "n": n})
    return pd.DataFrame(rows)


#: the columns of a complier-means table
COMPLIER_COLUMNS = ["characteristic", "complier_mean", "std_error", "conf_low", "conf_high", "population_mean",
                    "complier_to_population", "never_taker_mean", "always_taker_mean", "n"]


def complier_row(name: str, fit, take_up: str, means: dict[str, float | None], n: int) -> dict:
    """One complier-means row from the 2SLS fit of ``X*D`` on ``D`` (instrumented by ``Z``) and the
    population, never-taker and always-taker means (``means``: keys ``population``, ``never``,
    ``always``; ``None`` when the group is empty)."""
    row = fit.coefficients.loc[fit.coefficients["term"] == take_up].iloc[0]
    population = means["population"]
    return {"characteristic": name, "complier_mean": float(row["estimate"]), "std_error": float(row["std_error"]),
            "conf_low": float(row["conf_low"]), "conf_high": float(row["conf_high"]),
            "population_mean": population,
            "complier_to_population": float(row["estimate"]) / population if population != 0 else None,
            "never_taker_mean": means["never"], "always_taker_mean": means["always"], "n": n}
