"""Cost-effectiveness and cost-benefit (Dhaliwal, Duflo, Glennerster & Tulloch 2013).

Dhaliwal, I., Duflo, E., Glennerster, R. & Tulloch, C. (2013), "Comparative cost-effectiveness
analysis to inform policy in developing countries: a general framework with applications for
education", in *Education Policy in Developing Countries*, U. Chicago Press (J-PAL's CEA
method): costs in one currency and price year, fixed vs variable costs, discounting of
streams, cost per unit of impact with the impact's confidence interval carried through.

Per participant, with fixed cost F, variable cost v and N participants::

    cost per participant   c(N) = (F + v N) / N
    present value of benefit b per year for T years at rate r:  PV = b * sum_{t=1..T} (1+r)^-t
    benefit-cost ratio     BCR = PV / c          NPV = PV - c
    internal rate of return: the rate rho with NPV(rho) = 0 (bisection), compared to a hurdle.
    cost per unit of impact  c / tau, CI [c / tau_high, c / tau_low] (inf when tau_low <= 0).

All costs are incurred at t = 0 and benefits accrue at the end of years 1..T.
"""

from __future__ import annotations

import math

import numpy as np


def cost_per_participant(fixed_cost, variable_cost, participants):
    """(F + v N) / N, vectorised."""
    n = np.asarray(participants, dtype=float)
    return (np.asarray(fixed_cost, dtype=float) + np.asarray(variable_cost, dtype=float) * n) / n


def annuity_factor(rate: float, horizon_years: int) -> float:
    """sum_{t=1..T} (1 + r)^-t, written out (no closed form, so r = 0 needs no special case)."""
    return float(sum((1.0 + rate) ** -t for t in range(1, int(horizon_years) + 1)))


def present_value(benefit_per_year, rate: float, horizon_years: int):
    return np.asarray(benefit_per_year, dtype=float) * annuity_factor(rate, horizon_years)


def benefit_cost_ratio(cost, benefit_per_year, rate: float, horizon_years: int):
    """BCR = PV(benefits) / cost (cost > 0)."""
    return present_value(benefit_per_year, rate, horizon_years) / np.asarray(cost, dtype=float)


def net_present_value(cost, benefit_per_year, rate: float, horizon_years: int):
    return present_value(benefit_per_year, rate, horizon_years) - np.asarray(cost, dtype=float)


def internal_rate_of_return(cost: float, benefit_per_year: float, horizon_years: int,
                            low: float = -0.99, high: float = 100.0, tol: float = 1e-12) -> float | None:
    """Rate at which NPV = 0, by bisection; ``None`` if NPV does not change sign on [low, high]."""
    def npv(rate: float) -> float:
        return float(net_present_value(cost, benefit_per_year, rate, horizon_years))

    f_low, f_high = npv(low), npv(high)
    if f_low == 0.0:
        return low
    if f_low * f_high > 0:
        return None
    for _ in range(400):
        mid = 0.5 * (low + high)
        f_mid = npv(mid)
        if f_mid == 0.0 or (high - low) < tol:
            return mid
        if f_low * f_mid < 0:
            high = mid
        else:
            low, f_low = mid, f_mid
    return 0.5 * (low + high)


def cost_per_unit_impact(cost: float, impact: float, conf_low: float, conf_high: float) -> tuple[float, float, float]:
    """Cost per unit of impact and its interval from the impact CI (Dhaliwal et al. 2013, sec. 4).

    The interval is [c / conf_high, c / conf_low]; if the impact CI reaches zero or below, the
    upper end is infinite (the programme may buy no impact at all).
    """
    point = cost / impact if impact > 0 else math.inf
    low = cost / conf_high if conf_high > 0 else math.inf
    high = cost / conf_low if conf_low > 0 else math.inf
    return point, low, high


def bcr_score(bcr):
    """Map a BCR in [0, inf) to [0, 1): BCR / (1 + BCR); 0.5 at break-even (BCR = 1)."""
    bcr = np.maximum(np.asarray(bcr, dtype=float), 0.0)
    return bcr / (1.0 + bcr)
