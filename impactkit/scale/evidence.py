"""Evidence strength: Maryland Scientific Methods Scale, Nesta levels, post-study probability.

- **Maryland Scientific Methods Scale (SMS)**, Sherman et al. (1997) *Preventing Crime: What
  Works, What Doesn't, What's Promising*, ch. 2, as used by the UK What Works Centre for Local
  Economic Growth (Madaleno & Waights 2016): 5 randomised trial; 4 quasi-random variation
  (IV, RDD) or difference-in-differences with support for parallel trends; 3 comparison with a
  matched/adjusted control group (and DiD without a pre-trend test); 2 comparison with
  controls for observables; 1 before-after or cross-section without a comparison group. We
  add 0 for monitoring of outputs only (no outcome comparison at all).
- **Grading down** (GRADE-style, Guyatt et al. 2008 BMJ 336:924): one level each for a failed
  pre-trend test (two for DiD: loses its parallel-trend support), differential attrition
  (p < 0.05), baseline imbalance (joint test p < 0.05), imprecision (95% CI crossing zero), and
  fewer than 42 clusters (Angrist & Pischke 2009, ch. 8.2; Cameron & Miller 2015 JHR 50:317).
  Floor 1. An unknown fact widens the level to an interval (grade applied / not applied).
- **Nesta Standards of Evidence** (Puttick & Ludlow 2013, Nesta): 1 describe what you do and
  why; 2 data showing positive change; 3 causality with a control group; 4 level 3 plus cost
  data ("why and how, at what cost"); 5 level 4 plus replication with manuals for consistent
  delivery.
- **Post-study probability** (Maniadis, Tufano & List 2014 AER 104(1):277, eq. 1; List 2022
  *The Voltage Effect*, ch. 1): PSP = power*prior / (power*prior + alpha*(1 - prior)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from impactkit.errors import InputError

DESIGN_BASE_LEVEL = {
    "rct": 5, "did": 4, "iv": 4, "rdd": 4, "matched": 3, "comparison": 2, "before_after": 1, "monitoring": 0,
}
FEW_CLUSTERS = 42
SIGNIFICANCE = 0.05
ESTIMATE_REQUIRED = ("design", "estimate", "conf_low", "conf_high")
ESTIMATE_OPTIONAL = ("pretrend_p", "n_clusters", "differential_attrition_p", "balance_joint_p", "power",
                     "benefit_per_participant_year", "benefit_per_participant_year_low",
                     "benefit_per_participant_year_high", "benefit_price_year")
# text facts: the currency of the money benefit (checked against the cost currency)
ESTIMATE_TEXT_OPTIONAL = ("benefit_currency",)
BENEFIT_FACTS = ("benefit_per_participant_year", "benefit_per_participant_year_low", "benefit_per_participant_year_high")


@dataclass(frozen=True)
class EvidenceGrade:
    """Graded SMS level as an interval, with the reasons for each downgrade."""

    low: int
    high: int
    base: int
    downgrades: tuple[str, ...] = field(default_factory=tuple)
    unknown: tuple[str, ...] = field(default_factory=tuple)


def post_study_probability(power: np.ndarray | float, prior: np.ndarray | float,
                           alpha: np.ndarray | float = SIGNIFICANCE) -> np.ndarray:
    """PSP = power*prior / (power*prior + alpha*(1-prior)) (Maniadis, Tufano & List 2014, eq. 1).

    Vectorised over numpy arrays. Where the numerator and denominator are both zero (prior 0
    or power 0 with prior 1 ... ) the PSP is 0: a finding that cannot be a true positive.
    """
    power = np.asarray(power, dtype=float)
    prior = np.asarray(prior, dtype=float)
    true_pos = power * prior
    denom = true_pos + alpha * (1.0 - prior)
    return np.divide(true_pos, denom, out=np.zeros(np.broadcast(true_pos, denom).shape), where=denom > 0)


def check_estimate_facts(key: str, facts: Any) -> dict[str, Any]:
    """Validate one entry of ``estimates=``: InputError naming the key and the fact."""
    if not isinstance(facts, dict):
        raise InputError(f"estimates['{key}']: must be a dict of estimate facts, got {type(facts).__name__}")
    missing = [name for name in ESTIMATE_REQUIRED if facts.get(name) is None]
    if missing:
        raise InputError(f"estimates['{key}']: missing required fact(s) {missing}")
    known = ESTIMATE_REQUIRED + ESTIMATE_OPTIONAL + ESTIMATE_TEXT_OPTIONAL
    extra = sorted(set(facts) - set(known))
    if extra:
        raise InputError(f"estimates['{key}']: unknown fact(s) {extra}; known: {known}")
    if facts["design"] not in DESIGN_BASE_LEVEL:
        raise InputError(f"estimates['{key}']: design '{facts['design']}' not among {sorted(DESIGN_BASE_LEVEL)}")
    clean: dict[str, Any] = {"design": facts["design"]}
    for name in ESTIMATE_REQUIRED[1:] + ESTIMATE_OPTIONAL:
        value = facts.get(name)
        if value is None:
            clean[name] = None
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"estimates['{key}']: fact '{name}' must be a number, got {value!r}") from None
        if not np.isfinite(number):
            raise InputError(f"estimates['{key}']: fact '{name}' must be finite, got {value!r}")
        if name.endswith("_p") or name == "power":
            if not 0.0 <= number <= 1.0:
                raise InputError(f"estimates['{key}']: fact '{name}' must lie in [0, 1], got {number}")
        clean[name] = number
    if clean["conf_low"] > clean["conf_high"]:
        raise InputError(f"estimates['{key}']: conf_low > conf_high")
    currency = facts.get("benefit_currency")
    if currency is not None and (not isinstance(currency, str) or not currency):
        raise InputError(f"estimates['{key}']: fact 'benefit_currency' must be a currency code, got {currency!r}")
    clean["benefit_currency"] = currency
    _check_benefit(key, clean)
    return clean


def _check_benefit(key: str, clean: dict[str, Any]) -> None:
    """The money benefit: a point, optionally with both ends of its interval, low <= point <= high."""
    point, low, high = (clean[name] for name in BENEFIT_FACTS)
    if point is None:
        if low is not None or high is not None:
            raise InputError(f"estimates['{key}']: fact 'benefit_per_participant_year' is required when its _low/_high are given")
        return
    if (low is None) != (high is None):
        raise InputError(f"estimates['{key}']: give both 'benefit_per_participant_year_low' and '_high', or neither")
    if low is not None and not low <= point <= high:
        raise InputError(f"estimates['{key}']: benefit_per_participant_year must lie within [_low, _high], "
                         f"got {point} outside [{low}, {high}]")
    year = clean["benefit_price_year"]
    if year is not None and year != int(year):
        raise InputError(f"estimates['{key}']: fact 'benefit_price_year' must be a whole year, got {year}")


def grade_from_facts(facts: dict[str, Any]) -> EvidenceGrade:
    """Graded SMS level of an impactkit estimate (rules in the module docstring)."""
    design = facts["design"]
    base = DESIGN_BASE_LEVEL[design]
    sure: list[str] = []
    maybe: list[str] = []

    def rule(value, fails, reason, levels=1):
        if value is None:
            maybe.extend([reason] * levels)
        elif fails(value):
            sure.extend([reason] * levels)

    if design == "did":
        pre = facts.get("pretrend_p")
        if pre is None:
            sure.append("no pre-trend test: DiD without parallel-trend support")
            maybe.append("pre-trend test may fail")
        elif pre < SIGNIFICANCE:
            sure.extend(["failed pre-trend test"] * 2)
    if base >= 2:
        rule(facts.get("differential_attrition_p"), lambda p: p < SIGNIFICANCE, "differential attrition")
        rule(facts.get("balance_joint_p"), lambda p: p < SIGNIFICANCE, "baseline imbalance")
        rule(facts.get("n_clusters"), lambda n: n < FEW_CLUSTERS, f"fewer than {FEW_CLUSTERS} clusters")
    if facts["conf_low"] <= 0.0 <= facts["conf_high"]:
        sure.append("imprecise: 95% CI crosses zero")
    floor = 1 if base >= 1 else 0
    high = max(floor, base - len(sure))
    low = max(floor, high - len(maybe))
    return EvidenceGrade(low=low, high=high, base=base, downgrades=tuple(sure), unknown=tuple(maybe))


def grade_without_facts(design: str) -> EvidenceGrade:
    """No declared level and no estimate: the grading facts are unknown, so [1, base]."""
    base = DESIGN_BASE_LEVEL[design]
    low = base if base <= 1 else 1
    return EvidenceGrade(low=low, high=base, base=base, unknown=("grading facts not reported",) if low < base else ())


def nesta_level(sms_level: np.ndarray, cost_known: np.ndarray, replications: np.ndarray,
                designed_for_replication: np.ndarray) -> np.ndarray:
    """Nesta standard of evidence (1-5) from the graded SMS level and replication facts (vectorised)."""
    sms = np.asarray(sms_level, dtype=float)
    level = np.where(sms >= 3, 3, np.where(sms >= 1, 2, 1))
    level = np.where((level == 3) & np.asarray(cost_known, dtype=bool), 4, level)
    replicated = (np.asarray(replications, dtype=float) >= 1) & (np.asarray(designed_for_replication, dtype=float) >= 0.5)
    return np.where((level == 4) & replicated, 5, level)
