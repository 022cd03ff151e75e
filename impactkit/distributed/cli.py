"""Body of ``impactkit estimate`` with an engine: pandas (in memory) or Dask (``--engine dask``).

The engine is the ``--engine`` option, else ``[engine] kind`` of ``analysis.toml`` (default
pandas); the cluster is ``--scheduler``, else ``[engine] scheduler``, else a LocalCluster.
"""

from __future__ import annotations

from pathlib import Path

from impactkit.errors import InputError


def cli_estimate_engine(analysis_dir: Path, json_out: Path | None, engine: str | None = None,
                        scheduler: str | None = None) -> int:
    from impactkit.analysis.spec import load_analysis
    from impactkit.analysis.engine import ENGINE_KINDS

    if engine is not None and engine not in ENGINE_KINDS:
        raise InputError(f"--engine must be one of {', '.join(ENGINE_KINDS)}, got {engine!r}")
    spec = load_analysis(analysis_dir)
    kind = engine or spec.engine.kind
    if kind == "pandas":
        if scheduler:
            raise InputError("--scheduler needs the Dask engine (--engine dask or [engine] kind = \"dask\")")
        from impactkit.analysis import cli_estimate

        return cli_estimate(analysis_dir, json_out)
    return cli_estimate_dask(spec, json_out, scheduler or spec.engine.scheduler)


def cli_estimate_dask(spec, json_out: Path | None, scheduler: str | None) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from impactkit.atomic import write_json
    from impactkit.distributed.cluster import dask_client
    from impactkit.distributed.run import run_estimates

    with dask_client(scheduler, n_workers=spec.engine.n_workers, memory_limit=spec.engine.memory_limit) as client:
        where = scheduler or f"a local cluster of {len(client.scheduler_info().get('workers', {}))} worker(s)"
        results = run_estimates(spec)
    console = Console(highlight=False, width=max(Console().width, 120))
    head = results["headline"]
    num = lambda v, digits=4: "" if v is None else f"{v:.{digits}f}"  # noqa: E731
    table = Table(title=Text(f"{results['analysis']['title']}: estimates ({head['outcome']})"))
    for col in ("estimator", "estimate", "std.error", "95% CI", "p-value", "n"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    for row in results["estimators"]:
        cells = (row["estimator"], num(row["estimate"]), num(row["std_error"]),
                 f"[{num(row['conf_low'])}, {num(row['conf_high'])}]", num(row["p_value"], 4), str(row.get("n") or ""))
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    console.print(Text(f"Headline ({head['estimator']}): {head['percent'] * 100:+.0f}% "
                       f"(95% CI {head['percent_low'] * 100:+.0f}% to {head['percent_high'] * 100:+.0f}%), "
                       f"about {results['analysis']['currency']} {head['money_per_household']:,.0f} per "
                       f"{results['analysis']['unit_label']} per year."))
    console.print(Text(f"Engine: Dask ({where}); contract: {results['validation']['n_rules']} rules passed on "
                       f"{results['validation']['n_rows']} rows. Sun-Abraham, 2SLS and the design checks run on the "
                       "pandas engine only."))
    if json_out is not None:
        write_json(json_out, results)
        console.print(Text(f"wrote {json_out}"))
    return 0
