"""Benchmark: TWFE with cluster-robust SEs on a 1,000,000-row balanced panel.

impactkit.did.twfe.estimate_twfe (input checks included) vs pyfixest.feols and
linearmodels.PanelOLS, run side by side in one process after a small warm-up (JIT, imports).
Prints seconds, the ratios impactkit / peer (targets: <= 0.5 vs pyfixest, <= 0.25 vs
PanelOLS) and the largest coefficient / SE difference.

    .venv/bin/python benchmarks/did_twfe.py [--units 100000] [--periods 10] [--clusters 500]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

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
    args = parser.parse_args(argv)
    warm = make_panel(2_000, args.periods, 50, seed=2)
    for func in (run_impactkit, run_pyfixest, run_panelols):
        func(warm)
    df = make_panel(args.units, args.periods, args.clusters)
    t_ik, (b_ik, se_ik) = timed(run_impactkit, df)
    t_pf, (b_pf, se_pf) = timed(run_pyfixest, df)
    t_lm, (b_lm, _) = timed(run_panelols, df)
    figures = {
        "rows": float(len(df)), "impactkit_s": t_ik, "pyfixest_s": t_pf, "panelols_s": t_lm,
        "ratio_vs_pyfixest": t_ik / t_pf, "ratio_vs_panelols": t_ik / t_lm,
        "max_coef_diff_pyfixest": float(np.abs(b_ik - b_pf).max()),
        "max_se_diff_pyfixest": float(np.abs(se_ik - se_pf).max()),
        "max_coef_diff_panelols": float(np.abs(b_ik - b_lm).max()),
    }
    print(f"TWFE, {len(df):,} rows ({args.units:,} units x {args.periods} periods, {args.clusters} clusters), "
          f"y ~ treated + x | unit + period, CRV1 by cluster")
    print(f"  impactkit  {t_ik:8.3f} s")
    print(f"  pyfixest   {t_pf:8.3f} s   ratio impactkit/pyfixest = {t_ik / t_pf:.3f} (target <= 0.5)")
    print(f"  PanelOLS   {t_lm:8.3f} s   ratio impactkit/PanelOLS = {t_ik / t_lm:.3f} (target <= 0.25)")
    print(f"  max |coef diff| vs pyfixest {figures['max_coef_diff_pyfixest']:.2e}, "
          f"vs PanelOLS {figures['max_coef_diff_panelols']:.2e}; "
          f"max |SE diff| vs pyfixest {figures['max_se_diff_pyfixest']:.2e}")
    return figures


if __name__ == "__main__":
    main()
