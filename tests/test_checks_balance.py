"""balance_table against statsmodels fits and hand arithmetic on a seeded cluster-randomized sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from impactkit.checks import balance_table
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.seeds import rng


def cluster_sample(seed: int = 1, n_clusters: int = 40, size: int = 12) -> pd.DataFrame:
    gen = rng(seed, "test-balance")
    community = np.repeat(np.arange(n_clusters), size)
    treated = np.repeat(gen.permutation(np.arange(n_clusters) % 2), size)
    shock = gen.normal(size=n_clusters)[community]
    frame = pd.DataFrame({
        "community_id": community,
        "treated": treated,
        "income": 100 + 10 * shock + gen.normal(0, 20, community.size),
        "woman_head": (gen.random(community.size) < 0.3).astype(int),
        "herd_size": gen.poisson(4, community.size).astype(float),
        "weight": gen.uniform(0.5, 2.0, community.size),
    })
    frame.loc[gen.choice(community.size, 25, replace=False), "herd_size"] = np.nan
    return frame


def test_difference_pvalues_match_statsmodels_cluster_ols():
    frame = cluster_sample()
    res = balance_table(frame, arm="treated", covariates=["income", "woman_head", "herd_size"], cluster="community_id")
    table = res.tidy().set_index("covariate")
    for cov in ["income", "woman_head", "herd_size"]:
        data = frame.dropna(subset=[cov])
        fit = smf.ols(f"{cov} ~ treated", data).fit(cov_type="cluster", cov_kwds={"groups": data["community_id"]},
                                                   use_t=True)
        # same estimator, same CR1 variance and t(G-1): agreement to rounding (1e-10)
        assert table.loc[cov, "difference"] == pytest.approx(fit.params["treated"], abs=1e-10)
        assert table.loc[cov, "std_error"] == pytest.approx(fit.bse["treated"], rel=1e-10)
        assert table.loc[cov, "p_value"] == pytest.approx(fit.pvalues["treated"], rel=1e-8)


def test_normalized_difference_and_means_by_hand():
    frame = cluster_sample()
    res = balance_table(frame, arm="treated", covariates="income")
    row = res.tidy().iloc[0]
    x1 = frame.loc[frame.treated == 1, "income"].to_numpy()
    x0 = frame.loc[frame.treated == 0, "income"].to_numpy()
    nd = (x1.mean() - x0.mean()) / np.sqrt((x1.var(ddof=1) + x0.var(ddof=1)) / 2)  # Imbens-Rubin eq. 14.1
    assert row["normalized_difference"] == pytest.approx(nd, rel=1e-12)
    assert row["mean_treated"] == pytest.approx(x1.mean(), rel=1e-12)
    assert row["sd_control"] == pytest.approx(x0.std(ddof=1), rel=1e-12)
    assert row["n_treated"] == x1.size and row["n_control"] == x0.size


def test_joint_orthogonality_f_matches_statsmodels():
    frame = cluster_sample()
    covs = ["income", "woman_head", "herd_size"]
    res = balance_table(frame, arm="treated", covariates=covs, cluster="community_id")
    data = frame.dropna(subset=covs)
    fit = smf.ols("treated ~ income + woman_head + herd_size", data).fit(
        cov_type="cluster", cov_kwds={"groups": data["community_id"]}, use_t=True)
    ft = fit.f_test("income = 0, woman_head = 0, herd_size = 0")
    assert res.joint_f == pytest.approx(float(ft.fvalue), rel=1e-9)
    assert res.joint_p == pytest.approx(float(ft.pvalue), rel=1e-8)
    assert res.joint_df == (3.0, 39.0)
    assert res.joint_n == len(data)
    assert res.to_dict()["joint_test"]["n"] == len(data)
    points = res.plot().axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(points)[:, 0], res.tidy()["normalized_difference"], rtol=1e-12)


def test_weighted_means_and_wls_pvalue():
    frame = cluster_sample()
    res = balance_table(frame, arm="treated", covariates=["income"], cluster="community_id", weights="weight")
    row = res.tidy().iloc[0]
    t = frame[frame.treated == 1]
    assert row["mean_treated"] == pytest.approx(np.average(t.income, weights=t.weight), rel=1e-12)
    fit = smf.wls("income ~ treated", frame, weights=frame["weight"]).fit(
        cov_type="cluster", cov_kwds={"groups": frame["community_id"]}, use_t=True)
    assert row["p_value"] == pytest.approx(fit.pvalues["treated"], rel=1e-8)


def test_pre_period_restriction_and_arm_varying_within_unit():
    base = cluster_sample().assign(household_id=lambda f: np.arange(len(f)), wave=0)
    follow = base.assign(wave=1, income=base.income + 50)
    panel = pd.concat([base, follow], ignore_index=True)
    res = balance_table(panel, arm="treated", covariates="income", time="wave", pre_period=0, unit="household_id")
    direct = balance_table(base, arm="treated", covariates="income")
    assert res.tidy()["difference"].iloc[0] == pytest.approx(direct.tidy()["difference"].iloc[0], abs=1e-12)
    base2 = base.copy()
    panel2 = pd.concat([base2, base2.assign(treated=1 - base2.treated)], ignore_index=True)  # same wave twice
    with pytest.raises(InputError, match="varies within"):
        balance_table(panel2, arm="treated", covariates="income", time="wave", pre_period=0, unit="household_id")


def test_small_cell_is_suppressed_with_flag_and_warning():
    frame = cluster_sample()
    frame["rare"] = np.nan
    frame.loc[frame.index[(frame.treated == 1)][:5], "rare"] = 1.0
    frame.loc[frame.index[(frame.treated == 0)][:50], "rare"] = 0.0
    with pytest.warns(ImpactkitWarning, match="min_cell"):
        res = balance_table(frame, arm="treated", covariates=["income", "rare"], min_cell=10)
    row = res.tidy().set_index("covariate").loc["rare"]
    assert bool(row["suppressed"]) and np.isnan(row["mean_treated"]) and np.isnan(row["p_value"])
    assert row["n_treated"] == 5
    assert not bool(res.tidy().set_index("covariate").loc["income", "suppressed"])
    assert "Baseline balance" in res.summary()


def test_bad_input():
    frame = cluster_sample()
    with pytest.raises(InputError, match="'nope'"):
        balance_table(frame, arm="treated", covariates=["nope"])
    with pytest.raises(EstimationError, match="'treated' is constant"):
        balance_table(frame.assign(treated=1), arm="treated", covariates=["income"])
    with pytest.raises(InputError, match="negative"):
        balance_table(frame.assign(weight=-frame.weight), arm="treated", covariates=["income"], weights="weight")
    bad = frame.copy()
    bad.loc[3, "weight"] = np.nan
    with pytest.raises(InputError, match="weights column 'weight' has missing"):
        balance_table(bad, arm="treated", covariates=["income"], weights="weight")
    with pytest.raises(InputError, match="binary"):
        balance_table(frame.assign(treated=frame.treated * 2 + frame.woman_head), arm="treated", covariates=["income"])
