"""Number formatting for the evidence pack: one style everywhere.

Rules: thousands separators (``12,436``); money as ``USD 9,079 (2008 US dollars)``, the
currency's name from the CLDR (Babel);
percentages of change signed (``+200%``); p-values with three decimals, ``< 0.001`` below;
confidence intervals as ``[0.95, 1.25]``; a missing value (``None``/NaN) shows as an
en dash, never as ``nan``.
"""

from __future__ import annotations

import math
from typing import Any

from babel.numbers import get_currency_name

MISSING = "\u2013"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in {"", "nan", "none", "null"}
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def number(value: Any, digits: int = 2) -> str:
    """``1234.5 -> '1,234.50'`` (``digits`` decimals, thousands separators)."""
    if _is_missing(value):
        return MISSING
    x = float(value)
    if math.isinf(x):
        return "\u221e" if x > 0 else "\u2212\u221e"
    text = f"{x:,.{digits}f}"
    if text.startswith("-") and float(text.replace(",", "")) == 0.0:
        text = text[1:]
    return text.replace("-", "\u2212")


def integer(value: Any) -> str:
    """``2250 -> '2,250'``."""
    if _is_missing(value):
        return MISSING
    return f"{int(round(float(value))):,}"


def signed(value: Any, digits: int = 2) -> str:
    """A number with an explicit sign: ``+1.10`` / ``\u22120.03``."""
    text = number(value, digits)
    if text == MISSING or text.startswith("\u2212") or float(value) == 0.0:
        return text
    return "+" + text


def percent_change(value: Any, digits: int = 0) -> str:
    """A percentage change already in percent units: ``200.4 -> '+200%'``."""
    if _is_missing(value):
        return MISSING
    return signed(value, digits) + "%"


def share(value: Any, digits: int = 0) -> str:
    """A share in [0, 1] as a percentage: ``0.87 -> '87%'``."""
    if _is_missing(value):
        return MISSING
    return number(100.0 * float(value), digits) + "%"


def currency_unit(currency: str | None) -> str:
    """The English plural name of an ISO 4217 code from the CLDR (Babel): ``'USD' -> 'US dollars'``.

    Parameters
    ----------
    currency : str or None
        ISO 4217 code, any case.

    Returns
    -------
    str
        ``'Indian rupees'``, ``'Ghanaian cedis'``, ``'euros'``; the upper-case code itself when
        the CLDR does not know it, ``''`` for none.
    """
    code = (currency or "").upper()
    return get_currency_name(code, count=2, locale="en") if code else ""


def money(value: Any, currency: str | None, year: Any = None, digits: int = 0) -> str:
    """``money(4530, 'USD', 2008) -> 'USD 4,530 (2008 US dollars)'``."""
    if _is_missing(value):
        return MISSING
    code = (currency or "").upper()
    text = f"{code} {number(value, digits)}".strip()
    if not _is_missing(year):
        text += f" ({int(year)} {currency_unit(code)})"
    return text


def money_short(value: Any, currency: str | None, digits: int = 0) -> str:
    """``'PEN 4,530'`` (for tables whose header states the price year)."""
    if _is_missing(value):
        return MISSING
    return f"{(currency or '').upper()} {number(value, digits)}".strip()


def p_value(value: Any) -> str:
    """``0.0423 -> '0.042'``; below 0.001 -> ``'< 0.001'``."""
    if _is_missing(value):
        return MISSING
    p = float(value)
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def p_equals(value: Any) -> str:
    """``'p = 0.210'`` or ``'p < 0.001'`` (never ``'p = < 0.001'``)."""
    text = p_value(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def interval(low: Any, high: Any, digits: int = 2, fmt=None) -> str:
    """``[0.95, 1.25]``; with ``fmt`` a formatting function for each end."""
    if _is_missing(low) or _is_missing(high):
        return MISSING
    f = fmt or (lambda v: number(v, digits))
    return f"[{f(low)}, {f(high)}]"


def percent_interval(low: Any, high: Any) -> str:
    """``[+159%, +248%]``."""
    return interval(low, high, fmt=percent_change)


def log_points_to_percent(value: Any) -> float | None:
    """A log-point effect as a percentage change: ``100 (exp(b) - 1)``."""
    if _is_missing(value):
        return None
    return 100.0 * math.expm1(float(value))
