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
    from rich.text import Text

    from impactkit.atomic import write_json
    from impactkit.distributed.cluster import dask_client
    from impactkit.distributed.run import run_estimates

    with dask_client(scheduler, n_workers=spec.engine.n_workers, memory_limit=spec.engine.memory_limit) as client:
        where = scheduler or f"a local cluster of {len(client.scheduler_info().get('workers', {}))} worker(s)"
        results = run_estimates(spec)
    from impactkit.analysis.cli import print_estimates
    from impactkit.atomic import dumps_json
    from impactkit.console import make_console
    from impactkit.privacy import guard_text

    # the one privacy guard: no personal value reaches the table or the JSON (values are read on the
    # client from the partitioned data only when the contract marks personal columns)
    guard_text(dumps_json(results), _personal_values(spec), json_out or "the estimates")
    console = make_console()
    print_estimates(results, console)  # the pandas engine's table and headline, in the terminal's width
    console.print(Text(f"Engine: Dask ({where}); contract: {results['validation']['n_rules']} rules passed on "
                       f"{results['validation']['n_rows']} rows. Sun-Abraham, 2SLS and the design checks run on the "
                       "pandas engine only."))
    if json_out is not None:
        write_json(json_out, results)
        console.print(Text(f"wrote {json_out}"))
    return 0


def _personal_values(spec) -> list[str]:
    """The personal values of a partitioned dataset's personal columns (none when there are none)."""
    from impactkit.contracts.loader import load_contract
    from impactkit.distributed.data import read_panel
    from impactkit.privacy import forbidden_strings

    contract = load_contract(spec.path(spec.data.contract))
    columns = list(contract.personal_columns)
    if not columns:
        return []
    frame = read_panel(spec.path(spec.data.file), columns=columns)
    values: list[str] = []
    for column in columns:
        values.extend(frame[column].dropna().astype(str).unique().compute().tolist())
    return forbidden_strings(values)
