"""Sensitivity of an event study to violations of parallel trends (Rambachan & Roth 2023).

An event study ``beta = (beta_pre, beta_post)`` with covariance ``Sigma`` decomposes as
``beta = tau + delta``: treatment effects (``tau_pre = 0``) plus a differential trend
``delta``. Exact parallel trends sets ``delta_post = 0``; this module instead assumes
``delta`` lies in a set ``Delta`` and reports confidence sets for
``theta = l' tau_post`` (one event time, or an average of post effects) that are valid for
every ``delta`` in ``Delta`` (Rambachan & Roth 2023, *Rev. Econ. Stud.* 90(5), Sec. 2-4).

Restrictions (the reference period ``-1`` is normalised to ``delta = 0``):

- ``"smoothness"``, ``Delta^SD(M)`` (eq. 2.6 of the paper): every second difference of
  ``delta`` is at most ``M`` in absolute value. Default confidence interval: the optimal
  fixed-length confidence interval (FLCI) of Armstrong & Kolesar (2018, 2021), Sec. 4.1 of
  the paper; also the ARP conditional test and its hybrids (``"C-F"``, ``"C-LF"``).
- ``"relative_magnitude"``, ``Delta^RM(Mbar)`` (eq. 2.5): each post-period change of
  ``delta`` is at most ``Mbar`` times the largest pre-period change. ``Delta^RM`` is a union
  of ``2 * T_pre`` polyhedra (where the largest pre change sits, and its sign); the
  confidence set is the union of the per-polyhedron sets from the conditional test of
  Andrews, Roth & Pakes (2023, *Rev. Econ. Stud.*, Sec. 3) with nuisance parameters
  (Rambachan & Roth, Sec. 4.2 and eq. 12-14), or its least-favourable hybrid
  (``"C-LF"``, ARP Sec. 3.3, first-stage size ``kappa = alpha / 10``; the default, as in
  HonestDiD).
- Either intersected with a sign restriction on the post-period bias (``bias_direction``,
  ``Delta^SDB`` / ``Delta^RMB``) or a monotone trend (``monotonicity_direction``,
  ``Delta^SDM`` / ``Delta^RMM``), Sec. 2.4.3 of the paper. Default method: the FLCI hybrid
  ``"C-F"`` for smoothness (the FLCI alone ignores these restrictions and is refused), ``"C-LF"``
  for relative magnitudes.

Modules: :mod:`~impactkit.did.honest_delta` (inputs and restriction matrices),
:mod:`~impactkit.did.honest_flci` (the FLCI), :mod:`~impactkit.did.honest_arp` (the
conditional test and its hybrids), :mod:`~impactkit.did.honest_sets` (one confidence set:
method and grid); this module is the front door and the result.

Departures from the peers, each documented where it applies: every pre-period change may be
the largest under ``Delta^RM`` and its intersections (as R HonestDiD; moderndid 0.2.0 skips the
earliest, and for ``Delta^RMB``/``Delta^RMM`` adds a polyhedron bounded by the first post-period
change); the default grid of the conditional tests under the smoothness family follows the
estimate (:mod:`~impactkit.did.honest_sets`).

:func:`honest_did` is the front door; it takes estimates and covariance (from any event
study) or a Callaway-Sant'Anna dynamic aggregation (``universal`` base period). The result
has :meth:`HonestResult.breakdown` (smallest ``M``/``Mbar`` whose set includes a null value)
and :meth:`HonestResult.plot` (the sensitivity plot).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from impactkit.did.honest_delta import EventStudy, check_event_study, target_vector
from impactkit.did.honest_sets import SHAPE_KINDS, RobustSets, SetSpec
from impactkit.errors import InputError
from impactkit.results import Result, to_plain

RESTRICTIONS = ("smoothness", "relative_magnitude")
METHODS = {"smoothness": ("FLCI", "C-F", "C-LF", "Conditional"), "relative_magnitude": ("C-LF", "Conditional")}
DIRECTIONS = {"bias_direction": ("positive", "negative"), "monotonicity_direction": ("increasing", "decreasing")}


# ------------------------------------------------------------------------- result


@dataclass
class HonestResult(Result):
    """Robust confidence sets by restriction size, plus the original (parallel-trends) interval."""

    title: ClassVar[str] = "Sensitivity to parallel trends (Rambachan & Roth 2023)"

    restriction: str
    method: str
    table: pd.DataFrame
    original: tuple[float, float, float]
    alpha: float
    l_vec: np.ndarray
    _study: EventStudy = field(repr=False)
    _sets: RobustSets | None = field(default=None, repr=False)
    shape: str | None = None

    @property
    def parameter(self) -> str:
        return "Mbar" if self.restriction == "relative_magnitude" else "M"

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()

    def notes(self) -> list[str]:
        est, lo, hi = self.original
        kind = ("Delta^RM(Mbar): post changes of the trend at most Mbar x the largest pre change"
                if self.restriction == "relative_magnitude"
                else "Delta^SD(M): second differences of the trend at most M")
        if self.shape is not None:
            kind += {"positive": ", post-period bias >= 0", "negative": ", post-period bias <= 0",
                     "increasing": ", trend increasing", "decreasing": ", trend decreasing"}[self.shape]
        return [f"Restriction {kind}; method {self.method}; "
                f"{int(round((1 - self.alpha) * 100))}% robust confidence sets for l'tau_post, l = {np.round(self.l_vec, 4).tolist()}.",
                f"Under exact parallel trends: estimate {est:.4g}, interval [{lo:.4g}, {hi:.4g}]."]

    def breakdown(self, null: float = 0.0, upper: float | None = None, tol: float = 1e-4) -> float:
        """Smallest ``M`` (or ``Mbar``) whose robust set contains ``null`` (bisection to ``tol``
        relative to ``upper``); ``0`` when the original interval already contains it, ``inf``
        when even ``upper`` (default: 10 x the largest value in the table, at least 1) does not."""
        if self.original[1] <= null <= self.original[2]:
            return 0.0
        hi = upper if upper is not None else max(10.0 * float(self.table[self.parameter].max()), 1.0)

        def covers(value):
            lo_, hi_ = self._interval(value)
            return bool(np.isnan(lo_) or lo_ <= null <= hi_)

        if not covers(hi):
            return math.inf
        lo = 0.0
        while hi - lo > tol * max(hi, 1e-12):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if covers(mid) else (mid, hi)
        return hi

    def _interval(self, value: float) -> tuple[float, float]:
        return self._sets.interval(value)

    def plot(self, ax=None):
        """The sensitivity plot: robust intervals by ``M``/``Mbar`` next to the original one."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4))
        else:
            fig = ax.figure
        values = self.table[self.parameter].to_numpy(dtype=float)
        step = float(np.min(np.diff(np.unique(values)))) if np.unique(values).size > 1 else 1.0
        x_orig = values.min() - step
        est, lo, hi = self.original
        ax.plot([x_orig, x_orig], [lo, hi], color="#636363", linewidth=2.0, label="original")
        ax.scatter([x_orig], [est], color="#636363", zorder=3, s=24)
        for v, l_, h_ in zip(values, self.table["conf_low"], self.table["conf_high"]):
            ax.plot([v, v], [l_, h_], color="#08519c", linewidth=2.0)
        ax.plot([], [], color="#08519c", linewidth=2.0, label=f"robust ({self.method})")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(self.parameter)
        ax.set_ylabel("Confidence set for l'tau_post")
        ax.set_title(self.title)
        ax.legend(loc="best", frameon=False, fontsize=8)
        fig.tight_layout()
        fig._impactkit_alt_text = (
            f"Sensitivity plot: {len(values)} robust confidence intervals for {self.parameter} from "
            f"{values.min():g} to {values.max():g}, next to the original interval [{lo:.3g}, {hi:.3g}].")
        return fig

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"restriction": self.restriction, "shape": self.shape, "method": self.method,
                    "original": to_plain(list(self.original)), "l_vec": to_plain(self.l_vec)})
        return out


def honest_did(estimates=None, vcov=None, *, num_pre: int | None = None, num_post: int | None = None,
               event_study=None, restriction: str = "relative_magnitude", bias_direction: str | None = None,
               monotonicity_direction: str | None = None, m: Sequence[float] | None = None,
               event_time: int | None = None, l_vec=None, method: str | None = None, alpha: float = 0.05,
               grid_points: int = 1000, grid_lb: float | None = None, grid_ub: float | None = None,
               seed: int | None = None) -> HonestResult:
    """Robust confidence sets under bounded violations of parallel trends.

    Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends. *Review of
    Economic Studies* 90(5), 2555-2591: ``Delta^SD`` (eq. 2.6) with the FLCI (Sec. 4.1),
    ``Delta^RM`` (eq. 2.5) with the ARP conditional / least-favourable hybrid test (Sec. 4.2,
    Andrews, Roth & Pakes 2023), either intersected with a sign or monotonicity restriction
    (Sec. 2.4.3), and the FLCI hybrid for the smoothness family (Sec. 4.3).

    Parameters
    ----------
    estimates, vcov : array-like, optional
        Event-study coefficients, pre periods first then post, the reference period (``-1``)
        excluded, and their covariance. Give these with ``num_pre``/``num_post``, or
        ``event_study``.
    num_pre, num_post : int, optional
        Number of pre-treatment and post-treatment coefficients.
    event_study : AggregateResult, optional
        A Callaway-Sant'Anna ``aggregate("dynamic")`` result estimated with
        ``base_period="universal"``; its covariance is ``Psi'Psi / n^2`` of the event-time
        influence functions (as R HonestDiD's ``honest_did.AGGTEobj``).
    restriction : {"relative_magnitude", "smoothness"}
        ``Delta^RM(Mbar)`` or ``Delta^SD(M)``.
    bias_direction : {"positive", "negative"}, optional
        Intersect with a sign restriction on the post-period bias, ``delta_post >= 0`` or ``<= 0``
        (``Delta^SDB``, ``Delta^RMB``).
    monotonicity_direction : {"increasing", "decreasing"}, optional
        Intersect with a monotone trend (``Delta^SDM``, ``Delta^RMM``). Not with ``bias_direction``.
    m : sequence of float, optional
        Values of ``Mbar`` (default ``0.5, 1, 1.5, 2``) or ``M`` (default 0 to 5 x the
        standard error of the target, six values).
    event_time, l_vec : optional
        The target ``theta = l' tau_post``: one post event time (``0`` = on impact, the
        default) or a weight vector over the post periods (``[0.5, 0.5]`` = average).
    method : str, optional
        Smoothness: ``"FLCI"`` (default without a sign or monotonicity restriction, which it
        would ignore), ``"C-F"`` (FLCI hybrid, the default with one), ``"C-LF"`` or
        ``"Conditional"``. Relative magnitudes: ``"C-LF"`` (default) or ``"Conditional"``.
    alpha : float
        One minus the confidence level.
    grid_points : int
        Grid size for the test inversion (every method but ``"FLCI"``).
    grid_lb, grid_ub : float, optional
        Both or neither: the grid's ends (default: see :mod:`impactkit.did.honest_sets`).
    seed : int, optional
        Seed of the least-favourable critical value simulation (``C-LF``).

    Returns
    -------
    HonestResult
        ``tidy()``: one row per ``M``/``Mbar`` with ``conf_low``, ``conf_high``;
        ``breakdown()``; ``plot()``.

    Raises
    ------
    InputError
        Shapes that do not conform, a covariance that is not symmetric PSD, an unknown
        restriction, direction or method, both directions, the FLCI with a direction, fewer
        than two pre periods for relative magnitudes.
    """
    if restriction not in RESTRICTIONS:
        raise InputError(f"honest_did: restriction must be one of {', '.join(RESTRICTIONS)}, got {restriction!r}")
    shape = check_shape(bias_direction, monotonicity_direction)
    method = method or ("C-F" if restriction == "smoothness" and shape else METHODS[restriction][0])
    if method not in METHODS[restriction]:
        raise InputError(f"honest_did: method for {restriction} must be one of "
                         f"{', '.join(METHODS[restriction])}, got {method!r}")
    if method == "FLCI" and shape is not None:
        raise InputError(f"honest_did: the FLCI does not use the {SHAPE_KINDS[shape]} restriction; "
                         "use method 'C-F', 'C-LF' or 'Conditional'")
    if not 0 < alpha < 1:
        raise InputError(f"honest_did: alpha must be in (0, 1), got {alpha!r}")
    if (grid_lb is None) != (grid_ub is None) or (grid_lb is not None and not grid_lb < grid_ub):
        raise InputError("honest_did: give both grid_lb and grid_ub (grid_lb < grid_ub), or neither")
    if event_study is not None:
        estimates, vcov, num_pre, num_post = event_study_inputs(event_study)
    if estimates is None or vcov is None or num_pre is None or num_post is None:
        raise InputError("honest_did: give estimates, vcov, num_pre and num_post, or event_study")
    study = check_event_study(estimates, vcov, num_pre, num_post)
    if restriction == "relative_magnitude" and study.num_pre < 2:
        raise InputError("honest_did: relative magnitudes need at least two pre-treatment coefficients")
    if grid_points < 10:
        raise InputError(f"honest_did: grid_points must be at least 10, got {grid_points}")
    lv = target_vector(study.num_post, l_vec, event_time)
    est = float(lv @ study.beta[study.post])
    se = math.sqrt(float(lv @ study.sigma[study.post, study.post] @ lv))
    z = norm.ppf(1 - alpha / 2)
    if m is None:
        m = [0.5, 1.0, 1.5, 2.0] if restriction == "relative_magnitude" else list(np.linspace(0, 5 * se, 6))
    values = np.asarray(list(m), dtype=float)
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values < 0):
        raise InputError("honest_did: m must be a non-empty list of non-negative numbers")
    spec = SetSpec(restriction, shape, method, alpha, int(grid_points), grid_lb, grid_ub, seed)
    sets = RobustSets(study, lv, spec)
    rows = []
    for value in values:
        lo, hi = sets.interval(float(value))
        rows.append({"M" if restriction == "smoothness" else "Mbar": float(value), "conf_low": lo,
                     "conf_high": hi, "method": method, "restriction": spec.name})
    return HonestResult(restriction=restriction, method=method, table=pd.DataFrame(rows),
                        original=(est, est - z * se, est + z * se), alpha=alpha, l_vec=lv, _study=study,
                        _sets=sets, shape=shape)


def check_shape(bias_direction: str | None, monotonicity_direction: str | None) -> str | None:
    """The one sign or monotonicity direction asked for (or None); :class:`InputError` otherwise."""
    given = {k: v for k, v in (("bias_direction", bias_direction),
                               ("monotonicity_direction", monotonicity_direction)) if v is not None}
    if len(given) > 1:
        raise InputError("honest_did: give bias_direction or monotonicity_direction, not both")
    for key, value in given.items():
        if value not in DIRECTIONS[key]:
            raise InputError(f"honest_did: {key} must be one of {', '.join(DIRECTIONS[key])}, got {value!r}")
        return value
    return None


def event_study_inputs(event_study) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(beta, sigma, num_pre, num_post)`` from a Callaway-Sant'Anna dynamic aggregation: event
    time ``-1`` (the universal base period) dropped, consecutive event times required."""
    rows = getattr(event_study, "rows", None)
    influence = getattr(event_study, "row_influence", None)
    if getattr(event_study, "kind", None) != "dynamic" or rows is None or influence is None:
        raise InputError("honest_did: event_study must be a dynamic aggregation with influence functions "
                         "(result.aggregate('dynamic'))")
    times = rows["event_time"].to_numpy(dtype=float)
    beta = rows["estimate"].to_numpy(dtype=float)
    keep = times != -1
    if np.any(np.isclose(beta[~keep], 0.0) == False):  # noqa: E712 - the base period must be 0
        raise InputError("honest_did: event time -1 is not normalised to zero; estimate with "
                         "base_period='universal'")
    times, beta, psi = times[keep], beta[keep], np.asarray(influence, dtype=float)[:, keep]
    if np.any(np.diff(times) != 1) and times.size > 1:
        gaps = times[1:][np.diff(times) != 1]
        if not (gaps.size == 1 and gaps[0] == 0 and -2 in times):
            raise InputError("honest_did: event times must be consecutive (apart from the reference -1)")
    n = psi.shape[0]
    sigma = psi.T @ psi / float(n) ** 2
    return beta, sigma, int(np.sum(times < -1)), int(np.sum(times >= 0))
