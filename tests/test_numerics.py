"""The shared numerical core against known truth and peer packages on the same data.

- demeaning (``impactkit.numerics.within``) against the dummy-variable regression
  (Frisch-Waugh-Lovell), by statsmodels WLS with explicit dummies: slopes to 1e-10;
- the grid path of the balanced two-way demeaning against the bincount formula: bit-identical;
- HC1 / CRV1 (one- and two-way, fixed effects nested or not) / CRV3 covariances against
  statsmodels and pyfixest on the same data: to 1e-10 relative;
- least squares (normal equations and SVD) against statsmodels: coefficients and bread
  to 1e-10 relative; the checks' robust regression against statsmodels to 1e-10.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.sandwich_covariance import cov_cluster

from impactkit.checks.regression import robust_ols
from impactkit.errors import EstimationError
from impactkit.numerics import covariance as cov
from impactkit.numerics.ols import least_squares
from impactkit.numerics.within import (
    demean,
    demean_balanced_two_way,
    factorize,
    is_balanced_two_way,
    is_sorted_grid,
)
from impactkit.seeds import rng

RTOL = 1e-10


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """An unbalanced sample with three crossed groupings, two regressors and positive weights."""
    gen = rng(7, "test-numerics")
    n = 900
    frame = pd.DataFrame({
        "a": gen.integers(0, 40, n), "b": gen.integers(0, 12, n), "c": gen.integers(0, 7, n),
        "x1": gen.normal(size=n), "x2": gen.normal(size=n), "w": gen.uniform(0.5, 2.0, n),
    })
    frame["y"] = (0.7 * frame["x1"] - 0.4 * frame["x2"] + 0.05 * frame["a"] - 0.2 * frame["b"]
                  + 0.3 * frame["c"] + gen.normal(size=n) * (1 + 0.5 * np.abs(frame["x1"])))
    return frame


def dummy_regression(frame: pd.DataFrame, fe: list[str], weights: bool) -> np.ndarray:
    """Slopes of y on x1, x2 with every fixed effect as explicit dummies (statsmodels)."""
    dummies = [pd.get_dummies(frame[f], prefix=f, drop_first=j > 0, dtype=float) for j, f in enumerate(fe)]
    X = pd.concat([frame[["x1", "x2"]]] + dummies, axis=1).to_numpy(float)
    y = frame["y"].to_numpy()
    model = sm.WLS(y, X, weights=frame["w"].to_numpy()) if weights else sm.OLS(y, X)
    return model.fit().params[:2]


@pytest.mark.parametrize("fe", [["a"], ["a", "b"], ["a", "b", "c"]])
@pytest.mark.parametrize("weights", [False, True])
def test_demeaning_gives_the_dummy_variable_slopes(data, fe, weights):
    codes = [factorize(data[f]) for f in fe]
    w = data["w"].to_numpy() if weights else None
    stacked = data[["y", "x1", "x2"]].to_numpy(float)
    within = demean(stacked, [c for c, _ in codes], [g for _, g in codes], weights=w)
    slopes = least_squares(within[:, 0], within[:, 1:], w).coef
    np.testing.assert_allclose(slopes, dummy_regression(data, fe, weights), rtol=RTOL)


def test_demeaned_columns_have_zero_weighted_group_means(data):
    codes = [factorize(data[f]) for f in ("a", "b")]
    w = data["w"].to_numpy()
    out = demean(data["y"].to_numpy(), [c for c, _ in codes], [g for _, g in codes], weights=w)
    for c, g in codes:
        means = np.bincount(c, weights=w * out, minlength=g) / np.bincount(c, weights=w, minlength=g)
        assert np.abs(means).max() < 1e-11


def balanced_panel(n_units: int, n_periods: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gen = rng(seed, "test-numerics-panel")
    values = gen.normal(size=(n_units * n_periods, 3)) * np.array([1.0, 100.0, 1e-3])
    return values, np.repeat(np.arange(n_units), n_periods), np.tile(np.arange(n_periods), n_units)


def test_balanced_grid_path_is_bit_identical_to_bincount_path():
    values, unit, period = balanced_panel(300, 11, 1)
    assert is_sorted_grid(unit, 300, period, 11)
    fast = demean(values, [unit, period], [300, 11])
    reference = np.empty_like(values)
    for j in range(values.shape[1]):  # the textbook formula with bincount sums, in row order
        col = values[:, j]
        mean_u = np.bincount(unit, weights=col, minlength=300) / 11
        mean_t = np.bincount(period, weights=col, minlength=11) / 300
        mean_t -= mean_u.mean()
        reference[:, j] = col - mean_u[unit] - mean_t[period]
    assert np.array_equal(fast, reference)
    order = rng(2, "shuffle").permutation(unit.size)  # shuffled rows: not a grid, bincount path
    assert not is_sorted_grid(unit[order], 300, period[order], 11)
    assert is_balanced_two_way(unit[order], 300, period[order], 11)
    shuffled = demean_balanced_two_way(values[order], unit[order], 300, period[order], 11)
    np.testing.assert_allclose(shuffled, fast[order], rtol=0, atol=1e-12)


def test_balanced_exact_formula_equals_alternating_projections():
    values, unit, period = balanced_panel(200, 6, 3)
    exact = demean(values, [unit, period], [200, 6])
    iterated = demean(values, [unit, period], [200, 6], method="projections", tol=1e-15)
    np.testing.assert_allclose(exact, iterated, rtol=0, atol=1e-10)


def test_demean_raises_when_projections_do_not_converge(data):
    codes = [factorize(data[f]) for f in ("a", "b", "c")]
    with pytest.raises(EstimationError, match="did not converge"):
        demean(data["y"].to_numpy(), [c for c, _ in codes], [g for _, g in codes], max_iter=1)


@pytest.mark.parametrize("values", [
    np.array([5, 3, 5, 9, 3, -2]), np.array([2.0, 1.0, 2.0, 7.0]), np.array([10**18, 3, 10**18]),
    np.tile(np.arange(7), 9), np.repeat(np.arange(9), 4), np.arange(12) % 5,
    pd.Series(["b", "a", "b", "c"]), np.array([0, 2, 1, 1, 3], dtype=np.uint8),
])
def test_factorize_equals_pandas_first_appearance_codes(values):
    codes, n_groups = factorize(values)
    expected, uniques = pd.factorize(values)
    assert n_groups == len(uniques)
    assert np.array_equal(codes, expected)


def test_factorize_rejects_missing_values():
    with pytest.raises(EstimationError, match="missing"):
        factorize(np.array([1.0, np.nan, 2.0]))


@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("solver", ["normal", "svd"])
def test_least_squares_equals_statsmodels(data, weights, solver):
    X = np.column_stack([np.ones(len(data)), data["x1"], data["x2"], data["b"]])
    w = data["w"].to_numpy() if weights else None
    fit = least_squares(data["y"].to_numpy(), X, w, solver=solver)
    peer = (sm.WLS(data["y"].to_numpy(), X, weights=w) if weights else sm.OLS(data["y"].to_numpy(), X)).fit()
    np.testing.assert_allclose(fit.coef, peer.params, rtol=RTOL)
    np.testing.assert_allclose(fit.bread, peer.normalized_cov_params, rtol=RTOL)
    np.testing.assert_allclose(fit.residuals, peer.wresid, rtol=0, atol=1e-10)


def test_least_squares_names_collinear_regressors(data):
    X = np.column_stack([np.ones(len(data)), data["x1"], 2 * data["x1"]])
    for solver in ("normal", "svd"):
        with pytest.raises(EstimationError, match=r"\(const, x1, x1_twice\) are collinear"):
            least_squares(data["y"].to_numpy(), X, solver=solver, names=["const", "x1", "x1_twice"])


def ols_design(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return data["y"].to_numpy(), np.column_stack([np.ones(len(data)), data["x1"], data["x2"]])


def test_hc1_and_crv1_equal_statsmodels(data):
    y, X = ols_design(data)
    fit = least_squares(y, X)
    peer = sm.OLS(y, X).fit()
    np.testing.assert_allclose(cov.vcov_hc1(fit.design, fit.residuals, 3),
                               peer.get_robustcov_results("HC1").cov_params(), rtol=RTOL)
    codes, n_groups = factorize(data["a"])
    clusters = cov.ClusterInfo((codes,), (n_groups,), ("a",))
    np.testing.assert_allclose(cov.vcov_crv1(fit.design, fit.residuals, clusters, 3),
                               cov_cluster(peer, codes), rtol=RTOL)


def test_crv3_equals_statsmodels_jackknife(data):
    y, X = ols_design(data)
    codes, n_groups = factorize(data["b"])
    coef = least_squares(y, X).coef
    leave_one_out = np.vstack([least_squares(y[codes != g], X[codes != g]).coef for g in range(n_groups)])
    peer = cov_cluster(sm.OLS(y, X).fit(), codes, crv_type="cluster-crv3")
    np.testing.assert_allclose(cov.vcov_crv3(coef, leave_one_out), peer, rtol=RTOL)


@pytest.mark.parametrize("fe, vcov", [
    (["c"], {"CRV1": "a"}),        # fixed effect not nested in the clusters
    (["a"], {"CRV1": "a"}),        # nested: its levels do not count in K
    (["c"], {"CRV1": "a+b"}),      # two-way clustering, G = min(G_a, G_b)
    (["b", "c"], "hetero"),        # HC1 with two fixed effects
])
def test_fixed_effect_covariances_equal_pyfixest(data, fe, vcov):
    pf = pytest.importorskip("pyfixest")
    codes = [factorize(data[f]) for f in fe]
    within = demean(data[["y", "x1", "x2"]].to_numpy(float), [c for c, _ in codes], [g for _, g in codes])
    fit = least_squares(within[:, 0], within[:, 1:])
    if vcov == "hetero":
        df_k = cov.fixest_df_k(2, [c for c, _ in codes], [g for _, g in codes], None)
        matrix = cov.vcov_hc1(fit.design, fit.residuals, df_k)
    else:
        names = vcov["CRV1"].split("+")
        cl = [factorize(data[c]) for c in names]
        clusters = cov.ClusterInfo(tuple(c for c, _ in cl), tuple(g for _, g in cl), tuple(names))
        df_k = cov.fixest_df_k(2, [c for c, _ in codes], [g for _, g in codes], clusters)
        matrix = cov.vcov_crv1(fit.design, fit.residuals, clusters, df_k, xtx_inv=fit.bread)
    with warnings.catch_warnings():  # pyfixest's demeaning iterates to 1e-8 by default: tighten it
        warnings.simplefilter("ignore")
        peer = pf.feols(f"y ~ x1 + x2 | {' + '.join(fe)}", data=data, vcov=vcov, fixef_tol=1e-13)
    np.testing.assert_allclose(fit.coef, peer.coef().to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(matrix)), peer.se().to_numpy(), rtol=RTOL)


def test_nesting_and_intersections():
    unit = np.repeat(np.arange(6), 3)
    village = unit // 2
    period = np.tile(np.arange(3), 6)
    assert cov.is_nested(unit, 6, village)
    assert not cov.is_nested(period, 3, village)
    codes, size = cov.intersect_codes(village, 3, period, 3)
    assert size == 9 and np.array_equal(np.bincount(codes), np.full(9, 2))


@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize("weights", [False, True])
def test_checks_regression_equals_statsmodels(data, clustered, weights):
    y, X = ols_design(data)
    w = data["w"].to_numpy() if weights else None
    groups = data["a"].to_numpy() if clustered else None
    fit = robust_ols(y, X, clusters=groups, weights=w)
    model = sm.WLS(y, X, weights=w) if weights else sm.OLS(y, X)
    peer = (model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True) if clustered
            else model.fit(cov_type="HC1", use_t=True))
    np.testing.assert_allclose(fit.params, peer.params, rtol=RTOL)
    np.testing.assert_allclose(fit.cov, peer.cov_params(), rtol=RTOL)
    if clustered:  # same operations in the same order: the design checks' numbers did not move
        assert np.array_equal(fit.params, peer.params) and np.array_equal(fit.cov, peer.cov_params())
    est, se, p = fit.t_test(1)
    np.testing.assert_allclose([est, se, p], [peer.params[1], peer.bse[1], peer.pvalues[1]], rtol=1e-9)
    assert fit.df_resid == (40 - 1 if clustered else len(data) - 3)
