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


# --- the fast (integer-code) input checks against brute-force truth --------------------------------

def _random_panel(gen: np.random.Generator, *, shuffle: bool, string_units: bool, float_time: bool) -> pd.DataFrame:
    """A small staggered panel, optionally shuffled, with string units or fractional times."""
    n_units, n_periods = int(gen.integers(2, 25)), int(gen.integers(2, 7))
    unit = np.repeat(np.arange(n_units), n_periods)
    time = np.tile(np.arange(n_periods), n_units) + (0.5 if float_time else 0) + 2000
    cohort = np.repeat(gen.choice([0, 2001, 2003, 2010], n_units), n_periods)
    df = pd.DataFrame({"unit": [f"h{u:02d}" for u in unit] if string_units else unit, "year": time,
                       "y": gen.normal(size=unit.size), "g": cohort,
                       "d": ((cohort > 0) & (time >= cohort)).astype(int), "cl": unit % 3})
    return df.sample(frac=1, random_state=int(gen.integers(1_000_000))) if shuffle else df


def _truth(df: pd.DataFrame) -> dict:
    """Duplicates, reversing units, first treated year, cohort-varying units, empty periods: plain Python."""
    pairs, rows_by_unit, cohorts, observed = {}, {}, {}, {}
    for u, t, d, g, y in zip(df["unit"], df["year"], df["d"], df["g"], df["y"]):
        pairs[(u, t)] = pairs.get((u, t), 0) + 1
        rows_by_unit.setdefault(u, []).append((t, d))
        cohorts.setdefault(u, set()).add(g)
        observed[t] = observed.get(t, False) or not np.isnan(y)
    reversing = sorted(u for u, rows in rows_by_unit.items()
                       if any(a[1] == 1 and b[1] == 0 for a, b in zip(sorted(rows), sorted(rows)[1:])))
    first = {u: min((t for t, d in rows if d == 1), default=0.0) for u, rows in rows_by_unit.items()}
    return {"n_duplicates": len(df) - len(pairs), "reversing": reversing, "first": first,
            "varying": [u for u, s in cohorts.items() if len(s) > 1],
            "empty_periods": sorted(t for t, seen in observed.items() if not seen)}


@pytest.mark.parametrize("shuffle, string_units, float_time", [
    (False, False, False), (True, False, False), (True, True, False), (False, True, True), (True, False, True)])
def test_fast_checks_agree_with_brute_force_truth(shuffle, string_units, float_time):
    """Sorted and unsorted rows, integer/string units, integer/fractional times; exact agreement."""
    from impactkit.did import data

    gen = np.random.default_rng([11, int(shuffle), int(string_units), int(float_time)])
    raised = {"dup": 0, "rev": 0, "vary": 0, "empty": 0}
    for _ in range(40):
        df = _random_panel(gen, shuffle=shuffle, string_units=string_units, float_time=float_time)
        if gen.random() < 0.3:  # duplicate rows
            df = pd.concat([df, df.iloc[gen.integers(0, len(df), int(gen.integers(1, 4)))]])
        if gen.random() < 0.3:  # switch some treated rows off
            on = np.flatnonzero(df["d"].to_numpy() == 1)
            if on.size:
                df.iloc[gen.choice(on, min(on.size, 2), replace=False), df.columns.get_loc("d")] = 0
        if gen.random() < 0.2:  # cohort varying within a unit
            df.iloc[int(gen.integers(len(df))), df.columns.get_loc("g")] = 2002
        if gen.random() < 0.3:  # outcome missing in a whole period
            df.loc[df["year"] == df["year"].iloc[0], "y"] = np.nan
        truth = _truth(df)
        if truth["n_duplicates"]:
            raised["dup"] += 1
            with pytest.raises(InputError, match=rf"^{truth['n_duplicates']} duplicate \(unit, year\) row"):
                data.check_unique_unit_time(df, "unit", "year")
        else:
            data.check_unique_unit_time(df, "unit", "year")
            if truth["reversing"]:
                raised["rev"] += 1
                shown = ", ".join(str(u) for u in truth["reversing"][:5])
                with pytest.raises(InputError, match=rf"within {len(truth['reversing'])} unit\(s\) of 'unit': {shown};"):
                    data.check_absorbing(df, "unit", "year", "d")
            else:
                data.check_absorbing(df, "unit", "year", "d")
            cohort = data.derive_cohort(df, unit="unit", time="year", treated="d")
            expected = np.array([float(truth["first"][u]) for u in df["unit"]])
            np.testing.assert_array_equal(cohort.to_numpy(), expected)
            assert cohort.index.equals(df.index) and cohort.name == "cohort"
        if truth["varying"]:
            raised["vary"] += 1
            with pytest.raises(InputError, match=rf"varies within {len(truth['varying'])} unit\(s\)"):
                data.check_cohort_constant(df, "unit", "g")
        else:
            data.check_cohort_constant(df, "unit", "g")
        if truth["empty_periods"]:
            raised["empty"] += 1
            with pytest.raises(InputError, match=rf"period\(s\) {truth['empty_periods'][0]:g}"):
                data.check_outcome_per_period(df, "y", "year")
        else:
            data.check_outcome_per_period(df, "y", "year")
    assert all(count > 0 for count in raised.values()), raised  # every rule was exercised


def test_messages_on_unsorted_rows_name_units_and_rows():
    """The integer-code paths hand over to the same messages on shuffled rows and string units."""
    df = make_panel().sample(frac=1, random_state=3)
    with pytest.raises(InputError, match=r"^2 duplicate \(unit, year\) row\(s\); rule: one row per unit and period; "
                                         r"e\.g\. \(u\d{3}, \d{4}\), \(u\d{3}, \d{4}\)$"):
        did(pd.concat([df, df.iloc[[0, 7]]]), y="y", unit="unit", time="year", cohort="g")
    flip = df.copy()
    flip.loc[(flip["unit"].isin(["u004", "u003"])) & (flip["year"] == 2003), "d"] = 1
    flip.loc[(flip["unit"].isin(["u004", "u003"])) & (flip["year"] == 2004), "d"] = 0
    with pytest.raises(InputError, match=r"^treatment 'd' reverses \(1 then 0\) within 2 unit\(s\) of 'unit': "
                                         r"u003, u004; rule: treatment is absorbing$"):
        did(flip, y="y", unit="unit", time="year", treated="d")
    with pytest.raises(InputError, match=r"^column 'd' \(treated\) must be 0/1; 1 other value\(s\), rows 5$"):
        did(df.assign(d=np.where(np.arange(len(df)) == 5, 2, df["d"])), y="y", unit="unit", time="year", treated="d")
    with pytest.raises(InputError, match=r"^outcome 'y' is missing in every row of period\(s\) 2002, 2005 of 'year'$"):
        did(df.assign(y=df["y"].where(~df["year"].isin([2005, 2002]))), y="y", unit="unit", time="year", cohort="g")


def test_unobserved_adoption_warning_counts_units():
    """Units never observed treated inside treated clusters: counted exactly, sorted or shuffled."""
    df = make_panel(seed=5)
    df["village"] = df["unit"].str[-1].astype(int) % 4  # units spread over 4 villages
    treated_villages = set(df.loc[df["g"] > 0, "village"])
    expected = df.loc[(df["g"] == 0) & df["village"].isin(treated_villages), "unit"].nunique()
    assert expected > 0
    for frame in (df, df.sample(frac=1, random_state=1)):
        with pytest.warns(ImpactkitWarning, match=rf"^{expected} unit\(s\) never observed treated belong to 'village'"):
            did(frame, y="y", unit="unit", time="year", treated="d", cluster="village")


def test_row_order_does_not_change_the_estimate():
    """Shuffled rows, string or integer units: the same TWFE estimate (to rounding, 1e-12)."""
    df = make_panel(seed=6)
    base = did(df, y="y", unit="unit", time="year", treated="d")
    shuffled = did(df.sample(frac=1, random_state=2), y="y", unit="unit", time="year", treated="d")
    integer_units = did(df.assign(unit=df["unit"].str[1:].astype(int) * 1000), y="y", unit="unit", time="year",
                        treated="d")
    assert abs(shuffled.estimate - base.estimate) < 1e-12
    assert integer_units.estimate == base.estimate


def test_group_codes_match_equal_values():
    from impactkit.did.data import group_codes

    gen = np.random.default_rng(7)
    for values in (pd.Series(gen.integers(-5, 50, 200)), pd.Series(gen.integers(0, 10**12, 200)),
                   pd.Series(gen.choice(["a", "b", "c"], 200)), pd.Series(gen.choice([0.5, 1.5, 2.0], 200))):
        codes, n = group_codes(values)
        assert codes.min() >= 0 and codes.max() < n
        # equal values <-> equal codes
        pairs = pd.DataFrame({"v": values, "c": codes}).drop_duplicates()
        assert pairs["v"].is_unique and pairs["c"].is_unique
