"""de Chaisemartin & D'Haultfoeuille (2024) (impactkit.did.dcdh) against moderndid 0.2.0
``did_multiplegt`` on the same data (Favara & Imbs 2015 bank deregulation panel shipped with
moderndid: a non-binary treatment, 0-4, that switches at different dates).

Tolerances: effects and placebos 1e-10 absolute; switcher counts exact; unclustered standard
errors 1e-5 relative. Clustered standard errors are not compared (they differ by up to 8% for
placebos, see the module docstring); clustered point estimates are the same numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import impactkit as ik
from impactkit.errors import InputError

EST_TOL = 1e-10
SE_REL = 1e-5


@pytest.fixture(scope="module")
def favara():
    md = pytest.importorskip("moderndid")
    return md.load_favara_imbs().to_pandas()


@pytest.fixture(scope="module")
def peer(favara):
    import moderndid as md

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.did_multiplegt(favara, yname="Dl_vloans_b", idname="county", tname="year", dname="inter_bra",
                                 effects=3, placebo=2)


def _ours(frame, **kwargs):
    return ik.did(frame, y="Dl_vloans_b", unit="county", time="year", treated="inter_bra", method="dcdh",
                  effects=3, placebo=2, **kwargs)


def test_effects_and_placebos_match_moderndid(favara, peer):
    table = _ours(favara).event_study().set_index("event_time")
    for h, est, se, n in zip(peer.effects.horizons, peer.effects.estimates, peer.effects.std_errors,
                             peer.effects.n_switchers):
        assert table.loc[int(h), "estimate"] == pytest.approx(est, abs=EST_TOL)
        assert table.loc[int(h), "std_error"] == pytest.approx(se, rel=SE_REL)
        assert table.loc[int(h), "n"] == n
    for h, est, se, n in zip(peer.placebos.horizons, peer.placebos.estimates, peer.placebos.std_errors,
                             peer.placebos.n_switchers):
        assert table.loc[int(h), "estimate"] == pytest.approx(est, abs=EST_TOL)
        assert table.loc[int(h), "std_error"] == pytest.approx(se, rel=SE_REL)
        assert table.loc[int(h), "n"] == n


def test_clustered_estimates_and_contract(favara, peer):
    result = _ours(favara, cluster="state_n")
    es = result.event_study().set_index("event_time")
    np.testing.assert_allclose(es.loc[[1, 2, 3], "estimate"], peer.effects.estimates, atol=EST_TOL)
    att = result.att()
    assert att["estimate"] == pytest.approx(float(np.mean(peer.effects.estimates)), abs=EST_TOL)
    assert result.pretrend().df == 2


def test_absorbing_binary_treatment_equals_a_did_by_hand():
    import pandas as pd

    # two periods, one switcher group and never switchers: DID_1 is the 2x2 difference in differences
    rows = []
    gen = np.random.default_rng(0)
    for unit in range(40):
        switch = unit < 15
        for t in (1, 2, 3):
            d = 1.0 if switch and t >= 3 else 0.0
            rows.append((unit, t, d, gen.normal() + 0.5 * t + 2.0 * d))
    frame = pd.DataFrame(rows, columns=["u", "t", "d", "y"])
    result = ik.did(frame, y="y", unit="u", time="t", treated="d", method="dcdh")
    change = frame[frame.t == 3].set_index("u")["y"] - frame[frame.t == 2].set_index("u")["y"]
    by_hand = change[change.index < 15].mean() - change[change.index >= 15].mean()
    assert result.event_study()["estimate"].iloc[0] == pytest.approx(by_hand, abs=1e-12)


def test_bad_input(favara):
    with pytest.raises(InputError, match="treated="):
        ik.did(favara, y="Dl_vloans_b", unit="county", time="year", method="dcdh")
    with pytest.raises(InputError, match="not used by method .dcdh."):
        ik.did(favara, y="Dl_vloans_b", unit="county", time="year", treated="inter_bra", method="dcdh",
               covariates=["Dl_hpi"])
    with pytest.raises(InputError, match="effects must be"):
        ik.did(favara, y="Dl_vloans_b", unit="county", time="year", treated="inter_bra", method="dcdh", effects=0)
