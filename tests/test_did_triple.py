"""Triple differences (impactkit.did.triple) against moderndid 0.2.0 ``ddd`` on the same data.

Data: moderndid's own DGP for two-period DDD (``gen_ddd_2periods``, designs 1 and 2: both
nuisance models right / only the outcome model right). Tolerances: ATT 1e-10 absolute; standard
error 1e-9 for "dr"/"reg" and 1e-6 for "ipw" (the logit is solved iteratively by both
packages, to slightly different stopping points).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import impactkit as ik
from impactkit.errors import EstimationError, InputError

ATT_TOL = 1e-10
SE_TOL = {"dr": 1e-9, "reg": 1e-9, "ipw": 1e-6}
COVS = ["cov1", "cov2", "cov3", "cov4"]


@pytest.fixture(scope="module", params=[1, 2])
def ddd_data(request):
    md = pytest.importorskip("moderndid")
    frame = md.gen_ddd_2periods(n=1500, dgp_type=request.param, random_state=11)["data"].to_pandas()
    frame["cohort"] = np.where(frame["state"] == 1, 2, 0)
    return frame


def _ours(frame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ik.did(frame, y="y", unit="id", time="time", cohort="cohort", method="ddd", partition="partition",
                      **kwargs)


@pytest.mark.parametrize("est", ["dr", "reg", "ipw"])
@pytest.mark.parametrize("covariates", [None, COVS])
def test_matches_moderndid(ddd_data, est, covariates):
    import moderndid as md

    ours = _ours(ddd_data, est=est, covariates=covariates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = md.ddd(ddd_data, yname="y", tname="time", idname="id", gname="state", pname="partition",
                      xformla=None if covariates is None else "~" + "+".join(covariates), est_method=est)
    assert ours.att()["estimate"] == pytest.approx(peer.att, abs=ATT_TOL)
    assert ours.att()["std_error"] == pytest.approx(peer.se, abs=SE_TOL[est])


def test_no_covariates_is_the_difference_of_cell_mean_changes(ddd_data):
    wide = ddd_data.pivot(index="id", columns="time", values="y")
    first = ddd_data[ddd_data["time"] == 1].set_index("id").loc[wide.index]
    change = wide[2] - wide[1]
    mean = {(s, q): change[(first["state"] == s) & (first["partition"] == q)].mean() for s in (0, 1) for q in (0, 1)}
    by_hand = (mean[1, 1] - mean[1, 0]) - (mean[0, 1] - mean[0, 0])
    assert _ours(ddd_data).att()["estimate"] == pytest.approx(by_hand, abs=1e-12)


def test_bad_input(ddd_data):
    with pytest.raises(InputError, match="partition="):
        ik.did(ddd_data, y="y", unit="id", time="time", cohort="cohort", method="ddd")
    with pytest.raises(InputError, match="not in the data"):
        _ours(ddd_data.drop(columns="partition"))
    bad = ddd_data.copy()
    bad["partition"] = np.where(bad["time"] == 1, 1, 0)
    with pytest.raises(InputError, match="varies within a unit"):
        _ours(bad)
    empty = ddd_data[~((ddd_data["state"] == 0) & (ddd_data["partition"] == 0))]
    with pytest.raises(EstimationError, match="no units in the cell"):
        _ours(empty)
