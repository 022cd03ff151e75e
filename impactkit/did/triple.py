"""Triple differences (DDD) for two periods, doubly robust (Ortiz-Villavicencio & Sant'Anna 2025).

Ortiz-Villavicencio, M. & Sant'Anna, P. H. C. (2025). Better understanding triple differences
estimators. arXiv:2505.09942, Sec. 3, eq. (3.5).

Units are split by a treatment-enabling group ``S`` (``1`` = the group where the policy turns on
in the second period, ``0`` = not enabled) and an eligibility partition ``Q`` (``1`` eligible).
The target is the ATT of the eligible units of the enabled group, ``E[Y_2(1) - Y_2(0) | S=1, Q=1]``,
identified when the eligible-minus-ineligible trend gap is the same in both groups (DDD
conditional parallel trends). With the cells ``4 = (S=1,Q=1)``, ``3 = (S=1,Q=0)``,
``2 = (S=0,Q=1)``, ``1 = (S=0,Q=0)``, the estimator is

``ATT_DDD = DiD(4 vs 3) + DiD(4 vs 2) - DiD(4 vs 1)``

where each DiD is the 2x2 of Sant'Anna & Zhao (2020) (doubly robust by default; IPW or
outcome regression) on the units of its two cells, with covariates from the first period.
Note that the doubly robust DDD is *not* the difference of two DiDs when covariates matter
(paper, Sec. 3.2). The influence function is ``(n/n_3) psi_3 + (n/n_2) psi_2 - (n/n_1) psi_1``
(each ``psi`` zero off its sub-sample); standard errors are its standard deviation over
``sqrt(n)``, or cluster sums.

Only two periods (a pre and a post period) are handled; staggered enabling dates (the
paper's Sec. 4) raise an :class:`~impactkit.errors.InputError` naming that limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.base import DidEstimator, DidPanel, DidResult
from impactkit.did.drdid import drdid_panel
from impactkit.errors import EstimationError, InputError

CELLS = {4: "enabled, eligible", 3: "enabled, ineligible", 2: "not enabled, eligible", 1: "not enabled, ineligible"}


@dataclass
class TripleResult(DidResult):
    """The DDD ATT, its three component DiDs and cell counts."""

    title: ClassVar[str] = "Triple differences (Ortiz-Villavicencio & Sant'Anna 2025)"
    method: ClassVar[str] = "ddd"

    estimate: float
    std_error: float
    alpha: float
    components: pd.DataFrame
    counts: dict[int, int]
    influence: np.ndarray
    n_units: int

    def att(self) -> dict[str, float]:
        z = norm.ppf(1 - self.alpha / 2)
        p = float(2 * norm.sf(abs(self.estimate / self.std_error))) if self.std_error > 0 else math.nan
        return {"estimate": self.estimate, "std_error": self.std_error, "conf_low": self.estimate - z * self.std_error,
                "conf_high": self.estimate + z * self.std_error, "p_value": p}

    def tidy(self) -> pd.DataFrame:
        return pd.DataFrame([{"term": "ATT (DDD)", **self.att(), "n": self.n_units}])

    def notes(self) -> list[str]:
        cells = ", ".join(f"{CELLS[k]}: {v}" for k, v in sorted(self.counts.items(), reverse=True))
        parts = "; ".join(f"{r.comparison}: {r.estimate:.4g}" for r in self.components.itertuples())
        return [f"Units by cell: {cells}.", f"Component DiDs ({parts}); DDD = first + second - third."]


def subgroups(enabled: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Cell codes 4/3/2/1 from ``S`` and ``Q`` (see the module docstring)."""
    return np.where(enabled == 1, np.where(eligible == 1, 4, 3), np.where(eligible == 1, 2, 1))


def estimate_ddd_arrays(delta_y: np.ndarray, cell: np.ndarray, design: np.ndarray | None,
                        weights: np.ndarray | None, est: str = "dr", clusters: np.ndarray | None = None,
                        names: tuple[str, ...] = ()) -> tuple[float, float, list[tuple[str, float]], np.ndarray]:
    """DDD from per-unit outcome changes and cells: ``(att, se, components, influence)``."""
    n = delta_y.size
    for code in (4, 3, 2, 1):
        if not np.any(cell == code):
            raise EstimationError(f"ddd: no units in the cell '{CELLS[code]}'")
    total_inf = np.zeros(n)
    att = 0.0
    components = []
    for comparison, sign in ((3, 1.0), (2, 1.0), (1, -1.0)):
        subset = (cell == 4) | (cell == comparison)
        sub_design = None if design is None else design[subset]
        sub_w = None if weights is None else weights[subset]
        est_c, inf_c = drdid_panel(delta_y[subset], (cell[subset] == 4).astype(float), sub_design, sub_w, est=est,
                                   label=f"ddd ({CELLS[4]} vs {CELLS[comparison]})", names=names)
        att += sign * est_c
        full = np.zeros(n)
        full[subset] = inf_c
        total_inf += sign * (n / subset.sum()) * full
        components.append((f"vs {CELLS[comparison]}", float(est_c)))
    if clusters is None:
        se = float(np.std(total_inf, ddof=1) / math.sqrt(n))
    else:
        _, codes = np.unique(clusters, return_inverse=True)
        sums = np.bincount(codes.ravel(), weights=total_inf)
        g = sums.size
        se = float(math.sqrt(g / (g - 1.0) * float(sums @ sums)) / n)
    return float(att), se, components, total_inf


def fit_ddd_panel(panel: DidPanel, *, partition: str, est: str = "dr", alpha: float = 0.05) -> TripleResult:
    """Two-period DDD on a prepared panel: ``S`` from the cohort (enabled in the second period),
    ``Q`` from the ``partition`` column (0/1, constant within unit)."""
    frame = panel.frame
    if partition not in panel.source.columns:
        raise InputError(f"ddd: partition column '{partition}' not in the data")
    q = pd.to_numeric(panel.source.loc[frame.index, partition], errors="coerce").to_numpy()
    if np.any(~np.isin(q, (0, 1))):
        raise InputError(f"ddd: partition column '{partition}' must be 0/1 without missing values")
    times = np.sort(frame["_time"].unique())
    if times.size != 2:
        raise InputError(f"ddd: two periods are supported (pre and post); '{panel.time}' has {times.size}; "
                         "staggered triple differences are not implemented")
    cohorts = set(frame["_cohort"].unique()) - {0.0}
    if cohorts - {float(times[1])}:
        raise InputError(f"ddd: the enabled group must start treatment in the second period {times[1]:g}; "
                         f"cohort(s) {sorted(cohorts)} found")
    codes, uniques = pd.factorize(frame["_unit"], sort=False)
    n_units = uniques.size
    is_pre = frame["_time"].to_numpy() == times[0]
    counts_pre = np.bincount(codes[is_pre], minlength=n_units)
    counts_post = np.bincount(codes[~is_pre], minlength=n_units)
    if np.any(counts_pre != 1) or np.any(counts_post != 1):
        raise InputError("ddd: the panel must be balanced over the two periods (a unit misses a period)")
    pre_rows = np.empty(n_units, dtype=np.int64)
    post_rows = np.empty(n_units, dtype=np.int64)
    pre_rows[codes[is_pre]] = np.flatnonzero(is_pre)
    post_rows[codes[~is_pre]] = np.flatnonzero(~is_pre)
    if np.any(q[pre_rows] != q[post_rows]):
        raise InputError(f"ddd: partition column '{partition}' varies within a unit")
    y_all = frame["_y"].to_numpy(dtype=float)
    delta_y = y_all[post_rows] - y_all[pre_rows]
    enabled = (frame["_cohort"].to_numpy()[pre_rows] == times[1]).astype(int)
    cell = subgroups(enabled, q[pre_rows].astype(int))
    design = None
    if panel.covariates:
        design = np.column_stack([np.ones(n_units), frame[list(panel.covariates)].to_numpy(dtype=float)[pre_rows]])
    weights = frame[panel.weights].to_numpy(dtype=float)[pre_rows] if panel.weights else None
    clusters = None
    if panel.cluster is not None:
        col = panel.cluster if isinstance(panel.cluster, str) else panel.cluster[0]
        clusters = frame[col].to_numpy()[pre_rows]
    att, se, comps, inf = estimate_ddd_arrays(delta_y, cell, design, weights, est, clusters, tuple(panel.covariates))
    counts = {int(k): int(v) for k, v in zip(*np.unique(cell, return_counts=True))}
    table = pd.DataFrame(comps, columns=["comparison", "estimate"])
    return TripleResult(estimate=att, std_error=se, alpha=alpha, components=table, counts=counts, influence=inf,
                        n_units=int(delta_y.size))


class TripleEstimator(DidEstimator):
    """Doubly robust triple differences, two periods (:func:`fit_ddd_panel`)."""

    name = "ddd"
    label = "Triple differences (doubly robust)"
    reference = "Ortiz-Villavicencio & Sant'Anna (2025), arXiv:2505.09942, eq. 3.5"
    options = {"covariates": None, "cluster": None, "weights": None, "est": "dr", "alpha": 0.05, "partition": None}

    def fit(self, panel: DidPanel, *, partition: str | None = None, est: str = "dr", alpha: float = 0.05,
            **_: object) -> TripleResult:
        """DDD on ``panel``; ``partition`` names the 0/1 eligibility column."""
        if partition is None:
            raise InputError("ddd: give partition='column' (0/1 eligibility within the enabled group)")
        return fit_ddd_panel(panel, partition=partition, est=est, alpha=alpha)
