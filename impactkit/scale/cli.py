"""``impactkit score``: print the scorecard, optionally write it as JSON."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from impactkit.atomic import write_json
from impactkit.errors import EXIT_OK, InputError


def parse_costs_option(values: list[str] | None) -> dict[str, Path]:
    """``["dairy=analyses/dairy/costs.toml", ...]`` -> ``{intervention_id: path}``."""
    out: dict[str, Path] = {}
    for value in values or []:
        ident, sep, path = value.partition("=")
        if not sep or not ident.strip() or not path.strip():
            raise InputError(f"--costs: expected INTERVENTION_ID=PATH, got {value!r}")
        if ident.strip() in out:
            raise InputError(f"--costs: intervention '{ident.strip()}' given twice")
        out[ident.strip()] = Path(path.strip())
    return out


def print_weight_flips(console: Console, tornado) -> None:
    """The one-at-a-time weight changes that would change the order (the tornado's data)."""
    if tornado is None or len(tornado) == 0:
        return
    table = Table(title=Text("Weight changes that flip the order (one weight at a time, others rescaled)"))
    for col in ("criterion", "weight", "first flip below", "first flip above", "what changes"):
        table.add_column(col, overflow="fold")
    for row in tornado.itertuples(index=False):
        below, above = getattr(row, "flip_weight_below", None), getattr(row, "flip_weight_above", None)
        if (below is None or below != below) and (above is None or above != above):
            continue
        fmt = (lambda v: "-" if v is None or v != v else f"{v:.3f}")
        table.add_row(Text(str(row.criterion)), Text(f"{row.weight:.3f}"), Text(fmt(below)), Text(fmt(above)),
                      Text(str(getattr(row, "first_swap", ""))))
    console.print(table)


def cli_score(portfolio: Path, json_out: Path | None, *, draws: int | None = None, seed: int | None = None,
              console: Console | None = None, costs: dict[str, Path] | None = None,
              estimates: dict | None = None, accounts: dict | None = None) -> int:
    """Score ``portfolio``; print a table (rank, intervention, score, P(rank 1), gates, bottleneck,
    graded SMS evidence level, government adoption level).

    Bad files raise :class:`impactkit.errors.SpecError` (exit 2, printed by the CLI wrapper).
    Names are shown as plain text (no rich markup), so any name round-trips. ``costs`` maps
    intervention ids to programme-accounts TOML files (:func:`impactkit.scale.accounts.load_accounts`);
    ``estimates`` and ``accounts`` are passed to :func:`impactkit.scale.score` as they are
    (the CLI fills them from linked analyses, :mod:`impactkit.analysis.link`).
    """
    from impactkit.scale.accounts import load_accounts
    from impactkit.scale.scorecard import score

    merged = dict(accounts or {})
    merged.update({ident: load_accounts(path) for ident, path in (costs or {}).items()})
    result = score(portfolio, estimates=estimates or None, draws=draws, seed=seed, costs=merged or None)
    from impactkit.console import make_console

    console = console or make_console()
    table = Table(title=Text(f"Scale readiness: {result.options.get('portfolio')}"))
    for col, justify in (("rank", "right"), ("intervention", "left"), ("score", "right"), ("P(rank 1)", "right"),
                         ("gates", "left"), ("bottleneck", "left"), ("SMS", "right"), ("gov 0-4", "right")):
        table.add_column(col, justify=justify, overflow="fold")
    for row in result.table.itertuples(index=False):
        if row.gates_passed:
            gates = "passed"
        else:
            parts = [f"failed: {row.failed_gates}"] if row.failed_gates else []
            parts += [f"uncertain: {row.uncertain_gates}"] if row.uncertain_gates else []
            gates = "; ".join(parts) + f" (P pass {row.p_pass_gates:.2f})"
        table.add_row(Text(str(row.rank)), Text(f"{row.intervention}\n{row.name}"), Text(f"{row.score_geometric:.3f}"),
                      Text(f"{row.p_rank_1:.2f}"), Text(gates), Text(str(row.bottleneck)), Text(str(row.evidence_level)),
                      Text(str(row.government_level)))
    console.print(table)
    print_weight_flips(console, result.tornado)
    for note in result.notes():
        console.print(Text(note))
    if json_out is not None:
        try:
            write_json(json_out, result.to_dict())
        except OSError as exc:
            raise InputError(f"{json_out}: cannot write the JSON output ({exc.strerror or type(exc).__name__})") from None
        console.print(Text(f"wrote {json_out}"))
    return EXIT_OK
