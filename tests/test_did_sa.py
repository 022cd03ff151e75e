"""Sun-Abraham IW event study: exact recovery of simulated heterogeneous dynamic effects,
agreement with pyfixest's saturated event study, pre-trend test and sup-t bands."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from impactkit.did.sa import estimate_sa, sup_t_critical_value
from impactkit.did.twfe import estimate_twfe
from impactkit.errors import EstimationError, ImpactkitWarning

COHORT_SLOPE = {3: 1.0, 5: 0.5, 7: 2.0}  # effect at event time l >= 0 is (l + 1) * slope


def panel(seed: int = 3, n_units: int = 120, n_periods: int = 8, cohorts=(0, 3, 5, 7), noise: float = 1.0,
          pre_trend: float = 0.0) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    time = np.tile(np.arange(1, n_periods + 1), n_units)
    g = np.repeat(gen.choice(cohorts, n_units), n_periods)
    rel = time - g
    slope = np.vectorize(lambda c: COHORT_SLOPE.get(c, 0.0))(g)
    effect = np.where((g > 0) & (rel >= 0), (rel + 1) * slope, 0.0)
    effect += np.where((g > 0) & (rel == -2), pre_trend, 0.0)
    y = (np.repeat(gen.normal(size=n_units), n_periods) + 0.2 * time + effect
         + noise * gen.normal(size=unit.size))
    return pd.DataFrame({"unit": unit, "time": time, "y": y, "g": g, "cl": unit})


def true_iw(df: pd.DataFrame, event_times) -> np.ndarray:
    """nu_l = sum_e share_{e|l} CATT_{e,l} with sample cohort shares (SA 2021 eq. 17)."""
    treated = df[df["g"] > 0].assign(rel=lambda d: d["time"] - d["g"])
    out = []
    for l in event_times:
        cells = treated[treated["rel"] == l]
        catt = (l + 1) * cells["g"].map(COHORT_SLOPE) if l >= 0 else 0.0 * cells["g"]
        out.append(float(np.mean(catt)))
    return np.array(out)


def test_noise_free_heterogeneous_effects_recovered_exactly_where_twfe_is_biased():
    df = panel(noise=0.0)
    res = estimate_sa(df, y="y", unit="unit", time="time", cohort="g")
    tidy = res.tidy()
    np.testing.assert_allclose(tidy["estimate"], true_iw(df, tidy["event_time"]), rtol=0, atol=1e-8)
    # static TWFE mixes these dynamic, heterogeneous effects with bad comparisons (biased)
    true_att = res.att()["estimate"]
    treated = df[(df["g"] > 0) & (df["time"] >= df["g"])]
    manual_att = float(((treated["time"] - treated["g"] + 1) * treated["g"].map(COHORT_SLOPE)).mean())
    assert abs(true_att - manual_att) < 1e-8
    twfe = estimate_twfe(df, y="y", unit="unit", time="time", cohort="g")
    assert abs(twfe.estimate - manual_att) > 0.5


def test_noisy_estimates_cover_truth():
    df = panel(seed=21, n_units=400)
    res = estimate_sa(df, y="y", unit="unit", time="time", cohort="g")
    tidy = res.tidy()
    z = (tidy["estimate"] - true_iw(df, tidy["event_time"])) / tidy["std_error"]
    assert np.abs(z).max() < 3.5  # 11 event times; a |z| beyond 3.5 has probability < 0.5%
    band = res.sup_t_band()
    truth = true_iw(df, band["event_time"])
    assert ((band["conf_low"] <= truth) & (truth <= band["conf_high"])).all()


def test_matches_pyfixest_saturated_event_study():
    pf = pytest.importorskip("pyfixest")
    df = panel(seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.event_study(df, yname="y", idname="unit", tname="time", gname="g", estimator="saturated",
                             cluster="cl")
        agg = fit.aggregate()
    res = estimate_sa(df, y="y", unit="unit", time="time", cohort="g", cluster="cl")
    tidy = res.tidy().set_index("event_time")
    agg.index = agg.index.astype(float).astype(int)
    agg = agg.loc[tidy.index]
    # IW estimate and delta-method SE (1e-8)
    np.testing.assert_allclose(tidy["estimate"], agg["Estimate"].astype(float), rtol=0, atol=1e-8)
    np.testing.assert_allclose(tidy["std_error"], agg["Std. Error"].astype(float), rtol=0, atol=1e-8)
    # the cohort x event-time coefficients (step 1) and their CRV1 SEs (1e-8)
    coefs = fit.coef()
    names = coefs.index.str.extract(r"::(-?\d+\.?\d*):.*::(\d+\.?\d*)$").astype(float)
    table = res.cohort_table
    ours = table.set_index([table["event_time"].astype(float), table["cohort"]])
    theirs = pd.DataFrame({"estimate": coefs.to_numpy(), "std_error": fit.se().to_numpy()},
                          index=pd.MultiIndex.from_arrays([names[0], names[1]]))
    theirs = theirs.loc[ours.index]
    np.testing.assert_allclose(ours["estimate"], theirs["estimate"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours["std_error"], theirs["std_error"], rtol=0, atol=1e-8)


def test_pretrend_test_detects_violation_and_accepts_parallel_trends():
    good = estimate_sa(panel(seed=5, n_units=300), y="y", unit="unit", time="time", cohort="g")
    bad = estimate_sa(panel(seed=5, n_units=300, pre_trend=1.0), y="y", unit="unit", time="time", cohort="g")
    assert good.pretrend().p_value > 0.05  # seeded draw under the null
    assert bad.pretrend().p_value < 1e-6   # lead -2 shifted by one outcome SD
    test = good.pretrend_test()             # the same result type as Callaway-Sant'Anna's
    assert type(test).__name__ == "WaldTestResult"
    assert test.df == int((good.event_times < -1).sum())
    assert test.extras["f_statistic"] == pytest.approx(test.statistic / test.df)


def test_sup_t_critical_value_known_cases():
    # independent coordinates: c solves (2 Phi(c) - 1)^k = 1 - alpha
    k = 6
    exact = stats.norm.ppf((1 + 0.95 ** (1 / k)) / 2)
    assert abs(sup_t_critical_value(np.eye(k), 0.05, seed=1) - exact) < 0.03
    # perfectly correlated coordinates: the pointwise 1.96
    assert abs(sup_t_critical_value(np.ones((k, k)), 0.05, seed=1) - stats.norm.ppf(0.975)) < 0.03
    assert sup_t_critical_value(np.eye(k), 0.05, seed=1) == sup_t_critical_value(np.eye(k), 0.05, seed=1)


def test_last_treated_control_recovers_truth_without_never_treated():
    df = panel(seed=7, cohorts=(3, 5, 7), noise=0.0)
    with pytest.raises(EstimationError, match="never-treated"):
        estimate_sa(df, y="y", unit="unit", time="time", cohort="g")
    res = estimate_sa(df, y="y", unit="unit", time="time", cohort="g", control="last")
    kept = df[(df["time"] < 7) & (df["g"] < 7)]
    tidy = res.tidy()
    np.testing.assert_allclose(tidy["estimate"], true_iw(kept, tidy["event_time"]), rtol=0, atol=1e-8)


def test_always_treated_units_dropped_with_warning_and_plot():
    df = panel(seed=8, cohorts=(0, 1, 4))
    with pytest.warns(ImpactkitWarning, match="no reference period"):
        res = estimate_sa(df, y="y", unit="unit", time="time", cohort="g", seed=2)
    assert (res.cohort_table["cohort"] == 4).all()
    fig = res.plot()
    assert fig.axes
    assert res.to_dict()["pretrend_test"]["df"] == 2


def test_weighted_iw_uses_weighted_cohort_shares():
    df = panel(seed=9, noise=0.0)
    df["w"] = np.where(df["g"] == 3, 3.0, 1.0)  # triple the weight of cohort 3
    res = estimate_sa(df, y="y", unit="unit", time="time", cohort="g", weights="w")
    treated = df[df["g"] > 0].assign(rel=lambda d: d["time"] - d["g"])
    for row in res.tidy().itertuples():
        cells = treated[treated["rel"] == row.event_time]
        catt = (row.event_time + 1) * cells["g"].map(COHORT_SLOPE) if row.event_time >= 0 else 0 * cells["g"]
        assert abs(row.estimate - float(np.average(catt, weights=cells["w"]))) < 1e-8
