"""Panel rules impactkit runs itself, vectorised over a pandas frame.

These are the checks field teams run on survey panels before analysis (cf. World Bank
DIME's ``ieduplicates``/``iecodebook`` and IPA's high-frequency checks), written as small
pure functions over arrays so that they can later run per partition:

``waves_declared``     every (unit, wave) row has a wave the contract declares
``attrition``          share of units seen in the previous wave but not in this one, by arm
``treatment_absorbing`` no unit goes from treated back to untreated
``cohort_consistent``  treated == (cohort != never-treated and wave >= cohort)
``time_invariant``     declared time-invariant columns are constant within unit
``cluster_constant``   each unit belongs to one cluster
``jump``               ratio of consecutive observed values within unit beyond a factor
``outlier``            Tukey fences (``iqr: k``) or robust z (``z: k``), optionally on logs
``missing_per_wave``   share missing per wave of a column above its threshold
``personal_leak``      free text holding an identifier pattern or a personal-column value

Each returns :class:`RuleOutcome` objects whose examples are ``(unit, wave)`` keys only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impactkit.contracts.model import Contract, OutlierRule
from impactkit.contracts.regex import compile_pattern
from impactkit.contracts.report import ENGINE_IMPACTKIT, MAX_EXAMPLES, RuleOutcome

ARM_TREATED = "ever treated"
ARM_COMPARISON = "comparison"
ARM_ALL = "all"


def sort_order(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Positions that sort rows by (unit code, time), ties in row order: ``np.lexsort``'s answer.

    Survey panels usually arrive sorted by unit and wave, and ``pd.factorize`` numbers
    units in order of appearance, so one linear pass usually shows that the rows already
    are in order and the sort can be skipped (the identity is what the stable sort returns).
    """
    if codes.size > 1:
        step = np.diff(codes)
        if not ((step > 0) | ((step == 0) & (times[1:] >= times[:-1]))).all():
            return np.lexsort((times, codes))
    return np.arange(codes.size, dtype=np.intp)


@dataclass(frozen=True)
class PanelIndex:
    """Row order and unit codes shared by the panel rules.

    ``order`` sorts rows by (unit, time); ``unit_codes``/``times`` are positional arrays;
    ``same_unit_as_previous[i]`` says whether sorted row ``i`` continues sorted row ``i-1``.
    """

    units: pd.Series
    times: np.ndarray
    unit_codes: np.ndarray
    order: np.ndarray
    same_unit_as_previous: np.ndarray

    @classmethod
    def build(cls, units: pd.Series, times: pd.Series) -> "PanelIndex":
        codes, _ = pd.factorize(units, sort=False)
        time_values = times.to_numpy(dtype=np.int64)
        order = sort_order(codes, time_values)
        sorted_codes = codes[order]
        same = np.zeros(len(order), dtype=bool)
        same[1:] = sorted_codes[1:] == sorted_codes[:-1]
        return cls(units.reset_index(drop=True), time_values, codes, order, same)

    @property
    def n_rows(self) -> int:
        return len(self.order)

    def examples(self, rows: np.ndarray) -> list[tuple[object, int]]:
        """Up to five (unit, wave) keys of positional ``rows``, in (unit, wave) order."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return []
        rank = np.empty(self.n_rows, dtype=np.int64)
        rank[self.order] = np.arange(self.n_rows)
        first = rows[np.argsort(rank[rows], kind="stable")][:MAX_EXAMPLES]
        return [(unit, int(self.times[i])) for unit, i in zip(self.units.iloc[first].tolist(), first)]


def _outcome(rule: str, column: str, rows: np.ndarray, index: PanelIndex, message: str) -> RuleOutcome:
    count = int(np.asarray(rows).size)
    share = count / index.n_rows
    return RuleOutcome(rule, column, ENGINE_IMPACTKIT, count == 0, count, float(share),
                       index.examples(rows), message)


def _rows_of_changing_units(sorted_values: np.ndarray, index: PanelIndex) -> np.ndarray:
    """Positional rows of units whose value changes between their (sorted) rows; NaN equals NaN."""
    differs = sorted_values[1:] != sorted_values[:-1]
    if sorted_values.dtype.kind == "f":
        differs &= ~(np.isnan(sorted_values[1:]) & np.isnan(sorted_values[:-1]))
    change = np.zeros(index.n_rows, dtype=bool)
    change[1:] = differs & index.same_unit_as_previous[1:]
    bad_units = np.unique(index.unit_codes[index.order[change]])
    return np.flatnonzero(np.isin(index.unit_codes, bad_units))


def waves_declared(index: PanelIndex, waves: list[int], time_key: str) -> RuleOutcome:
    rows = np.flatnonzero(~np.isin(index.times, np.asarray(waves, dtype=np.int64)))
    msg = f"{rows.size} row(s) have a {time_key} outside the declared waves {waves}" if rows.size else ""
    return _outcome("waves_declared", time_key, rows, index, msg)


def attrition_table(index: PanelIndex, waves: list[int], arm: np.ndarray | None) -> pd.DataFrame:
    """Units seen in the previous declared wave and lost in this one, by arm (one row per arm x wave)."""
    wave_pos = pd.Index(waves).get_indexer(index.times)
    inside = wave_pos >= 0
    n_units = int(index.unit_codes.max()) + 1 if index.n_rows else 0
    present = np.zeros((n_units, len(waves)), dtype=bool)
    present[index.unit_codes[inside], wave_pos[inside]] = True
    unit_arm = np.zeros(n_units, dtype=np.int8)  # 0: all / comparison, 1: ever treated
    if arm is not None:
        unit_arm[index.unit_codes] = np.asarray(arm, dtype=bool)
    labels = {0: ARM_ALL} if arm is None else {1: ARM_TREATED, 0: ARM_COMPARISON}
    rows = []
    for code, label in labels.items():
        in_arm = unit_arm == code
        for k in range(1, len(waves)):
            seen = present[:, k - 1] & in_arm
            lost = seen & ~present[:, k]
            n_seen, n_lost = int(seen.sum()), int(lost.sum())
            rows.append({"arm": str(label), "wave": int(waves[k]), "n_previous": n_seen, "n_lost": n_lost,
                         "share_lost": n_lost / n_seen if n_seen else 0.0})
    return pd.DataFrame(rows, columns=["arm", "wave", "n_previous", "n_lost", "share_lost"])


def attrition(index: PanelIndex, waves: list[int], arm: np.ndarray | None, max_share: float,
              unit_key: str) -> tuple[RuleOutcome, pd.DataFrame]:
    """Attrition per wave and arm against ``max_share`` (lost / seen in the previous wave)."""
    table = attrition_table(index, waves, arm)
    failing = table.loc[table["share_lost"] > max_share]
    if failing.empty:
        return RuleOutcome("attrition", unit_key, ENGINE_IMPACTKIT, True, 0, 0.0, [], ""), table
    cells = "; ".join(f"{r.arm} {r.wave}: {r.n_lost}/{r.n_previous} ({r.share_lost:.1%})"
                      for r in failing.itertuples())
    message = f"attrition above {max_share:.0%} of the previous wave in {cells}"
    # example keys: units lost, keyed by the wave they went missing
    examples: list[tuple[object, int]] = []
    first_rows = pd.Series(np.arange(index.n_rows)).groupby(index.unit_codes).first().to_numpy()
    wave_pos = pd.Index(waves).get_indexer(index.times)
    last_seen = pd.Series(wave_pos).groupby(index.unit_codes).max().to_numpy()
    for cell in failing.itertuples():
        k = waves.index(cell.wave)
        lost_units = np.flatnonzero(last_seen == k - 1)
        if arm is not None:
            arm_of_unit = np.zeros(len(first_rows), dtype=bool)
            arm_of_unit[index.unit_codes] = arm
            lost_units = lost_units[arm_of_unit[lost_units] == (cell.arm == ARM_TREATED)]
        lost_units = lost_units[: MAX_EXAMPLES - len(examples)]
        examples += [(unit, int(cell.wave)) for unit in index.units.iloc[first_rows[lost_units]].tolist()]
        if len(examples) >= MAX_EXAMPLES:
            break
    n_lost = int(failing["n_lost"].sum())  # units lost in the failing cells (one missing row each)
    outcome = RuleOutcome("attrition", unit_key, ENGINE_IMPACTKIT, False, n_lost,
                          n_lost / index.n_rows, examples, message)
    return outcome, table


def treatment_absorbing(index: PanelIndex, treated: np.ndarray, column: str) -> RuleOutcome:
    values = np.asarray(treated, dtype=float)[index.order]
    drop = np.zeros(index.n_rows, dtype=bool)
    drop[1:] = (values[1:] < values[:-1]) & index.same_unit_as_previous[1:]
    rows = index.order[drop]
    msg = f"{rows.size} row(s) where '{column}' switches back from treated to untreated" if rows.size else ""
    return _outcome("treatment_absorbing", column, rows, index, msg)


def cohort_consistent(index: PanelIndex, treated: np.ndarray, cohort: np.ndarray, never: int,
                      treatment_col: str, cohort_col: str) -> RuleOutcome:
    cohort = np.asarray(cohort, dtype=np.int64)
    expected = (cohort != never) & (index.times >= cohort)
    rows = np.flatnonzero(np.asarray(treated, dtype=float) != expected.astype(float))
    msg = (f"{rows.size} row(s) where '{treatment_col}' differs from ({cohort_col} != {never} and "
           f"wave >= {cohort_col})") if rows.size else ""
    return _outcome("cohort_consistent", f"{treatment_col}+{cohort_col}", rows, index, msg)


def constant_within_unit(index: PanelIndex, values: pd.Series, column: str, rule: str) -> RuleOutcome:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        codes = values.to_numpy(dtype=float, na_value=np.nan)  # numbers compare directly
    else:
        codes, _ = pd.factorize(values, use_na_sentinel=True)
    rows = _rows_of_changing_units(codes[index.order], index)
    n_units = np.unique(index.unit_codes[rows]).size
    msg = f"{n_units} unit(s) ({rows.size} rows) where '{column}' is not constant within unit" if rows.size else ""
    return _outcome(rule, column, rows, index, msg)


def jumps(index: PanelIndex, values: pd.Series, column: str, factor: float) -> RuleOutcome:
    """Consecutive observed positive values within unit whose ratio exceeds ``factor`` either way."""
    v = values.to_numpy(dtype=float, na_value=np.nan)[index.order]
    keep = np.isfinite(v) & (v > 0)
    sorted_rows = index.order[keep]
    vk = v[keep]
    codes = index.unit_codes[sorted_rows]
    ratio = np.ones(vk.size)
    if vk.size > 1:
        ratio[1:] = np.where(codes[1:] == codes[:-1], vk[1:] / vk[:-1], 1.0)
    bad = (ratio > factor) | (ratio < 1 / factor)
    rows = sorted_rows[bad]
    msg = (f"{rows.size} row(s) where '{column}' changes by more than x{factor:g} from the unit's previous "
           "observed wave") if rows.size else ""
    return _outcome("jump", column, rows, index, msg)


def outlier_fences(rule: OutlierRule, quantiles: Callable[[list[float]], Any], median: Callable[[], float],
                   median_abs_deviation: Callable[[float], float]) -> tuple[float, float, str]:
    """The fences of an outlier rule and the words for values outside them, shared by the pandas
    and Dask engines (which differ only in how they find the order statistics).

    Parameters
    ----------
    rule : OutlierRule
        ``iqr: k`` (Tukey 1977: ``[q1 - k IQR, q3 + k IQR]``) or ``z: k`` (Hampel 1974: robust z with
        the MAD scaled by 1.4826).
    quantiles : callable
        ``quantiles([0.25, 0.75])`` -> the two quartiles of the usable values.
    median : callable
        ``median()`` -> their median.
    median_abs_deviation : callable
        ``median_abs_deviation(centre)`` -> the median of ``|value - centre|``.

    Returns
    -------
    low, high : float
    what : str
        "outside Tukey fences (...)" or "with robust |z| > k ...".
    """
    if rule.iqr is not None:
        q1, q3 = quantiles([0.25, 0.75])
        spread = q3 - q1
        return (q1 - rule.iqr * spread, q3 + rule.iqr * spread,
                f"outside Tukey fences (iqr {rule.iqr:g}{', log scale' if rule.log else ''})")
    centre = median()
    scale = 1.4826 * median_abs_deviation(centre)
    return (centre - rule.z * scale, centre + rule.z * scale,
            f"with robust |z| > {rule.z:g}{' on log scale' if rule.log else ''}")


def outliers(index: PanelIndex, values: pd.Series, column: str, rule: OutlierRule) -> RuleOutcome:
    """Tukey fences (Tukey 1977) or robust z with MAD scale (Hampel 1974), on logs if asked."""
    v = values.to_numpy(dtype=float, na_value=np.nan)
    usable = np.isfinite(v) & ((v > 0) if rule.log else True)
    x = np.full(v.size, np.nan)
    x[usable] = np.log(v[usable]) if rule.log else v[usable]
    data = x[usable]
    if data.size == 0:
        return _outcome("outlier", column, np.array([], dtype=np.int64), index, "")
    low, high, what = outlier_fences(rule, lambda probs: np.quantile(data, probs), lambda: np.median(data),
                                     lambda centre: np.median(np.abs(data - centre)))
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(usable & ((x < low) | (x > high)))
    msg = f"{rows.size} value(s) of '{column}' {what}" if rows.size else ""
    return _outcome("outlier", column, rows, index, msg)


def missing_per_wave(index: PanelIndex, values: pd.Series, column: str, max_share: float,
                     waves: list[int]) -> RuleOutcome:
    """Share missing per declared wave (rows of undeclared waves are ``waves_declared``'s concern)."""
    missing = values.isna().to_numpy()
    position = pd.Index(waves).get_indexer(index.times)
    declared = position >= 0
    rows_per_wave = np.bincount(position[declared], minlength=len(waves))
    missing_per_wave_count = np.bincount(position[declared & missing], minlength=len(waves))
    observed = rows_per_wave > 0
    table = pd.Series(missing_per_wave_count[observed] / rows_per_wave[observed],
                      index=np.asarray(waves)[observed])
    failing = table.loc[table > max_share]
    if failing.empty:
        return RuleOutcome("missing_per_wave", column, ENGINE_IMPACTKIT, True, 0, 0.0, [], "")
    rows = np.flatnonzero(missing & np.isin(index.times, failing.index.to_numpy()))
    cells = ", ".join(f"{w}: {s:.1%}" for w, s in failing.items())
    msg = f"'{column}' missing above {max_share:.0%} in wave(s) {cells}"
    return RuleOutcome("missing_per_wave", column, ENGINE_IMPACTKIT, False, int(rows.size),
                       rows.size / index.n_rows, index.examples(rows), msg)


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_NOT_WORD = r"[\W_]+"


def _normal(text: str) -> str:
    """Case-folded words joined by single spaces (the form personal values are compared in)."""
    return " ".join(_TOKEN.findall(text.casefold()))


def _normal_series(values: pd.Series) -> pd.Series:
    """:func:`_normal` vectorised over a text column."""
    text = values.astype("string").str.casefold()
    return text.str.replace(_NOT_WORD, " ", regex=True).str.strip()


def _ngrams(text: str) -> set[str]:
    words = _normal(text).split(" ")
    return {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def personal_leak(index: PanelIndex, text: pd.Series, column: str, patterns: dict[str, str],
                  personal: dict[str, pd.Series]) -> RuleOutcome:
    """Free-text rows holding an identifier pattern or a value of a personal column.

    Works on the distinct non-empty texts (few in survey notes): each is checked against
    the regex patterns, and its word n-grams are looked up among the (normalised) values
    of the personal columns -- one vectorised ``isin`` per personal column.
    """
    values = text.astype("string").fillna("")
    distinct = [str(v) for v in values.unique().tolist() if v != ""]  # unique first: no filtered copy
    compiled = {label: compile_pattern(p) for label, p in patterns.items()}  # RE2: no backtracking
    flagged: dict[str, str] = {}
    grams: dict[str, set[str]] = {}
    for item in distinct:
        label = next((name for name, pattern in compiled.items() if pattern.search(item)), None)
        if label is not None:
            flagged[item] = f"pattern {label}"
        else:
            grams[item] = {g for g in _ngrams(item) if len(g) >= 3}
    candidates = set().union(*grams.values()) if grams else set()
    if candidates:
        found: set[str] = set()
        for series in personal.values():
            uniques = pd.Series(series.dropna().astype("string").unique(), dtype="string")
            normal = _normal_series(uniques)
            found |= set(normal[normal.isin(list(candidates))].tolist())
        for item, item_grams in grams.items():
            if item_grams & found:
                flagged[item] = "a personal-column value"
    if not flagged:
        return _outcome("personal_leak", column, np.array([], dtype=np.int64), index, "")
    hit = values.where(values.isin(list(flagged)))
    rows = np.flatnonzero(hit.notna().to_numpy())
    kinds = hit.iloc[rows].map(flagged).value_counts().sort_index()
    detail = ", ".join(f"{k}: {v}" for k, v in kinds.items())
    msg = f"{rows.size} row(s) of '{column}' contain personal data ({detail})"
    return _outcome("personal_leak", column, rows, index, msg)


def run_panel_rules(frame: pd.DataFrame, contract: Contract, usable: set[str],
                    index: PanelIndex) -> tuple[list[RuleOutcome], pd.DataFrame, list[str]]:
    """Run every panel rule whose columns are usable; return outcomes, attrition table, skipped notes."""
    panel = contract.panel
    out: list[RuleOutcome] = []
    skipped: list[str] = []

    def ready(rule: str, *columns: str | None) -> bool:
        missing = [c for c in columns if c is not None and c not in usable]
        if missing:
            skipped.append(f"{rule} on '{'+'.join(missing)}': column missing or of the wrong type")
        return not missing

    out.append(waves_declared(index, panel.waves, panel.time_key))
    arm = None
    if panel.cohort is not None and ready("attrition", panel.cohort):
        arm = frame[panel.cohort].to_numpy() != panel.never_treated_cohort
    table = pd.DataFrame()
    if panel.cohort is None or panel.cohort in usable:
        outcome, table = attrition(index, panel.waves, arm, panel.thresholds.attrition_max_share, panel.unit_key)
        out.append(outcome)
    if panel.treatment is not None and ready("treatment_absorbing", panel.treatment):
        out.append(treatment_absorbing(index, frame[panel.treatment].to_numpy(), panel.treatment))
        if panel.cohort is not None and ready("cohort_consistent", panel.cohort):
            out.append(cohort_consistent(index, frame[panel.treatment].to_numpy(), frame[panel.cohort].to_numpy(),
                                         panel.never_treated_cohort, panel.treatment, panel.cohort))
    for column in panel.time_invariant:
        if ready("time_invariant", column):
            out.append(constant_within_unit(index, frame[column], column, "time_invariant"))
    if panel.cluster is not None and ready("cluster_constant", panel.cluster):
        out.append(constant_within_unit(index, frame[panel.cluster], panel.cluster, "cluster_constant"))
    for column, factor in panel.thresholds.jump_factor.items():
        if ready("jump", column):
            out.append(jumps(index, frame[column], column, factor))
    for column, rule in panel.thresholds.outliers.items():
        if ready("outlier", column):
            out.append(outliers(index, frame[column], column, rule))
    for column, share in panel.thresholds.missing_max_share.items():
        if ready("missing_per_wave", column):
            out.append(missing_per_wave(index, frame[column], column, share, panel.waves))
    personal_cols = [c for c in contract.personal_columns if c in frame.columns]
    for column in panel.free_text:
        if ready("personal_leak", column):
            out.append(personal_leak(index, frame[column], column, panel.leak_patterns,
                                     {c: frame[c] for c in personal_cols}))
    return out, table, skipped
