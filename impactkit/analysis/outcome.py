"""Outcome semantics: what an effect on the declared outcome means, in words and units.

``analysis.toml`` says what the outcome *is* (``[outcomes] kind``): a level in stated
``units``, a variable that is *already* a log, a share or binary outcome (0-1), or money
(``currency`` and ``currency_year``); and whether impactkit should take its log
(``transform = "log"``: only when asked). From those two facts follows the *effect scale*:

============  =====================================  ==================================
scale         when                                    the effect is stated as
============  =====================================  ==================================
``log``       ``transform = "log"`` or kind ``log``  a percentage change, ``exp(b) - 1``,
                                                       the interval's ends transformed the
                                                       same way (the transform is monotone)
``share``     kind ``share``                          percentage points, ``100 b``
``money``     kind ``money`` (no log)                 the currency, ``b`` per unit
``level``     kind ``level``                          ``b`` in the declared units
============  =====================================  ==================================

A money amount per unit is given only when the outcome is money: for a logged money
outcome it is the baseline mean (in levels) times ``exp(b) - 1``. No other scale ever
produces a currency figure. Every function here is pure: numbers in, numbers or text out.

Reference: the percentage interpretation of a log-point effect, Halvorsen & Palmquist
(1980), "The interpretation of dummy variables in semilogarithmic equations", *American
Economic Review* 70(3); Kennedy (1981), *AER* 71(4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

OutcomeKind = Literal["level", "log", "share", "money"]
EffectScale = Literal["log", "share", "money", "level"]

#: words for the estimate column of a table, per effect scale
SCALE_WORDS = {"log": "log points", "share": "percentage points", "money": "", "level": ""}


def effect_scale(kind: str, transform: str) -> EffectScale:
    """The scale of the estimated effect from the outcome's ``kind`` and ``transform``."""
    if transform == "log" or kind == "log":
        return "log"
    if kind == "share":
        return "share"
    if kind == "money":
        return "money"
    return "level"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def log_points_to_proportion(value: Any) -> float | None:
    """``exp(b) - 1`` (``0.693 -> 1.0``, i.e. +100%); ``None`` for a missing value."""
    x = _finite(value)
    return None if x is None else math.expm1(x)


def effect_terms(estimate: Any, conf_low: Any, conf_high: Any, scale: str) -> dict[str, float | None]:
    """The effect restated for its scale, with its interval transformed the same way.

    - ``log``: ``percent``, ``percent_low``, ``percent_high`` as proportions ``exp(b) - 1``
      (``0.25`` = +25%);
    - ``share``: ``points``, ``points_low``, ``points_high`` in percentage points ``100 b``;
    - ``level`` and ``money``: nothing to restate (the estimate is in the outcome's units).
    """
    if scale == "log":
        return {"percent": log_points_to_proportion(estimate), "percent_low": log_points_to_proportion(conf_low),
                "percent_high": log_points_to_proportion(conf_high)}
    if scale == "share":
        def pp(v: Any) -> float | None:
            x = _finite(v)
            return None if x is None else 100.0 * x
        return {"points": pp(estimate), "points_low": pp(conf_low), "points_high": pp(conf_high)}
    return {}


def money_terms(kind: str, scale: str, estimate: Any, conf_low: Any, conf_high: Any,
                baseline_mean: Any) -> dict[str, float | None]:
    """Money per unit (``money``, ``money_low``, ``money_high``) when the outcome is money.

    A logged money outcome: baseline mean (levels) x ``exp(b) - 1`` for each end; a money
    level: the estimate itself. Any other outcome: ``{}`` (no currency figure is made up).
    """
    if kind != "money":
        return {}
    if scale == "log":
        base = _finite(baseline_mean)
        if base is None:
            return {}
        terms = effect_terms(estimate, conf_low, conf_high, "log")
        return {"money": _times(base, terms["percent"]), "money_low": _times(base, terms["percent_low"]),
                "money_high": _times(base, terms["percent_high"])}
    return {"money": _finite(estimate), "money_low": _finite(conf_low), "money_high": _finite(conf_high)}


def _times(a: float, b: float | None) -> float | None:
    return None if b is None else a * b


# ---------------------------------------------------------------------------------------
# words
# ---------------------------------------------------------------------------------------
MINUS = "\u2212"


def _signed(x: float, digits: int) -> str:
    text = f"{x:+,.{digits}f}"
    if float(text.replace(",", "")) == 0.0:
        text = f"{0:.{digits}f}"
    return text.replace("-", MINUS)


def percent_digits(low: float | None, high: float | None) -> int:
    """Decimals for a percent change: 1 when the interval lies within +-10%, else 0."""
    ends = [abs(v) for v in (low, high) if v is not None]
    return 1 if ends and max(ends) < 0.10 else 0


def unit_words(scale: str, units: str = "", currency: str | None = None) -> str:
    """What the raw estimate is measured in: ``'log points'``, ``'percentage points'``,
    ``'PEN'``, ``'kg per hectare'`` (``''`` when the spec states no units)."""
    if scale in ("log", "share"):
        return SCALE_WORDS[scale]
    if scale == "money":
        return (currency or units or "").strip()
    return (units or "").strip()


def describe_effect(effect: Mapping[str, Any], scale: str, *, units: str = "", currency: str | None = None,
                    digits: int = 2) -> tuple[str, str]:
    """``(size, interval)`` of an effect in its right terms, as plain text.

    ``log``: ``('-3.9%', '-6.1% to -1.6%')`` from ``exp(b) - 1``; ``share``: ``('+3.2
    percentage points', '+1.0 to +5.4 percentage points')``; ``money``: ``('+PEN 120', ...)``
    style (``'+120 PEN'``); ``level``: the estimate with its units.
    """
    est, lo, hi = (_finite(effect.get(k)) for k in ("estimate", "conf_low", "conf_high"))
    if scale == "log":
        p, pl, ph = (log_points_to_proportion(v) for v in (est, lo, hi))
        if p is None:
            return "\u2013", "\u2013"
        d = percent_digits(pl, ph) if pl is not None else 1
        size = _signed(100 * p, d) + "%"
        interval = (f"{_signed(100 * pl, d)}% to {_signed(100 * ph, d)}%" if pl is not None and ph is not None
                    else "\u2013")
        return size, interval
    if est is None:
        return "\u2013", "\u2013"
    if scale == "share":
        size = f"{_signed(100 * est, 1)} percentage points"
        interval = (f"{_signed(100 * lo, 1)} to {_signed(100 * hi, 1)} percentage points"
                    if lo is not None and hi is not None else "\u2013")
        return size, interval
    words = unit_words(scale, units, currency)
    tail = f" {words}" if words else ""
    size = f"{_signed(est, digits)}{tail}"
    interval = (f"{_signed(lo, digits)} to {_signed(hi, digits)}{tail}" if lo is not None and hi is not None
                else "\u2013")
    return size, interval


def table_factor(scale: str) -> float:
    """Multiplier that puts a raw estimate into the units a table states (100 for shares)."""
    return 100.0 if scale == "share" else 1.0


def estimate_header(scale: str, units: str = "", currency: str | None = None) -> str:
    """The header of a table's estimate column: ``'Estimate (log points)'`` etc."""
    words = unit_words(scale, units, currency)
    return f"Estimate ({words})" if words else "Estimate"
