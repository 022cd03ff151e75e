"""Encouragement designs on Dask: ITT, first stage, LATE and complier means, by sufficient statistics.

Same estimands, conventions and numbers as :func:`impactkit.iv.encouragement.encouragement`
(Imbens & Angrist 1994; Angrist, Imbens & Rubin 1996; complier means as in Abadie 2003 and
Angrist & Pischke 2009, Section 4.4.4), tested to 1e-10:

- the ITT, first stage and LATE come from one distributed 2SLS of ``y ~ 1 + [D ~ Z]``
  (:func:`impactkit.distributed.iv.estimate_iv`: its reduced form, first stage and take-up
  coefficient), turned into rows by the pandas engine's
  :func:`~impactkit.iv.encouragement.encouragement_estimates`;
- each complier mean is the distributed 2SLS coefficient of ``X*D`` on ``D`` instrumented by ``Z``
  (``X*D`` is made per partition); the population, never-taker and always-taker means are
  weighted sums per partition, added on the client.

Nothing is gathered: the 0/1 checks read the distinct values of the two columns only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from impactkit.distributed.reduce import map_reduce, partitions
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv.encouragement import COMPLIER_COLUMNS, complier_row, encouragement_estimates


def _quote(name: str) -> str:
    return f"`{name}`"


def _binary(frame, column: str, role: str) -> None:
    """The pandas engine's 0/1 rule, on the column's distinct values."""
    values = pd.to_numeric(frame[column].dropna().unique().compute(), errors="coerce").dropna().unique()
    if not set(values.tolist()) <= {0, 1}:
        raise InputError(f"encouragement: {role} column {column!r} must be coded 0/1")
    if len(values) < 2:
        raise EstimationError(f"encouragement: {role} column {column!r} is constant")


def _as_floats(part: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    return part.assign(**{c: pd.to_numeric(part[c]).astype(float) for c in columns})


def _with_product(part: pd.DataFrame, keep: list[str], name: str, take_up: str) -> pd.DataFrame:
    """The rows with every ``keep`` column present, with ``_xd = X * D``."""
    part = part.loc[part[keep].notna().all(axis=1)]
    return part.assign(_xd=pd.to_numeric(part[name], errors="coerce").to_numpy(float) * part[take_up].to_numpy(float))


def _group_sums(part: pd.DataFrame, name: str, take_up: str, instrument: str, keep: list[str],
                weights: str | None) -> np.ndarray:
    """``[n, bad, sum w, sum wx]`` for all rows, never-takers (D=0, Z=1) and always-takers (D=1, Z=0)."""
    frame = part.loc[part[keep].notna().all(axis=1)]
    x = pd.to_numeric(frame[name], errors="coerce")
    xv = x.to_numpy(float)
    w = frame[weights].to_numpy(float) if weights else np.ones(len(frame))
    d, z = frame[take_up].to_numpy(float), frame[instrument].to_numpy(float)
    out = [float(len(frame)), float(x.isna().sum())]
    for mask in (np.ones(len(frame), bool), (d == 0) & (z == 1), (d == 1) & (z == 0)):
        out += [float(mask.sum()), float(np.sum(w[mask])), float(np.sum(w[mask] * xv[mask]))]
    return np.array(out)


def complier_means(frame, *, unit: str, take_up: str, instrument: str, characteristics: Sequence[str],
                   cluster: str | None = None, weights: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Complier, population, never-taker and always-taker means of each characteristic on Dask
    (:func:`impactkit.iv.encouragement.complier_means`; ``take_up`` and ``instrument`` as floats).

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The data, every unit in one partition.
    unit : str
        The unit column (the partition key of the distributed 2SLS).
    take_up, instrument : str
        0/1 take-up and encouragement columns.
    characteristics : sequence of str
        Numeric columns whose complier means are reported.
    cluster : str, optional
        One cluster column.
    weights : str, optional
        Analytic weights.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per characteristic (:data:`impactkit.iv.encouragement.COMPLIER_COLUMNS`).
    """
    from impactkit.distributed.iv import estimate_iv

    rows = []
    for name in characteristics:
        keep = list(dict.fromkeys([take_up, instrument, name, *([cluster] if cluster else []),
                                   *([weights] if weights else [])]))
        sums = map_reduce(_group_sums, partitions(frame), name, take_up, instrument, keep, weights)
        if sums[1] > 0:
            raise InputError(f"encouragement: characteristic {name!r} is not numeric")
        means = {key: (float(sums[4 + 3 * i] / sums[3 + 3 * i]) if sums[2 + 3 * i] > 0 else None)
                 for i, key in enumerate(("population", "never", "always"))}
        sample = frame.map_partitions(_with_product, keep, name, take_up,
                                      meta=_with_product(frame._meta, keep, name, take_up))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImpactkitWarning)  # weak-IV warnings are given once, by the LATE fit
            fit = estimate_iv(sample, f"_xd ~ 1 + [{_quote(take_up)} ~ {_quote(instrument)}]", unit=unit,
                              cluster=cluster, weights=weights, alpha=alpha)
        rows.append(complier_row(name, fit, take_up, means, int(sums[0])))
    return pd.DataFrame(rows, columns=COMPLIER_COLUMNS)


def encouragement(frame, *, y: str, take_up: str, instrument: str, unit: str, cluster: str | None = None,
                  absorb: str | Sequence[str] | None = None, characteristics: Sequence[str] | None = None,
                  weights: str | None = None, alpha: float = 0.05):
    """An encouragement design on Dask; same numbers as :func:`impactkit.iv.encouragement.encouragement`
    (without controls: the analysis absorbs the unit and period instead).

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The data, every unit in one partition (:func:`impactkit.distributed.data.by_unit`).
    y : str
        Outcome column.
    take_up : str
        0/1 take-up column, the endogenous treatment.
    instrument : str
        Randomised 0/1 encouragement column.
    unit : str
        The unit column (the partition key).
    cluster : str, optional
        One cluster column.
    absorb : str or sequence of str, optional
        Fixed effects: the unit and at most one other (:func:`impactkit.distributed.iv.estimate_iv`).
    characteristics : sequence of str, optional
        Columns whose complier means are reported.
    weights : str, optional
        Analytic weights.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    impactkit.iv.results.EncouragementResult
        The pandas engine's result type.
    """
    from impactkit.distributed.iv import estimate_iv
    from impactkit.iv.results import EncouragementResult

    characteristics = list(characteristics or [])
    absorb_cols = [absorb] if isinstance(absorb, str) else list(absorb or [])
    needed = list(dict.fromkeys([y, take_up, instrument, *characteristics, *([cluster] if cluster else []),
                                 *absorb_cols, unit, *([weights] if weights else [])]))
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"encouragement: column(s) {', '.join(repr(c) for c in missing)} not found in data")
    _binary(frame, instrument, "instrument")
    _binary(frame, take_up, "take-up")
    frame = frame.map_partitions(_as_floats, (take_up, instrument), meta=_as_floats(frame._meta, (take_up, instrument)))
    formula = f"{_quote(y)} ~ 1 + [{_quote(take_up)} ~ {_quote(instrument)}]"
    result = estimate_iv(frame, formula, unit=unit, cluster=cluster, absorb=absorb_cols or None, weights=weights,
                         alpha=alpha)
    estimates = encouragement_estimates(result, take_up=take_up, alpha=alpha)
    means = complier_means(frame, unit=unit, take_up=take_up, instrument=instrument, characteristics=characteristics,
                           cluster=cluster, weights=weights, alpha=alpha)
    settings = {"y": y, "take_up": take_up, "instrument": instrument, "covariates": [], "absorb": absorb_cols,
                "cluster": [cluster] if cluster else [], "characteristics": characteristics}
    return EncouragementResult(estimates=estimates, complier_means=means, iv_result=result, settings=settings)
