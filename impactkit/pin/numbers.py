"""Every reported number of a results document, flattened to named quantities.

``flatten_numbers(results)`` walks the results dict and returns ``{quantity: value}`` for
every numeric leaf. Quantities are named by their path; items of a list of records are
named by their identifying field (``estimators[estimator=TWFE].std_error``) rather than
their position, so a drift table reads like the pack.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

ID_FIELDS = ("estimator", "outcome", "intervention", "event_time", "covariate", "subgroup",
             "rule", "comparison", "term", "arm", "wave", "rank", "criterion", "group", "time",
             "parameter", "name", "option", "location", "input", "end", "floor", "year", "payer")


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


@dataclass(frozen=True)
class Tolerance:
    """``|now - pinned| <= atol + rtol * |pinned|`` (numpy's ``isclose`` rule)."""

    rtol: float
    atol: float

    def bound(self, pinned: float) -> float:
        return self.atol + self.rtol * abs(pinned)


@dataclass(frozen=True)
class TolerancePolicy:
    """Which tolerance each quantity is judged by: the first class whose glob pattern matches
    the quantity's name, else ``default``. Classes are ``(name, patterns, tolerance)``."""

    default: Tolerance
    classes: tuple[tuple[str, tuple[str, ...], Tolerance], ...] = ()

    def classify(self, quantity: str) -> tuple[str, Tolerance]:
        for name, patterns, tolerance in self.classes:
            if any(fnmatch.fnmatchcase(quantity, pattern) for pattern in patterns):
                return name, tolerance
        return "default", self.default


EXACT = TolerancePolicy(Tolerance(0.0, 0.0))


@dataclass
class Comparison:
    """Every number of a rerun against the lock.

    ``differing`` holds every quantity whose value is not bit-identical (the facts);
    ``beyond`` the subset outside its tolerance (the verdict), largest relative first.
    """

    n_numbers: int
    differing: list[dict[str, Any]] = field(default_factory=list)
    beyond: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.beyond

    @property
    def bit_identical(self) -> bool:
        return not self.differing

    @property
    def max_abs(self) -> float:
        return max((abs(r["difference"]) for r in self.differing if r["difference"] is not None), default=0.0)

    def merge(self, other: "Comparison") -> "Comparison":
        """Both comparisons' rows (the first's row kept where a quantity is in both)."""
        merged = Comparison(max(self.n_numbers, other.n_numbers))
        for name in ("differing", "beyond"):
            rows = {r["quantity"]: r for r in getattr(other, name)} | {r["quantity"]: r for r in getattr(self, name)}
            setattr(merged, name, sorted(rows.values(), key=_largest_first))
        return merged

    @property
    def max_rel(self) -> float:
        return max((r["relative"] for r in self.differing if r["relative"] is not None), default=0.0)


def _largest_first(row: dict[str, Any]) -> tuple[float, str]:
    """Sort key: largest relative difference first (missing values, infinitely large, lead)."""
    return (-(row["relative"] if row["relative"] is not None else math.inf), row["quantity"])


def _relative(difference: float, pinned: float) -> float:
    if pinned == 0:
        return math.inf if difference else 0.0
    return abs(difference) / abs(pinned)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_numbers(pinned: dict[str, Any], now: dict[str, Any],
                    policy: TolerancePolicy = EXACT) -> Comparison:
    """Compare two ``{quantity: number}`` maps under ``policy``.

    A quantity missing on one side, or a number against a null, is always beyond tolerance;
    two NaNs (or two nulls) are equal.
    """
    result = Comparison(n_numbers=len(set(pinned) | set(now)))
    for quantity in sorted(set(pinned) | set(now)):
        a, b = pinned.get(quantity, "missing"), now.get(quantity, "missing")
        kind, tolerance = policy.classify(quantity)
        row = {"quantity": quantity, "pinned": a, "now": b, "difference": None, "relative": None,
               "tolerance": None, "class": kind}
        if _is_number(a) and _is_number(b):
            if a == b or (math.isnan(a) and math.isnan(b)):
                continue
            difference = float(b) - float(a)
            row.update(difference=difference, relative=_relative(difference, float(a)),
                       tolerance=tolerance.bound(float(a)))
            result.differing.append(row)
            if not abs(difference) <= row["tolerance"]:
                result.beyond.append(row)
        elif a != b:
            result.differing.append(row)
            result.beyond.append(row)
    result.beyond.sort(key=_largest_first)
    return result
