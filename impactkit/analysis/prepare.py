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


def check_binary(frame: pd.DataFrame, column: str, field: str, file: str) -> None:
    """InputError (exit 2) unless ``column`` holds only 0/1 (missing allowed): a text column
    such as "Yes"/"No" is named, with the values that are not 0/1."""
    values = frame[column]
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & ~numbers.isin([0, 1])
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())[:5].tolist()
        kind = "text" if not pd.api.types.is_numeric_dtype(values) else "numbers other than 0/1"
        raise InputError(f"{file}: column '{column}' ({field}) must be 0/1 but holds {kind} "
                         f"in {int(bad.sum())} row(s) (first rows {rows}); recode it or declare value labels "
                         f"as codes in the contract")


def prepare_panel(frame: pd.DataFrame, spec, never_treated_cohort: int = 0) -> pd.DataFrame:
    """Add the ``log_<column>`` columns the spec asks for and ``ever_treated``.

    Only what is asked is logged: the primary outcome when ``[outcomes] transform = "log"``,
    and every ``log_<column>`` the spec names that the data do not hold. The contract's
    ``never_treated_cohort`` code (``panel.never_treated_cohort``) is recoded to 0, the code
    the estimators read as never treated. ``ever_treated`` marks units treated within the
    panel (cohort > 0); it is the arm of the balance, attrition and final-period comparisons.
    """
    check_declared_columns(frame, spec)
    design, outcomes = spec.design, spec.outcomes
    for field, column in (("design.treated", design.treated), ("design.take_up", design.take_up),
                          ("design.subgroup", design.subgroup)):
        if column:
            check_binary(frame, column, field, spec.data.file)
    panel = frame.copy()
    for column in (design.treated, design.take_up, design.subgroup):
        if column and not pd.api.types.is_numeric_dtype(panel[column]):
            panel[column] = pd.to_numeric(panel[column])
    logged_primary = {outcomes.primary} if outcomes.transform == "log" else set()
    wanted = {*logged_primary, *[f[4:] for f in outcomes.family if f.startswith("log_")],
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
    cohort = pd.to_numeric(panel[design.cohort], errors="coerce")
    if never_treated_cohort != 0:
        cohort = cohort.mask(cohort == never_treated_cohort, 0)
        panel[design.cohort] = cohort
    cohort = cohort.fillna(0)
    panel["ever_treated"] = (cohort > 0).astype(np.int64)
    return panel


def outcome_column(spec) -> str:
    """The column the headline estimators use (``log_<primary>`` for a log transform)."""
    primary = spec.outcomes.primary
    return f"log_{primary}" if spec.outcomes.transform == "log" else primary
