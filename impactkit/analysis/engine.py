"""The ``[engine]`` section of ``analysis.toml``: where an analysis runs.

.. code-block:: toml

    [engine]
    kind = "dask"                      # "pandas" (default): in memory; "dask": partitioned, lazily
    scheduler = "tcp://10.0.0.5:8786"  # optional: a running Dask scheduler; none = a LocalCluster
    n_workers = 2                      # LocalCluster only
    memory_limit = "4GiB"              # LocalCluster only, per worker

A small model of its own, plugged into :class:`impactkit.analysis.spec.AnalysisSpec`, so
the analysis model does not depend on Dask (nothing here imports it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ENGINE_KINDS = ("pandas", "dask")


class EngineSection(BaseModel):
    """Which engine runs the analysis, and (for Dask) which cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["pandas", "dask"] = Field("pandas", description="Where the analysis runs: 'pandas' (in memory, "
                                           "the default) or 'dask' (partitioned Parquet, read lazily; docs/dask.md).")
    scheduler: str | None = Field(None, description="Address of a running Dask scheduler (tcp://host:8786); "
                                  "none starts a LocalCluster.")
    n_workers: int | None = Field(None, ge=1, description="Workers of the LocalCluster (no scheduler given).")
    memory_limit: str | None = Field(None, description="Memory limit per LocalCluster worker, e.g. '4GiB'.")
