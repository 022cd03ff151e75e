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

:func:`read_toml` reads the TOML files of an analysis (``analysis.toml``, ``costs.toml``) with
the same kind of one-line errors.
"""

from __future__ import annotations

import glob
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from impactkit.errors import DataReadError, InputError

if TYPE_CHECKING:
    from impactkit.contracts.model import Contract

MISSING_CODES = frozenset({"n/a", "na", "nan", "none", "null", ".", "-", "--", "?", "missing", "ns/nr", "nr", "ns",
                           "-99", "-999", "-9", "-8", "-88", "-888", "9999", "99"})
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}([,.\s']\d{3})+([.,]\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".dta": "stata", ".xlsx": "excel", ".xlsm": "excel"}


def read_toml(file: Path, error: type[InputError] = InputError) -> dict:
    """The TOML document in ``file``, or ``error`` naming the file and what is wrong with it.

    Parameters
    ----------
    file : pathlib.Path
        An existing TOML file (the caller says what a missing one means).
    error : type, default InputError
        The :class:`~impactkit.errors.InputError` subclass to raise (``SpecError`` for
        ``analysis.toml``).

    Returns
    -------
    dict
        The parsed document.

    Raises
    ------
    InputError
        (as ``error``) not valid TOML, not UTF-8 text, or nested too deeply to parse.
    """
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{file}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{file}: not UTF-8 text (byte at offset {exc.start}); TOML files are UTF-8") from None
    except RecursionError:
        raise error(f"{file}: not valid TOML: nested too deeply") from None


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
        header = pd.read_csv(path, encoding=encoding, sep=sep, header=None, nrows=1, dtype=str,
                             keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataReadError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataReadError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
    _refuse_duplicate_names([str(v).strip() for v in header.iloc[0].tolist()] if len(header) else [], path)
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


def _refuse_duplicate_names(names: list[str], path: Path) -> None:
    """Two columns with one name: pandas would rename the second (``x.1``) silently."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataReadError(f"{path}: column '{name}' appears twice in the header; rename or drop one")
        seen.add(name)


def _excel_sheet(path: Path, sheet: str | None) -> str:
    """The sheet to read: the only one, or the one named; refuses a silent choice among several."""
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        names = list(book.sheetnames)
    finally:
        book.close()
    if sheet is not None:
        if sheet not in names:
            raise DataReadError(f"{path}: no sheet '{sheet}' (sheets: {', '.join(names)})")
        return sheet
    if len(names) > 1:
        raise DataReadError(f"{path}: the workbook has {len(names)} sheets ({', '.join(names)}); name the one to "
                            "read ('sheet:' in the contract's panel extension)")
    return names[0]


def _refuse_uncached_formulas(path: Path, sheet: str) -> None:
    """Formula cells without a cached value (files written by scripts) read as empty: refuse them."""
    from openpyxl import load_workbook

    formulas = load_workbook(path, read_only=True, data_only=False)
    values = load_workbook(path, read_only=True, data_only=True)
    try:
        header: list = []
        count, first_rows, columns = 0, [], []
        for i, (f_row, v_row) in enumerate(zip(formulas[sheet].iter_rows(values_only=True),
                                               values[sheet].iter_rows(values_only=True))):
            if i == 0:
                header = list(v_row)
            for j, (f, v) in enumerate(zip(f_row, v_row)):
                if v is None and isinstance(f, str) and f.startswith("="):
                    count += 1
                    if len(first_rows) < 5:
                        first_rows.append(i)
                    name = str(header[j]) if j < len(header) and header[j] is not None else f"#{j + 1}"
                    if name not in columns:
                        columns.append(name)
    finally:
        formulas.close()
        values.close()
    if count:
        raise DataReadError(f"{path}: {count} formula cell(s) have no saved value (column(s) "
                            f"{', '.join(repr(c) for c in columns[:5])}; data rows {first_rows}): they would read as "
                            "empty; open and save the file in Excel/LibreOffice, or write values instead of formulas")


def _stata_reason(exc: Exception) -> str | None:
    text = str(exc)
    match = re.search(r"Value labels for column (\S+) are not unique", text)
    if match:
        return (f"column '{match.group(1)}': its Stata value labels are not unique (two codes share one label, so "
                "they cannot be told apart); give each code its own label")
    return None


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


def read_table(path: str | Path, *, contract: "Contract | None" = None, columns: list[str] | None = None,
               sheet: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet, Stata or Excel table; raise DataReadError on unusable input.

    With a ``contract``: CSV files are decoded with its declared encoding, an Excel
    workbook's sheet is the one its panel extension names, and the columns it declares
    numeric must hold numbers (see the module docstring). Refused rather than read
    silently: a header naming one column twice, a workbook of several sheets without
    naming one, formula cells without a saved value. ``columns``: keep only these (those
    present).
    """
    if Path(path).is_dir() or (not Path(path).exists() and any(ch in str(path) for ch in "*?[")):
        return _read_partitioned(path, contract=contract, columns=columns)
    path = Path(path)
    if not path.exists():
        raise DataReadError(f"{path}: file not found")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataReadError(f"{path}: unknown table format '{path.suffix}' (use .csv, .parquet, .dta or .xlsx)")
    encoding = contract.panel.encoding if contract is not None else "utf-8"
    if sheet is None and contract is not None:
        sheet = getattr(contract.panel, "sheet", None)
    try:
        if kind == "csv":
            frame = _read_csv(path, encoding, _reader_options(contract))
        elif kind == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            _refuse_duplicate_names(names, path)
            wanted = [c for c in columns if c in names] if columns is not None else None
            frame = pd.read_parquet(path, columns=wanted)
        elif kind == "stata":
            frame = read_stata_labelled(path, contract)
        else:
            name = _excel_sheet(path, sheet)
            _refuse_uncached_formulas(path, name)
            header = pd.read_excel(path, engine="openpyxl", sheet_name=name, header=None, nrows=1)
            _refuse_duplicate_names([str(v).strip() for v in header.iloc[0].tolist()] if len(header) else [], path)
            frame = pd.read_excel(path, engine="openpyxl", sheet_name=name, **_reader_options(contract))
    except DataReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is unusable input
        reason = _stata_reason(exc) if kind == "stata" else None
        if reason is None:
            first = next((line for line in str(exc).splitlines() if line.strip()), "")[:200]
            reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        raise DataReadError(f"{path}: cannot read as {kind} ({reason})") from None
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    if contract is not None:
        frame = check_numeric_columns(frame, contract, str(path))
    return frame


def _read_partitioned(path: str | Path, *, contract: "Contract | None", columns: list[str] | None) -> pd.DataFrame:
    """A directory or glob of Parquet files (partitions, sorted by path) as one frame, in memory."""
    files = dataset_files(path)
    if not files:
        raise DataReadError(f"{path}: no Parquet file found (give a file, a directory or a glob)")
    parts = [read_table(f, contract=contract, columns=columns) for f in files]
    names = list(parts[0].columns)
    for f, part in zip(files, parts):
        if list(part.columns) != names:
            raise DataReadError(f"{f}: its columns differ from those of {files[0].name} (partitions must share one schema)")
    return pd.concat(parts, ignore_index=True)


def dataset_files(path: str | Path) -> list[Path]:
    """Parquet files of a dataset: a file, a directory (searched recursively) or a glob pattern."""
    text = str(path)
    if "://" in text:  # an object store (s3://, gs://, abfs://...): listed by fsspec on the workers' side
        return [Path(text)]
    candidate = Path(text)
    if candidate.is_file():
        return [candidate]
    if candidate.is_dir():
        return sorted(p for p in candidate.rglob("*.parquet") if p.is_file())
    if any(ch in text for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    return []
