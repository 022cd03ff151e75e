"""Encouragement designs: identities of the Wald estimator, a seeded simulation with known
complier types (truth), linearmodels on the same data, and bad input.

Simulation truth: 55% compliers, 15% always-takers, 30% never-takers; the effect of
take-up is 2.0 for compliers (so LATE = 2.0, first stage = 0.55, ITT = 1.1); the
characteristic ``female`` has mean 0.7 among compliers, 0.3 among always-takers and
0.4 among never-takers (population mean 0.55*0.7 + 0.15*0.3 + 0.3*0.4 = 0.55).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from linearmodels import IV2SLS

from impactkit.atomic import dumps_json
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.iv import encouragement
from impactkit.seeds import rng

SHARES = {"complier": 0.55, "always": 0.15, "never": 0.30}
FEMALE = {"complier": 0.7, "always": 0.3, "never": 0.4}
LATE = 2.0


def simulate(seed: int, n: int = 6000) -> pd.DataFrame:
    g = rng(seed, "encouragement-test")
    kinds = g.choice(list(SHARES), size=n, p=list(SHARES.values()))
    z = (g.random(n) < 0.5).astype(int)
    take_up = np.where(kinds == "always", 1, np.where(kinds == "never", 0, z))
    female = (g.random(n) < np.vectorize(FEMALE.get)(kinds)).astype(float)
    age = g.normal(35, 8, size=n)
    village = g.integers(0, 80, size=n)
    effect = np.where(kinds == "complier", LATE, np.where(kinds == "always", 3.0, 0.5))
    y0 = 1.0 + 0.5 * female + 0.02 * age + 0.8 * (kinds == "always") + g.normal(size=n)
    y = y0 + effect * take_up
    return pd.DataFrame({"y": y, "take": take_up, "z": z, "female": female, "age": age, "village": village})


@pytest.fixture(scope="module")
def design() -> pd.DataFrame:
    return simulate(1)


def _row(result, estimand: str) -> pd.Series:
    return result.tidy().set_index("estimand").loc[estimand]


def test_wald_identities_without_covariates(design):
    result = encouragement(design, y="y", take_up="take", instrument="z", characteristics=["female", "age"])
    by_z = design.groupby("z")
    itt = by_z["y"].mean().diff().iloc[-1]
    first = by_z["take"].mean().diff().iloc[-1]
    # exact identities on the same numbers (1e-10)
    assert _row(result, "itt")["estimate"] == pytest.approx(itt, abs=1e-10)
    assert _row(result, "first_stage")["estimate"] == pytest.approx(first, abs=1e-10)
    assert _row(result, "late")["estimate"] == pytest.approx(itt / first, abs=1e-10)
    xd = design["female"] * design["take"]
    wald = (xd[design["z"] == 1].mean() - xd[design["z"] == 0].mean()) / first
    means = result.complier_means.set_index("characteristic")
    assert means.loc["female", "complier_mean"] == pytest.approx(wald, abs=1e-10)
    assert means.loc["female", "population_mean"] == pytest.approx(design["female"].mean(), abs=1e-12)
    never = design.loc[(design["z"] == 1) & (design["take"] == 0), "female"].mean()
    assert means.loc["female", "never_taker_mean"] == pytest.approx(never, abs=1e-12)


def test_simulation_recovers_truth(design):
    """Estimates within 4 standard errors of the truth (and the SEs are below 0.1)."""
    result = encouragement(design, y="y", take_up="take", instrument="z", covariates=["age"],
                           characteristics=["female"])
    truth = {"itt": SHARES["complier"] * LATE, "first_stage": SHARES["complier"], "late": LATE}
    for estimand, value in truth.items():
        row = _row(result, estimand)
        assert abs(row["estimate"] - value) < 4 * row["std_error"]
        assert row["std_error"] < 0.1
    female = result.complier_means.set_index("characteristic").loc["female"]
    assert abs(female["complier_mean"] - FEMALE["complier"]) < 4 * female["std_error"]
    assert female["always_taker_mean"] == pytest.approx(FEMALE["always"], abs=0.06)
    assert female["never_taker_mean"] == pytest.approx(FEMALE["never"], abs=0.05)


def test_complier_mean_agrees_with_abadie_kappa(design):
    """Abadie (2003) kappa = 1 - D(1-Z)/(1-p) - (1-D)Z/p with p = P(Z=1): the kappa-weighted mean
    of X estimates the same complier mean; both within 0.03 of each other on n = 6000."""
    result = encouragement(design, y="y", take_up="take", instrument="z", characteristics=["female"])
    d, z, x = design["take"], design["z"], design["female"]
    p = z.mean()
    kappa = 1 - d * (1 - z) / (1 - p) - (1 - d) * z / p
    kappa_mean = float((kappa * x).sum() / kappa.sum())
    ours = result.complier_means.set_index("characteristic").loc["female", "complier_mean"]
    assert ours == pytest.approx(kappa_mean, abs=0.03)
    assert kappa_mean == pytest.approx(FEMALE["complier"], abs=0.06)


def test_late_matches_linearmodels_with_covariates_and_clusters(design):
    result = encouragement(design, y="y", take_up="take", instrument="z", covariates=["age", "female"],
                           cluster="village")
    reference = IV2SLS.from_formula("y ~ 1 + age + female + [take ~ z]", design).fit(
        cov_type="clustered", clusters=design["village"], debiased=True)
    late = _row(result, "late")
    assert late["estimate"] == pytest.approx(reference.params["take"], abs=1e-8)
    assert late["std_error"] == pytest.approx(reference.std_errors["take"], abs=1e-8)
    itt = IV2SLS.from_formula("y ~ 1 + age + female + z", design).fit(
        cov_type="clustered", clusters=design["village"], debiased=True)
    assert _row(result, "itt")["estimate"] == pytest.approx(itt.params["z"], abs=1e-8)
    assert _row(result, "itt")["std_error"] == pytest.approx(itt.std_errors["z"], abs=1e-8)


def test_absorbed_village_effects_match_dummies(design):
    design = design.iloc[:2000]
    result = encouragement(design, y="y", take_up="take", instrument="z", absorb="village")
    reference = IV2SLS.from_formula("y ~ 1 + C(village) + [take ~ z]", design).fit(cov_type="robust", debiased=True)
    assert _row(result, "late")["estimate"] == pytest.approx(reference.params["take"], abs=1e-8)
    assert _row(result, "late")["std_error"] == pytest.approx(reference.std_errors["take"], abs=1e-8)


def test_result_interface(design):
    result = encouragement(design, y="y", take_up="take", instrument="z", characteristics=["female"])
    assert list(result.tidy()["estimand"]) == ["itt", "first_stage", "late"]
    text = result.summary()
    assert "Complier characteristics" in text and "effective F" in text
    assert dumps_json(result.to_dict()) == dumps_json(
        encouragement(design, y="y", take_up="take", instrument="z", characteristics=["female"]).to_dict())


def test_bad_input(design):
    with pytest.raises(InputError, match="'nosuch'"):
        encouragement(design, y="y", take_up="take", instrument="nosuch")
    with pytest.raises(InputError, match="instrument column 'age' must be coded 0/1"):
        encouragement(design, y="y", take_up="take", instrument="age")
    with pytest.raises(EstimationError, match="take-up column 'one' is constant"):
        encouragement(design.assign(one=1), y="y", take_up="one", instrument="z")


def test_unrelated_encouragement_warns(design):
    noise = design.assign(z=(rng(2, "noise").random(len(design)) < 0.5).astype(int))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImpactkitWarning)
        result = encouragement(noise, y="y", take_up="take", instrument="z")
    assert any("weak instrument" in str(w.message) for w in caught)
    assert not result.iv_result.ar_set.bounded
