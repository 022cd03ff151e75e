"""The typed results document (``impactkit.results/2``): one pydantic model per section.

:func:`impactkit.analysis.run_analysis` builds the document step by step and validates it
against :class:`ResultsDocument` before returning it as plain JSON-ready data, so every key
the pack and the pin read is declared here with its type. :func:`load_results` gives the
typed view of a results dict (``results.headline.percent``...);
``ResultsDocument.model_json_schema()`` is exported to ``docs/results-schema.json``
(``python -m impactkit.analysis.document``; a test keeps it current).

Versioning: ``schema`` names the version. A key renamed or removed, or a meaning changed,
bumps it; new optional keys do not. Version 2 (this one) replaced version 1's study-specific
money and baseline-mean keys, ``two_year`` and the ambiguous ``n`` columns with
``money_per_unit``, ``baseline_mean``, ``at_horizon``, ``n_units``/``n_obs``, and
added the outcome semantics (``analysis.outcome_kind``, ``headline.scale``/``units``),
``omitted`` and ``data.weights``.

Numbers: floats are IEEE doubles as computed; ``None`` is missing. The models use
``extra="forbid"`` for the sections impactkit writes, so a key that is not declared here
is a bug caught in the tests, not a silent addition; sections owned by other layers (scale
readiness, cost accounts) are typed as mappings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "impactkit.results/2"

Number = float | int | None
Interval = list[Any]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PackOptions(_Section):
    formats: list[str]
    audience: str


class AnalysisInfo(_Section):
    name: str
    title: str
    question: str
    organisation: str
    outcome: str
    outcome_label: str
    outcome_kind: Literal["level", "log", "share", "money"]
    transform: Literal["log", "none"]
    effect_scale: Literal["log", "share", "money", "level"]
    outcome_units: str
    effect_units: str
    currency: str | None
    currency_year: int | None
    poverty_line: float | None
    unit_label: str
    unit_plural: str
    cluster_label: str
    treated_label: str
    control_label: str
    take_up_label: str
    period_label: str
    horizon: int
    min_cell: int
    recommendation: str
    subgroup_label: str | None
    pack: PackOptions


class ContractInfo(_Section):
    id: str
    version: str | None
    file: str
    sha256: str


class FlowRow(_Section):
    wave: int
    arm: str
    units: int | None
    suppressed: bool


class WeightsUse(_Section):
    column: str
    used_by: list[str]
    not_used_by: list[str]


class DataInfo(_Section):
    file: str
    sha256: str | None = Field(description="SHA-256 of the data file, or of a partitioned dataset's files "
                               "(sorted relative paths and each file's SHA-256); none for a remote dataset.")
    n_rows: int
    n_units: int
    n_clusters: int
    cluster: str
    unit: str
    time: str
    waves: list[int]
    baseline_wave: int
    design: Literal["staggered", "two-period", "single-adoption"]
    personal_columns: list[str]
    never_treated_cohort: int
    contract: ContractInfo
    sample_flow: list[FlowRow]
    baseline_mean: float | None
    baseline_poor_share: float | None = None
    weights: WeightsUse | None = None


class RuleRow(_Section):
    rule: str
    column: str | None
    engine: str
    success: bool
    failed_rows: int | None
    failed_share: float | None


class Validation(_Section):
    ok: bool
    n_rules: int
    n_passed: int
    n_failed: int
    rules: list[RuleRow]


class EstimatorRow(_Section):
    estimator: str
    method: str
    outcome: str
    estimate: Number
    std_error: Number
    conf_low: Number
    conf_high: Number
    p_value: Number
    n_units: int | None = Field(description="Units contributing to the estimate.")
    n_obs: int | None = Field(description="Rows (unit-periods) of the estimation sample.")
    note: str


class Effect(_Section):
    """An effect restated for its scale: ``percent*`` (log outcomes, proportions: 0.25 =
    +25%), ``points*`` (shares, percentage points)."""

    estimate: Number
    std_error: Number = None
    conf_low: Number
    conf_high: Number
    percent: Number = None
    percent_low: Number = None
    percent_high: Number = None
    points: Number = None
    points_low: Number = None
    points_high: Number = None


class AtHorizon(Effect):
    event_time: int


class EffectOnUsers(Effect):
    estimator: str
    take_up: Number


class Headline(Effect):
    estimator: str
    method: str
    outcome: str
    scale: Literal["log", "share", "money", "level"]
    units: str
    population: str
    p_value: Number
    n_units: int
    n_clusters: int
    money_per_unit: Number = None
    money_low: Number = None
    money_high: Number = None
    at_horizon: AtHorizon | None = None
    tot: EffectOnUsers | None = None


class EventRow(_Section):
    event_time: float | int
    estimate: Number
    std_error: Number
    conf_low: Number
    conf_high: Number
    band_low: Number = None
    band_high: Number = None
    n_treated_units: int | None = None


class Pretrend(_Section):
    statistic: Number
    df: Number
    p_value: Number


class EventStudy(_Section):
    estimator: str
    rows: list[EventRow]
    pretrend: Pretrend | None
    critical_value: Number


class WildBootstrap(_Section):
    estimator: str
    estimate: Number
    p_value: Number
    conf_low: Number
    conf_high: Number
    B: int
    weights: str
    n_clusters: int


class RandomizationInference(_Section):
    estimator: str
    p_value: Number
    n_permutations: int | None
    n_clusters: int | None = None


class BaconRow(_Section):
    comparison: str
    weight: Number
    estimate: Number


class IVSection(_Section):
    itt: dict[str, Any]
    first_stage: dict[str, Any]
    late: dict[str, Any]
    weak: dict[str, Any]
    complier_means: list[dict[str, Any]]
    instrument: str
    take_up: str
    window: dict[str, int]


class HetRow(_Section):
    subgroup: str
    term: str | None
    estimate: Number
    std_error: Number
    conf_low: Number
    conf_high: Number
    p_value: Number
    n_units: int | None
    suppressed: bool


class Heterogeneity(_Section):
    by: str
    label: str
    interaction_p: Number
    rows: list[HetRow]
    design: str


class MultipleRow(_Section):
    outcome: str
    estimate: Number
    std_error: Number
    p_value: Number
    holm: Number
    romano_wolf: Number
    westfall_young: Number
    sharpened_q: Number
    n_units: int | None


class BalanceRow(_Section):
    covariate: str
    mean_treated: Number
    mean_control: Number
    difference: Number
    normalized_difference: Number
    p_value: Number
    suppressed: bool


class Balance(_Section):
    rows: list[BalanceRow]
    joint_f: Number
    joint_p: Number
    wave: int


class LeeBounds(_Section):
    lower: Number
    upper: Number
    ci_low: Number
    ci_high: Number
    se_lower: Number
    se_upper: Number
    trimming_share: Number
    trimmed_arm: Any
    n: int | None
    scale: str
    outcome: str


class Attrition(_Section):
    rows: list[dict[str, Any]]
    differential_p: Number
    covariate_test: Any
    final_wave: int
    lee_bounds: LeeBounds | None = None


class Power(_Section):
    mde: Number
    mde_itt: Number
    target_effect_itt: Number
    design_power: Number
    n_units_required: Number
    n_clusters_required: int
    n_clusters_recommended: int
    assumptions: dict[str, Any]


class Seeds(_Section):
    entropy: int
    purposes: list[str]
    scale_mc: int | None = None


class Provenance(_Section):
    impactkit_version: str
    inputs: dict[str, str]
    analysis_folder: str
    command: str


class ResultsDocument(_Section):
    """Every number any output shows, by section; absent sections are listed in ``omitted``."""

    schema_: Literal["impactkit.results/2"] = Field(alias="schema")
    analysis: AnalysisInfo
    data: DataInfo
    validation: Validation
    estimators: list[EstimatorRow]
    headline: Headline
    event_study: EventStudy | None = None
    wild_bootstrap: WildBootstrap | None = None
    randomization_inference: RandomizationInference | None = None
    randomization_inference_ancova: RandomizationInference | None = None
    bacon: list[BaconRow] | None = None
    iv: IVSection | None = None
    balance: Balance | None = None
    attrition: Attrition | None = None
    heterogeneity: Heterogeneity | None = None
    multiple_outcomes: list[MultipleRow] | None = None
    power: Power | None = None
    cost: dict[str, Any] | None = None
    scale: dict[str, Any] | None = None
    seeds: Seeds
    omitted: dict[str, str] = Field(description="Sections left out, each with a one-line reason.")
    provenance: Provenance
    warnings: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def load_results(results: dict[str, Any]) -> ResultsDocument:
    """The typed view of a results dict (raises pydantic's ``ValidationError`` if malformed)."""
    return ResultsDocument.model_validate(results)


def json_schema_text() -> str:
    import json

    return json.dumps(ResultsDocument.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(json_schema_text())
