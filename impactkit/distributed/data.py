"""Partitioned Parquet read lazily, with every unit's rows inside one partition.

The estimators reduce per partition; the fixed-effect and influence-function algebra is
exact only when no unit is split across partitions (its demeaning and its influence
function are then partition-local). :func:`by_unit` checks that with two cheap reductions
and shuffles by unit only when needed (a registry exported per region or per unit-hash
already satisfies it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from impactkit.errors import DataReadError, InputError
from impactkit.io import dataset_files


def read_panel(path: str | Path, columns: Sequence[str] | None = None):
    """A lazy ``dask.dataframe`` over the dataset's Parquet files (one partition per file or row group).

    Raises :class:`DataReadError` (exit 2) naming the path when there is nothing to read or a
    requested column is absent.
    """
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    if "://" in str(path):  # remote: needs the store's fsspec driver (s3fs, gcsfs, adlfs) on client and workers
        frame = dd.read_parquet(str(path), split_row_groups=False)
        missing = [c for c in (columns or []) if c not in frame.columns]
        if missing:
            raise InputError(f"{path}: column(s) {missing} not found in the data")
        return frame[list(columns)] if columns else frame
    files = dataset_files(path)
    if not files:
        raise DataReadError(f"{path}: no Parquet file found (give a file, a directory or a glob)")
    schema = pq.read_schema(files[0])
    wanted = list(dict.fromkeys(c for c in (columns or schema.names)))
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise InputError(f"{path}: column(s) {missing} not found in the data")
    return dd.read_parquet([str(f) for f in files], columns=wanted, split_row_groups=False)


def _unit_hashes(part, unit: str):
    import numpy as np
    import pandas as pd

    return np.unique(pd.util.hash_array(part[unit].to_numpy()))


def units_split(frame, unit: str) -> bool:
    """True when some unit's rows lie in more than one partition.

    Each partition returns the 64-bit hashes of its distinct units; a hash seen in two
    partitions means a split unit (a hash collision only costs an unneeded shuffle).
    """
    import dask
    import numpy as np

    hashes = dask.compute(*[dask.delayed(_unit_hashes)(p, unit) for p in frame.to_delayed()])
    together = np.concatenate(hashes)
    return bool(np.unique(together).size != together.size)


RANK = "__unit_rank"


def _units_in_order(part, unit: str):
    import pandas as pd

    return pd.unique(part[unit].to_numpy())


def _with_rank(part, unit: str, order):
    import numpy as np

    return part.assign(**{RANK: order.get_indexer(part[unit].to_numpy()).astype(np.int64)})


def first_appearance(frame, unit: str):
    """Every unit once, in order of first appearance in the rows (partitions in order)."""
    import dask
    import numpy as np
    import pandas as pd

    firsts = dask.compute(*[dask.delayed(_units_in_order)(p, unit) for p in frame.to_delayed()])
    return pd.Index(pd.unique(np.concatenate(firsts)))


def by_unit(frame, unit: str):
    """``frame`` with every unit in one partition (re-partitioned on ``unit`` only when needed).

    Units are ranked by first appearance and the rows range-partitioned on the rank, so units
    (hence clusters, constant within a unit) keep their order of first appearance: the wild
    bootstrap, which gives clusters their weights in that order, then draws as on the pandas engine.
    The order of the units (8 bytes per unit id) passes through the client once, as one object of
    the graph.
    """
    import numpy as np

    if frame.npartitions == 1 or not units_split(frame, unit):
        return frame
    import dask

    order = first_appearance(frame, unit)
    n, parts = len(order), frame.npartitions
    divisions = sorted({*(int(k * n // parts) for k in range(parts)), n - 1})
    meta = frame._meta.assign(**{RANK: np.zeros(0, dtype=np.int64)})
    # one copy of the unit order in the graph (8 bytes per unit), not one per partition
    ranked = frame.map_partitions(_with_rank, unit, dask.delayed(order, pure=True), meta=meta)
    return ranked.set_index(RANK, divisions=divisions).reset_index(drop=True)
