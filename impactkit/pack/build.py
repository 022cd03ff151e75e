"""Results document -> evidence-pack ``.qmd`` text (jinja2 template + figures).

:func:`build_qmd` takes the results dict of :func:`impactkit.analysis.run_analysis`
(schema ``impactkit.results/2``, ``docs/results-schema.md``), draws the figures into
``<folder>/figures/`` and returns the ``.qmd`` text. It never
recomputes an estimate: every number comes from the dict; the only arithmetic is the
conversion of a log-point effect of a subgroup to a percentage, ``100 (exp(b) - 1)``,
for plain-language sentences. Every string from data or specs is escaped
(:mod:`impactkit.pack.escape`): the template environment escapes any value that is not
already :class:`~impactkit.pack.escape.Markdown`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import re
import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from impactkit import provenance
from impactkit.errors import InputError
from impactkit.pack import format as fmt
from impactkit.pack import tables
from impactkit.pack.escape import Markdown, attribute, md, yaml_string
from impactkit.pack.figures import SavedFigure, save_figures
from impactkit.privacy import min_cell_of, must_suppress, suppressed_label
from impactkit.pack.tables import is_difference_row, provenance_inputs

SCHEMA = "impactkit.results/2"
TEMPLATE_NAME = "evidence-pack.qmd.j2"
FIGURE_DIR = "figures"  # not Quarto's own <stem>_files, which Quarto deletes after embedding
PACKAGES = ("impactkit", "numpy", "pandas", "scipy", "statsmodels", "linearmodels", "great-expectations", "pyarrow",
            "matplotlib", "jinja2", "typst", "pypandoc-binary")
ABSENT = Markdown("*Not declared for this analysis.*")


def template_dir() -> Path:
    """The pack's templates and styles: package data ``impactkit/pack/templates``.

    Found through :mod:`importlib.resources`, so an installed impactkit (not only a source
    checkout) finds them.
    """
    return Path(str(importlib.resources.files("impactkit.pack").joinpath("templates")))


class Section(dict):
    """A results section for the template: a missing key reads as ``None`` (absent)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __getitem__(self, key: Any) -> Any:
        return self.get(key)


def nullable(value: Any) -> Any:
    """Dicts (recursively) become :class:`Section`, so absent optional keys are ``None``."""
    if isinstance(value, dict) and not isinstance(value, Section):
        return Section({k: nullable(v) for k, v in value.items()})
    if isinstance(value, list):
        return [nullable(v) for v in value]
    return value


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markdown):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return md(str(value))
    return md(value)


def environment(templates: Path | None = None) -> jinja2.Environment:
    """The jinja2 environment: unknown names fail, every plain string is escaped."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates or template_dir())),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def package_versions(names: tuple[str, ...] = PACKAGES) -> list[tuple[str, str]]:
    """``[(package, version)]`` of the packages the pack names, at build time."""
    return provenance.package_versions(names)


def git_commit(repo: Path | None = None) -> str:
    """The commit of the impactkit source tree, ``(with uncommitted changes)`` when dirty, or ``unknown``."""
    where = repo or provenance.PACKAGE_DIR
    commit = provenance.git_commit(where)
    if not commit:
        return "unknown"
    return commit + (" (with uncommitted changes)" if provenance.git_dirty(where) else "")


PERCENT_KEYS = ("percent", "percent_low", "percent_high")


def percent_factor(section: Mapping[str, Any]) -> float:
    """100 when ``section['percent']`` is a proportion (``1.08`` = +108%), 1 when already in percent.

    The results document gives percentage changes as proportions, ``exp(b) - 1`` for a
    log-point effect ``b``; a document in percent units is recognised by comparing
    ``percent`` with ``exp(estimate) - 1`` (a unit check, not a recomputation).
    """
    pct, est = section.get("percent"), section.get("estimate")
    if pct is None:
        return 1.0
    if est is None:
        return 100.0
    proportion = math.expm1(float(est))
    return 100.0 if abs(float(pct) - proportion) <= abs(float(pct) - 100.0 * proportion) else 1.0


def display_view(results: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the results for display: percentage changes in percent units.

    Only units change; the published ``results.json`` is the document as received.
    """
    view = copy.deepcopy(dict(results))
    head = view.get("headline")
    if isinstance(head, dict):
        for section in (head, head.get("tot"), head.get("at_horizon") or head.get("two_year")):
            if isinstance(section, dict):
                factor = percent_factor(section)
                for key in PERCENT_KEYS:
                    if section.get(key) is not None:
                        section[key] = float(section[key]) * factor
    return view


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


SHORT_HASH = 12


def is_hex_digest(text: Any) -> bool:
    value = str(text or "").lower()
    return len(value) >= SHORT_HASH and all(c in "0123456789abcdef" for c in value)


def code_span(text: Any) -> Markdown:
    """Inline code for a value the pack controls the alphabet of (hex digests, versions)."""
    return Markdown("`" + str(text).replace("`", "'").replace("\n", " ") + "`")


def provenance_inputs_table(results: Mapping[str, Any], path_share: int = 36) -> Markdown | None:
    """Inputs and their full SHA-256 as a two-column table that fits an A4 page.

    The digest column is monospace (set small by ``pack-typst.typ``) and gets
    ``100 - path_share`` percent of the width: the dashes of a pipe table's rule set the
    relative column widths once a row is wider than the page, so a 64-digit digest stays on
    one line and a long path wraps at its slashes instead.
    """
    rows = provenance_inputs(results)
    if not rows:
        return None
    lines = ["| Input file | SHA-256 |", f"|:{'-' * path_share}|:{'-' * (100 - path_share)}|"]
    for path, digest in rows:
        cell = code_span(digest.lower()) if is_hex_digest(digest) else md(digest)
        lines.append(f"| {md(path)} | {cell} |")
    return Markdown("\n".join(lines))


def run_table(results: Mapping[str, Any], *, date: str, version: str, commit: str) -> Markdown:
    """When, with what and from which seed the pack was made: one key-value table."""
    data = results.get("data") or {}
    contract = data.get("contract") or {}
    seeds = results.get("seeds") or {}
    commit_hash, _, rest = commit.partition(" ")
    commit_cell: Any = (Markdown(code_span(commit_hash[:SHORT_HASH]) + (f" {md(rest)}" if rest else ""))
                        if is_hex_digest(commit_hash) else commit)
    rows: list[list[Any]] = [["Rendered on", date], ["impactkit version", version], ["Source commit", commit_cell]]
    if contract.get("id"):
        rows.append(["Data contract", f"{contract['id']}, version {contract.get('version') or '(unversioned)'}"])
    if seeds.get("entropy") is not None:
        rows.append(["Seed (entropy)", code_span(seeds["entropy"])])
    if seeds.get("purposes"):
        rows.append(["Random streams", ", ".join(map(str, seeds["purposes"]))])
    return tables.pipe_table(["Item", "Value"], rows, "ll")


def packages_table(versions: list[tuple[str, str]] | None = None, columns: int = 3) -> Markdown:
    """Package versions laid out in ``columns`` (package, version) pairs to save a page."""
    versions = versions if versions is not None else package_versions()
    per_column = math.ceil(len(versions) / columns) if versions else 0
    body = []
    for i in range(per_column):
        row: list[Any] = []
        for c in range(columns):
            k = c * per_column + i
            name, version = versions[k] if k < len(versions) else (Markdown(" "), Markdown(" "))
            row += [name, version]
        body.append(row)
    return tables.pipe_table(["Package", "Version"] * columns, body, "ll" * columns)


def figure_markdown(fig: SavedFigure | None, folder: str = FIGURE_DIR, width: str = "85%") -> Markdown | None:
    """``![caption](path){fig-alt="..." width="95%"}`` (Quarto figure syntax)."""
    if fig is None:
        return None
    return Markdown(f'![{md(fig.caption)}]({folder}/{fig.path.name}){{fig-alt="{attribute(fig.alt)}" width="{width}"}}')


SCORECARD_KEYS = ("rank", "score_geometric", "p_rank_1", "p_pass_gates", "failed_gates", "bottleneck")


def without_scorecard_repeats(results: Mapping[str, Any]) -> dict[str, Any]:
    """The results with ``scale.focus_detail`` keeping only what the scorecard row of the
    focus intervention does not already show (same key, same value)."""
    scale = results.get("scale") or {}
    detail = scale.get("focus_detail") or {}
    focus = next((r for r in scale.get("ranking") or [] if r.get("intervention") == scale.get("focus")), None)
    if not detail or focus is None:
        return dict(results)
    kept = {k: v for k, v in detail.items() if not (k in SCORECARD_KEYS and focus.get(k) == v)}
    return {**results, "scale": {**scale, "focus_detail": kept}}


def captioned(table: Markdown | None, caption: str | Markdown) -> Markdown | None:
    """``table`` with a pandoc/Quarto table caption (``: caption``) unless it has one.

    Every table carries a caption so that table numbers run without gaps (Typst numbers
    uncaptioned tables too) and each table says what it holds.
    """
    if table is None:
        return None
    if "\n\n: " in table:
        return table
    return Markdown(f"{table}\n\n: {md(caption)}")


def table_captions(results: Mapping[str, Any]) -> dict[str, Markdown]:
    """The caption of each pack table (text from data escaped)."""
    data = results.get("data") or {}
    es = results.get("event_study") or {}
    het = results.get("heterogeneity") or {}
    balance = results.get("balance") or {}
    scale = results.get("scale") or {}
    focus = next((r.get("name") for r in scale.get("ranking") or [] if r.get("intervention") == scale.get("focus")),
                 scale.get("focus"))
    cluster = md(data.get("cluster") or "cluster")
    design = f" ({md(het['design'])})" if het.get("design") else ""
    wave = f" ({md(balance['wave'])})" if balance.get("wave") is not None else ""
    return {
        "validation": Markdown("Validation rules of the data contract."),
        "sample_flow": Markdown("Units observed per wave and arm."),
        "attrition": Markdown("Attrition: share of baseline units not observed, by arm."),
        "balance": Markdown(f"Balance of baseline covariates between arms{wave}."),
        "event_study": Markdown(f"Event-study estimates ({md(es.get('estimator') or 'estimator not named')})."),
        "bacon": Markdown("Goodman-Bacon (2021) decomposition of the two-way fixed-effects estimate."),
        "headline": Markdown(f"Headline estimates (95% confidence intervals clustered by {cluster})."),
        "estimators": Markdown("The headline effect by alternative estimators (95% confidence intervals)."),
        "iv": Markdown("Instrumental-variables estimates: assignment instruments take-up."),
        "weak_iv": Markdown("Weak-instrument diagnostics (Montiel Olea and Pflueger 2013; Anderson and Rubin 1949)."),
        "compliers": Markdown("Baseline characteristics of compliers (users when offered) and of all units."),
        "heterogeneity": Markdown(f"Effects by subgroup{design}."),
        "multiple": Markdown("p-values adjusted for testing several outcomes: Holm (1979), Romano and Wolf (2005), "
                             "Westfall and Young (1993) and sharpened q-values (Benjamini, Krieger and Yekutieli 2006)."),
        "cost": Markdown("Cost-effectiveness."),
        "scorecard": Markdown("Scale-readiness scorecard of the portfolio (score: geometric mean of the criteria)."),
        "scale_detail": Markdown(f"Scale-readiness assessment of {md(focus or 'the intervention')}."),
        "inputs": Markdown("Input files (paths relative to the analysis folder) and their SHA-256 digests."),
        "run": Markdown("How this pack was made."),
        "packages": Markdown("Software versions at render time."),
    }


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


REPORT_LABELS = {"simulated": "simulated data", "illustrative": "illustrative accounts", "assumption": "assumption",
                 "unknown": "unknown", "check": "implausibly high: check the accounts"}


def report_label(kind: str) -> Markdown:
    """An honesty label of the technical report (English), the same markup as the brief's."""
    return Markdown(f"[\\[{md(REPORT_LABELS[kind])}\\]]{{.label .{kind}}}")


def honesty_labels(results: Mapping[str, Any], honesty: Any) -> dict[str, Markdown]:
    """Labels for the places numbers stand: effect sentences, cost rows, readiness."""
    from impactkit.pack.brief import BCR_PLAUSIBLE, IRR_PLAUSIBLE

    cost = results.get("cost") or {}
    sim = report_label("simulated") if honesty is not None and honesty.simulated_data else Markdown("")
    ill = report_label("illustrative") if honesty is not None and honesty.illustrative_costs else Markdown("")
    out = {"effect": sim, "cost": ill}
    bcr, irr = cost.get("bcr"), cost.get("irr")
    out["bcr"] = Markdown(" ".join(x for x in (ill, report_label("check") if bcr is not None and float(bcr) > BCR_PLAUSIBLE
                                              else "") if x))
    out["irr"] = Markdown(" ".join(x for x in (ill, report_label("check") if irr is not None and float(irr) > IRR_PLAUSIBLE
                                              else "") if x))
    assumed = honesty.assumed if honesty is not None else ()
    out["scale_participants"] = Markdown(" ".join(x for x in (ill, report_label("assumption") if "scale_participants"
                                                              in assumed else "") if x))
    return out


def context(results: Mapping[str, Any], figures: Mapping[str, SavedFigure], *, date: str,
            command: str | None = None, honesty: Any = None) -> dict[str, Any]:
    """Everything the template shows, formatted and escaped."""
    a = results.get("analysis") or {}
    data = results.get("data") or {}
    val = results.get("validation") or {}
    prov = results.get("provenance") or {}
    min_cell = min_cell_of(results)
    contract = data.get("contract") or {}
    att = results.get("attrition") or {}
    lee = att.get("lee_bounds") or {}
    es = results.get("event_study") or {}
    seeds = results.get("seeds") or {}
    version = prov.get("impactkit_version") or provenance.package_version("impactkit", "unknown")
    commit = git_commit()
    captions = table_captions(results)
    labels = honesty_labels(results, honesty)
    raw_tables = {
            "validation": tables.validation_table(results),
            "sample_flow": tables.sample_flow_table(results),
            "attrition": tables.attrition_table(results),
            "balance": tables.balance_table(results),
            "estimators": tables.estimators_table(results),
            "event_study": tables.event_study_table(results),
            "heterogeneity": tables.heterogeneity_table(results),
            "multiple": tables.multiple_outcomes_table(results),
            "iv": tables.iv_table(results),
            "weak_iv": tables.weak_iv_table(results),
            "compliers": tables.complier_table(results),
            "bacon": tables.bacon_table(results),
            "cost": tables.cost_table(results, labels=cost_row_labels(labels)),
            "scorecard": tables.scorecard_table(results),
            "scale_detail": tables.scale_detail_table(without_scorecard_repeats(results)),
            "inputs": provenance_inputs_table(results),
            "run": run_table(results, date=date, version=version, commit=commit),
            "headline": tables.headline_table(results),
            "packages": packages_table(),
    }
    shown_tables = {name: captioned(table, captions[name]) for name, table in raw_tables.items()}
    return {
        "r": results,
        "fmt": fmt,
        "md": md,
        "absent": ABSENT,
        "min_cell": min_cell,
        "suppressed": suppressed_label(min_cell),
        "title_yaml": yaml_string(a.get("title") or a.get("name") or "Evidence pack"),
        "subtitle_yaml": yaml_string(("Evidence pack" + (f" · {a['organisation']}" if a.get("organisation") else ""))),
        "date_yaml": yaml_string(date),
        "date": date,
        "a": a,
        "data": data,
        "contract": contract,
        "val": val,
        "headline": {k: labelled(v, labels["effect"]) for k, v in headline_sentences(results).items()},
        "subgroups": subgroup_sentence(results),
        "cost_text": labelled(cost_sentence(results), labels["bcr"] or labels["cost"]),
        "labels": labels,
        "scale_text": scale_sentence(results),
        "fig": {name: figure_markdown(f) for name, f in figures.items()},
        "t": {**shown_tables, "estimator_notes": [full_stop(n) for n in tables.estimator_notes(results)]},
        "two_year": at_horizon(results),
        "omitted": [Markdown(f"{md(SECTION_NAMES.get(name, _words_of(name)))}: {md(reason)}") for name, reason
                    in sorted((results.get("omitted") or {}).items())],
        "why": {name: Markdown(f"*Left out: {md(reason)}.*") for name, reason
                in (results.get("omitted") or {}).items()},
        "two_year_text": two_year_sentence(results),
        "att": att,
        "lee": lee,
        "outcome_label_lower": md(str(a.get("outcome_label") or a.get("outcome") or "the outcome").lower()),
        "es": es,
        "pretrend": es.get("pretrend") or {},
        "wild": results.get("wild_bootstrap") or {},
        "ri": results.get("randomization_inference") or {},
        "power": results.get("power") or {},
        "balance": results.get("balance") or {},
        "het": results.get("heterogeneity") or {},
        "iv": results.get("iv") or {},
        "seeds": seeds,
        "warnings": [sentence(w) for w in results.get("warnings") or [] if w],
        "seed_purposes": ", ".join(map(str, seeds.get("purposes") or [])),
        "prov": prov,
        "command": command or prov.get("command") or f"impactkit pack {prov.get('analysis_folder') or a.get('name') or '<analysis folder>'}",
        "commit": commit,
        "command_code": Markdown(str(command or prov.get("command") or f"impactkit pack {prov.get('analysis_folder') or a.get('name') or '<analysis folder>'}")
                                 .replace("`", "'").replace("\n", " ")),
        "rerun_command": Markdown(rerun_command(command, prov, a).replace("`", "'").replace("\n", " ")),
        "pagebreak": Markdown("{{< pagebreak >}}"),
        "lang": "en",
        "recommendation": report_recommendation(results),
        "impactkit_version": version,
        "tot_horizon": tot_horizon(results),
    }


def report_recommendation(results: Mapping[str, Any]) -> Markdown:
    """The results' verdict (:mod:`impactkit.pack.recommend`) and the authored text on top
    when it does not contradict the verdict (the same rule as the brief's)."""
    from impactkit.pack.brief import Writer, defaults_of, gate_lists, gate_phrase, focus_row, results_verdict, verdict_text
    from impactkit.pack.i18n import Local
    from impactkit.pack.recommend import reconcile

    rec = reconcile(results_verdict(results), (results.get("analysis") or {}).get("recommendation"))
    w = Writer(Local("en"), {}, defaults_of(results))
    failed, uncertain = gate_lists((results.get("scale") or {}).get("focus_detail") or {}, focus_row(results))
    text = verdict_text(w, rec, gate_phrase(w, failed or uncertain))
    if rec.authored:
        text += " " + str(md(rec.authored))
    elif rec.warning:
        text += " (The authored recommendation was not shown: it advocates expanding the programme, which the results do not support.)"
    return Markdown(text)


def labelled(text: Markdown | None, label: Markdown) -> Markdown | None:
    """``text`` followed by its honesty label(s), if any."""
    if text is None or not label:
        return text
    return Markdown(f"{text} {label}")


def cost_row_labels(labels: Mapping[str, Markdown]) -> dict[str, str]:
    """Honesty labels per row of the cost table."""
    money_rows = ("Cost per participant, pilot", "Cost per participant, at scale", "Yearly benefit per participant",
                  "Net present value")
    out = {row: labels["cost"] for row in money_rows if labels["cost"]}
    if labels["bcr"]:
        out["Benefit-cost ratio"] = labels["bcr"]
    if labels["irr"]:
        out["Internal rate of return"] = labels["irr"]
    return out


SECTION_NAMES = {"iv": "Instrumental variables", "lee_bounds": "Lee bounds", "bacon": "Goodman-Bacon decomposition",
                 "multiple_outcomes": "Multiple-outcome corrections", "heterogeneity": "Subgroup effects",
                 "event_study": "Event study", "pretrend": "Pre-trend test", "scale": "Scale readiness",
                 "balance": "Balance"}


def _words_of(name: str) -> str:
    text = str(name).replace("_", " ")
    return text[:1].upper() + text[1:]


def rerun_command(command: str | None, prov: Mapping[str, Any], analysis: Mapping[str, Any]) -> str:
    """``impactkit rerun <the folder the pack was built from>``: the folder of ``command``
    (``impactkit pack FOLDER ...``) when given, else the results' own rerun command."""
    import shlex

    if command:
        try:
            words = shlex.split(str(command))
        except ValueError:
            words = []
        if len(words) >= 3 and words[:2] == ["impactkit", "pack"]:
            return f"impactkit rerun {shlex.quote(words[2])}"
    return str(prov.get("command") or f"impactkit rerun {analysis.get('name') or '<analysis folder>'}")


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


BLOCK_START = re.compile(r"^(#{1,6} |!\[|\| |::: ?\{|- |```)")


def ensure_block_spacing(text: str) -> str:
    """Put a blank line before every heading, figure, table, callout, list and code block.

    Pandoc needs one before a heading (else ``# Impact`` is paragraph text) and before a
    figure or table; template conditionals can swallow it. Lines inside fenced code, and
    rows continuing a table or list, are left alone.
    """
    out: list[str] = []
    in_code = False
    in_front_matter = text.startswith("---")
    for i, line in enumerate(text.split("\n")):
        if in_front_matter:
            out.append(line)
            if i > 0 and line.strip() == "---":
                in_front_matter = False
            continue
        if line.startswith("```"):
            if not in_code and out and out[-1].strip():
                out.append("")
            in_code = not in_code
            out.append(line)
            continue
        if not in_code and BLOCK_START.match(line) and out and out[-1].strip():
            previous = out[-1]
            continuing = (line.startswith("| ") and previous.startswith("|")) or (
                line.startswith("- ") and previous.startswith(("- ", "  ")))
            if not continuing:
                out.append("")
        out.append(line)
    return "\n".join(out)


def check_results(results: Mapping[str, Any]) -> None:
    """The minimal shape the pack needs: ``schema`` and the ``analysis`` section."""
    if not isinstance(results, Mapping):
        raise InputError("results document: expected a mapping (the dict run_analysis returns)")
    if results.get("schema") != SCHEMA:
        raise InputError(f"results document: key 'schema' must be '{SCHEMA}', got {results.get('schema')!r}")
    if not isinstance(results.get("analysis"), Mapping):
        raise InputError("results document: required section 'analysis' is missing")


def build_qmd(results: Mapping[str, Any], folder: Path, *, date: str | None = None, command: str | None = None,
              templates: Path | None = None, honesty: Any = None) -> str:
    """Draw the figures into ``folder/figures`` and return the ``.qmd`` text.

    ``date`` (ISO ``YYYY-MM-DD``, default today in UTC) is the render date printed in the pack;
    it never enters the results document.
    """
    check_results(results)
    results = display_view(results)
    folder = Path(folder)
    figures = save_figures(results, folder / FIGURE_DIR)
    when = date or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    template = environment(templates).get_template(TEMPLATE_NAME)
    values = {k: nullable(v) for k, v in context(results, figures, date=when, command=command,
                                                  honesty=honesty).items()}
    return ensure_block_spacing(template.render(**values))
