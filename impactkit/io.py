"""Readers for survey tables: CSV, Parquet, Stata ``.dta`` and Excel ``.xlsx``.

:func:`read_table` returns a pandas frame or raises :class:`impactkit.errors.DataReadError`
with a one-line message that says what is wrong and where:

- a CSV read as a single column whose header holds ``;`` or a tab: wrong delimiter;
- bytes that are not UTF-8: the first bad byte's position, and a suggestion to declare
  ``encoding: latin-1`` in the contract (a contract that declares it is decoded with it);
- a column the contract declares numeric holding text such as ``1,200`` (thousands
  separator) or ``n/a`` (missing-value code): the column, how many rows, example row
  numbers and what the text looks like -- the text itself is never shown for a column
  the contract marks as personal.

Stata value labels are kept as pandas categories.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from impactkit.errors import DataReadError

if TYPE_CHECKING:
    from impactkit.contracts.model import Contract

MISSING_CODES = frozenset({"n/a", "na", "nan", "none", "null", ".", "-", "--", "?", "missing", "ns/nr", "nr", "ns",
                           "-99", "-999", "-9", "-8", "-88", "-888", "9999", "99"})
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}([,.\s']\d{3})+([.,]\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".dta": "stata", ".xlsx": "excel", ".xlsm": "excel"}


def _row_numbers(mask: pd.Series, limit: int = 5) -> list[int]:
    """1-based data row numbers (the header is row 0) of the first ``limit`` True values."""
    return [int(i) + 1 for i in mask.to_numpy().nonzero()[0][:limit]]


def _describe_text(values: pd.Series) -> str:
    """What non-numeric text in a numeric column looks like, without quoting it."""
    text = values.astype(str).str.strip()
    kinds = []
    if text.str.lower().isin(MISSING_CODES).any():
        kinds.append("a missing-value code such as 'n/a'")
    if text.str.match(_THOUSANDS).any():
        kinds.append("numbers with a thousands separator such as '1,200'")
    elif text.str.match(_DECIMAL_COMMA).any():
        kinds.append("numbers with a decimal comma such as '3,5'")
    return " and ".join(kinds) if kinds else "other text"


def check_numeric_columns(frame: pd.DataFrame, contract: "Contract", source: str) -> pd.DataFrame:
    """Convert columns the contract declares integer/number; raise on text that is not a number."""
    personal = set(contract.personal_columns)
    out = frame
    for prop in contract.table.properties:
        name = prop.name
        if prop.logicalType not in ("integer", "number") or name not in frame.columns:
            continue
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            continue  # Stata value labels: the type rule reports it
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna() & (column.astype("string").str.strip() != "")
        if bad.any():
            rows = _row_numbers(bad)
            looks = "" if name in personal else f"; the text looks like {_describe_text(column[bad])}"
            raise DataReadError(f"{source}: column '{name}' is declared {prop.logicalType} but {int(bad.sum())} "
                                f"row(s) hold text, e.g. data rows {rows}{looks}")
        if out is frame:
            out = frame.copy()
        out[name] = numbers
    return out


def _reader_options(contract: "Contract | None") -> dict:
    """pandas options: with a contract, text columns stay text (leading zeros of IDs kept,
    empty cells of free text stay empty strings) and only empty cells are missing in numeric
    columns, so that codes such as 'n/a' are reported instead of silently read as missing."""
    if contract is None:
        return {}
    text = [p.name for p in contract.table.properties if p.logicalType == "string"]
    other = [p.name for p in contract.table.properties if p.logicalType != "string"]
    return {"dtype": {name: "str" for name in text}, "keep_default_na": False,
            "na_values": {name: [""] for name in other}}


def _read_csv(path: Path, encoding: str, options: dict) -> pd.DataFrame:
    raw = path.read_bytes()
    try:
        text_ok = raw.decode(encoding)
        del text_ok
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = " (declare 'encoding: latin-1' in the contract's panel extension if the file is Latin-1)" \
            if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else ""
        raise DataReadError(f"{path}: not valid {encoding} text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                            f"(line {line}){hint}") from None
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(path, encoding=encoding, sep=sep, **options)
    except pd.errors.ParserError as exc:
        raise DataReadError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise DataReadError(f"{path}: the file is empty") from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        for delimiter, label in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
            if delimiter in header:
                raise DataReadError(f"{path}: read as one column but the header holds {label}: wrong delimiter "
                                    f"(impactkit reads comma-separated CSV; save the file with ',' or as .tsv)")
    return frame


def read_stata_labelled(path: Path, contract: "Contract | None") -> pd.DataFrame:
    """A Stata file whose value-labelled columns hold what the contract declares.

    A labelled column (e.g. 0/1 coded "No"/"Yes", as ``iebaltab`` users write them) holds its
    numeric codes when the contract declares it ``integer``/``number``/``boolean``, and its
    labels (a pandas categorical) when it declares ``string``, does not declare it, or there
    is no contract.
    """
    labelled = pd.read_stata(path, convert_categoricals=True)
    categorical = [c for c in labelled.columns if isinstance(labelled[c].dtype, pd.CategoricalDtype)]
    if not categorical or contract is None:
        return labelled
    codes = pd.read_stata(path, convert_categoricals=False)
    declared = {p.name: p.logicalType for p in contract.table.properties}
    for column in categorical:
        kind = declared.get(column)
        if kind in ("integer", "number", "boolean"):
            labelled[column] = codes[column]
    return labelled


def read_table(path: str | Path, *, contract: "Contract | None" = None) -> pd.DataFrame:
    """Read a CSV, Parquet, Stata or Excel table; raise DataReadError on unusable input.

    With a ``contract``: CSV files are decoded with its declared encoding and the columns
    it declares numeric must hold numbers (see the module docstring).
    """
    path = Path(path)
    if not path.exists():
        raise DataReadError(f"{path}: file not found")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataReadError(f"{path}: unknown table format '{path.suffix}' (use .csv, .parquet, .dta or .xlsx)")
    encoding = contract.panel.encoding if contract is not None else "utf-8"
    try:
        if kind == "csv":
            frame = _read_csv(path, encoding, _reader_options(contract))
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        elif kind == "stata":
            frame = read_stata_labelled(path, contract)
        else:
            frame = pd.read_excel(path, engine="openpyxl", **_reader_options(contract))
    except DataReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is unusable input
        first = (str(exc).splitlines() or [""])[0][:200]
        raise DataReadError(f"{path}: cannot read as {kind} ({type(exc).__name__}: {first})") from None
    if contract is not None:
        frame = check_numeric_columns(frame, contract, str(path))
    return frame
