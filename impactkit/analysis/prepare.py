"""Derived columns an analysis needs, computed once from the validated panel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactkit.errors import InputError, SpecError

DERIVED = ("ever_treated",)


def log_column(values: pd.Series, name: str) -> pd.Series:
    """``log(values)``; non-positive values are an input error (the contract forbids them)."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    bad = numbers <= 0
    if bad.any():
        raise InputError(f"column '{name}': {int(bad.sum())} non-positive value(s) cannot be logged")
    return np.log(numbers)


def declared_columns(spec) -> dict[str, str]:
    """``{field of analysis.toml: column}`` for every column the analysis names."""
    d, o, c = spec.design, spec.outcomes, spec.checks
    named = {f"design.{k}": v for k, v in (("unit", d.unit), ("time", d.time), ("cohort", d.cohort),
                                           ("treated", d.treated), ("cluster", d.cluster), ("weights", d.weights),
                                           ("take_up", d.take_up), ("subgroup", d.subgroup)) if v}
    named["outcomes.primary"] = o.primary
    for field, columns in (("outcomes.family", o.family), ("estimators.covariates", spec.estimators.covariates),
                           ("checks.balance_covariates", c.balance_covariates),
                           ("checks.attrition_covariates", c.attrition_covariates)):
        for column in columns:
            named[f"{field} '{column}'"] = column
    return named


def check_declared_columns(frame: pd.DataFrame, spec) -> None:
    """SpecError naming the analysis.toml field of every column the data do not hold.

    A ``log_<column>`` name is satisfied by ``<column>`` (the log is derived here).
    """
    missing = [f"{field} = '{column}'" for field, column in declared_columns(spec).items()
               if column not in frame.columns
               and not (column.startswith("log_") and column[4:] in frame.columns)]
    if missing:
        raise SpecError(f"{spec.folder / 'analysis.toml'}: column(s) not in {spec.data.file}: {'; '.join(missing)}")


def prepare_panel(frame: pd.DataFrame, spec) -> pd.DataFrame:
    """Add ``log_<outcome>`` columns, ``ever_treated`` and ``post`` for the declared design.

    ``ever_treated`` marks units whose community is served within the panel (cohort > 0);
    it is the arm of the balance, attrition and final-wave comparisons.
    """
    check_declared_columns(frame, spec)
    design, outcomes = spec.design, spec.outcomes
    panel = frame.copy()
    wanted = {outcomes.primary, *[f[4:] for f in outcomes.family if f.startswith("log_")],
              *[c[4:] for c in spec.estimators.covariates if c.startswith("log_")],
              *[c[4:] for c in spec.checks.balance_covariates + spec.checks.attrition_covariates
                if c.startswith("log_")]}
    derived = [f"log_{column}" for column in sorted(wanted) if column in panel.columns] + list(DERIVED)
    clash = [name for name in derived if name in frame.columns]
    if clash:  # a data column must not stand in silently for one derived here
        raise SpecError(f"{spec.data.file}: column '{clash[0]}' has the name of a column the analysis derives "
                        f"({'log of ' + repr(clash[0][4:]) if clash[0].startswith('log_') else 'from the design'}); "
                        "rename or drop it")
    for column in sorted(wanted):
        if column in panel.columns:
            panel[f"log_{column}"] = log_column(panel[column], column)
    cohort = pd.to_numeric(panel[design.cohort], errors="coerce").fillna(0)
    panel["ever_treated"] = (cohort > 0).astype(np.int64)
    return panel


def outcome_column(spec) -> str:
    """The column the headline estimators use (``log_<primary>`` for a log transform)."""
    primary = spec.outcomes.primary
    return f"log_{primary}" if spec.outcomes.transform == "log" else primary
