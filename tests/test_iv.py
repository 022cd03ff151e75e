"""impactkit.iv.iv: 2SLS / LIML against linearmodels, textbook results, matrix algebra,
dummy-variable regressions and a coverage simulation; bad input.

Published results (Wooldridge, *Introductory Econometrics: A Modern Approach*, Ch. 15,
homoskedastic standard errors with the n-k small-sample correction):

- Example 15.1 (MROZ, 428 working women): log(wage) on educ with fatheduc as the only
  instrument: educ .059 (.035), intercept .441 (.446); first stage fatheduc .269 (.029).
- Example 15.4 (CARD, 3,010 men): log(wage) on educ instrumented by nearc4, controls
  exper, expersq, black, smsa, south, smsa66, reg662-reg669: educ .132 (.055);
  first stage nearc4 .320 (.088).
- Example 15.5 (MROZ): 2SLS with motheduc and fatheduc, controls exper, expersq:
  educ .061 (.031).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from linearmodels import IV2SLS, IVLIML
from linearmodels.datasets import card, mroz

from impactkit.atomic import dumps_json
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv import IVResult, iv
from impactkit.seeds import rng

CARD_CONTROLS = "exper + expersq + black + smsa + south + smsa66 + " + " + ".join(f"reg66{j}" for j in range(2, 10))
CARD_FORMULA = f"lwage ~ 1 + {CARD_CONTROLS} + [educ ~ nearc4]"
MROZ_OVERID = "lwage ~ 1 + exper + expersq + [educ ~ motheduc + fatheduc]"

LM_TOL = 1e-6  # against linearmodels' own fit of the same model
ALGEBRA_TOL = 1e-8  # against an independent derivation on the same numbers


@pytest.fixture(scope="module")
def mroz_data() -> pd.DataFrame:
    return mroz.load().dropna(subset=["lwage"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def card_data() -> pd.DataFrame:
    return card.load()


def _quiet(*args, **kwargs) -> IVResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        return iv(*args, **kwargs)


def _row(result: IVResult, term: str) -> pd.Series:
    return result.tidy().set_index("term").loc[term]


# --- published results -----------------------------------------------------------------

def test_wooldridge_example_15_1(mroz_data):
    result = iv(mroz_data, "lwage ~ 1 + [educ ~ fatheduc]", vcov="unadjusted")
    educ, const = _row(result, "educ"), _row(result, "Intercept")
    # published to 3 decimals: tolerance half a unit in the last digit
    assert educ["estimate"] == pytest.approx(0.059, abs=5e-4)
    assert educ["std_error"] == pytest.approx(0.035, abs=5e-4)
    assert const["estimate"] == pytest.approx(0.441, abs=5e-4)
    assert const["std_error"] == pytest.approx(0.446, abs=5e-4)
    assert educ["n"] == 428
    stage = result.first_stage.iloc[0]
    assert stage["estimate"] == pytest.approx(0.269, abs=5e-4)
    assert stage["std_error"] == pytest.approx(0.029, abs=5e-4)
    reference = IV2SLS.from_formula("lwage ~ 1 + [educ ~ fatheduc]", mroz_data).fit(
        cov_type="unadjusted", debiased=True)
    np.testing.assert_allclose(result.tidy()["estimate"], reference.params.to_numpy(), rtol=0, atol=LM_TOL)
    np.testing.assert_allclose(result.tidy()["std_error"], reference.std_errors.to_numpy(), rtol=0, atol=LM_TOL)


def test_wooldridge_example_15_4_card(card_data):
    result = _quiet(card_data, CARD_FORMULA, vcov="unadjusted")
    educ = _row(result, "educ")
    assert educ["estimate"] == pytest.approx(0.132, abs=5e-4)
    assert educ["std_error"] == pytest.approx(0.055, abs=5e-4)
    assert educ["n"] == 3010
    stage = result.first_stage.iloc[0]
    assert stage["estimate"] == pytest.approx(0.320, abs=5e-4)
    assert stage["std_error"] == pytest.approx(0.088, abs=5e-4)
    reference = IV2SLS.from_formula(CARD_FORMULA, card_data).fit(cov_type="unadjusted", debiased=True)
    np.testing.assert_allclose(result.tidy()["estimate"], reference.params.to_numpy(), rtol=0, atol=LM_TOL)
    np.testing.assert_allclose(result.tidy()["std_error"], reference.std_errors.to_numpy(), rtol=0, atol=LM_TOL)
    # the partial F of the first stage equals linearmodels' partial F under the same covariance
    lm_stage = reference.first_stage.diagnostics.loc["educ"]
    assert stage["partial_f"] == pytest.approx(float(lm_stage["f.stat"]), rel=1e-8)
    assert stage["partial_r2"] == pytest.approx(float(lm_stage["partial.rsquared"]), rel=1e-8)


def test_wooldridge_example_15_5_overidentified(mroz_data):
    result = iv(mroz_data, MROZ_OVERID, vcov="unadjusted")
    assert _row(result, "educ")["estimate"] == pytest.approx(0.061, abs=5e-4)
    assert _row(result, "educ")["std_error"] == pytest.approx(0.031, abs=5e-4)
    assert _row(result, "exper")["estimate"] == pytest.approx(0.044, abs=5e-4)


# --- against linearmodels and matrix algebra ---------------------------------------------

@pytest.mark.parametrize("method", ["2sls", "liml"])
@pytest.mark.parametrize("vcov", ["robust", "unadjusted"])
def test_matches_linearmodels(mroz_data, method, vcov):
    result = iv(mroz_data, MROZ_OVERID, method=method, vcov=vcov)
    estimator = IV2SLS if method == "2sls" else IVLIML
    reference = estimator.from_formula(MROZ_OVERID, mroz_data).fit(cov_type=vcov, debiased=True)
    np.testing.assert_allclose(result.tidy()["estimate"], reference.params.to_numpy(), rtol=0, atol=LM_TOL)
    np.testing.assert_allclose(result.tidy()["std_error"], reference.std_errors.to_numpy(), rtol=0, atol=LM_TOL)
    np.testing.assert_allclose(result.tidy()["p_value"], reference.pvalues.to_numpy(), rtol=0, atol=LM_TOL)
    if method == "liml":
        assert result.diagnostics["kappa"] == pytest.approx(float(reference.kappa), abs=1e-10)


def test_clustered_matches_linearmodels(card_data):
    formula = "lwage ~ 1 + exper + expersq + black + [educ ~ nearc4 + nearc2]"
    clusters = pd.DataFrame({"c": pd.factorize(card_data["reg661"].astype(str) + card_data["south66"].astype(str)
                                               + card_data["smsa66"].astype(str))[0]})
    data = card_data.assign(region=clusters["c"].to_numpy())
    result = _quiet(data, formula, cluster="region")
    reference = IV2SLS.from_formula(formula, data).fit(cov_type="clustered", clusters=data["region"], debiased=True)
    np.testing.assert_allclose(result.tidy()["estimate"], reference.params.to_numpy(), rtol=0, atol=LM_TOL)
    np.testing.assert_allclose(result.tidy()["std_error"], reference.std_errors.to_numpy(), rtol=0, atol=LM_TOL)
    g = data["region"].nunique()
    assert result.diagnostics["n_clusters"] == g
    assert result.diagnostics["df_resid"] == g - 1


def test_two_way_clustered_matches_linearmodels():
    data = _panel(9, n_units=120, n_periods=4)
    data["market"] = (data["unit"] * 7 + data["period"] * 3) % 25  # crosses villages
    result = iv(data, "y ~ 1 + x + [d ~ z1 + z2]", cluster=["village", "market"])
    reference = IV2SLS.from_formula("y ~ 1 + x + [d ~ z1 + z2]", data).fit(
        cov_type="clustered", clusters=data[["village", "market"]], debiased=True)
    np.testing.assert_allclose(result.tidy()["estimate"], reference.params.to_numpy(), rtol=0, atol=LM_TOL)
    np.testing.assert_allclose(result.tidy()["std_error"], reference.std_errors.to_numpy(), rtol=0, atol=LM_TOL)
    # the smaller dimension sets the G-1 degrees of freedom
    assert result.diagnostics["n_clusters"] == min(data["village"].nunique(), data["market"].nunique())


def test_two_way_clustered_not_psd_is_repaired_with_warning():
    data = _panel(9)  # 5 periods: the two-way sandwich is not positive semi-definite here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImpactkitWarning)
        result = iv(data, "y ~ 1 + x + [d ~ z1 + z2]", cluster=["village", "period"])
    assert any("not positive semi-definite" in str(w.message) for w in caught)
    assert np.isfinite(result.tidy()["std_error"]).all()
    assert np.isfinite(result.first_stage["std_error"]).all()


def test_two_stage_least_squares_by_matrix_algebra(mroz_data):
    """beta = (X'P_Z X)^-1 X'P_Z y; HC1 sandwich with P_Z X as the regressors."""
    result = iv(mroz_data, MROZ_OVERID)
    n = len(mroz_data)
    x = np.column_stack([np.ones(n), mroz_data[["exper", "expersq", "educ"]].to_numpy(float)])
    z = np.column_stack([np.ones(n), mroz_data[["exper", "expersq", "motheduc", "fatheduc"]].to_numpy(float)])
    y = mroz_data["lwage"].to_numpy(float)
    x_hat = z @ np.linalg.lstsq(z, x, rcond=None)[0]
    beta = np.linalg.solve(x_hat.T @ x, x_hat.T @ y)
    resid = y - x @ beta
    bread = np.linalg.inv(x_hat.T @ x_hat)
    vcov = n / (n - x.shape[1]) * bread @ (x_hat.T * resid ** 2) @ x_hat @ bread
    np.testing.assert_allclose(result.tidy()["estimate"], beta, rtol=0, atol=ALGEBRA_TOL)
    np.testing.assert_allclose(result.tidy()["std_error"], np.sqrt(np.diag(vcov)), rtol=0, atol=ALGEBRA_TOL)


def test_weights_match_linearmodels(mroz_data):
    data = mroz_data.assign(w=1.0 + (mroz_data["age"] % 7))
    result = iv(data, MROZ_OVERID, weights="w")
    reference = IV2SLS.from_formula(MROZ_OVERID, data, weights=data["w"]).fit(cov_type="robust", debiased=True)
    np.testing.assert_allclose(result.tidy()["estimate"], reference.params.to_numpy(), rtol=0, atol=LM_TOL)
    np.testing.assert_allclose(result.tidy()["std_error"], reference.std_errors.to_numpy(), rtol=0, atol=LM_TOL)


# --- absorbed fixed effects ------------------------------------------------------------

def _panel(seed: int, n_units: int = 60, n_periods: int = 5, balanced: bool = False,
           drop_singletons: bool = True) -> pd.DataFrame:
    g = rng(seed, "iv-test-panel")
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    if not balanced:
        keep = g.random(len(unit)) > 0.2
        unit, period = unit[keep], period[keep]
    n = len(unit)
    alpha_u = g.normal(size=n_units)[unit]
    gamma_t = g.normal(size=n_periods)[period]
    z1, z2, x = g.normal(size=n), g.normal(size=n), g.normal(size=n)
    u = g.normal(size=n)
    d = 0.8 * z1 + 0.4 * z2 + alpha_u + 0.5 * x + u + g.normal(size=n)
    y = 1.5 * d - 0.7 * x + alpha_u + gamma_t + u + g.normal(size=n) * (1 + np.abs(z1))
    frame = pd.DataFrame({"y": y, "d": d, "x": x, "z1": z1, "z2": z2, "unit": unit, "period": period,
                          "village": unit // 6, "w": 0.5 + g.random(n)})
    if drop_singletons:  # dummy-variable references keep singletons, which iv() drops (as reghdfe)
        frame = frame.loc[frame.groupby("unit")["unit"].transform("size") > 1].reset_index(drop=True)
    return frame


@pytest.mark.parametrize("vcov", ["robust", "unadjusted"])
@pytest.mark.parametrize("weighted", [False, True])
def test_absorb_one_way_equals_dummy_variables(vcov, weighted):
    data = _panel(1)
    kwargs = {"weights": "w"} if weighted else {}
    result = iv(data, "y ~ x + [d ~ z1 + z2]", absorb="unit", vcov=vcov, **kwargs)
    dummy_formula = "y ~ 1 + x + C(unit) + [d ~ z1 + z2]"
    reference = IV2SLS.from_formula(dummy_formula, data, weights=data["w"] if weighted else None).fit(
        cov_type=vcov, debiased=True)
    for term in ("x", "d"):
        assert _row(result, term)["estimate"] == pytest.approx(reference.params[term], abs=1e-8)
        assert _row(result, term)["std_error"] == pytest.approx(reference.std_errors[term], abs=1e-8)
    assert result.diagnostics["absorbed_df"] == data["unit"].nunique()


@pytest.mark.parametrize("method", ["2sls", "liml"])
def test_absorb_two_way_equals_dummy_variables(method):
    data = _panel(2)
    result = iv(data, "y ~ x + [d ~ z1 + z2]", absorb=["unit", "period"], method=method, vcov="unadjusted")
    estimator = IV2SLS if method == "2sls" else IVLIML
    reference = estimator.from_formula("y ~ 1 + x + C(unit) + C(period) + [d ~ z1 + z2]", data).fit(
        cov_type="unadjusted", debiased=True)
    for term in ("x", "d"):
        assert _row(result, term)["estimate"] == pytest.approx(reference.params[term], abs=1e-8)
        assert _row(result, term)["std_error"] == pytest.approx(reference.std_errors[term], abs=1e-8)
    # one connected component: units + periods - 1 parameters, as ivreghdfe counts them
    assert result.diagnostics["absorbed_df"] == data["unit"].nunique() + data["period"].nunique() - 1


def test_absorb_clustered_not_nested_equals_dummy_variables():
    data = _panel(3)
    result = iv(data, "y ~ x + [d ~ z1 + z2]", absorb="period", cluster="village")
    reference = IV2SLS.from_formula("y ~ 1 + x + C(period) + [d ~ z1 + z2]", data).fit(
        cov_type="clustered", clusters=data["village"], debiased=True)
    for term in ("x", "d"):
        assert _row(result, term)["estimate"] == pytest.approx(reference.params[term], abs=1e-8)
        assert _row(result, term)["std_error"] == pytest.approx(reference.std_errors[term], abs=1e-8)


def test_absorb_nested_in_cluster_drops_fixed_effect_df():
    """A fixed effect nested in the clusters uses no degrees of freedom (ivreghdfe): the
    standard errors are those of the dummy-variable fit rescaled by sqrt((n-k-G)/(n-k-1))."""
    data = _panel(4)
    result = iv(data, "y ~ x + [d ~ z1 + z2]", absorb="unit", cluster="unit")
    reference = IV2SLS.from_formula("y ~ 1 + x + C(unit) + [d ~ z1 + z2]", data).fit(
        cov_type="clustered", clusters=data["unit"], debiased=True)
    n, k, g = len(data), 2, data["unit"].nunique()
    factor = math.sqrt((n - k - g) / (n - k - 1))
    assert result.diagnostics["absorbed_df"] == 1
    for term in ("x", "d"):
        assert _row(result, term)["estimate"] == pytest.approx(reference.params[term], abs=1e-8)
        assert _row(result, term)["std_error"] == pytest.approx(reference.std_errors[term] * factor, abs=1e-8)


@pytest.mark.parametrize("fixed,vcov_pf,kwargs", [
    ("unit", {"CRV1": "village"}, {"cluster": "village"}),  # unit nested in village
    ("unit", {"CRV1": "unit"}, {"cluster": "unit"}),
    ("unit + period", "iid", {"vcov": "unadjusted"}),
    ("unit + period", "hetero", {"weights": "w"}),
])
def test_absorb_matches_pyfixest(fixed, vcov_pf, kwargs):
    """pyfixest feols IV with fixed effects, reghdfe's "nonnested" fixed-effect df count (its default);
    the data hold singleton units, which both drop."""
    import pyfixest as pf

    data = _panel(10, n_units=120, n_periods=5, drop_singletons=False)
    with pytest.warns(ImpactkitWarning, match="singleton"):
        result = iv(data, "y ~ x + [d ~ z1 + z2]", absorb=[f.strip() for f in fixed.split("+")], **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyfixest's own notices (singletons, pandas deprecations)
        peer = pf.feols(f"y ~ x | {fixed} | d ~ z1 + z2", data=data, vcov=vcov_pf,
                        weights=kwargs.get("weights"), ssc=pf.ssc(k_adj=True, k_fixef="nonnested"))
    for term in ("x", "d"):
        assert _row(result, term)["estimate"] == pytest.approx(float(peer.coef()[term]), abs=1e-8)
        assert _row(result, term)["std_error"] == pytest.approx(float(peer.se()[term]), abs=1e-8)


# --- simulation ------------------------------------------------------------------------

def _simulate_iv(g: np.random.Generator, n: int, strength: float, beta: float = 1.0) -> pd.DataFrame:
    z = g.normal(size=n)
    u = g.normal(size=n)
    d = strength * z + 0.8 * u + 0.6 * g.normal(size=n)
    y = 0.5 + beta * d + u
    return pd.DataFrame({"y": y, "d": d, "z": z})


@pytest.mark.slow
def test_strong_instrument_coverage_near_nominal():
    """300 samples of n=300 with first-stage coefficient 0.5 (concentration ~ 75): the 95% CI
    covers beta=1 with probability within [0.92, 0.98] (3.2 Monte Carlo standard errors)."""
    g = rng(11, "iv-coverage")
    hits = 0
    reps = 300
    for _ in range(reps):
        row = _row(iv(_simulate_iv(g, 300, 0.5), "y ~ 1 + [d ~ z]"), "d")
        hits += row["conf_low"] <= 1.0 <= row["conf_high"]
    assert 0.92 <= hits / reps <= 0.98


def test_irrelevant_instrument_warns_and_ar_set_unbounded():
    data = _simulate_iv(rng(5, "iv-irrelevant"), 500, 0.0)
    with pytest.warns(ImpactkitWarning, match="weak instrument"):
        result = iv(data, "y ~ 1 + [d ~ z]")
    assert result.diagnostics["weak_instruments"] is True
    assert result.ar_set is not None and result.ar_set.kind in ("two rays", "whole line")
    assert not result.ar_set.bounded
    payload = json.loads(dumps_json(result.to_dict()))
    assert "inf" in {str(v) for pair in payload["diagnostics"]["ar_set"]["intervals"] for v in pair}
    assert "Anderson-Rubin" in result.summary()


def test_strong_instrument_no_warning_and_bounded_ar_set():
    data = _simulate_iv(rng(6, "iv-strong"), 1000, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImpactkitWarning)
        result = iv(data, "y ~ 1 + [d ~ z]")
    assert result.ar_set.kind == "bounded"
    low, high = result.ar_set.intervals[0]
    assert low < result.estimate("d") < high


# --- interface -------------------------------------------------------------------------

def test_summary_shows_first_stage_and_weak_iv(mroz_data):
    result = iv(mroz_data, MROZ_OVERID)
    text = result.summary()
    for fragment in ("First stage", "motheduc", "Cragg-Donald", "Kleibergen-Paap", "effective F",
                     "Anderson-Rubin", "Stock-Yogo"):
        assert fragment in text
    assert set(result.tidy().columns) == {"term", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n"}
    assert {"endogenous", "instrument", "estimate", "partial_r2", "partial_f"} <= set(result.first_stage.columns)


def test_to_dict_json_and_deterministic(mroz_data):
    first = dumps_json(iv(mroz_data, MROZ_OVERID).to_dict())
    second = dumps_json(iv(mroz_data, MROZ_OVERID).to_dict())
    assert first == second
    payload = json.loads(first)
    assert payload["diagnostics"]["ar_set"]["kind"] == "bounded"
    assert len(payload["first_stage"]) == 2


def test_plot_ar_statistic(mroz_data):
    import matplotlib

    matplotlib.use("Agg")
    figure = iv(mroz_data, MROZ_OVERID).plot()
    assert len(figure.axes[0].lines) >= 3


# --- bad input -------------------------------------------------------------------------

def test_missing_columns_named(mroz_data):
    with pytest.raises(InputError, match="'nosuch'.*'alsonot'|'alsonot'.*'nosuch'"):
        iv(mroz_data, "lwage ~ 1 + nosuch + [educ ~ alsonot]")
    with pytest.raises(InputError, match="'village'"):
        iv(mroz_data, MROZ_OVERID, cluster="village")


def test_formula_without_instruments(mroz_data):
    with pytest.raises(InputError, match="no '\\[endogenous ~ instruments\\]' block"):
        iv(mroz_data, "lwage ~ 1 + educ")


def test_constant_treatment_named(mroz_data):
    with pytest.raises(EstimationError, match="endogenous regressor 'one' is constant"):
        iv(mroz_data.assign(one=1.0), "lwage ~ 1 + [one ~ fatheduc]")


def test_endogenous_collinear_with_fixed_effect():
    data = _panel(7)
    data["d"] = data["unit"] * 0.1
    with pytest.raises(EstimationError, match="'d' has no variation left after"):
        iv(data, "y ~ x + [d ~ z1]", absorb="unit")


def test_bad_weights(mroz_data):
    with pytest.raises(InputError, match="weights column 'w'.*<= 0"):
        iv(mroz_data.assign(w=np.where(mroz_data.index == 3, -1.0, 1.0)), MROZ_OVERID, weights="w")
    with pytest.raises(InputError, match="weights column 'w' has 1 missing"):
        iv(mroz_data.assign(w=np.where(mroz_data.index == 3, np.nan, 1.0)), MROZ_OVERID, weights="w")


def test_missing_values_dropped_with_warning(mroz_data):
    data = mroz_data.copy()
    data.loc[[0, 5], "fatheduc"] = np.nan
    with pytest.warns(ImpactkitWarning, match="dropped 2 of 428 rows .*fatheduc"):
        result = iv(data, MROZ_OVERID)
    assert int(result.tidy()["n"].iloc[0]) == 426


def test_bad_options(mroz_data):
    with pytest.raises(InputError, match="method"):
        iv(mroz_data, MROZ_OVERID, method="gmm")
    with pytest.raises(InputError, match="alpha"):
        iv(mroz_data, MROZ_OVERID, alpha=5)
    with pytest.raises(EstimationError, match="under-identified"):
        iv(mroz_data, "lwage ~ 1 + [educ + exper ~ fatheduc]")


def test_top_level_lazy_access_stays_callable(mroz_data):
    import impactkit

    first, second = impactkit.iv, impactkit.iv  # the second lookup finds the imported package
    for entry in (first, second):
        result = entry(mroz_data, "lwage ~ 1 + [educ ~ fatheduc]", vcov="unadjusted")
        assert result.estimate("educ") == pytest.approx(0.059, abs=5e-4)
