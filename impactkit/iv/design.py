"""The estimation sample of an IV regression as model matrices, fixed effects absorbed.

:func:`build_design` checks the columns and rows of a linearmodels IV formula, drops
singletons of the absorbed fixed effects (Correia 2015), demeans every block within the fixed
effects (:func:`impactkit.numerics.within.demean`) and counts their degrees of freedom as
ivreghdfe does (:func:`absorbed_df`); :func:`residualised` partials the exogenous regressors
out of the outcome, endogenous regressors and instruments for the weak-instrument
diagnostics. Conventions are in :mod:`impactkit.iv.model`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula
from linearmodels.iv._utility import IVFormulaParser
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv import weak
from impactkit.numerics.within import demean

_FORMULA_CONTEXT = {"np": np}


def parse_formula(formula: str, data: pd.DataFrame) -> dict[str, str]:
    """Split a linearmodels IV formula into its dependent/exog/endog/instruments parts."""
    if not isinstance(formula, str) or "~" not in formula:
        raise InputError(f"iv: formula must be a string 'y ~ 1 + x + [d ~ z]', got {formula!r}")
    try:
        parts = IVFormulaParser(formula, data, context=_FORMULA_CONTEXT).components
    except ValueError as exc:
        raise InputError(f"iv: formula {formula!r} not understood: {exc}") from None
    if parts["endog"].strip() in ("", "0") or parts["instruments"].strip() in ("", "0"):
        raise InputError(f"iv: formula {formula!r} has no '[endogenous ~ instruments]' block; IV needs instruments")
    return parts


def formula_columns(parts: dict[str, str]) -> list[str]:
    """Data columns the formula refers to, in order of appearance by part."""
    names: list[str] = []
    for key in ("dependent", "exog", "endog", "instruments"):
        for name in sorted(Formula(parts[key]).required_variables):
            if name not in names and name not in _FORMULA_CONTEXT:
                names.append(name)
    return names


def complete_rows(data: pd.DataFrame, columns: list[str], weights: str | None) -> pd.Series:
    """Rows with every used column present; missing weights or non-positive weights raise.

    Parameters
    ----------
    data : pandas.DataFrame
        The data.
    columns : list of str
        Every column the model uses.
    weights : str or None
        Weights column, checked here.

    Returns
    -------
    pandas.Series
        Boolean per row.
    """
    if weights is not None:
        w = pd.to_numeric(data[weights], errors="coerce")
        bad = w.isna()
        if bad.any():
            raise InputError(f"iv: weights column {weights!r} has {int(bad.sum())} missing or non-numeric rows")
        if (w <= 0).any():
            raise InputError(f"iv: weights column {weights!r} has {int((w <= 0).sum())} rows <= 0; "
                             "weights must be positive")
    present = data[columns].notna().all(axis=1)
    return present


def singleton_mask(codes: list[np.ndarray]) -> np.ndarray:
    """Rows that stay after iteratively dropping singleton groups of any fixed effect.

    A row alone in its fixed-effect group is fitted exactly by its own dummy: it carries no
    information about the slopes but would inflate ``n`` (and ``G``) in the covariance,
    so reghdfe / ivreghdfe / pyfixest drop it (Correia 2015, "Singletons, cluster-robust
    standard errors and fixed effects: a bad mix"); so does :func:`iv`.
    """
    keep = np.ones(len(codes[0]), dtype=bool)
    while True:
        drop = np.zeros_like(keep)
        for c in codes:
            counts = np.bincount(c[keep], minlength=int(c.max()) + 1)
            drop |= keep & (counts[c] == 1)
        if not drop.any():
            return keep
        keep &= ~drop


def nested_in(fe_codes: np.ndarray, cluster_codes: np.ndarray) -> bool:
    """True when every level of the fixed effect lies within a single cluster.

    Parameters
    ----------
    fe_codes : numpy.ndarray
        Level of the fixed effect, one per row.
    cluster_codes : numpy.ndarray
        Cluster of each row.

    Returns
    -------
    bool
    """
    pairs = pd.DataFrame({"fe": fe_codes, "cl": cluster_codes}).drop_duplicates()
    return bool(pairs["fe"].is_unique)


def absorbed_df(codes: list[np.ndarray], clusters: np.ndarray | None) -> int:
    """Parameters used by absorbed fixed effects (ivreghdfe convention, see module docstring)."""
    cluster_cols = [] if clusters is None else [clusters.reshape(len(clusters), -1)[:, j]
                                                for j in range(clusters.reshape(len(clusters), -1).shape[1])]
    counted = [c for c in codes if not any(nested_in(c, cl) for cl in cluster_cols)]
    df = 1 + sum(int(c.max()) + 1 - 1 for c in counted)
    if len(counted) >= 2:
        a, b = counted[0], counted[1]
        n_a = int(a.max()) + 1
        graph = sparse.coo_matrix((np.ones(len(a)), (a, n_a + b)), shape=(n_a + int(b.max()) + 1,) * 2)
        n_components, _ = connected_components(graph, directed=False)
        df -= n_components - 1
    return df


def _group_codes(frame: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """Integer codes of each column (:func:`pandas.factorize`), one array per column.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    columns : list of str
        Fixed-effect or cluster columns.

    Returns
    -------
    list of numpy.ndarray
    """
    return [pd.factorize(frame[c])[0].astype(np.intp) for c in columns]


def _check_constant(name: str, values: np.ndarray, role: str) -> None:
    """EstimationError when ``values`` do not vary in the estimation sample.

    Parameters
    ----------
    name : str
        The column, for messages.
    values : numpy.ndarray
        Its values.
    role : str
        What the column is (``"instrument"``), for messages.
    """
    scale = max(float(np.abs(values).max()), 1.0)
    if float(np.ptp(values)) <= 1e-12 * scale:
        raise EstimationError(f"iv: {role} {name!r} is constant (no variation in the estimation sample)")


def _check_residual(name: str, residual: np.ndarray, original_norm: float, role: str, after: str) -> None:
    """EstimationError when nothing of a column is left after partialling out.

    Parameters
    ----------
    name : str
        The column, for messages.
    residual : numpy.ndarray
        The column after partialling out.
    original_norm : float
        Its norm before (weighted).
    role : str
        What the column is (``"instrument"``, ``"endogenous regressor"``), for messages.
    after : str
        What was partialled out, for messages.
    """
    if float(np.linalg.norm(residual)) <= 1e-9 * max(float(original_norm), 1e-300):
        raise EstimationError(f"iv: {role} {name!r} has no variation left after {after}")


@dataclass
class IVDesign:
    """The estimation sample as model matrices (fixed effects already absorbed)."""

    dependent: pd.DataFrame
    exog: pd.DataFrame
    endog: pd.DataFrame
    instruments: pd.DataFrame
    weights: np.ndarray | None
    clusters: np.ndarray | None
    extra_df: int
    cov_type: str
    absorbed: list[str]
    endog_norms: np.ndarray  # norms of the sqrt(w)-weighted columns before any partialling
    instr_norms: np.ndarray

    @property
    def n(self) -> int:
        return len(self.dependent)

    @property
    def sqrt_weights(self) -> np.ndarray:
        return np.ones(self.n) if self.weights is None else np.sqrt(self.weights)


def build_design(data: pd.DataFrame, formula: str, *, cluster_cols: list[str], absorb_cols: list[str],
                 weights: str | None, vcov: str) -> IVDesign:
    """Check columns and rows, build the model matrices and absorb the fixed effects.

    Parameters
    ----------
    data : pandas.DataFrame
        The data.
    formula : str
        linearmodels IV formula ``y ~ 1 + x + [d ~ z]``.
    cluster_cols : list of str
        Cluster columns (kept with the sample).
    absorb_cols : list of str
        Fixed-effect columns, absorbed by alternating projections.
    weights : str or None
        Weights column.
    vcov : {"robust", "unadjusted"}
        Covariance without clusters.

    Returns
    -------
    IVDesign
    """
    parts = parse_formula(formula, data)
    model_cols = formula_columns(parts)
    extra_cols = cluster_cols + absorb_cols + ([weights] if weights else [])
    missing = [c for c in dict.fromkeys(model_cols + extra_cols) if c not in data.columns]
    if missing:
        raise InputError(f"iv: column(s) {', '.join(repr(c) for c in missing)} not found in data")
    used = list(dict.fromkeys(model_cols + cluster_cols + absorb_cols))
    keep = complete_rows(data, used, weights)
    if not keep.all():
        holes = [c for c in used if data[c].isna().any()]
        warnings.warn(f"iv: dropped {int((~keep).sum())} of {len(data)} rows with missing values in "
                      f"{', '.join(holes)}", ImpactkitWarning, stacklevel=3)
    frame = data.loc[keep, list(dict.fromkeys(used + ([weights] if weights else [])))].reset_index(drop=True)
    if len(frame) == 0:
        raise EstimationError("iv: no complete rows left")
    if absorb_cols:
        keep_rows = singleton_mask(_group_codes(frame, absorb_cols))
        if not keep_rows.all():
            warnings.warn(f"iv: dropped {int((~keep_rows).sum())} singleton observation(s) (alone in a group of "
                          f"{', '.join(absorb_cols)}), as reghdfe does", ImpactkitWarning, stacklevel=3)
            frame = frame.loc[keep_rows].reset_index(drop=True)
    try:
        parser = IVFormulaParser(formula, frame, context=_FORMULA_CONTEXT)
        dep_df, exog_df, endog_df, instr_df = parser.dependent, parser.exog, parser.endog, parser.instruments
    except Exception as exc:  # formulaic evaluation errors
        raise InputError(f"iv: cannot build the model matrices of {formula!r}: {exc}") from None
    endog_names = [str(c) for c in endog_df.columns]
    instr_names = [str(c) for c in instr_df.columns]
    if len(instr_names) < len(endog_names):
        raise EstimationError(f"iv: under-identified: {len(instr_names)} instrument(s) for "
                              f"{len(endog_names)} endogenous regressor(s) {endog_names}")
    for name in endog_names:
        _check_constant(name, endog_df[name].to_numpy(float), "endogenous regressor")
    for name in instr_names:
        _check_constant(name, instr_df[name].to_numpy(float), "instrument")

    w = frame[weights].to_numpy(float) if weights else None
    root_w = np.ones(len(frame)) if w is None else np.sqrt(w)
    endog_norms = np.linalg.norm(endog_df.to_numpy(float) * root_w[:, None], axis=0)
    instr_norms = np.linalg.norm(instr_df.to_numpy(float) * root_w[:, None], axis=0)
    clusters = None
    if cluster_cols:
        clusters = np.column_stack(_group_codes(frame, cluster_cols))
        clusters = clusters[:, 0] if clusters.shape[1] == 1 else clusters
    exog_df = exog_df if exog_df is not None else pd.DataFrame(index=frame.index)
    extra_df = 0
    if absorb_cols:
        codes = _group_codes(frame, absorb_cols)
        extra_df = absorbed_df(codes, clusters)
        sizes = [int(c.max()) + 1 for c in codes]

        def within(block: pd.DataFrame) -> pd.DataFrame:
            # alternating projections to 1e-14 even on a balanced panel: keeps the pinned numbers
            values = demean(block.to_numpy(float), codes, sizes, weights=w, tol=1e-14, method="projections")
            return pd.DataFrame(values, index=block.index, columns=block.columns)

        exog_df = exog_df.loc[:, [c for c in exog_df.columns if float(np.ptp(exog_df[c].to_numpy(float))) > 0]]
        raw_norms = np.linalg.norm(exog_df.to_numpy(float), axis=0)
        dep_df, exog_df, endog_df, instr_df = within(dep_df), within(exog_df), within(endog_df), within(instr_df)
        collinear = [str(c) for j, c in enumerate(exog_df.columns)
                     if np.linalg.norm(exog_df[c].to_numpy()) <= 1e-9 * raw_norms[j]]
        if collinear:
            warnings.warn(f"iv: dropped regressor(s) {', '.join(collinear)}: collinear with the absorbed fixed effects",
                          ImpactkitWarning, stacklevel=3)
            exog_df = exog_df.drop(columns=collinear)
    return IVDesign(dep_df, exog_df, endog_df, instr_df, w, clusters, extra_df,
                    "clustered" if cluster_cols else vcov, absorb_cols, endog_norms, instr_norms)


def residualised(design: IVDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """sqrt(w)-weighted outcome, endogenous regressors and instruments residualised on the exogenous
    regressors (fixed effects are already out); raises when nothing is left of a regressor.

    Parameters
    ----------
    design : IVDesign
        The model matrices.

    Returns
    -------
    y, d, z : numpy.ndarray
        Outcome (n), endogenous regressors (n x p) and instruments (n x q), residualised.
    k_exog : int
        Number of exogenous regressors partialled out.
    """
    root_w = design.sqrt_weights
    exog_w = design.exog.to_numpy(float) * root_w[:, None] if design.exog.shape[1] else None
    y_t = weak.partial_out(design.dependent.to_numpy(float)[:, 0] * root_w, exog_w)
    d_t = weak.partial_out(design.endog.to_numpy(float) * root_w[:, None], exog_w)
    z_t = weak.partial_out(design.instruments.to_numpy(float) * root_w[:, None], exog_w)
    after = "the exogenous regressors" + (" and absorbed fixed effects" if design.absorbed else "")
    for j, name in enumerate(design.instruments.columns):
        _check_residual(str(name), z_t[:, j], design.instr_norms[j], "instrument", after)
    for j, name in enumerate(design.endog.columns):
        _check_residual(str(name), d_t[:, j], design.endog_norms[j], "endogenous regressor", after)
    return y_t, d_t, z_t, 0 if exog_w is None else exog_w.shape[1]
