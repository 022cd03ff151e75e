"""Analysis pieces on Dask equal the pandas engine: the encouragement design, ANCOVA and Lee bounds.

Data: a simulated encouragement design with two-sided non-compliance (compliers, always- and
never-takers, so every complier-means column is defined), with clusters and analytic weights,
written as 3 Parquet partitions holding whole units, on the session's LocalCluster (``dask_cluster``
in conftest). Tolerance: 1e-10 (relative for the first-stage statistics, which run into the
hundreds); counts exactly equal. The whole chain on the Peru panel is compared in
``tests/test_distributed_analysis.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.seeds import rng

TOL = 1e-10

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def write_parts(frame: pd.DataFrame, folder: Path, unit: str, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.sort(frame[unit].unique()), n)):
        frame[frame[unit].isin(chunk)].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, rtol: float = TOL) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        if pd.api.types.is_float_dtype(b[column]) or pd.api.types.is_float_dtype(a[column]):
            np.testing.assert_allclose(a[column].to_numpy(float), b[column].to_numpy(float), rtol=rtol, atol=TOL,
                                       err_msg=column)
        else:
            assert list(a[column]) == list(b[column]), column


def encouragement_panel(seed: int = 3, n_units: int = 900) -> pd.DataFrame:
    """Two periods per unit; encouragement by village from period 1 on (``z`` varies within unit, as
    the analysis's assignment does); take-up in period 1 by compliance type."""
    g = rng(seed, "distributed-encouragement-test")
    kinds = g.choice(["complier", "always", "never"], size=n_units, p=[0.55, 0.15, 0.30])
    village = g.integers(0, 40, size=n_units)
    encouraged = (village % 2).astype(int)
    female = (g.random(n_units) < np.where(kinds == "complier", 0.7, 0.4)).astype(float)
    age = g.normal(35, 8, size=n_units)
    age[g.random(n_units) < 0.05] = np.nan          # missing characteristic: left out of its row only
    weight = g.uniform(0.5, 2.0, size=n_units)
    rows = []
    for period in (0, 1):
        z = encouraged * period
        take = np.where(kinds == "always", 1, np.where(kinds == "never", 0, z)) * period
        y = 1.0 + 0.3 * period + 0.5 * female + 2.0 * take + g.normal(size=n_units)
        rows.append(pd.DataFrame({"unit": np.arange(n_units), "period": period, "village": village, "z": z,
                                  "take": take, "y": y, "female": female, "age": age, "weight": weight}))
    frame = pd.concat(rows, ignore_index=True)
    frame.loc[g.random(len(frame)) < 0.03, "y"] = np.nan
    return frame.dropna(subset=["y"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    frame = encouragement_panel()
    return frame, write_parts(frame, tmp_path_factory.mktemp("encouragement") / "panel", "unit")


@pytest.mark.parametrize("weights", [None, "weight"])
def test_encouragement_on_dask_equals_pandas(dask_cluster, design, weights):
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.encouragement import encouragement as dask_encouragement
    from impactkit.iv import encouragement

    frame, parts = design
    kw = dict(y="y", take_up="take", instrument="z", cluster="village", absorb=["unit", "period"],
              characteristics=["female", "age"], weights=weights)
    mine = dask_encouragement(read_panel(parts), unit="unit", **kw)
    theirs = encouragement(frame, **kw)
    assert_frames_close(mine.estimates, theirs.estimates)
    assert_frames_close(mine.complier_means, theirs.complier_means)
    assert mine.complier_means["never_taker_mean"].notna().all() and mine.complier_means["always_taker_mean"].notna().all()
    assert mine.complier_means["n"].tolist() == [len(frame), int(frame["age"].notna().sum())]
    for key in ("kleibergen_paap_f", "cragg_donald_f", "effective_f", "n", "df_resid"):
        assert mine.iv_result.diagnostics[key] == pytest.approx(theirs.iv_result.diagnostics[key], rel=TOL), key
    assert mine.settings["absorb"] == theirs.settings["absorb"]


def test_encouragement_on_dask_refuses_a_non_binary_instrument(dask_cluster, design, tmp_path):
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.encouragement import encouragement as dask_encouragement
    from impactkit.errors import InputError

    frame, _ = design
    parts = write_parts(frame.assign(z=frame["z"] * 2), tmp_path / "panel", "unit")
    with pytest.raises(InputError, match="instrument column 'z' must be coded 0/1"):
        dask_encouragement(read_panel(parts), y="y", take_up="take", instrument="z", unit="unit", cluster="village")


# ------------------------------------------------------------------------------------------ ANCOVA
def test_ancova_on_dask_equals_pandas_with_weights_and_a_control(dask_cluster, tmp_path):
    """The Peru subset analysis (4 partitions; weights, the baseline control, clusters spanning
    partitions): the ANCOVA row of both engines' contexts, every number to 1e-10."""
    from tests.test_distributed_analysis import peru_folder

    from impactkit.analysis.run import build_context
    from impactkit.analysis.spec import load_analysis
    from impactkit.analysis.steps.estimation import ESTIMATORS
    from impactkit.distributed.analysis import build_dask_context
    from impactkit.distributed.steps import DASK_ESTIMATORS

    spec = load_analysis(peru_folder(tmp_path / "peru"))
    assert spec.design.controls and spec.design.weights
    pandas_ctx, dask_ctx = build_context(spec), build_dask_context(spec)
    theirs, mine = ESTIMATORS["ancova"](pandas_ctx), DASK_ESTIMATORS["ancova"](dask_ctx)
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, float):
            assert mine[key] == pytest.approx(value, abs=TOL), key
        else:
            assert mine[key] == value, key
    assert dask_ctx.weights_used_by == pandas_ctx.weights_used_by == ["ANCOVA"]  # weighted on both


# ------------------------------------------------------------------------------------------ Lee bounds
def _values_and_weights(block):
    return block[0], block[1]


@pytest.mark.parametrize("bins,max_gather", [(4, 3), (16, 50), (None, None)])
def test_weighted_cut_equals_the_sorted_cumulative_weight(dask_cluster, bins, max_gather):
    """The first value whose cumulative weight reaches the cut, as on the sorted column, with ties."""
    from dask import delayed

    from impactkit.distributed.select import weighted_cut

    g = rng(5, "weighted-cut-test")
    v = np.round(g.normal(size=600), 1)                  # many ties
    w = g.uniform(0.2, 3.0, size=600)
    blocks = [delayed((v[i::3], w[i::3])) for i in range(3)]
    order = np.argsort(v, kind="stable")
    sv, sw = v[order], w[order]
    for share in (0.0, 0.013, 0.25, 0.5, 0.999):
        cut = share * w.sum()
        c, below, through = weighted_cut(blocks, _values_and_weights, (), cut, bins=bins, max_gather=max_gather)
        assert c == sv[np.argmax(np.cumsum(sw) >= cut)]
        assert below == pytest.approx(sw[sv < c].sum(), rel=1e-12)
        assert through == pytest.approx(sw[sv <= c].sum(), rel=1e-12)


def lee_panel(seed: int, treated_attrition: float, control_attrition: float) -> pd.DataFrame:
    g = rng(seed, "distributed-lee-test")
    n = 700
    arm = (g.random(n) < 0.5).astype(int)
    base = g.normal(5, 1, size=n)
    final = base + 0.4 * arm + g.normal(size=n)
    lost = g.random(n) < np.where(arm == 1, treated_attrition, control_attrition)
    final[lost] = np.nan
    base[g.random(n) < 0.02] = np.nan                   # no baseline outcome: left out
    frame = pd.DataFrame({"unit": np.repeat(np.arange(n), 2), "period": np.tile([0, 1], n),
                          "ever_treated": np.repeat(arm, 2), "y": np.column_stack([base, final]).ravel(),
                          "weight": np.repeat(g.uniform(0.5, 2.0, size=n), 2)})
    return frame


@pytest.mark.parametrize("case", [(0.05, 0.20, "weight"), (0.25, 0.10, "weight"), (0.05, 0.20, None)])
def test_lee_bounds_on_dask_equal_pandas(dask_cluster, tmp_path, case):
    from impactkit.analysis.steps.checks import lee_frame
    from impactkit.checks import lee_bounds
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.lee import lee_bounds as dask_lee_bounds

    treated_attrition, control_attrition, weights = case
    frame = lee_panel(7, treated_attrition, control_attrition)
    parts = write_parts(frame, tmp_path / "panel", "unit", n=4)
    theirs = lee_bounds(lee_frame(frame, "unit", "period", 0, 1, "y", weights), y="y", arm="ever_treated",
                        observed="observed", weights=weights)
    mine = dask_lee_bounds(read_panel(parts), unit="unit", time="period", baseline=0, final=1, y="y", weights=weights)
    assert mine.trimmed_arm == theirs.trimmed_arm == ("control" if treated_attrition > control_attrition else "treated")
    assert mine.n == theirs.n
    for key in ("lower", "upper", "se_lower", "se_upper", "conf_low", "conf_high", "trim_share",
                "observed_share_control", "observed_share_treated"):
        assert getattr(mine, key) == pytest.approx(getattr(theirs, key), abs=TOL), key
