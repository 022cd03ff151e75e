"""Randomization inference: exact enumeration vs brute force, size under the null, determinism.

Tolerances:
- exact p-values equal brute-force enumeration exactly (same tie rule, 1e-10 relative);
  the enumerated permutation distributions agree to 1e-12 after sorting;
- rejection rate of a true sharp null at 5% over 600 simulated data sets (99 random
  permutations each) in [0.025, 0.075] (RI is exact: the rate is 0.05 up to ties; Monte
  Carlo s.d. 0.009, so the band is +-2.8 s.d.);
- the constant-effect interval: p(tau) computed from scratch on y - tau*D crosses alpha
  at each endpoint (within 1e-6 of the permutation spread).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from impactkit.did.ri import RandomizationResult, randomization_inference
from impactkit.errors import EstimationError, InputError
from impactkit.results import to_plain

TIE_RTOL = 1e-10


def panel(n_clusters: int, treated_clusters, seed: int, effect: float = 0.0, units_per_cluster: int = 2,
          periods: int = 2, strata=None) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clusters), units_per_cluster * periods)
    unit = np.repeat(np.arange(n_clusters * units_per_cluster), periods)
    time = np.tile(np.arange(periods), n_clusters * units_per_cluster)
    treat = np.isin(cl, list(treated_clusters)).astype(np.int64)
    post = (time >= periods // 2).astype(float)
    d = treat * post
    y = effect * d + 0.3 * post + g.normal(size=n_clusters)[cl] + g.normal(size=unit.max() + 1)[unit] \
        + g.normal(size=cl.size) * (1 + 0.5 * (cl % 3))
    frame = pd.DataFrame({"cluster": cl, "unit": unit, "time": time, "treat": treat, "D": d, "y": y})
    if strata is not None:
        frame["stratum"] = np.asarray(strata)[cl]
    return frame


def did_estimate(frame: pd.DataFrame) -> float:
    """2x2 difference in means, computed from the assignment column ``treat``."""
    treat = frame["treat"].to_numpy() == 1
    post = frame["time"].to_numpy() >= frame["time"].max() / 2
    y = frame["y"].to_numpy(dtype=float)
    return float((y[treat & post].mean() - y[treat & ~post].mean())
                 - (y[~treat & post].mean() - y[~treat & ~post].mean()))


def brute_force_p(frame, estimator, assignments_per_cluster, observed):
    stats = []
    cl = frame["cluster"].to_numpy()
    for labels in assignments_per_cluster:
        stats.append(estimator(frame.assign(treat=np.asarray(labels)[cl])))
    stats = np.array(stats)
    tol = TIE_RTOL * max(1.0, abs(observed))
    return float(np.mean(np.abs(stats) >= abs(observed) - tol)), stats


def run(frame, **kw):
    args = dict(y="y", unit="unit", time="time", treated_cluster_col="treat", cluster="cluster",
                estimator=did_estimate)
    args.update(kw)
    return randomization_inference(frame, **args)


# --------------------------------------------------------------------------- exactness
def test_exact_p_value_equals_brute_force_enumeration():
    """8 clusters, 4 treated: all C(8,4) = 70 assignments."""
    frame = panel(8, [0, 2, 3, 6], seed=1, effect=1.2)
    res = run(frame, n_permutations=999, seed=3)
    assert res.exact and res.n_permutations == 70 and res.n_assignments == 70
    assignments = []
    for chosen in itertools.combinations(range(8), 4):
        labels = np.zeros(8, dtype=np.int64)
        labels[list(chosen)] = 1
        assignments.append(labels)
    p_brute, stats = brute_force_p(frame, did_estimate, assignments, did_estimate(frame))
    assert res.p_value == p_brute
    np.testing.assert_allclose(np.sort(res.permutation_stats), np.sort(stats), rtol=1e-12, atol=1e-12)
    assert res.estimate == did_estimate(frame)


def test_exact_p_value_within_strata_equals_brute_force():
    """Two strata of 4 clusters, 2 treated in each: 6 x 6 = 36 assignments."""
    strata = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    frame = panel(8, [0, 3, 4, 5], seed=2, effect=0.8, strata=strata)
    res = run(frame, strata="stratum", n_permutations=999)
    assert res.exact and res.n_permutations == 36
    assignments = []
    for first in itertools.combinations(range(4), 2):
        for second in itertools.combinations(range(4, 8), 2):
            labels = np.zeros(8, dtype=np.int64)
            labels[list(first) + list(second)] = 1
            assignments.append(labels)
    p_brute, stats = brute_force_p(frame, did_estimate, assignments, did_estimate(frame))
    assert res.p_value == p_brute
    np.testing.assert_allclose(np.sort(res.permutation_stats), np.sort(stats), rtol=1e-12, atol=1e-12)


def test_staggered_cohort_labels_are_permuted_across_clusters():
    """Cohorts {0 (never), 2, 3} on 6 clusters, two each: 6!/(2!2!2!) = 90 distinct assignments."""
    g = np.random.default_rng(4)
    n_clusters, periods = 6, 4
    cohort_of_cluster = np.array([2, 0, 3, 3, 0, 2])
    cl = np.repeat(np.arange(n_clusters), periods)
    time = np.tile(np.arange(periods), n_clusters)
    frame = pd.DataFrame({"cluster": cl, "unit": cl, "time": time, "treat": cohort_of_cluster[cl]})
    frame["y"] = g.normal(size=cl.size) + 0.7 * ((frame.treat > 0) & (frame.time >= frame.treat))

    def event_contrast(f: pd.DataFrame) -> float:
        cohort = f["treat"].to_numpy()
        on = (cohort > 0) & (f["time"].to_numpy() >= cohort)
        y = f["y"].to_numpy()
        return float(y[on].mean() - y[~on].mean())

    res = run(frame, estimator=event_contrast, n_permutations=999)
    assert res.exact and res.n_permutations == 90
    distinct = sorted(set(itertools.permutations(cohort_of_cluster.tolist())))
    assert len(distinct) == 90
    p_brute, stats = brute_force_p(frame, event_contrast, distinct, event_contrast(frame))
    assert res.p_value == p_brute
    np.testing.assert_allclose(np.sort(res.permutation_stats), np.sort(stats), rtol=1e-12, atol=1e-12)
    # random permutations keep the number of clusters per cohort
    res_random = run(frame, estimator=event_contrast, n_permutations=50, seed=1)
    assert not res_random.exact and res_random.n_permutations == 50


def test_unit_level_design_counts_units():
    frame = panel(3, [0], seed=5, units_per_cluster=2)            # 6 units, 2 treated
    res = run(frame, design="unit", n_permutations=999)
    assert res.exact and res.n_assignments == math.comb(6, 2) and res.n_clusters == 6


# --------------------------------------------------------------------------- size and determinism
@pytest.mark.slow
def test_rejection_rate_under_true_sharp_null_is_alpha():
    """600 data sets, 12 clusters (6 treated at random), no effect: rejection at 5% ~ 0.05."""
    n_sims = 600
    rejected = np.empty(n_sims, dtype=bool)
    for s in range(n_sims):
        g = np.random.default_rng([77, s])
        frame = panel(12, g.permutation(12)[:6].tolist(), seed=10_000 + s, effect=0.0)
        rejected[s] = run(frame, n_permutations=99, seed=s).p_value <= 0.05
    assert 0.025 <= rejected.mean() <= 0.075, rejected.mean()


def test_seeded_determinism():
    frame = panel(14, [1, 2, 5, 7, 8, 11, 13], seed=6, effect=0.5)
    a = run(frame, n_permutations=199, seed=42, treatment="D", ci=True)
    b = run(frame, n_permutations=199, seed=42, treatment="D", ci=True)
    c = run(frame, n_permutations=199, seed=43)
    assert not a.exact
    assert a.permutation_stats.tobytes() == b.permutation_stats.tobytes()
    assert (a.p_value, a.conf_low, a.conf_high) == (b.p_value, b.conf_low, b.conf_high)
    assert a.permutation_stats.tobytes() != c.permutation_stats.tobytes()
    assert a.p_value == (1 + np.sum(np.abs(a.permutation_stats) >= abs(a.estimate) * (1 - TIE_RTOL))) / 200


# --------------------------------------------------------------------------- interval
@pytest.mark.parametrize("n_permutations", [999, 199])
def test_constant_effect_interval_inverts_the_test(n_permutations):
    """p(tau) recomputed from scratch on y - tau*D (sharp null of no effect) crosses alpha at
    each endpoint; the point estimate lies inside. 999 -> exact (C(9,4) = 126), 199 -> random."""
    frame = panel(9, [0, 4, 5, 8], seed=8, effect=1.0)
    res = run(frame, n_permutations=n_permutations, seed=9, treatment="D", ci=True, alpha=0.1)
    assert res.conf_low < res.estimate < res.conf_high
    spread = float(np.std(res.permutation_stats))
    delta = 1e-6 * spread

    def p_at(tau: float) -> float:
        shifted = frame.assign(y=frame["y"] - tau * frame["D"])
        return run(shifted, n_permutations=n_permutations, seed=9).p_value

    assert p_at(res.conf_low + delta) >= 0.1 > p_at(res.conf_low - delta)
    assert p_at(res.conf_high - delta) >= 0.1 > p_at(res.conf_high + delta)


def test_nonlinear_estimator_cannot_give_interval():
    frame = panel(8, [0, 1, 2, 3], seed=3)

    def median_gap(f):
        treat = f["treat"].to_numpy() == 1
        return float(np.median(np.exp(f["y"].to_numpy()[treat])) - np.median(np.exp(f["y"].to_numpy()[~treat])))

    with pytest.raises(EstimationError, match="not linear"):
        run(frame, estimator=median_gap, treatment="D", ci=True)


# --------------------------------------------------------------------------- interface and errors
def test_result_interface_and_plot():
    frame = panel(8, [0, 2, 3, 6], seed=1, effect=1.2)
    res = run(frame, treatment="D", ci=True, term="did")
    assert isinstance(res, RandomizationResult)
    tidy = res.tidy()
    assert {"term", "estimate", "p_value", "conf_low", "conf_high", "n", "n_permutations"} <= set(tidy.columns)
    assert tidy.loc[0, "term"] == "did" and tidy.loc[0, "n"] == len(frame)
    d = res.to_dict()
    assert d["exact"] is True and to_plain(d) == d
    assert any("enumerated" in n for n in res.notes())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = res.plot()
    assert "Histogram" in fig._impactkit_alt_text and "0." in fig._impactkit_alt_text
    assert len(fig.axes[0].lines) == 2
    plt.close(fig)


def test_bad_inputs_raise():
    frame = panel(6, [0, 1, 2], seed=1)
    with pytest.raises(InputError, match="column 'nope'"):
        run(frame, y="nope")
    bad = frame.copy()
    bad.loc[0, "treat"] = 1 - bad.loc[0, "treat"]
    with pytest.raises(InputError, match="treat: varies within 1 cluster"):
        run(bad)
    missing = frame.copy()
    missing.loc[3, "y"] = np.nan
    with pytest.raises(InputError, match="y: 1 missing"):
        run(missing)
    with pytest.raises(EstimationError, match="nothing to re-randomise"):
        run(frame.assign(treat=1))
    with pytest.raises(InputError, match="treatment"):
        run(frame, ci=True)
    with pytest.raises(InputError, match="n_permutations"):
        run(frame, n_permutations=0)
    with pytest.raises(InputError, match="design"):
        run(frame, design="household")
    with pytest.raises(EstimationError, match="non-finite"):
        run(frame, estimator=lambda f: float("nan"))
