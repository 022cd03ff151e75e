"""Outcome semantics: effects are stated in the terms of what the outcome is.

Expected values are derived by hand: exp(-0.040) - 1 = -0.03921 (-3.9%), exp(0.5) - 1 =
0.6487; a share effect of 0.032 is 3.2 percentage points. Tolerance 1e-12 (closed forms).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from impactkit.analysis.outcome import (describe_effect, effect_scale, effect_terms, estimate_header, money_terms,
                                        unit_words)


def test_scale_follows_kind_and_transform():
    assert effect_scale("level", "log") == "log"
    assert effect_scale("money", "log") == "log"
    assert effect_scale("log", "none") == "log"
    assert effect_scale("share", "none") == "share"
    assert effect_scale("money", "none") == "money"
    assert effect_scale("level", "none") == "level"


def test_log_points_become_percent_with_the_interval_transformed():
    terms = effect_terms(-0.040, -0.063, -0.017, "log")
    assert terms["percent"] == pytest.approx(math.expm1(-0.040), abs=1e-12)
    assert terms["percent_low"] == pytest.approx(math.expm1(-0.063), abs=1e-12)
    assert terms["percent_high"] == pytest.approx(math.expm1(-0.017), abs=1e-12)
    size, interval = describe_effect({"estimate": -0.040, "conf_low": -0.063, "conf_high": -0.017}, "log")
    assert size == "\u22123.9%"
    assert interval == "\u22126.1% to \u22121.7%"
    size, _ = describe_effect({"estimate": 0.5, "conf_low": 0.4, "conf_high": 0.6}, "log")
    assert size == "+65%"


def test_shares_are_percentage_points_levels_keep_their_units():
    assert effect_terms(0.032, 0.010, 0.054, "share") == pytest.approx(
        {"points": 3.2, "points_low": 1.0, "points_high": 5.4})
    size, interval = describe_effect({"estimate": 0.032, "conf_low": 0.010, "conf_high": 0.054}, "share")
    assert size == "+3.2 percentage points" and interval == "+1.0 to +5.4 percentage points"
    size, _ = describe_effect({"estimate": 12.5, "conf_low": 3.0, "conf_high": 22.0}, "level", units="kg per hectare")
    assert size == "+12.50 kg per hectare"
    assert effect_terms(12.5, 3.0, 22.0, "level") == {}
    assert estimate_header("log") == "Estimate (log points)"
    assert estimate_header("level", "kg") == "Estimate (kg)"
    assert unit_words("money", currency="USD") == "USD"


def test_money_only_when_the_outcome_is_money():
    assert money_terms("level", "log", 0.1, 0.0, 0.2, 1000.0) == {}
    assert money_terms("log", "log", 0.1, 0.0, 0.2, 5.0) == {}  # a mean of logs is not money
    logged = money_terms("money", "log", 0.1, 0.0, 0.2, 1000.0)
    assert logged["money"] == pytest.approx(1000.0 * math.expm1(0.1), abs=1e-9)
    assert logged["money_low"] == pytest.approx(0.0, abs=1e-12)
    assert money_terms("money", "money", 250.0, 100.0, 400.0, 1000.0) == {"money": 250.0, "money_low": 100.0,
                                                                          "money_high": 400.0}


def _results(scale: str, est: float, lo: float, hi: float, **analysis) -> dict:
    head = {"estimator": "Callaway-Sant'Anna", "estimate": est, "conf_low": lo, "conf_high": hi, "p_value": 0.01,
            "scale": scale, "units": unit_words(scale, analysis.get("outcome_units", ""), analysis.get("currency")),
            "n_units": 500, "n_clusters": 500, "population": "all counties (intention to treat)",
            **effect_terms(est, lo, hi, scale)}
    a = {"outcome_label": "log teen employment", "unit_label": "county", "unit_plural": "counties", **analysis}
    return {"schema": "impactkit.results/2", "analysis": a, "headline": head,
            "data": {"baseline_mean": 5.8}}


def test_pack_headline_of_an_outcome_already_in_logs_is_a_percent_and_no_money():
    from impactkit.pack.build import display_view, headline_sentences

    results = _results("log", -0.0399, -0.0652, -0.0146)
    text = {k: v.replace("\\", "") for k, v in headline_sentences(display_view(results)).items()}
    assert "lowered log teen employment by an estimated **\u22123.9%** (95% confidence interval \u22126.3% to " \
           "\u22121.4%)" in text["effect"]
    assert "money" not in text
    assert "PEN" not in " ".join(text.values())


def test_pack_headline_of_a_share_is_in_percentage_points():
    from impactkit.pack.build import display_view, headline_sentences
    from impactkit.pack.tables import headline_table

    results = _results("share", 0.032, 0.010, 0.054, outcome_label="Share enrolled")
    text = headline_sentences(display_view(results))["effect"].replace("\\", "")
    assert "**+3.2 percentage points** (95% confidence interval +1.0 to +5.4 percentage points)" in text
    assert "+3.2" in headline_table(display_view(results))


def test_pack_headline_of_a_level_states_its_units():
    from impactkit.pack.build import display_view, headline_sentences

    results = _results("level", 12.5, 3.0, 22.0, outcome_label="Maize yield", outcome_units="kg per hectare")
    text = headline_sentences(display_view(results))["effect"].replace("\\", "")
    assert "**+12.50 kg per hectare** (95% confidence interval +3.00 to +22.00 kg per hectare)" in text


def test_a_none_transform_never_logs_the_outcome(tmp_path):
    """A log outcome with negative values and transform = 'none' is analysed as is."""
    from impactkit.analysis.prepare import prepare_panel
    from impactkit.analysis.spec import AnalysisSpec

    spec = AnalysisSpec.model_validate({
        "analysis": {"name": "x", "title": "x", "question": "x"},
        "data": {"file": "d.csv", "contract": "c.yaml"},
        "design": {"unit": "id", "time": "t", "cohort": "g", "treated": "d", "cluster": "id"},
        "outcomes": {"primary": "lemp", "kind": "log"}, "seeds": {"entropy": 1}, "folder": tmp_path})
    frame = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 1, 2], "g": [2, 2, 0, 0], "d": [0, 1, 0, 0],
                          "lemp": [-0.5, 0.3, 1.2, -2.0]})
    panel = prepare_panel(frame, spec)
    assert "log_lemp" not in panel.columns
    np.testing.assert_array_equal(panel["lemp"].to_numpy(), frame["lemp"].to_numpy())


@pytest.mark.parametrize("outcomes, message", [
    ({"primary": "y", "kind": "money"}, "needs currency"),
    ({"primary": "y", "kind": "level", "currency": "USD"}, "are for kind = 'money'"),
    ({"primary": "y", "kind": "log", "transform": "log"}, "already a log"),
])
def test_incoherent_outcome_declarations_are_refused(tmp_path, outcomes, message):
    from pydantic import ValidationError

    from impactkit.analysis.spec import AnalysisSpec

    with pytest.raises(ValidationError, match=message):
        AnalysisSpec.model_validate({
            "analysis": {"name": "x", "title": "x", "question": "x"},
            "data": {"file": "d.csv", "contract": "c.yaml"},
            "design": {"unit": "id", "time": "t", "cohort": "g", "treated": "d", "cluster": "id"},
            "outcomes": outcomes, "seeds": {"entropy": 1}, "folder": tmp_path})


def test_the_never_treated_code_of_the_contract_becomes_zero(tmp_path):
    from impactkit.analysis.prepare import prepare_panel
    from impactkit.analysis.spec import AnalysisSpec

    spec = AnalysisSpec.model_validate({
        "analysis": {"name": "x", "title": "x", "question": "x"},
        "data": {"file": "d.csv", "contract": "c.yaml"},
        "design": {"unit": "id", "time": "t", "cohort": "g", "treated": "d", "cluster": "id"},
        "outcomes": {"primary": "y", "kind": "level"}, "seeds": {"entropy": 1}, "folder": tmp_path})
    frame = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 1, 2], "g": [2, 2, 9999, 9999], "d": [0, 1, 0, 0],
                          "y": [1.0, 2.0, 3.0, 4.0]})
    panel = prepare_panel(frame, spec, never_treated_cohort=9999)
    assert panel["g"].tolist() == [2, 2, 0, 0]
    assert panel["ever_treated"].tolist() == [1, 1, 0, 0]


def test_a_text_treatment_column_is_exit_2_naming_it(tmp_path):
    from impactkit.analysis.prepare import prepare_panel
    from impactkit.analysis.spec import AnalysisSpec
    from impactkit.errors import InputError

    spec = AnalysisSpec.model_validate({
        "analysis": {"name": "x", "title": "x", "question": "x"},
        "data": {"file": "d.csv", "contract": "c.yaml"},
        "design": {"unit": "id", "time": "t", "cohort": "g", "treated": "d", "cluster": "id"},
        "outcomes": {"primary": "y", "kind": "level"}, "seeds": {"entropy": 1}, "folder": tmp_path})
    frame = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 1, 2], "g": [2, 2, 0, 0], "d": ["No", "Yes", "No", "No"],
                          "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(InputError, match=r"column 'd' \(design.treated\) must be 0/1 but holds text"):
        prepare_panel(frame, spec)
