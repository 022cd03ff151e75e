"""``analysis.toml``: the declaration of one analysis.

An analysis folder (``analyses/<name>/``) holds ``analysis.toml``, which names the data,
its contract, the design (unit, time, cohort, cluster...), the outcomes, the estimators,
the design checks, the scale-readiness inputs, the pack options and the seed. Every path
in it is relative to the analysis folder. The file is validated with pydantic
(``extra="forbid"``): a typo in a key is an error naming the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from impactkit.distributed.config import EngineSection  # i15: [engine] (pandas | dask)
from impactkit.errors import SpecError

ANALYSIS_FILE = "analysis.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnalysisMeta(_Strict):
    name: str
    title: str
    question: str
    organisation: str = ""
    unit_label: str = "household"
    min_cell: int = Field(10, ge=1)
    recommendation: str = ""


class DataSection(_Strict):
    file: str
    contract: str


class DesignSection(_Strict):
    unit: str
    time: str
    cohort: str
    treated: str
    cluster: str
    weights: str | None = None
    take_up: str | None = None
    subgroup: str | None = None
    subgroup_label: str = "women-headed households"
    baseline: int | None = None


class OutcomeSection(_Strict):
    primary: str
    transform: Literal["log", "none"] = "log"
    label: str = "Household income"
    currency: str = "PEN"
    currency_year: int = 2008
    poverty_line: float | None = None
    family: list[str] = Field(default_factory=list)


class EstimatorSection(_Strict):
    headline: Literal["cs", "twfe", "sa"] = "cs"
    compare: list[Literal["twfe", "cs", "sa", "2x2"]] = Field(default_factory=lambda: ["twfe", "cs", "sa"])
    cs_est: Literal["dr", "ipw", "reg"] = "dr"
    cs_control: Literal["never", "notyet"] = "never"
    covariates: list[str] = Field(default_factory=list)
    wild_bootstrap_draws: int = Field(9999, ge=99)
    wild_bootstrap_weights: Literal["rademacher", "webb", "mammen"] = "webb"
    multiplier_draws: int = Field(999, ge=99)
    iv: bool = True
    bacon: bool = True


class CheckSection(_Strict):
    balance_covariates: list[str] = Field(default_factory=list)
    attrition_covariates: list[str] = Field(default_factory=list)
    multiple_testing_draws: int = Field(499, ge=99)
    power_effect: float | None = None


class ScaleSection(_Strict):
    portfolio: str | None = None
    intervention: str | None = None
    costs: str | None = None
    draws: int | None = Field(None, ge=100)


class PinSection(_Strict):
    rtol: float = 1e-6
    atol: float = 1e-9


class SeedSection(_Strict):
    entropy: int = Field(ge=0)


class PackSection(_Strict):
    formats: list[Literal["html", "pdf"]] = Field(default_factory=lambda: ["html", "pdf"])
    audience: str = "government"


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
        files = {ANALYSIS_FILE: self.folder / ANALYSIS_FILE,
                 self.data.file: self.path(self.data.file),
                 self.data.contract: self.path(self.data.contract)}
        if self.scale.portfolio:
            portfolio = self.path(self.scale.portfolio)
            files[self.scale.portfolio] = portfolio
            for item in _portfolio_members(portfolio):
                rel = _relative_to(item, self.folder)
                files[rel] = item
        if self.scale.costs:
            files[self.scale.costs] = self.path(self.scale.costs)
        for key, template in pack_templates().items():
            files[key] = template
        return dict(sorted(files.items()))


def pack_templates() -> dict[str, Path]:
    """The evidence-pack templates, keyed ``reports/templates/<name>`` wherever the analysis lives."""
    root = Path(__file__).resolve().parents[2]
    templates = root / "reports" / "templates"
    if not templates.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p for p in sorted(templates.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _relative_to(path: Path, folder: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def _portfolio_members(portfolio: Path) -> list[Path]:
    """Intervention files a portfolio lists (best effort: the scale module validates it)."""
    import yaml

    try:
        data = yaml.safe_load(portfolio.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
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
    from impactkit.distributed.data import dataset_files

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
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{file}: not valid TOML: {exc}") from None
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
