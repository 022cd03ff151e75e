"""Scale study: TWFE, Callaway-Sant'Anna (and, optionally, Sun-Abraham and 2SLS) on 10M / 30M /
100M-row panels on a local Dask cluster.

A synthetic balanced panel (simulated: ``y = alpha_i + 0.1 t + tau_it D_it + e``, cohorts 4, 6, 8
and never treated, ``tau = 1 + 0.1 (t - g)``, 1,000 clusters nesting units, 10 periods; ``take``, a
take-up of 70% of the treated rows drawn from its own stream, is the endogenous regressor of the
2SLS row, with ``treated`` as its instrument) is written
as partitioned Parquet (one file per 1M rows, drawn chunk by chunk from
``impactkit.seeds.rng(seed, "scale-benchmark", chunk)``, so memory stays bounded while writing).
Each (engine, estimator, size) runs in its own subprocess; the parent samples the resident memory
of that process tree (client, scheduler and workers) every 0.2 s and reports the peak.

- ``dask``: impactkit's Dask engine on a LocalCluster of ``--workers`` single-threaded worker
  processes with ``--memory-limit`` each (well below the data size at 30M and 100M rows);
  TWFE with CRV1 by cluster; CS-DiD (dr, never-treated, clustered SEs, 999-draw multiplier
  bootstrap with the sup-t band);
- ``pandas``: the in-memory engine (read the whole Parquet dataset, then ``impactkit.did``),
  at the sizes in ``--pandas-sizes``;
- ``moderndid``: moderndid's Dask backend (``moderndid.dask.dask_att_gt``, dr, never-treated,
  analytic unclustered SEs: less work than ours) on the same files and cluster, at
  ``--moderndid-sizes``.

``--estimators`` picks the rows: ``twfe`` and ``cs`` (default), ``sa`` (Sun-Abraham, never-treated
control, CRV1 by cluster), ``iv`` (2SLS ``y ~ 1 + [take ~ treated]`` absorbing unit and year,
CRV1 by cluster, with every weak-instrument diagnostic) and ``ri`` (randomization inference of the
TWFE coefficient with ``--ri-draws`` re-assignments of ``cohort_cl``, a cohort drawn per cluster,
across the 1,000 clusters: the pandas engine refits TWFE per re-assignment, the Dask engine uses
per-cluster sums, :mod:`impactkit.distributed.ri`; a timing study, the effect in ``y`` follows the
unit cohort), on both engines.

    .venv/bin/python benchmarks/scale.py --sizes 10M,30M,100M --pandas-sizes 1M,10M \
        --moderndid-sizes 1M,10M,30M --workers 2 --memory-limit 2.5GiB --data /tmp/impactkit-scale

Prints one table (seconds, peak GB, ratio dask / pandas and dask / moderndid) and writes it as
JSON next to the data. Timings depend on the machine's load: note it (``uptime``) beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

PERIODS = 10
CLUSTERS = 1000
ROWS_PER_FILE = 1_000_000
RI_DRAWS = 999


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if text[-1] in "KM" else text) * scale)


def label(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}K"


def write_panel(rows: int, root: Path, seed: int = 15) -> Path:
    """Write the synthetic panel as ``root/<size>/part-xxxxx.parquet`` (skipped when complete)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from impactkit.seeds import rng

    folder = root / label(rows)
    done = folder / "_COMPLETE"
    if done.exists() and done.read_text() == "ok v3\n":     # v2: the take-up column; v3: cohort_cl
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    units_per_file = ROWS_PER_FILE // PERIODS
    cohort_of_cluster = rng(seed, "scale-benchmark-cluster-cohort").choice(np.array([0, 4, 6, 8]), CLUSTERS)
    n_units = rows // PERIODS
    for chunk, start in enumerate(range(0, n_units, units_per_file)):
        gen = rng(seed, "scale-benchmark", f"chunk-{chunk}")
        units = np.arange(start, min(start + units_per_file, n_units), dtype=np.int64)
        cohort_unit = gen.choice(np.array([0, 4, 6, 8]), units.size)
        unit = np.repeat(units, PERIODS)
        year = np.tile(np.arange(1, PERIODS + 1, dtype=np.int64), units.size)
        cohort = np.repeat(cohort_unit, PERIODS)
        treated = ((cohort > 0) & (year >= cohort)).astype(np.int64)
        effect = np.where(treated == 1, 1.0 + 0.1 * (year - cohort), 0.0)
        y = np.repeat(gen.normal(size=units.size), PERIODS) + 0.1 * year + effect + gen.normal(size=unit.size)
        take = treated * (rng(seed, "scale-benchmark-take", f"chunk-{chunk}").random(unit.size) < 0.7)
        table = pa.table({"unit": unit, "year": year, "cohort": cohort, "treated": treated, "y": y,
                          "cl": unit % CLUSTERS, "take": take.astype(np.int64),
                          "cohort_cl": cohort_of_cluster[unit % CLUSTERS]})
        pq.write_table(table, folder / f"part-{chunk:05d}.parquet", row_group_size=len(unit))
    done.write_text("ok v3\n")
    return folder


# ----------------------------------------------------------------------------------- one run
IV_FORMULA = "y ~ 1 + [take ~ treated]"


def _pandas_sa(frame) -> float:
    from impactkit.did import did

    return float(did(frame, method="sa", y="y", unit="unit", time="year", cohort="cohort", cluster="cl")
                 .att()["estimate"])


def _pandas_iv(frame) -> float:
    from impactkit.iv import iv

    return iv(frame, IV_FORMULA, absorb=["unit", "year"], cluster="cl").estimate("take")


def _dask_sa(ddf) -> float:
    from impactkit.distributed.sa import estimate_sa

    return float(estimate_sa(ddf, y="y", unit="unit", time="year", cohort="cohort", cluster="cl").att()["estimate"])


def _dask_iv(ddf) -> float:
    from impactkit.distributed.iv import estimate_iv

    return estimate_iv(ddf, IV_FORMULA, unit="unit", absorb=["unit", "year"], cluster="cl").estimate("take")


def _pandas_ri(frame) -> float:
    from impactkit.did import did

    res = did(frame, method="twfe", y="y", unit="unit", time="year", cohort="cohort_cl", cluster="cl")
    return res.randomization_inference(n_permutations=RI_DRAWS, seed=1).p_value


def _dask_ri(ddf) -> float:
    from impactkit.distributed.ri import twfe_randomization_inference

    return twfe_randomization_inference(ddf, y="y", unit="unit", time="year", cohort="cohort_cl", cluster="cl",
                                        n_permutations=RI_DRAWS, seed=1).p_value


PANDAS_EXTRA = {"sa": _pandas_sa, "iv": _pandas_iv, "ri": _pandas_ri}
DASK_EXTRA = {"sa": _dask_sa, "iv": _dask_iv, "ri": _dask_ri}


def run_one(engine: str, estimator: str, folder: Path, workers: int, memory_limit: str) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    start = time.perf_counter()
    if engine == "pandas":
        import pandas as pd

        from impactkit.did import did

        frame = pd.read_parquet(folder)
        if estimator in PANDAS_EXTRA:
            value = PANDAS_EXTRA[estimator](frame)
        elif estimator == "twfe":
            res = did(frame, method="twfe", y="y", unit="unit", time="year", treated="treated", cohort="cohort",
                      cluster="cl")
            value = float(res.estimate)
        else:
            res = did(frame, method="cs", y="y", unit="unit", time="year", cohort="cohort", est="dr",
                      cluster="cl", bootstrap=True, biters=999, seed=1)
            value = float(res.aggregate("simple").estimate)
        return {"seconds": time.perf_counter() - start, "estimate": value}
    from distributed import Client, LocalCluster

    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit, dashboard_address=None,
                      env=env) as cluster, Client(cluster) as client:
        start = time.perf_counter()
        from impactkit.distributed.data import read_panel

        ddf = read_panel(folder)
        if engine == "dask" and estimator in DASK_EXTRA:
            value = DASK_EXTRA[estimator](ddf)
        elif engine == "dask" and estimator == "twfe":
            from impactkit.distributed.twfe import estimate_twfe

            res, _ = estimate_twfe(ddf, y="y", unit="unit", time="year", treated="treated", cluster="cl")
            value = float(res.estimate)
        elif engine == "dask":
            from impactkit.distributed.cs import estimate_cs

            res = estimate_cs(ddf, y="y", unit="unit", time="year", cohort="cohort", est="dr", cluster="cl",
                              bootstrap=True, biters=999, seed=1)
            value = float(res.aggregate("simple").estimate)
        else:  # moderndid's Dask backend
            from moderndid.dask._did import dask_att_gt

            res = dask_att_gt(ddf, yname="y", tname="year", idname="unit", gname="cohort", client=client,
                              est_method="dr", control_group="nevertreated")
            value = float(np.asarray(res.att_gt)[0])
        return {"seconds": time.perf_counter() - start, "estimate": value}


# ----------------------------------------------------------------------------------- orchestration
def tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0


def measured(engine: str, estimator: str, folder: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--one", engine, estimator, str(folder), "--workers", str(args.workers),
           "--memory-limit", args.memory_limit, "--ri-draws", str(args.ri_draws)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    wall = time.perf_counter()
    thread.start()
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"engine": engine, "estimator": estimator, "error": f"timeout after {args.timeout}s"}
    thread.join()
    wall = time.perf_counter() - wall
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"engine": engine, "estimator": estimator, "error": (err.strip().splitlines() or ["?"])[-1][:200]}
    row = json.loads(lines[-1])
    row.update(engine=engine, estimator=estimator, peak_gb=peak[0] / 2**30, wall_seconds=wall)
    return row


def main(argv: list[str] | None = None) -> None:
    global RI_DRAWS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10M,30M,100M")
    parser.add_argument("--pandas-sizes", default="1M,10M")
    parser.add_argument("--moderndid-sizes", default="1M,10M")
    parser.add_argument("--estimators", default="twfe,cs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="2.5GiB")
    parser.add_argument("--data", default="/tmp/impactkit-scale")
    parser.add_argument("--timeout", type=int, default=5400)
    parser.add_argument("--ri-draws", type=int, default=RI_DRAWS)
    parser.add_argument("--one", nargs=3, metavar=("ENGINE", "ESTIMATOR", "FOLDER"))
    args = parser.parse_args(argv)
    RI_DRAWS = args.ri_draws
    if args.one:
        engine, estimator, folder = args.one
        print(json.dumps(run_one(engine, estimator, Path(folder), args.workers, args.memory_limit)), flush=True)
        return
    root = Path(args.data)
    sizes = sorted({parse_size(s) for s in (args.sizes + "," + args.pandas_sizes + "," + args.moderndid_sizes).split(",")
                    if s.strip()})
    pandas_sizes = {parse_size(s) for s in args.pandas_sizes.split(",") if s.strip()}
    modern_sizes = {parse_size(s) for s in args.moderndid_sizes.split(",") if s.strip()}
    dask_sizes = {parse_size(s) for s in args.sizes.split(",") if s.strip()} | pandas_sizes | modern_sizes
    results = []
    out_file = root / "scale-results.json"
    for rows in sizes:
        folder = write_panel(rows, root)
        for estimator in args.estimators.split(","):
            plan = [("dask", rows in dask_sizes), ("pandas", rows in pandas_sizes),
                    ("moderndid", estimator == "cs" and rows in modern_sizes)]
            for engine, wanted in plan:
                if not wanted:
                    continue
                row = measured(engine, estimator, folder, args)
                row["rows"] = rows
                results.append(row)
                print(json.dumps(row), flush=True)
                out_file.write_text(json.dumps(results, indent=1))
    print_table(results, args)


def print_table(results: list[dict], args) -> None:
    by = {(r["rows"], r["estimator"], r["engine"]): r for r in results}
    print(f"\nworkers: {args.workers} x {args.memory_limit}; load average at the end: {os.getloadavg()}")
    print("| rows | estimator | dask s | dask peak GB | pandas s | pandas peak GB | dask/pandas | moderndid s "
          "| moderndid peak GB | dask/moderndid |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rows, estimator in sorted({(r["rows"], r["estimator"]) for r in results}):
        cells = []
        for engine in ("dask", "pandas", "moderndid"):
            r = by.get((rows, estimator, engine))
            if r is None:
                cells.append(("", ""))
            elif "error" in r:
                cells.append(("failed", r["error"][:40]))
            else:
                cells.append((f"{r['seconds']:.1f}", f"{r['peak_gb']:.2f}"))
        ratio = lambda a, b: (f"{float(a[0]) / float(b[0]):.2f}"  # noqa: E731
                              if a[0] not in ("", "failed") and b[0] not in ("", "failed") else "")
        print(f"| {label(rows)} | {estimator} | {cells[0][0]} | {cells[0][1]} | {cells[1][0]} | {cells[1][1]} | "
              f"{ratio(cells[0], cells[1])} | {cells[2][0]} | {cells[2][1]} | {ratio(cells[0], cells[2])} |")


if __name__ == "__main__":
    main()
