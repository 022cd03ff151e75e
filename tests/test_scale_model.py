"""Formulas of the scale-readiness model against hand computation.

Every expected number here is written out independently of impactkit (closed forms, plain
Python loops); tolerances are stated per assertion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from impactkit.scale import cost
from impactkit.scale.aggregate import ranks, weighted_geometric_mean, weighted_sum
from impactkit.scale.evidence import (
    check_estimate_facts, grade_from_facts, grade_without_facts, nesta_level, post_study_probability,
)
from impactkit.scale.readiness import package_readiness
from impactkit.errors import InputError

EXACT = 1e-12  # floating-point identity of two algebraically equal expressions


def test_weakest_component_is_the_bottleneck():
    # components (readiness, use): (8, 7) -> 56, (6, 3) -> 18, (9, 9) -> 81, padding
    readiness = np.array([[8, 6, 9, 1]], dtype=float)
    use = np.array([[7, 3, 9, 1]], dtype=float)
    present = np.array([[True, True, True, False]])
    value, index = package_readiness(readiness, use, present)
    assert value[0] == 18.0 and index[0] == 1
    # ties go to the first listed component
    value, index = package_readiness(np.array([[3.0, 3.0]]), np.array([[4.0, 4.0]]), np.array([[True, True]]))
    assert value[0] == 12.0 and index[0] == 0


def test_weighted_geometric_mean_matches_hand_computation():
    values = np.array([0.25, 1.0, 0.64, 0.0])
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    # the zero is floored at 0.01 (documented), then exp(sum w log x)
    hand = 0.25 ** 0.4 * 1.0 ** 0.3 * 0.64 ** 0.2 * 0.01 ** 0.1
    assert abs(weighted_geometric_mean(values, weights) - hand) < EXACT
    assert abs(weighted_geometric_mean(np.array([0.25, 1.0]), np.array([0.5, 0.5])) - 0.5) < EXACT
    assert abs(weighted_sum(values, weights) - (0.1 + 0.3 + 0.128 + 0.0)) < EXACT


def test_ranks_put_gate_passers_first():
    passes = np.array([False, True, True])
    scores = np.array([0.9, 0.2, 0.5])
    assert ranks(passes, scores).tolist() == [3, 2, 1]


def test_post_study_probability_matches_formula():
    # Maniadis, Tufano & List (2014) eq. 1: power 0.8, prior 0.1, alpha 0.05 -> 0.08 / 0.125 = 0.64
    assert abs(float(post_study_probability(0.8, 0.1, 0.05)) - 0.64) < EXACT
    power, prior, alpha = 0.35, 0.3, 0.05
    hand = power * prior / (power * prior + alpha * (1 - prior))
    assert abs(float(post_study_probability(power, prior, alpha)) - hand) < EXACT
    assert float(post_study_probability(0.0, 0.0, 0.05)) == 0.0  # no true positive possible


def test_cost_per_participant_bcr_npv_irr_by_hand():
    fixed, variable = 10_000.0, 50.0
    assert float(cost.cost_per_participant(fixed, variable, 200)) == 100.0
    at_scale = float(cost.cost_per_participant(fixed, variable, 10_000))
    assert at_scale == 51.0
    rate, years, benefit = 0.05, 10, 20.0
    annuity = (1 - (1 + rate) ** -years) / rate  # closed form, independent of the loop in cost.py
    assert abs(cost.annuity_factor(rate, years) - annuity) < 1e-12
    assert cost.annuity_factor(0.0, 4) == 4.0
    pv = benefit * annuity
    assert abs(float(cost.benefit_cost_ratio(at_scale, benefit, rate, years)) - pv / at_scale) < 1e-12
    assert abs(float(cost.net_present_value(at_scale, benefit, rate, years)) - (pv - at_scale)) < 1e-12
    # IRR: pay 100 now, receive 110 in one year -> exactly 10%; two years of 60 -> root of 60/(1+r) + 60/(1+r)^2 = 100
    assert abs(cost.internal_rate_of_return(100.0, 110.0, 1) - 0.10) < 1e-9
    # 60x + 60x^2 = 100  ->  x = (-60 + sqrt(3600 + 24000)) / 120
    x = (-60 + math.sqrt(3600 + 24000)) / 120
    assert abs(cost.internal_rate_of_return(100.0, 60.0, 2) - (1 / x - 1)) < 1e-9
    assert cost.internal_rate_of_return(100.0, 0.0, 5) is None  # no benefit: NPV never reaches zero


def test_cost_per_unit_impact_carries_the_impact_interval():
    point, low, high = cost.cost_per_unit_impact(51.0, 0.5, 0.2, 0.8)
    assert (point, low, high) == (102.0, 63.75, 255.0)
    point, low, high = cost.cost_per_unit_impact(51.0, 0.5, -0.1, 0.8)
    assert high == math.inf and low == 63.75


def _facts(**over):
    base = {"design": "did", "estimate": 0.3, "conf_low": 0.1, "conf_high": 0.5, "pretrend_p": 0.4,
            "n_clusters": 60, "differential_attrition_p": 0.5, "balance_joint_p": 0.3, "power": 0.8}
    base.update(over)
    return check_estimate_facts("k", base)


def test_sms_grading_rules():
    # What Works Centre (Madaleno & Waights 2016): a clean DiD is level 3, IV/RDD level 4, RCT 5
    assert (grade_from_facts(_facts()).low, grade_from_facts(_facts()).high) == (3, 3)
    assert grade_from_facts(_facts(design="iv")).high == 4 and grade_from_facts(_facts(design="rdd")).high == 4
    assert grade_from_facts(_facts(design="rct")).high == 5
    failed_pretrend = grade_from_facts(_facts(pretrend_p=0.01))
    assert failed_pretrend.high == 2 and failed_pretrend.low == 2
    no_pretrend = grade_from_facts(_facts(pretrend_p=None))
    assert (no_pretrend.low, no_pretrend.high) == (2, 3)  # the unknown test may fail
    assert grade_from_facts(_facts(n_clusters=20)).high == 2
    assert grade_from_facts(_facts(conf_low=-0.1)).high == 2
    assert grade_from_facts(_facts(differential_attrition_p=0.01, balance_joint_p=0.01)).high == 1
    worst = grade_from_facts(_facts(pretrend_p=0.0, n_clusters=5, conf_low=-1, differential_attrition_p=0.0,
                                    balance_joint_p=0.0))
    assert worst.high == 1 and worst.low == 1  # floor 1
    unknown = grade_from_facts(_facts(n_clusters=None, balance_joint_p=None))
    assert (unknown.low, unknown.high) == (1, 3)
    assert (grade_without_facts("unknown").low, grade_without_facts("unknown").high) == (1, 5)
    assert (grade_without_facts("matched").low, grade_without_facts("matched").high) == (1, 3)
    assert (grade_without_facts("monitoring").low, grade_without_facts("monitoring").high) == (0, 0)


def test_nesta_levels():
    # columns: SMS, positive change, independent, cost data, documented replication
    cases = [
        (0, True, True, True, True, 1),     # outputs only: describe
        (1, True, False, False, False, 2),  # measured positive change
        (1, False, False, False, False, 1),  # a measured -30% is not level 2
        (3, True, False, True, False, 3),   # causality, cost data, but not independent: not 4
        (3, True, True, False, False, 3),   # independent, no cost data: not 4
        (3, True, True, True, False, 4),    # independent evaluation + cost data
        (4, True, True, True, True, 5),     # + documented replication elsewhere
        (4, True, False, True, True, 3),    # replication cannot skip level 4
        (5, False, True, True, True, 1),    # no positive change: nothing above 1
    ]
    cols = list(zip(*cases))
    got = nesta_level(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]), np.array(cols[4]))
    assert got.tolist() == list(cols[5])


def test_bad_estimate_facts_raise_input_error():
    with pytest.raises(InputError, match=r"estimates\['k'\].*conf_high"):
        check_estimate_facts("k", {"design": "did", "estimate": 1, "conf_low": 0})
    with pytest.raises(InputError, match="pretrend_p"):
        check_estimate_facts("k", {"design": "did", "estimate": 1, "conf_low": 0, "conf_high": 2, "pretrend_p": 3})
    with pytest.raises(InputError, match="unknown fact"):
        check_estimate_facts("k", {"design": "did", "estimate": 1, "conf_low": 0, "conf_high": 2, "typo": 1})
