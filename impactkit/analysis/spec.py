"""``analysis.toml``: the declaration of one analysis.

An analysis folder (``analyses/<name>/``) holds ``analysis.toml``, which names the data,
its contract, the design (unit, time, cohort, cluster...), the outcomes, the estimators,
the design checks, the scale-readiness inputs, the pack options and the seed. Every path
in it is relative to the analysis folder. The file is validated with pydantic
(``extra="forbid"``): a typo in a key is an error naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from impactkit.did import registry as did_registry
from impactkit.analysis.engine import EngineSection  # [engine] (pandas | dask)
from impactkit.errors import SpecError
from impactkit.io import read_toml
from impactkit.limits import (MAX_BOOTSTRAP_DRAWS, MAX_MULTIPLE_TESTING_DRAWS, MAX_MULTIPLIER_DRAWS,
                              MAX_PERMUTATIONS, MAX_SCALE_DRAWS)

# every registered DiD estimator, and ANCOVA (final period on the baseline outcome; analysis layer)
AnalysisMethod = Literal[did_registry.names() + ("ancova",)]  # type: ignore[valid-type]

ANALYSIS_FILE = "analysis.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnalysisMeta(_Strict):
    """``[analysis]``: what the study is called, what it asks, and how its units are named."""

    name: str = Field(description="Short identifier of the analysis (letters, digits, '_' or '-').")
    title: str = Field(description="Title printed on the evidence pack.")
    question: str = Field(description="The evaluation question, in one sentence.")
    organisation: str = Field("", description="Who runs the programme or the evaluation (pack subtitle).")
    unit_label: str = Field("unit", description="Noun for one unit of observation, singular (e.g. 'farm', "
                            "'county', 'pupil').")
    unit_plural: str | None = Field(None, description="Plural of `unit_label`; default: `unit_label` + 's'.")
    cluster_label: str | None = Field(None, description="Plural noun for the clusters (e.g. 'villages'); "
                                      "default: 'clusters'.")
    treated_label: str = Field("treated", description="Adjective for the arm that gets the programme "
                               "(e.g. 'served', 'offered').")
    control_label: str = Field("comparison", description="Adjective for the arm that does not.")
    min_cell: int = Field(10, ge=1, description="Smallest count of units a published cell may rest on; smaller "
                          "cells are suppressed.")
    recommendation: str = Field("", description="The recommendation printed under the headline.")

    def plural(self) -> str:
        return self.unit_plural or f"{self.unit_label}s"


class DataSection(_Strict):
    """``[data]``: the panel and its data contract (paths relative to the analysis folder)."""

    file: str = Field(description="The data file: CSV, Parquet, Stata (.dta) or Excel.")
    contract: str = Field(description="The data contract (ODCS v3 YAML) the data are validated against.")


class DesignSection(_Strict):
    """``[design]``: the columns that define the evaluation design."""

    unit: str = Field(description="Column identifying a unit (panel id).")
    time: str = Field(description="Column of the period (integer wave or year).")
    cohort: str = Field(description="Column of each unit's first treated period; the contract's "
                        "`never_treated_cohort` (default 0) or missing means never treated.")
    treated: str = Field(description="0/1 column: treated in this period (the instrument in an "
                         "encouragement design).")
    cluster: str = Field(description="Column of the cluster standard errors are clustered by (the unit of "
                         "assignment).")
    weights: str | None = Field(None, description="Column of sampling weights, passed to every step that takes "
                                "weights; steps that take none are listed as unweighted in the results.")
    take_up: str | None = Field(None, description="0/1 column: the unit used the programme (enables the "
                                "instrumental-variables section).")
    take_up_label: str = Field("used the programme", description="What taking up means, as a verb phrase "
                               "('used the service').")
    subgroup: str | None = Field(None, description="0/1 column defining the pre-specified subgroup.")
    subgroup_label: str | None = Field(None, description="Plural noun phrase for the subgroup (value 1); default: "
                                       "the contract's description of the column, else the column name.")
    baseline: int | None = Field(None, description="The baseline period; default: the first period.")
    period_label: str = Field("period", description="Noun for one period of `time` ('year', 'wave', 'month').")
    horizon: int = Field(2, ge=0, description="Periods after roll-out at which the effect on users and the "
                         "'later' event-study effect are read.")
    controls: list[str] = Field(default_factory=list, description="Baseline controls of the final-period "
                                "comparisons (heterogeneity, multiple outcomes), besides the baseline outcome.")
    characteristics: list[str] = Field(default_factory=list, description="Baseline characteristics whose "
                                       "complier means are shown in the instrumental-variables section.")


class OutcomeSection(_Strict):
    """``[outcomes]``: the primary outcome and what it is."""

    primary: str = Field(description="Column of the primary outcome.")
    kind: Literal["level", "log", "share", "money"] = Field(
        description="What the outcome is: 'level' (a quantity in `units`), 'log' (already a logarithm), "
        "'share' (a 0-1 share or binary outcome; effects in percentage points) or 'money' (an amount in "
        "`currency` at `currency_year` prices).")
    transform: Literal["log", "none"] = Field("none", description="'log' to analyse log(primary) (effects "
                                              "then read as percent changes); 'none' analyses the column as is.")
    units: str = Field("", description="Units of a 'level' outcome (e.g. 'kg per hectare').")
    label: str | None = Field(None, description="Name of the outcome in sentences; default: the contract's "
                              "description of the column, else the column name.")
    currency: str | None = Field(None, description="ISO 4217 code of a 'money' outcome (required then, "
                                 "refused otherwise).")
    currency_year: int | None = Field(None, description="Price year of a 'money' outcome (required then).")
    poverty_line: float | None = Field(None, description="A poverty line in the outcome's units: the baseline "
                                       "share below it is reported.")
    family: list[str] = Field(default_factory=list, description="Outcomes tested together (multiple-testing "
                              "corrections); a 'log_<column>' name is derived from <column>.")

    @model_validator(mode="after")
    def _coherent(self) -> "OutcomeSection":
        if self.kind == "money" and (not self.currency or self.currency_year is None):
            raise ValueError("kind = 'money' needs currency and currency_year")
        if self.kind != "money" and (self.currency or self.currency_year is not None):
            raise ValueError(f"currency/currency_year are for kind = 'money', not '{self.kind}'")
        if self.transform == "log" and self.kind in ("log", "share"):
            raise ValueError(f"transform = 'log' on a kind = '{self.kind}' outcome: "
                             + ("it is already a log" if self.kind == "log" else "log a share is not supported"))
        return self


ESTIMATOR_METHODS = ("cs", "twfe", "sa", "2x2", "ancova")


class EstimatorSection(_Strict):
    """``[estimators]``: the headline estimator, those shown alongside it, and their options."""

    headline: AnalysisMethod = Field(
        "cs", description="Estimator of the headline effect: a registered DiD method ('cs' Callaway-Sant'Anna, "
        "'twfe', 'sa' Sun-Abraham, '2x2' two-period DiD, ...) or 'ancova' (final period on baseline outcome).")
    compare: list[AnalysisMethod] = Field(
        default_factory=lambda: ["twfe", "cs", "sa"],
        description="Estimators shown alongside the headline; each one listed is run and shown.")
    cs_est: Literal["dr", "ipw", "reg"] = Field("dr", description="Callaway-Sant'Anna estimator: doubly "
                                                "robust, inverse probability weighting or outcome regression.")
    cs_control: Literal["never", "notyet"] = Field("never", description="Callaway-Sant'Anna comparison group.")
    cs_allow_unbalanced: bool = Field(
        False, description="Unbalanced panels: false keeps the balanced sub-panel (R did's default, the number of "
        "units dropped is reported); true uses the unbalanced-panel estimator on every observed row.")
    covariates: list[str] = Field(default_factory=list, description="Covariates of the Callaway-Sant'Anna "
                                  "estimator.")
    wild_bootstrap_draws: int = Field(9999, ge=99, le=MAX_BOOTSTRAP_DRAWS,
                                      description="Draws of the wild cluster bootstrap of TWFE.")
    wild_bootstrap_weights: Literal["rademacher", "webb", "mammen"] = Field(
        "webb", description="Wild bootstrap weight distribution.")
    multiplier_draws: int = Field(999, ge=99, le=MAX_MULTIPLIER_DRAWS,
                                  description="Multiplier bootstrap draws (uniform event-study bands).")
    randomization_draws: int = Field(999, ge=99, le=MAX_PERMUTATIONS,
                                     description="Permutations of randomization inference.")
    iv: bool = Field(True, description="Run the instrumental-variables section when `design.take_up` is set.")
    bacon: bool = Field(True, description="Goodman-Bacon decomposition of TWFE (staggered designs only).")
    event_study: bool = Field(True, description="Dynamic Callaway-Sant'Anna effects by event time.")


class CheckSection(_Strict):
    """``[checks]``: design checks."""

    balance_covariates: list[str] = Field(default_factory=list, description="Baseline covariates of the "
                                          "balance table.")
    attrition_covariates: list[str] = Field(default_factory=list, description="Covariates of the test that "
                                            "attrition is unrelated to baseline characteristics.")
    multiple_testing_draws: int = Field(499, ge=99, le=MAX_MULTIPLE_TESTING_DRAWS,
                                        description="Bootstrap draws of Romano-Wolf and Westfall-Young.")
    power_effect: float | None = Field(None, description="Effect (in the analysed outcome's units) a scale-up "
                                       "trial should detect; default: half the headline.")


class ScaleSection(_Strict):
    """``[scale]``: scale-readiness inputs (paths relative to the analysis folder)."""

    portfolio: str | None = Field(None, description="Portfolio YAML of interventions to score.")
    intervention: str | None = Field(None, description="Id of this analysis's intervention in the portfolio.")
    costs: str | None = Field(None, description="Programme accounts (TOML) of the intervention.")
    draws: int | None = Field(None, ge=100, le=MAX_SCALE_DRAWS,
                              description="Monte Carlo draws; default: the portfolio's own.")


MONTE_CARLO_PATTERNS = (
    "*critical_value*", "*band_high*", "*band_low*", "*romano_wolf*", "*westfall_young*",
    "randomization_inference*", "*bootstrap*", "scale.*p_*", "scale.*probability*",
    "scale.*q05*", "scale.*q95*", "scale.*mcse*",
)


class PinSection(_Strict):
    """``[pin]``: how `impactkit rerun` judges a number: ``|now - pinned| <= atol + rtol |pinned|``.

    ``rtol``/``atol`` apply to every number; quantities computed from random draws (names
    matching ``monte_carlo``, glob patterns) get ``monte_carlo_rtol``/``monte_carlo_atol``,
    because a last-bit difference can move one draw across a threshold, which shifts a
    proportion by 1/B and a quantile to its neighbouring order statistic. Read from
    ``analysis.toml`` (an input whose hash the lock pins), never from the lock itself.
    """

    rtol: float = Field(1e-9, ge=0, le=1e-3, description="Relative tolerance of every number.")
    atol: float = Field(1e-12, ge=0, le=1e-3, description="Absolute tolerance of every number.")
    monte_carlo: list[str] = Field(default_factory=lambda: list(MONTE_CARLO_PATTERNS),
                                   description="Glob patterns of quantities computed from random draws.")
    monte_carlo_rtol: float = Field(1e-2, ge=0, le=0.1, description="Relative tolerance of Monte Carlo quantities.")
    monte_carlo_atol: float = Field(2e-3, ge=0, le=0.1, description="Absolute tolerance of Monte Carlo quantities.")


class SeedSection(_Strict):
    """``[seeds]``: the root of every random draw."""

    entropy: int = Field(ge=0, description="Non-negative integer seed; each procedure draws its own stream.")


class PackSection(_Strict):
    """``[pack]``: the evidence pack and the policy brief (passed through to `impactkit pack`).

    ``languages`` are language codes with a gettext catalog (``impactkit/pack/locale``);
    ``region`` (ISO 3166 code, e.g. ``"PE"``) picks the currency symbol and conventions of
    that country; ``text.<lang>`` holds authored text per language (title, recommendation,
    outcome label, partner, government role...), see :mod:`impactkit.pack.brief`.
    """

    formats: list[Literal["html", "pdf", "docx"]] = Field(default_factory=lambda: ["html", "pdf"],
                                                          description="Formats `impactkit pack` writes when "
                                                          "`--to` is not given.")
    audience: Literal["government", "company", "funder"] = Field(
        "government", description="Who the policy brief is written for: what its page 2 leads with "
        "(results `analysis.pack.audience`).")
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1,
                                 description="Languages of the policy brief (each needs a catalog).")
    region: str | None = Field(None, description="Country code for currency symbols and conventions (e.g. PE).")
    text: dict[str, dict[str, str]] = Field(default_factory=dict,
                                            description="Authored brief text per language (`[pack.text.es]`).")


class AnalysisSpec(_Strict):
    """The validated content of ``analysis.toml`` plus the folder it came from."""

    analysis: AnalysisMeta
    data: DataSection
    design: DesignSection
    outcomes: OutcomeSection
    estimators: EstimatorSection = Field(default_factory=EstimatorSection)
    checks: CheckSection = Field(default_factory=CheckSection)
    scale: ScaleSection = Field(default_factory=ScaleSection)
    pin: PinSection = Field(default_factory=PinSection)
    seeds: SeedSection
    pack: PackSection = Field(default_factory=PackSection)
    engine: EngineSection = Field(default_factory=EngineSection)  # i15: the Dask engine switch
    folder: Path = Field(exclude=True)

    def path(self, relative: str) -> Path:
        """Resolve a path written in analysis.toml (relative to the analysis folder)."""
        return (self.folder / relative).resolve()

    def input_files(self) -> dict[str, Path]:
        """Every input whose bytes the numbers depend on, keyed by a folder-relative path."""
        files = {ANALYSIS_FILE: self.folder / ANALYSIS_FILE, **self.data_files(),
                 self.data.contract: self.path(self.data.contract)}
        if self.scale.portfolio:
            portfolio = self.path(self.scale.portfolio)
            files[self.scale.portfolio] = portfolio
            for item in _portfolio_members(portfolio):
                rel = _relative_to(item, self.folder)
                files[rel] = item
        if self.scale.costs:
            files[self.scale.costs] = self.path(self.scale.costs)
        return dict(sorted(files.items()))

    def data_files(self) -> dict[str, Path]:
        """The data's files, keyed by a folder-relative path: the one file, or every Parquet file
        (partition) of a directory or glob (sorted), so that a changed, added or removed partition
        is named by the pin. A remote dataset (``s3://...``) has no local file to hash: none."""
        from impactkit.io import dataset_files

        if "://" in self.data.file:
            return {}
        location = self.path(self.data.file)
        if location.is_file() or not (location.is_dir() or any(ch in self.data.file for ch in "*?[")):
            return {self.data.file: location}
        return {_relative_to(f, self.folder): f for f in dataset_files(self.folder / self.data.file)}

    def is_partitioned(self) -> bool:
        """True when the data is a directory or glob of files (partitioned Parquet) or remote."""
        files = self.data_files()
        return list(files) != [self.data.file]

    def presentation_files(self) -> dict[str, Path]:
        """Inputs that shape how numbers are shown but not the numbers (the pack templates)."""
        return pack_templates()


def pack_templates() -> dict[str, Path]:
    """The evidence-pack templates, styles and message catalogs (package data), keyed by their path
    below the package's parent (``impactkit/pack/templates/<name>``, ``impactkit/pack/locale/...``)
    or, in an older source checkout, ``reports/templates/<name>``."""
    package = Path(__file__).resolve().parents[1]
    found: dict[str, Path] = {}
    for folder in (package / "pack" / "templates", package / "pack" / "locale",
                   package.parent / "reports" / "templates"):
        if folder.is_dir():
            found.update({p.relative_to(package.parent).as_posix(): p for p in sorted(folder.rglob("*"))
                          if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".mo"}})
    return dict(sorted(found.items()))


def _relative_to(path: Path, folder: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def _portfolio_members(portfolio: Path) -> list[Path]:
    """Intervention files a portfolio lists (best effort: the scale module validates it)."""
    from impactkit import safeyaml
    from impactkit.errors import InputError

    try:
        data = safeyaml.load(portfolio.read_text(encoding="utf-8"), str(portfolio)) or {}
    except (OSError, UnicodeDecodeError, InputError):
        return []
    entries = data.get("interventions", []) if isinstance(data, dict) else []
    members = []
    for entry in entries:
        rel = entry if isinstance(entry, str) else (entry or {}).get("file") if isinstance(entry, dict) else None
        if isinstance(rel, str):
            members.append((portfolio.parent / rel).resolve())
    return members


def _partitioned_data(folder: Path, relative: str) -> bool:
    """i15: a partitioned Parquet dataset (a directory or a glob) is data too (read by the Dask engine)."""
    from impactkit.io import dataset_files

    return "://" in relative or bool(dataset_files(folder / relative))


def load_analysis(analysis_dir: str | Path) -> AnalysisSpec:
    """Read and validate ``analysis_dir/analysis.toml``.

    Raises :class:`SpecError` (exit 2) naming the file and the field when it is missing,
    not TOML, or does not match the schema.
    """
    folder = Path(analysis_dir)
    file = folder / ANALYSIS_FILE
    if not folder.is_dir():
        raise SpecError(f"{folder}: analysis folder not found")
    if not file.is_file():
        raise SpecError(f"{file}: not found (an analysis folder holds analysis.toml)")
    raw = read_toml(file, SpecError)
    try:
        spec = AnalysisSpec.model_validate({**raw, "folder": folder.resolve()})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"{file}: field '{where}': {first['msg']}") from None
    for label, rel in (("data.file", spec.data.file), ("data.contract", spec.data.contract)):
        if not (spec.path(rel).is_file() or (label == "data.file" and _partitioned_data(spec.folder, rel))):
            raise SpecError(f"{file}: {label} = '{rel}' does not exist")
    for label, rel in (("scale.portfolio", spec.scale.portfolio), ("scale.costs", spec.scale.costs)):
        if rel and not spec.path(rel).is_file():
            raise SpecError(f"{file}: {label} = '{rel}' does not exist")
    return spec
