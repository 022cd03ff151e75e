"""Results document -> evidence-pack ``.qmd`` text (jinja2 template + figures).

:func:`build_qmd` takes the results dict of :func:`impactkit.analysis.run_analysis`
(schema ``impactkit.results/2``, ``docs/results-schema.md``), draws the figures into
``<folder>/figures/`` and returns the ``.qmd`` text. It never
recomputes an estimate: every number comes from the dict; the only arithmetic is the
conversion of a log-point effect of a subgroup to a percentage, ``100 (exp(b) - 1)``,
for plain-language sentences (:mod:`impactkit.pack.sentences`; the colophon tables are in
:mod:`impactkit.pack.colophon`, both re-exported here). Every string from data or specs is escaped
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
from impactkit.pack.colophon import (PACKAGES, SHORT_HASH, code_span, git_commit, is_hex_digest,  # noqa: F401
                                     package_versions, packages_table, provenance_inputs_table, run_table)
from impactkit.pack.escape import Markdown, attribute, md, yaml_string
from impactkit.pack.figures import SavedFigure, save_figures
from impactkit.pack.sentences import (COST_KEYS, NUMBER_WORDS, at_horizon, cost_sentence, effect_with_ci,  # noqa: F401
                                      full_stop, has_cost_numbers, headline_sentences, impact_unit_phrase,
                                      periods_words, plain_outcome, scale_sentence, sentence, subgroup_intro,
                                      subgroup_sentence, tot_horizon, two_year_sentence, verdict_phrase, years_phrase)
from impactkit.privacy import min_cell_of, suppressed_label

SCHEMA = "impactkit.results/2"
TEMPLATE_NAME = "evidence-pack.qmd.j2"
FIGURE_DIR = "figures"  # not Quarto's own <stem>_files, which Quarto deletes after embedding
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
