"""Data contracts at scale: the same rules, per partition, merged into one report.

With every unit in one partition (:func:`impactkit.distributed.data.by_unit`):

- column rules run per partition through the same compiled great-expectations suite
  (:func:`impactkit.contracts.gx_suite.run_column_rules`); failing-row counts add up and the
  example keys are the first five in row order across partitions (partition order);
- unit-local panel rules (waves declared, absorbing treatment, cohort consistency,
  time-invariant columns, cluster constant, jumps) run per partition with
  :func:`impactkit.contracts.panel_rules.run_panel_rules`; their counts add up and the example
  keys are the first five in (unit, wave) order (units numbered by first appearance, as the
  pandas engine numbers them);
- rules with a global ingredient are reduced: attrition from per-partition (arm, wave) counts,
  missing-per-wave from per-wave counts, outliers from the exact global quantiles / medians (found by
  distributed selection, :mod:`impactkit.distributed.select`: histograms per partition narrow an
  interval to the order statistic, so the column never leaves the workers; only the fences go back), personal leaks against the 64-bit hashes of every
  normalised personal value (hashes leave the workers, values never do).

Messages are rebuilt from the merged counts with the pandas engine's wording, so the report
has the same rows, counts and example keys as :func:`impactkit.contracts.validate` on the
whole table. Error messages and reports name columns, counts and (unit, wave) keys only.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from impactkit.contracts.model import Contract
from impactkit.contracts.panel_rules import outlier_fences
from impactkit.contracts.report import ENGINE_IMPACTKIT, MAX_EXAMPLES, RuleOutcome, ValidationReport, outcomes_frame
from impactkit.distributed import select
from impactkit.distributed.reduce import add, map_blocks, partitions, persist

GLOBAL_RULES = ("attrition", "missing_per_wave", "outlier", "personal_leak")


# ----------------------------------------------------------------------------------- per partition
def _index(part: pd.DataFrame, contract: Contract):
    from impactkit.contracts.panel_rules import PanelIndex

    panel = contract.panel
    return PanelIndex.build(part[panel.unit_key], part[panel.time_key])


def _local_rules(part: pd.DataFrame, contract: Contract) -> dict:
    """Column rules and unit-local panel rules of one partition (positional rows)."""
    from impactkit.contracts import _check_keys
    from impactkit.contracts.gx_suite import run_column_rules
    from impactkit.contracts.panel_rules import run_panel_rules

    part = part.reset_index(drop=True)
    _check_keys(part, contract, "partition")
    panel = contract.panel
    keys = part[[panel.unit_key, panel.time_key]]
    column, usable, skipped = run_column_rules(part, contract, keys)
    index = _index(part, contract)
    panel_outcomes, table, panel_skipped = run_panel_rules(part, contract, usable, index)
    arm = None
    if panel.cohort is not None and panel.cohort in usable:
        arm = part[panel.cohort].to_numpy() != panel.never_treated_cohort
    return {"outcomes": column + panel_outcomes, "usable": usable, "skipped": skipped + panel_skipped,
            "n_rows": len(part), "n_units": int(index.unit_codes.max()) + 1 if len(part) else 0,
            "attrition": table, "lost": _lost_examples(index, panel.waves, arm)}


def _lost_examples(index, waves: list[int], arm) -> dict:
    """Per (arm, wave): the first five units (first appearance) last seen in the wave before."""
    from impactkit.contracts.panel_rules import ARM_COMPARISON, ARM_TREATED

    first_rows = pd.Series(np.arange(index.n_rows)).groupby(index.unit_codes).first().to_numpy()
    wave_pos = pd.Index(waves).get_indexer(index.times)
    last_seen = pd.Series(wave_pos).groupby(index.unit_codes).max().to_numpy()
    arm_of_unit = np.zeros(len(first_rows), dtype=bool)
    if arm is not None:
        arm_of_unit[index.unit_codes] = arm
    out = {}
    arms = [(None, "all")] if arm is None else [(True, ARM_TREATED), (False, ARM_COMPARISON)]
    for k in range(1, len(waves)):
        lost = np.flatnonzero(last_seen == k - 1)
        for flag, label in arms:
            chosen = lost if flag is None else lost[arm_of_unit[lost] == flag]
            out[(label, int(waves[k]))] = [(u, int(waves[k])) for u in
                                           index.units.iloc[first_rows[chosen[:MAX_EXAMPLES]]].tolist()]
    return out


def _missing_counts(part: pd.DataFrame, contract: Contract, column: str) -> dict:
    waves = contract.panel.waves
    part = part.reset_index(drop=True)
    index = _index(part, contract)
    missing = part[column].isna().to_numpy()
    position = pd.Index(waves).get_indexer(index.times)
    declared = position >= 0
    examples = {}
    for k, wave in enumerate(waves):
        rows = np.flatnonzero(missing & (position == k))
        examples[int(wave)] = _ranked_examples(index, rows)
    return {"rows": np.bincount(position[declared], minlength=len(waves)).astype(float),
            "missing": np.bincount(position[declared & missing], minlength=len(waves)).astype(float),
            "examples": examples}


def _ranked_examples(index, rows: np.ndarray) -> list[tuple[int, tuple]]:
    """The first five (unit, wave) keys of ``rows`` in (unit, wave) order, with their rank."""
    if rows.size == 0:
        return []
    rank = np.empty(index.n_rows, dtype=np.int64)
    rank[index.order] = np.arange(index.n_rows)
    first = rows[np.argsort(rank[rows], kind="stable")][:MAX_EXAMPLES]
    return [(int(rank[i]), (unit, int(index.times[i]))) for unit, i in zip(index.units.iloc[first].tolist(), first)]


def _outlier_values(part: pd.DataFrame, column: str, log: bool) -> np.ndarray:
    v = part[column].to_numpy(dtype=float, na_value=np.nan)
    usable = np.isfinite(v) & ((v > 0) if log else True)
    return np.log(v[usable]) if log else v[usable]


def _deviations(values: np.ndarray, center: float) -> np.ndarray:
    return np.abs(values - center)


def _outlier_rows(part: pd.DataFrame, contract: Contract, column: str, log: bool, low: float, high: float) -> dict:
    part = part.reset_index(drop=True)
    index = _index(part, contract)
    v = part[column].to_numpy(dtype=float, na_value=np.nan)
    usable = np.isfinite(v) & ((v > 0) if log else True)
    x = np.full(v.size, np.nan)
    x[usable] = np.log(v[usable]) if log else v[usable]
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(usable & ((x < low) | (x > high)))
    return {"count": int(rows.size), "examples": [k for _, k in _ranked_examples(index, rows)]}


def _hash_text(values: pd.Series) -> np.ndarray:
    from impactkit.contracts.panel_rules import _normal_series

    uniques = pd.Series(values.dropna().astype("string").unique(), dtype="string")
    normal = _normal_series(uniques)
    return np.unique(pd.util.hash_array(normal.to_numpy(dtype=object)))


def _personal_hashes(part: pd.DataFrame, columns: list[str]) -> np.ndarray:
    hashes = [_hash_text(part[c]) for c in columns]
    return np.unique(np.concatenate(hashes)) if hashes else np.array([], dtype=np.uint64)


def _leak_rows(part: pd.DataFrame, contract: Contract, column: str, personal_hashes: np.ndarray) -> dict:
    """The pandas engine's personal-leak rule with n-grams looked up among hashed personal values."""
    import re as regex

    from impactkit.contracts.panel_rules import _ngrams

    part = part.reset_index(drop=True)
    index = _index(part, contract)
    values = part[column].astype("string").fillna("")
    distinct = [str(v) for v in values.unique().tolist() if v != ""]
    compiled = {label: regex.compile(p) for label, p in contract.panel.leak_patterns.items()}
    flagged: dict[str, str] = {}
    for item in distinct:
        label = next((name for name, pattern in compiled.items() if pattern.search(item)), None)
        if label is not None:
            flagged[item] = f"pattern {label}"
            continue
        grams = [g for g in _ngrams(item) if len(g) >= 3]
        if grams and np.isin(pd.util.hash_array(np.array(grams, dtype=object)), personal_hashes).any():
            flagged[item] = "a personal-column value"
    if not flagged:
        return {"count": 0, "kinds": {}, "examples": []}
    hit = values.where(values.isin(list(flagged)))
    rows = np.flatnonzero(hit.notna().to_numpy())
    kinds = hit.iloc[rows].map(flagged).value_counts().to_dict()
    return {"count": int(rows.size), "kinds": {str(k): int(v) for k, v in kinds.items()},
            "examples": [k for _, k in _ranked_examples(index, rows)]}


# ----------------------------------------------------------------------------------- merging
_LEADING = re.compile(r"^(\d+)")
_UNITS_ROWS = re.compile(r"^(\d+) unit\(s\) \((\d+) rows\)")


def _merge_message(messages: list[str], total: int) -> str:
    """The pandas engine's message for the merged counts (counts lead every local-rule message)."""
    failing = [m for m in messages if m]
    if not failing:
        return ""
    first = failing[0]
    pair = [_UNITS_ROWS.match(m) for m in failing]
    if all(pair):
        units = sum(int(m.group(1)) for m in pair)
        return _UNITS_ROWS.sub(f"{units} unit(s) ({total} rows)", first, count=1)
    return _LEADING.sub(str(total), first, count=1)


def _merge_local(per_part: list[list[RuleOutcome]], n_rows: int) -> list[RuleOutcome]:
    merged = []
    for position, head in enumerate(per_part[0]):
        same = [outs[position] for outs in per_part]
        if any((o.rule, o.column) != (head.rule, head.column) for o in same):
            raise RuntimeError("partitions ran different rules (column types differ between partition files?)")
        count = sum(o.failed_rows for o in same)
        examples = [k for o in same for k in o.examples][:MAX_EXAMPLES]
        success = all(o.success for o in same)
        if head.rule == "column_exists" or head.rule == "type":
            share = 1.0 if not success else 0.0
            count = n_rows if not success else 0
        else:
            share = count / n_rows if n_rows else 0.0
        merged.append(RuleOutcome(head.rule, head.column, head.engine, success, count, share, examples,
                                  "" if success else _merge_message([o.message for o in same], count)))
    return merged


def _attrition_outcome(locals_: list[dict], contract: Contract, n_rows: int) -> tuple[RuleOutcome, pd.DataFrame]:
    panel = contract.panel
    tables = [d["attrition"] for d in locals_]
    table = tables[0].copy()
    for col in ("n_previous", "n_lost"):
        table[col] = sum(t[col].to_numpy() for t in tables)
    table["share_lost"] = np.where(table["n_previous"] > 0, table["n_lost"] / table["n_previous"].where(
        table["n_previous"] > 0, 1), 0.0)
    max_share = panel.thresholds.attrition_max_share
    failing = table.loc[table["share_lost"] > max_share]
    if failing.empty:
        return RuleOutcome("attrition", panel.unit_key, ENGINE_IMPACTKIT, True, 0, 0.0, [], ""), table
    cells = "; ".join(f"{r.arm} {r.wave}: {r.n_lost}/{r.n_previous} ({r.share_lost:.1%})" for r in failing.itertuples())
    examples: list = []
    for cell in failing.itertuples():
        for d in locals_:
            examples += d["lost"].get((cell.arm, int(cell.wave)), [])[: MAX_EXAMPLES - len(examples)]
            if len(examples) >= MAX_EXAMPLES:
                break
        if len(examples) >= MAX_EXAMPLES:
            break
    n_lost = int(failing["n_lost"].sum())
    return (RuleOutcome("attrition", panel.unit_key, ENGINE_IMPACTKIT, False, n_lost, n_lost / n_rows, examples,
                        f"attrition above {max_share:.0%} of the previous wave in {cells}"), table)


def _missing_outcome(parts, contract: Contract, column: str, max_share: float, n_rows: int) -> RuleOutcome:
    waves = contract.panel.waves
    per = map_blocks(_missing_counts, parts, contract, column)
    rows_per_wave = add([p["rows"] for p in per])
    missing = add([p["missing"] for p in per])
    observed = rows_per_wave > 0
    table = pd.Series(missing[observed] / rows_per_wave[observed], index=np.asarray(waves)[observed])
    failing = table.loc[table > max_share]
    if failing.empty:
        return RuleOutcome("missing_per_wave", column, ENGINE_IMPACTKIT, True, 0, 0.0, [], "")
    bad = [int(w) for w in failing.index]
    count = int(sum(missing[waves.index(w)] for w in bad))
    examples = []
    for p in per:   # partition order; inside a partition, (unit, wave) order across the failing waves
        ranked = sorted((r, k) for w in bad for r, k in p["examples"][w])
        examples += [k for _, k in ranked][: MAX_EXAMPLES - len(examples)]
    cells = ", ".join(f"{w}: {s:.1%}" for w, s in failing.items())
    return RuleOutcome("missing_per_wave", column, ENGINE_IMPACTKIT, False, count, count / n_rows,
                       examples[:MAX_EXAMPLES], f"'{column}' missing above {max_share:.0%} in wave(s) {cells}")


def _outlier_outcome(parts, contract: Contract, column: str, rule, n_rows: int) -> RuleOutcome:
    from dask import delayed

    log = bool(rule.log)
    # the column's usable values stay on the workers (8 bytes a row, spread over them) for the passes
    blocks = persist([delayed(_outlier_values, pure=True)(p, column, log) for p in parts])
    n = select.count(blocks, select.as_values, ())
    if n == 0:
        return RuleOutcome("outlier", column, ENGINE_IMPACTKIT, True, 0, 0.0, [], "")
    low, high, what = outlier_fences(rule, lambda probs: select.quantile(blocks, select.as_values, (), probs, n),
                                     lambda: select.median(blocks, select.as_values, (), n),
                                     lambda centre: select.median(blocks, _deviations, (centre,), n))
    del blocks
    per = map_blocks(_outlier_rows, parts, contract, column, bool(rule.log), float(low), float(high))
    count = sum(p["count"] for p in per)
    examples = [k for p in per for k in p["examples"]][:MAX_EXAMPLES]
    return RuleOutcome("outlier", column, ENGINE_IMPACTKIT, count == 0, count, count / n_rows, examples,
                       f"{count} value(s) of '{column}' {what}" if count else "")


def _leak_outcome(parts, contract: Contract, column: str, personal: list[str], n_rows: int) -> RuleOutcome:
    hashes = np.unique(np.concatenate(map_blocks(_personal_hashes, parts, personal) or [np.array([], np.uint64)]))
    per = map_blocks(_leak_rows, parts, contract, column, hashes)
    count = sum(p["count"] for p in per)
    if count == 0:
        return RuleOutcome("personal_leak", column, ENGINE_IMPACTKIT, True, 0, 0.0, [], "")
    kinds: dict[str, int] = {}
    for p in per:
        for k, v in p["kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    detail = ", ".join(f"{k}: {kinds[k]}" for k in sorted(kinds))
    examples = [k for p in per for k in p["examples"]][:MAX_EXAMPLES]
    return RuleOutcome("personal_leak", column, ENGINE_IMPACTKIT, False, count, count / n_rows, examples,
                       f"{count} row(s) of '{column}' contain personal data ({detail})")


def validate(frame, contract: Contract | str, *, source: str = "<dask frame>") -> ValidationReport:
    """Validate a dask DataFrame against a data contract; the report equals
    :func:`impactkit.contracts.validate` on the same rows (see the module docstring)."""
    from impactkit.contracts import load_contract
    from impactkit.contracts.model import reference_problems
    from impactkit.distributed.data import by_unit
    from impactkit.errors import ContractError

    spec = contract if isinstance(contract, Contract) else load_contract(contract)
    problems = reference_problems(spec)
    if problems:
        raise ContractError(f"contract {spec.id}: field '{'.'.join(map(str, problems[0][0]))}': {problems[0][1]}")
    panel = spec.panel
    frame = by_unit(frame, panel.unit_key)
    parts = partitions(frame)
    locals_ = map_blocks(_local_rules, parts, spec)
    n_rows = sum(d["n_rows"] for d in locals_)
    usable = set.intersection(*[set(d["usable"]) for d in locals_])
    local = _merge_local([[o for o in d["outcomes"] if o.rule not in GLOBAL_RULES] for d in locals_], n_rows)
    attrition_table = pd.DataFrame()
    extra: dict[tuple[str, str], RuleOutcome] = {}
    order = [(o.rule, o.column) for o in locals_[0]["outcomes"]]
    if ("attrition", panel.unit_key) in order:
        extra[("attrition", panel.unit_key)], attrition_table = _attrition_outcome(locals_, spec, n_rows)
    for column, share in panel.thresholds.missing_max_share.items():
        if ("missing_per_wave", column) in order:
            extra[("missing_per_wave", column)] = _missing_outcome(parts, spec, column, share, n_rows)
    for column, rule in panel.thresholds.outliers.items():
        if ("outlier", column) in order:
            extra[("outlier", column)] = _outlier_outcome(parts, spec, column, rule, n_rows)
    personal = [c for c in spec.personal_columns if c in frame.columns]
    for column in panel.free_text:
        if ("personal_leak", column) in order:
            extra[("personal_leak", column)] = _leak_outcome(parts, spec, column, personal, n_rows)
    by_key = {(o.rule, o.column): o for o in local}
    outcomes = [extra.get(key) or by_key[key] for key in order]
    skipped = list(dict.fromkeys(s for d in locals_ for s in d["skipped"]))
    del usable
    return ValidationReport(results=outcomes_frame(outcomes), contract_id=spec.id, contract_version=spec.version,
                            source=source, n_rows=n_rows, n_units=sum(d["n_units"] for d in locals_),
                            attrition=attrition_table, skipped=skipped)
