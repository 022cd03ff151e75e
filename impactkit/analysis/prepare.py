"""Derived columns an analysis needs, computed once from the validated panel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from impactkit.errors import InputError


def log_column(values: pd.Series, name: str) -> pd.Series:
    """``log(values)``; non-positive values are an input error (the contract forbids them)."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    bad = numbers <= 0
    if bad.any():
        raise InputError(f"column '{name}': {int(bad.sum())} non-positive value(s) cannot be logged")
    return np.log(numbers)


def prepare_panel(frame: pd.DataFrame, spec) -> pd.DataFrame:
    """Add ``log_<outcome>`` columns, ``ever_treated`` and ``post`` for the declared design.

    ``ever_treated`` marks units whose community is served within the panel (cohort > 0);
    it is the arm of the balance, attrition and final-wave comparisons.
    """
    design, outcomes = spec.design, spec.outcomes
    panel = frame.copy()
    wanted = {outcomes.primary, *[f[4:] for f in outcomes.family if f.startswith("log_")],
              *[c[4:] for c in spec.checks.balance_covariates + spec.checks.attrition_covariates
                if c.startswith("log_")]}
    for column in sorted(wanted):
        if column in panel.columns and f"log_{column}" not in panel.columns:
            panel[f"log_{column}"] = log_column(panel[column], column)
    cohort = pd.to_numeric(panel[design.cohort], errors="coerce").fillna(0)
    panel["ever_treated"] = (cohort > 0).astype(np.int64)
    return panel


def outcome_column(spec) -> str:
    """The column the headline estimators use (``log_<primary>`` for a log transform)."""
    primary = spec.outcomes.primary
    return f"log_{primary}" if spec.outcomes.transform == "log" else primary
