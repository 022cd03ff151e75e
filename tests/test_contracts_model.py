"""Contract loading: ODCS v3 fields and panel extension validated with file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from impactkit.contracts import load_contract, parse_contract
from impactkit.contracts.gx_suite import compile_rules, suite_json
from impactkit.contracts.quiet import ephemeral_context, import_gx
from impactkit.errors import ContractError, InputError

CONTRACT = Path(__file__).resolve().parents[1] / "data_contracts" / "peru_tap.yaml"
BASE = CONTRACT.read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in ``text``."""
    return text[: text.index(needle)].count("\n") + 1


def test_peru_contract_loads_with_panel_extension():
    contract = load_contract(CONTRACT)
    assert contract.apiVersion.startswith("v3.0.")
    panel = contract.panel
    assert (panel.unit_key, panel.time_key) == ("household_id", "wave")
    assert panel.waves == [2008, 2009, 2010, 2011, 2012, 2013]
    assert contract.personal_columns == ("head_name", "dni", "phone")
    assert panel.thresholds.outliers["income"].iqr == 3


@pytest.mark.parametrize(
    ("name", "old", "new", "needle", "field", "reason"),
    [
        ("typo in a key", "        logicalType: number\n        physicalType: float64\n        description: Household income",
         "        logicalTyp: number\n        physicalType: float64\n        description: Household income",
         "logicalTyp:", "properties[8].logicalTyp (property 'income')", "unknown key"),
        ("wrong type", "required: true\n        primaryKey: true\n        primaryKeyPosition: 2",
         "required: perhaps\n        primaryKey: true\n        primaryKeyPosition: 2",
         "required: perhaps", "properties[1].required (property 'wave')", "valid boolean"),
        ("unknown rule", "- rule: validValues\n            validValues: [0, 2010",
         "- rule: nullRatio\n            validValues: [0, 2010",
         "rule: nullRatio", "properties[4].quality[0].rule (property 'cohort')", "'nullRatio'"),
        ("threshold out of range", "attrition_max_share: 0.10", "attrition_max_share: 1.5",
         "attrition_max_share", "value.thresholds.attrition_max_share", "less than or equal to 1"),
        ("typo in the panel extension", "time_invariant:", "time_invarant:",
         "time_invarant", "value.time_invarant", "unknown key"),
        ("panel names an undeclared column", "jump_factor: {income: 10}", "jump_factor: {incomes: 10}",
         "jump_factor", "thresholds.jump_factor.incomes", "not a schema property"),
        ("unknown logical type", "logicalType: integer\n        physicalType: int64\n        required: true\n"
         "        logicalTypeOptions: {minimum: 0, maximum: 20}",
         "logicalType: int\n        physicalType: int64\n        required: true\n"
         "        logicalTypeOptions: {minimum: 0, maximum: 20}",
         "logicalType: int\n", "properties[7].logicalType (property 'n_taps')", "'int'"),
        ("two outlier methods", "{iqr: 3, log: true}", "{iqr: 3, z: 4}",
         "{iqr: 3, z: 4}", "thresholds.outliers.income", "exactly one of"),
        ("duplicated key", "kind: DataContract", "kind: DataContract\nkind: DataContract",
         "kind: DataContract\nkind", None, "appears twice"),
        ("bad api version", "apiVersion: v3.0.2", "apiVersion: v2.2.0", "apiVersion", "apiVersion", "pattern"),
    ],
)
def test_contract_errors_name_file_line_and_field(tmp_path, name, old, new, needle, field, reason):
    text = BASE.replace(old, new, 1)
    assert text != BASE, name
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    line = _line_of(text, needle) + (1 if name == "duplicated key" else 0)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    if field is not None:
        assert field in message, message
    assert reason in message, message
    assert "\n" not in message


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ContractError, match=r"broken.yaml:5: not valid YAML"):
        parse_contract(BASE.replace("kind: DataContract", "kind: [DataContract"), "broken.yaml")
    with pytest.raises(ContractError, match="contract file not found"):
        load_contract(tmp_path / "absent.yaml")
    assert issubclass(ContractError, InputError)


def test_gx_suite_json_round_trips():
    contract = load_contract(CONTRACT)
    exported = suite_json(contract)
    text = json.dumps(exported, sort_keys=True)
    gx = import_gx()
    ephemeral_context()
    rebuilt = gx.ExpectationSuite(**json.loads(text))
    assert rebuilt.to_json_dict() == exported
    assert len(rebuilt.expectations) == len(compile_rules(contract))
    kinds = {e["type"] for e in exported["expectations"]}
    assert {"expect_table_columns_to_match_set", "expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
            "expect_column_values_to_be_in_set", "expect_column_values_to_match_regex",
            "expect_compound_columns_to_be_unique"} <= kinds
    # every expectation carries the impactkit rule name it reports under
    assert all(e["meta"]["impactkit_rule"] for e in exported["expectations"])
