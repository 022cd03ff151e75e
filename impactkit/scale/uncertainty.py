"""Monte Carlo over criterion intervals and weights; one-at-a-time weight sensitivity.

- Inputs: uniform on their intervals (continuous quantities) or on the whole numbers of the
  interval (ordinal ladders); ``unknown`` = the whole admissible range. This is the
  stochastic multicriteria acceptability analysis of Lahdelma, Hokkanen & Salminen (1998,
  *EJOR* 106:137): rank acceptability = P(rank r) for each alternative.
- Weights: Dirichlet(c * w) centred on the declared weights w, concentration c declared
  (mean w, Var w_k = w_k (1 - w_k) / (c + 1)).
- One-at-a-time weight changes (tornado): each weight is moved over [0, 1] with the others
  rescaled in proportion; we report the nearest weights below/above the declared one at which
  the ranking changes (any position, and the first place), and the top-two score gap at half
  and one-and-a-half times the weight. ``None``/NaN in a flip column: no change on [0, 1].

All draws come from ``impactkit.seeds.rng(seed, "scale-mc")`` as one (draws, interventions,
slots) uniform array, so results are bit-identical for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.scale.aggregate import ranks, weighted_geometric_mean
from impactkit.scale.aggregate import weighted_geometric_mean as _wgm
from impactkit.scale.criteria import SLOTS, Inputs, criteria_values, gate_passes
from impactkit.scale.spec import CRITERIA, Gates, Options
from impactkit.seeds import rng


def _scale(u: np.ndarray, low: np.ndarray, high: np.ndarray, integer: np.ndarray) -> np.ndarray:
    cont = low + u * (high - low)
    whole = np.minimum(low + np.floor(u * (high - low + 1.0)), high)
    return np.where(integer, whole, cont)


def draw_inputs(inputs: Inputs, draws: int, seed: int | None):
    """Draw raw slots (draws, I) and component levels (draws, I, C) uniformly on their intervals."""
    n, q = inputs.low.shape
    c = inputs.present.shape[1]
    gen = rng(seed, "scale-mc")
    u = gen.random((draws, n, q + 2 * c))
    raw_arr = _scale(u[..., :q], inputs.low, inputs.high, inputs.integer)
    readiness = _scale(u[..., q:q + c], inputs.readiness_low, inputs.readiness_high, np.True_)
    use = _scale(u[..., q + c:], inputs.use_low, inputs.use_high, np.True_)
    # the same stream continues for the weights
    return {s: raw_arr[..., k] for k, s in enumerate(SLOTS)}, readiness, use, gen


def draw_weights(gen: np.random.Generator, weights: np.ndarray, concentration: float, draws: int) -> np.ndarray:
    """Dirichlet(c * w) on the criteria with positive weight; zero weights stay zero."""
    out = np.zeros((draws, weights.size))
    positive = weights > 0
    out[:, positive] = gen.dirichlet(concentration * weights[positive], size=draws)
    return out


@dataclass(frozen=True)
class MonteCarlo:
    scores: np.ndarray        # (D, I) weighted geometric mean
    passes: np.ndarray        # (D, I, G)
    ranks: np.ndarray         # (D, I)
    bottleneck: np.ndarray    # (D, I)
    criteria: np.ndarray      # (D, I, K)


def simulate(inputs: Inputs, weights: np.ndarray, gates: Gates, options: Options, draws: int,
             seed: int | None) -> MonteCarlo:
    raw, readiness, use, gen = draw_inputs(inputs, draws, seed)
    w = draw_weights(gen, weights, options.weight_concentration, draws)
    crit, package, bottleneck = criteria_values(raw, readiness, use, inputs, options)
    scores = weighted_geometric_mean(crit, w[:, None, :], options.score_floor)
    passes = gate_passes(raw, package, inputs, gates, options)
    return MonteCarlo(scores=scores, passes=passes, ranks=ranks(passes.sum(axis=-1), scores),
                      bottleneck=bottleneck, criteria=crit)


def mc_standard_error(p: np.ndarray | float, draws: int) -> np.ndarray:
    """Monte Carlo standard error of a probability estimated from ``draws`` independent draws:
    sqrt(p (1 - p) / D) (binomial; Koehler, Brown & Haneuse 2009, *Am. Stat.* 63:155)."""
    p = np.asarray(p, dtype=float)
    return np.sqrt(p * (1.0 - p) / draws)


def rank_probabilities(rank_draws: np.ndarray) -> np.ndarray:
    """(I, I) matrix: row i, column r-1 = P(intervention i has rank r); rows and columns sum to 1."""
    n = rank_draws.shape[1]
    counts = np.stack([(rank_draws == r).sum(axis=0) for r in range(1, n + 1)], axis=1)
    return counts / rank_draws.shape[0]


def reweight(weights: np.ndarray, k: int, new: float) -> np.ndarray:
    """Set weight k to ``new`` and rescale the others in proportion so the total stays 1."""
    rest = 1.0 - weights[k]
    out = weights * ((1.0 - new) / rest) if rest > 0 else np.full_like(weights, (1.0 - new) / (weights.size - 1))
    out[k] = new
    return out


def tornado(criteria: np.ndarray, weights: np.ndarray, passes_all: np.ndarray, ids: tuple[str, ...],
            grid: int = 201, floor: float = 0.01) -> pd.DataFrame:
    """One-at-a-time weight sensitivity of the point ranking (see module docstring).

    ``passes_all`` is the number of gates each intervention passes (ranking key 1).
    """
    def weighted_geometric_mean(values, w):
        return _wgm(values, w, floor)

    base_scores = weighted_geometric_mean(criteria, weights)
    base = ranks(passes_all, base_scores)
    order = np.argsort(base)
    top, second = (order[0], order[1]) if len(order) > 1 else (order[0], None)
    top_gap = None if second is None else float(base_scores[top] - base_scores[second])
    levels = np.linspace(0.0, 1.0, grid)
    rows = []
    for k, name in enumerate(CRITERIA):
        changed_below = changed_above = top_below = top_above = None
        pair = None
        for level in levels:
            w = reweight(weights, k, float(level))
            r = ranks(passes_all, weighted_geometric_mean(criteria, w))
            if np.array_equal(r, base):
                continue
            if r[top] != 1:
                if level < weights[k]:
                    top_below = float(level)
                elif top_above is None:
                    top_above = float(level)
            if level < weights[k]:
                changed_below = float(level)  # keep the last (nearest) below
                pair_below = _first_swap(base, r, ids)
            elif changed_above is None:
                changed_above = float(level)
                pair = _first_swap(base, r, ids)
        if changed_below is not None and (changed_above is None or weights[k] - changed_below <= changed_above - weights[k]):
            pair = pair_below
        gaps = []
        for level in (0.5 * weights[k], min(1.0, 1.5 * weights[k])):
            s = weighted_geometric_mean(criteria, reweight(weights, k, float(level)))
            gaps.append(None if second is None else float(s[top] - s[second]))
        rows.append({"criterion": name, "weight": float(weights[k]), "top_gap": top_gap, "weight_low": float(0.5 * weights[k]),
                     "weight_high": float(min(1.0, 1.5 * weights[k])), "top_gap_at_low": gaps[0],
                     "top_gap_at_high": gaps[1], "flip_weight_below": changed_below,
                     "flip_weight_above": changed_above, "first_swap": pair or "",
                     "top_flip_weight_below": top_below, "top_flip_weight_above": top_above})
    frame = pd.DataFrame(rows)
    swing = (frame["top_gap_at_high"].astype(float) - frame["top_gap_at_low"].astype(float)).abs()
    return frame.assign(_swing=swing.fillna(0.0)).sort_values("_swing", ascending=False, kind="stable") \
        .drop(columns="_swing").reset_index(drop=True)


def _first_swap(base: np.ndarray, new: np.ndarray, ids: tuple[str, ...]) -> str:
    """Name the first rank position whose holder changes: 'a > b' (new order)."""
    before, after = np.argsort(base), np.argsort(new)
    for pos in range(len(before)):
        if before[pos] != after[pos]:
            return f"{ids[after[pos]]} overtakes {ids[before[pos]]}"
    return ""
