"""Benchmark: Callaway-Sant'Anna on repeated cross sections (R did's ``panel = FALSE``) vs csdid and
moderndid.

The staggered panel of ``did_cs.py`` (default 20,000 units x 8 periods) with each unit kept in one
random period: 20,000 independent rows, covariates x1, x2, doubly robust. Same frame, same process,
interleaved rounds (best and median of ``--repeat``). Printed: seconds per fit, the ratio of impactkit
to the faster peer and the largest ATT(g,t) / SE differences. moderndid 0.2.0's DR repeated-cross-
section standard errors with covariates differ from R's (see tests/test_did_rcs.py); csdid follows R.

    .venv/bin/python benchmarks/did_cs_rcs.py [--units 20000] [--periods 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from impactkit.did.cs import estimate_cs
from impactkit.seeds import rng

_spec = importlib.util.spec_from_file_location("bench_did_cs", Path(__file__).resolve().parent / "did_cs.py")
did_cs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(did_cs)


def simulate_sections(n_units: int, n_periods: int) -> pd.DataFrame:
    panel = did_cs.simulate_panel(n_units, n_periods)
    keep = rng(2021, "bench-cs-rcs").integers(0, n_periods, n_units)
    rows = panel.iloc[np.arange(n_units) * n_periods + keep].reset_index(drop=True)
    return rows.assign(id=np.arange(n_units))


def run_impactkit(frame: pd.DataFrame):
    result = estimate_cs(frame, y="y", unit=None, time="year", cohort="g", covariates=["x1", "x2"], est="dr",
                         panel=False)
    table = result.att_gt
    return (table["group"].to_numpy(), table["time"].to_numpy(), table["estimate"].to_numpy(),
            table["std_error"].to_numpy())


def run_moderndid(frame: pd.DataFrame):
    import moderndid

    fit = moderndid.att_gt(frame, yname="y", tname="year", idname="id", gname="g", xformla="~x1+x2",
                           est_method="dr", boot=False, cband=False, panel=False)
    return (np.asarray(fit.groups, float), np.asarray(fit.times, float), np.asarray(fit.att_gt, float),
            np.asarray(fit.se_gt, float))


def run_csdid(frame: pd.DataFrame):
    from csdid.att_gt import ATTgt

    fit = ATTgt(yname="y", tname="year", idname="id", gname="g", data=frame, control_group="nevertreated",
                xformla="y~x1+x2", panel=False).fit(est_method="dr", bstrap=False)
    res = fit.results
    return (np.asarray(res["group"], float), np.asarray(res["year"], float), np.asarray(res["att"], float),
            np.asarray(res["se"], float))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--periods", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    frame = simulate_sections(args.units, args.periods)
    runners = {"impactkit": run_impactkit, "csdid": run_csdid, "moderndid": run_moderndid}
    times, outputs, failed = did_cs.race(runners, frame, args.repeat)
    print(f"CS doubly robust, repeated cross sections: {len(frame)} rows, {args.periods} periods, covariates "
          f"x1, x2 (best / median of {args.repeat} interleaved rounds)")
    did_cs.report(runners, times, outputs, failed)


if __name__ == "__main__":
    main()
