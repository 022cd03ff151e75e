"""Aggregation: non-compensatory gates first, then a weighted geometric mean for ranking.

Gates (conjunctive screening, Keeney & Raiffa 1976 ch. 3; the "minimum standards then rank"
rule of multi-criteria decision analysis, Dodgson et al. 2009 *Multi-criteria analysis: a
manual*, UK DCLG, sec. 5.5): an intervention passes a gate if its measure reaches the declared
floor. A gate is *passed* when it holds over the whole input interval, *failed* when it fails
over the whole interval, and *uncertain* otherwise (the Monte Carlo gives its probability).

Ranking: by the number of gates passed first (all passed above one failed above two failed ...,
the lexicographic "minimum standards first" rule applied to every level, so that the bottom of
the table is not decided by the criterion floor), then by the weighted geometric mean
G = exp(sum_k w_k log x_k) of criteria x_k on [floor, 1] (weights sum to 1; floor 0.01 by
default, ``options.score_floor``). The geometric mean is only partly compensatory: a weak criterion cannot be bought
back in full by a strong one (Tofallis 2014, *J. Oper. Res. Soc.* 65:1591; UNDP Human
Development Index since 2010). The weighted sum  S = sum_k w_k x_k  is shown for comparison.
"""

from __future__ import annotations

import numpy as np

from impactkit.scale.criteria import SCORE_FLOOR


def weighted_geometric_mean(values: np.ndarray, weights: np.ndarray, floor: float = SCORE_FLOOR) -> np.ndarray:
    """exp(sum_k w_k log max(x_k, floor)) over the last axis; ``weights`` broadcast and sum to 1."""
    logs = np.log(np.clip(values, floor, 1.0))
    return np.exp(np.sum(weights * logs, axis=-1))


def weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.sum(weights * values, axis=-1)


def ranks(gates_passed: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """1-based ranks over the last axis: by number of gates passed, then by score (ties: listed order).

    ``gates_passed`` is a count (or a boolean "passes all", which is the count's top level);
    scores lie in [0, 1], so ``count * 2 + score`` orders by count first.
    """
    key = np.asarray(gates_passed, dtype=float) * 2.0 + scores
    order = np.argsort(-key, axis=-1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(1, order.shape[-1] + 1), axis=-1)
    return out


def gate_status(pass_at_low: np.ndarray, pass_at_high: np.ndarray) -> np.ndarray:
    """'passed' / 'failed' / 'uncertain' from the gate at the inputs' low and high ends (monotone measures)."""
    return np.where(pass_at_low, "passed", np.where(~pass_at_high, "failed", "uncertain"))
