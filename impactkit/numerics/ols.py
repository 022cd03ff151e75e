"""Weighted least squares: coefficients, residuals and the bread of the sandwich.

``b = (X'WX)^-1 X'Wy`` (Aitken 1935; Greene 2018, *Econometric Analysis*, eq. 9-11),
computed on the ``sqrt(w)``-scaled design ``X~ = W^1/2 X`` and outcome ``y~ = W^1/2 y``
by one of two solvers:

- ``"normal"``: solve the normal equations ``X~'X~ b = X~'y~``; ``X~'X~`` and ``X~'y~``
  are sums over rows (they add up across partitions) and cost one pass over a tall
  design: the solver of the fixed-effects regressions, whose demeaned regressors are few
  and well scaled;
- ``"svd"``: the Moore-Penrose pseudo-inverse from the thin SVD ``X~ = U S V'``,
  ``b = V S^-1 U'y~`` and bread ``V S^-2 V'`` (Golub & Van Loan 2013, *Matrix
  Computations*, sec. 5.5.4; singular values below ``1e-15 * max(S)`` dropped, as
  statsmodels' ``pinv``): accurate for the small, possibly ill-scaled designs of the
  design checks (dummies next to covariates in metres or currency units).

The fit keeps ``X~`` and ``u~ = y~ - X~ b``, which are exactly what the sandwich
covariances of :mod:`impactkit.numerics.covariance` take, and the bread ``(X~'X~)^-1``.
Pass an already fixed-effect-demeaned design (:mod:`impactkit.numerics.within`) for a
fixed-effects regression (Frisch-Waugh-Lovell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from impactkit.errors import EstimationError

SOLVERS = ("normal", "svd")
PINV_RCOND = 1e-15


@dataclass(frozen=True)
class LeastSquaresFit:
    """Coefficients, the ``sqrt(w)``-scaled design / outcome / residuals and ``(X~'X~)^-1``."""

    coef: np.ndarray
    design: np.ndarray
    outcome: np.ndarray
    residuals: np.ndarray
    bread: np.ndarray

    @property
    def n_obs(self) -> int:
        return int(self.design.shape[0])

    @property
    def n_coef(self) -> int:
        return int(self.design.shape[1])


def scale_by_root_weights(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """``sqrt(w) * values`` row by row (``values`` itself when there are no weights)."""
    if weights is None:
        return values
    root = np.sqrt(np.asarray(weights, dtype=float))
    return values * (root[:, None] if values.ndim == 2 else root)


def least_squares(outcome: np.ndarray, design: np.ndarray, weights: np.ndarray | None = None, *,
                  solver: str = "normal", names: Sequence[str] | None = None,
                  check_rank: bool = True) -> LeastSquaresFit:
    """WLS of ``outcome`` (n,) on ``design`` (n x k; include the constant yourself).

    ``weights`` are analytic weights (``None``: OLS); ``solver`` is ``"normal"`` or
    ``"svd"`` (see the module docstring). With ``check_rank`` the design must have full
    column rank, else :class:`EstimationError` (naming the columns given in ``names``).
    """
    if solver not in SOLVERS:
        raise ValueError(f"least_squares: solver must be one of {SOLVERS}, got {solver!r}")
    y_w = scale_by_root_weights(np.asarray(outcome, dtype=float), weights)
    x_w = scale_by_root_weights(np.asarray(design, dtype=float), weights)
    if solver == "svd":
        left, singular, right_t = np.linalg.svd(x_w, full_matrices=False)
        rank = int((singular > singular.max(initial=0.0) * max(x_w.shape) * np.finfo(float).eps).sum())
        _require_full_rank(rank, x_w.shape[1], names, check_rank)
        inverse = np.zeros_like(singular)
        keep = singular > PINV_RCOND * singular.max(initial=0.0)
        inverse[keep] = 1.0 / singular[keep]
        pinv = np.dot(right_t.T, inverse[:, None] * left.T)
        coef = np.dot(pinv, y_w)
        xtx_inv = np.dot(pinv, pinv.T)
    else:
        xtx = x_w.T @ x_w
        if check_rank:
            _require_full_rank(int(np.linalg.matrix_rank(xtx)), x_w.shape[1], names, True)
        coef = np.linalg.solve(xtx, x_w.T @ y_w)
        xtx_inv = np.linalg.inv(xtx)
    return LeastSquaresFit(coef=coef, design=x_w, outcome=y_w, residuals=y_w - x_w @ coef, bread=xtx_inv)


def _require_full_rank(rank: int, n_columns: int, names: Sequence[str] | None, check: bool) -> None:
    if check and rank < n_columns:
        shown = f" ({', '.join(names)})" if names else ""
        raise EstimationError(f"the regressors{shown} are collinear (rank {rank} < {n_columns} columns)")
