"""Restrictions on the differential trend ``delta`` for :mod:`impactkit.did.honest`.

The event study inputs (:class:`EventStudy`), the target ``theta = l' tau_post``, and the
matrices that write each restriction as polyhedra ``{delta : A delta <= d}`` (Rambachan &
Roth 2023, *Rev. Econ. Stud.* 90(5), Sec. 2 and Appendix B). The reference period ``-1`` is
normalised to ``delta = 0`` and its column is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from impactkit.errors import InputError

Polyhedron = tuple[np.ndarray, np.ndarray]   # (A, d): {delta : A delta <= d}

@dataclass(frozen=True)
class EventStudy:
    """Plain inputs: ``beta`` (pre then post, reference period excluded) and ``sigma``."""

    beta: np.ndarray
    sigma: np.ndarray
    num_pre: int
    num_post: int

    @property
    def post(self) -> slice:
        return slice(self.num_pre, self.num_pre + self.num_post)


def check_event_study(beta, sigma, num_pre: int, num_post: int) -> EventStudy:
    """Validate and normalise the event study (one-line :class:`InputError` otherwise)."""
    beta = np.asarray(beta, dtype=float).ravel()
    sigma = np.asarray(sigma, dtype=float)
    if num_pre < 1 or num_post < 1:
        raise InputError(f"honest_did: need at least one pre and one post period, got {num_pre} and {num_post}")
    if beta.size != num_pre + num_post:
        raise InputError(f"honest_did: {beta.size} estimates but num_pre + num_post = {num_pre + num_post}")
    if sigma.shape != (beta.size, beta.size):
        raise InputError(f"honest_did: covariance has shape {sigma.shape}, expected {(beta.size, beta.size)}")
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(sigma))):
        raise InputError("honest_did: estimates and covariance must be finite")
    if not np.allclose(sigma, sigma.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(sigma).max())):
        raise InputError("honest_did: covariance matrix is not symmetric")
    if np.linalg.eigvalsh(sigma).min() < -1e-10 * max(1.0, np.abs(sigma).max()):
        raise InputError("honest_did: covariance matrix is not positive semi-definite")
    return EventStudy(beta, (sigma + sigma.T) / 2.0, int(num_pre), int(num_post))


def target_vector(num_post: int, l_vec=None, event_time: int | None = None) -> np.ndarray:
    """``l`` of ``theta = l' tau_post``: a given vector, one event time (0 = on impact), or
    the first post period by default."""
    if l_vec is not None and event_time is not None:
        raise InputError("honest_did: give l_vec or event_time, not both")
    if l_vec is not None:
        l_vec = np.asarray(l_vec, dtype=float).ravel()
        if l_vec.size != num_post or not np.any(l_vec != 0):
            raise InputError(f"honest_did: l_vec must have {num_post} entries, not all zero")
        return l_vec
    e = 0 if event_time is None else int(event_time)
    if not 0 <= e < num_post:
        raise InputError(f"honest_did: event_time must be in 0..{num_post - 1}, got {event_time}")
    out = np.zeros(num_post)
    out[e] = 1.0
    return out


def second_difference_matrix(num_pre: int, num_post: int) -> np.ndarray:
    """Second differences of ``(delta_pre, 0, delta_post)`` as a ``(T-1) x T`` matrix in ``delta``
    (the reference period's zero column dropped); ``T = num_pre + num_post``."""
    total = num_pre + num_post + 1
    full = np.zeros((total - 2, total))
    for r in range(total - 2):
        full[r, r:r + 3] = (1.0, -2.0, 1.0)
    return np.delete(full, num_pre, axis=1)


def first_difference_matrix(num_pre: int, num_post: int) -> np.ndarray:
    """First differences of ``(delta_pre, 0, delta_post)``; rows ``T_pre`` pre then ``T_post``
    post changes, columns over ``T + 1`` periods (reference included)."""
    total = num_pre + num_post + 1
    out = np.zeros((total - 1, total))
    for r in range(total - 1):
        out[r, r:r + 2] = (-1.0, 1.0)
    return out


def relative_magnitude_polyhedron(num_pre: int, num_post: int, mbar: float, s: int,
                                  positive: bool) -> np.ndarray:
    """``A`` with ``Delta^RM_{s,sign}(Mbar) = {delta : A delta <= 0}``: the pre change number ``s``
    (0-based) is the largest in absolute value, with the given sign, and every post change is at
    most ``Mbar`` times it (Rambachan & Roth 2023, Sec. 2.4.1 and Appendix)."""
    diffs = first_difference_matrix(num_pre, num_post)
    lead = diffs[s] if positive else -diffs[s]
    bound = np.vstack([np.tile(lead, (num_pre, 1)), np.tile(mbar * lead, (num_post, 1))])
    a = np.vstack([diffs - bound, -diffs - bound])
    a = a[~np.all(np.abs(a) <= 1e-10, axis=1)]
    return np.delete(a, num_pre, axis=1)



def smoothness_polyhedra(num_pre: int, num_post: int, m: float) -> list[Polyhedron]:
    """``Delta^SD(M)``: ``|second difference| <= M`` (Rambachan & Roth 2023, eq. 2.6), one polyhedron."""
    dmat = second_difference_matrix(num_pre, num_post)
    a = np.vstack([dmat, -dmat])
    return [(a, np.full(a.shape[0], float(m)))]


def relative_magnitude_polyhedra(num_pre: int, num_post: int, mbar: float) -> list[Polyhedron]:
    """``Delta^RM(Mbar)`` as the union of ``2 T_pre`` polyhedra (Rambachan & Roth 2023, eq. 2.5 and
    Appendix B): every pre change may be the largest, with either sign (as R HonestDiD)."""
    out = []
    for s in range(num_pre):
        for positive in (True, False):
            a = relative_magnitude_polyhedron(num_pre, num_post, mbar, s, positive)
            out.append((a, np.zeros(a.shape[0])))
    return out


def sign_matrix(num_pre: int, num_post: int, direction: str) -> np.ndarray:
    """Rows of ``A delta <= 0`` for a sign restriction on the post-period bias: ``delta_post >= 0``
    (``"positive"``, ``Delta^PB``) or ``<= 0`` (``"negative"``, ``Delta^NB``); Rambachan & Roth 2023,
    Sec. 2.4.3."""
    rows = -np.eye(num_pre + num_post)[num_pre:]
    return rows if direction == "positive" else -rows


def monotonicity_matrix(num_pre: int, num_post: int, direction: str) -> np.ndarray:
    """Rows of ``A delta <= 0`` for a monotone trend: ``delta`` (with ``delta_{-1} = 0``) weakly
    increasing or decreasing in event time over every period (``Delta^I`` / ``Delta^D``, Rambachan &
    Roth 2023, Sec. 2.4.3)."""
    rows = -np.delete(first_difference_matrix(num_pre, num_post), num_pre, axis=1)
    return rows if direction == "increasing" else -rows


#: the base restrictions, each ``(num_pre, num_post, value) -> list of polyhedra``
BASES: dict[str, Callable[[int, int, float], list[Polyhedron]]] = {
    "smoothness": smoothness_polyhedra,
    "relative_magnitude": relative_magnitude_polyhedra,
}
#: restrictions intersected with a base one: the direction -> ``(num_pre, num_post) -> rows``
SHAPES: dict[str, Callable[[int, int], np.ndarray]] = {
    "positive": lambda npre, npost: sign_matrix(npre, npost, "positive"),
    "negative": lambda npre, npost: sign_matrix(npre, npost, "negative"),
    "increasing": lambda npre, npost: monotonicity_matrix(npre, npost, "increasing"),
    "decreasing": lambda npre, npost: monotonicity_matrix(npre, npost, "decreasing"),
}
#: with one post period, keep only the rows involving it (HonestDiD does for ``Delta^RM`` and its
#: intersections, not for ``Delta^SD`` and its intersections)
POST_ROWS_WITH_ONE_POST = {"smoothness": False, "relative_magnitude": True}
#: HonestDiD's names of the sets: ``(base, kind of shape) -> name``
DELTA_NAMES = {("smoothness", None): "DeltaSD", ("smoothness", "bias"): "DeltaSDB",
               ("smoothness", "monotonicity"): "DeltaSDM", ("relative_magnitude", None): "DeltaRM",
               ("relative_magnitude", "bias"): "DeltaRMB", ("relative_magnitude", "monotonicity"): "DeltaRMM"}


def restriction_polyhedra(base: str, shape: str | None, num_pre: int, num_post: int,
                          value: float) -> list[Polyhedron]:
    """The polyhedra whose union is ``Delta`` = the base set (``M`` or ``Mbar`` = ``value``),
    intersected with the sign or monotonicity restriction ``shape`` when given
    (``Delta^SDB``, ``Delta^SDM``, ``Delta^RMB``, ``Delta^RMM`` of Rambachan & Roth 2023, Sec. 2.4.3)."""
    polys = BASES[base](num_pre, num_post, value)
    if shape is None:
        return polys
    extra = SHAPES[shape](num_pre, num_post)
    return [(np.vstack([a, extra]), np.concatenate([d, np.zeros(extra.shape[0])])) for a, d in polys]


def identified_set(study: EventStudy, l_vec: np.ndarray, polys: list[Polyhedron]) -> tuple[float, float] | None:
    """Identified set of ``theta = l' tau_post`` at ``beta = study.beta`` (Rambachan & Roth 2023,
    Lemma 2.1): ``l'beta_post - max/min {l'delta_post : delta in Delta, delta_pre = beta_pre}``, the
    union over the polyhedra; ``None`` when every polyhedron is infeasible."""
    npre, npost = study.num_pre, study.num_post
    cost = np.concatenate([np.zeros(npre), l_vec])
    a_eq = np.hstack([np.eye(npre), np.zeros((npre, npost))])
    observed = float(l_vec @ study.beta[study.post])
    lows, highs = [], []
    for a, d in polys:
        bounds = [(None, None)] * (npre + npost)
        top = linprog(-cost, A_ub=a, b_ub=d, A_eq=a_eq, b_eq=study.beta[:npre], bounds=bounds, method="highs")
        bottom = linprog(cost, A_ub=a, b_ub=d, A_eq=a_eq, b_eq=study.beta[:npre], bounds=bounds, method="highs")
        if top.status == 0 and bottom.status == 0:
            lows.append(observed + top.fun)
            highs.append(observed - bottom.fun)
    if not lows:
        return None
    return min(lows), max(highs)
