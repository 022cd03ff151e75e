"""The shortcuts that keep validation fast give the answers of the plain computation.

- pattern/length rules first run in GX on the distinct values of their column: counts and
  example keys of a failing rule must still be those of every row (checked against a
  pandas count of the same rule, zero tolerance);
- ``sort_order`` skips the sort of an already sorted panel: it must equal ``np.lexsort``;
- the per-run memo of GX's ``Expectation.configuration`` must be undone after a run;
- validating from a fresh process prints nothing (GX logs, tqdm bars).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.contracts import load_contract, parse_contract, validate
from impactkit.contracts.panel_rules import sort_order
from impactkit.datasets.peru_tap import simulate_peru_tap
from impactkit.seeds import rng

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_PATH = ROOT / "data_contracts" / "peru_tap.yaml"


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return simulate_peru_tap()


def _row(report, rule: str, column: str) -> pd.Series:
    results = report.results
    return results.loc[(results["rule"] == rule) & (results["column"] == column)].iloc[0]


def test_pattern_rule_counts_every_row_of_a_repeated_bad_value(clean):
    panel = clean.copy()
    units = sorted(panel["household_id"].unique())[:3]
    hit = panel["household_id"].isin(units)
    panel.loc[hit, "dni"] = "1234567"  # one bad value, repeated over every wave of three units
    report = validate(panel, load_contract(CONTRACT_PATH))
    row = _row(report, "pattern", "dni")
    truth = int((~panel["dni"].str.fullmatch(r"\d{8}")).sum())  # pandas count of the same rule
    assert truth == int(hit.sum()) > 3
    assert not row["success"] and row["failed_rows"] == truth
    # GX's first five failing row indices (row order), mapped to (unit, wave) keys
    expected = list(panel.loc[hit, ["household_id", "wave"]].head(5).itertuples(index=False, name=None))
    assert row["examples"] == expected


def test_length_rule_on_distinct_values_matches_a_pandas_count(clean):
    text = CONTRACT_PATH.read_text(encoding="utf-8").replace(
        "logicalTypeOptions: {pattern: '^C\\d{2}$'}", "logicalTypeOptions: {pattern: '^C\\d{2}$', maxLength: 3}")
    contract = parse_contract(text, "peru_tap.yaml (maxLength)")
    assert validate(clean, contract).ok
    panel = clean.copy()
    panel.loc[panel["community_id"] == "C01", "community_id"] = "C0001"
    report = validate(panel, contract)
    truth = int((panel["community_id"].str.len() > 3).sum())
    assert truth > 0
    for rule in ("length", "pattern"):
        row = _row(report, rule, "community_id")
        assert not row["success"] and row["failed_rows"] == truth


def test_sort_order_equals_lexsort_on_sorted_and_shuffled_panels():
    draws = rng(20261129, "test-sort-order")
    codes = np.repeat(np.arange(500), 4)
    times = np.tile(np.array([2008, 2009, 2009, 2011]), 500)  # ties within unit keep row order
    assert np.array_equal(sort_order(codes, times), np.lexsort((times, codes)))
    for _ in range(5):
        perm = draws.permutation(codes.size)
        assert np.array_equal(sort_order(codes[perm], times[perm]), np.lexsort((times[perm], codes[perm])))
    one = np.array([0])
    assert np.array_equal(sort_order(one, one), np.array([0]))


def test_gx_configuration_property_is_restored_after_a_run(clean):
    from great_expectations.expectations.expectation import Expectation

    before = Expectation.__dict__["configuration"]
    validate(clean.head(400), load_contract(CONTRACT_PATH))
    assert Expectation.__dict__["configuration"] is before


def test_validation_from_a_fresh_process_prints_nothing(tmp_path):
    code = (
        "import logging, pandas as pd\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from impactkit.contracts import validate\n"
        "from impactkit.datasets.peru_tap import simulate_peru_tap\n"
        "panel = simulate_peru_tap().drop(columns=['income'])\n"
        "panel.loc[3, 'dni'] = 'x'\n"
        f"report = validate(panel, {str(CONTRACT_PATH)!r})\n"
        "assert not report.ok\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "" and done.stderr == ""


def test_memoised_configuration_follows_a_reassigned_field():
    from impactkit.contracts.gx_suite import _configurations_built_once
    from impactkit.contracts.quiet import import_gx

    gx = import_gx()
    expectation = gx.expectations.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=1)
    with _configurations_built_once():
        first = expectation.configuration
        assert expectation.configuration is first  # built once
        expectation.max_value = 5
        assert expectation.configuration.kwargs["max_value"] == 5
    assert expectation.configuration.kwargs["max_value"] == 5
