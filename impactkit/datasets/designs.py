"""Small seeded simulators of three evaluation designs, each with its true effect.

- :func:`simulate_did_2x2`: a two-period difference-in-differences (half of the clusters
  adopt between the two rounds; groups differ in level, share a common trend); outcome a
  level (kg per hectare); the true ATT is ``effect``; 5% of units miss the follow-up.
- :func:`simulate_cluster_trial`: a cluster-randomised trial with a baseline and an endline;
  binary outcome (a share); treatment raises the probability by ``effect`` (percentage
  points / 100) in every unit, capped at 1, so the ATE is ``effect`` less the capped part
  (``DesignTruth.att`` is computed exactly from the probabilities); no attrition.
- :func:`simulate_encouragement`: a cluster-randomised encouragement design, baseline and
  endline; one-sided non-compliance (only offered units can take up, with probability
  ``take_up``); outcome monthly earnings in money, ``log(earnings)`` rises by ``effect``
  for those who take up, so the LATE in log points is ``effect`` and the ITT is
  ``take_up * effect`` in expectation.

Every draw comes from :func:`impactkit.seeds.rng` with its own purpose string, so the panels
are bit-identical for a seed. Units, clusters and effects are illustrative: they rest on
simulation only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impactkit.seeds import rng


@dataclass(frozen=True)
class DesignTruth:
    """The true effects of a simulated design (on the scale the analysis estimates)."""

    att: float                   # average effect on the treated (2x2), ATE (trial), ITT (encouragement)
    late: float | None = None    # effect on compliers (encouragement), log points
    take_up: float | None = None


def _clusters(n_clusters: int, per_cluster: int) -> tuple[np.ndarray, np.ndarray]:
    cluster = np.repeat(np.arange(n_clusters), per_cluster)
    unit = np.arange(n_clusters * per_cluster)
    return unit, cluster


def simulate_did_2x2(seed: int = 2019, n_clusters: int = 60, per_cluster: int = 20, effect: float = 120.0,
                     return_truth: bool = False):
    """Two rounds (2019, 2021); clusters ``< n_clusters / 2`` adopt in 2021."""
    unit, cluster = _clusters(n_clusters, per_cluster)
    n = unit.size
    gen = rng(seed, "design-2x2")
    adopt = cluster < n_clusters // 2
    cluster_level = gen.normal(0, 150, n_clusters)[cluster]
    level = 1500 + 200 * adopt + cluster_level + gen.normal(0, 250, n)   # groups differ in level
    rows = []
    for year, trend in ((2019, 0.0), (2021, 80.0)):
        treated = (adopt & (year == 2021)).astype(np.int64)
        y = level + trend + effect * treated + gen.normal(0, 200, n)
        rows.append(pd.DataFrame({"farm_id": unit, "round": year, "village": cluster, "adopted_year":
                                  np.where(adopt, 2021, 0), "treated": treated, "maize_yield": y,
                                  "plot_ha": np.round(gen.uniform(0.5, 3.0, n), 2)}))
    panel = pd.concat(rows, ignore_index=True)
    lost = gen.random(n) < 0.05
    panel = panel[~((panel["round"] == 2021) & lost[panel["farm_id"].to_numpy()])].reset_index(drop=True)
    panel["village"] = panel["village"].map(lambda c: f"V{c:03d}")
    panel["farm_id"] = panel["farm_id"].map(lambda u: f"F{u:05d}")
    return (panel, DesignTruth(att=effect)) if return_truth else panel


def simulate_cluster_trial(seed: int = 2022, n_clusters: int = 80, per_cluster: int = 25, effect: float = 0.08,
                           return_truth: bool = False):
    """Baseline 2022 and endline 2023; half the schools (clusters) randomised to treatment."""
    unit, cluster = _clusters(n_clusters, per_cluster)
    n = unit.size
    gen = rng(seed, "design-cluster-trial")
    arm = np.zeros(n_clusters, dtype=bool)
    arm[gen.permutation(n_clusters)[: n_clusters // 2]] = True
    treat = arm[cluster]
    school = gen.normal(0, 0.5, n_clusters)[cluster]
    propensity = -0.2 + school + gen.normal(0, 0.8, n)                     # persistent: baseline predicts endline
    base_p = 1 / (1 + np.exp(-propensity))
    rows = []
    for year in (2022, 2023):
        p = np.clip(base_p + (0.03 if year == 2023 else 0.0) + effect * (treat & (year == 2023)), 0, 1)
        y = (gen.random(n) < p).astype(np.int64)
        rows.append(pd.DataFrame({"pupil_id": unit, "year": year, "school": cluster,
                                  "cohort": np.where(treat, 2023, 0), "treated": (treat & (year == 2023)).astype(np.int64),
                                  "attends": y, "girl": (gen.random(n) < 0.5).astype(np.int64)}))
    panel = pd.concat(rows, ignore_index=True)
    # the true ATE: the average rise in the endline probability of treated pupils (clipping at 1 included)
    p_end = base_p + 0.03
    true_ate = float((np.clip(p_end + effect, 0, 1) - np.clip(p_end, 0, 1))[treat].mean())
    girl = panel.groupby("pupil_id")["girl"].transform("first")
    panel["girl"] = girl.astype(np.int64)
    panel["school"] = panel["school"].map(lambda c: f"S{c:03d}")
    panel["pupil_id"] = panel["pupil_id"].map(lambda u: f"P{u:05d}")
    return (panel, DesignTruth(att=true_ate)) if return_truth else panel


def simulate_encouragement(seed: int = 2024, n_clusters: int = 70, per_cluster: int = 20, effect: float = 0.25,
                           take_up: float = 0.6, return_truth: bool = False):
    """Baseline 2023 and endline 2024; half the villages offered; offered units take up with
    probability ``take_up`` (only in the endline)."""
    unit, cluster = _clusters(n_clusters, per_cluster)
    n = unit.size
    gen = rng(seed, "design-encouragement")
    offered_cluster = np.zeros(n_clusters, dtype=bool)
    offered_cluster[gen.permutation(n_clusters)[: n_clusters // 2]] = True
    offered = offered_cluster[cluster]
    complier = gen.random(n) < take_up
    mu = 5.5 + gen.normal(0, 0.2, n_clusters)[cluster] + gen.normal(0, 0.4, n)
    rows = []
    for year in (2023, 2024):
        z = (offered & (year == 2024)).astype(np.int64)
        d = (z.astype(bool) & complier).astype(np.int64)
        log_y = mu + (0.05 if year == 2024 else 0.0) + effect * d + gen.normal(0, 0.3, n)
        rows.append(pd.DataFrame({"trader_id": unit, "year": year, "village": cluster,
                                  "offer_year": np.where(offered, 2024, 0), "offered": z, "enrolled": d,
                                  "earnings": np.round(np.exp(log_y), 2),
                                  "female": (gen.random(n) < 0.4).astype(np.int64)}))
    panel = pd.concat(rows, ignore_index=True)
    panel["female"] = panel.groupby("trader_id")["female"].transform("first").astype(np.int64)
    panel["village"] = panel["village"].map(lambda c: f"W{c:03d}")
    panel["trader_id"] = panel["trader_id"].map(lambda u: f"T{u:05d}")
    truth = DesignTruth(att=take_up * effect, late=effect, take_up=take_up)
    return (panel, truth) if return_truth else panel
