"""``analysis.toml`` on the Dask engine: the same chain, the same results document.

The chain is the pandas engine's (:mod:`impactkit.analysis.run`), one way: read lazily (a
directory or glob of Parquet partitions, every unit inside one partition) -> validate against
the contract per partition (the gate: a failing contract stops the run, exit 1) -> derive the
analysis columns per partition (:func:`impactkit.analysis.prepare.prepare_panel`) -> the
registered steps in the pandas order, each the Dask implementation of
:data:`impactkit.distributed.steps.DASK_STEPS` (or the pandas step itself when it reads no rows),
or left out with its reason (``not computed on the Dask engine: ...``) in ``omitted``. The
document is checked against the same typed model (``impactkit.results/2``).

What runs where: the client (this process) holds the spec, the reduced sums (Gram matrices,
per-cluster scores, per-(cluster, cohort) influence sums, per-partition counts) and does the small
dense algebra and the bootstrap draws; the workers read the partitions and make every pass over
rows. Nothing gathers the rows to the client.

:func:`run_analysis_on` is the one entry every command uses (``estimate``, ``pack``, ``pin``,
``rerun``, ``score`` of a linked analysis): the engine is ``engine`` if given, else ``[engine]
kind``; the cluster is ``scheduler``, else ``[engine] scheduler``, else the current client, else
a LocalCluster started for the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from impactkit.analysis.context import Context
from impactkit.analysis.spec import AnalysisSpec, load_analysis
from impactkit.errors import InputError


@dataclass
class DaskContext(Context):
    """A :class:`~impactkit.analysis.context.Context` whose ``panel`` is a lazy dask DataFrame
    (every unit in one partition). Facts the pandas context reads off the frame (periods, cohorts,
    units with an outcome) come from per-partition reductions; the CS fit is the distributed one."""

    @cached_property
    def structure(self) -> dict[str, Any]:
        """Periods, treated cohorts, units and units with an outcome, by one pass (computed once)."""
        from impactkit.distributed.facts import panel_structure

        d = self.spec.design
        return panel_structure(self.panel, unit=d.unit, time=d.time, cohort=d.cohort, y=self.y)

    @property
    def waves(self) -> list[int]:
        return self.structure["waves"]

    @property
    def cohorts(self) -> list[int]:
        return self.structure["cohorts"]

    def n_units_with_outcome(self) -> int:
        return self.structure["n_units_with_outcome"]

    def fit_cs(self):
        from impactkit.distributed.cs import estimate_cs

        d, e = self.spec.design, self.spec.estimators
        return estimate_cs(self.panel, y=self.y, unit=d.unit, time=d.time, cohort=d.cohort,
                           covariates=e.covariates or None, control=e.cs_control, est=e.cs_est, cluster=d.cluster,
                           weights=self.weighted("cs"), bootstrap=True, biters=e.multiplier_draws, seed=self.seed,
                           allow_unbalanced=e.cs_allow_unbalanced)


def data_location(spec: AnalysisSpec) -> str | Path:
    """The dataset as the reader takes it: a URL as written, else the path under the analysis folder."""
    return spec.data.file if "://" in spec.data.file else spec.folder / spec.data.file


def build_dask_context(spec: AnalysisSpec) -> DaskContext:
    """Read lazily, validate per partition and prepare the data of ``spec`` (call inside a client)."""
    from impactkit.analysis.labels import resolve_labels
    from impactkit.analysis.prepare import prepare_panel
    from impactkit.analysis.run import contract_failure, input_hashes, refuse_personal_roles
    from impactkit.contracts import load_contract
    from impactkit.distributed import contracts
    from impactkit.distributed.data import by_unit, read_panel

    contract = load_contract(spec.path(spec.data.contract))
    refuse_personal_roles(spec, contract.personal_columns)
    hashes = input_hashes(spec)
    raw = read_panel(data_location(spec))
    frame = by_unit(raw, spec.design.unit)
    if frame is not raw:
        # units were split across files: keep the regrouped partitions on the workers (Dask spills
        # them to the workers' disks beyond their memory target) so that the exchange happens once,
        # not once per pass of every step
        frame = frame.persist()
    report = contracts.validate(frame, contract, source=spec.data.file)
    if not report.ok:
        raise contract_failure(spec, report)
    never = contract.panel.never_treated_cohort
    meta = prepare_panel(frame._meta, spec, never_treated_cohort=never)
    panel = frame.map_partitions(prepare_panel, spec, never_treated_cohort=never, meta=meta)
    return DaskContext(spec=spec, panel=panel, contract=contract, report=report, hashes=hashes,
                       labels=resolve_labels(spec, contract), seed=spec.seeds.entropy)


def run_analysis_dask(spec: AnalysisSpec, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The results document of ``spec`` on Dask (call inside :func:`impactkit.distributed.cluster.dask_client`)."""
    from impactkit.analysis.run import execute
    from impactkit.distributed.steps import dask_steps

    return execute(spec, build_dask_context, dask_steps(), progress)


def engine_of(spec: AnalysisSpec, engine: str | None = None) -> str:
    """``engine`` (checked), else ``[engine] kind``."""
    from impactkit.analysis.engine import ENGINE_KINDS

    if engine is not None and engine not in ENGINE_KINDS:
        raise InputError(f"--engine must be one of {', '.join(ENGINE_KINDS)}, got {engine!r}")
    return engine or spec.engine.kind


def run_analysis_on(analysis_dir: str | Path | AnalysisSpec, *, engine: str | None = None,
                    scheduler: str | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run an analysis on the engine it declares (or ``engine``) and return its results document."""
    from impactkit.analysis.run import run_analysis

    spec = analysis_dir if isinstance(analysis_dir, AnalysisSpec) else load_analysis(analysis_dir)
    kind = engine_of(spec, engine)
    if kind == "pandas":
        if scheduler:
            raise InputError("--scheduler needs the Dask engine (--engine dask or [engine] kind = \"dask\")")
        return run_analysis(spec, progress=progress)
    from impactkit.distributed.cluster import dask_client

    with dask_client(scheduler or spec.engine.scheduler, n_workers=spec.engine.n_workers,
                     memory_limit=spec.engine.memory_limit):
        return run_analysis_dask(spec, progress)
