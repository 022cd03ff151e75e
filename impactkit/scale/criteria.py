"""From validated intervention specs (and estimate facts) to criterion inputs and criteria.

Two steps, both pure:

1. :func:`build_inputs` turns each intervention into intervals ``[low, high]`` on fixed raw
   slots (:data:`RAW_SLOTS`): a value gives ``[v, v]``, an interval itself, ``unknown`` the
   whole admissible range of the field (``spec.DOMAINS``), never zero.
2. :func:`criteria_values` maps raw values (any leading shape: one point, or draws x
   interventions) to the criteria on [0, 1] (higher is better):

   ======================== =================================================================
   scaling_readiness        min over components of readiness x use / 81 (Sartas et al. 2020)
   evidence_strength        graded SMS level / 5 (evidence.py)
   credibility              post-study probability (Maniadis, Tufano & List 2014) for designs
                            that test a hypothesis; 0 for monitoring (no finding)
   cost_effectiveness       BCR / (1 + BCR) (Dhaliwal et al. 2013); unknown costs: U[0, 1]
   replicability            (designed-for-replication share + min(replications, 4)/4) / 2
   partner                  (capacity + long-term alignment) / 8, each on the 0-4 rubric
   government_adoption      ladder level / 4 (0 none ... 4 budget line)
   financial_sustainability cost recovery ratio / 2 on [0, 2] (operational self-sufficiency;
                            break-even = 0.5)
   women                    (share of participants who are women + benefit for women / 2) / 2
   spillovers               (s + 1) / 2 for s in {-1 negative, 0 none, 1 positive}
   voltage                  1 - mean of List's four voltage risks / 2 (each 0 low ... 2 high)
   ======================== =================================================================
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from impactkit.errors import ImpactkitWarning, InputError
from impactkit.scale import cost as cost_mod
from impactkit.scale.evidence import (
    DESIGN_BASE_LEVEL, HYPOTHESIS_MIN_LEVEL, EvidenceGrade, check_estimate_facts, grade_from_facts,
    grade_without_facts, post_study_probability,
)
from impactkit.scale.readiness import MAX_SCALING_READINESS, package_readiness
from impactkit.scale.spec import CRITERIA, DOMAINS, GOVERNMENT_RUNGS, Loaded, Options, Quantity, Source

# slot name -> DOMAINS key (None: domain set by the builder)
RAW_SLOTS: dict[str, str | None] = {
    "evidence_level": "evidence.level",
    "prior": "evidence.prior",
    "power": "evidence.power",
    "designed_for_replication": "replicability.designed_for_replication",
    "replications": "replicability.replications",
    "partner_capacity": "partner.capacity",
    "partner_alignment": "partner.alignment",
    "government": None,
    "cost_recovery": "cost_recovery",
    "women_share": "women.share",
    "women_benefit": "women.benefit",
    "spillovers": "spillovers",
    "risk_population": "voltage.population",
    "risk_situation": "voltage.situation",
    "risk_ingredients": "voltage.ingredients",
    "risk_diseconomies": "voltage.diseconomies",
    "fixed_cost": None,
    "variable_cost": None,
    "scale_participants": None,
    "benefit_year": None,
    "cost_unknown_u": None,
}
SLOTS = tuple(RAW_SLOTS)
COST_SLOTS = {"fixed_cost": "fixed_cost", "variable_cost": "variable_cost_per_participant",
              "scale_participants": "scale_participants", "benefit_year": "benefit_per_participant_year"}
COST_FLIPPED = ("fixed_cost", "variable_cost")  # higher is worse
INTEGER_SLOTS = {s for s, key in RAW_SLOTS.items() if key is not None and DOMAINS[key][2]} | {"government"}
SCORE_FLOOR = 0.01  # criteria are clipped to [0.01, 1] so the geometric mean stays defined


@dataclass(frozen=True)
class Inputs:
    """Interval inputs of I interventions: raw slots (I, Q) and components (I, C)."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    unknown: np.ndarray
    integer: np.ndarray
    comp_names: tuple[tuple[str, ...], ...]
    readiness_low: np.ndarray
    readiness_high: np.ndarray
    use_low: np.ndarray
    use_high: np.ndarray
    present: np.ndarray
    cost_known: np.ndarray
    alpha: np.ndarray
    grades: tuple[EvidenceGrade, ...]
    evidence_from: tuple[str, ...]
    sources: tuple[dict[str, str], ...]
    impacts: tuple[dict[str, Any] | None, ...]
    benefit_from_estimate: tuple[bool, ...] = ()
    center: np.ndarray | None = None
    # (I,) facts used at their known lower end only (unknown never promotes)
    hypothesis: np.ndarray | None = None          # design tests a hypothesis (PSP defined)
    studies: np.ndarray | None = None             # 1 + documented independent replication studies
    independent: np.ndarray | None = None         # evaluation known to be independent
    positive_change: np.ndarray | None = None     # measured change in the intended direction
    replicated: np.ndarray | None = None          # replication elsewhere documented (>= 1)
    # (I, C): component levels that are unknown (the whole 1-9 ladder)
    readiness_unknown: np.ndarray | None = None
    use_unknown: np.ndarray | None = None
    prior_default: tuple[bool, ...] = ()
    linked_data: tuple[str | None, ...] = ()      # data origin of a linked estimate ("simulated", ...)

    def point(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Central values (raw slots dict of (I,), readiness, use): interval midpoints, except
        a benefit taken from an impactkit estimate, whose centre is the point estimate."""
        mid = 0.5 * (self.low + self.high) if self.center is None else self.center
        return ({s: mid[:, q] for q, s in enumerate(SLOTS)},
                0.5 * (self.readiness_low + self.readiness_high), 0.5 * (self.use_low + self.use_high))

    def at(self, end: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """All inputs at their unfavourable (``"low"``) or favourable (``"high"``) ends.

        Every input is oriented so that "low" is the worse end for each gate measure: costs
        (F, v) are taken at their *high* ends for ``"low"`` (value for money is worst there).
        """
        raw = self.low if end == "low" else self.high
        flip = self.high if end == "low" else self.low
        out = {s: raw[:, q] for q, s in enumerate(SLOTS)}
        for slot in COST_FLIPPED:
            out[slot] = flip[:, SLOTS.index(slot)]
        return (out,
                self.readiness_low if end == "low" else self.readiness_high,
                self.use_low if end == "low" else self.use_high)


def _interval(q: Quantity | None, key: str) -> tuple[float, float, bool]:
    low, high, _ = DOMAINS[key]
    b = None if q is None else q.bounds()
    return (low, high, True) if b is None else (b[0], b[1], False)


def _cite(ev: Source) -> str:
    """One-line citation: source; locator; "quote"; link."""
    return "; ".join([ev.source] + [p for p in (ev.locator, f'"{ev.quote}"' if ev.quote else None, ev.link) if p])


def _source_text(q: Quantity | None) -> str:
    if q is None or q.evidence is None:
        return "unknown" + (f" ({q.note})" if q is not None and q.note else "")
    return _cite(q.evidence)


def build_inputs(items: tuple[Loaded, ...], estimates: dict[str, Any] | None,
                 options: Options | None = None) -> Inputs:
    """Intervals for every raw slot of every intervention (rules in the module docstring)."""
    options = options or Options()
    estimates = dict(estimates or {})
    linked = {it.spec.evidence.impactkit_estimate.key for it in items if it.spec.evidence.impactkit_estimate}
    stray = sorted(set(estimates) - linked)
    if stray:
        raise InputError(f"estimates: key(s) {stray} not linked by any intervention (evidence.impactkit_estimate.key); "
                         f"linked: {sorted(linked)}")
    n, n_comp = len(items), max(len(it.spec.components) for it in items)
    low = np.zeros((n, len(SLOTS)))
    high = np.zeros((n, len(SLOTS)))
    unknown = np.zeros((n, len(SLOTS)), dtype=bool)
    r_lo, r_hi, u_lo, u_hi = (np.ones((n, n_comp)) for _ in range(4))
    present = np.zeros((n, n_comp), dtype=bool)
    cost_known = np.zeros(n, dtype=bool)
    alpha = np.zeros(n)
    grades, evidence_from, sources, impacts = [], [], [], []
    hypothesis, studies, independent, positive, replicated = (np.zeros(n, dtype=bool), np.ones(n),
                                                              np.zeros(n, dtype=bool), np.zeros(n, dtype=bool),
                                                              np.zeros(n, dtype=bool))
    r_unk = np.zeros((n, n_comp), dtype=bool)
    u_unk = np.zeros((n, n_comp), dtype=bool)
    prior_default: list[bool] = []
    linked_data: list[str | None] = []
    benefit_from_estimate: list[bool] = []
    benefit_center = np.full(n, np.nan)
    for i, item in enumerate(items):
        spec = item.spec
        src: dict[str, str] = {}
        for c, comp in enumerate(spec.components):
            r_lo[i, c], r_hi[i, c], r_unk[i, c] = _interval(comp.readiness, "components.readiness")
            u_lo[i, c], u_hi[i, c], u_unk[i, c] = _interval(comp.use, "components.use")
            present[i, c] = True
        ev = spec.evidence
        facts = None
        if ev.impactkit_estimate is not None and estimates and ev.impactkit_estimate.key not in estimates:
            warnings.warn(f"intervention '{spec.id}': estimates given but none for its linked estimate "
                          f"'{ev.impactkit_estimate.key}'; evidence level taken from the YAML", ImpactkitWarning, stacklevel=3)
        if ev.impactkit_estimate is not None and ev.impactkit_estimate.key in estimates:
            facts = check_estimate_facts(ev.impactkit_estimate.key, estimates[ev.impactkit_estimate.key])
        quantities: dict[str, Quantity | None] = {
            "prior": ev.prior, "power": ev.power,
            "designed_for_replication": spec.replicability.designed_for_replication,
            "replications": spec.replicability.replications,
            "partner_capacity": spec.partner.capacity, "partner_alignment": spec.partner.alignment,
            "cost_recovery": spec.cost_recovery, "women_share": spec.women.share,
            "women_benefit": spec.women.benefit, "spillovers": spec.spillovers,
            "risk_population": spec.voltage.population, "risk_situation": spec.voltage.situation,
            "risk_ingredients": spec.voltage.ingredients, "risk_diseconomies": spec.voltage.diseconomies,
        }
        for slot, q in quantities.items():
            lo, hi, unk = _interval(q, RAW_SLOTS[slot])
            low[i, SLOTS.index(slot)], high[i, SLOTS.index(slot)] = lo, hi
            unknown[i, SLOTS.index(slot)] = unk
            src[slot] = _source_text(q)
        # an unknown prior is the documented low default range, not the whole [0, 1]
        prior_default.append(ev.prior.is_unknown)
        if ev.prior.is_unknown:
            q = SLOTS.index("prior")
            low[i, q], high[i, q] = options.default_prior
            src["prior"] = (f"unknown: default low prior {list(options.default_prior)} for a new programme "
                            "(assumption; List 2022, Maniadis, Tufano & List 2014)")
        linked_data.append(ev.impactkit_estimate.data if (facts is not None and ev.impactkit_estimate) else None)
        # evidence level: estimate facts > declared level > design base with unknown grading
        if facts is not None:
            grade = grade_from_facts(facts)
            evidence_from.append("impactkit estimate")
            src["evidence_level"] = f"impactkit estimate '{ev.impactkit_estimate.key}'"
            if facts.get("power") is not None and facts.get("power_basis") != "design":
                src["power"] = (_source_text(ev.power) + "; the estimate's power was not used: it is not "
                                "computed for a declared target effect (post hoc power)")
            if facts.get("power") is not None and facts.get("power_basis") == "design":
                q = SLOTS.index("power")
                low[i, q] = high[i, q] = facts["power"]
                unknown[i, q] = False
                src["power"] = f"impactkit estimate '{ev.impactkit_estimate.key}'"
            impacts.append({"estimate": facts["estimate"], "conf_low": facts["conf_low"],
                            "conf_high": facts["conf_high"], "from": "impactkit estimate"})
        elif ev.level is not None and not ev.level.is_unknown:
            lo, hi = ev.level.bounds()
            grade = EvidenceGrade(low=int(lo), high=int(hi), base=grade_without_facts(ev.design).base)
            evidence_from.append("declared level")
            src["evidence_level"] = _source_text(ev.level)
        else:
            grade = grade_without_facts(ev.design)
            evidence_from.append("design")
            src["evidence_level"] = f"design '{ev.design}': " + _cite(ev.design_evidence)
        if facts is None:
            b = ev.impact.bounds()
            impacts.append(None if b is None else {"estimate": 0.5 * (b[0] + b[1]), "conf_low": b[0],
                                                   "conf_high": b[1], "from": "declared"})
        design = facts["design"] if facts is not None else ev.design
        hypothesis[i] = DESIGN_BASE_LEVEL[design] >= HYPOTHESIS_MIN_LEVEL
        reps = ev.replication_studies.bounds()
        studies[i] = 1.0 + (reps[0] if reps is not None else 0.0)
        ind = ev.independent.bounds()
        independent[i] = ind is not None and ind[0] >= 1
        effect = impacts[-1]
        positive[i] = effect is not None and effect["estimate"] > 0
        sites = spec.replicability.replications.bounds()
        replicated[i] = sites is not None and sites[0] >= 1
        q = SLOTS.index("evidence_level")
        low[i, q], high[i, q] = grade.low, grade.high
        unknown[i, q] = grade.low != grade.high and facts is None and ev.level is None
        grades.append(grade)
        alpha[i] = ev.alpha
        # government ladder
        q = SLOTS.index("government")
        if spec.government == "unknown":
            low[i, q], high[i, q], unknown[i, q] = 0, len(GOVERNMENT_RUNGS) - 1, True
            src["government"] = "unknown"
        else:
            level = spec.government.level()
            low[i, q] = high[i, q] = level
            rung = GOVERNMENT_RUNGS[level]
            src["government"] = f"{rung}: " + _cite(getattr(spec.government, rung))
        # costs: known only if F, v, N at scale and the yearly benefit are all given
        cost_qs = {slot: getattr(spec.costs, field) for slot, field in COST_SLOTS.items()}
        cost_known[i] = all(not qq.is_unknown for qq in cost_qs.values())
        for slot, qq in cost_qs.items():
            b = qq.bounds()
            low[i, SLOTS.index(slot)], high[i, SLOTS.index(slot)] = (b if b is not None else (1.0, 1.0))
            unknown[i, SLOTS.index(slot)] = b is None
            src[slot] = _source_text(qq)
        # a money benefit estimated by impactkit replaces the file's (its CI is the interval)
        from_estimate = facts is not None and facts.get("benefit_per_participant_year") is not None
        if from_estimate:
            q = SLOTS.index("benefit_year")
            b_point = facts["benefit_per_participant_year"]
            b_low = facts.get("benefit_per_participant_year_low")
            b_high = facts.get("benefit_per_participant_year_high")
            low[i, q], high[i, q] = (b_point, b_point) if b_low is None else (b_low, b_high)
            benefit_center[i] = b_point
            unknown[i, q] = False
            src["benefit_year"] = f"impactkit estimate '{ev.impactkit_estimate.key}'"
            cost_known[i] = all(not qq.is_unknown for slot, qq in cost_qs.items() if slot != "benefit_year")
        benefit_from_estimate.append(from_estimate)
        q = SLOTS.index("cost_unknown_u")
        low[i, q], high[i, q] = (0.0, 0.0) if cost_known[i] else (0.0, 1.0)
        unknown[i, q] = not cost_known[i]
        sources.append(src)
    integer = np.array([s in INTEGER_SLOTS for s in SLOTS])
    center = 0.5 * (low + high)
    q = SLOTS.index("benefit_year")
    center[:, q] = np.where(np.isnan(benefit_center), center[:, q], benefit_center)
    return Inputs(
        ids=tuple(it.spec.id for it in items), names=tuple(it.spec.name for it in items),
        low=low, high=high, unknown=unknown, integer=integer,
        comp_names=tuple(tuple(c.name for c in it.spec.components) for it in items),
        readiness_low=r_lo, readiness_high=r_hi, use_low=u_lo, use_high=u_hi, present=present,
        cost_known=cost_known, alpha=alpha, grades=tuple(grades), evidence_from=tuple(evidence_from),
        sources=tuple(sources), impacts=tuple(impacts), benefit_from_estimate=tuple(benefit_from_estimate),
        center=center, hypothesis=hypothesis, studies=studies, independent=independent, positive_change=positive,
        replicated=replicated, readiness_unknown=r_unk, use_unknown=u_unk, prior_default=tuple(prior_default),
        linked_data=tuple(linked_data),
    )


def criteria_values(raw: dict[str, np.ndarray], readiness: np.ndarray, use: np.ndarray, inputs: Inputs,
                    options: Options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Criteria on [0, 1]: returns ``(criteria (..., I, K), package readiness (..., I), bottleneck (..., I))``.

    ``raw`` holds arrays of shape (..., I); ``readiness``/``use`` (..., I, C).
    """
    package, bottleneck = package_readiness(readiness, use, inputs.present)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_participant = cost_mod.cost_per_participant(raw["fixed_cost"], raw["variable_cost"], raw["scale_participants"])
        pv = cost_mod.present_value(raw["benefit_year"], options.discount_rate, options.horizon_years)
        bcr = np.where(per_participant > 0, pv / np.where(per_participant > 0, per_participant, 1.0),
                       np.where(pv > 0, np.inf, 0.0))
        bcr_part = np.where(np.isinf(bcr), 1.0, cost_mod.bcr_score(np.where(np.isinf(bcr), 0.0, bcr)))
    cost_effectiveness = np.where(inputs.cost_known, bcr_part, raw["cost_unknown_u"])
    risks = (raw["risk_population"] + raw["risk_situation"] + raw["risk_ingredients"] + raw["risk_diseconomies"]) / 4.0
    values = {
        "scaling_readiness": package / MAX_SCALING_READINESS,
        "evidence_strength": raw["evidence_level"] / 5.0,
        "credibility": credibility(raw, inputs),
        "cost_effectiveness": cost_effectiveness,
        "replicability": 0.5 * raw["designed_for_replication"] + 0.5 * np.minimum(raw["replications"], 4.0) / 4.0,
        "partner": (raw["partner_capacity"] + raw["partner_alignment"]) / 8.0,
        "government_adoption": raw["government"] / 4.0,
        "financial_sustainability": raw["cost_recovery"] / 2.0,
        "women": 0.5 * raw["women_share"] + 0.5 * raw["women_benefit"] / 2.0,
        "spillovers": (raw["spillovers"] + 1.0) / 2.0,
        "voltage": 1.0 - risks / 2.0,
    }
    stacked = np.stack([np.broadcast_to(values[c], package.shape) for c in CRITERIA], axis=-1)
    return np.clip(stacked, 0.0, 1.0), package, bottleneck


def credibility(raw: dict[str, np.ndarray], inputs: Inputs) -> np.ndarray:
    """PSP for designs that test a hypothesis (with documented replications), 0 for the others."""
    n = len(inputs.ids)
    hyp = inputs.hypothesis if inputs.hypothesis is not None else np.ones(n, dtype=bool)
    studies = inputs.studies if inputs.studies is not None else np.ones(n)
    psp = post_study_probability(raw["power"], raw["prior"], inputs.alpha, studies)
    return np.where(hyp, psp, 0.0)


def value_for_money(raw: dict[str, np.ndarray], inputs: Inputs, options: Options) -> np.ndarray:
    """min(BCR at the discount rate, BCR at the hurdle rate), shape (..., I).

    With costs at t = 0 and a constant yearly benefit, IRR >= hurdle exactly when the BCR at
    the hurdle rate is >= 1, so "value for money" (BCR >= 1 and IRR >= hurdle) is this measure
    >= 1. Unknown costs: the measure is u / (1 - u) for the criterion's uniform u (the BCR whose
    criterion BCR / (1 + BCR) is u), i.e. P(pass) 0.5 and status uncertain.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        per_participant = cost_mod.cost_per_participant(raw["fixed_cost"], raw["variable_cost"], raw["scale_participants"])
        worst = None
        for rate in (options.discount_rate, options.hurdle_rate):
            pv = cost_mod.present_value(raw["benefit_year"], rate, options.horizon_years)
            bcr = np.where(per_participant > 0, pv / np.where(per_participant > 0, per_participant, 1.0),
                           np.where(pv > 0, np.inf, 0.0))
            worst = bcr if worst is None else np.minimum(worst, bcr)
        u = raw["cost_unknown_u"]
        unknown_bcr = np.where(u < 1.0, u / np.where(u < 1.0, 1.0 - u, 1.0), np.inf)
    return np.where(inputs.cost_known, worst, unknown_bcr)


GATES = ("readiness", "evidence", "cost_data", "value_for_money", "partner_alignment", "financial_sustainability")


def gate_measures(raw: dict[str, np.ndarray], package: np.ndarray, inputs: Inputs,
                  options: Options | None = None) -> dict[str, np.ndarray]:
    """The quantity each gate compares with its floor, shape (..., I)."""
    options = options or Options()
    return {
        "value_for_money": np.broadcast_to(value_for_money(raw, inputs, options), package.shape),
        "readiness": package,
        "evidence": raw["evidence_level"],
        "cost_data": np.broadcast_to(inputs.cost_known.astype(float), package.shape),
        "partner_alignment": raw["partner_alignment"],
        "financial_sustainability": raw["cost_recovery"],
    }


def gate_floors(gates) -> dict[str, float]:
    return {
        "readiness": gates.readiness_floor,
        "evidence": gates.evidence_floor,
        "cost_data": 1.0 if gates.require_cost_data else -math.inf,
        "value_for_money": 1.0 if gates.require_value_for_money else -math.inf,
        "partner_alignment": gates.partner_alignment_floor,
        "financial_sustainability": gates.cost_recovery_floor,
    }


def gate_passes(raw, package, inputs: Inputs, gates, options: Options | None = None) -> np.ndarray:
    """Boolean (..., I, G): does each gate's measure reach its floor."""
    measures = gate_measures(raw, package, inputs, options)
    floors = gate_floors(gates)
    return np.stack([measures[g] >= floors[g] for g in GATES], axis=-1)
