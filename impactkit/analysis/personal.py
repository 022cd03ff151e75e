"""The personal values of an analysis's data, read as the analysis reads them (for the guard)."""

from __future__ import annotations

from typing import Any

from impactkit.contracts.loader import load_contract
from impactkit.privacy import personal_values


def analysis_personal_values(spec: Any) -> list[str]:
    """Personal values of an analysis's data file (``spec``: an ``AnalysisSpec``), read through
    :func:`impactkit.io.read_table` with the analysis's contract, for
    :func:`impactkit.privacy.guard_text` and :func:`impactkit.privacy.guard_outputs`; every
    partition of a directory or glob of Parquet files."""
    contract = load_contract(spec.path(spec.data.contract))
    if not contract.personal_columns:
        return []
    # a partitioned dataset is read partition by partition (only its personal columns)
    values: set[str] = set()
    for path in spec.data_files().values():
        values.update(personal_values(path, contract=contract))
    return sorted(values)
