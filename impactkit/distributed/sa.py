"""Sun & Abraham (2021) interaction-weighted event study on Dask, by sufficient statistics.

Sun, L. and Abraham, S. (2021), *Journal of Econometrics* 225(2), 175-199, eq. 16-18; same
estimand, conventions and numbers as :func:`impactkit.did.sa.estimate_sa` (tested to 1e-10).

Step 1 (eq. 16) is a two-way fixed-effects regression of the outcome on the cohort x
relative-period indicators ``1{E_i = e} 1{t - e = l}`` (``l != -1 - anticipation``) and the
covariates. It runs through the two passes of :func:`impactkit.distributed.twfe.reduce_twfe`
(within-unit demeaning inside each partition, period effects by Frisch-Waugh-Lovell, cluster
score sums for CRV1): :class:`SAColumns` only changes which rows enter (always-treated units
and, with ``control="last"``, the periods from the last cohort's adoption on are left out) and
which regressors they carry. Two cheap passes before it find the periods and cohorts (for R
``did``-style recoding: cohorts after the last period are never treated) and the
(cohort, relative period) cells with their row counts and weight sums.

Step 2 (eq. 17-18): ``nu_l = sum_e delta_{e,l} Pr(E = e | E in C_l)``, the shares being the
cells' weight sums (reduced per partition); step 3: delta-method covariance ``A V A'`` with ``V``
the CRV1 covariance of the ``delta`` (shares fixed, as fixest's ``sunab`` aggregation).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from impactkit.distributed.reduce import map_blocks, partitions
from impactkit.distributed.twfe import TWFEColumns, crv1_from_sums, reduce_twfe
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

COHORT = "__sa_cohort"   # the recoded cohort carried by the selected rows


@dataclass(frozen=True)
class SAColumns(TWFEColumns):
    """Column roles of a Sun-Abraham fit and the sample rules found by the scan passes."""

    t_max: float = np.inf                   # cohorts after the last period are never treated
    always_max: float = -np.inf             # cohorts <= this have no reference period: dropped
    last: float | None = None               # control="last": this cohort becomes the control ...
    cutoff: float | None = None             # ... and periods >= cutoff are dropped
    keys: tuple[tuple[float, int], ...] = ()

    def cohorts(self, part: pd.DataFrame) -> np.ndarray:
        """Each row's cohort as the pandas engine reads it (0 = never treated), before recoding.

        From ``cohort`` (missing = 0), else the first period with ``treated == 1`` of the unit
        (the whole partition: a missing outcome does not move a cohort; units are partition-local).
        """
        if self.cohort is not None:
            return pd.to_numeric(part[self.cohort]).fillna(0).to_numpy(dtype=float)
        times = part[self.time].to_numpy(dtype=float)
        on = np.where(part[self.treated].to_numpy(dtype=float) == 1, times, np.inf)
        first = pd.Series(on, index=part.index).groupby(part[self.unit].to_numpy(), sort=False).transform("min")
        return np.where(np.isinf(first.to_numpy()), 0.0, first.to_numpy())

    def recoded(self, part: pd.DataFrame) -> np.ndarray:
        g = self.cohorts(part)
        g[g > self.t_max] = 0.0
        if self.last is not None:
            g[g == self.last] = 0.0
        return g

    def select(self, part: pd.DataFrame) -> pd.DataFrame:
        g = self.recoded(part)
        keep = part[self.y].notna().to_numpy() & ~((g > 0) & (g <= self.always_max))
        if self.cutoff is not None:
            keep &= part[self.time].to_numpy(dtype=float) < self.cutoff
        return part.loc[keep].assign(**{COHORT: g[keep]})

    def terms(self) -> list[str]:
        return [f"cohort {e:g} x event {l}" for e, l in self.keys] + list(self.covariates)

    def regressors(self, rows: pd.DataFrame) -> np.ndarray:
        g = rows[COHORT].to_numpy(dtype=float)
        rel = rows[self.time].to_numpy(dtype=float) - g
        out = np.zeros((len(rows), len(self.keys) + len(self.covariates)))
        if self.keys:                       # one-hot of the (cohort, relative period) cell
            keys = pd.MultiIndex.from_tuples([(e, float(l)) for e, l in self.keys])
            index = keys.get_indexer(pd.MultiIndex.from_arrays([g, rel]))
            hit = index >= 0
            out[np.flatnonzero(hit), index[hit]] = 1.0
        for j, c in enumerate(self.covariates, start=len(self.keys)):
            out[:, j] = rows[c].to_numpy(dtype=float)
        return out


def _scan_part(part: pd.DataFrame, cols: SAColumns) -> dict:
    """Observed periods and cohorts of one partition (rows with the outcome observed); the pandas
    engine's panel checks that are unit-local (one row per unit and period, one cohort per unit)."""
    if part.duplicated([cols.unit, cols.time]).any():
        raise InputError(f"duplicated ({cols.unit}, {cols.time}) pair(s); rule: one row per unit and period")
    if cols.cohort is not None and (part.groupby(cols.unit)[cols.cohort].nunique() > 1).any():
        raise InputError(f"column '{cols.cohort}' (cohort) varies within unit; rule: one cohort per unit")
    seen = part[cols.y].notna().to_numpy()
    return {"times": np.unique(part[cols.time].to_numpy(dtype=float)[seen]),
            "cohorts": np.unique(cols.recoded(part)[seen])}


def _cells_part(part: pd.DataFrame, cols: SAColumns) -> dict:
    """Rows and weight sums of each (cohort, period) of the kept treated rows; always-treated units."""
    g = cols.recoded(part)
    seen = part[cols.y].notna().to_numpy()
    always = seen & (g > 0) & (g <= cols.always_max)
    rows = cols.select(part)
    treated = rows[COHORT].to_numpy() > 0
    w = np.ones(len(rows)) if cols.weights is None else rows[cols.weights].to_numpy(dtype=float)
    table = pd.DataFrame({"cohort": rows[COHORT].to_numpy()[treated],
                          "time": rows[cols.time].to_numpy(dtype=float)[treated], "w": w[treated]})
    cells = table.groupby(["cohort", "time"]).agg(rows=("w", "size"), weight=("w", "sum"))
    if cols.weights and (w <= 0).any():
        raise InputError(f"column '{cols.weights}' (weights) must be positive")
    return {"cells": cells, "always_units": int(part.loc[always, cols.unit].nunique()),
            "never": bool((rows[COHORT].to_numpy() == 0).any())}


def estimate_sa(frame, *, y: str, unit: str, time: str, cohort: str | None = None, treated: str | None = None,
                control: str = "never", covariates: Sequence[str] = (), weights: str | None = None,
                cluster: str | None = None, vcov: str = "CRV1", anticipation: int = 0, alpha: float = 0.05,
                seed: int | None = None):
    """Sun & Abraham (2021) IW event study on a dask DataFrame, CRV1 by ``cluster`` (default: the unit).

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        Long panel, one row per unit and period (see :func:`impactkit.distributed.data.read_panel`).
    y, unit, time : str
        Outcome, unit and period columns.
    cohort : str, optional
        First treated period (0 or missing = never treated).
    treated : str, optional
        0/1 absorbing treatment column; give it or ``cohort``.
    control : {"never", "last"}, default "never"
        Control cohort (never treated, or the last-treated cohort before it adopts).
    covariates : sequence of str, optional
        Controls.
    weights : str, optional
        Analytic weights.
    cluster : str, optional
        One cluster column (the unit by default).
    vcov : {"CRV1"}
        Covariance of the cohort x event-time coefficients (CRV1 only on this engine).
    anticipation : int, default 0
        Periods of anticipation; the reference event time is ``-1 - anticipation``.
    alpha : float, default 0.05
        1 - confidence level.
    seed : int, optional
        Seed of the sup-t simulation (:meth:`impactkit.did.sa.SAResult.sup_t_band`).

    Returns
    -------
    impactkit.did.sa.SAResult
        The pandas engine's result type, with the same numbers (``vcov="CRV1"``).

    Raises
    ------
    InputError
        Bad options or columns.
    EstimationError
        No control units or no treated cohort left.
    """
    from impactkit.did.sa import SAResult
    from impactkit.distributed.data import by_unit

    if control not in ("never", "last"):
        raise InputError(f"control must be 'never' or 'last' for Sun-Abraham, got {control!r}")
    if cohort is None and treated is None:
        raise InputError("give the treatment as 'cohort' (first treated period) or 'treated' (0/1)")
    if vcov != "CRV1":
        raise InputError(f"vcov={vcov!r} is not available for Sun-Abraham on the dask engine; use vcov='CRV1'")
    if cluster is not None and not isinstance(cluster, str):
        raise InputError("the dask engine's Sun-Abraham clusters on one column")
    cols = SAColumns(y=y, unit=unit, time=time, treated=treated, cohort=cohort, covariates=tuple(covariates),
                     weights=weights, cluster=cluster)
    frame = by_unit(frame[cols.needed()], unit)
    parts = partitions(frame)
    scans = map_blocks(_scan_part, parts, cols)
    times = np.unique(np.concatenate([s["times"] for s in scans]))
    if times.size == 0:
        raise EstimationError(f"outcome '{y}' is never observed")
    t_min, t_max = float(times[0]), float(times[-1])
    reference = -1 - int(anticipation)
    always_max = t_min - reference - 1
    cols = replace(cols, t_max=t_max, always_max=always_max)
    g = np.unique(np.concatenate([s["cohorts"] for s in scans]))
    g[g > t_max] = 0.0
    kept = g[~((g > 0) & (g <= always_max))]
    messages: list[str] = []
    if control == "last":
        if not (kept > 0).any():
            raise EstimationError("no treated cohort left to estimate")
        last = float(kept[kept > 0].max())
        cols = replace(cols, last=last, cutoff=last + reference + 1)
        messages.append(f"Control cohort: last treated ({last:g}); periods from {last + reference + 1:g} dropped.")
    elif not (kept == 0).any():
        raise EstimationError(f"no control units: no never-treated unit of '{unit}'; use control='last'")
    facts = map_blocks(_cells_part, parts, cols)
    n_always = sum(f["always_units"] for f in facts)
    if n_always:
        text = (f"dropped {n_always} unit(s) of '{unit}' treated by period {always_max:g}: "
                f"no reference period {reference} to compare with")
        warnings.warn(text, ImpactkitWarning, stacklevel=2)
        messages.insert(0, text)
    cells = pd.concat([f["cells"] for f in facts]).groupby(level=[0, 1]).sum().sort_index()
    if cells.empty:
        raise EstimationError("no treated cohort left to estimate")
    rel = (cells.index.get_level_values("time") - cells.index.get_level_values("cohort")).astype(int)
    cells = cells.assign(rel=rel)[rel != reference]
    cells = cells.groupby([cells.index.get_level_values("cohort"), "rel"]).sum()
    keys = tuple((float(e), int(l)) for e, l in cells.index)
    cols = replace(cols, keys=keys)
    reduced = reduce_twfe(frame, cols, with_cross=False)
    full_vcov, notes = crv1_from_sums(reduced, stacklevel=2)
    messages += notes
    p = len(keys)
    delta, delta_vcov = reduced.coef[:p], full_vcov[:p, :p]
    cell_n = cells["weight"].to_numpy(dtype=float)
    cell_rows = cells["rows"].to_numpy(dtype=float)
    rels = np.array([l for _, l in keys])
    event_times = np.unique(rels)
    aggregation = np.zeros((event_times.size, p))
    for i, l in enumerate(event_times):
        at = rels == l
        aggregation[i, at] = cell_n[at] / cell_n[at].sum()
    cohort_table = pd.DataFrame({"cohort": [e for e, _ in keys], "event_time": rels, "estimate": delta,
                                 "std_error": np.sqrt(np.diag(delta_vcov)), "n": cell_rows.astype(int)})
    return SAResult(event_times=event_times, estimates=aggregation @ delta,
                    vcov=aggregation @ delta_vcov @ aggregation.T,
                    counts=np.array([cell_rows[rels == l].sum() for l in event_times]),
                    cohort_table=cohort_table, cohort_vcov=delta_vcov, aggregation=aggregation,
                    df_t=reduced.n_clusters - 1, reference=reference, control=control, n_obs=reduced.n_obs,
                    n_clusters=reduced.n_clusters, alpha=alpha, seed=seed, messages=messages)
