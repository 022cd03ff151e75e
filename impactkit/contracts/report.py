"""The validation report: one row per rule and column, plus the attrition table.

Nothing in a report ever holds a value of a personal-data column: failures are described
by counts, shares and up to five example keys ``(unit, wave)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from impactkit.atomic import dumps_json
from impactkit.results import Result, format_table, to_plain

ENGINE_GX = "great_expectations"
ENGINE_IMPACTKIT = "impactkit"
MAX_EXAMPLES = 5
RESULT_COLUMNS = ("rule", "column", "engine", "success", "failed_rows", "failed_share", "examples", "message")


@dataclass
class RuleOutcome:
    """The outcome of one rule on one column (``column`` may name several, joined by '+')."""

    rule: str
    column: str
    engine: str
    success: bool
    failed_rows: int
    failed_share: float  # failed_rows / rows of the table
    examples: list[tuple[Any, Any]] = field(default_factory=list)
    message: str = ""


def outcomes_frame(outcomes: list[RuleOutcome]) -> pd.DataFrame:
    """A tidy frame of rule outcomes (columns :data:`RESULT_COLUMNS`)."""
    rows = [{"rule": o.rule, "column": o.column, "engine": o.engine, "success": bool(o.success),
             "failed_rows": int(o.failed_rows), "failed_share": float(o.failed_share),
             "examples": [tuple(to_plain(list(k))) for k in o.examples[:MAX_EXAMPLES]],
             "message": o.message} for o in outcomes]
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return frame.astype({"success": bool, "failed_rows": "int64", "failed_share": "float64"})


@dataclass
class ValidationReport(Result):
    """Result of :func:`impactkit.contracts.validate`.

    Attributes
    ----------
    results: one row per rule and column (see :data:`RESULT_COLUMNS`); ``engine`` says
        whether great-expectations or impactkit ran the rule.
    attrition: units observed in the previous wave, lost, and their share, by arm and wave.
    skipped: rules not run, with the reason (e.g. a column of the wrong type).
    """

    title: ClassVar[str] = "Data contract validation"

    results: pd.DataFrame
    contract_id: str
    contract_version: str
    source: str
    n_rows: int
    n_units: int
    attrition: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every rule passed."""
        return bool(self.results["success"].all())

    @property
    def failed(self) -> pd.DataFrame:
        """The rows of :attr:`results` whose rule failed."""
        return self.results.loc[~self.results["success"]].reset_index(drop=True)

    def tidy(self) -> pd.DataFrame:
        frame = self.results.copy()
        frame["n"] = self.n_rows
        return frame

    def notes(self) -> list[str]:
        n_failed = int((~self.results["success"]).sum())
        engines = self.results.groupby("engine").size().to_dict()
        lines = [f"contract {self.contract_id} v{self.contract_version}; data {self.source}: "
                 f"{self.n_rows} rows, {self.n_units} units",
                 "rules run: " + ", ".join(f"{n} by {e}" for e, n in sorted(engines.items())),
                 f"{n_failed} rule(s) failed" if n_failed else f"all {len(self.results)} rules passed"]
        lines += [f"skipped: {s}" for s in self.skipped]
        return lines

    def summary(self) -> str:
        """The failed rules (or, when all pass, how many rules of each kind ran), then notes."""
        shown = self.results[["rule", "column", "engine", "success", "failed_rows", "failed_share"]]
        failed = shown.loc[~shown["success"]].reset_index(drop=True)
        if failed.empty:
            table = (shown.groupby(["engine", "rule"], sort=True).size().rename("rules_passed").reset_index())
            return format_table(table, self.title, self.notes())
        return format_table(failed, self.title, self.notes())

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "ok": self.ok,
            "contract": {"id": self.contract_id, "version": self.contract_version},
            "source": self.source,
            "n_rows": self.n_rows,
            "n_units": self.n_units,
            "results": to_plain(self.results),
            "attrition": to_plain(self.attrition),
            "skipped": list(self.skipped),
            "notes": self.notes(),
        }

    def to_json(self) -> str:
        """Canonical JSON text of :meth:`to_dict` (sorted keys)."""
        return dumps_json(self.to_dict())
