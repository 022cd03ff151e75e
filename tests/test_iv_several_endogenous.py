"""IV with several endogenous regressors: the joint Anderson-Rubin test, the Lewis-Mertens effective F
(tested in test_iv_lewis_mertens.py), and a clear error for the AR set (impactkit.iv).

The joint AR test of ``beta = b0`` equals the Wald F test that the instruments' coefficients are
zero in the regression of ``y - D b0`` on the instruments and exogenous regressors, computed by
statsmodels with the same covariance (HC1; cluster with statsmodels' small-sample correction):
agreement to 1e-8 relative. With one endogenous regressor it equals the existing AR statistic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import impactkit as ik
from impactkit.errors import InputError


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    gen = np.random.default_rng(42)
    n = 600
    z = gen.normal(size=(n, 3))
    v = gen.normal(size=(n, 2))
    x = gen.normal(size=n)
    d1 = z @ [0.8, 0.2, 0.0] + 0.3 * x + v[:, 0]
    d2 = z @ [0.1, 0.5, 0.6] + v[:, 1]
    u = 0.5 * v[:, 0] + gen.normal(size=n) * (1 + 0.5 * np.abs(x))
    y = 1.0 + 0.7 * d1 - 0.4 * d2 + 0.2 * x + u
    return pd.DataFrame({"y": y, "d1": d1, "d2": d2, "z1": z[:, 0], "z2": z[:, 1], "z3": z[:, 2], "x": x,
                         "g": np.repeat(np.arange(60), 10)})


def _peer_f(frame, b0, cov):
    sm = pytest.importorskip("statsmodels.api")
    target = frame["y"] - b0[0] * frame["d1"] - b0[1] * frame["d2"]
    exog = sm.add_constant(frame[["z1", "z2", "z3", "x"]])
    fit = sm.OLS(target, exog)
    res = fit.fit(cov_type="HC1") if cov == "robust" else fit.fit(cov_type="cluster", cov_kwds={"groups": frame["g"]})
    return float(res.f_test("z1 = 0, z2 = 0, z3 = 0").fvalue)


@pytest.mark.parametrize("cov", ["robust", "clustered"])
@pytest.mark.parametrize("b0", [(0.0, 0.0), (0.7, -0.4), (1.5, 0.3)])
def test_joint_ar_matches_statsmodels_wald(data, cov, b0):
    kwargs = {"vcov": "robust"} if cov == "robust" else {"cluster": "g"}
    result = ik.iv(data, "y ~ 1 + x + [d1 + d2 ~ z1 + z2 + z3]", **kwargs)
    ours = result.anderson_rubin_test(b0)
    assert ours["f"] == pytest.approx(_peer_f(data, b0, cov), rel=1e-8)
    if b0 == (0.0, 0.0):
        assert result.diagnostics["anderson_rubin"]["f"] == pytest.approx(ours["f"], rel=1e-12)


def test_one_endogenous_joint_equals_scalar_ar(data):
    result = ik.iv(data, "y ~ 1 + x + d2 + [d1 ~ z1 + z2]", vcov="robust")
    assert result.anderson_rubin_test([0.3])["f"] == pytest.approx(result.ar_inputs.wald(0.3) / 2, rel=1e-10)
    assert result.effective_f()["effective_f"] == result.diagnostics["effective_f"]


def test_limits_are_named(data):
    result = ik.iv(data, "y ~ 1 + x + [d1 + d2 ~ z1 + z2 + z3]", vcov="robust")
    assert result.effective_f()["method"] == "Lewis-Mertens"
    with pytest.raises(InputError, match="joint region"):
        result.anderson_rubin_set()
    with pytest.raises(InputError, match="needs 2 value"):
        result.anderson_rubin_test([0.0])
    assert "every endogenous effect = 0" in result.summary()
