"""The context every analysis step runs on, and the step registry.

:class:`Context` holds the spec, the prepared panel, the contract and its validation report,
the input hashes, labels and seed; steps (registered in order with :func:`step` into
:data:`STEPS`) read it and write their sections into ``ctx.results`` or leave them out with a
one-line reason (``ctx.omit``). Small helpers shared by the steps live here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from impactkit.analysis.document import SCHEMA_VERSION
from impactkit.analysis.labels import Labels
from impactkit.analysis.prepare import outcome_column
from impactkit.analysis.spec import AnalysisSpec
from impactkit.results import to_plain

SCHEMA = SCHEMA_VERSION
# Below about 42 clusters cluster-robust t tests over-reject (MacKinnon & Webb 2018): a scale-up
# trial is recommended at least this many clusters even when power needs fewer.
MIN_CLUSTERS_FOR_CLUSTER_ROBUST = 42
SEED_PURPOSES = ("cs-multiplier", "sup-t", "wild-bootstrap", "randomization-inference",
                 "romano-wolf", "westfall-young", "scale-mc")
def estimator_labels() -> dict[str, str]:
    """Report labels: every registered DiD estimator (:mod:`impactkit.did.registry`) and ANCOVA."""
    from impactkit.did.registry import labels

    return {**labels(), "twfe": "Two-way fixed effects", "cs": "Callaway-Sant'Anna (doubly robust)",
            "sa": "Sun-Abraham (interaction-weighted)", "2x2": "2x2 difference-in-differences",
            "ancova": "ANCOVA (final period on baseline outcome)"}


ESTIMATOR_LABELS = estimator_labels()
#: steps that take the ``[design] weights`` column; every other step runs unweighted and the
#: results say so (``design.weights_not_used_by``)
WEIGHTED = {"cs": "Callaway-Sant'Anna", "twfe": "two-way fixed effects", "sa": "Sun-Abraham", "2x2": "2x2 DiD",
            "ancova": "ANCOVA", "wild_bootstrap": "wild bootstrap", "randomization_inference": "randomization inference",
            "iv": "instrumental variables", "balance": "balance", "lee_bounds": "Lee bounds"}
UNWEIGHTED = {"bacon": "Goodman-Bacon decomposition", "heterogeneity": "subgroup effects",
              "multiple_outcomes": "multiple-outcome corrections", "attrition": "attrition rates",
              "power": "power calculation"}


# ------------------------------------------------------------------------------------------
# context and registry
# ------------------------------------------------------------------------------------------
@dataclass
class Context:
    """Everything a step reads, and the results it writes into."""

    spec: AnalysisSpec
    panel: pd.DataFrame
    contract: Any
    report: Any
    hashes: dict[str, str]
    labels: Labels
    seed: int
    results: dict[str, Any] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)
    weights_used_by: list[str] = field(default_factory=list)
    weights_not_used_by: list[str] = field(default_factory=list)

    @property
    def y(self) -> str:
        return outcome_column(self.spec)

    @property
    def weights(self) -> str | None:
        return self.spec.design.weights

    def weighted(self, step: str) -> str | None:
        """The weights column for ``step`` (recorded as used), or ``None``."""
        if not self.weights:
            return None
        if step in WEIGHTED:
            if WEIGHTED[step] not in self.weights_used_by:
                self.weights_used_by.append(WEIGHTED[step])
            return self.weights
        if UNWEIGHTED.get(step, step) not in self.weights_not_used_by:
            self.weights_not_used_by.append(UNWEIGHTED.get(step, step))
        return None

    def omit(self, section: str, reason: str) -> None:
        self.omitted[section] = reason

    def n_units_with_outcome(self) -> int:
        """Units with at least one observed outcome."""
        return int(self.panel.dropna(subset=[self.y])[self.spec.design.unit].nunique())

    def fit_cs(self):
        """The Callaway-Sant'Anna fit the spec declares (the multiplier bootstrap included), on
        this context's engine; steps call :func:`impactkit.analysis.steps.estimation.fitted_cs`,
        which keeps the one fit."""
        from impactkit.did import did

        d, e = self.spec.design, self.spec.estimators
        return did(self.panel, method="cs", y=self.y, unit=d.unit, time=d.time, cohort=d.cohort,
                   covariates=e.covariates or None, control=e.cs_control, est=e.cs_est, cluster=d.cluster,
                   weights=self.weighted("cs"), bootstrap=True, biters=e.multiplier_draws, seed=self.seed,
                   allow_unbalanced=e.cs_allow_unbalanced)

    @property
    def waves(self) -> list[int]:
        return sorted(int(w) for w in self.panel[self.spec.design.time].unique())

    @property
    def baseline(self) -> int:
        d = self.spec.design
        return int(d.baseline) if d.baseline is not None else self.waves[0]

    @property
    def cohorts(self) -> list[int]:
        values = pd.to_numeric(self.panel[self.spec.design.cohort], errors="coerce").fillna(0)
        return sorted(int(g) for g in values.unique() if g > 0)


Step = Callable[[Context], None]
STEPS: list[tuple[str, Step]] = []


def step(name: str) -> Callable[[Step], Step]:
    """Register ``func`` as the next step of every analysis (order of registration)."""
    def register(func: Step) -> Step:
        STEPS.append((name, func))
        return func
    return register


# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------
def estimate_row(estimator: str, method: str, outcome: str, values: dict[str, Any], *, n_units: Any = None,
         n_obs: Any = None, note: str = "") -> dict[str, Any]:
    return {"estimator": estimator, "method": method, "outcome": outcome,
            "estimate": values.get("estimate"), "std_error": values.get("std_error"),
            "conf_low": values.get("conf_low"), "conf_high": values.get("conf_high"),
            "p_value": values.get("p_value"), "n_units": n_units, "n_obs": n_obs, "note": note}


def suppress_counts(rows: list[dict[str, Any]], key: str, min_cell: int) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        value = row.get(key)
        small = value is not None and value < min_cell
        out.append({**row, key: None if small else value, "suppressed": bool(small)})
    return out


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return to_plain(frame.reset_index(drop=True))


def words(column: str) -> str:
    return column.replace("_", " ")



def design_kind(ctx: Context) -> str:
    """``'staggered'`` (several adoption periods), ``'two-period'`` or ``'single-adoption'``."""
    if len(ctx.cohorts) > 1:
        return "staggered"
    return "two-period" if len(ctx.waves) == 2 else "single-adoption"



def first_window(ctx: Context) -> tuple[int, int, int]:
    """(first cohort, its last pre-period, the period ``horizon`` periods after it starts)."""
    first = ctx.cohorts[0]
    pre = max(w for w in ctx.waves if w < first)
    post = min(first + ctx.spec.design.horizon, ctx.waves[-1])
    return first, pre, post



def final_wave_frame(ctx: Context, columns: list[str]) -> pd.DataFrame:
    """Final-period rows with baseline values of ``columns`` as ``<col>_baseline``."""
    d = ctx.spec.design
    return final_with_baseline(ctx.panel, d.unit, d.time, ctx.waves[-1], ctx.baseline, columns)


def final_with_baseline(panel: pd.DataFrame, unit: str, time: str, final: int, baseline: int,
                        columns: list[str]) -> pd.DataFrame:
    """Rows of period ``final`` with the ``baseline`` values of ``columns`` as ``<col>_baseline``
    (units in both periods; a pure function of the rows, so it runs per partition of units)."""
    last = panel[panel[time] == final]
    base = panel.loc[panel[time] == baseline, [unit, *dict.fromkeys(columns)]]
    base = base.rename(columns={c: f"{c}_baseline" for c in columns})
    return last.merge(base, on=unit, how="inner", validate="one_to_one")


def final_controls(ctx: Context) -> tuple[pd.DataFrame, list[str]]:
    controls_raw = [c for c in ctx.spec.design.controls if c in ctx.panel.columns]
    final = final_wave_frame(ctx, [ctx.y, *controls_raw])
    return final, [f"{ctx.y}_baseline"] + [f"{c}_baseline" for c in controls_raw]


def comparison_design(ctx: Context) -> str:
    lab = ctx.labels
    controls = ["baseline outcome"] + [words(c) for c in ctx.spec.design.controls]
    named = controls[0] if len(controls) == 1 else ", ".join(controls[:-1]) + " and " + controls[-1]
    return f"final {lab.period}, {lab.treated} vs {lab.control} {lab.clusters}, {named} as controls"


