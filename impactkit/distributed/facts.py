"""Facts about a partitioned panel by per-partition reductions (every unit inside one partition).

- :func:`panel_structure`: periods, adoption cohorts, units with an observed outcome;
- :func:`data_facts`: what the ``data`` section shows (rows, units, clusters, the sample flow by
  period and arm, the baseline mean of the treated arm, the baseline share below a poverty line);
- :func:`power_facts`: the power calculation's inputs (baseline SD, ICC, cluster size, R2 of the
  next period's outcome on the baseline outcome, attrition).

Per-unit counts add up across partitions because a unit never spans two; per-cluster and global
moments are combined with the pairwise update of Chan, Golub & LeVeque (1983, *Am. Stat.* 37(3))
(counts, means and centred sums of squares), so no row reaches the client and the numbers equal
the pandas engine's to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from impactkit.distributed.reduce import map_blocks, partitions


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


# ------------------------------------------------------------------------------------------ structure
def _structure_part(part: pd.DataFrame, unit: str, time: str, cohort: str, y: str) -> dict[str, Any]:
    cohorts = _numeric(part[cohort]).fillna(0)
    return {"waves": np.unique(part[time].to_numpy()), "waves_with_y": np.unique(part.loc[part[y].notna(), time]),
            "cohorts": np.unique(cohorts[cohorts > 0].to_numpy()),
            "with_outcome": int(part.loc[part[y].notna(), unit].nunique()), "n_units": int(part[unit].nunique())}


def panel_structure(panel, *, unit: str, time: str, cohort: str, y: str) -> dict[str, Any]:
    """Sorted periods and treated cohorts, units with an outcome and units, by one pass."""
    parts = map_blocks(_structure_part, partitions(panel), unit, time, cohort, y)
    return {"waves": sorted(int(w) for w in np.unique(np.concatenate([p["waves"] for p in parts]))),
            "cohorts": sorted(int(g) for g in np.unique(np.concatenate([p["cohorts"] for p in parts]))),
            "n_units_with_outcome": sum(p["with_outcome"] for p in parts),
            "n_waves_with_outcome": int(np.unique(np.concatenate([p["waves_with_y"] for p in parts])).size),
            "n_units": sum(p["n_units"] for p in parts)}


# ------------------------------------------------------------------------------------------ data section
def _data_part(part: pd.DataFrame, unit: str, time: str, cluster: str, primary: str, baseline: int,
               poverty_line: float | None) -> dict[str, Any]:
    flow = part.groupby([time, "ever_treated"], sort=True)[unit].nunique()
    base = part[part[time] == baseline]
    treated = _numeric(base.loc[base["ever_treated"] == 1, primary]).dropna()
    out = {"n_rows": len(part), "n_units": int(part[unit].nunique()), "clusters": part[cluster].dropna().unique(),
           "flow": {(int(w), int(a)): int(n) for (w, a), n in flow.items()},
           "treated_sum": float(treated.sum()), "treated_n": int(treated.size)}
    if poverty_line is not None:
        observed = base[primary].dropna()
        out.update(observed=int(observed.size), poor=int((observed < poverty_line).sum()))
    return out


def data_facts(panel, *, unit: str, time: str, cluster: str, primary: str, baseline: int,
               poverty_line: float | None) -> dict[str, Any]:
    """Rows, units, clusters, units per (period, arm) and the baseline facts, by one pass."""
    parts = map_blocks(_data_part, partitions(panel), unit, time, cluster, primary, baseline, poverty_line)
    flow: dict[tuple[int, int], int] = {}
    for p in parts:
        for key, n in p["flow"].items():
            flow[key] = flow.get(key, 0) + n
    treated_n = sum(p["treated_n"] for p in parts)
    out = {"n_rows": sum(p["n_rows"] for p in parts), "n_units": sum(p["n_units"] for p in parts),
           "n_clusters": int(pd.unique(np.concatenate([np.asarray(p["clusters"], dtype=object) for p in parts])).size),
           "flow": flow,
           "baseline_mean": sum(p["treated_sum"] for p in parts) / treated_n if treated_n else float("nan")}
    if poverty_line is not None:
        observed = sum(p["observed"] for p in parts)
        out["baseline_poor_share"] = sum(p["poor"] for p in parts) / observed if observed else float("nan")
    return out


# ------------------------------------------------------------------------------------------ power
def _moments(values: np.ndarray) -> tuple[int, float, float]:
    n = values.size
    mean = float(values.mean()) if n else 0.0
    return n, mean, float(((values - mean) ** 2).sum()) if n else 0.0


def combine_moments(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> tuple[float, float, float]:
    """Count, mean and centred sum of squares of the union of groups (Chan et al. 1983)."""
    total = float(n.sum())
    grand = float((n * mean).sum() / total)
    return total, grand, float(m2.sum() + (n * (mean - grand) ** 2).sum())


def _power_part(part: pd.DataFrame, unit: str, time: str, cluster: str, y: str, baseline: int,
                next_wave: int, final_wave: int) -> dict[str, Any]:
    from impactkit.analysis.steps.checks import baseline_units_kept

    base = part.loc[part[time] == baseline, list(dict.fromkeys([unit, cluster, y]))].dropna()
    per_cluster = [(label, *_moments(group[y].to_numpy(float))) for label, group in base.groupby(cluster, sort=False)]
    nxt = part.loc[part[time] == next_wave, [unit, y]].dropna().merge(base[[unit, y]], on=unit, suffixes=("", "_base"))
    a, b = nxt[y].to_numpy(float), nxt[f"{y}_base"].to_numpy(float)
    ma, mb = (float(a.mean()), float(b.mean())) if a.size else (0.0, 0.0)
    return {"clusters": per_cluster,
            "pair": (a.size, ma, mb, float(((a - ma) ** 2).sum()), float(((b - mb) ** 2).sum()),
                     float(((a - ma) * (b - mb)).sum())),
            "units": baseline_units_kept(part[unit].to_numpy(), part[time].to_numpy(), baseline, final_wave)}


def _combine_pairs(pairs: list[tuple]) -> tuple[float, float, float]:
    """Centred sums (xx, yy, xy) of the union of partitions' (n, mean_x, mean_y, Sxx, Syy, Sxy)."""
    n = np.array([p[0] for p in pairs], dtype=float)
    keep = n > 0
    n, mx, my, sxx, syy, sxy = (np.array([p[i] for p in pairs], dtype=float)[keep] for i in range(6))
    total = n.sum()
    gx, gy = (n * mx).sum() / total, (n * my).sum() / total
    return (float(sxx.sum() + (n * (mx - gx) ** 2).sum()), float(syy.sum() + (n * (my - gy) ** 2).sum()),
            float(sxy.sum() + (n * (mx - gx) * (my - gy)).sum()))


def power_facts(panel, *, unit: str, time: str, cluster: str, y: str, baseline: int, waves: list[int]) -> dict[str, float]:
    """Baseline SD of ``y``, ICC over ``cluster`` (0 when the unit is the cluster), mean cluster
    size, R2 of the next period's ``y`` on the baseline ``y`` (same units), and the share of
    baseline units absent in the final period: the inputs of
    :func:`impactkit.analysis.steps.checks.power_section`, as the pandas step computes them."""
    from impactkit.analysis.steps.checks import icc_from_groups

    parts = map_blocks(_power_part, partitions(panel), unit, time, cluster, y, baseline, waves[1], waves[-1])
    rows = pd.DataFrame([c for p in parts for c in p["clusters"]], columns=["cluster", "n", "mean", "m2"])
    grouped = []
    for _, g in rows.groupby("cluster", sort=True):
        grouped.append(combine_moments(g["n"].to_numpy(float), g["mean"].to_numpy(float), g["m2"].to_numpy(float)))
    sizes, means, m2 = (np.array([g[i] for g in grouped]) for i in range(3))
    n, _, total_m2 = combine_moments(sizes, means, m2)
    icc = 0.0 if cluster == unit else icc_from_groups(sizes, means, float(m2.sum()))
    sxx, syy, sxy = _combine_pairs([p["pair"] for p in parts])
    n_base, n_kept = (sum(p["units"][i] for p in parts) for i in range(2))  # units never span partitions
    return {"sd": float(np.sqrt(total_m2 / (n - 1))), "icc": icc, "cluster_size": float(n / sizes.size),
            "r2": float(sxy**2 / (sxx * syy)), "attrition": 1 - n_kept / n_base}
