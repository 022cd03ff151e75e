"""CLI bodies of ``impactkit pin`` and ``impactkit rerun``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from impactkit.pin.lock import pin, rerun

# wide enough that quantity names print whole (greppable in logs), whatever the terminal
console = Console(highlight=False, width=max(Console().width, 180))


def _fmt(value) -> str:
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def cli_pin(analysis_dir: Path) -> int:
    report = pin(analysis_dir)
    console.print(f"pinned {report.n_numbers} numbers -> {report.lock_path}")
    if report.previous:
        if not report.changed_inputs and not report.changed_numbers:
            console.print("no input and no number changed since the previous lock")
        if report.changed_inputs:
            table = Table(title="inputs changed since the previous lock")
            for col in ("input", "pinned", "now"):
                table.add_column(col, overflow="fold")
            for row in report.changed_inputs:
                table.add_row(row["input"], _fmt(row["pinned"]), _fmt(row["now"]))
            console.print(table)
        if report.changed_numbers:
            table = Table(title=f"{len(report.changed_numbers)} numbers changed since the previous lock")
            for col in ("quantity", "pinned", "now"):
                table.add_column(col, overflow="fold")
            for row in report.changed_numbers[:50]:
                table.add_row(row["quantity"], _fmt(row["pinned"]), _fmt(row["now"]))
            console.print(table)
    return 0


def cli_rerun(analysis_dir: Path) -> int:
    report = rerun(analysis_dir)
    if report.environment_differences:
        table = Table(title="environment differs from the lock (numbers compared within tolerance)")
        for col in ("package", "pinned", "now"):
            table.add_column(col, overflow="fold")
        for row in report.environment_differences:
            table.add_row(row["package"], _fmt(row["pinned"]), _fmt(row["now"]))
        console.print(table)
    if report.lock_edited:
        console.print("[bold red]the lock's numbers digest does not match its numbers: the lock was edited by hand[/]")
    if report.drift:
        table = Table(title=f"{len(report.drift)} of {report.n_numbers} numbers drifted")
        for col in ("quantity", "pinned", "now", "difference", "tolerance"):
            table.add_column(col, overflow="fold")
        for row in report.drift:
            table.add_row(row["quantity"], _fmt(row["pinned"]), _fmt(row["now"]), _fmt(row["difference"]),
                          _fmt(row["tolerance"]))
        console.print(table)
    if report.ok:
        how = "bit-identical" if report.exact else "within tolerance"
        console.print(f"[green]all {report.n_numbers} numbers match the lock ({how})[/]")
    return report.exit_code
