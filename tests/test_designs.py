"""The example analyses of three designs recover their simulator's truth.

Each example under ``analyses/`` (``did_2x2``, ``cluster_trial``, ``encouragement``) runs on
the panel its seeded simulator writes (checked bit for bit). Tolerance: the estimate is within
3 standard errors of the true effect (a single seeded draw; 3 SE is exceeded with probability
0.3% under a correct estimator). The simulators themselves are unbiased: the mean of the raw
difference-in-means over 40 seeds is within 3 Monte Carlo standard errors of the truth (slow).
Sections that do not apply are left out with a reason, never shown empty.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.datasets import simulate_cluster_trial, simulate_did_2x2, simulate_encouragement

ROOT = Path(__file__).resolve().parents[1]
SIMULATORS = {"did_2x2": simulate_did_2x2, "cluster_trial": simulate_cluster_trial,
              "encouragement": simulate_encouragement}


@pytest.fixture(scope="module")
def results():
    from impactkit.analysis import run_analysis

    return {name: run_analysis(ROOT / "analyses" / name) for name in SIMULATORS}


def _within(row: dict, truth: float, k: float = 3.0) -> bool:
    return abs(row["estimate"] - truth) <= k * row["std_error"]


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_shipped_panels_are_the_simulators_output(name):
    shipped = pd.read_parquet(ROOT / "analyses" / name / "panel.parquet")
    pd.testing.assert_frame_equal(shipped, SIMULATORS[name](), check_dtype=False)


def test_two_period_did_recovers_the_att(results):
    r = results["did_2x2"]
    truth = simulate_did_2x2(return_truth=True)[1].att
    by = {row["method"]: row for row in r["estimators"]}
    assert r["headline"]["method"] == "2x2" and r["headline"]["scale"] == "level"
    for method in ("2x2", "twfe", "cs"):
        assert _within(by[method], truth), (method, by[method]["estimate"], truth)
    assert r["headline"]["units"] == "kg per hectare" and "money_per_unit" not in r["headline"]
    assert "percent" not in r["headline"]
    assert r["data"]["design"] == "two-period"
    # 5% of farms miss the follow-up: Lee bounds on the change since baseline bracket the DiD
    lee = r["attrition"]["lee_bounds"]
    assert lee["ci_low"] <= truth <= lee["ci_high"]
    assert "bacon" in r["omitted"] and "one adoption period" in r["omitted"]["bacon"]


def test_cluster_trial_ancova_did_and_randomization_inference(results):
    r = results["cluster_trial"]
    truth = simulate_cluster_trial(return_truth=True)[1].att
    by = {row["method"]: row for row in r["estimators"]}
    assert r["headline"]["method"] == "ancova" and r["headline"]["scale"] == "share"
    for method in ("ancova", "2x2", "cs"):
        assert _within(by[method], truth), (method, by[method]["estimate"], truth)
    # shares are stated in percentage points
    assert r["headline"]["points"] == pytest.approx(100 * r["headline"]["estimate"], abs=1e-12)
    ri = r["randomization_inference_ancova"]
    assert ri["n_clusters"] == 80 and 0 < ri["p_value"] <= 1
    assert "lee_bounds" in r["omitted"] and "no attrition" in r["omitted"]["lee_bounds"]
    assert "attrition" in r and "lee_bounds" not in r["attrition"]


def test_encouragement_itt_first_stage_and_late(results):
    r = results["encouragement"]
    panel, truth = simulate_encouragement(return_truth=True)
    iv = r["iv"]
    realised = panel.loc[(panel["year"] == 2024) & (panel["offered"] == 1), "enrolled"].mean()
    assert iv["first_stage"]["estimate"] == pytest.approx(realised, abs=1e-9)  # one-sided: no take-up unoffered
    assert _within(iv["late"], truth.late)
    assert _within(iv["itt"], truth.late * realised)
    head = r["headline"]
    assert head["scale"] == "log" and head["percent"] == pytest.approx(math.expm1(head["estimate"]), abs=1e-12)
    assert head["tot"]["percent"] == pytest.approx(math.expm1(iv["late"]["estimate"]), abs=1e-12)
    assert head["money_per_unit"] is not None and r["analysis"]["currency"] == "USD"


def test_examples_hold_no_seed_study_words(results):
    import json
    import re

    text = json.dumps(results)
    assert not re.search(r"(?i)peru|puno|\btaps?\b|soles|household|herd|income|PEN\b", text)


@pytest.mark.slow
def test_simulators_are_unbiased_over_seeds():
    """Raw difference-in-means estimators over 40 seeds: mean within 3 MC standard errors."""
    stats = {"did": [], "trial": [], "enc": []}
    truths = {"did": [], "trial": [], "enc": []}
    for seed in range(40):
        p, t = simulate_did_2x2(seed=seed, return_truth=True)
        w = p.pivot(index="farm_id", columns="round", values="maize_yield").dropna()
        treat = p.loc[p["round"] == 2021].set_index("farm_id")["treated"].reindex(w.index)
        change = w[2021] - w[2019]
        stats["did"].append(change[treat == 1].mean() - change[treat == 0].mean())
        truths["did"].append(t.att)
        p, t = simulate_cluster_trial(seed=seed, return_truth=True)
        end = p[p["year"] == 2023]
        stats["trial"].append(end.loc[end["treated"] == 1, "attends"].mean() - end.loc[end["treated"] == 0, "attends"].mean())
        truths["trial"].append(t.att)
        p, t = simulate_encouragement(seed=seed, return_truth=True)
        w = p.pivot(index="trader_id", columns="year", values="earnings")
        offered = p.loc[p["year"] == 2024].set_index("trader_id")
        change = np.log(w[2024]) - np.log(w[2023])
        itt = change[offered["offered"] == 1].mean() - change[offered["offered"] == 0].mean()
        stats["enc"].append(itt / offered.loc[offered["offered"] == 1, "enrolled"].mean())
        truths["enc"].append(t.late)
    for key in stats:
        values = np.asarray(stats[key])
        mc_se = values.std(ddof=1) / np.sqrt(values.size)
        # the Wald ratio has an O(1/n) bias far below 3 MC SEs at these sizes
        assert abs(values.mean() - np.mean(truths[key])) <= 3 * mc_se, key


@pytest.mark.parametrize("name, phrase", [
    ("did_2x2", "kg per hectare"),
    ("cluster_trial", "percentage points"),
    ("encouragement", "USD"),
])
def test_each_example_builds_its_pack_text(results, name, phrase, tmp_path):
    """The .qmd of each example states the headline in its terms and lists what it left out."""
    from impactkit.pack.build import build_qmd

    text = build_qmd(results[name], tmp_path, date="2026-01-01").replace("\\", "")
    summary = text.split("# Data")[0]
    assert phrase in summary
    assert "## Sections left out" in text
    for reason in results[name]["omitted"].values():
        assert reason.split(":")[0].replace("_", " ")[:30] in text


def test_weights_reach_the_estimators_that_take_them(tmp_path):
    """A weighted analysis: its TWFE and 2x2 rows equal weighted calls of the estimators
    (tolerance 1e-10, same data and weights), and the steps that take no weights are listed."""
    import shutil

    import impactkit as ik
    from impactkit.analysis import run_analysis

    folder = tmp_path / "weighted"
    shutil.copytree(ROOT / "analyses" / "did_2x2", folder)
    panel = pd.read_parquet(folder / "panel.parquet")
    panel = panel[panel["village"].isin(sorted(panel["village"].unique())[::3])].copy()  # 20 villages, faster
    codes = panel["village"].str[1:].astype(int)
    panel["w"] = 1.0 + (codes % 4)  # village survey weights 1-4
    panel.to_parquet(folder / "panel.parquet", index=False)
    contract = (folder / "contract.yaml").read_text(encoding="utf-8")
    contract = contract.replace("      cluster: village\n", "      cluster: village\n      weights: w\n").replace(
        "      - {name: plot_ha,", "      - {name: w, logicalType: number, physicalType: float64, required: true}\n"
                                  "      - {name: plot_ha,")
    (folder / "contract.yaml").write_text(contract, encoding="utf-8")
    toml = (folder / "analysis.toml").read_text(encoding="utf-8").replace('cluster = "village"\n',
                                                                          'cluster = "village"\nweights = "w"\n')
    (folder / "analysis.toml").write_text(toml.replace("[checks]\n", "[checks]\nmultiple_testing_draws = 99\n"),
                                          encoding="utf-8")
    results = run_analysis(folder)
    by = {r["method"]: r for r in results["estimators"]}
    twfe = ik.did(panel, y="maize_yield", unit="farm_id", time="round", treated="treated", cohort="adopted_year",
                  cluster="village", weights="w", method="twfe").tidy().iloc[0]
    unweighted = ik.did(panel, y="maize_yield", unit="farm_id", time="round", treated="treated",
                        cohort="adopted_year", cluster="village", method="twfe").tidy().iloc[0]
    assert by["twfe"]["estimate"] == pytest.approx(twfe["estimate"], abs=1e-10)
    assert abs(twfe["estimate"] - unweighted["estimate"]) > 1e-6  # the weights matter here
    assert by["2x2"]["estimate"] == pytest.approx(twfe["estimate"], abs=1e-8)  # two periods: 2x2 = TWFE
    used = results["data"]["weights"]
    assert {"Callaway-Sant'Anna", "two-way fixed effects", "2x2 DiD", "balance"} <= set(used["used_by"])
    assert "power calculation" in used["not_used_by"]
    assert any("not used by" in w for w in results["warnings"])


def test_ancova_matches_statsmodels_on_the_same_frame(results):
    """ANCOVA row = statsmodels OLS of the endline on assignment and the baseline outcome with
    cluster-robust (CR1) errors: estimate to 1e-10, standard error to 1e-8 (same small-sample factor)."""
    import statsmodels.api as sm

    panel = pd.read_parquet(ROOT / "analyses" / "cluster_trial" / "panel.parquet")
    base = panel[panel["year"] == 2022][["pupil_id", "attends"]].rename(columns={"attends": "attends_baseline"})
    frame = panel[panel["year"] == 2023].merge(base, on="pupil_id")
    X = sm.add_constant(np.column_stack([(frame["cohort"] > 0).astype(float), frame["attends_baseline"]]))
    fit = sm.OLS(frame["attends"].to_numpy(float), X).fit(cov_type="cluster",
                                                          cov_kwds={"groups": pd.factorize(frame["school"])[0]})
    row = next(r for r in results["cluster_trial"]["estimators"] if r["method"] == "ancova")
    assert row["estimate"] == pytest.approx(fit.params[1], abs=1e-10)
    assert row["std_error"] == pytest.approx(fit.bse[1], abs=1e-8)
