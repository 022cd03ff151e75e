"""Callaway-Sant'Anna on Dask beyond the doubly robust panel case: the repeated-cross-section IPW
and regression estimators on unbalanced panels (``allow_unbalanced=True``) and the not-yet-treated
comparison group without never-treated units (the last cohort as control), against the pandas engine.

Data: the simulated Peru TAP panel (attrition and missing incomes) and the public ``mpdta``
(Callaway & Sant'Anna 2021, via moderndid), with ~10% of its rows dropped by a fixed seed or
without its never-treated counties, written as Parquet files partitioned by unit, on the session's
LocalCluster (``dask_cluster`` in conftest). Every cluster column spans partitions.
Tolerance: 1e-10 absolute on every ATT(g,t), standard error, aggregate (simple, dynamic, group:
estimate, standard error, rows) and on the multiplier-bootstrap critical values with the same seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.errors import EstimationError

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def write_parts(frame: pd.DataFrame, folder: Path, unit: str, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(frame[unit].unique(), n)):
        frame[frame[unit].isin(chunk)].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def assert_cluster_spans_partitions(folder: Path, cluster: str) -> None:
    seen = [set(pd.read_parquet(f, columns=[cluster])[cluster]) for f in sorted(folder.glob("*.parquet"))]
    assert any(seen[i] & seen[j] for i in range(len(seen)) for j in range(i + 1, len(seen)))


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, tol: float = TOL) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        if pd.api.types.is_float_dtype(a[column]):
            np.testing.assert_allclose(a[column].to_numpy(), b[column].to_numpy(), rtol=0, atol=tol, err_msg=column)
        else:
            assert (a[column].to_numpy() == b[column].to_numpy()).all(), column


def assert_cs_equal(res, ref, bootstrap: bool = True) -> None:
    """ATT(g,t), SEs, the simple/dynamic/group aggregates and (bootstrapped) critical values."""
    assert_frames_close(res.att_gt, ref.att_gt)
    if bootstrap:
        assert abs(res.critical_value - ref.critical_value) <= TOL
    for kind in ("simple", "dynamic", "group"):
        a, b = res.aggregate(kind), ref.aggregate(kind)
        assert abs(a.estimate - b.estimate) <= TOL and abs(a.std_error - b.std_error) <= TOL, kind
        if kind != "simple":
            assert_frames_close(a.rows, b.rows)
            if bootstrap:
                assert abs(a.critical_value - b.critical_value) <= TOL, kind


@pytest.fixture(scope="module")
def peru(tmp_path_factory):
    panel = pd.read_parquet(ROOT / "analyses" / "peru_tap" / "panel.parquet")
    panel["log_income"] = np.log(panel["income"])
    folder = write_parts(panel, tmp_path_factory.mktemp("peru") / "panel", "household_id", n=4)
    assert_cluster_spans_partitions(folder, "community_id")
    return panel, folder


@pytest.fixture(scope="module")
def mpdta_frame():
    from moderndid import load_mpdta

    frame = load_mpdta().to_pandas().rename(columns={"first.treat": "first_treat"})
    return frame.assign(state=frame["countyreal"] % 29)   # a cluster nesting counties, across partitions


@pytest.fixture(scope="module")
def mpdta_thinned(mpdta_frame, tmp_path_factory):
    """mpdta with ~10% of its rows dropped at random (seed 2020): an unbalanced panel."""
    keep = np.random.default_rng(2020).random(len(mpdta_frame)) >= 0.10
    frame = mpdta_frame[keep].reset_index(drop=True)
    folder = write_parts(frame, tmp_path_factory.mktemp("mpdta-thin") / "panel", "countyreal")
    assert_cluster_spans_partitions(folder, "state")
    return frame, folder


@pytest.fixture(scope="module")
def mpdta_treated(mpdta_frame, tmp_path_factory):
    """mpdta without its never-treated counties."""
    frame = mpdta_frame[mpdta_frame["first_treat"] > 0].reset_index(drop=True)
    folder = write_parts(frame, tmp_path_factory.mktemp("mpdta-treated") / "panel", "countyreal")
    assert_cluster_spans_partitions(folder, "state")
    return frame, folder


def fit_both(frame, folder, **kwargs):
    from impactkit.did.cs import estimate_cs as pandas_cs
    from impactkit.distributed.cs import estimate_cs
    from impactkit.distributed.data import read_panel

    return estimate_cs(read_panel(folder), **kwargs), pandas_cs(frame, **kwargs)


# ------------------------------------------------------------------------------------------ unbalanced ipw / reg
@pytest.mark.parametrize("est", ["ipw", "reg"])
@pytest.mark.parametrize("covariates,weights", [(None, None), (["altitude_m", "household_size"], "weight")])
def test_unbalanced_ipw_and_reg_equal_pandas_on_peru(dask_cluster, peru, est, covariates, weights):
    """Attrition and missing incomes: each ATT(g,t) by the repeated-cross-section estimator on the
    observed rows (Sant'Anna & Zhao 2020, eq. 2.5 / 2.3), clustered by community."""
    panel, folder = peru
    res, ref = fit_both(panel, folder, y="log_income", unit="household_id", time="wave", cohort="cohort", est=est,
                        covariates=covariates, weights=weights, cluster="community_id", allow_unbalanced=True,
                        bootstrap=True, biters=199, seed=17)
    assert any("Unbalanced panel" in m for m in res.messages)
    assert len(res.att_gt) == 15
    assert_cs_equal(res, ref)


@pytest.mark.parametrize("est", ["ipw", "reg"])
@pytest.mark.parametrize("covariates", [None, ["lpop"]])
def test_unbalanced_ipw_and_reg_equal_pandas_on_thinned_mpdta(dask_cluster, mpdta_thinned, est, covariates):
    frame, folder = mpdta_thinned
    assert frame.groupby("countyreal").size().min() < 5                          # unbalanced
    res, ref = fit_both(frame, folder, y="lemp", unit="countyreal", time="year", cohort="first_treat", est=est,
                        covariates=covariates, cluster="state", allow_unbalanced=True, bootstrap=True, biters=299,
                        seed=4)
    assert any("Unbalanced panel" in m for m in res.messages)
    assert len(res.att_gt) == 12
    assert_cs_equal(res, ref)


def test_unbalanced_ipw_and_reg_notyet_universal_on_thinned_mpdta(dask_cluster, mpdta_thinned):
    """Not-yet-treated controls and a universal base period with the RC estimators (reference cells kept)."""
    frame, folder = mpdta_thinned
    for est in ("ipw", "reg"):
        res, ref = fit_both(frame, folder, y="lemp", unit="countyreal", time="year", cohort="first_treat", est=est,
                            covariates=["lpop"], control="notyet", base_period="universal", allow_unbalanced=True,
                            bootstrap=True, biters=99, seed=9)
        assert_cs_equal(res, ref)


# ------------------------------------------------------------------------------------------ notyet, no never-treated
@pytest.mark.parametrize("est", ["dr", "ipw", "reg"])
def test_notyet_without_never_treated_equals_pandas(dask_cluster, mpdta_treated, est):
    """R did: the last cohort (2007) is the comparison group until it is treated; periods from 2007 on
    are dropped, leaving the 2004 and 2006 cohorts' ATT(g,t) for 2004-2006."""
    frame, folder = mpdta_treated
    res, ref = fit_both(frame, folder, y="lemp", unit="countyreal", time="year", cohort="first_treat", est=est,
                        covariates=["lpop"], control="notyet", cluster="state", bootstrap=True, biters=199, seed=2)
    assert sorted(set(res.att_gt["group"])) == [2004, 2006] and res.att_gt["time"].max() == 2006
    assert res.messages[0] == ref.messages[0] == ("No never-treated units: periods from 2007 on are dropped and "
                                                  "cohort 2007 is the comparison group.")
    assert_cs_equal(res, ref)


@pytest.mark.parametrize("allow_unbalanced", [False, True])
def test_notyet_without_never_treated_on_an_unbalanced_panel(dask_cluster, mpdta_thinned, allow_unbalanced):
    """Thinned mpdta without never-treated counties: the periods from 2007 on are dropped first, then
    the balanced sub-panel is taken on the kept periods (default) or the RC estimator runs on their
    observed rows (allow_unbalanced)."""
    frame, folder = mpdta_thinned
    frame = frame[frame["first_treat"] > 0].reset_index(drop=True)
    folder = write_parts(frame, folder.parent / "treated", "countyreal")
    for est in ("dr", "ipw", "reg"):
        res, ref = fit_both(frame, folder, y="lemp", unit="countyreal", time="year", cohort="first_treat", est=est,
                            covariates=["lpop"], control="notyet", cluster="state", allow_unbalanced=allow_unbalanced,
                            bootstrap=True, biters=99, seed=5)
        assert res.n_units == ref.n_units
        assert res.att_gt["time"].max() == 2006
        assert_cs_equal(res, ref)


def test_without_never_treated_the_dask_engine_refuses_as_pandas(dask_cluster, mpdta_treated):
    """control='never' without never-treated units, and 'notyet' with a single cohort: both engines refuse."""
    from impactkit.did.cs import estimate_cs as pandas_cs
    from impactkit.distributed.cs import estimate_cs
    from impactkit.distributed.data import read_panel

    frame, folder = mpdta_treated
    kwargs = dict(y="lemp", unit="countyreal", time="year", cohort="first_treat")
    cases = (("never", frame, "no never-treated units .* use control='notyet'"),
             ("notyet", frame[frame["first_treat"] == 2007], "only one cohort \\(2007\\) exists"))
    for i, (control, data, match) in enumerate(cases):
        parts = write_parts(data, folder.parent / f"refuse-{i}", "countyreal")
        with pytest.raises(EstimationError, match=match):
            estimate_cs(read_panel(parts), control=control, **kwargs)
        with pytest.raises(EstimationError, match=match):
            pandas_cs(data, control=control, **kwargs)
    # anticipation 1: cohort 2004 has no pre-period, 2007 becomes the control and 2006 falls after the
    # kept periods (2003-2005), so no treated cohort is left
    with pytest.raises(EstimationError, match="no treated units"):
        estimate_cs(read_panel(folder), control="notyet", anticipation=1, **kwargs)
    with pytest.raises(EstimationError, match="no treated units"):
        pandas_cs(frame, control="notyet", anticipation=1, **kwargs)
