"""``analysis.toml`` on the Dask engine: validate, then the headline estimators, by reductions.

The chain is the pandas engine's (:mod:`impactkit.analysis.run`), one way: read lazily ->
validate against the contract (the gate: a failing contract stops the run, exit 1) -> derive
the analysis columns per partition (:func:`impactkit.analysis.prepare.prepare_panel`) ->
TWFE with CRV1 and the wild cluster bootstrap -> Callaway-Sant'Anna with the multiplier
bootstrap, simple and dynamic aggregates and the pre-trend test -> the headline in percent and
money. Seeds are the analysis' (``[seeds] entropy``), so the numbers equal the pandas engine's.

What runs where: the client (this process) holds the spec, the reduced sums (Gram matrices,
per-cluster scores, per-(cluster, cohort) influence sums) and does the small dense algebra and
the bootstrap draws; the workers read the Parquet partitions and do every pass over rows.

Not distributed yet (the pandas engine computes them): Sun-Abraham, 2SLS, Goodman-Bacon,
randomization inference, the design checks, power and scale readiness.
"""

from __future__ import annotations

import warnings
from typing import Any

from impactkit.errors import CheckFailed, ImpactkitWarning
from impactkit.results import to_plain

LABELS = {"twfe": "Two-way fixed effects", "cs": "Callaway-Sant'Anna (doubly robust)"}
PANDAS_ONLY = ("sa", "iv", "bacon", "randomization_inference", "checks", "power", "scale")


def _row(estimator: str, method: str, outcome: str, values: dict[str, Any], n: Any, note: str) -> dict[str, Any]:
    return {"estimator": estimator, "method": method, "outcome": outcome, "estimate": values.get("estimate"),
            "std_error": values.get("std_error"), "conf_low": values.get("conf_low"),
            "conf_high": values.get("conf_high"), "p_value": values.get("p_value"), "n": n, "note": note}


def run_estimates(spec) -> dict[str, Any]:
    """The validation summary and the TWFE / Callaway-Sant'Anna results of ``spec`` on Dask
    (call inside :func:`impactkit.distributed.cluster.dask_client`)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImpactkitWarning)
        results = _run(spec)
    results["warnings"] = sorted({str(w.message) for w in caught if issubclass(w.category, ImpactkitWarning)})
    return to_plain(results)


def _run(spec) -> dict[str, Any]:
    from impactkit.analysis.prepare import outcome_column, prepare_panel
    from impactkit.contracts import load_contract
    from impactkit.distributed import contracts, cs, twfe
    from impactkit.distributed.data import by_unit, read_panel

    d, e, seed = spec.design, spec.estimators, spec.seeds.entropy
    contract = load_contract(spec.path(spec.data.contract))
    location = spec.data.file if "://" in spec.data.file else spec.path(spec.data.file)   # object store or local
    frame = by_unit(read_panel(location), d.unit)
    report = contracts.validate(frame, contract, source=spec.data.file)
    if not report.ok:
        failed = report.failed
        names = ", ".join(f"{r['rule']}({r['column']})" if r.get("column") else str(r["rule"])
                          for r in to_plain(failed.head(5)))
        raise CheckFailed(f"{spec.data.file}: {len(failed)} contract rule(s) fail: {names}")
    panel = frame.map_partitions(prepare_panel, spec, meta=prepare_panel(frame._meta, spec))
    y = outcome_column(spec)
    common = {"y": y, "unit": d.unit, "time": d.time, "cluster": d.cluster, "weights": d.weights}
    twfe_result, reduced = twfe.estimate_twfe(panel, treated=d.treated, cohort=d.cohort, **common)
    twfe_row = twfe_result.tidy().iloc[0].to_dict()
    wild = twfe.wild_bootstrap_from_sums(reduced, B=e.wild_bootstrap_draws, weights=e.wild_bootstrap_weights,
                                         seed=seed).tidy().iloc[0].to_dict()
    cs_result = cs.estimate_cs(panel, cohort=d.cohort, covariates=e.covariates or None, control=e.cs_control,
                               est=e.cs_est, bootstrap=True, biters=e.multiplier_draws, seed=seed,
                               allow_unbalanced=e.cs_allow_unbalanced, **common)
    simple, dynamic = cs_result.aggregate("simple"), cs_result.aggregate("dynamic")
    pretrend = cs_result.pretrend_test()
    rows = {"twfe": _row(LABELS["twfe"], "twfe", y, twfe_row, twfe_row.get("n"),
                         f"unit and wave fixed effects; CRV1 SEs clustered by {d.cluster}"),
            "cs": _row(LABELS["cs"], "cs", y, vars(simple), simple.n,
                       f"{e.cs_control}-treated comparison; analytic influence-function SEs clustered by {d.cluster}")}
    estimators = [rows[k] for k in ("twfe", "cs") if k in e.compare or k == e.headline]
    event = dynamic.rows.copy()
    band = dynamic.band()
    if band is not None:
        event["band_low"], event["band_high"] = band["band_low"].to_numpy(), band["band_high"].to_numpy()
    baseline = d.baseline if d.baseline is not None else int(panel[d.time].min().compute())
    base = panel[(panel[d.time] == baseline) & (panel["ever_treated"] == 1)]
    baseline_mean = float(base[spec.outcomes.primary].mean().compute())
    head = rows.get(e.headline, rows["cs"])
    return {"engine": "dask", "analysis": {"name": spec.analysis.name, "title": spec.analysis.title,
                                          "currency": spec.outcomes.currency, "unit_label": spec.analysis.unit_label,
                                          "outcome_units": spec.outcomes.units},
            "validation": {"ok": report.ok, "n_rules": int(len(report.results)), "n_rows": report.n_rows,
                           "n_units": report.n_units},
            "estimators": estimators,
            "event_study": {"rows": to_plain(event.reset_index(drop=True)), "critical_value": dynamic.critical_value,
                            "pretrend": {"statistic": pretrend.statistic, "df": pretrend.df,
                                         "p_value": pretrend.p_value}},
            "wild_bootstrap": {"estimate": wild["estimate"], "p_value": wild["p_value"], "conf_low": wild["conf_low"],
                               "conf_high": wild["conf_high"], "B": int(wild["B"]), "weights": wild["weights"],
                               "n_clusters": int(wild["n_clusters"])},
            "headline": _headline(spec, head, baseline_mean),
            "not_distributed": list(PANDAS_ONLY)}


def _headline(spec, head: dict[str, Any], baseline_mean: float) -> dict[str, Any]:
    """The headline in its right terms, by the pandas engine's rules (:mod:`impactkit.analysis.outcome`)."""
    from impactkit.analysis.outcome import effect_scale, effect_terms, money_terms, unit_words

    o = spec.outcomes
    scale = effect_scale(o.kind, o.transform)
    out = {**head, "scale": scale, "units": unit_words(scale, o.units, o.currency), "baseline_mean": baseline_mean}
    out.update(effect_terms(head["estimate"], head["conf_low"], head["conf_high"], scale))
    money = money_terms(o.kind, scale, head["estimate"], head["conf_low"], head["conf_high"], baseline_mean)
    if money:
        out.update({"money_per_unit": money["money"], "money_low": money["money_low"], "money_high": money["money_high"]})
    return out
