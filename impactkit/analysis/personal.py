"""The personal values of an analysis's data, read as the analysis reads them (for the guard)."""

from __future__ import annotations

from typing import Any

from impactkit.contracts.loader import load_contract
from impactkit.privacy import personal_values


def analysis_personal_values(spec: Any) -> list[str]:
    """Personal values of an analysis's data file (``spec``: an ``AnalysisSpec``), read through
    :func:`impactkit.io.read_table` with the analysis's contract, for
    :func:`impactkit.privacy.guard_text` and :func:`impactkit.privacy.guard_outputs`."""
    contract = load_contract(spec.path(spec.data.contract))
    return personal_values(spec.path(spec.data.file), contract=contract)
