"""The result interface every estimator and check returns.

A result is plain data (a small dataclass holding frames and numbers) plus four verbs:

- ``tidy()``      a DataFrame, one row per term / (group, time) / event time, with the
                  columns ``estimate, std_error, conf_low, conf_high, p_value, n`` where
                  they apply (see :data:`TIDY_COLUMNS`);
- ``summary()``   a printed table in statsmodels' style (returns the text);
- ``plot()``      a matplotlib figure, where a picture means something;
- ``to_dict()``   JSON-ready plain data for the evidence pack and the analysis lock.

``_repr_html_`` and ``_repr_markdown_`` make results display in notebooks and in Quarto
documents with executable Python cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

TIDY_COLUMNS = ("estimate", "std_error", "conf_low", "conf_high", "p_value", "n")


def to_plain(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to JSON-ready Python objects.

    Floats keep full precision (``repr`` round-trips); NaN and infinities become
    ``None`` / the strings ``"inf"`` / ``"-inf"`` so that JSON stays standard.
    """
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [to_plain(r) for r in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return to_plain(value.to_dict())
    if isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return None
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def format_table(frame: pd.DataFrame, title: str = "", notes: list[str] | None = None,
                 digits: int = 4) -> str:
    """Render a frame as a statsmodels-style fixed-width text table."""
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}g}"
                                        if abs(v) >= 1e5 or (0 < abs(v) < 1e-3) else f"{v:.{digits}f}")
    text = shown.to_string(index=False)
    width = max((len(line) for line in text.splitlines()), default=0)
    width = max(width, len(title))
    rule = "=" * width
    parts = [title.center(width), rule, text, rule] if title else [rule, text, rule]
    for note in notes or []:
        parts.append(note)
    return "\n".join(parts)


@dataclass
class Result:
    """Base class: subclasses set ``title`` and implement :meth:`tidy`."""

    title: ClassVar[str] = "Result"

    def tidy(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def notes(self) -> list[str]:
        """Lines printed under the summary table (method, inference, warnings)."""
        return []

    def summary(self) -> str:
        text = format_table(self.tidy(), self.title, self.notes())
        return text

    def plot(self, ax=None):  # pragma: no cover - overridden where meaningful
        raise NotImplementedError(f"{type(self).__name__} has no plot")

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "table": to_plain(self.tidy()), "notes": list(self.notes())}

    def __str__(self) -> str:
        return self.summary()

    def _repr_markdown_(self) -> str:
        table = self.tidy().to_markdown(index=False) if _has_tabulate() else self.tidy().to_string()
        notes = "\n\n".join(self.notes())
        return f"**{self.title}**\n\n{table}\n\n{notes}".strip()

    def _repr_html_(self) -> str:
        import html

        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes())
        return f"<h4>{html.escape(self.title)}</h4>{self.tidy().to_html(index=False)}{notes}"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
