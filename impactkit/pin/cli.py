"""CLI bodies of ``impactkit pin`` and ``impactkit rerun``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from impactkit.pin.lock import pin, rerun

# wide enough that quantity names print whole (greppable in logs), whatever the terminal
console = Console(highlight=False, width=max(Console().width, 180))


def _fmt(value) -> str:
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def print_table(title: str, rows: list[dict], columns: tuple[str, ...]) -> None:
    """A titled table of ``rows`` (dicts) showing ``columns``; quantity names print whole."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(_fmt(row.get(col))) for col in columns))  # names shown verbatim
    console.print(table)


def cli_pin(analysis_dir: Path) -> int:
    report = pin(analysis_dir)
    console.print(Text(f"pinned {report.n_numbers} numbers -> {report.lock_path}"))
    if report.previous:
        if not report.changed_inputs and not report.changed_numbers:
            console.print("no input and no number changed since the previous lock")
        if report.changed_inputs:
            print_table("inputs changed since the previous lock", report.changed_inputs, ("input", "pinned", "now"))
        if report.changed_numbers:
            print_table(f"{len(report.changed_numbers)} numbers changed since the previous lock (first 50)",
                        report.changed_numbers[:50], ("quantity", "pinned", "now"))
    return 0


def cli_rerun(analysis_dir: Path) -> int:
    report = rerun(analysis_dir)
    if report.environment_differences:
        print_table("environment differs from the lock (numbers compared within tolerance)",
                    report.environment_differences, ("package", "pinned", "now"))
    if report.lock_edited:
        console.print("[bold red]the lock's numbers digest does not match its numbers: the lock was edited by hand[/]")
    if report.drift:
        print_table(f"{len(report.drift)} of {report.n_numbers} numbers drifted", report.drift,
                    ("quantity", "pinned", "now", "difference", "tolerance"))
    if report.ok:
        how = "bit-identical" if report.exact else "within tolerance"
        console.print(f"[green]all {report.n_numbers} numbers match the lock ({how})[/]")
    return report.exit_code
