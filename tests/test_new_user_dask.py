"""Defects a new user met running her own staggered studies (public county and state panels)
on both engines: units entering after baseline, clusters whose units adopt in different periods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _panel_with_entrants() -> pd.DataFrame:
    """Four periods, 12 units in 4 clusters; units 0-1 leave after baseline, units 10-11 enter in period 2.

    Baseline units: 0..9 (10); observed in the final period: 2..9 plus the entrants 10, 11
    (10 units, so a count ratio reports no attrition although 2 of 10 baseline units are lost).
    """
    gen = np.random.default_rng(7)
    rows = []
    for u in range(12):
        periods = [1] if u < 2 else ([2, 3, 4] if u >= 10 else [1, 2, 3, 4])
        for t in periods:
            rows.append({"unit": u, "time": t, "cluster": u // 3, "y": float(gen.normal())})
    return pd.DataFrame(rows)


def test_attrition_counts_only_baseline_units_lost():
    from impactkit.analysis.steps.checks import baseline_units_kept

    panel = _panel_with_entrants()
    n_base, n_kept = baseline_units_kept(panel["unit"].to_numpy(), panel["time"].to_numpy(), 1, 4)
    assert (n_base, n_kept) == (10, 8)   # known truth: units 0 and 1 lost, entrants 10 and 11 not counted
    assert 1 - n_kept / n_base == pytest.approx(0.2, abs=1e-15)


def test_dask_power_attrition_never_negative_with_entrants(dask_cluster):
    import dask.dataframe as dd

    from impactkit.distributed.data import by_unit
    from impactkit.distributed.facts import power_facts

    panel = _panel_with_entrants()
    # more units in the final period than at baseline: the old count ratio gave 1 - 11/10 < 0
    extra = pd.DataFrame({"unit": [12], "time": [4], "cluster": [3], "y": [0.5]})
    panel = pd.concat([panel, extra], ignore_index=True).sort_values(["unit", "time"], ignore_index=True)
    frame = by_unit(dd.from_pandas(panel, npartitions=3, sort=False), "unit")   # as the analysis does
    facts = power_facts(frame, unit="unit", time="time", cluster="cluster", y="y", baseline=1, waves=[1, 2, 3, 4])
    assert abs(facts["attrition"] - 0.2) <= 1e-15             # 2 of 10 baseline units lost


def test_randomization_inference_omitted_when_a_cluster_mixes_adoption_periods():
    from impactkit.analysis.steps.estimation import clusters_mixing_cohorts

    panel = pd.DataFrame({"county": [1, 1, 2, 2, 3, 3, 4, 4], "state": [10, 10, 10, 10, 20, 20, 30, 30],
                          "first_year": [1998, 1998, 2000, 2000, 0, 0, np.nan, np.nan]})
    reason = clusters_mixing_cohorts(panel, "first_year", "state")
    assert reason == ("'first_year' varies within 1 'state' cluster(s): randomization inference re-assigns "
                      "whole clusters, so each cluster needs one adoption period")
    panel.loc[panel["county"] == 2, "first_year"] = 1998
    assert clusters_mixing_cohorts(panel, "first_year", "state") is None


def test_pack_data_paragraph_uses_the_declared_plural_cluster_and_period_nouns(tmp_path):
    import json
    from pathlib import Path

    from impactkit.pack.build import build_qmd

    results = json.loads((Path(__file__).parent / "fixtures" / "results_peru_tap.json").read_text())
    results["analysis"].update(unit_label="county", unit_plural="counties", cluster_label="states",
                               period_label="year")
    text = build_qmd(results, tmp_path, date="2026-01-01")
    n_units, n_clusters = results["data"]["n_units"], results["data"]["n_clusters"]
    n_waves = len(results["data"]["waves"])
    assert f"{n_units:,} counties in {n_clusters:,} states; {n_waves} years," in text
    assert "countys" not in text and f"{n_clusters:,} clusters;" not in text


def test_lee_bounds_reason_does_not_deny_the_attrition_table():
    from impactkit.analysis.steps.checks import NO_ATTRITION, lee_frame

    # unit 2 is lost by the final period but has no baseline outcome: attrition by rows is 1 of 3,
    # Lee bounds (baseline outcome needed) have nothing to bound; the reason must say why
    panel = pd.DataFrame({"unit": [1, 1, 2, 3, 3], "time": [1, 2, 1, 1, 2], "ever_treated": [1, 1, 0, 0, 0],
                          "y": [1.0, 2.0, np.nan, 0.5, 0.7]})
    frame = lee_frame(panel, "unit", "time", 1, 2, "y", None)
    assert int((frame["observed"] == 0).sum()) == 0
    assert "with an observed baseline outcome" in NO_ATTRITION


def test_wild_bootstrap_equals_pandas_when_the_engine_must_regroup_units(dask_cluster):
    """Rows written year by year (every unit split over partitions): the Dask engine regroups the
    units and must keep the clusters' order of first appearance, which the wild bootstrap's draws
    follow; before, a hash shuffle reordered clusters and the bootstrap CI differed from pandas."""
    import dask.dataframe as dd

    from impactkit.did import did
    from impactkit.distributed.data import by_unit
    from impactkit.distributed.twfe import estimate_twfe, wild_bootstrap_from_sums

    gen = np.random.default_rng(11)
    units = np.arange(60)
    cluster = (units * 7) % 12                    # clusters first appear out of label order
    cohort = np.where(cluster < 4, 0, np.where(cluster < 8, 3, 4))
    rows = pd.DataFrame([(u, t, cluster[u], cohort[u]) for t in range(1, 6) for u in units],
                        columns=["unit", "time", "cluster", "cohort"])   # year-major: units split
    rows["treated"] = ((rows["cohort"] > 0) & (rows["time"] >= rows["cohort"])).astype(int)
    rows["y"] = 0.3 * rows["treated"] + gen.normal(size=len(rows)) + 0.1 * rows["cluster"]
    frame = dd.from_pandas(rows, npartitions=4, sort=False)
    regrouped = by_unit(frame, "unit").compute()
    firsts = lambda col: pd.unique(col.to_numpy()).tolist()   # noqa: E731
    assert firsts(regrouped["cluster"]) == firsts(rows["cluster"])
    assert regrouped.groupby("unit").size().eq(5).all() and len(regrouped) == len(rows)

    _, reduced = estimate_twfe(frame, y="y", unit="unit", time="time", treated="treated", cluster="cluster")
    dask_wild = wild_bootstrap_from_sums(reduced, B=999, weights="webb", seed=5).tidy().iloc[0]
    fit = did(rows, y="y", unit="unit", time="time", cohort="cohort", method="twfe", cluster="cluster")
    pandas_wild = fit.wild_bootstrap(B=999, weights="webb", seed=5).tidy().iloc[0]
    for key in ("estimate", "p_value", "conf_low", "conf_high"):
        assert abs(dask_wild[key] - pandas_wild[key]) <= 1e-10, key


def test_dask_client_keeps_shuffle_notices_out_of_the_terminal(dask_cluster):
    import logging

    from impactkit.distributed.cluster import QUIET_LOGGERS, dask_client

    logging.getLogger(QUIET_LOGGERS[0]).setLevel(logging.NOTSET)
    with dask_client() as client:
        assert client is not None
        assert all(logging.getLogger(n).getEffectiveLevel() == logging.ERROR for n in QUIET_LOGGERS)
