"""The Dask engine equals the pandas engine on data that fit in memory.

A small partitioned panel (the simulated Peru TAP panel written as 4 Parquet files by
household) on one in-process LocalCluster (two single-threaded workers) for the session.
Tolerance: 1e-10 absolute on every estimate, standard error, interval bound, p-value and
critical value (the engines add the same sums in a different order; rounding differs in
the last bits); counts and example keys exactly equal.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.errors import ImpactkitWarning

ROOT = Path(__file__).resolve().parents[1]
PERU = ROOT / "analyses" / "peru_tap"
CONTRACT = ROOT / "data_contracts" / "peru_tap.yaml"
TOL = 1e-10

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def write_parts(frame: pd.DataFrame, folder: Path, n: int = 4, unit: str = "household_id") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(frame[unit].unique(), n)):
        frame[frame[unit].isin(chunk)].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="session")
def peru_panel() -> pd.DataFrame:
    panel = pd.read_parquet(PERU / "panel.parquet")
    panel["log_income"] = np.log(panel["income"])
    return panel


@pytest.fixture(scope="session")
def peru_parts(peru_panel, tmp_path_factory) -> Path:
    return write_parts(peru_panel, tmp_path_factory.mktemp("peru") / "panel")


@pytest.fixture(scope="session")
def balanced_parts(peru_panel, tmp_path_factory):
    complete = peru_panel.groupby("household_id")["log_income"].transform(lambda s: s.notna().sum()) == 6
    balanced = peru_panel[complete].reset_index(drop=True)
    return balanced, write_parts(balanced, tmp_path_factory.mktemp("balanced") / "panel", n=3)


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, tol: float = TOL) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        if pd.api.types.is_float_dtype(a[column]):
            np.testing.assert_allclose(a[column].to_numpy(), b[column].to_numpy(), rtol=0, atol=tol, err_msg=column)
        else:
            assert (a[column].to_numpy() == b[column].to_numpy()).all(), column


# ------------------------------------------------------------------------------------------ TWFE / 2x2
def test_twfe_crv1_and_wild_bootstrap_equal_pandas(dask_cluster, peru_panel, peru_parts):
    from impactkit.did import did
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.twfe import estimate_twfe, wild_bootstrap_from_sums

    res, reduced = estimate_twfe(read_panel(peru_parts), y="log_income", unit="household_id", time="wave",
                                 treated="treated", cohort="cohort", cluster="community_id")
    ref = did(peru_panel, method="twfe", y="log_income", unit="household_id", time="wave", treated="treated",
              cohort="cohort", cluster="community_id")
    assert_frames_close(res.tidy(), ref.tidy())
    assert (res.n_obs, res.n_units, res.n_clusters, res.df_t) == (ref.n_obs, ref.n_units, ref.n_clusters, ref.df_t)
    wild = wild_bootstrap_from_sums(reduced, B=199, weights="webb", seed=3).tidy()
    wild_ref = ref.wild_bootstrap(B=199, weights="webb", seed=3).tidy()
    assert_frames_close(wild, wild_ref)


def test_twfe_with_covariate_and_weights_and_split_units(dask_cluster, peru_panel, tmp_path):
    """Units split across partitions are shuffled first; weights and a covariate enter the cross-products."""
    from impactkit.did import did
    from impactkit.distributed.data import read_panel, units_split
    from impactkit.distributed.twfe import estimate_twfe

    frame = peru_panel.dropna(subset=["milk_litres_day"])
    folder = tmp_path / "split"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):   # by row: units straddle files
        frame.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)
    ddf = read_panel(folder)
    assert units_split(ddf, "household_id")
    kwargs = dict(y="log_income", unit="household_id", time="wave", treated="treated", cohort="cohort",
                  covariates=["milk_litres_day"], weights="weight", cluster="community_id")
    res, _ = estimate_twfe(ddf, **kwargs)
    ref = did(frame, method="twfe", **kwargs)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=0, atol=TOL)
    np.testing.assert_allclose(res.std_error, ref.std_error, rtol=0, atol=TOL)


def test_2x2_equals_pandas(dask_cluster, peru_panel, tmp_path):
    from impactkit.did.twfe import estimate_2x2 as pandas_2x2
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.twfe import estimate_2x2

    frame = peru_panel[peru_panel["cohort"].isin([0, 2010])]
    folder = write_parts(frame, tmp_path / "p2x2", n=2)
    res, _ = estimate_2x2(read_panel(folder), y="log_income", unit="household_id", time="wave", cohort="cohort",
                          periods=(2009, 2012), cluster="community_id")
    ref = pandas_2x2(frame, y="log_income", unit="household_id", time="wave", cohort="cohort",
                     periods=(2009, 2012), cluster="community_id")
    assert_frames_close(res.tidy(), ref.tidy())


# ------------------------------------------------------------------------------------------ CS-DiD
def _compare_cs(res, ref):
    assert_frames_close(res.att_gt, ref.att_gt)
    assert abs(res.critical_value - ref.critical_value) < 1e-9
    for kind in ("simple", "dynamic", "group", "calendar"):
        a, b = res.aggregate(kind), ref.aggregate(kind)
        assert abs(a.estimate - b.estimate) < TOL and abs(a.std_error - b.std_error) < TOL and a.n == b.n
        if kind != "simple":
            assert_frames_close(a.rows, b.rows)
            assert abs(a.critical_value - b.critical_value) < 1e-9
    assert abs(res.pretrend_test().statistic - ref.pretrend_test().statistic) < 1e-8


def test_cs_unbalanced_dr_with_bootstrap_equals_pandas(dask_cluster, peru_panel, peru_parts):
    """The Peru panel has attrition: with allow_unbalanced, the repeated-cross-section DR estimator
    on observed rows (the default, the balanced sub-panel, is checked through the CLI below)."""
    from impactkit.did import did
    from impactkit.distributed.cs import estimate_cs
    from impactkit.distributed.data import read_panel

    kwargs = dict(y="log_income", unit="household_id", time="wave", cohort="cohort", est="dr",
                  cluster="community_id", bootstrap=True, biters=199, seed=7, allow_unbalanced=True)
    _compare_cs(estimate_cs(read_panel(peru_parts), **kwargs), did(peru_panel, method="cs", **kwargs))


@pytest.mark.parametrize("est", ["dr", "ipw", "reg"])
def test_cs_balanced_with_covariate_equals_pandas(dask_cluster, balanced_parts, est):
    """Panel estimators with a covariate: Gram matrices and the distributed IRLS logit."""
    from impactkit.did import did
    from impactkit.distributed.cs import estimate_cs
    from impactkit.distributed.data import read_panel

    frame, folder = balanced_parts
    kwargs = dict(y="log_income", unit="household_id", time="wave", cohort="cohort", est=est,
                  covariates=["altitude_m"], cluster="community_id", bootstrap=True, biters=199, seed=11,
                  control="notyet" if est == "reg" else "never")
    _compare_cs(estimate_cs(read_panel(folder), **kwargs), did(frame, method="cs", **kwargs))


# ------------------------------------------------------------------------------------------ contracts
def test_contract_report_equals_pandas_on_failing_data(dask_cluster, peru_panel, tmp_path):
    from impactkit.contracts import validate
    from impactkit.distributed.contracts import validate as validate_dask
    from impactkit.distributed.data import read_panel

    panel = pd.read_parquet(PERU / "panel.parquet")
    gen = np.random.default_rng(1)
    panel.loc[gen.choice(len(panel), 5, replace=False), "income"] = 1e9           # outliers, jumps
    panel.loc[gen.choice(len(panel), 7, replace=False), "treated"] = 1 - panel["treated"]
    panel.loc[3, "notes"] = "called " + str(panel.loc[11000, "head_name"])         # a name of another partition
    panel.loc[9, "notes"] = "dni 12345678"
    panel.loc[gen.choice(len(panel), 4, replace=False), "district"] = "X"
    panel.loc[panel["wave"] == 2012, "milk_litres_day"] = np.where(
        gen.random(int((panel["wave"] == 2012).sum())) < 0.3, np.nan, panel.loc[panel["wave"] == 2012, "milk_litres_day"])
    panel = panel.drop(index=gen.choice(len(panel), 900, replace=False)).reset_index(drop=True)
    report = validate_dask(read_panel(write_parts(panel, tmp_path / "bad", n=2)), CONTRACT)
    ref = validate(panel, CONTRACT)
    assert not ref.ok
    assert report.results.to_dict("records") == ref.results.to_dict("records")
    assert (report.n_rows, report.n_units, report.skipped) == (ref.n_rows, ref.n_units, ref.skipped)
    pd.testing.assert_frame_equal(report.attrition, ref.attrition)
    failed = set(report.failed["rule"])
    assert {"outlier", "personal_leak", "treatment_absorbing", "missing_per_wave", "allowed_values"} <= failed
    personal = pd.concat([panel[c].astype(str) for c in ("head_name", "dni", "phone")]).unique()
    text = report.to_json()
    assert not any(value in text for value in personal if len(value) > 3)


# ------------------------------------------------------------------------------------------ fan-out
def _study(gen: np.random.Generator) -> float:
    """One replication: the mean of 50 normal draws."""
    return float(gen.normal(size=50).mean())


@pytest.mark.slow
def test_fanout_results_do_not_depend_on_worker_count(dask_cluster, peru_panel):
    from distributed import Client, LocalCluster

    from impactkit.did import did
    from impactkit.did.twfe import twfe_coefficient
    from impactkit.distributed import fanout

    two = fanout.monte_carlo(_study, 40, seed=5, chunk=7, client=dask_cluster)
    ref = did(peru_panel, method="twfe", y="log_income", unit="household_id", time="wave", treated="treated",
              cohort="cohort", cluster="community_id")
    estimator = functools.partial(twfe_coefficient, covariates=[], weights=None)
    ri_args = dict(y="_y", unit="_unit", time="_time", treated_cluster_col="_cohort", cluster="community_id",
                   estimator=estimator, n_permutations=39, seed=2, chunk=10)
    ri_two = fanout.randomization_inference(ref._panel, client=dask_cluster, **ri_args)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as one_worker:
        one = fanout.monte_carlo(_study, 40, seed=5, chunk=7, client=one_worker)
        ri_one = fanout.randomization_inference(ref._panel, client=one_worker, **ri_args)
    assert one == two and len(one) == 40 and len(set(one)) == 40
    np.testing.assert_array_equal(ri_one.permutation_stats, ri_two.permutation_stats)
    pandas_ri = ref.randomization_inference(n_permutations=39, seed=2)
    assert ri_two.p_value == pandas_ri.p_value
    np.testing.assert_allclose(ri_two.permutation_stats, pandas_ri.permutation_stats, rtol=0, atol=TOL)


# ------------------------------------------------------------------------------------------ engine switch
def test_engine_section_is_validated(tmp_path):
    from impactkit.analysis.spec import load_analysis
    from impactkit.errors import SpecError

    folder = tmp_path / "a"
    folder.mkdir()
    text = (PERU / "analysis.toml").read_text().replace('"../../data_contracts/', f'"{ROOT}/data_contracts/')
    text = text.replace('"../portfolio.yaml"', f'"{ROOT}/analyses/portfolio.yaml"').replace(
        'costs = "costs.toml"', f'costs = "{PERU}/costs.toml"').replace('file = "panel.parquet"', 'file = "parts/*.parquet"')
    write_parts(pd.read_parquet(PERU / "panel.parquet"), folder / "parts", n=2)
    (folder / "analysis.toml").write_text(text + '\n[engine]\nkind = "dask"\n')
    spec = load_analysis(folder)
    assert spec.engine.kind == "dask" and spec.engine.scheduler is None
    (folder / "analysis.toml").write_text(text)
    assert load_analysis(folder).engine.kind == "pandas"
    (folder / "analysis.toml").write_text(text + '\n[engine]\nkind = "spark"\n')
    with pytest.raises(SpecError, match="engine.kind"):
        load_analysis(folder)


@pytest.mark.slow
def test_cli_estimate_on_dask_prints_the_pandas_numbers(dask_cluster, tmp_path, cli, peru_panel):
    """``impactkit estimate`` with ``[engine] kind = "dask"`` on a partitioned copy of the Peru panel."""
    import json

    from impactkit.analysis.prepare import prepare_panel
    from impactkit.analysis.spec import load_analysis

    folder = tmp_path / "peru_dask"
    folder.mkdir()
    write_parts(pd.read_parquet(PERU / "panel.parquet"), folder / "panel", n=2)
    text = (PERU / "analysis.toml").read_text().replace('file = "panel.parquet"', 'file = "panel"')
    text = text.replace('"../../data_contracts/', f'"{ROOT}/data_contracts/').replace(
        '"../portfolio.yaml"', f'"{ROOT}/analyses/portfolio.yaml"').replace('costs = "costs.toml"', f'costs = "{PERU}/costs.toml"')
    (folder / "analysis.toml").write_text(text + '\n[engine]\nkind = "dask"\n')
    result = cli("estimate", str(folder), "--json", str(tmp_path / "out.json"))
    assert result.exit_code == 0, result.output
    assert "TWFE" in result.output and "Callaway-Sant'Anna" in result.output and "Headline" in result.output
    dask_rows = {r["method"]: r for r in json.loads((tmp_path / "out.json").read_text())["estimators"]}
    from impactkit.did import did

    spec = load_analysis(PERU)
    panel = prepare_panel(pd.read_parquet(PERU / "panel.parquet"), spec)
    common = dict(y="log_income", unit="household_id", time="wave", cluster="community_id",
                  weights=spec.design.weights)
    twfe = did(panel, method="twfe", treated="treated", cohort="cohort", **common).tidy().iloc[0]
    cs = did(panel, method="cs", cohort="cohort", est="dr", control="never", bootstrap=True, biters=999,
             seed=spec.seeds.entropy, **common).aggregate("simple")
    pandas_out = {"estimators": [{"method": "twfe", "n_obs": int(twfe["n"]), **twfe.to_dict()},
                                 {"method": "cs", **{k: getattr(cs, k) for k in
                                  ("estimate", "std_error", "conf_low", "conf_high", "p_value")}}]}
    pandas_rows = {r["method"]: r for r in pandas_out["estimators"]}
    for method in ("twfe", "cs"):
        for key in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            assert abs(dask_rows[method][key] - pandas_rows[method][key]) < TOL, (method, key)
    assert dask_rows["twfe"]["n_obs"] == pandas_rows["twfe"]["n_obs"]


def test_engine_options_bad_combinations_are_exit_2(cli):
    result = cli("estimate", str(PERU), "--engine", "spark")
    assert result.exit_code == 2 and "--engine" in result.output
    result = cli("estimate", str(PERU), "--scheduler", "tcp://127.0.0.1:1")
    assert result.exit_code == 2 and "--scheduler needs the Dask engine" in result.output


def test_unreachable_scheduler_is_exit_2(cli):
    result = cli("estimate", str(PERU), "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 2 and "cannot reach the Dask scheduler" in result.output


def test_contract_failure_stops_the_dask_engine_with_exit_1(dask_cluster, tmp_path, cli):
    folder = tmp_path / "bad"
    folder.mkdir()
    panel = pd.read_parquet(PERU / "panel.parquet")
    panel.loc[panel.index[:3], "treated"] = 1 - panel.loc[panel.index[:3], "treated"]
    write_parts(panel, folder / "panel", n=2)
    text = (PERU / "analysis.toml").read_text().replace('file = "panel.parquet"', 'file = "panel"')
    text = text.replace('"../../data_contracts/', f'"{ROOT}/data_contracts/').replace(
        '"../portfolio.yaml"', f'"{ROOT}/analyses/portfolio.yaml"').replace('costs = "costs.toml"', f'costs = "{PERU}/costs.toml"')
    (folder / "analysis.toml").write_text(text)
    result = cli("estimate", str(folder), "--engine", "dask")
    assert result.exit_code == 1 and "treatment_absorbing" in result.output
