"""Lewis & Mertens (2022) generalised effective F for several endogenous regressors (impactkit.iv).

Comparisons and tolerances:

- with one endogenous regressor the statistic is Montiel Olea-Pflueger's effective F (the
  published identity, LM 2022 Sec. 3): equal to 1e-10 relative under unadjusted, robust and
  clustered covariances;
- under conditional homoskedasticity it is the Cragg-Donald statistic (LM 2022): 1e-10 relative;
- with two endogenous regressors and robust or clustered covariances, against a direct numpy
  computation from the paper's definition (orthonormalised instruments ``Z_o = Z (Z'Z/n)^{-1/2}``,
  ``W`` from the Kronecker products ``v_t kron z_t``, ``Phi = R'(W_2 kron I_K) R`` with
  ``R = I_N kron vec(I_K)``, ``g_min = mineig(Phi^{-1/2} Y'P_Z Y Phi^{-1/2})``): 1e-10 relative;
- the simplified critical value: with one endogenous regressor and a bias bound of 1 it is MOP's
  simplified critical value up to the distributional approximation (three cumulants against
  Patnaik's two): within 0.5% relative for 2, 5 and 10 instruments; it rises as ``tau`` falls; the
  test with it rejects for strong instruments and not for irrelevant ones (two endogenous regressors).
  No published numbers for several regressors were found to compare with (Stata ``gweakivtest`` and
  the authors' MATLAB code are not available here).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import impactkit as ik
from impactkit.iv import weak
from impactkit.iv.lewis_mertens import lewis_mertens_f

REL = 1e-10


def _draw(n=800, strength=(0.8, 0.5), k=3, seed=7):
    gen = np.random.default_rng(seed)
    z = gen.normal(size=(n, k))
    v = gen.normal(size=(n, 2))
    scale = 1 + 0.5 * np.abs(z[:, 0])
    d1 = strength[0] * z[:, 0] + 0.2 * z[:, 1] + v[:, 0] * scale
    d2 = strength[1] * z[:, 1] + 0.4 * z[:, -1] + v[:, 1]
    y = 0.7 * d1 - 0.4 * d2 + (0.5 * v[:, 0] + gen.normal(size=n)) * scale
    return y, np.column_stack([d1, d2]), z, np.repeat(np.arange(n // 10), 10)


def _direct_g_min(y, d, z, clusters=None):
    """The paper's definition, written out with Kronecker products (robust: HC with n/(n-K);
    clustered: G/(G-1) (n-1)/(n-K), the module's small-sample factors)."""
    n, k = z.shape
    n_endog = d.shape[1]
    vals, vecs = np.linalg.eigh(z.T @ z / n)
    zo = z @ vecs @ np.diag(vals ** -0.5) @ vecs.T
    coef = np.linalg.lstsq(zo, d, rcond=None)[0]
    v = d - zo @ coef
    scores = np.einsum("ti,tk->tik", v, zo).reshape(n, n_endog * k)     # v_t kron z_t
    if clusters is None:
        w2 = scores.T @ scores / n * n / (n - k)
    else:
        groups = np.unique(clusters)
        sums = np.array([scores[clusters == g].sum(axis=0) for g in groups])
        g = len(groups)
        w2 = sums.T @ sums / n * g / (g - 1) * (n - 1) / (n - k)
    r = np.kron(np.eye(n_endog), np.eye(k).reshape(k * k, 1))
    phi = r.T @ np.kron(w2, np.eye(k)) @ r
    pv, pe = np.linalg.eigh(phi)
    phi_inv_root = pe @ np.diag(pv ** -0.5) @ pe.T
    fitted = zo @ coef
    return float(np.linalg.eigvalsh(phi_inv_root @ (fitted.T @ fitted) @ phi_inv_root).min())


@pytest.mark.parametrize("cov", ["unadjusted", "robust", "clustered"])
def test_one_endogenous_regressor_is_the_montiel_olea_pflueger_effective_f(cov):
    y, d, z, clusters = _draw()
    spec = weak.CovarianceSpec(cov, clusters if cov == "clustered" else None)
    mop = weak.effective_f(weak.first_stage(d[:, 0], z, spec), z)
    assert lewis_mertens_f(y, d[:, 0], z, spec).g_min == pytest.approx(mop.f_eff, rel=REL)


def test_homoskedastic_is_cragg_donald():
    y, d, z, _ = _draw()
    ours = lewis_mertens_f(y, d, z, weak.CovarianceSpec("unadjusted"))
    assert ours.g_min == pytest.approx(weak.cragg_donald_f(d, z), rel=REL)


@pytest.mark.parametrize("cov", ["robust", "clustered"])
def test_two_endogenous_regressors_match_the_definition(cov):
    y, d, z, clusters = _draw()
    spec = weak.CovarianceSpec(cov, clusters if cov == "clustered" else None)
    direct = _direct_g_min(y, d, z, clusters if cov == "clustered" else None)
    assert lewis_mertens_f(y, d, z, spec).g_min == pytest.approx(direct, rel=REL)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_simplified_critical_value_with_one_regressor_is_close_to_mop(k):
    gen = np.random.default_rng(k)
    z = gen.normal(size=(1000, k))
    d = z @ np.full(k, 0.3) + gen.normal(size=1000) * (1 + 0.3 * np.abs(z[:, 0]))
    y = d + gen.normal(size=1000)
    spec = weak.CovarianceSpec("robust")
    ours = lewis_mertens_f(y, d, z, spec)
    mop = weak.effective_f(weak.first_stage(d, z, spec), z)
    assert ours.b_max == pytest.approx(1.0)
    assert ours.critical_value == pytest.approx(mop.critical_value, rel=5e-3)


def test_critical_value_and_decision():
    y, d, z, _ = _draw()
    spec = weak.CovarianceSpec("robust")
    strict = lewis_mertens_f(y, d, z, spec, tau=0.05)
    loose = lewis_mertens_f(y, d, z, spec, tau=0.20)
    assert strict.critical_value > loose.critical_value > 0
    assert not loose.weak and loose.n_endogenous == 2 and loose.n_instruments == 3
    gen = np.random.default_rng(3)
    noise = gen.normal(size=z.shape)                                  # irrelevant instruments
    assert lewis_mertens_f(y, d, noise, spec).weak


def test_iv_reports_it_with_several_endogenous_regressors():
    y, d, z, clusters = _draw()
    frame = pd.DataFrame({"y": y, "d1": d[:, 0], "d2": d[:, 1], "z1": z[:, 0], "z2": z[:, 1], "z3": z[:, 2],
                          "g": clusters})
    result = ik.iv(frame, "y ~ 1 + [d1 + d2 ~ z1 + z2 + z3]", cluster="g")
    got = result.effective_f()
    assert got["method"] == "Lewis-Mertens" and got["k_eff"] is None and got["b_max"] > 0
    zc = z - z.mean(axis=0)
    dc = d - d.mean(axis=0)
    spec = weak.CovarianceSpec("clustered", clusters, extra_df=1)
    assert got["effective_f"] == pytest.approx(lewis_mertens_f(y - y.mean(), dc, zc, spec).g_min, rel=1e-8)
    assert "Lewis-Mertens effective F" in result.summary()
    with pytest.raises(Exception, match="joint region"):
        result.anderson_rubin_set()


def test_fewer_instruments_than_regressors_is_refused():
    from impactkit.errors import EstimationError

    y, d, z, _ = _draw()
    with pytest.raises(EstimationError, match="not identified"):
        lewis_mertens_f(y, d, z[:, :1], weak.CovarianceSpec("robust"))
