"""One robust confidence set for one ``M``/``Mbar``, for :mod:`impactkit.did.honest`.

``"FLCI"`` is the optimal fixed-length interval (:mod:`~impactkit.did.honest_flci`); the other
methods invert the Andrews-Roth-Pakes test (:mod:`~impactkit.did.honest_arp`) over a grid of
``theta`` values and report the smallest and largest accepted points (Rambachan & Roth 2023,
*Rev. Econ. Stud.* 90(5), Sec. 4.2-4.3):

- ``"Conditional"``: the conditional test;
- ``"C-LF"``: its least-favourable hybrid;
- ``"C-F"``: its FLCI hybrid (first stage: the size-``alpha/10`` FLCI under ``Delta^SD(M)``),
  defined for the smoothness family (``Delta^SD``, ``Delta^SDB``, ``Delta^SDM``).

The grid has ``grid_points`` points between ``grid_lb`` and ``grid_ub`` when both are given,
else (as R HonestDiD 0.2.6 unless noted):

- relative magnitudes (and their intersections): ``l'beta_post +- (Mbar * sum_t t |l_t| * largest
  pre change + 20 sd)``;
- ``"C-F"``: the first-stage FLCI itself (outside it the test rejects);
- otherwise: the identified set of ``Delta`` at ``beta_hat`` widened by ``20 sd`` (R and moderndid
  take the identified set at ``beta = 0``, which does not follow the estimate; a documented
  departure, same width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from impactkit.did.honest_arp import FlciStage, accept_union
from impactkit.did.honest_delta import (
    DELTA_NAMES,
    POST_ROWS_WITH_ONE_POST,
    EventStudy,
    identified_set,
    restriction_polyhedra,
)
from impactkit.did.honest_flci import FlciSolver

SHAPE_KINDS = {"positive": "bias", "negative": "bias", "increasing": "monotonicity", "decreasing": "monotonicity"}


@dataclass(frozen=True)
class SetSpec:
    """What to compute: the base restriction, an optional sign/monotonicity direction, the method."""

    base: str
    shape: str | None
    method: str
    alpha: float
    grid_points: int = 1000
    grid_lb: float | None = None
    grid_ub: float | None = None
    seed: int | None = None

    @property
    def name(self) -> str:
        """HonestDiD's name of ``Delta``: ``DeltaSD``, ``DeltaSDB``, ``DeltaSDM``, ``DeltaRM``, ..."""
        return DELTA_NAMES[(self.base, SHAPE_KINDS.get(self.shape))]


def rm_grid_bounds(study: EventStudy, l_vec: np.ndarray, mbar: float) -> tuple[float, float]:
    """The grid of HonestDiD: ``l'beta_post +- (Mbar * sum_t t |l_t| * max pre change + 20 sd)``."""
    sd_theta = math.sqrt(float(l_vec @ study.sigma[study.post, study.post] @ l_vec))
    pre = np.concatenate([study.beta[:study.num_pre], [0.0]])
    max_pre = float(np.max(np.abs(np.diff(pre)))) if study.num_pre > 1 else abs(float(study.beta[0]))
    center = float(study.beta[study.post] @ l_vec)
    half = mbar * float(np.arange(1, study.num_post + 1) @ np.abs(l_vec)) * max_pre + 20 * sd_theta
    return center - half, center + half


class RobustSets:
    """Robust confidence sets for one event study, target and :class:`SetSpec`, one ``M`` at a time
    (the FLCI solvers and their variance-bias frontier are kept across values)."""

    def __init__(self, study: EventStudy, l_vec: np.ndarray, spec: SetSpec):
        self.study, self.l_vec, self.spec = study, l_vec, spec
        self.flci = FlciSolver(study, l_vec, spec.alpha) if spec.method == "FLCI" else None
        self.first_stage = FlciSolver(study, l_vec, spec.alpha / 10) if spec.method == "C-F" else None

    def interval(self, value: float) -> tuple[float, float]:
        """``(conf_low, conf_high)`` for ``M``/``Mbar`` = ``value``; ``(nan, nan)`` when the grid
        accepts no point."""
        if self.flci is not None:
            return self.flci.interval(value)
        spec, study = self.spec, self.study
        polys = restriction_polyhedra(spec.base, spec.shape, study.num_pre, study.num_post, value)
        stage = None
        if self.first_stage is not None:
            vec, half = self.first_stage.optimum(value)
            stage = FlciStage(vec, half, spec.alpha / 10)
        thetas = np.linspace(*self.grid_bounds(value, polys, stage), spec.grid_points)
        accept = accept_union(study, self.l_vec, polys, thetas, spec.alpha, spec.method, spec.seed,
                              self.labels(value, len(polys)), POST_ROWS_WITH_ONE_POST[spec.base], stage)
        if not accept.any():
            return math.nan, math.nan
        kept = thetas[accept]
        return float(kept.min()), float(kept.max())

    def grid_bounds(self, value: float, polys, stage: FlciStage | None) -> tuple[float, float]:
        spec, study, lv = self.spec, self.study, self.l_vec
        if spec.grid_lb is not None and spec.grid_ub is not None:
            return spec.grid_lb, spec.grid_ub
        if stage is not None:
            center = float(stage.vec @ study.beta)
            return center - stage.half, center + stage.half
        if spec.base == "relative_magnitude":
            return rm_grid_bounds(study, lv, value)
        sd_theta = math.sqrt(float(lv @ study.sigma[study.post, study.post] @ lv))
        ident = identified_set(study, lv, polys)
        if ident is None:
            observed = float(lv @ study.beta[study.post])
            ident = (observed, observed)
        return ident[0] - 20 * sd_theta, ident[1] + 20 * sd_theta

    def labels(self, value: float, count: int) -> list[str]:
        """Names of the random streams of the least-favourable simulations, one per polyhedron
        (``rm-...`` for ``Delta^RM`` as before the other sets existed, so its draws are unchanged)."""
        if self.spec.base == "relative_magnitude":
            prefix = "rm" if self.spec.shape is None else self.spec.name
            return [f"{prefix}-{value!r}-{i // 2}-{i % 2 == 0}" for i in range(count)]
        return [f"{self.spec.name}-{value!r}-{i}" for i in range(count)]
