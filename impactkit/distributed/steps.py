"""The analysis steps on the Dask engine: one registry, one entry per pandas step.

:data:`DASK_STEPS` maps every step name of :data:`impactkit.analysis.context.STEPS` to

- the pandas step itself (it reads the spec, the validation report or earlier results, no rows);
- a Dask step (per-partition reductions, :mod:`impactkit.distributed.facts`, the estimators by
  sufficient statistics, the fan-out Monte Carlo);
- or :class:`Omitted`: the sections it would write, with the reason they are not computed on
  Dask. The reason reaches ``omitted`` in the results and the pack
  (``not computed on the Dask engine: ...``); nothing is gathered to the client in their place.

:data:`DASK_ESTIMATORS` does the same for the ``[estimators]`` rows: ``method -> function(ctx) ->
row``. A new distributed estimator plugs in with one line here (an estimator row) or one line in
:data:`DASK_STEPS` (a whole step, e.g. ``"iv"`` or ``"bacon"``); a step the registry does not name
is omitted with a reason, never dropped silently (:func:`dask_steps`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from impactkit.analysis.context import ESTIMATOR_LABELS, STEPS, Context, Step, first_window, frame_records
from impactkit.analysis.steps import checks as pandas_checks
from impactkit.analysis.steps import estimation as pandas_steps
from impactkit.errors import InputError

ON_DASK = "not computed on the Dask engine: "


@dataclass(frozen=True)
class Omitted:
    """A step left out on Dask: the results sections it writes and why."""

    sections: tuple[str, ...]
    reason: str

    def __call__(self, ctx: Context) -> None:
        for section in self.sections:
            ctx.omit(section, ON_DASK + self.reason)


# ------------------------------------------------------------------------------------------ estimators
def _dask_twfe(ctx: Context) -> dict[str, Any]:
    from impactkit.distributed.twfe import estimate_twfe

    d = ctx.spec.design
    twfe, reduced = estimate_twfe(ctx.panel, y=ctx.y, unit=d.unit, time=d.time, treated=d.treated, cohort=d.cohort,
                                  cluster=d.cluster, weights=ctx.weighted("twfe"))
    ctx.scratch["twfe"], ctx.scratch["twfe_reduced"] = twfe, reduced
    return pandas_steps.twfe_row(ctx, twfe)


def _dask_2x2(ctx: Context) -> dict[str, Any]:
    from impactkit.distributed.twfe import estimate_2x2

    d = ctx.spec.design
    first, pre, post = first_window(ctx)
    cohort = ctx.panel[d.cohort].fillna(0)
    window = ctx.panel[cohort.isin([first, 0])]
    res, _ = estimate_2x2(window, y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort, cluster=d.cluster,
                          weights=ctx.weighted("2x2"), periods=(pre, post))
    return pandas_steps.two_by_two_row(ctx, res)


def _dask_sa(ctx: Context) -> dict[str, Any]:
    from impactkit.distributed.sa import estimate_sa

    d = ctx.spec.design
    sa = estimate_sa(ctx.panel, y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort, cluster=d.cluster,
                     weights=ctx.weighted("sa"), seed=ctx.seed)
    return pandas_steps.sa_row(ctx, sa)


def _dask_ancova(ctx: Context) -> dict[str, Any]:
    from impactkit.distributed.ancova import ancova_fit

    d = ctx.spec.design
    fit, n_units, n_obs, sums = ancova_fit(ctx.panel, unit=d.unit, time=d.time, final=ctx.waves[-1],
                                           baseline=ctx.baseline, y=ctx.y, controls=list(d.controls),
                                           cluster=d.cluster, weights=ctx.weighted("ancova"))
    row = pandas_steps.ancova_row(ctx, fit, n_units=n_units, n_obs=n_obs)
    ctx.scratch["ancova"] = {"estimate": row["estimate"], "sums": sums}
    return row


#: ``[estimators]`` methods with a Dask implementation (the CS row reads the distributed fit of
#: :meth:`impactkit.distributed.analysis.DaskContext.fit_cs`)
DASK_ESTIMATORS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "twfe": _dask_twfe, "cs": pandas_steps.cs_row, "2x2": _dask_2x2, "sa": _dask_sa, "ancova": _dask_ancova,
}

#: why an estimator has no Dask implementation (any other registered method: the default reason)
ESTIMATOR_REASONS: dict[str, str] = {}


def estimators_step(ctx: Context) -> None:
    """The headline and compared estimators that have a Dask implementation; the others are left
    out with their reason (a headline without one is refused: exit 2)."""
    e = ctx.spec.estimators
    if e.headline not in DASK_ESTIMATORS:
        raise InputError(f"{ctx.spec.folder / 'analysis.toml'}: [estimators] headline = '{e.headline}' has no Dask "
                         f"implementation (Dask: {', '.join(DASK_ESTIMATORS)}); choose one of those or the pandas engine")
    wanted = [m for m in (*pandas_steps.ESTIMATORS, *e.compare, e.headline) if m in e.compare or m == e.headline]
    rows = {}
    for m in dict.fromkeys(wanted):
        if m in DASK_ESTIMATORS:
            rows[m] = DASK_ESTIMATORS[m](ctx)
        else:
            ctx.omit(ESTIMATOR_LABELS.get(m, m), ON_DASK + ESTIMATOR_REASONS.get(
                m, "no distributed implementation yet (pandas engine only)"))
    if "twfe" not in ctx.scratch:
        _dask_twfe(ctx)  # TWFE backs the wild bootstrap
    ctx.results["estimators"] = list(rows.values())
    ctx.scratch["headline_row"] = rows[e.headline]


# ------------------------------------------------------------------------------------------ other steps
def data_step(ctx: Context) -> None:
    from impactkit.distributed.facts import data_facts

    d, o = ctx.spec.design, ctx.spec.outcomes
    facts = data_facts(ctx.panel, unit=d.unit, time=d.time, cluster=d.cluster, primary=o.primary,
                       baseline=ctx.baseline, poverty_line=o.poverty_line)
    ctx.results["data"] = pandas_steps.data_section(ctx, facts)


def inference_step(ctx: Context) -> None:
    """The wild cluster bootstrap of TWFE from the reduced cluster sums (same draws as pandas), and
    randomization inference of TWFE and ANCOVA from per-cluster sums (same re-assignments as
    pandas; :mod:`impactkit.distributed.ri`)."""
    from impactkit.distributed.twfe import wild_bootstrap_from_sums

    e = ctx.spec.estimators
    ctx.weighted("wild_bootstrap")
    reduced = ctx.scratch["twfe_reduced"]
    w = wild_bootstrap_from_sums(reduced, B=e.wild_bootstrap_draws, weights=e.wild_bootstrap_weights,
                                 seed=ctx.seed).tidy().iloc[0].to_dict()
    ctx.results["wild_bootstrap"] = {"estimator": ESTIMATOR_LABELS["twfe"], "estimate": w["estimate"],
                                     "p_value": w["p_value"], "conf_low": w["conf_low"], "conf_high": w["conf_high"],
                                     "B": int(w["B"]), "weights": w["weights"], "n_clusters": int(w["n_clusters"])}
    randomization_inference_step(ctx)
    ctx.scratch["n_clusters"] = int(reduced.n_clusters)


def randomization_inference_step(ctx: Context) -> None:
    """TWFE (and ANCOVA) randomization inference by per-cluster sums; omitted with the reason when
    units span clusters (no per-cluster reduction exists)."""
    from impactkit.distributed.ri import (CohortVaries, NotReducible, ancova_randomization_inference,
                                          twfe_randomization_inference)

    d, e = ctx.spec.design, ctx.spec.estimators
    ctx.weighted("randomization_inference")
    try:
        ri = twfe_randomization_inference(ctx.panel, y=ctx.y, unit=d.unit, time=d.time, cohort=d.cohort,
                                          cluster=d.cluster, weights=ctx.weighted("twfe"),
                                          n_permutations=e.randomization_draws, seed=ctx.seed)
    except CohortVaries as exc:  # as the pandas engine: no single adoption period to move
        ctx.omit("randomization_inference", pandas_steps.mixed_cohorts_reason(d.cohort, d.cluster, exc.n_levels))
    except NotReducible as exc:
        ctx.omit("randomization_inference", ON_DASK + str(exc))
    else:
        ctx.results["randomization_inference"] = {"estimator": ESTIMATOR_LABELS["twfe"], "p_value": ri.p_value,
                                                  "n_permutations": ri.n_permutations}
    ancova = ctx.scratch.get("ancova")
    if ancova is None:
        return
    if ancova["sums"].n_mixed:
        ctx.omit("randomization_inference_ancova", pandas_steps.mixed_arms_reason(d.cluster, ancova["sums"].n_mixed))
        return
    permuted, n_clusters = ancova_randomization_inference(ancova["sums"], draws=e.randomization_draws, seed=ctx.seed)
    ctx.results["randomization_inference_ancova"] = pandas_steps.ancova_ri_section(
        ctx, ancova["estimate"], permuted, n_clusters)


def balance_step(ctx: Context) -> None:
    """Baseline balance by cluster sums (:func:`impactkit.distributed.balance.balance_rows`)."""
    from impactkit.distributed.balance import balance_rows

    d, c = ctx.spec.design, ctx.spec.checks
    if not c.balance_covariates:
        ctx.omit("balance", "no baseline covariates declared ([checks] balance_covariates)")
        return
    rows, joint_f, joint_p = balance_rows(ctx.panel, covariates=list(c.balance_covariates), time=d.time,
                                          baseline=ctx.baseline, arm="ever_treated", cluster=d.cluster,
                                          weights=ctx.weighted("balance"), min_cell=ctx.spec.analysis.min_cell)
    ctx.results["balance"] = {"rows": rows, "joint_f": joint_f, "joint_p": joint_p, "wave": ctx.baseline}


def attrition_step(ctx: Context) -> None:
    """Attrition by arm and wave with its differential tests, by cluster sums
    (:func:`impactkit.distributed.attrition.attrition_facts`); Lee bounds by exact weighted
    selection (:mod:`impactkit.distributed.lee`) when units were lost."""
    from impactkit.distributed.attrition import attrition_facts
    from impactkit.results import to_plain

    d, c = ctx.spec.design, ctx.spec.checks
    ctx.weighted("attrition")
    att, lost = attrition_facts(ctx.panel, unit=d.unit, time=d.time, arm="ever_treated", cluster=d.cluster,
                                baseline=ctx.baseline, waves=ctx.waves, covariates=list(c.attrition_covariates),
                                y=ctx.y)
    ctx.results["attrition"] = {"rows": frame_records(att.tidy()), "differential_p": att.differential_attrition_p,
                                "covariate_test": to_plain(att.covariate_test), "final_wave": ctx.waves[-1]}
    if lost == 0:
        ctx.omit("lee_bounds", pandas_checks.NO_ATTRITION)
        return
    from impactkit.distributed.lee import lee_bounds

    lee = lee_bounds(ctx.panel, unit=d.unit, time=d.time, baseline=ctx.baseline, final=ctx.waves[-1], y=ctx.y,
                     weights=ctx.weighted("lee_bounds"))
    ctx.results["attrition"]["lee_bounds"] = pandas_checks.lee_section(ctx, lee)


def bacon_step(ctx: Context) -> None:
    """Goodman-Bacon on the balanced sub-panel (units with the outcome in every wave, kept per
    partition) from timing-group x period cell sums (:mod:`impactkit.distributed.bacon`)."""
    from impactkit.distributed.bacon import bacon_decomposition

    if not pandas_steps.bacon_wanted(ctx):
        return
    d = ctx.spec.design
    ctx.weighted("bacon")
    n_waves = ctx.structure["n_waves_with_outcome"]
    balanced = ctx.panel.map_partitions(pandas_steps.balanced_subpanel, d.unit, d.time, ctx.y, n_waves,
                                        meta=ctx.panel._meta)
    bacon = bacon_decomposition(balanced, cohort=d.cohort, y=ctx.y, unit=d.unit, time=d.time)
    ctx.results["bacon"] = pandas_steps.bacon_rows(bacon)


def iv_step(ctx: Context) -> None:
    """The encouragement design on the first cohort's 2x2 window (the pandas step's window and
    section) by the distributed 2SLS and complier-mean sums (:mod:`impactkit.distributed.encouragement`)."""
    import warnings

    from impactkit.distributed.encouragement import encouragement
    from impactkit.errors import ImpactkitWarning

    d = ctx.spec.design
    if not pandas_steps.iv_wanted(ctx):
        return
    first, pre, post = first_window(ctx)
    window = pandas_steps.iv_window(ctx, ctx.panel, first, pre, post)
    characteristics = [c for c in d.characteristics if c in window.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        result = encouragement(window, y=ctx.y, take_up=d.take_up, instrument=d.treated, unit=d.unit,
                               cluster=d.cluster, absorb=[d.unit, d.time], characteristics=characteristics,
                               weights=ctx.weighted("iv"))
    pandas_steps.iv_section(ctx, result, (first, pre, post), int(window[d.cluster].nunique().compute()))


def heterogeneity_step(ctx: Context) -> None:
    """Subgroup effects and the equality test on the final rows paired with baseline, by cluster
    sums (:func:`impactkit.distributed.heterogeneity.heterogeneity_fit`)."""
    from impactkit.distributed.heterogeneity import heterogeneity_fit

    d = ctx.spec.design
    if not d.subgroup:
        pandas_checks.heterogeneity_step(ctx)  # omits with its reason, reads no rows
        return
    ctx.weighted("heterogeneity")
    controls = [c for c in d.controls if c in ctx.panel.columns]
    het = heterogeneity_fit(ctx.panel, unit=d.unit, time=d.time, final=ctx.waves[-1], baseline=ctx.baseline, y=ctx.y,
                            controls=controls, by=d.subgroup, cluster=d.cluster, min_cell=ctx.spec.analysis.min_cell)
    ctx.results["heterogeneity"] = pandas_checks.heterogeneity_section(ctx, het)


def multiple_outcomes_step(ctx: Context) -> None:
    """The family's corrections (Holm, Romano-Wolf, Westfall-Young, sharpened q) from per-cluster
    sums of the final rows paired with baseline (:func:`impactkit.distributed.multiple.family_sums`),
    with the pandas engine's draws; omitted when treatment varies within clusters."""
    import warnings

    from impactkit.checks.multiple import family_testing
    from impactkit.distributed.multiple import TREAT, family_sums
    from impactkit.errors import ImpactkitWarning

    d = ctx.spec.design
    family = list(ctx.spec.outcomes.family)
    if len(family) < 2:
        pandas_checks.multiple_outcomes_step(ctx)  # omits with its reason, reads no rows
        return
    controls = [c for c in d.controls if c in ctx.panel.columns]
    sums, varying = family_sums(ctx.panel, unit=d.unit, time=d.time, final=ctx.waves[-1], baseline=ctx.baseline,
                                y=ctx.y, controls=controls, outcomes=family, cluster=d.cluster)
    if sums is None:
        ctx.omit("multiple_outcomes", ON_DASK + f"treatment varies within {varying} cluster(s), so the corrections "
                 "re-randomize rows, which per-cluster sums cannot reproduce (pandas engine only)")
        return
    ctx.weighted("multiple_outcomes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        mt = family_testing(sums, treat=TREAT, cluster=d.cluster, B=ctx.spec.checks.multiple_testing_draws,
                            seed=ctx.seed)
    ctx.results["multiple_outcomes"] = pandas_checks.multiple_outcomes_section(mt)


def power_step(ctx: Context) -> None:
    """Power of a scale-up trial from the design's facts by reductions (:func:`impactkit.distributed.facts.power_facts`)."""
    from impactkit.distributed.facts import power_facts

    d = ctx.spec.design
    ctx.weighted("power")
    design = power_facts(ctx.panel, unit=d.unit, time=d.time, cluster=d.cluster, y=ctx.y, baseline=ctx.baseline,
                         waves=ctx.waves)
    ctx.results["power"] = pandas_checks.power_section(ctx, design, ctx.structure["n_units"])


def scale_step(ctx: Context) -> None:
    """Scale readiness with its portfolio Monte Carlo on futures (one seed per block of draws)."""
    from impactkit.analysis.steps.scale import scale_readiness
    from impactkit.distributed.fanout import portfolio_simulator

    scale_readiness(ctx, simulator=portfolio_simulator())


#: every pandas step, on Dask: the pandas step (reads no rows), a Dask step, or Omitted with its reason
DASK_STEPS: dict[str, Step] = {
    "analysis": pandas_steps.analysis_step,
    "data": data_step,
    "validation": pandas_steps.validation_step,
    "estimators": estimators_step,
    "event_study": pandas_steps.event_study_step,   # reads the distributed CS fit (ctx.fit_cs)
    "inference": inference_step,
    "bacon": bacon_step,
    "iv": iv_step,
    "headline": pandas_steps.headline_step,
    "balance": balance_step,
    "attrition": attrition_step,
    "heterogeneity": heterogeneity_step,
    "multiple_outcomes": multiple_outcomes_step,
    "power": power_step,
    "scale": scale_step,
}


def dask_steps() -> list[tuple[str, Step]]:
    """The Dask steps in the pandas order; a step the registry does not name is omitted with a reason."""
    return [(name, DASK_STEPS.get(name, Omitted((name,), f"no Dask implementation registered for step '{name}'")))
            for name, _ in STEPS]
