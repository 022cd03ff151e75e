"""The scale-readiness step, and the evidence facts an analysis hands to the scale model."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from impactkit.analysis.context import Context, step
from impactkit.analysis.spec import AnalysisSpec


def evidence_facts(spec: AnalysisSpec, results: dict[str, Any]) -> dict[str, Any]:
    """What the scale-readiness model needs from this analysis (``score(estimates=...)``):
    the design, the headline effect as a proportion with its CI (log outcomes only), the
    design checks that grade evidence down, the design's power, and the yearly money benefit
    per participant (money outcomes only)."""
    head = results["headline"]
    es = results.get("event_study") or {}
    facts = {"design": "did", "estimate": head.get("percent"), "conf_low": head.get("percent_low"),
             "conf_high": head.get("percent_high"),
             "pretrend_p": (es.get("pretrend") or {}).get("p_value"), "n_clusters": head["n_clusters"],
             "differential_attrition_p": results.get("attrition", {}).get("differential_p"),
             "balance_joint_p": results.get("balance", {}).get("joint_p"),
             "power": results.get("power", {}).get("design_power"),
             "benefit_per_participant_year": head.get("money_per_unit"),
             "benefit_per_participant_year_low": head.get("money_low"),
             "benefit_per_participant_year_high": head.get("money_high"),
             "benefit_currency": spec.outcomes.currency,
             # the PSP uses power only when it is computed for a declared target effect, not the observed one
             "power_basis": "design" if spec.checks.power_effect is not None else "observed",
             "benefit_price_year": spec.outcomes.currency_year}
    # a suppressed or undefined check (NaN) is unknown to the scale model, not a number
    return {k: v for k, v in facts.items()
            if v is not None and not (isinstance(v, float) and not math.isfinite(v))}


def scale_accounts(spec: AnalysisSpec) -> dict[str, Any] | None:
    """Programme accounts of the focus intervention (``[scale] costs``), if declared."""
    from impactkit.scale import load_accounts

    focus = spec.scale.intervention
    return {focus: load_accounts(spec.path(spec.scale.costs))} if focus and spec.scale.costs else None


@step("scale")
def scale_step(ctx: Context) -> None:
    scale_readiness(ctx)


def scale_readiness(ctx: Context, simulator: Callable | None = None) -> None:
    """Score the portfolio with this analysis' evidence facts (``simulator``: the Monte Carlo of
    :func:`impactkit.scale.score`, the in-process one by default)."""
    from impactkit.scale import score

    spec = ctx.spec
    if not spec.scale.portfolio:
        ctx.omit("scale", "no portfolio declared ([scale] portfolio)")
        return
    facts = evidence_facts(spec, ctx.results)
    focus = spec.scale.intervention
    estimates = {focus: facts} if focus else None
    # draws and seed: the portfolio's own (unless analysis.toml overrides the draws), so that
    # `impactkit score` on the same portfolio shows the same numbers as the pack
    result = score(spec.path(spec.scale.portfolio), estimates=estimates, costs=scale_accounts(spec),
                   draws=spec.scale.draws, simulator=simulator)
    scale = result.to_pack(focus)
    ctx.results["cost"] = scale.pop("cost", None)
    ctx.results["scale"] = scale
    ctx.scratch["scale_mc"] = (scale.get("options") or {}).get("seed")
