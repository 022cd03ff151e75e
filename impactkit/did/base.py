"""The estimator contract every difference-in-differences method follows.

An estimator is a subclass of :class:`DidEstimator` in its own module, listed by one line in
:mod:`impactkit.did.registry`. :func:`impactkit.did.did` checks the data once into a
:class:`DidPanel` (:meth:`DidEstimator.prepare`), keeps only the options the estimator declares
(an option it does not use, set away from its default, is an :class:`~impactkit.errors.InputError`
naming the option and the method) and calls :meth:`DidEstimator.fit`.

Every result is a :class:`DidResult` with the same five views:

=====================  ==================================================================
method                 returns
=====================  ==================================================================
``att()``              dict with :data:`ATT_KEYS` (the overall average effect on the treated)
``event_study()``      DataFrame with :data:`EVENT_STUDY_COLUMNS` (one row per event time)
``pretrend()``         :class:`impactkit.did.event_study.WaldTestResult` (joint test of the leads)
``tidy()``             DataFrame (the estimator's own table)
``plot()``             matplotlib Figure
=====================  ==================================================================

Methods without an event study (TWFE, 2x2) raise :class:`~impactkit.errors.EstimationError`
from ``event_study()`` and ``pretrend()`` naming the methods that have one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError, InputError
from impactkit.results import Result

if TYPE_CHECKING:  # pragma: no cover
    from impactkit.did.event_study import WaldTestResult

ATT_KEYS = ("estimate", "std_error", "conf_low", "conf_high", "p_value")
EVENT_STUDY_COLUMNS = ("event_time", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n")

#: Options of :func:`impactkit.did.did` shared across estimators, with their defaults. An
#: estimator lists in :attr:`DidEstimator.options` those it uses.
SHARED_OPTIONS: dict[str, Any] = {
    "covariates": None, "control": "never", "est": "dr", "cluster": None, "weights": None,
    "anticipation": 0, "base_period": "varying", "alpha": 0.05, "bootstrap": False, "biters": 999,
    "seed": None, "vcov": "CRV1",
}


@dataclass(frozen=True)
class DidPanel:
    """One checked panel, the input of every :meth:`DidEstimator.fit`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`impactkit.did.data.prepare_panel`: columns ``_y, _unit, _time, _cohort,
        _treated`` plus covariates, weights and cluster columns under their own names; the index
        is the row position in ``source``.
    source : pandas.DataFrame
        The data as given (index reset), for estimators that need a column the panel does not
        carry (e.g. a ``post`` indicator for the 2x2).
    y, unit, time : str
        The user's column names (used in messages).
    cohort, treated : str or None
        The user's treatment columns (either may be ``None``).
    covariates : tuple of str
        Covariate columns.
    weights : str or None
        Sampling-weight column.
    cluster : str, sequence of str or None
        Cluster column(s).
    """

    frame: pd.DataFrame
    source: pd.DataFrame
    y: str
    unit: str
    time: str
    cohort: str | None = None
    treated: str | None = None
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    cluster: str | Sequence[str] | None = None

    @property
    def names(self) -> dict[str, Any]:
        """The user's column roles, as passed to :func:`impactkit.did.did`."""
        return {"y": self.y, "unit": self.unit, "time": self.time, "cohort": self.cohort,
                "treated": self.treated}


class DidEstimator:
    """Base class of a difference-in-differences estimator.

    Subclasses set the class attributes and implement :meth:`fit`; :meth:`prepare` may be
    overridden when an estimator needs a different check of the data (e.g. repeated cross
    sections).

    Attributes
    ----------
    name : str
        The ``method=`` key (``"cs"``); also the key in the analysis spec.
    label : str
        Human-readable name used in tables and reports.
    reference : str
        The statistical reference (paper, equation).
    options : Mapping[str, Any]
        Options the estimator uses, with defaults: names from :data:`SHARED_OPTIONS` and any
        estimator-specific keyword (passed to :func:`impactkit.did.did` as ``**kwargs``).
    needs_never_treated : bool
        Whether ``control="never"`` requires never-treated units (checked before fitting).
    has_event_study : bool
        Whether results have ``event_study()`` and ``pretrend()``.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    reference: ClassVar[str]
    options: ClassVar[Mapping[str, Any]] = {}
    needs_never_treated: ClassVar[bool] = False
    has_event_study: ClassVar[bool] = False

    def prepare(self, data: pd.DataFrame, *, y: str, unit: str | None, time: str, cohort: str | None = None,
                treated: str | None = None, covariates: Sequence[str] | None = None,
                weights: str | None = None, cluster: str | Sequence[str] | None = None,
                **options: Any) -> DidPanel:
        """Check the data once (:func:`impactkit.did.data.prepare_panel`) into a :class:`DidPanel`.

        Parameters
        ----------
        data : pandas.DataFrame
            Long panel, one row per unit and period.
        y, unit, time, cohort, treated, covariates, weights, cluster
            Column names, as for :func:`impactkit.did.did`.
        **options
            The estimator's other options. ``panel=False`` (for estimators that list ``panel``
            in :attr:`options`) reads repeated cross sections: every row is its own unit and
            ``cohort`` (the first treated period of the row's group) is required.

        Returns
        -------
        DidPanel
        """
        from impactkit.did.data import prepare_panel

        if options.get("panel", True) is False:
            if cohort is None:
                raise InputError("repeated cross sections (panel=False) need 'cohort' (the first treated period "
                                 "of each row's group); a 0/1 'treated' column cannot be traced back over time")
            rows, row_id = rows_as_units(data)
            frame = prepare_panel(rows, y=y, unit=row_id, time=time, cohort=cohort, covariates=covariates,
                                  weights=weights, cluster=cluster)
            return DidPanel(frame=frame, source=rows, y=y, unit="row", time=time, cohort=cohort,
                            covariates=tuple(covariates or ()), weights=weights, cluster=cluster)
        if unit is None:
            raise InputError(f"method '{self.name}' needs panel data: give the 'unit' column")
        frame = prepare_panel(data, y=y, unit=unit, time=time, cohort=cohort, treated=treated,
                              covariates=covariates, weights=weights, cluster=cluster)
        source = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else data
        return DidPanel(frame=frame, source=source, y=y, unit=unit, time=time, cohort=cohort, treated=treated,
                        covariates=tuple(covariates or ()), weights=weights, cluster=cluster)

    def fit(self, panel: DidPanel, **options: Any) -> DidResult:  # pragma: no cover - abstract
        """Estimate on one prepared panel; ``options`` are those named in :attr:`options`."""
        raise NotImplementedError

    @classmethod
    def select_options(cls, given: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
        """The options this estimator uses, from ``did()``'s shared options and extra keywords.

        Parameters
        ----------
        given : Mapping[str, Any]
            Every shared option of :func:`impactkit.did.did` with the value passed.
        extra : Mapping[str, Any]
            Further keyword arguments.

        Returns
        -------
        dict
            ``{option: value}`` for each name in :attr:`options` (defaults filled in).

        Raises
        ------
        InputError
            A shared option set away from its default that this method does not use, or an
            extra keyword it does not know, naming the option(s) and the method.
        """
        ignored = [k for k, v in given.items()
                   if k not in cls.options and not _same(v, SHARED_OPTIONS.get(k))]
        if ignored:
            users = {k: [e for e in _users(k)] for k in ignored}
            detail = "; ".join(f"'{k}' applies to {', '.join(users[k]) or 'no method'}" for k in ignored)
            raise InputError(f"option(s) {', '.join(repr(k) for k in ignored)} not used by method "
                             f"'{cls.name}' ({cls.label}): {detail}")
        unknown = sorted(set(extra) - set(cls.options))
        if unknown:
            raise InputError(f"unknown argument(s) for method '{cls.name}': {', '.join(unknown)}"
                             f"{'; it takes ' + ', '.join(sorted(cls.options)) if cls.options else ''}")
        selected = {k: v for k, v in cls.options.items()}
        selected.update({k: v for k, v in given.items() if k in cls.options})
        selected.update(extra)
        return selected


ROW_ID = "_impactkit_row"


def rows_as_units(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Repeated cross sections as a 'panel' whose units are the rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.

    Returns
    -------
    frame : pandas.DataFrame
        ``frame`` (index reset) with a row-number column.
    name : str
        The name of that column.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    return frame.reset_index(drop=True).assign(**{ROW_ID: np.arange(len(frame))}), ROW_ID


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and not value and default is None:
        return True
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


def _users(option: str) -> list[str]:
    from impactkit.did.registry import estimators

    return [name for name, cls in estimators().items() if option in cls.options]


@dataclass
class DidResult(Result):
    """Base of every DiD result: ``att()``, ``event_study()``, ``pretrend()``, ``tidy()``, ``plot()``.

    Subclasses implement :meth:`att` and, where the method has dynamic effects,
    :meth:`event_study` and :meth:`pretrend`.
    """

    method: ClassVar[str] = ""

    def att(self) -> dict[str, float]:  # pragma: no cover - abstract
        """Overall average treatment effect on the treated: a dict with :data:`ATT_KEYS`."""
        raise NotImplementedError

    def event_study(self) -> pd.DataFrame:
        """Effects by event time: a DataFrame with :data:`EVENT_STUDY_COLUMNS`."""
        raise EstimationError(f"method '{self.method}' estimates one pooled effect and has no event study; "
                              f"use one of {', '.join(_with_event_study())}")

    def pretrend(self) -> WaldTestResult:
        """Joint Wald test that every pre-treatment (lead) effect is zero."""
        raise EstimationError(f"method '{self.method}' has no pre-treatment effects to test; "
                              f"use one of {', '.join(_with_event_study())}")

    def plot(self, ax=None):
        """A figure of the effect: the event study when there is one, else the ATT with its interval.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from impactkit.did.event_study import plot_event_study

        try:
            frame = self.event_study()
            title = f"Event study ({self.title})"
        except EstimationError:
            effect = self.att()
            frame = pd.DataFrame([{"term": 0.0, **effect}])
            out = plot_event_study(frame, title=self.title, ax=ax, x="term")
            out.axes[0].set_xticks([0.0], ["ATT"])
            out.axes[0].set_xlabel("")
            return out
        return plot_event_study(frame, title=title, ax=ax)


def _with_event_study() -> list[str]:
    from impactkit.did.registry import estimators

    return [name for name, cls in estimators().items() if getattr(cls, "has_event_study", False)]


def att_dict(estimate: float, std_error: float, conf_low: float, conf_high: float,
             p_value: float) -> dict[str, float]:
    """The :meth:`DidResult.att` dict, with :data:`ATT_KEYS` in order."""
    return dict(zip(ATT_KEYS, (float(estimate), float(std_error), float(conf_low), float(conf_high),
                               float(p_value))))


def event_study_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` restricted to :data:`EVENT_STUDY_COLUMNS` (``n`` filled with 0 when absent)."""
    out = frame.copy()
    if "n" not in out.columns:
        out["n"] = 0
    return out[list(EVENT_STUDY_COLUMNS)].reset_index(drop=True)


__all__ = ["ATT_KEYS", "EVENT_STUDY_COLUMNS", "SHARED_OPTIONS", "DidPanel", "DidEstimator", "DidResult",
           "att_dict", "event_study_frame", "rows_as_units"]
