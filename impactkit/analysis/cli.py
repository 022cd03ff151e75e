"""Body of ``impactkit estimate``: run the analysis, print the estimates, write the JSON."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from impactkit.atomic import dumps_json, write_text


def _num(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def cli_estimate(analysis_dir: Path, json_out: Path | None) -> int:
    from impactkit.analysis.run import run_analysis

    from impactkit.analysis.spec import load_analysis
    from impactkit.privacy import analysis_personal_values, guard_text

    results = run_analysis(analysis_dir)
    forbidden = analysis_personal_values(load_analysis(analysis_dir))  # impactkit.privacy: every output
    console = Console(highlight=False, width=max(Console().width, 120))
    head = results["headline"]
    table = Table(title=Text(f"{results['analysis']['title']}: estimates ({head['outcome']})"))
    for col in ("estimator", "estimate", "std.error", "95% CI", "p-value", "n"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    for row in results["estimators"]:
        cells = (row["estimator"], _num(row["estimate"]), _num(row["std_error"]),
                 f"[{_num(row['conf_low'])}, {_num(row['conf_high'])}]", _num(row["p_value"], 4), str(row.get("n") or ""))
        guard_text(" ".join(cells), forbidden, "the estimates table")
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    if head.get("percent") is not None:
        console.print(Text(f"Headline ({head['estimator']}): {head['percent'] * 100:+.0f}% "
                      f"(95% CI {head['percent_low'] * 100:+.0f}% to {head['percent_high'] * 100:+.0f}%), "
                      f"about {results['analysis']['currency']} {head['money_per_household']:,.0f} per "
                      f"{results['analysis']['unit_label']} per year."))
    if json_out is not None:
        text = dumps_json(results)
        guard_text(text, forbidden, json_out)
        write_text(json_out, text)
        console.print(Text(f"wrote {json_out}"))
    return 0
