"""Influence-function inference: analytic (clustered) standard errors and the multiplier bootstrap.

An asymptotically linear estimator ``theta_hat`` of ``K`` parameters satisfies
``theta_hat - theta = (1/n) sum_i psi_i + o_p(n^-1/2)`` with ``psi_i`` the unit's influence
function (a row of the ``n x K`` matrix ``inf``). Then

- analytic variance: ``V = (1/n^2) sum_c S_c S_c'`` with ``S_c = sum_{i in c} psi_i`` the
  cluster sums (each unit its own cluster when no clustering is asked; Liang & Zeger 1986).
  Without clustering this equals R ``did``'s ``crossprod(inffunc)/n / n``.
- multiplier bootstrap (Callaway & Sant'Anna 2021, *J. Econometrics* 225(2), Sec. 4, Alg. 1):
  draws ``theta*_b - theta_hat = (1/n) sum_c V_bc S_c`` with i.i.d. multipliers ``V_bc`` of
  mean 0 and variance 1 (Mammen 1993 two-point weights, or Rademacher). The uniform
  (sup-t) critical value is the ``1 - alpha`` quantile of ``max_k |draw_bk| / se_k``, which
  gives simultaneous bands ``theta_hat_k +/- c * se_k`` (Montiel Olea & Plagborg-Moller 2019).

Pure functions over numpy arrays; draws come only from :func:`impactkit.seeds.rng`.
"""

from __future__ import annotations

import numpy as np

from impactkit.errors import InputError
from impactkit.seeds import rng

_SQRT5 = np.sqrt(5.0)
#: Mammen (1993) two-point multiplier: values and the probability of the first value.
MAMMEN_VALUES = ((1.0 - _SQRT5) / 2.0, (1.0 + _SQRT5) / 2.0)
MAMMEN_PROB_FIRST = (_SQRT5 + 1.0) / (2.0 * _SQRT5)
#: Standard errors below this are treated as zero (degenerate columns, e.g. reference cells).
ZERO_SE = np.sqrt(np.finfo(float).eps) * 10.0


def cluster_sums(inf: np.ndarray, cluster_codes: np.ndarray | None) -> np.ndarray:
    """Sum the rows of the ``n x K`` influence matrix within clusters (``G x K``).

    ``cluster_codes`` holds integer codes ``0..G-1`` per row; ``None`` returns ``inf``.

    Parameters
    ----------
    inf : numpy.ndarray
        n x K influence functions.
    cluster_codes : numpy.ndarray or None
        Cluster code of each row.

    Returns
    -------
    numpy.ndarray
        G x K sums (``inf`` itself without clusters).
    """
    if cluster_codes is None:
        return inf
    n_clusters = int(cluster_codes.max()) + 1 if cluster_codes.size else 0
    sums = np.zeros((n_clusters, inf.shape[1]))
    np.add.at(sums, cluster_codes, inf)
    return sums


def influence_vcov(inf: np.ndarray, n: int, cluster_codes: np.ndarray | None = None) -> np.ndarray:
    """Analytic covariance ``(1/n^2) sum_c S_c S_c'`` of the estimates behind ``inf``.

    Parameters
    ----------
    inf : numpy.ndarray
        Influence functions, one row per unit and one column per estimate.
    n : int
        Number of units.
    cluster_codes : numpy.ndarray, optional
        Cluster of each unit; influence functions are summed within cluster.

    Returns
    -------
    numpy.ndarray
        Covariance matrix of the estimates.
    """
    sums = cluster_sums(np.asarray(inf, dtype=float).reshape(len(inf), -1), cluster_codes)
    return sums.T @ sums / float(n) ** 2


def influence_se(inf: np.ndarray, n: int, cluster_codes: np.ndarray | None = None) -> np.ndarray:
    """Analytic standard errors ``sqrt(sum_c S_ck^2) / n`` for each column ``k`` of ``inf``.

    Parameters
    ----------
    inf : numpy.ndarray
        Influence functions, one row per unit and one column per estimate.
    n : int
        Number of units.
    cluster_codes : numpy.ndarray, optional
        Cluster of each unit; influence functions are summed within cluster.

    Returns
    -------
    numpy.ndarray
        One standard error per column.
    """
    matrix = np.asarray(inf, dtype=float).reshape(len(inf), -1)
    sums = cluster_sums(matrix, cluster_codes)
    return np.sqrt(np.einsum("ck,ck->k", sums, sums)) / float(n)


def draw_multipliers(generator: np.random.Generator, size: tuple[int, int], kind: str) -> np.ndarray:
    """Mean-0, variance-1 multipliers: ``"mammen"`` (two-point, skewness 1) or ``"rademacher"``.

    Parameters
    ----------
    generator : numpy.random.Generator
        The draw's stream (:func:`impactkit.seeds.rng`).
    size : tuple of int
        ``(draws, clusters)``.
    kind : {"mammen", "rademacher"}
        The two-point distribution.

    Returns
    -------
    numpy.ndarray
        Multipliers of shape ``size``.

    Raises
    ------
    InputError
        Unknown ``kind``.
    """
    if kind == "mammen":
        values, prob_first = MAMMEN_VALUES, MAMMEN_PROB_FIRST
    elif kind == "rademacher":
        values, prob_first = (-1.0, 1.0), 0.5
    else:
        raise InputError(f"multiplier weights must be 'mammen' or 'rademacher', got {kind!r}")
    # 32-bit uniform integers (probability resolution 2^-32) are several times faster than doubles
    threshold = np.uint32(round(prob_first * 2.0 ** 32))
    first = generator.integers(0, 2 ** 32, size=size, dtype=np.uint32) < threshold
    return np.where(first, values[0], values[1])


def multiplier_draws(inf: np.ndarray, n: int, *, cluster_codes: np.ndarray | None = None,
                     biters: int = 999, seed: int | None = None, purpose: str = "cs-multiplier",
                     weights: str = "mammen", chunk: int = 256) -> np.ndarray:
    """Bootstrap deviations ``theta*_b - theta_hat`` (``biters x K``) by the multiplier bootstrap.

    Multipliers are drawn per cluster (per unit without clustering) from
    ``impactkit.seeds.rng(seed, purpose)`` in fixed-size chunks, so the draws depend only on
    ``seed``, ``purpose``, ``biters`` and the data.

    Parameters
    ----------
    inf : numpy.ndarray
        Influence functions (n x K).
    n : int
        Number of units.
    cluster_codes : numpy.ndarray, optional
        Cluster of each unit (multipliers drawn per cluster).
    biters : int, default 999
        Bootstrap draws.
    seed : int, optional
        Seed of :func:`impactkit.seeds.rng`.
    purpose : str, default "cs-multiplier"
        Purpose label of the random stream.
    weights : {"mammen", "rademacher"}, default "mammen"
        Multiplier distribution.
    chunk : int, default 256
        Draws per chunk (memory bound; does not change the draws).

    Returns
    -------
    numpy.ndarray
        ``biters x K`` deviations.
    """
    if biters < 1:
        raise InputError(f"biters must be a positive integer, got {biters}")
    sums = cluster_sums(np.asarray(inf, dtype=float).reshape(len(inf), -1), cluster_codes)
    generator = rng(seed, purpose)
    out = np.empty((biters, sums.shape[1]))
    for start in range(0, biters, chunk):
        stop = min(start + chunk, biters)
        multipliers = draw_multipliers(generator, (stop - start, sums.shape[0]), weights)
        out[start:stop] = multipliers @ sums / float(n)
    return out


def sup_t_critical_value(draws: np.ndarray, se: np.ndarray, alpha: float) -> float:
    """The ``1 - alpha`` quantile of ``max_k |draw_k| / se_k`` over bootstrap draws.

    Columns whose standard error is (numerically) zero are left out; with no column left
    the normal quantile is returned.

    Parameters
    ----------
    draws : numpy.ndarray
        Bootstrap deviations (``biters x K``).
    se : numpy.ndarray
        Standard errors of the K estimates.
    alpha : float
        1 - coverage of the uniform band.

    Returns
    -------
    float
        The sup-t critical value.
    """
    from scipy.stats import norm

    keep = np.asarray(se) > ZERO_SE
    if not keep.any():
        return float(norm.ppf(1.0 - alpha / 2.0))
    stats = np.max(np.abs(draws[:, keep]) / np.asarray(se)[keep], axis=1)
    return float(np.quantile(stats, 1.0 - alpha, method="inverted_cdf"))


def bootstrap_se(draws: np.ndarray) -> np.ndarray:
    """Robust bootstrap standard errors: interquartile range / (z_0.75 - z_0.25), as R ``did``.

    Parameters
    ----------
    draws : numpy.ndarray
        Bootstrap deviations (``biters x K``).

    Returns
    -------
    numpy.ndarray
        One standard error per column.
    """
    from scipy.stats import norm

    q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0, method="inverted_cdf")
    return (q75 - q25) / (norm.ppf(0.75) - norm.ppf(0.25))
