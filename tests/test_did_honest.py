"""Sensitivity to parallel trends (Rambachan & Roth 2023): impactkit.did.honest.

Comparisons and tolerances:

- HonestDiD's published README example (Medicaid expansion, ``ehec``; TWFE event study with
  state-clustered CRV1 covariance, which pyfixest reproduces from fixest): FLCI under
  ``Delta^SD`` within 5e-4 absolute (the README prints three significant digits); C-LF under
  ``Delta^RM`` within 8e-4 (three steps of the 1000-point grid: the least-favourable
  critical value is simulated, so draws differ from R's).
- moderndid 0.2.0 ``didhonest`` on the same event study: the conditional test on the same grid
  accepts the same points (bounds equal to 1e-10); the FLCI agrees to 5e-5 (moderndid solves the
  same convex programme with a numerical solver; ours is exact at ``M = 0``).
- A Callaway-Sant'Anna event study (mpdta, universal base period) passed as ``event_study``
  gives moderndid's ``honest_did`` bounds (1e-10, same grid).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from impactkit.did.honest import honest_did
from impactkit.did.honest_arp import dual_vertices
from impactkit.did.honest_flci import folded_normal_quantile
from impactkit.errors import InputError

FLCI_PUBLISHED_TOL = 5e-4
RM_PUBLISHED_TOL = 8e-4
PEER_TOL = 1e-10
FLCI_PEER_TOL = 5e-5

# HonestDiD README (R package 0.2.x), Medicaid expansion example
PUBLISHED_SD = {0.00: (0.0259, 0.0607), 0.01: (0.0132, 0.0787), 0.02: (0.00286, 0.0907),
                0.03: (-0.00714, 0.101), 0.04: (-0.0171, 0.111), 0.05: (-0.0271, 0.121)}
PUBLISHED_RM = {0.5: (0.0240, 0.0672), 1.0: (0.0170, 0.0720), 1.5: (0.00824, 0.0797),
                2.0: (-0.000916, 0.0881)}


@pytest.fixture(scope="module")
def ehec_event_study():
    moderndid = pytest.importorskip("moderndid")
    pf = pytest.importorskip("pyfixest")
    frame = moderndid.load_ehec().to_pandas()
    frame = frame[(frame["year"] < 2016) & (frame["yexp2"].isna() | (frame["yexp2"] != 2015))].copy()
    frame["D"] = (frame["yexp2"] == 2014).astype(float)
    fit = pf.feols("dins ~ i(year, D, ref=2013) | stfips + year", data=frame, vcov={"CRV1": "stfips"})
    return fit.coef().to_numpy(), np.asarray(fit._vcov)


def test_flci_matches_published_honestdid(ehec_event_study):
    beta, sigma = ehec_event_study
    result = honest_did(beta, sigma, num_pre=5, num_post=2, restriction="smoothness", m=list(PUBLISHED_SD))
    table = result.tidy()
    for (m, (lo, hi)), row in zip(PUBLISHED_SD.items(), table.itertuples()):
        assert row.M == pytest.approx(m)
        assert row.conf_low == pytest.approx(lo, abs=FLCI_PUBLISHED_TOL)
        assert row.conf_high == pytest.approx(hi, abs=FLCI_PUBLISHED_TOL)


def test_relative_magnitudes_match_published_honestdid(ehec_event_study):
    beta, sigma = ehec_event_study
    result = honest_did(beta, sigma, num_pre=5, num_post=2, m=list(PUBLISHED_RM), seed=1)
    assert result.method == "C-LF"
    for (m, (lo, hi)), row in zip(PUBLISHED_RM.items(), result.tidy().itertuples()):
        assert row.Mbar == pytest.approx(m)
        assert row.conf_low == pytest.approx(lo, abs=RM_PUBLISHED_TOL)
        assert row.conf_high == pytest.approx(hi, abs=RM_PUBLISHED_TOL)
    # the README: "the breakdown value for a significant effect is Mbar = 2"
    assert 1.5 < result.breakdown() <= 2.0


def _moderndid_honest():
    pytest.importorskip("cvxpy")
    from moderndid import didhonest

    return didhonest


@pytest.mark.slow   # moderndid needs ~30 s per Mbar on this event study
def test_conditional_rm_matches_moderndid(ehec_event_study):
    didhonest = _moderndid_honest()
    beta, sigma = ehec_event_study
    l_vec = [0.5, 0.5]
    ours = honest_did(beta, sigma, num_pre=5, num_post=2, m=[2.0], l_vec=l_vec, method="Conditional",
                      grid_points=100).tidy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = didhonest.create_sensitivity_results_rm(beta, sigma, 5, 2, m_bar_vec=[2.0], l_vec=np.array(l_vec),
                                                       method="Conditional", grid_points=100).to_pandas()
    np.testing.assert_allclose(ours["conf_low"], peer["lb"], atol=PEER_TOL)
    np.testing.assert_allclose(ours["conf_high"], peer["ub"], atol=PEER_TOL)


def test_flci_matches_moderndid(ehec_event_study):
    didhonest = _moderndid_honest()
    beta, sigma = ehec_event_study
    ms = [0.0, 0.015, 0.04]
    ours = honest_did(beta, sigma, num_pre=5, num_post=2, restriction="smoothness", m=ms, l_vec=[0.5, 0.5]).tidy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = didhonest.create_sensitivity_results_sm(beta, sigma, 5, 2, m_vec=ms,
                                                       l_vec=np.array([0.5, 0.5])).to_pandas()
    np.testing.assert_allclose(ours["conf_low"], peer["lb"], atol=FLCI_PEER_TOL)
    np.testing.assert_allclose(ours["conf_high"], peer["ub"], atol=FLCI_PEER_TOL)


@pytest.mark.slow
def test_callaway_santanna_event_study_matches_moderndid():
    moderndid = pytest.importorskip("moderndid")
    didhonest = _moderndid_honest()
    from impactkit.did.cs import estimate_cs

    frame = moderndid.load_mpdta().to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_es = estimate_cs(frame, y="lemp", unit="countyreal", time="year", cohort="first.treat",
                              base_period="universal").aggregate("dynamic")
        fit = moderndid.att_gt(frame, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                               base_period="universal", boot=False, cband=False)
        peer_es = moderndid.aggte(fit, type="dynamic", boot=False, cband=False)
        peer = didhonest.honest_did(peer_es, event_time=0, sensitivity_type="relative_magnitude",
                                    m_bar_vec=[1.0], method="Conditional", grid_points=100)
    ours = honest_did(event_study=ours_es, m=[1.0], method="Conditional", grid_points=100)
    table = peer.robust_ci.to_pandas()
    np.testing.assert_allclose(ours.tidy()["conf_low"], table["lb"], atol=PEER_TOL)
    np.testing.assert_allclose(ours.tidy()["conf_high"], table["ub"], atol=PEER_TOL)
    assert ours.original[1] == pytest.approx(peer.original_ci.lb, abs=1e-9)


def test_breakdown_is_where_the_set_first_covers_zero(ehec_event_study):
    beta, sigma = ehec_event_study
    result = honest_did(beta, sigma, num_pre=5, num_post=2, restriction="smoothness", m=[0.0, 0.02, 0.04])
    m_star = result.breakdown()
    lo_at, _ = result._interval(m_star)
    lo_before, _ = result._interval(m_star * 0.99)
    assert lo_at <= 1e-6 and lo_before > 0
    assert 0.02 < m_star < 0.03    # the README: "the breakdown value ... is M = 0.03" (rounded)


def test_plot_and_to_dict(ehec_event_study):
    import matplotlib

    matplotlib.use("Agg")
    beta, sigma = ehec_event_study
    result = honest_did(beta, sigma, num_pre=5, num_post=2, m=[0.5, 1.0], grid_points=200)
    fig = result.plot()
    assert "robust confidence intervals" in fig._impactkit_alt_text
    out = result.to_dict()
    assert out["restriction"] == "relative_magnitude" and len(out["table"]) == 2


def test_numerics_helpers():
    # |N(0,1)| quantile at 0.95 is the two-sided normal critical value
    assert folded_normal_quantile(0.0, 0.05) == pytest.approx(1.959963984540054, abs=1e-10)
    # simplex {g >= 0, g1 + g2 = 1, g1 - g2 = 0} has one vertex
    verts = dual_vertices(np.array([[1.0], [-1.0]]), np.array([1.0, 1.0]))
    np.testing.assert_allclose(verts, [[0.5, 0.5]])


@pytest.mark.parametrize("kwargs, message", [
    ({"num_pre": 3, "num_post": 2}, "num_pre \\+ num_post"),
    ({"num_pre": 5, "num_post": 2, "restriction": "linear"}, "restriction must be one of"),
    ({"num_pre": 5, "num_post": 2, "method": "FLCI"}, "method for relative_magnitude"),
    ({"num_pre": 5, "num_post": 2, "event_time": 4}, "event_time must be in"),
    ({"num_pre": 5, "num_post": 2, "m": [-1.0]}, "non-negative"),
])
def test_bad_input_is_an_input_error(ehec_event_study, kwargs, message):
    beta, sigma = ehec_event_study
    with pytest.raises(InputError, match=message):
        honest_did(beta, sigma, **kwargs)


@pytest.mark.slow   # one moderndid call, ~30 s
def test_every_pre_period_change_can_be_the_largest(ehec_event_study):
    """R HonestDiD lets each of the T_pre pre-period changes be the largest; moderndid 0.2.0's
    ``rm.py`` skips the earliest one. When that change is the largest, our set (same grid, a union
    over a superset of polyhedra) contains moderndid's and is strictly wider."""
    didhonest = _moderndid_honest()
    beta, sigma = ehec_event_study
    beta = beta.copy()
    beta[0] = 0.04        # the change from event time -5 to -4 is now by far the largest
    ours = honest_did(beta, sigma, num_pre=5, num_post=2, m=[1.0], method="Conditional", grid_points=100).tidy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = didhonest.create_sensitivity_results_rm(beta, sigma, 5, 2, m_bar_vec=[1.0], method="Conditional",
                                                       grid_points=100).to_pandas()
    assert ours["conf_low"].iloc[0] < peer["lb"].iloc[0] - 0.01
    assert ours["conf_high"].iloc[0] > peer["ub"].iloc[0] + 0.01
