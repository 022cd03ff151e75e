"""Wild cluster bootstrap: against the `wildboottest` package, brute force and naive refits.

Tolerances are stated with each test:
- same data and the same (B x G) draws as `wildboottest` 0.3.2: p-values within 0.01
  (they agree to ties; the bootstrap t-statistics agree to 1e-10);
- independent draws (B = 9999 each): p-values within 0.01 on data whose p-value is near 0.05
  (Monte Carlo s.d. of the difference sqrt(2 * 0.05 * 0.95 / 9999) = 0.003, so > 3 s.d.);
- full enumeration (G = 8) vs a brute-force loop over all 2^8 sign vectors with direct
  OLS refits: t-statistics to 1e-12 (relative), p-values exactly;
- fast algorithm vs naive per-draw refits on the same random draws: 1e-10;
- confidence-interval endpoints: p(r) crosses alpha there (p is a step function of r).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from wildboottest.wildboottest import WildboottestCL

from impactkit.did.wild import (
    TIE_RTOL,
    WildBootstrapResult,
    bootstrap_p_value,
    draw_weights,
    enumerate_rademacher,
    wild_cluster_bootstrap,
)
from impactkit.errors import ImpactkitWarning, InputError
from impactkit.results import to_plain


# --------------------------------------------------------------------------- data
def cluster_design(n_clusters: int, seed: int, effect: float = 0.0, n_per: tuple[int, int] = (10, 40)):
    """Cluster-level treatment (half the clusters), a covariate, intercept; clustered errors."""
    g = np.random.default_rng(seed)
    sizes = g.integers(n_per[0], n_per[1], n_clusters)
    cl = np.repeat(np.arange(n_clusters), sizes) * 7 + 3          # non-consecutive labels
    codes = np.repeat(np.arange(n_clusters), sizes)
    treated = np.zeros(n_clusters)
    treated[g.permutation(n_clusters)[: n_clusters // 2]] = 1.0
    d = treated[codes]
    x = g.normal(size=codes.size) + 0.5 * g.normal(size=n_clusters)[codes]
    u = 0.6 * g.normal(size=n_clusters)[codes] + g.normal(size=codes.size) * (1 + 0.4 * np.abs(x))
    y = 1.0 + effect * d + 0.3 * x + u
    X = np.column_stack([np.ones(codes.size), d, x])
    return y, X, cl


def did_panel_design(n_clusters: int, seed: int, units_per_cluster: int = 3, periods: int = 4):
    """Units nested in clusters, treatment x post; returns the unit-dummy and demeaned designs."""
    g = np.random.default_rng(seed)
    n_units = n_clusters * units_per_cluster
    unit = np.repeat(np.arange(n_units), periods)
    cl = unit // units_per_cluster
    t = np.tile(np.arange(periods), n_units)
    post = (t >= periods // 2).astype(float)
    treated_cluster = (np.arange(n_clusters) % 2 == 0).astype(float)
    d = treated_cluster[cl] * post
    y = 0.2 * d + 0.5 * post + g.normal(size=n_units)[unit] + 0.5 * g.normal(size=n_clusters)[cl] \
        + g.normal(size=unit.size)
    dummies = (unit[:, None] == np.arange(n_units)[None, :]).astype(float)
    X_dummy = np.column_stack([d, post, dummies])

    def demean(v):
        means = np.bincount(unit, weights=v) / np.bincount(unit)
        return v - means[unit]

    X_within = np.column_stack([demean(d), demean(post)])
    return y, X_dummy, demean(y), X_within, cl, n_units


def wildboottest_same_draws(y, X, cl, j, draws, impose_null):
    """`wildboottest` 0.3.2 (WCR/WCU '11', CRV1 with G/(G-1)(N-1)/(N-k)) fed our draws."""
    R = np.zeros(X.shape[1])
    R[j] = 1.0
    boot = WildboottestCL(X=X, Y=y, cluster=cl, R=R, B=draws.shape[0], seed=1, parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=impose_null)
    boot.get_weights(weights_type="rademacher")
    boot.v = np.ascontiguousarray(draws.T)
    boot.B = draws.shape[0]
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue(pval_type="two-tailed")
    return float(boot.pvalue), float(np.ravel(boot.t_stat)[0]), np.asarray(boot.t_boot)


def naive_bootstrap_t(y, X, cl, j, r, draws, impose_null, ssc_params=None):
    """Direct wild cluster bootstrap: refit OLS and recompute CRV1 for every draw."""
    n, k = X.shape
    labels, codes = np.unique(cl, return_inverse=True)
    G = labels.size
    params = k if ssc_params is None else ssc_params
    ssc = G / (G - 1) * (n - 1) / (n - params)

    def fit(yv):
        beta = np.linalg.lstsq(X, yv, rcond=None)[0]
        resid = yv - X @ beta
        bread = np.linalg.inv(X.T @ X)
        meat = np.zeros((k, k))
        for g in range(G):
            s = X[codes == g].T @ resid[codes == g]
            meat += np.outer(s, s)
        return beta, math.sqrt(ssc * (bread @ meat @ bread)[j, j])

    beta_hat, se_hat = fit(y)
    if impose_null:
        others = [c for c in range(k) if c != j]
        y_r = y - r * X[:, j]
        gamma = np.linalg.lstsq(X[:, others], y_r, rcond=None)[0]
        fitted = X[:, others] @ gamma + r * X[:, j]
        centre = r
    else:
        fitted = X @ beta_hat
        centre = beta_hat[j]
    resid = y - fitted
    t_boot = np.empty(draws.shape[0])
    for b, v in enumerate(draws):
        beta_b, se_b = fit(fitted + resid * v[codes])
        t_boot[b] = (beta_b[j] - centre) / se_b
    return (beta_hat[j] - r) / se_hat, t_boot


# --------------------------------------------------------------------------- peer package
@pytest.mark.parametrize("weights", ["rademacher", "webb"])
@pytest.mark.parametrize("impose_null", [True, False])
@pytest.mark.parametrize("n_clusters", [14, 27])
def test_matches_wildboottest_on_same_draws(weights, impose_null, n_clusters):
    """Same data, same 9,999 draws: p within 0.01 (in fact equal), t* equal to 1e-10."""
    y, X, cl = cluster_design(n_clusters, seed=n_clusters, effect=0.4)
    ours = wild_cluster_bootstrap(y, X, cl, 1, B=9999, weights=weights, impose_null=impose_null,
                                  seed=11, full_enumeration=False, ci=False)
    draws = draw_weights(9999, n_clusters, weights, seed=11)
    p_peer, t_peer, t_boot_peer = wildboottest_same_draws(y, X, cl, 1, draws, impose_null)
    assert abs(ours.p_value - p_peer) <= 0.01
    assert ours.t_stat == pytest.approx(t_peer, rel=1e-10)
    np.testing.assert_allclose(ours.t_boot, t_boot_peer, rtol=1e-10, atol=1e-10)


def test_matches_wildboottest_dummy_and_demeaned_designs():
    """DiD with unit dummies (peer) vs the unit-demeaned design (ours, n_params counts the
    absorbed dummies): t-statistics to 1e-9, p-values within 0.01 (same draws)."""
    y, X_dummy, y_within, X_within, cl, n_units = did_panel_design(20, seed=5)
    draws = draw_weights(9999, 20, "webb", seed=4)
    p_peer, t_peer, _ = wildboottest_same_draws(y, X_dummy, cl, 0, draws, True)
    ours_dummy = wild_cluster_bootstrap(y, X_dummy, cl, 0, B=9999, weights="webb", seed=4, ci=False)
    ours_within = wild_cluster_bootstrap(y_within, X_within, cl, 0, B=9999, weights="webb", seed=4,
                                         ci=False, n_params=X_within.shape[1] + n_units)
    for res in (ours_dummy, ours_within):
        assert abs(res.p_value - p_peer) <= 0.01
        assert res.t_stat == pytest.approx(t_peer, rel=1e-9)
    np.testing.assert_allclose(ours_within.t_boot, ours_dummy.t_boot, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_matches_wildboottest_with_independent_draws(weights):
    """Independent draws (theirs from their own rng), B = 9999 each: |p - p_peer| <= 0.01
    on a data set with p near 0.05 (difference s.d. ~0.003)."""
    n_clusters = 24
    y, X, cl = cluster_design(n_clusters, seed=101, effect=0.0)
    # choose r so that the analytic CRV1 t is about 2.1 (p near 0.05)
    probe = wild_cluster_bootstrap(y, X, cl, 1, B=99, ci=False, full_enumeration=False)
    r = probe.estimate - 2.1 * probe.std_error
    ours = wild_cluster_bootstrap(y, X, cl, 1, r=r, B=9999, weights=weights, seed=7, ci=False)
    R = np.array([0.0, 1.0, 0.0])
    boot = WildboottestCL(X=X, Y=y - r * X[:, 1], cluster=cl, R=R, B=9999, seed=2024, parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=True)
    boot.get_weights(weights_type=weights)
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue(pval_type="two-tailed")
    assert 0.01 < ours.p_value < 0.15
    assert abs(ours.p_value - float(boot.pvalue)) <= 0.01


# --------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("impose_null", [True, False])
@pytest.mark.parametrize("p_value_type", ["symmetric", "equal-tailed"])
def test_full_enumeration_equals_brute_force(impose_null, p_value_type):
    """G = 8: all 256 sign vectors, each refitted directly: t* to 1e-12, p exactly."""
    y, X, cl = cluster_design(8, seed=3, effect=0.5)
    r = 0.25
    res = wild_cluster_bootstrap(y, X, cl, 1, r=r, B=999, impose_null=impose_null, ci=False,
                                 p_value_type=p_value_type)
    assert res.full_enumeration and res.n_draws == 256
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=8)))
    t_obs, t_brute = naive_bootstrap_t(y, X, cl, 1, r, signs, impose_null)
    np.testing.assert_allclose(res.t_boot, t_brute, rtol=1e-12, atol=1e-12)
    assert res.t_stat == pytest.approx(t_obs, rel=1e-12)
    tol = TIE_RTOL * max(1.0, abs(t_obs))
    if p_value_type == "symmetric":
        p_brute = np.mean(np.abs(t_brute) >= abs(t_obs) - tol)
    else:
        p_brute = min(1.0, 2 * min(np.mean(t_brute <= t_obs + tol), np.mean(t_brute >= t_obs - tol)))
    assert res.p_value == p_brute
    if impose_null:  # the all-ones vector reproduces the original sample: t*(1) = t
        assert res.t_boot[0] == pytest.approx(t_obs, rel=1e-12)


def test_enumeration_layout_and_forcing():
    signs = enumerate_rademacher(3)
    assert signs.shape == (8, 3)
    np.testing.assert_array_equal(signs[0], [1, 1, 1])
    np.testing.assert_array_equal(signs[1], [1, 1, -1])
    assert len({tuple(s) for s in signs}) == 8
    y, X, cl = cluster_design(10, seed=8)
    forced = wild_cluster_bootstrap(y, X, cl, 1, B=99, full_enumeration=True, ci=False)
    assert forced.full_enumeration and forced.n_draws == 1024
    assert any("enumerated" in note for note in forced.notes())
    sampled = wild_cluster_bootstrap(y, X, cl, 1, B=9999, full_enumeration=False, seed=1, ci=False)
    assert not sampled.full_enumeration and sampled.n_draws == 9999


@pytest.mark.parametrize("weights,impose_null", [("webb", True), ("mammen", True), ("rademacher", False)])
def test_fast_algorithm_equals_naive_refits(weights, impose_null):
    """The O(G^2)-per-draw algorithm equals per-draw OLS refits on the same draws to 1e-10."""
    y, X, cl = cluster_design(15, seed=21, effect=0.3)
    res = wild_cluster_bootstrap(y, X, cl, 1, r=0.3, B=199, weights=weights, impose_null=impose_null,
                                 seed=5, ci=False)
    draws = draw_weights(199, 15, weights, seed=5)
    t_obs, t_naive = naive_bootstrap_t(y, X, cl, 1, 0.3, draws, impose_null)
    np.testing.assert_allclose(res.t_boot, t_naive, rtol=1e-10, atol=1e-10)
    assert res.t_stat == pytest.approx(t_obs, rel=1e-10)
    assert res.p_value == bootstrap_p_value(t_obs, t_naive)


def test_weight_distributions_have_unit_variance():
    """Moments of the weights (known truth): mean 0, variance 1; Mammen third moment 1.
    Tolerance 5 Monte Carlo s.d. with 200,000 draws."""
    for weights in ("rademacher", "webb", "mammen"):
        v = draw_weights(20_000, 10, weights, seed=9).ravel()
        assert abs(v.mean()) < 5 * np.sqrt(2.0 / v.size)
        assert abs(v.var() - 1.0) < 5 * np.sqrt(4.0 / v.size)
    v = draw_weights(20_000, 10, "mammen", seed=9).ravel()
    assert abs(np.mean(v ** 3) - 1.0) < 5 * np.sqrt(8.0 / v.size)
    assert set(np.unique(draw_weights(200, 5, "webb", seed=1)).round(12)) == set(
        np.round([-np.sqrt(1.5), -1, -np.sqrt(0.5), np.sqrt(0.5), 1, np.sqrt(1.5)], 12))


# --------------------------------------------------------------------------- intervals
@pytest.mark.parametrize("weights,impose_null,p_value_type", [
    ("rademacher", True, "symmetric"), ("webb", True, "equal-tailed"), ("webb", False, "symmetric")])
def test_confidence_interval_inverts_the_test(weights, impose_null, p_value_type):
    """At each endpoint p(r) crosses alpha: p >= alpha just inside, < alpha just outside
    (within 1e-6 standard errors); the estimate lies inside."""
    y, X, cl = cluster_design(18, seed=44, effect=0.5)
    kw = dict(B=999, weights=weights, impose_null=impose_null, seed=3, p_value_type=p_value_type)
    res = wild_cluster_bootstrap(y, X, cl, 1, alpha=0.1, **kw)
    assert res.conf_low < res.estimate < res.conf_high
    delta = 1e-6 * res.std_error

    def p_at(r):
        return wild_cluster_bootstrap(y, X, cl, 1, r=r, ci=False, **kw).p_value

    assert p_at(res.conf_low + delta) >= 0.1 > p_at(res.conf_low - delta)
    assert p_at(res.conf_high - delta) >= 0.1 > p_at(res.conf_high + delta)


def test_wcu_symmetric_interval_is_the_bootstrap_t_quantile():
    """WCU: t* does not depend on r, so the symmetric interval is estimate +- se * c with c
    the ceil(alpha B)-th largest |t*| (closed form, to 1e-8 standard errors)."""
    y, X, cl = cluster_design(20, seed=12, effect=0.2)
    res = wild_cluster_bootstrap(y, X, cl, 1, B=999, weights="webb", impose_null=False, seed=8)
    c = np.sort(np.abs(res.t_boot))[::-1][math.ceil(0.05 * 999) - 1]
    assert res.conf_high == pytest.approx(res.estimate + c * res.std_error, abs=1e-8 * res.std_error)
    assert res.conf_low == pytest.approx(res.estimate - c * res.std_error, abs=1e-8 * res.std_error)


def test_too_few_clusters_gives_unbounded_interval_and_warning():
    """G = 4 Rademacher: at most 16 sign vectors, p >= 2/16 > 0.05, so nothing is rejected."""
    y, X, cl = cluster_design(4, seed=2)
    with pytest.warns(ImpactkitWarning, match="webb"):
        res = wild_cluster_bootstrap(y, X, cl, 1, B=999)
    assert res.full_enumeration and res.n_draws == 16
    assert res.p_value >= 2 / 16
    assert math.isinf(res.conf_low) and math.isinf(res.conf_high)
    assert any("unbounded" in n for n in res.notes())


# --------------------------------------------------------------------------- API
def test_determinism_and_seed_dependence():
    y, X, cl = cluster_design(25, seed=30)
    a = wild_cluster_bootstrap(y, X, cl, 1, B=999, weights="webb", seed=123)
    b = wild_cluster_bootstrap(y, X, cl, 1, B=999, weights="webb", seed=123)
    c = wild_cluster_bootstrap(y, X, cl, 1, B=999, weights="webb", seed=124)
    assert a.t_boot.tobytes() == b.t_boot.tobytes()
    assert (a.p_value, a.conf_low, a.conf_high) == (b.p_value, b.conf_low, b.conf_high)
    assert a.t_boot.tobytes() != c.t_boot.tobytes()


def test_result_interface():
    y, X, cl = cluster_design(16, seed=31, effect=1.0)
    res = wild_cluster_bootstrap(y, X, cl, 1, B=499, seed=1, term="treated")
    assert isinstance(res, WildBootstrapResult)
    tidy = res.tidy()
    assert list(tidy.columns) == ["term", "estimate", "std_error", "t_stat", "p_value", "conf_low",
                                  "conf_high", "B", "n_clusters", "n", "weights"]
    assert tidy.loc[0, "term"] == "treated" and tidy.loc[0, "B"] == 499
    d = res.to_dict()
    assert d["bootstrap_type"] == "WCR" and d["table"][0]["p_value"] == res.p_value
    assert to_plain(d) == d
    notes = " ".join(res.notes())
    assert "WCR" in notes and "rademacher" in notes
    assert "WCU" in " ".join(wild_cluster_bootstrap(y, X, cl, 1, B=499, impose_null=False, ci=False).notes())
    import matplotlib

    matplotlib.use("Agg")
    fig = res.plot()
    assert "bootstrap" in fig._impactkit_alt_text and len(fig.axes[0].patches) > 5
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_bad_inputs_raise():
    y, X, cl = cluster_design(10, seed=1)
    with pytest.raises(InputError, match="only 1 cluster"):
        wild_cluster_bootstrap(y, X, np.zeros_like(y), 1)
    with pytest.raises(InputError, match="param_index"):
        wild_cluster_bootstrap(y, X, cl, 3)
    with pytest.raises(InputError, match="B=50"):
        wild_cluster_bootstrap(y, X, cl, 1, B=50)
    y_nan = y.copy()
    y_nan[[4, 9]] = np.nan
    with pytest.raises(InputError, match="y: 2 missing.*rows 4, 9"):
        wild_cluster_bootstrap(y_nan, X, cl, 1)
    X_nan = X.copy()
    X_nan[2, 2] = np.inf
    with pytest.raises(InputError, match="X: 1 missing"):
        wild_cluster_bootstrap(y, X_nan, cl, 1)
    cl_nan = cl.astype(float)
    cl_nan[0] = np.nan
    with pytest.raises(InputError, match="clusters: 1 missing"):
        wild_cluster_bootstrap(y, X, cl_nan, 1)
    with pytest.raises(InputError, match="weights"):
        wild_cluster_bootstrap(y, X, cl, 1, weights="normal")
    with pytest.raises(InputError, match="only Rademacher"):
        wild_cluster_bootstrap(y, X, cl, 1, weights="webb", full_enumeration=True)
    with pytest.raises(InputError, match="lengths differ"):
        wild_cluster_bootstrap(y[:-1], X, cl, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wild_cluster_bootstrap(y, X, cl, 1, B=99, ci=False)  # 10 clusters: no warning
