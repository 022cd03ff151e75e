"""Effect and costs at the scale being decided: voltage, cost curve, cost streams by year and payer.

A pilot's effect and unit cost are not the effect and unit cost at scale (List 2022, *The
Voltage Effect*; Al-Ubaydli, List & Suskind 2017 *AER P&P* 107(5):282). This module states
them at the scale a ministry decides on, each with its uncertainty and the assumption behind it.

**Expected effect at scale.** The pilot's yearly benefit b is multiplied by a voltage factor

    V = prod_k (1 - d_k),   d_k ~ U[D(level_k)]

over List's four risks k (representativeness of the population and of the situation, unscalable
ingredients, diseconomies of scale), each at level 0 (low: d = 0), 1 (medium) or 2 (high); an
unknown level is drawn over 0-2. ``options.voltage_discount`` maps each level to the interval
D of effect lost: by default 0-20% for a medium and 20-50% for a high risk. These are
assumptions (List gives no numbers), chosen to cover documented scale-ups: effects of nudges
run by government units about a sixth of those in academic trials (DellaVigna & Linos 2022,
*Econometrica* 90(1):81); contract teachers' effect vanishing when the government ran the
programme (Bold, Kimenyi, Mwabu, Ng'ang'a & Sandefur 2018, *J. Public Econ.* 168:1).

**Cost curve.** Total delivery cost for N participants with fixed cost F, variable cost v and a
step cost s per block of m participants (e.g. a trainer per m families)::

    C(N) = F + v N + s * ceil(N / m)          cost per participant c(N) = C(N) / N

**Cost stream and payers.** F falls in year 0; the variable and step costs are spread evenly
over the Y delivery years (0 .. Y-1); the present value of costs is
``F + (v N + s ceil(N/m)) / Y * sum_{t=0}^{Y-1} (1 + r)^-t``. Benefits accrue to every
participant at the end of years 1..T (as in :mod:`cost`). Each year's cost is split among
payers by the accounts' shares (government, implementer, participants, company, donor).

**BCR at scale** = N V b sum_{t=1..T}(1 + r)^-t / PV(costs); cost per unit of benefit = its
inverse. Monte Carlo draws (``seeds.rng(seed, "scale-at-scale")``) give the 5%/50%/95%
quantiles of V, the effect at scale, the BCR and the cost per participant.

**Too good to be true.** A flag (not a verdict) when the BCR at scale exceeds
``options.implausible_bcr`` (10), the IRR exceeds ``options.implausible_irr`` (100% a year), or
a proportional effect exceeds ``options.implausible_effect`` (+100%): large effects from small
studies tend to shrink on replication (Ioannidis 2008, *Epidemiology* 19:640; Vivalt 2020,
*JEEA* 18:3045); check them before they drive a decision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from impactkit.scale import cost as cost_mod
from impactkit.scale.spec import Options
from impactkit.seeds import rng

RISKS = ("risk_population", "risk_situation", "risk_ingredients", "risk_diseconomies")
QUANTILES = (0.05, 0.5, 0.95)


def total_cost(n, fixed, variable, step_cost=None, step_size=None):
    """C(N) = F + v N + s ceil(N / m) (vectorised)."""
    n = np.asarray(n, dtype=float)
    out = np.asarray(fixed, dtype=float) + np.asarray(variable, dtype=float) * n
    if step_cost is not None and step_size is not None:
        out = out + float(step_cost) * np.ceil(n / float(step_size))
    return out


def pv_cost(n, fixed, variable, rate: float, years: int, step_cost=None, step_size=None):
    """Present value of the cost stream: F at t = 0, the rest spread evenly over years 0..Y-1."""
    running = total_cost(n, 0.0, variable, step_cost, step_size)
    spread = sum((1.0 + rate) ** -t for t in range(int(years))) / int(years)
    return np.asarray(fixed, dtype=float) + running * spread


def voltage_factor(levels: np.ndarray, u: np.ndarray, discount: dict[int, tuple[float, float]]) -> np.ndarray:
    """prod_k (1 - d_k) with d_k = low + u (high - low) of the level's interval; level 0 loses nothing."""
    levels = np.asarray(levels)
    lost = np.zeros(levels.shape)
    for level, (low, high) in discount.items():
        lost = np.where(levels == level, low + u * (high - low), lost)
    return np.prod(1.0 - lost, axis=-1)


def _draw(gen, low, high, integer=False, size=1):
    if integer:
        return gen.integers(int(low), int(high) + 1, size=size)
    return low + gen.random(size) * (high - low)


def assess(ident: str, figures: dict[str, tuple[float, float, float] | None], risks: list[tuple[float, float]],
           accounts, options: Options, draws: int, seed: int | None, effect: float | None = None) -> dict[str, Any] | None:
    """The at-scale block of one intervention (module docstring), or None without cost data.

    ``figures``: fixed, variable, pilot, scale, benefit as (low, centre, high) (None = unknown);
    ``risks``: the four voltage levels as intervals; ``effect``: a proportional effect to check.
    """
    fixed, var, pilot, n_scale, benefit = (figures.get(k) for k in ("fixed", "variable", "pilot", "scale", "benefit"))
    if fixed is None or var is None or n_scale is None or benefit is None:
        return None
    step_cost = getattr(accounts, "step_cost", None)
    step_size = getattr(accounts, "step_size", None)
    years = int(getattr(accounts, "delivery_years", 1) or 1)
    rate, horizon = options.discount_rate, options.horizon_years
    annuity = cost_mod.annuity_factor(rate, horizon)
    gen = rng(seed, f"scale-at-scale:{ident}")
    f = _draw(gen, fixed[0], fixed[2], size=draws)
    v = _draw(gen, var[0], var[2], size=draws)
    n = _draw(gen, n_scale[0], n_scale[2], size=draws)
    b = _draw(gen, benefit[0], benefit[2], size=draws)
    levels = np.stack([_draw(gen, lo, hi, integer=True, size=draws) for lo, hi in risks], axis=-1)
    factor = voltage_factor(levels, gen.random((draws, len(risks))), options.voltage_discount)
    pv = pv_cost(n, f, v, rate, years, step_cost, step_size)
    per_participant = pv / n
    effect_at_scale = b * factor
    with np.errstate(divide="ignore", invalid="ignore"):
        bcr = effect_at_scale * annuity / per_participant
    q = (lambda x: [float(v) for v in np.quantile(x, QUANTILES)])
    centre_pv = float(pv_cost(n_scale[1], fixed[1], var[1], rate, years, step_cost, step_size))
    centre_factor = float(np.mean(factor))
    centre_pp = centre_pv / n_scale[1]
    centre_bcr = benefit[1] * centre_factor * annuity / centre_pp if centre_pp > 0 else math.inf
    irr = cost_mod.internal_rate_of_return(centre_pp, benefit[1] * centre_factor, horizon)
    flags = []
    if centre_bcr > options.implausible_bcr:
        flags.append(f"BCR at scale {centre_bcr:.1f} > {options.implausible_bcr:g}: too good to be true? check costs and effect")
    if irr is not None and irr > options.implausible_irr:
        flags.append(f"IRR {irr:.0%} a year > {options.implausible_irr:.0%}: too good to be true?")
    if effect is not None and effect > options.implausible_effect:
        flags.append(f"pilot effect +{effect:.0%} > +{options.implausible_effect:.0%}: too good to be true? "
                     "large effects from small studies shrink on replication")
    return {
        "intervention": ident, "scale_participants": float(n_scale[1]), "delivery_years": years,
        "voltage_factor": centre_factor, "voltage_factor_q": q(factor),
        "benefit_pilot": float(benefit[1]), "benefit_at_scale": float(benefit[1] * centre_factor),
        "benefit_at_scale_q": q(effect_at_scale),
        "cost_per_participant_at_scale": centre_pp, "cost_per_participant_at_scale_q": q(per_participant),
        "bcr_at_scale": float(centre_bcr), "bcr_at_scale_q": q(bcr), "p_bcr_at_scale_below_1": float(np.mean(bcr < 1.0)),
        "mcse_p_bcr_at_scale_below_1": float(math.sqrt(np.mean(bcr < 1.0) * (1 - np.mean(bcr < 1.0)) / draws)),
        "cost_per_unit_benefit_at_scale": (1.0 / centre_bcr) if centre_bcr > 0 else math.inf,
        "irr_at_scale": irr, "total_cost_pv": float(centre_pv),
        "flags": flags, "draws": draws,
        "assumptions": "voltage discount per risk level " + ", ".join(
            f"{k}: {lo:.0%}-{hi:.0%}" for k, (lo, hi) in sorted(options.voltage_discount.items())) +
            " (assumption); costs spread evenly over the delivery years; benefits from year 1",
    }


def cost_curve(ident: str, fixed: float, variable: float, pilot: float | None, scale: float, benefit: float,
               factor: float, accounts, options: Options, points: int = 9) -> pd.DataFrame:
    """Cost per participant and BCR over N from the pilot to the scale being decided (central figures)."""
    step_cost = getattr(accounts, "step_cost", None)
    step_size = getattr(accounts, "step_size", None)
    years = int(getattr(accounts, "delivery_years", 1) or 1)
    start = pilot if pilot is not None and pilot < scale else max(1.0, scale / 100.0)
    grid = np.unique(np.round(np.geomspace(start, scale, points)))
    pv = pv_cost(grid, fixed, variable, options.discount_rate, years, step_cost, step_size)
    annuity = cost_mod.annuity_factor(options.discount_rate, options.horizon_years)
    steps = np.ceil(grid / step_size) if step_size else np.zeros_like(grid)
    return pd.DataFrame({"intervention": ident, "participants": grid, "steps": steps,
                         "total_cost_pv": pv, "cost_per_participant": pv / grid,
                         "bcr": benefit * factor * annuity / (pv / grid)})


def cost_streams(ident: str, fixed: float, variable: float, n: float, accounts, options: Options) -> pd.DataFrame:
    """Nominal cost by year, category and payer at the scale being decided (central figures)."""
    step_cost = getattr(accounts, "step_cost", None)
    step_size = getattr(accounts, "step_size", None)
    years = int(getattr(accounts, "delivery_years", 1) or 1)
    payers = getattr(accounts, "payers", None) or {"unspecified": 1.0}
    steps = float(step_cost) * math.ceil(n / float(step_size)) if step_cost is not None and step_size else 0.0
    rows = []
    for year in range(years):
        for category, amount in (("fixed", fixed if year == 0 else 0.0), ("variable", variable * n / years),
                                 ("step", steps / years)):
            if amount == 0:
                continue
            for payer, share in payers.items():
                rows.append({"intervention": ident, "year": year, "category": category, "payer": payer,
                             "amount": amount * share,
                             "amount_pv": amount * share * (1.0 + options.discount_rate) ** -year})
    return pd.DataFrame(rows)


def budget_summary(streams: pd.DataFrame) -> dict[str, Any]:
    """Total budget at scale (nominal and present value) and each payer's share, the government's first."""
    if streams.empty:
        return {}
    total = float(streams["amount"].sum())
    by_payer = streams.groupby("payer")["amount"].sum()
    return {"budget_nominal": total, "budget_pv": float(streams["amount_pv"].sum()),
            "government_share": float(by_payer.get("government", 0.0) / total) if total else None,
            "by_payer": {k: float(v) for k, v in by_payer.items()},
            "by_year": {int(k): float(v) for k, v in streams.groupby("year")["amount"].sum().items()}}
