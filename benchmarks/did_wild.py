"""Benchmark: impactkit's wild cluster bootstrap vs the `wildboottest` package, one process.

100,000 rows, 30 clusters, y on intercept + cluster-level treatment + 2 covariates, WCR
test of the treatment coefficient, B = 9,999 draws, same weights (Rademacher, then Webb).
Prints wall times (best of 3 runs), the ratio impactkit / wildboottest (target <= 0.5) and
the p-value differences (independent draws; and with wildboottest fed impactkit's draws).
wildboottest's time includes the numba compilation it repeats on every call.

Run: .venv/bin/python benchmarks/did_wild.py
"""

from __future__ import annotations

import time

import numpy as np

N_ROWS = 100_000
N_CLUSTERS = 30
B = 9_999
REPEATS = 3


def simulate(seed: int = 2019) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    cl = g.integers(0, N_CLUSTERS, N_ROWS)
    treated = (np.arange(N_CLUSTERS) % 2 == 0).astype(float)
    d = treated[cl]
    x1 = g.normal(size=N_ROWS) + 0.3 * g.normal(size=N_CLUSTERS)[cl]
    x2 = g.uniform(size=N_ROWS)
    y = 1.0 + 0.02 * d + 0.5 * x1 - 0.2 * x2 + 0.3 * g.normal(size=N_CLUSTERS)[cl] + g.normal(size=N_ROWS)
    return y, np.column_stack([np.ones(N_ROWS), d, x1, x2]), cl


def run_wildboottest(y, X, cl, weights: str, draws: np.ndarray | None = None) -> float:
    from wildboottest.wildboottest import WildboottestCL

    boot = WildboottestCL(X=X, Y=y, cluster=cl, R=np.array([0.0, 1.0, 0.0, 0.0]), B=B, seed=1)
    boot.get_scores(bootstrap_type="11", impose_null=True)
    boot.get_weights(weights_type=weights)
    if draws is not None:
        boot.v = np.ascontiguousarray(draws.T)
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue(pval_type="two-tailed")
    return float(boot.pvalue)


def best_time(fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    from impactkit.did.wild import draw_weights, wild_cluster_bootstrap

    y, X, cl = simulate()
    print(f"wild cluster bootstrap: {N_ROWS} rows, {N_CLUSTERS} clusters, k={X.shape[1]}, B={B}, WCR")
    for weights in ("rademacher", "webb"):
        t_ours, ours = best_time(lambda: wild_cluster_bootstrap(y, X, cl, 1, B=B, weights=weights,
                                                                 seed=1, ci=False))
        t_ours_ci, ours_ci = best_time(lambda: wild_cluster_bootstrap(y, X, cl, 1, B=B, weights=weights,
                                                                       seed=1, ci=True))
        t_peer, p_peer = best_time(lambda: run_wildboottest(y, X, cl, weights))
        p_peer_same = run_wildboottest(y, X, cl, weights, draw_weights(B, N_CLUSTERS, weights, seed=1))
        print(f"[{weights}] impactkit {t_ours:.3f}s (with test-inversion CI {t_ours_ci:.3f}s) | "
              f"wildboottest {t_peer:.3f}s | ratio {t_ours / t_peer:.3f} (target <= 0.5; "
              f"with CI {t_ours_ci / t_peer:.3f})")
        print(f"[{weights}] p impactkit {ours.p_value:.4f}, wildboottest {p_peer:.4f} "
              f"(independent draws, |diff| {abs(ours.p_value - p_peer):.4f}); same draws |diff| "
              f"{abs(ours.p_value - p_peer_same):.2e}; CI [{ours_ci.conf_low:.4f}, {ours_ci.conf_high:.4f}]")

    print("note: wildboottest's timing includes numba compiling its per-call jitted kernel "
          "(it defines the kernel inside get_denom, so every call compiles).")


if __name__ == "__main__":
    main()
