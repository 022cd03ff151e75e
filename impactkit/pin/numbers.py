"""Every reported number of a results document, flattened to named quantities.

``flatten_numbers(results)`` walks the results dict and returns ``{quantity: value}`` for
every numeric leaf. Quantities are named by their path; items of a list of records are
named by their identifying field (``estimators[estimator=TWFE].std_error``) rather than
their position, so a drift table reads like the pack.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

ID_FIELDS = ("estimator", "outcome", "intervention", "event_time", "covariate", "subgroup",
             "rule", "comparison", "term", "arm", "wave", "rank", "criterion", "group", "time",
             "parameter", "name")


def _item_label(item: Any, index: int, siblings: list[Any]) -> str:
    if isinstance(item, dict):
        keys = [k for k in ID_FIELDS if k in item and isinstance(item[k], (str, int)) and not isinstance(item[k], bool)]
        for width in range(1, len(keys) + 1):
            chosen = keys[:width]
            label = ",".join(f"{k}={item[k]}" for k in chosen)
            same = [s for s in siblings if isinstance(s, dict)
                    and all(s.get(k) == item[k] for k in chosen)]
            if len(same) == 1:
                return label
    return str(index)


def flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float | int | None]:
    """``{quantity path: number}`` for every int/float leaf (bools and strings are skipped)."""
    out: dict[str, float | int | None] = {}
    if isinstance(obj, dict):
        for key in sorted(obj):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten_numbers(obj[key], path))
    elif isinstance(obj, list):
        for index, item in enumerate(obj):
            out.update(flatten_numbers(item, f"{prefix}[{_item_label(item, index, obj)}]"))
    elif isinstance(obj, bool):
        return out
    elif isinstance(obj, (int, float)):
        out[prefix] = obj
    return out


def numbers_digest(numbers: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the numbers (sorted keys, repr precision)."""
    text = json.dumps(numbers, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compare_numbers(pinned: dict[str, Any], now: dict[str, Any], *, exact: bool,
                    rtol: float, atol: float) -> list[dict[str, Any]]:
    """Rows of the drift table: quantities missing, added, or differing beyond tolerance.

    With ``exact=True`` (same environment) any difference is drift: results must be
    bit-identical. Otherwise a value passes when ``|now - pinned| <= atol + rtol |pinned|``.
    """
    rows = []
    for quantity in sorted(set(pinned) | set(now)):
        a, b = pinned.get(quantity, "missing"), now.get(quantity, "missing")
        tolerance = 0.0 if exact else (atol + rtol * abs(a) if isinstance(a, (int, float)) else 0.0)
        if a == "missing" or b == "missing" or a is None or b is None:
            if a != b:
                rows.append({"quantity": quantity, "pinned": a, "now": b, "difference": None,
                             "tolerance": tolerance})
            continue
        difference = float(b) - float(a)
        same = (a == b) if exact else (abs(difference) <= tolerance or (math.isnan(a) and math.isnan(b)))
        if not same:
            rows.append({"quantity": quantity, "pinned": a, "now": b, "difference": difference,
                         "tolerance": tolerance})
    return rows
