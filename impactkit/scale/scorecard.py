"""``score()``: portfolio -> gates, scores, ranks, Monte Carlo probabilities, tornado.

Data flow (one way): files -> :mod:`spec` -> :mod:`criteria` (intervals) -> point criteria and
:mod:`aggregate` -> :mod:`uncertainty` (Monte Carlo, tornado) -> :class:`ScoreResult`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from impactkit.errors import InputError
from impactkit.limits import MAX_SCALE_DRAWS
from impactkit.scale import cost as cost_mod
from impactkit.scale.accounts import FROM_ACCOUNTS, FROM_ESTIMATE, FROM_FILE, apply_accounts, restate_benefit
from impactkit.scale.aggregate import gate_status, ranks, weighted_geometric_mean, weighted_sum
from impactkit.scale.criteria import GATES, SLOTS, Inputs, build_inputs, criteria_values, gate_floors, gate_passes
from impactkit.scale.evidence import check_estimate_facts, nesta_level, post_study_probability
from impactkit.scale.results import ScoreResult
from impactkit.scale.spec import CRITERIA, LoadedPortfolio, Options, load_portfolio
from impactkit.scale.alternatives import alternatives_table
from impactkit.scale.atscale import RISKS, assess, budget_summary, cost_curve, cost_streams
from impactkit.scale.flips import assumption_flips
from impactkit.scale.readiness import location_readiness
from impactkit.scale.uncertainty import MonteCarlo, mc_standard_error, rank_probabilities, simulate, tornado

DEFAULT_DRAWS = 4000


def _warn_unused_links(loaded: LoadedPortfolio, estimates: dict[str, Any] | None) -> None:
    """Say so when an intervention links an analysis whose estimate was not passed in."""
    import warnings

    from impactkit.errors import ImpactkitWarning

    for item in loaded.interventions:
        link = item.spec.evidence.impactkit_estimate
        if link is not None and link.analysis and link.key not in (estimates or {}):
            warnings.warn(f"{item.spec.id}: evidence links the analysis '{link.analysis}' but no estimate "
                          f"'{link.key}' was passed: its declared evidence level is used (score(..., linked=True) "
                          "runs the linked analysis, as `impactkit score` does)", ImpactkitWarning, stacklevel=3)


def score(portfolio: str | os.PathLike | LoadedPortfolio, *, estimates: dict[str, Any] | None = None,
          costs: dict[str, Any] | None = None, draws: int | None = None, seed: int | None = None,
          linked: bool = False, simulator: Callable[..., MonteCarlo] | None = None) -> ScoreResult:
    """Score a portfolio of interventions for scale readiness.

    Parameters
    ----------
    portfolio : path to a portfolio YAML file, or a :class:`LoadedPortfolio`.
    estimates : ``{key: facts}`` for interventions whose evidence links an impactkit estimate
        (``evidence.impactkit_estimate.key``); facts: design, estimate, conf_low, conf_high and
        optionally pretrend_p, n_clusters, differential_attrition_p, balance_joint_p, power, and
        the money benefit per participant per year ``benefit_per_participant_year`` (with
        ``_low``/``_high`` from the impact CI, ``benefit_currency``, ``benefit_price_year``),
        which then replaces the file's benefit in the BCR, NPV and IRR.
    costs : ``{intervention_id: accounts}``: programme accounts (currency, price_year, source,
        fixed_cost, variable_cost_per_participant, pilot_participants, scale_participants,
        benefit_per_participant_year; numbers or [low, high]) laid over the intervention's
        ``costs`` block figure by figure (:mod:`impactkit.scale.accounts`).
    draws : Monte Carlo draws (default: the portfolio's ``options.draws``, else 4000).
    seed : seed of the draws (default: the portfolio's ``options.seed``).
    linked : must be False here; ``impactkit.score(..., linked=True)``
        (:func:`impactkit.analysis.link.score`) runs the analyses that intervention files link
        and passes their estimates and accounts, as ``impactkit score`` does.
    simulator : the Monte Carlo, a function of ``(inputs, weights, gates, options, draws, seed)``
        returning a :class:`impactkit.scale.uncertainty.MonteCarlo`; default
        :func:`impactkit.scale.uncertainty.simulate` (one stream, in this process). The Dask engine
        passes :func:`impactkit.distributed.fanout.portfolio_simulator` (blocks of draws on futures,
        one seed per block).

    The model (gates, criteria, aggregation, uncertainty) and its sources are documented in
    ``docs/scale-model.md`` and the docstrings of the ``impactkit.scale`` modules.
    """
    loaded = portfolio if isinstance(portfolio, LoadedPortfolio) else load_portfolio(portfolio)
    original = loaded
    if linked:  # the scale layer never imports the analysis layer: impactkit.score composes the two
        raise InputError("linked=True: call impactkit.score (impactkit.analysis.link.score), which runs the "
                         "linked analyses and passes their estimates here")
    _warn_unused_links(loaded, estimates)
    loaded, cost_origins, accounts = apply_accounts(loaded, costs)
    estimates, restated = _restate_estimates(loaded, estimates, accounts)
    spec = loaded.spec
    opts: Options = spec.options
    n_draws = int(draws if draws is not None else (opts.draws or DEFAULT_DRAWS))
    if n_draws < 100:
        raise InputError(f"draws: need at least 100 Monte Carlo draws, got {n_draws}")
    if n_draws > MAX_SCALE_DRAWS:
        raise InputError(f"draws: at most {MAX_SCALE_DRAWS:,} Monte Carlo draws (impactkit.limits), got {n_draws:,}")
    seed = seed if seed is not None else opts.seed
    inputs = build_inputs(loaded.interventions, estimates, opts)
    weights = np.array([spec.weights[c] for c in CRITERIA])

    raw, readiness, use = inputs.point()
    crit, package, bottleneck = criteria_values(raw, readiness, use, inputs, opts)
    geo = weighted_geometric_mean(crit, weights, opts.score_floor)
    wsum = weighted_sum(crit, weights)
    status = _gate_status(inputs, spec.gates, opts)
    passed_all = (status == "passed").all(axis=1)
    n_passed = (status == "passed").sum(axis=1)
    rank_point = ranks(n_passed, geo)

    mc = (simulator or simulate)(inputs, weights, spec.gates, opts, n_draws, seed)
    rank_prob = rank_probabilities(mc.ranks)
    p_gate = mc.passes.mean(axis=0)
    p_all = mc.passes.all(axis=-1).mean(axis=0)

    ids, n = inputs.ids, len(inputs.ids)
    bottleneck_names = [inputs.comp_names[i][bottleneck[i]] for i in range(n)]
    p_bottleneck = np.array([float((mc.bottleneck[:, i] == bottleneck[i]).mean()) for i in range(n)])
    findings = [bottleneck_finding(inputs, i, int(bottleneck[i])) for i in range(n)]
    nesta = nesta_level(raw["evidence_level"], inputs.positive_change, inputs.independent, inputs.cost_known,
                        inputs.replicated)
    se = (lambda p: mc_standard_error(p, n_draws))

    table = pd.DataFrame({
        "intervention": list(ids),
        "name": list(inputs.names),
        "rank": rank_point.astype(int),
        "score_geometric": geo,
        "score_weighted_sum": wsum,
        "gates_passed": passed_all,
        "n_gates_passed": n_passed.astype(int),
        "failed_gates": ["; ".join(g for g, s in zip(GATES, status[i]) if s == "failed") for i in range(n)],
        "uncertain_gates": ["; ".join(g for g, s in zip(GATES, status[i]) if s == "uncertain") for i in range(n)],
        "bottleneck": bottleneck_names,
        "p_bottleneck": p_bottleneck,
        "mcse_p_bottleneck": se(p_bottleneck),
        "bottleneck_finding": [f[0] for f in findings],
        "measure_next": [f[1] for f in findings],
        "strategic_option": [f[2] for f in findings],
        "evidence_level": [_level_text(g.low, g.high) for g in inputs.grades],
        "evidence_from": list(inputs.evidence_from),
        "nesta_level": nesta.astype(int),
        "government_level": [_level_text(inputs.low[i, SLOTS.index("government")], inputs.high[i, SLOTS.index("government")]) for i in range(n)],
    })
    for r in range(n):
        table[f"p_rank_{r + 1}"] = rank_prob[:, r]
    table["mcse_p_rank_1"] = se(rank_prob[:, 0])
    table["p_pass_gates"] = p_all
    table["mcse_p_pass_gates"] = se(p_all)
    table["plausibility_flags"] = [plausibility_flag(item, inputs, i, opts) for i, item in enumerate(loaded.interventions)]
    table["data_labels"] = [data_labels(inputs, i, accounts.get(ident)) for i, ident in enumerate(ids)]
    table = table.sort_values(["rank"], kind="stable").reset_index(drop=True)

    criteria = _criteria_frame(inputs, crit, mc, weights)
    gate_frame = _gate_frame(inputs, status, p_gate, spec.gates, opts)
    gate_frame["mcse_p_pass"] = se(gate_frame["p_pass"].to_numpy())
    rank_se = pd.DataFrame(se(rank_prob), columns=[f"rank_{r + 1}" for r in range(n)]).assign(intervention=list(ids))
    rank_frame = pd.DataFrame(rank_prob, columns=[f"rank_{r + 1}" for r in range(n)]).assign(intervention=list(ids))
    rank_frame = rank_frame[["intervention", *[f"rank_{r + 1}" for r in range(n)]]]
    return ScoreResult(
        table=table,
        criteria=criteria,
        rank_probabilities=rank_frame,
        gates=gate_frame,
        tornado=tornado(crit, weights, n_passed, ids, floor=opts.score_floor),
        components=_component_frame(inputs, bottleneck),
        costs=_cost_frame(loaded, inputs, opts, cost_origins, restated, accounts),
        evidence=_evidence_frame(inputs, raw, nesta),
        report_only=(_report_only(original, n_draws, seed) if (estimates or accounts) else None),
        **decision_frames(loaded, inputs, weights, spec.gates, opts, accounts, n_draws, seed),
        rank_probabilities_se=rank_se[["intervention", *[f"rank_{r + 1}" for r in range(n)]]],
        floor_sensitivity=floor_sensitivity(ids, crit, weights, n_passed, passed_all, opts.score_floor),
        weights={c: float(w) for c, w in zip(CRITERIA, weights)},
        floors={g: (None if math.isinf(f) else float(f)) for g, f in gate_floors(spec.gates).items()},
        options={"draws": n_draws, "seed": seed, "discount_rate": opts.discount_rate, "hurdle_rate": opts.hurdle_rate,
                 "horizon_years": opts.horizon_years, "weight_concentration": opts.weight_concentration,
                 "portfolio": spec.name, "score_floor": opts.score_floor,
                 "default_prior": list(opts.default_prior),
                 **({"cost_accounts": {k: a.source for k, a in sorted(accounts.items())}} if accounts else {})},
    )


REPORT_ONLY_COLUMNS = ("intervention", "rank", "n_gates_passed", "score_geometric", "p_rank_1", "mcse_p_rank_1",
                       "p_pass_gates", "mcse_p_pass_gates", "failed_gates", "uncertain_gates", "bottleneck",
                       "bottleneck_finding", "evidence_level", "nesta_level")


def _report_only(loaded: LoadedPortfolio, draws: int, seed: int | None) -> pd.DataFrame:
    """The ranking from the intervention files alone (no linked estimate, no accounts)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = score(loaded, draws=draws, seed=seed).table
    return table[list(REPORT_ONLY_COLUMNS)].copy()


def point_ranking(inputs: Inputs, weights: np.ndarray, gates, opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """(ranks, passes every gate) at the central inputs, by the rules of :func:`score`."""
    raw, readiness, use = inputs.point()
    crit, _, _ = criteria_values(raw, readiness, use, inputs, opts)
    status = _gate_status(inputs, gates, opts)
    return (ranks((status == "passed").sum(axis=1), weighted_geometric_mean(crit, weights, opts.score_floor)),
            (status == "passed").all(axis=1))


def _figure(inputs: Inputs, i: int, slot: str) -> tuple[float, float, float] | None:
    k = SLOTS.index(slot)
    if inputs.unknown[i, k]:
        return None
    return float(inputs.low[i, k]), float(inputs.center[i, k]), float(inputs.high[i, k])


def _proportional_effect(item, inputs: Inputs, i: int) -> float | None:
    impact = inputs.impacts[i]
    if impact is None:
        return None
    if impact.get("from") == "impactkit estimate" or item.spec.evidence.impact_scale == "proportional":
        return float(impact["estimate"])
    return None


def plausibility_flag(item, inputs: Inputs, i: int, opts: Options) -> str:
    """'too good to be true?' when a proportional effect exceeds ``options.implausible_effect``."""
    effect = _proportional_effect(item, inputs, i)
    if effect is not None and effect > opts.implausible_effect:
        return (f"effect +{effect:.0%} > +{opts.implausible_effect:.0%}: too good to be true? "
                "large effects from small studies shrink on replication")
    return ""


def _locations(item, inputs: Inputs, i: int, floor: float) -> list[dict[str, Any]]:
    spec = item.spec
    sites = ([spec.home_site] if spec.home_site else []) + [s for s in spec.locations if s != spec.home_site]
    rows = []
    for site in sites:
        comps = []
        for c, comp in enumerate(spec.components):
            r = (float(inputs.readiness_low[i, c]), float(inputs.readiness_high[i, c]))
            u = (float(inputs.use_low[i, c]), float(inputs.use_high[i, c]))
            unknown = bool(inputs.readiness_unknown[i, c] or inputs.use_unknown[i, c])
            if site != spec.home_site:
                levels = comp.sites.get(site)
                rb = levels.readiness.bounds() if levels is not None else None
                ub = levels.use.bounds() if levels is not None else None
                r = rb if rb is not None else (r if levels is None else (1.0, 9.0))
                u = ub if ub is not None else (1.0, 9.0)
                unknown = ub is None or (levels is not None and rb is None)
            comps.append((comp.name, r, u, unknown))
        info = location_readiness(comps, floor)
        k = [c[0] for c in comps].index(info["bottleneck"])
        _, r, u, _ = comps[k]
        option = ("measure first" if info["data_gap"]
                  else strategic_option(0.5 * (r[0] + r[1]), 0.5 * (u[0] + u[1])))
        rows.append({"intervention": spec.id, "location": site, **info, "strategic_option": option,
                     "home": site == spec.home_site})
    return rows


def decision_frames(loaded: LoadedPortfolio, inputs: Inputs, weights: np.ndarray, gates, opts: Options,
                    accounts: dict, draws: int, seed: int | None) -> dict[str, Any]:
    """At-scale effect and costs, cost curve, cost streams by payer, alternatives, locations and the
    single assumptions that change the recommendation (docs/scale-model.md sec. 9)."""
    at_scale, curves, streams, alts, locs = [], [], [], [], []
    bcr_of: dict[str, tuple[float, float, float] | None] = {}
    for i, item in enumerate(loaded.interventions):
        ident = item.spec.id
        locs.extend(_locations(item, inputs, i, gates.readiness_floor))
        figures = {"fixed": _figure(inputs, i, "fixed_cost"), "variable": _figure(inputs, i, "variable_cost"),
                   "scale": _figure(inputs, i, "scale_participants"), "benefit": _figure(inputs, i, "benefit_year")}
        pilot = item.spec.costs.pilot_participants.bounds()
        figures["pilot"] = None if pilot is None else (pilot[0], 0.5 * (pilot[0] + pilot[1]), pilot[1])
        risks = [(float(inputs.low[i, SLOTS.index(r)]), float(inputs.high[i, SLOTS.index(r)])) for r in RISKS]
        acc = accounts.get(ident)
        block = assess(ident, figures, risks, acc, opts, max(1000, min(draws, 4000)), seed,
                       effect=_proportional_effect(item, inputs, i))
        if block is None:
            bcr_of[ident] = None
            continue
        block["cost_status"] = getattr(acc, "status", None)
        block["data_labels"] = data_labels(inputs, i, acc)
        at_scale.append(block)
        q = block["bcr_at_scale_q"]
        bcr_of[ident] = (q[0], block["bcr_at_scale"], q[2])
        curves.append(cost_curve(ident, figures["fixed"][1], figures["variable"][1],
                                 None if pilot is None else figures["pilot"][1], figures["scale"][1],
                                 figures["benefit"][1], block["voltage_factor"], acc, opts))
        stream = cost_streams(ident, figures["fixed"][1], figures["variable"][1], figures["scale"][1], acc, opts)
        streams.append(stream)
        block.update(budget_summary(stream))
    for block in at_scale:
        ident = block["intervention"]
        table = alternatives_table(ident, bcr_of[ident], block["data_labels"] or "cost data", loaded.spec.alternatives,
                                   bcr_of)
        alts.append(table.assign(focus=ident))
    flips = assumption_flips(inputs, lambda x: point_ranking(x, weights, gates, opts))
    return {
        "at_scale": at_scale,
        "cost_curve": pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
        "cost_streams": pd.concat(streams, ignore_index=True) if streams else pd.DataFrame(),
        "alternatives": pd.concat(alts, ignore_index=True) if alts else pd.DataFrame(),
        "locations": pd.DataFrame(locs),
        "assumption_flips": flips,
    }


FLOORS_SHOWN = (0.001, 0.01, 0.05, 0.1)


def floor_sensitivity(ids, crit: np.ndarray, weights: np.ndarray, n_passed: np.ndarray, passed_all: np.ndarray,
                      floor: float) -> pd.DataFrame:
    """Point ranks under other criterion floors, the weighted sum, and the old rule (all-gates
    passers first, then score at the floor): shows how the order moves with the floor."""
    out = {"intervention": list(ids)}
    for f in sorted(set(FLOORS_SHOWN) | {floor}):
        out[f"rank_floor_{f:g}"] = ranks(n_passed, weighted_geometric_mean(crit, weights, f)).astype(int)
    out["rank_weighted_sum"] = ranks(n_passed, weighted_sum(crit, weights)).astype(int)
    out[f"rank_all_gates_only_floor_{floor:g}"] = ranks(passed_all, weighted_geometric_mean(crit, weights, floor)).astype(int)
    return pd.DataFrame(out)


# Scaling Readiness strategic options for a bottleneck (Sartas, Schut, Proietti, Thiele & Leeuwis 2020; the RTB guide: improve,
# outsource, substitute, relocate, reorient, postpone, stop); the rule that picks one is ours.
STRATEGIC_OPTIONS = ("improve", "outsource", "substitute", "relocate", "reorient", "postpone", "stop")


def strategic_option(readiness: float, use: float) -> str:
    """Suggested Scaling Readiness option for a bottleneck component from its levels (our rule,
    docs/scale-model.md sec. 2): readiness <= 3 (not yet proven in a model) -> 'improve' it;
    readiness >= 6 but use <= 3 (works, but only the project uses it) -> 'outsource' it to a
    partner who already reaches users; readiness 4-5 with use <= 3 -> 'reorient' (change the
    component or the target users); readiness and use both >= 4 but the product is below the
    gate -> 'improve'. 'substitute', 'relocate', 'postpone' and 'stop' need facts the file
    does not hold (an alternative component, another site, a time plan, a failed test) and are
    left to the analyst."""
    if readiness <= 3:
        return "improve"
    if use <= 3:
        return "outsource" if readiness >= 6 else "reorient"
    return "improve"


def bottleneck_finding(inputs: Inputs, i: int, c: int) -> tuple[str, str, str]:
    """("bottleneck" | "data gap", what to measure or do, strategic option) for component c.

    A component that is weakest because a level is unknown (the whole 1-9 ladder) is a data
    gap: the finding is what to measure, not what to fix.
    """
    name = inputs.comp_names[i][c]
    r_unk = bool(inputs.readiness_unknown[i, c]) if inputs.readiness_unknown is not None else False
    u_unk = bool(inputs.use_unknown[i, c]) if inputs.use_unknown is not None else False
    if r_unk or u_unk:
        what = " and ".join(w for w, flag in (("innovation readiness", r_unk), ("innovation use", u_unk)) if flag)
        return "data gap", f"measure the {what} level of '{name}' (unknown: scored over the whole 1-9 ladder)", \
            "measure first"
    r = 0.5 * (inputs.readiness_low[i, c] + inputs.readiness_high[i, c])
    u = 0.5 * (inputs.use_low[i, c] + inputs.use_high[i, c])
    option = strategic_option(r, u)
    return "bottleneck", f"{option} '{name}' (readiness {r:g} x use {u:g})", option


def data_labels(inputs: Inputs, i: int, accounts) -> str:
    """What the numbers of intervention i rest on, for every output that shows them."""
    labels = []
    if inputs.linked_data and inputs.linked_data[i] == "simulated":
        labels.append("linked evidence from a SIMULATED panel")
    if accounts is not None:
        status = getattr(accounts, "status", None)
        labels.append(f"costs from {status.upper() if status else 'analysis'} accounts")
    return "; ".join(labels)


def _level_text(low: float, high: float) -> str:
    low_i, high_i = int(round(low)), int(round(high))
    return str(low_i) if low_i == high_i else f"{low_i}-{high_i}"


def _gate_status(inputs: Inputs, gates, opts: Options) -> np.ndarray:
    at_low, at_high = [], []
    for end, out in (("low", at_low), ("high", at_high)):
        raw, readiness, use = inputs.at(end)
        _, package, _ = criteria_values(raw, readiness, use, inputs, opts)
        out.append(gate_passes(raw, package, inputs, gates, opts))
    return gate_status(at_low[0], at_high[0])


def _criteria_frame(inputs: Inputs, crit: np.ndarray, mc, weights: np.ndarray) -> pd.DataFrame:
    q05 = np.quantile(mc.criteria, 0.05, axis=0)
    q95 = np.quantile(mc.criteria, 0.95, axis=0)
    slots_of = {
        "scaling_readiness": (), "evidence_strength": ("evidence_level",), "credibility": ("power", "prior"),
        "cost_effectiveness": ("cost_unknown_u",), "replicability": ("designed_for_replication", "replications"),
        "partner": ("partner_capacity", "partner_alignment"), "government_adoption": ("government",),
        "financial_sustainability": ("cost_recovery",), "women": ("women_share", "women_benefit"),
        "spillovers": ("spillovers",),
        "voltage": ("risk_population", "risk_situation", "risk_ingredients", "risk_diseconomies"),
    }
    rows = []
    for i, ident in enumerate(inputs.ids):
        for k, name in enumerate(CRITERIA):
            slots = slots_of[name]
            unknown = [s for s in slots if inputs.unknown[i, SLOTS.index(s)]]
            rows.append({"intervention": ident, "criterion": name, "value": float(crit[i, k]),
                         "q05": float(q05[i, k]), "q95": float(q95[i, k]), "weight": float(weights[k]),
                         "unknown_inputs": ", ".join(unknown),
                         "sources": " | ".join(f"{s}: {inputs.sources[i][s]}" for s in slots if s in inputs.sources[i])})
    return pd.DataFrame(rows)


def _gate_frame(inputs: Inputs, status: np.ndarray, p_gate: np.ndarray, gates, opts) -> pd.DataFrame:
    floors = gate_floors(gates)
    rows = []
    for i, ident in enumerate(inputs.ids):
        for g, gate in enumerate(GATES):
            rows.append({"intervention": ident, "gate": gate, "floor": None if math.isinf(floors[gate]) else floors[gate],
                         "status": str(status[i, g]), "p_pass": float(p_gate[i, g])})
    return pd.DataFrame(rows)


def _component_frame(inputs: Inputs, bottleneck: np.ndarray) -> pd.DataFrame:
    rows = []
    for i, ident in enumerate(inputs.ids):
        for c, comp in enumerate(inputs.comp_names[i]):
            r = (inputs.readiness_low[i, c], inputs.readiness_high[i, c])
            u = (inputs.use_low[i, c], inputs.use_high[i, c])
            rows.append({"intervention": ident, "component": comp, "readiness": _level_text(*r), "use": _level_text(*u),
                         "scaling_readiness": 0.25 * (r[0] + r[1]) * (u[0] + u[1]),
                         "scaling_readiness_low": r[0] * u[0], "scaling_readiness_high": r[1] * u[1],
                         "bottleneck": bool(c == bottleneck[i])})
    return pd.DataFrame(rows)


def _restate_estimates(loaded: LoadedPortfolio, estimates: dict[str, Any] | None, accounts: dict
                       ) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """Validate linked estimate facts and put their money benefit in the cost block's prices."""
    if not estimates:
        return estimates, {}
    out = dict(estimates)
    restated: dict[str, float] = {}
    for item in loaded.interventions:
        link = item.spec.evidence.impactkit_estimate
        if link is None or link.key not in out:
            continue
        facts = check_estimate_facts(link.key, out[link.key])
        out[link.key], factor = restate_benefit(link.key, facts, item.spec.costs, accounts.get(item.spec.id))
        if factor is not None:
            restated[item.spec.id] = factor
    return out, restated


def _cost_frame(loaded: LoadedPortfolio, inputs: Inputs, opts: Options,
                origins: dict[str, dict[str, str | None]], restated: dict[str, float],
                accounts: dict | None = None) -> pd.DataFrame:
    """Per intervention: cost per participant (pilot, scale), BCR, NPV, IRR, cost per unit of impact.

    Central figures use the interval centres (the point estimate for a benefit from an
    impactkit estimate); ``_low``/``_high`` combine the interval ends that make each figure
    smallest / largest (cost per participant falls with N; BCR and NPV rise with the benefit
    and fall with the cost). ``cost_source`` / ``benefit_source`` say where the figures came
    from; ``source_<figure>`` gives it figure by figure.
    """
    rate, years = opts.discount_rate, opts.horizon_years
    accounts = accounts or {}
    rows = []
    for i, item in enumerate(loaded.interventions):
        ident, c = item.spec.id, item.spec.costs
        origin = origins[ident]
        benefit_source = FROM_ESTIMATE if inputs.benefit_from_estimate[i] else origin["benefit_per_participant_year"]
        given = [o for name, o in origin.items() if name != "benefit_per_participant_year" and o is not None]
        cost_source = (FROM_ACCOUNTS if FROM_ACCOUNTS in given else FROM_FILE if given else None)
        row: dict[str, Any] = {"intervention": ident, "cost_known": bool(inputs.cost_known[i]),
                               "currency": c.currency, "price_year": c.price_year,
                               "cost_source": cost_source, "benefit_source": benefit_source,
                               "cost_status": getattr(accounts.get(ident), "status", None),
                               **{f"source_{name}": o for name, o in origin.items()},
                               "benefit_restated_by_price_index": restated.get(ident),
                               "discount_rate": rate, "hurdle_rate": opts.hurdle_rate, "horizon_years": years}

        def slot(name: str) -> tuple[float, float, float] | None:
            k = SLOTS.index(name)
            if inputs.unknown[i, k]:
                return None
            return float(inputs.low[i, k]), float(inputs.center[i, k]), float(inputs.high[i, k])

        pilot = c.pilot_participants.bounds()
        fixed, var, n_scale, benefit = slot("fixed_cost"), slot("variable_cost"), slot("scale_participants"), slot("benefit_year")
        row["pilot_participants"] = None if pilot is None else 0.5 * (pilot[0] + pilot[1])
        row["scale_participants"] = None if n_scale is None else n_scale[1]
        if benefit is not None:
            row.update({"benefit_per_participant_year": benefit[1], "benefit_per_participant_year_low": benefit[0],
                        "benefit_per_participant_year_high": benefit[2]})
        if fixed is None or var is None:
            rows.append(row)
            continue
        if pilot is not None:
            n_mid = 0.5 * (pilot[0] + pilot[1])
            row["cost_per_participant_pilot"] = float(cost_mod.cost_per_participant(fixed[1], var[1], n_mid))
            row["cost_per_participant_pilot_low"] = float(cost_mod.cost_per_participant(fixed[0], var[0], pilot[1]))
            row["cost_per_participant_pilot_high"] = float(cost_mod.cost_per_participant(fixed[2], var[2], pilot[0]))
        if n_scale is None:
            rows.append(row)
            continue
        cps = float(cost_mod.cost_per_participant(fixed[1], var[1], n_scale[1]))
        cps_low = float(cost_mod.cost_per_participant(fixed[0], var[0], n_scale[2]))
        cps_high = float(cost_mod.cost_per_participant(fixed[2], var[2], n_scale[0]))
        row.update({"cost_per_participant_scale": cps, "cost_per_participant_scale_low": cps_low,
                    "cost_per_participant_scale_high": cps_high})
        if benefit is not None and cps > 0:
            row["benefit_cost_ratio"] = float(cost_mod.benefit_cost_ratio(cps, benefit[1], rate, years))
            row["benefit_cost_ratio_low"] = float(cost_mod.benefit_cost_ratio(cps_high, benefit[0], rate, years))
            row["benefit_cost_ratio_high"] = (float(cost_mod.benefit_cost_ratio(cps_low, benefit[2], rate, years))
                                              if cps_low > 0 else math.inf)
            row["npv_per_participant"] = float(cost_mod.net_present_value(cps, benefit[1], rate, years))
            row["npv_per_participant_low"] = float(cost_mod.net_present_value(cps_high, benefit[0], rate, years))
            row["npv_per_participant_high"] = float(cost_mod.net_present_value(cps_low, benefit[2], rate, years))
            irr = cost_mod.internal_rate_of_return(cps, benefit[1], years)
            row["irr"] = irr
            row["irr_exceeds_hurdle"] = None if irr is None else bool(irr > opts.hurdle_rate)
        impact = inputs.impacts[i]
        if inputs.benefit_from_estimate[i]:
            # the estimate is in money: cost per unit of yearly benefit, CI from the benefit's CI
            point, lo, hi = cost_mod.cost_per_unit_impact(cps, benefit[1], benefit[0], benefit[2])
            row.update({"cost_per_unit_impact": point, "cost_per_unit_impact_low": lo,
                        "cost_per_unit_impact_high": hi, "impact_from": "impactkit estimate (money benefit)",
                        "impact_unit": f"{c.currency} {c.price_year} of yearly benefit per participant"})
        elif impact is not None:
            point, lo, hi = cost_mod.cost_per_unit_impact(cps, impact["estimate"], impact["conf_low"], impact["conf_high"])
            row.update({"cost_per_unit_impact": point, "cost_per_unit_impact_low": lo,
                        "cost_per_unit_impact_high": hi, "impact_from": impact["from"],
                        "impact_unit": item.spec.evidence.impact_unit})
        rows.append(row)
    return pd.DataFrame(rows)


def _evidence_frame(inputs: Inputs, raw: dict[str, np.ndarray], nesta: np.ndarray) -> pd.DataFrame:
    psp = post_study_probability(raw["power"], raw["prior"], inputs.alpha, inputs.studies)
    rows = []
    for i, ident in enumerate(inputs.ids):
        g = inputs.grades[i]
        hyp = bool(inputs.hypothesis[i])
        rows.append({"intervention": ident, "evidence_from": inputs.evidence_from[i], "design_level": g.base,
                     "sms_level_low": g.low, "sms_level_high": g.high, "downgrades": "; ".join(g.downgrades),
                     "unknown_grading": "; ".join(g.unknown), "nesta_level": int(nesta[i]),
                     "tests_hypothesis": hyp, "significant_studies": int(inputs.studies[i]),
                     "independent_evaluation": bool(inputs.independent[i]),
                     "prior": float(raw["prior"][i]), "power": float(raw["power"][i]),
                     "prior_source": inputs.sources[i].get("prior", ""), "power_source": inputs.sources[i].get("power", ""),
                     # None: no hypothesis was tested (outputs only), so no finding has a PSP
                     "post_study_probability": float(psp[i]) if hyp else None})
    return pd.DataFrame(rows)
