"""The ``impactkit`` command line.

Every command returns a documented exit code:

- 0: success;
- 1: the data or the results fail a check (validation rule, rerun drift, failed gate);
- 2: unusable input (missing file, malformed contract or spec) with a one-line message;
- 3: an internal error (a bug): one line, the traceback with ``IMPACTKIT_DEBUG=1``.

Commands are thin: each parses its arguments and hands over to one library function
(``impactkit.<package>.cli_*``) that does the work and returns the exit code. Errors
raised on purpose (:class:`impactkit.errors.ImpactkitError`) are printed as one line,
never as a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.text import Text

from impactkit.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, ImpactkitError

app = typer.Typer(
    name="impactkit",
    help="Impact evaluation and scale-readiness analytics (exit codes: 0 ok, 1 a check failed, 2 unusable input, 3 internal error).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _error(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` on one line (message shown verbatim, never as markup)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", " ".join(str(message).split())))
    return typer.Exit(code)


def _run(work: Callable[[], int]) -> None:
    """Run a command body, mapping errors to one line and an exit code (no traceback).

    Set ``IMPACTKIT_DEBUG=1`` to see the traceback of an unexpected error (exit 3).
    """
    try:
        code = work()
    except ImpactkitError as exc:
        raise _error(str(exc), exc.exit_code) from None
    except FileNotFoundError as exc:
        raise _error(f"file not found: {exc.filename}", EXIT_BAD_INPUT) from None
    except OSError as exc:  # a directory where a file was expected, permissions, a full disk
        what = f"{exc.filename}: " if exc.filename else ""
        raise _error(f"cannot read or write {what}{exc.strerror or exc}", EXIT_BAD_INPUT) from None
    except Exception as exc:  # a bug: say so in one line, keep the traceback for IMPACTKIT_DEBUG
        if os.environ.get("IMPACTKIT_DEBUG"):
            raise
        raise _error(f"internal error ({type(exc).__name__}: {exc}); rerun with IMPACTKIT_DEBUG=1 "
                     "for the traceback and report it", EXIT_INTERNAL) from None
    raise typer.Exit(int(code or 0))


JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to this file (atomically).")]


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="Survey panel: CSV, Parquet, Stata .dta or Excel.")],
    contract: Annotated[Path, typer.Option("--contract", "-c", help="Data contract (ODCS v3 YAML).")],
    json_out: JsonOut = None,
) -> None:
    """Validate a survey panel against its data contract (exit 1 if any rule fails)."""
    from impactkit.contracts.cli import cli_validate

    _run(lambda: cli_validate(data, contract, json_out))


@app.command()
def estimate(
    analysis_dir: Annotated[Path, typer.Argument(help="Analysis folder holding analysis.toml.")],
    json_out: JsonOut = None,
    engine: Annotated[Optional[str], typer.Option(
        "--engine", help="pandas (in memory) or dask (partitioned Parquet); default: [engine] kind of analysis.toml.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", help="Dask scheduler address (tcp://host:8786); default: a local cluster.")] = None,
) -> None:
    """Estimate the impacts an analysis declares and print them."""
    from impactkit.distributed.cli import cli_estimate_engine  # i15: engine switch (pandas | dask)

    _run(lambda: cli_estimate_engine(analysis_dir, json_out, engine, scheduler))


@app.command()
def score(
    portfolio: Annotated[Path, typer.Argument(help="Portfolio YAML listing intervention files.")],
    json_out: JsonOut = None,
    draws: Annotated[Optional[int], typer.Option(
        help="Monte Carlo draws for rank probabilities (default: the portfolio's).")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed for the Monte Carlo draws (default: the portfolio's).")] = None,
    linked: Annotated[bool, typer.Option(
        "--linked/--no-linked",
        help="Run the impactkit analyses that intervention files link and use their estimates and accounts.")] = True,
    costs: Annotated[Optional[list[str]], typer.Option(
        "--costs", help="Programme accounts for one intervention: ID=PATH to a costs.toml (repeatable).")] = None,
) -> None:
    """Score interventions for scale readiness: ranks, gates and bottlenecks."""
    from impactkit.scale.cli import cli_score, parse_costs_option

    def work() -> int:
        estimates, accounts = {}, {}
        if linked:
            from impactkit.analysis.link import linked_scale_inputs

            estimates, accounts = linked_scale_inputs(portfolio)
        return cli_score(portfolio, json_out, draws=draws, seed=seed, costs=parse_costs_option(costs),
                         estimates=estimates, accounts=accounts)

    _run(work)


@app.command()
def pack(
    analysis_dir: Annotated[Path, typer.Argument(help="Analysis folder holding analysis.toml.")],
    to: Annotated[str, typer.Option("--to", help="Comma-separated formats: html,pdf.")] = "html,pdf",
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: reports/<name>).")] = None,
) -> None:
    """Build the evidence pack (.qmd -> HTML and PDF) for an analysis."""
    from impactkit.pack.cli import cli_pack

    _run(lambda: cli_pack(analysis_dir, to=to, out=out))


@app.command()
def pin(
    analysis_dir: Annotated[Path, typer.Argument(help="Analysis folder holding analysis.toml.")],
) -> None:
    """Pin an analysis: write analysis.lock.json with input hashes, environment and every number."""
    from impactkit.pin.cli import cli_pin

    _run(lambda: cli_pin(analysis_dir))


@app.command()
def rerun(
    analysis_dir: Annotated[Path, typer.Argument(help="Analysis folder holding analysis.lock.json.")],
) -> None:
    """Rerun a pinned analysis from scratch and compare every number with the lock."""
    from impactkit.pin.cli import cli_rerun

    _run(lambda: cli_rerun(analysis_dir))


@app.command()
def simulate(
    out: Annotated[Path, typer.Argument(help="Parquet file to write.")],
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed of the data-generating process.")] = None,
) -> None:
    """Regenerate the simulated Peru TAP panel (bit-for-bit from the seed)."""
    from impactkit.datasets.cli import cli_simulate

    _run(lambda: cli_simulate(out, seed))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="impactkit")


if __name__ == "__main__":  # pragma: no cover
    main()
