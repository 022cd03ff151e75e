"""Result objects of the IV estimators: :class:`IVResult` and :class:`EncouragementResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from impactkit.iv.weak import ARConfidenceSet, ARJointInputs, ARTestInputs, require_one_endogenous
from impactkit.results import Result, format_table, to_plain


@dataclass
class IVResult(Result):
    """Linear IV (2SLS or LIML) estimates with first stage and weak-instrument diagnostics.

    ``coefficients``: one row per second-stage term (term, estimate, std_error,
    conf_low, conf_high, p_value, n). ``first_stage``: one row per (endogenous,
    instrument) with the instrument's coefficient and the regressor's partial R^2 and
    partial F. ``reduced_form``: the coefficients of the instruments in the regression
    of the outcome. ``diagnostics``: the numbers listed in :meth:`notes`.
    ``ar_set``: the Anderson-Rubin confidence set (one endogenous regressor only).
    """

    title: ClassVar[str] = "Instrumental variables"

    coefficients: pd.DataFrame
    first_stage: pd.DataFrame
    reduced_form: pd.DataFrame
    diagnostics: dict[str, Any]
    formula: str
    method: str
    alpha: float
    ar_set: ARConfidenceSet | None = None
    ar_inputs: ARTestInputs | None = field(default=None, repr=False)
    ar_joint: ARJointInputs | None = field(default=None, repr=False)

    def anderson_rubin_test(self, b0) -> dict[str, float]:
        """Joint Anderson-Rubin test of ``beta = b0`` (one value per endogenous regressor, in the
        order of ``diagnostics["endogenous"]``): ``{"f", "p_value", "df_num", "df_denom"}``.
        Valid whatever the instruments' strength (Anderson & Rubin 1949)."""
        if self.ar_joint is None:
            raise NotImplementedError("iv: this result carries no Anderson-Rubin inputs")
        return self.ar_joint.test(b0)

    def effective_f(self) -> dict[str, Any]:
        """The effective F and its critical value (tau = 10% bias, 5%): Montiel Olea-Pflueger (2013)
        with one endogenous regressor (``k_eff`` its effective degrees of freedom), the Lewis-Mertens
        (2022) generalisation with several (``b_max`` its simplified bias bound); ``method`` says which."""
        d = self.diagnostics
        return {"effective_f": d["effective_f"], "critical_value": d["effective_f_critical_value"],
                "k_eff": d["k_eff"], "b_max": d.get("lm_b_max"), "method": d.get("effective_f_method")}

    def anderson_rubin_set(self) -> ARConfidenceSet:
        """The Anderson-Rubin confidence set (one endogenous regressor; an
        :class:`~impactkit.errors.InputError` naming the limit otherwise)."""
        require_one_endogenous(len(self.diagnostics["endogenous"]), "Anderson-Rubin set")
        return self.ar_set

    def tidy(self) -> pd.DataFrame:
        return self.coefficients.copy()

    def estimate(self, term: str) -> float:
        """The coefficient of ``term``."""
        row = self.coefficients.loc[self.coefficients["term"] == term]
        if row.empty:
            raise KeyError(f"iv: no term {term!r} among {list(self.coefficients['term'])}")
        return float(row["estimate"].iloc[0])

    def weak_iv_lines(self) -> list[str]:
        d = self.diagnostics
        lines = [f"Cragg-Donald Wald F: {_num(d['cragg_donald_f'])}"]
        if d.get("kleibergen_paap_f") is not None:
            lines.append(f"Kleibergen-Paap rk Wald F ({d['cov_type']}): {_num(d['kleibergen_paap_f'])}")
        if d.get("effective_f") is not None:
            detail = (f"K_eff={d['k_eff']:.2f}" if d.get("k_eff") is not None
                      else f"simplified, B_max={d['lm_b_max']:.3f}")
            lines.append(
                f"{d.get('effective_f_method') or 'Montiel Olea-Pflueger'} effective F: {_num(d['effective_f'])} "
                f"(critical value {_num(d['effective_f_critical_value'])} for tau=10% worst-case bias at 5%, "
                f"{detail}) -> {'WEAK' if d['weak_instruments'] else 'not weak'}")
        sy = d.get("stock_yogo_size")
        if sy:
            lines.append("Stock-Yogo (2005, Table 5.2) max-size critical values for CD F: "
                         + ", ".join(f"{k}: {v}" for k, v in sy.items()))
        ar = d.get("anderson_rubin")
        if ar is not None:
            target = d["endogenous"][0] if len(d["endogenous"]) == 1 else "every endogenous effect"
            lines.append(f"Anderson-Rubin test of {target} = 0: F({ar['df_num']},{ar['df_denom']}) = "
                         f"{_num(ar['f'])}, p = {_num(ar['p_value'])}")
            if self.ar_set is not None:
                lines.append(f"Anderson-Rubin {100 * self.ar_set.level:.0f}% confidence set ({self.ar_set.kind}): "
                             f"{self.ar_set.describe()}")
        if d.get("weak_iv_note"):
            lines.append(d["weak_iv_note"])
        return lines

    def notes(self) -> list[str]:
        d = self.diagnostics
        inference = d["cov_type"] + (f", {d['n_clusters']} clusters" if d.get("n_clusters") else "")
        lines = [f"Method: {self.method.upper()}; formula: {self.formula}",
                 f"N = {d['n']}; covariance: {inference}; t tests with {d['df_resid']} df"]
        if d.get("absorbed"):
            lines.append(f"Absorbed fixed effects: {', '.join(d['absorbed'])} ({d['absorbed_df']} df)")
        if d.get("kappa") is not None:
            lines.append(f"LIML kappa = {d['kappa']:.6f}")
        return lines + self.weak_iv_lines()

    def summary(self) -> str:
        main = format_table(self.tidy(), self.title)
        stage = format_table(self.first_stage, "First stage (instruments' coefficients)")
        return "\n\n".join([main, stage, "\n".join(self.notes())])

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({
            "first_stage": to_plain(self.first_stage),
            "reduced_form": to_plain(self.reduced_form),
            "diagnostics": to_plain(self.diagnostics),
        })
        return out

    def plot(self, ax=None):
        """The Anderson-Rubin statistic over candidate effects, the critical value and the set."""
        import matplotlib.pyplot as plt

        if self.ar_inputs is None or self.ar_set is None:
            raise NotImplementedError("iv: the AR plot needs exactly one endogenous regressor")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        row = self.coefficients.loc[self.coefficients["term"] == self.diagnostics["endogenous"][0]].iloc[0]
        half = 6 * float(row["std_error"]) if math.isfinite(float(row["std_error"])) else 1.0
        finite = [v for pair in self.ar_set.intervals for v in pair if math.isfinite(v)]
        low = min([float(row["estimate"]) - half, *finite])
        high = max([float(row["estimate"]) + half, *finite])
        grid = np.linspace(low - 0.1 * (high - low), high + 0.1 * (high - low), 400)
        stat = [self.ar_inputs.wald(b) / self.ar_inputs.df_num for b in grid]
        critical = self.ar_inputs.critical_wald(self.alpha) / self.ar_inputs.df_num
        ax.plot(grid, stat, color="black", lw=1.2, label="Anderson-Rubin F")
        ax.axhline(critical, color="firebrick", ls="--", lw=1, label=f"{100 * (1 - self.alpha):.0f}% critical value")
        for a, b in self.ar_set.intervals:
            ax.axvspan(max(a, grid[0]), min(b, grid[-1]), color="steelblue", alpha=0.15)
        ax.axvline(float(row["estimate"]), color="steelblue", lw=1, label=f"{self.method.upper()} estimate")
        ax.set_xlabel(f"effect of {row['term']}")
        ax.set_ylabel("AR statistic")
        ax.legend(frameon=False, fontsize=8)
        return ax.figure


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    if math.isinf(value) or math.isnan(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4f}"


@dataclass
class EncouragementResult(Result):
    """ITT, first stage (compliance), LATE and complier characteristics of an encouragement design.

    ``estimates``: rows ``itt``, ``first_stage``, ``late``. ``complier_means``: one row
    per characteristic with the complier, population, never-taker and always-taker means.
    ``iv_result`` holds the full 2SLS result (first stage, weak-IV diagnostics, AR set).
    """

    title: ClassVar[str] = "Encouragement design"

    estimates: pd.DataFrame
    complier_means: pd.DataFrame
    iv_result: IVResult
    settings: dict[str, Any]

    def tidy(self) -> pd.DataFrame:
        return self.estimates.copy()

    def notes(self) -> list[str]:
        s = self.settings
        lines = [f"Outcome {s['y']}, take-up {s['take_up']}, encouragement {s['instrument']}"
                 + (f"; controls: {', '.join(s['covariates'])}" if s["covariates"] else "")
                 + (f"; absorbed: {', '.join(s['absorb'])}" if s["absorb"] else ""),
                 "LATE = ITT / first stage (Wald / 2SLS; Imbens & Angrist 1994); "
                 "complier means by the first-stage ratio (Abadie 2003; Angrist & Pischke 2009, 4.4.4)"]
        return lines + self.iv_result.weak_iv_lines()

    def summary(self) -> str:
        main = format_table(self.tidy(), self.title)
        parts = [main]
        if not self.complier_means.empty:
            parts.append(format_table(self.complier_means, "Complier characteristics"))
        parts.append("\n".join(self.notes()))
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["complier_means"] = to_plain(self.complier_means)
        out["iv"] = self.iv_result.to_dict()
        return out
