"""Panel checks and treatment bookkeeping for difference-in-differences.

A DiD panel has one row per (unit, time); ``time`` is numeric (periods, years); the
treatment is absorbing (staggered adoption). Treatment is given either as ``cohort``
(each unit's first treated period; 0 or missing = never treated) or ``treated`` (0/1);
the other is derived here. Each check raises an :mod:`impactkit.errors` exception whose
one-line message names the column, rows or units and the rule broken.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError, ImpactkitWarning, InputError

MAX_EXAMPLES = 5


def _examples(values: Iterable) -> str:
    shown = [str(v) for v in list(values)[:MAX_EXAMPLES]]
    return ", ".join(shown)


def require_columns(frame: pd.DataFrame, roles: dict[str, str | Sequence[str] | None]) -> None:
    """Raise :class:`InputError` naming every missing column and its role."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    missing = []
    for role, names in roles.items():
        if names is None:
            continue
        for name in [names] if isinstance(names, str) else list(names):
            if name not in frame.columns:
                missing.append(f"'{name}' ({role})")
    if missing:
        raise InputError(f"missing column(s): {', '.join(missing)}")


def check_numeric(frame: pd.DataFrame, column: str, role: str) -> None:
    """Raise :class:`InputError` if ``column`` is not numeric (booleans are accepted)."""
    dtype = frame[column].dtype
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        raise InputError(f"column '{column}' ({role}) must be numeric, found dtype {dtype}")


def check_no_missing(frame: pd.DataFrame, column: str, role: str) -> None:
    """Raise :class:`InputError` if ``column`` has missing values (count and first rows)."""
    missing = frame[column].isna().to_numpy()
    if missing.any():
        rows = frame.index[missing]
        raise InputError(f"column '{column}' ({role}) has {int(missing.sum())} missing value(s), "
                         f"rows {_examples(rows)}")


def check_unique_unit_time(frame: pd.DataFrame, unit: str, time: str) -> None:
    """Raise :class:`InputError` if a (unit, time) pair occurs more than once."""
    dup = frame.duplicated([unit, time], keep="first").to_numpy()
    if dup.any():
        keys = frame.loc[dup, [unit, time]].drop_duplicates().head(MAX_EXAMPLES)
        shown = ", ".join(f"({u}, {t})" for u, t in keys.itertuples(index=False))
        raise InputError(f"{int(dup.sum())} duplicate ({unit}, {time}) row(s); "
                         f"rule: one row per unit and period; e.g. {shown}")


def check_outcome_per_period(frame: pd.DataFrame, y: str, time: str) -> None:
    """Raise :class:`InputError` if the outcome is missing for every unit in some period."""
    observed = frame[y].notna().groupby(frame[time], sort=True).any()
    empty = observed.index[~observed.to_numpy()]
    if len(empty):
        raise InputError(f"outcome '{y}' is missing in every row of period(s) {_examples(empty)} "
                         f"of '{time}'")


def normalise_cohort(values: pd.Series) -> pd.Series:
    """Cohort as float: missing and 0 mean never treated (returned as 0.0)."""
    cohort = pd.to_numeric(values, errors="coerce").astype(float)
    bad = values.notna() & cohort.isna()
    if bad.any():
        raise InputError(f"column '{values.name}' (cohort) must be numeric first-treated periods; "
                         f"{int(bad.sum())} non-numeric value(s)")
    return cohort.fillna(0.0)


def check_cohort_constant(frame: pd.DataFrame, unit: str, cohort: str) -> None:
    """Raise :class:`InputError` if ``cohort`` takes more than one value within a unit."""
    values = normalise_cohort(frame[cohort])
    per_unit = values.groupby(frame[unit], sort=False).nunique()
    varying = per_unit.index[per_unit.to_numpy() > 1]
    if len(varying):
        raise InputError(f"column '{cohort}' (cohort) varies within {len(varying)} unit(s) of "
                         f"'{unit}': {_examples(varying)}; rule: one first-treated period per unit")


def check_binary(frame: pd.DataFrame, column: str, role: str) -> None:
    """Raise :class:`InputError` unless ``column`` holds only 0 and 1."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        raise InputError(f"column '{column}' ({role}) must be 0/1; {int(bad.sum())} other value(s), "
                         f"rows {_examples(frame.index[bad.to_numpy()])}")


def check_absorbing(frame: pd.DataFrame, unit: str, time: str, treated: str) -> None:
    """Raise :class:`InputError` naming units whose treatment switches off (1 then 0)."""
    ordered = frame[[unit, time, treated]].sort_values([unit, time], kind="stable")
    step = ordered[treated].astype(float).groupby(ordered[unit], sort=False).diff()
    reversed_units = pd.unique(ordered.loc[(step < 0).to_numpy(), unit])
    if len(reversed_units):
        raise InputError(f"treatment '{treated}' reverses (1 then 0) within {len(reversed_units)} "
                         f"unit(s) of '{unit}': {_examples(reversed_units)}; rule: treatment is absorbing")


def derive_cohort(frame: pd.DataFrame, *, unit: str, time: str, treated: str) -> pd.Series:
    """Each row's cohort: the unit's first period with ``treated == 1`` (0.0 if never)."""
    is_treated = pd.to_numeric(frame[treated]).to_numpy() == 1
    times = frame[time].astype(float).where(is_treated)
    first = times.groupby(frame[unit], sort=False).transform("min")
    return first.fillna(0.0).astype(float).rename("cohort")


def derive_treated(frame: pd.DataFrame, *, time: str, cohort: str) -> pd.Series:
    """Each row's 0/1 treatment: ``cohort > 0`` and ``time >= cohort``."""
    g = normalise_cohort(frame[cohort])
    t = frame[time].astype(float)
    return ((g > 0) & (t >= g)).astype(np.int8).rename("treated")


def drop_missing_outcome(frame: pd.DataFrame, y: str) -> pd.DataFrame:
    """Drop rows with a missing outcome, warning with the count (never a silent drop)."""
    missing = frame[y].isna().to_numpy()
    if missing.any():
        warnings.warn(f"dropped {int(missing.sum())} row(s) with missing outcome '{y}'",
                      ImpactkitWarning, stacklevel=3)
        return frame.loc[~missing]
    return frame


def prepare_panel(frame: pd.DataFrame, *, y: str, unit: str, time: str, cohort: str | None = None,
                  treated: str | None = None, covariates: Sequence[str] | None = None,
                  weights: str | None = None, cluster: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Check a DiD panel and return a frame with columns ``_y, _unit, _time, _cohort, _treated``.

    The returned index is the row position in ``frame`` (0-based), also used in messages.

    Covariates, weights and cluster columns are carried along under their own names. Rows
    with a missing outcome are dropped with an :class:`ImpactkitWarning`.
    """
    covariates = list(covariates or [])
    if isinstance(frame, pd.DataFrame):
        frame = frame.reset_index(drop=True)  # rows are named by position in messages
    cluster_cols = [] if cluster is None else ([cluster] if isinstance(cluster, str) else list(cluster))
    require_columns(frame, {"outcome": y, "unit": unit, "time": time, "cohort": cohort,
                            "treated": treated, "covariates": covariates, "weights": weights,
                            "cluster": cluster_cols})
    if cohort is None and treated is None:
        raise InputError("give the treatment as 'cohort' (first treated period) or 'treated' (0/1)")
    check_numeric(frame, y, "outcome")
    check_numeric(frame, time, "time")
    for col, role in [(unit, "unit"), (time, "time")] + [(c, "cluster") for c in cluster_cols]:
        check_no_missing(frame, col, role)
    check_unique_unit_time(frame, unit, time)
    check_outcome_per_period(frame, y, time)
    if treated is not None:
        check_no_missing(frame, treated, "treated")
        check_binary(frame, treated, "treated")
        check_absorbing(frame, unit, time, treated)
    if cohort is not None:
        check_cohort_constant(frame, unit, cohort)
    for col in covariates:
        check_numeric(frame, col, "covariate")
    if weights is not None:
        check_numeric(frame, weights, "weights")

    keep = list(dict.fromkeys([y, unit, time] + [c for c in (cohort, treated) if c]
                              + covariates + ([weights] if weights else []) + cluster_cols))
    work = drop_missing_outcome(frame[keep], y)
    for col in covariates:
        check_no_missing(work, col, "covariate")
    if weights is not None:
        check_no_missing(work, weights, "weights")
        if (work[weights].to_numpy(dtype=float) <= 0).any():
            raise InputError(f"column '{weights}' (weights) must be positive; "
                             f"{int((work[weights] <= 0).sum())} value(s) <= 0")

    # Treatment status is derived from the full panel (a missing outcome does not move a cohort).
    if cohort is not None:
        cohort_full = normalise_cohort(frame[cohort])
    else:
        cohort_full = derive_cohort(frame, unit=unit, time=time, treated=treated)
    treated_full = derive_treated(pd.DataFrame({time: frame[time], "_c": cohort_full}), time=time, cohort="_c")
    if cohort is not None and treated is not None:
        given = pd.to_numeric(frame[treated]).to_numpy()
        clash = given != treated_full.to_numpy()
        if clash.any():
            raise InputError(f"columns '{treated}' and '{cohort}' disagree in {int(clash.sum())} row(s) "
                             f"(rule: treated = time >= cohort > 0), rows {_examples(frame.index[clash])}")
    out = pd.DataFrame({
        "_y": work[y].to_numpy(dtype=float),
        "_unit": work[unit].to_numpy(),
        "_time": work[time].to_numpy(dtype=float),
        "_cohort": cohort_full.loc[work.index].to_numpy(dtype=float),
        "_treated": treated_full.loc[work.index].to_numpy(dtype=np.int8),
    }, index=work.index)
    for col in covariates + ([weights] if weights else []) + cluster_cols:
        if col not in out.columns:
            out[col] = work[col].to_numpy()
    return out


def check_has_controls(panel: pd.DataFrame, *, need_never_treated: bool, unit: str = "unit") -> None:
    """Raise :class:`EstimationError` when there is nothing to compare the treated with."""
    never = panel["_cohort"].to_numpy() == 0
    if need_never_treated and not never.any():
        raise EstimationError(f"no control units: every unit of '{unit}' is treated at some point "
                              f"(rule: this method compares with never-treated units; "
                              f"use control='notyet' or 'last')")
    if not (panel["_treated"].to_numpy() == 0).any():
        raise EstimationError("no control units: every row is treated")
    if not (panel["_treated"].to_numpy() == 1).any():
        raise EstimationError("no treated units: treatment is 0 in every row")
