"""The new DiD estimators against their peers, side by side in one process.

Each study runs impactkit and the peer on the same inputs, checks that the numbers agree
(the difference is printed), and prints wall-clock seconds (best of ``--repeat`` runs) and
the ratio impactkit / peer (target: at most 0.5):

- ``honest-rm``: HonestDiD relative magnitudes, C-LF, Mbar in {0.5, 1, 1.5, 2}, 1,000-point
  grid, on the Medicaid-expansion event study (5 pre, 2 post) vs moderndid ``didhonest``;
- ``honest-sd``: HonestDiD smoothness, FLCI, six values of M, same event study;
- ``honest-sdb``: smoothness with a positive-bias sign restriction, FLCI hybrid ``C-F``, M in
  {0, 0.01, 0.02, 0.03}, the same explicit 1,000-point grid for both, same event study;
- ``honest-sdm``: smoothness with an increasing trend, conditional test, same M and grid;
- ``honest-rmb``: relative magnitudes with a positive-bias sign restriction, conditional test,
  Mbar in {0.5, 1, 1.5, 2}, same grid (the unions differ by design: moderndid 0.2.0 skips the
  earliest pre-period change and adds a polyhedron bounded by the first post-period change; the
  tests compare each polyhedron's test point by point);
- ``ddd``: two-period doubly robust triple differences with four covariates, 20,000 units
  (moderndid's DGP 1) vs moderndid ``ddd``;
- ``ddd-staggered``: staggered doubly robust triple differences, not-yet-treated comparisons (GMM
  over comparison cohorts), four covariates, 10,000 units x 8 periods, 5 cohorts (moderndid's
  ``gen_ddd_scalable``), ATT(g,t) and the event study, vs moderndid ``ddd`` + ``agg_ddd`` (analytic
  standard errors);
- ``dcdh``: de Chaisemartin-D'Haultfoeuille, 3 effects and 2 placebos, on the Favara-Imbs
  panel (1,045 counties x 12 years, non-binary treatment) vs moderndid ``did_multiplegt``; and the
  same with each option: ``dcdh-cluster`` (state clusters), ``dcdh-normalized`` (with weights),
  ``dcdh-trends-lin``, ``dcdh-nonparam`` (three regions), ``dcdh-same`` (same switchers) and
  ``dcdh-controls`` (one covariate; moderndid's covariate estimator differs from R's, so its
  numbers are not expected to agree: a timing row only). Clustered SEs differ by moderndid's
  departures (see ``tests/test_did_dcdh.py``);
- ``imputation``: Borusyak-Jaravel-Spiess ATT and event study, 5,000 units x 10 periods,
  staggered, vs pyfixest ``did2s`` (same point estimates; different variance estimators).

Usage: ``.venv/bin/python benchmarks/did_new.py [STUDY ...] [--repeat N]``, STUDY one of the names above.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")


def _best(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _ehec():
    import moderndid
    import pyfixest as pf

    frame = moderndid.load_ehec().to_pandas()
    frame = frame[(frame["year"] < 2016) & (frame["yexp2"].isna() | (frame["yexp2"] != 2015))].copy()
    frame["D"] = (frame["yexp2"] == 2014).astype(float)
    fit = pf.feols("dins ~ i(year, D, ref=2013) | stfips + year", data=frame, vcov={"CRV1": "stfips"})
    return fit.coef().to_numpy(), np.asarray(fit._vcov)


def honest_rm(repeat: int):
    from moderndid.didhonest import create_sensitivity_results_rm

    from impactkit.did.honest import honest_did

    beta, sigma = _ehec()
    mbars = [0.5, 1.0, 1.5, 2.0]
    ours_t, ours = _best(lambda: honest_did(beta, sigma, num_pre=5, num_post=2, m=mbars).tidy(), repeat)
    peer_t, peer = _best(lambda: create_sensitivity_results_rm(beta, sigma, 5, 2, m_bar_vec=mbars).to_pandas(), 1)
    diff = max(np.abs(ours["conf_low"] - peer["lb"]).max(), np.abs(ours["conf_high"] - peer["ub"]).max())
    return ours_t, peer_t, f"max |bound diff| {diff:.2e} (C-LF: simulated critical values differ)"


def honest_sd(repeat: int):
    from moderndid.didhonest import create_sensitivity_results_sm

    from impactkit.did.honest import honest_did

    beta, sigma = _ehec()
    ms = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
    ours_t, ours = _best(lambda: honest_did(beta, sigma, num_pre=5, num_post=2, restriction="smoothness",
                                            m=ms).tidy(), repeat)
    peer_t, peer = _best(lambda: create_sensitivity_results_sm(beta, sigma, 5, 2, m_vec=ms).to_pandas(), repeat)
    diff = max(np.abs(ours["conf_low"] - peer["lb"]).max(), np.abs(ours["conf_high"] - peer["ub"]).max())
    return ours_t, peer_t, f"max |bound diff| {diff:.2e}"


def _honest_shape(repeat: int, restriction: str, method: str, values: list[float], **shape):
    from moderndid.didhonest import create_sensitivity_results_rm, create_sensitivity_results_sm

    from impactkit.did.honest import honest_did

    beta, sigma = _ehec()
    grid = {"grid_lb": -0.1, "grid_ub": 0.2, "grid_points": 1000}
    ours_t, ours = _best(lambda: honest_did(beta, sigma, num_pre=5, num_post=2, restriction=restriction, m=values,
                                            method=method, **grid, **shape).tidy(), repeat)
    if restriction == "smoothness":
        peer_t, peer = _best(lambda: create_sensitivity_results_sm(beta, sigma, 5, 2, m_vec=values, method=method,
                                                                   **grid, **shape).to_pandas(), 1)
    else:
        peer_t, peer = _best(lambda: create_sensitivity_results_rm(beta, sigma, 5, 2, m_bar_vec=values, method=method,
                                                                   **grid, **shape).to_pandas(), 1)
    diff = max(np.abs(ours["conf_low"] - peer["lb"]).max(), np.abs(ours["conf_high"] - peer["ub"]).max())
    return ours_t, peer_t, f"max |bound diff| {diff:.2e} (grid step 3.0e-04)"


def honest_sdb(repeat: int):
    return _honest_shape(repeat, "smoothness", "C-F", [0.0, 0.01, 0.02, 0.03], bias_direction="positive")


def honest_sdm(repeat: int):
    return _honest_shape(repeat, "smoothness", "Conditional", [0.0, 0.01, 0.02, 0.03],
                         monotonicity_direction="increasing")


def honest_rmb(repeat: int):
    ours_t, peer_t, agreement = _honest_shape(repeat, "relative_magnitude", "Conditional", [0.5, 1.0, 1.5, 2.0],
                                              bias_direction="positive")
    return ours_t, peer_t, agreement + "; unions differ by design"


def ddd(repeat: int):
    import moderndid as md

    import impactkit as ik

    frame = md.gen_ddd_2periods(n=20_000, dgp_type=1, random_state=5)["data"].to_pandas()
    frame["cohort"] = np.where(frame["state"] == 1, 2, 0)
    covs = ["cov1", "cov2", "cov3", "cov4"]
    ours_t, ours = _best(lambda: ik.did(frame, y="y", unit="id", time="time", cohort="cohort", method="ddd",
                                        partition="partition", covariates=covs).att(), repeat)
    peer_t, peer = _best(lambda: md.ddd(frame, yname="y", tname="time", idname="id", gname="state",
                                        pname="partition", xformla="~" + "+".join(covs)), repeat)
    return ours_t, peer_t, f"|ATT diff| {abs(ours['estimate'] - peer.att):.2e}, |SE diff| {abs(ours['std_error'] - peer.se):.2e}"


def ddd_staggered(repeat: int):
    import moderndid as md

    import impactkit as ik

    frame = md.gen_ddd_scalable(n=10_000, dgp_type=1, n_periods=8, n_cohorts=5, n_covariates=4,
                                random_state=5)["data"].to_pandas()
    covs = ["cov1", "cov2", "cov3", "cov4"]

    def ours_fn():
        fit = ik.did(frame, y="y", unit="id", time="time", cohort="group", method="ddd", partition="partition",
                     covariates=covs, control="notyet")
        return fit.att_gt, fit.event_study()

    def peer_fn():
        fit = md.ddd(frame, yname="y", tname="time", idname="id", gname="group", pname="partition",
                     xformla="~" + "+".join(covs), control_group="notyettreated", base_period="varying")
        return fit, md.agg_ddd(fit, type="eventstudy", boot=False, cband=False)

    ours_t, (att_gt, events) = _best(ours_fn, repeat)
    peer_t, (peer, peer_es) = _best(peer_fn, repeat)
    att_diff = float(np.max(np.abs(att_gt["estimate"].to_numpy() - peer.att)))
    es_diff = float(np.max(np.abs(events["estimate"].to_numpy() - peer_es.att_egt)))
    return ours_t, peer_t, f"max |ATT(g,t) diff| {att_diff:.2e}, max |event-study diff| {es_diff:.2e}"


def _dcdh_study(ours_kw: dict, peer_kw: dict, effects: int = 3, placebo: int = 2):
    def run(repeat: int):
        import moderndid as md

        import impactkit as ik

        frame = md.load_favara_imbs().to_pandas()
        frame["region"] = (frame["state_n"] % 3).astype(float)
        ours_t, ours = _best(lambda: ik.did(frame, y="Dl_vloans_b", unit="county", time="year", treated="inter_bra",
                                            method="dcdh", effects=effects, placebo=placebo, **ours_kw).event_study(),
                             repeat)
        peer_t, peer = _best(lambda: md.did_multiplegt(frame, yname="Dl_vloans_b", idname="county", tname="year",
                                                       dname="inter_bra", effects=effects, placebo=placebo, **peer_kw),
                             repeat)
        es = ours.set_index("event_time")
        horizons = list(range(1, effects + 1))
        est = float(np.max(np.abs(es.loc[horizons, "estimate"].to_numpy() - peer.effects.estimates)))
        se = float(np.max(np.abs(es.loc[horizons, "std_error"].to_numpy() / peer.effects.std_errors - 1)))
        return ours_t, peer_t, f"max |effect diff| {est:.1e}, max SE rel diff {se:.1e}"

    return run


DCDH_STUDIES = {
    "dcdh": ({}, {}),
    "dcdh-cluster": ({"cluster": "state_n"}, {"cluster": "state_n"}),
    "dcdh-normalized": ({"normalized": True, "weights": "w1"}, {"normalized": True, "weightsname": "w1"}),
    "dcdh-trends-lin": ({"trends_lin": True}, {"trends_lin": True}),
    "dcdh-nonparam": ({"trends_nonparam": ["region"]}, {"trends_nonparam": ["region"]}),
    "dcdh-same": ({"same_switchers": True}, {"same_switchers": True}),
    "dcdh-controls": ({"covariates": ["Dl_hpi"]}, {"xformla": "~Dl_hpi"}),
}


def _staggered(n_units: int = 5000, n_periods: int = 10, seed: int = 1) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    cohort = gen.choice([0, 4, 6, 8], size=n_units)
    unit = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(1, n_periods + 1), n_units)
    g = np.repeat(cohort, n_periods)
    treat = ((g > 0) & (t >= g)).astype(float)
    y = np.repeat(gen.normal(size=n_units), n_periods) + 0.1 * t + treat * (1 + 0.2 * (t - g)) + gen.normal(size=t.size)
    frame = pd.DataFrame({"unit": unit, "time": t, "cohort": g, "y": y, "treat": treat})
    return frame


def imputation(repeat: int):
    import pyfixest as pf

    import impactkit as ik

    frame = _staggered()
    ours_t, ours = _best(lambda: ik.did(frame, y="y", unit="unit", time="time", cohort="cohort",
                                        method="imputation").att(), repeat)
    peer_t, peer = _best(lambda: pf.did2s(frame, yname="y", first_stage="~ 0 | unit + time",
                                          second_stage="~ 0 + treat", treatment="treat", cluster="unit"), repeat)
    return ours_t, peer_t, f"|ATT diff| {abs(ours['estimate'] - float(peer.coef()['treat'])):.2e}"


STUDIES = {"honest-rm": (honest_rm, "moderndid didhonest"), "honest-sd": (honest_sd, "moderndid didhonest"),
           "honest-sdb": (honest_sdb, "moderndid didhonest"), "honest-sdm": (honest_sdm, "moderndid didhonest"),
           "honest-rmb": (honest_rmb, "moderndid didhonest"),
           "ddd": (ddd, "moderndid ddd"), "ddd-staggered": (ddd_staggered, "moderndid ddd + agg_ddd"),
           "imputation": (imputation, "pyfixest did2s"),
           **{name: (_dcdh_study(*kw), "moderndid did_multiplegt") for name, kw in DCDH_STUDIES.items()}}


def main(argv: list[str]) -> int:
    repeat = 3
    if "--repeat" in argv:
        i = argv.index("--repeat")
        repeat = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    chosen = argv or list(STUDIES)
    rows = []
    for name in chosen:
        fn, peer = STUDIES[name]
        ours_t, peer_t, agreement = fn(repeat)
        rows.append({"study": name, "peer": peer, "impactkit_s": round(ours_t, 3), "peer_s": round(peer_t, 3),
                     "ratio": round(ours_t / peer_t, 4), "agreement": agreement})
        print(rows[-1], flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
