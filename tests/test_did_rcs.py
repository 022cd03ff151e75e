"""Repeated cross sections (R did's ``panel = FALSE``) for Callaway-Sant'Anna (issue 16).

Peers on the same data, every ATT(g,t), standard error and the four aggregates:
- moderndid 0.2.0 ``att_gt(panel=False)`` to 1e-9 for ``est="reg"`` and ``"ipw"`` (with and without
  covariates) and ``"dr"`` without covariates;
- csdid 0.4.3 (``panel=False``) to 1e-9 for ``est="dr"`` with covariates: moderndid 0.2.0's ``drdid_rc``
  adds the base-period outcome-regression effect that R DRDID subtracts, so its DR standard errors
  with covariates differ (by ~1e-3 here).
Data: mpdta with 40% of rows dropped at random and each remaining row treated as an independent
observation (row ids are unique, as moderndid's RC aggregation needs).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from impactkit.did import did
from impactkit.did.cs import estimate_cs
from impactkit.errors import ImpactkitWarning, InputError
from impactkit.seeds import rng

TOL = 1e-9
KINDS = ("simple", "dynamic", "group", "calendar")


@pytest.fixture(scope="module")
def cross_sections() -> pd.DataFrame:
    moderndid = pytest.importorskip("moderndid")
    frame = moderndid.load_mpdta().to_pandas()
    frame = frame[rng(5, "test-cs-rcs").random(len(frame)) < 0.6].reset_index(drop=True)
    frame["rid"] = np.arange(len(frame))
    return frame


def _ours(frame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        return estimate_cs(frame, y="lemp", unit=None, time="year", cohort="first.treat", panel=False, **kwargs)


def _compare(result, att, se, aggregates):
    np.testing.assert_allclose(result.att_gt["estimate"], att, rtol=0, atol=TOL)
    np.testing.assert_allclose(result.att_gt["std_error"], se, rtol=0, atol=TOL)
    for kind in KINDS:
        ours = result.aggregate(kind)
        assert ours.estimate == pytest.approx(aggregates[kind][0], abs=TOL), kind
        assert ours.std_error == pytest.approx(aggregates[kind][1], abs=TOL), kind


@pytest.mark.parametrize("control", ["never", "notyet"])
@pytest.mark.parametrize("est, covariates", [("reg", None), ("reg", ["lpop"]), ("ipw", None), ("ipw", ["lpop"]),
                                             ("dr", None)])
def test_repeated_cross_sections_match_moderndid(cross_sections, est, covariates, control):
    import moderndid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = moderndid.att_gt(cross_sections, yname="lemp", tname="year", idname="rid", gname="first.treat",
                               panel=False, xformla="~lpop" if covariates else None, est_method=est, boot=False,
                               cband=False, control_group="nevertreated" if control == "never" else "notyettreated")
        aggregates = {k: moderndid.aggte(fit, type=k, boot=False, cband=False) for k in KINDS}
    result = _ours(cross_sections, est=est, covariates=covariates, control=control)
    _compare(result, np.asarray(fit.att_gt), np.asarray(fit.se_gt),
             {k: (a.overall_att, a.overall_se) for k, a in aggregates.items()})
    assert result.n_units == len(cross_sections)   # influence functions are per row


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_repeated_cross_sections_doubly_robust_with_covariates_match_csdid(cross_sections, control):
    from csdid.att_gt import ATTgt

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fit = ATTgt(yname="lemp", tname="year", idname="rid", gname="first.treat", data=cross_sections,
                    xformla="lemp~lpop", panel=False,
                    control_group="nevertreated" if control == "never" else "notyettreated"
                    ).fit(est_method="dr", bstrap=False)
        aggregates = {k: fit.aggte(typec=k, bstrap=False).atte for k in KINDS}
    result = _ours(cross_sections, covariates=["lpop"], control=control)
    _compare(result, np.asarray(fit.results["att"], float), np.asarray(fit.results["se"], float),
             {k: (a["overall_att"], a["overall_se"]) for k, a in aggregates.items()})


def test_front_door_repeated_cross_sections(cross_sections):
    direct = _ours(cross_sections, covariates=["lpop"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        front = did(cross_sections, y="lemp", time="year", cohort="first.treat", method="cs", panel=False,
                    covariates=["lpop"])
    pd.testing.assert_frame_equal(front.tidy(), direct.tidy())
    assert front.att()["estimate"] == direct.aggregate("simple").estimate
    assert any("Repeated cross sections" in m for m in front.notes())
    with pytest.raises(InputError, match="need 'cohort'"):
        did(cross_sections, y="lemp", time="year", treated="treat", method="cs", panel=False)
    with pytest.raises(InputError, match="needs panel data: give the 'unit' column"):
        did(cross_sections, y="lemp", time="year", cohort="first.treat", method="twfe")
    with pytest.raises(InputError, match="unknown argument.*'sa'.*|unknown argument\\(s\\) for method 'sa': panel"):
        did(cross_sections, y="lemp", unit="countyreal", time="year", cohort="first.treat", method="sa", panel=False)
