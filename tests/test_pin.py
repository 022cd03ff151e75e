"""Pinned analyses: the shipped lock verifies, and tampering is caught with the documented code."""

from __future__ import annotations

import json

import pytest

from impactkit.pin.numbers import compare_numbers, flatten_numbers, numbers_digest
from tests.conftest import PERU


def test_shipped_peru_lock_reruns_bit_identical(cli):
    """The reviewer's path: `impactkit rerun analyses/peru_tap` exits 0."""
    result = cli("rerun", PERU)
    assert result.exit_code == 0, result.output
    assert "bit-identical" in result.output


def test_lock_records_inputs_environment_seeds_and_numbers():
    lock = json.loads((PERU / "analysis.lock.json").read_text())
    assert {"panel.parquet", "analysis.toml", "../../data_contracts/peru_tap.yaml",
            "../portfolio.yaml", "../interventions/peru_tap.yaml"} <= set(lock["inputs"])
    assert any(k.startswith("impactkit/pack/templates/") for k in lock["inputs"])
    assert lock["seeds"]["entropy"] == 2250109
    assert lock["environment"]["packages"]["numpy"]
    assert lock["impactkit"]["version"]
    assert lock["numbers_digest"] == numbers_digest(lock["numbers"])
    # every reported number, at full precision, named like the pack names it
    assert "headline.estimate" in lock["numbers"]
    assert any(k.startswith("estimators[estimator=Two-way fixed effects]") for k in lock["numbers"])
    assert len(lock["numbers"]) > 500


def test_one_byte_of_data_changed_is_exit_2_naming_file_and_hashes(peru_copy, cli):
    data = peru_copy / "panel.parquet"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    result = cli("rerun", peru_copy)
    assert result.exit_code == 2
    assert "panel.parquet changed: pinned sha256" in result.output
    lock = json.loads((peru_copy / "analysis.lock.json").read_text())
    assert lock["inputs"]["panel.parquet"] in result.output


def test_one_rule_in_the_contract_changed_is_exit_2(peru_copy, cli):
    contract = peru_copy.parent.parent / "data_contracts" / "peru_tap.yaml"
    text = contract.read_text()
    assert "maximum" in text
    contract.write_text(text.replace("maximum", "maximum", 1) + "\n# edited\n")
    result = cli("rerun", peru_copy)
    assert result.exit_code == 2
    assert "data_contracts/peru_tap.yaml changed" in result.output


def test_one_weight_in_an_intervention_file_changed_is_exit_2(peru_copy, cli):
    portfolio = peru_copy.parent / "portfolio.yaml"
    text = portfolio.read_text()
    assert "evidence_strength: 0.15" in text
    portfolio.write_text(text.replace("evidence_strength: 0.15", "evidence_strength: 0.16", 1))
    result = cli("rerun", peru_copy)
    assert result.exit_code == 2
    assert "portfolio.yaml changed" in result.output


def test_changed_seed_is_exit_2_naming_both_seeds(peru_copy, cli):
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace("entropy = 2250109", "entropy = 7"))
    result = cli("rerun", peru_copy)
    assert result.exit_code == 2
    assert "seed changed" in result.output and "2250109" in result.output and "now 7" in result.output


def test_edited_number_in_the_lock_is_exit_1_with_drift_table(peru_copy, cli):
    lock_path = peru_copy / "analysis.lock.json"
    lock = json.loads(lock_path.read_text())
    pinned = lock["numbers"]["headline.estimate"]
    lock["numbers"]["headline.estimate"] = pinned + 0.01
    lock_path.write_text(json.dumps(lock, indent=2, sort_keys=True))
    result = cli("rerun", peru_copy)
    assert result.exit_code == 1
    assert "lock was edited" in result.output
    assert "headline.estimate" in result.output
    assert lock_path.read_text() == json.dumps(lock, indent=2, sort_keys=True)  # never overwritten


def test_lock_from_other_package_versions_reports_them_and_verifies_within_tolerance(peru_copy, cli):
    lock_path = peru_copy / "analysis.lock.json"
    lock = json.loads(lock_path.read_text())
    lock["environment"]["packages"]["numpy"] = "1.26.0"
    lock["environment"]["packages"]["statsmodels"] = "0.14.1"
    # a last-digit difference that a different BLAS could produce
    key = "headline.std_error"
    lock["numbers"][key] = lock["numbers"][key] * (1 + 1e-12)
    lock["numbers_digest"] = numbers_digest(lock["numbers"])
    lock_path.write_text(json.dumps(lock))
    result = cli("rerun", peru_copy)
    assert result.exit_code == 0, result.output
    assert "environment differs" in result.output and "1.26.0" in result.output
    assert "within tolerance" in result.output


def test_pin_reports_what_changed(peru_copy, cli):
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace("multiplier_draws = 999", "multiplier_draws = 499"))
    result = cli("pin", peru_copy)
    assert result.exit_code == 0, result.output
    assert "analysis.toml" in result.output
    assert "numbers changed since the previous lock" in result.output
    assert "event_study" in result.output  # uniform bands depend on the bootstrap draws
    after = cli("rerun", peru_copy)
    assert after.exit_code == 0, after.output


def test_missing_or_malformed_lock_is_exit_2(peru_copy, cli):
    (peru_copy / "analysis.lock.json").unlink()
    assert cli("rerun", peru_copy).exit_code == 2
    (peru_copy / "analysis.lock.json").write_text("{not json")
    result = cli("rerun", peru_copy)
    assert result.exit_code == 2 and "not valid JSON" in result.output


def test_flatten_names_records_by_identifying_fields():
    doc = {"estimators": [{"estimator": "A", "estimate": 1.0}, {"estimator": "B", "estimate": 2.0}],
           "rows": [{"x": 1}, {"x": 2}], "flag": True, "label": "t"}
    flat = flatten_numbers(doc)
    assert flat == {"estimators[estimator=A].estimate": 1.0, "estimators[estimator=B].estimate": 2.0,
                    "rows[0].x": 1, "rows[1].x": 2}


def test_compare_exact_and_within_tolerance():
    pinned = {"a": 1.0, "b": 2.0, "c": 3.0}
    now = {"a": 1.0, "b": 2.0 + 1e-12, "d": 4.0}
    exact = {r["quantity"] for r in compare_numbers(pinned, now, exact=True, rtol=1e-6, atol=0)}
    assert exact == {"b", "c", "d"}
    loose = {r["quantity"] for r in compare_numbers(pinned, now, exact=False, rtol=1e-6, atol=0)}
    assert loose == {"c", "d"}
    with pytest.raises(KeyError):
        {r["quantity"]: r for r in compare_numbers(pinned, now, exact=True, rtol=0, atol=0)}["a"]


def test_drift_names_with_brackets_print_verbatim(peru_copy, cli):
    lock_path = peru_copy / "analysis.lock.json"
    lock = json.loads(lock_path.read_text())
    key = "attrition.rows[wave=2009].estimate"
    assert key in lock["numbers"]
    lock["numbers"][key] += 0.5
    lock["numbers_digest"] = numbers_digest(lock["numbers"])
    lock_path.write_text(json.dumps(lock))
    result = cli("rerun", peru_copy)
    assert result.exit_code == 1
    assert key in result.output  # not eaten as rich markup


def test_pinned_environment_names_impactkit_source(peru_copy, cli):
    lock_path = peru_copy / "analysis.lock.json"
    lock = json.loads(lock_path.read_text())
    assert len(lock["impactkit"]["source_sha256"]) == 64
    lock["impactkit"]["source_sha256"] = "0" * 64
    lock_path.write_text(json.dumps(lock))
    result = cli("rerun", peru_copy)
    assert result.exit_code == 0, result.output
    assert "impactkit (source sha256)" in result.output and "within tolerance" in result.output
