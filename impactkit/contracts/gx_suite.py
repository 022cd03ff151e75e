"""Compile a contract's column rules to a great-expectations 1.x suite and run it.

great-expectations (GX) is the engine of record for the column rules: presence of the
declared columns (one combined ``ExpectTableColumnsToMatchSet``), nullability, ranges,
allowed sets, patterns, lengths, uniqueness and the compound primary key. The suite is
plain GX (:func:`build_suite`; ``suite.to_json_dict()`` exports it, and each expectation's
``meta`` names the impactkit rule it reports under) and runs on the pandas engine in an
ephemeral context.

How a run stays fast on a 1M-row panel (measured in ``benchmarks/validate.py``):

- the expectations run through GX's ``PandasExecutionEngine`` and one
  ``Validator.graph_validate`` per pass, without the fluent data-source layer (which
  loads each batch twice and fingerprints the frame), see :func:`_run_suite`;
- large frames give GX one batch per column (GX copies every column of a batch per
  expectation when it drops empty cells);
- each expectation's configuration is built once per run instead of ~75 times, see
  :func:`_configurations_built_once`;
- every rule runs with ``result_format="BOOLEAN_ONLY"``, the ``pattern`` and ``length``
  rules on the distinct values of their column; only failing rules run again, on every
  row, with ``"SUMMARY"`` to count failing rows and take five example row indices
  (impactkit maps them to ``(unit, wave)`` keys and never copies GX's unexpected
  *values*, which may be personal data).

The ``type`` rule is the one column rule impactkit checks itself (``engine ==
"impactkit"``): GX 1.24's ``ExpectColumnValuesToBeInTypeList`` compares numpy dtypes and
does not recognise pandas 3 extension dtypes (the default ``str``, nullable ``Int64``,
``category`` from Stata value labels), so it would fail every text column.
:func:`dtype_matches` checks the dtype family with ``pandas.api.types``. Value rules of a
column that is missing or of the wrong type are skipped (listed in ``report.skipped``), so
a text column declared numeric fails its ``type`` rule once.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
import sys
from dataclasses import dataclass
from typing import Any

import pandas as pd

from impactkit.contracts.model import Contract, LogicalTypeOptions, SchemaProperty
from impactkit.contracts.quiet import ephemeral_context, import_gx, silenced
from impactkit.contracts.report import ENGINE_GX, ENGINE_IMPACTKIT, MAX_EXAMPLES, RuleOutcome

DISTINCT_VALUE_RULES = ("pattern", "length")
PER_COLUMN_BATCH_ROWS = 100_000
FINITE = sys.float_info.max  # the range rule of a numeric column without bounds: finite values only


def dtype_matches(series: pd.Series, logical_type: str) -> bool:
    """Whether a column's dtype belongs to the contract's logical type family."""
    types = pd.api.types
    dtype = series.dtype
    if logical_type == "integer":
        return types.is_integer_dtype(dtype) and not types.is_bool_dtype(dtype)
    if logical_type == "number":
        return types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype)
    if logical_type == "boolean":
        return types.is_bool_dtype(dtype)
    if logical_type == "date":
        return types.is_datetime64_any_dtype(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return types.is_string_dtype(dtype.categories) or types.is_object_dtype(dtype.categories)
    if types.is_object_dtype(dtype):
        return bool(series.dropna().map(type).eq(str).all())
    return types.is_string_dtype(dtype)


@dataclass(frozen=True)
class CompiledRule:
    """One expectation with the rule name and column(s) it reports under."""

    rule: str
    columns: tuple[str, ...]
    expectation: Any

    @property
    def column(self) -> str:
        return "+".join(self.columns)


def _column_rules(prop: SchemaProperty, gx: Any) -> list[CompiledRule]:
    E = gx.expectations
    name = prop.name
    meta = lambda rule: {"impactkit_rule": rule, "impactkit_column": name}  # noqa: E731
    rules: list[CompiledRule] = []
    if prop.required:
        rules.append(CompiledRule("not_null", (name,), E.ExpectColumnValuesToNotBeNull(column=name, meta=meta("not_null"))))
    opts = prop.logicalTypeOptions
    if opts is None and prop.logicalType in ("integer", "number"):
        opts = LogicalTypeOptions()
    if opts is not None:
        low = opts.exclusiveMinimum if opts.exclusiveMinimum is not None else opts.minimum
        high = opts.exclusiveMaximum if opts.exclusiveMaximum is not None else opts.maximum
        if prop.logicalType in ("integer", "number"):  # +-inf are not numbers: every numeric column is finite
            low = -FINITE if low is None else low
            high = FINITE if high is None else high
        if low is not None or high is not None:
            rules.append(CompiledRule("range", (name,), E.ExpectColumnValuesToBeBetween(
                column=name, min_value=low, max_value=high,
                strict_min=opts.exclusiveMinimum is not None, strict_max=opts.exclusiveMaximum is not None,
                meta=meta("range"))))
        if opts.pattern is not None:
            rules.append(CompiledRule("pattern", (name,), E.ExpectColumnValuesToMatchRegex(
                column=name, regex=opts.pattern, meta=meta("pattern"))))
        if opts.minLength is not None or opts.maxLength is not None:
            rules.append(CompiledRule("length", (name,), E.ExpectColumnValueLengthsToBeBetween(
                column=name, min_value=opts.minLength, max_value=opts.maxLength, meta=meta("length"))))
    for quality in prop.quality:
        if quality.rule == "validValues":
            rules.append(CompiledRule("allowed_values", (name,), E.ExpectColumnValuesToBeInSet(
                column=name, value_set=list(quality.validValues), meta=meta("allowed_values"))))
    if prop.unique:
        rules.append(CompiledRule("unique", (name,), E.ExpectColumnValuesToBeUnique(column=name, meta=meta("unique"))))
    return rules


def compile_rules(contract: Contract) -> list[CompiledRule]:
    """Every GX rule of the contract: columns present, then each column's rules, primary key last."""
    gx = import_gx()
    names = tuple(p.name for p in contract.table.properties)
    with silenced():
        # one combined expectation for the presence of every declared column (extra columns allowed)
        rules: list[CompiledRule] = [CompiledRule("column_exists", names, gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=list(names), exact_match=False,
            meta={"impactkit_rule": "column_exists", "impactkit_column": "+".join(names)}))]
        for prop in contract.table.properties:
            rules.extend(_column_rules(prop, gx))
        keys = sorted((p for p in contract.table.properties if p.primaryKey), key=lambda p: p.primaryKeyPosition)
        if keys:
            names = tuple(p.name for p in keys)
            expectation = (gx.expectations.ExpectCompoundColumnsToBeUnique(
                column_list=list(names), meta={"impactkit_rule": "primary_key_unique", "impactkit_column": "+".join(names)})
                if len(names) > 1 else gx.expectations.ExpectColumnValuesToBeUnique(
                column=names[0], meta={"impactkit_rule": "primary_key_unique", "impactkit_column": names[0]}))
            rules.append(CompiledRule("primary_key_unique", names, expectation))
    return rules


def build_suite(contract: Contract, rules: list[CompiledRule] | None = None) -> Any:
    """A great-expectations ``ExpectationSuite`` holding the contract's column rules."""
    gx = import_gx()
    ephemeral_context()  # GX 1.x suites need an active context to accept expectations
    with silenced():
        suite = gx.ExpectationSuite(name=f"{contract.id}-{contract.version}")
        for rule in rules if rules is not None else compile_rules(contract):
            suite.add_expectation(rule.expectation)
    return suite


def suite_json(contract: Contract) -> dict[str, Any]:
    """The suite as GX's JSON dictionary (``ExpectationSuite.to_json_dict``)."""
    return build_suite(contract).to_json_dict()


@functools.lru_cache(maxsize=1)
def _run_context() -> Any:
    """The in-memory GX context validations run under, built once per process (a few
    milliseconds each). Its ``progress_bars`` setting is off, so GX draws no tqdm bar."""
    return ephemeral_context()


_MEMO_LOCK = threading.Lock()
_memo_depth = 0
_memo_saved: Any = None


@contextlib.contextmanager
def _configurations_built_once() -> Iterator[None]:
    """Build each expectation's ``ExpectationConfiguration`` once per run.

    GX 1.24's ``Expectation.configuration`` is a property that rebuilds the configuration
    (``pydantic.BaseModel.dict()`` of the expectation, then ``camel_to_snake`` of its class
    name) on every access, and ``Validator.graph_validate`` reads it about 75 times per
    expectation (once per domain, success and runtime key): 30-40 ms, about a tenth of the
    GX column rules on the 1M-row benchmark panel. The expectations a run builds are not
    modified during it, so for the duration of the run the property returns the
    configuration built at its first access for the same object (rebuilt if one of the
    object's fields was reassigned). The original property is restored afterwards (nested
    or concurrent runs share one patch, counted under a lock).
    """
    global _memo_depth, _memo_saved
    from great_expectations.expectations.expectation import Expectation

    with _MEMO_LOCK:
        if _memo_depth == 0:
            original = Expectation.__dict__["configuration"]
            built: dict[int, tuple[Any, dict[str, Any], Any]] = {}

            def configuration(self: Any) -> Any:
                hit = built.get(id(self))
                # the entry keeps the object (its id cannot be reused meanwhile) and its fields:
                # an expectation whose fields were reassigned gets a fresh configuration
                if hit is None or hit[0] is not self or hit[1] != self.__dict__:
                    hit = built[id(self)] = (self, dict(self.__dict__), original.fget(self))
                return hit[2]

            _memo_saved = original
            Expectation.configuration = property(configuration, doc=original.__doc__)
        _memo_depth += 1
    try:
        yield
    finally:
        with _MEMO_LOCK:
            _memo_depth -= 1
            if _memo_depth == 0:
                Expectation.configuration = _memo_saved
                _memo_saved = None


def distinct_values(series: pd.Series) -> pd.DataFrame:
    """A one-column frame of the distinct values of ``series`` (its dtype kept, empty cells included)."""
    return pd.DataFrame({series.name: pd.Series(series.unique(), name=series.name)})


def _run_suite(frame: pd.DataFrame, rules: list[CompiledRule], result_format: str | dict,
               on_distinct_values: tuple[str, ...] = ()) -> dict[tuple[str, str], Any]:
    """Validate ``frame`` with ``rules`` in one GX validation graph; GX results keyed by (rule, column).

    The rules run through GX's own machinery -- ``PandasExecutionEngine``, the metric graph
    of ``Validator.graph_validate`` and each expectation's ``_validate`` -- but without the
    fluent data-source layer around it, whose costs are not validation: each
    ``Batch.validate`` loads its batch twice (once for the ``Batch``, once for the
    ``Validator`` it builds), fingerprints the frame (an MD5 over
    ``pandas.util.hash_pandas_object``), and an ``ExpectationSuite`` compares each added
    expectation with every one already in it. Here the batches are loaded straight into one
    execution engine under impactkit batch ids, every expectation configuration names its
    batch (GX's ``batch_id`` domain key), and one ``graph_validate`` resolves all metrics.

    GX's pandas column-condition metrics drop the rows where the column is empty with
    ``df[df[column].notnull()]`` -- a copy of *every* column of the batch, per expectation
    (about 90 ms per expectation on the 1M-row, 22-column benchmark panel). From
    ``PER_COLUMN_BATCH_ROWS`` rows on, rules therefore run on one batch per column set
    (``frame[[column]]``, a copy-on-write view); below it, on one batch of the whole frame.
    The ``column_exists`` rule always runs on the whole frame. Rules named in
    ``on_distinct_values`` run on a batch of the distinct values of their column (see
    :func:`run_column_rules`).
    """
    if not rules:
        return {}
    import_gx()
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.validator.validator import Validator

    per_column = len(frame) >= PER_COLUMN_BATCH_ROWS
    groups: dict[tuple[str, ...], list[CompiledRule]] = {}
    for rule in rules:
        if rule.rule in on_distinct_values:
            group: tuple[str, ...] = ("distinct", *rule.columns)
        elif per_column and rule.rule != "column_exists":
            group = ("columns", *rule.columns)
        else:
            group = ("frame",)
        groups.setdefault(group, []).append(rule)
    out: dict[tuple[str, str], Any] = {}
    with silenced(), _configurations_built_once():
        engine = PandasExecutionEngine()
        configurations = []
        for number, ((kind, *columns), group) in enumerate(groups.items()):
            batch_id = f"impactkit-batch-{number}"
            if kind == "distinct":
                data = distinct_values(frame[columns[0]])
            else:
                data = frame[columns] if kind == "columns" else frame
            engine.load_batch_data(batch_id, data)
            for rule in group:
                configuration = rule.expectation.configuration
                configuration.kwargs["batch_id"] = batch_id
                configurations.append(configuration)
        validator = Validator(execution_engine=engine, data_context=_run_context())
        results = validator.graph_validate(configurations=configurations,
                                           runtime_configuration={"result_format": result_format})
        for item in results:
            meta = item.expectation_config.meta or {}
            out[(meta["impactkit_rule"], meta["impactkit_column"])] = item
    return out


def _outcome(rule: CompiledRule, gx_result: Any, keys: pd.DataFrame, n_rows: int) -> RuleOutcome:
    info = gx_result.result or {}
    raised = bool((gx_result.exception_info or {}).get("raised_exception"))
    if raised:
        return RuleOutcome(rule.rule, rule.column, ENGINE_GX, False, n_rows, 1.0, [],
                           f"great-expectations could not evaluate {rule.rule} on '{rule.column}'")
    success = bool(gx_result.success)
    count = int(info.get("unexpected_count") or 0)
    index = list(info.get("partial_unexpected_index_list") or [])[:MAX_EXAMPLES]
    examples = [tuple(row) for row in keys.iloc[[int(i) for i in index]].itertuples(index=False)] if index else []
    message = "" if success else f"{count} row(s) of '{rule.column}' {_failure_text(rule)}"
    return RuleOutcome(rule.rule, rule.column, ENGINE_GX, success, count, count / n_rows if n_rows else 0.0,
                       examples, message)


def _exists_outcomes(rule: CompiledRule, gx_result: Any, n_rows: int) -> list[RuleOutcome]:
    """One ``column_exists`` outcome per declared column, from GX's list of missing columns."""
    raised = bool((gx_result.exception_info or {}).get("raised_exception"))
    missing = set(((gx_result.result or {}).get("details") or {}).get("mismatched", {}).get("missing") or [])
    if raised or (not gx_result.success and not missing):  # pragma: no cover - defensive
        raise RuntimeError("great-expectations did not report which columns are missing")
    return [RuleOutcome("column_exists", name, ENGINE_GX, name not in missing, n_rows if name in missing else 0,
                        1.0 if name in missing else 0.0, [],
                        f"column '{name}' is missing" if name in missing else "") for name in rule.columns]


def _failure_text(rule: CompiledRule) -> str:
    """What a failing row of ``rule`` breaks, in words (never a data value)."""
    e = rule.expectation
    if rule.rule == "range":
        low = "(" if getattr(e, "strict_min", False) else "["
        high = ")" if getattr(e, "strict_max", False) else "]"
        lo = "-inf" if e.min_value is None or e.min_value <= -FINITE else f"{e.min_value:g}"
        hi = "inf" if e.max_value is None or e.max_value >= FINITE else f"{e.max_value:g}"
        low = "(" if lo == "-inf" else low
        high = ")" if hi == "inf" else high
        return f"outside {low}{lo}, {hi}{high}"
    if rule.rule == "pattern":
        return f"do not match the pattern {e.regex}"
    if rule.rule == "allowed_values":
        return f"are not in the allowed set of {len(e.value_set)} values"
    if rule.rule == "not_null":
        return "are empty but the column is required"
    if rule.rule in ("primary_key_unique", "unique"):
        return "share their key with another row"
    if rule.rule == "length":
        return f"have a length outside [{e.min_value}, {e.max_value}]"
    return f"fail {rule.rule}"  # pragma: no cover - every compiled rule is listed above


def type_outcome(series: pd.Series, column: str, logical_type: str, n_rows: int) -> RuleOutcome:
    """The ``type`` rule (run by impactkit, see the module docstring)."""
    if dtype_matches(series, logical_type):
        return RuleOutcome("type", column, ENGINE_IMPACTKIT, True, 0, 0.0, [], "")
    return RuleOutcome("type", column, ENGINE_IMPACTKIT, False, n_rows, 1.0, [],
                       f"column '{column}' has dtype {series.dtype}, expected logical type {logical_type}")


def run_column_rules(frame: pd.DataFrame, contract: Contract,
                     keys: pd.DataFrame) -> tuple[list[RuleOutcome], set[str], list[str]]:
    """Run the column rules on ``frame`` (positional index). Return outcomes, usable columns, skipped notes.

    ``keys`` holds the unit and time key columns, positionally aligned with ``frame``.
    impactkit checks dtypes first (see :func:`dtype_matches`); GX then runs the
    ``column_exists`` rule and the value rules of the columns that exist with the right
    type, with ``result_format="BOOLEAN_ONLY"``. Only the rules that fail run a second
    time, on the whole column, with ``"SUMMARY"`` to count failing rows and take example
    row indices.

    In the first run the rules of :data:`DISTINCT_VALUE_RULES` (``pattern``, ``length``)
    see the distinct values of their column instead of every row: whether a rule passes
    depends only on which values occur (none of the rules has a ``mostly``), and survey
    identifiers repeat across waves, so GX matches the regular expression against a
    quarter of the rows or fewer (a fifth of the time of the pattern rules on the
    benchmark panel, where pyarrow's regex dominates). A failing rule then runs on every
    row, so counts and example keys are those of the whole column.
    """
    n_rows = len(frame)
    present = set(frame.columns)
    outcomes: list[RuleOutcome] = []
    types = [type_outcome(frame[p.name], p.name, p.logicalType, n_rows)
             for p in contract.table.properties if p.name in present]
    usable = {o.column for o in types if o.success} | (present - set(contract.properties))
    rules = compile_rules(contract)  # fresh expectations: a run stores its batch ids in their configurations
    runnable = [r for r in rules if r.rule == "column_exists" or all(c in usable for c in r.columns)]
    skipped_rules = [r for r in rules if r not in runnable]
    skipped = [f"{r.rule} on '{r.column}': column missing or of the wrong type" for r in skipped_rules]
    first = _run_suite(frame, runnable, "BOOLEAN_ONLY", on_distinct_values=DISTINCT_VALUE_RULES)
    failed = {key for key, item in first.items() if not item.success}
    detail: dict[tuple[str, str], Any] = {}
    # the column-presence rule reads no rows: when it fails it runs again too, for GX's list of missing columns
    value_failures = [r for r in compile_rules(contract) if (r.rule, r.column) in failed and r.rule != "type"]
    if value_failures:
        detail = _run_suite(frame, value_failures, {"result_format": "SUMMARY",
                                                    "partial_unexpected_count": MAX_EXAMPLES})
    for rule in runnable:
        key = (rule.rule, rule.column)
        if rule.rule == "column_exists":
            outcomes.extend(_exists_outcomes(rule, detail.get(key, first[key]), n_rows))
            outcomes.extend(types)
        else:
            outcomes.append(_outcome(rule, detail.get(key, first[key]), keys, n_rows))
    return outcomes, usable, skipped
