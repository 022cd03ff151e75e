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

import errno
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


def _version(value: bool) -> None:
    if value:
        from impactkit import __version__

        print(f"impactkit {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the impactkit version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no warnings, no 'wrote ...' lines: "
                                        "results and errors only.")] = False,
) -> None:
    """Impact evaluation and scale-readiness analytics."""
    from impactkit.console import install_warning_handler, set_quiet

    set_quiet(quiet)
    install_warning_handler()


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
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _error(f"disk full: cannot write {what}no space left on device", EXIT_BAD_INPUT) from None
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
        import contextlib

        estimates, accounts, forbidden = {}, {}, []
        engine = contextlib.nullcontext()
        if linked:  # the Monte Carlo runs on Dask when a linked analysis does (same draws as its pack)
            from impactkit.distributed.cli import score_engine

            engine = score_engine(portfolio)
        with engine as simulator:
            if linked:
                from impactkit.analysis.link import linked_personal_values, linked_scale_inputs
                from impactkit.distributed.analysis import run_analysis_on

                estimates, accounts = linked_scale_inputs(portfolio, runner=run_analysis_on)
                forbidden = linked_personal_values(portfolio)
            from impactkit.console import progress

            with progress("score") as update:
                update("linked analyses and Monte Carlo draws")
                return cli_score(portfolio, json_out, draws=draws, seed=seed, costs=parse_costs_option(costs),
                                 estimates=estimates, accounts=accounts, forbidden=forbidden, simulator=simulator)

    _run(work)


@app.command()
def pack(
    analysis_dir: Annotated[Path, typer.Argument(help="Analysis folder holding analysis.toml.")],
    to: Annotated[Optional[str], typer.Option(
        "--to", help="Comma-separated formats: html,pdf,docx (default: [pack] formats of analysis.toml).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: reports/<name>).")] = None,
    engine: Annotated[Optional[str], typer.Option(
        "--engine", help="pandas (in memory) or dask (partitioned Parquet); default: [engine] kind of analysis.toml.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", help="Dask scheduler address (tcp://host:8786); default: a local cluster.")] = None,
) -> None:
    """Build the policy brief (per [pack] languages) and the technical report for an analysis."""
    from impactkit.pack.cli import cli_pack

    def work() -> int:
        from impactkit.console import progress

        with progress(f"pack {analysis_dir}") as update:
            update("analysis, figures and rendering")
            return cli_pack(analysis_dir, to=to, out=out, engine=engine, scheduler=scheduler)

    _run(work)


@app.command()
def pin(
    analysis_dir: Annotated[Path, typer.Argument(help="Analysis folder holding analysis.toml.")],
    check: Annotated[bool, typer.Option("--check", help="Only say whether a re-pin is needed (exit 1 if so); write nothing.")] = False,
) -> None:
    """Pin an analysis: write analysis.lock.json with input hashes, provenance and every number."""
    from impactkit.pin.cli import cli_pin

    _run(lambda: cli_pin(analysis_dir, check=check))


@app.command()
def rerun(
    analysis_dir: Annotated[Path, typer.Argument(help="Analysis folder holding analysis.lock.json.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full comparison as JSON to this file.")] = None,
    twice: Annotated[bool, typer.Option("--twice", help="Run twice in fresh processes (1 and 2 threads) and report "
                                        "numbers that differ between the runs.")] = False,
) -> None:
    """Rerun a pinned analysis from scratch and compare every number with the lock, within the
    tolerances analysis.toml declares (exit 1 beyond them; bit identity is reported, not required)."""
    from impactkit.pin.cli import cli_rerun

    _run(lambda: cli_rerun(analysis_dir, json_out=json_out, twice=twice))


@app.command()
def simulate(
    out: Annotated[Path, typer.Argument(help="File to write: .parquet (or .pq) or .csv.")],
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed of the data-generating process.")] = None,
) -> None:
    """Regenerate the seeded example panel of impactkit.datasets (bit-for-bit from the seed)."""
    from impactkit.datasets.cli import cli_simulate

    _run(lambda: cli_simulate(out, seed))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="impactkit")


if __name__ == "__main__":  # pragma: no cover
    main()
