"""Embarrassingly parallel work on ``dask.distributed`` futures, independent of the worker count.

Randomness is tied to tasks, never to workers: a task's draws come from
``impactkit.seeds.rng(seed, purpose, "task-<k>")`` (or, for a replication of a Monte Carlo
study, ``"rep-<r>"``), tasks are fixed by the work (their number and size do not depend on
the cluster) and results are gathered in task order. The same seed therefore gives the same
numbers on one worker, on two, or on a hundred.

- :func:`monte_carlo`: a Monte Carlo study, one seeded generator per replication;
- :func:`randomization_inference`: Fisher / Young randomization inference whose re-assignments
  are drawn on the client exactly as :func:`impactkit.did.ri.randomization_inference` draws them
  (same stream, same p-value as the pandas engine); the re-estimations run as futures;
- :func:`portfolio_monte_carlo`: the scale-readiness Monte Carlo
  (:func:`impactkit.scale.uncertainty.simulate`) in fixed blocks of draws, one stream per block
  (so its draws differ from the single-stream pandas run, but not between clusters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from impactkit.seeds import rng

DEFAULT_CHUNK = 64


def _client(client=None):
    if client is not None:
        return client
    from distributed import default_client

    return default_client()


def task_seed(seed: int | None, purpose: str, task: int) -> int:
    """A non-negative integer seed for task ``task`` of ``purpose`` (from its own stream)."""
    return int(rng(seed, purpose, f"task-{task}").integers(0, 2**62))


def _run_reps(study: Callable[[np.random.Generator], Any], reps: Sequence[int], seed: int | None,
              purpose: str) -> list:
    return [study(rng(seed, purpose, f"rep-{r}")) for r in reps]


def monte_carlo(study: Callable[[np.random.Generator], Any], n_reps: int, *, seed: int | None,
                purpose: str = "monte-carlo", chunk: int = DEFAULT_CHUNK, client=None) -> list:
    """``[study(rng(seed, purpose, "rep-<r>")) for r in range(n_reps)]`` computed on the cluster.

    ``study`` must be a picklable function of a numpy Generator (simulate, estimate, return a
    small result); replications are grouped in tasks of ``chunk``.
    """
    client = _client(client)
    blocks = [list(range(start, min(start + chunk, n_reps))) for start in range(0, n_reps, chunk)]
    futures = [client.submit(_run_reps, study, block, seed, purpose, pure=False) for block in blocks]
    return [item for block in client.gather(futures) for item in block]


def on_futures(func: Callable, shared: Any, args: tuple, items: np.ndarray, block: int,
               client=None) -> np.ndarray:
    """``func(shared, *args, items[k:k + block])`` for fixed blocks of ``items`` on futures,
    ``shared`` scattered once; the blocks' results concatenated in block order (so the result does
    not depend on the worker count)."""
    client = _client(client)
    scattered = client.scatter(shared, broadcast=True)
    futures = [client.submit(func, scattered, *args, items[start:start + block], pure=False)
               for start in range(0, items.shape[0], block)]
    return np.concatenate(client.gather(futures)) if futures else np.empty(0)


def _permuted(frame, estimator, levels, assignment: str, arrangements: np.ndarray) -> np.ndarray:
    from impactkit.did.ri import _evaluate, reassigned_frame

    return np.array([_evaluate(estimator, reassigned_frame(frame, levels, assignment, arr), "a re-assignment")
                     for arr in arrangements])


def randomization_inference(frame, *, y: str, unit: str, time: str, treated_cluster_col: str, cluster: str,
                            estimator: Callable, n_permutations: int = 999, seed: int | None = None,
                            design: str = "cluster", strata: str | None = None, exact: bool | str = "auto",
                            chunk: int = DEFAULT_CHUNK, client=None, term: str = "estimate"):
    """:func:`impactkit.did.ri.randomization_inference` (Fisher 1935; Young 2019, *QJE* 134(2)) with
    the re-estimations on the cluster: the frame is scattered once, each task re-estimates a
    fixed block of the client-drawn assignments (:func:`impactkit.did.ri.assignments_to_test`).
    Same result as the pandas engine."""
    import math

    from impactkit.did import ri
    from impactkit.errors import InputError

    if design not in ("cluster", "unit"):
        raise InputError(f"design={design!r}: must be 'cluster' or 'unit'")
    frame = frame.reset_index(drop=True)
    level = cluster if design == "cluster" else unit
    levels = ri.assignment_levels(frame, level, treated_cluster_col, strata)
    arrangements, n_assignments, use_exact = ri.assignments_to_test(
        levels, n_permutations, seed, exact, assignment=treated_cluster_col, level=level, strata=strata)
    observed = ri._evaluate(estimator, frame, "the observed assignment")
    permuted = on_futures(_permuted, frame, (estimator, levels, treated_cluster_col), arrangements, chunk, client)
    p_value = ri.permutation_p_value(observed, permuted, use_exact)
    return ri.RandomizationResult(
        term=term, estimate=observed, p_value=p_value, conf_low=math.nan, conf_high=math.nan, alpha=0.05,
        n_permutations=int(arrangements.shape[0]), n_assignments=int(n_assignments), exact=bool(use_exact),
        n_clusters=levels.n_levels, n_obs=len(frame), design=design, strata=strata,
        seed=None if seed is None else int(seed), permutation_stats=permuted)


def portfolio_monte_carlo(inputs, weights, gates, options, draws: int, *, seed: int | None,
                          block: int = 1000, client=None) -> tuple[np.ndarray, np.ndarray]:
    """Rank probabilities (I x I) and score draws (D x I) of the scale-readiness Monte Carlo of
    :func:`portfolio_simulator` (blocks of ``block`` draws, block ``k`` seeded by :func:`task_seed`
    ``(seed, "scale-mc-block", k)``)."""
    from impactkit.scale.uncertainty import rank_probabilities

    mc = portfolio_simulator(block=block, client=client)(inputs, weights, gates, options, draws, seed)
    return rank_probabilities(mc.ranks), mc.scores


def _monte_carlo_block(inputs, weights, gates, options, draws: int, seed: int):
    from impactkit.scale.uncertainty import simulate

    return simulate(inputs, weights, gates, options, draws, seed)


def portfolio_simulator(*, block: int = 1000, client=None) -> Callable:
    """A ``simulator`` for :func:`impactkit.scale.score`: the scale-readiness Monte Carlo in blocks of
    ``block`` draws on futures, block ``k`` seeded by :func:`task_seed` ``(seed, "scale-mc-block", k)``,
    the blocks' draws concatenated in block order (one :class:`~impactkit.scale.uncertainty.MonteCarlo`).
    The draws differ from the one-stream pandas run (a Monte Carlo tolerance apart), never between
    clusters of different sizes."""
    def simulate_blocks(inputs, weights, gates, options, draws: int, seed: int | None):
        from impactkit.scale.uncertainty import MonteCarlo

        c = _client(client)
        sizes = [min(block, draws - start) for start in range(0, draws, block)]
        futures = [c.submit(_monte_carlo_block, inputs, weights, gates, options, size,
                            task_seed(seed, "scale-mc-block", k), pure=False) for k, size in enumerate(sizes)]
        parts = c.gather(futures)
        return MonteCarlo(**{name: np.concatenate([getattr(p, name) for p in parts])
                             for name in ("scores", "passes", "ranks", "bottleneck", "criteria")})
    return simulate_blocks
