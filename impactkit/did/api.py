"""The difference-in-differences front door: :func:`did`.

One call looks the method up in :mod:`impactkit.did.registry`, keeps the options that method
uses (any other option set away from its default is an :class:`~impactkit.errors.InputError`),
checks the panel once (:meth:`impactkit.did.base.DidEstimator.prepare`: columns, duplicates,
reversing treatment, ``cohort`` from ``treated`` or the reverse) and fits. The registered
methods and their references are listed by :func:`impactkit.did.registry.labels`; as shipped:

=========  ==========================================================================
method     estimator
=========  ==========================================================================
``2x2``    :func:`impactkit.did.twfe.estimate_2x2` (Card & Krueger 1994)
``twfe``   :func:`impactkit.did.twfe.estimate_twfe` (Angrist & Pischke 2009, eq. 5.2.6)
``cs``     :func:`impactkit.did.cs.estimate_cs` (Callaway & Sant'Anna 2021)
``sa``     :func:`impactkit.did.sa.estimate_sa` (Sun & Abraham 2021)
``ddd``    :class:`impactkit.did.triple.TripleEstimator` (Ortiz-Villavicencio & Sant'Anna 2025):
           two periods, or staggered ATT(g,t) (:mod:`impactkit.did.triple_staggered`)
=========  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from impactkit.did import registry
from impactkit.did.base import DidResult
from impactkit.errors import InputError

COLUMN_OPTIONS = ("covariates", "weights", "cluster")


def did(data: pd.DataFrame, *, y: str, unit: str | None = None, time: str, method: str = "twfe",
        cohort: str | None = None, treated: str | None = None,
        covariates: Sequence[str] | None = None, control: str = "never", est: str = "dr",
        cluster: str | Sequence[str] | None = None, weights: str | None = None,
        anticipation: int = 0, base_period: str = "varying", alpha: float = 0.05,
        bootstrap: bool = False, biters: int = 999, seed: int | None = None,
        vcov: str = "CRV1", **kwargs: Any) -> DidResult:
    """Estimate a difference-in-differences effect with the method named by ``method``.

    Parameters
    ----------
    data : pandas.DataFrame
        Long panel: one row per unit and period.
    y, time : str
        Outcome and period columns.
    unit : str
        Unit column (not needed for repeated cross sections, ``panel=False``).
    method : str, default "twfe"
        A key of :mod:`impactkit.did.registry` (``"2x2"``, ``"twfe"``, ``"cs"``, ``"sa"``, ...).
    cohort : str, optional
        Column with each unit's first treated period (0 or missing = never treated).
    treated : str, optional
        0/1 treatment column. Give ``cohort`` or ``treated`` (or both, which must agree).
    covariates : sequence of str, optional
        Covariate columns.
    control : str, default "never"
        Comparison group: ``"never"`` / ``"notyet"`` (cs), ``"never"`` / ``"last"`` (sa).
    est : {"dr", "ipw", "reg"}, default "dr"
        Callaway-Sant'Anna 2x2 estimator (Sant'Anna & Zhao 2020).
    cluster : str or sequence of str, optional
        Cluster column(s); the unit by default.
    weights : str, optional
        Sampling-weight column.
    anticipation : int, default 0
        Periods of anticipation (cs, sa).
    base_period : {"varying", "universal"}, default "varying"
        Base period of pre-treatment cells (cs).
    alpha : float, default 0.05
        1 - confidence level.
    bootstrap : bool, default False
        Multiplier bootstrap for uniform bands (cs).
    biters : int, default 999
        Bootstrap draws (cs).
    seed : int, optional
        Seed for every random draw (:func:`impactkit.seeds.rng`).
    vcov : {"CRV1", "CRV3", "HC1"}, default "CRV1"
        Regression covariance (2x2, twfe, sa).
    **kwargs
        Method-specific options (e.g. ``post=``/``periods=`` for 2x2, ``allow_unbalanced=`` and
        ``panel=False`` (repeated cross sections) for cs, ``partition=`` (the 0/1 eligibility
        column) for ddd).

    Returns
    -------
    DidResult
        The method's result, with ``att()``, ``event_study()``, ``pretrend()``, ``tidy()``, ``plot()``.

    Raises
    ------
    InputError
        Unknown method; an option the method does not use set away from its default (naming
        option and method); missing columns, duplicate unit-time rows, reversing treatment, a
        cohort varying within a unit, an outcome missing in a whole period or non-numeric.
    EstimationError
        No control units, or the estimator cannot be computed on the data.
    """
    from impactkit.frames import as_pandas

    data = as_pandas(data)
    estimator_class = registry.get(method)
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    given = {"covariates": covariates, "control": control, "est": est, "cluster": cluster, "weights": weights,
             "anticipation": anticipation, "base_period": base_period, "alpha": alpha, "bootstrap": bootstrap,
             "biters": biters, "seed": seed, "vcov": vcov}
    options = estimator_class.select_options(given, kwargs)
    columns = {k: options.pop(k, None) for k in COLUMN_OPTIONS}
    estimator = estimator_class()
    panel = estimator.prepare(data, y=y, unit=unit, time=time, cohort=cohort, treated=treated, **columns,
                              **options)
    return estimator.fit(panel, **options)
