"""Tables of the evidence pack as pandoc pipe tables.

Pipe tables are the one table syntax that Quarto, pandoc's HTML writer and pandoc's
Typst writer all render cleanly; tables stay narrow (at most seven short columns) so
that they fit an A4 page. Every cell from data is escaped with
:func:`impactkit.pack.escape.md`; every number is formatted with
:mod:`impactkit.pack.format`; cells resting on fewer than ``min_cell`` units read
``<10, suppressed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from impactkit.pack import format as fmt
from impactkit.pack.escape import Markdown, md
from impactkit.privacy import is_small, min_cell_of, must_suppress, suppressed_label

MAX_RULE_ROWS = 20
ENGINES = {"gx": "Great Expectations", "great_expectations": "Great Expectations", "impactkit": "impactkit"}


def pipe_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None,
               caption: str | None = None) -> Markdown:
    """A pandoc pipe table; headers and cells are escaped unless already :class:`Markdown`.

    ``align`` holds one letter per column (``l``, ``r``, ``c``); default: first column
    left, others right. The caption (``: caption``) is escaped too.
    """
    n = len(headers)
    align = align or ("l" + "r" * (n - 1))
    if len(align) != n or any(len(r) != n for r in rows) or set(align) - set("lrc"):
        raise ValueError("pipe_table: every row needs one cell per header")
    head = [md(h) for h in headers]
    body = [[md(c) if c not in (None, "") else fmt.MISSING for c in row] for row in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(_rule(a, w) for a, w in zip(align, _widths(head, body))) + "|"]
    for row in body:
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines)
    if caption:
        text += "\n\n: " + md(caption)
    return Markdown(text)


def _widths(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[int]:
    """Dashes per column: proportional to the longest cell (pandoc's relative widths when a
    table is wider than the page), headers counting as their longest word."""
    widths = []
    for j, h in enumerate(head):
        longest_cell = max((len(row[j]) for row in body), default=0)
        widths.append(min(max(3, longest_cell, min(len(str(h)), 14)), 40))
    return widths


def _rule(align: str, width: int) -> str:
    rule = "-" * width
    if align == "l":
        return ":" + rule
    if align == "r":
        return rule + ":"
    return ":" + rule + ":"


def _estimate_cells(row: Mapping[str, Any], digits: int = 3, factor: float = 1.0) -> list[str]:
    def x(key: str) -> Any:
        value = row.get(key)
        return value if value is None or factor == 1.0 else factor * float(value)
    d = 1 if factor != 1.0 else digits
    return [fmt.number(x("estimate"), d), fmt.number(x("std_error"), d),
            fmt.interval(x("conf_low"), x("conf_high"), d), fmt.p_value(row.get("p_value"))]


def effect_scale_of(results: Mapping[str, Any]) -> tuple[float, str]:
    """``(factor, header)`` for estimate columns of the primary outcome: shares are shown in
    percentage points (x 100), log outcomes in log points, levels in their units."""
    scale = str((results.get("headline") or {}).get("scale") or (results.get("analysis") or {}).get("effect_scale")
                or "")
    units = str((results.get("headline") or {}).get("units") or (results.get("analysis") or {}).get("effect_units")
                or "")
    factor = 100.0 if scale == "share" else 1.0
    return factor, (f"Estimate ({units})" if units else "Estimate")



def validation_table(results: Mapping[str, Any]) -> Markdown | None:
    """Every rule when there are at most ``MAX_RULE_ROWS``; else the failed rules and a count."""
    rows = (results.get("validation") or {}).get("rules") or []
    if not rows:
        return None
    failed = [r for r in rows if not r.get("success")]
    if not failed and len(rows) > MAX_RULE_ROWS:
        return None  # the sentence above the table says every rule passed
    shown = sorted(rows, key=lambda r: bool(r.get("success"))) if len(rows) <= MAX_RULE_ROWS else failed
    body = [[r.get("rule"), r.get("column"), ENGINES.get(str(r.get("engine")), r.get("engine") or fmt.MISSING),
             Markdown("passed") if r.get("success") else Markdown("**failed**"),
             fmt.integer(r.get("failed_rows")), fmt.share(r.get("failed_share"), 1)] for r in shown]
    if len(shown) < len(rows):
        body.append([f"{len(rows) - len(shown):,} other rules", Markdown("(all columns)"), fmt.MISSING,
                     Markdown("passed"), "0", "0.0%"])
    return pipe_table(["Rule", "Column", "Engine", "Result", "Failing rows", "Share"], body, "lllcrr")


def sample_flow_table(results: Mapping[str, Any]) -> Markdown | None:
    """Units per wave (rows) by arm (columns); small cells suppressed."""
    rows = (results.get("data") or {}).get("sample_flow") or []
    if not rows:
        return None
    min_cell = min_cell_of(results)
    waves = sorted({r["wave"] for r in rows}, key=lambda w: str(w))
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    cell = {(r["wave"], r["arm"]): (None if r.get("suppressed") else r.get("units")) for r in rows}
    flagged = {(r["wave"], r["arm"]) for r in rows if r.get("suppressed")}
    body = []
    for w in waves:
        line: list[Any] = [str(w)]
        for a in arms:
            u = cell.get((w, a))
            small = (w, a) in flagged or is_small(u, min_cell)
            line.append(suppressed_label(min_cell) if small else fmt.integer(u))
        body.append(line)
    return pipe_table(["Wave"] + [f"{a} (units)" for a in arms], body)


def attrition_table(results: Mapping[str, Any]) -> Markdown | None:
    """Attrition by arm (``arm`` rows) or by wave with both arms' rates (``wave`` rows)."""
    rows = (results.get("attrition") or {}).get("rows") or []
    if not rows:
        return None
    min_cell = min_cell_of(results)
    if "arm" not in rows[0] and "rate_control" in rows[0]:
        body = []
        for r in rows:
            small = is_small(r.get("n_control"), min_cell) or is_small(r.get("n_treated"), min_cell)
            if small or r.get("suppressed"):
                body.append([r.get("wave"), suppressed_label(min_cell)] + [fmt.MISSING] * 3)
                continue
            body.append([r.get("wave"), fmt.share(r.get("rate_control"), 1), fmt.share(r.get("rate_treated"), 1),
                         fmt.signed(100 * float(r["estimate"]), 1) + " pp" if r.get("estimate") is not None
                         else fmt.MISSING, fmt.p_value(r.get("p_value"))])
        return pipe_table(["Wave", "Attrition, comparison", "Attrition, treated", "Difference", "p-value"], body)
    body = []
    for r in rows:
        if is_small(r.get("baseline_units"), min_cell):
            body.append([r.get("arm"), suppressed_label(min_cell), fmt.MISSING, fmt.MISSING])
        else:
            body.append([r.get("arm"), fmt.integer(r.get("baseline_units")), fmt.integer(r.get("final_units")),
                         fmt.share(r.get("attrition_rate"), 1)])
    return pipe_table(["Arm", "Baseline units", "Final-wave units", "Attrition"], body)


def suppressible_table(results: Mapping[str, Any], section: str, label_key: str, headers: Sequence[str],
                       cells: Callable[[Mapping[str, Any]], list[Any]],
                       hidden: Callable[[str], list[Any]]) -> Markdown | None:
    """One line per row of ``results[section]["rows"]``: its ``label_key``, then ``cells(row)``,
    or ``hidden(suppressed label)`` when the row rests on fewer than ``min_cell`` units."""
    rows = (results.get(section) or {}).get("rows") or []
    if not rows:
        return None
    min_cell = min_cell_of(results)
    label = suppressed_label(min_cell)
    body = [[r.get(label_key)] + (hidden(label) if must_suppress(r, "n_units" if "n_units" in r else "n", min_cell)
                                  else cells(r)) for r in rows]
    return pipe_table(headers, body)


def balance_table(results: Mapping[str, Any]) -> Markdown | None:
    return suppressible_table(
        results, "balance", "covariate",
        ["Baseline covariate", "Treated mean", "Control mean", "Difference", "Normalised diff.", "p-value"],
        lambda r: [fmt.number(r.get("mean_treated"), 2), fmt.number(r.get("mean_control"), 2),
                   fmt.number(r.get("difference"), 2), fmt.number(r.get("normalized_difference"), 2),
                   fmt.p_value(r.get("p_value"))],
        lambda label: [label] + [fmt.MISSING] * 4)


def estimator_label(row: Mapping[str, Any]) -> str:
    """The human name of an estimator row: the longer of ``estimator`` and ``method``."""
    names = [str(row[k]) for k in ("estimator", "method") if row.get(k)]
    return max(names, key=len) if names else fmt.MISSING


def estimators_table(results: Mapping[str, Any]) -> Markdown | None:
    rows = results.get("estimators") or []
    if not rows:
        return None
    factor, header = effect_scale_of(results)
    body = [[estimator_label(r)] + _estimate_cells(r, factor=factor)
            + [fmt.integer(r.get("n_units")), fmt.integer(r.get("n_obs", r.get("n")))] for r in rows]
    return pipe_table(["Estimator", header, "Std. error", "95% CI", "p-value", "Units", "Rows (unit-periods)"],
                      body)


def estimator_notes(results: Mapping[str, Any]) -> list[Markdown]:
    return [Markdown(f"{md(estimator_label(r))}: {md(r['note'])}")
            for r in results.get("estimators") or [] if r.get("note")]


def event_study_table(results: Mapping[str, Any]) -> Markdown | None:
    rows = sorted((results.get("event_study") or {}).get("rows") or [], key=lambda r: r["event_time"])
    if not rows:
        return None
    factor, header = effect_scale_of(results)
    d = 1 if factor != 1.0 else 3

    def x(r: Mapping[str, Any], key: str) -> Any:
        return None if r.get(key) is None else factor * float(r[key])
    body = [[fmt.signed(r["event_time"], 0) if r["event_time"] else "0", fmt.number(x(r, "estimate"), d),
             fmt.number(x(r, "std_error"), d), fmt.interval(x(r, "conf_low"), x(r, "conf_high"), d),
             fmt.interval(x(r, "band_low"), x(r, "band_high"), d)] for r in rows]
    return pipe_table(["Event time", header, "Std. error", "Pointwise 95% CI", "Uniform 95% band"], body)


def is_difference_row(row: Mapping[str, Any]) -> bool:
    """A heterogeneity row holding the between-group difference (``difference ...``)."""
    return str(row.get("subgroup") or "").strip().lower().startswith("difference")


def heterogeneity_table(results: Mapping[str, Any]) -> Markdown | None:
    factor, header = effect_scale_of(results)
    return suppressible_table(
        results, "heterogeneity", "subgroup", ["Subgroup", header, "Std. error", "95% CI", "p-value", "Units"],
        lambda r: _estimate_cells(r, factor=factor) + [fmt.integer(r.get("n_units", r.get("n")))],
        lambda label: [label, fmt.MISSING, fmt.MISSING, fmt.MISSING, label])


def multiple_outcomes_table(results: Mapping[str, Any]) -> Markdown | None:
    rows = results.get("multiple_outcomes") or []
    if not rows:
        return None
    body = [[r.get("outcome"), fmt.number(r.get("estimate"), 3), fmt.p_value(r.get("p_value")),
             fmt.p_value(r.get("holm")), fmt.p_value(r.get("romano_wolf")), fmt.p_value(r.get("westfall_young")),
             fmt.p_value(r.get("sharpened_q"))] for r in rows]
    return pipe_table(["Outcome", "Estimate", "p (naive)", "Holm", "Romano-Wolf", "Westfall-Young",
                       "Sharpened q"], body)


def iv_table(results: Mapping[str, Any]) -> Markdown | None:
    iv = results.get("iv") or {}
    parts = [("Intention to treat (reduced form)", iv.get("itt")), ("First stage (take-up)", iv.get("first_stage")),
             ("Effect on users (LATE, 2SLS)", iv.get("late"))]
    body = [[label] + _estimate_cells(row) for label, row in parts if row]
    if not body:
        return None
    return pipe_table(["Stage", "Estimate", "Std. error", "95% CI", "p-value"], body)


def ar_set_text(ar: Mapping[str, Any]) -> str:
    """An Anderson-Rubin set as text: ``[1.420, 1.599]``, a union of pieces, "unbounded"...

    Infinite endpoints (``"inf"``/``"-inf"`` in the JSON) are written as unbounded rays.
    """
    kind = ar.get("kind")
    if kind == "empty":
        return "empty (the model is rejected at every value)"
    if kind == "whole line":
        return "unbounded: the whole real line (instrument too weak to say anything)"
    pieces = ar.get("intervals") or ([[ar.get("low"), ar.get("high")]] if ar.get("low") is not None else [])
    if not pieces:
        return fmt.MISSING

    def end(value: Any) -> str:
        if value in ("inf", float("inf")):
            return "+inf"
        if value in ("-inf", float("-inf")):
            return "-inf"
        return fmt.number(value, 3)

    text = " U ".join(f"[{end(a)}, {end(b)}]" for a, b in pieces)
    return f"{text} (unbounded)" if "inf" in text else text


def weak_iv_table(results: Mapping[str, Any]) -> Markdown | None:
    weak = (results.get("iv") or {}).get("weak") or {}
    if not weak:
        return None
    ar_text = ar_set_text(weak.get("ar_set") or {})
    body = [["Kleibergen-Paap rk Wald F", fmt.number(weak.get("kp_f"), 1)],
            ["Effective F (Montiel Olea-Pflueger)", fmt.number(weak.get("effective_f"), 1)],
            ["Critical value, effective F (5%, tau = 10%)", fmt.number(weak.get("effective_f_critical"), 1)],
            ["Anderson-Rubin 95% set for the LATE", ar_text]]
    return pipe_table(["Weak-instrument diagnostic", "Value"], body)


def complier_table(results: Mapping[str, Any]) -> Markdown | None:
    rows = (results.get("iv") or {}).get("complier_means") or []
    if not rows:
        return None
    body = [[r.get("covariate"), fmt.number(r.get("compliers"), 2), fmt.number(r.get("population"), 2)] for r in rows]
    plural = (results.get("analysis") or {}).get("unit_plural") or "units"
    return pipe_table(["Characteristic", "Compliers (users)", f"All {plural}"], body)


def bacon_table(results: Mapping[str, Any]) -> Markdown | None:
    rows = results.get("bacon") or []
    if not rows:
        return None
    body = [[r.get("comparison"), fmt.share(r.get("weight"), 1), fmt.number(r.get("estimate"), 3)] for r in rows]
    return pipe_table(["2x2 comparison (Goodman-Bacon)", "Weight in TWFE", "Estimate"], body)


def cost_table(results: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> Markdown | None:
    """Cost-effectiveness figures, each with its range (``*_low``/``*_high``) when given.

    ``labels`` maps a row name to honesty labels (already Markdown) shown beside its value.
    """
    cost = results.get("cost") or {}
    if not cost or not any(cost.get(k) is not None for k in ("cost_per_participant_pilot", "cost_per_participant_scale",
                                                              "cost_per_unit_impact", "bcr", "npv")):
        return None
    cur = cost.get("currency") or (results.get("analysis") or {}).get("currency")
    year = cost.get("year") or (results.get("analysis") or {}).get("currency_year")

    def money_range(key: str) -> str:
        return fmt.interval(cost.get(f"{key}_low"), cost.get(f"{key}_high"), fmt=fmt.integer)

    def number_range(key: str, digits: int) -> str:
        return fmt.interval(cost.get(f"{key}_low"), cost.get(f"{key}_high"), digits)

    unit = cost.get("impact_unit") or f"{cur or ''} 1 of yearly benefit"
    rows = [
        ("Cost per participant, pilot", fmt.money(cost.get("cost_per_participant_pilot"), cur, year),
         money_range("cost_per_participant_pilot")),
        ("Cost per participant, at scale", fmt.money(cost.get("cost_per_participant_scale"), cur, year),
         money_range("cost_per_participant_scale")),
        ("Yearly benefit per participant", fmt.money(cost.get("benefit_per_participant_year"), cur, year),
         money_range("benefit_per_participant_year")),
        (f"Cost per unit of impact ({unit})", fmt.number(cost.get("cost_per_unit_impact"), 3),
         number_range("cost_per_unit_impact", 3)),
        ("Benefit-cost ratio", fmt.number(cost.get("bcr"), 1), number_range("bcr", 1)),
        ("Net present value", fmt.money(cost.get("npv"), cur, year), money_range("npv")),
        ("Internal rate of return", fmt.share(cost.get("irr"), 1), fmt.MISSING),
    ]
    labels = labels or {}
    body = [[label, Markdown(f"{md(value)} {labels[label]}") if labels.get(label) else value, rng]
            for label, value, rng in rows if value != fmt.MISSING]
    table = pipe_table(["Cost-effectiveness", "Value", "Range"], body, "lrr")
    notes = []
    if cost.get("discount_rate") is not None:
        notes.append(f"discount rate {fmt.share(cost['discount_rate'], 1)}")
    if cost.get("horizon_years") is not None:
        notes.append(f"horizon {fmt.integer(cost['horizon_years'])} years")
    for key, label in (("cost_source", "costs"), ("benefit_source", "benefits")):
        if cost.get(key):
            notes.append(f"{label}: {cost[key]}")
    if notes:
        table = Markdown(table + "\n\n: " + md("Cost-effectiveness (" + "; ".join(notes) + ")."))
    return table


def scorecard_table(results: Mapping[str, Any]) -> Markdown | None:
    ranking = sorted((results.get("scale") or {}).get("ranking") or [], key=lambda r: r.get("rank") or 0)
    if not ranking:
        return None
    body = []
    for r in ranking:
        failed = r.get("failed_gates") or []
        body.append([fmt.integer(r.get("rank")), r.get("name") or r.get("intervention"),
                     fmt.number(r.get("score_geometric"), 2), fmt.share(r.get("p_rank_1")),
                     fmt.share(r.get("p_pass_gates")), ", ".join(_words(g) for g in failed) if failed else "none",
                     r.get("bottleneck") or fmt.MISSING])
    return pipe_table(["Rank", "Intervention", "Score", "P(rank 1)", "P(pass gates)", "Failed gates",
                       "Bottleneck"], body, "rlrrrll")


def scale_detail_table(results: Mapping[str, Any]) -> Markdown | None:
    detail = (results.get("scale") or {}).get("focus_detail") or {}
    if not detail:
        return None
    body = []
    ordered = [k for k in DETAIL_ORDER if k in detail] + sorted(k for k in detail if k not in DETAIL_ORDER)
    for key in ordered:
        value = detail[key]
        if isinstance(value, dict):
            continue
        if isinstance(value, list):
            shown = ", ".join(_words(v) for v in value) if value else "none"
        elif isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, float) and (key.startswith("p_") or "probability" in key or "share" in key):
            shown = fmt.share(value)
        elif key in LEVEL_SCALES:
            shown = level_with_scale(key, value)
        elif isinstance(value, float):
            shown = fmt.number(value, 2)
        else:
            shown = _words(value)
        body.append([DETAIL_LABELS.get(key, _words(key).capitalize()), shown])
    return pipe_table(["Scale readiness", "Assessment"], body, "ll")


DETAIL_ORDER = ("verdict", "bottleneck", "rank", "score_geometric", "p_rank_1", "p_pass_gates", "failed_gates",
                "uncertain_gates", "evidence_level", "government_level", "government_adoption")
DETAIL_LABELS = {"p_rank_1": "Probability of ranking first", "p_pass_gates": "Probability of passing every gate",
                 "score_geometric": "Score (geometric mean)", "post_study_probability": "Post-study probability",
                 "evidence_level": "Evidence level (Maryland Scientific Methods Scale)",
                 "nesta_level": "Nesta Standards of Evidence level",
                 "government_level": "Government adoption level"}
# Ladders the scale model reports levels on (docs/scale-model.md): a level is shown with its top.
LEVEL_SCALES = {"evidence_level": 5, "nesta_level": 5, "government_level": 4}


def level_with_scale(key: str, value: Any) -> str:
    """``('nesta_level', 5) -> '5 of 5'``; an interval ``'0-4'`` -> ``'0-4 of 4'``."""
    top = LEVEL_SCALES[key]
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return f"{text} of {top}" if text else fmt.MISSING


def _words(value: Any) -> str:
    """``'cost_data' -> 'cost data'`` for identifiers shown as text."""
    return str(value).replace("_", " ")


def provenance_inputs(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(path, sha256)]`` of every input: ``provenance.inputs`` plus the data and contract files."""
    data = results.get("data") or {}
    inputs = dict((results.get("provenance") or {}).get("inputs") or {})
    contract = data.get("contract") or {}
    if data.get("file") and data.get("sha256"):
        inputs.setdefault(data["file"], data["sha256"])
    if contract.get("file") and contract.get("sha256"):
        inputs.setdefault(contract["file"], contract["sha256"])
    return sorted((str(path), str(digest)) for path, digest in inputs.items())


def headline_table(results: Mapping[str, Any]) -> Markdown | None:
    """The headline estimate on its own scale, as % change (log outcomes), in percentage
    points (shares), in money (money outcomes only), and for users."""
    h = results.get("headline") or {}
    if h.get("estimate") is None:
        return None
    a = results.get("analysis") or {}
    scale = str(h.get("units") or {"log": "log points", "share": "share, 0-1"}.get(str(h.get("scale")), ""))
    scale_text = f", {scale}" if scale else ""
    body = [[f"Intention to treat ({h.get('estimator') or 'estimator'}{scale_text})", fmt.number(h["estimate"], 3),
             fmt.interval(h.get("conf_low"), h.get("conf_high"), 3), fmt.p_value(h.get("p_value"))]]
    if h.get("percent") is not None:
        body.append(["Same effect, % change", fmt.percent_change(h["percent"], 1),
                     fmt.interval(h.get("percent_low"), h.get("percent_high"),
                                  fmt=lambda v: fmt.percent_change(v, 1)), ""])
    if h.get("points") is not None:
        body.append(["Same effect, percentage points", fmt.signed(h["points"], 1),
                     fmt.interval(h.get("points_low"), h.get("points_high"), 1), ""])
    money = h.get("money_per_unit")
    if money is not None and a.get("currency"):
        body.append([f"Same effect, {a.get('currency')} per {a.get('unit_label') or 'unit'}",
                     fmt.money_short(money, a.get("currency")),
                     fmt.interval(h.get("money_low"), h.get("money_high"), fmt=fmt.integer), ""])
    tot = h.get("tot") or {}
    if tot.get("estimate") is not None:
        body.append([f"Effect on users ({tot.get('estimator') or 'TOT'})", fmt.number(tot["estimate"], 3),
                     fmt.interval(tot.get("conf_low"), tot.get("conf_high"), 3), ""])
        if tot.get("percent") is not None:
            body.append(["Effect on users, % change", fmt.percent_change(tot["percent"]),
                         fmt.percent_interval(tot.get("percent_low"), tot.get("percent_high")), ""])
    return pipe_table(["Estimand", "Estimate", "95% CI", "p-value"], body, "lrrr")
