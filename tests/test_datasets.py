"""The simulated Peru TAP panel matches the report's facts and regenerates bit for bit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactkit.datasets import PERU_TAP_SEED, POVERTY_LINE_PEN, simulate_peru_tap, write_peru_tap
from impactkit.datasets.peru_tap import N_TAPS, WAVES

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "analyses" / "peru_tap" / "panel.parquet"


@pytest.fixture(scope="module")
def sim():
    return simulate_peru_tap(return_truth=True)


def test_shipped_parquet_regenerates_bit_for_bit(tmp_path):
    out = write_peru_tap(tmp_path / "panel.parquet", PERU_TAP_SEED)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()


def test_same_seed_identical_other_seed_differs():
    a, b = simulate_peru_tap(7), simulate_peru_tap(7)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    c = simulate_peru_tap(8)
    assert not a["income"].equals(c["income"])


def test_shape_follows_the_source_report(sim):
    panel, _ = sim
    assert panel["household_id"].nunique() == 2250
    assert sorted(panel["wave"].unique()) == list(WAVES)
    per_community = panel.drop_duplicates("community_id")
    assert per_community["n_taps"].sum() == N_TAPS
    baseline = panel[panel["wave"] == WAVES[0]]
    poor = (baseline["income"].dropna() < POVERTY_LINE_PEN).mean()
    assert abs(poor - 0.87) < 0.02  # "87% of producers lived below the poverty line"
    # staggered rollout with >= 2 pre-periods for the first cohort and a never-treated group
    cohorts = sorted(panel["cohort"].unique())
    assert cohorts == [0, 2010, 2011, 2012]
    assert sum(w < 2010 for w in WAVES) >= 2
    # attrition and item non-response exist but are modest
    retained = panel.groupby("wave")["household_id"].nunique()
    assert 0.80 < retained.iloc[-1] / retained.iloc[0] < 0.95
    assert 0.01 < panel["income"].isna().mean() < 0.04
    # non-compliance: not every household of a served community uses TAPs
    take_up = panel.loc[panel["treated"] == 1, "tap_use"].mean()
    assert 0.55 < take_up < 0.85
    assert (panel.loc[panel["treated"] == 0, "tap_use"] == 0).all()
    assert 0.2 < panel.drop_duplicates("household_id")["woman_head"].mean() < 0.36


def test_true_effect_for_users_reaches_350_percent_in_two_years(sim):
    panel, truth = sim
    tot = truth.att_gt(panel, population="tot")
    tot["event_time"] = tot["time"] - tot["group"]
    by_e = tot[tot["event_time"] >= 0].groupby("event_time")["att"].mean()
    gains = np.exp(by_e) - 1
    assert gains.loc[0] < gains.loc[1] < gains.loc[2]  # growing with exposure
    # men 4.5x, women 1 + .9 * 3.5 = 4.15x: the mix of users is ~+340%
    assert 3.2 < gains.loc[2] < 3.55
    # before the rollout there is no effect
    assert (tot.loc[tot["event_time"] < 0, "att"] == 0).all()
    assert truth.event_time_multiplier(2) == pytest.approx(4.5)


def test_untreated_potential_income_follows_parallel_trends(sim):
    panel, truth = sim
    merged = panel.merge(truth.effects, on=["household_id", "wave"])
    log_y0 = np.log(merged["income0"])
    means = merged.assign(ly0=log_y0).groupby(["cohort", "wave"])["ly0"].mean().unstack("cohort")
    trends = means.diff().dropna()
    # differences in trends across cohorts are noise-sized (no differential trends by design)
    assert (trends.sub(trends.mean(axis=1), axis=0).abs() < 0.08).all().all()
