"""Treatment-effect heterogeneity across pre-specified subgroups (e.g. female-headed units).

The interaction model ``y = a_g + tau_g * treat + X b + FE + e`` gives one effect per
subgroup g; the heterogeneity test is the cluster-robust Wald test that every ``tau_g``
is equal, which with two groups is the t test of the ``treat x group`` interaction in
``y = a + d group + tau treat + gamma treat x group + X b + FE + e`` (gamma = tau_1 - tau_0).

References
----------
- Gerber, A. S. and Green, D. P. (2012), *Field Experiments*, ch. 9: subgroup effects
  from the interaction model, tested by the interaction, pre-specified.
- Cameron, A. C. and Miller, D. L. (2015), *J. Human Resources* 50(2): CR1 variance,
  t(G-1) and F(q, G-1) reference distributions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from impactkit.checks.inputs import (
    as_list,
    binary_arm,
    cluster_codes,
    numeric_column,
    require_columns,
    require_frame,
)
from impactkit.checks.regression import inference_label, robust_ols
from impactkit.checks.result import TableResult
from impactkit.errors import EstimationError, ImpactkitWarning, InputError
from impactkit.results import to_plain


@dataclass
class HeterogeneityResult(TableResult):
    """Effect per subgroup, differences from the reference subgroup and the joint test."""

    title: ClassVar[str] = "Treatment-effect heterogeneity"
    table: pd.DataFrame
    by: str
    treat: str
    cluster: str | None
    test_f: float
    test_p: float
    test_df: tuple[float, float]
    messages: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        se = inference_label(self.cluster)
        if np.isnan(self.test_p):
            test = "Test of equal effects across groups: not available (fewer than two subgroups estimated)."
        else:
            test = (f"Test of equal effects across groups: F({self.test_df[0]:g}, {self.test_df[1]:g}) = "
                    f"{self.test_f:.3f}, p = {self.test_p:.4f}.")
        return [
            f"Effects of {self.treat!r} by {self.by!r} from one interaction model; {se} standard errors.",
            "Rows 'difference' = effect(group) - effect(reference group), the interaction coefficient.",
            test,
            *self.messages,
        ]

    def plot(self, ax=None):
        """Effect per subgroup with its confidence interval (suppressed subgroups omitted)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        shown = self.table[(self.table["term"] == "effect") & ~self.table["suppressed"].astype(bool)]
        positions = np.arange(len(shown))
        ax.errorbar(shown["estimate"], positions,
                    xerr=[shown["estimate"] - shown["conf_low"], shown["conf_high"] - shown["estimate"]],
                    fmt="o", color="black", capsize=3)
        ax.set_yticks(positions, [f"{self.by} = {g}" for g in shown["group"]])
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_xlabel(f"effect of {self.treat}")
        ax.set_title(f"{self.title} (equal effects: p = {self.test_p:.3f})")
        return ax.figure

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"title": self.title, "table": self.tidy(), "notes": self.notes(),
                         "test": {"f": self.test_f, "p_value": self.test_p, "df_num": self.test_df[0],
                                  "df_denom": self.test_df[1]}})


def _independent_columns(base: np.ndarray, candidates: np.ndarray) -> list[int]:
    """Indices of ``candidates`` columns that add rank to ``base`` (greedy, in order).

    Parameters
    ----------
    base : numpy.ndarray
        Columns always kept (n x k).
    candidates : numpy.ndarray
        Columns to add (n x m).

    Returns
    -------
    list of int
    """
    keep: list[int] = []
    current = base
    rank = np.linalg.matrix_rank(current)
    for j in range(candidates.shape[1]):
        trial = np.column_stack([current, candidates[:, j]])
        r = np.linalg.matrix_rank(trial)
        if r > rank:
            keep.append(j)
            current, rank = trial, r
    return keep


COUNT_COLUMNS = ("n", "n_treated", "n_control")
TABLE_COLUMNS = ("term", "group", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n",
                 "n_treated", "n_control", "suppressed")


def hide_small_counts(table: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """The table with small-cell counts replaced by missing values (pandas ``Int64``).

    In a suppressed row both arm counts (``n_treated``, ``n_control``) are hidden (one is
    below ``min_cell``, and the other with ``n`` would reveal it), and ``n`` is kept only
    if it reaches ``min_cell``; any other count below ``min_cell`` is hidden too. Kept
    subgroups have at least ``min_cell`` treated and control rows, so their counts stay;
    count columns change dtype only when something is hidden.

    Parameters
    ----------
    table : pandas.DataFrame
        Subgroup table with the count columns and ``suppressed``.
    min_cell : int
        Smallest count shown.

    Returns
    -------
    pandas.DataFrame
    """
    suppressed = table["suppressed"].to_numpy(dtype=bool)
    hide = {col: table[col].to_numpy() < min_cell for col in COUNT_COLUMNS}
    hide["n_treated"] = hide["n_treated"] | suppressed
    hide["n_control"] = hide["n_control"] | suppressed
    if not any(mask.any() for mask in hide.values()):
        return table
    out = table.copy()
    for col, mask in hide.items():
        if mask.any():
            out[col] = out[col].astype("Int64").mask(mask)
    return out


def all_suppressed_result(rows: list[dict[str, Any]], *, by: str, treat: str, cluster: str | None,
                           min_cell: int, messages: list[str]) -> HeterogeneityResult:
    """Every subgroup below ``min_cell``: all rows suppressed, no estimates and no test.

    Parameters
    ----------
    rows : list of dict
        One row per subgroup; estimates set to NaN here.
    by : str
        The subgroup column.
    treat : str
        The treatment column.
    cluster : str or None
        The cluster column.
    min_cell : int
        Smallest count shown.
    messages : list of str
        Notes of the result; appended to.

    Returns
    -------
    HeterogeneityResult
    """
    for row in rows:
        row.update({"estimate": np.nan, "std_error": np.nan, "conf_low": np.nan, "conf_high": np.nan,
                    "p_value": np.nan})
    messages.append(f"No subgroup of {by!r} has {min_cell} treated and {min_cell} control rows: "
                    "no subgroup effects and no heterogeneity test.")
    table = hide_small_counts(pd.DataFrame(rows)[list(TABLE_COLUMNS)], min_cell)
    nan = float("nan")
    return HeterogeneityResult(table=table, by=by, treat=treat, cluster=cluster, test_f=nan, test_p=nan,
                               test_df=(nan, nan), messages=messages)


def heterogeneity(frame: pd.DataFrame, *, y: str, treat: str, by: str,
                  controls: str | Sequence[str] | None = None, cluster: str | None = None,
                  fixed_effects: str | Sequence[str] | None = None, min_cell: int = 10,
                  alpha: float = 0.05) -> HeterogeneityResult:
    """Treatment effect of ``treat`` on ``y`` in each subgroup of ``by``, and the interaction test.

    Fits ``y ~ sum_g 1{by=g} + sum_g treat x 1{by=g} + controls + fixed-effect dummies`` by
    OLS with CR1 cluster-robust (HC1 without ``cluster``) covariance; reports per subgroup
    the effect ``tau_g``, per non-reference subgroup the difference ``tau_g - tau_ref``
    (the interaction coefficient), and the Wald F test of ``tau_g`` all equal (Gerber &
    Green 2012, ch. 9). A subgroup with fewer than ``min_cell`` treated or control rows is
    dropped from the model, reported with NaN estimates and ``suppressed=True``, and
    warned about (:class:`ImpactkitWarning`); its arm counts ``n_treated`` / ``n_control``
    are hidden (missing) and ``n`` is shown only if it reaches ``min_cell``. When every
    subgroup is below ``min_cell`` the result has only such suppressed rows and no test
    (NaN), so that a published pack shows them marked instead of failing; unusable input
    (a constant treatment, a single subgroup, missing columns) still raises. Fixed effects enter as dummies (meant for community or wave effects,
    not thousands of levels); group main effects absorbed by them are dropped.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.
    y : str
        Outcome column.
    treat : str
        0/1 treatment column.
    by : str
        Subgroup column.
    controls : str or sequence of str, optional
        Control variables.
    cluster : str, optional
        Cluster column for CR1 standard errors.
    fixed_effects : str or sequence of str, optional
        Columns entered as dummies.
    min_cell : int, default 10
        Smallest number of treated and of control rows for a subgroup to be estimated.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    HeterogeneityResult
        Effects per subgroup, differences from the reference subgroup and the equality test.
    """
    frame = require_frame(frame)
    controls = as_list(controls)
    fixed_effects = as_list(fixed_effects)
    require_columns(frame, [y, treat, by, cluster, *controls, *fixed_effects])
    if by in (treat, y):
        raise InputError(f"column {by!r} cannot be both the subgroup and the treatment/outcome")
    outcome = numeric_column(frame, y)
    C = np.column_stack([numeric_column(frame, c) for c in controls]) if controls else np.empty((len(frame), 0))
    missing = np.isnan(outcome) | np.isnan(C).any(axis=1) | frame[by].isna().to_numpy()
    for fe in fixed_effects:
        missing |= frame[fe].isna().to_numpy()
    if cluster is not None:
        missing |= frame[cluster].isna().to_numpy()
    messages: list[str] = []
    if missing.any():
        messages.append(f"{int(missing.sum())} row(s) with a missing outcome, subgroup, control, fixed effect "
                        "or cluster dropped.")
    data = frame.loc[~missing]
    t = binary_arm(data, treat)
    outcome, C = outcome[~missing], C[~missing]
    groups = data[by].to_numpy()
    levels = sorted(pd.unique(groups), key=lambda v: (str(type(v)), v))
    if len(levels) < 2:
        raise InputError(f"column {by!r} has a single subgroup; nothing to compare")

    rows: list[dict[str, Any]] = []
    kept_levels = []
    for g in levels:
        in_g = groups == g
        n1, n0 = int(np.sum(in_g & (t == 1))), int(np.sum(in_g & (t == 0)))
        rows.append({"term": "effect", "group": str(g), "n": int(in_g.sum()), "n_treated": n1, "n_control": n0,
                     "suppressed": min(n1, n0) < min_cell})
        if min(n1, n0) >= min_cell:
            kept_levels.append(g)
    suppressed = [r["group"] for r in rows if r["suppressed"]]
    if suppressed:
        warnings.warn(f"heterogeneity: subgroup(s) {suppressed} of {by!r} have fewer than {min_cell} treated or "
                      "control rows; estimates suppressed", ImpactkitWarning, stacklevel=2)
        messages.append(f"Suppressed (fewer than {min_cell} treated or control rows): {', '.join(suppressed)}.")
    if not kept_levels:
        return all_suppressed_result(rows, by=by, treat=treat, cluster=cluster, min_cell=min_cell,
                                      messages=messages)

    use = np.isin(groups, kept_levels)
    t, outcome, C, groups = t[use], outcome[use], C[use], groups[use]
    codes = cluster_codes(data.loc[use], cluster)
    G = len(kept_levels)
    indicator = np.column_stack([groups == g for g in kept_levels]).astype(float)
    effects = indicator * t[:, None]
    fe_cols = [pd.get_dummies(data.loc[use, fe].astype(str), drop_first=True, dtype=float).to_numpy()
               for fe in fixed_effects]
    base = np.column_stack([effects, np.ones(len(t)), *fe_cols])
    extra = np.column_stack([indicator[:, 1:], C])
    keep = _independent_columns(base, extra) if extra.shape[1] else []
    dropped_controls = [controls[j - (G - 1)] for j in range(G - 1, extra.shape[1]) if j not in keep]
    if dropped_controls:
        raise EstimationError(f"control(s) {dropped_controls} are collinear with the subgroups or fixed effects")
    X = np.column_stack([base, extra[:, keep]])
    if np.linalg.matrix_rank(base) < base.shape[1]:
        raise EstimationError(f"the subgroup effects of {treat!r} are not identified given the fixed effects")
    fit = robust_ols(outcome, X, clusters=codes)
    return subgroup_result(fit, rows, [str(g) for g in kept_levels], by=by, treat=treat, cluster=cluster,
                           min_cell=min_cell, alpha=alpha, messages=messages)


def subgroup_result(fit, rows: list[dict[str, Any]], kept: list[str], *, by: str, treat: str, cluster: str | None,
                    min_cell: int, alpha: float, messages: list[str]) -> HeterogeneityResult:
    """The subgroup table and equality test from the interaction-model fit (Gerber & Green 2012, ch. 9).

    Parameters
    ----------
    fit : impactkit.checks.regression.RobustFit
        Fit whose first ``len(kept)`` coefficients are the subgroup effects ``tau_g``.
    rows : list of dict
        One ``effect`` row per subgroup with its counts and ``suppressed``; appended to.
    kept : list of str
        The estimated subgroups, in coefficient order (the first is the reference).
    by, treat : str
        Subgroup and treatment columns.
    cluster : str or None
        Cluster column.
    min_cell : int
        Smallest count shown.
    alpha : float
        1 - confidence level.
    messages : list of str
        Notes of the result; appended to.

    Returns
    -------
    HeterogeneityResult
    """
    k = len(fit.params)
    crit = stats.t.ppf(1 - alpha / 2, fit.df_resid)
    estimates: dict[str, dict[str, float]] = {}
    for j, g in enumerate(kept):
        est, se, p = fit.t_test(j)
        estimates[g] = {"estimate": est, "std_error": se, "p_value": p}
    counts = {r["group"]: r for r in rows}
    for row in rows:
        row.update(estimates.get(row["group"], {"estimate": np.nan, "std_error": np.nan, "p_value": np.nan}))
    reference = kept[0]
    ref = counts[reference]
    for j, g in enumerate(kept[1:], start=1):
        r = np.zeros(k)
        r[j], r[0] = 1.0, -1.0
        est = float(r @ fit.params)
        se = float(np.sqrt(r @ fit.cov @ r))
        p = float(2 * stats.t.sf(abs(est / se), fit.df_resid))
        cg = counts[g]
        rows.append({"term": "difference", "group": f"{g} - {reference}", "n": cg["n"] + ref["n"],
                     "n_treated": cg["n_treated"] + ref["n_treated"], "n_control": cg["n_control"] + ref["n_control"],
                     "suppressed": False, "estimate": est, "std_error": se, "p_value": p})
    G = len(kept)
    if G >= 2:
        R = np.zeros((G - 1, k))
        for j in range(1, G):
            R[j - 1, j], R[j - 1, 0] = 1.0, -1.0
        b = R @ fit.params
        V = R @ fit.cov @ R.T
        f = float(b @ np.linalg.solve(V, b)) / (G - 1)
        test_p = float(stats.f.sf(f, G - 1, fit.df_resid))
        test_df = (float(G - 1), float(fit.df_resid))
    else:
        f, test_p, test_df = float("nan"), float("nan"), (float("nan"), float("nan"))
        messages.append("Only one subgroup left after suppression: no heterogeneity test.")
    table = pd.DataFrame(rows)
    table["conf_low"] = table["estimate"] - crit * table["std_error"]
    table["conf_high"] = table["estimate"] + crit * table["std_error"]
    table = hide_small_counts(table[list(TABLE_COLUMNS)], min_cell)
    return HeterogeneityResult(table=table, by=by, treat=treat, cluster=cluster, test_f=f, test_p=test_p,
                               test_df=test_df, messages=messages)
