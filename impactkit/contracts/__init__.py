"""Data contracts: ODCS v3 YAML (+ panel extension) -> great-expectations suite + panel rules.

>>> from impactkit.contracts import validate
>>> report = validate("analyses/study/panel.parquet", "data_contracts/study.yaml")  # doctest: +SKIP
>>> report.ok, report.results.columns.tolist()  # doctest: +SKIP

Column rules (columns present, nullability, ranges, allowed sets, patterns, primary key)
run in great-expectations (``engine == "great_expectations"``); the dtype check and the
panel rules (waves, attrition, absorbing treatment, cohort consistency, time-invariance,
clusters, jumps, outliers, missingness per wave, personal-data leaks) run in impactkit
(``engine == "impactkit"``).
See ``docs/contracts.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from impactkit.contracts.loader import load_contract, parse_contract
from impactkit.contracts.model import Contract, reference_problems
from impactkit.contracts.report import ValidationReport, outcomes_frame
from impactkit.errors import ContractError, InputError

__all__ = ["validate", "load_contract", "parse_contract", "Contract", "ValidationReport", "PROGRESS_MIN_ROWS"]

PROGRESS_MIN_ROWS = 1_000_000


def _check_keys(frame: pd.DataFrame, contract: Contract, source: str) -> None:
    panel = contract.panel
    for role, column in (("unit key", panel.unit_key), ("time key", panel.time_key)):
        if column not in frame.columns:
            raise InputError(f"{source}: {role} column '{column}' is missing")
        if frame[column].isna().any():
            rows = frame.index[frame[column].isna().to_numpy()][:5].tolist()
            raise InputError(f"{source}: {role} column '{column}' is empty in {int(frame[column].isna().sum())} "
                             f"row(s), e.g. rows {rows}")
    design = {"cluster column": panel.cluster, "treatment column": panel.treatment, "cohort column": panel.cohort}
    absent = [f"{role} '{column}'" for role, column in design.items() if column and column not in frame.columns]
    if absent:
        raise InputError(f"{source}: {', '.join(absent)} declared by contract {contract.id} is missing")
    if not pd.api.types.is_integer_dtype(frame[panel.time_key]):
        raise InputError(f"{source}: time key column '{panel.time_key}' must hold integers, "
                         f"got dtype {frame[panel.time_key].dtype}")
    if len(frame) == 0:
        raise InputError(f"{source}: the table has no rows")


class _Steps:
    """A rich progress bar on stderr for long validations; a no-op otherwise."""

    def __init__(self, show: bool, total: int) -> None:
        self._progress = None
        if show:
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(stderr=True), transient=True)
            self._task = self._progress.add_task("validating", total=total)

    def __enter__(self) -> "_Steps":
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def step(self, label: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=label)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def validate(data: pd.DataFrame | str | Path, contract: Contract | str | Path, *,
             progress: bool | None = None) -> ValidationReport:
    """Validate a survey panel against its data contract.

    Parameters
    ----------
    data: a frame, or a path read with :func:`impactkit.io.read_table` (CSV, Parquet,
        Stata, Excel) using the contract's declared encoding.
    contract: a :class:`Contract` or the path of its YAML file.
    progress: show a progress bar; by default only above ``PROGRESS_MIN_ROWS`` rows.

    Raises ``ContractError`` (bad contract), ``DataReadError`` (unreadable file) or
    ``InputError`` (missing unit/time key, empty table). Failed rules do not raise: they
    are rows of ``report.results`` with ``success == False``.
    """
    from impactkit.contracts.gx_suite import run_column_rules
    from impactkit.contracts.panel_rules import PanelIndex, run_panel_rules

    spec = contract if isinstance(contract, Contract) else load_contract(contract)
    problems = reference_problems(spec)
    if problems:
        raise ContractError(f"contract {spec.id}: field '{'.'.join(map(str, problems[0][0]))}': {problems[0][1]}")
    if isinstance(data, pd.DataFrame):
        frame, source = data, "<frame>"
    elif not isinstance(data, (str, os.PathLike)):
        from impactkit.frames import as_pandas

        frame, source = as_pandas(data), "<frame>"
    else:
        from impactkit.io import read_table

        frame, source = read_table(data, contract=spec), str(data)
    _check_keys(frame, spec, source)
    frame = frame.reset_index(drop=True)
    panel = spec.panel
    keys = frame[[panel.unit_key, panel.time_key]]
    show = progress if progress is not None else len(frame) > PROGRESS_MIN_ROWS
    with _Steps(show, total=3) as steps:
        steps.step("column rules (great-expectations)")
        column_outcomes, usable, skipped = run_column_rules(frame, spec, keys)
        steps.step("panel rules (impactkit)")
        index = PanelIndex.build(frame[panel.unit_key], frame[panel.time_key])
        panel_outcomes, attrition, panel_skipped = run_panel_rules(frame, spec, usable, index)
        steps.step("report")
    return ValidationReport(
        results=outcomes_frame(column_outcomes + panel_outcomes),
        contract_id=spec.id, contract_version=spec.version, source=source,
        n_rows=len(frame), n_units=int(index.unit_codes.max()) + 1,
        attrition=attrition, skipped=skipped + panel_skipped,
    )
