"""Programme cost accounts from an analysis feed the scale model (impactkit.scale.accounts).

Truth: hand computation (cost per participant, discounting written out here, cost per unit of
impact), the rules of docs/scale-model.md (cost_data gate), and invariance of the other six
cases of the CARE portfolio. Tolerances are stated at each assertion.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from impactkit.atomic import dumps_json
from impactkit.errors import ImpactkitWarning, InputError
from impactkit.scale import score
from impactkit.scale.accounts import FROM_ACCOUNTS, FROM_FILE, load_accounts
from impactkit.scale.spec import load_portfolio

ROOT = Path(__file__).resolve().parents[1]
PORTFOLIO = ROOT / "analyses" / "portfolio.yaml"
ACCOUNTS_FILE = ROOT / "analyses" / "peru_tap" / "costs.toml"
DRAWS = 400
SEED = 11
RATE, YEARS = 0.05, 10  # the portfolio's options (asserted below)
TIGHT = 1e-9            # relative tolerance of hand-computed figures (float rounding only)

# Money benefit per household per year from an impact estimate, already in the accounts' prices.
BENEFIT, BENEFIT_LOW, BENEFIT_HIGH = 6000.0, 5500.0, 6600.0
PERU_FACTS = {"design": "did", "estimate": 1.08, "conf_low": 0.98, "conf_high": 1.18, "pretrend_p": 0.4,
              "n_clusters": 75, "differential_attrition_p": 0.5, "balance_joint_p": 0.3,
              "benefit_per_participant_year": BENEFIT, "benefit_per_participant_year_low": BENEFIT_LOW,
              "benefit_per_participant_year_high": BENEFIT_HIGH, "benefit_currency": "PEN",
              "benefit_price_year": 2013}
ACCOUNTS = {"currency": "PEN", "price_year": 2013, "source": "test accounts",
            "fixed_cost": [400000, 600000], "variable_cost_per_participant": [300, 600],
            "pilot_participants": 2250, "scale_participants": 50000}
OTHERS = ("brac_dairy_hub", "pran_dairy_pilot", "jita", "allianz_microinsurance", "cocoa_life", "grad_tiger_brands")


def _discounted_sum(benefit: float, rate: float, years: int) -> float:
    """Benefit at the end of years 1..T, discounted to t = 0: sum b / (1 + r)^t."""
    total = 0.0
    for t in range(1, years + 1):
        total += benefit / (1.0 + rate) ** t
    return total


def _close(a: float, b: float, rel: float = TIGHT) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=0.0)


@pytest.fixture(scope="module")
def portfolio():
    return load_portfolio(PORTFOLIO)


@pytest.fixture(scope="module")
def with_accounts(portfolio):
    return score(portfolio, estimates={"peru_tap": PERU_FACTS}, costs={"peru_tap": ACCOUNTS}, draws=DRAWS, seed=SEED)


@pytest.fixture(scope="module")
def without_accounts(portfolio):
    return score(portfolio, estimates={"peru_tap": PERU_FACTS}, draws=DRAWS, seed=SEED)


def _cost_row(res, ident="peru_tap"):
    return res.costs.set_index("intervention").loc[ident]


def _gate(res, ident, gate):
    return res.gates.set_index(["intervention", "gate"]).loc[(ident, gate)]


def test_cost_per_participant_at_pilot_and_scale_by_hand(with_accounts):
    c = _cost_row(with_accounts)
    assert with_accounts.options["discount_rate"] == RATE and with_accounts.options["horizon_years"] == YEARS
    f, v = 500000.0, 450.0  # interval centres of the accounts
    assert _close(c["cost_per_participant_pilot"], (f + v * 2250) / 2250)        # 672.22
    assert _close(c["cost_per_participant_scale"], (f + v * 50000) / 50000)      # 460
    # ends: cheapest = low F, low v; dearest = high F, high v
    assert _close(c["cost_per_participant_scale_low"], (400000 + 300 * 50000) / 50000)
    assert _close(c["cost_per_participant_scale_high"], (600000 + 600 * 50000) / 50000)
    assert _close(c["cost_per_participant_pilot_low"], (400000 + 300 * 2250) / 2250)
    assert _close(c["cost_per_participant_pilot_high"], (600000 + 600 * 2250) / 2250)
    assert (c["currency"], int(c["price_year"])) == ("PEN", 2013)


def test_bcr_npv_irr_and_cost_per_unit_impact_by_hand(with_accounts):
    c = _cost_row(with_accounts)
    cost, cost_low, cost_high = 460.0, 308.0, 612.0
    pv, pv_low, pv_high = (_discounted_sum(b, RATE, YEARS) for b in (BENEFIT, BENEFIT_LOW, BENEFIT_HIGH))
    assert _close(c["benefit_cost_ratio"], pv / cost)
    assert _close(c["benefit_cost_ratio_low"], pv_low / cost_high)
    assert _close(c["benefit_cost_ratio_high"], pv_high / cost_low)
    assert _close(c["npv_per_participant"], pv - cost)
    assert _close(c["npv_per_participant_low"], pv_low - cost_high)
    assert _close(c["npv_per_participant_high"], pv_high - cost_low)
    # the IRR zeroes the NPV (hand discounting; tolerance 1e-6 of the cost)
    assert abs(_discounted_sum(BENEFIT, c["irr"], YEARS) - cost) < 1e-6 * cost
    assert bool(c["irr_exceeds_hurdle"]) is True
    # cost per PEN of yearly benefit, CI carried from the benefit's CI: [c / b_high, c / b_low]
    assert _close(c["cost_per_unit_impact"], cost / BENEFIT)
    assert _close(c["cost_per_unit_impact_low"], cost / BENEFIT_HIGH)
    assert _close(c["cost_per_unit_impact_high"], cost / BENEFIT_LOW)
    # the criterion is scored at the point estimate: BCR / (1 + BCR)
    crit = with_accounts.criteria.set_index(["intervention", "criterion"]).loc[("peru_tap", "cost_effectiveness")]
    bcr = pv / cost
    assert _close(crit["value"], bcr / (1 + bcr))
    # Monte Carlo quantiles stay within the criterion at the interval ends (exact bounds)
    lo, hi = (pv_low / cost_high), (pv_high / cost_low)
    assert lo / (1 + lo) - 1e-12 <= crit["q05"] <= crit["q95"] <= hi / (1 + hi) + 1e-12


def test_cost_data_gate_passes_with_accounts_and_fails_without(with_accounts, without_accounts, portfolio):
    assert _gate(with_accounts, "peru_tap", "cost_data")["status"] == "passed"
    assert _gate(with_accounts, "peru_tap", "cost_data")["p_pass"] == 1.0
    assert _gate(without_accounts, "peru_tap", "cost_data")["status"] == "failed"
    assert not bool(_cost_row(without_accounts)["cost_known"])
    # accounts without any benefit (no estimate benefit, none in the file): still no cost data
    facts = {k: v for k, v in PERU_FACTS.items() if not k.startswith("benefit")}
    res = score(portfolio, estimates={"peru_tap": facts}, costs={"peru_tap": ACCOUNTS}, draws=100, seed=SEED)
    assert _gate(res, "peru_tap", "cost_data")["status"] == "failed"
    assert pd.isna(_cost_row(res)["benefit_source"])
    assert "benefit_cost_ratio" not in res.costs or math.isnan(_cost_row(res)["benefit_cost_ratio"])
    # Nesta level 4 = level 3 plus an independent evaluation and cost data: the accounts alone do not
    # reach it (the report does not say the evaluation was independent)
    nesta = {name: int(r.evidence.set_index("intervention").loc["peru_tap", "nesta_level"])
             for name, r in (("with", with_accounts), ("without", without_accounts))}
    assert nesta["without"] == 3 and nesta["with"] == 3


def test_sources_recorded_and_in_the_pack(with_accounts, without_accounts):
    c = _cost_row(with_accounts)
    assert c["cost_source"] == FROM_ACCOUNTS and c["benefit_source"] == "impactkit estimate"
    assert c["source_fixed_cost"] == FROM_ACCOUNTS and c["source_pilot_participants"] == FROM_ACCOUNTS
    pack = with_accounts.to_pack("peru_tap")["cost"]
    assert pack["cost_source"] == FROM_ACCOUNTS and pack["benefit_source"] == "impactkit estimate"
    assert _close(pack["bcr"], c["benefit_cost_ratio"]) and pack["cost_known"] is True
    # without accounts the only known figure (2,250 pilot families) comes from the intervention file
    bare = without_accounts.to_pack("peru_tap")["cost"]
    assert bare["cost_source"] == FROM_FILE and bare["benefit_source"] == "impactkit estimate"
    assert bare["bcr"] is None and bare["cost_per_participant_scale"] is None
    assert pd.isna(without_accounts.costs.set_index("intervention").loc["jita", "cost_source"])
    dumps_json(with_accounts.to_pack("peru_tap"))  # JSON-ready


def test_other_cases_unchanged_by_peru_accounts(with_accounts, without_accounts):
    for res in (with_accounts, without_accounts):
        assert set(OTHERS) | {"peru_tap"} == set(res.table["intervention"])
    a = with_accounts.table.set_index("intervention").loc[list(OTHERS)]
    b = without_accounts.table.set_index("intervention").loc[list(OTHERS)]
    # exact equality: the other interventions' inputs and draws do not depend on Peru's
    assert a["score_geometric"].tolist() == b["score_geometric"].tolist()
    assert a["score_weighted_sum"].tolist() == b["score_weighted_sum"].tolist()
    assert a["failed_gates"].tolist() == b["failed_gates"].tolist()
    assert a["uncertain_gates"].tolist() == b["uncertain_gates"].tolist()
    ga = with_accounts.gates.set_index(["intervention", "gate"]).loc[list(OTHERS)]
    gb = without_accounts.gates.set_index(["intervention", "gate"]).loc[list(OTHERS)]
    assert ga["status"].tolist() == gb["status"].tolist() and ga["p_pass"].tolist() == gb["p_pass"].tolist()
    ca = with_accounts.criteria.set_index("intervention").loc[list(OTHERS)]
    cb = without_accounts.criteria.set_index("intervention").loc[list(OTHERS)]
    assert ca["value"].tolist() == cb["value"].tolist()


def test_accounts_override_figure_by_figure(portfolio):
    partial = {"currency": "PEN", "price_year": 2015, "source": "partial accounts", "fixed_cost": 100000}
    res = score(portfolio, costs={"peru_tap": partial}, draws=100, seed=SEED)
    c = _cost_row(res)
    # fixed cost from the accounts, pilot families from the file, the rest still unknown
    assert c["source_fixed_cost"] == FROM_ACCOUNTS and c["source_pilot_participants"] == FROM_FILE
    assert c["source_variable_cost_per_participant"] is None and c["source_scale_participants"] is None
    assert c["cost_source"] == FROM_ACCOUNTS and not bool(c["cost_known"])
    assert _gate(res, "peru_tap", "cost_data")["status"] == "failed"
    crit = res.criteria.set_index(["intervention", "criterion"]).loc[("peru_tap", "cost_effectiveness")]
    assert crit["value"] == 0.5 and "cost_unknown_u" in crit["unknown_inputs"]  # unknown stays unknown


@pytest.mark.parametrize("bad, fragment", [
    ({**ACCOUNTS, "fixed_cots": 1}, "field 'fixed_cots': unknown field"),
    ({k: v for k, v in ACCOUNTS.items() if k != "currency"}, "field 'currency': required field missing"),
    ({k: v for k, v in ACCOUNTS.items() if k != "source"}, "field 'source': required field missing"),
    ({**ACCOUNTS, "fixed_cost": [600000, 400000]}, "field 'fixed_cost': interval [600000, 400000] has low > high"),
    ({**ACCOUNTS, "fixed_cost": -5}, "field 'fixed_cost': -5.0 outside the admissible range"),
    ({**ACCOUNTS, "scale_participants": 0}, "field 'scale_participants': 0.0 outside the admissible range"),
    ({**ACCOUNTS, "variable_cost_per_participant": "cheap"}, "field 'variable_cost_per_participant': must be a number"),
    ({**ACCOUNTS, "pilot_participants": [1, 2, 3]}, "field 'pilot_participants': must be a number or an interval"),
    ({**ACCOUNTS, "price_year": 2013.5}, "field 'price_year': must be a whole year"),
    ({**ACCOUNTS, "notes": {"fixed": "x"}}, "notes name unknown figure"),
    ({**ACCOUNTS, "price_index": {2008: -1.0}}, "field 'price_index'"),
    ("not a mapping", "accounts must be a mapping"),
])
def test_accounts_validated_with_key_and_field(portfolio, bad, fragment):
    with pytest.raises(InputError) as err:
        score(portfolio, costs={"peru_tap": bad}, draws=100, seed=SEED)
    message = str(err.value)
    assert message.startswith("costs['peru_tap']: ") and fragment in message and "\n" not in message


def test_stray_key_and_currency_conflicts(portfolio, tmp_path):
    with pytest.raises(InputError, match=r"costs: key\(s\) \['peru'\] name no intervention"):
        score(portfolio, costs={"peru": ACCOUNTS}, draws=100, seed=SEED)
    with pytest.raises(InputError, match=r"fact 'benefit_currency' is USD but the costs are in PEN"):
        score(portfolio, estimates={"peru_tap": {**PERU_FACTS, "benefit_currency": "USD"}},
              costs={"peru_tap": ACCOUNTS}, draws=100, seed=SEED)
    # a money figure kept from a file in another currency cannot be mixed with the accounts
    src = {"source": "fixture"}
    spec = {"id": "a", "name": "A",
            "components": [{"name": "only", "readiness": {"value": 7, "evidence": src}, "use": {"value": 6, "evidence": src}}],
            "evidence": {"design": "rct", "design_evidence": src},
            "costs": {"currency": "USD", "price_year": 2020, "fixed_cost": {"value": 1000, "evidence": src}}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"interventions": [{"file": "a.yaml"}]}), encoding="utf-8")
    with pytest.raises(InputError, match=r"costs\['a'\]: field 'fixed_cost': the intervention file gives it in USD 2020"):
        score(tmp_path / "p.yaml", costs={"a": {**ACCOUNTS, "fixed_cost": None}}, draws=100, seed=SEED)


@pytest.mark.parametrize("facts, fragment", [
    ({"benefit_per_participant_year_low": 1.0, "benefit_per_participant_year_high": 2.0}, "is required when its _low/_high"),
    ({"benefit_per_participant_year": 3.0, "benefit_per_participant_year_low": 1.0}, "give both"),
    ({"benefit_per_participant_year": 3.0, "benefit_per_participant_year_low": 1.0,
      "benefit_per_participant_year_high": 2.0}, "must lie within [_low, _high]"),
    ({"benefit_per_participant_year": float("nan")}, "must be finite"),
    ({"benefit_per_participant_year": 3.0, "benefit_price_year": 2013.5}, "must be a whole year"),
])
def test_benefit_facts_validated(portfolio, facts, fragment):
    base = {k: v for k, v in PERU_FACTS.items() if not k.startswith("benefit")}
    with pytest.raises(InputError) as err:
        score(portfolio, estimates={"peru_tap": {**base, **facts}}, draws=100, seed=SEED)
    assert str(err.value).startswith("estimates['peru_tap']: ") and fragment in str(err.value)


def test_benefit_restated_to_the_accounts_price_year(portfolio):
    facts = {**PERU_FACTS, "benefit_price_year": 2008}
    index = {2008: 100.0, 2013: 115.1}
    res = score(portfolio, estimates={"peru_tap": facts}, costs={"peru_tap": {**ACCOUNTS, "price_index": index}},
                draws=100, seed=SEED)
    c = _cost_row(res)
    factor = 115.1 / 100.0
    assert _close(c["benefit_restated_by_price_index"], factor)
    assert _close(c["benefit_per_participant_year"], BENEFIT * factor)
    assert _close(c["benefit_per_participant_year_low"], BENEFIT_LOW * factor)
    assert _close(c["benefit_cost_ratio"], _discounted_sum(BENEFIT * factor, RATE, YEARS) / 460.0)
    # without an index covering both years: a warning, the benefit is used as given
    with pytest.warns(ImpactkitWarning, match="benefit in 2008 prices but costs in 2013 prices"):
        res = score(portfolio, estimates={"peru_tap": facts}, costs={"peru_tap": ACCOUNTS}, draws=100, seed=SEED)
    assert _close(_cost_row(res)["benefit_per_participant_year"], BENEFIT)


def test_peru_accounts_file_loads_and_is_labelled_illustrative(portfolio):
    acc = load_accounts(ACCOUNTS_FILE)
    assert "illustrative" in acc["source"] and "gives no costs" in acc["source"]
    assert acc["currency"] == "PEN" and acc["price_year"] == 2013 and acc["pilot_participants"] == 2250
    assert "assumption" in acc["notes"]["scale_participants"]
    assert "ILLUSTRATIVE" in ACCOUNTS_FILE.read_text(encoding="utf-8")
    res = score(portfolio, estimates={"peru_tap": {**PERU_FACTS, "benefit_price_year": 2008}},
                costs={"peru_tap": acc}, draws=100, seed=SEED)
    c = _cost_row(res)
    assert _gate(res, "peru_tap", "cost_data")["status"] == "passed"
    f, v = (acc["fixed_cost"][0] + acc["fixed_cost"][1]) / 2, sum(acc["variable_cost_per_participant"]) / 2
    assert _close(c["cost_per_participant_scale"], (f + v * acc["scale_participants"]) / acc["scale_participants"])
    index = acc["price_index"]
    assert _close(c["benefit_per_participant_year"], BENEFIT * index[2013] / index[2008])


def test_load_accounts_errors_name_file_and_field(tmp_path):
    missing = tmp_path / "none.toml"
    with pytest.raises(InputError, match=r"none\.toml: cost accounts file not found"):
        load_accounts(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("currency = \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.toml: not valid TOML"):
        load_accounts(broken)
    typo = tmp_path / "typo.toml"
    typo.write_text('currency = "PEN"\nprice_year = 2013\nsource = "x"\nfixed_cots = 5\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"typo\.toml: field 'fixed_cots': unknown field"):
        load_accounts(typo)
    interval = tmp_path / "interval.toml"
    interval.write_text('currency = "PEN"\nprice_year = 2013\nsource = "x"\nfixed_cost = [3, 1]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"interval\.toml: field 'fixed_cost': interval \[3, 1\] has low > high"):
        load_accounts(interval)


def test_deterministic(portfolio, with_accounts):
    again = score(portfolio, estimates={"peru_tap": PERU_FACTS}, costs={"peru_tap": ACCOUNTS}, draws=DRAWS, seed=SEED)
    assert dumps_json(again.to_dict()) == dumps_json(with_accounts.to_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc = load_accounts(ACCOUNTS_FILE)
        assert load_accounts(ACCOUNTS_FILE) == acc


def test_cli_score_reads_accounts_files(tmp_path):
    from rich.console import Console

    from impactkit.scale.cli import cli_score, parse_costs_option

    with pytest.raises(InputError, match=r"--costs: expected INTERVENTION_ID=PATH"):
        parse_costs_option(["peru_tap"])
    costs = parse_costs_option([f"peru_tap={ACCOUNTS_FILE}"])
    out = tmp_path / "score.json"
    console = Console(file=open(tmp_path / "out.txt", "w"), width=200)
    assert cli_score(PORTFOLIO, out, draws=100, seed=SEED, console=console, costs=costs) == 0
    console.file.close()
    import json

    data = json.loads(out.read_text(encoding="utf-8"))
    peru = [r for r in data["costs"] if r["intervention"] == "peru_tap"][0]
    assert peru["cost_source"] == FROM_ACCOUNTS and peru["cost_per_participant_scale"] == 460.0
    assert "illustrative programme accounts" in (tmp_path / "out.txt").read_text(encoding="utf-8")
