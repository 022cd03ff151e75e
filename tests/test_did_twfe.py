"""TWFE, 2x2, covariance and Goodman-Bacon checked against pyfixest, linearmodels and exact identities.

pyfixest 0.60 note: when the cluster column has the same *name* as a fixed effect, its
nested-fixed-effect count depends on Python's string-hash seed (set ordering), so its
CRV1 SE changes between processes. We therefore cluster on copies with other names
("cl", "pcl"); the numbers are the same clusters.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from impactkit.atomic import dumps_json
from impactkit.did.bacon import bacon_decomposition
from impactkit.did.twfe import estimate_2x2, estimate_twfe
from impactkit.errors import EstimationError, ImpactkitWarning

pf = pytest.importorskip("pyfixest")

TOL = 1e-8  # coefficient and SE agreement with pyfixest / linearmodels


def staggered_panel(seed: int = 1, n_units: int = 60, n_periods: int = 8, cohorts=(0, 4, 6),
                    dynamic: bool = False, noise: float = 1.0) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    time = np.tile(np.arange(1, n_periods + 1), n_units)
    cohort = np.repeat(gen.choice(cohorts, n_units), n_periods)
    treated = ((cohort > 0) & (time >= cohort)).astype(int)
    effect = 1.5 * treated
    if dynamic:
        effect = treated * (1.0 + 0.4 * (time - cohort))
    x = gen.normal(size=unit.size)
    y = (np.repeat(gen.normal(size=n_units), n_periods) + 0.1 * time + effect + 0.3 * x
         + noise * gen.normal(size=unit.size))
    return pd.DataFrame({"unit": unit, "time": time, "y": y, "treated": treated, "g": cohort, "x": x,
                         "w": gen.uniform(0.5, 2.0, unit.size), "cl": unit, "pcl": time, "state": unit % 7})


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        return func(*args, **kwargs)


@pytest.mark.parametrize("formula, kwargs, pf_kwargs", [
    ("y ~ treated | unit + time", {}, {}),
    ("y ~ treated + x | unit + time", {"covariates": ["x"]}, {}),
    ("y ~ treated | unit + time", {"weights": "w"}, {"weights": "w"}),
])
def test_twfe_matches_pyfixest_crv1(formula, kwargs, pf_kwargs):
    df = staggered_panel()
    ref = pf.feols(formula, data=df, vcov={"CRV1": "cl"}, **pf_kwargs)
    res = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated", cluster="cl", **kwargs)
    np.testing.assert_allclose(res.coef, ref.coef().to_numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=TOL)
    tidy = res.tidy()
    np.testing.assert_allclose(tidy["p_value"], ref.pvalue().to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(tidy["conf_low"], ref.confint().iloc[:, 0].to_numpy(), rtol=0, atol=TOL)
    assert res.n_clusters == 60


def test_default_cluster_is_unit_and_equals_explicit():
    df = staggered_panel(seed=4)
    default = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated")
    explicit = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated", cluster="cl")
    np.testing.assert_allclose(default.vcov, explicit.vcov, rtol=0, atol=1e-14)


def test_twoway_and_coarse_clusters_match_pyfixest():
    df = staggered_panel(seed=2, n_units=80)
    ref = pf.feols("y ~ treated | unit + time", data=df, vcov={"CRV1": "cl + pcl"})
    res = quiet(estimate_twfe, df, y="y", unit="unit", time="time", treated="treated", cluster=["cl", "pcl"])
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=TOL)
    assert res.n_clusters == 8  # min(G) drives the df, as fixest's cluster.df = "min"
    ref = pf.feols("y ~ treated | unit + time", data=df, vcov={"CRV1": "state"})
    res = quiet(estimate_twfe, df, y="y", unit="unit", time="time", treated="treated", cluster="state")
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=TOL)


def test_hc1_matches_pyfixest_hetero():
    df = staggered_panel(seed=5)
    ref = pf.feols("y ~ treated + x | unit + time", data=df, vcov="hetero")
    res = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated", covariates=["x"], vcov="HC1")
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=TOL)


def test_crv3_is_mnw_jackknife_of_pyfixest_refits():
    # pyfixest's CRV3 with ssc switched off is sum_g (b_g - b)^2; MNW (2023) eq. 12 scales by (G-1)/G.
    df = staggered_panel(seed=6)
    ref = pf.feols("y ~ treated + x | unit + time", data=df, vcov={"CRV3": "state"},
                   ssc=pf.ssc(k_adj=False, G_adj=False))
    res = quiet(estimate_twfe, df, y="y", unit="unit", time="time", treated="treated", covariates=["x"],
                cluster="state", vcov="CRV3")
    n_groups = 7
    np.testing.assert_allclose(res.vcov, ref._vcov * (n_groups - 1) / n_groups, rtol=1e-9, atol=1e-12)


def test_coefficient_matches_linearmodels_panelols():
    from linearmodels.panel import PanelOLS

    df = staggered_panel(seed=7)
    res = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated", covariates=["x"])
    indexed = df.set_index(["unit", "time"])
    lm = PanelOLS(indexed["y"], indexed[["treated", "x"]], entity_effects=True, time_effects=True).fit()
    np.testing.assert_allclose(res.coef, lm.params.to_numpy(), rtol=0, atol=TOL)


def test_unbalanced_panel_alternating_projections_match_pyfixest():
    df = staggered_panel(seed=8).sample(frac=0.85, random_state=3).sort_index()
    ref = pf.feols("y ~ treated + x | unit + time", data=df, vcov={"CRV1": "cl"})
    res = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated", covariates=["x"], cluster="cl")
    # pyfixest's own demeaning stops at its default tolerance 1e-8, so agree to 1e-7 here.
    np.testing.assert_allclose(res.coef, ref.coef().to_numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=1e-7)


def test_few_clusters_warns_and_recommends_wild_bootstrap():
    df = staggered_panel(seed=9)
    with pytest.warns(ImpactkitWarning, match="wild_bootstrap"):
        res = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated", cluster="state")
    assert res.n_clusters == 7 and res.df_t == 6
    assert any("MacKinnon" in line for line in res.notes())


def test_collinear_treatment_raises():
    df = staggered_panel(seed=10, cohorts=(4,))  # every unit adopts in period 4: D is a time effect
    with pytest.raises(EstimationError, match="collinear"):
        estimate_twfe(df, y="y", unit="unit", time="time", treated="treated")


def test_2x2_equals_difference_of_cell_means_and_pyfixest():
    df = staggered_panel(seed=11, cohorts=(0, 5))
    res = estimate_2x2(df, y="y", unit="unit", time="time", cohort="g")
    cells = df.assign(post=df["time"] >= 5, group=df["g"] > 0).groupby(["group", "post"])["y"].mean()
    truth = (cells[True, True] - cells[True, False]) - (cells[False, True] - cells[False, False])
    assert abs(res.estimate - truth) < 1e-10
    assert abs(res.extras["difference_of_means"] - truth) < 1e-10
    ref = pf.feols("y ~ treated | unit + time", data=df, vcov={"CRV1": "cl"})
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=TOL)
    two = estimate_2x2(df, y="y", unit="unit", time="time", cohort="g", periods=(4, 5))
    sub = df[df["time"].isin([4, 5])].set_index(["g", "time"])["y"].groupby(level=[0, 1]).mean()
    assert abs(two.estimate - ((sub[5, 5] - sub[5, 4]) - (sub[0, 5] - sub[0, 4]))) < 1e-10


def test_2x2_rejects_staggered_adoption():
    df = staggered_panel(seed=12)
    with pytest.raises(EstimationError, match="one adoption period"):
        estimate_2x2(df, y="y", unit="unit", time="time", cohort="g")


def test_result_dict_is_json_and_deterministic():
    df = staggered_panel(seed=13)
    a = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated").to_dict()
    b = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated").to_dict()
    assert dumps_json(a) == dumps_json(b)
    assert json.loads(dumps_json(a))["n_clusters"] == 60


def test_bacon_weights_sum_to_one_and_reproduce_twfe():
    df = staggered_panel(seed=14, n_units=90, n_periods=10, cohorts=(0, 1, 4, 6, 9), dynamic=True)
    bacon = bacon_decomposition(df, y="y", unit="unit", time="time", cohort="g")
    twfe = estimate_twfe(df, y="y", unit="unit", time="time", cohort="g")
    comp = bacon.tidy()
    assert abs(comp["weight"].sum() - 1.0) < 1e-10
    assert abs((comp["weight"] * comp["estimate"]).sum() - twfe.estimate) < 1e-10
    assert set(comp["type"]) == {"Treated vs Never Treated", "Earlier vs Later Treated",
                                 "Later vs Earlier Treated", "Later vs Always Treated"}
    assert (comp["weight"] > 0).all()
    fig = bacon.plot()
    assert len(fig.axes[0].collections) == 4


def test_bacon_components_equal_true_effect_without_noise_or_dynamics():
    # constant effect 1.5 and no noise: every 2x2 comparison recovers 1.5 (GB 2021, section 3)
    df = staggered_panel(seed=15, n_units=40, cohorts=(0, 3, 6), noise=0.0)
    df["y"] = df["y"] - 0.3 * df["x"]  # drop the covariate's contribution
    comp = bacon_decomposition(df, y="y", unit="unit", time="time", treated="treated").tidy()
    np.testing.assert_allclose(comp["estimate"], 1.5, rtol=0, atol=1e-10)


def test_bacon_needs_balanced_panel():
    df = staggered_panel(seed=16).iloc[:-1]
    with pytest.raises(EstimationError, match="balanced"):
        bacon_decomposition(df, y="y", unit="unit", time="time", cohort="g")


def test_wild_bootstrap_on_demeaned_design_matches_dummy_regression():
    wild = pytest.importorskip("impactkit.did.wild")
    df = staggered_panel(seed=17, n_units=30, n_periods=5, cohorts=(0, 3))
    res = quiet(estimate_twfe, df, y="y", unit="unit", time="time", treated="treated", cluster="state")
    got = res.wild_bootstrap(B=999, seed=3)
    # same bootstrap on the explicit dummy-variable design: FWL makes both identical
    dummies = pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True, dtype=float)
    design = np.column_stack([df["treated"].to_numpy(float), np.ones(len(df)), dummies.to_numpy()])
    codes = pd.factorize(df["state"])[0]
    ref = wild.wild_cluster_bootstrap(df["y"].to_numpy(), design, codes, 0, B=999, seed=3)
    assert abs(got.p_value - ref.p_value) < 1e-10


def test_randomization_inference_recomputes_twfe_on_each_assignment():
    pytest.importorskip("impactkit.did.ri")
    gen = np.random.default_rng(18)
    n_units, n_periods = 8, 4
    df = pd.DataFrame({"unit": np.repeat(np.arange(n_units), n_periods),
                       "time": np.tile(np.arange(1, n_periods + 1), n_units)})
    df["g"] = np.where(df["unit"] < 4, 3, 0)
    df["y"] = 5.0 * ((df["g"] > 0) & (df["time"] >= 3)) + 0.01 * gen.normal(size=len(df))
    res = quiet(estimate_twfe, df, y="y", unit="unit", time="time", cohort="g")
    ri = res.randomization_inference(n_permutations=999, seed=1)
    assert abs(ri.estimate - res.estimate) < 1e-12
    # exact enumeration of the C(8,4) = 70 assignments; only the observed one and its mirror
    # image reach |5|, so the exact p-value is 2/70 (Fisher's exact test).
    assert ri.exact and ri.n_assignments == 70
    assert abs(ri.p_value - 2 / 70) < 1e-12


def test_weighted_hc1_and_weighted_coarse_clusters_match_pyfixest():
    df = staggered_panel(seed=19)
    ref = pf.feols("y ~ treated + x | unit + time", data=df, vcov="hetero", weights="w")
    res = estimate_twfe(df, y="y", unit="unit", time="time", treated="treated", covariates=["x"],
                        weights="w", vcov="HC1")
    np.testing.assert_allclose(res.coef, ref.coef().to_numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=TOL)
    ref = pf.feols("y ~ treated + x | unit + time", data=df, vcov={"CRV1": "state"}, weights="w")
    res = quiet(estimate_twfe, df, y="y", unit="unit", time="time", treated="treated", covariates=["x"],
                weights="w", cluster="state")
    np.testing.assert_allclose(res.std_error, ref.se().to_numpy(), rtol=0, atol=TOL)


def test_2x2_with_post_column_matches_default_post():
    df = staggered_panel(seed=20, cohorts=(0, 5))
    default = estimate_2x2(df, y="y", unit="unit", time="time", cohort="g")
    by_column = estimate_2x2(df.assign(after=(df["time"] >= 5).astype(int)), y="y", unit="unit", time="time",
                             cohort="g", post="after")
    assert abs(default.estimate - by_column.estimate) < 1e-12
    assert default.tidy()["term"].tolist() == ["treated_x_post"]
