"""Estimation steps: the analysis and data sections, validation, the estimators (headline and
comparisons, from the registry :data:`ESTIMATORS`), event study, inference (wild bootstrap,
randomization inference), Goodman-Bacon, instrumental variables and the headline in its terms."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from impactkit.analysis.context import (ESTIMATOR_LABELS, Context, design_kind, estimate_row, final_wave_frame,
                                        first_window, frame_records, step, suppress_counts)
from impactkit.analysis.labels import periods_phrase
from impactkit.analysis.outcome import effect_scale, effect_terms, money_terms, unit_words
from impactkit.errors import ImpactkitWarning
from impactkit.results import to_plain


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
    spec, panel = ctx.spec, ctx.panel
    d = spec.design
    flow = (panel.groupby([d.time, "ever_treated"], sort=True)[d.unit].nunique())
    base = panel[panel[d.time] == ctx.baseline]
    primary = spec.outcomes.primary
    facts: dict[str, Any] = {
        "n_rows": int(len(panel)), "n_units": int(panel[d.unit].nunique()),
        "n_clusters": int(panel[d.cluster].nunique()),
        "flow": {(int(w), int(a)): int(n) for (w, a), n in flow.items()},
        # mean of the outcome column as declared (levels for a logged outcome), treated arm, baseline
        "baseline_mean": float(pd.to_numeric(base.loc[base["ever_treated"] == 1, primary]).mean())}
    if spec.outcomes.poverty_line is not None:
        observed = base[primary].dropna()
        facts["baseline_poor_share"] = float((observed < spec.outcomes.poverty_line).mean())
    ctx.results["data"] = data_section(ctx, facts)


def data_section(ctx: Context, facts: dict[str, Any]) -> dict[str, Any]:
    """The data section from the panel's facts (any engine computes them): rows, units, clusters,
    units per ``(period, ever treated)`` in ``flow``, the baseline mean and poor share."""
    spec, contract, lab = ctx.spec, ctx.contract, ctx.labels
    d, min_cell = spec.design, spec.analysis.min_cell
    flow = pd.DataFrame([{"wave": w, "arm": lab.treated if a == 1 else lab.control, "units": n}
                         for (w, a), n in facts["flow"].items()], columns=["wave", "arm", "units"])
    flow = flow.groupby(["wave", "arm"], sort=True)["units"].sum().reset_index()
    section: dict[str, Any] = {
        "file": spec.data.file, "sha256": ctx.hashes.get(spec.data.file),
        "n_rows": int(facts["n_rows"]), "n_units": int(facts["n_units"]), "n_clusters": int(facts["n_clusters"]),
        "cluster": d.cluster, "unit": d.unit, "time": d.time,
        "waves": ctx.waves, "baseline_wave": ctx.baseline, "design": design_kind(ctx),
        "personal_columns": list(contract.personal_columns),
        "never_treated_cohort": int(contract.panel.never_treated_cohort),
        "contract": {"id": contract.id, "version": contract.version, "file": spec.data.contract,
                     "sha256": ctx.hashes[spec.data.contract]},
        "sample_flow": suppress_counts(frame_records(flow), "units", min_cell),
        "baseline_mean": float(facts["baseline_mean"]),
    }
    if "baseline_poor_share" in facts:
        section["baseline_poor_share"] = float(facts["baseline_poor_share"])
    return section

@step("validation")
def validation_step(ctx: Context) -> None:
    results = ctx.report.results
    rules = [{"rule": r["rule"], "column": r.get("column"), "engine": r["engine"], "success": bool(r["success"]),
              "failed_rows": r.get("failed_rows"), "failed_share": r.get("failed_share")}
             for r in to_plain(results)]
    n_failed = int((~results["success"]).sum())
    ctx.results["validation"] = {"ok": bool(ctx.report.ok), "n_rules": int(len(results)),
                                 "n_passed": int(len(results) - n_failed), "n_failed": n_failed, "rules": rules}




def fitted_cs(ctx: Context):
    """The Callaway-Sant'Anna fit the spec declares, computed once per analysis (``ctx.scratch``;
    :meth:`Context.fit_cs` of the context's engine)."""
    if "cs" not in ctx.scratch:
        ctx.scratch["cs"] = ctx.fit_cs()
    return ctx.scratch["cs"]


def cs_row(ctx: Context) -> dict[str, Any]:
    """The Callaway-Sant'Anna row (simple aggregate) of the context's CS fit, on any engine (:meth:`Context.fit_cs`)."""
    d, e = ctx.spec.design, ctx.spec.estimators
    simple = fitted_cs(ctx).aggregate("simple")
    return estimate_row(ESTIMATOR_LABELS["cs"], "cs", ctx.y, vars(simple), n_units=ctx.n_units_with_outcome(),
                        note=f"{e.cs_control}-treated comparison; analytic influence-function SEs clustered by {d.cluster}")


def _estimate_twfe(ctx: Context) -> dict[str, Any]:
    from impactkit.did import did

    d = ctx.spec.design
    twfe = did(ctx.panel, method="twfe", y=ctx.y, unit=d.unit, time=d.time, treated=d.treated, cohort=d.cohort,
               cluster=d.cluster, weights=ctx.weighted("twfe"))
    ctx.scratch["twfe"] = twfe
    return twfe_row(ctx, twfe)


def twfe_row(ctx: Context, twfe) -> dict[str, Any]:
    """The estimator row of a TWFE fit (any engine)."""
    row = twfe.tidy().iloc[0].to_dict()
    return estimate_row(ESTIMATOR_LABELS["twfe"], "twfe", ctx.y, row, n_units=int(twfe.n_units),
                        n_obs=int(twfe.n_obs),
                        note=f"unit and period fixed effects; CRV1 SEs clustered by {ctx.spec.design.cluster}")


def _estimate_sa(ctx: Context) -> dict[str, Any]:
    from impactkit.did import did

    d = ctx.spec.design
    sa = did(ctx.panel, method="sa", y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort, cluster=d.cluster,
             weights=ctx.weighted("sa"), seed=ctx.seed)
    return sa_row(ctx, sa)


def sa_row(ctx: Context, sa) -> dict[str, Any]:
    """The estimator row of a Sun-Abraham fit (any engine)."""
    return estimate_row(ESTIMATOR_LABELS["sa"], "sa", ctx.y, sa.att(), n_units=ctx.n_units_with_outcome(),
                        n_obs=int(sa.n_obs), note="never-treated cohort as control; delta-method SEs")


def _estimate_2x2(ctx: Context) -> dict[str, Any]:
    from impactkit.did import did

    d = ctx.spec.design
    panel = ctx.panel
    first, pre, post = first_window(ctx)
    cohort = pd.to_numeric(panel[d.cohort]).fillna(0)
    window = panel[cohort.isin([first, 0])]
    res = did(window, method="2x2", y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort, cluster=d.cluster,
              weights=ctx.weighted("2x2"), periods=(pre, post))
    return two_by_two_row(ctx, res)


def two_by_two_row(ctx: Context, res) -> dict[str, Any]:
    """The estimator row of the 2x2 of the first cohort against never-treated units (any engine)."""
    first, pre, post = first_window(ctx)
    note = f"{ctx.labels.treated} units (cohort {first}) vs never treated, {pre} and {post}"
    row = res.tidy().iloc[0].to_dict()
    return estimate_row(ESTIMATOR_LABELS["2x2"], "2x2", ctx.y, row, n_units=int(res.n_units), n_obs=int(res.n_obs),
                        note=note + f"; CRV1 SEs clustered by {ctx.spec.design.cluster}")


def ancova_frame(ctx: Context, extra: list[str] | None = None) -> pd.DataFrame:
    """Final-period rows with the baseline outcome (and ``extra`` columns) as ``<col>_baseline``."""
    columns = [ctx.y, *(extra or [])]
    return final_wave_frame(ctx, columns).dropna(subset=[ctx.y, f"{ctx.y}_baseline"])


def _estimate_ancova(ctx: Context) -> dict[str, Any]:
    """ANCOVA: final-period outcome on assignment and the baseline outcome (McKenzie 2012)."""
    from impactkit.checks.regression import robust_ols

    d = ctx.spec.design
    controls = list(d.controls)
    frame = ancova_frame(ctx, controls).dropna(subset=[f"{c}_baseline" for c in controls])
    X, y = ancova_design(frame, ctx.y, controls)
    w = ctx.weighted("ancova")
    fit = robust_ols(y, X, clusters=frame[d.cluster].to_numpy(),
                     weights=frame[w].to_numpy(float) if w else None)
    row = ancova_row(ctx, fit, n_units=int(frame[d.unit].nunique()), n_obs=int(len(frame)))
    ctx.scratch["ancova"] = {"frame": frame, "controls": controls, "estimate": row["estimate"]}
    return row


def ancova_row(ctx: Context, fit, *, n_units: int, n_obs: int) -> dict[str, Any]:
    """The ANCOVA estimator row from its fit (a :class:`~impactkit.checks.regression.RobustFit`
    whose coefficient 1 is the assignment), t(G-1) interval; either engine."""
    from scipy import stats

    d = ctx.spec.design
    est, se, p = fit.t_test(1)
    q = float(stats.t.ppf(0.975, fit.df_resid))
    return estimate_row(ESTIMATOR_LABELS["ancova"], "ancova", ctx.y,
                {"estimate": est, "std_error": se, "conf_low": est - q * se, "conf_high": est + q * se,
                 "p_value": p}, n_units=n_units, n_obs=n_obs,
                note=f"final period {ctx.waves[-1]}, baseline {ctx.baseline}; CR1 SEs clustered by {d.cluster}")


def ancova_design(frame: pd.DataFrame, y: str, controls: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``[1, ever_treated, baseline outcome, baseline controls]`` and the final-period outcome."""
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
    return estimate_row(ESTIMATOR_LABELS[method], method, ctx.y, res.att(), n_units=ctx.n_units_with_outcome(),
                note=f"registered estimator '{method}'; SEs clustered by {d.cluster}")


ESTIMATORS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "cs": cs_row, "twfe": _estimate_twfe, "sa": _estimate_sa, "2x2": _estimate_2x2, "ancova": _estimate_ancova}


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
    ctx.results["event_study"] = {"estimator": ESTIMATOR_LABELS["cs"], "rows": frame_records(rows),
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
    mixed = clusters_mixing_cohorts(ctx.panel, ctx.spec.design.cohort, ctx.spec.design.cluster)
    if mixed:
        ctx.omit("randomization_inference", mixed)
    else:
        ctx.weighted("randomization_inference")
        ri = twfe.randomization_inference(n_permutations=e.randomization_draws, seed=ctx.seed)
        r = ri.tidy().iloc[0].to_dict()
        ctx.results["randomization_inference"] = {"estimator": ESTIMATOR_LABELS["twfe"], "p_value": r.get("p_value"),
                                                  "n_permutations": r.get("n_permutations", e.randomization_draws)}
    if "ancova" in ctx.scratch:
        ancova_randomization_inference(ctx)
    ctx.scratch["n_clusters"] = int(twfe.n_clusters or ctx.panel[ctx.spec.design.cluster].nunique())


def clusters_mixing_cohorts(panel: pd.DataFrame, cohort: str, cluster: str) -> str | None:
    """Why TWFE randomization inference cannot re-assign whole clusters, or None when it can.

    Randomization inference permutes each cluster's adoption period across clusters (Young 2019,
    *QJE* 134(2)); a cluster whose units adopt in different periods has no single period to move.
    """
    cohorts = panel[[cluster, cohort]].fillna({cohort: 0}).drop_duplicates()  # missing = never, as 0
    n_mixed = int((cohorts.groupby(cluster).size() > 1).sum())
    return mixed_cohorts_reason(cohort, cluster, n_mixed) if n_mixed else None


def mixed_cohorts_reason(cohort: str, cluster: str, n_mixed: int) -> str:
    """The omission reason of TWFE randomization inference when ``n_mixed`` clusters mix adoption
    periods (either engine)."""
    return (f"'{cohort}' varies within {n_mixed} '{cluster}' cluster(s): randomization inference re-assigns "
            "whole clusters, so each cluster needs one adoption period")


def ancova_randomization_inference(ctx: Context) -> None:
    """Fisher randomization p-value of the ANCOVA coefficient, re-assigning whole clusters.

    Treatment is permuted across clusters (the assignment unit of a cluster-randomised
    trial), keeping the number of treated clusters (:func:`ancova_reassignments`); the p-value
    counts permuted |b| at least the observed |b|, the observed assignment included
    (:func:`ancova_ri_section`; Young 2019, *QJE* 134(2)). When the arm varies within some
    cluster there is no cluster-level assignment to permute: the section is omitted with
    :func:`mixed_arms_reason`.
    """
    from impactkit.numerics.ols import least_squares

    d = ctx.spec.design
    info = ctx.scratch["ancova"]
    frame, controls, observed = info["frame"], info["controls"], info["estimate"]
    X, y = ancova_design(frame, ctx.y, controls)
    w = frame[ctx.weights].to_numpy(float) if ctx.weights else None
    labels, codes = np.unique(frame[d.cluster].to_numpy(), return_inverse=True)
    by_cluster = pd.Series(frame["ever_treated"].to_numpy(), index=codes).groupby(level=0)
    arm, n_mixed = by_cluster.max().to_numpy(), int((by_cluster.min() != by_cluster.max()).sum())
    if n_mixed:
        ctx.omit("randomization_inference_ancova", mixed_arms_reason(d.cluster, n_mixed))
        return
    draws = ctx.spec.estimators.randomization_draws
    permuted = np.empty(draws)
    for b, arms in enumerate(ancova_reassignments(arm, draws, ctx.seed)):
        X[:, 1] = arms[codes]
        permuted[b] = least_squares(y, X, w, solver="svd").coef[1]
    ctx.results["randomization_inference_ancova"] = ancova_ri_section(ctx, observed, permuted, int(labels.size))


def mixed_arms_reason(cluster: str, n_mixed: int) -> str:
    """The omission reason of ANCOVA randomization inference when ``n_mixed`` clusters hold both
    arms (either engine)."""
    return (f"treated and comparison units share {n_mixed} '{cluster}' cluster(s): randomization inference "
            "re-assigns whole clusters, so each cluster needs one arm")


def ancova_reassignments(arm: np.ndarray, draws: int, seed: int | None) -> np.ndarray:
    """``draws`` random permutations of the clusters' arms (clusters in sorted order), (draws, G),
    from ``rng(seed, "randomization-inference", "ancova")``: the re-assignments of either engine."""
    from impactkit.seeds import rng

    gen = rng(seed, "randomization-inference", "ancova")
    return np.array([gen.permutation(arm) for _ in range(draws)]).reshape(draws, len(arm))


def ancova_ri_section(ctx: Context, observed: float, permuted: np.ndarray, n_clusters: int) -> dict[str, Any]:
    """The ``randomization_inference_ancova`` section: ``(1 + #{|b*| >= |b|}) / (1 + P)`` with a
    1e-12 tolerance for ties (the observed assignment counts once), either engine."""
    extreme = 1 + int(np.count_nonzero(np.abs(permuted) >= abs(observed) - 1e-12))
    return {"estimator": ESTIMATOR_LABELS["ancova"], "p_value": extreme / (permuted.size + 1),
            "n_permutations": int(permuted.size), "n_clusters": n_clusters}


@step("bacon")
def bacon_step(ctx: Context) -> None:
    from impactkit.did.bacon import bacon_decomposition

    if not bacon_wanted(ctx):
        return
    d = ctx.spec.design
    ctx.weighted("bacon")
    balanced = balanced_subpanel(ctx.panel, d.unit, d.time, ctx.y)
    bacon = bacon_decomposition(balanced, cohort=d.cohort, y=ctx.y, unit=d.unit, time=d.time)
    ctx.results["bacon"] = bacon_rows(bacon)


def bacon_wanted(ctx: Context) -> bool:
    """Whether the Goodman-Bacon decomposition applies (else it is omitted here, with the reason)."""
    if not ctx.spec.estimators.bacon:
        ctx.omit("bacon", "not requested ([estimators] bacon = false)")
        return False
    if len(ctx.cohorts) < 2:
        ctx.omit("bacon", "one adoption period: TWFE is a single 2x2 comparison, nothing to decompose")
        return False
    return True


def bacon_rows(bacon) -> list[dict[str, Any]]:
    """The bacon section: weight and estimate by comparison type (any engine's ``BaconResult``)."""
    return [{"comparison": r["type"], "weight": r["weight"], "estimate": r["estimate"]}
            for r in to_plain(bacon.by_type())]


def balanced_subpanel(panel: pd.DataFrame, unit: str, time: str, y: str, n_waves: int | None = None) -> pd.DataFrame:
    """Units observed, with the outcome, in every wave (Goodman-Bacon needs a balanced panel);
    ``n_waves``: the number of waves with an observed outcome (default: counted in ``panel``)."""
    observed = panel.dropna(subset=[y])
    n_waves = observed[time].nunique() if n_waves is None else n_waves
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

    d = ctx.spec.design
    if not iv_wanted(ctx):
        return
    first, pre, post = first_window(ctx)
    window = iv_window(ctx, ctx.panel, first, pre, post)
    characteristics = [c for c in d.characteristics if c in window.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        result = encouragement(window, y=ctx.y, take_up=d.take_up, instrument=d.treated, cluster=d.cluster,
                               absorb=[d.unit, d.time], characteristics=characteristics,
                               weights=ctx.weighted("iv"))
    iv_section(ctx, result, (first, pre, post), int(window[d.cluster].nunique()))


def iv_wanted(ctx: Context) -> bool:
    """Whether the analysis asks for the IV section (else it is omitted with the reason)."""
    d = ctx.spec.design
    if not d.take_up:
        ctx.omit("iv", "no take-up column declared ([design] take_up)")
        return False
    if not ctx.spec.estimators.iv:
        ctx.omit("iv", "not requested ([estimators] iv = false)")
        return False
    return True


def iv_window(ctx: Context, panel, first: int, pre: int, post: int):
    """The IV's 2x2 window: the first cohort and never-treated units, in ``pre`` and ``post``, with
    the outcome observed (a pandas or a dask frame)."""
    d = ctx.spec.design
    column = panel[d.cohort]
    cohort = (column.map_partitions(pd.to_numeric) if hasattr(column, "map_partitions")
              else pd.to_numeric(column)).fillna(0)
    return panel[cohort.isin([first, 0]) & panel[d.time].isin([pre, post])].dropna(subset=[ctx.y])


def iv_section(ctx: Context, result, window: tuple[int, int, int], n_clusters: int) -> None:
    """The ``iv`` section, its estimator row and label from an encouragement result (either engine)."""
    d, lab = ctx.spec.design, ctx.labels
    first, pre, post = window
    est = {r["estimand"]: r for r in frame_records(result.estimates)}
    diag = result.iv_result.diagnostics
    ar_set = getattr(result.iv_result, "ar_set", None)
    ar = ar_set.to_dict() if ar_set is not None else {}
    weak = {"kp_f": diag.get("kleibergen_paap_f"), "cragg_donald_f": diag.get("cragg_donald_f"),
            "effective_f": diag.get("effective_f"), "effective_f_critical": diag.get("effective_f_critical_value"),
            "ar_set": {"kind": ar.get("kind"), "intervals": ar.get("intervals"), "level": ar.get("level")}}
    means = [{"covariate": r["characteristic"], "compliers": r["complier_mean"], "population": r["population_mean"]}
             for r in frame_records(result.complier_means)]
    iv = {"itt": est["itt"], "first_stage": est["first_stage"], "late": est["late"], "weak": weak,
          "complier_means": means, "instrument": d.treated, "take_up": d.take_up,
          "window": {"cohort": first, "pre": pre, "post": post, "n_clusters": n_clusters}}
    ctx.results["iv"] = iv
    when = (f"{periods_phrase(post - first, lab.period)} after roll-out" if post > first else f"in {post}")
    label = f"2SLS: effect on {lab.units} who {lab.take_up}, {when} (LATE)"
    ctx.scratch["iv_label"] = label
    late = iv["late"]
    ctx.results["estimators"].append(estimate_row(
        label, "iv", ctx.y, late, n_obs=late.get("n"),
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
           "n_units": ctx.n_units_with_outcome(), "n_clusters": ctx.scratch["n_clusters"]}
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


