"""A panel without a design column the contract declares (cluster, treatment, cohort) is unusable: exit 2."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import PERU, ROOT

CONTRACT = ROOT / "data_contracts" / "peru_tap.yaml"


@pytest.mark.parametrize("column", ["community_id", "treated", "cohort"])
def test_missing_design_column_is_exit_2_naming_it(tmp_path, cli, column):
    frame = pd.read_parquet(PERU / "panel.parquet").drop(columns=[column])
    data = tmp_path / "panel.parquet"
    frame.to_parquet(data, index=False)
    out = tmp_path / "report.json"
    result = cli("validate", data, "--contract", CONTRACT, "--json", out)
    assert result.exit_code == 2
    assert f"'{column}'" in result.output and "missing" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
