"""The DiD estimator contract (issue 16): one registry, one base class, the same result shapes,
and options a method ignores refused by name (defect 2)."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

import impactkit.analysis.spec  # noqa: F401  (built from the registry before any test patches it)
from impactkit.did import did, registry
from impactkit.did.base import ATT_KEYS, EVENT_STUDY_COLUMNS, SHARED_OPTIONS, DidEstimator, DidResult, att_dict
from impactkit.did.event_study import WaldTestResult
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

matplotlib.use("Agg")

# a value away from the default for every shared option of did()
NON_DEFAULT = {"covariates": ["x"], "control": "notyet", "est": "ipw", "cluster": "unit", "weights": "w",
               "anticipation": 1, "base_period": "universal", "alpha": 0.1, "bootstrap": True, "biters": 99,
               "seed": 3, "vcov": "CRV3"}


def staggered(seed: int = 0, n_units: int = 120, cohorts=(0, 2004, 2006)) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), 6)
    year = np.tile(np.arange(2001, 2007), n_units)
    g = np.repeat(gen.choice(cohorts, n_units), 6)
    d = ((g > 0) & (year >= g)).astype(int)
    y = np.repeat(gen.normal(size=n_units), 6) + 0.1 * (year - 2001) + 1.5 * d + gen.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "year": year, "y": y, "g": g, "d": d,
                         "x": np.repeat(gen.normal(size=n_units), 6), "w": 1.0})


def _fit(method: str, frame: pd.DataFrame | None = None, **options):
    frame = staggered() if frame is None else frame
    if method == "2x2":
        frame = frame[frame["g"] != 2006]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImpactkitWarning)
        return did(frame, y="y", unit="unit", time="year", cohort="g", method=method, **options)


def test_registry_names_the_methods_and_every_entry_honours_the_contract():
    assert registry.names() == tuple(registry.ENTRIES)
    assert {"2x2", "twfe", "cs", "sa"} <= set(registry.names())
    for name, cls in registry.estimators().items():
        assert issubclass(cls, DidEstimator) and cls.name == name
        assert cls.label and cls.reference
        for option, default in cls.options.items():   # shared names keep did()'s defaults
            if option in SHARED_OPTIONS:
                assert default == SHARED_OPTIONS[option], (name, option)
    with pytest.raises(InputError, match="method must be one of 2x2, twfe, cs, sa.*'synthetic'"):
        registry.get("synthetic")


@pytest.mark.parametrize("method", ["2x2", "twfe", "cs", "sa", "imputation"])
def test_results_share_att_event_study_pretrend_tidy_plot(method):
    result = _fit(method)
    assert isinstance(result, DidResult)
    effect = result.att()
    assert tuple(effect) == ATT_KEYS and all(isinstance(v, float) for v in effect.values())
    assert effect["conf_low"] < effect["estimate"] < effect["conf_high"]
    assert abs(effect["estimate"] - 1.5) < 4 * effect["std_error"]            # simulation truth 1.5
    assert isinstance(result.tidy(), pd.DataFrame)
    figure = result.plot()
    assert isinstance(figure, matplotlib.figure.Figure)
    if registry.get(method).has_event_study:
        events = result.event_study()
        assert tuple(events.columns) == EVENT_STUDY_COLUMNS
        post = events["event_time"] >= 0
        z = (events.loc[post, "estimate"] - 1.5).abs() / events.loc[post, "std_error"]
        assert (z < 4).all()
        test = result.pretrend()
        assert isinstance(test, WaldTestResult) and test.df >= 1 and 0 <= test.p_value <= 1
    else:
        with pytest.raises(EstimationError, match=f"method '{method}' .*use one of cs, sa"):   # and later ones
            result.event_study()
        with pytest.raises(EstimationError, match=f"method '{method}'"):
            result.pretrend()


def test_sa_and_cs_pretrend_return_the_same_type():
    assert type(_fit("sa").pretrend_test()) is type(_fit("cs").pretrend_test()) is WaldTestResult


@pytest.mark.parametrize("method", ["2x2", "twfe", "cs", "sa"])
@pytest.mark.parametrize("option", sorted(NON_DEFAULT))
def test_options_the_method_ignores_raise_input_error(method, option):
    """Defect 2 of issue 16: e.g. anticipation / base_period with TWFE or vcov with CS were silently
    accepted; now an InputError names the option and the method, and the methods that use it."""
    cls = registry.get(method)
    if option in cls.options:
        return
    users = [name for name, c in registry.estimators().items() if option in c.options]
    with pytest.raises(InputError, match=f"'{option}'.* not used by method '{method}'.*"
                                         f"'{option}' applies to {', '.join(users) or 'no method'}"):
        _fit(method, **{option: NON_DEFAULT[option]})


def test_named_ignored_options_from_the_issue():
    with pytest.raises(InputError, match="'anticipation'.*method 'twfe'"):
        _fit("twfe", anticipation=1)
    with pytest.raises(InputError, match="'base_period'.*method 'twfe'"):
        _fit("twfe", base_period="universal")
    with pytest.raises(InputError, match="'vcov'.*method 'cs'"):
        _fit("cs", vcov="CRV3")
    # defaults passed explicitly are not an error; the option a method uses is passed on
    assert _fit("twfe", anticipation=0, base_period="varying").att()["estimate"] == _fit("twfe").att()["estimate"]
    assert _fit("sa", anticipation=1).reference == -2


class MeanShift(DidEstimator):
    """A test estimator: difference of mean changes, treated vs never treated (first vs last period)."""

    name = "meanshift"
    label = "Mean shift (test)"
    reference = "Card & Krueger (1994)"
    options = {"alpha": 0.05, "scale": 1.0}

    def fit(self, panel, *, alpha=0.05, scale=1.0, **_):
        frame = panel.frame
        first, last = frame["_time"].min(), frame["_time"].max()
        wide = frame.pivot(index="_unit", columns="_time", values="_y")
        change = (wide[last] - wide[first]) * scale
        ever = frame.groupby("_unit")["_cohort"].max().reindex(wide.index) > 0
        est = change[ever].mean() - change[~ever].mean()
        se = np.sqrt(change[ever].var() / ever.sum() + change[~ever].var() / (~ever).sum())
        return MeanShiftResult(est, se)


class MeanShiftResult(DidResult):
    method = "meanshift"

    def __init__(self, estimate, std_error):
        self.estimate, self.std_error = float(estimate), float(std_error)

    def att(self):
        return att_dict(self.estimate, self.std_error, self.estimate - 1.96 * self.std_error,
                        self.estimate + 1.96 * self.std_error, 0.0)

    def tidy(self):
        return pd.DataFrame([self.att()])


def test_one_registry_line_adds_an_estimator(monkeypatch):
    monkeypatch.setitem(registry.ENTRIES, "meanshift", f"{__name__}:MeanShift")
    registry.get.cache_clear()
    try:
        result = did(staggered(cohorts=(0, 2004)), y="y", unit="unit", time="year", cohort="g", method="meanshift",
                     scale=2.0)
        assert abs(result.att()["estimate"] / 2 - 1.5) < 4 * result.att()["std_error"] / 2
        with pytest.raises(InputError, match="'anticipation'.*method 'meanshift'.*applies to cs, sa"):
            did(staggered(), y="y", unit="unit", time="year", cohort="g", method="meanshift", anticipation=1)
        assert "meanshift" in registry.labels()
        from impactkit.analysis.run import estimator_labels
        assert estimator_labels()["meanshift"] == "Mean shift (test)"
    finally:
        registry.get.cache_clear()


def test_analysis_spec_and_labels_derive_from_the_registry():
    from pydantic import ValidationError

    from impactkit.analysis.run import estimator_labels
    from impactkit.analysis.spec import EstimatorSection

    # every registered DiD estimator, plus ANCOVA, which the analysis layer runs itself
    assert set(EstimatorSection.model_fields["headline"].annotation.__args__) == set(registry.names()) | {"ancova"}
    section = EstimatorSection(headline="sa", compare=list(registry.names()), cs_allow_unbalanced=True)
    assert section.cs_allow_unbalanced and not EstimatorSection().cs_allow_unbalanced
    with pytest.raises(ValidationError):
        EstimatorSection(headline="synthetic")
    assert {k: v for k, v in estimator_labels().items() if k not in ("iv", "ancova")} == registry.labels()
