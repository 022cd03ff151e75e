"""Body of ``impactkit estimate``: run the analysis, print the estimates, write the JSON."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from impactkit.atomic import dumps_json, write_text
from impactkit.console import is_quiet, make_console, show_warning


def _num(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _p(value) -> str:
    return "" if value is None else "<0.001" if value < 0.001 else f"{value:.3f}"


def headline_text(results: dict) -> str:
    """The headline effect in its right terms (percent, percentage points, units, money)."""
    from impactkit.analysis.outcome import describe_effect

    head, a = results["headline"], results["analysis"]
    size, interval = describe_effect(head, head.get("scale") or "level", units=a.get("outcome_units") or "",
                                     currency=a.get("currency"))
    text = f"{size} (95% CI {interval})"
    if head.get("money_per_unit") is not None and a.get("currency"):
        text += f", about {a['currency']} {head['money_per_unit']:,.0f} per {a.get('unit_label') or 'unit'}"
    return text + "."


def cli_estimate(analysis_dir: Path, json_out: Path | None, console: Console | None = None) -> int:
    from impactkit.analysis.run import run_analysis
    from impactkit.console import progress

    with progress(f"estimate {analysis_dir}") as update:
        results = run_analysis(analysis_dir, progress=update)
    return show_estimates(analysis_dir, results, json_out, console)


def show_estimates(analysis_dir: Path, results: dict, json_out: Path | None, console: Console | None = None) -> int:
    """Print the estimates of a results document (any engine) and write its JSON; exit code 0."""
    from impactkit.analysis.personal import analysis_personal_values
    from impactkit.analysis.spec import load_analysis
    from impactkit.privacy import guard_text

    text = dumps_json(results)
    # impactkit.privacy: no personal value reaches the table or the JSON
    guard_text(text, analysis_personal_values(load_analysis(analysis_dir)), json_out or "the estimates")
    print_estimates(results, console or make_console())
    if json_out is not None:
        write_text(json_out, text)
        if not is_quiet():
            (console or make_console()).print(Text(f"wrote {json_out}"))
    return 0


SHORT_NAMES = {"cs": "Callaway-Sant'Anna", "twfe": "TWFE", "sa": "Sun-Abraham", "2x2": "2x2 DiD",
               "ancova": "ANCOVA", "iv": "2SLS (LATE)"}


def print_estimates(results: dict, console: Console) -> None:
    """The estimates table (cells wrap to the console's width), the headline, each warning once.

    Estimates are shown in the units the header names: shares in percentage points (x 100).
    """
    from impactkit.analysis.outcome import table_factor

    head = results["headline"]
    factor = table_factor(head.get("scale") or "")
    digits = 2 if factor != 1 else 3
    units = head.get("units") or ""
    in_units = f" in {units}" if units else ""
    table = Table(title=Text(f"{results['analysis']['title']}: estimates{in_units} ({head['outcome']})"),
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    names = [SHORT_NAMES.get(r["method"], r["estimator"]) for r in results["estimators"]]
    table.add_column("estimator", justify="left", overflow="fold", min_width=min(max(map(len, names), default=9), 18))
    for col in ("estimate", "s.e.", "95% CI", "p", "units", "rows"):
        table.add_column(col, justify="right", no_wrap=True)

    def x(row: dict, key: str) -> str:
        value = row.get(key)
        return _num(None if value is None else factor * value, digits)
    for row in results["estimators"]:
        cells = (SHORT_NAMES.get(row["method"], row["estimator"]), x(row, "estimate"), x(row, "std_error"),
                 f"[{x(row, 'conf_low')}, {x(row, 'conf_high')}]", _p(row["p_value"]),
                 str(row.get("n_units") or ""), str(row.get("n_obs") or ""))
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    if head.get("estimate") is not None:
        console.print(Text(f"Headline ({head['estimator']}): {headline_text(results)}"))
    for note in results.get("warnings") or []:
        show_warning(note)
