"""Sun & Abraham (2021) interaction-weighted (IW) event-study estimator.

Sun, L. and Abraham, S. (2021), "Estimating dynamic treatment effects in event studies
with heterogeneous treatment effects", *Journal of Econometrics* 225(2), 175-199.

Step 1 (eq. 16): regress the outcome on cohort x relative-period indicators
``1{E_i = e} 1{t - e = l}`` for every treated cohort ``e`` and relative period
``l != -1 - anticipation`` with unit and period fixed effects, using only never-treated
units (``control="never"``) or the last-treated cohort before it adopts
(``control="last"``) as the control cohort. Its coefficients ``delta_{e,l}`` are the
cohort-specific average treatment effects CATT_{e,l}.

Step 2 (eq. 17-18): the IW estimate for relative period ``l`` is
``nu_l = sum_e delta_{e,l} Pr(E_i = e | E_i in C_l)``, the cohort shares among treated
cohorts observed at ``l``, estimated by sample shares of observations.

Step 3: standard errors by the delta method ``R V R'`` with ``V`` the cluster-robust
covariance of the ``delta`` (shares treated as fixed, as in fixest's ``sunab``
aggregation), and sup-t simultaneous bands (Montiel Olea & Plagborg-Moller 2019,
*J. Applied Econometrics* 34(1), eq. 5) by Gaussian simulation from the correlation matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from impactkit.did.base import DidEstimator, DidPanel, DidResult, att_dict, event_study_frame
from impactkit.did.event_study import WaldTestResult
from impactkit.did.fixed_effects import cluster_columns, fit_covariance, fit_within
from impactkit.did.within import factorize
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.results import format_table, to_plain
from impactkit.seeds import rng

SUP_T_DRAWS = 20_000


def sup_t_critical_value(vcov: np.ndarray, alpha: float = 0.05, seed: int | None = None,
                         draws: int = SUP_T_DRAWS) -> float:
    """Critical value c with P(max_j |Z_j| <= c) = 1 - alpha, Z ~ N(0, corr(vcov)), simulated.

    Montiel Olea & Plagborg-Moller (2019) sup-t band; draws from ``rng(seed, "sup-t")``.

    Parameters
    ----------
    vcov : numpy.ndarray
        Covariance of the event-time estimates (p x p).
    alpha : float, default 0.05
        1 - coverage of the band.
    seed : int, optional
        Seed of the ``"sup-t"`` stream.
    draws : int, default 20000
        Normal draws.

    Returns
    -------
    float
    """
    se = np.sqrt(np.diag(vcov))
    corr = vcov / np.outer(se, se)
    values, vectors = np.linalg.eigh((corr + corr.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    z = rng(seed, "sup-t").standard_normal((draws, corr.shape[0])) @ root.T
    return float(np.quantile(np.abs(z).max(axis=1), 1 - alpha))


def build_interactions(cohort: np.ndarray, time: np.ndarray, treated_cohorts: Sequence[float],
                       reference: int) -> tuple[np.ndarray, list[tuple[float, int]]]:
    """Cohort x relative-period indicator matrix (n x p) and the (cohort, rel) of each column.

    Parameters
    ----------
    cohort : numpy.ndarray
        Cohort (first treated period) of each row.
    time : numpy.ndarray
        Period of each row.
    treated_cohorts : sequence of float
        The cohorts that get interactions (not the comparison cohort).
    reference : int
        Relative period left out (``-1 - anticipation``).

    Returns
    -------
    design : numpy.ndarray
        n x p indicators.
    keys : list of (float, int)
        Cohort and relative period of each column.
    """
    rel = time - cohort
    columns, keys = [], []
    for e in treated_cohorts:
        in_cohort = cohort == e
        for l in np.unique(rel[in_cohort]).astype(int):
            if l == reference:
                continue
            columns.append((in_cohort & (rel == l)).astype(float))
            keys.append((float(e), int(l)))
    return np.column_stack(columns), keys


@dataclass
class SAResult(DidResult):
    """Sun-Abraham IW event-study estimates."""

    title: ClassVar[str] = "Sun-Abraham interaction-weighted event study"
    method: ClassVar[str] = "sa"

    event_times: np.ndarray
    estimates: np.ndarray
    vcov: np.ndarray
    counts: np.ndarray
    cohort_table: pd.DataFrame
    cohort_vcov: np.ndarray
    aggregation: np.ndarray
    df_t: int
    reference: int
    control: str
    n_obs: int
    n_clusters: int | None
    alpha: float = 0.05
    seed: int | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    def tidy(self) -> pd.DataFrame:
        se = self.std_error
        crit = stats.t.ppf(1 - self.alpha / 2, self.df_t)
        return pd.DataFrame({
            "event_time": self.event_times.astype(int),
            "estimate": self.estimates,
            "std_error": se,
            "conf_low": self.estimates - crit * se,
            "conf_high": self.estimates + crit * se,
            "p_value": 2 * stats.t.sf(np.abs(self.estimates / se), self.df_t),
            "n": self.counts.astype(int),
        })

    def sup_t_band(self) -> pd.DataFrame:
        """Simultaneous (sup-t) band over all event times at level 1 - alpha."""
        crit = sup_t_critical_value(self.vcov, self.alpha, self.seed)
        se = self.std_error
        return pd.DataFrame({"event_time": self.event_times.astype(int),
                             "conf_low": self.estimates - crit * se,
                             "conf_high": self.estimates + crit * se, "critical_value": crit})

    def att(self) -> dict[str, float]:
        """Average of post-period cohort effects weighted by cell counts (fixest ``agg="att"``)."""
        table = self.cohort_table
        post = (table["event_time"] >= 0).to_numpy()
        if not post.any():
            raise EstimationError("no post-treatment cohort x period cells")
        weights = np.zeros(len(table))
        weights[post] = table["n"].to_numpy(dtype=float)[post]
        weights /= weights.sum()
        estimate = float(weights @ table["estimate"].to_numpy())
        se = float(np.sqrt(weights @ self.cohort_vcov @ weights))
        crit = stats.t.ppf(1 - self.alpha / 2, self.df_t)
        return att_dict(estimate, se, estimate - crit * se, estimate + crit * se,
                        2 * stats.t.sf(abs(estimate / se), self.df_t))

    def event_study(self) -> pd.DataFrame:
        """IW estimates by event time (the reference period omitted), as :meth:`tidy`."""
        return event_study_frame(self.tidy())

    def pretrend(self) -> WaldTestResult:
        """Joint Wald test that all lead IW estimates (event time < reference) are zero.

        ``W = nu_lead' V_lead^-1 nu_lead ~ chi2(q)`` with ``V`` the delta-method covariance;
        ``extras`` holds the F form ``W / q`` and its p-value against F(q, G - 1).

        Returns
        -------
        WaldTestResult
        """
        leads = self.event_times < self.reference
        if not leads.any():
            raise EstimationError("no lead periods besides the reference period: nothing to test")
        est = self.estimates[leads]
        sub = self.vcov[np.ix_(leads, leads)]
        stat = float(est @ np.linalg.solve(sub, est))
        q = int(leads.sum())
        return WaldTestResult(statistic=stat, df=q, p_value=float(stats.chi2.sf(stat, q)), n_restrictions=q,
                              description="lead IW estimates = 0",
                              extras={"f_statistic": stat / q, "f_p_value": float(stats.f.sf(stat / q, q, self.df_t))})

    def pretrend_test(self) -> WaldTestResult:
        """Alias of :meth:`pretrend` (the name Callaway-Sant'Anna results also carry)."""
        return self.pretrend()

    def notes(self) -> list[str]:
        return [f"Control cohort: {self.control}; reference event time {self.reference}; "
                f"{self.n_obs} observations; {self.n_clusters} clusters.",
                "Sun & Abraham (2021), J. Econometrics 225(2), eq. 16-18; delta-method SEs."] + self.messages

    def summary(self) -> str:
        return format_table(self.tidy(), self.title, self.notes())

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"cohort_effects": to_plain(self.cohort_table), "att": self.att(),
                    "reference": self.reference, "control": self.control, "n_obs": self.n_obs,
                    "n_clusters": self.n_clusters, "df_t": self.df_t, "alpha": self.alpha,
                    "sup_t_critical_value": float(self.sup_t_band()["critical_value"].iloc[0])})
        if (self.event_times < self.reference).any():
            test = self.pretrend()
            out["pretrend_test"] = {"statistic": test.statistic, "df": test.df, "p_value": test.p_value,
                                    **test.extras}
        return to_plain(out)

    def plot(self, ax=None, sup_t: bool = True):
        """Event-study plot with pointwise and (optionally) sup-t bands; reference at 0."""
        tidy = self.tidy()
        ref = pd.DataFrame({"event_time": [self.reference], "estimate": [0.0], "std_error": [0.0],
                            "conf_low": [0.0], "conf_high": [0.0], "p_value": [1.0], "n": [0]})
        shown = pd.concat([tidy, ref], ignore_index=True).sort_values("event_time", ignore_index=True)
        band = self.sup_t_band().set_index("event_time") if sup_t else None
        low = high = None
        if band is not None:
            low = shown["event_time"].map(band["conf_low"]).fillna(0.0).to_numpy()
            high = shown["event_time"].map(band["conf_high"]).fillna(0.0).to_numpy()
        try:
            from impactkit.did.event_study import plot_event_study
        except ImportError:
            plot_event_study = None
        if plot_event_study is not None:
            out = plot_event_study(shown, band_low=low, band_high=high, title=self.title, ax=ax)
            return getattr(out, "figure", out)
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        x = shown["event_time"].to_numpy()
        if low is not None:
            ax.fill_between(x, low, high, color="tab:blue", alpha=0.15, label="sup-t band")
        ax.errorbar(x, shown["estimate"], yerr=[shown["estimate"] - shown["conf_low"],
                                                 shown["conf_high"] - shown["estimate"]],
                    fmt="o", color="tab:blue", capsize=3, label="estimate, pointwise CI")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.axvline(self.reference + 0.5, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlabel("Event time")
        ax.set_ylabel("Effect")
        ax.set_title(self.title)
        ax.legend(frameon=False, fontsize="small")
        return ax.figure


def estimate_sa(frame: pd.DataFrame, *, y: str, unit: str, time: str, cohort: str | None = None,
                treated: str | None = None, control: str = "never", covariates: Sequence[str] | None = None,
                weights: str | None = None, cluster: str | Sequence[str] | None = None,
                vcov: str = "CRV1", anticipation: int = 0, alpha: float = 0.05,
                seed: int | None = None) -> SAResult:
    """Sun & Abraham (2021) IW event study (eq. 16-18); see the module docstring.

    ``control``: ``"never"`` (never-treated units) or ``"last"`` (the last-treated cohort,
    keeping only periods before it adopts). Units treated in the first period (no
    pre-period) are dropped with a warning; cohorts starting after the last period count as
    never treated. ``cluster`` defaults to the unit. ``seed`` drives the sup-t simulation.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel: one row per unit and period.
    y, unit, time : str
        Outcome, unit and period columns.
    cohort : str, optional
        First treated period (0 or missing = never treated).
    treated : str, optional
        0/1 absorbing treatment column; give it or ``cohort``.
    control : {"never", "last"}, default "never"
        Control cohort.
    covariates : sequence of str, optional
        Controls.
    weights : str, optional
        Analytic weights.
    cluster : str or sequence of str, optional
        Cluster column(s); the unit by default.
    vcov : {"CRV1", "CRV3", "HC1"}, default "CRV1"
        Covariance of the cohort x event-time coefficients.
    anticipation : int, default 0
        Periods of anticipation (the reference event time is ``-1 - anticipation``).
    alpha : float, default 0.05
        1 - confidence level.
    seed : int, optional
        Seed of the sup-t simulation.

    Returns
    -------
    SAResult
        IW estimates by event time (``event_study()``), ``att()``, ``pretrend()`` and the sup-t band.

    Raises
    ------
    InputError
        Bad columns or options.
    EstimationError
        No control units or no treated cohort left.
    """
    estimator = SAEstimator()
    prepared = estimator.prepare(frame, y=y, unit=unit, time=time, cohort=cohort, treated=treated,
                                 covariates=covariates, weights=weights, cluster=cluster)
    return estimator.fit(prepared, control=control, vcov=vcov, anticipation=anticipation, alpha=alpha, seed=seed)


def fit_sa(prepared: DidPanel, *, control: str = "never", vcov: str = "CRV1", anticipation: int = 0,
           alpha: float = 0.05, seed: int | None = None) -> SAResult:
    """Sun-Abraham on a prepared panel; see :func:`estimate_sa` for the parameters."""
    if control not in ("never", "last"):
        raise InputError(f"control must be 'never' or 'last' for Sun-Abraham, got {control!r}")
    panel, unit, covariates = prepared.frame, prepared.unit, list(prepared.covariates)
    weights, cluster = prepared.weights, prepared.cluster
    messages: list[str] = []
    t_min, t_max = panel["_time"].min(), panel["_time"].max()
    g = panel["_cohort"].to_numpy().copy()
    g[g > t_max] = 0.0
    reference = -1 - int(anticipation)
    always = (g > 0) & (g <= t_min - reference - 1)
    if always.any():
        n_units = panel.loc[always, "_unit"].nunique()
        text = (f"dropped {n_units} unit(s) of '{unit}' treated by period {t_min - reference - 1:g}: "
                f"no reference period {reference} to compare with")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
    keep = ~always
    if control == "never":
        if not (g[keep] == 0).any():
            raise EstimationError(f"no control units: no never-treated unit of '{unit}'; use control='last'")
    else:
        last = g[keep & (g > 0)].max()
        keep &= panel["_time"].to_numpy() < last + reference + 1
        g[g == last] = 0.0
        messages.append(f"Control cohort: last treated ({last:g}); periods from {last + reference + 1:g} dropped.")
    panel = panel.loc[keep]
    g = g[keep]
    treated_cohorts = np.unique(g[g > 0])
    if treated_cohorts.size == 0:
        raise EstimationError("no treated cohort left to estimate")
    time_values = panel["_time"].to_numpy()
    interactions, keys = build_interactions(g, time_values, treated_cohorts, reference)
    design = np.column_stack([interactions] + [panel[c].to_numpy(dtype=float) for c in covariates])
    unit_codes, n_units = factorize(panel["_unit"])
    time_codes, n_periods = factorize(panel["_time"])
    fe_codes, fe_sizes = [unit_codes, time_codes], [n_units, n_periods]
    w = None if weights is None else panel[weights].to_numpy(dtype=float)
    names = [f"cohort {e:g} x event {l}" for e, l in keys] + covariates
    outcome = panel["_y"].to_numpy(dtype=float)
    fit = fit_within(outcome, design, fe_codes, fe_sizes, w, names=names)
    cluster_cols = cluster_columns(cluster, unit, vcov)
    full_vcov, df_t, clusters, notes, _ = fit_covariance(fit, outcome, design, fe_codes, fe_sizes, panel,
                                                      cluster_cols, vcov, w)
    messages += notes
    p = len(keys)
    delta, delta_vcov = fit.coef[:p], full_vcov[:p, :p]
    cell_weight = np.ones(outcome.shape[0]) if w is None else w
    cell_n = interactions.T @ cell_weight
    cell_rows = interactions.sum(axis=0)
    rels = np.array([l for _, l in keys])
    event_times = np.unique(rels)
    aggregation = np.zeros((event_times.size, p))
    for i, l in enumerate(event_times):
        cols = rels == l
        aggregation[i, cols] = cell_n[cols] / cell_n[cols].sum()
    cohort_se = np.sqrt(np.diag(delta_vcov))
    cohort_table = pd.DataFrame({"cohort": [e for e, _ in keys], "event_time": rels, "estimate": delta,
                                 "std_error": cohort_se, "n": cell_rows.astype(int)})
    return SAResult(event_times=event_times, estimates=aggregation @ delta,
                    vcov=aggregation @ delta_vcov @ aggregation.T,
                    counts=np.array([cell_rows[rels == l].sum() for l in event_times]),
                    cohort_table=cohort_table, cohort_vcov=delta_vcov, aggregation=aggregation, df_t=df_t,
                    reference=reference, control=control, n_obs=int(outcome.shape[0]),
                    n_clusters=None if clusters is None else clusters.n_clusters, alpha=alpha, seed=seed,
                    messages=messages)


class SAEstimator(DidEstimator):
    """Sun & Abraham (2021) interaction-weighted event study (:func:`estimate_sa`)."""

    name = "sa"
    label = "Sun-Abraham (interaction-weighted)"
    reference = "Sun & Abraham (2021), J. Econometrics 225(2), 175-199, eq. 16-18"
    options = {"covariates": None, "cluster": None, "weights": None, "control": "never", "vcov": "CRV1",
               "anticipation": 0, "alpha": 0.05, "seed": None}
    has_event_study = True

    def fit(self, panel: DidPanel, *, control: str = "never", vcov: str = "CRV1", anticipation: int = 0,
            alpha: float = 0.05, seed: int | None = None, **_: object) -> SAResult:
        """Sun-Abraham on ``panel``; see :func:`estimate_sa`."""
        return fit_sa(panel, control=control, vcov=vcov, anticipation=anticipation, alpha=alpha, seed=seed)
