"""Panel rules against hand-computed truth on small frames and on the Peru panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.contracts.model import OutlierRule
from impactkit.contracts.panel_rules import (PanelIndex, attrition_table, jumps, outliers, personal_leak,
                                             treatment_absorbing)
from impactkit.datasets.peru_tap import WAVES, simulate_peru_tap


def _index(units, times) -> PanelIndex:
    return PanelIndex.build(pd.Series(units, dtype="str"), pd.Series(times, dtype="int64"))


def test_attrition_table_matches_set_arithmetic_on_peru_panel():
    panel = simulate_peru_tap()
    index = PanelIndex.build(panel["household_id"], panel["wave"])
    table = attrition_table(index, list(WAVES), panel["cohort"].to_numpy() > 0).set_index(["arm", "wave"])
    for arm, in_arm in (("ever treated", panel["cohort"] > 0), ("comparison", panel["cohort"] == 0)):
        for prev, wave in zip(WAVES[:-1], WAVES[1:]):
            seen = set(panel.loc[in_arm & (panel["wave"] == prev), "household_id"])
            now = set(panel.loc[in_arm & (panel["wave"] == wave), "household_id"])
            row = table.loc[(arm, wave)]
            assert row["n_previous"] == len(seen)
            assert row["n_lost"] == len(seen - now)  # exact counts
    # the DGP's hazard is 3% per wave in both arms (attrition independent of arm)
    pooled = table["n_lost"].sum() / table["n_previous"].sum()
    assert abs(pooled - 0.03) < 0.006  # ~3 binomial standard errors on ~10,000 units-waves


def test_jumps_flag_both_sides_of_a_spike_and_skip_missing_values():
    index = _index(["a"] * 5 + ["b"] * 3, [1, 2, 3, 4, 5, 1, 2, 3])
    values = pd.Series([100, 110, 1500, 120, np.nan, 10, np.nan, 95.0])
    outcome = jumps(index, values, "income", factor=10)
    # a: 110 -> 1500 (x13.6) and 1500 -> 120 (/12.5); b: 10 -> 95 across the missing wave (x9.5) passes
    assert outcome.failed_rows == 2
    assert outcome.examples == [("a", 3), ("a", 4)]


def test_outlier_rules_tukey_and_robust_z():
    values = pd.Series(np.r_[np.linspace(10, 20, 101), 100.0, -50.0])
    index = _index([f"u{i:03d}" for i in range(values.size)], [1] * values.size)
    # Tukey: Q1 = 12.5, Q3 = 17.5, IQR = 5 -> fences [-2.5, 32.5] for k = 3
    tukey = outliers(index, values, "x", OutlierRule(iqr=3))
    assert tukey.failed_rows == 2
    # robust z: median 15, MAD 2.5 -> scale 3.7065; |100 - 15| / 3.7065 = 22.9 > 5; |-50 - 15| / 3.7065 = 17.5
    robust = outliers(index, values, "x", OutlierRule(z=20))
    assert robust.failed_rows == 1 and robust.examples == [("u101", 1)]
    logged = outliers(index, values, "x", OutlierRule(iqr=3, log=True))  # log skips the negative value
    assert logged.failed_rows == 1


def test_treatment_absorbing_uses_wave_order_not_row_order():
    index = _index(["a", "a", "a"], [2012, 2010, 2011])
    assert treatment_absorbing(index, np.array([1, 0, 1]), "treated").success
    assert not treatment_absorbing(index, np.array([0, 0, 1]), "treated").success


def test_personal_leak_matches_names_case_and_punctuation_insensitively():
    index = _index(["a", "b", "c", "d"], [1, 1, 1, 1])
    notes = pd.Series(["", "visita a ROSA quispe-MAMANI, ok", "Rosa vino", "tel 912345678"], dtype="str")
    personal = {"head_name": pd.Series(["Rosa Quispe Mamani", "Juan Pari Apaza", "Ana Flores Turpo", "X Y Z"],
                                       dtype="str")}
    outcome = personal_leak(index, notes, "notes", {"phone": r"(?:^|\D)9\d{8}(?:\D|$)"}, personal)
    assert outcome.failed_rows == 2
    assert outcome.examples == [("b", 1), ("d", 1)]
    assert "Rosa" not in outcome.message and "912345678" not in outcome.message


def test_validate_rejects_a_contract_object_naming_an_undeclared_column():
    from impactkit.contracts import load_contract, validate
    from impactkit.errors import ContractError

    contract = load_contract(Path(__file__).resolve().parents[1] / "data_contracts" / "peru_tap.yaml")
    panel_spec = contract.panel.model_copy(update={"cluster": "village"})
    item = contract.customProperties[0].model_copy(update={"value": panel_spec})
    broken = contract.model_copy(update={"customProperties": [item]})
    with pytest.raises(ContractError, match="'village' is not a schema property"):
        validate(simulate_peru_tap().head(10), broken)


def test_constant_within_unit_treats_two_empty_cells_as_equal():
    from impactkit.contracts.panel_rules import constant_within_unit

    index = _index(["a", "a", "b", "b", "c", "c"], [1, 2, 1, 2, 1, 2])
    numbers = constant_within_unit(index, pd.Series([np.nan, np.nan, 1.0, np.nan, 2.0, 2.0]), "x", "time_invariant")
    assert numbers.failed_rows == 2 and numbers.examples == [("b", 1), ("b", 2)]  # only b changes (1 -> empty)
    text = constant_within_unit(index, pd.Series([None, None, "C1", "C2", "C3", "C3"], dtype="str"), "c", "cluster")
    assert text.failed_rows == 2 and text.examples == [("b", 1), ("b", 2)]
