"""Attrition by arm and wave on a partitioned panel, by cluster sums; the numbers of
:func:`impactkit.checks.attrition`.

Every unit lies in one partition, so each partition builds its baseline units' "observed in
wave w" matrix (as :func:`impactkit.checks.attrition.stay_matrix`, over the panel's follow-up
waves). Rates by arm are counts; each difference's p-value is the CR1 t test of the
attrition indicator on ``[1, arm]`` and the covariate test the cluster-robust Wald F of the arm x
covariate interactions in the regression of "any" attrition on arm, baseline covariates and
their interactions (Ghanem, Hirshleifer & Ortiz-Becerra 2023): both from per-cluster ``X'X`` and
``X'y`` (:func:`impactkit.distributed.balance.cluster_robust_fit`). The covariates are
standardised with their global mean and SD first; the Wald F of the interactions does not change.
Also counted: baseline units with an outcome that are not observed with one in the final period
(the units Lee bounds would trim).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from impactkit.distributed.balance import cluster_sums, merge_cluster_sums, numeric_values, cluster_robust_fit
from impactkit.distributed.facts import combine_moments
from impactkit.distributed.reduce import map_blocks, partitions


def _units(part: pd.DataFrame, unit: str, time: str, arm: str, baseline: int, waves: list[int]):
    """Baseline units of the partition, their arm, and per follow-up wave (and "any") 1 when not
    observed: :func:`impactkit.checks.attrition.stay_matrix` on one partition (which may hold one
    arm only, so the arm is not checked here: the contract and the first pass did)."""
    at_base = part[time] == baseline
    if not at_base.any():
        return None
    base = part.loc[at_base].set_index(unit, drop=False)
    seen = part.loc[~at_base, [unit, time]]
    seen = seen[seen[unit].isin(base.index)]
    stay = pd.DataFrame(0, index=base.index, columns=waves, dtype="int64")
    for wave, units in seen.groupby(time, sort=True)[unit]:
        if wave in stay.columns:
            stay.loc[units.to_numpy(), wave] = 1
    attrited = 1 - stay.to_numpy()
    columns = {str(w): attrited[:, j].astype(float) for j, w in enumerate(waves)}
    columns["any"] = attrited.max(axis=1).astype(float) if len(waves) else np.zeros(len(base))
    return base, base[arm].to_numpy(dtype=float), columns


def _rates_part(part: pd.DataFrame, unit: str, time: str, arm: str, cluster: str, baseline: int, waves: list[int],
                covariates: list[str], y: str, final_wave: int) -> dict[str, Any]:
    out: dict[str, Any] = {"waves": {}, "covariates": {}, "lost": 0}
    built = _units(part, unit, time, arm, baseline, waves)
    if built is None:
        return out
    base, t, columns = built
    clusters = base[cluster].to_numpy()
    X = np.column_stack([np.ones(len(base)), t])
    ones = np.ones(len(base))
    for name, a in columns.items():
        out["waves"][name] = {"n": [int((t == arm_).sum()) for arm_ in (0, 1)],
                              "attrited": [float(a[t == arm_].sum()) for arm_ in (0, 1)],
                              "min": float(a.min()) if a.size else np.inf, "max": float(a.max()) if a.size else -np.inf,
                              "sums": cluster_sums(X, a, ones, clusters)}
    for name in covariates:
        x = numeric_values(base, name)
        x = x[~np.isnan(x)]
        mean = float(x.mean()) if x.size else 0.0
        out["covariates"][name] = (x.size, mean, float(((x - mean) ** 2).sum()))
    final = part.loc[part[time] == final_wave, [unit, y]].set_index(unit)[y]
    with_y = base.loc[base[y].notna(), unit]
    out["lost"] = int((~with_y.map(final).notna()).sum())
    return out


def _covariate_part(part: pd.DataFrame, unit: str, time: str, arm: str, cluster: str, baseline: int,
                    waves: list[int], covariates: list[str], shift: np.ndarray, scale: np.ndarray) -> dict:
    built = _units(part, unit, time, arm, baseline, waves)
    if built is None:
        return {"sums": {}, "n": 0, "min": np.inf, "max": -np.inf}
    base, t, columns = built
    C = np.column_stack([numeric_values(base, c) for c in covariates])
    complete = ~np.isnan(C).any(axis=1)
    a, tc, Cc = columns["any"][complete], t[complete], (C[complete] - shift) / scale
    X = np.column_stack([np.ones(int(complete.sum())), tc, Cc, tc[:, None] * Cc])
    return {"sums": cluster_sums(X, a, np.ones(a.size), base[cluster].to_numpy()[complete]), "n": int(complete.sum()),
            "min": float(a.min()) if a.size else np.inf, "max": float(a.max()) if a.size else -np.inf}


def attrition_facts(panel, *, unit: str, time: str, arm: str, cluster: str, baseline: int, waves: list[int],
                    covariates: list[str], y: str):
    """``(AttritionResult, lost)``: the rates, differences and tests of
    :func:`impactkit.checks.attrition`, and the number of baseline units with an outcome that
    lack one in the final period."""
    from impactkit.checks.attrition import AttritionResult

    follow = [w for w in waves if w != baseline]
    parts = map_blocks(_rates_part, partitions(panel), unit, time, arm, cluster, baseline, follow, covariates, y,
                       waves[-1])
    rows = []
    for name in [*map(str, follow), "any"]:
        per = [p["waves"][name] for p in parts if name in p["waves"]]
        n0, n1 = (sum(p["n"][k] for p in per) for k in (0, 1))
        a0, a1 = (sum(p["attrited"][k] for p in per) for k in (0, 1))
        row: dict[str, Any] = {"wave": name, "rate_control": a0 / n0, "rate_treated": a1 / n1,
                               "n_control": n0, "n_treated": n1}
        if max(p["max"] for p in per) == min(p["min"] for p in per):
            row.update(estimate=row["rate_treated"] - row["rate_control"], std_error=0.0, p_value=1.0)
        else:
            est, se, p_value = cluster_robust_fit(*merge_cluster_sums([p["sums"] for p in per])).t_test(1)
            row.update(estimate=est, std_error=se, p_value=p_value)
        row["n"] = n0 + n1
        rows.append(row)
    table = pd.DataFrame(rows)[["wave", "rate_control", "rate_treated", "estimate", "std_error", "p_value",
                                "n_control", "n_treated", "n"]]
    covariate_test = None
    if covariates:
        moments = [np.array([p["covariates"][c] for p in parts if c in p["covariates"]], dtype=float)
                   for c in covariates]
        stats = [combine_moments(m[m[:, 0] > 0, 0], m[m[:, 0] > 0, 1], m[m[:, 0] > 0, 2]) for m in moments]
        shift = np.array([s[1] for s in stats])
        scale = np.array([np.sqrt(s[2] / max(s[0] - 1, 1)) or 1.0 for s in stats])
        cov_parts = map_blocks(_covariate_part, partitions(panel), unit, time, arm, cluster, baseline, follow,
                               covariates, shift, scale)
        if max(p["max"] for p in cov_parts) != min(p["min"] for p in cov_parts):
            fit = cluster_robust_fit(*merge_cluster_sums([p["sums"] for p in cov_parts]))
            k = len(covariates)
            f, p_value, dfn, dfd = fit.f_test(range(2 + k, 2 + 2 * k))
            covariate_test = {"f": f, "p_value": p_value, "df_num": dfn, "df_denom": dfd,
                              "n": sum(p["n"] for p in cov_parts), "covariates": list(covariates)}
    result = AttritionResult(table=table, covariate_test=covariate_test, arm=arm, cluster=cluster)
    return result, sum(p["lost"] for p in parts)
