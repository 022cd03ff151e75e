"""Evidence strength: Maryland Scientific Methods Scale, Nesta levels, post-study probability.

- **Maryland Scientific Methods Scale (SMS)**, Sherman et al. (1997) *Preventing Crime: What
  Works, What Doesn't, What's Promising*, ch. 2, as the UK What Works Centre for Local Economic
  Growth applies it (Madaleno & Waights 2016, *Guide to scoring methods using the Maryland
  Scientific Methods Scale*): 5 randomised trial; 4 quasi-random variation (instrumental
  variables, regression discontinuity); 3 comparison of treated and untreated with adequate
  controls, **difference-in-differences included**; 2 comparison with controls for observables;
  1 before-after or cross-section without a comparison group. We add 0 for monitoring of
  outputs only (no outcome comparison at all). ``unknown``: the report gives no design, so the
  level is the whole range 1-5 (a study is reported, but not how it was done).
- **Grading down** (GRADE-style, Guyatt et al. 2008 BMJ 336:924): one level each for a failed
  pre-trend test (a DiD that loses its parallel-trend support is a comparison with controls, 2),
  differential attrition (p < 0.05), baseline imbalance (joint test p < 0.05), imprecision (95%
  CI crossing zero), and fewer than 42 clusters (Angrist & Pischke 2009, ch. 8.2; Cameron &
  Miller 2015 JHR 50:317). Floor 1. An unknown fact widens the level to an interval.
- **Nesta Standards of Evidence** (Puttick & Ludlow 2013, Nesta): 1 describe what you do and
  why; 2 data showing a *positive* change (a measured change in the wrong direction stays 1);
  3 causality with a control group (SMS >= 3); 4 level 3 plus an *independent* evaluation and
  cost data ("at a reasonable cost"); 5 level 4 plus *documented* replication elsewhere. An
  unknown independence or replication never promotes.
- **Post-study probability** (Maniadis, Tufano & List 2014 AER 104(1):277; List 2022 *The
  Voltage Effect*, ch. 1): only for designs that test a hypothesis (SMS base >= 1; monitoring of
  outputs has no finding, so its PSP is undefined and its credibility criterion is 0). With
  prior pi, power 1 - beta (from the design, never from the observed effect), significance
  alpha and n = 1 + r studies that all found a significant effect of the same sign (the original
  and r independent replications; Maniadis et al. 2014 sec. I, after Moonesinghe, Khoury &
  Janssens 2007 PLoS Med 4:e28)::

      PSP_n = pi (1 - beta)^n / ( pi (1 - beta)^n + (1 - pi) alpha^n )

  n = 1 gives eq. 1 of the paper. Unknown replications count 0 (never promote); an unknown
  prior is the low default range ``options.default_prior`` (List's point: most new programmes
  that are tried do not work), not the centre of [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from impactkit.errors import InputError

DESIGN_BASE_LEVEL = {
    "rct": 5, "iv": 4, "rdd": 4, "did": 3, "matched": 3, "comparison": 2, "before_after": 1, "monitoring": 0,
    "unknown": 5,
}
# designs that test a hypothesis (have a finding whose post-study probability is defined)
HYPOTHESIS_MIN_LEVEL = 1
FEW_CLUSTERS = 42
SIGNIFICANCE = 0.05
ESTIMATE_REQUIRED = ("design", "estimate", "conf_low", "conf_high")
ESTIMATE_OPTIONAL = ("pretrend_p", "n_clusters", "differential_attrition_p", "balance_joint_p", "power",
                     "benefit_per_participant_year", "benefit_per_participant_year_low",
                     "benefit_per_participant_year_high", "benefit_price_year")
# text facts: the currency of the money benefit (checked against the cost currency)
ESTIMATE_TEXT_OPTIONAL = ("benefit_currency", "power_basis")
# power is used by the PSP only when it comes from the design (a declared target effect)
POWER_BASES = ("design", "observed")
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
                           alpha: np.ndarray | float = SIGNIFICANCE,
                           studies: np.ndarray | float = 1) -> np.ndarray:
    """Post-study probability that a significant finding is true, after ``studies`` significant studies.

    Maniadis, Tufano & List (2014), *AER* 104(1):277, sec. I (eq. 1 for one study; the
    replication case after Moonesinghe, Khoury & Janssens 2007)::

        PSP_n = prior * power**n / (prior * power**n + (1 - prior) * alpha**n)

    where n = 1 + the number of independent replications that also found a significant effect
    of the same sign. Each replication multiplies the odds that the finding is true by
    power / alpha. ``power`` must come from the design (the power to detect a declared target
    effect), not from the observed effect. Vectorised; where numerator and denominator are
    both zero the PSP is 0 (a finding that cannot be a true positive).

    Parameters
    ----------
    power, prior : array_like on [0, 1].
    alpha : significance level of each test.
    studies : n >= 1, number of significant studies (original + replications).
    """
    n = np.asarray(studies, dtype=float)
    power = np.asarray(power, dtype=float) ** n
    prior = np.asarray(prior, dtype=float)
    true_pos = power * prior
    denom = true_pos + np.asarray(alpha, dtype=float) ** n * (1.0 - prior)
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
    basis = facts.get("power_basis")
    if basis is not None and basis not in POWER_BASES:
        raise InputError(f"estimates['{key}']: fact 'power_basis' must be one of {POWER_BASES}, got {basis!r}")
    clean["power_basis"] = basis
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
            maybe.append("no pre-trend test: parallel trends unsupported")
        elif pre < SIGNIFICANCE:
            sure.append("failed pre-trend test: DiD without parallel-trend support")
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


def tests_hypothesis(design_level: int) -> bool:
    """Does a design (its SMS base level) test a hypothesis, so that a PSP is defined?"""
    return design_level >= HYPOTHESIS_MIN_LEVEL


def nesta_level(sms_level: np.ndarray, positive_change: np.ndarray, independent: np.ndarray,
                cost_known: np.ndarray, replicated: np.ndarray) -> np.ndarray:
    """Nesta standard of evidence (1-5), vectorised (Puttick & Ludlow 2013; rules in the module docstring).

    ``positive_change``: a measured change in the intended direction; ``independent``: the
    evaluation is known to be independent; ``replicated``: replication elsewhere is documented
    (unknown counts as not). Each level requires the one below it.
    """
    sms = np.asarray(sms_level, dtype=float)
    level2 = (sms >= 1) & np.asarray(positive_change, dtype=bool)
    level3 = level2 & (sms >= 3)
    level4 = level3 & np.asarray(independent, dtype=bool) & np.asarray(cost_known, dtype=bool)
    level5 = level4 & np.asarray(replicated, dtype=bool)
    return 1 + level2.astype(int) + level3.astype(int) + level4.astype(int) + level5.astype(int)
