"""dCDH with covariates (``covariates=``, R's ``controls``; impactkit.did.dcdh_controls).

moderndid 0.2.0 estimates the covariate coefficients differently from R's DIDmultiplegtDYN (never
switchers only, ``ell``-period changes, no time effects), so it is not a peer here. Checks:

- point estimates against an independent computation: coefficients from statsmodels WLS of the
  outcome's first difference on the covariates' first differences and period dummies among
  not-yet-switched cells, by baseline treatment; then impactkit without covariates on ``Y - theta'X``
  (tolerance 1e-10);
- moderndid's own departure reproduced the same way (its coefficient: never switchers, no time
  effects), tolerance 1e-10;
- simulation with known truth: covariates whose trend differs for switchers bias the estimator
  without them; with them the mean over 60 draws is within 3 Monte Carlo SEs of the truth and the
  mean standard error is within 20% of the draws' standard deviation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import impactkit as ik
from impactkit.errors import EstimationError

KW = dict(y="Dl_vloans_b", unit="county", time="year", treated="inter_bra", method="dcdh")


@pytest.fixture(scope="module")
def favara():
    md = pytest.importorskip("moderndid")
    return md.load_favara_imbs().to_pandas().sort_values(["county", "year"]).reset_index(drop=True)


def _first_switch(frame):
    change = frame.groupby("county")["inter_bra"].diff().fillna(0) != 0
    first = frame["year"].where(change).groupby(frame["county"]).transform("min")
    return first.fillna(np.inf)


def test_point_estimates_equal_dcdh_on_the_residualised_outcome(favara):
    import statsmodels.api as sm

    frame = favara.copy()
    frame["dy"] = frame.groupby("county")["Dl_vloans_b"].diff()
    frame["dx"] = frame.groupby("county")["Dl_hpi"].diff()
    frame["d_sq"] = frame.groupby("county")["inter_bra"].transform("first")
    control = frame[(frame["year"] < _first_switch(frame)) & frame["dy"].notna() & frame["dx"].notna()]
    theta = {}
    for level, part in control.groupby("d_sq"):
        design = pd.get_dummies(part["year"], prefix="t", dtype=float).assign(dx=part["dx"])
        if len(part) > design.shape[1]:     # the one county with baseline 1 has no comparison and is dropped
            theta[level] = sm.WLS(part["dy"], design).fit().params["dx"]
    frame["y_res"] = frame["Dl_vloans_b"] - frame["d_sq"].map(theta) * frame["Dl_hpi"]
    ours = ik.did(favara, covariates=["Dl_hpi"], effects=3, placebo=2, **KW).event_study()
    by_hand = ik.did(frame, **{**KW, "y": "y_res"}, effects=3, placebo=2).event_study()
    np.testing.assert_allclose(ours["estimate"], by_hand["estimate"], atol=1e-10)
    np.testing.assert_array_equal(ours["n"], by_hand["n"])
    assert not np.allclose(ours["std_error"], by_hand["std_error"], rtol=1e-6)   # the theta term counts


def test_moderndid_departure_never_switcher_regression_without_time_effects(favara):
    import moderndid as md

    # counties with the covariate in all 12 years (moderndid leaves a missing change unadjusted)
    complete = favara.groupby("county")["Dl_hpi"].transform(lambda x: x.notna().sum() == 12)
    favara = favara[complete].reset_index(drop=True)
    frame = favara.copy()
    frame["dy"] = frame.groupby("county")["Dl_vloans_b"].diff()
    frame["dx"] = frame.groupby("county")["Dl_hpi"].diff()
    never = frame[np.isinf(_first_switch(frame)) & frame["dy"].notna() & frame["dx"].notna()]
    theta = float((never["dx"] * never["dy"]).sum() / (never["dx"] ** 2).sum())
    frame["y_md"] = frame["Dl_vloans_b"] - theta * frame["Dl_hpi"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = md.did_multiplegt(favara, yname="Dl_vloans_b", idname="county", tname="year", dname="inter_bra",
                                 xformla="~Dl_hpi", effects=1)
    replica = ik.did(frame, **{**KW, "y": "y_md"}).event_study()
    assert replica["estimate"].iloc[0] == pytest.approx(peer.effects.estimates[0], abs=1e-10)
    ours = ik.did(favara, covariates=["Dl_hpi"], **KW).event_study()
    assert abs(ours["estimate"].iloc[0] - peer.effects.estimates[0]) > 1e-4


def _drifting_covariate(seed: int, n_groups: int = 300, periods: int = 6):
    gen = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        first = gen.integers(3, periods + 1) if gen.random() < 0.5 else 99
        level = gen.normal()
        for t in range(1, periods + 1):
            d = 1.0 if t >= first else 0.0
            x = 0.5 * level + (0.6 * t if first < 99 else 0.0) + gen.normal()
            rows.append((g, t, d, x, level + 0.2 * t + 1.0 * x + 2.0 * d + gen.normal()))
    return pd.DataFrame(rows, columns=["g", "t", "d", "x", "y"])


@pytest.mark.slow
def test_covariates_remove_the_bias_and_the_se_matches_the_spread():
    est, se, plain = [], [], []
    kw = dict(y="y", unit="g", time="t", treated="d", method="dcdh", effects=2)
    for seed in range(60):
        frame = _drifting_covariate(seed)
        row = ik.did(frame, covariates=["x"], **kw).event_study().iloc[1]
        est.append(row["estimate"])
        se.append(row["std_error"])
        plain.append(ik.did(frame, **kw).event_study()["estimate"].iloc[1])
    est = np.asarray(est)
    spread = est.std(ddof=1)
    assert abs(est.mean() - 2.0) < 3 * spread / np.sqrt(est.size)
    assert np.mean(se) / spread == pytest.approx(1.0, abs=0.2)
    assert np.mean(plain) - 2.0 > 0.5                      # without covariates: about +1.2


def test_collinear_covariate_is_an_estimation_error(favara):
    frame = favara.assign(const=1.0)
    with pytest.raises(EstimationError, match="collinear"):
        ik.did(frame, covariates=["const"], **KW)
