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


# ----------------------------------------------------------------------------------------
# the 2x2 on repeated cross sections: group and period fixed effects
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_group_sections(cross_sections) -> pd.DataFrame:
    frame = cross_sections[cross_sections["first.treat"].isin([0, 2006])].reset_index(drop=True)
    frame["G"] = (frame["first.treat"] > 0).astype(int)
    return frame


@pytest.mark.parametrize("periods, covariates", [((2005, 2006), None), ((2003, 2007), ["lpop"])])
def test_2x2_repeated_cross_sections_match_statsmodels(two_group_sections, periods, covariates):
    """OLS ``y ~ G * post (+ x)`` on the two periods (statsmodels): coefficient, HC1 and cluster-robust
    standard errors to 1e-10; the coefficient equals the difference of the four cell means without x."""
    import statsmodels.formula.api as smf

    from impactkit.did.twfe import estimate_2x2

    sub = two_group_sections[two_group_sections["year"].isin(periods)]
    sub = sub.assign(P=(sub["year"] == periods[1]).astype(int))
    formula = "lemp ~ G * P" + (" + lpop" if covariates else "")
    hc1 = smf.ols(formula, sub).fit(cov_type="HC1")
    crv1 = smf.ols(formula, sub).fit(cov_type="cluster", cov_kwds={"groups": sub["countyreal"]})
    ours = estimate_2x2(two_group_sections, y="lemp", unit=None, time="year", cohort="first.treat",
                        periods=periods, covariates=covariates, panel=False)
    assert ours.estimate == pytest.approx(hc1.params["G:P"], abs=1e-10)
    assert ours.std_error[0] == pytest.approx(hc1.bse["G:P"], abs=1e-10)
    assert "HC1" in " ".join(ours.notes())
    clustered = did(two_group_sections, y="lemp", time="year", cohort="first.treat", method="2x2", panel=False,
                    periods=periods, covariates=covariates, cluster="countyreal")
    assert clustered.std_error[0] == pytest.approx(crv1.bse["G:P"], abs=1e-10)
    if covariates is None:
        assert ours.estimate == pytest.approx(ours.extras["difference_of_means"], abs=1e-12)


def test_2x2_repeated_cross_sections_all_periods_match_pyfixest(two_group_sections):
    pf = pytest.importorskip("pyfixest")
    frame = two_group_sections.assign(GP=two_group_sections["G"] * (two_group_sections["year"] >= 2006))
    peer = pf.feols("lemp ~ GP | G + year", frame, vcov={"CRV1": "countyreal"})
    ours = did(frame, y="lemp", time="year", cohort="first.treat", method="2x2", panel=False, cluster="countyreal")
    assert ours.estimate == pytest.approx(peer.coef()["GP"], abs=1e-10)
    assert ours.std_error[0] == pytest.approx(peer.se()["GP"], abs=1e-10)
