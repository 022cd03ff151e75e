"""Restrictions on the differential trend ``delta`` for :mod:`impactkit.did.honest`.

The event study inputs (:class:`EventStudy`), the target ``theta = l' tau_post``, and the
matrices that write each restriction as polyhedra ``{delta : A delta <= d}`` (Rambachan &
Roth 2023, *Rev. Econ. Stud.* 90(5), Sec. 2 and Appendix B). The reference period ``-1`` is
normalised to ``delta = 0`` and its column is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impactkit.errors import InputError

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

