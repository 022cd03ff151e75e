"""Two-way fixed-effects (TWFE) and canonical 2x2 difference-in-differences.

TWFE regresses the outcome on the treatment indicator (and covariates) with unit and
period fixed effects,

    y_it = alpha_i + lambda_t + beta * D_it + X_it' gamma + e_it,

(Angrist & Pischke 2009, *Mostly Harmless Econometrics*, eq. 5.2.6), estimated by the
within transformation (:mod:`impactkit.numerics.within`) and inferred with cluster-robust
covariance (:mod:`impactkit.numerics.covariance`). With staggered adoption and heterogeneous
effects ``beta`` is a variance-weighted average of 2x2 comparisons, some with negative
weights (Goodman-Bacon 2021, *J. Econometrics* 225(2), Theorem 1); see
:mod:`impactkit.did.bacon`, :mod:`impactkit.did.sa` and ``impactkit.did.cs``.

The 2x2 design (Card & Krueger 1994, *AER* 84(4), Table 3) compares one treated group with
never-treated units before and after one adoption date; with unit fixed effects on a
balanced panel its coefficient equals the difference of the four cell-mean differences.

The fixed-effects least squares and its covariance are in :mod:`impactkit.did.fixed_effects`
(re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from impactkit.did.base import DidEstimator, DidPanel, DidResult, att_dict
from impactkit.did.data import check_has_controls
from impactkit.did.fixed_effects import (  # noqa: F401  (re-exported: the fixed-effects fit lived here)
    FEW_CLUSTERS,
    VCOV_TYPES,
    WithinFit,
    cluster_columns,
    fit_covariance,
    fit_within,
    jackknife_coefs,
)
from impactkit.errors import EstimationError, InputError
from impactkit.numerics import covariance as cov
from impactkit.numerics.within import factorize
from impactkit.results import format_table, to_plain


@dataclass
class TWFEResult(DidResult):
    """Two-way fixed-effects (or 2x2) DiD estimate with cluster-robust inference."""

    title: ClassVar[str] = "Two-way fixed-effects difference-in-differences"

    terms: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    vcov_type: str
    df_t: int
    n_obs: int
    n_units: int
    n_periods: int
    n_clusters: int | None
    cluster: list[str]
    alpha: float = 0.05
    design: str = "twfe"
    weights: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    _fit: WithinFit | None = field(default=None, repr=False)
    _clusters: cov.ClusterInfo | None = field(default=None, repr=False)
    _panel: pd.DataFrame | None = field(default=None, repr=False)
    _spec: dict[str, Any] = field(default_factory=dict, repr=False)
    _df_k: int | None = field(default=None, repr=False)

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    @property
    def estimate(self) -> float:
        """The treatment coefficient."""
        return float(self.coef[0])

    @property
    def method(self) -> str:  # type: ignore[override]
        return self.design

    def att(self) -> dict[str, float]:
        """The treatment coefficient with its t-based interval and p-value (:data:`~impactkit.did.base.ATT_KEYS`)."""
        row = self.tidy().iloc[0]
        return att_dict(row["estimate"], row["std_error"], row["conf_low"], row["conf_high"], row["p_value"])

    def tidy(self) -> pd.DataFrame:
        se = self.std_error
        stat = self.coef / se
        crit = stats.t.ppf(1 - self.alpha / 2, self.df_t)
        return pd.DataFrame({
            "term": self.terms,
            "estimate": self.coef,
            "std_error": se,
            "conf_low": self.coef - crit * se,
            "conf_high": self.coef + crit * se,
            "p_value": 2 * stats.t.sf(np.abs(stat), self.df_t),
            "n": self.n_obs,
        })

    def notes(self) -> list[str]:
        if self.vcov_type == "HC1":
            inference = "heteroskedasticity-robust (HC1) standard errors"
        else:
            inference = (f"{self.vcov_type} standard errors clustered by {' and '.join(self.cluster)} "
                         f"({self.n_clusters} clusters), t({self.df_t}) reference")
        lines = [f"Design: {self.design}; unit and period fixed effects; {self.n_obs} observations, "
                 f"{self.n_units} units, {self.n_periods} periods.", f"Inference: {inference}."]
        if self.weights:
            lines.append(f"Weighted by '{self.weights}' (analytic weights).")
        return lines + list(self.messages)

    def summary(self) -> str:
        return format_table(self.tidy(), self.title if self.design == "twfe" else "2x2 difference-in-differences",
                            self.notes())

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"design": self.design, "vcov_type": self.vcov_type, "n_obs": self.n_obs,
                    "n_units": self.n_units, "n_periods": self.n_periods, "n_clusters": self.n_clusters,
                    "cluster": list(self.cluster), "df_t": self.df_t, "alpha": self.alpha,
                    "vcov": to_plain(self.vcov), "extras": to_plain(self.extras)})
        return to_plain(out)

    def wild_bootstrap(self, B: int = 9999, weights: str = "rademacher", seed: int | None = None,
                       term: str | None = None, impose_null: bool = True):
        """Wild cluster bootstrap (Cameron, Gelbach & Miller 2008; MacKinnon & Webb 2018).

        Runs :func:`impactkit.did.wild.wild_cluster_bootstrap` on the fixed-effect-demeaned
        (and weight-scaled) regression. By Frisch-Waugh-Lovell the demeaned regression has the
        same coefficients and residuals as the dummy-variable one, and imposing the null on
        it gives the restricted model's residuals with the fixed effects re-estimated, so the
        bootstrap is valid. Clusters: the first clustering dimension.
        """
        from impactkit.did.wild import wild_cluster_bootstrap

        if self._fit is None or self._clusters is None:
            raise EstimationError("wild bootstrap needs a clustered fit (cluster=... with vcov CRV1/CRV3)")
        index = self.terms.index(term) if term is not None else 0
        return wild_cluster_bootstrap(self._fit.outcome, self._fit.design, self._clusters.codes[0], index,
                                      B=B, weights=weights, impose_null=impose_null, seed=seed,
                                      alpha=self.alpha, n_params=self._df_k, term=self.terms[index])

    def randomization_inference(self, n_permutations: int = 999, seed: int | None = None,
                                design: str = "cluster", strata: str | None = None,
                                exact: bool | str = "auto", ci: bool = False):
        """Randomization inference (Fisher 1935; Young 2019) via ``impactkit.did.ri``.

        Re-assigns each cluster's (``design="cluster"``, first clustering dimension) or
        unit's cohort, re-derives the treatment (``time >= cohort``; for a 2x2,
        group x post) and re-estimates this TWFE coefficient on every assignment.
        """
        from impactkit.did.ri import randomization_inference

        if self._panel is None:
            raise EstimationError("randomization inference needs the fitted panel")
        covariates = [t for t in self.terms[1:]]
        weights = self.weights
        cluster_col = "_unit" if not self._clusters else self._clusters.names[0]
        panel = self._panel.copy()
        if cluster_col not in panel.columns:
            raise InputError("randomization inference needs the cluster column in the panel")

        def estimator(frame: pd.DataFrame) -> float:
            return twfe_coefficient(frame, covariates, weights)

        return randomization_inference(panel, y="_y", unit="_unit", time="_time", treated_cluster_col="_cohort",
                                       cluster=cluster_col, estimator=estimator,
                                       n_permutations=n_permutations, seed=seed, design=design, strata=strata,
                                       exact=exact, treatment="_treated", ci=ci, alpha=self.alpha,
                                       term=self.terms[0])


def twfe_coefficient(frame: pd.DataFrame, covariates: Sequence[str] = (), weights: str | None = None) -> float:
    """The TWFE treatment coefficient of a prepared panel, treatment re-derived from ``_cohort``.

    Treatment is ``time >= cohort > 0``, or ``cohort > 0 and _post == 1`` when the panel
    carries a ``_post`` column (2x2 design).
    """
    cohort = frame["_cohort"].to_numpy(dtype=float)
    if "_post" in frame.columns:
        treated = (cohort > 0) & (frame["_post"].to_numpy() == 1)
    else:
        treated = (cohort > 0) & (frame["_time"].to_numpy(dtype=float) >= cohort)
    unit_codes, n_units = factorize(frame["_unit"])
    time_codes, n_periods = factorize(frame["_time"])
    design = np.column_stack([treated.astype(float)] + [frame[c].to_numpy(dtype=float) for c in covariates])
    w = None if weights is None else frame[weights].to_numpy(dtype=float)
    fit = fit_within(frame["_y"].to_numpy(dtype=float), design, [unit_codes, time_codes], [n_units, n_periods], w)
    return float(fit.coef[0])




def fit_twfe_panel(panel: pd.DataFrame, *, covariates: Sequence[str] | None = None,
                   weights: str | None = None, cluster: str | Sequence[str] | None = None,
                   vcov: str = "CRV1", alpha: float = 0.05, treated_label: str = "treated",
                   unit_label: str = "unit", design: str = "twfe") -> TWFEResult:
    """TWFE on a panel from :func:`impactkit.did.data.prepare_panel` (columns ``_y, _unit, ...``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Output of :func:`impactkit.did.data.prepare_panel`.
    covariates : sequence of str, optional
        Controls.
    weights : str, optional
        Analytic weights.
    cluster : str or sequence of str, optional
        Cluster column(s); ``_unit`` by default.
    vcov : {"CRV1", "CRV3", "HC1"}, default "CRV1"
        Covariance.
    alpha : float, default 0.05
        1 - confidence level.
    treated_label, unit_label : str
        Names shown for the treatment term and the unit.
    design : {"twfe", "2x2"}, default "twfe"
        Label of the design.

    Returns
    -------
    TWFEResult
    """
    covariates = list(covariates or [])
    cluster_cols = cluster_columns(cluster, unit_label, vcov)
    unit_codes, n_units = factorize(panel["_unit"])
    time_codes, n_periods = factorize(panel["_time"])
    fe_codes, fe_sizes = [unit_codes, time_codes], [n_units, n_periods]
    w = None if weights is None else panel[weights].to_numpy(dtype=float)
    design_matrix = np.empty((panel.shape[0], 1 + len(covariates)), order="F")
    design_matrix[:, 0] = panel["_treated"].to_numpy(dtype=float)
    for j, c in enumerate(covariates, start=1):
        design_matrix[:, j] = panel[c].to_numpy(dtype=float)
    terms = [treated_label] + covariates
    outcome = panel["_y"].to_numpy(dtype=float)
    fit = fit_within(outcome, design_matrix, fe_codes, fe_sizes, w, names=terms)
    n_obs = outcome.shape[0]
    vcov_matrix, df_t, clusters, messages, df_k = fit_covariance(
        fit, outcome, design_matrix, fe_codes, fe_sizes, panel, cluster_cols, vcov, w)
    n_clusters = None if clusters is None else clusters.n_clusters
    shown_cluster = [unit_label if c == "_unit" else c for c in cluster_cols]
    return TWFEResult(terms=terms, coef=fit.coef, vcov=vcov_matrix, vcov_type=vcov, df_t=int(df_t),
                      n_obs=n_obs, n_units=n_units, n_periods=n_periods, n_clusters=n_clusters,
                      cluster=shown_cluster, alpha=alpha, design=design, weights=weights,
                      messages=messages, _fit=fit, _clusters=clusters, _panel=panel, _df_k=df_k)


def estimate_twfe(frame: pd.DataFrame, *, y: str, unit: str, time: str, treated: str | None = None,
                  cohort: str | None = None, covariates: Sequence[str] | None = None,
                  weights: str | None = None, cluster: str | Sequence[str] | None = None,
                  vcov: str = "CRV1", alpha: float = 0.05) -> TWFEResult:
    """Two-way fixed-effects DiD: ``y ~ treated + covariates | unit + time``.

    Reference: Angrist & Pischke (2009) eq. 5.2.6; inference per
    :mod:`impactkit.did.covariance` (CRV1 with fixest's small-sample correction by default,
    CRV3 jackknife, or HC1). ``cluster`` defaults to ``unit`` (Bertrand, Duflo &
    Mullainathan 2004, *QJE* 119(1)); give two columns for two-way clustering. Warns
    (:class:`ImpactkitWarning`) with fewer than 42 clusters.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and period.
    y, unit, time : str
        Outcome, unit and period columns.
    treated : str, optional
        0/1 treatment column.
    cohort : str, optional
        First treated period (0 or missing = never treated); give it or ``treated``.
    covariates : sequence of str, optional
        Time-varying controls.
    weights : str, optional
        Analytic weights.
    cluster : str or sequence of str, optional
        One or two cluster columns (the unit by default).
    vcov : {"CRV1", "CRV3", "HC1"}, default "CRV1"
        Covariance.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    TWFEResult
        The treatment coefficient (``estimate``, ``att()``), covariance and diagnostics; offers
        ``wild_bootstrap()`` and ``randomization_inference()``.

    Raises
    ------
    InputError
        Bad columns or options.
    EstimationError
        No treated or control rows.
    """
    estimator = TWFEEstimator()
    panel = estimator.prepare(frame, y=y, unit=unit, time=time, cohort=cohort, treated=treated,
                              covariates=covariates, weights=weights, cluster=cluster)
    return estimator.fit(panel, alpha=alpha, vcov=vcov)


def estimate_2x2(frame: pd.DataFrame, *, y: str, unit: str, time: str, treated: str | None = None,
                 cohort: str | None = None, post: float | str | None = None,
                 periods: tuple[float, float] | None = None, covariates: Sequence[str] | None = None,
                 weights: str | None = None, cluster: str | Sequence[str] | None = None,
                 vcov: str = "CRV1", alpha: float = 0.05, panel: bool = True) -> TWFEResult:
    """Canonical 2x2 DiD: one treated group vs never-treated units, before vs after.

    The treated group is the units ever treated (one adoption period). ``post`` is the
    first post period (number) or a 0/1 column name; ``periods=(pre, post)`` instead keeps
    only those two periods; by default ``post`` is the group's adoption period. The
    estimate is the coefficient on group x post with unit and period fixed effects, which
    on a balanced panel equals
    ``(ybar_T,post - ybar_T,pre) - (ybar_C,post - ybar_C,pre)``
    (Card & Krueger 1994; Angrist & Pischke 2009 eq. 5.2.3). ``extras["cell_means"]``
    holds the four cell means. With ``panel=False`` (repeated cross sections) the fixed effects
    are the group's, not the unit's, and ``unit`` may be ``None`` (see :func:`fit_2x2`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel, or repeated cross sections with ``panel=False``.
    y, unit, time : str
        Outcome, unit and period columns (``unit`` unused with ``panel=False``).
    treated, cohort : str, optional
        0/1 treatment or first-treated-period column (``cohort`` for repeated cross sections).
    post : float or str, optional
        First post period, or a 0/1 column.
    periods : tuple of float, optional
        ``(pre, post)``: keep only these two periods.
    covariates : sequence of str, optional
        Covariates.
    weights : str, optional
        Analytic weights.
    cluster : str or sequence of str, optional
        Cluster column(s); the unit by default for panels, none (HC1) for repeated cross sections.
    vcov : {"CRV1", "CRV3", "HC1"}, default "CRV1"
        Covariance.
    alpha : float, default 0.05
        1 - confidence level.
    panel : bool, default True
        ``False`` for repeated cross sections.

    Returns
    -------
    TWFEResult
    """
    prepared = TwoByTwoEstimator().prepare(frame, y=y, unit=unit, time=time, cohort=cohort, treated=treated,
                                           covariates=covariates, weights=weights, cluster=cluster, panel=panel)
    return fit_2x2(prepared, post=post, periods=periods, vcov=vcov, alpha=alpha, panel=panel)


def fit_2x2(prepared: DidPanel, *, post: float | str | None = None, periods: tuple[float, float] | None = None,
            vcov: str = "CRV1", alpha: float = 0.05, panel: bool = True) -> TWFEResult:
    """The 2x2 of :func:`estimate_2x2` on a prepared panel (:class:`~impactkit.did.base.DidPanel`).

    Parameters
    ----------
    prepared : DidPanel
        Checked panel (or repeated cross sections, one 'unit' per row, with ``panel=False``).
    post, periods, vcov, alpha
        As for :func:`estimate_2x2`.
    panel : bool, default True
        ``False``: repeated cross sections. The regression has group (ever treated) and period
        fixed effects instead of unit ones, ``y = a_G + b_t + delta G x post + e``, whose ``delta``
        is the difference of the four cell means (Card & Krueger 1994; Wooldridge 2010, Sec.
        6.5.2); without ``cluster`` the covariance is HC1 (rows are independent).

    Returns
    -------
    TWFEResult
    """
    prepared_is_panel = panel
    panel, frame = prepared.frame, prepared.source
    y, unit, time = prepared.y, prepared.unit, prepared.time
    covariates, weights, cluster = list(prepared.covariates), prepared.weights, prepared.cluster
    treated, cohort = prepared.treated, prepared.cohort
    if post is not None and periods is not None:
        raise InputError("give either 'post' or 'periods', not both")
    if periods is not None:
        if len(periods) != 2 or not periods[0] < periods[1]:
            raise InputError(f"periods must be (pre, post) with pre < post, got {periods!r}")
        panel = panel.loc[panel["_time"].isin([float(periods[0]), float(periods[1])])]
        for p in periods:
            if not (panel["_time"] == float(p)).any():
                raise InputError(f"period {p} not found in '{time}'")
    group = (panel["_cohort"] > 0).to_numpy()
    cohorts = np.unique(panel.loc[group, "_cohort"].to_numpy())
    if len(cohorts) > 1:
        raise EstimationError(f"2x2 needs one adoption period; the treated units of '{unit}' start in "
                              f"{len(cohorts)} periods ({', '.join(f'{c:g}' for c in cohorts[:5])}); "
                              f"use method='cs' or 'sa'")
    if isinstance(post, str):
        if post not in frame.columns:
            raise InputError(f"missing column(s): '{post}' (post)")
        post_values = frame[post].reset_index(drop=True).loc[panel.index]
        post_flag = pd.to_numeric(post_values, errors="coerce").to_numpy()
        if not np.isin(post_flag, [0, 1]).all():
            raise InputError(f"column '{post}' (post) must be 0/1")
        post_flag = post_flag.astype(bool)
    elif periods is not None:
        post_flag = (panel["_time"] == float(periods[1])).to_numpy()
    else:
        start = float(post) if post is not None else (float(cohorts[0]) if len(cohorts) else np.nan)
        post_flag = (panel["_time"] >= start).to_numpy()
    if not post_flag.any() or post_flag.all():
        raise EstimationError("2x2 needs both pre and post periods")
    panel = panel.copy()
    panel["_treated"] = (group & post_flag).astype(np.int8)
    panel["_post"] = post_flag.astype(np.int8)
    check_has_controls(panel, need_never_treated=True, unit=unit)
    messages = []
    if not prepared_is_panel:
        panel["_unit"] = group.astype(np.int8)   # group fixed effects: rows are not followed over time
        if cluster is None and vcov == "CRV1":
            vcov = "HC1"
            messages.append("Repeated cross sections: group and period fixed effects; HC1 standard errors "
                            "(rows independent; give cluster= for clustered ones).")
        elif vcov != "HC1":
            messages.append("Repeated cross sections: group and period fixed effects.")
    y_values = panel["_y"].to_numpy()
    cell_means = {f"{'treated' if g else 'control'}_{'post' if p else 'pre'}":
                  float(y_values[(group == g) & (post_flag == p)].mean())
                  for g in (True, False) for p in (False, True)}
    result = fit_twfe_panel(panel, covariates=covariates, weights=weights, cluster=cluster, vcov=vcov,
                            alpha=alpha, treated_label="treated_x_post", unit_label=unit, design="2x2")
    result.extras["cell_means"] = cell_means
    result.messages.extend(messages)
    result.extras["difference_of_means"] = ((cell_means["treated_post"] - cell_means["treated_pre"])
                                            - (cell_means["control_post"] - cell_means["control_pre"]))
    result._spec = {"y": y, "unit": unit, "time": time, "treated": treated, "cohort": cohort,
                    "covariates": covariates, "cluster": cluster, "weights": weights}
    return result


class TWFEEstimator(DidEstimator):
    """Two-way fixed effects, ``y ~ treated + covariates | unit + time`` (:func:`estimate_twfe`)."""

    name = "twfe"
    label = "Two-way fixed effects"
    reference = "Angrist & Pischke (2009), Mostly Harmless Econometrics, eq. 5.2.6"
    options = {"covariates": None, "cluster": None, "weights": None, "alpha": 0.05, "vcov": "CRV1"}

    def fit(self, panel: DidPanel, *, alpha: float = 0.05, vcov: str = "CRV1", **_: object) -> TWFEResult:
        """TWFE on ``panel``; see :func:`estimate_twfe`."""
        check_has_controls(panel.frame, need_never_treated=False, unit=panel.unit)
        result = fit_twfe_panel(panel.frame, covariates=list(panel.covariates), weights=panel.weights,
                                cluster=panel.cluster, vcov=vcov, alpha=alpha,
                                treated_label=panel.treated or "treated", unit_label=panel.unit)
        result._spec = {**panel.names, "covariates": list(panel.covariates) or None, "cluster": panel.cluster,
                        "weights": panel.weights}
        return result


class TwoByTwoEstimator(DidEstimator):
    """Canonical 2x2 DiD, one treated group against never-treated units (:func:`estimate_2x2`)."""

    name = "2x2"
    label = "2x2 difference-in-differences"
    reference = "Card & Krueger (1994), AER 84(4); Angrist & Pischke (2009) eq. 5.2.3"
    options = {"covariates": None, "cluster": None, "weights": None, "alpha": 0.05, "vcov": "CRV1",
               "post": None, "periods": None, "panel": True}
    needs_never_treated = True

    def fit(self, prepared: DidPanel, *, post: float | str | None = None,
            periods: tuple[float, float] | None = None, alpha: float = 0.05, vcov: str = "CRV1",
            panel: bool = True, **_: object) -> TWFEResult:
        """The 2x2 on ``prepared``; see :func:`estimate_2x2` and :func:`fit_2x2`."""
        return fit_2x2(prepared, post=post, periods=periods, vcov=vcov, alpha=alpha, panel=panel)
