"""Body of ``impactkit validate``: print failed rules, write JSON, return the exit code."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.text import Text
from rich.table import Table

from impactkit.atomic import dumps_json, write_text
from impactkit.errors import EXIT_CHECK_FAILED, EXIT_OK
from impactkit.privacy import guard_text, personal_values


def _examples_text(examples: list) -> str:
    return "\n".join(f"{unit}/{wave}" for unit, wave in examples)  # one key a line: never split


def cli_validate(data: Path, contract: Path, json_out: Path | None, console: Console | None = None) -> int:
    """Validate ``data`` against ``contract``; 0 when every rule passes, 1 otherwise.

    Raises ``InputError``/``ContractError``/``DataReadError`` (exit 2) for unusable input.
    """
    from impactkit.contracts import load_contract, validate

    from impactkit.console import make_console

    console = console or make_console()
    spec = load_contract(contract)
    report = validate(data, spec)
    forbidden = personal_values(data, contract=spec) if spec.personal_columns else []
    if json_out is not None:
        text = dumps_json(report.to_dict())
        guard_text(text, forbidden, json_out)  # impactkit.privacy: one guard for every output
        write_text(json_out, text)
    failed = report.failed
    head = f"{report.source}: {report.n_rows} rows, {report.n_units} units; contract {report.contract_id} v{report.contract_version}"
    console.print(head, markup=False)
    if failed.empty:
        console.print(f"all {len(report.results)} rules passed", markup=False)
        return EXIT_OK
    table = Table(title=f"{len(failed)} of {len(report.results)} rules failed", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1), collapse_padding=True)
    for name in ("rule", "column", "engine", "rows", "share", "examples (unit/wave)", "message"):
        # identifiers and numbers never wrap; the message takes what width is left
        table.add_column(name, overflow="fold", no_wrap=name != "message")
    for row in failed.itertuples(index=False):
        engine = "gx" if str(row.engine).startswith("great") else row.engine
        cells = (row.rule, row.column, engine, str(row.failed_rows), f"{row.failed_share:.2%}",
                 _examples_text(row.examples), row.message)
        guard_text(" ".join(map(str, cells)), forbidden, "the validation table")
        table.add_row(*(Text(str(c)) for c in cells))  # patterns like [a-z] shown verbatim
    console.print(table)
    for note in report.skipped:
        console.print(f"skipped: {note}", markup=False)
    return EXIT_CHECK_FAILED
