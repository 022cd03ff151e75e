"""Multiple-outcome corrections on Dask equal the pandas engine.

Data: a simulated cluster-randomised panel (baseline and final wave; three outcomes, the baseline
outcome and two baseline controls; some rows missing an outcome or a control; clusters labelled
so that every cluster spans partitions), written as Parquet partitions holding whole units, on the
session's LocalCluster (``dask_cluster`` in conftest). The Dask table is compared with
:func:`impactkit.checks.multiple_testing` on the gathered rows: estimates, standard errors,
confidence limits and p-values to 1e-10 (the engines add the same sums in a different order);
Holm and sharpened q to 1e-10; the Romano-Wolf and Westfall-Young adjusted p-values, which are
counts of draws over B + 1, exactly; row counts exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.seeds import rng

TOL = 1e-10
OUTCOMES = ["y", "milk", "vet"]
CONTROLS = ["herd", "size"]
EXACT = ("outcome", "romano_wolf", "westfall_young", "n")

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def family_panel(seed: int = 4, n_units: int = 900, n_clusters: int = 36, within: bool = False) -> pd.DataFrame:
    """Baseline (0) and final (1) rows per unit; treatment by cluster (by unit when ``within``)."""
    g = rng(seed, "distributed-multiple-test")
    unit = np.arange(n_units)
    cluster = (unit * 7) % n_clusters + 100          # labels not in unit order: clusters span partitions
    arm = g.permutation(np.arange(n_clusters) % 2)[cluster - 100]
    if within:
        arm = (g.random(n_units) < 0.5).astype(int)
    shock = g.normal(size=(n_clusters, 3))[cluster - 100]
    herd, size = g.gamma(2.0, 2.0, n_units), g.integers(1, 8, n_units).astype(float)
    rows = []
    for period in (0, 1):
        effect = period * arm
        y = 1 + 0.2 * herd + shock[:, 0] + 0.4 * effect + g.normal(size=n_units)
        milk = 2 + 0.1 * size + shock[:, 1] + 0.1 * effect + g.normal(size=n_units)
        vet = 0.5 * shock[:, 2] + g.normal(size=n_units)
        rows.append(pd.DataFrame({"unit": unit, "t": period, "cl": cluster, "ever_treated": arm, "y": y,
                                  "milk": milk, "vet": vet, "herd": herd + period, "size": size}))
    frame = pd.concat(rows, ignore_index=True)
    frame.loc[g.random(len(frame)) < 0.03, "milk"] = np.nan   # a missing outcome: the row is dropped
    frame.loc[g.random(len(frame)) < 0.02, "herd"] = np.nan   # a missing baseline control: dropped
    return frame


def write_parts(frame: pd.DataFrame, folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.sort(frame["unit"].unique()), n)):
        frame[frame["unit"].isin(chunk)].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def pandas_table(frame: pd.DataFrame, B: int = 199, seed: int = 11) -> pd.DataFrame:
    """The pandas step's computation: final rows with baseline values, complete cases, multiple_testing."""
    from impactkit.analysis.context import final_with_baseline
    from impactkit.checks import multiple_testing

    final = final_with_baseline(frame, "unit", "t", 1, 0, ["y", *CONTROLS])
    controls = ["y_baseline", *(f"{c}_baseline" for c in CONTROLS)]
    final = final.dropna(subset=[*OUTCOMES, *controls])
    return multiple_testing(final, outcomes=OUTCOMES, treat="ever_treated", controls=controls, cluster="cl", B=B,
                            seed=seed).tidy()


def dask_table(folder: Path, B: int = 199, seed: int = 11):
    from impactkit.checks.multiple import family_testing
    from impactkit.distributed.data import read_panel
    from impactkit.distributed.multiple import family_sums

    sums, varying = family_sums(read_panel(folder), unit="unit", time="t", final=1, baseline=0, y="y",
                                controls=CONTROLS, outcomes=OUTCOMES, cluster="cl")
    if sums is None:
        return None, varying
    return family_testing(sums, treat="ever_treated", cluster="cl", B=B, seed=seed).tidy(), varying


def assert_tables_equal(mine: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(mine.columns) == list(theirs.columns)
    for column in theirs.columns:
        if column in EXACT:
            assert mine[column].tolist() == theirs[column].tolist(), column
        else:
            np.testing.assert_allclose(mine[column].to_numpy(float), theirs[column].to_numpy(float), rtol=0,
                                       atol=TOL, err_msg=column)


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    return family_panel(), tmp_path_factory.mktemp("family")


# ------------------------------------------------------------------------------------------ pandas side
def test_moments_level_family_gives_the_row_level_numbers_and_draws():
    """The refactored pieces: a FamilyMoments built from the rows gives the row-level path's
    (``fast=False``) observed statistics, bootstrap and permutation statistics to 1e-10 relative,
    the same valid bootstrap draws, and the same table from :func:`family_testing`."""
    from impactkit.analysis.context import final_with_baseline
    from impactkit.checks.multiple import (bootstrap_t, family_arrays, family_moments, family_testing,
                                           multiple_testing, observed_stats, permutation_t)

    final = final_with_baseline(family_panel(), "unit", "t", 1, 0, ["y", *CONTROLS])
    controls = ["y_baseline", *(f"{c}_baseline" for c in CONTROLS)]
    final = final.dropna(subset=[*OUTCOMES, *controls])
    family = family_arrays(final, outcomes=OUTCOMES, treat="ever_treated", controls=controls, cluster="cl")
    moments = family_moments(family)
    assert moments is not None and moments.n_clusters == family.n_clusters and moments.n == family.n
    for a, b in zip(observed_stats(moments), observed_stats(family)):
        np.testing.assert_allclose(a, b, rtol=TOL)
    est = observed_stats(family)[0]
    slow_boot, slow_perm = bootstrap_t(family, est, 99, 3, fast=False), permutation_t(family, 99, 3, fast=False)
    for boot in (bootstrap_t(family, est, 99, 3), bootstrap_t(moments, est, 99, 3)):
        assert boot.shape == slow_boot.shape
        np.testing.assert_allclose(boot, slow_boot, rtol=TOL)
    for perm in (permutation_t(family, 99, 3), permutation_t(moments, 99, 3)):
        np.testing.assert_allclose(perm, slow_perm, rtol=TOL)
    theirs = multiple_testing(final, outcomes=OUTCOMES, treat="ever_treated", controls=controls, cluster="cl",
                              B=99, seed=3).tidy()
    pd.testing.assert_frame_equal(family_testing(family, treat="ever_treated", cluster="cl", B=99, seed=3).tidy(),
                                  theirs, check_exact=True)
    assert_tables_equal(family_testing(moments, treat="ever_treated", cluster="cl", B=99, seed=3).tidy(), theirs)


def test_bootstrap_drops_the_same_empty_arm_draws_on_both_paths():
    """Few clusters, so some draws hold one arm only: both paths drop the same draws."""
    from impactkit.checks.multiple import bootstrap_t, family_arrays, family_moments, observed_stats

    frame = family_panel(seed=8, n_units=60, n_clusters=4)
    frame = frame[frame["t"] == 1].dropna()
    family = family_arrays(frame, outcomes=OUTCOMES, treat="ever_treated", controls=CONTROLS, cluster="cl")
    est = observed_stats(family)[0]
    rows, sums = bootstrap_t(family, est, 199, 5, fast=False), bootstrap_t(family_moments(family), est, 199, 5)
    assert rows.shape == sums.shape and rows.shape[0] < 199
    np.testing.assert_allclose(sums, rows, rtol=TOL, atol=TOL)  # draws equal to the sample: |b* - b| ~ 1e-14


# ------------------------------------------------------------------------------------------ Dask
def test_family_on_dask_equals_pandas_whatever_the_partitions(dask_cluster, panel):
    frame, root = panel
    theirs = pandas_table(frame)
    assert (theirs["romano_wolf"] < 1).any() and theirs["n"].iloc[0] < 900  # rows were dropped
    mine = {}
    for n_parts in (3, 5):
        mine[n_parts], varying = dask_table(write_parts(frame, root / f"p{n_parts}", n_parts))
        assert varying == 0
        assert_tables_equal(mine[n_parts], theirs)
    assert_tables_equal(mine[5], mine[3])


def test_family_on_dask_is_omitted_when_treatment_varies_within_clusters(dask_cluster, tmp_path):
    frame = family_panel(within=True)
    sums, varying = dask_table(write_parts(frame, tmp_path / "panel", 3))
    final = frame[frame["t"] == 1]
    assert sums is None and varying == int((final.groupby("cl")["ever_treated"].nunique() > 1).sum()) > 0


def test_family_on_dask_refuses_what_pandas_refuses(dask_cluster, tmp_path):
    from impactkit.errors import EstimationError, InputError

    frame = family_panel(n_units=300)
    flat = write_parts(frame.assign(vet=1.0), tmp_path / "flat", 3)
    with pytest.raises(EstimationError, match="outcome 'vet' is constant"):
        dask_table(flat)
    unlabelled = frame.copy()
    unlabelled["cl"] = unlabelled["cl"].astype(float)
    unlabelled.loc[unlabelled["unit"] == 5, "cl"] = np.nan
    with pytest.raises(InputError, match="cluster column 'cl' has 1 missing value"):
        dask_table(write_parts(unlabelled, tmp_path / "unlabelled", 3))
    with pytest.raises(EstimationError, match="collinear"):
        dask_table(write_parts(frame.assign(size=2.0), tmp_path / "collinear", 3))


def test_analysis_step_on_dask_writes_the_pandas_records(dask_cluster, tmp_path):
    """The Peru subset analysis (4 partitions, a 5-outcome family, a baseline control): the Dask
    step's ``multiple_outcomes`` records equal the pandas step's; with treatment varying within
    clusters the section is omitted with its reason; with one outcome, with the pandas reason."""
    from dataclasses import replace

    from tests.test_distributed_analysis import peru_folder

    from impactkit.analysis.run import build_context
    from impactkit.analysis.spec import load_analysis
    from impactkit.analysis.steps.checks import multiple_outcomes_step as pandas_step
    from impactkit.distributed.analysis import build_dask_context
    from impactkit.distributed.steps import DASK_STEPS, ON_DASK

    spec = load_analysis(peru_folder(tmp_path / "peru"))
    assert len(spec.outcomes.family) >= 2
    pandas_ctx, dask_ctx = build_context(spec), build_dask_context(spec)
    pandas_step(pandas_ctx)
    DASK_STEPS["multiple_outcomes"](dask_ctx)
    theirs, mine = pandas_ctx.results["multiple_outcomes"], dask_ctx.results["multiple_outcomes"]
    assert len(mine) == len(theirs) == len(spec.outcomes.family) and "multiple_outcomes" not in dask_ctx.omitted
    for a, b in zip(mine, theirs):
        assert a.keys() == b.keys()
        for key, value in b.items():
            if key in ("outcome", "romano_wolf", "westfall_young", "n_units"):
                assert a[key] == value, key
            else:
                assert a[key] == pytest.approx(value, abs=TOL, rel=0), key
    # one unit switched arm inside its community: omitted with the reason
    dask_ctx.panel = dask_ctx.panel.map_partitions(_switch_first_unit, spec.design.unit, meta=dask_ctx.panel._meta)
    dask_ctx.results.pop("multiple_outcomes")
    DASK_STEPS["multiple_outcomes"](dask_ctx)
    assert "multiple_outcomes" not in dask_ctx.results
    reason = dask_ctx.omitted["multiple_outcomes"]
    assert reason.startswith(ON_DASK + "treatment varies within ") and "pandas engine" in reason
    # a family of one outcome: the pandas reason, no rows read
    one = spec.model_copy(update={"outcomes": spec.outcomes.model_copy(update={"family": ["log_income"]})})
    for ctx, run in ((replace(pandas_ctx, spec=one, results={}, omitted={}), pandas_step),
                     (replace(dask_ctx, spec=one, results={}, omitted={}), DASK_STEPS["multiple_outcomes"])):
        run(ctx)
        assert ctx.omitted == {"multiple_outcomes": "fewer than two outcomes in [outcomes] family: nothing to correct"}


def _switch_first_unit(part: pd.DataFrame, unit: str) -> pd.DataFrame:
    part = part.copy()
    first = part[unit].min()
    part.loc[part[unit] == first, "ever_treated"] = 1 - part.loc[part[unit] == first, "ever_treated"]
    return part
