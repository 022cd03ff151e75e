"""The shared 2x2 estimators of Sant'Anna & Zhao (2020) (impactkit.did.drdid) against moderndid 0.2.0's
DRDID port on mpdta (cohort 2006 vs never treated, 2005 -> 2006, covariate lpop): ATT and the whole
influence function to 1e-10 for the three panel estimators and the IPW / regression repeated-cross-
section estimators. (moderndid's locally efficient DR RC estimator adds the base-period regression
effect that R DRDID subtracts; impactkit follows R, checked against csdid in tests/test_did_rcs.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from impactkit.did.drdid import drdid_panel, drdid_rc
from impactkit.errors import EstimationError, InputError

TOL = 1e-10


@pytest.fixture(scope="module")
def mpdta():
    moderndid = pytest.importorskip("moderndid")
    return moderndid.load_mpdta().to_pandas()


@pytest.mark.parametrize("est, peer", [("dr", "drdid_panel"), ("ipw", "std_ipw_did_panel"), ("reg", "reg_did_panel")])
def test_panel_2x2_matches_moderndid(mpdta, est, peer):
    import moderndid

    wide = mpdta.pivot(index="countyreal", columns="year", values="lemp")
    first = mpdta[mpdta["year"] == 2003].set_index("countyreal").reindex(wide.index)
    keep = first["first.treat"].isin([0, 2006]).to_numpy()
    y1, y0 = wide[2006].to_numpy()[keep], wide[2005].to_numpy()[keep]
    d = (first["first.treat"].to_numpy()[keep] > 0).astype(float)
    x = np.column_stack([np.ones(keep.sum()), first["lpop"].to_numpy()[keep]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(moderndid, peer)(y1, y0, d, x, influence_func=True)
    att, influence = drdid_panel(y1 - y0, d, x, est=est)
    assert att == pytest.approx(ref.att, abs=TOL)
    np.testing.assert_allclose(influence, ref.att_inf_func, rtol=0, atol=TOL)
    assert np.sqrt(np.mean(influence ** 2) / len(d)) == pytest.approx(ref.se, abs=TOL)


@pytest.mark.parametrize("est, peer", [("ipw", "std_ipw_did_rc"), ("reg", "reg_did_rc")])
def test_repeated_cross_section_2x2_matches_moderndid(mpdta, est, peer):
    import moderndid

    rows = mpdta[mpdta["first.treat"].isin([0, 2006]) & mpdta["year"].isin([2005, 2006])]
    y = rows["lemp"].to_numpy()
    post = (rows["year"] == 2006).to_numpy(float)
    d = (rows["first.treat"] > 0).to_numpy(float)
    x = np.column_stack([np.ones(len(rows)), rows["lpop"].to_numpy()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(moderndid, peer)(y, post, d, x, influence_func=True)
    att, influence = drdid_rc(y, post, d, x, est=est)
    assert att == pytest.approx(ref.att, abs=TOL)
    np.testing.assert_allclose(influence, ref.att_inf_func, rtol=0, atol=TOL)


def test_bad_input_names_the_problem():
    with pytest.raises(InputError, match="est must be one of"):
        drdid_panel(np.zeros(4), np.array([0, 0, 1, 1]), est="aipw")
    with pytest.raises(EstimationError, match="needs treated and comparison units"):
        drdid_panel(np.zeros(4), np.ones(4))
    with pytest.raises(EstimationError, match="no treated rows in the later period"):
        drdid_rc(np.zeros(4), np.array([0, 0, 1, 1]), np.array([1, 0, 0, 0]))
