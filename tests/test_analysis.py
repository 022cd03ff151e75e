"""The Peru TAP analysis end to end: the estimates recover the simulator's known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from impactkit.datasets import simulate_peru_tap
from tests.conftest import PERU


@pytest.fixture(scope="module")
def truth():
    return simulate_peru_tap(return_truth=True)


def _true_simple_att(panel, truth) -> float:
    """R did's simple aggregation of the true ATT(g,t): post cells weighted by group size."""
    att = truth.att_gt(panel)
    att = att[att["time"] >= att["group"]]
    sizes = panel.drop_duplicates("household_id").groupby("cohort").size()
    weights = att["group"].map(sizes).astype(float)
    return float((att["att"] * weights).sum() / weights.sum())


def test_headline_recovers_the_true_itt_within_its_ci(peru_results, truth):
    panel, t = truth
    true_itt = _true_simple_att(panel, t)
    head = peru_results["headline"]
    assert head["conf_low"] <= true_itt <= head["conf_high"]
    assert head["percent"] == pytest.approx(np.expm1(head["estimate"]))


def test_two_year_effect_for_users_recovers_the_350_percent(peru_results, truth):
    panel, t = truth
    tot = t.att_gt(panel, population="tot")
    window = peru_results["iv"]["window"]
    cell = tot[(tot["group"] == window["cohort"]) & (tot["time"] == window["post"])]
    true_late = float(cell["att"].iloc[0])
    late = peru_results["headline"]["tot"]
    assert late["conf_low"] <= true_late <= late["conf_high"]
    assert 3.0 < late["percent"] < 4.0  # "+350% within two years" for TAP users
    # the first stage is the take-up rate of the simulation
    take_up = panel.loc[(panel["cohort"] == window["cohort"]) & (panel["wave"] == window["post"]), "tap_use"].mean()
    assert peru_results["iv"]["first_stage"]["estimate"] == pytest.approx(take_up, abs=0.02)


def test_event_study_has_flat_pre_trends_and_growing_effects(peru_results, truth):
    panel, t = truth
    rows = {r["event_time"]: r for r in peru_results["event_study"]["rows"]}
    assert peru_results["event_study"]["pretrend"]["p_value"] > 0.01
    for e in (-2, -1):
        if e in rows:
            assert rows[e]["conf_low"] <= 0 <= rows[e]["conf_high"]
    assert rows[0]["estimate"] < rows[1]["estimate"] < rows[2]["estimate"]
    # uniform band is wider than the pointwise interval
    assert all(r["band_low"] <= r["conf_low"] for r in rows.values())


def test_twfe_is_pulled_down_by_forbidden_comparisons_and_bacon_explains_it(peru_results):
    by = {r["method"]: r for r in peru_results["estimators"]}
    assert by["twfe"]["estimate"] < by["cs"]["conf_low"]  # dynamic effects bias static TWFE
    weights = [r["weight"] for r in peru_results["bacon"]]
    assert sum(weights) == pytest.approx(1.0, abs=1e-10)
    later_vs_earlier = [r for r in peru_results["bacon"] if r["comparison"].lower().startswith("later")]
    assert later_vs_earlier and later_vs_earlier[0]["estimate"] < by["cs"]["estimate"]


def test_design_checks_match_a_randomised_rollout(peru_results):
    assert peru_results["balance"]["joint_p"] > 0.05
    assert peru_results["attrition"]["differential_p"] > 0.05
    lee = peru_results["attrition"]["lee_bounds"]
    assert lee["lower"] <= lee["upper"]
    family = {r["outcome"]: r for r in peru_results["multiple_outcomes"]}
    assert family["herd_size"]["romano_wolf"] > 0.05  # the true null survives correction
    assert family["vet_services"]["romano_wolf"] < 0.05


def test_results_hold_no_personal_values_and_no_absolute_paths(peru_results):
    panel = simulate_peru_tap()
    text = json.dumps(peru_results)
    for column in ("head_name", "dni", "phone"):
        for value in panel[column].drop_duplicates().head(200):
            assert str(value) not in text
    assert str(PERU) not in text and "/work/" not in text


def test_results_document_is_deterministic_json(peru_results):
    from impactkit.analysis import run_analysis
    from impactkit.atomic import dumps_json

    assert dumps_json(run_analysis(PERU)) == dumps_json(peru_results)


def test_estimate_cli_writes_the_same_numbers(tmp_path, cli, peru_results):
    out = tmp_path / "estimate.json"
    result = cli("estimate", PERU, "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["headline"] == peru_results["headline"]


def test_bad_analysis_files_are_exit_2(peru_copy, cli):
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace("[design]\nunit", "[design]\nunitt"))
    result = cli("estimate", peru_copy)
    assert result.exit_code == 2
    assert "analysis.toml" in result.output and "unit" in result.output
    assert cli("estimate", peru_copy / "nope").exit_code == 2


def test_data_failing_its_contract_is_exit_1_and_no_estimate(peru_copy, cli, tmp_path):
    import pandas as pd

    data = peru_copy / "panel.parquet"
    frame = pd.read_parquet(data)
    frame.loc[frame.index[:3], "income"] = -5.0
    frame.to_parquet(data, index=False)
    out = tmp_path / "never.json"
    result = cli("estimate", peru_copy, "--json", out)
    assert result.exit_code == 1
    assert "contract rule" in result.output
    assert not out.exists()


def test_a_misspelled_column_in_analysis_toml_is_exit_2_naming_the_field(peru_copy, cli):
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace('"vet_services"', '"vet_servics"').replace(
        'cluster = "community_id"', 'cluster = "communty_id"'))
    result = cli("estimate", peru_copy)
    assert result.exit_code == 2
    assert "outcomes.family 'vet_servics'" in result.output and "design.cluster" in result.output
    assert "Traceback" not in result.output


def test_json_output_to_a_directory_is_exit_2_without_traceback(tmp_path, cli):
    result = cli("validate", PERU / "panel.parquet", "--contract",
                 PERU.parent.parent / "data_contracts" / "peru_tap.yaml", "--json", tmp_path)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and str(tmp_path) in result.output


def test_score_cli_uses_the_linked_analysis_like_the_pack(tmp_path, cli, peru_results, monkeypatch):
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    out = tmp_path / "score.json"
    result = cli("score", ROOT / "analyses" / "portfolio.yaml", "--json", out)
    assert result.exit_code == 0, result.output
    table = {r["intervention"]: r for r in json.loads(out.read_text())["table"]}
    pack = {r["intervention"]: r for r in peru_results["scale"]["ranking"]}
    assert table["peru_tap"]["evidence_from"] == "impactkit estimate"
    for name, row in pack.items():
        assert table[name]["rank"] == row["rank"]
        assert table[name]["p_rank_1"] == row["p_rank_1"]
        assert table[name]["score_geometric"] == row["score_geometric"]


def test_min_cell_above_an_arm_suppresses_instead_of_failing(peru_copy, cli, tmp_path):
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace("min_cell = 10", "min_cell = 452"))
    out = tmp_path / "results.json"
    result = cli("estimate", peru_copy, "--json", out)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    flow = [r for r in results["data"]["sample_flow"] if r["arm"] == "comparison"]
    assert flow and all(r["suppressed"] and r["units"] is None for r in flow)
    assert all(r["suppressed"] for r in results["balance"]["rows"])


def test_negative_seeds_are_exit_2(peru_copy, cli, tmp_path):
    assert cli("simulate", tmp_path / "x.parquet", "--seed", "-1").exit_code == 2
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace("entropy = 2250109", "entropy = -3"))
    result = cli("estimate", peru_copy)
    assert result.exit_code == 2 and "seeds.entropy" in result.output


def test_score_api_linked_equals_the_cli(monkeypatch, tmp_path, cli):
    import impactkit as ik
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    api = ik.score("analyses/portfolio.yaml", linked=True).tidy()
    out = tmp_path / "score.json"
    assert cli("score", "analyses/portfolio.yaml", "--json", out).exit_code == 0
    table = {r["intervention"]: r for r in json.loads(out.read_text())["table"]}
    for row in api.to_dict(orient="records"):
        assert table[row["intervention"]]["rank"] == row["rank"]
        assert table[row["intervention"]]["p_rank_1"] == row["p_rank_1"]
