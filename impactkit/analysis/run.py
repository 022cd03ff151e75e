"""Run a declared analysis: ``analysis.toml`` -> the results document.

The chain, one way: read -> validate (the contract is the gate) -> prepare -> estimate
(Callaway-Sant'Anna headline, TWFE / Sun-Abraham / 2SLS alongside, wild bootstrap,
randomization inference, Goodman-Bacon) -> design checks (balance, attrition, Lee bounds,
heterogeneity, multiple outcomes, power) -> scale readiness -> one JSON-ready dict
(``docs/results-schema.md``). Each section is a small function of the prepared panel and
the spec; none reaches back into another's internals. Randomness is seeded from
``[seeds] entropy``, each procedure with its own purpose string.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impactkit import __version__
from impactkit.analysis.prepare import outcome_column, prepare_panel
from impactkit.analysis.spec import AnalysisSpec, load_analysis
from impactkit.errors import CheckFailed, ImpactkitWarning
from impactkit.results import to_plain

SCHEMA = "impactkit.results/1"
# Below about 42 clusters cluster-robust t tests over-reject (MacKinnon & Webb 2018): a scale-up
# trial is recommended at least this many clusters even when power needs fewer.
MIN_CLUSTERS_FOR_CLUSTER_ROBUST = 42
SEED_PURPOSES = ("cs-multiplier", "sup-t", "wild-bootstrap", "randomization-inference",
                 "romano-wolf", "westfall-young", "scale-mc")

def estimator_labels() -> dict[str, str]:
    """Report labels: every registered DiD estimator (:mod:`impactkit.did.registry`) and the IV row."""
    from impactkit.did.registry import labels

    return {**labels(), "iv": "2SLS: effect on TAP users after two years (LATE)"}


ESTIMATOR_LABELS = estimator_labels()


# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------
def _pct(log_effect: float | None) -> float | None:
    return None if log_effect is None or not math.isfinite(log_effect) else math.expm1(log_effect)


def _row(estimator: str, method: str, outcome: str, values: dict[str, Any], n: Any, note: str = "") -> dict[str, Any]:
    return {"estimator": estimator, "method": method, "outcome": outcome,
            "estimate": values.get("estimate"), "std_error": values.get("std_error"),
            "conf_low": values.get("conf_low"), "conf_high": values.get("conf_high"),
            "p_value": values.get("p_value"), "n": n, "note": note}


def _suppress_counts(rows: list[dict[str, Any]], key: str, min_cell: int) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        value = row.get(key)
        small = value is not None and value < min_cell
        out.append({**row, key: None if small else value, "suppressed": bool(small)})
    return out


def _frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return to_plain(frame.reset_index(drop=True))


# ------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------
def analysis_section(spec: AnalysisSpec) -> dict[str, Any]:
    meta, outcomes = spec.analysis, spec.outcomes
    return {"name": meta.name, "title": meta.title, "question": meta.question,
            "organisation": meta.organisation, "outcome": outcomes.primary,
            "outcome_label": outcomes.label, "currency": outcomes.currency,
            "currency_year": outcomes.currency_year, "poverty_line": outcomes.poverty_line,
            "unit_label": meta.unit_label, "min_cell": meta.min_cell,
            "recommendation": meta.recommendation, "subgroup_label": spec.design.subgroup_label}


def data_section(spec: AnalysisSpec, panel: pd.DataFrame, contract, hashes: dict[str, str]) -> dict[str, Any]:
    d, min_cell = spec.design, spec.analysis.min_cell
    waves = sorted(int(w) for w in panel[d.time].unique())
    baseline = d.baseline if d.baseline is not None else waves[0]
    flow = (panel.assign(arm=np.where(panel["ever_treated"] == 1, "served", "comparison"))
            .groupby([d.time, "arm"], sort=True)[d.unit].nunique().reset_index()
            .rename(columns={d.time: "wave", d.unit: "units"}))
    base = panel[panel[d.time] == baseline]
    primary = spec.outcomes.primary
    section: dict[str, Any] = {
        "file": spec.data.file, "sha256": hashes[spec.data.file],
        "n_rows": int(len(panel)), "n_units": int(panel[d.unit].nunique()),
        "n_clusters": int(panel[d.cluster].nunique()), "cluster": d.cluster, "unit": d.unit, "time": d.time,
        "waves": waves, "baseline_wave": int(baseline),
        "personal_columns": list(contract.personal_columns),
        "contract": {"id": contract.id, "version": contract.version, "file": spec.data.contract,
                     "sha256": hashes[spec.data.contract]},
        "sample_flow": _suppress_counts(_frame_records(flow), "units", min_cell),
        "baseline_mean_income": float(base.loc[base["ever_treated"] == 1, primary].mean()),
    }
    if spec.outcomes.poverty_line is not None:
        observed = base[primary].dropna()
        section["baseline_poor_share"] = float((observed < spec.outcomes.poverty_line).mean())
    return section


def validation_section(report) -> dict[str, Any]:
    results = report.results
    rules = [{"rule": r["rule"], "column": r.get("column"), "engine": r["engine"], "success": bool(r["success"]),
              "failed_rows": r.get("failed_rows"), "failed_share": r.get("failed_share")}
             for r in to_plain(results)]
    n_failed = int((~results["success"]).sum())
    return {"ok": bool(report.ok), "n_rules": int(len(results)), "n_passed": int(len(results) - n_failed),
            "n_failed": n_failed, "rules": rules}


def did_sections(spec: AnalysisSpec, panel: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Headline (Callaway-Sant'Anna), alternatives, event study, wild bootstrap, RI, Bacon."""
    from impactkit.did import did
    from impactkit.did.bacon import bacon_decomposition

    d, e = spec.design, spec.estimators
    y = outcome_column(spec)
    common = {"y": y, "unit": d.unit, "time": d.time}
    cs = did(panel, method="cs", cohort=d.cohort, covariates=e.covariates or None, control=e.cs_control,
             est=e.cs_est, cluster=d.cluster, bootstrap=True, biters=e.multiplier_draws, seed=seed,
             allow_unbalanced=e.cs_allow_unbalanced, **common)
    simple, dynamic = cs.aggregate("simple"), cs.aggregate("dynamic")
    pretrend = cs.pretrend_test()
    twfe = did(panel, method="twfe", treated=d.treated, cohort=d.cohort, cluster=d.cluster, **common)
    twfe_row = twfe.tidy().iloc[0].to_dict()
    out: dict[str, Any] = {}
    rows = {"cs": _row(ESTIMATOR_LABELS["cs"], "cs", y, vars(simple), simple.n,
                       f"{e.cs_control}-treated comparison; analytic influence-function SEs clustered by {d.cluster}"),
            "twfe": _row(ESTIMATOR_LABELS["twfe"], "twfe", y, twfe_row, twfe_row.get("n"),
                         f"unit and wave fixed effects; CRV1 SEs clustered by {d.cluster}")}
    if "sa" in e.compare or e.headline == "sa":
        sa = did(panel, method="sa", cohort=d.cohort, cluster=d.cluster, seed=seed, **common)
        rows["sa"] = _row(ESTIMATOR_LABELS["sa"], "sa", y, sa.att(), int(sa.n_obs),
                          "never-treated cohort as control; delta-method SEs")
    for method in dict.fromkeys([*e.compare, e.headline]):   # any other registered estimator: its att() with the design's columns
        if method not in rows and method != "2x2":
            other = did(panel, method=method, cohort=d.cohort, cluster=d.cluster, **common)
            rows[method] = _row(ESTIMATOR_LABELS[method], method, y, other.att(), None, "")
    event_rows = dynamic.rows.copy()
    band = dynamic.band()
    if band is not None:
        event_rows["band_low"], event_rows["band_high"] = band["band_low"].to_numpy(), band["band_high"].to_numpy()
    keep = [c for c in ("event_time", "estimate", "std_error", "conf_low", "conf_high", "band_low", "band_high", "n")
            if c in event_rows.columns]
    two = event_rows.loc[event_rows["event_time"] == 2] if "event_time" in event_rows.columns else event_rows.iloc[0:0]
    if len(two):
        out["_two_year"] = {k: float(two.iloc[0][k]) for k in ("estimate", "std_error", "conf_low", "conf_high")}
    out["event_study"] = {"estimator": ESTIMATOR_LABELS["cs"], "rows": _frame_records(event_rows[keep]),
                          "pretrend": {"statistic": pretrend.statistic, "df": pretrend.df, "p_value": pretrend.p_value},
                          "critical_value": dynamic.critical_value}
    headline_key = e.headline
    shown = list(dict.fromkeys([k for k in e.compare if k in rows] + [headline_key]))   # the spec's order
    out["estimators"] = [rows[k] for k in shown]
    out["_headline"] = rows[headline_key]
    wild = twfe.wild_bootstrap(B=e.wild_bootstrap_draws, weights=e.wild_bootstrap_weights, seed=seed)
    w = wild.tidy().iloc[0].to_dict()
    out["wild_bootstrap"] = {"estimator": ESTIMATOR_LABELS["twfe"], "estimate": w["estimate"], "p_value": w["p_value"],
                             "conf_low": w["conf_low"], "conf_high": w["conf_high"], "B": int(w["B"]),
                             "weights": w["weights"], "n_clusters": int(w["n_clusters"])}
    ri = twfe.randomization_inference(n_permutations=999, seed=seed)
    r = ri.tidy().iloc[0].to_dict()
    out["randomization_inference"] = {"estimator": ESTIMATOR_LABELS["twfe"], "p_value": r.get("p_value"),
                                      "n_permutations": r.get("n_permutations", 999)}
    out["n_clusters"] = int(twfe.n_clusters or panel[d.cluster].nunique())
    out["n_units"] = int(panel[d.unit].nunique())
    if e.bacon:
        balanced = _balanced_subpanel(panel, d.unit, d.time, y)
        bacon = bacon_decomposition(balanced, cohort=d.cohort, **common)
        out["bacon"] = [{"comparison": r["type"], "weight": r["weight"], "estimate": r["estimate"]}
                        for r in to_plain(bacon.by_type())]
        out["bacon_twfe"] = {"estimate": bacon.twfe_estimate, "n_units": int(balanced[d.unit].nunique())}
    return out


def _balanced_subpanel(panel: pd.DataFrame, unit: str, time: str, y: str) -> pd.DataFrame:
    """Units observed, with the outcome, in every wave (Goodman-Bacon needs a balanced panel)."""
    observed = panel.dropna(subset=[y])
    n_waves = observed[time].nunique()
    complete = observed.groupby(unit)[time].transform("nunique") == n_waves
    return observed.loc[complete].reset_index(drop=True)


def two_year_window(spec: AnalysisSpec, panel: pd.DataFrame, horizon: int = 2) -> tuple[int, int, int]:
    """(first cohort, its last pre-period, the wave ``horizon`` periods after it starts)."""
    d = spec.design
    cohorts = sorted(int(g) for g in panel[d.cohort].unique() if g > 0)
    waves = sorted(int(w) for w in panel[d.time].unique())
    first = cohorts[0]
    pre = max(w for w in waves if w < first)
    post = min(first + horizon, waves[-1])
    return first, pre, post


def iv_section(spec: AnalysisSpec, panel: pd.DataFrame) -> dict[str, Any]:
    """Encouragement design: TAP use instrumented by the community's rollout.

    To keep the 2SLS estimand clean under staggered adoption (a TWFE-IV would inherit the
    forbidden comparisons of TWFE; Goodman-Bacon 2021), the IV runs on the 2x2 of the first
    cohort against never-treated communities, in its last pre-period and two periods after
    the rollout, with unit and wave effects absorbed: the Wald-DiD of de Chaisemartin &
    D'Haultfoeuille (2018) with one-sided non-compliance, i.e. the effect on TAP users two
    years after TAPs arrived (the report's "within two years").
    """
    from impactkit.iv import encouragement

    d = spec.design
    y = outcome_column(spec)
    first, pre, post = two_year_window(spec, panel)
    cohort = pd.to_numeric(panel[d.cohort]).fillna(0)
    window = panel[cohort.isin([first, 0]) & panel[d.time].isin([pre, post])].dropna(subset=[y])
    characteristics = [c for c in ("woman_head", "herd_size") if c in window.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        result = encouragement(window, y=y, take_up=d.take_up, instrument=d.treated, cluster=d.cluster,
                               absorb=[d.unit, d.time], characteristics=characteristics)
    est = {r["estimand"]: r for r in _frame_records(result.estimates)}
    diag = result.iv_result.diagnostics
    ar_set = getattr(result.iv_result, "ar_set", None)
    ar = ar_set.to_dict() if ar_set is not None else {}
    weak = {"kp_f": diag.get("kleibergen_paap_f"), "cragg_donald_f": diag.get("cragg_donald_f"),
            "effective_f": diag.get("effective_f"), "effective_f_critical": diag.get("effective_f_critical_value"),
            "ar_set": {"kind": ar.get("kind"), "intervals": ar.get("intervals"), "level": ar.get("level")}}
    means = [{"covariate": r["characteristic"], "compliers": r["complier_mean"], "population": r["population_mean"]}
             for r in _frame_records(result.complier_means)]
    return {"itt": est["itt"], "first_stage": est["first_stage"], "late": est["late"], "weak": weak,
            "complier_means": means, "instrument": d.treated, "take_up": d.take_up,
            "window": {"cohort": first, "pre": pre, "post": post, "n_clusters": int(window[d.cluster].nunique())}}


def _final_wave_frame(spec: AnalysisSpec, panel: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Final-wave rows with baseline values of ``columns`` as ``<col>_baseline`` (ANCOVA design)."""
    d = spec.design
    waves = sorted(panel[d.time].unique())
    baseline = d.baseline if d.baseline is not None else waves[0]
    final = panel[panel[d.time] == waves[-1]]
    base = panel.loc[panel[d.time] == baseline, [d.unit, *columns]].rename(columns={c: f"{c}_baseline" for c in columns})
    return final.merge(base, on=d.unit, how="inner", validate="one_to_one")


def checks_sections(spec: AnalysisSpec, panel: pd.DataFrame, seed: int) -> dict[str, Any]:
    from impactkit.checks import attrition, balance_table, heterogeneity, lee_bounds, multiple_testing

    d, c, min_cell = spec.design, spec.checks, spec.analysis.min_cell
    y = outcome_column(spec)
    waves = sorted(panel[d.time].unique())
    baseline = d.baseline if d.baseline is not None else waves[0]
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        if c.balance_covariates:
            bal = balance_table(panel, arm="ever_treated", covariates=c.balance_covariates, cluster=d.cluster,
                                time=d.time, pre_period=baseline, unit=d.unit, min_cell=min_cell)
            rows = [{"covariate": r["covariate"], "mean_treated": r.get("mean_treated"),
                     "mean_control": r.get("mean_control"), "difference": r.get("difference"),
                     "normalized_difference": r.get("normalized_difference"), "p_value": r.get("p_value"),
                     "suppressed": bool(r.get("suppressed", False))} for r in _frame_records(bal.tidy())]
            out["balance"] = {"rows": rows, "joint_f": bal.joint_f, "joint_p": bal.joint_p, "wave": int(baseline)}
        att = attrition(panel, unit=d.unit, time=d.time, arm="ever_treated", baseline=baseline,
                        covariates=[x for x in c.attrition_covariates] or None, cluster=d.cluster)
        lee_frame = _lee_frame(spec, panel, y, baseline, waves[-1])
        lee = lee_bounds(lee_frame, y=y, arm="ever_treated", observed="observed")
        out["attrition"] = {"rows": _attrition_rows(att, min_cell), "differential_p": att.differential_attrition_p,
                            "covariate_test": to_plain(att.covariate_test),
                            "lee_bounds": _lee_dict(lee), "final_wave": int(waves[-1])}
        final = _final_wave_frame(spec, panel, [y, "herd_size"] if "herd_size" in panel.columns else [y])
        controls = [f"{y}_baseline"] + (["herd_size_baseline"] if "herd_size" in panel.columns else [])
        if d.subgroup:
            het_frame = final.dropna(subset=[y, *controls])
            het = heterogeneity(het_frame, y=y, treat="ever_treated", by=d.subgroup, controls=controls,
                                cluster=d.cluster, min_cell=min_cell)
            out["heterogeneity"] = _heterogeneity_dict(het, d.subgroup, spec.design.subgroup_label)
        family = list(spec.outcomes.family)  # checked against the data by prepare_panel
        if len(family) >= 2:
            mt_frame = final.dropna(subset=[*family, *controls])
            mt = multiple_testing(mt_frame, outcomes=family, treat="ever_treated", controls=controls,
                                  cluster=d.cluster, B=c.multiple_testing_draws, seed=seed)
            keep = ("outcome", "estimate", "std_error", "p_value", "holm", "romano_wolf", "westfall_young",
                    "sharpened_q", "n")
            out["multiple_outcomes"] = [{k: r.get(k) for k in keep} for r in _frame_records(mt.tidy())]
    return out


def _lee_frame(spec: AnalysisSpec, panel: pd.DataFrame, y: str, baseline: int, final_wave: int) -> pd.DataFrame:
    d = spec.design
    units = panel.loc[panel[d.time] == baseline, [d.unit, "ever_treated"]]
    final = panel.loc[panel[d.time] == final_wave, [d.unit, y]]
    frame = units.merge(final, on=d.unit, how="left", validate="one_to_one")
    frame["observed"] = frame[y].notna().astype(np.int64)
    return frame


def _lee_dict(lee) -> dict[str, Any]:
    return {"lower": lee.lower, "upper": lee.upper, "ci_low": lee.conf_low, "ci_high": lee.conf_high,
            "se_lower": lee.se_lower, "se_upper": lee.se_upper, "trimming_share": lee.trim_share,
            "trimmed_arm": lee.trimmed_arm, "n": lee.n}


def _attrition_rows(att, min_cell: int) -> list[dict[str, Any]]:
    return _frame_records(att.tidy())


def _heterogeneity_dict(het, by: str, label: str) -> dict[str, Any]:
    """Effects per subgroup (``by`` = 0 / 1 named "other" / ``label``) and their difference."""
    names = {"0": f"other {label.split()[-1]}" if label else "0", "1": label or "1"}
    rows = []
    for r in _frame_records(het.tidy()):
        group = str(r.get("group"))
        subgroup = names.get(group, group) if r.get("term") == "effect" else f"difference ({label} - other)"
        rows.append({"subgroup": subgroup, "term": r.get("term"), "estimate": r.get("estimate"),
                     "std_error": r.get("std_error"), "conf_low": r.get("conf_low"), "conf_high": r.get("conf_high"),
                     "p_value": r.get("p_value"), "n": r.get("n"), "suppressed": bool(r.get("suppressed", False))})
    return {"by": by, "label": label, "interaction_p": het.test_p, "rows": rows,
            "design": "final wave, served vs comparison communities, baseline outcome and herd size as controls"}


def power_section(spec: AnalysisSpec, panel: pd.DataFrame, take_up: float | None, itt: float) -> dict[str, Any]:
    """How large a cluster-randomised scale-up trial must be (Duflo, Glennerster & Kremer 2007)."""
    from impactkit.checks import achieved_power, mde, required_sample

    d = spec.design
    y = outcome_column(spec)
    waves = sorted(panel[d.time].unique())
    baseline = d.baseline if d.baseline is not None else waves[0]
    base = panel.loc[panel[d.time] == baseline, [d.unit, d.cluster, y]].dropna()
    icc = _icc(base[y].to_numpy(), base[d.cluster].to_numpy())
    cluster_size = float(base.groupby(d.cluster).size().mean())
    sd = float(base[y].std(ddof=1))
    nxt = panel.loc[panel[d.time] == waves[1], [d.unit, y]].dropna().merge(base[[d.unit, y]], on=d.unit,
                                                                          suffixes=("", "_base"))
    r2 = float(np.corrcoef(nxt[y], nxt[f"{y}_base"])[0, 1] ** 2)
    n_base = panel.loc[panel[d.time] == baseline, d.unit].nunique()
    n_final = panel.loc[panel[d.time] == waves[-1], d.unit].nunique()
    attrition_share = 1 - n_final / n_base
    design = {"sd": sd, "icc": icc, "cluster_size": cluster_size, "take_up": float(take_up or 1.0), "r2": r2,
              "attrition": attrition_share}
    n_units = panel[d.unit].nunique()
    effect = spec.checks.power_effect if spec.checks.power_effect is not None else abs(itt) / 2
    effect_on_compliers = effect / design["take_up"]
    mde_now = mde(n_units, distribution="t", **design)
    required = required_sample(effect_on_compliers, distribution="t", **design)
    n_clusters = int(math.ceil(required / cluster_size))
    return {"mde": mde_now, "mde_itt": mde_now * design["take_up"], "target_effect_itt": effect,
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
    the design, the headline effect as a proportion with its CI, the design checks that grade
    evidence down, the design's power, and the yearly money benefit per participant."""
    head = results["headline"]
    facts = {"design": "did", "estimate": head["percent"], "conf_low": head["percent_low"],
             "conf_high": head["percent_high"],
             "pretrend_p": results["event_study"]["pretrend"]["p_value"], "n_clusters": head["n_clusters"],
             "differential_attrition_p": results.get("attrition", {}).get("differential_p"),
             "balance_joint_p": results.get("balance", {}).get("joint_p"),
             "power": results.get("power", {}).get("design_power"),
             "benefit_per_participant_year": head.get("money_per_household"),
             "benefit_per_participant_year_low": head.get("money_low"),
             "benefit_per_participant_year_high": head.get("money_high"),
             "benefit_currency": spec.outcomes.currency,
             "benefit_price_year": spec.outcomes.currency_year}
    # a suppressed or undefined check (NaN) is unknown to the scale model, not a number
    return {k: v for k, v in facts.items()
            if v is not None and not (isinstance(v, float) and not math.isfinite(v))}


def scale_accounts(spec: AnalysisSpec) -> dict[str, Any] | None:
    """Programme accounts of the focus intervention (``[scale] costs``), if declared."""
    from impactkit.scale import load_accounts

    focus = spec.scale.intervention
    return {focus: load_accounts(spec.path(spec.scale.costs))} if focus and spec.scale.costs else None


def scale_section(spec: AnalysisSpec, facts: dict[str, Any]) -> dict[str, Any] | None:
    from impactkit.scale import score

    if not spec.scale.portfolio:
        return None
    focus = spec.scale.intervention
    estimates = {focus: facts} if focus else None
    # draws and seed: the portfolio's own (unless analysis.toml overrides the draws), so that
    # `impactkit score` on the same portfolio shows the same numbers as the pack
    result = score(spec.path(spec.scale.portfolio), estimates=estimates, costs=scale_accounts(spec),
                   draws=spec.scale.draws)
    return result.to_pack(focus)


# ------------------------------------------------------------------------------------------
# the whole chain
# ------------------------------------------------------------------------------------------
def _input_hashes(spec: AnalysisSpec) -> dict[str, str]:
    from impactkit.pin.environment import sha256_file

    return {rel: sha256_file(path) for rel, path in spec.input_files().items()}


def run_analysis(analysis_dir: str | Path | AnalysisSpec) -> dict[str, Any]:
    """Run every step an analysis declares and return the results document.

    Raises :class:`impactkit.errors.SpecError` / ``InputError`` (exit 2) for unusable
    input and :class:`impactkit.errors.CheckFailed` (exit 1) when the data fail their
    contract: no estimate is made from a panel that is not what the analysis assumes.
    """
    from impactkit.contracts import load_contract, validate
    from impactkit.io import read_table

    from threadpoolctl import threadpool_limits

    spec = analysis_dir if isinstance(analysis_dir, AnalysisSpec) else load_analysis(analysis_dir)
    # One BLAS thread: the numbers then do not depend on the machine's core count (and the
    # small dense algebra here runs faster without thread hand-offs).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImpactkitWarning)
        results = _run(spec)
    notes = [str(w.message) for w in caught if issubclass(w.category, ImpactkitWarning)]
    results["warnings"] = sorted(set(notes))
    return to_plain(results)


def _run(spec: AnalysisSpec) -> dict[str, Any]:
    from impactkit.contracts import load_contract, validate
    from impactkit.io import read_table

    seed = spec.seeds.entropy
    hashes = _input_hashes(spec)
    contract = load_contract(spec.path(spec.data.contract))
    frame = read_table(spec.path(spec.data.file), contract=contract)
    report = validate(frame, contract)
    if not report.ok:
        failed = report.failed
        names = ", ".join(f"{r['rule']}({r['column']})" if r.get("column") else str(r["rule"])
                          for r in to_plain(failed.head(5)))
        raise CheckFailed(f"{spec.data.file}: {len(failed)} contract rule(s) fail: {names}; "
                          f"see `impactkit validate {spec.path(spec.data.file)} --contract {spec.path(spec.data.contract)}`")
    panel = prepare_panel(frame, spec)
    results: dict[str, Any] = {"schema": SCHEMA, "analysis": analysis_section(spec),
                               "data": data_section(spec, panel, contract, hashes),
                               "validation": validation_section(report)}
    did_out = did_sections(spec, panel, seed)
    head = did_out.pop("_headline")
    results.update({k: did_out[k] for k in ("estimators", "event_study", "wild_bootstrap",
                                            "randomization_inference") if k in did_out})
    if "bacon" in did_out:
        results["bacon"] = did_out["bacon"]
    iv = iv_section(spec, panel) if spec.estimators.iv and spec.design.take_up else None
    if iv is not None:
        results["iv"] = iv
        results["estimators"].append(_row(ESTIMATOR_LABELS["iv"], "iv", outcome_column(spec), iv["late"],
                                          iv["late"].get("n"), f"cohort {iv['window']['cohort']} vs never treated, "
                                          f"{iv['window']['pre']} and {iv['window']['post']}; {spec.design.take_up} "
                                          f"instrumented by {spec.design.treated}; unit and wave effects absorbed"))
    results["headline"] = headline_section(spec, head, iv, results["data"], did_out)
    results.update(checks_sections(spec, panel, seed))
    take_up = iv["first_stage"]["estimate"] if iv else None
    results["power"] = power_section(spec, panel, take_up, head["estimate"])
    facts = evidence_facts(spec, results)
    scale = scale_section(spec, facts)
    if scale is not None:
        results["cost"] = scale.pop("cost", None)
        results["scale"] = scale
    results["seeds"] = {"entropy": seed, "purposes": list(SEED_PURPOSES)}
    if scale is not None:
        results["seeds"]["scale_mc"] = (scale.get("options") or {}).get("seed")
    results["provenance"] = {"impactkit_version": __version__, "inputs": hashes,
                             "command": f"impactkit rerun analyses/{spec.analysis.name}"}
    return results


def headline_section(spec: AnalysisSpec, head: dict[str, Any], iv: dict[str, Any] | None,
                     data: dict[str, Any], did_out: dict[str, Any]) -> dict[str, Any]:
    """The effect in plain terms: log points -> percent -> money per household per year."""
    log_scale = spec.outcomes.transform == "log"
    base_income = data["baseline_mean_income"]
    out = {"estimator": head["estimator"], "outcome": head["outcome"], "scale": "log" if log_scale else "level",
           "population": f"all {spec.analysis.unit_label}s of served communities (intention to treat)",
           "estimate": head["estimate"], "std_error": head["std_error"], "conf_low": head["conf_low"],
           "conf_high": head["conf_high"], "p_value": head["p_value"],
           "n_units": did_out["n_units"], "n_clusters": did_out["n_clusters"]}
    if log_scale:
        out.update({"percent": _pct(head["estimate"]), "percent_low": _pct(head["conf_low"]),
                    "percent_high": _pct(head["conf_high"])})
        out.update({"money_per_household": base_income * out["percent"],
                    "money_low": base_income * out["percent_low"], "money_high": base_income * out["percent_high"]})
    else:
        out.update({"percent": head["estimate"] / base_income, "percent_low": head["conf_low"] / base_income,
                    "percent_high": head["conf_high"] / base_income, "money_per_household": head["estimate"],
                    "money_low": head["conf_low"], "money_high": head["conf_high"]})
    two = did_out.get("_two_year")
    if two is not None:
        out["two_year"] = {**two, "event_time": 2,
                           "percent": _pct(two["estimate"]) if log_scale else None,
                           "percent_low": _pct(two["conf_low"]) if log_scale else None,
                           "percent_high": _pct(two["conf_high"]) if log_scale else None}
    if iv is not None:
        late = iv["late"]
        out["tot"] = {"estimator": ESTIMATOR_LABELS["iv"], "estimate": late["estimate"],
                      "conf_low": late["conf_low"], "conf_high": late["conf_high"],
                      "percent": _pct(late["estimate"]) if log_scale else None,
                      "percent_low": _pct(late["conf_low"]) if log_scale else None,
                      "percent_high": _pct(late["conf_high"]) if log_scale else None,
                      "take_up": iv["first_stage"]["estimate"]}
    return out
