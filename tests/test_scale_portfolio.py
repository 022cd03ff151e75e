"""The source portfolio's verdicts, Monte Carlo properties, determinism, odd names, CLI.

Verdicts follow from the rules and the facts in analyses/interventions/*.yaml (quotes from the
CARE 2015 report), not from hand-set outcomes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import yaml

matplotlib.use("Agg")

from impactkit.atomic import dumps_json  # noqa: E402
from impactkit.errors import ImpactkitWarning, InputError  # noqa: E402
from impactkit.scale import load_intervention, load_portfolio, score  # noqa: E402
from impactkit.scale.cli import cli_score  # noqa: E402
from impactkit.scale.cost import net_present_value as cost_npv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PORTFOLIO = ROOT / "analyses" / "portfolio.yaml"
DRAWS = 2000
PERU_FACTS = {"design": "did", "estimate": 0.3, "conf_low": 0.12, "conf_high": 0.48, "pretrend_p": 0.41,
              "n_clusters": 109, "differential_attrition_p": 0.6, "balance_joint_p": 0.35, "power": 0.85}


@pytest.fixture(scope="module")
def result():
    return score(PORTFOLIO, draws=DRAWS, seed=7)


def _row(res, ident):
    table = res.tidy()
    return table[table["intervention"] == ident].iloc[0]


def _gate(res, ident, gate):
    g = res.gates
    return g[(g["intervention"] == ident) & (g["gate"] == gate)].iloc[0]


def test_pran_blocked_by_partner_alignment_despite_good_pilot(result):
    row = _row(result, "pran_dairy_pilot")
    assert "partner_alignment" in row["failed_gates"].split("; ")
    assert _gate(result, "pran_dairy_pilot", "partner_alignment")["p_pass"] == 0.0
    # the pilot's results carry evidence: the evidence gate passes (before-after, +78% production)
    assert _gate(result, "pran_dairy_pilot", "evidence")["status"] == "passed"
    # and the bottleneck is the component that depends on the partner's commitment
    assert row["bottleneck"] == "Processor purchase commitment (PRAN)"
    # a partner with aligned long-term interest (BRAC, same dairy model) passes the same gate
    assert _gate(result, "brac_dairy_hub", "partner_alignment")["status"] == "passed"


def test_allianz_blocked_by_financial_sustainability(result):
    row = _row(result, "allianz_microinsurance")
    assert "financial_sustainability" in row["failed_gates"].split("; ")
    assert _gate(result, "allianz_microinsurance", "financial_sustainability")["p_pass"] == 0.0
    # JITA, declared financially self-sustaining, passes it with certainty
    assert _gate(result, "jita", "financial_sustainability")["status"] == "passed"


def test_peru_tap_at_top_rung_of_government_adoption(result):
    spec = load_intervention(ROOT / "analyses/interventions/peru_tap.yaml").spec
    assert spec.government.policy is not None and spec.government.budget is not None
    assert _row(result, "peru_tap")["government_level"] == "4"
    crit = result.criteria
    value = crit[(crit.intervention == "peru_tap") & (crit.criterion == "government_adoption")]["value"].iloc[0]
    assert value == 1.0
    # unknown government involvement is the whole ladder, not zero
    assert _row(result, "jita")["government_level"] == "0-4"


def test_peru_evidence_from_estimate_or_declared_interval(result):
    without = _row(result, "peru_tap")
    # the report gives no design: unknown, the honest range 1-5 (not a declared DiD at 2-4)
    assert without["evidence_from"] == "design" and without["evidence_level"] == "1-5"
    good = score(PORTFOLIO, estimates={"peru_tap": PERU_FACTS}, draws=DRAWS, seed=7)
    row = _row(good, "peru_tap")
    assert row["evidence_from"] == "impactkit estimate" and row["evidence_level"] == "3"  # a clean DiD: SMS 3
    bad = score(PORTFOLIO, estimates={"peru_tap": {**PERU_FACTS, "pretrend_p": 0.001, "n_clusters": 12}},
                draws=DRAWS, seed=7)
    assert _row(bad, "peru_tap")["evidence_level"] == "1"
    ev = bad.evidence.set_index("intervention").loc["peru_tap"]
    assert "failed pre-trend test" in ev["downgrades"] and "fewer than 42 clusters" in ev["downgrades"]
    # PSP: the estimate's power only when it is design power; the unknown prior is the low default
    # [0.01, 0.25] (centre 0.13), not 0.5
    psp = good.evidence.set_index("intervention").loc["peru_tap", "post_study_probability"]
    assert abs(psp - 0.5 * 0.13 / (0.5 * 0.13 + 0.05 * 0.87)) < 1e-12  # post hoc power ignored: unknown, 0.5
    design = score(PORTFOLIO, estimates={"peru_tap": {**PERU_FACTS, "power_basis": "design"}}, draws=DRAWS, seed=7)
    psp = design.evidence.set_index("intervention").loc["peru_tap", "post_study_probability"]
    assert abs(psp - 0.85 * 0.13 / (0.85 * 0.13 + 0.05 * 0.87)) < 1e-12
    # cost per unit of impact is not computable: the report gives no costs (stated, not invented)
    assert not bool(good.costs.set_index("intervention").loc["peru_tap", "cost_known"])


def test_linked_estimate_missing_from_estimates_warns(tmp_path):
    spec = _intervention("a", "A")
    spec["evidence"]["impactkit_estimate"] = {"key": "a_est"}
    other = _intervention("b", "B")
    other["evidence"]["impactkit_estimate"] = {"key": "b_est"}
    p = _write_portfolio(tmp_path, [spec, other])
    with pytest.warns(ImpactkitWarning, match="intervention 'b'.*'b_est'"):
        res = score(p, estimates={"a_est": PERU_FACTS}, draws=200, seed=1)
    assert _row(res, "a")["evidence_from"] == "impactkit estimate"
    assert _row(res, "b")["evidence_from"] == "design"


def test_stray_estimate_key_is_an_input_error():
    with pytest.raises(InputError, match="not linked"):
        score(PORTFOLIO, estimates={"peru_tpa": PERU_FACTS}, draws=200, seed=1)


def test_unknown_means_whole_range(result):
    # BRAC's cost recovery is unknown: uniform on [0, 2] against a floor of 1 -> P(pass) = 1/2.
    # 2000 draws: standard error sqrt(.25/2000) = 0.011; tolerance 0.045 (4 SE).
    gate = _gate(result, "brac_dairy_hub", "financial_sustainability")
    assert gate["status"] == "uncertain" and 0.0 < gate["p_pass"] < 1.0
    assert abs(gate["p_pass"] - 0.5) < 0.045
    # Peru: the use level of veterinary inputs is unknown (1-9): the readiness gate is uncertain,
    # P(pass) = P(readiness*use >= 16) with readiness U{5,6,7} and use U{1..9} -- enumerate by hand
    hand = np.mean([[r * u >= 16 for u in range(1, 10)] for r in (5, 6, 7)])
    g = _gate(result, "peru_tap", "readiness")
    assert g["status"] == "uncertain" and 0.0 < g["p_pass"] < 1.0
    # other components can also be the minimum in some draws, so hand is an upper bound (plus 4 SE)
    assert g["p_pass"] <= hand + 0.045
    # unknown inputs widen the criterion's Monte Carlo interval; known point inputs do not
    crit = result.criteria.set_index(["intervention", "criterion"])
    assert crit.loc[("jita", "government_adoption"), "q95"] - crit.loc[("jita", "government_adoption"), "q05"] > 0.5
    assert crit.loc[("peru_tap", "government_adoption"), "q95"] == crit.loc[("peru_tap", "government_adoption"), "q05"]


def test_geometric_score_matches_hand_computation(result):
    crit = result.criteria
    for ident in ("peru_tap", "allianz_microinsurance"):
        rows = crit[crit.intervention == ident]
        hand = math.exp(sum(w * math.log(max(x, 0.01)) for x, w in zip(rows["value"], rows["weight"])))
        hand_sum = sum(w * x for x, w in zip(rows["value"], rows["weight"]))
        assert abs(_row(result, ident)["score_geometric"] - hand) < 1e-12
        assert abs(_row(result, ident)["score_weighted_sum"] - hand_sum) < 1e-12
    # Peru's scaling readiness: the minimum of readiness x use at interval midpoints / 81
    comps = result.components[result.components.intervention == "peru_tap"]
    expected = comps["scaling_readiness"].min() / 81
    value = crit[(crit.intervention == "peru_tap") & (crit.criterion == "scaling_readiness")]["value"].iloc[0]
    assert abs(value - expected) < 1e-12
    assert comps.loc[comps["bottleneck"], "component"].iloc[0] == _row(result, "peru_tap")["bottleneck"]


def test_rank_probabilities_sum_to_one(result):
    probs = result.rank_probabilities.drop(columns="intervention").to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-12)
    p_cols = [c for c in result.tidy().columns if c.startswith("p_rank_")]
    assert len(p_cols) == 7
    assert np.allclose(result.tidy()[p_cols].sum(axis=1), 1.0, atol=1e-12)


def test_same_seed_gives_identical_results(result):
    again = score(PORTFOLIO, draws=DRAWS, seed=7)
    assert dumps_json(again.to_dict()) == dumps_json(result.to_dict())
    other = score(PORTFOLIO, draws=DRAWS, seed=8)
    assert not np.array_equal(other.rank_probabilities.drop(columns="intervention").to_numpy(),
                              result.rank_probabilities.drop(columns="intervention").to_numpy())


def test_tornado_and_plots(result):
    t = result.tornado
    assert set(t["criterion"]) == set(result.weights)
    # a flip weight, where found, really changes the order: check one by recomputation
    from impactkit.scale.aggregate import ranks, weighted_geometric_mean
    from impactkit.scale.spec import CRITERIA
    from impactkit.scale.uncertainty import reweight
    crit = result.criteria.pivot(index="intervention", columns="criterion", values="value")
    order = list(dict.fromkeys(result.criteria["intervention"]))
    values = crit.reindex(index=order, columns=list(CRITERIA)).to_numpy()
    weights = np.array([result.weights[c] for c in CRITERIA])
    passes = result.tidy().set_index("intervention").loc[order, "gates_passed"].to_numpy()
    base = ranks(passes, weighted_geometric_mean(values, weights))
    row = t.dropna(subset=["flip_weight_above"]).iloc[0]
    k = list(CRITERIA).index(row["criterion"])
    flipped = ranks(passes, weighted_geometric_mean(values, reweight(weights, k, row["flip_weight_above"])))
    assert not np.array_equal(base, flipped)
    fig = result.plot()
    assert "Scale-readiness scorecard" in fig._impactkit_alt_text
    fig2 = result.plot_tornado()
    assert "Tornado" in fig2._impactkit_alt_text
    import matplotlib.pyplot as plt
    plt.close(fig)
    plt.close(fig2)
    assert "Scale readiness" in result.summary()


def _intervention(ident: str, name: str, cost: bool = False) -> dict:
    src = {"source": "test fixture", "locator": "n/a"}
    spec = {
        "id": ident, "name": name,
        "components": [{"name": "only", "readiness": {"value": 7, "evidence": src}, "use": {"value": 6, "evidence": src}}],
        "evidence": {"design": "rct", "design_evidence": src},
        "partner": {"alignment": {"value": 3, "evidence": src}},
        "cost_recovery": {"value": 1.2, "evidence": src},
    }
    if cost:
        spec["costs"] = {"currency": "USD", "price_year": 2020,
                         "fixed_cost": {"value": 10000, "evidence": src},
                         "variable_cost_per_participant": {"value": 50, "evidence": src},
                         "pilot_participants": {"value": 200, "evidence": src},
                         "scale_participants": {"value": 10000, "evidence": src},
                         "benefit_per_participant_year": {"value": 20, "evidence": src}}
    return spec


def _write_portfolio(tmp_path: Path, interventions: list[dict], **extra) -> Path:
    entries = []
    for spec in interventions:
        f = tmp_path / f"i{len(entries)}.yaml"
        f.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        entries.append({"file": f.name})
    p = tmp_path / "portfolio.yaml"
    p.write_text(yaml.safe_dump({"interventions": entries, **extra}), encoding="utf-8")
    return p


def test_costs_through_score_match_hand_computation(tmp_path):
    a = _intervention("a", "A", cost=True)
    a["evidence"]["impact"] = {"value": [0.2, 0.8], "evidence": {"source": "fixture"}}
    a["evidence"]["impact_unit"] = "log points"
    p = _write_portfolio(tmp_path, [a, _intervention("b", "B")],
                         options={"discount_rate": 0.05, "horizon_years": 10, "hurdle_rate": 0.1})
    res = score(p, draws=200, seed=1)
    c = res.costs.set_index("intervention").loc["a"]
    pv = 20 * (1 - 1.05 ** -10) / 0.05
    assert c["cost_per_participant_pilot"] == 100.0 and c["cost_per_participant_scale"] == 51.0
    assert abs(c["benefit_cost_ratio"] - pv / 51.0) < 1e-12
    assert abs(c["npv_per_participant"] - (pv - 51.0)) < 1e-12
    assert abs(float(cost_npv(51.0, 20.0, c["irr"], 10))) < 1e-8  # NPV at the IRR is zero
    assert bool(c["irr_exceeds_hurdle"]) == bool(c["irr"] > 0.1)
    # cost per unit of impact from the declared impact interval [0.2, 0.8] (centre 0.5): 51/0.5, 51/0.8, 51/0.2
    assert (c["cost_per_unit_impact"], c["cost_per_unit_impact_low"], c["cost_per_unit_impact_high"]) == (102.0, 63.75, 255.0)
    crit = res.criteria.set_index(["intervention", "criterion"])
    bcr = pv / 51.0
    assert abs(crit.loc[("a", "cost_effectiveness"), "value"] - bcr / (1 + bcr)) < 1e-12
    assert res.gates.set_index(["intervention", "gate"]).loc[("a", "cost_data"), "status"] == "passed"
    assert res.gates.set_index(["intervention", "gate"]).loc[("b", "cost_data"), "status"] == "failed"
    # "a" passes every gate; "b" lacks cost data: gate passers rank first
    assert _row(res, "a")["rank"] == 1 and bool(_row(res, "a")["gates_passed"])


ODD = ["<script>alert('x')</script>", "#set page(fill: red)", "`{=html}` & \"q\" [bold]x[/bold]"]


def test_odd_names_round_trip(tmp_path, capsys):
    specs = [_intervention(f"id{i}", name) for i, name in enumerate(ODD)]
    specs[1]["id"] = "#set page(width: 1cm)"
    p = _write_portfolio(tmp_path, specs)
    res = score(p, draws=200, seed=3)
    back = json.loads(dumps_json(res.to_dict()))
    assert sorted(r["name"] for r in back["table"]) == sorted(ODD)
    assert "#set page(width: 1cm)" in [r["intervention"] for r in back["table"]]
    from rich.console import Console
    console = Console(width=400, record=True, color_system=None)
    out = tmp_path / "out.json"
    assert cli_score(p, out, draws=200, seed=3, console=console) == 0
    text = console.export_text()
    for name in ODD:
        assert name in text
    assert sorted(r["name"] for r in json.loads(out.read_text(encoding="utf-8"))["table"]) == sorted(ODD)


def test_cli_exit_codes(tmp_path):
    from typer.testing import CliRunner

    from impactkit.cli import app
    runner = CliRunner()
    ok = runner.invoke(app, ["score", str(PORTFOLIO), "--draws", "200", "--seed", "1"], env={"COLUMNS": "300"})
    assert ok.exit_code == 0, ok.output
    assert "pran_dairy_pilot" in ok.output
    bad = tmp_path / "p.yaml"
    bad.write_text("interventions:\n  - file: missing.yaml\n", encoding="utf-8")
    res = runner.invoke(app, ["score", str(bad)])
    assert res.exit_code == 2


def test_load_portfolio_resolves_relative_paths():
    loaded = load_portfolio(PORTFOLIO)
    assert [it.spec.id for it in loaded.interventions] == [
        "peru_tap", "brac_dairy_hub", "pran_dairy_pilot", "jita", "allianz_microinsurance", "cocoa_life",
        "grad_tiger_brands"]
    assert abs(sum(loaded.spec.weights.values()) - 1.0) < 1e-12


def test_monte_carlo_gate_probability_matches_enumeration(tmp_path):
    # one component, readiness and use both unknown (uniform on 1..9): P(r*u >= 16) by enumeration
    spec = _intervention("u", "U")
    spec["components"][0]["readiness"] = "unknown"
    spec["components"][0]["use"] = "unknown"
    spec["cost_recovery"] = {"value": [0.5, 1.5], "evidence": {"source": "fixture"}}
    p = _write_portfolio(tmp_path, [spec, _intervention("k", "K")])
    res = score(p, draws=20_000, seed=11)
    hand = sum(r * u >= 16 for r in range(1, 10) for u in range(1, 10)) / 81
    got = res.gates.set_index(["intervention", "gate"]).loc[("u", "readiness"), "p_pass"]
    assert abs(got - hand) < 4 * math.sqrt(hand * (1 - hand) / 20_000)  # 4 standard errors
    # continuous interval [0.5, 1.5] against floor 1: P = 0.5
    got = res.gates.set_index(["intervention", "gate"]).loc[("u", "financial_sustainability"), "p_pass"]
    assert abs(got - 0.5) < 4 * math.sqrt(0.25 / 20_000)
    # a fully known intervention's criteria do not vary across draws
    k_scores = res.criteria[res.criteria.intervention == "k"].set_index("criterion")
    assert k_scores.loc["scaling_readiness", "q05"] == k_scores.loc["scaling_readiness", "q95"] == 42 / 81


def test_dirichlet_weights_centred_on_declared_weights():
    from impactkit.scale.uncertainty import draw_weights
    from impactkit.seeds import rng
    declared = np.array([0.5, 0.3, 0.2, 0.0])
    c, n = 50.0, 20_000
    w = draw_weights(rng(5, "test"), declared, c, n)
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-12) and (w[:, 3] == 0).all()
    se = np.sqrt(declared * (1 - declared) / (c + 1) / n)  # Var w_k = w_k (1 - w_k) / (c + 1)
    assert (np.abs(w.mean(axis=0) - declared) <= 4 * se + 1e-15).all()
    assert np.allclose(w.var(axis=0)[:3], declared[:3] * (1 - declared[:3]) / (c + 1), rtol=0.1)  # 10%: sampling


REPORT = ROOT.parent / "shared" / "context" / "care-adding-value-to-value-chains.txt"  # ../shared, as CI has it


@pytest.mark.skipif(not REPORT.is_file(), reason="source report text not available on this machine")
def test_every_quote_is_verbatim_in_the_source_report():
    import re

    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s.replace("\\$", "$")).strip()

    def quotes(node):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from ([v] if k == "quote" else quotes(v))
        elif isinstance(node, list):
            for v in node:
                yield from quotes(v)

    text = norm(REPORT.read_text(encoding="utf-8"))
    checked = 0
    for f in sorted((ROOT / "analyses/interventions").glob("*.yaml")):
        for quote in quotes(yaml.safe_load(f.read_text(encoding="utf-8"))):
            for part in (norm(p).strip('"') for p in quote.split("...") if p.strip()):
                assert part in text, f"{f.name}: quote not in the report: {part!r}"
                checked += 1
    assert checked > 100


def test_pack_block_for_the_focus_intervention(result):
    block = result.to_pack("pran_dairy_pilot")
    json.loads(dumps_json(block))  # JSON-ready
    detail = block["focus_detail"]
    assert detail["verdict"].startswith("blocked by") and "partner alignment" in detail["verdict"]
    assert "partner_alignment" in detail["failed_gates"]
    probs = {}
    for row in block["rank_probabilities"]:
        probs.setdefault(row["intervention"], 0.0)
        probs[row["intervention"]] += row["probability"]
    assert all(abs(v - 1.0) < 1e-12 for v in probs.values())
    # input tornado: moving one criterion to its own 5%/95% quantile, by hand for the first row
    row = block["tornado"][0]
    crit = result.criteria[result.criteria.intervention == "pran_dairy_pilot"].reset_index(drop=True)
    values = crit["value"].to_numpy().copy()
    k = int(crit.index[crit["criterion"] == row["parameter"]][0])
    values[k] = row["high"]
    hand = math.exp(sum(w * math.log(max(x, 0.01)) for x, w in zip(values, crit["weight"])))
    assert abs(row["score_high"] - hand) < 1e-12
    assert block["cost"]["cost_known"] is False and block["cost"]["bcr"] is None


def test_peru_judgements_rest_only_on_the_source(result):
    """cost recovery, spillovers and design are unknown: the report gives no figure for them."""
    spec = load_intervention(ROOT / "analyses/interventions/peru_tap.yaml").spec
    assert spec.cost_recovery.is_unknown and spec.spillovers.is_unknown and spec.evidence.design == "unknown"
    assert spec.evidence.impactkit_estimate.data == "simulated"
    gates = result.gates.set_index(["intervention", "gate"])
    # "for a small fee" no longer passes the sustainability gate with certainty
    assert gates.loc[("peru_tap", "financial_sustainability"), "status"] == "uncertain"
    assert 0.4 < gates.loc[("peru_tap", "financial_sustainability"), "p_pass"] < 0.6


def test_cli_labels_simulated_evidence_and_illustrative_costs_and_shows_both_views():
    from io import StringIO

    from rich.console import Console

    from impactkit.scale.cli import cli_score

    out = StringIO()
    cli_score(PORTFOLIO, None, draws=DRAWS, seed=7, console=Console(file=out, width=400),
              estimates={"peru_tap": PERU_FACTS}, costs={"peru_tap": ROOT / "analyses/peru_tap/costs.toml"})
    text = out.getvalue()
    assert "View: LINKED" in text and "View: REPORT ONLY" in text
    assert "linked evidence from a SIMULATED panel" in text and "costs from ILLUSTRATIVE accounts" in text
    out = StringIO()
    with pytest.warns(Warning):
        cli_score(PORTFOLIO, None, draws=DRAWS, seed=7, console=Console(file=out, width=400))
    text = out.getvalue()
    assert "View: REPORT ONLY" in text and "View: LINKED" not in text and "SIMULATED" not in text
