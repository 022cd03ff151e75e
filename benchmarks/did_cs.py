"""Benchmark: Callaway-Sant'Anna doubly robust ATT(g,t), analytic SEs, vs csdid and moderndid.

Simulated staggered panel (default 20,000 units x 8 periods, cohorts 3..7 + never treated, two
time-invariant covariates driving both cohort choice and trends). Each estimator runs on the
same frame in this process, in interleaved rounds (best and median of ``--repeat``). Printed:
seconds per fit, the ratio of impactkit to the faster peer (target <= 0.5) and the largest
absolute ATT(g,t) / SE difference.

    .venv/bin/python benchmarks/did_cs.py [--units 20000] [--periods 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import numpy as np
import pandas as pd

from impactkit.did.cs import estimate_cs
from impactkit.seeds import rng


def simulate_panel(n_units: int, n_periods: int, seed: int = 2021) -> pd.DataFrame:
    """Staggered panel: cohort by a multinomial logit in (x1, x2); trends depend on x1 and x2."""
    gen = rng(seed, "bench-cs-panel")
    x1 = gen.normal(size=n_units)
    x2 = (gen.random(n_units) < 0.4).astype(float)
    cohorts = np.array([0.0] + list(range(3, n_periods)), dtype=float)
    index = np.column_stack([np.zeros(n_units)] + [0.1 * k + 0.4 * x1 * (-1) ** k - 0.3 * x2
                                                   for k in range(1, len(cohorts))])
    probs = np.exp(index) / np.exp(index).sum(axis=1, keepdims=True)
    cohort = cohorts[(gen.random(n_units)[:, None] > probs.cumsum(axis=1)).sum(axis=1)]
    periods = np.arange(1, n_periods + 1, dtype=float)
    t = np.repeat(periods[None, :], n_units, axis=0)
    treated = (cohort[:, None] > 0) & (t >= cohort[:, None])
    effect = np.where(treated, 1.0 + 0.2 * (t - cohort[:, None]), 0.0)
    y = (0.5 * x1[:, None] + gen.normal(size=(n_units, 1)) + 0.2 * t + 0.3 * t * x1[:, None]
         - 0.2 * t * x2[:, None] + effect + gen.normal(size=t.shape))
    return pd.DataFrame({"id": np.repeat(np.arange(n_units), n_periods), "year": t.ravel(), "y": y.ravel(),
                         "x1": np.repeat(x1, n_periods), "x2": np.repeat(x2, n_periods),
                         "g": np.repeat(cohort, n_periods)})


def run_impactkit(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    result = estimate_cs(frame, y="y", unit="id", time="year", cohort="g", covariates=["x1", "x2"], est="dr")
    table = result.att_gt
    return (table["group"].to_numpy(), table["time"].to_numpy(), table["estimate"].to_numpy(),
            table["std_error"].to_numpy())


def run_moderndid(frame: pd.DataFrame):
    import moderndid

    fit = moderndid.att_gt(frame, yname="y", tname="year", idname="id", gname="g", xformla="~x1+x2",
                           est_method="dr", boot=False, cband=False)
    return (np.asarray(fit.groups, float), np.asarray(fit.times, float), np.asarray(fit.att_gt, float),
            np.asarray(fit.se_gt, float))


def run_csdid(frame: pd.DataFrame):
    from csdid.att_gt import ATTgt

    fit = ATTgt(yname="y", tname="year", idname="id", gname="g", data=frame, control_group="nevertreated",
                xformla="y~x1+x2").fit(est_method="dr", bstrap=False)
    res = fit.results
    return (np.asarray(res["group"], float), np.asarray(res["year"], float), np.asarray(res["att"], float),
            np.asarray(res["se"], float))


def timed(function, frame: pd.DataFrame):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        out = function(frame)
        return time.perf_counter() - start, out


def race(runners: dict, frame: pd.DataFrame, repeat: int) -> tuple[dict, dict, dict]:
    """Run every runner ``repeat`` times on ``frame`` in interleaved rounds (machine load hits all
    alike); a peer that fails is recorded, not fatal. Returns (times, outputs, failures)."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    outputs: dict[str, tuple] = {}
    failed: dict[str, str] = {}
    for _ in range(repeat):
        for name, function in runners.items():
            if name in failed:
                continue
            try:
                seconds, outputs[name] = timed(function, frame)
            except Exception as exc:  # a peer failing is reported, not fatal
                failed[name] = f"{type(exc).__name__}: {exc}"
                continue
            times[name].append(seconds)
    return times, outputs, failed


def report(runners: dict, times: dict, outputs: dict, failed: dict, target: str = "") -> None:
    """Seconds per runner (best / median), the largest ATT(g,t) and SE differences to impactkit,
    and the ratio of impactkit to the faster peer."""
    ours = outputs["impactkit"]
    for name in runners:
        if name in failed:
            print(f"  {name:<10} failed: {failed[name]}")
            continue
        line = f"  {name:<10} {min(times[name]):8.3f} s / {np.median(times[name]):8.3f} s"
        if name != "impactkit":
            key = {(g, t): (a, s) for g, t, a, s in zip(*outputs[name])}
            att_diff = max(abs(a - key[(g, t)][0]) for g, t, a, s in zip(*ours))
            se_diff = max(abs(s - key[(g, t)][1]) for g, t, a, s in zip(*ours))
            line += f"  max |ATT(g,t) diff| {att_diff:.2e}  max |SE diff| {se_diff:.2e}"
        else:
            line += f"  ({len(ours[2])} ATT(g,t))"
        print(line)
    peers = {name: min(times[name]) for name in ("csdid", "moderndid") if name not in failed}
    if peers:
        fastest = min(peers, key=peers.get)
        ratio = min(times["impactkit"]) / peers[fastest]
        median_ratio = np.median(times["impactkit"]) / np.median(times[fastest])
        print(f"  ratio impactkit / {fastest} (faster peer): best {ratio:.4f}, median {median_ratio:.4f}" + target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--periods", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    frame = simulate_panel(args.units, args.periods)
    runners = {"impactkit": run_impactkit, "csdid": run_csdid, "moderndid": run_moderndid}
    times, outputs, failed = race(runners, frame, args.repeat)
    print(f"CS doubly robust, analytic SEs: {args.units} units x {args.periods} periods, covariates x1, x2 "
          f"(best / median of {args.repeat} interleaved rounds)")
    report(runners, times, outputs, failed, target="  (target <= 0.5)")


if __name__ == "__main__":
    main()
