"""Callaway & Sant'Anna (2021) staggered DiD (impactkit.did.cs) against R, peers and truth.

References used as truth:
- R ``did`` 2.5 on ``mpdta`` (no covariates, never-treated, analytic SEs): published numbers
  below, to 1e-9 (the brief asks 1e-6);
- ``moderndid`` 0.2.0 and ``csdid`` 0.4.3 run on the same data inside the tests: every
  ATT(g,t), standard error and aggregate to 1e-6 (absolute); csdid for sampling weights,
  clustered SEs and unbalanced panels (where moderndid ignores weights in its aggregation or fails);
- the multiplier bootstrap against the analytic influence-function standard errors;
- a seeded simulated staggered panel with known ATT(g,t): each estimate within 4 standard
  errors of the truth.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from impactkit.atomic import dumps_json
from impactkit.did.cs import estimate_cs
from impactkit.did.event_study import plot_event_study, wald_test
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.seeds import rng

TOL = 1e-6          # peer agreement (absolute)
R_TOL = 1e-9        # published R did 2.5 numbers (absolute)
KINDS = ("simple", "dynamic", "group", "calendar")


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    moderndid = pytest.importorskip("moderndid")
    frame = moderndid.load_mpdta().to_pandas()
    units = np.sort(frame["countyreal"].unique())
    draws = rng(7, "test-cs-weights").uniform(0.5, 2.0, size=units.size)
    frame["w"] = frame["countyreal"].map(dict(zip(units, draws)))
    frame["state"] = frame["countyreal"] // 1000
    return frame


def _ours(frame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        return estimate_cs(frame, y="lemp", unit="countyreal", time="year", cohort="first.treat", **kwargs)


def _moderndid(frame, **kwargs):
    import moderndid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = moderndid.att_gt(frame, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                               boot=False, cband=False, **kwargs)
        aggs = {k: moderndid.aggte(fit, type=k, boot=False, cband=False) for k in KINDS}
    return fit, aggs


def _csdid(frame, est="dr", **kwargs):
    from csdid.att_gt import ATTgt

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fit = ATTgt(yname="lemp", tname="year", idname="countyreal", gname="first.treat", data=frame,
                    **kwargs).fit(est_method=est, bstrap=False)
        aggs = {k: dict(fit.aggte(typec=k, bstrap=False).atte) for k in KINDS}
    return fit, aggs


# ----------------------------------------------------------------------------------------
# published R did 2.5 numbers
# ----------------------------------------------------------------------------------------
def test_mpdta_matches_published_r_did(mpdta):
    result = _ours(mpdta)
    simple = result.aggregate("simple")
    dynamic = result.aggregate("dynamic")
    assert simple.estimate == pytest.approx(-0.0399512751551763, abs=R_TOL)
    assert simple.std_error == pytest.approx(0.0120340127701854, abs=R_TOL)
    assert dynamic.estimate == pytest.approx(-0.0772398214573151, abs=R_TOL)
    assert dynamic.std_error == pytest.approx(0.0199649890618494, abs=R_TOL)
    assert list(result.tidy().columns) == ["group", "time", "estimate", "std_error", "conf_low",
                                           "conf_high", "p_value", "n"]
    assert len(result.att_gt) == 12


# ----------------------------------------------------------------------------------------
# moderndid on the same data: every ATT(g,t), SE and aggregate
# ----------------------------------------------------------------------------------------
VARIANTS = {
    "no-covariates": ({}, {}),
    "dr": ({"covariates": ["lpop"], "est": "dr"}, {"xformla": "~lpop", "est_method": "dr"}),
    "ipw": ({"covariates": ["lpop"], "est": "ipw"}, {"xformla": "~lpop", "est_method": "ipw"}),
    "reg": ({"covariates": ["lpop"], "est": "reg"}, {"xformla": "~lpop", "est_method": "reg"}),
    "dr-notyet": ({"covariates": ["lpop"], "control": "notyet"},
                  {"xformla": "~lpop", "control_group": "notyettreated"}),
    "ipw-notyet": ({"covariates": ["lpop"], "est": "ipw", "control": "notyet"},
                   {"xformla": "~lpop", "est_method": "ipw", "control_group": "notyettreated"}),
    "reg-notyet": ({"covariates": ["lpop"], "est": "reg", "control": "notyet"},
                   {"xformla": "~lpop", "est_method": "reg", "control_group": "notyettreated"}),
    "universal-base": ({"covariates": ["lpop"], "base_period": "universal"},
                       {"xformla": "~lpop", "base_period": "universal"}),
    "anticipation-notyet": ({"covariates": ["lpop"], "anticipation": 1, "control": "notyet"},
                            {"xformla": "~lpop", "anticipation": 1, "control_group": "notyettreated"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_att_gt_and_aggregates_match_moderndid(mpdta, variant):
    ours_kwargs, peer_kwargs = VARIANTS[variant]
    result = _ours(mpdta, **ours_kwargs)
    fit, aggs = _moderndid(mpdta, **peer_kwargs)
    table = result.att_gt
    np.testing.assert_allclose(table["group"], fit.groups)
    np.testing.assert_allclose(table["time"], fit.times)
    np.testing.assert_allclose(table["estimate"], fit.att_gt, rtol=0, atol=TOL)
    peer_se = np.nan_to_num(np.asarray(fit.se_gt, dtype=float))   # reference cell: NaN in moderndid, 0 here
    np.testing.assert_allclose(table["std_error"], peer_se, rtol=0, atol=TOL)
    for kind in KINDS:
        ours, peer = result.aggregate(kind), aggs[kind]
        assert ours.estimate == pytest.approx(peer.overall_att, abs=TOL), kind
        assert ours.std_error == pytest.approx(peer.overall_se, abs=TOL), kind
        if kind != "simple":
            np.testing.assert_allclose(ours.rows.iloc[:, 0], peer.event_times, atol=0)
            np.testing.assert_allclose(ours.rows["estimate"], peer.att_by_event, rtol=0, atol=TOL)
            peer_row_se = np.nan_to_num(np.asarray(peer.se_by_event, dtype=float))   # reference event time
            np.testing.assert_allclose(ours.rows["std_error"], peer_row_se, rtol=0, atol=TOL)


def test_pretrend_wald_matches_moderndid(mpdta):
    result = _ours(mpdta)
    fit, _ = _moderndid(mpdta)
    test = result.pretrend_test()
    assert test.statistic == pytest.approx(fit.wald_stat, abs=TOL)
    assert test.df == 5
    assert test.p_value == pytest.approx(fit.wald_pvalue, abs=1e-4)   # moderndid rounds its p-value
    assert test.tidy()["statistic"].iloc[0] == test.statistic


# ----------------------------------------------------------------------------------------
# csdid: sampling weights (moderndid's aggte ignores them) and clustered analytic SEs
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("est", ["dr", "ipw", "reg"])
def test_sampling_weights_match_csdid(mpdta, est):
    result = _ours(mpdta, covariates=["lpop"], est=est, weights="w")
    fit, aggs = _csdid(mpdta, est=est, control_group="nevertreated", xformla="lemp~lpop", weights_name="w")
    np.testing.assert_allclose(result.att_gt["estimate"], np.asarray(fit.results["att"], float), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.att_gt["std_error"], np.asarray(fit.results["se"], float), rtol=0, atol=TOL)
    for kind in KINDS:
        ours, peer = result.aggregate(kind), aggs[kind]
        assert ours.estimate == pytest.approx(peer["overall_att"], abs=TOL), kind
        assert ours.std_error == pytest.approx(peer["overall_se"], abs=TOL), kind
        if kind != "simple":
            np.testing.assert_allclose(ours.rows["estimate"], np.asarray(peer["att_egt"], float), rtol=0, atol=TOL)
            np.testing.assert_allclose(ours.rows["std_error"], np.asarray(peer["se_egt"], float), rtol=0, atol=TOL)


def test_clustered_analytic_se_and_wald_match_csdid(mpdta):
    result = _ours(mpdta, covariates=["lpop"], cluster="state")
    fit, aggs = _csdid(mpdta, control_group="nevertreated", xformla="lemp~lpop", clustervar="state")
    np.testing.assert_allclose(result.att_gt["estimate"], np.asarray(fit.results["att"], float), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.att_gt["std_error"], np.asarray(fit.results["se"], float), rtol=0, atol=TOL)
    unclustered = _ours(mpdta, covariates=["lpop"])
    assert not np.allclose(result.att_gt["std_error"], unclustered.att_gt["std_error"])
    as_list = _ours(mpdta, covariates=["lpop"], cluster=["state"])        # front door may pass a list
    assert as_list.att_gt["std_error"].tolist() == result.att_gt["std_error"].tolist()
    with pytest.raises(InputError, match="clusters on one column"):
        _ours(mpdta, cluster=["state", "countyreal"])
    assert result.pretrend_test().statistic == pytest.approx(fit.MP["W"], abs=TOL)


# ----------------------------------------------------------------------------------------
# unbalanced panels: repeated-cross-section estimators clustered by unit (R allow_unbalanced_panel)
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def unbalanced(mpdta) -> pd.DataFrame:
    drop = rng(3, "test-cs-unbalanced").random(len(mpdta)) < 0.08
    return mpdta.loc[~drop].reset_index(drop=True)


@pytest.mark.parametrize("control", ["never", "notyet"])
@pytest.mark.parametrize("est", ["dr", "ipw", "reg"])
def test_unbalanced_panel_matches_csdid(unbalanced, est, control):
    """csdid 0.4.3 with allow_unbalanced_panel=True (moderndid 0.2.0's unbalanced path fails, and
    its drdid_rc adds the base-period regression effect that R subtracts)."""
    with pytest.warns(ImpactkitWarning, match="Unbalanced panel"):
        result = estimate_cs(unbalanced, y="lemp", unit="countyreal", time="year", cohort="first.treat",
                             covariates=["lpop"], est=est, control=control, allow_unbalanced=True)
    fit, aggs = _csdid(unbalanced, est=est, xformla="lemp~lpop", allow_unbalanced_panel=True,
                       control_group="nevertreated" if control == "never" else "notyettreated")
    np.testing.assert_allclose(result.att_gt["estimate"], np.asarray(fit.results["att"], float), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.att_gt["std_error"], np.asarray(fit.results["se"], float), rtol=0, atol=TOL)
    for kind in KINDS:
        ours, peer = result.aggregate(kind), aggs[kind]
        assert ours.estimate == pytest.approx(peer["overall_att"], abs=TOL), kind
        assert ours.std_error == pytest.approx(peer["overall_se"], abs=TOL), kind


@pytest.fixture(scope="module")
def mpdta_10pct_dropped(mpdta) -> pd.DataFrame:
    drop = rng(0, "test-cs-balance").random(len(mpdta)) < 0.10
    return mpdta.loc[~drop].reset_index(drop=True)


@pytest.mark.parametrize("covariates", [None, ["lpop"]])
def test_unbalanced_panel_defaults_to_balanced_subpanel_as_r_did(mpdta_10pct_dropped, covariates):
    """Defect 1 of issue 16: R did / moderndid keep the balanced sub-panel by default
    (allow_unbalanced_panel = FALSE). mpdta with 10% of rows dropped: every ATT(g,t), SE and
    aggregate equals moderndid 0.2.0 on the same data to 1e-6; the warning says how many units went."""
    frame = mpdta_10pct_dropped
    n_units = frame["countyreal"].nunique()
    n_full = int((frame.groupby("countyreal")["year"].size() == 5).sum())
    with pytest.warns(ImpactkitWarning, match=f"{n_units - n_full} of {n_units} unit\\(s\\) of 'countyreal'"):
        result = estimate_cs(frame, y="lemp", unit="countyreal", time="year", cohort="first.treat",
                             covariates=covariates)
    assert result.n_units == n_full
    fit, aggs = _moderndid(frame, **({"xformla": "~lpop"} if covariates else {}))
    np.testing.assert_allclose(result.att_gt["estimate"], np.asarray(fit.att_gt), rtol=0, atol=TOL)
    np.testing.assert_allclose(result.att_gt["std_error"], np.asarray(fit.se_gt), rtol=0, atol=TOL)
    for kind in KINDS:
        assert result.aggregate(kind).estimate == pytest.approx(aggs[kind].overall_att, abs=TOL), kind
        assert result.aggregate(kind).std_error == pytest.approx(aggs[kind].overall_se, abs=TOL), kind
    if covariates is None:   # moderndid 0.2.0 on this draw: ATT -0.047581 (SE 0.014856); the old
        simple = result.aggregate("simple")   # silent switch to the RC estimator gave -0.1034 (SE 0.0626)
        assert (simple.estimate, simple.std_error) == pytest.approx((-0.047581, 0.014856), abs=1e-6)


# ----------------------------------------------------------------------------------------
# simulated staggered panel with known ATT(g,t)
# ----------------------------------------------------------------------------------------
def simulate_staggered(n_units: int, seed: int, periods=(1, 2, 3, 4, 5, 6), cohorts=(0, 3, 4, 5),
                       never_share: float = 1.0) -> tuple[pd.DataFrame, dict]:
    """Cohorts chosen by a multinomial logit in x; x also shifts trends (conditional parallel trends).

    True ATT(g,t) = 1 + 0.5 (t - g) + 0.25 (g - 3) for t >= g, 0 before.
    """
    gen = rng(seed, "test-cs-dgp")
    x = gen.normal(size=n_units)
    slopes = (0.9, -0.9, 0.6, -0.6)
    index = np.column_stack([np.full(n_units, np.log(never_share))] + [0.2 * k + slopes[k - 1] * x
                                                                       for k in range(1, len(cohorts))])
    probs = np.exp(index) / np.exp(index).sum(axis=1, keepdims=True)
    cohort = np.asarray(cohorts, float)[(gen.random(n_units)[:, None] > probs.cumsum(axis=1)).sum(axis=1)]
    fixed = 0.5 * x + gen.normal(size=n_units)
    frame = []
    truth = {}
    for t in periods:
        effect = np.where((cohort > 0) & (t >= cohort), 1 + 0.5 * (t - cohort) + 0.25 * (cohort - 3), 0.0)
        y = fixed + 0.3 * t + 0.5 * t * x + effect + gen.normal(size=n_units)
        frame.append(pd.DataFrame({"id": np.arange(n_units), "t": t, "y": y, "x": x, "g": cohort}))
        for g in cohorts[1:]:
            truth[(float(g), float(t))] = (1 + 0.5 * (t - g) + 0.25 * (g - 3)) if t >= g else 0.0
    return pd.concat(frame, ignore_index=True), truth


@pytest.mark.parametrize("control", ["never", "notyet"])
@pytest.mark.parametrize("est", ["dr", "ipw", "reg"])
def test_simulated_panel_recovers_true_att_gt(control, est):
    frame, truth = simulate_staggered(4000, seed=11)
    result = estimate_cs(frame, y="y", unit="id", time="t", cohort="g", covariates=["x"], est=est,
                         control=control)
    table = result.att_gt
    expected = np.array([truth[(g, t)] for g, t in zip(table["group"], table["time"])])
    z = np.abs(table["estimate"].to_numpy() - expected) / table["std_error"].to_numpy()
    assert np.all(z < 4.0), table.assign(truth=expected, z=z)
    # without the covariate, parallel trends fail (x drives trends and cohorts): bias is visible
    naive = estimate_cs(frame, y="y", unit="id", time="t", cohort="g", control=control)
    naive_z = np.abs(naive.att_gt["estimate"].to_numpy() - expected) / naive.att_gt["std_error"].to_numpy()
    assert naive_z.max() > 4.0


def test_simulated_pretrend_and_dynamic_truth():
    frame, truth = simulate_staggered(4000, seed=12)
    result = estimate_cs(frame, y="y", unit="id", time="t", cohort="g", covariates=["x"])
    assert result.pretrend_test().p_value > 0.01
    dynamic = result.aggregate("dynamic")
    true_e = {e: 1 + 0.5 * e for e in range(0, 4)}   # + cohort-mix term, bounded by 0.25 * 2
    for e, est, se in zip(dynamic.rows["event_time"], dynamic.rows["estimate"], dynamic.rows["std_error"]):
        if e >= 0:
            assert true_e[e] - 4 * se <= est <= true_e[e] + 0.5 + 4 * se
    naive = estimate_cs(frame, y="y", unit="id", time="t", cohort="g")
    assert naive.pretrend_test().p_value < 1e-6


# ----------------------------------------------------------------------------------------
# bootstrap, plot, serialisation, determinism
# ----------------------------------------------------------------------------------------
def test_multiplier_band_is_seeded_and_wider_than_pointwise(mpdta):
    first = _ours(mpdta, bootstrap=True, biters=499, seed=5)
    again = _ours(mpdta, bootstrap=True, biters=499, seed=5)
    other = _ours(mpdta, bootstrap=True, biters=499, seed=6)
    assert first.critical_value == again.critical_value
    assert first.critical_value != other.critical_value
    k = len(first.att_gt)
    # sup-t critical value lies between the pointwise and the Bonferroni normal quantiles
    from scipy.stats import norm

    assert norm.ppf(0.975) < first.critical_value < norm.ppf(1 - 0.025 / k) + 0.1
    band = first.band()
    assert np.all(band["band_low"] < first.att_gt["conf_low"])
    dynamic = first.aggregate("dynamic")
    assert dynamic.critical_value is not None and dynamic.critical_value > norm.ppf(0.975)
    assert dumps_json(first.to_dict()) == dumps_json(again.to_dict())


def test_plot_and_serialisation(mpdta):
    import matplotlib

    matplotlib.use("Agg")
    result = _ours(mpdta, bootstrap=True, biters=199, seed=1)
    fig = result.plot()
    assert fig.axes and "uniform confidence band" in fig._impactkit_alt_text
    assert "event time -3 to 3" in fig._impactkit_alt_text
    group_fig = result.aggregate("group").plot()
    assert "group 2004 to 2007" in group_fig._impactkit_alt_text
    plain = json.loads(dumps_json(result.to_dict()))
    assert len(plain["table"]) == 12 and plain["critical_value"] > 1.96
    assert "Callaway-Sant'Anna" in result.summary()
    tidy = result.aggregate("dynamic").tidy()
    assert tidy["term"].iloc[0] == "overall" and np.isnan(tidy["event_time"].iloc[0])
    fig2 = plot_event_study(tidy, title="Reused by Sun-Abraham")
    assert fig2._impactkit_alt_text.startswith("Reused by Sun-Abraham: 7 estimates")
    with pytest.raises(InputError, match="event_time"):
        plot_event_study(pd.DataFrame({"estimate": [1.0]}))


def test_wald_test_handles_singular_covariance():
    inf = rng(2, "test-cs-wald").normal(size=(200, 2))
    inf = np.column_stack([inf, inf[:, 0] + inf[:, 1]])      # rank 2
    test = wald_test(np.array([0.1, 0.2, 0.3]), inf, 200)
    assert test.df == 2 and test.n_restrictions == 3
    full = wald_test(np.array([0.1, 0.2]), inf[:, :2], 200)
    # the third estimate is the sum of the first two, so it adds no information
    assert test.statistic == pytest.approx(full.statistic, rel=1e-8)


# ----------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------
def _small(seed=1, n=60):
    frame, _ = simulate_staggered(n, seed=seed, periods=(1, 2, 3, 4), cohorts=(0, 3, 4))
    return frame


def _fit(frame, **kwargs):
    args = {"y": "y", "unit": "id", "time": "t", "cohort": "g"} | kwargs
    return estimate_cs(frame, **args)


def test_error_missing_column_and_bad_options():
    frame = _small()
    with pytest.raises(InputError, match=r"\['nope'\] not found"):
        _fit(frame, covariates=["nope"])
    with pytest.raises(InputError, match="est must be"):
        _fit(frame, est="ols")
    with pytest.raises(InputError, match="control must be"):
        _fit(frame, control="all")
    with pytest.raises(InputError, match="base_period"):
        _fit(frame, base_period="fixed")
    with pytest.raises(InputError, match="anticipation"):
        _fit(frame, anticipation=-1)
    with pytest.raises(InputError, match="numeric"):
        _fit(frame.assign(y=frame["y"].astype(str)))


def test_error_duplicate_rows_and_cohort_changing_within_unit():
    frame = _small()
    with pytest.raises(InputError, match=r"duplicated \(id, t\)"):
        _fit(pd.concat([frame, frame.iloc[[0]]], ignore_index=True))
    reversed_ = frame.copy()
    reversed_.loc[(reversed_["id"] == 5) & (reversed_["t"] == 4), "g"] = 99
    with pytest.raises(InputError, match="'g' varies within unit for 1 unit.*no treatment reversal"):
        _fit(reversed_)
    weighted = frame.assign(w=1.0)
    weighted.loc[weighted.index[0], "w"] = 2.0
    with pytest.raises(InputError, match="'w' varies within unit"):
        _fit(weighted, weights="w")


def test_error_no_never_treated_and_no_controls():
    frame = _small()
    treated_only = frame[frame["g"] > 0]
    with pytest.raises(EstimationError, match="no never-treated units.*control='notyet'"):
        _fit(treated_only)
    # with not-yet-treated controls it works: cohort 4 (the last) becomes the comparison group
    result = _fit(treated_only, control="notyet")
    assert set(result.att_gt["group"]) == {3.0} and result.att_gt["time"].max() == 3.0
    one_cohort = frame[frame["g"] == 3]
    with pytest.raises(EstimationError, match="no never-treated units and no not-yet-treated controls"):
        _fit(one_cohort, control="notyet")


def test_error_no_control_for_a_cell_names_group_and_time():
    frame = _small()
    # never-treated units observed only in period 1-2: cells at t = 3, 4 have no controls
    frame = frame[~((frame["g"] == 0) & (frame["t"] >= 3))]
    with pytest.raises(EstimationError, match="no never-treated control units for group 3, time 3"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImpactkitWarning)
            _fit(frame, allow_unbalanced=True)


def test_warning_single_unit_cohort_and_early_cohort():
    frame = _small()
    lone = frame["id"] == frame.loc[frame["g"] == 0, "id"].iloc[0]
    frame.loc[lone, "g"] = 2
    with pytest.warns(ImpactkitWarning, match="cohort\\(s\\) 2 have a single unit"):
        result = _fit(frame)
    assert 2.0 in set(result.att_gt["group"])
    early = _small()
    early.loc[early["g"] == 3, "g"] = 1
    with pytest.warns(ImpactkitWarning, match="cohort\\(s\\) 1 have no pre-treatment period"):
        result = _fit(early)
    assert set(result.att_gt["group"]) == {4.0}


def test_error_collinear_covariates_named():
    frame = _small().assign(x2=lambda f: 2.0 * f["x"] + 1.0, const=3.0)
    with pytest.raises(InputError, match=r"\['x2'\] are collinear"):
        _fit(frame, covariates=["x", "x2"])
    with pytest.raises(InputError, match=r"\['const'\] are collinear"):
        _fit(frame, covariates=["const", "x"])


def test_error_outcome_missing_in_a_whole_period():
    frame = _small()
    frame.loc[frame["t"] == 2, "y"] = np.nan
    with pytest.raises(InputError, match="outcome 'y' is missing for every unit in t 2"):
        _fit(frame)


def test_error_aggregate_kind_and_pretrend_without_pre_periods():
    result = _fit(_small())
    with pytest.raises(InputError, match="aggregation kind"):
        result.aggregate("cohort")
    two_periods = _small()
    two_periods = two_periods[two_periods["t"].isin([2, 3]) & two_periods["g"].isin([0, 3])]
    with pytest.raises(EstimationError, match="no pre-treatment ATT"):
        _fit(two_periods).pretrend_test()


def test_error_covariate_collinear_within_a_cell_named():
    frame = _small(n=200)
    frame["x2"] = np.where(frame["g"] == 3, frame["x"], 0.0)   # constant among never-treated / cohort 4
    with pytest.raises(EstimationError, match=r"outcome regression for group 3, time 2 .*collinear \['x2'\]"):
        _fit(frame, covariates=["x", "x2"], est="reg")
    with pytest.raises(EstimationError, match=r"propensity score for group 4, time 2 .*collinear \['x2'\]"):
        _fit(frame, covariates=["x", "x2"], est="ipw")


@pytest.mark.parametrize("kind", ["mammen", "rademacher"])
@pytest.mark.parametrize("clustered", [False, True])
def test_multiplier_bootstrap_reproduces_analytic_se(kind, clustered):
    """Bootstrap SD of the draws vs the analytic IF standard error: within 6% at 4000 draws
    (Monte Carlo relative error of an SD estimate is about 1/sqrt(2 * 4000) = 1.1%)."""
    from impactkit.did.multiplier import bootstrap_se, influence_se, multiplier_draws

    gen = rng(4, "test-cs-multiplier")
    n = 600
    inf = gen.normal(size=(n, 3)) * np.array([1.0, 2.0, 0.5]) + gen.normal(size=(n, 1))
    codes = np.repeat(np.arange(60), 10) if clustered else None
    if clustered:
        inf = inf + np.repeat(gen.normal(size=(60, 3)), 10, axis=0)   # within-cluster correlation
    draws = multiplier_draws(inf, n, cluster_codes=codes, biters=4000, seed=9, weights=kind)
    analytic = influence_se(inf, n, codes)
    np.testing.assert_allclose(draws.std(axis=0), analytic, rtol=0.06)
    np.testing.assert_allclose(bootstrap_se(draws), analytic, rtol=0.10)
    again = multiplier_draws(inf, n, cluster_codes=codes, biters=4000, seed=9, weights=kind)
    assert np.array_equal(draws, again)
    with pytest.raises(InputError, match="multiplier weights"):
        multiplier_draws(inf, n, biters=10, weights="normal")


def test_simulated_unbalanced_panel_recovers_truth_and_skips_unobserved_cells():
    frame, truth = simulate_staggered(4000, seed=13)
    keep = rng(13, "test-cs-attrition").random(len(frame)) > 0.2          # 20% of rows missing at random
    with pytest.warns(ImpactkitWarning, match="Unbalanced panel"):
        result = estimate_cs(frame[keep], y="y", unit="id", time="t", cohort="g", covariates=["x"],
                             allow_unbalanced=True)
    table = result.att_gt
    expected = np.array([truth[(g, t)] for g, t in zip(table["group"], table["time"])])
    z = np.abs(table["estimate"].to_numpy() - expected) / table["std_error"].to_numpy()
    assert np.all(z < 4.0), table.assign(truth=expected, z=z)
    gone = frame[~((frame["g"] == 5) & (frame["t"] == 6))]                  # cohort 5 never seen in period 6
    with pytest.warns(ImpactkitWarning) as record:
        result = estimate_cs(gone, y="y", unit="id", time="t", cohort="g", covariates=["x"],
                             allow_unbalanced=True)
    assert any("ATT(group 5, time 6) skipped" in str(w.message) for w in record)
    assert len(result.att_gt) == len(table) - 1
