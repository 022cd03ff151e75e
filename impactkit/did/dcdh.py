"""de Chaisemartin & D'Haultfoeuille (2024) event-study estimators for non-absorbing treatments.

de Chaisemartin, C. & D'Haultfoeuille, X. (2024). Difference-in-differences estimators of
intertemporal treatment effects. *Review of Economics and Statistics* 106(6), 1723-1736, and its
Web Appendix; the R / Stata command ``did_multiplegt_dyn`` (DIDmultiplegtDYN 2.3.4), and moderndid's
``did_multiplegt`` as the Python peer.

The treatment ``D_{g,t}`` may be binary or discrete and switch on and off. For each group ``g``
(a unit) with baseline treatment ``D_{g,1}``, ``F_g`` is the first period its treatment changes and
``S_g`` the sign of that change. The effect ``ell`` periods after the first switch (eq. 3 of the
paper) is

``DID_ell = (1/N_ell) sum_g S_g [ (Y_{g,F_g-1+ell} - Y_{g,F_g-1})
- mean over g' with D_{g',1} = D_{g,1} and F_{g'} > F_g - 1 + ell of (Y_{g',F_g-1+ell} - Y_{g',F_g-1}) ]``

over switchers reaching ``ell`` (``S_g = -1`` for switchers out, so that ``DID_ell`` estimates the
effect of a weakly higher dose: ``did_multiplegt_dyn`` estimates switchers in and out separately and
pools them as ``(N_in DID_in - N_out DID_out) / N``). The placebo ``ell`` compares ``Y_{g,F_g-1-ell}
- Y_{g,F_g-1}`` in the same way. Standard errors use the Web Appendix variance (see
:mod:`impactkit.did.dcdh_horizon`).

Options (each as in ``did_multiplegt_dyn``):

- ``cluster``: influence functions are summed within clusters, and the cell sizes that scale the
  demeaned influence functions count distinct clusters. Rows with a missing cluster are dropped and
  a unit must lie in one cluster (as R). moderndid 0.2.0 departs three times, each shown in
  ``tests/test_did_dcdh.py``: it counts the null it gives non-members of a control or union cell as
  one more cluster (polars ``n_unique`` counts nulls; R's helper subtracts them), and its panel
  balancing leaves the cluster of added rows null, so a unit missing in the first period drops out of
  the clustered sum; and (unclustered too, placebos only, ~3e-7) its cell sizes count rows whose
  outcome is missing at the horizon's end, which R leaves out. With the three mended in moderndid,
  clustered and unclustered SEs agree to 1e-10.
- ``normalized``: ``DID_ell`` divided by the switchers' average cumulative dose change
  ``S_g sum_{t=F_g}^{F_g-1+ell} (D_{g,t} - D_{g,1})`` (Section 3.2 of the paper).
- ``trends_lin``: group-specific linear trends (Web Appendix Section 1.3): the estimators are
  computed on the outcome's first difference (groups switching at period 2 dropped) and effect
  ``ell`` is the sum of first-difference effects ``1..ell``, each on the switchers for which all
  ``ell`` can be estimated (as R does; moderndid sums effects estimated on different switchers).
- ``trends_nonparam``: time-invariant columns; switchers are compared only with controls of the same
  baseline treatment and the same values (Web Appendix Section 1.4).
- ``same_switchers`` (``same_switchers_pl``): every effect (and placebo) on the switchers for which
  all effects (and placebos) can be estimated.
- ``switchers``: ``"in"`` or ``"out"`` to estimate on one kind of switcher only (``"out"`` is
  reported with the sign of a higher dose, as R; moderndid reports the raw change).
- ``covariates`` (R's ``controls``): time-varying covariates; outcome changes are residualised on
  covariate changes and time effects among not-yet-switched cells, by baseline treatment (Web
  Appendix Section 1.2; :mod:`impactkit.did.dcdh_controls`). moderndid 0.2.0 departs from R here
  (never switchers only, ``ell``-period changes, no time effects), so these are checked against
  an independent regression and by simulation, not against moderndid.

Sample rules follow ``did_multiplegt_dyn``: a unit whose treatment has gone both above and below
its baseline loses its rows from that period on; strata in which no unit ever switches, or none
never switches, are dropped. Periods must be consecutive (positions are used). Not implemented:
heterogeneity regressions (``predict_het``), the average total effect, ``continuous``,
``only_never_switchers`` and the bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.base import DidEstimator, DidPanel, DidResult
from impactkit.did.dcdh_controls import ControlFit, adjusted_outcome, fit_controls
from impactkit.did.dcdh_horizon import Part, combine, horizon_part
from impactkit.did.dcdh_horizon import same_switchers as same_switchers_mask
from impactkit.did.dcdh_sample import Groups, build_groups, first_differences
from impactkit.errors import EstimationError, InputError


def _se(influence: np.ndarray, clusters: np.ndarray | None) -> float:
    """``sqrt(sum over clusters of (summed influence)^2) / G`` (each group its own cluster by default)."""
    n_g = influence.size
    if clusters is None:
        return float(math.sqrt(float(influence @ influence)) / n_g)
    sums = np.bincount(pd.factorize(clusters)[0], weights=influence)
    return float(math.sqrt(float(sums @ sums)) / n_g)


@dataclass
class DCDHResult(DidResult):
    """Dynamic effects and placebos of de Chaisemartin & D'Haultfoeuille (2024)."""

    title: ClassVar[str] = "de Chaisemartin-D'Haultfoeuille event study"
    method: ClassVar[str] = "dcdh"

    table: pd.DataFrame
    alpha: float
    n_groups: int
    influence: np.ndarray
    clusters: np.ndarray | None

    def event_study(self) -> pd.DataFrame:
        return self.table[["event_time", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n"]].copy()

    def att(self) -> dict[str, float]:
        """Average of the dynamic effects ``DID_1..DID_L`` (equal weights; influence functions averaged)."""
        post = self.table["event_time"].to_numpy() > 0
        if not post.any():
            raise EstimationError("dcdh: no dynamic effect was estimated")
        est = float(self.table.loc[post, "estimate"].mean())
        inf = self.influence[:, post].mean(axis=1)
        se = _se(inf, self.clusters)
        z = norm.ppf(1 - self.alpha / 2)
        return {"estimate": est, "std_error": se, "conf_low": est - z * se, "conf_high": est + z * se,
                "p_value": float(2 * norm.sf(abs(est / se))) if se > 0 else math.nan}

    def pretrend(self):
        """Joint Wald test that every placebo is zero (covariance from the placebo influence functions)."""
        from scipy.stats import chi2

        from impactkit.did.event_study import WaldTestResult, wald_statistic

        pre = self.table["event_time"].to_numpy() < 0
        if not pre.any():
            raise EstimationError("dcdh: no placebo was estimated (set placebo >= 1)")
        psi = self.influence[:, pre]
        if self.clusters is not None:
            codes = pd.factorize(self.clusters)[0]
            psi = np.vstack([np.bincount(codes, weights=psi[:, j]) for j in range(psi.shape[1])]).T
        vcov = psi.T @ psi / float(self.n_groups) ** 2
        stat, df = wald_statistic(self.table.loc[pre, "estimate"].to_numpy(), vcov)
        return WaldTestResult(statistic=stat, df=df, p_value=float(chi2.sf(stat, df)), n_restrictions=int(pre.sum()),
                              description="every placebo = 0")

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()


SWITCHER_SIGNS = {"": (1, -1), "in": (1,), "out": (-1,)}


def _one_horizon(groups: Groups, ell: int, placebo: bool, signs: tuple[int, ...], keep: np.ndarray | None,
                 cumulate: bool, controls: ControlFit | None = None,
                 memo: dict | None = None) -> Part | None:
    """``DID_ell`` pooled over ``signs``; with ``cumulate`` (linear trends) each sign's part is the
    sum of its first-difference parts ``1..ell``, computed on the same switchers (parts are
    memoised by horizon, sign and switcher set in ``memo``)."""
    memo = {} if memo is None else memo
    mask_key = None if keep is None else keep.tobytes()

    def part_at(k: int, sign: int) -> Part | None:
        key = (k, placebo, sign, mask_key)
        if key not in memo:
            memo[key] = horizon_part(groups, k, placebo, sign, keep, controls)
        return memo[key]

    parts: list[Part | None] = []
    for sign in (1, -1):
        part = part_at(ell, sign) if sign in signs else None
        if part is not None and cumulate and ell > 1:
            lower = [part_at(k, sign) for k in range(1, ell)]
            if any(p is None for p in lower):
                part = None
            else:
                part = Part(part.estimate + sum(p.estimate for p in lower),
                            part.influence + sum(p.influence for p in lower), part.n, part.weight, part.delta)
        parts.append(part)
    return combine(parts, groups.n_groups)


def fit_dcdh(frame: pd.DataFrame, *, y: str, unit: str, time: str, treatment: str, effects: int = 1,
             placebo: int = 0, weights: str | None = None, cluster: str | None = None, alpha: float = 0.05,
             normalized: bool = False, trends_lin: bool = False, trends_nonparam: Sequence[str] | None = None,
             same_switchers: bool = False, same_switchers_pl: bool = False, switchers: str = "",
             controls: Sequence[str] | None = None) -> DCDHResult:
    """Estimate ``DID_1..DID_effects`` and placebos ``1..placebo`` (see the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel, one row per group and period.
    y, unit, time, treatment : str
        Outcome, group, period and treatment (numeric dose) columns.
    effects : int, default 1
        Number of dynamic effects.
    placebo : int, default 0
        Number of placebos.
    weights, cluster : str, optional
        Weight column; cluster column (groups must be nested in clusters).
    alpha : float, default 0.05
        1 - confidence level (normal intervals).
    normalized : bool, default False
        Divide each effect by the switchers' average cumulative dose change.
    trends_lin : bool, default False
        Allow group-specific linear trends.
    trends_nonparam : sequence of str, optional
        Time-invariant columns defining strata with their own time effects.
    same_switchers, same_switchers_pl : bool, default False
        Restrict every horizon to the switchers for which all effects (and all placebos) exist.
    switchers : {"", "in", "out"}, default ""
        Pool switchers in and out, or keep one kind.
    controls : sequence of str, optional
        Time-varying covariates (Web Appendix Section 1.2, :mod:`impactkit.did.dcdh_controls`).

    Returns
    -------
    DCDHResult

    Raises
    ------
    InputError
        Bad option values or columns; ``same_switchers_pl`` without ``same_switchers``.
    EstimationError
        No stratum with switchers and never switchers, or no horizon can be estimated.

    References
    ----------
    de Chaisemartin & D'Haultfoeuille (2024), Rev. Econ. Stat. 106(6), eq. 3, Section 3.2 and the
    Web Appendix (Sections 1.3, 1.4 and 2).
    """
    if effects < 1 or placebo < 0:
        raise InputError(f"dcdh: effects must be >= 1 and placebo >= 0, got {effects} and {placebo}")
    if switchers not in SWITCHER_SIGNS:
        raise InputError(f"dcdh: switchers must be '', 'in' or 'out', got {switchers!r}")
    if same_switchers_pl and not same_switchers:
        raise InputError("dcdh: same_switchers_pl needs same_switchers=True")
    by = [trends_nonparam] if isinstance(trends_nonparam, str) else list(trends_nonparam or [])
    covs = [controls] if isinstance(controls, str) else list(controls or [])
    missing = [c for c in (y, unit, time, treatment, weights, cluster, *by, *covs) if c and c not in frame.columns]
    if missing:
        raise InputError(f"dcdh: column(s) {missing} not in the data")
    groups = build_groups(frame, y, unit, time, treatment, weights, cluster, by, covs)
    if trends_lin:
        groups = first_differences(groups)
    fitted = None
    if covs:
        fitted = fit_controls(groups, groups.x)
        groups = replace(groups, y=adjusted_outcome(groups, fitted))
    signs = SWITCHER_SIGNS[switchers]
    z = norm.ppf(1 - alpha / 2)
    rows, infl = [], []
    cache: dict[tuple[int, bool], np.ndarray] = {}
    memo: dict = {}
    for kind, count in (("placebo", placebo), ("effect", effects)):
        for ell in range(1, count + 1):
            if trends_lin:
                keep = same_switchers_mask(groups, ell, ell if kind == "placebo" else 0, cache)
            elif same_switchers:
                keep = same_switchers_mask(groups, effects, placebo if same_switchers_pl and kind == "placebo" else 0,
                                           cache)
            else:
                keep = None
            part = _one_horizon(groups, ell, kind == "placebo", signs, keep, trends_lin, fitted, memo)
            if part is None:
                continue
            scale = part.delta if normalized and part.delta != 0 else 1.0
            est, inf = part.estimate / scale, part.influence / scale
            se = _se(inf, groups.clusters)
            rows.append({"event_time": -ell if kind == "placebo" else ell, "estimate": est, "std_error": se,
                         "conf_low": est - z * se, "conf_high": est + z * se,
                         "p_value": float(2 * norm.sf(abs(est / se))) if se > 0 else math.nan, "n": part.n})
            infl.append(inf)
    if not rows:
        raise EstimationError("dcdh: no switcher can be compared at any requested horizon")
    table = pd.DataFrame(rows).sort_values("event_time").reset_index(drop=True)
    order = np.argsort([r["event_time"] for r in rows])
    return DCDHResult(table=table, alpha=alpha, n_groups=groups.n_groups,
                      influence=np.column_stack(infl)[:, order], clusters=groups.clusters)


class DCDHEstimator(DidEstimator):
    """de Chaisemartin & D'Haultfoeuille (2024) for non-absorbing, non-binary treatments (:func:`fit_dcdh`).

    The treatment column is passed as ``treated=`` (any numeric dose; it may switch on and off);
    ``covariates=`` are R's ``controls``. Options (:attr:`options`): ``effects``, ``placebo``,
    ``normalized``, ``trends_lin``, ``trends_nonparam``, ``same_switchers``, ``same_switchers_pl``,
    ``switchers``, ``cluster``, ``weights``, ``alpha``; see :func:`fit_dcdh`.
    """

    name = "dcdh"
    label = "de Chaisemartin-D'Haultfoeuille (intertemporal)"
    reference = "de Chaisemartin & D'Haultfoeuille (2024), Rev. Econ. Stat. 106(6), eq. 3 and Web Appendix"
    options = {"covariates": None, "cluster": None, "weights": None, "alpha": 0.05, "effects": 1, "placebo": 0,
               "normalized": False,
               "trends_lin": False, "trends_nonparam": None, "same_switchers": False, "same_switchers_pl": False,
               "switchers": ""}
    has_event_study = True

    def prepare(self, data: pd.DataFrame, *, y: str, unit: str, time: str, cohort: str | None = None,
                treated: str | None = None, covariates=None, weights: str | None = None, cluster=None,
                **options) -> DidPanel:
        """No absorbing-treatment check: the treatment may switch on and off; only columns are checked."""
        if treated is None:
            raise InputError("dcdh: give the treatment column as treated= (a numeric dose that may switch on and off)")
        if cluster is not None and not isinstance(cluster, str):
            raise InputError("dcdh: one cluster column is supported")
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        missing = [c for c in (y, unit, time, treated, weights, cluster, *covariates) if c and c not in data.columns]
        if missing:
            raise InputError(f"dcdh: column(s) {missing} not in the data")
        frame = data.reset_index(drop=True)
        return DidPanel(frame=frame, source=frame, y=y, unit=unit, time=time, cohort=cohort, treated=treated,
                        covariates=tuple(covariates), weights=weights, cluster=cluster)

    def fit(self, panel: DidPanel, *, alpha: float = 0.05, **options: object) -> DCDHResult:
        """Estimate on ``panel`` with the options of :attr:`options`; see :func:`fit_dcdh`."""
        cluster = panel.cluster if isinstance(panel.cluster, str) or panel.cluster is None else panel.cluster[0]
        chosen = {k: v for k, v in options.items()
                  if k in self.options and k not in ("cluster", "weights", "covariates")}
        return fit_dcdh(panel.source, y=panel.y, unit=panel.unit, time=panel.time, treatment=panel.treated,
                        weights=panel.weights, cluster=cluster, alpha=alpha, controls=list(panel.covariates),
                        **chosen)

