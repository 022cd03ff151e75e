"""2SLS on Dask, the per-partition side: estimation rows, model matrices and their sums.

Every partition holds whole units (:func:`impactkit.distributed.data.by_unit`), so absorbing the
unit fixed effect is an exact within-unit demeaning inside the partition. One more absorbed fixed
effect with few levels (the period, typically) enters as dummies that the client partials out of
the reduced cross-products (Frisch-Waugh-Lovell; Lovell 1963, *JASA* 58(304)). Three kinds of pass:

- :func:`singleton_counts`: rows per level of the dummy fixed effect after the unit singletons
  are dropped (the iterated singleton rule of reghdfe, Correia 2015);
- :func:`gram_part`: the cross-products ``A'WA`` of ``A = [y, exog, endog, instruments, dummies]``
  after demeaning, with the raw facts the pandas engine's checks need (ranges, norms, nesting);
- :func:`scores_part`: given the global coefficients, the 2SLS scores ``xhat_i e_i`` and the
  instruments' scores ``z_i u_i`` of the reduced-form and first-stage residuals, summed per
  cluster (CRV1) or as outer products (HC1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.errors import InputError


@dataclass(frozen=True)
class IVColumns:
    """What the partitions need to know: the formula, roles and the global sample rules."""

    formula: str
    unit: str
    used: tuple[str, ...]                 # columns that must be present for a row to enter
    demean_unit: bool = False             # the unit is absorbed
    dummy_fe: str | None = None           # one more absorbed column, as dummies
    cluster: str | None = None
    weights: str | None = None
    dropped_levels: tuple = ()            # singleton levels of the dummy fixed effect
    levels: tuple = ()                    # kept levels of the dummy fixed effect (sorted)


@dataclass
class Matrices:
    """One partition's estimation rows as arrays (before demeaning)."""

    y: np.ndarray
    exog: np.ndarray
    endog: np.ndarray
    instruments: np.ndarray
    names: tuple[list[str], list[str], list[str], list[str]]
    unit_codes: np.ndarray
    n_units: int
    level: np.ndarray | None
    cluster: np.ndarray | None
    w: np.ndarray | None


def complete(part: pd.DataFrame, cols: IVColumns) -> np.ndarray:
    """Rows with every used column present (the pandas engine's ``complete_rows``)."""
    if cols.weights is not None:
        w = pd.to_numeric(part[cols.weights], errors="coerce")
        if w.isna().any():
            raise InputError(f"iv: weights column {cols.weights!r} has {int(w.isna().sum())} missing or "
                             "non-numeric rows")
        if (w <= 0).any():
            raise InputError(f"iv: weights column {cols.weights!r} has {int((w <= 0).sum())} rows <= 0; "
                             "weights must be positive")
    return part[list(cols.used)].notna().all(axis=1).to_numpy()


def estimation_rows(part: pd.DataFrame, cols: IVColumns) -> pd.DataFrame:
    """Complete rows without the dropped singleton levels and without units left with one row."""
    keep = complete(part, cols)
    if cols.dummy_fe is not None and cols.dropped_levels:
        keep &= ~part[cols.dummy_fe].isin(list(cols.dropped_levels)).to_numpy()
    rows = part.loc[keep]
    if cols.demean_unit:
        sizes = rows.groupby(cols.unit, sort=False)[cols.unit].transform("size").to_numpy()
        rows = rows.loc[sizes > 1]
    return rows


def singleton_counts(part: pd.DataFrame, cols: IVColumns) -> dict:
    """Rows per level of the dummy fixed effect (after unit singletons), complete and kept rows."""
    rows = estimation_rows(part, cols)
    counts = rows[cols.dummy_fe].value_counts() if cols.dummy_fe else pd.Series(dtype=float)
    missing = {c: int(part[c].isna().sum()) for c in cols.used}
    return {"counts": counts, "n": len(part), "complete": int(complete(part, cols).sum()), "kept": len(rows),
            "missing": missing}


def matrices(part: pd.DataFrame, cols: IVColumns) -> Matrices:
    """The formula's model matrices on the partition's estimation rows (formulaic, as linearmodels)."""
    from linearmodels.iv._utility import IVFormulaParser

    rows = estimation_rows(part, cols).reset_index(drop=True)
    parser = IVFormulaParser(cols.formula, rows, context={"np": np})
    dep, exog, endog, instr = parser.dependent, parser.exog, parser.endog, parser.instruments
    exog = exog if exog is not None else pd.DataFrame(index=rows.index)
    names = tuple([str(c) for c in block.columns] for block in (dep, exog, endog, instr))
    codes, uniques = pd.factorize(rows[cols.unit])
    return Matrices(y=dep.to_numpy(float)[:, 0], exog=exog.to_numpy(float), endog=endog.to_numpy(float),
                    instruments=instr.to_numpy(float), names=names, unit_codes=codes, n_units=len(uniques),
                    level=None if cols.dummy_fe is None else rows[cols.dummy_fe].to_numpy(),
                    cluster=None if cols.cluster is None else rows[cols.cluster].to_numpy(),
                    w=None if cols.weights is None else rows[cols.weights].to_numpy(float))


def design(m: Matrices, cols: IVColumns) -> np.ndarray:
    """``sqrt(w) * [y, exog, endog, instruments, dummies]`` after within-unit demeaning (weighted means)."""
    dummies = np.zeros((m.y.size, 0))
    if cols.dummy_fe is not None:
        index = pd.Index(list(cols.levels)).get_indexer(m.level)
        dummies = np.zeros((m.y.size, len(cols.levels)))
        dummies[np.arange(m.y.size), index] = 1.0
        if cols.demean_unit:            # the dummies sum to one: drop the first level
            dummies = dummies[:, 1:]
    a = np.column_stack([m.y, m.exog, m.endog, m.instruments, dummies])
    if cols.demean_unit and a.shape[0]:
        counts = np.bincount(m.unit_codes, weights=m.w, minlength=m.n_units)
        for j in range(a.shape[1]):
            col = a[:, j]
            sums = np.bincount(m.unit_codes, weights=col if m.w is None else col * m.w, minlength=m.n_units)
            col -= (sums / counts)[m.unit_codes]
    if m.w is not None:
        a *= np.sqrt(m.w)[:, None]
    return a


def gram_part(part: pd.DataFrame, cols: IVColumns) -> dict:
    """Cross-products of the demeaned design and the raw facts of one partition."""
    m = matrices(part, cols)
    a = design(m, cols)
    root = np.ones(m.y.size) if m.w is None else np.sqrt(m.w)
    raw = np.column_stack([m.exog, m.endog, m.instruments])
    out = {"gram": a.T @ a, "n": m.y.size, "names": m.names,
           "low": raw.min(axis=0) if raw.shape[0] else np.full(raw.shape[1], np.inf),
           "high": raw.max(axis=0) if raw.shape[0] else np.full(raw.shape[1], -np.inf),
           "raw_ss_weighted": ((raw * root[:, None]) ** 2).sum(axis=0), "clusters": None,
           "unit_in_cluster": True, "level_clusters": {}, "level_edges": np.zeros((0, 2), int),
           "n_units": m.n_units}
    if m.cluster is not None:
        out["clusters"] = pd.unique(m.cluster)
        pairs = pd.DataFrame({"u": m.unit_codes, "c": m.cluster}).drop_duplicates()
        out["unit_in_cluster"] = bool(pairs["u"].is_unique)
        if m.level is not None:
            out["level_clusters"] = (pd.DataFrame({"l": m.level, "c": m.cluster}).drop_duplicates()
                                     .groupby("l")["c"].agg(lambda s: set(s)).to_dict())
    if m.level is not None and cols.demean_unit:   # edges linking each unit's levels (to its first one)
        code = pd.Index(list(cols.levels)).get_indexer(m.level)
        pairs = pd.DataFrame({"u": m.unit_codes, "l": code}).drop_duplicates()
        first = pairs.groupby("u")["l"].transform("min").to_numpy()
        out["level_edges"] = np.unique(np.column_stack([first, pairs["l"].to_numpy()]), axis=0)
    return out


def scores_part(part: pd.DataFrame, cols: IVColumns, p: dict) -> dict:
    """2SLS and instrument scores of one partition given the global coefficients ``p`` (see the driver)."""
    m = matrices(part, cols)
    a = design(m, cols)
    a = a[:, :p["n_main"]] - (a[:, p["n_main"]:] @ p["gamma"] if p["gamma"] is not None else 0.0)
    a = a[:, p["keep"]]                                     # [y, exog kept, endog, instruments]
    y, x, zf = a[:, 0], a[:, p["x_index"]], a[:, p["z_index"]]
    xhat_e = (zf @ p["pi_full"]) * (y - x @ p["beta"])[:, None]
    r = a[:, p["r_index"]]                                  # [y, endog, instruments] ...
    if p["b_exog"] is not None:                             # ... residualised on the exogenous regressors
        r = r - a[:, p["exog_index"]] @ p["b_exog"]
    z = r[:, p["z_cols"]]
    resid = r[:, p["yd_cols"]] - z @ p["pi_yd"]             # [u_y, u_d1, ..., u_dK]
    if cols.cluster is not None:
        codes, uniques = pd.factorize(m.cluster)
        data = {f"x{j}": np.bincount(codes, weights=xhat_e[:, j], minlength=len(uniques))
                for j in range(xhat_e.shape[1])}
        for a_ in range(resid.shape[1]):
            for l in range(z.shape[1]):
                data[f"z{a_}_{l}"] = np.bincount(codes, weights=z[:, l] * resid[:, a_], minlength=len(uniques))
        return {"clusters": pd.DataFrame(data, index=pd.Index(uniques, name="cluster"))}
    n_res = resid.shape[1]
    pairs = np.empty((n_res, n_res, z.shape[1], z.shape[1]))
    for i in range(n_res):
        for j in range(i, n_res):
            zu = z * (resid[:, i] * resid[:, j])[:, None]
            pairs[i, j] = pairs[j, i] = zu.T @ z
    return {"xx": xhat_e.T @ xhat_e, "pairs": pairs}
