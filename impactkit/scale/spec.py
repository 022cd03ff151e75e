"""Intervention and portfolio files: pydantic models, YAML loading, line-numbered errors.

An intervention file describes one intervention (its package of components and the facts
behind every scale criterion); a portfolio file lists intervention files, criterion weights,
gate floors and Monte Carlo options. Every number is a :class:`Quantity`: a value, an interval
``[low, high]`` or ``unknown`` (the whole admissible range of the field, never zero), and every
known number carries its :class:`Source` (citation, page/section, quote, link).

Errors are :class:`impactkit.errors.SpecError` naming the file, the intervention and the field,
with the YAML line number when the loader knows it.
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from impactkit import safeyaml
from impactkit.limits import MAX_SCALE_DRAWS
from impactkit.errors import SpecError

UNKNOWN = "unknown"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a figure comes from: a citation or document, page/section, verbatim quote, link."""

    source: str = Field(min_length=1)
    locator: str | None = None
    quote: str | None = None
    link: str | None = None


class Quantity(_Strict):
    """A criterion input: ``value`` is a number, ``[low, high]`` or ``"unknown"``.

    A known value must carry ``evidence`` (its :class:`Source`); ``unknown`` may carry a note.
    The YAML shorthand ``field: unknown`` means ``{value: unknown}``.
    """

    value: float | tuple[float, float] | Literal["unknown"]
    evidence: Source | None = None
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data == UNKNOWN:
            return {"value": UNKNOWN}
        if isinstance(data, (str, int, float, list, tuple)) or data is None:
            raise ValueError(f"write {{value: ..., evidence: {{source: ...}}}} or 'unknown', got {data!r}")
        return data

    @field_validator("value", mode="before")
    @classmethod
    def _form(cls, value: Any) -> Any:
        form = "must be a number, an interval [low, high] or 'unknown'"
        if isinstance(value, bool) or value is None:
            raise ValueError(f"{form}, got {value!r}")
        if isinstance(value, str) and value != UNKNOWN:
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"{form}, got {value!r}") from None
        if isinstance(value, (list, tuple)) and len(value) != 2:
            raise ValueError(f"{form}; an interval has exactly two bounds, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> "Quantity":
        if isinstance(self.value, tuple):
            low, high = self.value
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError("interval bounds must be finite numbers")
            if low > high:
                raise ValueError(f"interval [{low}, {high}] has low > high")
        elif isinstance(self.value, float) and not math.isfinite(self.value):
            raise ValueError("value must be a finite number")
        if self.value != UNKNOWN and self.evidence is None:
            raise ValueError("a known value needs 'evidence' (source, locator, quote)")
        return self

    @property
    def is_unknown(self) -> bool:
        return self.value == UNKNOWN

    def bounds(self) -> tuple[float, float] | None:
        """``(low, high)`` of a known value, ``None`` if unknown."""
        if self.value == UNKNOWN:
            return None
        if isinstance(self.value, tuple):
            return float(self.value[0]), float(self.value[1])
        return float(self.value), float(self.value)


def _unknown() -> Quantity:
    return Quantity(value=UNKNOWN)


class SiteLevels(_Strict):
    """Readiness and use of a component at one location (unknown = the whole 1-9 ladder)."""

    readiness: Quantity = Field(default_factory=_unknown)
    use: Quantity = Field(default_factory=_unknown)


class Component(_Strict):
    """One component of the intervention package (Sartas et al. 2020): readiness and use, 1-9.

    ``readiness``/``use`` describe the intervention's home location (``Intervention.home_site``);
    ``sites`` gives the levels at other locations. At a location a component does not list,
    its readiness is the home readiness and its use is unknown.
    """

    name: str = Field(min_length=1)
    readiness: Quantity
    use: Quantity
    sites: dict[str, SiteLevels] = Field(default_factory=dict)


class EstimateLink(_Strict):
    """Link to an impactkit estimate: ``key`` names the entry of ``score(..., estimates=...)``."""

    key: str = Field(min_length=1)
    analysis: str | None = None
    outcome: str | None = None
    # where the linked analysis's data come from; "simulated" labels every number it feeds
    data: Literal["survey", "administrative", "simulated"] | None = None
    data_note: str | None = None


Design = Literal["rct", "did", "iv", "rdd", "matched", "comparison", "before_after", "monitoring", "unknown"]


class EvidenceSpec(_Strict):
    """Impact evidence: design, declared (graded) SMS level, PSP inputs, replication facts."""

    design: Design
    design_evidence: Source
    level: Quantity | None = None
    impactkit_estimate: EstimateLink | None = None
    prior: Quantity = Field(default_factory=_unknown)
    power: Quantity = Field(default_factory=_unknown)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    impact: Quantity = Field(default_factory=_unknown)
    impact_unit: str | None = None
    # "proportional": impact is a proportional change (0.3 = +30%), checked for plausibility
    impact_scale: Literal["proportional", "level"] | None = None
    # was the evaluation carried out independently of the implementer? 0 no, 1 yes (Nesta level 4)
    independent: Quantity = Field(default_factory=_unknown)
    # independent replication studies that found a significant effect of the same sign (PSP)
    replication_studies: Quantity = Field(default_factory=_unknown)


class ReplicabilitySpec(_Strict):
    designed_for_replication: Quantity = Field(default_factory=_unknown)
    replications: Quantity = Field(default_factory=_unknown)


class PartnerSpec(_Strict):
    name: str | None = None
    capacity: Quantity = Field(default_factory=_unknown)
    alignment: Quantity = Field(default_factory=_unknown)


class GovernmentSpec(_Strict):
    """Government adoption ladder: each rung reached is listed with its source.

    0 none, 1 interest, 2 co-delivery, 3 policy/certification, 4 budget line. The level is the
    highest rung evidenced; ``government: unknown`` means the whole ladder 0-4.
    """

    none: Source | None = None
    interest: Source | None = None
    co_delivery: Source | None = None
    policy: Source | None = None
    budget: Source | None = None

    @model_validator(mode="after")
    def _one(self) -> "GovernmentSpec":
        if all(getattr(self, rung) is None for rung in GOVERNMENT_RUNGS):
            raise ValueError(f"name at least one rung among {', '.join(GOVERNMENT_RUNGS)} (or write 'unknown')")
        return self

    def level(self) -> int:
        return max(i for i, rung in enumerate(GOVERNMENT_RUNGS) if getattr(self, rung) is not None)


GOVERNMENT_RUNGS = ("none", "interest", "co_delivery", "policy", "budget")


class WomenSpec(_Strict):
    share: Quantity = Field(default_factory=_unknown)
    benefit: Quantity = Field(default_factory=_unknown)


class VoltageSpec(_Strict):
    """List (2022) voltage risks, each 0 low, 1 medium, 2 high."""

    population: Quantity = Field(default_factory=_unknown)
    situation: Quantity = Field(default_factory=_unknown)
    ingredients: Quantity = Field(default_factory=_unknown)
    diseconomies: Quantity = Field(default_factory=_unknown)


class CostSpec(_Strict):
    """Costs in ``currency`` at ``price_year`` prices: (F + v N) / N per participant."""

    currency: str | None = None
    price_year: int | None = None
    fixed_cost: Quantity = Field(default_factory=_unknown)
    variable_cost_per_participant: Quantity = Field(default_factory=_unknown)
    pilot_participants: Quantity = Field(default_factory=_unknown)
    scale_participants: Quantity = Field(default_factory=_unknown)
    benefit_per_participant_year: Quantity = Field(default_factory=_unknown)

    @model_validator(mode="after")
    def _currency(self) -> "CostSpec":
        money = (self.fixed_cost, self.variable_cost_per_participant, self.benefit_per_participant_year)
        if any(not q.is_unknown for q in money) and (self.currency is None or self.price_year is None):
            raise ValueError("money figures need 'currency' and 'price_year'")
        return self


class Intervention(_Strict):
    """One intervention file (``analyses/interventions/<id>.yaml``)."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    country: str | None = None
    summary: str | None = None
    components: list[Component] = Field(min_length=1)
    evidence: EvidenceSpec
    replicability: ReplicabilitySpec = Field(default_factory=ReplicabilitySpec)
    partner: PartnerSpec = Field(default_factory=PartnerSpec)
    government: GovernmentSpec | Literal["unknown"] = UNKNOWN
    cost_recovery: Quantity = Field(default_factory=_unknown)
    women: WomenSpec = Field(default_factory=WomenSpec)
    spillovers: Quantity = Field(default_factory=_unknown)
    voltage: VoltageSpec = Field(default_factory=VoltageSpec)
    costs: CostSpec = Field(default_factory=CostSpec)
    # the location the components' levels describe, and other locations considered for scale
    home_site: str | None = None
    locations: list[str] = Field(default_factory=list)


CRITERIA = (
    "scaling_readiness", "evidence_strength", "credibility", "cost_effectiveness", "replicability",
    "partner", "government_adoption", "financial_sustainability", "women", "spillovers", "voltage",
)

DEFAULT_WEIGHTS = {
    "scaling_readiness": 0.15, "evidence_strength": 0.15, "credibility": 0.10, "cost_effectiveness": 0.15,
    "replicability": 0.10, "partner": 0.10, "government_adoption": 0.05, "financial_sustainability": 0.05,
    "women": 0.05, "spillovers": 0.05, "voltage": 0.05,
}


class Gates(_Strict):
    """Non-compensatory gates (defaults documented in docs/scale-model.md)."""

    readiness_floor: float = Field(default=16.0, ge=1, le=81)
    evidence_floor: float = Field(default=1.0, ge=0, le=5)
    require_cost_data: bool = True
    partner_alignment_floor: float = Field(default=2.0, ge=0, le=4)
    cost_recovery_floor: float = Field(default=1.0, ge=0, le=2)
    # value for money: BCR >= 1 at the discount rate and at the IRR hurdle rate (IRR >= hurdle)
    require_value_for_money: bool = True


class Options(_Strict):
    discount_rate: float = Field(default=0.05, ge=0, lt=1)
    hurdle_rate: float = Field(default=0.10, ge=0, lt=1)
    horizon_years: int = Field(default=10, ge=1, le=100)
    seed: int | None = Field(default=None, ge=0)
    draws: int | None = Field(default=None, ge=100, le=MAX_SCALE_DRAWS)
    weight_concentration: float = Field(default=50.0, gt=0)
    # prior probability that a new programme's effect is real, when the file gives none (List 2022;
    # Maniadis, Tufano & List 2014): a low default with its range, never 0.5 by ignorance
    default_prior: tuple[float, float] = (0.01, 0.25)
    # floor the criteria are clipped to in the geometric mean; the result shows other floors too
    score_floor: float = Field(default=0.01, gt=0, lt=1)
    # voltage at scale (List 2022): share of the pilot effect lost per risk, by risk level (1 medium,
    # 2 high), each an interval drawn uniformly; an ASSUMPTION to declare, documented in the docs
    voltage_discount: dict[int, tuple[float, float]] = Field(default_factory=lambda: {1: (0.0, 0.2), 2: (0.2, 0.5)})
    # too-good-to-be-true flags: a BCR, an IRR or a proportional effect above these is questioned
    implausible_bcr: float = Field(default=10.0, gt=1)
    implausible_irr: float = Field(default=1.0, gt=0)
    implausible_effect: float = Field(default=1.0, gt=0)

    @field_validator("default_prior")
    @classmethod
    def _prior(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= value[0] <= value[1] <= 1.0:
            raise ValueError(f"default_prior must be [low, high] within [0, 1], got {list(value)}")
        return value


class Alternative(_Strict):
    """A use of the same money a ministry weighs (docs/scale-model.md sec. 9).

    ``cash_transfer``: the money handed to participants; ``cost_transfer_ratio`` is the cost of
    delivering one unit of money (an interval, with its source). ``status_quo``: spend nothing.
    ``intervention``: another intervention of the portfolio (``intervention: <id>``).
    """

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    kind: Literal["cash_transfer", "status_quo", "intervention"]
    cost_transfer_ratio: Quantity | None = None
    intervention: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _fields(self) -> "Alternative":
        if self.kind == "cash_transfer" and (self.cost_transfer_ratio is None or self.cost_transfer_ratio.is_unknown):
            raise ValueError("a cash_transfer alternative needs 'cost_transfer_ratio' with its source")
        if self.kind == "intervention" and not self.intervention:
            raise ValueError("an 'intervention' alternative names the intervention id ('intervention: <id>')")
        return self


class InterventionEntry(_Strict):
    file: str = Field(min_length=1)


class Portfolio(_Strict):
    name: str = "portfolio"
    interventions: list[InterventionEntry] = Field(min_length=1)
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    gates: Gates = Field(default_factory=Gates)
    options: Options = Field(default_factory=Options)
    alternatives: list[Alternative] = Field(default_factory=list)

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(CRITERIA))
        if unknown:
            raise ValueError(f"unknown criteria {unknown}; known: {', '.join(CRITERIA)}")
        if any((not math.isfinite(w)) or w < 0 for w in weights.values()):
            raise ValueError("weights must be finite and >= 0")
        full = {c: float(weights.get(c, 0.0)) for c in CRITERIA}
        total = sum(full.values())
        if total <= 0:
            raise ValueError("weights sum to zero")
        return {c: w / total for c, w in full.items()}


# Admissible range of each quantity: (low, high, integer). Unknown means this whole range.
DOMAINS: dict[str, tuple[float, float, bool]] = {
    "components.readiness": (1, 9, True),
    "components.use": (1, 9, True),
    "evidence.level": (0, 5, True),
    "evidence.prior": (0, 1, False),
    "evidence.power": (0, 1, False),
    "evidence.impact": (-math.inf, math.inf, False),
    "evidence.independent": (0, 1, True),
    "evidence.replication_studies": (0, 20, True),
    "replicability.designed_for_replication": (0, 1, False),
    "replicability.replications": (0, 4, True),
    "partner.capacity": (0, 4, True),
    "partner.alignment": (0, 4, True),
    "cost_recovery": (0, 2, False),
    "women.share": (0, 1, False),
    "women.benefit": (0, 2, True),
    "spillovers": (-1, 1, True),
    "voltage.population": (0, 2, True),
    "voltage.situation": (0, 2, True),
    "voltage.ingredients": (0, 2, True),
    "voltage.diseconomies": (0, 2, True),
    "costs.fixed_cost": (0, math.inf, False),
    "costs.variable_cost_per_participant": (0, math.inf, False),
    "costs.pilot_participants": (1, math.inf, False),
    "costs.scale_participants": (1, math.inf, False),
    "costs.benefit_per_participant_year": (-math.inf, math.inf, False),
}


@dataclass(frozen=True)
class Loaded:
    """A validated intervention with the file it came from."""

    spec: Intervention
    path: Path


# ----------------------------------------------------------------------------- YAML loading

def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None, file: str = "") -> dict:
    """Map each key path (tuple of keys / indices) to its 1-based YAML line; reject duplicate keys."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dotted = ".".join(str(p) for p in (*path, key))
                raise SpecError(f"{file}: field '{dotted}' (line {key_node.start_mark.line + 1}): duplicate key")
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), out, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _line_map(item, (*path, i), out, file)
    return out


def read_yaml(path: Path) -> tuple[Any, dict]:
    """Parse a YAML file into plain data and a key-path -> line map (SpecError on failure)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read file ({type(exc).__name__})") from None
    try:  # bounded: no aliases, no foreign tags, limited depth (impactkit.safeyaml)
        node = safeyaml.compose(text, str(path), SpecError)
        data = None if node is None else safeyaml.construct(node, str(path), SpecError)
    except SpecError as exc:
        raise SpecError(re.sub(r"^(.*?):(\d+): not valid YAML", r"\1 (line \2): invalid YAML", str(exc))) from None
    lines = _line_map(node, file=str(path)) if node is not None else {}
    return data, lines


def _where(lines: dict, loc: tuple) -> str:
    for cut in range(len(loc), 0, -1):
        if tuple(loc[:cut]) in lines:
            return f" (line {lines[tuple(loc[:cut])]})"
    return ""


_MODEL_TAGS = {"Quantity", "Source", "Component", "SiteLevels", "Alternative", "EstimateLink", "EvidenceSpec", "ReplicabilitySpec", "PartnerSpec",
               "GovernmentSpec", "WomenSpec", "VoltageSpec", "CostSpec", "Intervention", "Gates", "Options",
               "InterventionEntry", "Portfolio"}


def _clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's union-branch tags (e.g. 'Quantity', 'tuple[float, float]') from a location."""
    kept = []
    for part in loc:
        if isinstance(part, str) and (part in _MODEL_TAGS or "[" in part or part.startswith(("literal", "function"))
                                      or part in {"float", "str", "int", "bool", "tuple"}):
            continue
        kept.append(part)
    return tuple(kept)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (through unions, lists, dicts, Optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def expected_fields(root: type[BaseModel], parent: tuple) -> list[str]:
    """The field names a model accepts at the key path ``parent`` (list indices skipped)."""
    models = [root]
    for part in parent:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for model in models:
            info = model.model_fields.get(str(part))
            if info is not None:
                nxt.extend(_models_in(info.annotation))
        models = nxt
    return sorted({name for model in models for name in model.model_fields})


def unknown_key_message(root: type[BaseModel], loc: tuple) -> str:
    """'unknown field 'usee'; did you mean 'use'? (expected one of ...)' via difflib close matches."""
    key = str(loc[-1]) if loc else ""
    expected = expected_fields(root, tuple(loc[:-1]))
    close = difflib.get_close_matches(key, expected, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    known = f" (expected one of: {', '.join(expected)})" if expected else ""
    return f"unknown field '{key}'{hint}{known}"


def _spec_error(file: Path, label: str, exc: ValidationError, lines: dict,
                root: type[BaseModel] | None = None) -> SpecError:
    err = exc.errors()[0]
    loc = _clean_loc(tuple(err["loc"]))
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = unknown_key_message(root, loc) if root is not None else "unknown field (typo?)"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return SpecError(f"{file}: {label}: field '{dotted}'{_where(lines, loc)}: {msg}{more}")


def _check_domains(spec: Intervention, file: Path, lines: dict) -> None:
    label = f"intervention '{spec.id}'"

    def check(q: Quantity, key: str, loc: tuple) -> None:
        b = q.bounds()
        if b is None:
            return
        low, high, integer = DOMAINS[key]
        dotted = ".".join(str(p) for p in loc)
        if b[0] < low or b[1] > high:
            raise SpecError(f"{file}: {label}: field '{dotted}'{_where(lines, (*loc, 'value'))}: "
                            f"{list(b) if b[0] != b[1] else b[0]} outside the admissible range [{low}, {high}]")
        if integer and any(v != int(v) for v in b):
            raise SpecError(f"{file}: {label}: field '{dotted}'{_where(lines, (*loc, 'value'))}: "
                            f"must be whole numbers on the {int(low)}-{int(high)} scale")

    for i, comp in enumerate(spec.components):
        check(comp.readiness, "components.readiness", ("components", i, "readiness"))
        check(comp.use, "components.use", ("components", i, "use"))
    groups = {"evidence": spec.evidence, "replicability": spec.replicability, "partner": spec.partner,
              "women": spec.women, "voltage": spec.voltage, "costs": spec.costs}
    for key in DOMAINS:
        head, _, tail = key.partition(".")
        if head == "components":
            continue
        if tail:
            q = getattr(groups[head], tail)
            if q is None:
                continue
            check(q, key, (head, tail))
        else:
            check(getattr(spec, head), key, (head,))


def load_intervention(path: str | Path) -> Loaded:
    """Read and validate one intervention file (SpecError names file, intervention, field, line)."""
    file = Path(path)
    data, lines = read_yaml(file)
    if not isinstance(data, dict):
        raise SpecError(f"{file}: intervention file must be a mapping of fields, got {type(data).__name__}")
    ident = data.get("id")
    label = f"intervention '{ident}'" if isinstance(ident, str) and ident else "intervention (no id)"
    try:
        spec = Intervention.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(file, label, exc, lines, Intervention) from None
    _check_domains(spec, file, lines)
    return Loaded(spec=spec, path=file)


@dataclass(frozen=True)
class LoadedPortfolio:
    spec: Portfolio
    path: Path | None
    interventions: tuple[Loaded, ...]


def load_portfolio(path: str | Path) -> LoadedPortfolio:
    """Read a portfolio file and every intervention it lists (paths relative to the portfolio)."""
    file = Path(path)
    data, lines = read_yaml(file)
    if not isinstance(data, dict):
        raise SpecError(f"{file}: portfolio file must be a mapping of fields, got {type(data).__name__}")
    try:
        spec = Portfolio.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(file, "portfolio", exc, lines, Portfolio) from None
    loaded = []
    for i, entry in enumerate(spec.interventions):
        target = (file.parent / entry.file)
        if not target.is_file():
            raise SpecError(f"{file}: portfolio: field 'interventions.{i}.file'{_where(lines, ('interventions', i, 'file'))}: "
                            f"file not found: {entry.file}")
        loaded.append(load_intervention(target))
    return portfolio_from(spec, loaded, file)


def portfolio_from(spec: Portfolio, loaded: list[Loaded], path: Path | None = None) -> LoadedPortfolio:
    """Assemble a portfolio; intervention ids must be unique."""
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.spec.id in seen:
            raise SpecError(f"{item.path}: intervention '{item.spec.id}': field 'id': duplicate id (also in {seen[item.spec.id]})")
        seen[item.spec.id] = item.path
    return LoadedPortfolio(spec=spec, path=path, interventions=tuple(loaded))
