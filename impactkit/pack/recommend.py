"""The brief's recommendation, derived from the results (never fixed text).

:func:`verdict` is a small pure function of the estimate's interval, the direction in
which the outcome improves, the scale-readiness gates and the scale verdict. Its table of
cases, in order (the first that applies wins):

=====================================================  ======================
Results                                                Verdict
=====================================================  ======================
no estimate or no interval                             ``no_evidence``
interval entirely on the harmful side                  ``stop``
interval includes zero                                 ``not_shown``
beneficial, a scale gate failed                        ``fix_first``
beneficial, a gate not yet shown to pass (uncertain)   ``scale_in_stages``
beneficial, every gate passed                          ``scale``
beneficial, no scale assessment                        ``scale_in_stages``
=====================================================  ======================

Only ``scale`` and ``scale_in_stages`` support a recommendation to expand. Authored text
(``analysis.recommendation``) is shown on top of the verdict when it agrees;
:func:`authored_stance` reads whether it advocates expanding, and :func:`reconcile`
replaces it by the results' verdict, with a warning, when it advocates expanding and the
results do not support it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum


class Verdict(str, Enum):
    NO_EVIDENCE = "no_evidence"
    STOP = "stop"
    NOT_SHOWN = "not_shown"
    FIX_FIRST = "fix_first"
    SCALE_IN_STAGES = "scale_in_stages"
    SCALE = "scale"

    @property
    def supports_expansion(self) -> bool:
        return self in (Verdict.SCALE, Verdict.SCALE_IN_STAGES)


def verdict(low: float | None, high: float | None, *, higher_is_better: bool = True,
            failed_gates: Sequence[str] = (), uncertain_gates: Sequence[str] = (),
            assessed: bool = True) -> Verdict:
    """The verdict of the table in the module docstring.

    ``low``/``high`` bound the effect's 95% confidence interval (outcome units, any
    monotone scale: only signs matter); ``assessed`` is False when no scale-readiness
    assessment was made.
    """
    if low is None or high is None:
        return Verdict.NO_EVIDENCE
    lo, hi = (float(low), float(high)) if higher_is_better else (-float(high), -float(low))
    if hi < 0:
        return Verdict.STOP
    if lo <= 0:
        return Verdict.NOT_SHOWN
    if list(failed_gates):
        return Verdict.FIX_FIRST
    if list(uncertain_gates) or not assessed:
        return Verdict.SCALE_IN_STAGES
    return Verdict.SCALE


# Words that advocate expanding a programme, and negations that turn them around.
EXPAND = re.compile(r"\b(scale|scaling|expand|expansion|roll(?:ing)?[ -]?out|fund|finance|adopt|certify|"
                    r"extend|replicate|institutionali[sz]e|invest)\w*", re.IGNORECASE)
HOLD = re.compile(r"\b(do not|don't|not yet|no longer|stop|halt|pause|wait|before (?:scaling|expanding)|"
                  r"until|should not|must not|cannot|avoid)\b", re.IGNORECASE)


def authored_stance(text: str | None) -> str | None:
    """``'expand'`` if the text advocates expanding (and does not hold back), ``'hold'``
    if it holds back, ``None`` for no text or neither."""
    if not text or not text.strip():
        return None
    if HOLD.search(text):
        return "hold"
    return "expand" if EXPAND.search(text) else None


@dataclass(frozen=True)
class Recommendation:
    verdict: Verdict
    authored: str | None  # the authored text to show, or None when it was overruled
    warning: str | None  # why the authored text was not shown


def reconcile(result: Verdict, authored: str | None) -> Recommendation:
    """Authored text is kept unless it advocates expanding what the results do not support."""
    stance = authored_stance(authored)
    if stance == "expand" and not result.supports_expansion:
        return Recommendation(result, None,
                              f"the authored recommendation advocates expanding the programme but the results' "
                              f"verdict is '{result.value}': the brief shows the results' verdict instead")
    return Recommendation(result, authored.strip() if authored and authored.strip() else None, None)


def gate_lists(detail: dict, ranking_row: dict) -> tuple[list[str], list[str]]:
    """``(failed, uncertain)`` gates of the focus intervention from the scale results."""
    def listed(key: str) -> list[str]:
        value = detail.get(key, ranking_row.get(key))
        return [str(v) for v in value] if isinstance(value, Iterable) and not isinstance(value, str) else []
    return listed("failed_gates"), listed("uncertain_gates")
