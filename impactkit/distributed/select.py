"""Exact order statistics of a distributed column without gathering it (distributed selection).

The k-th smallest value of a column spread over partitions is found by narrowing an interval
that holds it, in the spirit of the histogram-based parallel selection of Saukas & Song (1998)
and Ben-Or's counting selection: every pass, each partition returns a fixed-size histogram of its
values inside the current interval (counts and each bin's smallest and largest value); the client
keeps the bin where the rank falls, so the interval shrinks to the values of one bin. When at
most ``max_gather`` values are left in it, the partitions send those values and the client picks
the rank exactly. A bin whose smallest and largest values coincide ends the search at once (ties).
Only histograms and at most ``max_gather`` values ever leave the workers, never the column.

Quantiles and medians are then numpy's on the two neighbouring order statistics
(:func:`quantile`, :func:`median`), so they equal ``np.quantile`` / ``np.median`` on the whole
column bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from impactkit.distributed.reduce import map_blocks

BINS = 2048
MAX_GATHER = 50_000


@dataclass
class _Search:
    lo: float
    hi: float            # half-open interval [lo, hi)
    below: int           # values < lo
    count: int           # values in [lo, hi)


def as_values(block: np.ndarray) -> np.ndarray:
    """The ``values_fn`` of blocks that already are arrays of values (e.g. persisted on the workers)."""
    return block


def _summary(part, values_fn: Callable, args: tuple) -> tuple[int, float, float]:
    v = values_fn(part, *args)
    return (int(v.size), float(v.min()) if v.size else np.inf, float(v.max()) if v.size else -np.inf)


def _narrow(part, values_fn: Callable, args: tuple, searches: list[tuple[float, float, bool]], bins: int) -> list:
    """For each ``(lo, hi, gather)``: the values in ``[lo, hi)`` (gather) or their histogram."""
    v = values_fn(part, *args)
    out = []
    for lo, hi, gather in searches:
        inside = v[(v >= lo) & (v < hi)]
        if gather:
            out.append(inside)
            continue
        edges = np.linspace(lo, hi, bins + 1)
        index = np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, bins - 1)
        low, high = np.full(bins, np.inf), np.full(bins, -np.inf)
        np.minimum.at(low, index, inside)
        np.maximum.at(high, index, inside)
        out.append((np.bincount(index, minlength=bins), low, high))
    return out


def order_statistics(parts: Sequence, values_fn: Callable, args: tuple, ranks: Sequence[int], *,
                     bins: int | None = None, max_gather: int | None = None) -> dict[int, float]:
    """The ``k``-th smallest (0-based) of ``values_fn(partition, *args)`` over all partitions, per ``k``.

    ``values_fn`` returns a partition's finite values as a float array (a module-level function:
    it runs on the workers). ``bins`` and ``max_gather`` default to :data:`BINS` and
    :data:`MAX_GATHER`. Raises ``ValueError`` for a rank outside ``[0, n)``.
    """
    bins = BINS if bins is None else int(bins)
    max_gather = MAX_GATHER if max_gather is None else int(max_gather)
    sizes = map_blocks(_summary, parts, values_fn, args)
    n = sum(s[0] for s in sizes)
    if any(not 0 <= k < n for k in ranks):
        raise ValueError(f"ranks {list(ranks)} outside 0..{n - 1}")
    start = _Search(min(s[1] for s in sizes), float(np.nextafter(max(s[2] for s in sizes), np.inf)), 0, n)
    state = {int(k): start for k in ranks}
    found: dict[int, float] = {}
    while len(found) < len(state):
        open_searches = list(dict.fromkeys((s.lo, s.hi, s.count <= max_gather) for k, s in state.items()
                                           if k not in found))
        replies = map_blocks(_narrow, parts, values_fn, args, open_searches, bins)
        for j, (lo, hi, gather) in enumerate(open_searches):
            pending = [k for k, s in state.items() if k not in found and (s.lo, s.hi) == (lo, hi)]
            if gather:
                values = np.sort(np.concatenate([r[j] for r in replies]))
                for k in pending:
                    found[k] = float(values[k - state[k].below])
                continue
            counts = np.sum([r[j][0] for r in replies], axis=0)
            low = np.min([r[j][1] for r in replies], axis=0)
            high = np.max([r[j][2] for r in replies], axis=0)
            cumulative = np.cumsum(counts)
            for k in pending:
                search = state[k]
                b = int(np.searchsorted(cumulative, k - search.below, side="right"))
                below = search.below + (int(cumulative[b - 1]) if b else 0)
                if low[b] == high[b]:
                    found[k] = float(low[b])
                elif (float(low[b]), float(np.nextafter(high[b], np.inf))) == (search.lo, search.hi):
                    state[k] = _Search(search.lo, search.hi, below, 0)   # no progress (rounding): gather
                else:
                    state[k] = _Search(float(low[b]), float(np.nextafter(high[b], np.inf)), below, int(counts[b]))
    return found


def quantile(parts: Sequence, values_fn: Callable, args: tuple, qs: Sequence[float], n: int) -> list[float]:
    """``np.quantile(column, qs)`` (linear interpolation) from the neighbouring order statistics."""
    positions = [q * (n - 1) for q in qs]
    ranks = sorted({r for h in positions for r in (int(np.floor(h)), min(int(np.floor(h)) + 1, n - 1))})
    stats = order_statistics(parts, values_fn, args, ranks)
    out = []
    for h in positions:
        j = int(np.floor(h))
        pair = np.array([stats[j], stats[min(j + 1, n - 1)]])
        out.append(float(np.quantile(pair, h - j)))   # numpy's own interpolation of the two neighbours
    return out


def median(parts: Sequence, values_fn: Callable, args: tuple, n: int) -> float:
    """``np.median(column)`` from the middle order statistic(s)."""
    ranks = [(n - 1) // 2] if n % 2 else [n // 2 - 1, n // 2]
    stats = order_statistics(parts, values_fn, args, ranks)
    return float(np.median(np.array([stats[k] for k in ranks])))


def count(parts: Sequence, values_fn: Callable, args: tuple) -> int:
    """Number of values ``values_fn`` yields over all partitions."""
    return sum(s[0] for s in map_blocks(_summary, parts, values_fn, args))


# ------------------------------------------------------------------------------------------ weighted cut
def _weighted_summary(part, values_fn: Callable, args: tuple) -> tuple[int, float, float]:
    v, _ = values_fn(part, *args)
    return (int(v.size), float(v.min()) if v.size else np.inf, float(v.max()) if v.size else -np.inf)


def _weighted_narrow(part, values_fn: Callable, args: tuple, lo: float, hi: float, gather: bool, bins: int):
    """The (values, weights) in ``[lo, hi)`` (gather), or per bin: counts, weight sums, min and max."""
    v, w = values_fn(part, *args)
    inside = (v >= lo) & (v < hi)
    v, w = v[inside], w[inside]
    if gather:
        return v, w
    edges = np.linspace(lo, hi, bins + 1)
    index = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
    low, high = np.full(bins, np.inf), np.full(bins, -np.inf)
    np.minimum.at(low, index, v)
    np.maximum.at(high, index, v)
    return np.bincount(index, minlength=bins), np.bincount(index, weights=w, minlength=bins), low, high


def weighted_cut(parts: Sequence, values_fn: Callable, args: tuple, cut: float, *, bins: int | None = None,
                 max_gather: int | None = None) -> tuple[float, float, float]:
    """The weighted order statistic at cumulative weight ``cut``, without gathering the column.

    ``values_fn(partition, *args)`` returns ``(values, weights)`` (finite values, positive weights).
    In ascending order of the values, the answer is the first value whose cumulative weight reaches
    ``cut`` (``v[argmax(cumsum(w) >= cut)]`` on the sorted column; the smallest value when
    ``cut <= 0``), found by the same interval narrowing as :func:`order_statistics` with each bin's
    weight sum.

    Returns
    -------
    value, below, through : float
        The value ``c``, the weight of the values ``< c`` and of the values ``<= c``.
    """
    bins = BINS if bins is None else int(bins)
    max_gather = MAX_GATHER if max_gather is None else int(max_gather)
    sizes = map_blocks(_weighted_summary, parts, values_fn, args)
    if sum(s[0] for s in sizes) == 0:
        raise ValueError("no values to select from")
    lo, hi = min(s[1] for s in sizes), float(np.nextafter(max(s[2] for s in sizes), np.inf))
    below, count = 0.0, sum(s[0] for s in sizes)
    while True:
        gather = count <= max_gather
        replies = map_blocks(_weighted_narrow, parts, values_fn, args, lo, hi, gather, bins)
        if gather:
            v = np.concatenate([r[0] for r in replies])
            w = np.concatenate([r[1] for r in replies])
            order = np.argsort(v, kind="stable")
            v, w = v[order], w[order]
            reached = below + np.cumsum(w) >= cut
            c = float(v[int(np.argmax(reached))] if reached.any() else v[-1])
            return c, below + float(w[v < c].sum()), below + float(w[v <= c].sum())
        counts = np.sum([r[0] for r in replies], axis=0)
        weights = np.sum([r[1] for r in replies], axis=0)
        low = np.min([r[2] for r in replies], axis=0)
        high = np.max([r[3] for r in replies], axis=0)
        cumulative = below + np.cumsum(weights)
        candidates = np.nonzero((cumulative >= cut) & (counts > 0))[0]
        b = int(candidates[0]) if candidates.size else int(np.nonzero(counts)[0][-1])
        before = below + float(weights[:b].sum())
        if low[b] == high[b]:
            return float(low[b]), before, before + float(weights[b])
        if (float(low[b]), float(np.nextafter(high[b], np.inf))) == (lo, hi):
            count = 0                                            # no progress (rounding): gather
            continue
        lo, hi, below, count = float(low[b]), float(np.nextafter(high[b], np.inf)), before, int(counts[b])
