"""Baseline balance on a partitioned panel, by cluster sums; the numbers of
:func:`impactkit.checks.balance_table`.

For each covariate: (weighted) mean and SD by arm from per-partition counts, weight sums, means
and centred sums of squares (combined with the pairwise update of Chan, Golub & LeVeque 1983);
the difference in means and the normalized difference of Imbens & Rubin (2015, eq. 14.1); the
p-value of the difference from the WLS of the covariate on ``[1, arm]`` with CR1 standard errors,
and the joint test of orthogonality (the arm on every usable covariate, complete cases, a
cluster-robust Wald F; Bruhn & McKenzie 2009). Every regression needs only, per cluster,
``G_g = X_g'W_g X_g`` and ``h_g = X_g'W_g y_g``: the coefficients solve ``(sum G_g) b = sum h_g``,
the cluster scores are ``h_g - G_g b``, and CR1 is the sandwich with fixest's small-sample factor
``G/(G-1) (N-1)/(N-K)`` (as :func:`impactkit.numerics.covariance.vcov_crv1`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from impactkit.distributed.facts import combine_moments
from impactkit.distributed.reduce import map_blocks, merge_by_label, partitions


def numeric_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def cluster_sums(X: np.ndarray, y: np.ndarray, w: np.ndarray, clusters: np.ndarray) -> dict[Any, tuple]:
    """``{cluster: (n, X'WX, X'Wy)}`` of the rows given."""
    out = {}
    labels, codes = np.unique(clusters, return_inverse=True)
    for j, label in enumerate(labels):
        keep = codes == j
        Xg, yg, wg = X[keep], y[keep], w[keep]
        out[label] = (int(keep.sum()), (Xg * wg[:, None]).T @ Xg, (Xg * wg[:, None]).T @ yg)
    return out


def _arm_moments(x: np.ndarray, w: np.ndarray) -> tuple[int, float, float, float]:
    """(n, weight sum, weighted mean, weighted centred sum of squares)."""
    if x.size == 0:
        return 0, 0.0, 0.0, 0.0
    total = float(w.sum())
    mean = float((w * x).sum() / total)
    return int(x.size), total, mean, float((w * (x - mean) ** 2).sum())


def _baseline(part: pd.DataFrame, time: str, baseline: int, arm: str, cluster: str, weights: str | None):
    rows = part[part[time] == baseline]
    w = numeric_values(rows, weights) if weights else np.ones(len(rows))
    return rows, rows[arm].to_numpy(dtype=float), w, rows[cluster].to_numpy()


def _covariate_part(part: pd.DataFrame, covariates: list[str], time: str, baseline: int, arm: str, cluster: str,
                    weights: str | None) -> dict[str, Any]:
    rows, d, w, clusters = _baseline(part, time, baseline, arm, cluster, weights)
    out = {}
    for name in covariates:
        x = numeric_values(rows, name)
        ok = ~np.isnan(x)
        X = np.column_stack([np.ones(int(ok.sum())), d[ok]])
        out[name] = {"arms": [_arm_moments(x[ok & (d == a)], w[ok & (d == a)]) for a in (0, 1)],
                     "n_missing": int((~ok).sum()),
                     "min": float(x[ok].min()) if ok.any() else np.inf, "max": float(x[ok].max()) if ok.any() else -np.inf,
                     "sums": cluster_sums(X, x[ok], w[ok], clusters[ok])}
    return out


def _joint_part(part: pd.DataFrame, usable: list[str], time: str, baseline: int, arm: str, cluster: str,
                weights: str | None, shift: np.ndarray, scale: np.ndarray) -> dict:
    rows, d, w, clusters = _baseline(part, time, baseline, arm, cluster, weights)
    # standardised covariates: the slopes' Wald F is invariant to shifting and scaling them, and the
    # normal equations stay well conditioned (the pandas engine solves by SVD)
    Xc = (np.column_stack([numeric_values(rows, c) for c in usable]) - shift) / scale
    complete = ~np.isnan(Xc).any(axis=1)
    X = np.column_stack([np.ones(int(complete.sum())), Xc[complete]])
    return cluster_sums(X, d[complete], w[complete], clusters[complete])


def merge_cluster_sums(parts: list[dict]) -> tuple[int, np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Add per-partition cluster sums by cluster: (N, per-cluster G, per-cluster h) in sorted cluster order."""
    merged = merge_by_label(parts, lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]))
    labels = sorted(merged)
    return (sum(merged[k][0] for k in labels), [merged[k][1] for k in labels], [merged[k][2] for k in labels])


def cluster_robust_fit(n: int, grams: list[np.ndarray], crosses: list[np.ndarray]):
    """WLS coefficients and CR1 covariance from per-cluster ``X'WX`` and ``X'Wy`` (a
    :class:`impactkit.checks.regression.RobustFit` with t(G-1) inference)."""
    from impactkit.checks.regression import RobustFit
    from impactkit.numerics.covariance import sandwich

    xtx = np.sum(grams, axis=0)
    xtx_inv = np.linalg.pinv(xtx)
    coef = xtx_inv @ np.sum(crosses, axis=0)
    scores = np.array([h - G @ coef for G, h in zip(grams, crosses)])
    g, k = len(grams), xtx.shape[0]
    cov = sandwich(xtx_inv, scores.T @ scores) * (g / (g - 1.0) * ((n - 1.0) / (n - k)))
    return RobustFit(coef, cov, float(g - 1), int(n), g)


def balance_rows(panel, *, covariates: list[str], time: str, baseline: int, arm: str, cluster: str,
                 weights: str | None, min_cell: int) -> tuple[list[dict[str, Any]], float, float]:
    """Rows (covariate, means, difference, normalized difference, p-value, suppressed) and the
    joint F and p-value, as :func:`impactkit.checks.balance_table` on the baseline rows."""
    parts = map_blocks(_covariate_part, partitions(panel), covariates, time, baseline, arm, cluster, weights)
    rows = []
    for name in covariates:
        per = [p[name] for p in parts]
        arms = []
        for a in (0, 1):
            m = np.array([p["arms"][a] for p in per], dtype=float)
            m = m[m[:, 0] > 0]
            if not len(m):
                arms.append((0, np.nan, np.nan))
                continue
            n = int(m[:, 0].sum())
            total, mean, m2 = combine_moments(m[:, 1], m[:, 2], m[:, 3])
            arms.append((n, mean, float(np.sqrt(m2 / total * n / (n - 1))) if n > 1 else np.nan))
        (n0, m0, s0), (n1, m1, s1) = arms
        row = {"covariate": name, "suppressed": min(n0, n1) < min_cell}
        if row["suppressed"]:
            row.update(mean_control=np.nan, mean_treated=np.nan, difference=np.nan, normalized_difference=np.nan,
                       p_value=np.nan)
            rows.append(row)
            continue
        pooled = np.sqrt((s1**2 + s0**2) / 2)
        if max(p["max"] for p in per) == min(p["min"] for p in per):
            p_value = float("nan")
        else:
            _, _, p_value = cluster_robust_fit(*merge_cluster_sums([p["sums"] for p in per])).t_test(1)
        row["_center"] = ((n0 * m0 + n1 * m1) / (n0 + n1), pooled if pooled > 0 else 1.0)
        row.update(mean_control=m0, mean_treated=m1, difference=m1 - m0,
                   normalized_difference=(m1 - m0) / pooled if pooled > 0 else np.nan, p_value=p_value)
        rows.append(row)
    usable = [r["covariate"] for r in rows if not r["suppressed"] and np.isfinite(r["p_value"])]
    joint_f = joint_p = float("nan")
    if usable:
        centers = {r["covariate"]: r["_center"] for r in rows if "_center" in r}
        shift = np.array([centers[c][0] for c in usable])
        scale = np.array([centers[c][1] for c in usable])
        sums = map_blocks(_joint_part, partitions(panel), usable, time, baseline, arm, cluster, weights, shift, scale)
        fit = cluster_robust_fit(*merge_cluster_sums(sums))
        joint_f, joint_p, _, _ = fit.f_test(range(1, len(usable) + 1))
    return [{k: v for k, v in r.items() if k != "_center"} for r in rows], joint_f, joint_p
