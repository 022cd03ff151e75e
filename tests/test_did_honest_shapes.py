"""HonestDiD sign and monotonicity restrictions and the FLCI hybrid: impactkit.did.honest.

``Delta^SDB``, ``Delta^SDM`` (smoothness intersected with a sign restriction on the post-period
bias or a monotone trend), ``Delta^RMB``, ``Delta^RMM`` (the same with relative magnitudes),
Rambachan & Roth (2023), Sec. 2.4.3; the FLCI hybrid ``"C-F"``, Sec. 4.3. Peer: moderndid 0.2.0
``didhonest`` on the same event studies (the Medicaid-expansion TWFE event study of HonestDiD's
README, 5 pre and 2 post periods; a Callaway-Sant'Anna event study of mpdta, 3 pre and 4 post).

Comparisons and tolerances:

- restriction matrices: the same rows as moderndid's constructors (exact);
- smoothness family (one polyhedron), ``"Conditional"`` and ``"C-F"``, the same explicit grid:
  bounds equal to 1e-10 (same accepted grid points);
- relative-magnitude family: the union of polyhedra differs from moderndid 0.2.0 by design
  (moderndid skips the earliest pre-period change and, for ``Delta^RMB``/``Delta^RMM`` only, adds a
  polyhedron where the first *post*-period change is the largest; R HonestDiD and impactkit let
  each pre change be the largest), and moderndid finds the bounds by bisection assuming the accepted
  set is an interval. So the test itself is compared point by point: for every polyhedron, every
  grid point, impactkit's accept/reject equals moderndid's ``lp_conditional_test`` on the same
  moments (zero mismatches). Grids stay within a few standard errors of the estimate: far in the
  tail (truncation point above about 8 SD) moderndid's truncated-normal quantile rounds to the
  truncation point (``cdf`` saturates at 1) while impactkit computes it on the log scale;
- ``"C-LF"``: its critical value is simulated (1,000 draws, as HonestDiD), so bounds agree within
  2 steps of a 301-point grid.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from impactkit.did.honest import honest_did
from impactkit.did.honest_arp import accept_union, truncated_normal_quantile
from impactkit.did.honest_delta import EventStudy, restriction_polyhedra
from impactkit.errors import InputError

PEER_TOL = 1e-10
SHAPES = [{"bias_direction": "positive"}, {"bias_direction": "negative"},
          {"monotonicity_direction": "increasing"}, {"monotonicity_direction": "decreasing"}]


@pytest.fixture(scope="module")
def ehec():
    moderndid = pytest.importorskip("moderndid")
    pf = pytest.importorskip("pyfixest")
    frame = moderndid.load_ehec().to_pandas()
    frame = frame[(frame["year"] < 2016) & (frame["yexp2"].isna() | (frame["yexp2"] != 2015))].copy()
    frame["D"] = (frame["yexp2"] == 2014).astype(float)
    fit = pf.feols("dins ~ i(year, D, ref=2013) | stfips + year", data=frame, vcov={"CRV1": "stfips"})
    return fit.coef().to_numpy(), np.asarray(fit._vcov)


@pytest.fixture(scope="module")
def mpdta():
    moderndid = pytest.importorskip("moderndid")
    from impactkit.did.cs import estimate_cs
    from impactkit.did.honest import event_study_inputs

    frame = moderndid.load_mpdta().to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = estimate_cs(frame, y="lemp", unit="countyreal", time="year", cohort="first.treat",
                         base_period="universal").aggregate("dynamic")
    return event_study_inputs(es)


def _didhonest():
    pytest.importorskip("cvxpy")
    from moderndid import didhonest

    return didhonest


def _rows(matrix):
    return sorted(map(tuple, np.round(matrix, 12) + 0.0))


def test_restriction_matrices_match_moderndid():
    pytest.importorskip("moderndid")
    from moderndid.didhonest.delta.rm.rmb import _create_relative_magnitudes_bias_constraint_matrix as rmb
    from moderndid.didhonest.delta.rm.rmm import _create_relative_magnitudes_monotonicity_constraint_matrix as rmm
    from moderndid.didhonest.delta.sd.sdb import _create_sdb_constraint_matrix as sdb
    from moderndid.didhonest.delta.sd.sdm import _create_sdm_constraint_matrix as sdm

    npre, npost = 4, 3
    for direction in ("positive", "negative"):
        (a, d), = restriction_polyhedra("smoothness", direction, npre, npost, 0.02)
        assert _rows(a) == _rows(sdb(npre, npost, direction))
        assert np.all(d[: a.shape[0] - npost] == 0.02) and np.all(d[-npost:] == 0)
    for direction in ("increasing", "decreasing"):
        (a, _), = restriction_polyhedra("smoothness", direction, npre, npost, 0.02)
        assert _rows(a) == _rows(sdm(npre, npost, direction))
    # moderndid's s = k (k < 0) is impactkit's pre change npre + k; its s = 0 is a post change
    for direction, peer in (("positive", rmb), ("increasing", rmm)):
        key = "bias_direction" if peer is rmb else "monotonicity_direction"
        polys = restriction_polyhedra("relative_magnitude", direction, npre, npost, 1.5)
        assert len(polys) == 2 * npre
        for k in range(-(npre - 1), 0):
            for j, positive in enumerate((True, False)):
                theirs = peer(num_pre_periods=npre, num_post_periods=npost, m_bar=1.5, s=k, max_positive=positive,
                              **{key: direction})
                assert _rows(polys[2 * (npre + k) + j][0]) == _rows(theirs)


@pytest.mark.parametrize("method, shape", [("Conditional", s) for s in [{}] + SHAPES]
                         + [("C-F", s) for s in ({}, SHAPES[1], SHAPES[2])],
                         ids=["cond-sd", "cond-sdb+", "cond-sdb-", "cond-sdm+", "cond-sdm-", "cf-sd", "cf-sdb-", "cf-sdm+"])
def test_smoothness_family_matches_moderndid(ehec, shape, method):
    didhonest = _didhonest()
    beta, sigma = ehec
    ms = [0.0, 0.01, 0.03] if method == "Conditional" else [0.01]
    l_vec, grid = np.array([0.5, 0.5]), {"grid_lb": -0.1, "grid_ub": 0.2, "grid_points": 100}
    ours = honest_did(beta, sigma, num_pre=5, num_post=2, restriction="smoothness", m=ms, l_vec=l_vec,
                      method=method, **grid, **shape).tidy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = didhonest.create_sensitivity_results_sm(beta, sigma, 5, 2, m_vec=ms, l_vec=l_vec, method=method,
                                                       **grid, **shape).to_pandas()
    np.testing.assert_allclose(ours["conf_low"], peer["lb"], atol=PEER_TOL)
    np.testing.assert_allclose(ours["conf_high"], peer["ub"], atol=PEER_TOL)
    assert set(ours["restriction"]) == {{"": "DeltaSD", "b": "DeltaSDB", "m": "DeltaSDM"}[
        "" if not shape else ("b" if "bias_direction" in shape else "m")]}


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[3]], ids=["sdb+", "sdm-"])
def test_flci_hybrid_on_a_callaway_santanna_event_study_matches_moderndid(mpdta, shape):
    didhonest = _didhonest()
    beta, sigma, npre, npost = mpdta
    l_vec, grid = np.full(npost, 1 / npost), {"grid_lb": -0.3, "grid_ub": 0.15, "grid_points": 60}
    ours = honest_did(beta, sigma, num_pre=npre, num_post=npost, restriction="smoothness", m=[0.0, 0.02],
                      l_vec=l_vec, **grid, **shape).tidy()
    assert set(ours["method"]) == {"C-F"}            # the default with a sign or monotonicity restriction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = didhonest.create_sensitivity_results_sm(beta, sigma, npre, npost, m_vec=[0.0, 0.02], l_vec=l_vec,
                                                       method="C-F", **grid, **shape).to_pandas()
    np.testing.assert_allclose(ours[["conf_low", "conf_high"]].to_numpy(), peer[["lb", "ub"]].to_numpy(),
                               atol=PEER_TOL)


def _pointwise(study, l_vec, polys, thetas):
    """Grid points where impactkit and moderndid's ``lp_conditional_test`` disagree (summed over
    the polyhedra), and the points moderndid accepts for at least one polyhedron."""
    from moderndid.didhonest.arp_nuisance import _construct_gamma, lp_conditional_test

    gamma_inv = np.linalg.inv(_construct_gamma(l_vec))
    mismatches, union = 0, np.zeros(thetas.size, dtype=bool)
    for a, d in polys:
        a_theta = a[:, study.post] @ gamma_inv
        rows = np.flatnonzero(np.any(a[:, study.post] != 0, axis=1))
        ours = accept_union(study, l_vec, [(a, d)], thetas, 0.05, "Conditional", None, ["unused"], True)
        peer = [not lp_conditional_test(a @ study.beta - d - a_theta[:, 0] * t, a_theta[:, 1:], a @ study.sigma @ a.T,
                                        0.05, "ARP", {}, rows)["reject"] for t in thetas]
        mismatches += int(np.sum(ours != np.array(peer)))
        union |= np.array(peer)
    return mismatches, union


@pytest.mark.parametrize("shape", SHAPES, ids=["rmb+", "rmb-", "rmm+", "rmm-"])
def test_relative_magnitude_family_matches_moderndid_point_by_point(ehec, mpdta, shape):
    """Every polyhedron, every grid point: the same accept/reject as moderndid's test; and the
    front door's bounds are the smallest and largest point moderndid's test accepts for some
    polyhedron of ``Delta^RMB``/``Delta^RMM``."""
    pytest.importorskip("moderndid")
    direction = next(iter(shape.values()))
    beta, sigma = ehec
    thetas = np.linspace(-0.01, 0.12, 21)
    polys = restriction_polyhedra("relative_magnitude", direction, 5, 2, 1.0)
    mismatches, union = _pointwise(EventStudy(beta, sigma, 5, 2), np.array([0.5, 0.5]), polys, thetas)
    assert mismatches == 0
    ours = honest_did(beta, sigma, num_pre=5, num_post=2, m=[1.0], l_vec=[0.5, 0.5], method="Conditional",
                      grid_lb=-0.01, grid_ub=0.12, grid_points=21, **shape).tidy()
    assert ours["restriction"].iloc[0] == ("DeltaRMB" if "bias_direction" in shape else "DeltaRMM")
    assert ours["conf_low"].iloc[0] == pytest.approx(thetas[union].min(), abs=PEER_TOL)
    assert ours["conf_high"].iloc[0] == pytest.approx(thetas[union].max(), abs=PEER_TOL)
    if direction in ("negative", "increasing"):    # the event study of mpdta for two of the four
        return
    beta, sigma, npre, npost = mpdta
    polys = restriction_polyhedra("relative_magnitude", direction, npre, npost, 0.5)
    mismatches, _ = _pointwise(EventStudy(beta, sigma, npre, npost), np.full(npost, 1 / npost), polys,
                               np.linspace(-0.15, 0.02, 18))
    assert mismatches == 0


def test_relative_magnitude_family_defaults(ehec):
    beta, sigma = ehec
    mono = honest_did(beta, sigma, num_pre=5, num_post=2, m=[1.0], monotonicity_direction="decreasing",
                      grid_points=200, seed=3)
    assert mono.method == "C-LF" and mono.tidy()["restriction"].iloc[0] == "DeltaRMM"
    assert "trend decreasing" in mono.notes()[0]
    lo, hi = mono.tidy()[["conf_low", "conf_high"]].iloc[0]
    assert lo < mono.original[0] < hi


def test_least_favourable_hybrid_is_within_two_grid_steps_of_moderndid(ehec):
    didhonest = _didhonest()
    beta, sigma = ehec
    grid = {"grid_lb": -0.1, "grid_ub": 0.2, "grid_points": 151}
    ours = honest_did(beta, sigma, num_pre=5, num_post=2, restriction="smoothness", m=[0.03], l_vec=[0.5, 0.5],
                      method="C-LF", seed=1, bias_direction="positive", **grid).tidy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = didhonest.create_sensitivity_results_sm(beta, sigma, 5, 2, m_vec=[0.03], l_vec=np.array([0.5, 0.5]),
                                                       method="C-LF", bias_direction="positive", **grid).to_pandas()
    step = 0.3 / 150
    assert np.abs(ours[["conf_low", "conf_high"]].to_numpy() - peer[["lb", "ub"]].to_numpy()).max() <= 2 * step + 1e-12


def test_one_post_period_with_m_zero_matches_moderndid(ehec):
    """With one post period moderndid's no-nuisance path is used; at ``M = 0`` (``d = 0``) the
    conditional test agrees. For ``M > 0`` it compares the ``d``-shifted moment with a critical
    value centred at ``d`` (R HonestDiD shifts both), and its ``"C-F"`` and relative-magnitude
    paths raise, so those are not compared."""
    didhonest = _didhonest()
    beta, sigma = ehec
    beta, sigma = beta[:6], sigma[:6, :6]
    grid = {"grid_lb": -0.05, "grid_ub": 0.15, "grid_points": 60}
    for shape in ({}, SHAPES[0]):
        ours = honest_did(beta, sigma, num_pre=5, num_post=1, restriction="smoothness", m=[0.0], method="Conditional",
                          **grid, **shape).tidy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = didhonest.create_sensitivity_results_sm(beta, sigma, 5, 1, m_vec=[0.0], method="Conditional",
                                                           **grid, **shape).to_pandas()
        np.testing.assert_allclose(ours[["conf_low", "conf_high"]].to_numpy(), peer[["lb", "ub"]].to_numpy(),
                                   atol=PEER_TOL)


def test_truncated_normal_quantile_in_the_far_tail():
    from scipy.stats import truncnorm

    for lo, hi in [(-np.inf, np.inf), (-1.0, 2.0), (9.41, np.inf), (-np.inf, -12.0), (30.0, 31.0)]:
        got = truncated_normal_quantile(0.95, np.array([lo]), np.array([hi]))[0]
        assert got == pytest.approx(truncnorm.ppf(0.95, lo, hi), rel=1e-9)


def test_breakdown_under_a_sign_restriction(ehec):
    beta, sigma = ehec
    result = honest_did(beta, sigma, num_pre=5, num_post=2, restriction="smoothness", m=[0.0, 0.02],
                        bias_direction="negative", grid_points=200)
    # delta_post <= 0 means theta >= beta_post - noise: with a positive estimate the set stays
    # above zero however large M is (the bias can only push the estimate down)
    assert result.breakdown(upper=0.2) == float("inf")
    lo, _ = result._interval(0.2)
    assert lo > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"bias_direction": "positive", "monotonicity_direction": "increasing"}, "not both"),
    ({"bias_direction": "up"}, "bias_direction must be one of"),
    ({"monotonicity_direction": "flat"}, "monotonicity_direction must be one of"),
    ({"restriction": "smoothness", "method": "FLCI", "bias_direction": "positive"}, "FLCI does not use"),
    ({"method": "C-F"}, "method for relative_magnitude"),
    ({"grid_lb": 0.0}, "both grid_lb and grid_ub"),
    ({"grid_lb": 0.1, "grid_ub": 0.0}, "both grid_lb and grid_ub"),
])
def test_bad_shape_input_is_an_input_error(ehec, kwargs, message):
    beta, sigma = ehec
    with pytest.raises(InputError, match=message):
        honest_did(beta, sigma, num_pre=5, num_post=2, **kwargs)
