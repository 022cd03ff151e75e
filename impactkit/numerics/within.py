"""Fixed-effect demeaning (the "within" transformation) with ``np.bincount``.

Partialling fixed effects out of the outcome and the regressors gives the same slope
coefficients as the dummy-variable regression (Frisch-Waugh-Lovell theorem; Lovell 1963,
JASA 58(304)). Two paths:

- exact one-pass two-way demeaning ``x_it - xbar_i - xbar_t + xbar`` for a balanced
  panel without weights (Baltagi 2021, *Econometric Analysis of Panel Data*, eq. 3.3);
  when the rows are sorted by unit then period the group sums are taken on the
  (units x periods) grid, in the same order as ``np.bincount`` (bit-identical, faster);
- alternating projections otherwise (method of alternating projections,
  Gaure 2013, *Computational Statistics & Data Analysis* 66, "OLS with multiple high
  dimensional category variables", section 3): repeatedly subtract (weighted) group means
  of each fixed effect until the largest mean subtracted in a sweep is below ``tol``
  times the column's largest absolute value. One fixed effect takes one exact pass.

All functions are pure and work on numpy arrays, so they can run per partition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError

DEMEAN_METHODS = ("auto", "projections")


def factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 (in order of first appearance) and the number of groups G.

    Integer columns whose range is at most a few times their length are coded through a
    lookup table (no hashing); anything else goes to ``pd.factorize``. Both give the same
    codes. Missing values raise :class:`EstimationError`.
    """
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    codes = _factorize_integer_range(array)
    if codes is not None:
        return codes
    codes_pd, uniques = pd.factorize(values if isinstance(values, pd.Series) else array)
    if (codes_pd < 0).any():
        raise EstimationError("factorize: missing values in a grouping column")
    return codes_pd.astype(np.intp, copy=False), int(len(uniques))


def _factorize_integer_range(array: np.ndarray) -> tuple[np.ndarray, int] | None:
    """First-appearance codes of an integer array with a compact range (else None).

    Codes in sorted order come from a lookup table; they are relabelled to first-appearance
    order unless that order is already sorted (a sorted column, or one whose first G rows
    hold the G values in order, as the period column of a panel sorted by unit and period).
    """
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        return None
    low, high = int(array.min()), int(array.max())
    if high - low > 4 * array.size + 1024:
        return None
    raw = (array - low).astype(np.intp, copy=False) if low else array.astype(np.intp, copy=False)
    present = np.bincount(raw, minlength=high - low + 1) > 0
    sorted_codes = np.cumsum(present, dtype=np.intp) - 1
    codes = sorted_codes[raw]
    n_groups = int(sorted_codes[-1]) + 1
    in_order = (codes[1:] >= codes[:-1]).all() or np.array_equal(codes[:n_groups], np.arange(n_groups))
    if not in_order:
        first_row = np.full(n_groups, codes.size, dtype=np.intp)
        np.minimum.at(first_row, codes, np.arange(codes.size, dtype=np.intp))
        relabel = np.empty(n_groups, dtype=np.intp)
        relabel[np.argsort(first_row, kind="stable")] = np.arange(n_groups, dtype=np.intp)
        codes = relabel[codes]
    return codes, n_groups


def group_sums(matrix: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Column-wise sums of ``matrix`` (n x k) by group: a (n_groups x k) array."""
    matrix = np.atleast_2d(matrix.T).T
    out = np.empty((n_groups, matrix.shape[1]))
    for j in range(matrix.shape[1]):
        out[:, j] = np.bincount(codes, weights=matrix[:, j], minlength=n_groups)
    return out


def is_balanced_two_way(codes_a: np.ndarray, n_a: int, codes_b: np.ndarray, n_b: int) -> bool:
    """True when every (a, b) pair occurs exactly once (a balanced panel)."""
    if codes_a.shape[0] != n_a * n_b:
        return False
    if is_sorted_grid(codes_a, n_a, codes_b, n_b):
        return True
    pair_counts = np.bincount(codes_a * n_b + codes_b, minlength=n_a * n_b)
    return bool(pair_counts.max() == 1 and pair_counts.min() == 1)


def is_sorted_grid(codes_a: np.ndarray, n_a: int, codes_b: np.ndarray, n_b: int) -> bool:
    """True when row ``r`` is (a, b) = (r // n_b, r % n_b): a panel sorted by a, then b."""
    if codes_a.shape[0] != n_a * n_b:
        return False
    grid_a = codes_a.reshape(n_a, n_b)
    grid_b = codes_b.reshape(n_a, n_b)
    return bool((grid_a == np.arange(n_a)[:, None]).all() and (grid_b == np.arange(n_b)[None, :]).all())


def demean_balanced_two_way(matrix: np.ndarray, codes_a: np.ndarray, n_a: int,
                            codes_b: np.ndarray, n_b: int) -> np.ndarray:
    """Exact two-way demeaning of a balanced panel: ``x - xbar_a - xbar_b + xbar``.

    Returns a new Fortran-ordered array; see :func:`demean_balanced_two_way_inplace`.
    """
    out = np.array(np.atleast_2d(matrix.T).T, dtype=float, order="F", copy=True)
    demean_balanced_two_way_inplace(out, codes_a, n_a, codes_b, n_b)
    return out


def demean_balanced_two_way_inplace(out: np.ndarray, codes_a: np.ndarray, n_a: int,
                                    codes_b: np.ndarray, n_b: int, *, grid: bool | None = None) -> None:
    """In-place exact two-way demeaning of the columns of the float (n x k) array ``out``.

    Group sums accumulate row by row (``np.bincount`` order); on a panel sorted by a then
    b (``grid``; checked when ``None``) they are taken on the (n_a x n_b) grid with the
    same additions in the same order.
    """
    if grid is None:
        grid = is_sorted_grid(codes_a, n_a, codes_b, n_b)
    for j in range(out.shape[1]):
        col = out[:, j]
        if grid:
            cells = col.reshape(n_a, n_b)  # a view: splitting one axis never copies
            sums_a = cells[:, 0].copy()
            for b in range(1, n_b):
                sums_a += cells[:, b]
            mean_a = sums_a / n_b
            mean_b = np.add.reduce(cells, axis=0) / n_a
            mean_b -= mean_a.mean()
            cells -= mean_a[:, None]
            cells -= mean_b[None, :]
        else:
            mean_a = np.bincount(codes_a, weights=col, minlength=n_a) / n_b
            mean_b = np.bincount(codes_b, weights=col, minlength=n_b) / n_a
            mean_b -= mean_a.mean()
            col -= mean_a[codes_a]
            col -= mean_b[codes_b]


def demean(matrix: np.ndarray, fe_codes: Sequence[np.ndarray], fe_sizes: Sequence[int], *,
           weights: np.ndarray | None = None, tol: float = 1e-13, max_iter: int = 100_000,
           method: str = "auto") -> np.ndarray:
    """Partial the fixed effects ``fe_codes`` out of every column of ``matrix`` (a new array).

    ``matrix`` is (n x k) or (n,); ``fe_codes`` integer codes per fixed effect (from
    :func:`factorize`); ``weights`` optional analytic weights (weighted projections).
    ``method="auto"`` takes the exact one-pass formula on a balanced two-way panel without
    weights and alternating projections otherwise; ``"projections"`` always iterates.
    Raises :class:`EstimationError` if alternating projections do not converge within
    ``max_iter`` sweeps.
    """
    values = np.asarray(matrix, dtype=float)
    one_dim = values.ndim == 1
    out = np.array(values.reshape(-1, 1) if one_dim else values, dtype=float, order="F", copy=True)
    demean_inplace(out, fe_codes, fe_sizes, weights=weights, tol=tol, max_iter=max_iter, method=method)
    return out.ravel() if one_dim else out


def demean_inplace(out: np.ndarray, fe_codes: Sequence[np.ndarray], fe_sizes: Sequence[int], *,
                   weights: np.ndarray | None = None, tol: float = 1e-13, max_iter: int = 100_000,
                   method: str = "auto") -> None:
    """:func:`demean` on a float (n x k) array, overwriting it (Fortran order is fastest)."""
    if method not in DEMEAN_METHODS:
        raise ValueError(f"demean: method must be one of {DEMEAN_METHODS}, got {method!r}")
    if len(fe_codes) == 0 or out.size == 0:
        return
    if method == "auto" and weights is None and len(fe_codes) == 2:
        grid = is_sorted_grid(fe_codes[0], fe_sizes[0], fe_codes[1], fe_sizes[1])
        if grid or is_balanced_two_way(fe_codes[0], fe_sizes[0], fe_codes[1], fe_sizes[1]):
            demean_balanced_two_way_inplace(out, fe_codes[0], fe_sizes[0], fe_codes[1], fe_sizes[1], grid=grid)
            return
    w = None if weights is None else np.asarray(weights, dtype=float)
    totals = [np.bincount(c, weights=w, minlength=g).astype(float) for c, g in zip(fe_codes, fe_sizes)]
    for j in range(out.shape[1]):
        demean_column_inplace(out[:, j], fe_codes, fe_sizes, totals, w, tol, max_iter)


def demean_column_inplace(col: np.ndarray, fe_codes: Sequence[np.ndarray], fe_sizes: Sequence[int],
                          totals: Sequence[np.ndarray], weights: np.ndarray | None, tol: float,
                          max_iter: int) -> None:
    """Alternating projections on one column, in place (Gaure 2013, section 3).

    Each sweep subtracts the (weighted) group means of every fixed effect in turn; stops
    when the largest mean subtracted in a sweep is below ``tol`` times the column's scale.
    """
    scale = max(1.0, float(np.abs(col).max(initial=0.0)))
    for _ in range(max_iter):
        largest_step = 0.0
        for codes, size, total in zip(fe_codes, fe_sizes, totals):
            sums = np.bincount(codes, weights=col if weights is None else col * weights, minlength=size)
            means = np.divide(sums, total, out=np.zeros_like(sums), where=total > 0)
            col -= means[codes]
            largest_step = max(largest_step, float(np.abs(means).max(initial=0.0)))
        if len(fe_codes) == 1 or largest_step <= tol * scale:
            return
    raise EstimationError(f"demean: alternating projections did not converge in {max_iter} sweeps (tol {tol})")
