"""Map a pure function over partitions and add the results up in partition order.

Every statistic the distributed estimators need is a sum over rows or units (a Gram matrix,
a score vector, a count). Partial sums come back to the client and are added in partition
order, never in completion order, so the numbers depend on the data and its partitioning
only, not on the number of workers or on scheduling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def partitions(frame) -> list:
    """The partitions of a dask DataFrame as delayed objects (lazy: nothing is read yet)."""
    return list(frame.to_delayed())


def map_blocks(func: Callable, blocks: Sequence, *args: Any) -> list:
    """``[func(block, *args) for block in blocks]`` computed on the cluster, in block order."""
    import dask
    from dask import delayed

    tasks = [delayed(func, pure=True)(block, *args) for block in blocks]
    return list(dask.compute(*tasks))


def add(parts: Sequence[Any]) -> Any:
    """Sum a sequence of equally shaped partial results (arrays, numbers, dicts or tuples of them)."""
    first = parts[0]
    if isinstance(first, dict):
        return {key: add([p[key] for p in parts]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(add([p[i] for p in parts]) for i in range(len(first)))
    total = np.array(first, dtype=float, copy=True) if isinstance(first, np.ndarray) else first
    for part in parts[1:]:
        total = total + part
    return total


def merge_by_label(parts: Sequence[dict], combine: Callable[[Any, Any], Any]) -> dict:
    """Per-label partial results (``{label: value}``, e.g. per cluster) merged over partitions in
    partition order: a label seen again has its values joined by ``combine(earlier, later)``
    (clusters may span partitions)."""
    merged: dict = {}
    for part in parts:
        for label, value in part.items():
            merged[label] = combine(merged[label], value) if label in merged else value
    return merged


def map_reduce(func: Callable, blocks: Sequence, *args: Any) -> Any:
    """:func:`map_blocks` then :func:`add`."""
    return add(map_blocks(func, blocks, *args))


def persist(blocks: Sequence) -> list:
    """Keep computed blocks in worker memory (futures); they stay there while referenced."""
    import dask

    return list(dask.persist(*blocks))
