"""Plain-language sentences of the technical report (English), from the results document only.

Each function reads the results dict (``impactkit.results/2``) and returns escaped
:class:`~impactkit.pack.escape.Markdown` for the executive summary: the headline effect in its
scale's terms, the effect on users, subgroup effects, cost, scale readiness. No estimate is
recomputed; the one conversion is a subgroup's log-point effect to a percentage,
``100 (exp(b) - 1)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from impactkit.pack import format as fmt
from impactkit.pack.escape import Markdown, md
from impactkit.pack.tables import is_difference_row
from impactkit.privacy import min_cell_of, must_suppress, suppressed_label


def _pct_phrase(low: Any, high: Any) -> str:
    return f"{fmt.percent_change(low)} to {fmt.percent_change(high)}"


def effect_with_ci(effect: Mapping[str, Any], *, digits: int = 2, bold: bool = False, units: str = "") -> str:
    """``+108% (95% confidence interval +98% to +118%)``: a percent change when the results
    give one (log outcomes; one decimal when the interval lies within +-10%), percentage
    points for a share (``points``), else the signed estimate in ``units`` with its interval."""
    if effect.get("percent") is not None:
        ends = [abs(float(v)) for v in (effect.get("percent_low"), effect.get("percent_high")) if v is not None]
        d = 1 if ends and max(ends) < 10 else 0
        size = md(fmt.percent_change(effect["percent"], d))
        interval = md(f"{fmt.percent_change(effect.get('percent_low'), d)} to "
                      f"{fmt.percent_change(effect.get('percent_high'), d)}")
    elif effect.get("points") is not None:
        size = md(f"{fmt.signed(effect['points'], 1)} percentage points")
        interval = md(f"{fmt.signed(effect.get('points_low'), 1)} to {fmt.signed(effect.get('points_high'), 1)} "
                      "percentage points")
    else:
        tail = f" {units}" if units else ""
        size = md(fmt.signed(effect["estimate"], digits) + tail)
        interval = md(f"{fmt.signed(effect.get('conf_low'), digits)} to {fmt.signed(effect.get('conf_high'), digits)}"
                      + tail)
    return f"{f'**{size}**' if bold else size} (95% confidence interval {interval})"


def plain_outcome(label: str) -> str:
    """``'Yield (log kg per hectare)' -> 'yield'`` for a sentence."""
    base = str(label).split(" (")[0].strip() or str(label)
    if base[:1].isupper() and base[1:2].islower():
        base = base[:1].lower() + base[1:]
    return base


NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                10: "ten"}


def years_phrase(years: Any) -> str:
    """``2 -> 'two years'``, ``1 -> 'one year'`` (words up to ten, digits above)."""
    return periods_words(years, "year")


def periods_words(n: Any, period: str) -> str:
    """``(2, 'wave') -> 'two waves'`` (words up to ten, digits above)."""
    k = int(n)
    word = NUMBER_WORDS.get(k, fmt.integer(k))
    return f"{word} {md(period)}" + ("" if k == 1 else "s")


def tot_horizon(results: Mapping[str, Any]) -> int | None:
    """Years between the IV cohort's start and the post period of its 2x2 window, if declared.

    ``iv.window = {cohort, pre, post}`` (``docs/results-schema.md``): the effect on users
    ``headline.tot`` is measured ``post - cohort`` years after the service arrived.
    """
    window = (results.get("iv") or {}).get("window") or {}
    cohort, post = window.get("cohort"), window.get("post")
    try:
        gap = int(post) - int(cohort)
    except (TypeError, ValueError):
        return None
    return gap if gap >= 0 else None


def headline_sentences(results: Mapping[str, Any]) -> dict[str, Markdown]:
    """Plain-language sentences for the executive summary (numbers from the dict only).

    ``effect`` is the intention-to-treat average (``headline``), said to be an average over
    the years after roll-out when an event study backs it; ``tot`` the effect on users
    (``headline.tot``) with its horizon; ``money`` the ITT in money per unit (money
    outcomes only). Effects are stated in their scale's terms (``headline.scale``).
    """
    a = results.get("analysis") or {}
    h = results.get("headline") or {}
    data = results.get("data") or {}
    cur, year = a.get("currency"), a.get("currency_year")
    out: dict[str, Markdown] = {}
    if h.get("estimate") is None:
        return out
    label = md(plain_outcome(a.get("outcome_label") or h.get("outcome") or a.get("outcome") or "the outcome"))
    units = str(h.get("units") or "")
    unit = md(a.get("unit_label") or "unit")
    plural = md(a.get("unit_plural") or f"{a.get('unit_label') or 'unit'}s")
    effect = effect_with_ci(h, bold=True, units=units)
    population = md(h.get("population") or "the study population")
    low, high = h.get("conf_low"), h.get("conf_high")
    verb = "changed"
    if low is not None and high is not None:
        verb = "raised" if float(low) > 0 else "lowered" if float(high) < 0 else "changed"
    when = " on average over the years since roll-out" if (results.get("event_study") or {}).get("rows") else ""
    out["effect"] = Markdown(f"The programme {verb} {label} by an estimated {effect}{when}, for {population}.")
    money = h.get("money_per_unit")
    if money is not None and cur:
        base = data.get("baseline_mean")
        out["money"] = Markdown(
            f"In money, that is about **{md(fmt.money(money, cur, year))} per {unit}** "
            f"(95% confidence interval {md(fmt.money_short(h.get('money_low'), cur))} to "
            f"{md(fmt.money_short(h.get('money_high'), cur))})"
            + (f", against a baseline mean {label} of {md(fmt.money_short(base, cur))}" if base is not None else "")
            + ".")
    tot = h.get("tot") or {}
    if tot.get("percent") is not None or tot.get("estimate") is not None:
        horizon = tot_horizon(results)
        taking = md(a.get("take_up_label") or "used the programme")
        users = f"{plural} that {taking}"
        size = effect_with_ci(tot, digits=3, bold=True, units=units)
        where = (f" in {md(a.get('treated_label') or 'treated')} {md(a.get('cluster_label') or 'clusters')}")
        take_up = (f"; {md(fmt.share(tot['take_up']))} of {plural}{where} {taking}"
                   if tot.get("take_up") is not None else "")
        method = str(tot.get("estimator") or "instrumental-variables").split(":")[0].strip()
        period = str(a.get("period_label") or "year")
        out["tot"] = Markdown(
            (f"Within {periods_words(horizon, period)}, " if horizon is not None else "")
            + f"{'f' if horizon is not None else 'F'}or {users}, {label} rose by an estimated {size}"
            f" ({md(method)} estimate{take_up}).")
        if tot.get("percent") is not None and float(tot["percent"]) < 0:
            out["tot"] = Markdown(out["tot"].replace(" rose by ", " changed by "))
    if h.get("n_units") is not None:
        p = h.get("p_value")
        meaning = (": an effect this large would be very unlikely if the programme had no effect"
                   if p is not None and float(p) < 0.01 else "")
        clusters = ("" if data.get("cluster") and data.get("cluster") == data.get("unit") else
                    f" in {md(fmt.integer(h.get('n_clusters')))} {md(a.get('cluster_label') or 'clusters')}")
        out["precision"] = Markdown(
            f"The estimate uses {md(fmt.integer(h.get('n_units')))} {plural}{clusters} (p-value {md(fmt.p_value(p))}{meaning}).")
    return out


def subgroup_intro(results: Mapping[str, Any]) -> str:
    """Names the comparison behind the subgroup effects (``heterogeneity.design``).

    The subgroup effects come from their own comparison (e.g. the final wave, served vs
    comparison communities), not from the headline average: the sentence must say so.
    """
    design = str((results.get("heterogeneity") or {}).get("design") or "").strip()
    if not design:
        return "Effects by group: "
    first, _, rest = design.partition(",")
    first = first.strip()
    if len(first.split()) == 2:  # a compound adjective: 'final wave' -> 'final-wave comparison'
        first = first.replace(" ", "-")
    comparison = f"{first} comparison" + (f" ({rest.strip()})" if rest.strip() else "")
    contrast = ", not the average over all years above" if (results.get("event_study") or {}).get("rows") else ""
    return f"Effects by group, from the {md(comparison)}{contrast}: "


def subgroup_sentence(results: Mapping[str, Any]) -> Markdown | None:
    """Subgroup effects in plain language; the declared group (``heterogeneity.label``) first."""
    het = results.get("heterogeneity") or {}
    rows = list(het.get("rows") or [])
    if not rows:
        return None
    focus = str(het.get("label") or "")
    rows.sort(key=lambda r: 0 if focus and str(r.get("subgroup")) == focus else 1)
    scale = (results.get("headline") or {}).get("scale")
    log_scale = scale == "log"
    factor = 100.0 if scale == "share" else 1.0
    tail = " percentage points" if scale == "share" else ""
    min_cell = min_cell_of(results)
    parts = []
    difference = None
    for r in rows:
        if must_suppress(r, "n_units" if "n_units" in r else "n", min_cell):
            parts.append(f"{md(r.get('subgroup'))}: {md(suppressed_label(min_cell))} (too few units to report)")
            continue
        if is_difference_row(r):
            difference = r
            continue
        if log_scale:
            est = fmt.percent_change(fmt.log_points_to_percent(r.get("estimate")))
            ci = _pct_phrase(fmt.log_points_to_percent(r.get("conf_low")), fmt.log_points_to_percent(r.get("conf_high")))
        else:
            def scaled(key: str) -> Any:
                return None if r.get(key) is None else factor * float(r[key])
            est = fmt.signed(scaled("estimate"), 1 if factor != 1 else 2) + tail
            ci = f"{fmt.number(scaled('conf_low'), 1 if factor != 1 else 2)} to " \
                 f"{fmt.number(scaled('conf_high'), 1 if factor != 1 else 2)}{tail}"
        parts.append(f"{md(r.get('subgroup'))} {md(est)} (95% CI {md(ci)})")
    text = "; ".join(parts) + "."
    p = het.get("interaction_p")
    if p is None and difference is not None:
        p = difference.get("p_value")
    gap = ""
    if difference is not None and difference.get("estimate") is not None:
        gap = (f", {md(fmt.signed(difference['estimate'], 3))}{' log points' if log_scale else ''} (95% CI "
               f"{md(fmt.number(difference.get('conf_low'), 3))} to {md(fmt.number(difference.get('conf_high'), 3))}),")
    if p is not None:
        verdict = "is not statistically significant" if p >= 0.05 else "is statistically significant"
        text += f" The gap between groups{gap} {verdict} ({md(fmt.p_equals(p))})."
    elif gap:
        text += f" The gap between groups{gap[:-1]}."
    return Markdown(subgroup_intro(results) + text)


COST_KEYS = ("cost_per_participant_pilot", "cost_per_participant_scale", "cost_per_unit_impact", "bcr", "npv")


def has_cost_numbers(cost: Mapping[str, Any]) -> bool:
    return any(cost.get(k) is not None for k in COST_KEYS)


def impact_unit_phrase(cost: Mapping[str, Any], currency: str | None) -> str:
    """``'USD 2013 of yearly benefit per participant' -> 'USD 1 (2013 US dollars) of yearly benefit per participant'``.

    The results document names the unit of impact as ``'<CUR> <year> of <what>'``; any other
    wording is shown as given (escaped).
    """
    unit = str(cost.get("impact_unit") or "").strip()
    code = (currency or "").upper()
    match = re.fullmatch(r"([A-Za-z]{3}) (\d{4}) of (.+)", unit)
    if match:
        return f"{match.group(1).upper()} 1 ({match.group(2)} {fmt.currency_unit(match.group(1))}) of {md(match.group(3))}"
    if unit:
        return str(md(unit))
    return f"{code} 1 of yearly benefit".strip()


def cost_sentence(results: Mapping[str, Any]) -> Markdown | None:
    cost = results.get("cost") or {}
    if not cost:
        return None
    if not has_cost_numbers(cost):
        return Markdown("Cost data: not available for this analysis, so cost per participant and per unit "
                        "of impact cannot be reported yet.")
    a = results.get("analysis") or {}
    cur = cost.get("currency") or a.get("currency")
    year = cost.get("year") or a.get("currency_year")
    bits: list[str] = []
    if cost.get("cost_per_participant_pilot") is not None:
        bits.append(f"It cost {md(fmt.money(cost['cost_per_participant_pilot'], cur, year))} per participant in the pilot")
    if cost.get("cost_per_participant_scale") is not None:
        bits.append(f"an expected {md(fmt.money_short(cost['cost_per_participant_scale'], cur))} at scale")
    text = ", and ".join(bits)
    if cost.get("cost_per_unit_impact") is not None:
        text += (f"{'; ' if text else 'The '}{'t' if text else ''}he cost per unit of impact is "
                 f"{md(fmt.money_short(cost['cost_per_unit_impact'], cur, 3))} per {impact_unit_phrase(cost, cur)}")
        if cost.get("cost_per_unit_impact_low") is not None:
            text += (f" (range {md(fmt.money_short(cost.get('cost_per_unit_impact_low'), cur, 3))} to "
                     f"{md(fmt.number(cost.get('cost_per_unit_impact_high'), 3))})")
    if cost.get("bcr") is not None:
        text += f", a benefit-cost ratio of {md(fmt.number(cost['bcr'], 1))}"
        if cost.get("horizon_years") is not None:
            text += f" over {md(fmt.integer(cost['horizon_years']))} years"
    return Markdown(text.strip() + ".") if text else None


def verdict_phrase(verdict: Any) -> str:
    """``'not yet shown to pass: readiness' -> 'not yet shown to pass the readiness gate'``."""
    text = str(verdict or "").strip()
    head, sep, gates = text.partition(":")
    if not sep or not gates.strip():
        return str(md(text.replace("_", " ")))
    names = [g.strip().replace("_", " ") for g in gates.split(",") if g.strip()]
    listed = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    return f"{md(head.strip())} the {md(listed)} gate{'s' if len(names) > 1 else ''}"


def scale_sentence(results: Mapping[str, Any]) -> Markdown | None:
    scale = results.get("scale") or {}
    detail = scale.get("focus_detail") or {}
    if not detail and not scale.get("ranking"):
        return None
    focus = next((r for r in scale.get("ranking") or [] if r.get("intervention") == scale.get("focus")), {})
    verdict = detail.get("verdict") or ("passes every gate" if focus and not focus.get("failed_gates") else None)
    bottleneck = detail.get("bottleneck") or focus.get("bottleneck")
    text = "Scale readiness: "
    text += f"**{verdict_phrase(verdict)}**" if verdict else "no verdict recorded"
    p_pass = detail.get("p_pass_gates", focus.get("p_pass_gates"))
    if p_pass is not None:
        text += f" (probability of passing every gate {md(fmt.share(p_pass))})"
    if focus.get("rank") is not None:
        passes = bool(focus.get("gates_passed")) or (verdict is not None and str(verdict).startswith("passes"))
        text += (f"; ranked {md(fmt.integer(focus['rank']))} of {len(scale.get('ranking') or [])} in the portfolio"
                 + ("" if passes else " by score (the rank orders the options; it does not override the gates)"))
        if focus.get("p_rank_1") is not None:
            text += f" (probability of ranking first {md(fmt.share(focus['p_rank_1']))})"
    finding = detail.get("bottleneck_finding") or focus.get("bottleneck_finding")
    if bottleneck and finding == "data gap":
        # the weakest component is weakest because a level is unknown: say what to measure
        what = detail.get("measure_next") or focus.get("measure_next") or f"the levels of {bottleneck}"
        text += f". Data gap: {md(what)}"
    elif bottleneck:
        text += f". The bottleneck to address first is **{md(bottleneck)}**"
    labels = detail.get("data_labels") or focus.get("data_labels")
    if labels:
        text += f" ({md(labels)})"
    return Markdown(text + ".")


def at_horizon(results: Mapping[str, Any]) -> Mapping[str, Any]:
    """``headline.at_horizon`` (older documents: ``headline.two_year``), or ``{}``."""
    head = results.get("headline") or {}
    return head.get("at_horizon") or head.get("two_year") or {}


def two_year_sentence(results: Mapping[str, Any]) -> Markdown | None:
    """``headline.at_horizon`` (the event-study effect at the declared horizon) in words."""
    two = at_horizon(results)
    if two.get("estimate") is None:
        return None
    a = results.get("analysis") or {}
    period = str(a.get("period_label") or "year")
    when = (f"{periods_words(two['event_time'], period)} after roll-out" if two.get("event_time") is not None
            else "later after roll-out")
    size = effect_with_ci(two, digits=3, units=str((results.get("headline") or {}).get("units") or ""))
    return Markdown(f"{when[:1].upper()}{when[1:]}, the intention-to-treat effect is {size} (event study).")


def full_stop(text: Markdown) -> Markdown:
    """Already-escaped text with a closing full stop."""
    return text if not text or text.rstrip()[-1:] in ".!?" else Markdown(text.rstrip() + ".")


def sentence(text: Any) -> Markdown:
    """Escaped text as a sentence: first letter upper case, a closing full stop."""
    raw = " ".join(str(text).split())
    raw = raw[:1].upper() + raw[1:]
    if raw and raw[-1] not in ".!?":
        raw += "."
    return md(raw)

