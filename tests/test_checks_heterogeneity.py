"""Subgroup effects against direct statsmodels interaction fits and a seeded simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from impactkit.checks import heterogeneity
from impactkit.atomic import dumps_json
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.seeds import rng


def household_sample(seed: int = 1, n_communities: int = 60, size: int = 15) -> pd.DataFrame:
    """Effect 0.2 for men-headed and 0.7 for women-headed households (true difference 0.5)."""
    gen = rng(seed, "test-heterogeneity")
    community = np.repeat(np.arange(n_communities), size)
    n = community.size
    treated = np.repeat(gen.permutation(np.arange(n_communities) % 2), size)
    woman_head = (gen.random(n) < 0.35).astype(int)
    herd = gen.poisson(5, n).astype(float)
    region = community % 4
    income = (1.0 + 0.2 * treated + 0.5 * treated * woman_head - 0.3 * woman_head + 0.1 * herd + 0.2 * region
              + gen.normal(0, 0.3, n_communities)[community] + gen.normal(0, 1, n))
    return pd.DataFrame({"community_id": community, "treated": treated, "woman_head": woman_head,
                         "herd_size": herd, "region": region, "income": income,
                         "tercile": pd.qcut(herd + gen.random(n) * 0.01, 3, labels=["low", "mid", "high"]).astype(str)})


def test_interaction_pvalue_matches_direct_statsmodels_fit():
    frame = household_sample()
    res = heterogeneity(frame, y="income", treat="treated", by="woman_head", controls=["herd_size"],
                        cluster="community_id")
    fit = smf.ols("income ~ treated * woman_head + herd_size", frame).fit(
        cov_type="cluster", cov_kwds={"groups": frame["community_id"]}, use_t=True)
    table = res.tidy()
    diff = table[table.term == "difference"].iloc[0]
    # the same linear model, re-parameterized: agreement to rounding
    assert diff["estimate"] == pytest.approx(fit.params["treated:woman_head"], abs=1e-10)
    assert diff["std_error"] == pytest.approx(fit.bse["treated:woman_head"], rel=1e-9)
    assert diff["p_value"] == pytest.approx(fit.pvalues["treated:woman_head"], rel=1e-8)
    assert res.test_p == pytest.approx(fit.pvalues["treated:woman_head"], rel=1e-8)  # F(1, G-1) = t^2
    effects = table[table.term == "effect"].set_index("group")
    assert effects.loc["0", "estimate"] == pytest.approx(fit.params["treated"], abs=1e-10)
    assert effects.loc["1", "estimate"] == pytest.approx(fit.params["treated"] + fit.params["treated:woman_head"],
                                                         abs=1e-10)
    assert effects.loc["1", "n"] == int(frame.woman_head.sum())
    fig = res.plot()
    assert len(fig.axes[0].get_yticks()) == 2  # one row per subgroup


def test_three_groups_with_fixed_effects_vs_statsmodels_dummies():
    frame = household_sample(2)
    res = heterogeneity(frame, y="income", treat="treated", by="tercile", fixed_effects="region",
                        cluster="community_id")
    fit = smf.ols("income ~ C(tercile) + treated:C(tercile) + C(region)", frame).fit(
        cov_type="cluster", cov_kwds={"groups": frame["community_id"]}, use_t=True)
    effects = res.tidy().query("term == 'effect'").set_index("group")
    for g in ["high", "low", "mid"]:
        name = f"treated:C(tercile)[{g}]"
        assert effects.loc[g, "estimate"] == pytest.approx(fit.params[name], abs=1e-10)
        assert effects.loc[g, "std_error"] == pytest.approx(fit.bse[name], rel=1e-9)
    ft = fit.f_test("treated:C(tercile)[low] = treated:C(tercile)[high], "
                    "treated:C(tercile)[mid] = treated:C(tercile)[high]")
    assert res.test_f == pytest.approx(float(ft.fvalue), rel=1e-8)
    assert res.test_p == pytest.approx(float(ft.pvalue), rel=1e-8)


def test_recovers_true_subgroup_effects():
    """Known truth 0.2 / 0.7: estimates within 3 standard errors, the difference 0.5 inside its 95 % CI."""
    frame = household_sample(3, n_communities=200, size=20)
    table = heterogeneity(frame, y="income", treat="treated", by="woman_head", controls="herd_size",
                          cluster="community_id").tidy()
    eff = table[table.term == "effect"].set_index("group")
    assert abs(eff.loc["0", "estimate"] - 0.2) < 3 * eff.loc["0", "std_error"]
    assert abs(eff.loc["1", "estimate"] - 0.7) < 3 * eff.loc["1", "std_error"]
    diff = table[table.term == "difference"].iloc[0]
    assert diff["conf_low"] < 0.5 < diff["conf_high"]


def test_small_subgroup_flagged_suppressed_and_warned():
    frame = household_sample(4)
    frame["status"] = "resident"
    small = frame.index[frame.treated == 1][:4].tolist() + frame.index[frame.treated == 0][:30].tolist()
    frame.loc[small, "status"] = "migrant"
    with pytest.warns(ImpactkitWarning, match="migrant"):
        res = heterogeneity(frame, y="income", treat="treated", by="status", cluster="community_id", min_cell=10)
    table = res.tidy().set_index("group")
    assert bool(table.loc["migrant", "suppressed"]) and np.isnan(table.loc["migrant", "estimate"])
    # small cells: arm counts of a suppressed subgroup are hidden (n - n_control would reveal
    # n_treated = 4); its n = 34 >= min_cell is shown
    assert table.loc["migrant", "n"] == 34
    assert pd.isna(table.loc["migrant", "n_treated"]) and pd.isna(table.loc["migrant", "n_control"])
    assert table.loc["resident", "n_treated"] == int((frame.status == "resident").mul(frame.treated).sum())
    assert not bool(table.loc["resident", "suppressed"]) and np.isfinite(table.loc["resident", "estimate"])
    assert np.isnan(res.test_p)
    assert any("Suppressed" in n for n in res.notes())


def test_every_subgroup_below_min_cell_gives_suppressed_rows_not_an_error():
    """A pack must show the subgroups suppressed and marked: no estimates, no test, small counts hidden."""
    frame = household_sample(6)  # 900 households, about 35 % women-headed, half treated
    n_men, n_women = int((frame.woman_head == 0).sum()), int((frame.woman_head == 1).sum())
    min_cell = 400
    assert n_women < min_cell <= n_men  # men: n shown; arms (about n_men / 2) below min_cell
    with pytest.warns(ImpactkitWarning, match="fewer than 400"):
        res = heterogeneity(frame, y="income", treat="treated", by="woman_head", controls="herd_size",
                            cluster="community_id", min_cell=min_cell)
    table = res.tidy().set_index("group")
    assert list(table.index) == ["0", "1"] and (table.term == "effect").all()
    assert table["suppressed"].all()
    for col in ["estimate", "std_error", "conf_low", "conf_high", "p_value"]:
        assert table[col].isna().all(), col
    assert table.loc["0", "n"] == n_men and pd.isna(table.loc["1", "n"])
    assert table[["n_treated", "n_control"]].isna().all().all()
    assert np.isnan(res.test_f) and np.isnan(res.test_p)
    notes = " ".join(res.notes())
    assert "not available" in notes and "No subgroup of 'woman_head' has 400" in notes
    plain = res.to_dict()
    assert plain["test"]["p_value"] is None and all(r["estimate"] is None for r in plain["table"])
    assert [r["n"] for r in plain["table"]] == [n_men, None]
    dumps_json(plain)  # JSON-ready: no NaN left
    fig = res.plot()
    assert len(fig.axes[0].get_yticks()) == 0  # nothing to draw
    # min_cell above every subgroup size: n hidden everywhere too
    with pytest.warns(ImpactkitWarning):
        none_shown = heterogeneity(frame, y="income", treat="treated", by="woman_head", min_cell=1000).tidy()
    assert none_shown["suppressed"].all() and none_shown[["n", "n_treated", "n_control"]].isna().all().all()


def test_unusable_input_still_raises_with_a_large_min_cell():
    frame = household_sample(7)
    with pytest.raises(EstimationError, match="'treated' is constant"):
        heterogeneity(frame.assign(treated=0), y="income", treat="treated", by="woman_head", min_cell=600)
    with pytest.raises(InputError, match="single subgroup"):
        heterogeneity(frame.assign(woman_head=0), y="income", treat="treated", by="woman_head", min_cell=600)


def test_counts_of_unsuppressed_tables_keep_integer_dtype():
    table = heterogeneity(household_sample(8), y="income", treat="treated", by="woman_head").tidy()
    assert not table["suppressed"].any()
    assert all(table[c].dtype == np.int64 for c in ["n", "n_treated", "n_control"])


def test_bad_input():
    frame = household_sample(5)
    with pytest.raises(EstimationError, match="'treated' is constant"):
        heterogeneity(frame.assign(treated=1), y="income", treat="treated", by="woman_head")
    with pytest.raises(InputError, match="'nope'"):
        heterogeneity(frame, y="income", treat="treated", by="nope")
    with pytest.raises(InputError, match="single subgroup"):
        heterogeneity(frame.assign(woman_head=1), y="income", treat="treated", by="woman_head")
    with pytest.raises(EstimationError, match="collinear"):
        heterogeneity(frame.assign(h2=frame.herd_size * 2), y="income", treat="treated", by="woman_head",
                      controls=["herd_size", "h2"])
