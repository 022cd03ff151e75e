"""Randomization inference for difference-in-differences when assignment was random.

Fisher's (1935) exact test of the sharp null of no effect for any unit, applied to
cluster-randomised panel designs as in Young (2019, *Channeling Fisher*, QJE 134(2)) and
the design-based view of Athey & Imbens (2017, Handbook of Field Experiments 1, section 4):

- the assignment (a 0/1 "treated cluster" flag, or a cohort label such as the first treated
  period in a staggered design) is re-randomised across clusters (or units), within strata
  when given, which preserves the number of clusters carrying each label;
- the supplied estimator (frame -> float) is recomputed under each re-randomisation;
- two-sided p-value ``(1 + #{|T_b| >= |T_obs|}) / (1 + P)`` over ``P`` random permutations,
  or the exact share ``#{|T_a| >= |T_obs|} / #A`` over all ``#A`` distinct assignments when
  they can be enumerated (Imbens & Rubin 2015, *Causal Inference*, ch. 5, eqs. 5.4-5.6);
- a confidence interval by inverting sharp nulls of a constant effect ``tau`` (Imbens &
  Rubin 2015, section 5.7): under ``H0(tau)`` the untreated outcome is ``y - tau * D`` with
  ``D`` the realised treatment indicator, which is then held fixed across assignments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from impactkit.did.ri_assignments import (  # noqa: F401  (re-exported: they lived here)
    MAX_ENUMERATED_ASSIGNMENTS,
    AssignmentLevels,
    assignment_levels,
    assignments_to_test,
    count_assignments,
    enumerate_assignments,
    permute_assignments,
    reassigned_frame,
)
from impactkit.did.wild import distribution_quantiles, invert_p_value, resampling_histogram
from impactkit.errors import EstimationError, InputError
from impactkit.limits import MAX_PERMUTATIONS
from impactkit.results import Result, to_plain

Design = Literal["cluster", "unit"]
TIE_RTOL = 1e-10
_LINEARITY_RTOL = 1e-8
_LINEARITY_CHECKS = 5


# --------------------------------------------------------------------------- p-values
def permutation_p_value(observed: float, permuted: np.ndarray, exact: bool) -> float:
    """Two-sided RI p-value; ties (within 1e-10 relative) count as at least as extreme.

    exact: ``#{|T_a| >= |T_obs|} / #A`` (the observed assignment is one of the ``#A``);
    random: ``(1 + #{|T_b| >= |T_obs|}) / (1 + P)``.

    Parameters
    ----------
    observed : float
        The statistic under the observed assignment.
    permuted : numpy.ndarray
        The statistic under each enumerated or drawn assignment.
    exact : bool
        True when ``permuted`` holds every possible assignment.

    Returns
    -------
    float
    """
    tol = TIE_RTOL * max(1.0, abs(observed))
    hits = int(np.count_nonzero(np.abs(permuted) >= abs(observed) - tol))
    if exact:
        return hits / permuted.size
    return (1 + hits) / (1 + permuted.size)


# --------------------------------------------------------------------------- result
@dataclass
class RandomizationResult(Result):
    """Randomization-inference test of the sharp null (and constant-effect interval)."""

    title = "Randomization inference"

    term: str
    estimate: float
    p_value: float
    conf_low: float
    conf_high: float
    alpha: float
    n_permutations: int
    n_assignments: int
    exact: bool
    n_clusters: int
    n_obs: int
    design: str
    strata: str | None
    seed: int | None
    permutation_stats: np.ndarray = field(repr=False)

    def tidy(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "term": self.term, "estimate": self.estimate, "p_value": self.p_value,
            "conf_low": self.conf_low, "conf_high": self.conf_high, "n": self.n_obs,
            "n_permutations": self.n_permutations, "n_clusters": self.n_clusters,
            "design": self.design,
        }])

    def notes(self) -> list[str]:
        level = "clusters" if self.design == "cluster" else "units"
        how = (f"all {self.n_assignments} distinct assignments enumerated (exact p-value)"
               if self.exact else
               f"{self.n_permutations} random re-randomisations of {self.n_assignments} possible "
               f"(seed {self.seed}); p = (1 + #|T_b| >= |T_obs|)/(1 + P)")
        lines = [
            f"Randomization inference for the sharp null of no effect: assignment re-randomised "
            f"across {self.n_clusters} {level}"
            + (f" within strata of '{self.strata}'" if self.strata else "") + f"; {how}.",
            "Two-sided p-value (Fisher 1935; Imbens & Rubin 2015, ch. 5; Young 2019, QJE).",
        ]
        if not math.isnan(self.conf_low):
            lines.append(f"{100 * (1 - self.alpha):g}% interval inverts constant-effect sharp nulls "
                         "(y - tau*D held fixed across assignments; Imbens & Rubin 2015, section 5.7).")
        return lines

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(to_plain({
            "alpha": self.alpha, "exact": self.exact, "n_assignments": self.n_assignments,
            "design": self.design, "strata": self.strata, "seed": self.seed,
            "permutation_quantiles": distribution_quantiles(self.permutation_stats),
        }))
        return out

    def plot(self, ax=None):
        """Histogram of the permutation distribution with the observed statistic marked."""
        kind = "all enumerated" if self.exact else "randomly re-randomised"
        return resampling_histogram(
            self.permutation_stats, self.estimate, ax=ax, max_bins=50, color="#b7c9a8", mirror=True,
            observed_label=f"observed = {self.estimate:.4g}",
            xlabel=f"{self.term} under re-randomised assignment", ylabel="assignments",
            title=f"Randomization inference: p = {self.p_value:.4f}",
            alt_text=(f"Histogram of {self.permutation_stats.size} {kind} values of {self.term} under the "
                      f"sharp null; the observed value {self.estimate:.4g} is marked with a red line and its "
                      f"mirror image with a dashed line; two-sided p-value {self.p_value:.4f}."))


# --------------------------------------------------------------------------- front door
def _check_columns(frame: pd.DataFrame, names: dict[str, str | None]) -> None:
    """InputError unless ``frame`` is a pandas frame whose named columns exist, are complete and (outcome, treatment) numeric.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    names : dict
        Role (``"y"``, ``"unit"``, ``"time"``, ``"cluster"``, ``"strata"``, ``"treatment"``) -> column
        or None.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"frame: expected a pandas DataFrame, got {type(frame).__name__}")
    for role, column in names.items():
        if column is not None and column not in frame.columns:
            raise InputError(f"{role}: column '{column}' is not in the frame")
    for role in ("y", "unit", "time", "cluster", "strata", "treatment"):
        column = names.get(role)
        if column is None:
            continue
        missing = frame[column].isna().to_numpy()
        if missing.any():
            raise InputError(f"{column}: {int(missing.sum())} missing value(s) (first at row "
                             f"{int(np.flatnonzero(missing)[0])}); randomization inference needs complete data")
    for role in ("y", "treatment"):
        column = names.get(role)
        if column is not None and not pd.api.types.is_numeric_dtype(frame[column]):
            raise InputError(f"{column}: must be numeric for randomization inference")


def _evaluate(estimator: Callable[[pd.DataFrame], float], data: pd.DataFrame, what: str) -> float:
    """The user's estimator on ``data`` as a finite float.

    Parameters
    ----------
    estimator : callable
        Maps a frame to the test statistic.
    data : pandas.DataFrame
        The (re-assigned) data.
    what : str
        Which data, for messages (``"assignment 3"``).

    Returns
    -------
    float

    Raises
    ------
    EstimationError
        The estimator returns something that is not a finite number.
    """
    value = estimator(data)
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise EstimationError(f"estimator: returned {type(value).__name__} on {what}; it must return a float") from exc
    if not math.isfinite(value):
        raise EstimationError(f"estimator: returned a non-finite value on {what}")
    return value


def randomization_inference(
    frame: pd.DataFrame,
    *,
    y: str,
    unit: str,
    time: str,
    treated_cluster_col: str,
    cluster: str,
    estimator: Callable[[pd.DataFrame], float],
    n_permutations: int = 999,
    seed: int | None = None,
    design: Design = "cluster",
    strata: str | None = None,
    exact: bool | Literal["auto"] = "auto",
    treatment: str | None = None,
    ci: bool = False,
    alpha: float = 0.05,
    term: str = "estimate",
) -> RandomizationResult:
    """Randomization (permutation) test of the sharp null for a cluster-randomised DiD.

    Fisher's exact test (Imbens & Rubin 2015, ch. 5) with the cluster-level re-randomisation
    of Young (2019, QJE 134(2)): the values of ``treated_cluster_col`` (a 0/1 flag, or a
    cohort label in staggered designs) are permuted across clusters (``design="cluster"``)
    or units (``design="unit"``), within ``strata`` if given, and ``estimator(frame) -> float``
    is recomputed on each re-assigned frame. The estimator must derive everything that depends
    on assignment (e.g. ``post x treated``) from ``treated_cluster_col``.

    ``exact="auto"`` enumerates every distinct assignment when their number is at most
    ``n_permutations`` (exact p-value); otherwise ``n_permutations`` random permutations are
    drawn from ``impactkit.seeds.rng(seed, "randomization-inference")``.

    ``ci=True`` needs ``treatment``, the realised 0/1 (or dose) treatment of each row, and an
    estimator linear in ``y`` (checked numerically): the interval collects the constant
    effects ``tau`` whose sharp null ``y(0) = y - tau * treatment`` is not rejected at ``alpha``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long panel.
    y, unit, time : str
        Outcome, unit and period columns.
    treated_cluster_col : str
        Assignment column permuted across clusters or units.
    cluster : str
        Cluster column.
    estimator : callable
        ``estimator(frame) -> float`` recomputed on every re-assignment.
    n_permutations : int, default 999
        Random re-assignments (or the cap for full enumeration).
    seed : int, optional
        Seed of :func:`impactkit.seeds.rng`.
    design : {"cluster", "unit"}, default "cluster"
        Level of re-assignment.
    strata : str, optional
        Permute within strata.
    exact : bool or "auto", default "auto"
        Enumerate every assignment when feasible.
    treatment : str, optional
        Realised treatment (needed for ``ci``).
    ci : bool, default False
        Invert the test for a confidence interval of a constant effect.
    alpha : float, default 0.05
        Level of the interval.
    term : str, default "estimate"
        Label of the estimate.

    Returns
    -------
    RandomizationResult
        Observed estimate, permutation p-value and, with ``ci``, the interval.
    """
    if design not in ("cluster", "unit"):
        raise InputError(f"design={design!r}: must be 'cluster' or 'unit'")
    _check_columns(frame, {"y": y, "unit": unit, "time": time, "treated_cluster_col": treated_cluster_col,
                           "cluster": cluster, "strata": strata, "treatment": treatment})
    if not callable(estimator):
        raise InputError("estimator: must be a callable taking the frame and returning a float")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise InputError(f"n_permutations={n_permutations!r}: must be a positive integer")
    if n_permutations > MAX_PERMUTATIONS:
        raise InputError(f"n_permutations={n_permutations:,}: at most {MAX_PERMUTATIONS:,} permutations "
                         "(impactkit.limits, docs/limits.md)")
    if exact not in ("auto", True, False):
        raise InputError(f"exact={exact!r}: must be 'auto', True or False")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha={alpha!r}: must lie strictly between 0 and 1")
    if ci and treatment is None:
        raise InputError("treatment: ci=True needs the column of realised treatment (D) to shift y by tau*D")
    if len(frame) == 0:
        raise InputError("frame: no rows")

    frame = frame.reset_index(drop=True)
    level = cluster if design == "cluster" else unit
    levels = assignment_levels(frame, level, treated_cluster_col, strata)
    arrangements, n_assignments, use_exact = assignments_to_test(levels, n_permutations, seed, exact,
                                                                 assignment=treated_cluster_col, level=level,
                                                                 strata=strata)

    observed = _evaluate(estimator, frame, "the observed assignment")
    permuted = np.array([
        _evaluate(estimator, reassigned_frame(frame, levels, treated_cluster_col, arr), f"assignment {b}")
        for b, arr in enumerate(arrangements)])
    p_value = permutation_p_value(observed, permuted, use_exact)

    conf_low = conf_high = math.nan
    if ci:
        conf_low, conf_high = _constant_effect_interval(
            frame, levels, treated_cluster_col, y, treatment, estimator, arrangements, observed,
            permuted, use_exact, alpha)

    return RandomizationResult(
        term=term, estimate=observed, p_value=p_value, conf_low=float(conf_low), conf_high=float(conf_high),
        alpha=float(alpha), n_permutations=int(arrangements.shape[0]), n_assignments=int(n_assignments),
        exact=bool(use_exact), n_clusters=levels.n_levels, n_obs=len(frame), design=design,
        strata=strata, seed=None if seed is None else int(seed), permutation_stats=permuted,
    )


def _constant_effect_interval(frame: pd.DataFrame, levels: AssignmentLevels, assignment: str, y: str,
                              treatment: str, estimator: Callable[[pd.DataFrame], float],
                              arrangements: np.ndarray, observed: float, permuted: np.ndarray,
                              exact: bool, alpha: float) -> tuple[float, float]:
    """Invert ``H0(tau): y(0) = y - tau D`` (Imbens & Rubin 2015, section 5.7).

    For an estimator linear in ``y``, ``T(tau, a) = T(0, a) - tau E(a)`` where ``E(a)`` is the
    estimator applied to ``D`` as the outcome under assignment ``a``; linearity is verified on
    the observed and the first five assignments at one value of ``tau``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    levels : AssignmentLevels
        The levels and their observed labels.
    assignment : str
        The assignment column.
    y : str
        The outcome column.
    treatment : str
        The 0/1 treatment column ``D`` the constant effect multiplies.
    estimator : callable
        Maps a frame to the test statistic (must be linear in ``y``).
    arrangements : numpy.ndarray
        The assignments of ``permuted``, one row each.
    observed : float
        The statistic under the observed assignment.
    permuted : numpy.ndarray
        The statistic under each assignment.
    exact : bool
        True when ``arrangements`` enumerates every assignment.
    alpha : float
        1 - confidence level.

    Returns
    -------
    tuple of float
        Lower and upper end of the interval.

    Raises
    ------
    EstimationError
        The estimator is not linear in the outcome, or is 0 on the treatment column.
    """
    d = frame[treatment].to_numpy(dtype=np.float64)
    obs_slope = _evaluate(estimator, frame.assign(**{y: d}), "the treatment column as outcome")
    slopes = np.array([
        _evaluate(estimator, reassigned_frame(frame, levels, assignment, arr, y, d), f"assignment {b} (D as outcome)")
        for b, arr in enumerate(arrangements)])
    if obs_slope == 0.0:
        raise EstimationError(f"{treatment}: the estimator applied to the treatment column is 0; "
                              "constant-effect nulls cannot be inverted")
    point = observed / obs_slope
    spread = float(np.std(permuted - point * slopes)) or abs(point) or 1.0
    tau_check = point + spread
    y_check = frame[y].to_numpy(dtype=np.float64) - tau_check * d
    checks = [(frame.assign(**{y: y_check}), observed - tau_check * obs_slope)]
    for b in range(min(_LINEARITY_CHECKS, arrangements.shape[0])):
        checks.append((reassigned_frame(frame, levels, assignment, arrangements[b], y, y_check),
                       permuted[b] - tau_check * slopes[b]))
    for data, predicted in checks:
        actual = _evaluate(estimator, data, "a shifted outcome")
        if abs(actual - predicted) > _LINEARITY_RTOL * (1.0 + abs(actual) + abs(predicted)):
            raise EstimationError("estimator: not linear in the outcome; the constant-effect RI "
                                  "interval (ci=True) needs a linear estimator such as DiD or TWFE")

    def p_at(tau: float) -> float:
        return permutation_p_value(observed - tau * obs_slope, permuted - tau * slopes, exact)

    return invert_p_value(p_at, point, spread, alpha)
