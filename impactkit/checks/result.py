"""The base of the design checks' results whose tidy frame is their ``table``."""

from __future__ import annotations

import pandas as pd

from impactkit.results import Result


class TableResult(Result):
    """A check result holding its rows in ``table`` (a dataclass field of the subclass)."""

    table: pd.DataFrame

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()
