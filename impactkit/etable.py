"""Several models side by side in one regression table (as fixest ``etable``, ``modelsummary``,
Stata ``esttab``).

:func:`etable` takes any mix of impactkit results (every :class:`impactkit.results.Result`
whose ``tidy()`` has ``estimate`` and ``std_error``; DiD results also through their ``att()``
and ``event_study()``) and builds one :class:`ETable`: a plain frame of cells (one column per
model, one row per term, the standard error or interval under each estimate, then the number
of observations), rendered by one function per target: :meth:`ETable.to_text`,
:meth:`ETable.to_markdown`, :meth:`ETable.to_latex`, :meth:`ETable.to_html` and
:meth:`ETable.to_gt` (a great-tables ``GT``). Text from results (term and model names) is
escaped for each target.

Term rows come from a registry of extractors (:data:`EXTRACTORS`): the first whose test
accepts a result gives its ``(term, estimate, std_error, conf_low, conf_high, p_value)`` rows.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from impactkit.errors import InputError

ROW_COLUMNS = ("term", "estimate", "std_error", "conf_low", "conf_high", "p_value")
STARS = ((0.01, "***"), (0.05, "**"), (0.1, "*"))


def _did_rows(result) -> pd.DataFrame:
    rows = [{"term": "ATT", **result.att()}]
    try:
        es = result.event_study()
    except Exception:   # noqa: BLE001 - methods without an event study raise a documented error
        es = None
    if es is not None:
        for rec in es.to_dict(orient="records"):
            rows.append({"term": f"event time {int(rec['event_time'])}", **{k: rec.get(k) for k in ROW_COLUMNS[1:]}})
    return pd.DataFrame(rows)


def _label_rows(frame: pd.DataFrame) -> pd.Series:
    """Term labels of a tidy frame: ``term`` combined with a row key (event time, group, period)."""
    key = next((c for c in ("event_time", "group", "time") if c in frame.columns), None)
    terms = frame["term"].astype(str) if "term" in frame.columns else pd.Series(["estimate"] * len(frame))
    if key is None:
        return terms.reset_index(drop=True)
    values = frame[key].reset_index(drop=True)
    return pd.Series([t if pd.isna(v) else f"{key.replace('_', ' ')} {v:g}" for t, v in zip(terms, values)])


def _tidy_rows(result) -> pd.DataFrame:
    frame = result.tidy().reset_index(drop=True)
    out = pd.DataFrame({"term": _label_rows(frame)})
    for col in ROW_COLUMNS[1:]:
        out[col] = frame[col].to_numpy() if col in frame.columns else math.nan
    return out


def _is_did(result) -> bool:
    from impactkit.did.base import DidResult

    return isinstance(result, DidResult)


def _has_tidy_estimates(result) -> bool:
    try:
        cols = result.tidy().columns
    except Exception:   # noqa: BLE001
        return False
    return "estimate" in cols and "std_error" in cols


#: ``(name, accepts, rows)``: the first extractor whose ``accepts(result)`` is true is used.
EXTRACTORS: tuple[tuple[str, Callable, Callable], ...] = (
    ("did", _is_did, _did_rows),
    ("tidy", _has_tidy_estimates, _tidy_rows),
)


def model_rows(result) -> pd.DataFrame:
    """The term rows of one result (see :data:`EXTRACTORS`)."""
    for _, accepts, rows in EXTRACTORS:
        if accepts(result):
            return rows(result)
    raise InputError(f"etable: a {type(result).__name__} has no estimates with standard errors to tabulate")


def _nobs(result) -> float:
    for attr in ("n_obs", "nobs", "n"):
        value = getattr(result, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return math.nan


@dataclass(frozen=True)
class ETable:
    """A regression table: ``cells`` (strings; index = row labels, columns = model names) and
    ``estimates`` (the numbers behind them, long form)."""

    cells: pd.DataFrame
    estimates: pd.DataFrame
    notes: tuple[str, ...]

    def to_text(self) -> str:
        """Fixed-width text."""
        frame = self.cells.reset_index().rename(columns={"index": ""})
        return frame.to_string(index=False) + ("\n" + "\n".join(self.notes) if self.notes else "")

    def to_markdown(self) -> str:
        """A pipe table (``|`` and special characters escaped)."""
        def esc(s: str) -> str:
            return "".join("\\" + ch if ch in "\\|*_`[]<>#" else ch for ch in str(s))
        header = "| | " + " | ".join(esc(c) for c in self.cells.columns) + " |"
        rule = "|---|" + "|".join(":---:" for _ in self.cells.columns) + "|"
        body = ["| " + esc(idx) + " | " + " | ".join(esc(v) for v in row) + " |"
                for idx, row in zip(self.cells.index, self.cells.to_numpy())]
        notes = ["", *[esc(n) for n in self.notes]] if self.notes else []
        return "\n".join([header, rule, *body, *notes])

    def to_latex(self) -> str:
        """A ``tabular`` (booktabs rules), special characters escaped."""
        def esc(s: str) -> str:
            table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                     "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
            return "".join(table.get(ch, ch) for ch in str(s))
        cols = "l" + "c" * len(self.cells.columns)
        lines = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
                 " & " + " & ".join(esc(c) for c in self.cells.columns) + r" \\", r"\midrule"]
        for idx, row in zip(self.cells.index, self.cells.to_numpy()):
            lines.append(esc(idx) + " & " + " & ".join(esc(v) for v in row) + r" \\")
        lines.append(r"\bottomrule")
        lines.append(r"\end{tabular}")
        for note in self.notes:
            lines.append(r"\par\footnotesize " + esc(note))
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML ``<table>`` (text escaped)."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.cells.columns)
        body = "".join("<tr><th>" + html.escape(str(idx)) + "</th>" +
                       "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                       for idx, row in zip(self.cells.index, self.cells.to_numpy()))
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return f"<table class=\"impactkit-etable\"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"

    def to_gt(self):
        """A great-tables ``GT`` object (row labels as the stub)."""
        from great_tables import GT

        frame = self.cells.reset_index().rename(columns={"index": "term"})
        table = GT(frame, rowname_col="term")
        for note in self.notes:
            table = table.tab_source_note(note)
        return table

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_text()


def _format(value: float, digits: int) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def etable(models: Mapping[str, object] | Sequence[object], *, terms: Sequence[str] | None = None,
           uncertainty: str = "se", digits: int = 3, stars: bool = False) -> ETable:
    """Put several impactkit results side by side.

    Parameters
    ----------
    models : mapping of name to result, or sequence of results
        Any mix of impactkit results (DiD, IV, checks) with estimates and standard errors;
        unnamed models are called ``(1)``, ``(2)``, ...
    terms : sequence of str, optional
        Row labels to keep, in this order (default: every term, in order of appearance).
    uncertainty : {"se", "ci"}
        Under each estimate: the standard error in parentheses, or the confidence interval in
        brackets.
    digits : int
        Decimal places.
    stars : bool
        Significance stars from ``p_value`` (*** 0.01, ** 0.05, * 0.1).

    Returns
    -------
    ETable

    Raises
    ------
    InputError
        No models, a duplicate model name, an unknown ``uncertainty``, or a result without
        estimates and standard errors.
    """
    if uncertainty not in ("se", "ci"):
        raise InputError(f"etable: uncertainty must be 'se' or 'ci', got {uncertainty!r}")
    named = dict(models) if isinstance(models, Mapping) else {f"({i + 1})": m for i, m in enumerate(models)}
    if not named:
        raise InputError("etable: no models given")
    if isinstance(models, Mapping) and len(named) != len(models):   # pragma: no cover - dict keys are unique
        raise InputError("etable: duplicate model names")
    long = []
    for name, result in named.items():
        rows = model_rows(result).assign(model=str(name))
        long.append(rows)
    estimates = pd.concat(long, ignore_index=True)
    order = list(dict.fromkeys(estimates["term"]))
    if terms is not None:
        missing = [t for t in terms if t not in order]
        if missing:
            raise InputError(f"etable: term(s) {missing} not in any model; available: {order}")
        order = list(terms)
    names = [str(n) for n in named]
    index, data = [], []
    for term in order:
        est_row, unc_row = [], []
        for name in names:
            hit = estimates[(estimates["model"] == name) & (estimates["term"] == term)]
            if hit.empty:
                est_row.append(""), unc_row.append("")
                continue
            rec = hit.iloc[0]
            star = ""
            if stars and rec["p_value"] is not None and not pd.isna(rec["p_value"]):
                star = next((s for cut, s in STARS if rec["p_value"] < cut), "")
            est_row.append(_format(rec["estimate"], digits) + star)
            if uncertainty == "se":
                unc_row.append(f"({_format(rec['std_error'], digits)})")
            else:
                unc_row.append(f"[{_format(rec['conf_low'], digits)}, {_format(rec['conf_high'], digits)}]")
        index += [term, ""]
        data += [est_row, unc_row]
    nobs = [_nobs(named[n]) for n in named]
    if any(not math.isnan(v) for v in nobs):
        index.append("Observations")
        data.append(["" if math.isnan(v) else f"{int(v):,}" for v in nobs])
    cells = pd.DataFrame(data, index=index, columns=names)
    note = ("Standard errors in parentheses." if uncertainty == "se" else "Confidence intervals in brackets.")
    if stars:
        note += " *** p<0.01, ** p<0.05, * p<0.1."
    return ETable(cells=cells, estimates=estimates, notes=(note,))
