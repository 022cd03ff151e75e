"""Sun-Abraham, 2SLS and Goodman-Bacon on Dask equal the pandas engine (sufficient statistics).

Data: the simulated Peru TAP panel and the public ``mpdta`` (Callaway & Sant'Anna 2021, county
teen employment, via moderndid), written as Parquet files partitioned by unit, on the session's
LocalCluster (``dask_cluster`` in conftest). Tolerance: 1e-10 absolute on every estimate,
standard error, interval bound and p-value; counts exactly equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def write_parts(frame: pd.DataFrame, folder: Path, unit: str, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(frame[unit].unique(), n)):
        frame[frame[unit].isin(chunk)].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, tol: float = TOL) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        if pd.api.types.is_float_dtype(a[column]):
            np.testing.assert_allclose(a[column].to_numpy(), b[column].to_numpy(), rtol=0, atol=tol, err_msg=column)
        else:
            assert (a[column].to_numpy() == b[column].to_numpy()).all(), column


@pytest.fixture(scope="module")
def peru(tmp_path_factory):
    panel = pd.read_parquet(ROOT / "analyses" / "peru_tap" / "panel.parquet")
    panel["log_income"] = np.log(panel["income"])
    return panel, write_parts(panel, tmp_path_factory.mktemp("peru") / "panel", "household_id", n=4)


@pytest.fixture(scope="module")
def mpdta(tmp_path_factory):
    from moderndid import load_mpdta

    frame = load_mpdta().to_pandas().rename(columns={"first.treat": "first_treat"})
    return frame, write_parts(frame, tmp_path_factory.mktemp("mpdta") / "panel", "countyreal", n=3)


def assert_sa_equal(dask_result, pandas_result) -> None:
    assert_frames_close(dask_result.tidy(), pandas_result.tidy())
    assert_frames_close(dask_result.cohort_table, pandas_result.cohort_table)
    np.testing.assert_allclose(dask_result.vcov, pandas_result.vcov, rtol=0, atol=TOL)
    for key, value in pandas_result.att().items():
        assert abs(dask_result.att()[key] - value) <= TOL, key
    assert dask_result.pretrend().statistic == pytest.approx(pandas_result.pretrend().statistic, abs=1e-8)
    assert (dask_result.n_obs, dask_result.n_clusters, dask_result.df_t) == \
        (pandas_result.n_obs, pandas_result.n_clusters, pandas_result.df_t)
    assert dask_result.messages == pandas_result.messages


# ------------------------------------------------------------------------------------------ Sun-Abraham
def test_sa_equals_pandas_on_peru_with_cluster_weights_and_covariate(dask_cluster, peru):
    from impactkit.did.sa import estimate_sa
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.sa import estimate_sa as dask_sa

    panel, parts = peru
    kw = dict(y="log_income", unit="household_id", time="wave", cohort="cohort", cluster="community_id",
              covariates=["milk_litres_day"], weights="weight")
    with pytest.raises(InputError, match="milk_litres_day"):   # as the pandas engine: no missing covariate
        dask_sa(read_panel(parts), **kw)
    complete = panel.dropna(subset=["milk_litres_day"])
    folder = write_parts(complete, parts.parent / "complete", "household_id")
    assert_sa_equal(dask_sa(read_panel(folder), **kw), estimate_sa(complete, **kw))
    kw = dict(y="log_income", unit="household_id", time="wave", cohort="cohort", control="last", anticipation=1)
    assert_sa_equal(dask_sa(read_panel(parts), **kw), estimate_sa(panel, **kw))
    with pytest.raises(InputError, match="vcov='HC1'"):
        dask_sa(read_panel(parts), **kw, vcov="HC1")


def test_sa_equals_pandas_on_mpdta(dask_cluster, mpdta):
    from impactkit.did.sa import estimate_sa
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.sa import estimate_sa as dask_sa

    frame, parts = mpdta
    kw = dict(y="lemp", unit="countyreal", time="year", cohort="first_treat")
    dask_result, pandas_result = dask_sa(read_panel(parts), **kw), estimate_sa(frame, **kw)
    assert_sa_equal(dask_result, pandas_result)
    kw = dict(y="lemp", unit="countyreal", time="year", treated="treat_on", weights="pop")
    frame = frame.assign(treat_on=((frame["first_treat"] > 0) & (frame["year"] >= frame["first_treat"])).astype(int),
                         pop=np.exp(frame["lpop"]))
    parts = write_parts(frame, parts.parent / "treated", "countyreal", n=2)
    assert_sa_equal(dask_sa(read_panel(parts), **kw), estimate_sa(frame, **kw))


# ------------------------------------------------------------------------------------------ 2SLS
IV_RTOL = 1e-10   # relative: first-stage F statistics are in the thousands


def assert_iv_equal(dask_result, pandas_result) -> None:
    for table in ("coefficients", "first_stage", "reduced_form"):
        a, b = getattr(dask_result, table), getattr(pandas_result, table)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), table
        for column in a.columns:
            if pd.api.types.is_float_dtype(b[column]):
                np.testing.assert_allclose(a[column], b[column], rtol=IV_RTOL, atol=1e-12, err_msg=f"{table}.{column}")
            else:
                assert list(a[column]) == list(b[column]), f"{table}.{column}"
    for key, value in pandas_result.diagnostics.items():
        mine = dask_result.diagnostics[key]
        if key == "ar_set" and value is not None:
            assert mine["kind"] == value["kind"]
            np.testing.assert_allclose(mine["intervals"], value["intervals"], rtol=IV_RTOL)
        elif key == "anderson_rubin":
            for k, v in value.items():
                np.testing.assert_allclose(mine[k], v, rtol=IV_RTOL, atol=1e-300, err_msg=k)
        elif isinstance(value, float):
            assert mine == pytest.approx(value, rel=IV_RTOL), key
        else:
            assert mine == value, key
    b0 = [0.5] * len(pandas_result.diagnostics["endogenous"])
    for key, value in pandas_result.anderson_rubin_test(b0).items():
        assert dask_result.anderson_rubin_test(b0)[key] == pytest.approx(value, rel=IV_RTOL), key


IV_CASES = {
    "fe-unit-wave-clustered": dict(formula="log_income ~ 1 + [tap_use ~ treated]", absorb=["household_id", "wave"],
                                   cluster="community_id"),
    "weights-exog-clustered": dict(formula="log_income ~ 1 + milk_litres_day + [tap_use ~ treated]",
                                   cluster="community_id", weights="weight"),
    "robust": dict(formula="log_income ~ 1 + milk_litres_day + [tap_use ~ treated]"),
    "robust-fe-unit-wave": dict(formula="log_income ~ 1 + milk_litres_day + [tap_use ~ treated]",
                                absorb=["household_id", "wave"]),
    "unadjusted-fe-unit": dict(formula="log_income ~ 1 + [tap_use ~ treated + vet_services]", vcov="unadjusted",
                               absorb="household_id"),
    "two-endogenous-fe-wave": dict(formula="log_income ~ 1 + [tap_use + vet_services ~ treated + n_taps + "
                                           "calf_mortality]", absorb=["wave"], cluster="district"),
}


@pytest.mark.parametrize("case", list(IV_CASES))
def test_2sls_equals_pandas_on_peru(dask_cluster, peru, case):
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.iv import estimate_iv
    from impactkit.iv import iv

    panel, parts = peru
    kw = dict(IV_CASES[case])
    formula = kw.pop("formula")
    assert_iv_equal(estimate_iv(read_panel(parts), formula, unit="household_id", **kw), iv(panel, formula, **kw))


def test_2sls_equals_pandas_on_pyfixest_data(dask_cluster, tmp_path):
    """pyfixest's public example data (missing values, two instruments, fixed effects f1 and f2)."""
    from pyfixest.utils import get_data

    from impactkit.distributed.data import read_panel
    from impactkit.distributed.iv import estimate_iv
    from impactkit.iv import iv

    data = get_data()
    parts = write_parts(data.dropna(subset=["f1"]), tmp_path / "pf", "f1", n=3)
    kw = dict(absorb=["f1", "f2"], cluster="f3")
    formula = "Y ~ 1 + X2 + [X1 ~ Z1 + Z2]"
    assert_iv_equal(estimate_iv(read_panel(parts), formula, unit="f1", **kw),
                    iv(data.dropna(subset=["f1"]), formula, **kw))


def test_2sls_on_dask_refuses_what_it_does_not_compute(dask_cluster, peru):
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.iv import estimate_iv

    _, parts = peru
    formula = "log_income ~ 1 + [tap_use ~ treated]"
    with pytest.raises(InputError, match="liml"):
        estimate_iv(read_panel(parts), formula, unit="household_id", method="liml")
    with pytest.raises(InputError, match="at most one other fixed effect"):
        estimate_iv(read_panel(parts), formula, unit="household_id", absorb=["wave", "district"])
    with pytest.raises(InputError, match="not found"):
        estimate_iv(read_panel(parts), "log_income ~ 1 + [tap_use ~ nowhere]", unit="household_id")


# ------------------------------------------------------------------------------------------ Goodman-Bacon
def assert_bacon_equal(dask_result, pandas_result) -> None:
    assert_frames_close(dask_result.tidy(), pandas_result.tidy())
    assert dask_result.twfe_estimate == pytest.approx(pandas_result.twfe_estimate, abs=TOL)
    assert dask_result.n_obs == pandas_result.n_obs
    assert float((dask_result.tidy()["weight"]).sum()) == pytest.approx(1.0, abs=1e-12)


def test_bacon_equals_pandas_on_mpdta_and_balanced_peru(dask_cluster, mpdta, peru):
    from impactkit.did.bacon import bacon_decomposition
    from impactkit.distributed.bacon import bacon_decomposition as dask_bacon
    from impactkit.distributed.data import read_panel

    frame, parts = mpdta
    kw = dict(y="lemp", unit="countyreal", time="year", cohort="first_treat")
    assert_bacon_equal(dask_bacon(read_panel(parts), **kw), bacon_decomposition(frame, **kw))
    panel, _ = peru
    complete = panel.groupby("household_id")["log_income"].transform(lambda s: s.notna().sum()) == 6
    balanced = panel[complete]
    folder = write_parts(balanced, parts.parent / "peru-balanced", "household_id")
    kw = dict(y="log_income", unit="household_id", time="wave", treated="treated")
    result = dask_bacon(read_panel(folder), **kw)
    assert_bacon_equal(result, bacon_decomposition(balanced, **kw))
    assert set(result.tidy()["type"]) >= {"Treated vs Never Treated", "Earlier vs Later Treated"}


def test_bacon_on_dask_refuses_an_unbalanced_panel(dask_cluster, peru):
    from impactkit.distributed.bacon import bacon_decomposition as dask_bacon
    from impactkit.distributed.data import read_panel
    from impactkit.errors import EstimationError

    _, parts = peru
    with pytest.raises(EstimationError, match="balanced panel"):
        dask_bacon(read_panel(parts), y="log_income", unit="household_id", time="wave", cohort="cohort")


def test_sa_and_bacon_on_dask_refuse_bad_panels(dask_cluster, mpdta):
    """Unit-local panel rules of the pandas engine, checked per partition: one row per unit and
    period, one cohort per unit (exit 2, naming the columns, no values)."""
    from impactkit.distributed.bacon import bacon_decomposition as dask_bacon
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.sa import estimate_sa as dask_sa

    frame, parts = mpdta
    kw = dict(y="lemp", unit="countyreal", time="year", cohort="first_treat")
    doubled = write_parts(pd.concat([frame, frame.iloc[:3]]), parts.parent / "doubled", "countyreal")
    moved = frame.copy()
    moved.loc[moved.index[0], "first_treat"] = 2006
    moved = write_parts(moved, parts.parent / "moved", "countyreal")
    for estimator in (dask_sa, dask_bacon):
        with pytest.raises(InputError, match="duplicated"):
            estimator(read_panel(doubled), **kw)
        with pytest.raises(InputError, match="varies within unit"):
            estimator(read_panel(moved), **kw)


# ------------------------------------------------------------------------------------------ CS, time-varying covariates
@pytest.mark.parametrize("est,allow_unbalanced", [("dr", False), ("ipw", False), ("reg", False), ("dr", True)])
def test_cs_time_varying_covariate_equals_pandas(dask_cluster, peru, est, allow_unbalanced):
    """Each 2x2 takes the base-period covariates (panel) or each row's own (unbalanced, RC), as R did;
    a row whose covariate is missing counts as unobserved (``milk_litres_day`` has 360 such rows;
    ``did()`` refuses those, the engine function :func:`impactkit.did.cs.estimate_cs` takes them)."""
    from impactkit.did.cs import estimate_cs as pandas_cs
    from impactkit.distributed.cs import estimate_cs
    from impactkit.distributed.data import read_panel
    from tests.test_distributed import _compare_cs

    panel, parts = peru
    assert panel.groupby("household_id")["milk_litres_day"].nunique().max() > 1   # time-varying
    kwargs = dict(y="log_income", unit="household_id", time="wave", cohort="cohort", est=est,
                  covariates=["milk_litres_day"], cluster="community_id", allow_unbalanced=allow_unbalanced,
                  bootstrap=True, biters=99, seed=3)
    _compare_cs(estimate_cs(read_panel(parts), **kwargs), pandas_cs(panel, **kwargs))


def test_cs_time_varying_covariate_on_mpdta(dask_cluster, mpdta):
    from impactkit.did import did
    from impactkit.distributed.cs import estimate_cs
    from impactkit.distributed.data import read_panel
    from tests.test_distributed import _compare_cs

    frame, parts = mpdta
    noise = np.random.default_rng(5).normal(0.0, 0.05, len(frame))
    frame = frame.assign(lpop_t=frame["lpop"] + 0.02 * (frame["year"] - 2003) + noise)
    folder = write_parts(frame, parts.parent / "mpdta-tv", "countyreal")
    kwargs = dict(y="lemp", unit="countyreal", time="year", cohort="first_treat", est="dr", covariates=["lpop_t"],
                  bootstrap=True, biters=99, seed=1)
    _compare_cs(estimate_cs(read_panel(folder), **kwargs), did(frame, method="cs", **kwargs))
