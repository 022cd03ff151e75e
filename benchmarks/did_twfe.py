"""Benchmark: TWFE with cluster-robust SEs on a 1,000,000-row balanced panel.

impactkit.did.twfe.estimate_twfe (input checks included) vs pyfixest.feols and
linearmodels.PanelOLS, run side by side in one process after a small warm-up (JIT, imports),
in ``--rounds`` interleaved rounds (impactkit, pyfixest, PanelOLS, impactkit, ...) so that
a busy machine slows all three alike. Prints the median and the best seconds of each, the
ratios impactkit / peer of both (targets: <= 0.5 vs pyfixest, <= 0.25 vs PanelOLS) and the
largest coefficient / SE difference, and the share of impactkit's time spent in its input checks
(``impactkit.did.data.prepare_panel``, timed on its own in each round).

    .venv/bin/python benchmarks/did_twfe.py [--units 100000] [--periods 10] [--clusters 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from impactkit.did.data import prepare_panel
from impactkit.did.twfe import estimate_twfe
from impactkit.seeds import rng


def make_panel(n_units: int, n_periods: int, n_clusters: int, seed: int = 1) -> pd.DataFrame:
    gen = rng(seed, "benchmark-twfe")
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    cohort = np.repeat(gen.choice([0, 3, 6], n_units), n_periods)
    treated = ((cohort > 0) & (period >= cohort)).astype(np.int64)
    x = gen.normal(size=unit.size)
    y = np.repeat(gen.normal(size=n_units), n_periods) + 0.1 * period + 1.0 * treated + 0.5 * x \
        + gen.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "period": period, "y": y, "treated": treated, "x": x,
                         "cl": unit % n_clusters})


def run_impactkit(df: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate_twfe(df, y="y", unit="unit", time="period", treated="treated", covariates=["x"],
                            cluster="cl")
    return res.coef, res.std_error


def run_input_checks(df: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = prepare_panel(df, y="y", unit="unit", time="period", treated="treated", covariates=["x"],
                              cluster="cl")
    return panel.shape


def run_pyfixest(df: pd.DataFrame):
    import pyfixest as pf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols("y ~ treated + x | unit + period", data=df, vcov={"CRV1": "cl"})
    return fit.coef().to_numpy(), fit.se().to_numpy()


def run_panelols(df: pd.DataFrame):
    from linearmodels.panel import PanelOLS

    indexed = df.set_index(["unit", "period"])
    fit = PanelOLS(indexed["y"], indexed[["treated", "x"]], entity_effects=True, time_effects=True).fit(
        cov_type="clustered", clusters=indexed["cl"])
    return fit.params.to_numpy(), fit.std_errors.to_numpy()


def timed(func, df):
    start = time.perf_counter()
    out = func(df)
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    warm = make_panel(2_000, args.periods, 50, seed=2)
    runners = {"impactkit": run_impactkit, "pyfixest": run_pyfixest, "PanelOLS": run_panelols}
    for func in runners.values():
        func(warm)
    df = make_panel(args.units, args.periods, args.clusters)
    seconds: dict[str, list[float]] = {name: [] for name in [*runners, "checks"]}
    outputs = {}
    for _ in range(max(1, args.rounds)):
        for name, func in runners.items():
            elapsed, outputs[name] = timed(func, df)
            seconds[name].append(elapsed)
        seconds["checks"].append(timed(run_input_checks, df)[0])
    median = {name: statistics.median(times) for name, times in seconds.items()}
    best = {name: min(times) for name, times in seconds.items()}
    (b_ik, se_ik), (b_pf, se_pf), (b_lm, _) = outputs["impactkit"], outputs["pyfixest"], outputs["PanelOLS"]
    figures = {
        "rows": float(len(df)), "rounds": float(max(1, args.rounds)),
        "impactkit_s": median["impactkit"], "pyfixest_s": median["pyfixest"], "panelols_s": median["PanelOLS"],
        "ratio_vs_pyfixest": median["impactkit"] / median["pyfixest"],
        "ratio_vs_panelols": median["impactkit"] / median["PanelOLS"],
        "best_ratio_vs_pyfixest": best["impactkit"] / best["pyfixest"],
        "best_ratio_vs_panelols": best["impactkit"] / best["PanelOLS"],
        "max_coef_diff_pyfixest": float(np.abs(b_ik - b_pf).max()),
        "max_se_diff_pyfixest": float(np.abs(se_ik - se_pf).max()),
        "max_coef_diff_panelols": float(np.abs(b_ik - b_lm).max()),
        "input_checks_s": median["checks"],
    }
    print(f"TWFE, {len(df):,} rows ({args.units:,} units x {args.periods} periods, {args.clusters} clusters), "
          f"y ~ treated + x | unit + period, CRV1 by cluster; {max(1, args.rounds)} interleaved rounds")
    print(f"  {'':10} {'median s':>9} {'best s':>9}   ratio impactkit/peer: median (best)")
    print(f"  impactkit  {median['impactkit']:9.3f} {best['impactkit']:9.3f}")
    print(f"  - checks   {median['checks']:9.3f} {best['checks']:9.3f}   "
          f"input checks (prepare_panel) alone: {median['checks'] / median['impactkit']:.0%} of impactkit's median")
    print(f"  pyfixest   {median['pyfixest']:9.3f} {best['pyfixest']:9.3f}   "
          f"{figures['ratio_vs_pyfixest']:.3f} ({figures['best_ratio_vs_pyfixest']:.3f})  target <= 0.5")
    print(f"  PanelOLS   {median['PanelOLS']:9.3f} {best['PanelOLS']:9.3f}   "
          f"{figures['ratio_vs_panelols']:.3f} ({figures['best_ratio_vs_panelols']:.3f})  target <= 0.25")
    print(f"  max |coef diff| vs pyfixest {figures['max_coef_diff_pyfixest']:.2e}, "
          f"vs PanelOLS {figures['max_coef_diff_panelols']:.2e}; "
          f"max |SE diff| vs pyfixest {figures['max_se_diff_pyfixest']:.2e}")
    return figures


if __name__ == "__main__":
    main()
