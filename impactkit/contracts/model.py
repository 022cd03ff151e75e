"""Pydantic models of a data contract: ODCS v3 plus the impactkit panel extension.

The contract is the Open Data Contract Standard v3 (``apiVersion: v3.0.x``,
``kind: DataContract``, one ``schema`` object with ``properties``). impactkit adds its
panel declaration as one ODCS custom property at the top level::

    customProperties:
      - property: panel
        value: {unit_key: ..., time_key: ..., waves: [...], thresholds: {...}}

Every model forbids unknown keys (``extra="forbid"``) so a typo is an error, never a
silently ignored rule. See ``docs/contracts.md`` for the documented format.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from impactkit.contracts.regex import compile_pattern

LogicalType = Literal["string", "integer", "number", "boolean", "date"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class LogicalTypeOptions(_Strict):
    """ODCS ``logicalTypeOptions``: bounds and text constraints of one property."""

    minimum: float | None = None
    maximum: float | None = None
    exclusiveMinimum: float | None = None
    exclusiveMaximum: float | None = None
    pattern: str | None = None
    minLength: int | None = None
    maxLength: int | None = None
    format: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)  # RE2: bounded time on any text (impactkit.contracts.regex)
        return value

    @model_validator(mode="after")
    def _consistent_bounds(self) -> "LogicalTypeOptions":
        for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            value = getattr(self, name)
            if value is not None and math.isnan(value):
                raise ValueError(f"{name} is not a number")
        lows = [(n, v) for n, v in (("minimum", self.minimum), ("exclusiveMinimum", self.exclusiveMinimum))
                if v is not None]
        highs = [(n, v) for n, v in (("maximum", self.maximum), ("exclusiveMaximum", self.exclusiveMaximum))
                 if v is not None]
        for low_name, low in lows:
            for high_name, high in highs:
                empty = low > high if low_name == "minimum" and high_name == "maximum" else low >= high
                if empty:
                    raise ValueError(f"contradictory bounds: {low_name} {low:g} and {high_name} {high:g} "
                                     "leave no allowed value")
        for name in ("minLength", "maxLength"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value}")
        if self.minLength is not None and self.maxLength is not None and self.minLength > self.maxLength:
            raise ValueError(f"contradictory bounds: minLength {self.minLength} > maxLength {self.maxLength}")
        return self


class QualityRule(_Strict):
    """ODCS ``quality`` item of a property. Supported rule: ``validValues`` (allowed set)."""

    rule: Literal["validValues"]
    type: Literal["library"] = "library"
    validValues: list[Any]
    description: str | None = None
    dimension: str | None = None
    severity: str | None = None


class CustomProperty(_Strict):
    """ODCS custom property ``{property, value}``."""

    property: str
    value: Any = None


class SchemaProperty(_Strict):
    """One column of the table (ODCS ``schema[].properties[]``)."""

    name: str = Field(min_length=1)
    logicalType: LogicalType
    physicalType: str | None = None
    description: str | None = None
    businessName: str | None = None
    required: bool = False
    unique: bool = False
    primaryKey: bool = False
    primaryKeyPosition: int = -1
    logicalTypeOptions: LogicalTypeOptions | None = None
    classification: Literal["public", "internal", "restricted", "confidential", "personal"] | None = None
    criticalDataElement: bool = False
    examples: list[Any] | None = None
    tags: list[str] | None = None
    quality: list[QualityRule] = Field(default_factory=list)
    customProperties: list[CustomProperty] | None = None

    @property
    def is_personal(self) -> bool:
        return self.classification == "personal"


class SchemaObject(_Strict):
    """The table (ODCS ``schema[]`` object)."""

    name: str
    physicalName: str | None = None
    physicalType: str | None = None
    logicalType: Literal["object"] = "object"
    description: str | None = None
    businessName: str | None = None
    tags: list[str] | None = None
    properties: list[SchemaProperty] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "SchemaObject":
        seen: set[str] = set()
        for prop in self.properties:
            if prop.name in seen:
                raise ValueError(f"property '{prop.name}' is declared twice")
            seen.add(prop.name)
        return self


class OutlierRule(_Strict):
    """Outlier rule for one column: Tukey fences ``iqr: k`` or a robust ``z`` score.

    ``iqr: k`` flags values outside ``[Q1 - k IQR, Q3 + k IQR]`` (Tukey 1977, *Exploratory
    Data Analysis*, ch. 2); ``z: k`` flags ``|x - median| / (1.4826 MAD) > k``
    (Hampel 1974). ``log: true`` applies the rule to ``log(x)`` (positive values only).
    """

    iqr: float | None = Field(default=None, gt=0)
    z: float | None = Field(default=None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _one_method(self) -> "OutlierRule":
        if (self.iqr is None) == (self.z is None):
            raise ValueError("give exactly one of 'iqr' or 'z'")
        return self


class Thresholds(_Strict):
    """Panel thresholds (shares are in [0, 1])."""

    attrition_max_share: float = Field(default=0.10, ge=0, le=1)
    missing_max_share: dict[str, float] = Field(default_factory=dict)
    jump_factor: dict[str, float] = Field(default_factory=dict)
    outliers: dict[str, OutlierRule] = Field(default_factory=dict)

    @field_validator("missing_max_share")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        for col, share in value.items():
            if not 0 <= share <= 1:
                raise ValueError(f"missing_max_share for '{col}' must be in [0, 1]")
        return value

    @field_validator("jump_factor")
    @classmethod
    def _factors(cls, value: dict[str, float]) -> dict[str, float]:
        for col, factor in value.items():
            if factor <= 1:
                raise ValueError(f"jump_factor for '{col}' must be > 1")
        return value


class PanelSpec(_Strict):
    """The impactkit panel extension (``customProperties: [{property: panel, value: ...}]``)."""

    unit_key: str
    time_key: str
    waves: list[int] = Field(min_length=1)
    treatment: str | None = None
    cohort: str | None = None
    never_treated_cohort: int = 0
    cluster: str | None = None
    weights: str | None = None
    time_invariant: list[str] = Field(default_factory=list)
    personal: list[str] = Field(default_factory=list)
    free_text: list[str] = Field(default_factory=list)
    leak_patterns: dict[str, str] = Field(default_factory=dict)
    encoding: str = "utf-8"
    sheet: str | None = None
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @field_validator("leak_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                compile_pattern(pattern)
            except ValueError as exc:
                raise ValueError(f"leak pattern '{label}': {exc}") from None
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding '{value}'") from None
        return value


class PanelProperty(_Strict):
    """The custom property ``{property: panel, value: PanelSpec}``."""

    property: Literal["panel"]
    value: PanelSpec


def _custom_kind(item: Any) -> str:
    name = item.get("property") if isinstance(item, dict) else getattr(item, "property", None)
    return "panel" if name == "panel" else "other"


TopCustomProperty = Annotated[
    Union[Annotated[PanelProperty, Tag("panel")], Annotated[CustomProperty, Tag("other")]],
    Discriminator(_custom_kind),
]


class Contract(_Strict):
    """An ODCS v3 data contract with the impactkit panel extension."""

    apiVersion: str = Field(pattern=r"^v3\.0\.\d+$")
    kind: Literal["DataContract"]
    id: str
    version: str
    status: Literal["proposed", "draft", "active", "deprecated", "retired"]
    name: str | None = None
    tenant: str | None = None
    domain: str | None = None
    dataProduct: str | None = None
    description: dict[str, Any] | str | None = None
    tags: list[str] | None = None
    schema_: list[SchemaObject] = Field(alias="schema", min_length=1, max_length=1)
    customProperties: list[TopCustomProperty] = Field(default_factory=list)
    contractCreatedTs: str | None = None

    @property
    def table(self) -> SchemaObject:
        return self.schema_[0]

    @property
    def properties(self) -> dict[str, SchemaProperty]:
        return {p.name: p for p in self.table.properties}

    @property
    def panel(self) -> PanelSpec:
        for item in self.customProperties:
            if isinstance(item, PanelProperty):
                return item.value
        raise ValueError("customProperties has no 'panel' entry")  # pragma: no cover - validated

    @property
    def personal_columns(self) -> tuple[str, ...]:
        """Columns classified ``personal`` or listed in ``panel.personal`` (declared order)."""
        listed = list(self.panel.personal)
        listed += [p.name for p in self.table.properties if p.is_personal and p.name not in listed]
        return tuple(listed)

    @model_validator(mode="after")
    def _panel_is_consistent(self) -> "Contract":
        panels = [i for i in self.customProperties if isinstance(i, PanelProperty)]
        if len(panels) != 1:
            raise ValueError("customProperties must hold exactly one 'panel' entry")
        return self


def reference_problems(contract: Contract) -> list[tuple[tuple[str | int, ...], str]]:
    """Panel fields naming columns the schema does not declare: (key path, message) pairs.

    Paths are relative to the contract's root (``customProperties[i].value...``) so that
    the loader can point at the offending line.
    """
    names = set(contract.properties)
    position = next(i for i, item in enumerate(contract.customProperties) if isinstance(item, PanelProperty))
    root: tuple[str | int, ...] = ("customProperties", position, "value")
    panel = contract.panel
    problems = []
    for field_name in ("unit_key", "time_key", "treatment", "cohort", "cluster", "weights"):
        column = getattr(panel, field_name)
        if column is not None and column not in names:
            problems.append((root + (field_name,), f"'{column}' is not a schema property"))
    personal = set(contract.personal_columns)
    for field_name in ("unit_key", "time_key", "treatment", "cohort", "cluster", "weights"):
        column = getattr(panel, field_name)
        if column is not None and column in personal:
            problems.append((root + (field_name,), f"'{column}' is a personal column: its values would be printed "
                             "(example keys, labels); use a pseudonymous identifier"))
    for field_name in ("time_invariant", "personal", "free_text"):
        for i, column in enumerate(getattr(panel, field_name)):
            if column not in names:
                problems.append((root + (field_name, i), f"'{column}' is not a schema property"))
    for field_name in ("missing_max_share", "jump_factor", "outliers"):
        for column in getattr(panel.thresholds, field_name):
            if column not in names:
                problems.append((root + ("thresholds", field_name, column), f"'{column}' is not a schema property"))
    return problems
