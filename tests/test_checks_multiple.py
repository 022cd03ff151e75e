"""Multiple-testing corrections: hand-computable vectors, statsmodels, and Monte Carlo FWER/power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests

from impactkit.checks import holm, multiple_testing, romano_wolf, sharpened_q, westfall_young
from impactkit.checks.multiple import stepdown_maxt, stepdown_minp
from impactkit.errors import EstimationError, InputError
from impactkit.seeds import rng

OUTCOMES = ["y0", "y1", "y2", "y3"]


def family_sample(seed: int, *, n: int = 60, rho: float = 0.5, effects=None, n_clusters: int | None = None,
                  cluster_sd: float = 0.5) -> pd.DataFrame:
    """Four outcomes, equicorrelated (rho), treatment randomized (by cluster if n_clusters)."""
    gen = rng(seed, "test-multiple")
    m = len(OUTCOMES)
    cov = np.full((m, m), rho) + (1 - rho) * np.eye(m)
    y = gen.multivariate_normal(np.zeros(m), cov, size=n)
    if n_clusters:
        cluster = np.arange(n) % n_clusters
        t = gen.permutation(np.arange(n_clusters) % 2)[cluster]
        y = y + cluster_sd * gen.normal(size=(n_clusters, 1))[cluster]
    else:
        cluster = np.zeros(n, dtype=int)
        t = gen.permutation(np.arange(n) % 2)
    if effects is not None:
        y = y + np.outer(t, effects)
    frame = pd.DataFrame(y, columns=OUTCOMES)
    frame["t"], frame["village"], frame["x"] = t, cluster, gen.normal(size=n)
    return frame


# --- Holm ------------------------------------------------------------------------------

def test_holm_by_hand_and_against_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    expected = np.array([0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm(p), expected, atol=1e-15)
    gen = rng(3, "holm")
    for _ in range(20):
        v = gen.uniform(0, 0.2, 7)
        np.testing.assert_allclose(holm(v), multipletests(v, method="holm")[1], atol=1e-14)


# --- sharpened q (Anderson 2008) --------------------------------------------------------

def anderson_reference(p: np.ndarray) -> np.ndarray:
    """Literal transcription of the logic of Anderson's (2008) Stata code (loop from q = 1 down)."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    rank = np.empty(m, dtype=int)
    rank[order] = np.arange(1, m + 1)
    qvals = np.ones(m)
    for step in range(1000, 0, -1):
        q = step / 1000
        q1 = q / (1 + q)                                   # stage 1 level
        fail = p > rank * q1 / m
        r1 = max([rank[i] for i in range(m) if not fail[i]], default=0)
        q2 = q1 * (m / (m - r1)) if r1 < m else np.inf     # stage 2 level
        fail2 = p > rank * q2 / m
        r2 = max([rank[i] for i in range(m) if not fail2[i]], default=0)
        for i in range(m):
            if rank[i] <= r2:
                qvals[i] = q                               # last replacement = smallest q
    return qvals


def test_sharpened_q_hand_example():
    # p = (0.001, 0.2), M = 2.
    # H1: stage 1 rejects when 0.001 <= q1 / 2, q1 = q/(1+q): q = 0.002 gives q1/2 = 0.000998 (no),
    #     q = 0.003 gives 0.0014955 (yes; r1 = 1, q2 = 2 q1, stage 2 keeps it) -> q-value 0.003.
    # H2: rank 2 needs 0.2 <= q2; with r1 = 1, q2 = 2 q1 >= 0.2 <=> q1 >= 0.1 <=> q >= 0.1111...
    #     -> first grid point 0.112 (r1 = 2 would need q1 >= 0.2, later) -> q-value 0.112.
    np.testing.assert_allclose(sharpened_q([0.001, 0.2]), [0.003, 0.112], atol=1e-12)


def test_sharpened_q_matches_reference_loop():
    gen = rng(5, "sharpened")
    vectors = [gen.uniform(0, 0.1, 6), gen.uniform(0, 1, 9), np.array([0.5, 0.5, 0.01, 0.9]),
               np.concatenate([gen.uniform(0, 0.01, 4), gen.uniform(0.3, 1, 4)])]
    for v in vectors:
        np.testing.assert_allclose(sharpened_q(v), anderson_reference(v), atol=1e-12)
    # q-values are monotone in p (same order) and lie on the 0.001 grid
    v = vectors[1]
    q = sharpened_q(v)
    assert np.all(np.diff(q[np.argsort(v)]) >= 0)
    np.testing.assert_allclose(q * 1000, np.round(q * 1000), atol=1e-9)


def test_pvalue_input_errors():
    with pytest.raises(InputError):
        holm([0.1, 1.2])
    with pytest.raises(InputError):
        sharpened_q([np.nan, 0.1])


# --- step-down resampling rules ------------------------------------------------------------

def test_stepdown_maxt_by_hand():
    t_obs = np.array([3.0, 0.5])
    t_res = np.array([[0.5, 0.2], [2.0, 0.9], [3.1, 0.1], [0.2, 1.2]])
    # step 1 (H0, |t| = 3): row maxima 0.5, 2.0, 3.1, 1.2 -> one >= 3 -> (1 + 1) / 5 = 0.4
    # step 2 (H1, |t| = 0.5): 0.2, 0.9, 0.1, 1.2 -> two >= 0.5 -> (1 + 2) / 5 = 0.6
    np.testing.assert_allclose(stepdown_maxt(t_obs, t_res), [0.4, 0.6])
    # minP with identical null distributions per outcome orders hypotheses like maxT
    same = np.column_stack([t_res[:, 0], t_res[:, 0]])
    p_min = stepdown_minp(np.array([3.0, 0.5]), same)
    assert p_min[0] <= p_min[1]


def test_observed_estimates_match_statsmodels_cluster_fit():
    frame = family_sample(7, n=120, n_clusters=40, effects=[0.4, 0, 0, 0])
    res = multiple_testing(frame, outcomes=OUTCOMES, treat="t", controls="x", cluster="village", B=99, seed=1)
    table = res.tidy().set_index("outcome")
    for y in OUTCOMES:
        fit = smf.ols(f"{y} ~ t + x", frame).fit(cov_type="cluster", cov_kwds={"groups": frame["village"]}, use_t=True)
        assert table.loc[y, "estimate"] == pytest.approx(fit.params["t"], abs=1e-12)
        assert table.loc[y, "std_error"] == pytest.approx(fit.bse["t"], rel=1e-10)
        assert table.loc[y, "p_value"] == pytest.approx(fit.pvalues["t"], rel=1e-8)
    np.testing.assert_allclose(table["holm"], holm(table["p_value"]))
    # step-down adjusted p-values are ordered like |t| (monotone by construction)
    by_t = np.argsort(-np.abs(table["estimate"] / table["std_error"]).to_numpy())
    assert np.all(np.diff(table["romano_wolf"].to_numpy()[by_t]) >= 0)
    assert np.all(np.diff(table["westfall_young"].to_numpy()[by_t]) >= 0)


def test_cluster_moment_path_equals_row_level_regressions():
    """The per-cluster-sums shortcut and explicit row-level weighted regressions agree to 1e-10 relative."""
    from impactkit.checks.multiple import bootstrap_t, family_arrays, observed_stats, permutation_t

    frame = family_sample(12, n=150, n_clusters=30, effects=[0.3, 0, 0, 0])
    family = family_arrays(frame, outcomes=OUTCOMES, treat="t", controls="x", cluster="village")
    est = observed_stats(family)[0]
    for fast, slow in ((bootstrap_t(family, est, 99, 3, fast=True), bootstrap_t(family, est, 99, 3, fast=False)),
                       (permutation_t(family, 99, 3, fast=True), permutation_t(family, 99, 3, fast=False))):
        np.testing.assert_allclose(fast, slow, rtol=1e-10)


def test_deterministic_given_seed_and_consistent_with_standalone_functions():
    frame = family_sample(8, n=80, effects=[0.6, 0.3, 0, 0])
    a = multiple_testing(frame, outcomes=OUTCOMES, treat="t", B=199, seed=42).tidy()
    b = multiple_testing(frame, outcomes=OUTCOMES, treat="t", B=199, seed=42).tidy()
    pd.testing.assert_frame_equal(a, b)
    rw = romano_wolf(frame, outcomes=OUTCOMES, treat="t", B=199, seed=42)
    wy = westfall_young(frame, outcomes=OUTCOMES, treat="t", B=199, seed=42)
    np.testing.assert_array_equal(rw.to_numpy(), a["romano_wolf"].to_numpy())
    np.testing.assert_array_equal(wy.to_numpy(), a["westfall_young"].to_numpy())
    c = multiple_testing(frame, outcomes=OUTCOMES, treat="t", B=199, seed=43).tidy()
    assert not np.array_equal(a["romano_wolf"].to_numpy(), c["romano_wolf"].to_numpy())
    assert res_json_ready(multiple_testing(frame, outcomes=OUTCOMES, treat="t", B=99, seed=1).to_dict())


def res_json_ready(d) -> bool:
    import json

    return bool(json.dumps(d, allow_nan=False))


def test_bad_input():
    frame = family_sample(9)
    with pytest.raises(InputError, match="'nope'"):
        multiple_testing(frame, outcomes=["y0", "nope"], treat="t", B=99)
    with pytest.raises(EstimationError, match="'t' is constant"):
        romano_wolf(frame.assign(t=0), outcomes=OUTCOMES, treat="t", B=99)
    with pytest.raises(InputError, match="B must"):
        westfall_young(frame, outcomes=OUTCOMES, treat="t", B=5)
    with pytest.raises(InputError, match="statistic"):
        westfall_young(frame, outcomes=OUTCOMES, treat="t", B=99, statistic="maxP")


# --- Monte Carlo ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("clustered", [False, True])
def test_familywise_error_rate_under_complete_null(clustered):
    """FWER <= 0.05 + 3 MC standard errors (sqrt(.05 .95 / 1000) = 0.0069 -> bound 0.071), 1,000 draws.

    Unadjusted tests on 4 correlated outcomes reject at least once far more often (~0.16).
    """
    sims, alpha = 1000, 0.05
    hits = {"romano_wolf": 0, "westfall_young": 0, "p_value": 0}
    for s in range(sims):
        frame = family_sample(s, n=80 if clustered else 60, n_clusters=40 if clustered else None)
        table = multiple_testing(frame, outcomes=OUTCOMES, treat="t", cluster="village" if clustered else None,
                                 B=99, seed=s).table
        for key in hits:
            hits[key] += bool((table[key] <= alpha).any())
    rates = {k: v / sims for k, v in hits.items()}
    print(f"FWER (clustered={clustered}): {rates}")
    assert rates["romano_wolf"] <= alpha + 0.021
    assert rates["westfall_young"] <= alpha + 0.021
    assert rates["p_value"] > 0.10  # the family really needs a correction


@pytest.mark.slow
def test_power_romano_wolf_beats_holm_and_bonferroni_under_alternatives():
    """Correlated outcomes (rho = 0.8), two true effects of 0.45 SD, 400 draws: per-hypothesis power.

    Romano-Wolf uses the dependence, so its power must exceed Holm's (which exceeds Bonferroni's);
    Benjamini-Hochberg (an FDR, not FWER, procedure) is reported alongside.
    """
    sims, alpha = 400, 0.05
    effects = np.array([0.45, 0.45, 0.0, 0.0])
    power = {"romano_wolf": 0.0, "westfall_young": 0.0, "holm": 0.0, "bonferroni": 0.0, "bh": 0.0}
    for s in range(sims):
        frame = family_sample(10_000 + s, n=100, rho=0.8, effects=effects)
        table = multiple_testing(frame, outcomes=OUTCOMES, treat="t", B=199, seed=s).table
        p = table["p_value"].to_numpy()
        adjusted = {"romano_wolf": table["romano_wolf"].to_numpy(), "westfall_young": table["westfall_young"].to_numpy(),
                    "holm": table["holm"].to_numpy(), "bonferroni": np.minimum(1, 4 * p),
                    "bh": multipletests(p, method="fdr_bh")[1]}
        for key, adj in adjusted.items():
            power[key] += float(np.mean(adj[:2] <= alpha)) / sims
    print(f"power per true hypothesis: {power}")
    assert power["romano_wolf"] > power["holm"] >= power["bonferroni"]
    assert power["westfall_young"] > power["holm"]
