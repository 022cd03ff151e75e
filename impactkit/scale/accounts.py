"""Programme cost accounts from an analysis: validation, loading, merging into an intervention.

An evaluator who runs an impactkit analysis holds the programme's accounts. They reach the
scale model as ``score(..., costs={intervention_id: accounts})`` (or from a TOML file via
:func:`load_accounts`) and override, figure by figure, the ``costs`` block of the
intervention file; a figure the accounts do not give keeps the file's value, and a figure
neither gives stays unknown (never zero). Every figure remembers where it came from
(:data:`FROM_ACCOUNTS` / :data:`FROM_FILE`), so results can say so.

Accounts (all money in one ``currency`` at ``price_year`` prices, as J-PAL's comparative
cost-effectiveness method requires; Dhaliwal, Duflo, Glennerster & Tulloch 2013, sec. 3)::

    currency = "PEN"                           # required
    price_year = 2013                          # required
    source = "where the accounts come from"    # required
    status = "illustrative"                    # optional: actual | illustrative | assumption
    fixed_cost = 500000 | [400000, 600000]     # F: number or [low, high]
    variable_cost_per_participant = [150, 300] # v, per participant (per year of delivery)
    pilot_participants = 2250
    scale_participants = 50000
    benefit_per_participant_year = ...         # optional: money per participant per year
    [price_index]                              # optional: year -> index, to restate an
    2008 = 100.0                               #   estimate's benefit in price_year prices
    [notes]                                    # optional: figure -> note (e.g. "assumption")
    scale_participants = "assumption: ..."

Errors are :class:`impactkit.errors.InputError` naming the file or ``costs['<id>']`` and the
field.
"""

from __future__ import annotations

import difflib
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from impactkit.errors import ImpactkitWarning, InputError
from impactkit.io import read_toml
from impactkit.scale.spec import DOMAINS, CostSpec, Loaded, LoadedPortfolio, Quantity, Source

FROM_ACCOUNTS = "analysis accounts"
FROM_FILE = "intervention file"
FROM_ESTIMATE = "impactkit estimate"
FIGURES = ("fixed_cost", "variable_cost_per_participant", "pilot_participants", "scale_participants",
           "benefit_per_participant_year")
PAYERS = ("government", "implementer", "participants", "company", "donor")
MONEY_FIGURES = ("fixed_cost", "variable_cost_per_participant", "benefit_per_participant_year")

Figure = float | tuple[float, float] | None


class CostAccounts(BaseModel):
    """Validated programme accounts of one intervention (fields in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(min_length=1)
    price_year: int = Field(ge=1900, le=2200)
    source: str = Field(min_length=1)
    # what the figures are: "actual" accounts, "illustrative" figures, or an "assumption";
    # every output that shows a number resting on them says so
    status: Literal["actual", "illustrative", "assumption"] | None = None
    fixed_cost: Figure = None
    variable_cost_per_participant: Figure = None
    pilot_participants: Figure = None
    scale_participants: Figure = None
    benefit_per_participant_year: Figure = None
    price_index: dict[int, float] | None = None
    notes: dict[str, str] | None = None
    # costs at scale beyond F + v N: a step cost per block of participants (e.g. a trainer per
    # step_size families), the years over which delivery (and its variable and step costs) runs,
    # and who pays (shares of every cost, summing to 1)
    step_cost: float | None = Field(default=None, ge=0)
    step_size: float | None = Field(default=None, gt=0)
    delivery_years: int = Field(default=1, ge=1, le=50)
    payers: dict[str, float] | None = None

    @field_validator("payers", mode="after")
    @classmethod
    def _payers(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        stray = sorted(set(value) - set(PAYERS))
        if stray:
            raise ValueError(f"unknown payer(s) {stray}; payers: {list(PAYERS)}")
        if any((not math.isfinite(v)) or v < 0 for v in value.values()) or abs(sum(value.values()) - 1.0) > 1e-9:
            raise ValueError(f"payer shares must be >= 0 and sum to 1, got {value}")
        return value

    @model_validator(mode="after")
    def _step(self) -> "CostAccounts":
        if (self.step_cost is None) != (self.step_size is None):
            raise ValueError("give both 'step_cost' and 'step_size' (a cost per block of participants), or neither")
        return self

    @field_validator("price_year", mode="before")
    @classmethod
    def _whole_year(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and value != int(value)):
            raise ValueError(f"must be a whole year, got {value!r}")
        return value

    @field_validator(*FIGURES, mode="before")
    @classmethod
    def _figure(cls, value: Any, info) -> Any:
        form = "must be a number or an interval [low, high]"
        if value is None:
            return None
        if isinstance(value, bool) or isinstance(value, str) or isinstance(value, dict):
            raise ValueError(f"{form}, got {value!r}")
        if isinstance(value, (list, tuple)):
            if len(value) != 2 or any(isinstance(v, (bool, str)) for v in value):
                raise ValueError(f"{form}; an interval has exactly two numeric bounds, got {value!r}")
            low, high = float(value[0]), float(value[1])
        else:
            low = high = float(value)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"must be finite, got {value!r}")
        if low > high:
            raise ValueError(f"interval [{low:g}, {high:g}] has low > high")
        lo, hi, _ = DOMAINS[f"costs.{info.field_name}"]
        if low < lo or high > hi:
            raise ValueError(f"{[low, high] if low != high else low} outside the admissible range [{lo}, {hi}]")
        return low if low == high else (low, high)

    @field_validator("price_index", mode="after")
    @classmethod
    def _index(cls, value: dict[int, float] | None) -> dict[int, float] | None:
        if value is not None:
            bad = [year for year, level in value.items() if not (math.isfinite(level) and level > 0)]
            if bad:
                raise ValueError(f"index levels must be positive and finite (years {bad})")
        return value

    @model_validator(mode="after")
    def _notes_name_figures(self) -> "CostAccounts":
        known = FIGURES + ("step_cost", "step_size", "delivery_years", "payers")
        stray = sorted(set(self.notes or {}) - set(known))
        if stray:
            raise ValueError(f"notes name unknown figure(s) {stray}; figures: {list(known)}")
        return self

    def given(self) -> dict[str, Figure]:
        """The figures the accounts state (unknown ones left out)."""
        return {name: getattr(self, name) for name in FIGURES if getattr(self, name) is not None}


def _error_text(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        close = difflib.get_close_matches(key, list(CostAccounts.model_fields), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close and len(err["loc"]) == 1 else ""
        msg = f"unknown field '{key}'{hint} (known: {', '.join(CostAccounts.model_fields)})"
    elif err["type"] == "missing":
        msg = "required field missing"
    return loc, msg


def check_accounts(label: str, data: Any) -> CostAccounts:
    """Validate one set of accounts; ``InputError`` names ``label`` (key or file) and the field."""
    if isinstance(data, CostAccounts):
        return data
    if not isinstance(data, dict):
        raise InputError(f"{label}: accounts must be a mapping of fields, got {type(data).__name__}")
    try:
        return CostAccounts.model_validate(data)
    except ValidationError as exc:
        loc, msg = _error_text(exc)
        raise InputError(f"{label}: field '{loc}': {msg}") from None


def load_accounts(path: str | Path) -> dict[str, Any]:
    """Read programme accounts from a TOML file; returns the validated accounts as a plain dict.

    The dict is what ``score(..., costs={intervention_id: load_accounts(path)})`` expects.
    Errors (``InputError``) name the file and the field.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: cost accounts file not found")
    data = read_toml(file)
    accounts = check_accounts(str(file), data)
    return accounts.model_dump(exclude_none=True)


def _quantity(value: Figure, accounts: CostAccounts, name: str) -> Quantity:
    note = (accounts.notes or {}).get(name)
    return Quantity(value=value, evidence=Source(source=accounts.source, locator=FROM_ACCOUNTS), note=note)


def merge_costs(ident: str, file_costs: CostSpec, accounts: CostAccounts) -> tuple[CostSpec, dict[str, str | None]]:
    """The intervention's cost block with the accounts' figures laid over it, and each figure's origin.

    A figure kept from the file must be in the accounts' currency and price year (else
    ``InputError``: the two cannot be added up).
    """
    label = f"costs['{ident}']"
    given = accounts.given()
    update: dict[str, Any] = {"currency": accounts.currency, "price_year": accounts.price_year}
    origin: dict[str, str | None] = {}
    for name in FIGURES:
        kept = getattr(file_costs, name)
        if name in given:
            update[name] = _quantity(given[name], accounts, name)
            origin[name] = FROM_ACCOUNTS
        elif not kept.is_unknown:
            if name in MONEY_FIGURES and (file_costs.currency, file_costs.price_year) != (accounts.currency, accounts.price_year):
                raise InputError(f"{label}: field '{name}': the intervention file gives it in {file_costs.currency} "
                                 f"{file_costs.price_year} but the accounts are in {accounts.currency} "
                                 f"{accounts.price_year}; state it in the accounts")
            update[name] = kept
            origin[name] = FROM_FILE
        else:
            update[name] = kept
            origin[name] = None
    try:
        merged = CostSpec.model_validate(update)
    except ValidationError as exc:
        loc, msg = _error_text(exc)
        raise InputError(f"{label}: field '{loc}': {msg}") from None
    return merged, origin


def file_origins(costs: CostSpec) -> dict[str, str | None]:
    """Origins when no accounts are given: known figures come from the intervention file."""
    return {name: (None if getattr(costs, name).is_unknown else FROM_FILE) for name in FIGURES}


def apply_accounts(loaded: LoadedPortfolio, costs: dict[str, Any] | None
                   ) -> tuple[LoadedPortfolio, dict[str, dict[str, str | None]], dict[str, CostAccounts]]:
    """Lay ``costs={intervention_id: accounts}`` over the portfolio's cost blocks.

    Returns the new portfolio, ``{id: {figure: origin}}`` and the validated accounts by id.
    An id that names no intervention is an ``InputError``.
    """
    costs = dict(costs or {})
    ids = [item.spec.id for item in loaded.interventions]
    stray = sorted(set(costs) - set(ids))
    if stray:
        raise InputError(f"costs: key(s) {stray} name no intervention of the portfolio; ids: {ids}")
    checked = {key: check_accounts(f"costs['{key}']", value) for key, value in costs.items()}
    items: list[Loaded] = []
    origins: dict[str, dict[str, str | None]] = {}
    for item in loaded.interventions:
        ident = item.spec.id
        if ident in checked:
            merged, origin = merge_costs(ident, item.spec.costs, checked[ident])
            item = Loaded(spec=item.spec.model_copy(update={"costs": merged}), path=item.path)
            origins[ident] = origin
        else:
            origins[ident] = file_origins(item.spec.costs)
        items.append(item)
    return replace(loaded, interventions=tuple(items)), origins, checked


def restate_benefit(key: str, facts: dict[str, Any], costs: CostSpec, accounts: CostAccounts | None
                    ) -> tuple[dict[str, Any], float | None]:
    """Put an estimate's money benefit in the cost block's currency and price year.

    ``facts`` may carry ``benefit_currency`` / ``benefit_price_year``. A different currency is
    an ``InputError`` (no exchange rate is assumed). A different price year is restated with
    the accounts' ``price_index`` (benefit x index[price_year] / index[benefit_price_year]) when
    it covers both years; otherwise an ``ImpactkitWarning`` says the two are not comparable.
    Returns the (possibly restated) facts and the factor applied (``None`` if none).
    """
    if facts.get("benefit_per_participant_year") is None:
        return facts, None
    label = f"estimates['{key}']"
    currency, year = facts.get("benefit_currency"), facts.get("benefit_price_year")
    if currency is not None and costs.currency is not None and currency != costs.currency:
        raise InputError(f"{label}: fact 'benefit_currency' is {currency} but the costs are in {costs.currency}; "
                         "restate the benefit in the cost currency")
    if year is None or costs.price_year is None or int(year) == int(costs.price_year):
        return facts, None
    if costs.fixed_cost.is_unknown and costs.variable_cost_per_participant.is_unknown:
        return facts, None  # no money cost to compare the benefit with
    index = (accounts.price_index if accounts is not None else None) or {}
    if int(year) in index and int(costs.price_year) in index:
        factor = index[int(costs.price_year)] / index[int(year)]
        out = dict(facts)
        for name in ("benefit_per_participant_year", "benefit_per_participant_year_low", "benefit_per_participant_year_high"):
            if out.get(name) is not None:
                out[name] = out[name] * factor
        out["benefit_price_year"] = float(costs.price_year)
        return out, factor
    warnings.warn(f"{label}: benefit in {int(year)} prices but costs in {int(costs.price_year)} prices and no "
                  f"price_index covering both years; benefit-cost figures mix price years", ImpactkitWarning, stacklevel=3)
    return facts, None
