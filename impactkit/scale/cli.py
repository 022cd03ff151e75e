"""``impactkit score``: print the scorecard, optionally write it as JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def pm(p: float, se: float | None) -> str:
    """A probability with its Monte Carlo standard error: '0.52 +/- 0.008'."""
    if p is None or p != p:
        return "-"
    return f"{p:.3f} ± {se:.3f}" if se is not None and se == se else f"{p:.3f}"


def _fmt(v) -> str:
    return "-" if v is None or v != v else f"{v:.3f}"


def print_weight_flips(console: Console, tornado) -> None:
    """The one-at-a-time weight changes that would change the order, and every weight at which
    first place changes (the tornado's data)."""
    if tornado is None or len(tornado) == 0:
        return
    table = Table(title=Text("Weight changes that flip the order (one weight at a time, others rescaled)"))
    for col in ("criterion", "weight", "any flip below", "any flip above", "first place flips below",
                "first place flips above", "what changes first"):
        table.add_column(col, overflow="fold")
    for row in tornado.itertuples(index=False):
        cells = [getattr(row, name, None) for name in ("flip_weight_below", "flip_weight_above",
                                                        "top_flip_weight_below", "top_flip_weight_above")]
        if all(v is None or v != v for v in cells):
            continue
        table.add_row(Text(str(row.criterion)), Text(f"{row.weight:.3f}"), *(Text(_fmt(v)) for v in cells),
                      Text(str(getattr(row, "first_swap", ""))))
    console.print(table)


def ranking_table(result, title: str) -> Table:
    """Rank, gates passed, score, P(rank 1) +/- MC s.e., gates with P(pass) +/- s.e., bottleneck or data gap."""
    table = Table(title=Text(title))
    for col, justify in (("rank", "right"), ("intervention", "left"), ("gates passed", "right"), ("score", "right"),
                         ("P(rank 1) ± MC s.e.", "right"), ("gates", "left"), ("bottleneck / data gap", "left"),
                         ("SMS", "right"), ("Nesta", "right"), ("gov 0-4", "right")):
        table.add_column(col, justify=justify, overflow="fold")
    n_gates = len(result.floors) if result.floors else 6
    for row in result.table.itertuples(index=False):
        if row.gates_passed:
            gates = f"passed (P pass {pm(row.p_pass_gates, row.mcse_p_pass_gates)})"
        else:
            parts = [f"failed: {row.failed_gates}"] if row.failed_gates else []
            parts += [f"uncertain: {row.uncertain_gates}"] if row.uncertain_gates else []
            gates = "; ".join(parts) + f" (P pass all {pm(row.p_pass_gates, row.mcse_p_pass_gates)})"
        finding = getattr(row, "bottleneck_finding", "bottleneck")
        what = getattr(row, "measure_next", "") or str(row.bottleneck)
        label = f"DATA GAP: {what}" if finding == "data gap" else f"{row.bottleneck} -> {what}"
        name = f"{row.intervention}\n{row.name}"
        if getattr(row, "data_labels", ""):
            name += f"\n[{row.data_labels}]"
        if getattr(row, "plausibility_flags", ""):
            name += f"\nWARNING: {row.plausibility_flags}"
        table.add_row(Text(str(row.rank)), Text(name), Text(f"{row.n_gates_passed}/{n_gates}"),
                      Text(f"{row.score_geometric:.3f}"), Text(pm(row.p_rank_1, row.mcse_p_rank_1)), Text(gates),
                      Text(label), Text(str(row.evidence_level)), Text(str(row.nesta_level)),
                      Text(str(row.government_level)))
    return table


def report_only_table(frame) -> Table:
    table = Table(title=Text("View: REPORT ONLY (the intervention files' facts; no linked analysis, no accounts)"))
    for col in ("rank", "intervention", "gates passed", "score", "P(rank 1) ± MC s.e.", "failed gates", "SMS", "Nesta"):
        table.add_column(col, overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(Text(str(row.rank)), Text(str(row.intervention)), Text(str(row.n_gates_passed)),
                      Text(f"{row.score_geometric:.3f}"), Text(pm(row.p_rank_1, row.mcse_p_rank_1)),
                      Text(str(row.failed_gates or "-")), Text(str(row.evidence_level)), Text(str(row.nesta_level)))
    return table


def floor_table(frame) -> Table | None:
    if frame is None or len(frame) == 0:
        return None
    table = Table(title=Text("How the order moves with the criterion floor (rank by gates passed, then score)"))
    for col in frame.columns:
        table.add_column(col.replace("rank_", "").replace("_", " "), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(str(v)) for v in row))
    return table


def _q(values, fmt="{:.2f}") -> str:
    return "[" + ", ".join(fmt.format(v) for v in (values[0], values[2])) + "]"


def print_decision_tables(console: Console, result) -> None:
    """What a ministry asks: effect and BCR at scale (voltage), the budget by year and payer, the
    alternatives, readiness per location, and the single assumptions that change the recommendation."""
    for block in result.at_scale:
        ident = block["intervention"]
        label = block.get("data_labels") or ""
        t = Table(title=Text(f"At the scale being decided: {ident} ({block['scale_participants']:,.0f} participants)"
                             + (f" [{label}]" if label else "")))
        t.add_column("figure", overflow="fold")
        t.add_column("central", justify="right")
        t.add_column("5%-95%", justify="right")
        t.add_row(Text("voltage factor (share of the pilot effect kept) [ASSUMPTION]"),
                  Text(f"{block['voltage_factor']:.2f}"), Text(_q(block["voltage_factor_q"])))
        t.add_row(Text("yearly benefit per participant: pilot -> at scale"),
                  Text(f"{block['benefit_pilot']:,.0f} -> {block['benefit_at_scale']:,.0f}"),
                  Text(_q(block["benefit_at_scale_q"], "{:,.0f}")))
        t.add_row(Text("cost per participant at scale (PV; fixed + variable + step)"),
                  Text(f"{block['cost_per_participant_at_scale']:,.0f}"),
                  Text(_q(block["cost_per_participant_at_scale_q"], "{:,.0f}")))
        t.add_row(Text("BCR at scale"), Text(f"{block['bcr_at_scale']:.2f}"), Text(_q(block["bcr_at_scale_q"])))
        t.add_row(Text("P(BCR at scale < 1) ± MC s.e."), Text(pm(block["p_bcr_at_scale_below_1"],
                                                              block["mcse_p_bcr_at_scale_below_1"])), Text(""))
        t.add_row(Text("cost per unit of benefit at scale"), Text(f"{block['cost_per_unit_benefit_at_scale']:.3f}"), Text(""))
        if block.get("budget_nominal") is not None:
            years = ", ".join(f"year {y}: {v:,.0f}" for y, v in block["by_year"].items())
            payers = ", ".join(f"{p}: {v:,.0f}" for p, v in block["by_payer"].items())
            t.add_row(Text("total budget at scale (nominal; PV)"),
                      Text(f"{block['budget_nominal']:,.0f}; {block['budget_pv']:,.0f}"), Text(""))
            t.add_row(Text("by year"), Text(years), Text(""))
            share = block.get("government_share")
            t.add_row(Text("by payer (government share)"),
                      Text(payers + ("" if share is None else f" ({share:.0%})")), Text(""))
        console.print(t)
        for flag in block.get("flags") or []:
            console.print(Text(f"WARNING {ident}: {flag}"))
        console.print(Text(f"Assumptions: {block['assumptions']}."))
    if result.alternatives is not None and len(result.alternatives):
        for focus, frame in result.alternatives.groupby("focus", sort=False):
            t = Table(title=Text(f"Alternatives for the same money: {focus} (benefit per unit of budget)"))
            for col in ("option", "kind", "BCR", "BCR range", f"{focus} x option", "rests on"):
                t.add_column(col, overflow="fold")
            for row in frame.itertuples(index=False):
                rng_ = "-" if row.bcr_low != row.bcr_low or row.bcr_low is None else f"[{row.bcr_low:.2f}, {row.bcr_high:.2f}]"
                t.add_row(Text(str(row.option)), Text(str(row.kind)), Text(_fmt(row.bcr)), Text(rng_),
                          Text(_fmt(row.focus_times_option)), Text(str(row.rests_on)))
            console.print(t)
    if result.locations is not None and len(result.locations):
        t = Table(title=Text("Where to scale: readiness per location (weakest component; strategic option)"))
        for col in ("intervention", "location", "readiness x use", "gate", "bottleneck", "finding", "option"):
            t.add_column(col, overflow="fold")
        for row in result.locations.itertuples(index=False):
            t.add_row(Text(str(row.intervention)), Text(str(row.location) + (" (home)" if row.home else "")),
                      Text(f"{row.scaling_readiness_low:g}-{row.scaling_readiness_high:g}"), Text(str(row.readiness_gate)),
                      Text(str(row.bottleneck)), Text("data gap" if row.data_gap else "bottleneck"),
                      Text(str(row.strategic_option)))
        console.print(t)
    flips = result.assumption_flips
    if flips is not None:
        t = Table(title=Text("Single assumptions that change the recommendation (one input at its low/high end)"))
        for col in ("intervention", "input", "end", "value", "first place becomes", "top's verdict changes"):
            t.add_column(col, overflow="fold")
        for row in flips.itertuples(index=False):
            t.add_row(Text(str(row.intervention)), Text(str(row.input)), Text(str(row.end)), Text(f"{row.value:g}"),
                      Text(str(row.first_place) if row.first_place_changes else "(unchanged)"),
                      Text("yes" if row.top_verdict_changes else "no"))
        if len(flips) == 0:
            console.print(Text("No single input, moved over its range, changes first place or the top's gate verdict."))
        else:
            console.print(t)


def cli_score(portfolio: Path, json_out: Path | None, *, draws: int | None = None, seed: int | None = None,
              console: Console | None = None, costs: dict[str, Path] | None = None,
              estimates: dict | None = None, accounts: dict | None = None, forbidden: list[str] | None = None,
              simulator: Callable | None = None) -> int:
    """Score ``portfolio``; print the ranking (rank, gates passed, score, P(rank 1) with its Monte
    Carlo standard error, gates, bottleneck or data gap, graded SMS, Nesta, government level),
    labelled with its view: *linked* (linked analyses' estimates and accounts, each labelled with
    what it rests on: a simulated panel, illustrative accounts) beside *report only* (the
    intervention files alone, as ``--no-linked`` gives).

    Bad files raise :class:`impactkit.errors.SpecError` (exit 2, printed by the CLI wrapper).
    Names are shown as plain text (no rich markup), so any name round-trips. ``costs`` maps
    intervention ids to programme-accounts TOML files (:func:`impactkit.scale.accounts.load_accounts`);
    ``estimates`` and ``accounts`` are passed to :func:`impactkit.scale.score` as they are
    (the CLI fills them from linked analyses, :mod:`impactkit.analysis.link`); ``simulator`` is the
    Monte Carlo (default in-process; the CLI passes the Dask one when a linked analysis is on Dask).
    """
    from impactkit.privacy import guard_text
    from impactkit.scale.accounts import load_accounts
    from impactkit.scale.scorecard import score

    merged = dict(accounts or {})
    merged.update({ident: load_accounts(path) for ident, path in (costs or {}).items()})
    result = score(portfolio, estimates=estimates or None, draws=draws, seed=seed, costs=merged or None,
                   simulator=simulator)
    # personal values of linked analyses never reach the printed table
    guard_text(" ".join(result.table.astype(str).to_numpy().ravel()), forbidden or [], "the scale table")
    from impactkit.console import make_console

    console = console or make_console()
    view = ("View: LINKED (linked analyses' estimates and programme accounts; see the labels)"
            if result.view == "linked" else "View: REPORT ONLY (the intervention files' facts; --no-linked)")
    console.print(ranking_table(result, f"Scale readiness: {result.options.get('portfolio')}. {view}"))
    if result.report_only is not None:
        console.print(report_only_table(result.report_only))
    floors = floor_table(result.floor_sensitivity)
    if floors is not None:
        console.print(floors)
    print_weight_flips(console, result.tornado)
    print_decision_tables(console, result)
    for note in result.notes():
        console.print(Text(note))
    if json_out is not None:
        from impactkit.atomic import dumps_json, write_text

        text = dumps_json(result.to_dict())
        guard_text(text, forbidden or [], json_out)  # personal values of linked analyses never reach it
        try:
            write_text(json_out, text)
        except OSError as exc:
            raise InputError(f"{json_out}: cannot write the JSON output ({exc.strerror or type(exc).__name__})") from None
        console.print(Text(f"wrote {json_out}"))
    return EXIT_OK
