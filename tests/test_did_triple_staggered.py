"""Staggered triple differences (impactkit.did.triple_staggered) against moderndid 0.2.0 ``ddd`` /
``agg_ddd`` on the same data, and against simulation truth.

Data: moderndid's own staggered DDD generator ``gen_ddd_scalable`` (5 periods, cohorts 2, 3, 4 and
never enabled, four covariates, both nuisance models right) and ``gen_ddd_mult_periods`` (3 periods,
known ATT(g,t) = 10, 20, 25 for the eligible units).

Tolerances (absolute unless said):
- ATT(g,t): 1e-8 for "reg", 1e-7 for "dr", 1e-5 for "ipw" (both packages solve the logit
  iteratively, to slightly different stopping points, on this DGP's near-separated cells; GMM
  weights, built from the influence functions, carry the difference into the estimate);
- standard errors of single-comparison cells: 1e-7 ("dr"/"reg"), 1e-4 ("ipw");
- influence functions, element by element, relative to their largest value: 1e-8 for "reg"; 1e-4
  for "dr" and 1e-3 for "ipw", whose propensity-score estimation terms differ in the fifth digit
  (each package's logit fit; the standard errors built from them still agree to 1e-7);
- GMM cells (several not-yet-enabled comparison cohorts): the standard error is that of the
  influence function moderndid itself returns (1e-7); moderndid *reports* a standard error smaller
  by ``sqrt(n_cell / n)`` (checked to 2%, the gap between a centred covariance with ``n - 1`` and an
  uncentred sum). A 150-draw study (see the closing note) gave an empirical SD of 12.30 against a
  mean standard error of 12.23 here and 11.21 in moderndid;
- aggregates: estimates 1e-8; the group aggregate's standard errors 1e-7; simple, dynamic and
  calendar influence functions equal moderndid's plus the cohort-share term that R ``triplediff``
  and R ``did`` include and moderndid 0.2.0 leaves out, computed with moderndid's own
  ``_get_weight_influence`` (1e-4 relative, the "dr" influence-function tolerance).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import impactkit as ik
from impactkit.did.base import ATT_KEYS, EVENT_STUDY_COLUMNS
from impactkit.did.event_study import WaldTestResult
from impactkit.did.triple import TripleResult
from impactkit.did.triple_staggered import TripleGTResult
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

md = pytest.importorskip("moderndid")
COVS = ["cov1", "cov2", "cov3", "cov4"]
MD_CONTROL = {"never": "nevertreated", "notyet": "notyettreated"}
ATT_TOL = {"dr": 1e-7, "reg": 1e-8, "ipw": 1e-5}
SE_TOL = {"dr": 1e-7, "reg": 1e-7, "ipw": 1e-4}
IF_RTOL = {"dr": 1e-4, "reg": 1e-8, "ipw": 1e-3}


@pytest.fixture(scope="module")
def scalable():
    data = md.gen_ddd_scalable(n=800, dgp_type=1, n_periods=5, n_cohorts=3, n_covariates=4, random_state=4)
    return data["data"].to_pandas()


def _ours(frame, **options):
    options.setdefault("covariates", COVS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ik.did(frame, y="y", unit="id", time="time", cohort="group", method="ddd", partition="partition",
                      **options)


def _peer(frame, control="never", base_period="varying", est="dr", covariates=COVS, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.ddd(frame, yname="y", tname="time", idname="id", gname="group", pname="partition",
                      xformla=None if covariates is None else "~" + "+".join(covariates),
                      control_group=MD_CONTROL[control], base_period=base_period, est_method=est, **options)


@pytest.mark.parametrize("est", ["dr", "reg", "ipw"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "notyet"])
def test_att_gt_and_influence_match_moderndid(scalable, control, base_period, est):
    ours = _ours(scalable, control=control, base_period=base_period, est=est)
    peer = _peer(scalable, control=control, base_period=base_period, est=est)
    table = ours.att_gt
    assert isinstance(ours, TripleGTResult)
    assert table[["group", "time"]].to_numpy().tolist() == np.column_stack([peer.groups, peer.times]).tolist()
    np.testing.assert_allclose(table["estimate"], peer.att, rtol=0, atol=ATT_TOL[est])
    scale = np.abs(peer.inf_func_mat).max()
    np.testing.assert_allclose(ours.influence, peer.inf_func_mat, rtol=0, atol=IF_RTOL[est] * scale)
    own_if_se = np.sqrt((peer.inf_func_mat ** 2).sum(axis=0)) / peer.n
    np.testing.assert_allclose(table["std_error"], own_if_se, rtol=0, atol=SE_TOL[est])
    if control == "never":
        np.testing.assert_allclose(table["std_error"], np.nan_to_num(peer.se), rtol=0, atol=SE_TOL[est])
        return
    cohorts = np.unique(scalable["group"])
    base = np.where(peer.times >= peer.groups, peer.groups - 1,
                    peer.times - 1 if base_period == "varying" else peer.groups - 1)
    comparisons = np.array([np.sum((cohorts == 0) | ((cohorts > max(t, b)) & (cohorts != g)))
                            for g, t, b in zip(peer.groups, peer.times, base)])
    single = np.isfinite(peer.se) & (comparisons == 1)
    np.testing.assert_allclose(table["std_error"][single], peer.se[single], rtol=0, atol=SE_TOL[est])
    gmm = np.isfinite(peer.se) & (comparisons > 1)
    assert gmm.any() and (table["n"].to_numpy()[gmm] < peer.n).any()
    ratio = peer.se[gmm] / table["std_error"].to_numpy()[gmm]
    np.testing.assert_allclose(ratio, np.sqrt(table["n"].to_numpy()[gmm] / peer.n), rtol=0.02)


def _cell_shares_influence(peer, keepers):
    """R triplediff's ``get_weight_influence`` for the cells ``keepers``, with moderndid's own helper."""
    from moderndid.didtriple.compute_agg_ddd import _get_weight_influence

    share = {g: np.mean(peer.unit_groups == g) for g in peer.glist}
    cell_share = np.array([share[g] for g in peer.groups])
    return _get_weight_influence(keepers, cell_share, peer.unit_groups, peer.groups)


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_aggregations_match_moderndid_with_the_share_term(scalable, control):
    ours = _ours(scalable, control=control, base_period="universal")
    peer = _peer(scalable, control=control, base_period="universal")
    agg = {k: md.agg_ddd(peer, type=k, boot=False, cband=False) for k in ("simple", "eventstudy", "group", "calendar")}
    for kind, key in (("simple", "simple"), ("dynamic", "eventstudy"), ("group", "group"), ("calendar", "calendar")):
        mine = ours.aggregate(kind)
        assert mine.estimate == pytest.approx(agg[key].overall_att, abs=1e-8)
        if kind != "simple":
            np.testing.assert_allclose(mine.rows["estimate"], agg[key].att_egt, rtol=0, atol=1e-8)
    group = ours.aggregate("group")    # no share term in the rows; the overall has it in both packages
    assert group.std_error == pytest.approx(agg["group"].overall_se, abs=1e-7)
    np.testing.assert_allclose(group.rows["std_error"], agg["group"].se_egt, rtol=0, atol=1e-7)

    post = np.flatnonzero(peer.groups <= peer.times)
    wif = _cell_shares_influence(peer, post)
    expected = agg["simple"].inf_func_overall + wif @ peer.att[post]
    simple = ours.aggregate("simple")
    np.testing.assert_allclose(simple.influence, expected, rtol=0, atol=IF_RTOL["dr"] * np.abs(expected).max())
    assert simple.std_error != pytest.approx(agg["simple"].overall_se, rel=1e-3)   # moderndid leaves it out

    dynamic = ours.aggregate("dynamic")
    event = peer.times - peer.groups
    for k, e in enumerate(dynamic.rows["event_time"]):
        cells = np.flatnonzero(event == e)
        expected = agg["eventstudy"].inf_func[:, k] + _cell_shares_influence(peer, cells) @ peer.att[cells]
        np.testing.assert_allclose(dynamic.row_influence[:, k], expected, rtol=0,
                                   atol=IF_RTOL["dr"] * max(np.abs(expected).max(), 1.0))


def test_no_covariates_is_the_ddd_of_cell_mean_changes(scalable):
    """ATT(g,t) without covariates, never-enabled comparison: the triple difference of mean changes."""
    ours = _ours(scalable, covariates=None).att_gt.set_index(["group", "time"])
    wide = scalable.pivot(index="id", columns="time", values="y")
    units = scalable.drop_duplicates("id").set_index("id").loc[wide.index]
    for (g, t), row in ours.iterrows():
        base = g - 1 if t >= g else t - 1
        change = wide[t] - wide[base]
        mean = {(s, q): change[(units["group"] == s) & (units["partition"] == q)].mean() for s in (g, 0) for q in (0, 1)}
        by_hand = (mean[g, 1] - mean[g, 0]) - (mean[0, 1] - mean[0, 0])
        assert row["estimate"] == pytest.approx(by_hand, abs=1e-9)


@pytest.mark.parametrize("dgp", [1, 2])
def test_simulation_truth(dgp):
    """gen_ddd_mult_periods: the eligible units of cohort 2 gain 10 in period 2 and 20 in period 3,
    those of cohort 3 gain 25 in period 3; DGP 2 misspecifies only the propensity score (doubly
    robust still consistent). Each post-treatment ATT(g,t) lies within 4 standard errors of its truth
    and the pre-treatment ATT(3,2) within 4 of zero."""
    frame = md.gen_ddd_mult_periods(n=3000, dgp_type=dgp, random_state=7)["data"].to_pandas()
    truth = {(2, 2): 10.0, (2, 3): 20.0, (3, 3): 25.0, (3, 2): 0.0}
    for control in ("never", "notyet"):
        table = _ours(frame, control=control).att_gt.set_index(["group", "time"])
        for cell, value in truth.items():
            assert abs(table.loc[cell, "estimate"] - value) < 4 * table.loc[cell, "std_error"], (control, cell)


@pytest.mark.slow
def test_gmm_standard_error_is_calibrated():
    """40 draws of gen_ddd_scalable (5 periods, cohorts 2-4): the not-yet-enabled ATT(3,3) combines
    the never-enabled and cohort 4 by GMM and leaves cohort 2 out. Its mean estimate is within 3 Monte
    Carlo SEs of the truth 30, and the mean standard error within 25% of the empirical SD."""
    estimates, errors = [], []
    for draw in range(40):
        frame = md.gen_ddd_scalable(n=400, dgp_type=1, n_periods=5, n_cohorts=3, n_covariates=4,
                                    random_state=500 + draw)["data"].to_pandas()
        table = _ours(frame, control="notyet").att_gt.set_index(["group", "time"])
        estimates.append(table.loc[(3, 3), "estimate"])
        errors.append(table.loc[(3, 3), "std_error"])
    sd = np.std(estimates, ddof=1)
    assert abs(np.mean(estimates) - 30.0) < 3 * sd / np.sqrt(len(estimates))
    assert 0.75 < np.mean(errors) / sd < 1.25


def test_weights_are_frequency_weights(scalable):
    """Integer weights give the ATT(g,t) of the panel with each unit repeated that many times."""
    units = scalable["id"].unique()
    count = pd.Series(1 + (units % 3), index=units)
    weighted = scalable.assign(w=scalable["id"].map(count).astype(float))
    repeated = pd.concat([scalable[scalable["id"].map(count) > k].assign(id=lambda f, k=k: f["id"] + 10_000 * k)
                          for k in range(3)], ignore_index=True)
    ours_w = _ours(weighted, weights="w").att_gt
    ours_r = _ours(repeated).att_gt
    np.testing.assert_allclose(ours_w["estimate"], ours_r["estimate"], rtol=0, atol=1e-8)
    simple_w, simple_r = _ours(weighted, weights="w").att(), _ours(repeated).att()
    assert simple_w["estimate"] == pytest.approx(simple_r["estimate"], abs=1e-8)


def test_clustering_and_bootstrap(scalable):
    """Clustered analytic SEs (Liang-Zeger sums) against moderndid's clustered multiplier-bootstrap SEs
    (cluster means, 999 draws, IQR based) on 40 clusters of 20 units, where the two coincide in
    expectation: within 12%. The sup-t critical value of the ATT(g,t) lies above the pointwise 1.96;
    the event study has its own band; same seed, same band."""
    frame = scalable.assign(cl=scalable["id"] % 40)
    ours = _ours(frame, cluster="cl", bootstrap=True, biters=999, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = _peer(frame, boot=True, biters=999, cluster="cl", random_state=3)
    table = ours.att_gt
    finite = np.isfinite(peer.se)
    np.testing.assert_allclose(table["std_error"][finite], peer.se[finite], rtol=0.12)
    unclustered = _ours(scalable).att_gt["std_error"]
    assert not np.allclose(table["std_error"], unclustered)
    assert 1.96 < ours.critical_value < 3.6
    dynamic = ours.aggregate("dynamic")
    assert dynamic.critical_value is not None and dynamic.band() is not None
    again = _ours(frame, cluster="cl", bootstrap=True, biters=999, seed=3)
    assert again.critical_value == ours.critical_value


def test_contract_views(scalable):
    result = _ours(scalable)
    effect = result.att()
    assert tuple(effect) == ATT_KEYS and effect["conf_low"] < effect["estimate"] < effect["conf_high"]
    events = result.event_study()
    assert tuple(events.columns) == EVENT_STUDY_COLUMNS and (events["event_time"] < 0).any()
    test = result.pretrend()
    assert isinstance(test, WaldTestResult) and test.df >= 1 and 0 <= test.p_value <= 1
    assert "Triple differences" in result.aggregate("dynamic").title
    assert "partition" in " ".join(result.notes())
    import matplotlib

    matplotlib.use("Agg")
    assert isinstance(result.plot(), matplotlib.figure.Figure)
    assert "Staggered triple differences" in result.summary()


def test_two_periods_keep_the_two_period_estimator():
    frame = md.gen_ddd_2periods(n=600, dgp_type=1, random_state=2)["data"].to_pandas()
    frame["cohort"] = np.where(frame["state"] == 1, 2, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ik.did(frame, y="y", unit="id", time="time", cohort="cohort", method="ddd", partition="partition",
                        bootstrap=True, seed=1)
    assert isinstance(result, TripleResult) and result.critical_value is not None
    assert abs(result.critical_value - 1.96) < 0.2
    with pytest.raises(EstimationError, match="two periods"):
        result.event_study()


def test_bad_input(scalable):
    with pytest.raises(InputError, match="partition="):
        ik.did(scalable, y="y", unit="id", time="time", cohort="group", method="ddd")
    with pytest.raises(InputError, match="control must be"):
        _ours(scalable, control="last")
    with pytest.raises(InputError, match="'anticipation'.*method 'ddd'"):
        _ours(scalable, anticipation=1)
    bad = scalable.copy()
    bad["partition"] = np.where(bad["time"] == 1, 1, bad["partition"])
    with pytest.raises(InputError, match="varies within a unit"):
        _ours(bad)
    no_never_ineligible = scalable[~((scalable["group"] == 0) & (scalable["partition"] == 0))]
    with pytest.raises(EstimationError, match="no units in the cell 'not enabled, ineligible'"):
        _ours(no_never_ineligible)


def test_unbalanced_panel_keeps_the_balanced_subpanel(scalable):
    dropped = scalable.drop(index=scalable.index[::97])
    with pytest.warns(ImpactkitWarning, match="balanced sub-panel"):
        result = ik.did(dropped, y="y", unit="id", time="time", cohort="group", method="ddd",
                        partition="partition", covariates=COVS)
    complete = dropped.groupby("id")["time"].transform("size") == dropped["time"].nunique()
    direct = _ours(dropped[complete])
    np.testing.assert_allclose(result.att_gt["estimate"], direct.att_gt["estimate"], rtol=0, atol=1e-12)


def test_not_yet_without_never_enabled_units(scalable):
    """No never-enabled units: as CS (R did), periods from the last cohort on are dropped and that cohort
    becomes the comparison group; the remaining ATT(g,t) are near the DGP's truth (att_base g (t-g+1):
    20, 40 for cohort 2; 30 for cohort 3) within 4 standard errors. control='never' is refused."""
    frame = scalable[scalable["group"] > 0]
    result = _ours(frame, control="notyet")
    table = result.att_gt.set_index(["group", "time"])
    assert set(table.index) == {(2, 2), (2, 3), (3, 2), (3, 3)}
    for cell, truth in {(2, 2): 20.0, (2, 3): 40.0, (3, 3): 30.0, (3, 2): 0.0}.items():
        assert abs(table.loc[cell, "estimate"] - truth) < 4 * table.loc[cell, "std_error"]
    assert any("cohort 4 is the comparison group" in m for m in result.messages)
    with pytest.raises(EstimationError, match="no never-treated units"):
        _ours(frame)
