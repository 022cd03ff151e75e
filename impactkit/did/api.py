"""The difference-in-differences front door: :func:`did`.

One call checks the panel (:mod:`impactkit.did.data`), derives ``cohort`` from ``treated``
or the reverse, and dispatches to the estimator named by ``method``:

=========  ==========================================================================
method     estimator
=========  ==========================================================================
``2x2``    :func:`impactkit.did.twfe.estimate_2x2` (Card & Krueger 1994)
``twfe``   :func:`impactkit.did.twfe.estimate_twfe` (Angrist & Pischke 2009, eq. 5.2.6)
``cs``     ``impactkit.did.cs.estimate_cs`` (Callaway & Sant'Anna 2021)
``sa``     :func:`impactkit.did.sa.estimate_sa` (Sun & Abraham 2021)
=========  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from impactkit.did.data import check_has_controls, prepare_panel
from impactkit.errors import InputError

METHODS = ("2x2", "twfe", "cs", "sa")


def did(data: pd.DataFrame, *, y: str, unit: str, time: str, method: str = "twfe",
        cohort: str | None = None, treated: str | None = None,
        covariates: Sequence[str] | None = None, control: str = "never", est: str = "dr",
        cluster: str | Sequence[str] | None = None, weights: str | None = None,
        anticipation: int = 0, base_period: str = "varying", alpha: float = 0.05,
        bootstrap: bool = False, biters: int = 999, seed: int | None = None,
        vcov: str = "CRV1", **kwargs: Any):
    """Estimate a difference-in-differences effect; returns the method's Result.

    ``cohort``: column with each unit's first treated period (0 or missing = never
    treated); ``treated``: 0/1 column; give either (or both, which must agree).
    ``control`` ("never" / "notyet" for cs, "never" / "last" for sa), ``est``,
    ``base_period``, ``bootstrap``, ``biters`` are passed to the Callaway-Sant'Anna
    estimator; ``vcov`` ("CRV1", "CRV3", "HC1") to TWFE, 2x2 and Sun-Abraham; extra
    keyword arguments go to the estimator (e.g. ``post=`` or ``periods=`` for 2x2).

    Raises :class:`impactkit.errors.InputError` for missing columns, duplicate unit-time
    rows, reversing treatment, a cohort varying within a unit, an outcome missing in a whole
    period or a non-numeric outcome, and :class:`impactkit.errors.EstimationError` when
    there are no control units.
    """
    from impactkit.frames import as_pandas

    data = as_pandas(data)
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    allowed = {"post", "periods"} if method == "2x2" else set()
    if method != "cs" and kwargs.keys() - allowed:
        unknown = sorted(kwargs.keys() - allowed)
        raise InputError(f"unknown argument(s) for method '{method}': {', '.join(unknown)}")
    common = {"y": y, "unit": unit, "time": time, "cohort": cohort, "treated": treated}
    if method == "2x2":
        from impactkit.did.twfe import estimate_2x2

        return estimate_2x2(data, covariates=covariates, weights=weights, cluster=cluster, vcov=vcov,
                            alpha=alpha, **common, **kwargs)
    if method == "sa":
        from impactkit.did.sa import estimate_sa

        return estimate_sa(data, control=control, covariates=covariates, weights=weights, cluster=cluster,
                           vcov=vcov, anticipation=anticipation, alpha=alpha, seed=seed, **common)
    panel = prepare_panel(data, covariates=covariates, weights=weights, cluster=cluster, **common)
    check_has_controls(panel, need_never_treated=method == "cs" and control == "never", unit=unit)
    if method == "twfe":
        from impactkit.did.twfe import fit_twfe_panel

        result = fit_twfe_panel(panel, covariates=covariates, weights=weights, cluster=cluster, vcov=vcov,
                                alpha=alpha, treated_label=treated or "treated", unit_label=unit)
        result._spec = {**common, "covariates": covariates, "cluster": cluster, "weights": weights}
        return result
    from impactkit.did.cs import estimate_cs

    cohort_column = cohort
    frame = data
    if cohort_column is None:
        frame = data.copy()
        cohort_column = "_cohort" if "_cohort" not in data.columns else "_impactkit_cohort"
        frame[cohort_column] = panel["_cohort"].reindex(range(len(data))).to_numpy()
        # rows dropped for a missing outcome keep their unit's cohort
        frame[cohort_column] = frame.groupby(unit)[cohort_column].transform("max").fillna(0.0)
    return estimate_cs(frame, y=y, unit=unit, time=time, cohort=cohort_column, covariates=covariates,
                       control=control, est=est, anticipation=anticipation, base_period=base_period,
                       weights=weights, cluster=cluster, alpha=alpha, bootstrap=bootstrap, biters=biters,
                       seed=seed, **kwargs)
