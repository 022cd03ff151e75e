"""``impactkit validate``: exit codes 0/1/2, JSON output, and no personal value in any output."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from impactkit.cli import app
from impactkit.contracts import validate
from impactkit.datasets.peru_tap import simulate_peru_tap

CONTRACT = str(Path(__file__).resolve().parents[1] / "data_contracts" / "peru_tap.yaml")
CANARY_NAME = "Zzcanary Qqxy Wwvu"
CANARY_DNI = "CANARY7"  # also breaks the dni pattern, so that the dni rule fails and reports
CANARY_PHONE = "9CANARY99"


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_peru_tap()


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def _invoke(runner, *args):
    return runner.invoke(app, ["validate", *map(str, args)])


def test_exit_0_when_every_rule_passes(runner, panel, tmp_path):
    data = tmp_path / "panel.parquet"
    panel.to_parquet(data)
    out = tmp_path / "report.json"
    result = _invoke(runner, data, "--contract", CONTRACT, "--json", out)
    assert result.exit_code == 0, result.output
    assert "rules passed" in result.output
    report = json.loads(out.read_text())
    assert report["ok"] is True
    assert {r["engine"] for r in report["results"]} == {"great_expectations", "impactkit"}


def test_exit_1_with_failed_rules_table(runner, panel, tmp_path):
    bad = panel.copy()
    bad.loc[bad.index[[10, 20]], "income"] = -1.0
    data = tmp_path / "bad.parquet"
    bad.to_parquet(data)
    out = tmp_path / "report.json"
    result = _invoke(runner, data, "--contract", CONTRACT, "--json", out)
    assert result.exit_code == 1, result.output
    assert "range" in result.output and "income" in result.output
    failed = [r for r in json.loads(out.read_text())["results"] if not r["success"]]
    assert [(r["rule"], r["column"], r["failed_rows"]) for r in failed] == [("range", "income", 2)]
    expected = [list(k) for k in bad.iloc[[10, 20]][["household_id", "wave"]].itertuples(index=False)]
    assert failed[0]["examples"] == expected


def test_exit_2_for_unusable_input(runner, panel, tmp_path):
    missing = _invoke(runner, tmp_path / "absent.parquet", "--contract", CONTRACT)
    assert missing.exit_code == 2 and "file not found" in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(Path(CONTRACT).read_text().replace("time_invariant:", "time_invarant:"))
    data = tmp_path / "panel.parquet"
    panel.to_parquet(data)
    bad_contract = _invoke(runner, data, "--contract", broken)
    assert bad_contract.exit_code == 2 and "time_invarant" in bad_contract.output
    no_key = tmp_path / "nokey.parquet"
    panel.drop(columns=["wave"]).to_parquet(no_key)
    result = _invoke(runner, no_key, "--contract", CONTRACT)
    assert result.exit_code == 2 and "time key column 'wave' is missing" in result.output
    assert "Traceback" not in result.output


def test_no_personal_value_reaches_any_output(runner, panel, tmp_path):
    planted = panel.copy()
    first = planted["household_id"] == planted["household_id"].iloc[0]
    planted.loc[first, "head_name"] = CANARY_NAME
    planted.loc[first, "dni"] = CANARY_DNI
    planted.loc[first, "phone"] = CANARY_PHONE
    # leak the canary name and a DNI-like number into the free text of another household
    planted.loc[planted.index[50:53], "notes"] = f"hablar con {CANARY_NAME}"
    planted.loc[planted.index[60], "notes"] = "dni 44556677"
    data = tmp_path / "planted.parquet"
    planted.to_parquet(data)
    out = tmp_path / "report.json"
    result = _invoke(runner, data, "--contract", CONTRACT, "--json", out)
    assert result.exit_code == 1
    report = validate(planted, CONTRACT)
    failed = set(map(tuple, report.failed[["rule", "column"]].to_numpy().tolist()))
    assert failed == {("pattern", "dni"), ("pattern", "phone"), ("personal_leak", "notes")}
    texts = [result.output, out.read_text(), report.to_json(), report.summary(), str(report.to_dict()),
             report.results.to_string(), report._repr_html_()]
    for text in texts:
        for canary in (CANARY_NAME, CANARY_DNI, CANARY_PHONE, "44556677", "Zzcanary"):
            assert canary not in text


def test_validation_is_silent_and_deterministic(panel, capfd, caplog):
    import logging

    caplog.set_level(logging.INFO)
    first = validate(panel, CONTRACT)
    second = validate(panel, CONTRACT, progress=True)  # forced bar: transient, on stderr only
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "Calculating Metrics" not in captured.err and "great_expectations" not in captured.err
    assert not [r for r in caplog.records if r.name.startswith("great_expectations")]
    assert first.to_json() == second.to_json()
