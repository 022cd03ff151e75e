"""Body of ``impactkit estimate`` with an engine: pandas (in memory) or Dask (``--engine dask``).

The engine is the ``--engine`` option, else ``[engine] kind`` of ``analysis.toml`` (default
pandas); the cluster is ``--scheduler``, else ``[engine] scheduler``, else a LocalCluster. Both
engines produce the same results document (:func:`impactkit.distributed.analysis.run_analysis_on`)
and print it the same way.

:func:`score_engine` is the engine of ``impactkit score``: the portfolio Monte Carlo runs where the
linked analyses declare, so that ``score`` and a linked Dask analysis's pack show the same draws.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path


def cli_estimate_engine(analysis_dir: Path, json_out: Path | None, engine: str | None = None,
                        scheduler: str | None = None) -> int:
    from impactkit.analysis.cli import show_estimates
    from impactkit.analysis.spec import load_analysis
    from impactkit.console import progress
    from impactkit.distributed.analysis import engine_of, run_analysis_on

    spec = load_analysis(analysis_dir)
    kind = engine_of(spec, engine)
    with progress(f"estimate {analysis_dir}" + (" on Dask" if kind == "dask" else "")) as update:
        results = run_analysis_on(spec, engine=kind, scheduler=scheduler, progress=update)
    return show_estimates(analysis_dir, results, json_out)


@contextlib.contextmanager
def score_engine(portfolio: Path) -> Iterator[Callable | None]:
    """The Monte Carlo ``simulator`` of ``impactkit score`` (run the linked analyses inside this block).

    No linked analysis on the Dask engine: ``None`` (the in-process, one-stream Monte Carlo of
    :func:`impactkit.scale.score`). Else a client for the first linked Dask analysis's
    ``[engine]`` (its scheduler, else the current client, else a LocalCluster, which the linked
    analyses without a scheduler then share) and :func:`impactkit.distributed.fanout.portfolio_simulator`
    on it: the draws in blocks, as the Dask analysis's own scale step draws them, so that the
    score's probabilities equal those of its results and pack.
    """
    from impactkit.analysis.link import linked_analyses
    from impactkit.distributed.cluster import dask_client
    from impactkit.distributed.fanout import portfolio_simulator

    on_dask = [spec for _, spec in linked_analyses(portfolio) if spec.engine.kind == "dask"]
    if not on_dask:
        yield None
        return
    engine = on_dask[0].engine
    with dask_client(engine.scheduler, n_workers=engine.n_workers, memory_limit=engine.memory_limit) as client:
        yield portfolio_simulator(client=client)
