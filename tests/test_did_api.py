"""The did() front door: input checks with named messages, treatment derivation, dispatch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impactkit.did import did
from impactkit.did.data import derive_cohort, derive_treated
from impactkit.did.sa import estimate_sa
from impactkit.did.twfe import estimate_2x2, estimate_twfe
from impactkit.errors import EstimationError, ImpactkitWarning, InputError


def make_panel(seed: int = 0, n_units: int = 50, n_periods: int = 6) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    unit = np.repeat([f"u{i:03d}" for i in range(n_units)], n_periods)
    time = np.tile(np.arange(2001, 2001 + n_periods), n_units)
    g = np.repeat(gen.choice([0, 2003, 2005], n_units), n_periods)
    treated = ((g > 0) & (time >= g)).astype(int)
    y = np.repeat(gen.normal(size=n_units), n_periods) + 2.0 * treated + gen.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "year": time, "y": y, "g": g, "d": treated})


def test_derive_cohort_and_treated_are_inverse():
    df = make_panel()
    cohort = derive_cohort(df, unit="unit", time="year", treated="d")
    np.testing.assert_array_equal(cohort.to_numpy(), df["g"].to_numpy(dtype=float))
    treated = derive_treated(df, time="year", cohort="g")
    np.testing.assert_array_equal(treated.to_numpy(), df["d"].to_numpy())
    missing_is_never = df.assign(g=df["g"].where(df["g"] > 0))  # NaN = never treated
    np.testing.assert_array_equal(derive_treated(missing_is_never, time="year", cohort="g"), df["d"])


def test_cohort_or_treated_give_the_same_twfe():
    df = make_panel()
    a = did(df, y="y", unit="unit", time="year", cohort="g")
    b = did(df, y="y", unit="unit", time="year", treated="d")
    c = estimate_twfe(df, y="y", unit="unit", time="year", treated="d")
    assert a.estimate == b.estimate == c.estimate
    np.testing.assert_array_equal(a.vcov, c.vcov)


def test_dispatch_to_sa_and_2x2():
    df = make_panel()
    sa = did(df, y="y", unit="unit", time="year", cohort="g", method="sa", seed=1)
    direct = estimate_sa(df, y="y", unit="unit", time="year", cohort="g", seed=1)
    np.testing.assert_array_equal(sa.estimates, direct.estimates)
    two = did(df[df["g"] != 2005], y="y", unit="unit", time="year", cohort="g", method="2x2")
    assert two.estimate == estimate_2x2(df[df["g"] != 2005], y="y", unit="unit", time="year", cohort="g").estimate


def test_dispatch_to_cs():
    cs = pytest.importorskip("impactkit.did.cs")
    df = make_panel()
    via_front = did(df, y="y", unit="unit", time="year", cohort="g", method="cs")
    direct = cs.estimate_cs(df, y="y", unit="unit", time="year", cohort="g")
    pd.testing.assert_frame_equal(via_front.tidy(), direct.tidy())


@pytest.mark.parametrize("mutate, error, pattern", [
    (lambda d: d.drop(columns="y"), InputError, r"'y' \(outcome\)"),
    (lambda d: d.drop(columns=["g", "unit"]), InputError, r"'unit' \(unit\).*'g' \(cohort\)"),
    (lambda d: pd.concat([d, d.iloc[[0, 7]]]), InputError, r"2 duplicate \(unit, year\).*\(u000, 2001\)"),
    (lambda d: d.assign(y=d["y"].astype(str)), InputError, r"'y' \(outcome\) must be numeric"),
    (lambda d: d.assign(y=d["y"].where(d["year"] != 2004)), InputError, r"missing in every row of period\(s\) 2004"),
    (lambda d: d.assign(g=np.where((d["unit"] == "u001") & (d["year"] == 2006), 2004, d["g"])), InputError,
     r"varies within 1 unit\(s\).*u001"),
    (lambda d: d.assign(g=2003), EstimationError, r"no control units"),
])
def test_bad_input_raises_named_errors(mutate, error, pattern):
    df = mutate(make_panel())
    with pytest.raises(error, match=pattern):
        did(df, y="y", unit="unit", time="year", cohort="g" if "g" in df.columns else "g",
            method="2x2" if pattern == r"no control units" else "twfe")


def test_reversing_treatment_names_units():
    df = make_panel()
    flip = (df["unit"].isin(["u003", "u004"])) & (df["year"] == 2006) & (df["d"] == 1)
    if not flip.any():
        df.loc[df["unit"].isin(["u003", "u004"]), "d"] = [0, 0, 1, 1, 1, 0] * 2
    else:
        df.loc[flip, "d"] = 0
    with pytest.raises(InputError, match=r"reverses.*u00[34]"):
        did(df, y="y", unit="unit", time="year", treated="d")


def test_inconsistent_cohort_and_treated_rejected_and_missing_outcome_warned():
    df = make_panel()
    with pytest.raises(InputError, match="disagree"):
        did(df.assign(d=((df["g"] > 0) & (df["year"] > df["g"])).astype(int)), y="y", unit="unit", time="year", cohort="g", treated="d")
    with pytest.warns(ImpactkitWarning, match="dropped 1 row"):
        res = did(df.assign(y=df["y"].mask(df.index == 3)), y="y", unit="unit", time="year", cohort="g")
    assert res.n_obs == len(df) - 1


def test_unknown_method_and_arguments():
    df = make_panel()
    with pytest.raises(InputError, match="method must be one of"):
        did(df, y="y", unit="unit", time="year", cohort="g", method="synthetic")
    with pytest.raises(InputError, match="unknown argument"):
        did(df, y="y", unit="unit", time="year", cohort="g", bogus=1)
    with pytest.raises(InputError, match="vcov must be one of"):
        did(df, y="y", unit="unit", time="year", cohort="g", vcov="HC3")


def test_cs_with_treated_only_derives_the_cohort():
    pytest.importorskip("impactkit.did.cs")
    df = make_panel(seed=3)
    from_cohort = did(df, y="y", unit="unit", time="year", cohort="g", method="cs")
    from_treated = did(df.drop(columns="g"), y="y", unit="unit", time="year", treated="d", method="cs")
    pd.testing.assert_frame_equal(from_cohort.tidy(), from_treated.tidy())


def test_2x2_front_door_passes_periods_and_rejects_them_elsewhere():
    df = make_panel(seed=4)
    df = df[df["g"] != 2005]
    res = did(df, y="y", unit="unit", time="year", cohort="g", method="2x2", periods=(2002, 2004))
    means = df[df["year"].isin([2002, 2004])].groupby([df["g"] > 0, "year"])["y"].mean()
    assert abs(res.estimate - ((means[True, 2004] - means[True, 2002]) - (means[False, 2004] - means[False, 2002]))) < 1e-10
    with pytest.raises(InputError, match="unknown argument"):
        did(df, y="y", unit="unit", time="year", cohort="g", method="sa", periods=(2002, 2004))
