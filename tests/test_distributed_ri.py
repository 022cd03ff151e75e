"""Randomization inference on the Dask engine by per-cluster sums equals the pandas engine's refits.

The pandas engine refits TWFE (ANCOVA) once per re-assignment; the Dask engine computes every
re-assignment's coefficient from per-cluster, per-label sums in one pass
(:mod:`impactkit.distributed.ri`). Both draw the same re-assignments from the same seed, so:
- every permutation statistic agrees to 1e-10 absolute (the engines solve the same least-squares
  problems by different routes: alternating projections or SVD on rows, normal equations on sums);
- the p-values are exactly equal (they count statistics at least as large as the observed one;
  no statistic lies within 1e-10 of it on these data, which the tests check).
Data: the simulated Peru TAP panel (weights, 3 adoption cohorts, communities as clusters) and the
public mpdta (Callaway & Sant'Anna 2021, via moderndid; states as clusters), written as Parquet
parts that split clusters across partitions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.errors import EstimationError, InputError

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def parts(frame: pd.DataFrame, n: int):
    """A dask DataFrame of ``frame`` in ``n`` row blocks (units and clusters split across them)."""
    import dask.dataframe as dd

    return dd.from_pandas(frame.reset_index(drop=True), npartitions=n, sort=False)


@pytest.fixture(scope="module")
def peru() -> pd.DataFrame:
    panel = pd.read_parquet(ROOT / "analyses" / "peru_tap" / "panel.parquet")
    panel["log_income"] = np.log(panel["income"])
    # a third of the communities: 999 refits of the pandas engine stay quick
    keep = np.sort(panel["community_id"].unique())[::3]
    return panel[panel["community_id"].isin(keep)].reset_index(drop=True)


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    from moderndid import load_mpdta

    frame = load_mpdta().to_pandas().rename(columns={"first.treat": "first_treat"})
    frame["state"] = frame["countyreal"] // 1000
    return frame


def assert_same_ri(dask_ri, pandas_ri) -> None:
    assert dask_ri.n_permutations == pandas_ri.n_permutations and dask_ri.exact == pandas_ri.exact
    assert dask_ri.n_clusters == pandas_ri.n_clusters and dask_ri.n_assignments == pandas_ri.n_assignments
    assert abs(dask_ri.estimate - pandas_ri.estimate) <= TOL
    np.testing.assert_allclose(dask_ri.permutation_stats, pandas_ri.permutation_stats, rtol=0, atol=TOL)
    # no statistic within the tolerance of the observed one: the p-values must then be equal
    gap = np.abs(np.abs(pandas_ri.permutation_stats) - abs(pandas_ri.estimate))
    assert gap.min() > 1e-8
    assert dask_ri.p_value == pandas_ri.p_value


@pytest.mark.parametrize("weights", [None, "weight"])
def test_twfe_ri_on_peru_equals_pandas_refits(dask_cluster, peru, weights):
    from impactkit.did import did
    from impactkit.distributed.ri import twfe_randomization_inference

    ref = did(peru, method="twfe", y="log_income", unit="household_id", time="wave", treated="treated",
              cohort="cohort", cluster="community_id", weights=weights)
    pandas_ri = ref.randomization_inference(n_permutations=199, seed=11)
    dask_ri = twfe_randomization_inference(parts(peru, 5), y="log_income", unit="household_id", time="wave",
                                           cohort="cohort", cluster="community_id", weights=weights,
                                           n_permutations=199, seed=11)
    assert dask_ri.n_obs == pandas_ri.n_obs == int(peru["log_income"].notna().sum())
    assert_same_ri(dask_ri, pandas_ri)


def test_twfe_ri_with_a_covariate_on_mpdta_equals_pandas(dask_cluster, mpdta):
    from impactkit.did import did
    from impactkit.distributed.ri import twfe_randomization_inference

    frame = mpdta.assign(lpop_trend=mpdta["lpop"] * (mpdta["year"] - 2003))  # lpop is time-invariant
    ref = did(frame, method="twfe", y="lemp", unit="countyreal", time="year", cohort="first_treat",
              cluster="state", covariates=["lpop_trend"])
    pandas_ri = ref.randomization_inference(n_permutations=99, seed=3)
    dask_ri = twfe_randomization_inference(parts(frame, 3), y="lemp", unit="countyreal", time="year",
                                           cohort="first_treat", cluster="state", covariates=["lpop_trend"],
                                           n_permutations=99, seed=3)
    assert_same_ri(dask_ri, pandas_ri)


def test_twfe_ri_enumerates_every_assignment_as_pandas(dask_cluster, mpdta):
    """Six states (two labels among them): C(6, 3) = 20 <= 99 assignments, all enumerated."""
    from impactkit.did import did
    from impactkit.distributed.ri import twfe_randomization_inference

    states = mpdta.groupby("state")["first_treat"].first()
    chosen = [*states[states == 0].index[:3], *states[states == 2007].index[:3]]
    frame = mpdta[mpdta["state"].isin(chosen)]
    ref = did(frame, method="twfe", y="lemp", unit="countyreal", time="year", cohort="first_treat", cluster="state")
    pandas_ri = ref.randomization_inference(n_permutations=99, seed=1)
    dask_ri = twfe_randomization_inference(parts(frame, 2), y="lemp", unit="countyreal", time="year",
                                           cohort="first_treat", cluster="state", n_permutations=99, seed=1)
    assert dask_ri.exact and dask_ri.n_permutations == dask_ri.n_assignments == 20
    np.testing.assert_allclose(dask_ri.permutation_stats, pandas_ri.permutation_stats, rtol=0, atol=TOL)
    assert dask_ri.p_value == pandas_ri.p_value


def test_twfe_ri_does_not_depend_on_partitions_or_workers(dask_cluster, mpdta):
    from distributed import Client, LocalCluster

    from impactkit.distributed.ri import twfe_randomization_inference

    args = dict(y="lemp", unit="countyreal", time="year", cohort="first_treat", cluster="state",
                n_permutations=300, seed=8)
    two = twfe_randomization_inference(parts(mpdta, 4), **args)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as one_worker:
        one = twfe_randomization_inference(parts(mpdta, 4), client=one_worker, **args)
    np.testing.assert_array_equal(one.permutation_stats, two.permutation_stats)   # same blocks, same sums
    other = twfe_randomization_inference(parts(mpdta, 7), **args)
    np.testing.assert_allclose(other.permutation_stats, two.permutation_stats, rtol=0, atol=TOL)
    assert other.p_value == two.p_value


def test_twfe_ri_refuses_what_has_no_per_cluster_form(dask_cluster, mpdta):
    from impactkit.distributed.ri import NotReducible, twfe_randomization_inference

    args = dict(y="lemp", unit="countyreal", time="year", cohort="first_treat", n_permutations=50, seed=1)
    by_year = mpdta.assign(block=mpdta["year"])   # cohorts vary within a year: refused by the pandas rule too
    with pytest.raises(InputError, match="varies within .* block"):
        twfe_randomization_inference(parts(by_year, 2), cluster="block", **args)
    never = mpdta.assign(block=mpdta["countyreal"] % 2 + 2 * (mpdta["year"] >= 2005), first_treat=0)
    never.loc[never["countyreal"] % 2 == 0, "first_treat"] = 2007
    with pytest.raises(NotReducible, match="span several 'block' groups"):
        twfe_randomization_inference(parts(never, 2), cluster="block", **args)
    with pytest.raises(EstimationError, match="same assignment"):
        twfe_randomization_inference(parts(mpdta.assign(first_treat=0), 2), cluster="state", **args)


def test_ancova_ri_from_cluster_sums_equals_refits_on_rows(dask_cluster, peru):
    """The permuted ANCOVA coefficients from per-cluster sums equal WLS refits on the rows."""
    from impactkit.analysis.context import final_with_baseline
    from impactkit.analysis.steps.estimation import ancova_design, ancova_reassignments
    from impactkit.distributed.ancova import ancova_fit
    from impactkit.distributed.data import by_unit
    from impactkit.distributed.ri import _ancova_block, ancova_randomization_inference
    from impactkit.numerics.ols import least_squares

    panel = peru.assign(ever_treated=(peru["cohort"].fillna(0) > 0).astype(int))
    final, baseline = int(panel["wave"].max()), int(panel["wave"].min())
    fit, _, _, sums = ancova_fit(by_unit(parts(panel, 4), "household_id"), unit="household_id", time="wave", final=final, baseline=baseline,
                                 y="log_income", controls=["herd_size"], cluster="community_id", weights="weight")
    permuted, n_clusters = ancova_randomization_inference(sums, draws=60, seed=4)
    rows = final_with_baseline(panel, "household_id", "wave", final, baseline, ["log_income", "herd_size"]).dropna(
        subset=["log_income", "log_income_baseline", "herd_size_baseline"])
    X, y = ancova_design(rows, "log_income", ["herd_size"])
    labels, codes = np.unique(rows["community_id"].to_numpy(), return_inverse=True)
    arm = rows.groupby("community_id")["ever_treated"].max().to_numpy(dtype=float)
    assert n_clusters == labels.size and np.array_equal(arm, sums.arm)
    expected = []
    for arms in ancova_reassignments(arm, 60, 4):
        X[:, 1] = arms[codes]
        expected.append(least_squares(y, X, rows["weight"].to_numpy(float), solver="svd").coef[1])
    np.testing.assert_allclose(permuted, expected, rtol=0, atol=TOL)
    assert np.std(permuted) > 0.01   # the permutations move the estimate
    # at the observed arms the sums give the fitted coefficient
    shared = np.concatenate([sums.grams, sums.crosses[:, :, None]], axis=2)
    assert abs(_ancova_block(shared, sums.arm[None, :])[0] - fit.params[1]) <= TOL


def test_analysis_omits_ri_as_pandas_when_clusters_mix_adoption_periods(dask_cluster, tmp_path):
    """mpdta clustered by county % 29: every cluster mixes adoption years. Both engines leave TWFE
    randomization inference out with the same reason (no single adoption period to re-assign), and
    ANCOVA's (no single arm per cluster; the pandas engine used to permute the clusters' largest arm,
    all 1 here, and report a meaningless p-value); the rest of the analysis still runs, equal."""
    from impactkit.analysis.steps.estimation import mixed_arms_reason, mixed_cohorts_reason
    from impactkit.distributed.analysis import run_analysis_on
    from impactkit.distributed.ri import CohortVaries, twfe_randomization_inference
    import importlib.util

    spec = importlib.util.spec_from_file_location("whole_analysis", Path(__file__).parent / "test_distributed_analysis.py")
    whole_analysis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(whole_analysis)
    folder = whole_analysis.mpdta_folder(tmp_path / "mpdta")
    for part in sorted((folder / "panel").glob("*.parquet")):
        frame = pd.read_parquet(part)
        frame.assign(state=frame["countyreal"] % 29).to_parquet(part, index=False)
    dask, pandas = run_analysis_on(folder), run_analysis_on(folder, engine="pandas")
    reason = mixed_cohorts_reason("first_treat", "state", 29)
    assert dask["omitted"]["randomization_inference"] == pandas["omitted"]["randomization_inference"] == reason
    assert (dask["omitted"]["randomization_inference_ancova"] == pandas["omitted"]["randomization_inference_ancova"]
            == mixed_arms_reason("state", 29))
    assert "randomization_inference_ancova" not in dask and "randomization_inference_ancova" not in pandas
    assert abs(dask["wild_bootstrap"]["p_value"] - pandas["wild_bootstrap"]["p_value"]) <= TOL
    assert [r["estimate"] for r in dask["estimators"]] == pytest.approx([r["estimate"] for r in pandas["estimators"]],
                                                                       abs=TOL)
    with pytest.raises(CohortVaries, match="varies within 29 state group"):
        twfe_randomization_inference(parts(pd.read_parquet(folder / "panel"), 2), y="lemp", unit="countyreal",
                                     time="year", cohort="first_treat", cluster="state", n_permutations=20, seed=1)
