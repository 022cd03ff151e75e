"""Design-check steps: balance at baseline, attrition and Lee bounds, subgroup effects,
multiple-outcome corrections and the power of a scale-up trial."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from impactkit.analysis.context import (MIN_CLUSTERS_FOR_CLUSTER_ROBUST, Context, comparison_design,
                                        final_controls, frame_records, step)
from impactkit.errors import ImpactkitWarning
from impactkit.results import to_plain


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
             "suppressed": bool(r.get("suppressed", False))} for r in frame_records(bal.tidy())]
    ctx.results["balance"] = {"rows": rows, "joint_f": bal.joint_f, "joint_p": bal.joint_p, "wave": ctx.baseline}


NO_ATTRITION = ("no attrition to bound: every baseline unit with an observed baseline outcome is observed "
                "in the final period")


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
    section: dict[str, Any] = {"rows": frame_records(att.tidy()), "differential_p": att.differential_attrition_p,
                               "covariate_test": to_plain(att.covariate_test), "final_wave": ctx.waves[-1]}
    units = _lee_frame(ctx)
    lost = int((units["observed"] == 0).sum())
    if lost == 0:
        ctx.omit("lee_bounds", NO_ATTRITION)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImpactkitWarning)
            lee = lee_bounds(units, y=ctx.y, arm="ever_treated", observed="observed",
                             weights=ctx.weighted("lee_bounds"))
        section["lee_bounds"] = lee_section(ctx, lee)
    ctx.results["attrition"] = section


def lee_section(ctx: Context, lee) -> dict[str, Any]:
    """The ``attrition.lee_bounds`` entry from a :class:`~impactkit.checks.lee.LeeBoundsResult` (either engine)."""
    return {"lower": lee.lower, "upper": lee.upper, "ci_low": lee.conf_low, "ci_high": lee.conf_high,
            "se_lower": lee.se_lower, "se_upper": lee.se_upper, "trimming_share": lee.trim_share,
            "trimmed_arm": lee.trimmed_arm, "n": lee.n, "scale": ctx.results["analysis"]["effect_scale"],
            "outcome": "change since baseline"}


def _lee_frame(ctx: Context) -> pd.DataFrame:
    """Baseline units with their change in the outcome since baseline (``ctx.y``; missing when
    not observed in the final period): Lee bounds then bound the difference-in-differences
    effect for units observed either way, not a final-period level gap between arms that
    differed at baseline. Units without a baseline outcome are left out."""
    d = ctx.spec.design
    return lee_frame(ctx.panel, d.unit, d.time, ctx.baseline, ctx.waves[-1], ctx.y, d.weights)


def lee_frame(panel: pd.DataFrame, unit: str, time: str, baseline: int, final: int, y: str,
              weights: str | None) -> pd.DataFrame:
    """:func:`_lee_frame` as a pure function of the rows (it runs per partition of whole units)."""
    keep = [unit, "ever_treated", y] + ([weights] if weights else [])
    units = panel.loc[panel[time] == baseline, keep].dropna(subset=[y])
    units = units.rename(columns={y: "_baseline_y"})
    last = panel.loc[panel[time] == final, [unit, y]]
    frame = units.merge(last, on=unit, how="left", validate="one_to_one")
    frame[y] = frame[y] - frame.pop("_baseline_y")
    frame["observed"] = frame[y].notna().astype(np.int64)
    return frame


@step("heterogeneity")
def heterogeneity_step(ctx: Context) -> None:
    from impactkit.checks import heterogeneity

    d = ctx.spec.design
    if not d.subgroup:
        ctx.omit("heterogeneity", "no subgroup declared ([design] subgroup)")
        return
    ctx.weighted("heterogeneity")
    final, controls = final_controls(ctx)
    het_frame = final.dropna(subset=[ctx.y, *controls])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        het = heterogeneity(het_frame, y=ctx.y, treat="ever_treated", by=d.subgroup, controls=controls,
                            cluster=d.cluster, min_cell=ctx.spec.analysis.min_cell)
    ctx.results["heterogeneity"] = heterogeneity_section(ctx, het)


def heterogeneity_section(ctx: Context, het) -> dict:
    """The ``heterogeneity`` results section from a :class:`~impactkit.checks.heterogeneity.HeterogeneityResult`
    (shared by the pandas and Dask engines)."""
    d, lab = ctx.spec.design, ctx.labels
    label = lab.subgroup or d.subgroup
    names = {"0": f"other {lab.units}", "1": label}
    rows = []
    for r in frame_records(het.tidy()):
        group = str(r.get("group"))
        subgroup = names.get(group, group) if r.get("term") == "effect" else f"difference ({label} - other)"
        rows.append({"subgroup": subgroup, "term": r.get("term"), "estimate": r.get("estimate"),
                     "std_error": r.get("std_error"), "conf_low": r.get("conf_low"), "conf_high": r.get("conf_high"),
                     "p_value": r.get("p_value"), "n_units": r.get("n"),
                     "suppressed": bool(r.get("suppressed", False))})
    return {"by": d.subgroup, "label": label, "interaction_p": het.test_p, "rows": rows,
            "design": comparison_design(ctx)}


@step("multiple_outcomes")
def multiple_outcomes_step(ctx: Context) -> None:
    from impactkit.checks import multiple_testing

    family = list(ctx.spec.outcomes.family)  # checked against the data by prepare_panel
    if len(family) < 2:
        ctx.omit("multiple_outcomes", "fewer than two outcomes in [outcomes] family: nothing to correct")
        return
    ctx.weighted("multiple_outcomes")
    final, controls = final_controls(ctx)
    mt_frame = final.dropna(subset=[*family, *controls])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        mt = multiple_testing(mt_frame, outcomes=family, treat="ever_treated", controls=controls,
                              cluster=ctx.spec.design.cluster, B=ctx.spec.checks.multiple_testing_draws,
                              seed=ctx.seed)
    ctx.results["multiple_outcomes"] = multiple_outcomes_section(mt)


def multiple_outcomes_section(mt) -> list[dict[str, Any]]:
    """The ``multiple_outcomes`` results section from a
    :class:`~impactkit.checks.multiple.MultipleTestingResult` (shared by the pandas and Dask engines)."""
    keep = ("outcome", "estimate", "std_error", "p_value", "holm", "romano_wolf", "westfall_young", "sharpened_q")
    return [{**{k: r.get(k) for k in keep}, "n_units": r.get("n")} for r in frame_records(mt.tidy())]


@step("power")
def power_step(ctx: Context) -> None:
    """How large a cluster-randomised scale-up trial must be (Duflo, Glennerster & Kremer 2007)."""
    d = ctx.spec.design
    y = ctx.y
    panel, waves = ctx.panel, ctx.waves
    ctx.weighted("power")
    base = panel.loc[panel[d.time] == ctx.baseline, list(dict.fromkeys([d.unit, d.cluster, y]))].dropna()
    # clustered by the unit itself: one unit per cluster, no intra-cluster correlation to estimate
    icc = 0.0 if d.cluster == d.unit else _icc(base[y].to_numpy(), base[d.cluster].to_numpy())
    cluster_size = float(base.groupby(d.cluster).size().mean())
    sd = float(base[y].std(ddof=1))
    nxt = panel.loc[panel[d.time] == waves[1], [d.unit, y]].dropna().merge(base[[d.unit, y]], on=d.unit,
                                                                          suffixes=("", "_base"))
    r2 = float(np.corrcoef(nxt[y], nxt[f"{y}_base"])[0, 1] ** 2)
    n_base, n_kept = baseline_units_kept(panel[d.unit].to_numpy(), panel[d.time].to_numpy(), ctx.baseline, waves[-1])
    design = {"sd": sd, "icc": icc, "cluster_size": cluster_size, "r2": r2, "attrition": 1 - n_kept / n_base}
    ctx.results["power"] = power_section(ctx, design, int(panel[d.unit].nunique()))


def baseline_units_kept(units: np.ndarray, times: np.ndarray, baseline: int, final: int) -> tuple[int, int]:
    """Units observed at ``baseline`` and, of those, units also observed in the ``final`` period.

    Attrition is the share of baseline units lost by the final period, ``1 - kept / base``:
    units that enter the panel after baseline are not baseline units and do not offset losses
    (a count ratio of final to baseline units would turn negative when entrants outnumber losses).
    """
    base = np.unique(units[times == baseline])
    return int(base.size), int(np.isin(base, units[times == final]).sum())


def power_section(ctx: Context, design: dict[str, float], n_units: int) -> dict[str, Any]:
    """The power section from the design's facts (outcome SD, ICC, cluster size, R2 on the
    baseline outcome, attrition; any engine computes them) and the headline and take-up."""
    from impactkit.checks import achieved_power, mde, required_sample

    iv = ctx.results.get("iv")
    take_up = iv["first_stage"]["estimate"] if iv else None
    itt = ctx.results["headline"]["estimate"]
    design = {"sd": design["sd"], "icc": design["icc"], "cluster_size": design["cluster_size"],
              "take_up": float(take_up or 1.0), "r2": design["r2"], "attrition": design["attrition"]}
    cluster_size = design["cluster_size"]
    effect = ctx.spec.checks.power_effect if ctx.spec.checks.power_effect is not None else abs(itt) / 2
    effect_on_compliers = effect / design["take_up"]
    mde_now = mde(n_units, distribution="t", **design)
    required = required_sample(effect_on_compliers, distribution="t", **design)
    n_clusters = int(math.ceil(required / cluster_size))
    return {
        "mde": mde_now, "mde_itt": mde_now * design["take_up"], "target_effect_itt": effect,
        "design_power": achieved_power(effect_on_compliers, n_units, distribution="t", **design),
        "n_units_required": required, "n_clusters_required": n_clusters,
        "n_clusters_recommended": max(n_clusters, MIN_CLUSTERS_FOR_CLUSTER_ROBUST),
        "assumptions": {**design, "alpha": 0.05, "power": 0.8, "estimator": "ancova", "distribution": "t"}}


def _icc(values: np.ndarray, clusters: np.ndarray) -> float:
    """One-way ANOVA estimator of the intra-cluster correlation."""
    frame = pd.DataFrame({"y": values, "g": clusters})
    groups = frame.groupby("g")["y"]
    within = float(((frame["y"] - groups.transform("mean")) ** 2).sum())
    return icc_from_groups(groups.size().to_numpy(float), groups.mean().to_numpy(), within)


def icc_from_groups(sizes: np.ndarray, means: np.ndarray, within_ss: float) -> float:
    """One-way ANOVA ICC from the clusters' sizes and means and the within-cluster sum of
    squares: ``(MSB - MSW) / (MSB + (n0 - 1) MSW)``, floored at 0 (Donner 1986, *Int. Stat. Rev.* 54(1))."""
    k, n = sizes.size, float(sizes.sum())
    grand = float((sizes * means).sum() / n)
    msb = float((sizes * (means - grand) ** 2).sum() / (k - 1))
    msw = within_ss / (n - k)
    n0 = (n - (sizes**2).sum() / n) / (k - 1)
    return max(0.0, (msb - msw) / (msb + (n0 - 1) * msw))
