"""Results document -> evidence-pack ``.qmd`` text (jinja2 template + figures).

:func:`build_qmd` takes the results dict of :func:`impactkit.analysis.run_analysis`
(schema ``impactkit.results/1``, ``docs/results-schema.md``), draws the figures into
``<folder>/evidence-pack_files/figures/`` and returns the ``.qmd`` text. It never
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
import importlib.metadata
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from impactkit.errors import InputError
from impactkit.pack import format as fmt
from impactkit.pack import tables
from impactkit.pack.escape import Markdown, attribute, md, yaml_string
from impactkit.pack.figures import SavedFigure, save_figures
from impactkit.pack.privacy import min_cell_of, must_suppress, suppressed_label
from impactkit.pack.tables import is_difference_row

SCHEMA = "impactkit.results/1"
TEMPLATE_NAME = "evidence-pack.qmd.j2"
FIGURE_DIR = "evidence-pack_files/figures"
PACKAGES = ("impactkit", "numpy", "pandas", "scipy", "statsmodels", "linearmodels", "great-expectations", "pyarrow",
            "matplotlib", "jinja2", "typst", "pypandoc-binary")
ABSENT = Markdown("*Not declared for this analysis.*")


def template_dir() -> Path:
    """``reports/templates`` of the impactkit source tree (the pack's templates and styles)."""
    return Path(__file__).resolve().parents[2] / "reports" / "templates"


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
    """``[(package, version)]`` from ``importlib.metadata`` at build time."""
    out = []
    for name in names:
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def git_commit(repo: Path | None = None) -> str:
    """The commit of the impactkit source tree (``git rev-parse HEAD``), or ``unknown``."""
    where = repo or Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    if done.returncode != 0 or not commit:
        return "unknown"
    dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    return commit + (" (with uncommitted changes)" if dirty else "")


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
        for section in (head, head.get("tot")):
            if isinstance(section, dict):
                factor = percent_factor(section)
                for key in PERCENT_KEYS:
                    if section.get(key) is not None:
                        section[key] = float(section[key]) * factor
    return view


def _pct_phrase(low: Any, high: Any) -> str:
    return f"{fmt.percent_change(low)} to {fmt.percent_change(high)}"


def plain_outcome(label: str) -> str:
    """``'Household income (log PEN per year)' -> 'household income'`` for a sentence."""
    base = str(label).split(" (")[0].strip() or str(label)
    if base[:1].isupper() and base[1:2].islower():
        base = base[:1].lower() + base[1:]
    return base


def headline_sentences(results: Mapping[str, Any]) -> dict[str, Markdown]:
    """Plain-language sentences for the executive summary (numbers from the dict only)."""
    a = results.get("analysis") or {}
    h = results.get("headline") or {}
    data = results.get("data") or {}
    cur, year = a.get("currency"), a.get("currency_year")
    out: dict[str, Markdown] = {}
    if h.get("estimate") is None:
        return out
    label = md(plain_outcome(a.get("outcome_label") or h.get("outcome") or a.get("outcome") or "the outcome"))
    if h.get("percent") is not None:
        effect = (f"**{fmt.percent_change(h['percent'])}** (95% confidence interval "
                  f"{md(_pct_phrase(h.get('percent_low'), h.get('percent_high')))})")
    else:
        effect = (f"**{md(fmt.signed(h['estimate']))}** (95% confidence interval "
                  f"{md(fmt.interval(h.get('conf_low'), h.get('conf_high')))})")
    population = md(h.get("population") or "the study population")
    low, high = h.get("conf_low"), h.get("conf_high")
    verb = "changed"
    if low is not None and high is not None:
        verb = "raised" if float(low) > 0 else "lowered" if float(high) < 0 else "changed"
    out["effect"] = Markdown(f"The programme {verb} {label} by an estimated {effect}, for {population}.")
    if h.get("money_per_household") is not None:
        unit = md(a.get("unit_label") or "household")
        out["money"] = Markdown(
            f"In money, that is about **{md(fmt.money(h['money_per_household'], cur, year))} per {unit} per year** "
            f"(95% confidence interval {md(fmt.money_short(h.get('money_low'), cur))} to "
            f"{md(fmt.money_short(h.get('money_high'), cur))})"
            + (f", against a baseline mean income of {md(fmt.money_short(data.get('baseline_mean_income'), cur))}"
               if data.get("baseline_mean_income") is not None else "") + ".")
    tot = h.get("tot") or {}
    if tot.get("percent") is not None:
        out["tot"] = Markdown(
            f"Among households that actually used the service, the estimated effect was "
            f"**{md(fmt.percent_change(tot['percent']))}** (95% confidence interval "
            f"{md(_pct_phrase(tot.get('percent_low'), tot.get('percent_high')))}).")
    if h.get("n_units") is not None:
        p = h.get("p_value")
        meaning = (": an effect this large would be very unlikely if the programme had no effect"
                   if p is not None and float(p) < 0.01 else "")
        out["precision"] = Markdown(
            f"The estimate uses {md(fmt.integer(h.get('n_units')))} {md(a.get('unit_label') or 'unit')}s in "
            f"{md(fmt.integer(h.get('n_clusters')))} clusters (p-value {md(fmt.p_value(p))}{meaning}).")
    return out


def subgroup_sentence(results: Mapping[str, Any]) -> Markdown | None:
    het = results.get("heterogeneity") or {}
    rows = het.get("rows") or []
    if not rows:
        return None
    log_scale = (results.get("headline") or {}).get("scale") == "log"
    min_cell = min_cell_of(results)
    parts = []
    difference = None
    for r in rows:
        if must_suppress(r, "n", min_cell):
            parts.append(f"{md(r.get('subgroup'))}: {md(suppressed_label(min_cell))} (too few units to report)")
            continue
        if is_difference_row(r):
            difference = r
            continue
        if log_scale:
            est = fmt.percent_change(fmt.log_points_to_percent(r.get("estimate")))
            ci = _pct_phrase(fmt.log_points_to_percent(r.get("conf_low")), fmt.log_points_to_percent(r.get("conf_high")))
        else:
            est = fmt.signed(r.get("estimate"))
            ci = f"{fmt.number(r.get('conf_low'))} to {fmt.number(r.get('conf_high'))}"
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
    return Markdown("Effects by group: " + text)


COST_KEYS = ("cost_per_participant_pilot", "cost_per_participant_scale", "cost_per_unit_impact", "bcr", "npv")


def has_cost_numbers(cost: Mapping[str, Any]) -> bool:
    return any(cost.get(k) is not None for k in COST_KEYS)


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
        unit = cost.get("impact_unit") or f"{cur or ''} 1 of yearly income gained"
        text += f"; the cost per unit of impact is {md(fmt.money_short(cost['cost_per_unit_impact'], cur, 3))} (unit: {md(unit)}"
        if cost.get("cost_per_unit_impact_low") is not None:
            text += (f"; range {md(fmt.number(cost.get('cost_per_unit_impact_low'), 3))} to "
                     f"{md(fmt.number(cost.get('cost_per_unit_impact_high'), 3))}")
        text += ")"
    if cost.get("bcr") is not None:
        text += f", a benefit-cost ratio of {md(fmt.number(cost['bcr'], 1))}"
    return Markdown(text.strip() + ".") if text else None


def scale_sentence(results: Mapping[str, Any]) -> Markdown | None:
    scale = results.get("scale") or {}
    detail = scale.get("focus_detail") or {}
    if not detail and not scale.get("ranking"):
        return None
    focus = next((r for r in scale.get("ranking") or [] if r.get("intervention") == scale.get("focus")), {})
    verdict = detail.get("verdict") or ("passes every gate" if focus and not focus.get("failed_gates") else None)
    bottleneck = detail.get("bottleneck") or focus.get("bottleneck")
    text = "Scale-readiness verdict: "
    text += f"**{md(verdict)}**" if verdict else "none recorded"
    if focus.get("rank") is not None:
        text += f", ranked {md(fmt.integer(focus['rank']))} of {len(scale.get('ranking') or [])} in the portfolio"
        if focus.get("p_rank_1") is not None:
            text += f" (probability of ranking first {md(fmt.share(focus['p_rank_1']))})"
    if bottleneck:
        text += f". The bottleneck to address first is **{md(bottleneck)}**"
    return Markdown(text + ".")


def figure_markdown(fig: SavedFigure | None, folder: str = FIGURE_DIR, width: str = "85%") -> Markdown | None:
    """``![caption](path){fig-alt="..." width="95%"}`` (Quarto figure syntax)."""
    if fig is None:
        return None
    return Markdown(f'![{md(fig.caption)}]({folder}/{fig.path.name}){{fig-alt="{attribute(fig.alt)}" width="{width}"}}')


def context(results: Mapping[str, Any], figures: Mapping[str, SavedFigure], *, date: str,
            command: str | None = None) -> dict[str, Any]:
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
        "headline": headline_sentences(results),
        "subgroups": subgroup_sentence(results),
        "cost_text": cost_sentence(results),
        "scale_text": scale_sentence(results),
        "fig": {name: figure_markdown(f) for name, f in figures.items()},
        "t": {
            "validation": tables.validation_table(results),
            "sample_flow": tables.sample_flow_table(results),
            "attrition": tables.attrition_table(results),
            "balance": tables.balance_table(results),
            "estimators": tables.estimators_table(results),
            "estimator_notes": tables.estimator_notes(results),
            "event_study": tables.event_study_table(results),
            "heterogeneity": tables.heterogeneity_table(results),
            "multiple": tables.multiple_outcomes_table(results),
            "iv": tables.iv_table(results),
            "weak_iv": tables.weak_iv_table(results),
            "compliers": tables.complier_table(results),
            "bacon": tables.bacon_table(results),
            "cost": tables.cost_table(results),
            "scorecard": tables.scorecard_table(results),
            "scale_detail": tables.scale_detail_table(results),
            "inputs": tables.provenance_inputs_list(results),
            "headline": tables.headline_table(results),
            "packages": tables.pipe_table(["Package", "Version"], package_versions(), "ll"),
        },
        "att": att,
        "lee": lee,
        "es": es,
        "pretrend": es.get("pretrend") or {},
        "wild": results.get("wild_bootstrap") or {},
        "ri": results.get("randomization_inference") or {},
        "power": results.get("power") or {},
        "balance": results.get("balance") or {},
        "het": results.get("heterogeneity") or {},
        "iv": results.get("iv") or {},
        "seeds": seeds,
        "warnings": [md(w) for w in results.get("warnings") or [] if w],
        "seed_purposes": ", ".join(map(str, seeds.get("purposes") or [])),
        "prov": prov,
        "command": command or prov.get("command") or f"impactkit pack analyses/{a.get('name', '<analysis>')}",
        "commit": git_commit(),
        "command_code": Markdown(str(command or prov.get("command") or f"impactkit pack analyses/{a.get('name', '<analysis>')}")
                                 .replace("`", "'").replace("\n", " ")),
        "pagebreak": Markdown("{{< pagebreak >}}"),
        "impactkit_version": prov.get("impactkit_version") or _version("impactkit"),
    }


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
              templates: Path | None = None) -> str:
    """Draw the figures into ``folder/evidence-pack_files/figures`` and return the ``.qmd`` text.

    ``date`` (ISO ``YYYY-MM-DD``, default today in UTC) is the render date printed in the pack;
    it never enters the results document.
    """
    check_results(results)
    results = display_view(results)
    folder = Path(folder)
    figures = save_figures(results, folder / FIGURE_DIR)
    when = date or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    template = environment(templates).get_template(TEMPLATE_NAME)
    values = {k: nullable(v) for k, v in context(results, figures, date=when, command=command).items()}
    return ensure_block_spacing(template.render(**values))
