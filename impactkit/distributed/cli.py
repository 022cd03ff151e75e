"""Body of ``impactkit estimate`` with an engine: pandas (in memory) or Dask (``--engine dask``).

The engine is the ``--engine`` option, else ``[engine] kind`` of ``analysis.toml`` (default
pandas); the cluster is ``--scheduler``, else ``[engine] scheduler``, else a LocalCluster. Both
engines produce the same results document (:func:`impactkit.distributed.analysis.run_analysis_on`)
and print it the same way.
"""

from __future__ import annotations

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
