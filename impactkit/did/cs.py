"""Callaway & Sant'Anna (2021) group-time average treatment effects for staggered adoption.

Reference: Callaway, B. & Sant'Anna, P. H. C. (2021), "Difference-in-Differences with multiple
time periods", *Journal of Econometrics* 225(2), 200-230. ``ATT(g,t)`` is identified by a
2x2 comparison of the units first treated in ``g`` with a comparison group (never-treated,
eq. 2.5-2.7, or not-yet-treated, eq. 2.8) between period ``t`` and a base period
(``g - anticipation - 1`` for post-treatment cells; ``t - 1`` for pre-treatment cells when
``base_period="varying"``; always ``g - anticipation - 1`` when ``"universal"``).

The estimator runs in stages, one module each: :mod:`impactkit.did.cs_panel` checks the long
panel and reshapes it into unit x period arrays; :mod:`impactkit.did.cs_cells` lists the
group-time cells and estimates each as a 2x2 of :mod:`impactkit.did.drdid`; this module applies
the cohort conventions, assembles ``ATT(g,t)`` with influence functions and holds the result
(aggregation in :mod:`impactkit.did.aggregate`, bootstrap in :mod:`impactkit.did.multiplier`).

Each 2x2 is estimated with the panel estimators of Sant'Anna & Zhao (2020), "Doubly robust
difference-in-differences estimators", *J. Econometrics* 219(1), 101-122, exactly as R
``DRDID`` (used by R ``did`` 2.x):

- ``est="dr"``: locally efficient doubly robust estimator, eq. (3.1) (``drdid_panel``), with a
  logit propensity score and a linear outcome-change regression on the comparison units;
- ``est="ipw"``: normalized (Hajek) inverse-probability-weighted estimator, eq. (2.4)
  (``std_ipw_did_panel``);
- ``est="reg"``: outcome regression, eq. (2.2) (``reg_did_panel``, Heckman, Ichimura & Todd 1997).

Propensity scores are clipped to ``[1e-6, 1 - 1e-6]`` and comparison units with a score of
0.995 or more get weight zero (DRDID's trimming). Every estimate keeps its influence function
(``n_units x n_cells``), so aggregation (:mod:`impactkit.did.aggregate`), clustered standard
errors and the multiplier bootstrap (:mod:`impactkit.did.multiplier`) need no refit.

Conventions shared with R ``did`` (documented departures marked *):

- cohort ``0`` or missing means never treated; a cohort after the last period is treated as
  never treated; units whose cohort leaves no pre-treatment period (``cohort - anticipation <=``
  first period) are dropped with an :class:`ImpactkitWarning` (R drops those treated in the
  first period);
- ``control="notyet"`` without never-treated units keeps only periods before
  ``max(cohort) - anticipation`` and uses the last cohort as the comparison group;
- covariates enter at the earlier period of each 2x2 (time-invariant covariates are typical);
- sampling ``weights`` must be constant within unit; they are normalized to mean one within each
  2x2 and enter the aggregation weights as in ``did::aggte``;
- unbalanced panels, by default (``allow_unbalanced=False``, R's default): the balanced sub-panel is
  kept (units observed with outcome and covariates in every period) and an :class:`ImpactkitWarning`
  says how many units were dropped;
- unbalanced panels with ``allow_unbalanced=True`` (R ``allow_unbalanced_panel=TRUE``): each ATT(g,t)
  stacks the observed rows (outcome and covariates present) of its two periods and uses the
  repeated-cross-section estimators of Sant'Anna & Zhao (2020, Sec. 3.2: ``drdid_rc``,
  ``std_ipw_did_rc``, ``reg_did_rc``) with each row's own covariates; the row influence function,
  scaled by ``n_units / n_rows``, is summed within unit. Units without any complete row are dropped.
  A balanced panel always uses the panel estimators;
- clustering: analytic standard errors sum the influence function within clusters (Liang-Zeger),
  as csdid 0.4.3 does for R ``did`` 2.5 with ``bstrap=FALSE``; clusters must nest units;
- a cell whose cohort has no observed row in one of its two periods is skipped with an
  :class:`ImpactkitWarning`; a cell without comparison units raises :class:`EstimationError`;
- \\* uniform bands: sup-t critical value from the multiplier bootstrap, studentized by the analytic
  standard errors (R studentizes by bootstrap interquartile-range standard errors);
- a cohort with a single unit gives an :class:`ImpactkitWarning` (its ATT(g,t) is estimable but
  its influence-function standard error rests on one unit).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.base import DidEstimator, DidPanel, DidResult, att_dict, event_study_frame, rows_as_units
from impactkit.did.cs_cells import Cell, group_time_cells, panel_cell, rc_cell
from impactkit.did.cs_panel import (PanelArrays, balance_panel, balanced_subpanel_notice,  # noqa: F401
                                    build_panel_arrays, prepare_cohorts)
from impactkit.did.data import check_has_controls
from impactkit.did.drdid import ESTIMATORS
from impactkit.did.multiplier import influence_se, multiplier_draws, sup_t_critical_value
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.results import to_plain

CONTROLS = ("never", "notyet")
BASE_PERIODS = ("varying", "universal")
ATT_GT_COLUMNS = ("group", "time", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n")

__all__ = ["estimate_cs", "fit_cs", "CSResult", "CSEstimator", "build_panel_arrays", "PanelArrays", "Cell",
           "group_time_cells"]


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass
class CSResult(DidResult):
    """Callaway-Sant'Anna ATT(g,t) with their influence functions.

    ``att_gt`` / :meth:`tidy` hold one row per (group, time) with analytic standard errors
    (clustered when ``cluster`` was given) and pointwise ``1 - alpha`` intervals;
    ``critical_value`` is the sup-t value of the multiplier bootstrap (``None`` without it).
    """

    title: ClassVar[str] = "Callaway-Sant'Anna group-time average treatment effects"
    method: ClassVar[str] = "cs"

    att_gt: pd.DataFrame
    influence: np.ndarray
    unit_cohort: np.ndarray
    unit_weights: np.ndarray
    cluster_codes: np.ndarray | None
    periods: np.ndarray
    alpha: float
    options: dict[str, Any]
    critical_value: float | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return int(self.influence.shape[0])

    def tidy(self) -> pd.DataFrame:
        return self.att_gt.copy()

    def band(self) -> pd.DataFrame | None:
        """Uniform (sup-t) band for all ATT(g,t), or ``None`` when no bootstrap was run."""
        if self.critical_value is None:
            return None
        half = self.critical_value * self.att_gt["std_error"]
        return pd.DataFrame({"group": self.att_gt["group"], "time": self.att_gt["time"],
                             "band_low": self.att_gt["estimate"] - half,
                             "band_high": self.att_gt["estimate"] + half})

    def aggregate(self, kind: str = "simple", balance_e: int | None = None,
                  min_e: float = -np.inf, max_e: float = np.inf):
        """Aggregate ATT(g,t) as R ``did::aggte`` (see :func:`impactkit.did.aggregate.aggregate_cs`)."""
        from impactkit.did.aggregate import aggregate_cs

        return aggregate_cs(self, kind, balance_e=balance_e, min_e=min_e, max_e=max_e)

    def att(self) -> dict[str, float]:
        """The simple aggregate (R ``aggte(type = "simple")``) as :data:`~impactkit.did.base.ATT_KEYS`."""
        simple = self.aggregate("simple")
        return att_dict(simple.estimate, simple.std_error, simple.conf_low, simple.conf_high, simple.p_value)

    def event_study(self) -> pd.DataFrame:
        """The dynamic aggregate's rows (R ``aggte(type = "dynamic")``), one per event time."""
        rows = self.aggregate("dynamic").rows
        return event_study_frame(rows)

    def pretrend(self):
        """Joint Wald test that every pre-treatment ATT(g,t) is zero (:meth:`pretrend_test`)."""
        return self.pretrend_test()

    def pretrend_test(self):
        """Joint Wald test that every pre-treatment ATT(g,t) is zero.

        ``W = theta_pre' V_pre^+ theta_pre`` with ``V_pre`` the influence-function covariance
        (clustered when ``cluster`` was given) of the pre-treatment cells (``t < g - anticipation``,
        reference cells of a universal base excluded); ``W ~ chi2(rank V_pre)`` under the null
        (Callaway & Sant'Anna 2021, Sec. 4.2; R ``did`` reports the same statistic).
        """
        from impactkit.did.event_study import wald_test

        pre = self._pre_mask() & (self.att_gt["std_error"].to_numpy() > 0)
        if not pre.any():
            raise EstimationError("no pre-treatment ATT(g,t) to test (need a period before each cohort's base period)")
        return wald_test(self.att_gt["estimate"].to_numpy()[pre], self.influence[:, pre], self.n_units,
                         self.cluster_codes, description="pre-treatment ATT(g,t) = 0")

    def _pre_mask(self) -> np.ndarray:
        anticipation = self.options["anticipation"]
        return (self.att_gt["time"].to_numpy() < self.att_gt["group"].to_numpy() - anticipation)

    def plot(self, ax=None):
        """Event-study figure: dynamic aggregation, pointwise CIs, sup-t band if bootstrapped."""
        return self.aggregate("dynamic").plot(ax=ax)

    def notes(self) -> list[str]:
        o = self.options
        lines = [f"Estimator: {o['est']} (Sant'Anna & Zhao 2020), comparison group: {o['control']}-treated, "
                 f"base period: {o['base_period']}, anticipation: {o['anticipation']}.",
                 f"Units: {self.n_units}; covariates: {', '.join(o['covariates']) or 'none'}; "
                 f"weights: {o['weights'] or 'none'}.",
                 f"Standard errors: influence function{', clustered by ' + o['cluster'] if o['cluster'] else ''}; "
                 f"{int(round((1 - self.alpha) * 100))}% pointwise intervals."]
        if self.critical_value is not None:
            lines.append(f"Uniform band: multiplier bootstrap ({o['biters']} draws, seed {o['seed']}), "
                         f"sup-t critical value {self.critical_value:.4f}.")
        return lines + list(self.messages)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"options": to_plain(self.options), "n_units": self.n_units,
                    "critical_value": to_plain(self.critical_value)})
        band = self.band()
        if band is not None:
            out["band"] = to_plain(band)
        return out



# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def _check_options(control: str, est: str, anticipation: int, base_period: str, alpha: float,
                   biters: int) -> None:
    """InputError unless every option of :func:`estimate_cs` is in its range.

    Parameters
    ----------
    control : {"never", "notyet"}
        Comparison group.
    est : {"dr", "ipw", "reg"}
        Sant'Anna-Zhao estimator.
    anticipation : int
        Periods of anticipation (non-negative).
    base_period : {"varying", "universal"}
        Base period convention.
    alpha : float
        Significance level, in (0, 1).
    biters : int
        Multiplier-bootstrap draws (positive).

    Raises
    ------
    InputError
        Naming the first option out of its range.
    """
    if control not in CONTROLS:
        raise InputError(f"control must be one of {CONTROLS}, got {control!r}")
    if est not in ESTIMATORS:
        raise InputError(f"est must be one of {ESTIMATORS}, got {est!r}")
    if base_period not in BASE_PERIODS:
        raise InputError(f"base_period must be one of {BASE_PERIODS}, got {base_period!r}")
    if not isinstance(anticipation, (int, np.integer)) or anticipation < 0:
        raise InputError(f"anticipation must be a non-negative integer, got {anticipation!r}")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    if int(biters) < 1:
        raise InputError(f"biters must be a positive integer, got {biters!r}")


def estimate_cs(frame: pd.DataFrame, *, y: str, unit: str | None, time: str, cohort: str,
                covariates: list[str] | None = None, control: str = "never",
                est: str = "dr",
                anticipation: int = 0, base_period: str = "varying",
                weights: str | None = None, cluster: str | None = None,
                alpha: float = 0.05, bootstrap: bool = False, biters: int = 999,
                seed: int | None = None, allow_unbalanced: bool = False, panel: bool = True) -> CSResult:
    """Callaway & Sant'Anna (2021) ATT(g,t) for a staggered-adoption panel.

    ``frame`` is a long panel (one row per unit and period); ``cohort`` holds each unit's first
    treated period (0 or missing for never treated). Each ATT(g,t) is the 2x2 DiD of
    Callaway & Sant'Anna (2021, eq. 2.6 never-treated / eq. 2.8 not-yet-treated comparison)
    estimated by Sant'Anna & Zhao's (2020) doubly robust (eq. 3.1), normalized IPW (eq. 2.4) or
    outcome-regression (eq. 2.2) panel estimator; standard errors come from the influence
    functions (clustered within ``cluster``) and, with ``bootstrap=True``, a uniform sup-t band
    from the multiplier bootstrap (Callaway & Sant'Anna 2021, Alg. 1) seeded by
    ``impactkit.seeds.rng(seed, "cs-multiplier")``. See the module docstring for conventions.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel (one row per unit and period), or repeated cross sections with ``panel=False``.
    y, time : str
        Outcome and period columns.
    unit : str or None
        Unit column; ignored (may be ``None``) with ``panel=False``.
    cohort : str
        First treated period of the unit (or, in repeated cross sections, of the row's group);
        0 or missing for never treated.
    covariates : list of str, optional
        Covariates (taken at the base period of each 2x2; each row's own in repeated cross sections).
    control : {"never", "notyet"}, default "never"
        Comparison group: never-treated (eq. 2.6) or not-yet-treated (eq. 2.8) units.
    est : {"dr", "ipw", "reg"}, default "dr"
        Sant'Anna & Zhao (2020) 2x2 estimator (:mod:`impactkit.did.drdid`).
    anticipation : int, default 0
        Periods of anticipation.
    base_period : {"varying", "universal"}, default "varying"
        Base period of pre-treatment cells.
    weights : str, optional
        Sampling weights (constant within unit for panels).
    cluster : str, optional
        Cluster column (nesting units).
    alpha : float, default 0.05
        1 - confidence level.
    bootstrap : bool, default False
        Multiplier bootstrap for the uniform band.
    biters : int, default 999
        Bootstrap draws.
    seed : int, optional
        Seed of the multiplier bootstrap.
    allow_unbalanced : bool, default False
        Panels only. ``False`` (R's default) keeps the balanced sub-panel and says how many units
        were dropped; ``True`` uses the repeated-cross-section estimators on the observed rows,
        clustered by unit (R ``allow_unbalanced_panel = TRUE``).
    panel : bool, default True
        ``False``: repeated cross sections (R ``panel = FALSE``), each row an independent
        observation; every ATT(g,t) is Sant'Anna & Zhao's repeated-cross-section estimator on the
        rows of its two periods (eq. 3.4 / 2.5 / 2.3) and influence functions are per row.

    Returns
    -------
    CSResult

    Raises
    ------
    InputError
        Missing or non-numeric columns, duplicate unit-periods, a cohort or weight varying within
        a unit, invalid options.
    EstimationError
        No treated or comparison units, a cell without comparison units, singular fits.
    """
    _check_options(control, est, anticipation, base_period, alpha, biters)
    cluster = one_cluster(cluster)
    if not panel:
        frame, unit = rows_as_units(frame)
    elif unit is None:
        raise InputError("panel data need the 'unit' column; pass panel=False for repeated cross sections")
    arrays = build_panel_arrays(frame, y=y, unit=unit, time=time, cohort=cohort, covariates=covariates,
                                weights=weights, cluster=cluster)
    return fit_cs(arrays, names={"y": y, "unit": unit, "time": time, "cohort": cohort, "weights": weights,
                                 "cluster": cluster},
                  control=control, est=est, anticipation=anticipation, base_period=base_period, alpha=alpha,
                  bootstrap=bootstrap, biters=biters, seed=seed, allow_unbalanced=allow_unbalanced, panel=panel)





def one_cluster(cluster: str | list[str] | tuple[str, ...] | None, method: str = "Callaway-Sant'Anna") -> str | None:
    """The one cluster column of ``cluster`` (a name or a one-element list); InputError for several."""
    if isinstance(cluster, (list, tuple)):
        if len(cluster) > 1:
            raise InputError(f"{method} clusters on one column, got {list(cluster)}")
        return cluster[0] if cluster else None
    return cluster


def fit_cs(arrays: PanelArrays, *, names: dict[str, Any], control: str = "never", est: str = "dr",
           anticipation: int = 0, base_period: str = "varying", alpha: float = 0.05, bootstrap: bool = False,
           biters: int = 999, seed: int | None = None, allow_unbalanced: bool = False,
           panel: bool = True) -> CSResult:
    """Callaway-Sant'Anna on checked unit x period arrays (:func:`build_panel_arrays`).

    Parameters
    ----------
    arrays : PanelArrays
        The panel as unit x period arrays.
    names : dict
        The user's column names (``y, unit, time, cohort, weights, cluster``), for messages
        and the result's options.
    control, est, anticipation, base_period, alpha, bootstrap, biters, seed, allow_unbalanced, panel
        As for :func:`estimate_cs` (with ``panel=False`` each unit of ``arrays`` is one row).

    Returns
    -------
    CSResult
    """
    _check_options(control, est, anticipation, base_period, alpha, biters)
    y, unit, time, cohort = names["y"], names["unit"], names["time"], names["cohort"]
    weights, cluster = names.get("weights"), names.get("cluster")
    messages: list[str] = []
    arrays = prepare_cohorts(arrays, control, anticipation, cohort, messages)

    observed = np.isfinite(arrays.outcome)
    if arrays.design_time_invariant:
        design_observed = np.all(np.isfinite(arrays.design[0]), axis=1)[:, None] & np.ones_like(observed)
    else:
        design_observed = np.all(np.isfinite(arrays.design), axis=2).T
    complete = observed & design_observed
    unbalanced = not bool(complete.all())
    if not panel:
        unbalanced = True   # every row is observed once: the repeated-cross-section estimators
        unobserved = ~complete.any(axis=1)
        if unobserved.any():
            messages.append(f"{int(unobserved.sum())} row(s) without '{y}' or a covariate (or in a dropped period) "
                            "are not used.")
            arrays = arrays.keep_units(~unobserved)
            complete = complete[~unobserved]
        messages.append("Repeated cross sections (R did's panel = FALSE): each ATT(g,t) uses the "
                        "repeated-cross-section estimator of Sant'Anna & Zhao (2020) on the rows of its two periods.")
    elif unbalanced and not allow_unbalanced:
        arrays, complete = balance_panel(arrays, complete, y, unit, messages)
        unbalanced = False
    elif unbalanced:
        n_incomplete = int((~complete.all(axis=1)).sum())
        text = (f"Unbalanced panel: {n_incomplete} unit(s) miss some period; each ATT(g,t) uses the "
                "repeated-cross-section estimator on the observed rows, clustered by unit (R did's "
                "allow_unbalanced_panel).")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text)
        never_observed = ~complete.any(axis=1)
        if never_observed.any():
            messages.append(f"{int(never_observed.sum())} unit(s) without any complete row are dropped.")
            arrays = arrays.keep_units(~never_observed)
            complete = complete[~never_observed]

    groups = np.unique(arrays.cohort[arrays.cohort > 0])
    sizes = {float(g): int((arrays.cohort == g).sum()) for g in groups}
    singles = [g for g, size in sizes.items() if size == 1]
    if singles:
        text = (f"cohort(s) {', '.join(f'{g:g}' for g in singles)} have a single unit: their ATT(g,t) standard "
                "errors rest on one unit")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.append(text[0].upper() + text[1:] + ".")

    cells = group_time_cells(groups, arrays.periods, anticipation, base_period)
    n = arrays.n_units
    periods = arrays.periods
    never = arrays.cohort == 0
    sample_cache: dict[tuple, tuple] = {}
    outcome_by_period = np.ascontiguousarray(arrays.outcome.T)
    influence = np.zeros((n, len(cells)), order="F")   # column-major: one contiguous column per cell
    estimates = np.zeros(len(cells))
    cell_sizes = np.zeros(len(cells), dtype=np.int64)
    kept = np.ones(len(cells), dtype=bool)

    for j, cell in enumerate(cells):
        g, p, b = cell.group, cell.post, cell.base
        treated = arrays.cohort == g
        label = f"group {g:g}, time {periods[p]:g}"
        if control == "never":
            controls, control_key = never, None
        else:
            threshold = periods[max(p, b)] + anticipation
            controls = never | ((arrays.cohort > threshold) & ~treated)
            control_key = threshold
        if cell.reference:
            cell_sizes[j] = int((treated | controls).sum())
            continue
        in_cell = treated | controls
        if unbalanced:
            outcome = rc_cell(arrays, in_cell, treated, complete, p, b, est, label, control)
        else:
            outcome = panel_cell(arrays, outcome_by_period, in_cell, treated, p, b, est, label, control,
                                  sample_cache, (g, control_key))
        if outcome is None:
            text = (f"ATT({label}) skipped: no unit of the cohort is observed in "
                    f"{periods[b]:g} or in {periods[p]:g}.")
            warnings.warn(text, ImpactkitWarning, stacklevel=2)
            messages.append(text)
            kept[j] = False
            continue
        estimates[j], units, unit_influence, cell_sizes[j] = outcome
        influence[units, j] = unit_influence

    cells = [c for c, k in zip(cells, kept) if k]
    estimates, influence, cell_sizes = estimates[kept], influence[:, kept], cell_sizes[kept]
    se = influence_se(influence, n, arrays.cluster_codes)
    z = norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = np.where(se > 0, 2.0 * norm.sf(np.abs(estimates / np.where(se > 0, se, 1.0))), np.nan)
    if base_period == "universal":
        messages.append("Universal base period: ATT(g, g - 1 - anticipation) is the reference, fixed at 0 "
                        "(standard error 0, no p-value).")
    att_gt = pd.DataFrame({"group": [c.group for c in cells], "time": [float(periods[c.post]) for c in cells],
                           "estimate": estimates, "std_error": se, "conf_low": estimates - z * se,
                           "conf_high": estimates + z * se, "p_value": p_value,
                           "n": cell_sizes})[list(ATT_GT_COLUMNS)]
    if np.all(periods == np.round(periods)) and np.all(att_gt["group"] == np.round(att_gt["group"])):
        att_gt = att_gt.astype({"group": np.int64, "time": np.int64})   # integer periods print as such
    options = {"y": y, "unit": unit, "time": time, "cohort": cohort, "covariates": list(arrays.covariate_names),
               "control": control, "est": est, "anticipation": int(anticipation), "base_period": base_period,
               "weights": weights, "cluster": cluster, "bootstrap": bool(bootstrap), "biters": int(biters),
               "seed": seed, "allow_unbalanced": bool(allow_unbalanced), "panel": bool(panel)}
    critical_value = None
    if bootstrap:
        draws = multiplier_draws(influence, n, cluster_codes=arrays.cluster_codes, biters=int(biters),
                                 seed=seed, purpose="cs-multiplier")
        critical_value = sup_t_critical_value(draws, se, alpha)
    return CSResult(att_gt=att_gt, influence=influence, unit_cohort=arrays.cohort.copy(),
                    unit_weights=arrays.weights.copy(), cluster_codes=arrays.cluster_codes,
                    periods=periods.copy(), alpha=float(alpha), options=options,
                    critical_value=critical_value, messages=messages)


class CSEstimator(DidEstimator):
    """Callaway & Sant'Anna (2021) group-time ATTs (:func:`estimate_cs`)."""

    name = "cs"
    label = "Callaway-Sant'Anna (doubly robust)"
    reference = ("Callaway & Sant'Anna (2021), J. Econometrics 225(2), 200-230; 2x2 by Sant'Anna & Zhao "
                 "(2020), J. Econometrics 219(1), 101-122")
    options = {"covariates": None, "cluster": None, "weights": None, "control": "never", "est": "dr",
               "anticipation": 0, "base_period": "varying", "alpha": 0.05, "bootstrap": False, "biters": 999,
               "seed": None, "allow_unbalanced": False, "panel": True}
    has_event_study = True

    def fit(self, prepared: DidPanel, *, control: str = "never", est: str = "dr", anticipation: int = 0,
            base_period: str = "varying", alpha: float = 0.05, bootstrap: bool = False, biters: int = 999,
            seed: int | None = None, allow_unbalanced: bool = False, panel: bool = True,
            **_: object) -> CSResult:
        """Callaway-Sant'Anna on ``prepared``; see :func:`estimate_cs`."""
        _check_options(control, est, anticipation, base_period, alpha, biters)
        if panel:
            check_has_controls(prepared.frame, need_never_treated=control == "never", unit=prepared.unit)
        cluster = one_cluster(prepared.cluster)
        arrays = build_panel_arrays(prepared.frame, y="_y", unit="_unit", time="_time", cohort="_cohort",
                                    covariates=list(prepared.covariates), weights=prepared.weights, cluster=cluster)
        names = {"y": prepared.y, "unit": prepared.unit, "time": prepared.time,
                 "cohort": prepared.cohort or prepared.treated, "weights": prepared.weights, "cluster": cluster}
        return fit_cs(arrays, names=names, control=control, est=est, anticipation=anticipation,
                      base_period=base_period, alpha=alpha, bootstrap=bootstrap, biters=biters, seed=seed,
                      allow_unbalanced=allow_unbalanced, panel=panel)
