"""de Chaisemartin & D'Haultfoeuille (2024) (impactkit.did.dcdh) against moderndid 0.2.0
``did_multiplegt`` on the same data (Favara & Imbs 2015 bank deregulation panel shipped with
moderndid: a non-binary treatment, 0-4, that switches at different dates, 1,045 counties x 12
years, 5 counties with missing years), and against simulations with known truth.

Tolerances: estimates 1e-10 absolute; switcher counts exact; effect standard errors 1e-10
relative; placebo standard errors 1e-6 relative against moderndid as shipped and 1e-10 once its
departures from R's DIDmultiplegtDYN are mended. moderndid 0.2.0 departs from R in three places,
each shown by a test that mends exactly that expression of moderndid's source (test-only
monkeypatch) and sees the gap close:

1. cell sizes with ``cluster``: polars ``n_unique`` counts the null given to non-members of a
   control / union cell as one more cluster (R's helper subtracts it);
2. panel balancing leaves the cluster of added rows null, and a unit whose first-period row was
   added is left out of the clustered sum (R fills the cluster within the unit);
3. control / union cell sizes count rows whose outcome is missing at the horizon's end (weight 0;
   R requires a non-zero weight) - placebo SEs only, by about 3e-7.

Further departures, documented here: ``trends_lin`` sums per-horizon effects estimated on
different switchers (R computes all ``1..ell`` on the switchers reaching ``ell``), and
``same_switchers_pl`` replaces the effects' switcher set by the placebos' one.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

import impactkit as ik
from impactkit.errors import InputError

EST_TOL = 1e-10
SE_REL = 1e-10
PLACEBO_SE_REL = 1e-6
ARGS = dict(yname="Dl_vloans_b", idname="county", tname="year", dname="inter_bra")


@pytest.fixture(scope="module")
def favara():
    md = pytest.importorskip("moderndid")
    return md.load_favara_imbs().to_pandas()


def _peer(frame, effects=3, placebo=2, **kwargs):
    import moderndid as md

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.did_multiplegt(frame, **ARGS, effects=effects, placebo=placebo, **kwargs)


def _ours(frame, effects=3, placebo=2, **kwargs):
    return ik.did(frame, y="Dl_vloans_b", unit="county", time="year", treated="inter_bra", method="dcdh",
                  effects=effects, placebo=placebo, **kwargs).event_study().set_index("event_time")


def _rows(peer):
    for res in (peer.effects, peer.placebos):
        if res is not None:
            yield from zip(res.horizons.astype(int), res.estimates, res.std_errors, res.n_switchers)


def _assert_match(ours, peer, placebo_se_rel=SE_REL, se_rel=SE_REL):
    for h, est, se, n in _rows(peer):
        assert ours.loc[h, "estimate"] == pytest.approx(est, abs=EST_TOL), h
        assert ours.loc[h, "std_error"] == pytest.approx(se, rel=placebo_se_rel if h < 0 else se_rel), h
        assert ours.loc[h, "n"] == n, h


def _max_se_gap(ours, peer):
    return max(abs(ours.loc[h, "std_error"] / se - 1) for h, _, se, _ in _rows(peer))


# --- test-only mends of moderndid 0.2.0 (each a one-expression change towards R) -----------------

def _rewrite(monkeypatch, name, old, new):
    import moderndid.didinter.compute_did_multiplegt as compute
    import moderndid.didinter.variance as variance

    current = getattr(variance, name)
    source = getattr(current, "patched_source", None) or inspect.getsource(current)
    assert old in source, f"moderndid changed: {name} no longer contains {old!r}"
    space: dict = {}
    exec(source.replace(old, new), variance.__dict__, space)  # noqa: S102 - test-only patch of the peer
    space[name].patched_source = source.replace(old, new)
    monkeypatch.setattr(variance, name, space[name])
    monkeypatch.setattr(compute, name, space[name])


def mend_null_counted_as_cluster(monkeypatch):
    for name in ("compute_cohort_dof", "compute_control_dof", "compute_union_dof"):
        _rewrite(monkeypatch, name, ".n_unique().over(group_vars)", ".drop_nulls().n_unique().over(group_vars)")


def mend_zero_weight_members(monkeypatch):
    _rewrite(monkeypatch, "compute_control_dof", "is_control = pl.col(never_col) == 1.0",
             'is_control = (pl.col(never_col) == 1.0) & (pl.col("weight_gt") > 0)')
    _rewrite(monkeypatch, "compute_union_dof", "is_union = (pl.col(switcher_flag) == 1) | (pl.col(never_col) == 1.0)",
             'is_union = (pl.col(switcher_flag) == 1) | ((pl.col(never_col) == 1.0) & (pl.col("weight_gt") > 0))')


def mend_cluster_of_added_rows(monkeypatch):
    import polars as pl
    from moderndid.core.preprocess import transformers

    original = transformers.DIDInterPanelBalancer.transform

    def transform(self, data, config):
        out = original(self, data, config)
        if config.cluster:
            fill = pl.col(config.cluster).fill_null(strategy="forward").fill_null(strategy="backward")
            out = out.sort([config.gname, config.tname]).with_columns(fill.over(config.gname))
        return out

    monkeypatch.setattr(transformers.DIDInterPanelBalancer, "transform", transform)


# --- unclustered ---------------------------------------------------------------------------------

def test_effects_and_placebos_match_moderndid(favara):
    _assert_match(_ours(favara), _peer(favara), placebo_se_rel=PLACEBO_SE_REL)


def test_placebo_se_gap_is_moderndid_counting_zero_weight_rows(favara, monkeypatch):
    ours = _ours(favara)
    assert _max_se_gap(ours, _peer(favara)) > 1e-8
    mend_zero_weight_members(monkeypatch)
    _assert_match(ours, _peer(favara))


# --- clustered -----------------------------------------------------------------------------------

def test_clustered_ses_match_moderndid_once_its_departures_are_mended(favara, monkeypatch):
    ours = _ours(favara, cluster="state_n")
    assert _max_se_gap(ours, _peer(favara, cluster="state_n")) > 0.05   # as shipped: up to 8% apart
    for mend in (mend_null_counted_as_cluster, mend_zero_weight_members, mend_cluster_of_added_rows):
        mend(monkeypatch)
    _assert_match(ours, _peer(favara, cluster="state_n"))


def test_null_counted_as_cluster_alone_on_a_balanced_panel(favara, monkeypatch):
    # no missing unit-period: moderndid's balancing adds no row, so only the cluster count differs
    sizes = favara.groupby("county")["year"].transform("size")
    balanced = favara[sizes == favara["year"].nunique()]
    ours = _ours(balanced, cluster="state_n")
    mend_zero_weight_members(monkeypatch)
    assert _max_se_gap(ours, _peer(balanced, cluster="state_n")) > 0.05
    mend_null_counted_as_cluster(monkeypatch)
    _assert_match(ours, _peer(balanced, cluster="state_n"))


def test_units_missing_in_the_first_period_leave_moderndids_clustered_sum(favara, monkeypatch):
    ours = _ours(favara, cluster="state_n")
    mend_null_counted_as_cluster(monkeypatch)
    mend_zero_weight_members(monkeypatch)
    assert _max_se_gap(ours, _peer(favara, cluster="state_n")) > 1e-3
    mend_cluster_of_added_rows(monkeypatch)
    _assert_match(ours, _peer(favara, cluster="state_n"))


def test_cluster_must_contain_each_unit(favara):
    frame = favara.copy()
    frame.loc[frame.index[:3], "state_n"] = 999
    with pytest.raises(InputError, match="varies within"):
        _ours(frame, cluster="state_n")


# --- options -------------------------------------------------------------------------------------

def test_normalized_with_weights_matches_moderndid(favara, monkeypatch):
    mend_zero_weight_members(monkeypatch)
    _assert_match(_ours(favara, normalized=True, weights="w1"), _peer(favara, normalized=True, weightsname="w1"))


def test_trends_nonparam_matches_moderndid(favara, monkeypatch):
    frame = favara.assign(region=(favara["state_n"] % 3).astype(float))
    mend_zero_weight_members(monkeypatch)
    _assert_match(_ours(frame, trends_nonparam=["region"]), _peer(frame, trends_nonparam=["region"]))


def test_same_switchers_matches_moderndid(favara, monkeypatch):
    # 905 switchers reach effect 5, 850 reach effect 6: the option keeps the 850 at every horizon
    mend_zero_weight_members(monkeypatch)
    ours = _ours(favara, effects=6, same_switchers=True)
    _assert_match(ours, _peer(favara, effects=6, same_switchers=True))
    assert set(ours.loc[[1, 2, 3, 4, 5, 6], "n"]) == {850}


def test_trends_lin_matches_moderndid_where_every_switcher_reaches_every_horizon(favara, monkeypatch):
    mend_zero_weight_members(monkeypatch)
    _assert_match(_ours(favara, effects=5, placebo=1, trends_lin=True),
                  _peer(favara, effects=5, placebo=1, trends_lin=True))


def test_trends_lin_departure_moderndid_sums_effects_of_different_switchers(favara):
    # effect 6 with linear trends = sum of first-difference effects 1..6 on the switchers reaching 6
    # (R); moderndid sums effects 1..5 over the 896 switchers and effect 6 over 850
    ours = _ours(favara, effects=6, placebo=0, trends_lin=True)
    peer = _peer(favara, effects=6, placebo=0, trends_lin=True)
    assert ours.loc[5, "estimate"] == pytest.approx(peer.effects.estimates[4], abs=EST_TOL)
    assert abs(ours.loc[6, "estimate"] - peer.effects.estimates[5]) > 1e-3
    first = favara.sort_values(["county", "year"]).copy()
    first["dy"] = first.groupby("county")["Dl_vloans_b"].diff()
    starts = first[first["year"] > first["year"].min()]
    switch_at_2 = first.groupby("county")["inter_bra"].apply(lambda d: d.iloc[1] != d.iloc[0] if len(d) > 1 else False)
    starts = starts[~starts["county"].map(switch_at_2)]
    fd_same = ik.did(starts, y="dy", unit="county", time="year", treated="inter_bra", method="dcdh", effects=6,
                     same_switchers=True).event_study().set_index("event_time")
    fd_all = ik.did(starts, y="dy", unit="county", time="year", treated="inter_bra", method="dcdh",
                    effects=6).event_study().set_index("event_time")
    assert ours.loc[6, "estimate"] == pytest.approx(fd_same["estimate"].sum(), abs=1e-10)
    assert peer.effects.estimates[5] == pytest.approx(fd_all["estimate"].sum(), abs=1e-10)


def test_same_switchers_pl_restricts_placebos_not_effects(favara):
    both = _ours(favara, effects=3, placebo=2, same_switchers=True, same_switchers_pl=True)
    effects_only = _ours(favara, effects=3, placebo=2, same_switchers=True)
    np.testing.assert_allclose(both.loc[[1, 2, 3], "estimate"], effects_only.loc[[1, 2, 3], "estimate"], atol=0)
    assert both.loc[-1, "n"] == both.loc[-2, "n"] < effects_only.loc[-1, "n"]


# --- switchers in and out, and simulations with known truth -----------------------------------------

def _on_off(seed: int, n_groups: int = 600, periods: int = 6, effect: float = 2.0, trend: float = 0.0):
    gen = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        base = float(g % 2)
        first = gen.integers(3, periods) if gen.random() < 0.6 else 99
        level = gen.normal()
        slope = trend if first < 99 and base == 0 else 0.0        # switchers in trend upwards
        for t in range(1, periods + 1):
            d = base if t < first else 1.0 - base
            rows.append((g, t, d, level + 0.3 * t + slope * t + effect * d + gen.normal(), g % 30))
    return pd.DataFrame(rows, columns=["g", "t", "d", "y", "c"])


def test_switchers_out_enter_with_a_minus_sign_as_did_multiplegt_dyn(monkeypatch):
    """Binary on/off design: baseline-0 units switch in, baseline-1 units switch out (no shared
    controls), so moderndid run on each kind gives R's two parts; impactkit pools them as R does,
    ``(N_in DID_in - N_out DID_out) / N``, and estimates the dose effect 2 (moderndid pooled ~0)."""
    mend_zero_weight_members(monkeypatch)
    frame = _on_off(3)
    ours = ik.did(frame, y="y", unit="g", time="t", treated="d", method="dcdh", effects=2, placebo=1).event_study()
    ours = ours.set_index("event_time")
    import moderndid as md

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = {k: md.did_multiplegt(frame, yname="y", idname="g", tname="t", dname="d", effects=2, placebo=1,
                                      switchers=k) for k in ("in", "out")}
    for i, h in enumerate((1, 2)):
        n_in, n_out = parts["in"].effects.n_switchers[i], parts["out"].effects.n_switchers[i]
        est = (n_in * parts["in"].effects.estimates[i] - n_out * parts["out"].effects.estimates[i]) / (n_in + n_out)
        se = np.hypot(n_in * parts["in"].effects.std_errors[i],
                      n_out * parts["out"].effects.std_errors[i]) / (n_in + n_out)
        assert ours.loc[h, "estimate"] == pytest.approx(est, abs=EST_TOL)
        assert ours.loc[h, "std_error"] == pytest.approx(se, rel=SE_REL)
        assert abs(ours.loc[h, "estimate"] - 2.0) < 4 * ours.loc[h, "std_error"]
    only_in = ik.did(frame, y="y", unit="g", time="t", treated="d", method="dcdh", effects=2, switchers="in")
    assert only_in.event_study()["estimate"].to_numpy() == pytest.approx(parts["in"].effects.estimates, abs=EST_TOL)


@pytest.mark.slow
def test_trends_lin_recovers_the_effect_under_group_specific_trends():
    """Switchers in trend upwards (0.4 a period), which biases the plain estimator;
    the linear-trends estimator is unbiased (mean over 20 draws within 3 Monte Carlo SEs of 2)."""
    plain, lin = [], []
    for seed in range(20):
        frame = _on_off(seed, n_groups=300, periods=7, trend=0.4)
        kw = dict(y="y", unit="g", time="t", treated="d", method="dcdh", effects=2)
        plain.append(ik.did(frame, **kw).event_study()["estimate"].iloc[1])
        lin.append(ik.did(frame, trends_lin=True, **kw).event_study()["estimate"].iloc[1])
    lin = np.asarray(lin)
    assert abs(lin.mean() - 2.0) < 3 * lin.std(ddof=1) / np.sqrt(lin.size)
    assert np.mean(plain) - 2.0 > 0.2                     # plain: about +0.37


def test_normalized_divides_by_the_cumulative_dose():
    # dose 2 from the switch on: the normalised effect is DID_ell over the cumulative dose 2 ell
    gen = np.random.default_rng(7)
    rows = []
    for g in range(400):
        first = 4 if g < 200 else 99
        for t in range(1, 7):
            d = 2.0 if t >= first else 0.0
            rows.append((g, t, d, 1.5 * d + 0.2 * t + gen.normal(scale=0.1)))
    frame = pd.DataFrame(rows, columns=["g", "t", "d", "y"])
    kw = dict(y="y", unit="g", time="t", treated="d", method="dcdh", effects=3)
    raw = ik.did(frame, **kw).event_study().set_index("event_time")
    norm = ik.did(frame, normalized=True, **kw).event_study().set_index("event_time")
    for ell in (1, 2, 3):
        assert norm.loc[ell, "estimate"] == pytest.approx(raw.loc[ell, "estimate"] / (2.0 * ell), rel=1e-12)
        assert norm.loc[ell, "std_error"] == pytest.approx(raw.loc[ell, "std_error"] / (2.0 * ell), rel=1e-12)
    assert raw.loc[1, "estimate"] == pytest.approx(3.0, abs=0.1)


# --- contract and bad input ----------------------------------------------------------------------

def test_clustered_estimates_and_contract(favara):
    result = ik.did(favara, y="Dl_vloans_b", unit="county", time="year", treated="inter_bra", method="dcdh",
                    effects=3, placebo=2, cluster="state_n")
    peer = _peer(favara)
    es = result.event_study().set_index("event_time")
    np.testing.assert_allclose(es.loc[[1, 2, 3], "estimate"], peer.effects.estimates, atol=EST_TOL)
    att = result.att()
    assert att["estimate"] == pytest.approx(float(np.mean(peer.effects.estimates)), abs=EST_TOL)
    assert result.pretrend().df == 2


def test_absorbing_binary_treatment_equals_a_did_by_hand():
    # two periods, one switcher group and never switchers: DID_1 is the 2x2 difference in differences
    rows = []
    gen = np.random.default_rng(0)
    for unit in range(40):
        switch = unit < 15
        for t in (1, 2, 3):
            d = 1.0 if switch and t >= 3 else 0.0
            rows.append((unit, t, d, gen.normal() + 0.5 * t + 2.0 * d))
    frame = pd.DataFrame(rows, columns=["u", "t", "d", "y"])
    result = ik.did(frame, y="y", unit="u", time="t", treated="d", method="dcdh")
    change = frame[frame.t == 3].set_index("u")["y"] - frame[frame.t == 2].set_index("u")["y"]
    by_hand = change[change.index < 15].mean() - change[change.index >= 15].mean()
    assert result.event_study()["estimate"].iloc[0] == pytest.approx(by_hand, abs=1e-12)


def test_bad_input(favara):
    kw = dict(y="Dl_vloans_b", unit="county", time="year", method="dcdh")
    with pytest.raises(InputError, match="treated="):
        ik.did(favara, **kw)
    with pytest.raises(InputError, match="not used by method .dcdh."):
        ik.did(favara, treated="inter_bra", anticipation=1, **kw)
    with pytest.raises(InputError, match="effects must be"):
        ik.did(favara, treated="inter_bra", effects=0, **kw)
    with pytest.raises(InputError, match="same_switchers_pl needs"):
        ik.did(favara, treated="inter_bra", same_switchers_pl=True, **kw)
    with pytest.raises(InputError, match="switchers must be"):
        ik.did(favara, treated="inter_bra", switchers="both", **kw)
    with pytest.raises(InputError, match="not in the data"):
        ik.did(favara, treated="inter_bra", trends_nonparam=["nope"], **kw)
    with pytest.raises(InputError, match="unknown argument.*normalized"):
        ik.did(favara, y="Dl_vloans_b", unit="county", time="year", cohort="inter_bra", method="cs", normalized=True)


def test_units_going_both_ways_lose_their_rows_from_the_reversal_on(monkeypatch):
    """Doses 0-2 from baseline 1: some units go up and later below the baseline. R (and moderndid)
    drop their rows from the reversal on, keeping the earlier ones; impactkit matches moderndid."""
    mend_zero_weight_members(monkeypatch)
    gen = np.random.default_rng(11)
    rows = []
    for g in range(500):
        kind = g % 3                      # 0 never, 1 up, 2 up then below the baseline
        first = int(gen.integers(3, 6))
        for t in range(1, 9):
            d = 1.0
            if kind and t >= first:
                d = 2.0
            if kind == 2 and t >= first + 2:
                d = 0.0
            rows.append((g, t, d, 0.1 * t + 1.5 * d + gen.normal()))
    frame = pd.DataFrame(rows, columns=["g", "t", "d", "y"])
    ours = ik.did(frame, y="y", unit="g", time="t", treated="d", method="dcdh", effects=3, placebo=1)
    ours = ours.event_study().set_index("event_time")
    import moderndid as md

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = md.did_multiplegt(frame, yname="y", idname="g", tname="t", dname="d", effects=3, placebo=1)
    _assert_match(ours, peer)
    assert ours.loc[1, "n"] > ours.loc[3, "n"]      # units that reversed count at horizons 1-2 only
