"""Which single assumption, if wrong, changes the recommendation (one input at a time).

For every input of every intervention that is not a single known value (an interval or
unknown: criterion inputs, component readiness and use levels), the input is set to the low and
then the high end of its range, all others staying as declared, and the point ranking and gate
verdicts are recomputed with the same rules as :func:`impactkit.scale.score`. Reported: every
case where **first place changes** (to whom), and every case where the **top-ranked
intervention's verdict** (passes every gate or not) changes. This is the one-way sensitivity
analysis of decision analysis (Briggs, Claxton & Sculpher 2006, *Decision Modelling for Health
Economic Evaluation*, ch. 4), applied to the recommendation rather than to a number.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import pandas as pd

from impactkit.scale.criteria import SLOTS, Inputs

Rank = Callable[[Inputs], tuple[np.ndarray, np.ndarray]]  # inputs -> (ranks, passes all gates)


def _fixed(inputs: Inputs, i: int, slot: str | None, comp: tuple[str, int] | None, end: str) -> Inputs:
    """``inputs`` with one input of intervention i fixed at its low or high end."""
    if slot is not None:
        q = SLOTS.index(slot)
        low, high = inputs.low.copy(), inputs.high.copy()
        value = low[i, q] if end == "low" else high[i, q]
        low[i, q] = high[i, q] = value
        center = None if inputs.center is None else inputs.center.copy()
        if center is not None:
            center[i, q] = value
        unknown = inputs.unknown.copy()
        unknown[i, q] = False
        return replace(inputs, low=low, high=high, center=center, unknown=unknown)
    kind, c = comp
    lo_name, hi_name = f"{kind}_low", f"{kind}_high"
    lo, hi = getattr(inputs, lo_name).copy(), getattr(inputs, hi_name).copy()
    value = lo[i, c] if end == "low" else hi[i, c]
    lo[i, c] = hi[i, c] = value
    return replace(inputs, **{lo_name: lo, hi_name: hi})


def assumption_flips(inputs: Inputs, rank: Rank) -> pd.DataFrame:
    """Rows: intervention, input, end, value, new first place, first place changes, top verdict changes."""
    base_ranks, base_pass = rank(inputs)
    top = int(np.argmin(base_ranks))
    rows = []
    for i, ident in enumerate(inputs.ids):
        candidates: list[tuple[str, str | None, tuple[str, int] | None]] = []
        for q, slot in enumerate(SLOTS):
            if slot == "cost_unknown_u" or inputs.low[i, q] == inputs.high[i, q]:
                continue
            candidates.append((slot, slot, None))
        for c, name in enumerate(inputs.comp_names[i]):
            for kind in ("readiness", "use"):
                if getattr(inputs, f"{kind}_low")[i, c] != getattr(inputs, f"{kind}_high")[i, c]:
                    candidates.append((f"{name}: {kind} level", None, (kind, c)))
        for label, slot, comp in candidates:
            for end in ("low", "high"):
                moved = _fixed(inputs, i, slot, comp, end)
                new_ranks, new_pass = rank(moved)
                new_top = int(np.argmin(new_ranks))
                if slot is not None:
                    value = float(moved.low[i, SLOTS.index(slot)])
                else:
                    value = float(getattr(moved, f"{comp[0]}_low")[i, comp[1]])
                first_changes = new_top != top
                verdict_changes = bool(new_pass[top]) != bool(base_pass[top])
                if first_changes or verdict_changes:
                    rows.append({"intervention": ident, "input": label, "end": end, "value": value,
                                 "first_place": inputs.ids[new_top], "first_place_changes": first_changes,
                                 "top_verdict_changes": verdict_changes,
                                 "top_passes_all_gates": bool(new_pass[top])})
    columns = ["intervention", "input", "end", "value", "first_place", "first_place_changes",
               "top_verdict_changes", "top_passes_all_gates"]
    return pd.DataFrame(rows, columns=columns)
