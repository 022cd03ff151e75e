"""The policy brief: two A4 pages (PDF) / one screen-first page (HTML), per language.

:func:`build_brief` turns the results document (the same one the technical report shows)
into a brief ``.qmd`` in one language. Page 1: a one-sentence message, the effect over
time as a chart with a plain caption, three or four findings each with its uncertainty in
words and numbers, cost per participant and the total budget at the stated scale, what
scaling needs, the recommendation (:mod:`impactkit.pack.recommend`). Page 2 leads with
what the audience needs (government: budget, coverage and the state's part; company: the
business case; funder: cost-effectiveness), then how we know, what is not known, and the
meaning of the labels.

Every sentence goes through the gettext catalog of the language (:mod:`impactkit.pack.i18n`);
authored text (title, recommendation, partner, the government's part...) comes from
``[pack.text.<lang>]`` (:class:`BriefSettings`), English defaults from the results. A
string with no translation is recorded in :attr:`Brief.untranslated` and the build warns.
Honesty labels (:class:`Label`) stand next to the number they qualify.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impactkit.pack.escape import Markdown, attribute, md, yaml_string
from impactkit.pack.i18n import SOURCE_LANGUAGE, Local, N_
from impactkit.pack.recommend import Recommendation, Verdict, gate_lists, reconcile, verdict

AUDIENCES = ("government", "company", "funder")
BCR_PLAUSIBLE = 20.0  # benefit-cost ratios above this are rare in evaluated programmes: check the accounts
IRR_PLAUSIBLE = 1.0  # an internal rate of return above 100% a year: check the accounts
AUTHORED_KEYS = ("title", "programme", "outcome", "unit_plural", "subgroup", "recommendation", "bottleneck",
                 "partner", "government_role", "business_case", "organisation")


_ = N_  # marks a message for extraction; the brief looks it up through Writer.t

@dataclass(frozen=True)
class Honesty:
    """What the numbers rest on (set by the caller from the contract and the accounts)."""

    simulated_data: bool = False
    illustrative_costs: bool = False
    assumed: tuple[str, ...] = ()  # cost inputs that are assumptions (e.g. "scale_participants")


@dataclass(frozen=True)
class BriefSettings:
    """``[pack]`` options the brief uses: audience, languages, region, authored text."""

    audience: str = "government"
    languages: tuple[str, ...] = (SOURCE_LANGUAGE,)
    region: str | None = None
    text: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    honesty: Honesty = field(default_factory=Honesty)


@dataclass
class Brief:
    lang: str
    qmd: str
    recommendation: Recommendation
    untranslated: list[str]
    warnings: list[str]
    figure_alt: str


class Writer:
    """Translation, formatting and labels for one language; records what is untranslated."""

    def __init__(self, local: Local, authored: Mapping[str, str], defaults: Mapping[str, str]):
        self.local = local
        self.authored = authored
        self.defaults = defaults
        self.untranslated: list[str] = []

    def t(self, message: str, **values: Any) -> str:
        """The translation of ``message`` with ``%(name)s`` values filled in (escaped by caller)."""
        text = self.local.gettext(message)
        if self.local.lang != SOURCE_LANGUAGE and text == message and any(c.isalpha() for c in message):
            self.untranslated.append(message)
        return text % values if values else text

    def authored_text(self, key: str) -> str | None:
        """Authored text for ``key``: ``[pack.text.<lang>]``, else the English default
        (recorded as untranslated when the brief is not in English)."""
        value = self.authored.get(key)
        if value:
            return value
        default = self.defaults.get(key)
        if default and self.local.lang != SOURCE_LANGUAGE:
            self.untranslated.append(f"[pack.text.{self.local.lang}] {key}")
        return default or None

    def label(self, kind: str) -> str:
        """An honesty label at the number it qualifies: ``[simulated data]``."""
        names = {"simulated": _("simulated data"), "illustrative": _("illustrative accounts"),
                 "assumption": _("assumption"), "unknown": _("unknown"),
                 "check": _("implausibly high: check the accounts")}
        return f"[\\[{md(self.t(names[kind]))}\\]]{{.label .{kind}}}"


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def percent_view(effect: Mapping[str, Any], log_scale: bool) -> tuple[float | None, float | None, float | None]:
    """``(estimate, low, high)`` in percent change for a log-scale effect, else as given.

    The results give ``percent`` as a proportion (``exp(b) - 1``); without it a log-point
    effect is converted, ``100 (exp(b) - 1)``.
    """
    def pct(key: str, log_key: str) -> float | None:
        if effect.get(key) is not None:
            return 100.0 * float(effect[key])
        value = _num(effect.get(log_key))
        return 100.0 * math.expm1(value) if value is not None and log_scale else value
    return pct("percent", "estimate"), pct("percent_low", "conf_low"), pct("percent_high", "conf_high")


def certainty_words(w: Writer, low: float | None, high: float | None) -> str:
    """The interval in words: sure of the direction, or not."""
    if low is None or high is None:
        return w.t("its precision is not known")
    if low > 0:
        return w.t("we are confident it is an increase")
    if high < 0:
        return w.t("we are confident it is a decrease")
    return w.t("it could be zero")


def focus_row(results: Mapping[str, Any]) -> dict[str, Any]:
    scale = results.get("scale") or {}
    return next((r for r in scale.get("ranking") or [] if r.get("intervention") == scale.get("focus")), {}) or {}


def results_verdict(results: Mapping[str, Any]) -> Verdict:
    """The results' verdict (:func:`impactkit.pack.recommend.verdict`) for this document."""
    head = results.get("headline") or {}
    analysis = results.get("analysis") or {}
    scale = results.get("scale") or {}
    failed, uncertain = gate_lists(scale.get("focus_detail") or {}, focus_row(results))
    better = str(analysis.get("better") or head.get("better") or "higher").lower()
    return verdict(_num(head.get("conf_low")), _num(head.get("conf_high")), higher_is_better=better != "lower",
                   failed_gates=failed, uncertain_gates=uncertain, assessed=bool(scale))


def verdict_text(w: Writer, rec: Recommendation, gates: str) -> str:
    texts = {
        Verdict.NO_EVIDENCE: _("There is no estimate of the effect yet: do not decide on scaling from this analysis."),
        Verdict.STOP: _("The programme made things worse: do not scale it; review or stop it."),
        Verdict.NOT_SHOWN: _("The effect is not distinguishable from zero: do not scale on this evidence."),
        Verdict.FIX_FIRST: _("The effect is positive but the programme fails a readiness check (%(gates)s): "
                             "fix this before scaling."),
        Verdict.SCALE_IN_STAGES: _("The effect is clearly positive: scale up in stages, and confirm %(gates)s "
                                   "at each stage before the next."),
        Verdict.SCALE: _("The effect is clearly positive and every readiness check is met: scale up."),
    }
    return w.t(texts[rec.verdict], gates=gates)


GATE_NAMES = {"readiness": _("readiness to be run at scale"), "cost_data": _("cost data"),
              "evidence": _("evidence of effect"), "credibility": _("credibility"),
              "value_for_money": _("value for money"), "partner_alignment": _("a committed partner"),
              "financial_sustainability": _("financial sustainability")}


def gate_phrase(w: Writer, names: list[str]) -> str:
    words = [w.t(GATE_NAMES[n]) if n in GATE_NAMES else n.replace("_", " ") for n in names]
    return ", ".join(words) if words else w.t("readiness")


@dataclass
class Facts:
    """The numbers of the brief, read from the results document (nothing re-estimated)."""

    log_scale: bool
    effect: tuple[float | None, float | None, float | None]
    two_year: tuple[float | None, float | None, float | None]
    two_year_time: int | None
    users: tuple[float | None, float | None, float | None]
    take_up: float | None
    money: tuple[float | None, float | None, float | None]
    currency: str | None
    cost: Mapping[str, Any]
    n_units: Any
    n_clusters: Any


def facts_of(results: Mapping[str, Any]) -> Facts:
    head = results.get("headline") or {}
    log_scale = head.get("scale") == "log"
    two = head.get("at_horizon") or head.get("two_year") or {}
    tot = head.get("tot") or {}
    a = results.get("analysis") or {}
    cost = results.get("cost") or {}
    return Facts(
        log_scale=log_scale,
        effect=percent_view(head, log_scale),
        two_year=percent_view(two, log_scale) if two else (None, None, None),
        two_year_time=int(two["event_time"]) if two.get("event_time") is not None else None,
        users=percent_view(tot, log_scale) if tot else (None, None, None),
        take_up=_num(tot.get("take_up")),
        money=(_num(head.get("money_per_unit")), _num(head.get("money_low")),
               _num(head.get("money_high"))),
        currency=str(cost.get("currency") or a.get("currency") or "") or None,
        cost=cost,
        n_units=head.get("n_units"),
        n_clusters=head.get("n_clusters"),
    )


def effect_phrase(w: Writer, triple: tuple[float | None, float | None, float | None], log_scale: bool) -> str:
    """``+108% (95% confidence interval: +98% to +118%)`` (or in outcome units)."""
    est, low, high = triple
    fmt = w.local.signed_percent if log_scale else (lambda v: w.local.signed(v, 2))
    return w.t("%(effect)s (95%% confidence interval %(low)s to %(high)s)",
               effect=fmt(est), low=fmt(low), high=fmt(high))


def cost_lines(w: Writer, facts: Facts, honesty: Honesty) -> dict[str, str]:
    """Cost per participant, total budget at the stated scale, BCR/IRR with warnings."""
    cost, loc, cur = facts.cost, w.local, facts.currency
    out: dict[str, str] = {}
    if not cost or not any(cost.get(k) is not None for k in ("cost_per_participant_pilot", "cost_per_participant_scale")):
        out["per_participant"] = w.t("Costs: no programme accounts were given, so cost per participant and the "
                                     "budget at scale are not known.") + " " + w.label("unknown")
        return out
    tag = (" " + w.label("illustrative")) if honesty.illustrative_costs else ""
    year = cost.get("year")
    prices = w.t(" (%(year)s prices)", year=int(year)) if year is not None else ""
    pilot, at_scale = _num(cost.get("cost_per_participant_pilot")), _num(cost.get("cost_per_participant_scale"))
    parts = []
    if pilot is not None:
        parts.append(w.t("%(amount)s per participant in the pilot", amount=loc.money(pilot, cur)))
    if at_scale is not None:
        parts.append(w.t("%(amount)s expected at scale", amount=loc.money(at_scale, cur)))
    out["per_participant"] = w.t("Cost: %(parts)s%(prices)s.", parts="; ".join(parts), prices=prices) + tag
    n_scale = _num(cost.get("scale_participants"))
    if at_scale is not None and n_scale is not None:
        # display arithmetic only: the budget is cost per participant at scale times participants
        low, high = _num(cost.get("cost_per_participant_scale_low")), _num(cost.get("cost_per_participant_scale_high"))
        span = (w.t(" (range %(low)s to %(high)s)", low=loc.money(low * n_scale, cur), high=loc.money(high * n_scale, cur))
                if low is not None and high is not None else "")
        assumed = (" " + w.label("assumption")) if "scale_participants" in honesty.assumed else ""
        out["budget"] = w.t("Total budget to reach %(n)s participants: about %(total)s%(span)s.",
                            n=loc.integer(n_scale), total=loc.money(at_scale * n_scale, cur), span=span) + tag + assumed
    bcr, irr = _num(cost.get("bcr")), _num(cost.get("irr"))
    if bcr is not None:
        check = (" " + w.label("check")) if bcr > BCR_PLAUSIBLE else ""
        horizon = _num(cost.get("horizon_years"))
        out["bcr"] = w.t("Each %(unit)s spent returns %(bcr)s in benefits over %(years)s years (benefit-cost ratio).",
                         unit=loc.money(1, cur), bcr=loc.money(bcr, cur, 1),
                         years=loc.integer(horizon) if horizon is not None else "?") + tag + check
    if irr is not None:
        check = (" " + w.label("check")) if irr > IRR_PLAUSIBLE else ""
        out["irr"] = w.t("Internal rate of return: %(irr)s a year.", irr=loc.share(irr)) + tag + check
    return out


def findings(w: Writer, facts: Facts, results: Mapping[str, Any], honesty: Honesty) -> list[str]:
    """Three or four findings in plain words, each with its uncertainty in words and numbers."""
    loc = w.local
    sim = (" " + w.label("simulated")) if honesty.simulated_data else ""
    outcome = w.authored_text("outcome") or w.t("the outcome")
    items = []
    est, low, high = facts.effect
    if est is not None:
        items.append(w.t("**On average**, %(outcome)s in served communities rose by %(effect)s compared with "
                         "communities not yet served; %(certainty)s.", outcome=md(outcome),
                         effect=effect_phrase(w, facts.effect, facts.log_scale),
                         certainty=certainty_words(w, low, high)) + sim)
    if facts.money[0] is not None:
        year = (results.get("analysis") or {}).get("currency_year")
        items.append(w.t("**In money**, that is about %(money)s more per participant per year (between "
                         "%(low)s and %(high)s)%(prices)s.", money=loc.money(facts.money[0], facts.currency),
                         low=loc.money(facts.money[1], facts.currency),
                         high=loc.money(facts.money[2], facts.currency),
                         prices=w.t(" (%(year)s prices)", year=int(year)) if year is not None else "") + sim)
    if facts.two_year[0] is not None and facts.two_year_time is not None:
        items.append(w.t("**The effect grows over time**: after %(years)s years it is %(effect)s; %(certainty)s.",
                         years=loc.integer(facts.two_year_time), effect=effect_phrase(w, facts.two_year, facts.log_scale),
                         certainty=certainty_words(w, facts.two_year[1], facts.two_year[2])) + sim)
    if facts.users[0] is not None and facts.take_up is not None:
        items.append(w.t("**Not everyone used the service**: %(share)s of those offered it did; for those who "
                         "did, the effect is larger, %(effect)s.", share=loc.share(facts.take_up),
                         effect=effect_phrase(w, facts.users, facts.log_scale)) + sim)
    return items[:4]


def scaling_lines(w: Writer, results: Mapping[str, Any], rec: Recommendation) -> list[str]:
    """What scaling needs: the bottleneck, the partner, the government's part, readiness."""
    scale = results.get("scale") or {}
    detail = scale.get("focus_detail") or {}
    row = focus_row(results)
    out = []
    bottleneck = w.authored_text("bottleneck")
    if bottleneck:
        out.append(w.t("**Bottleneck to fix first:** %(what)s.", what=md(bottleneck)))
    partner = w.authored_text("partner")
    if partner:
        out.append(w.t("**Partner:** %(who)s.", who=md(partner)))
    government = w.authored_text("government_role")
    if government:
        out.append(w.t("**The government's part:** %(what)s.", what=md(government)))
    p_pass = _num(detail.get("p_pass_gates", row.get("p_pass_gates")))
    n_options = len(scale.get("ranking") or [])
    unknown = sorted({u.strip() for c in scale.get("criteria") or [] if c.get("intervention") == scale.get("focus")
                      for u in str(c.get("unknown_inputs") or "").split(",") if u.strip()})
    tag = (" " + w.label("unknown")) if unknown else ""
    if p_pass is not None:
        # rank and verdict in one sentence, never side by side saying different things
        if rec.verdict == Verdict.SCALE and row.get("rank") == 1:
            out.append(w.t("**Readiness:** the strongest of %(n)s options assessed, and it passes every check.",
                           n=loc_int(w, n_options)) + tag)
        elif row.get("rank") == 1:
            out.append(w.t("**Readiness:** the most promising of %(n)s options assessed, but not yet shown to be "
                           "ready to run at scale (chance it is: %(p)s).", n=loc_int(w, n_options),
                           p=w.local.share(p_pass)) + tag)
        else:
            out.append(w.t("**Readiness:** chance that it passes every readiness check: %(p)s.",
                           p=w.local.share(p_pass)) + tag)
    return out


def loc_int(w: Writer, n: Any) -> str:
    return w.local.integer(n)


def defaults_of(results: Mapping[str, Any]) -> dict[str, str]:
    """English defaults of the authored keys, from the results document."""
    a = results.get("analysis") or {}
    detail = (results.get("scale") or {}).get("focus_detail") or {}
    row = focus_row(results)
    outcome = str(a.get("outcome_label") or a.get("outcome") or "")
    return {k: v for k, v in {
        "title": a.get("title"), "programme": row.get("name") or "The programme",
        "outcome": (outcome[:1].lower() + outcome[1:]) if outcome[1:2].islower() else outcome,
        "subgroup": a.get("subgroup_label"), "recommendation": a.get("recommendation"),
        "bottleneck": detail.get("bottleneck") or row.get("bottleneck"), "organisation": a.get("organisation"),
    }.items() if v}


def message(w: Writer, facts: Facts, rec: Recommendation) -> str:
    """The one-sentence message: what changed, by how much, and what to do."""
    programme = w.authored_text("programme") or w.t("The programme")
    outcome = w.authored_text("outcome") or w.t("the outcome")
    est = facts.effect[0]
    if est is None:
        return w.t("%(programme)s: no estimate of its effect yet.", programme=md(programme))
    low, high = facts.effect[1], facts.effect[2]
    size = (w.local.percent(abs(est)) if facts.log_scale else w.local.number(abs(est), 2))
    action = {Verdict.SCALE: _("ready to scale up"), Verdict.SCALE_IN_STAGES: _("worth scaling up in stages"),
              Verdict.FIX_FIRST: _("not ready to scale until a readiness check is fixed"),
              Verdict.NOT_SHOWN: _("not shown to work, so not ready to scale"),
              Verdict.STOP: _("harmful, so not to be scaled"), Verdict.NO_EVIDENCE: _("not yet evaluated")}
    if low is not None and low > 0:
        template = _("%(programme)s raised %(outcome)s by about %(size)s, and is %(action)s.")
    elif high is not None and high < 0:
        template = _("%(programme)s lowered %(outcome)s by about %(size)s, and is %(action)s.")
    else:
        size = w.local.signed_percent(est) if facts.log_scale else w.local.signed(est, 2)
        template = _("%(programme)s changed %(outcome)s by about %(size)s, and is %(action)s.")
    return w.t(template,
               programme=md(programme), outcome=md(outcome), size=size, action=w.t(action[rec.verdict]))


def audience_section(w: Writer, audience: str, costs: dict[str, str], facts: Facts, results: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Page 2's lead section for the audience."""
    if audience == "company":
        title = w.t("The business case")
        lines = [costs.get("bcr"), costs.get("irr"), costs.get("per_participant")]
        case = w.authored_text("business_case")
        if case:
            lines.insert(0, md(case))
    elif audience == "funder":
        title = w.t("Cost-effectiveness")
        cpi = _num(facts.cost.get("cost_per_unit_impact"))
        unit = (w.t("It costs %(amount)s to give participants %(one)s of yearly benefit.",
                    amount=w.local.money(cpi, facts.currency, 2), one=w.local.money(1, facts.currency))
                if cpi is not None else None)
        lines = [unit, costs.get("bcr"), costs.get("irr"), costs.get("budget")]
    else:
        title = w.t("What the state must fund")
        government = w.authored_text("government_role")
        n_scale = _num(facts.cost.get("scale_participants"))
        coverage = (w.t("Coverage at the stated scale: %(n)s participants; in the pilot %(share)s of those offered the "
                        "service used it.", n=w.local.integer(n_scale), share=w.local.share(facts.take_up))
                    if n_scale is not None and facts.take_up is not None else None)
        lines = [coverage, w.t("The state's part: %(what)s.", what=md(government)) if government else None,
                 costs.get("bcr"), costs.get("irr")]
    return title, [x for x in lines if x]


def method_lines(w: Writer, results: Mapping[str, Any], honesty: Honesty) -> list[str]:
    """How we know, in plain words, with the checks that passed."""
    loc = w.local
    data = results.get("data") or {}
    es = results.get("event_study") or {}
    pt = es.get("pretrend") or {}
    out = [w.t("Communities received the service in different years; participants in communities served earlier "
               "are compared with those served later or not yet (a staggered difference-in-differences design).")]
    if data.get("n_units") is not None:
        waves = data.get("waves") or []
        out.append(w.t("Data: %(n)s participants in %(c)s communities, surveyed %(k)s times (%(first)s to %(last)s).",
                       n=loc.integer(data.get("n_units")), c=loc.integer(data.get("n_clusters")),
                       k=loc.integer(len(waves)), first=str(waves[0]) if waves else "?",
                       last=str(waves[-1]) if waves else "?")
                   + ((" " + w.label("simulated")) if honesty.simulated_data else ""))
    if pt.get("p_value") is not None:
        ok = float(pt["p_value"]) >= 0.05
        out.append(w.t("Before the service arrived, served and comparison communities were on the same path "
                       "(test of diverging trends: p = %(p)s).", p=loc.number(pt["p_value"], 2)) if ok else
                   w.t("Warning: before the service arrived, served and comparison communities were already "
                       "diverging (p = %(p)s); the effect may be overstated.", p=loc.number(pt["p_value"], 2)))
    out.append(w.t("The technical report (annex) gives the methods, diagnostics and provenance of every number."))
    return out


def unknown_lines(w: Writer, results: Mapping[str, Any], honesty: Honesty) -> list[str]:
    out = []
    if honesty.simulated_data:
        out.append(w.t("The effect is estimated on a simulated panel: it shows what the analysis would find, not what "
                       "happened to real people.") + " " + w.label("simulated"))
    if honesty.illustrative_costs:
        out.append(w.t("The costs are illustrative accounts, not the programme's real accounts: replace them "
                       "before any budget decision.") + " " + w.label("illustrative"))
    scale = results.get("scale") or {}
    unknown = sorted({u.strip() for c in scale.get("criteria") or [] if c.get("intervention") == scale.get("focus")
                      for u in str(c.get("unknown_inputs") or "").split(",") if u.strip()})
    names = {"prior": _("how likely such programmes are to work before any evidence"),
             "replications": _("whether the effect has been replicated elsewhere")}
    known = [w.t(names[u]) for u in unknown if u in names]
    others = len([u for u in unknown if u not in names])
    if others:
        known.append(w.t("%(n)s other inputs of the readiness assessment (listed in the technical report)",
                         n=w.local.integer(others)))
    if known:
        out.append(w.t("Not yet known: %(what)s.", what="; ".join(known)) + " " + w.label("unknown"))
    return out


def labels_legend(w: Writer) -> list[str]:
    return [w.label("simulated") + " " + w.t("rests on simulated data, not a real survey."),
            w.label("illustrative") + " " + w.t("rests on illustrative cost accounts that must be replaced."),
            w.label("assumption") + " " + w.t("rests on an assumption, not a measurement."),
            w.label("unknown") + " " + w.t("depends on something not yet known."),
            w.label("check") + " " + w.t("a figure this high is rarely seen: check the accounts before using it.")]


HEADINGS = {"findings": _("Findings"), "cost": _("Cost"), "scaling": _("What scaling needs"),
            "recommendation": _("Recommendation"), "how": _("How we know"), "unknown": _("What is not known"),
            "labels": _("Labels used in this brief"), "brief": _("Policy brief")}


def brief_qmd(results: Mapping[str, Any], settings: BriefSettings, lang: str, *, date: str,
              figure: str | None, figure_alt: str, annex: str) -> Brief:
    """The brief's ``.qmd`` text in ``lang`` (figure path relative to the ``.qmd``)."""
    local = Local(lang, settings.region)
    w = Writer(local, settings.text.get(lang, {}), defaults_of(results))
    h = {key: w.t(message) for key, message in HEADINGS.items()}
    facts = facts_of(results)
    # the authored recommendation's stance is read from its source (English) text, whatever
    # the language shown; the translation is shown only when the source text stands
    source = settings.text.get(SOURCE_LANGUAGE, {}).get("recommendation") or defaults_of(results).get("recommendation")
    rec = reconcile(results_verdict(results), source)
    if rec.authored:
        rec = Recommendation(rec.verdict, w.authored_text("recommendation"), rec.warning)
    warnings = [rec.warning] if rec.warning else []
    failed, uncertain = gate_lists((results.get("scale") or {}).get("focus_detail") or {}, focus_row(results))
    gates = gate_phrase(w, failed or uncertain)
    costs = cost_lines(w, facts, settings.honesty)
    title = w.authored_text("title") or h["brief"]
    org = w.authored_text("organisation")
    lead_title, lead_lines = audience_section(w, settings.audience, costs, facts, results)
    caption = w.t("How much higher %(outcome)s was in served communities than in comparison communities, year by "
                  "year after the service arrived. Each bar shows the range in which the true effect lies with 95%% "
                  "confidence. Before year 0 both groups were on the same path.",
                  outcome=md(w.authored_text("outcome") or w.t("the outcome")))
    if settings.honesty.simulated_data:
        caption += " " + w.label("simulated")
    lines = [
        "---",
        f"title: {yaml_string(title)}",
        f"subtitle: {yaml_string(h['brief'] + (' · ' + org if org else ''))}",
        f"date: {yaml_string(local.date(date))}",
        f"lang: {lang}",
        "format:",
        "  html:",
        "    embed-resources: true",
        "    toc: false",
        "    css: brief.css",
        "  typst:",
        "    papersize: a4",
        "    margin:",
        "      x: 1.6cm",
        "      y: 1.3cm",
        "    fontsize: 9pt",
        "    mainfont: DejaVu Sans",
        "    include-in-header: brief-typst.typ",
        "---",
        "",
    ]
    body = []
    if settings.honesty.simulated_data or settings.honesty.illustrative_costs:
        notes = []
        if settings.honesty.simulated_data:
            notes.append(w.t("The effects come from simulated data."))
        if settings.honesty.illustrative_costs:
            notes.append(w.t("The costs are illustrative accounts."))
        body += ["::: {.honesty}", " ".join(notes), ":::", ""]
    body += ["::: {.message}", message(w, facts, rec), ":::", ""]
    if figure:
        body += [f'![{caption}]({figure}){{fig-alt="{attribute(figure_alt)}" width="78%"}}', ""]
    body += [f"## {h['findings']}", ""] + [f"- {x}" for x in findings(w, facts, results, settings.honesty)] + [""]
    cost_here = [costs.get("per_participant"), costs.get("budget")]
    body += [f"## {h['cost']}", ""] + [f"- {x}" for x in cost_here if x] + [""]
    scaling = scaling_lines(w, results, rec)
    if scaling:
        body += [f"## {h['scaling']}", ""] + [f"- {x}" for x in scaling] + [""]
    rec_lines = [f"**{h['recommendation']}.** {verdict_text(w, rec, gates)}"]
    if rec.authored:
        rec_lines.append(md(rec.authored))
    body += ["::: {.recommendation}", "\n\n".join(rec_lines), ":::", "", "{{< pagebreak >}}", ""]
    body += [f"## {lead_title}", ""] + [f"- {x}" for x in lead_lines] + [""]
    body += [f"## {h['how']}", ""] + [f"- {x}" for x in method_lines(w, results, settings.honesty)] + [""]
    unknowns = unknown_lines(w, results, settings.honesty)
    if unknowns:
        body += [f"## {h['unknown']}", ""] + [f"- {x}" for x in unknowns] + [""]
    body += [f"## {h['labels']}", ""] + [f"- {x}" for x in labels_legend(w)] + [""]
    body += [w.t("Technical report: %(file)s.", file=f"[{annex}]({annex})"), ""]
    return Brief(lang, "\n".join(lines + body), rec, sorted(set(w.untranslated)), warnings, figure_alt)


def today() -> str:
    return _dt.datetime.now(_dt.timezone.utc).date().isoformat()


def brief_stem(lang: str) -> str:
    return f"policy-brief-{lang}"


def write_brief_figure(results: Mapping[str, Any], folder: Path, settings: BriefSettings, lang: str) -> tuple[str, str] | None:
    """Draw the effect-over-time chart for ``lang``; returns ``(relative path, alt text)``."""
    from impactkit.pack.figures import effect_over_time_figure, save_png

    local = Local(lang, settings.region)
    w = Writer(local, settings.text.get(lang, {}), defaults_of(results))
    made = effect_over_time_figure(results, w)
    if made is None:
        return None
    rel = f"figures/effect-over-time-{lang}.png"
    save_png(made.figure, folder / rel)
    return rel, made.alt
