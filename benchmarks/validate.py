"""Benchmark: validate a 1,000,000-row panel with the full Peru contract.

Builds a panel of 250,000 households x 4 waves (2008-2011) with the Peru TAP schema by
resampling complete households of the simulated panel (seeded); the contract is the full
Peru contract with its declared waves cut to those four. Then times, in one
process and on the same frame:

1. ``impactkit.contracts.validate`` with the full contract (GX column rules + panel rules);
2. the GX column rules alone (``run_column_rules``) and the panel rules alone;
3. pandera (``pandera.pandas.DataFrameSchema`` with the same column rules);
4. a hand-written pandas pass of the same column rules;

and prints the best and the median time of each over interleaved rounds (``--repeat``,
default 7), the ratios of both, plus peak resident memory during ``validate`` (psutil RSS sampled
every 5 ms, minus the RSS before the call) relative to the frame's deep size.

Run: ``.venv/bin/python benchmarks/validate.py`` (``--units N`` for another size).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from impactkit.contracts import parse_contract, validate
from impactkit.contracts.gx_suite import compile_rules, run_column_rules
from impactkit.contracts.model import Contract
from impactkit.contracts.panel_rules import PanelIndex, run_panel_rules
from impactkit.datasets.peru_tap import simulate_peru_tap
from impactkit.seeds import rng

WAVES = (2008, 2009, 2010, 2011)


def make_large_panel(n_units: int = 250_000, seed: int = 1) -> pd.DataFrame:
    """``n_units`` x 4 waves, resampled from complete Peru TAP households, sorted by unit and wave."""
    base = simulate_peru_tap()
    base = base.loc[base["wave"].isin(WAVES)]
    complete = base.groupby("household_id")["wave"].transform("size") == len(WAVES)
    base = base.loc[complete].sort_values(["household_id", "wave"]).reset_index(drop=True)
    n_base = len(base) // len(WAVES)
    pick = rng(seed, "benchmark-validate").integers(0, n_base, n_units)
    rows = (pick[:, None] * len(WAVES) + np.arange(len(WAVES))[None, :]).ravel()
    frame = base.iloc[rows].reset_index(drop=True)
    frame["household_id"] = pd.array(np.char.add("PE-", np.char.zfill(
        np.repeat(np.arange(1, n_units + 1), len(WAVES)).astype(str), 6)), dtype="str")
    return frame


def pandera_schema(contract: Contract):
    """A pandera schema with the contract's column rules (types, nulls, ranges, sets, patterns, key)."""
    import pandera.pandas as pa

    dtypes = {"integer": "int64", "number": "float64", "string": str}
    columns = {}
    for prop in contract.table.properties:
        checks = []
        opts = prop.logicalTypeOptions
        if opts is not None:
            if opts.minimum is not None:
                checks.append(pa.Check.ge(opts.minimum))
            if opts.exclusiveMinimum is not None:
                checks.append(pa.Check.gt(opts.exclusiveMinimum))
            if opts.maximum is not None:
                checks.append(pa.Check.le(opts.maximum))
            if opts.pattern is not None:
                checks.append(pa.Check.str_matches(opts.pattern))
        for quality in prop.quality:
            checks.append(pa.Check.isin(quality.validValues))
        columns[prop.name] = pa.Column(dtypes[prop.logicalType], checks=checks, nullable=not prop.required)
    keys = [p.name for p in sorted(contract.table.properties, key=lambda p: p.primaryKeyPosition) if p.primaryKey]
    return pa.DataFrameSchema(columns, unique=keys)


def pandas_pass(frame: pd.DataFrame, contract: Contract) -> dict[str, int]:
    """The same column rules, hand-written in pandas: failing-row counts by rule."""
    failures: dict[str, int] = {}
    families = {"integer": pd.api.types.is_integer_dtype, "number": pd.api.types.is_numeric_dtype,
                "string": pd.api.types.is_string_dtype}
    for prop in contract.table.properties:
        column = frame[prop.name]
        failures[f"type:{prop.name}"] = int(not families[prop.logicalType](column.dtype))
        if prop.required:
            failures[f"not_null:{prop.name}"] = int(column.isna().sum())
        opts = prop.logicalTypeOptions
        if opts is not None:
            bad = pd.Series(False, index=column.index)
            if opts.minimum is not None:
                bad |= column < opts.minimum
            if opts.exclusiveMinimum is not None:
                bad |= column <= opts.exclusiveMinimum
            if opts.maximum is not None:
                bad |= column > opts.maximum
            failures[f"range:{prop.name}"] = int(bad.sum())
            if opts.pattern is not None:
                failures[f"pattern:{prop.name}"] = int((~column.str.fullmatch(opts.pattern).fillna(True)).sum())
        for quality in prop.quality:
            failures[f"allowed:{prop.name}"] = int((~column.isin(quality.validValues) & column.notna()).sum())
    failures["primary_key"] = int(frame.duplicated(["household_id", "wave"]).sum())
    return failures


def round_times(tasks: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Wall times of each task over ``repeat`` rounds; rounds interleave the tasks so that
    load from other processes on a shared machine hits every contender alike."""
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(repeat):
        for name, work in tasks.items():
            gc.collect()
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return times


def peak_rss_during(work: Callable[[], object]) -> tuple[int, int]:
    """(RSS before, peak RSS while ``work`` runs), sampled every 5 ms."""
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        work()
    finally:
        done.set()
        thread.join()
    return before, max(peak, process.memory_info().rss)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    # the full Peru contract, with its declared waves cut to the four waves of the benchmark panel
    text = (Path(__file__).resolve().parents[1] / "data_contracts" / "peru_tap.yaml").read_text(encoding="utf-8")
    contract = parse_contract(text.replace("waves: [2008, 2009, 2010, 2011, 2012, 2013]",
                                           "waves: [2008, 2009, 2010, 2011]"), "peru_tap.yaml (4 waves)")
    frame = make_large_panel(args.units)
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    print(f"panel: {len(frame):,} rows x {frame.shape[1]} columns, {frame_bytes / 2**20:.0f} MiB in memory")

    # memory first, before any other pass over the big frame has grown the allocator's pools:
    # warm up imports and GX's registry on a small panel, then sample RSS during validate
    validate(make_large_panel(1_000), contract, progress=False)
    before, peak = peak_rss_during(lambda: validate(frame, contract, progress=False))
    report = validate(frame, contract, progress=False)
    assert report.ok, report.summary()
    schema = pandera_schema(contract)
    schema.validate(frame, lazy=True)
    assert sum(pandas_pass(frame, contract).values()) == 0

    keys = frame[["household_id", "wave"]]
    times = round_times({
        "full": lambda: validate(frame, contract, progress=False),
        "gx": lambda: run_column_rules(frame, contract, keys),
        "panel": lambda: run_panel_rules(frame, contract, set(frame.columns),
                                         PanelIndex.build(frame["household_id"], frame["wave"])),
        "pandera": lambda: schema.validate(frame, lazy=True),
        "pandas": lambda: pandas_pass(frame, contract),
    }, args.repeat)
    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}

    n_gx = int((report.results["engine"] == "great_expectations").sum())
    n_ik = int((report.results["engine"] == "impactkit").sum())
    n_expectations = len(compile_rules(contract))
    print(f"rule results: {n_gx} from great-expectations ({n_expectations} expectations), {n_ik} from impactkit; "
          f"{args.repeat} interleaved rounds")
    rows = (("impactkit validate (full contract)", "full"), ("  GX column rules alone", "gx"),
            ("  impactkit panel rules alone", "panel"), ("pandera (column rules)", "pandera"),
            ("hand-written pandas (column rules)", "pandas"))
    print(f"{'seconds':35s}: {'best':>7s} {'median':>7s}")
    for label, key in rows:
        print(f"{label:35s}: {best[key]:7.2f} {median[key]:7.2f}")
    per_round = statistics.median(f / p for f, p in zip(times["full"], times["pandera"]))
    for label, num, den in (("ratio full / pandera", "full", "pandera"), ("ratio GX column rules / pandera", "gx", "pandera"),
                            ("ratio full / pandas pass", "full", "pandas")):
        target = "  (target <= 2, judged on the median)" if num == "full" and den == "pandera" else ""
        print(f"{label:35s}: {best[num] / best[den]:7.2f} {median[num] / median[den]:7.2f}{target}")
    print(f"{'  median of per-round full / pandera':35s}: {per_round:15.2f}")
    extra = peak - before
    print(f"peak memory of validate: frame + {extra / 2**20:.0f} MiB working memory = "
          f"{(frame_bytes + extra) / frame_bytes:.2f}x the frame ({frame_bytes / 2**20:.0f} MiB) (target < 3x)")
    print(f"  (psutil RSS: {before / 2**20:.0f} MiB before the call, {peak / 2**20:.0f} MiB peak; the process also "
          "holds the interpreter, GX, pandera and the source panel)")


if __name__ == "__main__":
    main()
