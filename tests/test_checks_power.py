"""Power/MDE against statsmodels, the DGK and McKenzie formulas, and seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from impactkit.checks import mde, power, required_sample
from impactkit.checks.power import achieved_power
from impactkit.errors import InputError
from impactkit.seeds import rng


@pytest.mark.parametrize("n, share", [(200, 0.5), (500, 0.3), (64, 0.5)])
def test_individual_mde_matches_statsmodels_normal(n, share):
    """Same exact two-sided normal power equation: power to 1e-12, statsmodels' power at our MDE = 0.8 to
    1e-10; MDE vs statsmodels' own solver to 1e-5 (its brentq stops at ~2e-6)."""
    ours = mde(n, share_treated=share)
    n1 = n * share
    for effect in (0.1, 0.25, 0.4):
        assert achieved_power(effect, n, share_treated=share) == pytest.approx(
            NormalIndPower().power(effect, nobs1=n1, ratio=(1 - share) / share, alpha=0.05), abs=1e-12)
    theirs = NormalIndPower().solve_power(nobs1=n1, ratio=(1 - share) / share, alpha=0.05, power=0.8)
    assert ours == pytest.approx(theirs, abs=1e-5)
    assert NormalIndPower().power(ours, nobs1=n1, ratio=(1 - share) / share, alpha=0.05) == pytest.approx(0.8, abs=1e-10)
    # outcome units scale with the SD
    assert mde(n, share_treated=share, sd=2.5) == pytest.approx(2.5 * ours, rel=1e-12)


@pytest.mark.parametrize("n", [40, 200])
def test_individual_mde_matches_statsmodels_t(n):
    """Noncentral t power as TTestIndPower: power to 1e-10, MDE to 1e-5 (statsmodels' solver tolerance)."""
    ours = mde(n, distribution="t", alpha=0.1, power=0.9)
    for effect in (0.2, 0.5):
        assert achieved_power(effect, n, distribution="t", alpha=0.1) == pytest.approx(
            TTestIndPower().power(effect, nobs1=n / 2, ratio=1, alpha=0.1), abs=1e-10)
    theirs = TTestIndPower().solve_power(nobs1=n / 2, ratio=1, alpha=0.1, power=0.9)
    assert ours == pytest.approx(theirs, abs=1e-5)
    assert TTestIndPower().power(ours, nobs1=n / 2, ratio=1, alpha=0.1) == pytest.approx(0.9, abs=1e-10)


def test_required_sample_matches_statsmodels_and_inverts_mde():
    effect = 0.25
    nobs1 = NormalIndPower().solve_power(effect_size=effect, ratio=1, alpha=0.05, power=0.8)
    assert required_sample(effect, exact=True) == pytest.approx(2 * nobs1, rel=1e-6)
    n = required_sample(effect)
    assert n == math.ceil(2 * nobs1 - 1e-9)
    assert mde(n) <= effect < mde(n - 1)
    nobs1_t = TTestIndPower().solve_power(effect_size=effect, ratio=1, alpha=0.05, power=0.8)
    assert required_sample(effect, distribution="t", exact=True) == pytest.approx(2 * nobs1_t, rel=1e-6)


def test_dgk_closed_form_design_effect_takeup_r2_attrition():
    """DGK (2007): MDE ~ (z_{1-a/2} + z_pow) sd sqrt(deff (1-R2) / (P(1-P) n (1-att))) / c (to 1e-5 relative:
    the exact equation adds only the far tail of the other side, Phi(-4.8) ~ 1e-6 of power)."""
    n, icc, m, c, r2, att = 1200, 0.08, 15, 0.6, 0.3, 0.1
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    closed = z * 2.0 * math.sqrt((1 + (m - 1) * icc) * (1 - r2) / (0.25 * n * (1 - att))) / c
    ours = mde(n, sd=2.0, icc=icc, cluster_size=m, take_up=c, r2=r2, cluster_attrition=att)   # whole clusters
    assert ours == pytest.approx(closed, rel=1e-5)
    assert ours < closed  # the far tail only helps
    # within-cluster attrition: all n / m clusters remain with m (1 - att) units each
    within = z * 2.0 * math.sqrt((1 + (m * (1 - att) - 1) * icc) * (1 - r2) / (0.25 * n * (1 - att))) / c
    assert mde(n, sd=2.0, icc=icc, cluster_size=m, take_up=c, r2=r2, attrition=att) == pytest.approx(within, rel=1e-5)
    # design effect: a cluster design equals an individual design with n / deff units
    assert mde(n, icc=icc, cluster_size=m) == pytest.approx(mde(n / (1 + (m - 1) * icc)), rel=1e-12)


def test_cluster_design_power_by_simulation():
    """Known truth: 4,000 simulated cluster RCTs (30 clusters of 10, ICC 0.1) analysed by a t test on
    cluster means (exact for equal cluster sizes). At the t-based MDE the rejection rate is 0.8 +- 3 MC SE
    (3 * sqrt(.8 * .2 / 4000) = 0.019)."""
    J, m, icc, reps = 30, 10, 0.1, 4000
    effect = mde(J * m, icc=icc, cluster_size=m, distribution="t")
    gen = rng(11, "test-power-sim")
    arm = np.arange(J) % 2
    cluster_effect = gen.normal(0, math.sqrt(icc), (reps, J))
    noise_mean = gen.normal(0, math.sqrt((1 - icc) / m), (reps, J))   # mean of m individual errors
    means = cluster_effect + noise_mean + effect * arm
    t_stat, _ = stats.ttest_ind(means[:, arm == 1], means[:, arm == 0], axis=1)
    rate = float(np.mean(np.abs(t_stat) > stats.t.ppf(0.975, J - 2)))
    assert rate == pytest.approx(0.8, abs=0.019)


def test_mckenzie_panel_factors_formula_and_simulation():
    # McKenzie (2012): with rho = 0.5, one baseline and one follow-up, ANCOVA cuts the variance by rho^2 = 25 %,
    # DiD variance is 2 (1 - rho) = 1 times the post-only one
    base = mde(400)
    assert mde(400, n_pre=1, autocorr=0.5) == pytest.approx(base * math.sqrt(0.75), rel=1e-10)
    assert mde(400, n_pre=1, autocorr=0.5, estimator="did") == pytest.approx(base, rel=1e-10)
    assert mde(400, n_periods=3, autocorr=0.0) == pytest.approx(base / math.sqrt(3), rel=1e-10)
    # simulation: 2 baseline and 3 follow-up rounds, equicorrelation 0.4, 3,000 trials of 400 units;
    # variance of the ANCOVA estimate vs the formula within 10 % (MC SE of a variance ~ 2.6 %)
    rho, reps, n, pre, post = 0.4, 3000, 400, 2, 3
    gen = rng(12, "test-mckenzie")
    common = gen.normal(0, math.sqrt(rho), (reps, n, 1))
    rounds = common + gen.normal(0, math.sqrt(1 - rho), (reps, n, pre + post))
    arm = (np.arange(n) % 2).astype(float)
    y_pre, y_post = rounds[:, :, :pre].mean(axis=2), rounds[:, :, pre:].mean(axis=2)
    # ANCOVA coefficient on arm via Frisch-Waugh: residualize arm and y_post on (1, y_pre)
    def resid(v, z):
        zc = z - z.mean(axis=1, keepdims=True)
        vc = v - v.mean(axis=1, keepdims=True)
        return vc - zc * (np.sum(zc * vc, axis=1, keepdims=True) / np.sum(zc * zc, axis=1, keepdims=True))
    ra = resid(np.broadcast_to(arm, y_pre.shape), y_pre)
    estimates = np.sum(ra * resid(y_post, y_pre), axis=1) / np.sum(ra * ra, axis=1)
    se_formula = mde(n, n_pre=pre, n_periods=post, autocorr=rho) / mde(n) * (2 / math.sqrt(n))
    assert estimates.var(ddof=1) == pytest.approx(se_formula**2, rel=0.10)


def test_power_grid_result():
    res = power(n=[200, 400], effect=0.3, icc=[0.0, 0.1], cluster_size=10)
    table = res.tidy()
    assert len(table) == 4
    row = table[(table.n == 400) & (table.icc == 0.1)].iloc[0]
    assert row["mde"] == pytest.approx(mde(400, icc=0.1, cluster_size=10), rel=1e-12)
    assert row["power"] == pytest.approx(achieved_power(0.3, 400, icc=0.1, cluster_size=10), rel=1e-12)
    assert row["required_n"] == required_sample(0.3, icc=0.1, cluster_size=10)
    assert row["required_n"] % 10 == 0 and row["required_clusters"] == row["required_n"] / 10
    assert achieved_power(0.3, row["required_n"], icc=0.1, cluster_size=10) >= 0.8
    assert "Power" in res.summary() and res.to_dict()["design"]["alpha"] == 0.05


def test_bad_input():
    with pytest.raises(InputError, match="icc"):
        mde(100, icc=1.5)
    with pytest.raises(InputError, match="take_up"):
        mde(100, take_up=0)
    with pytest.raises(InputError, match="effect"):
        required_sample(0.0)
    with pytest.raises(InputError, match="n_pre"):
        mde(100, estimator="did")
    with pytest.raises(InputError):
        power()


# ----------------------------------------------------------------------------------------
# issue 16, defect 3: t-based power near 1 (scipy's noncentral t lower tail is NaN there)
# ----------------------------------------------------------------------------------------
def test_t_power_is_finite_near_one_and_power_keeps_its_column():
    assert achieved_power(1.0, 800, distribution="t") == pytest.approx(1.0, abs=1e-12)
    effects = np.linspace(0.01, 3.0, 300)
    t_power = np.array([achieved_power(e, 800, distribution="t") for e in effects])
    normal_power = np.array([achieved_power(e, 800) for e in effects])
    assert np.all(np.isfinite(t_power)) and np.all(np.diff(t_power) >= -1e-15)
    np.testing.assert_allclose(t_power, normal_power, atol=2e-3)     # 798 df: t and normal nearly agree
    # where scipy's two tails are both finite, the same numbers as statsmodels' TTestIndPower (1e-10)
    for e in (0.05, 0.1, 0.2):
        peer = TTestIndPower().power(effect_size=e, nobs1=400, alpha=0.05, ratio=1.0)
        assert achieved_power(e, 800, distribution="t") == pytest.approx(peer, abs=1e-10)
    table = power(n=800, effect=1.0, distribution="t").tidy()
    assert "power" in table.columns and table["power"].iloc[0] == pytest.approx(1.0, abs=1e-12)
    assert "power" not in power(effect=1.0).tidy().columns        # columns follow the inputs given


def test_t_required_sample_for_large_effects_matches_statsmodels():
    exact = required_sample(5.0, distribution="t", exact=True)
    peer = 2 * TTestIndPower().solve_power(effect_size=5.0, alpha=0.05, power=0.8)
    assert exact == pytest.approx(peer, rel=1e-6)
    assert required_sample(5.0, distribution="t") == 5.0


# ----------------------------------------------------------------------------------------
# issue 16, defect 4: attrition within clusters vs whole clusters lost
# ----------------------------------------------------------------------------------------
def _cluster_trial_rejections(effect, *, n_clusters, m_kept, icc, reps, seed):
    gen = rng(seed, "test-power-attrition")
    arm = np.arange(n_clusters) % 2
    means = (gen.normal(0, math.sqrt(icc), (reps, n_clusters))
             + gen.normal(0, math.sqrt((1 - icc) / m_kept), (reps, n_clusters)) + effect * arm)
    t_stat, _ = stats.ttest_ind(means[:, arm == 1], means[:, arm == 0], axis=1)
    return float(np.mean(np.abs(t_stat) > stats.t.ppf(0.975, n_clusters - 2)))


@pytest.mark.slow
def test_cluster_power_models_both_kinds_of_attrition_by_simulation():
    """Known truth: 4,000 simulated cluster RCTs of 40 clusters x 10 households, ICC 0.1, analysed by a
    t test on cluster means. (a) 20% of households lost in every cluster (8 of 10 remain): at
    mde(attrition=0.2) the rejection rate is 0.8 +- 0.019 (3 MC SE); the old model (whole clusters
    lost) overstates that MDE by ~6% and its effect is detected with power above 0.8 + 3 MC SE.
    (b) 25% of clusters lost (30 remain, 15 per arm): at mde(cluster_attrition=0.25) the rate is 0.8."""
    J, m, icc, reps = 40, 10, 0.1, 4000
    within = mde(J * m, icc=icc, cluster_size=m, attrition=0.2, distribution="t")
    as_whole = mde(J * m, icc=icc, cluster_size=m, cluster_attrition=0.2, distribution="t")
    assert as_whole / within == pytest.approx(1.065, abs=0.005)
    assert _cluster_trial_rejections(within, n_clusters=J, m_kept=8, icc=icc, reps=reps, seed=1) == \
        pytest.approx(0.8, abs=0.019)
    assert _cluster_trial_rejections(as_whole, n_clusters=J, m_kept=8, icc=icc, reps=reps, seed=2) > 0.819
    lost = mde(J * m, icc=icc, cluster_size=m, cluster_attrition=0.25, distribution="t")
    assert _cluster_trial_rejections(lost, n_clusters=30, m_kept=10, icc=icc, reps=reps, seed=3) == \
        pytest.approx(0.8, abs=0.019)
    # both kinds at once compose: J' = 30 clusters of m' = 8
    both = mde(J * m, icc=icc, cluster_size=m, attrition=0.2, cluster_attrition=0.25, distribution="t")
    assert _cluster_trial_rejections(both, n_clusters=30, m_kept=8, icc=icc, reps=reps, seed=4) == \
        pytest.approx(0.8, abs=0.019)
    # individual randomization (m = 1): attrition removes units, as before
    assert mde(500, attrition=0.2) == pytest.approx(mde(400), rel=1e-12)
    assert mde(500, cluster_attrition=0.2) == pytest.approx(mde(400), rel=1e-12)
