"""Cost-effectiveness relative to the uses of the same money a ministry weighs.

Comparing a programme with "nothing" flatters it; J-PAL's comparative method (Dhaliwal et al.
2013) and cash benchmarking (McIntosh & Zeitlin 2022, *J. Dev. Econ.* 157:102875) compare it
with what the same budget would otherwise buy:

* **cash transfer**: the budget handed to the same participants. Delivering one unit of money
  costs ``ctr`` (the cost-transfer ratio, an interval with its source), so one unit of budget
  delivers ``1 / (1 + ctr)`` units of money benefit: BCR_cash = 1 / (1 + ctr), counted once (no
  multiplier, no investment return: a conservative benchmark).
* **status quo**: spend nothing: benefit 0, cost 0, NPV 0.
* **another intervention** of the portfolio: its BCR, if its costs are known.

For the focus intervention: ``benefit per unit of budget`` (its BCR at the scale being decided,
voltage-discounted) and ``times the alternative`` = its BCR / the alternative's BCR
(cost-effectiveness relative to the alternative; > 1 beats it). Every row says what it rests on.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def alternatives_table(focus: str, focus_bcr: tuple[float, float, float] | None, focus_label: str,
                       alternatives, bcr_of: dict[str, tuple[float, float, float] | None]) -> pd.DataFrame:
    """Rows: the focus intervention, then each alternative; BCR (low, centre, high) and the focus's
    BCR relative to it. ``bcr_of`` gives portfolio interventions' BCR (None = costs unknown)."""
    rows: list[dict[str, Any]] = [{
        "option": focus, "kind": "focus intervention (at scale, voltage-discounted)",
        "bcr": None if focus_bcr is None else focus_bcr[1], "bcr_low": None if focus_bcr is None else focus_bcr[0],
        "bcr_high": None if focus_bcr is None else focus_bcr[2], "focus_times_option": 1.0 if focus_bcr else None,
        "rests_on": focus_label}]
    for alt in alternatives:
        if alt.kind == "cash_transfer":
            low, high = alt.cost_transfer_ratio.bounds()
            bcr = (1.0 / (1.0 + high), 1.0 / (1.0 + 0.5 * (low + high)), 1.0 / (1.0 + low))
            src = alt.cost_transfer_ratio.evidence
            rests = (f"cost-transfer ratio {low:.0%}-{high:.0%}: " + (src.source if src else "")
                     + (f" ({alt.cost_transfer_ratio.note})" if alt.cost_transfer_ratio.note else ""))
            kind = "cash transfer of the same budget"
        elif alt.kind == "status_quo":
            bcr, rests, kind = None, "no spending: benefit 0, cost 0, NPV 0", "status quo"
        else:
            bcr = bcr_of.get(alt.intervention)
            kind = f"portfolio intervention '{alt.intervention}'"
            rests = "its cost data" if bcr is not None else "costs unknown: not comparable yet"
        times = None
        if focus_bcr is not None and bcr is not None and bcr[1] > 0:
            times = focus_bcr[1] / bcr[1]
        rows.append({"option": alt.id, "kind": kind, "bcr": None if bcr is None else bcr[1],
                     "bcr_low": None if bcr is None else bcr[0], "bcr_high": None if bcr is None else bcr[2],
                     "focus_times_option": times, "rests_on": rests + (f"; {alt.note}" if alt.note else "")})
    return pd.DataFrame(rows)
