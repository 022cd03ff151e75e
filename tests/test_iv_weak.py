"""Weak-instrument diagnostics against derivations written here and statsmodels regressions.

- Cragg-Donald F: direct matrix algebra (generalised eigenvalue problem) and, with one
  endogenous regressor, the classical first-stage F test of statsmodels.
- Kleibergen-Paap rk Wald F (one endogenous regressor): the robust / clustered Wald F test
  of the excluded instruments in the first stage (statsmodels HC1 / cluster); equal to the
  Cragg-Donald F with the homoskedastic covariance.
- Montiel Olea-Pflueger effective F: with one instrument equal to the robust first-stage F
  (MOP 2013); for several instruments the paper's normalised-instrument formula
  computed here independently; critical value 23.1085 for K_eff=1, tau=10%, 5% (the
  published 23.1 of MOP 2013 and Andrews, Stock & Sun 2019).
- Anderson-Rubin test: the F test of the instruments in a regression of ``y - b0 d`` on the
  exogenous regressors and the instruments (statsmodels, same covariance).
- Anderson-Rubin set with one instrument: the closed-form quadratic inequality.
Tolerances: 1e-8 relative for algebraic identities on the same numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import statsmodels.api as sm
from linearmodels.datasets import mroz
from scipy import stats

from impactkit.errors import ImpactkitWarning
from impactkit.iv import iv
from impactkit.iv import weak
from impactkit.seeds import rng

REL = 1e-8
FORMULA = "lwage ~ 1 + exper + expersq + [educ ~ motheduc + fatheduc + huseduc]"
EXOG = ["exper", "expersq"]
INSTR = ["motheduc", "fatheduc", "huseduc"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    frame = mroz.load().dropna(subset=["lwage"]).reset_index(drop=True)
    frame["county"] = (frame["age"] // 3).astype(int)  # 14 age bands as clusters
    return frame


def _first_stage_ols(data: pd.DataFrame, target: str | np.ndarray, cov: str, groups=None):
    x = sm.add_constant(data[EXOG + INSTR].to_numpy(float))
    y = data[target].to_numpy(float) if isinstance(target, str) else target
    model = sm.OLS(y, x)
    if cov == "cluster":
        return model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    return model.fit(cov_type=cov)


def _instrument_f(fit) -> float:
    restriction = np.zeros((len(INSTR), 1 + len(EXOG) + len(INSTR)))
    restriction[:, 1 + len(EXOG):] = np.eye(len(INSTR))
    return float(np.squeeze(fit.f_test(restriction).fvalue))


def test_cragg_donald_equals_classical_first_stage_f(data):
    result = iv(data, FORMULA, vcov="unadjusted")
    classical = _instrument_f(_first_stage_ols(data, "educ", "nonrobust"))
    assert result.diagnostics["cragg_donald_f"] == pytest.approx(classical, rel=REL)
    # with the homoskedastic covariance the KP rk Wald F is the Cragg-Donald F
    assert result.diagnostics["kleibergen_paap_f"] == pytest.approx(result.diagnostics["cragg_donald_f"], rel=REL)


def test_cragg_donald_two_endogenous_by_generalised_eigenvalues(data):
    """CD = min eig of S_vv^{-1} (D' P_Z D) / L with D, Z residualised on the exogenous regressors:
    solved here as the generalised symmetric eigenproblem (D'P_Z D) v = lambda S_vv v."""
    formula = "lwage ~ 1 + expersq + [educ + exper ~ motheduc + fatheduc + huseduc + age]"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        result = iv(data, formula, vcov="unadjusted")
    n = len(data)
    w = np.column_stack([np.ones(n), data["expersq"].to_numpy(float)])
    annihilate = np.eye(n) - w @ np.linalg.pinv(w)
    d = annihilate @ data[["educ", "exper"]].to_numpy(float)
    z = annihilate @ data[["motheduc", "fatheduc", "huseduc", "age"]].to_numpy(float)
    projection = z @ np.linalg.solve(z.T @ z, z.T)
    resid = d - projection @ d
    s_vv = resid.T @ resid / (n - 2 - 4)
    smallest = scipy.linalg.eigh(d.T @ projection @ d, s_vv, eigvals_only=True).min()
    assert result.diagnostics["cragg_donald_f"] == pytest.approx(smallest / 4, rel=REL)
    # KP rk Wald F with the homoskedastic covariance = Cragg-Donald F (Kleibergen & Paap 2006)
    assert result.diagnostics["kleibergen_paap_f"] == pytest.approx(smallest / 4, rel=REL)
    # Lewis & Mertens (2022): under homoskedasticity their effective F is the Cragg-Donald statistic
    assert result.diagnostics["effective_f_method"] == "Lewis-Mertens"
    assert result.diagnostics["effective_f"] == pytest.approx(smallest / 4, rel=REL)
    assert len(result.first_stage) == 8


def test_kleibergen_paap_robust_and_clustered_wald(data):
    robust = iv(data, FORMULA)
    hc1 = _instrument_f(_first_stage_ols(data, "educ", "HC1"))
    assert robust.diagnostics["kleibergen_paap_f"] == pytest.approx(hc1, rel=REL)
    clustered = iv(data, FORMULA, cluster="county")
    cl = _instrument_f(_first_stage_ols(data, "educ", "cluster", data["county"].to_numpy()))
    assert clustered.diagnostics["kleibergen_paap_f"] == pytest.approx(cl, rel=REL)
    assert clustered.diagnostics["anderson_rubin"]["df_denom"] == data["county"].nunique() - 1


def test_kleibergen_paap_two_endogenous_invariant_to_rescaling(data):
    """K = 2, robust: the rk statistic is invariant to non-singular linear transformations of the
    instruments and of the endogenous regressors (Kleibergen & Paap 2006)."""
    formula = "lwage ~ 1 + expersq + [educ + exper ~ motheduc + fatheduc + huseduc + age]"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        base = iv(data, formula)
        scaled = data.assign(educ=data["educ"] * 7.0 + data["exper"], motheduc=data["motheduc"] / 3.0 + data["age"],
                             age=data["age"] * 10.0)
        rescaled = iv(scaled, formula)
    assert base.diagnostics["kleibergen_paap_f"] == pytest.approx(rescaled.diagnostics["kleibergen_paap_f"], rel=1e-7)


def test_kleibergen_paap_two_endogenous_close_to_cragg_donald_under_homoskedasticity():
    """Homoskedastic simulation, n = 20,000, K = 2, L = 3: robust KP F within 5% of CD F."""
    g = rng(4, "kp-two-endogenous")
    n = 20_000
    z = g.normal(size=(n, 3))
    u = g.normal(size=n)
    d1 = z @ np.array([0.06, 0.03, 0.0]) + u + g.normal(size=n)
    d2 = z @ np.array([0.0, 0.04, 0.05]) - u + g.normal(size=n)
    frame = pd.DataFrame({"y": d1 + d2 + u, "d1": d1, "d2": d2, "z1": z[:, 0], "z2": z[:, 1], "z3": z[:, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        result = iv(frame, "y ~ 1 + [d1 + d2 ~ z1 + z2 + z3]")
    assert result.diagnostics["kleibergen_paap_f"] == pytest.approx(result.diagnostics["cragg_donald_f"], rel=0.05)


def test_kleibergen_paap_close_to_cragg_donald_under_homoskedasticity():
    """Homoskedastic simulation, n = 20,000: robust KP F within 5% of CD F (both consistent for
    the same concentration parameter / L; sampling gap O(n^-1/2))."""
    g = rng(3, "kp-homoskedastic")
    n = 20_000
    z = g.normal(size=(n, 2))
    u = g.normal(size=n)
    d = z @ np.array([0.05, 0.03]) + u + g.normal(size=n)
    frame = pd.DataFrame({"y": d + u, "d": d, "z1": z[:, 0], "z2": z[:, 1]})
    result = iv(frame, "y ~ 1 + [d ~ z1 + z2]")
    assert result.diagnostics["kleibergen_paap_f"] == pytest.approx(result.diagnostics["cragg_donald_f"], rel=0.05)


def test_effective_f_one_instrument_equals_robust_first_stage_f(data):
    formula = "lwage ~ 1 + exper + expersq + [educ ~ fatheduc]"
    result = iv(data, formula)
    x = sm.add_constant(data[EXOG + ["fatheduc"]].to_numpy(float))
    fit = sm.OLS(data["educ"].to_numpy(float), x).fit(cov_type="HC1")
    robust_f = float(fit.params[-1] ** 2 / fit.cov_params()[-1, -1])
    assert result.diagnostics["effective_f"] == pytest.approx(robust_f, rel=REL)
    assert result.diagnostics["k_eff"] == pytest.approx(1.0, rel=REL)
    # MOP (2013): K_eff = 1, tau = 10%, 5% level -> 23.1085
    assert result.diagnostics["effective_f_critical_value"] == pytest.approx(23.1085, abs=5e-4)


def test_effective_f_several_instruments_normalised_formula(data):
    """MOP (2013): normalise Z so that Z'Z/n = I, then F_eff = n pi'pi / tr(W2) with
    W2 = n Var(pi) (HC1) -- computed here from scratch."""
    result = iv(data, FORMULA)
    n = len(data)
    w = np.column_stack([np.ones(n), data[EXOG].to_numpy(float)])
    annihilate = np.eye(n) - w @ np.linalg.pinv(w)
    z = annihilate @ data[INSTR].to_numpy(float)
    d = annihilate @ data["educ"].to_numpy(float)
    values, vectors = np.linalg.eigh(z.T @ z / n)
    z_norm = z @ vectors @ np.diag(values ** -0.5) @ vectors.T
    pi = z_norm.T @ d / n
    v = d - z_norm @ pi
    hc1 = n / (n - 1 - len(EXOG) - len(INSTR))
    var_pi = hc1 * (z_norm.T * v ** 2) @ z_norm / n ** 2
    w2 = n * var_pi
    f_eff = n * pi @ pi / np.trace(w2)
    assert result.diagnostics["effective_f"] == pytest.approx(f_eff, rel=REL)
    x = 10.0
    k_eff = np.trace(w2) ** 2 * (1 + 2 * x) / (np.trace(w2 @ w2) + 2 * x * np.trace(w2) * np.linalg.eigvalsh(w2).max())
    assert result.diagnostics["k_eff"] == pytest.approx(k_eff, rel=REL)
    critical = stats.ncx2.ppf(0.95, k_eff, x * k_eff) / k_eff
    assert result.diagnostics["effective_f_critical_value"] == pytest.approx(critical, rel=REL)


def test_effective_f_homoskedastic_k_eff_equals_number_of_instruments(data):
    result = iv(data, FORMULA, vcov="unadjusted")
    assert result.diagnostics["k_eff"] == pytest.approx(3.0, rel=1e-10)
    assert result.diagnostics["effective_f"] == pytest.approx(result.diagnostics["cragg_donald_f"], rel=REL)


@pytest.mark.parametrize("cov", ["HC1", "cluster"])
@pytest.mark.parametrize("b0", [0.0, 0.05, -0.3])
def test_anderson_rubin_p_value_equals_direct_regression(data, cov, b0):
    kwargs = {"cluster": "county"} if cov == "cluster" else {}
    result = iv(data, FORMULA, **kwargs)
    target = data["lwage"].to_numpy(float) - b0 * data["educ"].to_numpy(float)
    fit = _first_stage_ols(data, target, cov, data["county"].to_numpy())
    restriction = np.zeros((len(INSTR), 1 + len(EXOG) + len(INSTR)))
    restriction[:, 1 + len(EXOG):] = np.eye(len(INSTR))
    test = fit.f_test(restriction)
    assert result.ar_inputs.p_value(b0) == pytest.approx(float(test.pvalue), rel=1e-7)
    assert result.ar_inputs.wald(b0) / len(INSTR) == pytest.approx(float(np.squeeze(test.fvalue)), rel=REL)
    if b0 == 0.0:
        assert result.diagnostics["anderson_rubin"]["p_value"] == pytest.approx(float(test.pvalue), rel=1e-7)


def test_anderson_rubin_weighted_equals_direct_wls(data):
    weighted = data.assign(w=1.0 + (data["age"] % 5))
    result = iv(weighted, FORMULA, weights="w")
    target = data["lwage"].to_numpy(float) - 0.1 * data["educ"].to_numpy(float)
    x = sm.add_constant(data[EXOG + INSTR].to_numpy(float))
    fit = sm.WLS(target, x, weights=weighted["w"].to_numpy(float)).fit(cov_type="HC1")
    restriction = np.zeros((len(INSTR), x.shape[1]))
    restriction[:, 1 + len(EXOG):] = np.eye(len(INSTR))
    assert result.ar_inputs.p_value(0.1) == pytest.approx(float(fit.f_test(restriction).pvalue), rel=1e-7)


def _quadratic_ar_set(inputs: weak.ARTestInputs, alpha: float) -> tuple[str, list[float]]:
    """One instrument: (g_y - b g_d)^2 <= c (V_yy - 2 b V_yd + b^2 V_dd) is a quadratic a b^2 + b1 b + c0 <= 0."""
    c = inputs.critical_wald(alpha)
    gy, gd = inputs.pi_y[0], inputs.pi_d[0]
    vyy, vyd, vdd = inputs.v_yy[0, 0], inputs.v_yd[0, 0], inputs.v_dd[0, 0]
    a = gd ** 2 - c * vdd
    b1 = -2 * (gy * gd - c * vyd)
    c0 = gy ** 2 - c * vyy
    disc = b1 ** 2 - 4 * a * c0
    if disc < 0:
        return ("empty" if a > 0 else "whole line"), []
    roots = sorted([(-b1 - math.sqrt(disc)) / (2 * a), (-b1 + math.sqrt(disc)) / (2 * a)])
    return ("bounded" if a > 0 else "two rays"), roots


@pytest.mark.parametrize("strength,kind", [(0.6, "bounded"), (0.07, "two rays"), (0.0, "whole line")])
def test_ar_set_one_instrument_matches_quadratic(strength, kind):
    g = rng(21, "ar-quadratic", str(strength))
    n = 400
    z = g.normal(size=n)
    u = g.normal(size=n)
    d = strength * z + u + g.normal(size=n)
    y = 0.3 * d + u * (1 + 0.5 * np.abs(z))
    frame = pd.DataFrame({"y": y, "d": d, "z": z})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        result = iv(frame, "y ~ 1 + [d ~ z]")
    expected_kind, roots = _quadratic_ar_set(result.ar_inputs, 0.05)
    assert expected_kind == kind == result.ar_set.kind
    finite = sorted(v for pair in result.ar_set.intervals for v in pair if math.isfinite(v))
    np.testing.assert_allclose(finite, roots, rtol=1e-9)
    for endpoint in finite:  # the AR p-value is alpha at the boundary
        assert result.ar_inputs.p_value(endpoint) == pytest.approx(0.05, abs=1e-9)


def test_ar_set_empty_when_instruments_disagree():
    """Two strong instruments whose reduced forms imply opposite effects: no b passes the AR test."""
    g = rng(8, "ar-empty")
    n = 2000
    z = g.normal(size=(n, 2))
    d = z[:, 0] + z[:, 1] + g.normal(size=n)
    y = 2 * z[:, 0] - 2 * z[:, 1] + g.normal(size=n)  # exclusion violated on purpose
    frame = pd.DataFrame({"y": y, "d": d, "z1": z[:, 0], "z2": z[:, 1]})
    result = iv(frame, "y ~ 1 + [d ~ z1 + z2]")
    assert result.ar_set.kind == "empty"
    assert result.ar_set.intervals == ()
    grid = np.linspace(-50, 50, 2001)
    assert (result.ar_inputs.wald_many(grid) > result.ar_inputs.critical_wald(0.05)).all()


def test_ar_set_overidentified_endpoints_are_exact(data):
    result = iv(data, FORMULA)
    assert result.ar_set.kind == "bounded"
    low, high = result.ar_set.intervals[0]
    assert low < result.estimate("educ") < high
    for endpoint in (low, high):
        assert result.ar_inputs.p_value(endpoint) == pytest.approx(0.05, abs=1e-9)


def test_stock_yogo_table_values():
    # Stock & Yogo (2005), Table 5.2, K=1 endogenous regressor, 10% maximal size
    assert [weak.STOCK_YOGO_SIZE[k]["10%"] for k in (1, 2, 3)] == [16.38, 19.93, 22.30]
    assert [weak.STOCK_YOGO_SIZE[k]["25%"] for k in (1, 2, 3)] == [5.53, 7.25, 7.80]


@pytest.mark.slow
def test_anderson_rubin_coverage_with_weak_instrument():
    """Weak instrument (first-stage coefficient 0.08, n = 200, concentration ~1.3) and strong
    endogeneity: the robust AR test of the true beta rejects in 5% of 1,000 samples (accepted
    band [0.035, 0.065], 2.2 Monte Carlo s.e.)."""
    g = rng(31, "ar-coverage")
    n, reps, beta = 200, 1000, 1.0
    spec = weak.CovarianceSpec("robust", None, 1)  # one exogenous regressor (the intercept) partialled out
    rejections = 0
    for _ in range(reps):
        z = g.normal(size=(n, 1))
        u = g.normal(size=n)
        d = 0.08 * z[:, 0] + 0.9 * u + 0.45 * g.normal(size=n)
        y = beta * d + u
        ones = np.ones((n, 1))
        inputs = weak.anderson_rubin_inputs(weak.partial_out(y, ones), weak.partial_out(d, ones),
                                            weak.partial_out(z, ones), spec)
        rejections += inputs.p_value(beta) < 0.05
    assert 0.035 <= rejections / reps <= 0.065
