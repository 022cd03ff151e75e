"""One family of outcomes as per-cluster sums: the moments-level path of the corrections.

When treatment is assigned by cluster, every regression the multiple-testing corrections run
(the full sample, each cluster-bootstrap draw, each re-randomization of the clusters' treatment)
is a weighted sum over clusters of a few per-cluster matrices (:func:`cluster_sums`), so the
estimates and CR1 standard errors (Cameron & Miller 2015, *J. Human Resources* 50(2)) follow
from those sums alone (:func:`moments_treat_t`). :class:`FamilyMoments` holds them; the pandas
engine builds it from the rows (:func:`impactkit.checks.family.family_moments`), the Dask engine
from per-partition sums (:mod:`impactkit.distributed.multiple`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from impactkit.errors import EstimationError


class Sample(Protocol):
    """What :func:`moments_treat_t` reads of a family: rows, regressors and clusters."""

    @property
    def n(self) -> int: ...

    @property
    def k(self) -> int: ...

    @property
    def n_clusters(self) -> int: ...


def check_fit(outcomes: list[str], treat: str, cluster: str | None, *, full_rank: bool, constant: np.ndarray,
              n_clusters: int) -> None:
    """The family's estimability checks, shared by the row-level and per-cluster-sums paths.

    Parameters
    ----------
    outcomes : list of str
        The family.
    treat, cluster : str
        Treatment and cluster columns (for the messages).
    full_rank : bool
        Treatment, controls and constant are linearly independent.
    constant : numpy.ndarray
        (M,) whether each outcome is constant in the sample.
    n_clusters : int
        Clusters in the sample.

    Raises
    ------
    EstimationError
        Collinear treatment and controls, a constant outcome, fewer than two clusters.
    """
    if not full_rank:
        raise EstimationError(f"{treat!r} and the controls are collinear")
    for name, flat in zip(outcomes, constant):
        if flat:
            raise EstimationError(f"outcome {name!r} is constant")
    if cluster is not None and n_clusters < 2:
        raise EstimationError(f"cluster column {cluster!r} has fewer than two clusters")


@dataclass
class FamilyMoments:
    """One family as per-cluster sums, treatment assigned by cluster (clusters in sorted label order).

    Splitting ``x_i = (t_i, r_i)`` (treatment; controls and constant): ``A`` (G, k, k) holds the
    parts of ``sum_{i in g} x x'`` multiplied by the cluster's treatment, ``R`` the others, and
    ``Ay`` / ``Ry`` (G, k, M) likewise for ``sum x y'``, so ``sum_{i in g} x x' = t_g A_g + R_g``
    (:func:`cluster_sums`). ``t_cluster`` (G,) is the 0/1 treatment of each cluster; ``n`` the
    rows, ``dropped`` the incomplete rows left out.
    """

    outcomes: list[str]
    A: np.ndarray
    R: np.ndarray
    Ay: np.ndarray
    Ry: np.ndarray
    t_cluster: np.ndarray
    n: int
    dropped: int = 0

    @property
    def n_clusters(self) -> int:
        return int(self.A.shape[0])

    @property
    def k(self) -> int:
        return int(self.A.shape[1])

    @property
    def moments(self) -> dict[str, np.ndarray]:
        return {"A": self.A, "R": self.R, "Ay": self.Ay, "Ry": self.Ry}


def cluster_sums(rest: np.ndarray, Y: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-cluster sums ``A``, ``R``, ``Ay``, ``Ry`` of rows sorted by cluster (see :class:`FamilyMoments`).

    They add over any split of a cluster's rows, so partial sums of one cluster from several
    partitions add up to the cluster's.

    Parameters
    ----------
    rest : numpy.ndarray
        (n, k-1) controls and constant, rows sorted by cluster.
    Y : numpy.ndarray
        (n, M) outcomes.
    starts : numpy.ndarray
        First row of each cluster.

    Returns
    -------
    dict of numpy.ndarray
        ``A``, ``R`` (G, k, k) and ``Ay``, ``Ry`` (G, k, M).
    """
    n, G, k, m = rest.shape[0], starts.size, rest.shape[1] + 1, Y.shape[1]
    sizes = np.diff(np.r_[starts, n])
    r_sum = np.add.reduceat(rest, starts, axis=0)                                  # (G, k-1)
    rr = np.add.reduceat((rest[:, :, None] * rest[:, None, :]).reshape(n, -1), starts, axis=0)
    ry = np.add.reduceat((rest[:, :, None] * Y[:, None, :]).reshape(n, -1), starts, axis=0)
    A = np.zeros((G, k, k))
    A[:, 0, 0] = sizes
    A[:, 0, 1:] = r_sum
    A[:, 1:, 0] = r_sum
    R = np.zeros((G, k, k))
    R[:, 1:, 1:] = rr.reshape(G, k - 1, k - 1)
    Ay = np.zeros((G, k, m))
    Ay[:, 0, :] = np.add.reduceat(Y, starts, axis=0)
    Ry = np.zeros((G, k, m))
    Ry[:, 1:, :] = ry.reshape(G, k - 1, m)
    return {"A": A, "R": R, "Ay": Ay, "Ry": Ry}


def moments_treat_t(family: Sample, moments: dict[str, np.ndarray], t_cluster: np.ndarray,
                    counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same numbers as :func:`impactkit.checks.family.batched_treat_t` from per-cluster sums, in O(B G k (k + M)).

    Valid when treatment is constant within cluster: ``t_cluster`` is (G,) or (B, G).
    The CR1 score of cluster g is ``a' (sum x y') - a' (sum x x') beta`` with ``a`` row 0
    of ``(X'WX)^{-1}``, so no row-level residual is ever formed.

    Parameters
    ----------
    family : Family or FamilyMoments
        The family (its sample size, clusters and number of regressors), with clusters.
    moments : dict of numpy.ndarray
        :func:`cluster_sums` of the family (``FamilyMoments.moments``).
    t_cluster : numpy.ndarray
        Treatment per cluster, (G,) or (B, G).
    counts : numpy.ndarray
        (B, G) times each cluster is drawn.

    Returns
    -------
    estimates, std_errors : numpy.ndarray
        Each (B, M).
    """
    n_draws = counts.shape[0]
    t = np.broadcast_to(t_cluster, (n_draws, family.n_clusters))
    A, R, Ay, Ry = moments["A"], moments["R"], moments["Ay"], moments["Ry"]
    ct = counts * t
    k, m = family.k, Ay.shape[2]
    xtx = (ct @ A.reshape(A.shape[0], -1) + counts @ R.reshape(R.shape[0], -1)).reshape(n_draws, k, k)
    xty = (ct @ Ay.reshape(Ay.shape[0], -1) + counts @ Ry.reshape(Ry.shape[0], -1)).reshape(n_draws, k, m)
    try:
        inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(xtx)
    beta = inv @ xty                                                               # (B, k, M)
    a = inv[:, 0, :]                                                               # (B, k)
    a_xy = t[:, :, None] * np.einsum("bk,gkm->bgm", a, Ay) + np.einsum("bk,gkm->bgm", a, Ry)
    a_xx = t[:, :, None] * np.einsum("bk,gkl->bgl", a, A) + np.einsum("bk,gkl->bgl", a, R)
    score = a_xy - a_xx @ beta                                                     # (B, G, M)
    meat = np.einsum("bg,bgm->bm", counts, score**2)
    G, n = family.n_clusters, family.n
    factor = G / (G - 1) * (n - 1) / (n - k)
    return beta[:, 0, :], np.sqrt(factor * meat)
