"""Beyond one machine: the same analysis on Dask, by sufficient statistics.

Modules (one concern each; data flows one way: read -> check -> reduce -> infer):

- :mod:`~impactkit.analysis.engine`: the ``[engine]`` section of ``analysis.toml`` (no Dask import);
- :mod:`~impactkit.distributed.cluster`: a Dask client (a scheduler address, else a ``LocalCluster``);
- :mod:`~impactkit.distributed.data`: partitioned Parquet read lazily, partitions holding whole units;
- :mod:`~impactkit.distributed.reduce`: map a pure function over partitions, add the results in
  partition order (so the numbers do not depend on the worker count);
- :mod:`~impactkit.distributed.twfe`: 2x2 and TWFE from per-partition cross-products, CRV1 from
  cluster score sums, wild bootstrap on the reduced scores;
- :mod:`~impactkit.distributed.cs`: Callaway-Sant'Anna from cell statistics, influence functions
  reduced to cluster sums (the driver); its steps: :mod:`~impactkit.distributed.cs_blocks` (partitions
  as unit blocks, cell samples), :mod:`~impactkit.distributed.cs_passes` (the per-block sums) and
  :mod:`~impactkit.distributed.cs_params` (distributed IRLS logit, parameters from the sums);
- :mod:`~impactkit.distributed.sa`: Sun-Abraham's interaction-weighted event study through the TWFE passes;
- :mod:`~impactkit.distributed.iv`: 2SLS and its weak-instrument diagnostics from cross-products and score
  sums (the per-partition side in :mod:`~impactkit.distributed.iv_sums`);
- :mod:`~impactkit.distributed.bacon`: the Goodman-Bacon decomposition from timing-group x period sums;
- :mod:`~impactkit.distributed.select`: exact order statistics without gathering a column (outlier fences);
- :mod:`~impactkit.distributed.aggregate`: ``aggte``-style aggregation and the multiplier bootstrap on
  the reduced influence functions;
- :mod:`~impactkit.distributed.contracts`: column rules per partition through the compiled
  great-expectations suite, panel rules by group-by reductions, one report;
- :mod:`~impactkit.distributed.fanout`: embarrassingly parallel Monte Carlo on futures, one seed per task;
- :mod:`~impactkit.distributed.ri`: randomization inference of TWFE and ANCOVA from per-cluster sums
  (no refit per permutation);
- :mod:`~impactkit.distributed.facts`: panel facts, data section and power inputs by per-partition reductions;
- :mod:`~impactkit.distributed.steps`: the analysis steps on Dask, one registry (or the reason a step is left out);
- :mod:`~impactkit.distributed.analysis`: the analysis on Dask, and :func:`run_analysis_on`, the engine switch
  every command uses.

Only ``config`` is imported by the analysis model; everything else imports Dask lazily.
"""

from impactkit.analysis.engine import ENGINE_KINDS, EngineSection

__all__ = ["ENGINE_KINDS", "EngineSection"]
