"""CLI bodies of ``impactkit pin`` and ``impactkit rerun``.

Output is written for a reviewer at any terminal width: the first line is the verdict with the
largest absolute and relative differences; then only what needs attention (numbers beyond
tolerance, largest first, capped), then provenance differences as information. Tables take the
terminal's width (no forced widths); ``--json OUT`` holds the full comparison.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from impactkit.atomic import write_json
from impactkit.pin.lock import PinReport, RerunReport, pin, rerun
from impactkit.pin.numbers import Comparison

SHOWN = 20  # rows of a drift table; the rest are counted (and in --json)
_HEX = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{20,}\b")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _g(value) -> str:
    """A number at the precision a drift needs to be seen, a hash shortened, text verbatim."""
    if isinstance(value, float):
        return f"{value:.12g}"
    if value is None:
        return ""
    return _HEX.sub(r"\1…", str(value))


def _rel(row: dict) -> str:
    rel = row.get("relative")
    return "missing" if rel is None else f"{rel:.2g}"


def _table(console: Console, rows: list[dict], columns: dict[str, callable], title: str | None = None) -> None:
    table = Table(title=title, title_justify="left", expand=False, show_edge=False, pad_edge=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text(show(row)) for show in columns.values()))  # names printed verbatim
    console.print(table)


def _drift_table(console: Console, comparison: Comparison, hint: str) -> None:
    rows = comparison.beyond
    _table(console, rows[:SHOWN], {"quantity": lambda r: r["quantity"], "pinned": lambda r: _g(r["pinned"]),
                                   "now": lambda r: _g(r["now"]), "rel. diff": _rel})
    if len(rows) > SHOWN:
        console.print(Text(f"... and {len(rows) - SHOWN} more beyond tolerance{hint}"))


def _summary(comparison: Comparison) -> str:
    return f"max diff {comparison.max_abs:.2g}, rel {comparison.max_rel:.2g}"


def _bit_identity(comparison: Comparison) -> str:
    if comparison.bit_identical:
        return "bit-identical: yes"
    return (f"bit-identical: no ({len(comparison.differing)} of {comparison.n_numbers} numbers differ"
            + (", all within tolerance)" if comparison.ok else ")"))


def cli_pin(analysis_dir: Path, check: bool = False) -> int:
    report = pin(analysis_dir, check=check)
    console = _console()
    if check:
        verdict = "re-pin needed" if report.needs_repin else "no re-pin needed"
        console.print(Text(f"{verdict}: {report.n_numbers} numbers checked against {report.lock_path} (nothing written)"))
    else:
        console.print(Text(f"pinned {report.n_numbers} numbers -> {report.lock_path}"))
    _explain_pin(console, report)
    return 1 if check and report.needs_repin else 0


def _explain_pin(console: Console, report: PinReport) -> None:
    if not report.previous:
        console.print("there was no usable previous lock")
        return
    if report.changed_inputs:
        _table(console, report.changed_inputs, {"input": lambda r: r["input"], "pinned": lambda r: _g(r["pinned"]),
                                                "now": lambda r: _g(r["now"])}, title="inputs changed since the lock")
    comparison = report.comparison
    if comparison is not None and not comparison.ok:
        console.print(Text(f"{len(comparison.beyond)} numbers changed beyond tolerance since the lock ({_summary(comparison)})"))
        _drift_table(console, comparison, "")
    elif comparison is not None:
        console.print(Text(f"every number within tolerance of the lock; {_bit_identity(comparison)}"))


def cli_rerun(analysis_dir: Path, json_out: Path | None = None, twice: bool = False) -> int:
    report = rerun(analysis_dir, twice=twice)
    console = _console()
    c = report.comparison
    if c.ok:
        console.print(Text(f"rerun OK: {report.n_numbers} numbers within tolerance ({_summary(c)})", style="green"))
    else:
        console.print(Text(f"rerun FAILED: {len(c.beyond)} of {c.n_numbers} numbers beyond tolerance ({_summary(c)})",
                           style="bold red"))
    console.print(Text(_bit_identity(c)))
    if not c.ok:
        console.print(Text(f"re-pin needed if the change was intended: impactkit pin {analysis_dir}"))
        _drift_table(console, c, " (see --json OUT)" if json_out is None else f" (all in {json_out})")
    if report.between_runs is not None:
        _explain_twice(console, report)
    t = report.tolerances
    console.print(Text(f"tolerance: rtol {t['rtol']:g}, atol {t['atol']:g} "
                       f"(Monte Carlo: rtol {t['monte_carlo_rtol']:g}, atol {t['monte_carlo_atol']:g})"))
    if report.presentation_changes:
        console.print(Text(f"pack templates changed since the pin ({len(report.presentation_changes)}): they shape "
                           "the pack, not the numbers"))
    if report.environment_differences:
        _table(console, report.environment_differences, {"what": lambda r: r["what"], "pinned": lambda r: _g(r["pinned"]),
                                                         "now": lambda r: _g(r["now"])},
               title=_differs(len(report.environment_differences)))
    if json_out is not None:
        write_json(json_out, report.to_dict())
    return report.exit_code


def _differs(n: int) -> str:
    return f"this machine differs from the lock in {n} way{'s' if n != 1 else ''} (provenance, not a verdict)"


def _explain_twice(console: Console, report: RerunReport) -> None:
    b = report.between_runs
    head = "determinism, two fresh processes with 1 and 2 threads: "
    if b.bit_identical:
        console.print(Text(head + "bit-identical"))
    elif b.ok:
        console.print(Text(head + f"{len(b.differing)} numbers differ in their last bits, all within tolerance"))
    else:
        console.print(Text(head + f"{len(b.beyond)} numbers differ beyond tolerance (non-deterministic)", style="bold red"))
        _drift_table(console, b, "")
