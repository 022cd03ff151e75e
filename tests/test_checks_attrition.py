"""Attrition rates and tests, Lee (2009) bounds and inverse-probability-of-remaining weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from impactkit.checks import attrition, attrition_weights, lee_bounds
from impactkit.checks.attrition import imbens_manski_critical
from impactkit.errors import EstimationError, InputError
from impactkit.seeds import rng

# --- Lee bounds -------------------------------------------------------------------------


def test_lee_bounds_hand_example_fractional_trim():
    # treated: 5 units, 4 observed (q1 = 0.8), y = 1, 2, 3, 4
    # control: 10 units, 7 observed (q0 = 0.7), y = 1..7, mean 4
    # p = (0.8 - 0.7) / 0.8 = 0.125 -> trim 0.125 * 4 = 0.5 of an observation
    # upper: drop half of the lowest: (0.5*1 + 2 + 3 + 4) / 3.5 - 4 = 9.5/3.5 - 4
    # lower: drop half of the highest: (1 + 2 + 3 + 0.5*4) / 3.5 - 4 = 8/3.5 - 4
    frame = pd.DataFrame({
        "arm": [1] * 5 + [0] * 10,
        "seen": [1, 1, 1, 1, 0] + [1] * 7 + [0] * 3,
        "y": [1, 2, 3, 4, np.nan] + [1, 2, 3, 4, 5, 6, 7] + [np.nan] * 3,
    })
    res = lee_bounds(frame, y="y", arm="arm", observed="seen")
    assert res.trim_share == pytest.approx(0.125, abs=1e-15)
    assert res.trimmed_arm == "treated"
    assert res.upper == pytest.approx(9.5 / 3.5 - 4, abs=1e-12)
    assert res.lower == pytest.approx(8 / 3.5 - 4, abs=1e-12)
    assert res.conf_low < res.lower < res.upper < res.conf_high


def test_lee_bounds_hand_example_control_trimmed():
    # treated: 10 units, 6 observed (q1 = 0.6), y = 2, 4, ..., 12, mean 7
    # control: 10 units, 8 observed (q0 = 0.8), y = 1..8 -> p = (0.8 - 0.6) / 0.8 = 0.25: trim 2 of 8
    # lower: 7 - mean(3..8) = 7 - 5.5 = 1.5; upper: 7 - mean(1..6) = 7 - 3.5 = 3.5
    frame = pd.DataFrame({
        "arm": [1] * 10 + [0] * 10,
        "seen": [1] * 6 + [0] * 4 + [1] * 8 + [0] * 2,
        "y": [2, 4, 6, 8, 10, 12] + [np.nan] * 4 + list(range(1, 9)) + [np.nan] * 2,
    })
    res = lee_bounds(frame, y="y", arm="arm", observed="seen")
    assert res.trimmed_arm == "control"
    assert (res.lower, res.upper) == (pytest.approx(1.5, abs=1e-12), pytest.approx(3.5, abs=1e-12))
    # equal weights of any scale reproduce the unweighted bounds
    weighted = lee_bounds(frame.assign(w=3.0), y="y", arm="arm", observed="seen", weights="w")
    assert (weighted.lower, weighted.upper) == (pytest.approx(1.5, abs=1e-12), pytest.approx(3.5, abs=1e-12))


def test_lee_bounds_integer_weights_equal_duplicated_rows():
    """Frequency weights of 2 must trim exactly like the duplicated rows (bounds to 1e-12)."""
    frame = selection_sample(9, 301)
    twice = frame.index[::3]
    weighted = lee_bounds(frame.assign(w=np.where(frame.index.isin(twice), 2.0, 1.0)), y="y", arm="arm",
                          observed="seen", weights="w")
    duplicated = lee_bounds(pd.concat([frame, frame.loc[twice]], ignore_index=True), y="y", arm="arm", observed="seen")
    assert weighted.trim_share == pytest.approx(duplicated.trim_share, abs=1e-12)
    assert weighted.lower == pytest.approx(duplicated.lower, abs=1e-12)
    assert weighted.upper == pytest.approx(duplicated.upper, abs=1e-12)


def test_imbens_manski_critical_value_limits():
    # zero-width set: the two-sided normal critical value; very wide set: the one-sided one
    assert imbens_manski_critical(0.0, 1.0, 1.0, 0.05) == pytest.approx(1.959963985, abs=1e-8)
    assert imbens_manski_critical(50.0, 1.0, 1.0, 0.05) == pytest.approx(1.644853627, abs=1e-8)


def selection_sample(seed: int, n: int, effect: float = 0.5) -> pd.DataFrame:
    """Monotone selection: observed if U < 0.6 (control) or U < 0.8 (treated); Y rises with U.

    The always-observed are U < 0.6 and their effect is exactly ``effect``.
    """
    gen = rng(seed, "test-lee")
    arm = gen.permutation(np.arange(n) % 2)
    u = gen.random(n)
    y0 = 2.0 * u + gen.normal(0, 0.5, n)
    y = y0 + effect * arm
    seen = np.where(arm == 1, u < 0.8, u < 0.6).astype(int)
    return pd.DataFrame({"arm": arm, "seen": seen, "y": np.where(seen == 1, y, np.nan)})


def test_lee_bounds_contain_truth_in_large_sample_and_naive_is_biased():
    frame = selection_sample(1, 40_000)
    res = lee_bounds(frame, y="y", arm="arm", observed="seen")
    obs = frame[frame.seen == 1]
    naive = obs[obs.arm == 1].y.mean() - obs[obs.arm == 0].y.mean()
    assert res.lower < 0.5 < res.upper
    assert naive - 0.5 > 0.1  # selection on U biases the naive comparison upward
    assert res.trim_share == pytest.approx(0.25, abs=0.01)


def test_lee_standard_errors_match_seeded_bootstrap():
    """Lee (2009, Prop. 3) SEs vs a 300-draw nonparametric bootstrap SE: within 15 % (bootstrap MC error ~4 %)."""
    frame = selection_sample(2, 3000)
    res = lee_bounds(frame, y="y", arm="arm", observed="seen")
    gen = rng(3, "test-lee-bootstrap")
    draws = np.array([
        (b.lower, b.upper)
        for b in (lee_bounds(frame.iloc[gen.integers(0, len(frame), len(frame))], y="y", arm="arm", observed="seen")
                  for _ in range(300))
    ])
    boot_se = draws.std(axis=0, ddof=1)
    assert res.se_lower == pytest.approx(boot_se[0], rel=0.15)
    assert res.se_upper == pytest.approx(boot_se[1], rel=0.15)


@pytest.mark.slow
def test_imbens_manski_interval_covers_truth():
    """400 samples of n = 1,000: coverage of the always-observed effect >= 0.95 - 3 MC SE (0.033)."""
    covered = [lee_bounds(f, y="y", arm="arm", observed="seen").conf_low <= 0.5
               <= lee_bounds(f, y="y", arm="arm", observed="seen").conf_high
               for f in (selection_sample(100 + s, 1000) for s in range(400))]
    coverage = float(np.mean(covered))
    print(f"Imbens-Manski coverage: {coverage:.3f}")
    assert coverage >= 0.95 - 0.033


def test_lee_bounds_bad_input():
    frame = selection_sample(4, 200)
    with pytest.raises(InputError, match="'y' is missing in 1 row"):
        bad = frame.copy()
        bad.loc[bad.index[bad.seen == 1][0], "y"] = np.nan
        lee_bounds(bad, y="y", arm="arm", observed="seen")
    with pytest.raises(InputError, match="negative"):
        lee_bounds(frame.assign(w=-1.0), y="y", arm="arm", observed="seen", weights="w")
    with pytest.raises(EstimationError, match="'arm' is constant"):
        lee_bounds(frame.assign(arm=1), y="y", arm="arm", observed="seen")
    with pytest.raises(InputError, match="'missing_col'"):
        lee_bounds(frame, y="missing_col", arm="arm", observed="seen")


# --- attrition rates and tests -------------------------------------------------------------


def attrition_panel(seed: int = 5, n_households: int = 600, n_communities: int = 60) -> pd.DataFrame:
    """Three waves; treated communities attrit less (10 % vs 20 % per follow-up); richer leave more."""
    gen = rng(seed, "test-attrition")
    community = np.arange(n_households) % n_communities
    treated = gen.permutation(np.arange(n_communities) % 2)[community]
    income = gen.normal(0, 1, n_households)
    rows = []
    for wave in (0, 1, 2):
        leave = 0.2 - 0.1 * treated + 0.05 * (income > 0) * (1 - treated)
        stays = np.ones(n_households, bool) if wave == 0 else gen.random(n_households) > leave
        for h in np.flatnonzero(stays):
            rows.append((h, wave, community[h], treated[h], income[h] + wave, (h % 3 == 0)))
    return pd.DataFrame(rows, columns=["household_id", "wave", "community_id", "treated", "income", "woman_head"])


def test_attrition_rates_by_hand_and_test_vs_statsmodels():
    panel = attrition_panel()
    res = attrition(panel, unit="household_id", time="wave", arm="treated", baseline=0,
                    covariates=["income", "woman_head"], cluster="community_id")
    table = res.tidy().set_index("wave")
    base = panel[panel.wave == 0].set_index("household_id")
    for wave in (1, 2):
        present = set(panel.loc[panel.wave == wave, "household_id"])
        base[f"att{wave}"] = (~base.index.isin(list(present))).astype(float)
    base["att_any"] = base[["att1", "att2"]].max(axis=1)
    for key, col in (("1", "att1"), ("2", "att2"), ("any", "att_any")):
        assert table.loc[key, "rate_treated"] == pytest.approx(base.loc[base.treated == 1, col].mean(), abs=1e-15)
        assert table.loc[key, "rate_control"] == pytest.approx(base.loc[base.treated == 0, col].mean(), abs=1e-15)
        fit = smf.ols(f"{col} ~ treated", base).fit(cov_type="cluster", cov_kwds={"groups": base["community_id"]},
                                                    use_t=True)
        assert table.loc[key, "estimate"] == pytest.approx(fit.params["treated"], abs=1e-12)
        assert table.loc[key, "p_value"] == pytest.approx(fit.pvalues["treated"], rel=1e-8)
    base["woman_head"] = base["woman_head"].astype(float)
    fit = smf.ols("att_any ~ treated * (income + woman_head)", base).fit(
        cov_type="cluster", cov_kwds={"groups": base["community_id"]}, use_t=True)
    ft = fit.f_test("treated:income = 0, treated:woman_head = 0")
    assert res.covariate_test["f"] == pytest.approx(float(ft.fvalue), rel=1e-9)
    assert res.covariate_test["p_value"] == pytest.approx(float(ft.pvalue), rel=1e-8)
    assert "Attrition" in res.summary()
    assert res.differential_attrition_p == table.loc["any", "p_value"]


def test_attrition_bad_input():
    panel = attrition_panel()
    with pytest.raises(InputError, match="duplicated"):
        attrition(pd.concat([panel, panel.head(3)]), unit="household_id", time="wave", arm="treated", baseline=0)
    with pytest.raises(InputError, match="baseline"):
        attrition(panel, unit="household_id", time="wave", arm="treated", baseline=9)
    with pytest.raises(EstimationError, match="'treated' is constant"):
        attrition(panel.assign(treated=0), unit="household_id", time="wave", arm="treated", baseline=0)


# --- inverse probability of remaining weights ---------------------------------------------------


def test_ipw_recovers_full_sample_mean_under_selection_on_observables():
    """Known truth: y is simulated for everyone; attrition depends on x and arm (logit, MAR).

    The weighted mean of observed follow-up y recovers the full-sample mean to 0.03 (n = 20,000,
    SE ~ 0.01) in each arm, while the unweighted mean of stayers is off by more than 0.08.
    """
    gen = rng(6, "test-ipw")
    n = 20_000
    arm = gen.permutation(np.arange(n) % 2)
    x = gen.normal(size=n)
    y1 = 1.0 + x + 0.3 * arm + gen.normal(0, 0.5, n)
    p_stay = 1 / (1 + np.exp(-(1.0 + 1.2 * x - 0.8 * arm * x)))
    stay = gen.random(n) < p_stay
    base = pd.DataFrame({"hh": np.arange(n), "wave": 0, "arm": arm, "x": x, "y": x})
    follow = pd.DataFrame({"hh": np.arange(n), "wave": 1, "arm": arm, "x": x, "y": y1})[stay]
    panel = pd.concat([base, follow], ignore_index=True)
    w = attrition_weights(panel, unit="hh", time="wave", arm="arm", baseline=0, covariates="x")
    assert w.index.equals(panel.index)
    assert (w[panel.wave == 0] == 1).all()
    fu = panel.wave == 1
    assert np.corrcoef(1 / w[fu], p_stay[panel.loc[fu, "hh"]])[0, 1] > 0.99
    for d in (0, 1):
        sel = fu & (panel.arm == d)
        truth = y1[arm == d].mean()
        ipw = np.average(panel.loc[sel, "y"], weights=w[sel])
        naive = panel.loc[sel, "y"].mean()
        assert abs(ipw - truth) < 0.03
        assert abs(naive - truth) > 0.08


def test_attrition_weights_bad_input():
    panel = attrition_panel()
    with pytest.raises(InputError, match="covariate"):
        attrition_weights(panel, unit="household_id", time="wave", arm="treated", baseline=0, covariates=[])
    with pytest.raises(InputError, match="'nope'"):
        attrition_weights(panel, unit="household_id", time="wave", arm="treated", baseline=0, covariates=["nope"])
