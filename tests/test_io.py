"""Readers: CSV, Parquet, Stata and Excel round trips, and their specific error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.contracts import load_contract, parse_contract, validate
from impactkit.datasets.peru_tap import simulate_peru_tap
from impactkit.errors import DataReadError, InputError
from impactkit.io import read_table

CONTRACT = Path(__file__).resolve().parents[1] / "data_contracts" / "peru_tap.yaml"


@pytest.fixture(scope="module")
def contract():
    return load_contract(CONTRACT)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_peru_tap()


def _same_values(read: pd.DataFrame, original: pd.DataFrame) -> None:
    """Equal values column by column (dtypes may differ by format: int32 in Stata, category...)."""
    assert list(read.columns) == list(original.columns)
    for column in original.columns:
        left, right = read[column], original[column]
        if pd.api.types.is_numeric_dtype(right.dtype):
            np.testing.assert_allclose(left.to_numpy(dtype=float), right.to_numpy(dtype=float), rtol=0, atol=1e-9,
                                       err_msg=column)  # exact up to float text round trip
        else:
            assert left.astype(str).tolist() == right.astype(str).tolist(), column


def test_csv_round_trip_keeps_ids_and_validates(tmp_path, panel, contract):
    frame = panel.copy()
    frame.loc[0, "dni"] = "01234567"  # a leading zero must survive
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    read = read_table(path, contract=contract)
    _same_values(read, frame)
    assert read.loc[0, "dni"] == "01234567"
    assert validate(read, contract).ok


def test_parquet_round_trip(tmp_path, panel, contract):
    path = tmp_path / "panel.parquet"
    panel.to_parquet(path)
    pd.testing.assert_frame_equal(read_table(path, contract=contract), panel)


def test_stata_keeps_value_labels_as_categories(tmp_path, panel, contract):
    frame = panel.copy()
    frame["district"] = frame["district"].astype("category")
    for column in ("household_id", "community_id", "head_name", "dni", "phone", "notes"):
        frame[column] = frame[column].astype(object)
    path = tmp_path / "panel.dta"
    frame.to_stata(path, write_index=False)
    read = read_table(path, contract=contract)
    assert isinstance(read["district"].dtype, pd.CategoricalDtype)
    assert set(read["district"].cat.categories) == set(panel["district"])
    _same_values(read, panel)
    assert validate(read, contract).ok


def test_excel_round_trip(tmp_path, panel, contract):
    head = panel.head(200)
    path = tmp_path / "panel.xlsx"
    head.to_excel(path, index=False)
    read = read_table(path, contract=contract)
    assert (read["notes"] == "").sum() == (head["notes"] == "").sum()  # empty text cells stay empty text
    _same_values(read, head)


def test_wrong_delimiter(tmp_path, panel):
    path = tmp_path / "semicolon.csv"
    panel.head(20).to_csv(path, index=False, sep=";")
    with pytest.raises(DataReadError, match=r"read as one column but the header holds ';': wrong delimiter"):
        read_table(path)
    tabbed = tmp_path / "tabbed.csv"
    panel.head(20).to_csv(tabbed, index=False, sep="\t")
    with pytest.raises(DataReadError, match="holds a tab: wrong delimiter"):
        read_table(tabbed)


@pytest.mark.parametrize(("texts", "looks"), [
    (["1,200", "15,300.50", "2,750"], "thousands separator"),
    (["n/a", "n/a", "-99"], "missing-value code"),
])
def test_text_in_a_numeric_column(tmp_path, panel, contract, texts, looks):
    frame = panel.head(100).copy()
    income = frame["income"].astype(object)
    income.iloc[[4, 9, 30]] = texts
    frame["income"] = income
    path = tmp_path / "text.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataReadError) as info:
        read_table(path, contract=contract)
    message = str(info.value)
    text_rows = 2 if looks == "missing-value code" else 3  # '-99' is a number, only 'n/a' is text
    assert f"column 'income' is declared number but {text_rows} row(s) hold text" in message
    assert "data rows [5, 10" in message  # 1-based data rows
    assert looks in message


def test_text_in_a_personal_numeric_column_is_not_described(tmp_path, panel):
    contract = parse_contract(CONTRACT.read_text().replace(
        "        logicalType: string\n        physicalType: string\n        description: National identity",
        "        logicalType: integer\n        physicalType: int64\n        description: National identity"
    ).replace("logicalTypeOptions: {pattern: '^\\d{8}$'}", "logicalTypeOptions: {minimum: 0}"), "variant.yaml")
    frame = panel.head(50).copy()
    frame.loc[frame.index[3], "dni"] = "12,345,678"
    path = tmp_path / "dni.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataReadError) as info:
        read_table(path, contract=contract)
    message = str(info.value)
    assert "column 'dni' is declared integer but 1 row(s) hold text, e.g. data rows [4]" in message
    assert "looks like" not in message and "12,345,678" not in message


def test_encoding_problem_suggests_latin1_and_contract_can_declare_it(tmp_path, panel, contract):
    frame = panel.head(30).copy()
    frame.loc[frame.index[2], "notes"] = "Informante: cónyuge"
    path = tmp_path / "latin1.csv"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    with pytest.raises(DataReadError, match=r"not valid utf-8 text: byte 0xf3 .*line 4.*encoding: latin-1"):
        read_table(path, contract=contract)
    latin = parse_contract(CONTRACT.read_text().replace("encoding: utf-8", "encoding: latin-1"), "latin.yaml")
    assert read_table(path, contract=latin).loc[2, "notes"] == "Informante: cónyuge"


def test_unreadable_files(tmp_path):
    with pytest.raises(DataReadError, match="file not found"):
        read_table(tmp_path / "absent.csv")
    odd = tmp_path / "panel.sav"
    odd.write_bytes(b"x")
    with pytest.raises(DataReadError, match="unknown table format '.sav'"):
        read_table(odd)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file")
    with pytest.raises(DataReadError, match="cannot read as parquet"):
        read_table(broken)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataReadError, match="the file is empty"):
        read_table(empty)


# ---------------------------------------------------------------------------------- i12: inputs
def _labelled_contract(tmp_path, treated_type: str):
    from impactkit.contracts import load_contract

    text = f"""
apiVersion: v3.0.2
kind: DataContract
id: labelled
name: labelled
version: 1.0.0
status: active
schema:
  - name: panel
    physicalType: table
    logicalType: object
    properties:
      - {{name: id, logicalType: integer, physicalType: int64, required: true, primaryKey: true, primaryKeyPosition: 1}}
      - {{name: t, logicalType: integer, physicalType: int64, required: true, primaryKey: true, primaryKeyPosition: 2}}
      - {{name: treated, logicalType: {treated_type}, required: true}}
      - {{name: y, logicalType: number, physicalType: float64, required: true}}
customProperties:
  - property: panel
    value: {{unit_key: id, time_key: t, waves: [1, 2]}}
"""
    path = tmp_path / f"contract_{treated_type}.yaml"
    path.write_text(text, encoding="utf-8")
    return load_contract(path)


def _write_labelled_dta(path):
    frame = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 1, 2], "treated": [0, 1, 0, 0], "y": [1.0, 2.0, 3.0, 4.5]})
    frame.to_stata(path, write_index=False, value_labels={"treated": {0: "No", 1: "Yes"}})


def test_stata_value_labels_follow_the_contract(tmp_path):
    """Codes when the contract declares the column integer; labels when it declares string."""
    from impactkit.contracts import validate
    from impactkit.io import read_table

    path = tmp_path / "labelled.dta"
    _write_labelled_dta(path)
    codes = read_table(path, contract=_labelled_contract(tmp_path, "integer"))
    assert codes["treated"].tolist() == [0, 1, 0, 0]
    assert validate(path, _labelled_contract(tmp_path, "integer")).ok
    labels = read_table(path, contract=_labelled_contract(tmp_path, "string"))
    assert labels["treated"].astype(str).tolist() == ["No", "Yes", "No", "No"]
    assert isinstance(read_table(path)["treated"].dtype, pd.CategoricalDtype)  # no contract: as pandas reads it


def test_polars_frames_are_accepted_everywhere_a_frame_is():
    import polars as pl

    import impactkit as ik

    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"id": np.repeat(np.arange(n // 2), 2), "t": np.tile([1, 2], n // 2)})
    frame["g"] = np.where(frame["id"] < n // 4, 2, 0)
    frame["d"] = ((frame["g"] > 0) & (frame["t"] == 2)).astype(int)
    frame["y"] = rng.normal(size=n) + 0.5 * frame["d"]
    from_pandas = ik.did(frame, y="y", unit="id", time="t", treated="d", method="twfe").tidy()
    from_polars = ik.did(pl.from_pandas(frame), y="y", unit="id", time="t", treated="d", method="twfe").tidy()
    assert from_polars["estimate"].iloc[0] == from_pandas["estimate"].iloc[0]
    with pytest.raises(InputError, match="expected a data frame"):
        ik.did([1, 2, 3], y="y", unit="id", time="t", treated="d")
