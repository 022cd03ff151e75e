"""Catalogue of corrupted Peru TAP panels: each is caught by its intended rule(s) and no other.

Every case takes the clean simulated panel (seed PERU_TAP_SEED), corrupts it in one way a
field team might, and asserts that the set of failed (rule, column) pairs equals the
expected set exactly (zero tolerance: extra or missing failures both fail the test). The
clean panel must pass all rules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.contracts import load_contract, validate
from impactkit.datasets.peru_tap import simulate_peru_tap
from impactkit.errors import InputError

CONTRACT_PATH = Path(__file__).resolve().parents[1] / "data_contracts" / "peru_tap.yaml"


@pytest.fixture(scope="module")
def contract():
    return load_contract(CONTRACT_PATH)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return simulate_peru_tap()


def _units(panel: pd.DataFrame, mask: pd.Series, k: int) -> list[str]:
    """The first k households (sorted ids) among rows where ``mask`` holds."""
    return sorted(panel.loc[mask, "household_id"].unique())[:k]


def _complete_units(panel: pd.DataFrame) -> pd.Series:
    counts = panel.groupby("household_id")["wave"].transform("size")
    return counts == 6


def dup_rows(p):
    return pd.concat([p, p.iloc[100:110]], ignore_index=True)


def reversed_treatment(p):
    unit = _units(p, _complete_units(p) & (p["cohort"] == 2010), 1)[0]
    p.loc[(p["household_id"] == unit) & (p["wave"] == 2013), "treated"] = 0
    return p


def shifted_waves(p):
    units = _units(p, _complete_units(p) & (p["cohort"] == 0), 5)
    p.loc[p["household_id"].isin(units), "wave"] += 1
    return p


def wave_outside_set(p):
    unit = _units(p, _complete_units(p) & (p["cohort"] == 0), 1)[0]
    p.loc[(p["household_id"] == unit) & (p["wave"] == 2013), "wave"] = 2015
    return p


def text_in_numbers(p):
    income = p["income"].astype(object)
    income.iloc[[3, 40, 41]] = ["1,200", "n/a", "3,450.50"]
    p["income"] = income
    return p


def negative_income(p):
    p.loc[p.index[[10, 20, 30]], "income"] = -500.0
    return p


def dropped_column(p):
    return p.drop(columns=["milk_litres_day"])


def two_clusters(p):
    unit = _units(p, _complete_units(p) & (p["community_id"] != "C02"), 1)[0]
    p.loc[(p["household_id"] == unit) & (p["wave"] >= 2012), "community_id"] = "C02"
    return p


def leak_pattern(p):
    p.loc[p.index[[5, 6]], "notes"] = "Llamar al 987654321 por la tarde"
    p.loc[p.index[7], "notes"] = "DNI 12345678 visto"
    return p


def leak_value(p):
    name = p["head_name"].iloc[500]
    p.loc[p.index[[9, 10]], "notes"] = f"Informante: {name}"
    return p


def cohort_inconsistent(p):
    unit = _units(p, _complete_units(p) & (p["cohort"] == 2011), 1)[0]
    p.loc[p["household_id"] == unit, "cohort"] = 2012
    return p


def time_invariant_varies(p):
    unit = _units(p, _complete_units(p), 1)[0]
    p.loc[(p["household_id"] == unit) & (p["wave"] == 2011), "head_age_baseline"] += 1
    return p


def implausible_jump(p):
    q = p.sort_values(["household_id", "wave"])
    prev = q.groupby("household_id")["income"].shift(1)
    nxt = q.groupby("household_id")["income"].shift(-1)
    calm = (prev / q["income"]).between(0.9, 1.1) & (nxt / q["income"]).between(0.9, 1.1)
    median = p["income"].median()
    row = (q.loc[calm, "income"] - median).abs().idxmin()
    p.loc[row, "income"] = p.loc[row, "income"] * 25
    return p


def extreme_outlier(p):
    unit = _units(p, _complete_units(p), 1)[0]
    p.loc[p["household_id"] == unit, "income"] = 5e8
    return p


def missing_spike(p):
    rows = p.index[(p["wave"] == 2011)]
    drop = rows[: int(0.4 * rows.size)]
    p.loc[drop, "income"] = np.nan
    return p


def missing_spike_milk(p):
    rows = p.index[(p["wave"] == 2009)]
    p.loc[rows[::3], "milk_litres_day"] = np.nan
    return p


def attrition_arm(p):
    seen = p.loc[(p["cohort"] == 0) & (p["wave"] == 2010), "household_id"].unique()
    gone = sorted(seen)[: int(0.3 * len(seen))]
    return p.loc[~(p["household_id"].isin(gone) & (p["wave"] >= 2011))].reset_index(drop=True)


def outside_set(p):
    unit = _units(p, p["wave"] == 2008, 1)[0]
    p.loc[p["household_id"] == unit, "district"] = "Lima"
    return p


def tap_use_outside_set(p):
    p.loc[p.index[[1, 2]], "tap_use"] = 2
    return p


def bad_dni(p):
    unit = _units(p, p["wave"] == 2008, 1)[0]
    p.loc[p["household_id"] == unit, "dni"] = "1234567"
    return p


def bad_household_id(p):
    unit = _units(p, p["wave"] == 2008, 1)[0]
    p.loc[p["household_id"] == unit, "household_id"] = unit.replace("PE-", "PE")
    return p


def bad_community(p):
    community = p["community_id"].iloc[0]
    p.loc[p["community_id"] == community, "community_id"] = "C7"
    return p


def weight_nonpositive(p):
    unit = _units(p, p["wave"] == 2008, 1)[0]
    p.loc[p["household_id"] == unit, "weight"] = 0.0
    return p


def wrong_dtype(p):
    p["herd_size"] = p["herd_size"].astype(float)
    return p


def null_required(p):
    unit = _units(p, p["wave"] == 2008, 1)[0]
    p.loc[p["household_id"] == unit, "district"] = None
    return p


def calf_above_one(p):
    p.loc[p.index[[11, 12]], "calf_mortality"] = 1.5
    return p


def negative_herd(p):
    p.loc[p.index[13], "herd_size"] = -3
    return p


CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set[tuple[str, str]]]] = {
    "duplicated rows": (dup_rows, {("primary_key_unique", "household_id+wave")}),
    "reversed treatment": (reversed_treatment, {("treatment_absorbing", "treated"),
                                                ("cohort_consistent", "treated+cohort")}),
    "shifted waves": (shifted_waves, {("waves_declared", "wave")}),
    "wave outside set": (wave_outside_set, {("waves_declared", "wave")}),
    "text in numbers": (text_in_numbers, {("type", "income")}),
    "negative income": (negative_income, {("range", "income")}),
    "dropped column": (dropped_column, {("column_exists", "milk_litres_day")}),
    "unit in two clusters": (two_clusters, {("cluster_constant", "community_id")}),
    "leak: id pattern in notes": (leak_pattern, {("personal_leak", "notes")}),
    "leak: name in notes": (leak_value, {("personal_leak", "notes")}),
    "cohort inconsistent": (cohort_inconsistent, {("cohort_consistent", "treated+cohort")}),
    "time-invariant varies": (time_invariant_varies, {("time_invariant", "head_age_baseline")}),
    "implausible income jump": (implausible_jump, {("jump", "income")}),
    "extreme outlier": (extreme_outlier, {("outlier", "income")}),
    "missingness spike": (missing_spike, {("missing_per_wave", "income")}),
    "missingness spike milk": (missing_spike_milk, {("missing_per_wave", "milk_litres_day")}),
    "attrition in one arm": (attrition_arm, {("attrition", "household_id")}),
    "value outside allowed set": (outside_set, {("allowed_values", "district")}),
    "tap_use outside set": (tap_use_outside_set, {("allowed_values", "tap_use")}),
    "bad dni pattern": (bad_dni, {("pattern", "dni")}),
    "bad household id": (bad_household_id, {("pattern", "household_id")}),
    "bad community id": (bad_community, {("pattern", "community_id")}),
    "weight not positive": (weight_nonpositive, {("range", "weight")}),
    "wrong dtype": (wrong_dtype, {("type", "herd_size")}),
    "required value missing": (null_required, {("not_null", "district")}),
    "calf mortality above 1": (calf_above_one, {("range", "calf_mortality")}),
    "negative herd": (negative_herd, {("range", "herd_size")}),
}


def _failed(report) -> set[tuple[str, str]]:
    failed = report.results.loc[~report.results["success"], ["rule", "column"]]
    return set(map(tuple, failed.to_numpy().tolist()))


def test_clean_panel_passes_every_rule(clean, contract):
    report = validate(clean, contract)
    assert report.ok, report.summary()
    assert _failed(report) == set()
    assert not report.skipped
    engines = set(report.results["engine"])
    assert engines == {"great_expectations", "impactkit"}
    # attrition in the DGP is 3% per wave in both arms: the table reports it
    assert report.attrition["share_lost"].between(0.005, 0.06).all()


@pytest.mark.parametrize("name", list(CASES))
def test_corruption_is_caught_by_its_rule_only(name, clean, contract):
    corrupt, expected = CASES[name]
    report = validate(corrupt(clean.copy()), contract)
    assert _failed(report) == expected, report.summary()
    failing = report.results.loc[~report.results["success"]]
    assert (failing["failed_rows"] > 0).all()
    assert failing["message"].str.len().gt(0).all()


def test_catalogue_is_large_enough():
    assert len(CASES) >= 25


def test_examples_name_the_corrupted_keys(clean, contract):
    panel = clean.copy()
    unit = sorted(panel.loc[(panel["cohort"] == 2010) & (panel["wave"] == 2013), "household_id"])[0]
    panel.loc[(panel["household_id"] == unit) & (panel["wave"] == 2013), "treated"] = 0
    row = validate(panel, contract).results.set_index("rule").loc["treatment_absorbing"]
    assert row["examples"] == [(unit, 2013)]
    assert row["failed_rows"] == 1


def test_missing_key_column_is_unusable_input(clean, contract):
    with pytest.raises(InputError, match="unit key column 'household_id' is missing"):
        validate(clean.rename(columns={"household_id": "hh_id"}), contract)
    with pytest.raises(InputError, match="time key column 'wave'"):
        validate(clean.assign(wave=clean["wave"].astype(str)), contract)


def test_large_frames_run_gx_per_column_with_the_same_results(clean, contract):
    """From PER_COLUMN_BATCH_ROWS rows GX runs one batch per column: same rules, same keys."""
    from impactkit.contracts.gx_suite import PER_COLUMN_BATCH_ROWS

    copies = -(-PER_COLUMN_BATCH_ROWS // len(clean))
    big = pd.concat([clean.assign(household_id=clean["household_id"].str.replace("PE-", f"PE-{k}", regex=False))
                     for k in range(1, copies + 1)], ignore_index=True)
    assert len(big) >= PER_COLUMN_BATCH_ROWS
    rows = [7, len(big) - 3]
    big.loc[rows, "calf_mortality"] = 2.0
    report = validate(big, contract)
    assert _failed(report) == {("range", "calf_mortality")}
    row = report.results.set_index("rule").loc["range"].set_index("column").loc["calf_mortality"]
    assert row["failed_rows"] == 2
    assert row["examples"] == [tuple(k) for k in big.loc[rows, ["household_id", "wave"]].itertuples(index=False)]
