"""Run a declared analysis: ``analysis.toml`` -> the results document.

The chain, one way: read -> validate (the contract is the gate) -> prepare -> a list of
registered *steps* (:data:`STEPS`), each a small function of one :class:`Context` that adds
its sections to ``ctx.results`` or leaves them out with a one-line reason
(``ctx.omit(section, reason)``, shown by the pack): estimates (the headline estimator and
those it is compared with, event study, wild bootstrap, randomization inference,
Goodman-Bacon), instrumental variables, the headline in plain terms, design checks
(balance, attrition and Lee bounds, heterogeneity, multiple outcomes), power, scale
readiness. Randomness is seeded from ``[seeds] entropy``, each procedure with its own
purpose string. No step reaches back into another's internals: what a later step needs
from an earlier one travels in ``ctx.results`` or ``ctx.scratch``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impactkit import __version__
from impactkit.analysis.document import SCHEMA_VERSION, load_results
from impactkit.analysis.labels import Labels, periods_phrase, resolve_labels
from impactkit.analysis.outcome import effect_scale, effect_terms, money_terms, unit_words
from impactkit.analysis.prepare import outcome_column, prepare_panel
from impactkit.analysis.spec import AnalysisSpec, load_analysis
from impactkit.errors import CheckFailed, ImpactkitWarning, SpecError
from impactkit.provenance import sha256_file
from impactkit.results import to_plain

SCHEMA = SCHEMA_VERSION
# Below about 42 clusters cluster-robust t tests over-reject (MacKinnon & Webb 2018): a scale-up
# trial is recommended at least this many clusters even when power needs fewer.
MIN_CLUSTERS_FOR_CLUSTER_ROBUST = 42
SEED_PURPOSES = ("cs-multiplier", "sup-t", "wild-bootstrap", "randomization-inference",
                 "romano-wolf", "westfall-young", "scale-mc")
def estimator_labels() -> dict[str, str]:
    """Report labels: every registered DiD estimator (:mod:`impactkit.did.registry`) and ANCOVA."""
    from impactkit.did.registry import labels

    return {**labels(), "twfe": "Two-way fixed effects", "cs": "Callaway-Sant'Anna (doubly robust)",
            "sa": "Sun-Abraham (interaction-weighted)", "2x2": "2x2 difference-in-differences",
            "ancova": "ANCOVA (final period on baseline outcome)"}


ESTIMATOR_LABELS = estimator_labels()
#: steps that take the ``[design] weights`` column; every other step runs unweighted and the
#: results say so (``design.weights_not_used_by``)
WEIGHTED = {"cs": "Callaway-Sant'Anna", "twfe": "two-way fixed effects", "sa": "Sun-Abraham", "2x2": "2x2 DiD",
            "ancova": "ANCOVA", "wild_bootstrap": "wild bootstrap", "randomization_inference": "randomization inference",
            "iv": "instrumental variables", "balance": "balance", "lee_bounds": "Lee bounds"}
UNWEIGHTED = {"bacon": "Goodman-Bacon decomposition", "heterogeneity": "subgroup effects",
              "multiple_outcomes": "multiple-outcome corrections", "attrition": "attrition rates",
              "power": "power calculation"}


# ------------------------------------------------------------------------------------------
# context and registry
# ------------------------------------------------------------------------------------------
@dataclass
class Context:
    """Everything a step reads, and the results it writes into."""

    spec: AnalysisSpec
    panel: pd.DataFrame
    contract: Any
    report: Any
    hashes: dict[str, str]
    labels: Labels
    seed: int
    results: dict[str, Any] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)
    weights_used_by: list[str] = field(default_factory=list)
    weights_not_used_by: list[str] = field(default_factory=list)

    @property
    def y(self) -> str:
        return outcome_column(self.spec)

    @property
    def weights(self) -> str | None:
        return self.spec.design.weights

    def weighted(self, step: str) -> str | None:
        """The weights column for ``step`` (recorded as used), or ``None``."""
        if not self.weights:
            return None
        if step in WEIGHTED:
            if WEIGHTED[step] not in self.weights_used_by:
                self.weights_used_by.append(WEIGHTED[step])
            return self.weights
        if UNWEIGHTED.get(step, step) not in self.weights_not_used_by:
            self.weights_not_used_by.append(UNWEIGHTED.get(step, step))
        return None

    def omit(self, section: str, reason: str) -> None:
        self.omitted[section] = reason

    @property
    def waves(self) -> list[int]:
        return sorted(int(w) for w in self.panel[self.spec.design.time].unique())

    @property
    def baseline(self) -> int:
        d = self.spec.design
        return int(d.baseline) if d.baseline is not None else self.waves[0]

    @property
    def cohorts(self) -> list[int]:
        values = pd.to_numeric(self.panel[self.spec.design.cohort], errors="coerce").fillna(0)
        return sorted(int(g) for g in values.unique() if g > 0)


Step = Callable[[Context], None]
STEPS: list[tuple[str, Step]] = []


def step(name: str) -> Callable[[Step], Step]:
    """Register ``func`` as the next step of every analysis (order of registration)."""
    def register(func: Step) -> Step:
        STEPS.append((name, func))
        return func
    return register


# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------
def _row(estimator: str, method: str, outcome: str, values: dict[str, Any], *, n_units: Any = None,
         n_obs: Any = None, note: str = "") -> dict[str, Any]:
    return {"estimator": estimator, "method": method, "outcome": outcome,
            "estimate": values.get("estimate"), "std_error": values.get("std_error"),
            "conf_low": values.get("conf_low"), "conf_high": values.get("conf_high"),
            "p_value": values.get("p_value"), "n_units": n_units, "n_obs": n_obs, "note": note}


def _suppress_counts(rows: list[dict[str, Any]], key: str, min_cell: int) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        value = row.get(key)
        small = value is not None and value < min_cell
        out.append({**row, key: None if small else value, "suppressed": bool(small)})
    return out


def _frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return to_plain(frame.reset_index(drop=True))


def _words(column: str) -> str:
    return column.replace("_", " ")


# ------------------------------------------------------------------------------------------
# steps
# ------------------------------------------------------------------------------------------
@step("analysis")
def analysis_step(ctx: Context) -> None:
    spec, lab = ctx.spec, ctx.labels
    meta, o = spec.analysis, spec.outcomes
    scale = effect_scale(o.kind, o.transform)
    ctx.results["analysis"] = {
        "name": meta.name, "title": meta.title, "question": meta.question, "organisation": meta.organisation,
        "outcome": o.primary, "outcome_label": lab.outcome, "outcome_kind": o.kind, "transform": o.transform,
        "effect_scale": scale, "outcome_units": o.units, "effect_units": unit_words(scale, o.units, o.currency),
        "currency": o.currency, "currency_year": o.currency_year, "poverty_line": o.poverty_line,
        "unit_label": lab.unit, "unit_plural": lab.units, "cluster_label": lab.clusters,
        "treated_label": lab.treated, "control_label": lab.control, "take_up_label": lab.take_up,
        "period_label": lab.period, "horizon": spec.design.horizon, "min_cell": meta.min_cell,
        "recommendation": meta.recommendation, "subgroup_label": lab.subgroup,
        "pack": {"formats": list(spec.pack.formats), "audience": spec.pack.audience}}


@step("data")
def data_step(ctx: Context) -> None:
    spec, panel, contract = ctx.spec, ctx.panel, ctx.contract
    d, min_cell = spec.design, spec.analysis.min_cell
    lab = ctx.labels
    flow = (panel.assign(arm=np.where(panel["ever_treated"] == 1, lab.treated, lab.control))
            .groupby([d.time, "arm"], sort=True)[d.unit].nunique().reset_index()
            .rename(columns={d.time: "wave", d.unit: "units"}))
    base = panel[panel[d.time] == ctx.baseline]
    primary = spec.outcomes.primary
    section: dict[str, Any] = {
        "file": spec.data.file, "sha256": ctx.hashes[spec.data.file],
        "n_rows": int(len(panel)), "n_units": int(panel[d.unit].nunique()),
        "n_clusters": int(panel[d.cluster].nunique()), "cluster": d.cluster, "unit": d.unit, "time": d.time,
        "waves": ctx.waves, "baseline_wave": ctx.baseline, "design": design_kind(ctx),
        "personal_columns": list(contract.personal_columns),
        "never_treated_cohort": int(contract.panel.never_treated_cohort),
        "contract": {"id": contract.id, "version": contract.version, "file": spec.data.contract,
                     "sha256": ctx.hashes[spec.data.contract]},
        "sample_flow": _suppress_counts(_frame_records(flow), "units", min_cell),
        # mean of the outcome column as declared (levels for a logged outcome), treated arm, baseline
        "baseline_mean": float(pd.to_numeric(base.loc[base["ever_treated"] == 1, primary]).mean()),
    }
    if spec.outcomes.poverty_line is not None:
        observed = base[primary].dropna()
        section["baseline_poor_share"] = float((observed < spec.outcomes.poverty_line).mean())
    ctx.results["data"] = section


def design_kind(ctx: Context) -> str:
    """``'staggered'`` (several adoption periods), ``'two-period'`` or ``'single-adoption'``."""
    if len(ctx.cohorts) > 1:
        return "staggered"
    return "two-period" if len(ctx.waves) == 2 else "single-adoption"


@step("validation")
def validation_step(ctx: Context) -> None:
    results = ctx.report.results
    rules = [{"rule": r["rule"], "column": r.get("column"), "engine": r["engine"], "success": bool(r["success"]),
              "failed_rows": r.get("failed_rows"), "failed_share": r.get("failed_share")}
             for r in to_plain(results)]
    n_failed = int((~results["success"]).sum())
    ctx.results["validation"] = {"ok": bool(ctx.report.ok), "n_rules": int(len(results)),
                                 "n_passed": int(len(results) - n_failed), "n_failed": n_failed, "rules": rules}


def _n_units_with_outcome(ctx: Context) -> int:
    return int(ctx.panel.dropna(subset=[ctx.y])[ctx.spec.design.unit].nunique())


def first_window(ctx: Context) -> tuple[int, int, int]:
    """(first cohort, its last pre-period, the period ``horizon`` periods after it starts)."""
    first = ctx.cohorts[0]
    pre = max(w for w in ctx.waves if w < first)
    post = min(first + ctx.spec.design.horizon, ctx.waves[-1])
    return first, pre, post


def fitted_cs(ctx: Context):
    """The Callaway-Sant'Anna fit the spec declares, computed once per analysis (``ctx.scratch``)."""
    if "cs" not in ctx.scratch:
        from impactkit.did import did

        d, e = ctx.spec.design, ctx.spec.estimators
        ctx.scratch["cs"] = did(ctx.panel, method="cs", y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort,
                                covariates=e.covariates or None, control=e.cs_control, est=e.cs_est,
                                cluster=d.cluster, weights=ctx.weighted("cs"), bootstrap=True,
                                biters=e.multiplier_draws, seed=ctx.seed, allow_unbalanced=e.cs_allow_unbalanced)
    return ctx.scratch["cs"]


def _estimate_cs(ctx: Context) -> dict[str, Any]:
    d, e = ctx.spec.design, ctx.spec.estimators
    simple = fitted_cs(ctx).aggregate("simple")
    return _row(ESTIMATOR_LABELS["cs"], "cs", ctx.y, vars(simple), n_units=_n_units_with_outcome(ctx),
                note=f"{e.cs_control}-treated comparison; analytic influence-function SEs clustered by {d.cluster}")


def _estimate_twfe(ctx: Context) -> dict[str, Any]:
    from impactkit.did import did

    d = ctx.spec.design
    twfe = did(ctx.panel, method="twfe", y=ctx.y, unit=d.unit, time=d.time, treated=d.treated, cohort=d.cohort,
               cluster=d.cluster, weights=ctx.weighted("twfe"))
    ctx.scratch["twfe"] = twfe
    row = twfe.tidy().iloc[0].to_dict()
    return _row(ESTIMATOR_LABELS["twfe"], "twfe", ctx.y, row, n_units=int(twfe.n_units), n_obs=int(twfe.n_obs),
                note=f"unit and period fixed effects; CRV1 SEs clustered by {d.cluster}")


def _estimate_sa(ctx: Context) -> dict[str, Any]:
    from impactkit.did import did

    d = ctx.spec.design
    sa = did(ctx.panel, method="sa", y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort, cluster=d.cluster,
             weights=ctx.weighted("sa"), seed=ctx.seed)
    return _row(ESTIMATOR_LABELS["sa"], "sa", ctx.y, sa.att(), n_units=_n_units_with_outcome(ctx),
                n_obs=int(sa.n_obs), note="never-treated cohort as control; delta-method SEs")


def _estimate_2x2(ctx: Context) -> dict[str, Any]:
    from impactkit.did import did

    d = ctx.spec.design
    panel = ctx.panel
    first, pre, post = first_window(ctx)
    cohort = pd.to_numeric(panel[d.cohort]).fillna(0)
    window = panel[cohort.isin([first, 0])]
    note = f"{ctx.labels.treated} units (cohort {first}) vs never treated, {pre} and {post}"
    res = did(window, method="2x2", y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort, cluster=d.cluster,
              weights=ctx.weighted("2x2"), periods=(pre, post))
    row = res.tidy().iloc[0].to_dict()
    return _row(ESTIMATOR_LABELS["2x2"], "2x2", ctx.y, row, n_units=int(res.n_units), n_obs=int(res.n_obs),
                note=note + f"; CRV1 SEs clustered by {d.cluster}")


def ancova_frame(ctx: Context, extra: list[str] | None = None) -> pd.DataFrame:
    """Final-period rows with the baseline outcome (and ``extra`` columns) as ``<col>_baseline``."""
    columns = [ctx.y, *(extra or [])]
    return _final_wave_frame(ctx, columns).dropna(subset=[ctx.y, f"{ctx.y}_baseline"])


def _estimate_ancova(ctx: Context) -> dict[str, Any]:
    """ANCOVA: final-period outcome on assignment and the baseline outcome (McKenzie 2012)."""
    from impactkit.checks.regression import robust_ols

    d = ctx.spec.design
    controls = list(d.controls)
    frame = ancova_frame(ctx, controls).dropna(subset=[f"{c}_baseline" for c in controls])
    X, y = _ancova_design(frame, ctx.y, controls)
    w = ctx.weighted("ancova")
    fit = robust_ols(y, X, clusters=frame[d.cluster].to_numpy(),
                     weights=frame[w].to_numpy(float) if w else None)
    est, se, p = fit.t_test(1)
    from scipy import stats

    q = float(stats.t.ppf(0.975, fit.df_resid))
    ctx.scratch["ancova"] = {"frame": frame, "controls": controls, "estimate": est}
    return _row(ESTIMATOR_LABELS["ancova"], "ancova", ctx.y,
                {"estimate": est, "std_error": se, "conf_low": est - q * se, "conf_high": est + q * se,
                 "p_value": p}, n_units=int(frame[d.unit].nunique()), n_obs=int(len(frame)),
                note=f"final period {ctx.waves[-1]}, baseline {ctx.baseline}; CR1 SEs clustered by {d.cluster}")


def _ancova_design(frame: pd.DataFrame, y: str, controls: list[str]) -> tuple[np.ndarray, np.ndarray]:
    cols = [np.ones(len(frame)), frame["ever_treated"].to_numpy(float), frame[f"{y}_baseline"].to_numpy(float)]
    cols += [pd.to_numeric(frame[f"{c}_baseline"]).to_numpy(float) for c in controls]
    return np.column_stack(cols), frame[y].to_numpy(float)


def _estimate_registered(ctx: Context, method: str) -> dict[str, Any]:
    """Any other registered DiD estimator (:mod:`impactkit.did.registry`) on the design's unit,
    period, cohort and cluster columns: its ``att()`` row. A method that needs columns the
    design does not name (a partition, a non-binary treatment) is refused by :func:`did`."""
    from impactkit.did import did

    d = ctx.spec.design
    res = did(ctx.panel, method=method, y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort, cluster=d.cluster)
    return _row(ESTIMATOR_LABELS[method], method, ctx.y, res.att(), n_units=_n_units_with_outcome(ctx),
                note=f"registered estimator '{method}'; SEs clustered by {d.cluster}")


ESTIMATORS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "cs": _estimate_cs, "twfe": _estimate_twfe, "sa": _estimate_sa, "2x2": _estimate_2x2, "ancova": _estimate_ancova}


@step("estimators")
def estimators_step(ctx: Context) -> None:
    """The headline estimator and every one ``compare`` lists, in a fixed order."""
    e = ctx.spec.estimators
    wanted = [m for m in (*ESTIMATORS, *e.compare, e.headline) if m in e.compare or m == e.headline]
    rows = {m: ESTIMATORS[m](ctx) if m in ESTIMATORS else _estimate_registered(ctx, m)
            for m in dict.fromkeys(wanted)}
    if "twfe" not in ctx.scratch:
        ESTIMATORS["twfe"](ctx)  # TWFE backs the wild bootstrap and randomization inference
    ctx.results["estimators"] = list(rows.values())
    ctx.scratch["headline_row"] = rows[e.headline]


@step("event_study")
def event_study_step(ctx: Context) -> None:
    if not ctx.spec.estimators.event_study:
        ctx.omit("event_study", "not requested ([estimators] event_study = false)")
        return
    cs = fitted_cs(ctx)
    dynamic = cs.aggregate("dynamic")
    rows = dynamic.rows.copy()
    band = dynamic.band()
    if band is not None:
        rows["band_low"], rows["band_high"] = band["band_low"].to_numpy(), band["band_high"].to_numpy()
    keep = [c for c in ("event_time", "estimate", "std_error", "conf_low", "conf_high", "band_low", "band_high", "n")
            if c in rows.columns]
    rows = rows[keep].rename(columns={"n": "n_treated_units"})
    horizon = ctx.spec.design.horizon
    at = rows.loc[rows["event_time"] == horizon] if "event_time" in rows.columns else rows.iloc[0:0]
    if len(at):
        ctx.scratch["at_horizon"] = {k: float(at.iloc[0][k]) for k in ("estimate", "std_error", "conf_low",
                                                                         "conf_high")}
    pre = rows.loc[rows["event_time"] < 0] if "event_time" in rows.columns else rows.iloc[0:0]
    pretrend = None
    if len(pre):
        test = cs.pretrend_test()
        pretrend = {"statistic": test.statistic, "df": test.df, "p_value": test.p_value}
    else:
        ctx.omit("pretrend", "no period before the last pre-treatment period: pre-trends cannot be tested")
    ctx.results["event_study"] = {"estimator": ESTIMATOR_LABELS["cs"], "rows": _frame_records(rows),
                                  "pretrend": pretrend, "critical_value": dynamic.critical_value}


@step("inference")
def inference_step(ctx: Context) -> None:
    """Wild cluster bootstrap and randomization inference of the TWFE estimate."""
    twfe = ctx.scratch["twfe"]
    e = ctx.spec.estimators
    ctx.weighted("wild_bootstrap")
    wild = twfe.wild_bootstrap(B=e.wild_bootstrap_draws, weights=e.wild_bootstrap_weights, seed=ctx.seed)
    w = wild.tidy().iloc[0].to_dict()
    ctx.results["wild_bootstrap"] = {"estimator": ESTIMATOR_LABELS["twfe"], "estimate": w["estimate"],
                                     "p_value": w["p_value"], "conf_low": w["conf_low"], "conf_high": w["conf_high"],
                                     "B": int(w["B"]), "weights": w["weights"], "n_clusters": int(w["n_clusters"])}
    ctx.weighted("randomization_inference")
    ri = twfe.randomization_inference(n_permutations=e.randomization_draws, seed=ctx.seed)
    r = ri.tidy().iloc[0].to_dict()
    ctx.results["randomization_inference"] = {"estimator": ESTIMATOR_LABELS["twfe"], "p_value": r.get("p_value"),
                                              "n_permutations": r.get("n_permutations", e.randomization_draws)}
    if "ancova" in ctx.scratch:
        ctx.results["randomization_inference_ancova"] = ancova_randomization_inference(ctx)
    ctx.scratch["n_clusters"] = int(twfe.n_clusters or ctx.panel[ctx.spec.design.cluster].nunique())


def ancova_randomization_inference(ctx: Context) -> dict[str, Any]:
    """Fisher randomization p-value of the ANCOVA coefficient, re-assigning whole clusters.

    Treatment is permuted across clusters (the assignment unit of a cluster-randomised
    trial), keeping the number of treated clusters; the p-value counts permuted |b| at least
    the observed |b|, the observed assignment included (Young 2019, *QJE* 134(2)).
    """
    from impactkit.numerics.ols import least_squares
    from impactkit.seeds import rng

    d = ctx.spec.design
    info = ctx.scratch["ancova"]
    frame, controls, observed = info["frame"], info["controls"], info["estimate"]
    X, y = _ancova_design(frame, ctx.y, controls)
    w = frame[ctx.weights].to_numpy(float) if ctx.weights else None
    labels, codes = np.unique(frame[d.cluster].to_numpy(), return_inverse=True)
    arm = pd.Series(frame["ever_treated"].to_numpy(), index=codes).groupby(level=0).max().to_numpy()
    gen = rng(ctx.seed, "randomization-inference", "ancova")
    draws = ctx.spec.estimators.randomization_draws
    extreme = 1
    for _ in range(draws):
        X[:, 1] = gen.permutation(arm)[codes]
        b = least_squares(y, X, w, solver="svd").coef[1]
        extreme += abs(b) >= abs(observed) - 1e-12
    return {"estimator": ESTIMATOR_LABELS["ancova"], "p_value": extreme / (draws + 1), "n_permutations": draws,
            "n_clusters": int(labels.size)}


@step("bacon")
def bacon_step(ctx: Context) -> None:
    from impactkit.did.bacon import bacon_decomposition

    if not ctx.spec.estimators.bacon:
        ctx.omit("bacon", "not requested ([estimators] bacon = false)")
        return
    if len(ctx.cohorts) < 2:
        ctx.omit("bacon", "one adoption period: TWFE is a single 2x2 comparison, nothing to decompose")
        return
    d = ctx.spec.design
    ctx.weighted("bacon")
    balanced = _balanced_subpanel(ctx.panel, d.unit, d.time, ctx.y)
    bacon = bacon_decomposition(balanced, cohort=d.cohort, y=ctx.y, unit=d.unit, time=d.time)
    ctx.results["bacon"] = [{"comparison": r["type"], "weight": r["weight"], "estimate": r["estimate"]}
                            for r in to_plain(bacon.by_type())]


def _balanced_subpanel(panel: pd.DataFrame, unit: str, time: str, y: str) -> pd.DataFrame:
    """Units observed, with the outcome, in every wave (Goodman-Bacon needs a balanced panel)."""
    observed = panel.dropna(subset=[y])
    n_waves = observed[time].nunique()
    complete = observed.groupby(unit)[time].transform("nunique") == n_waves
    return observed.loc[complete].reset_index(drop=True)


@step("iv")
def iv_step(ctx: Context) -> None:
    """Encouragement design: take-up instrumented by assignment.

    To keep the 2SLS estimand clean under staggered adoption (a TWFE-IV would inherit the
    forbidden comparisons of TWFE; Goodman-Bacon 2021), the IV runs on the 2x2 of the first
    cohort against never-treated units, in its last pre-period and ``horizon`` periods after
    the roll-out, with unit and period effects absorbed: the Wald-DiD of de Chaisemartin &
    D'Haultfoeuille (2018) with one-sided non-compliance, i.e. the effect on those who take
    the programme up, ``horizon`` periods after it arrived.
    """
    from impactkit.iv import encouragement

    spec, d, lab = ctx.spec, ctx.spec.design, ctx.labels
    if not d.take_up:
        ctx.omit("iv", "no take-up column declared ([design] take_up)")
        return
    if not spec.estimators.iv:
        ctx.omit("iv", "not requested ([estimators] iv = false)")
        return
    y = ctx.y
    panel = ctx.panel
    first, pre, post = first_window(ctx)
    cohort = pd.to_numeric(panel[d.cohort]).fillna(0)
    window = panel[cohort.isin([first, 0]) & panel[d.time].isin([pre, post])].dropna(subset=[y])
    characteristics = [c for c in d.characteristics if c in window.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        result = encouragement(window, y=y, take_up=d.take_up, instrument=d.treated, cluster=d.cluster,
                               absorb=[d.unit, d.time], characteristics=characteristics,
                               weights=ctx.weighted("iv"))
    est = {r["estimand"]: r for r in _frame_records(result.estimates)}
    diag = result.iv_result.diagnostics
    ar_set = getattr(result.iv_result, "ar_set", None)
    ar = ar_set.to_dict() if ar_set is not None else {}
    weak = {"kp_f": diag.get("kleibergen_paap_f"), "cragg_donald_f": diag.get("cragg_donald_f"),
            "effective_f": diag.get("effective_f"), "effective_f_critical": diag.get("effective_f_critical_value"),
            "ar_set": {"kind": ar.get("kind"), "intervals": ar.get("intervals"), "level": ar.get("level")}}
    means = [{"covariate": r["characteristic"], "compliers": r["complier_mean"], "population": r["population_mean"]}
             for r in _frame_records(result.complier_means)]
    iv = {"itt": est["itt"], "first_stage": est["first_stage"], "late": est["late"], "weak": weak,
          "complier_means": means, "instrument": d.treated, "take_up": d.take_up,
          "window": {"cohort": first, "pre": pre, "post": post, "n_clusters": int(window[d.cluster].nunique())}}
    ctx.results["iv"] = iv
    when = (f"{periods_phrase(post - first, lab.period)} after roll-out" if post > first else f"in {post}")
    label = f"2SLS: effect on {lab.units} who {lab.take_up}, {when} (LATE)"
    ctx.scratch["iv_label"] = label
    late = iv["late"]
    ctx.results["estimators"].append(_row(
        label, "iv", y, late, n_obs=late.get("n"),
        note=f"cohort {first} vs never treated, {pre} and {post}; {d.take_up} instrumented by {d.treated}; "
             f"unit and period effects absorbed"))


@step("headline")
def headline_step(ctx: Context) -> None:
    """The effect in its right terms (:mod:`impactkit.analysis.outcome`)."""
    spec, lab = ctx.spec, ctx.labels
    o = spec.outcomes
    scale = effect_scale(o.kind, o.transform)
    head = ctx.scratch["headline_row"]
    base = ctx.results["data"]["baseline_mean"]
    out = {"estimator": head["estimator"], "method": head["method"], "outcome": head["outcome"], "scale": scale,
           "units": unit_words(scale, o.units, o.currency),
           "population": (f"all {lab.treated} {lab.units} (intention to treat)" if spec.design.cluster == spec.design.unit
                          else f"all {lab.units} of {lab.treated} {lab.clusters} (intention to treat)"),
           "estimate": head["estimate"], "std_error": head["std_error"], "conf_low": head["conf_low"],
           "conf_high": head["conf_high"], "p_value": head["p_value"],
           "n_units": _n_units_with_outcome(ctx), "n_clusters": ctx.scratch["n_clusters"]}
    out.update(effect_terms(head["estimate"], head["conf_low"], head["conf_high"], scale))
    money = money_terms(o.kind, scale, head["estimate"], head["conf_low"], head["conf_high"], base)
    if money:
        out.update({"money_per_unit": money["money"], "money_low": money["money_low"],
                    "money_high": money["money_high"]})
    at = ctx.scratch.get("at_horizon")
    if at is not None and design_kind(ctx) != "two-period":
        out["at_horizon"] = {**at, "event_time": spec.design.horizon,
                             **effect_terms(at["estimate"], at["conf_low"], at["conf_high"], scale)}
    iv = ctx.results.get("iv")
    if iv is not None:
        late = iv["late"]
        out["tot"] = {"estimator": ctx.scratch["iv_label"], "estimate": late["estimate"],
                      "conf_low": late["conf_low"], "conf_high": late["conf_high"],
                      **effect_terms(late["estimate"], late["conf_low"], late["conf_high"], scale),
                      "take_up": iv["first_stage"]["estimate"]}
    ctx.results["headline"] = out


def _final_wave_frame(ctx: Context, columns: list[str]) -> pd.DataFrame:
    """Final-period rows with baseline values of ``columns`` as ``<col>_baseline``."""
    d = ctx.spec.design
    final = ctx.panel[ctx.panel[d.time] == ctx.waves[-1]]
    base = ctx.panel.loc[ctx.panel[d.time] == ctx.baseline, [d.unit, *dict.fromkeys(columns)]]
    base = base.rename(columns={c: f"{c}_baseline" for c in columns})
    return final.merge(base, on=d.unit, how="inner", validate="one_to_one")


@step("balance")
def balance_step(ctx: Context) -> None:
    from impactkit.checks import balance_table

    d, c = ctx.spec.design, ctx.spec.checks
    if not c.balance_covariates:
        ctx.omit("balance", "no baseline covariates declared ([checks] balance_covariates)")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        bal = balance_table(ctx.panel, arm="ever_treated", covariates=c.balance_covariates, cluster=d.cluster,
                            time=d.time, pre_period=ctx.baseline, unit=d.unit, min_cell=ctx.spec.analysis.min_cell,
                            weights=ctx.weighted("balance"))
    rows = [{"covariate": r["covariate"], "mean_treated": r.get("mean_treated"),
             "mean_control": r.get("mean_control"), "difference": r.get("difference"),
             "normalized_difference": r.get("normalized_difference"), "p_value": r.get("p_value"),
             "suppressed": bool(r.get("suppressed", False))} for r in _frame_records(bal.tidy())]
    ctx.results["balance"] = {"rows": rows, "joint_f": bal.joint_f, "joint_p": bal.joint_p, "wave": ctx.baseline}


@step("attrition")
def attrition_step(ctx: Context) -> None:
    """Attrition by arm; Lee (2009) bounds only when units were lost."""
    from impactkit.checks import attrition, lee_bounds

    d, c = ctx.spec.design, ctx.spec.checks
    ctx.weighted("attrition")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        att = attrition(ctx.panel, unit=d.unit, time=d.time, arm="ever_treated", baseline=ctx.baseline,
                        covariates=list(c.attrition_covariates) or None, cluster=d.cluster)
    section: dict[str, Any] = {"rows": _frame_records(att.tidy()), "differential_p": att.differential_attrition_p,
                               "covariate_test": to_plain(att.covariate_test), "final_wave": ctx.waves[-1]}
    lee_frame = _lee_frame(ctx)
    lost = int((lee_frame["observed"] == 0).sum())
    if lost == 0:
        ctx.omit("lee_bounds", "no attrition: every baseline unit is observed in the final period, so there is "
                               "nothing to bound")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImpactkitWarning)
            lee = lee_bounds(lee_frame, y=ctx.y, arm="ever_treated", observed="observed",
                             weights=ctx.weighted("lee_bounds"))
        section["lee_bounds"] = {"lower": lee.lower, "upper": lee.upper, "ci_low": lee.conf_low,
                                 "ci_high": lee.conf_high, "se_lower": lee.se_lower, "se_upper": lee.se_upper,
                                 "trimming_share": lee.trim_share, "trimmed_arm": lee.trimmed_arm, "n": lee.n,
                                 "scale": ctx.results["analysis"]["effect_scale"],
                                 "outcome": "change since baseline"}
    ctx.results["attrition"] = section


def _lee_frame(ctx: Context) -> pd.DataFrame:
    """Baseline units with their change in the outcome since baseline (``ctx.y``; missing when
    not observed in the final period): Lee bounds then bound the difference-in-differences
    effect for units observed either way, not a final-period level gap between arms that
    differed at baseline. Units without a baseline outcome are left out."""
    d = ctx.spec.design
    keep = [d.unit, "ever_treated", ctx.y] + ([d.weights] if d.weights else [])
    units = ctx.panel.loc[ctx.panel[d.time] == ctx.baseline, keep].dropna(subset=[ctx.y])
    units = units.rename(columns={ctx.y: "_baseline_y"})
    final = ctx.panel.loc[ctx.panel[d.time] == ctx.waves[-1], [d.unit, ctx.y]]
    frame = units.merge(final, on=d.unit, how="left", validate="one_to_one")
    frame[ctx.y] = frame[ctx.y] - frame.pop("_baseline_y")
    frame["observed"] = frame[ctx.y].notna().astype(np.int64)
    return frame


def _final_controls(ctx: Context) -> tuple[pd.DataFrame, list[str]]:
    controls_raw = [c for c in ctx.spec.design.controls if c in ctx.panel.columns]
    final = _final_wave_frame(ctx, [ctx.y, *controls_raw])
    return final, [f"{ctx.y}_baseline"] + [f"{c}_baseline" for c in controls_raw]


def _comparison_design(ctx: Context) -> str:
    lab = ctx.labels
    controls = ["baseline outcome"] + [_words(c) for c in ctx.spec.design.controls]
    named = controls[0] if len(controls) == 1 else ", ".join(controls[:-1]) + " and " + controls[-1]
    return f"final {lab.period}, {lab.treated} vs {lab.control} {lab.clusters}, {named} as controls"


@step("heterogeneity")
def heterogeneity_step(ctx: Context) -> None:
    from impactkit.checks import heterogeneity

    d, lab = ctx.spec.design, ctx.labels
    if not d.subgroup:
        ctx.omit("heterogeneity", "no subgroup declared ([design] subgroup)")
        return
    ctx.weighted("heterogeneity")
    final, controls = _final_controls(ctx)
    het_frame = final.dropna(subset=[ctx.y, *controls])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        het = heterogeneity(het_frame, y=ctx.y, treat="ever_treated", by=d.subgroup, controls=controls,
                            cluster=d.cluster, min_cell=ctx.spec.analysis.min_cell)
    label = lab.subgroup or d.subgroup
    names = {"0": f"other {lab.units}", "1": label}
    rows = []
    for r in _frame_records(het.tidy()):
        group = str(r.get("group"))
        subgroup = names.get(group, group) if r.get("term") == "effect" else f"difference ({label} - other)"
        rows.append({"subgroup": subgroup, "term": r.get("term"), "estimate": r.get("estimate"),
                     "std_error": r.get("std_error"), "conf_low": r.get("conf_low"), "conf_high": r.get("conf_high"),
                     "p_value": r.get("p_value"), "n_units": r.get("n"),
                     "suppressed": bool(r.get("suppressed", False))})
    ctx.results["heterogeneity"] = {"by": d.subgroup, "label": label, "interaction_p": het.test_p, "rows": rows,
                                    "design": _comparison_design(ctx)}


@step("multiple_outcomes")
def multiple_outcomes_step(ctx: Context) -> None:
    from impactkit.checks import multiple_testing

    family = list(ctx.spec.outcomes.family)  # checked against the data by prepare_panel
    if len(family) < 2:
        ctx.omit("multiple_outcomes", "fewer than two outcomes in [outcomes] family: nothing to correct")
        return
    ctx.weighted("multiple_outcomes")
    final, controls = _final_controls(ctx)
    mt_frame = final.dropna(subset=[*family, *controls])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        mt = multiple_testing(mt_frame, outcomes=family, treat="ever_treated", controls=controls,
                              cluster=ctx.spec.design.cluster, B=ctx.spec.checks.multiple_testing_draws,
                              seed=ctx.seed)
    keep = ("outcome", "estimate", "std_error", "p_value", "holm", "romano_wolf", "westfall_young", "sharpened_q")
    ctx.results["multiple_outcomes"] = [{**{k: r.get(k) for k in keep}, "n_units": r.get("n")}
                                        for r in _frame_records(mt.tidy())]


@step("power")
def power_step(ctx: Context) -> None:
    """How large a cluster-randomised scale-up trial must be (Duflo, Glennerster & Kremer 2007)."""
    from impactkit.checks import achieved_power, mde, required_sample

    d = ctx.spec.design
    y = ctx.y
    panel, waves = ctx.panel, ctx.waves
    ctx.weighted("power")
    iv = ctx.results.get("iv")
    take_up = iv["first_stage"]["estimate"] if iv else None
    itt = ctx.results["headline"]["estimate"]
    base = panel.loc[panel[d.time] == ctx.baseline, list(dict.fromkeys([d.unit, d.cluster, y]))].dropna()
    # clustered by the unit itself: one unit per cluster, no intra-cluster correlation to estimate
    icc = 0.0 if d.cluster == d.unit else _icc(base[y].to_numpy(), base[d.cluster].to_numpy())
    cluster_size = float(base.groupby(d.cluster).size().mean())
    sd = float(base[y].std(ddof=1))
    nxt = panel.loc[panel[d.time] == waves[1], [d.unit, y]].dropna().merge(base[[d.unit, y]], on=d.unit,
                                                                          suffixes=("", "_base"))
    r2 = float(np.corrcoef(nxt[y], nxt[f"{y}_base"])[0, 1] ** 2)
    n_base = panel.loc[panel[d.time] == ctx.baseline, d.unit].nunique()
    n_final = panel.loc[panel[d.time] == waves[-1], d.unit].nunique()
    design = {"sd": sd, "icc": icc, "cluster_size": cluster_size, "take_up": float(take_up or 1.0), "r2": r2,
              "attrition": 1 - n_final / n_base}
    n_units = panel[d.unit].nunique()
    effect = ctx.spec.checks.power_effect if ctx.spec.checks.power_effect is not None else abs(itt) / 2
    effect_on_compliers = effect / design["take_up"]
    mde_now = mde(n_units, distribution="t", **design)
    required = required_sample(effect_on_compliers, distribution="t", **design)
    n_clusters = int(math.ceil(required / cluster_size))
    ctx.results["power"] = {
        "mde": mde_now, "mde_itt": mde_now * design["take_up"], "target_effect_itt": effect,
        "design_power": achieved_power(effect_on_compliers, n_units, distribution="t", **design),
        "n_units_required": required, "n_clusters_required": n_clusters,
        "n_clusters_recommended": max(n_clusters, MIN_CLUSTERS_FOR_CLUSTER_ROBUST),
        "assumptions": {**design, "alpha": 0.05, "power": 0.8, "estimator": "ancova", "distribution": "t"}}


def _icc(values: np.ndarray, clusters: np.ndarray) -> float:
    """One-way ANOVA estimator of the intra-cluster correlation."""
    frame = pd.DataFrame({"y": values, "g": clusters})
    groups = frame.groupby("g")["y"]
    k, n = groups.ngroups, len(frame)
    sizes = groups.size().to_numpy(float)
    grand = frame["y"].mean()
    msb = float((sizes * (groups.mean().to_numpy() - grand) ** 2).sum() / (k - 1))
    msw = float(((frame["y"] - groups.transform("mean")) ** 2).sum() / (n - k))
    n0 = (n - (sizes**2).sum() / n) / (k - 1)
    return max(0.0, (msb - msw) / (msb + (n0 - 1) * msw))


def evidence_facts(spec: AnalysisSpec, results: dict[str, Any]) -> dict[str, Any]:
    """What the scale-readiness model needs from this analysis (``score(estimates=...)``):
    the design, the headline effect as a proportion with its CI (log outcomes only), the
    design checks that grade evidence down, the design's power, and the yearly money benefit
    per participant (money outcomes only)."""
    head = results["headline"]
    es = results.get("event_study") or {}
    facts = {"design": "did", "estimate": head.get("percent"), "conf_low": head.get("percent_low"),
             "conf_high": head.get("percent_high"),
             "pretrend_p": (es.get("pretrend") or {}).get("p_value"), "n_clusters": head["n_clusters"],
             "differential_attrition_p": results.get("attrition", {}).get("differential_p"),
             "balance_joint_p": results.get("balance", {}).get("joint_p"),
             "power": results.get("power", {}).get("design_power"),
             "benefit_per_participant_year": head.get("money_per_unit"),
             "benefit_per_participant_year_low": head.get("money_low"),
             "benefit_per_participant_year_high": head.get("money_high"),
             "benefit_currency": spec.outcomes.currency,
             # the PSP uses power only when it is computed for a declared target effect, not the observed one
             "power_basis": "design" if spec.checks.power_effect is not None else "observed",
             "benefit_price_year": spec.outcomes.currency_year}
    # a suppressed or undefined check (NaN) is unknown to the scale model, not a number
    return {k: v for k, v in facts.items()
            if v is not None and not (isinstance(v, float) and not math.isfinite(v))}


def scale_accounts(spec: AnalysisSpec) -> dict[str, Any] | None:
    """Programme accounts of the focus intervention (``[scale] costs``), if declared."""
    from impactkit.scale import load_accounts

    focus = spec.scale.intervention
    return {focus: load_accounts(spec.path(spec.scale.costs))} if focus and spec.scale.costs else None


@step("scale")
def scale_step(ctx: Context) -> None:
    from impactkit.scale import score

    spec = ctx.spec
    if not spec.scale.portfolio:
        ctx.omit("scale", "no portfolio declared ([scale] portfolio)")
        return
    facts = evidence_facts(spec, ctx.results)
    focus = spec.scale.intervention
    estimates = {focus: facts} if focus else None
    # draws and seed: the portfolio's own (unless analysis.toml overrides the draws), so that
    # `impactkit score` on the same portfolio shows the same numbers as the pack
    result = score(spec.path(spec.scale.portfolio), estimates=estimates, costs=scale_accounts(spec),
                   draws=spec.scale.draws)
    scale = result.to_pack(focus)
    ctx.results["cost"] = scale.pop("cost", None)
    ctx.results["scale"] = scale
    ctx.scratch["scale_mc"] = (scale.get("options") or {}).get("seed")


# ------------------------------------------------------------------------------------------
# the whole chain
# ------------------------------------------------------------------------------------------
def _input_hashes(spec: AnalysisSpec) -> dict[str, str]:
    return {rel: sha256_file(path) for rel, path in spec.input_files().items()}


def refuse_personal_roles(spec: AnalysisSpec, personal: tuple[str, ...]) -> None:
    """SpecError when a design role, outcome or covariate names a personal column (values would print)."""
    from impactkit.privacy import personal_roles

    dumped = spec.model_dump(exclude={"folder"})
    roles = {f"{section}.{key}": value for section in ("design", "outcomes", "estimators", "checks")
             for key, value in (dumped.get(section) or {}).items()}
    hits = personal_roles(roles, personal)
    if hits:
        field, column = hits[0]
        raise SpecError(f"{spec.folder / 'analysis.toml'}: field '{field}' = '{column}': a personal column cannot "
                        "be a unit, subgroup, cluster, outcome or covariate (its values would reach the outputs)")


def run_analysis(analysis_dir: str | Path | AnalysisSpec,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every step an analysis declares and return the results document.

    Raises :class:`impactkit.errors.SpecError` / ``InputError`` (exit 2) for unusable
    input and :class:`impactkit.errors.CheckFailed` (exit 1) when the data fail their
    contract: no estimate is made from a panel that is not what the analysis assumes.
    """
    from threadpoolctl import threadpool_limits

    spec = analysis_dir if isinstance(analysis_dir, AnalysisSpec) else load_analysis(analysis_dir)
    # One BLAS thread: the numbers then do not depend on the machine's core count (and the
    # small dense algebra here runs faster without thread hand-offs).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImpactkitWarning)
        results = _run(spec, progress)
    notes = [str(w.message) for w in caught if issubclass(w.category, ImpactkitWarning)]
    results["warnings"] = sorted(set(notes))
    plain = to_plain(results)
    load_results(plain)  # every section matches its typed model (docs/results-schema.json), else a bug
    return plain


def _load(spec: AnalysisSpec):
    from impactkit.contracts import load_contract, validate
    from impactkit.io import read_table

    contract = load_contract(spec.path(spec.data.contract))
    refuse_personal_roles(spec, contract.personal_columns)
    frame = read_table(spec.path(spec.data.file), contract=contract)
    report = validate(frame, contract)
    if not report.ok:
        failed = report.failed
        names = ", ".join(f"{r['rule']}({r['column']})" if r.get("column") else str(r["rule"])
                          for r in to_plain(failed.head(5)))
        raise CheckFailed(f"{spec.data.file}: {len(failed)} contract rule(s) fail: {names}; "
                          f"see `impactkit validate {spec.path(spec.data.file)} --contract {spec.path(spec.data.contract)}`")
    return contract, frame, report


def build_context(spec: AnalysisSpec) -> Context:
    """Read, validate and prepare the data of ``spec``: the context every step runs on."""
    hashes = _input_hashes(spec)
    contract, frame, report = _load(spec)
    panel = prepare_panel(frame, spec, never_treated_cohort=contract.panel.never_treated_cohort)
    return Context(spec=spec, panel=panel, contract=contract, report=report, hashes=hashes,
                   labels=resolve_labels(spec, contract), seed=spec.seeds.entropy)


def _run(spec: AnalysisSpec, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    ctx = build_context(spec)
    results = ctx.results
    results["schema"] = SCHEMA
    for name, func in STEPS:
        if progress is not None:
            progress(name)
        func(ctx)
    results["seeds"] = {"entropy": ctx.seed, "purposes": list(SEED_PURPOSES)}
    if "scale_mc" in ctx.scratch:
        results["seeds"]["scale_mc"] = ctx.scratch["scale_mc"]
    if spec.design.weights:
        results["data"]["weights"] = {"column": spec.design.weights, "used_by": ctx.weights_used_by,
                                      "not_used_by": ctx.weights_not_used_by}
        if ctx.weights_not_used_by:
            warnings.warn(f"weights '{spec.design.weights}' not used by {', '.join(ctx.weights_not_used_by)} "
                          "(they take no weights): those are unweighted", ImpactkitWarning, stacklevel=2)
    results["omitted"] = dict(sorted(ctx.omitted.items()))
    results["provenance"] = {"impactkit_version": __version__, "inputs": ctx.hashes,
                             "analysis_folder": spec.folder.name,
                             "command": f"impactkit rerun {_shown_folder(spec.folder)}"}
    return results


def _shown_folder(folder: Path) -> str:
    """The analysis folder as a user would type it: relative to the working folder when
    inside it, else its name (results never hold absolute paths)."""
    import os

    try:
        rel = Path(os.path.relpath(folder.resolve(), Path.cwd().resolve()))
    except ValueError:
        return folder.name
    return folder.name if rel.parts[:1] == ("..",) else rel.as_posix()
