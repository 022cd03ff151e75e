"""``ScoreResult``: the scale-readiness scorecard of a portfolio."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from impactkit.results import Result, format_table, to_plain
from impactkit.scale.spec import CRITERIA

SUMMARY_COLUMNS = ("rank", "intervention", "score_geometric", "score_weighted_sum", "p_rank_1", "p_pass_gates",
                   "failed_gates", "uncertain_gates", "bottleneck", "evidence_level", "nesta_level", "government_level")


@dataclass
class ScoreResult(Result):
    """Ranks, gates, bottlenecks and their Monte Carlo probabilities for a portfolio.

    Frames: ``table`` (= :meth:`tidy`), ``criteria`` (long: intervention x criterion with value,
    5%/95% Monte Carlo quantiles, weight, unknown inputs, sources), ``rank_probabilities``
    (intervention x rank), ``gates`` (intervention x gate: floor, status, P(pass)), ``tornado``,
    ``components``, ``costs``, ``evidence``.
    """

    title: ClassVar[str] = "Scale readiness"

    table: pd.DataFrame
    criteria: pd.DataFrame
    rank_probabilities: pd.DataFrame
    gates: pd.DataFrame
    tornado: pd.DataFrame
    components: pd.DataFrame
    costs: pd.DataFrame
    evidence: pd.DataFrame
    rank_probabilities_se: pd.DataFrame | None = None
    # the ranking from the intervention files alone, when linked estimates or accounts were used
    report_only: pd.DataFrame | None = None
    # decision-maker frames (docs/scale-model.md sec. 9): at-scale blocks, cost curve, cost
    # streams by year and payer, alternatives, readiness per location, assumption flips
    at_scale: list = field(default_factory=list)
    cost_curve: pd.DataFrame | None = None
    cost_streams: pd.DataFrame | None = None
    alternatives: pd.DataFrame | None = None
    locations: pd.DataFrame | None = None
    assumption_flips: pd.DataFrame | None = None
    floor_sensitivity: pd.DataFrame | None = None
    weights: dict[str, float] = field(default_factory=dict)
    floors: dict[str, float | None] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """One row per intervention, in rank order."""
        return self.table.copy()

    def notes(self) -> list[str]:
        o = self.options
        floors = ", ".join("cost_data required" if g == "cost_data" and f is not None else
                           f"{g} >= {f:g}" if f is not None else f"{g} off" for g, f in self.floors.items())
        weights = ", ".join(f"{c} {w:.2f}" for c, w in self.weights.items())
        return [
            f"Gates (floors): {floors}. 'failed' = fails over the whole input range; 'uncertain' = depends on unknowns.",
            f"Rank: by number of gates passed, then by score. Score: weighted geometric mean of criteria on "
            f"[{o.get('score_floor', 0.01):g}, 1]; weights: {weights}.",
            f"Monte Carlo standard errors: sqrt(p(1-p)/draws) beside every probability (+/-).",
            f"Unknown priors use the assumed low default {o.get('default_prior')}; PSP only for designs that test a hypothesis.",
            f"Monte Carlo: {o.get('draws')} draws, seed {o.get('seed')}, inputs uniform on intervals (unknown = whole range), "
            f"weights Dirichlet with concentration {o.get('weight_concentration')}.",
            f"Costs discounted at {o.get('discount_rate')} over {o.get('horizon_years')} years; IRR hurdle {o.get('hurdle_rate')}.",
        ] + [f"Costs of {ident} from analysis accounts: {source}." for ident, source in (o.get("cost_accounts") or {}).items()] \
          + [f"{row.intervention}: {row.data_labels}." for row in self.table.itertuples(index=False)
             if getattr(row, "data_labels", "")]

    def summary(self) -> str:
        cols = [c for c in SUMMARY_COLUMNS if c in self.table.columns]
        return format_table(self.table[cols], self.title, self.notes())

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "table": to_plain(self.table), "criteria": to_plain(self.criteria),
            "rank_probabilities": to_plain(self.rank_probabilities), "gates": to_plain(self.gates),
            "tornado": to_plain(self.tornado), "components": to_plain(self.components),
            "costs": to_plain(self.costs), "evidence": to_plain(self.evidence),
            "weights": to_plain(self.weights), "floors": to_plain(self.floors),
            "options": to_plain(self.options), "notes": self.notes(),
            "rank_probabilities_se": to_plain(self.rank_probabilities_se),
            "floor_sensitivity": to_plain(self.floor_sensitivity),
            "view": self.view, "report_only": to_plain(self.report_only),
            **self._decision_plain(),
        }

    def _decision_plain(self, focus: str | None = None) -> dict[str, Any]:
        def only(frame, key="intervention"):
            if frame is None or focus is None or len(frame) == 0 or key not in frame.columns:
                return to_plain(frame)
            return to_plain(frame[frame[key] == focus])

        at_scale = [b for b in self.at_scale if focus is None or b["intervention"] == focus]
        return {"at_scale": to_plain(at_scale), "cost_curve": only(self.cost_curve),
                "cost_streams": only(self.cost_streams), "alternatives": only(self.alternatives, "focus"),
                "locations": to_plain(self.locations), "assumption_flips": to_plain(self.assumption_flips)}

    @property
    def view(self) -> str:
        """'linked' when linked estimates or accounts were used, else 'report only'."""
        labelled = "data_labels" in self.table.columns and self.table["data_labels"].astype(bool).any()
        return "linked" if (self.report_only is not None or labelled) else "report only"

    def input_tornado(self, focus: str) -> pd.DataFrame:
        """Score of ``focus`` when one criterion moves to its 5% / 95% Monte Carlo quantile.

        The other criteria stay at their central values and the weights at the declared ones,
        so each row isolates what the uncertainty of one criterion does to the score.
        """
        from impactkit.scale.aggregate import weighted_geometric_mean

        rows = self.criteria[self.criteria["intervention"] == focus]
        if rows.empty:
            raise KeyError(f"no intervention '{focus}' in this result")
        values = rows["value"].to_numpy(dtype=float)
        weights = rows["weight"].to_numpy(dtype=float)
        out = []
        for k, crit in enumerate(rows["criterion"]):
            scores = []
            for col in ("q05", "q95"):
                moved = values.copy()
                moved[k] = float(rows[col].iloc[k])
                scores.append(float(weighted_geometric_mean(moved, weights)))
            out.append({"parameter": crit, "value": float(values[k]), "low": float(rows["q05"].iloc[k]),
                        "high": float(rows["q95"].iloc[k]), "score_low": scores[0], "score_high": scores[1]})
        frame = pd.DataFrame(out)
        swing = (frame["score_high"] - frame["score_low"]).abs()
        return frame.assign(_s=swing).sort_values("_s", ascending=False, kind="stable").drop(columns="_s") \
            .reset_index(drop=True)

    def to_pack(self, focus: str | None = None) -> dict[str, Any]:
        """The ``results["scale"]`` block the evidence pack reads (plus ``"cost"`` of the focus).

        ``ranking`` rows carry ``failed_gates`` as lists; ``rank_probabilities`` is long
        (intervention, rank, probability); ``tornado`` is :meth:`input_tornado` of ``focus``.
        """
        table = self.table
        ranking = []
        for row in to_plain(table):
            row = dict(row)
            row["failed_gates"] = [g for g in (row.get("failed_gates") or "").split("; ") if g]
            row["uncertain_gates"] = [g for g in (row.get("uncertain_gates") or "").split("; ") if g]
            ranking.append(row)
        probs = self.rank_probabilities.set_index("intervention")
        ses = (self.rank_probabilities_se.set_index("intervention") if self.rank_probabilities_se is not None
               else None)
        long = [{"intervention": i, "rank": int(c.split("_")[1]), "probability": float(probs.at[i, c]),
                 **({"se": float(ses.at[i, c])} if ses is not None else {})}
                for i in probs.index for c in probs.columns]
        block: dict[str, Any] = {"ranking": ranking, "rank_probabilities": long,
                                 "weight_tornado": to_plain(self.tornado), "criteria": to_plain(self.criteria),
                                 "gates": to_plain(self.gates), "weights": to_plain(self.weights),
                                 "floors": to_plain(self.floors), "options": to_plain(self.options),
                                 "notes": self.notes(), "focus": focus,
                                 "floor_sensitivity": to_plain(self.floor_sensitivity),
                                 "view": self.view, "report_only": to_plain(self.report_only),
                                 **self._decision_plain(focus)}
        if focus is None:
            return block
        match = [r for r in ranking if r["intervention"] == focus]
        if not match:
            raise KeyError(f"no intervention '{focus}' in this result")
        r = match[0]
        ev = self.evidence.set_index("intervention").loc[focus]
        if r["gates_passed"]:
            verdict = "passes every gate"
        elif r["failed_gates"]:
            verdict = "blocked by " + ", ".join(g.replace("_", " ") for g in r["failed_gates"])
        else:
            verdict = "not yet shown to pass: " + ", ".join(g.replace("_", " ") for g in r["uncertain_gates"])
        block["focus_detail"] = {
            "verdict": verdict, "rank": r["rank"], "score_geometric": r["score_geometric"],
            "p_rank_1": r["p_rank_1"], "p_pass_gates": r["p_pass_gates"], "failed_gates": r["failed_gates"],
            "uncertain_gates": r["uncertain_gates"], "bottleneck": r["bottleneck"],
            "evidence_level": r["evidence_level"], "evidence_from": r["evidence_from"],
            "nesta_level": r["nesta_level"],
            "post_study_probability": to_plain(ev["post_study_probability"]),
            "government_level": r["government_level"],
            "data_labels": r.get("data_labels", ""),
            "bottleneck_finding": r.get("bottleneck_finding"), "measure_next": r.get("measure_next"),
            "strategic_option": r.get("strategic_option"), "n_gates_passed": r.get("n_gates_passed"),
            "mcse_p_rank_1": r.get("mcse_p_rank_1"), "mcse_p_pass_gates": r.get("mcse_p_pass_gates"),
        }
        block["tornado"] = to_plain(self.input_tornado(focus))
        c = self.costs.set_index("intervention").loc[focus]
        get = (lambda key: to_plain(c[key]) if key in c.index else None)
        block["cost"] = {"currency": get("currency"), "year": get("price_year"), "cost_known": get("cost_known"),
                         "cost_per_participant_pilot": get("cost_per_participant_pilot"),
                         "cost_per_participant_scale": get("cost_per_participant_scale"),
                         "cost_per_unit_impact": get("cost_per_unit_impact"),
                         "cost_per_unit_impact_low": get("cost_per_unit_impact_low"),
                         "cost_per_unit_impact_high": get("cost_per_unit_impact_high"),
                         "bcr": get("benefit_cost_ratio"), "npv": get("npv_per_participant"), "irr": get("irr"),
                         "discount_rate": get("discount_rate"), "hurdle_rate": get("hurdle_rate"),
                         "horizon_years": get("horizon_years"),
                         "cost_source": get("cost_source"), "benefit_source": get("benefit_source"),
                         "cost_per_participant_pilot_low": get("cost_per_participant_pilot_low"),
                         "cost_per_participant_pilot_high": get("cost_per_participant_pilot_high"),
                         "cost_per_participant_scale_low": get("cost_per_participant_scale_low"),
                         "cost_per_participant_scale_high": get("cost_per_participant_scale_high"),
                         "benefit_per_participant_year": get("benefit_per_participant_year"),
                         "benefit_per_participant_year_low": get("benefit_per_participant_year_low"),
                         "benefit_per_participant_year_high": get("benefit_per_participant_year_high"),
                         "bcr_low": get("benefit_cost_ratio_low"), "bcr_high": get("benefit_cost_ratio_high"),
                         "npv_low": get("npv_per_participant_low"), "npv_high": get("npv_per_participant_high"),
                         "irr_exceeds_hurdle": get("irr_exceeds_hurdle"),
                         "impact_unit": get("impact_unit"),
                         "pilot_participants": get("pilot_participants"),
                         "scale_participants": get("scale_participants"),
                         "cost_status": get("cost_status")}
        return block

    def plot(self, ax=None):
        """Scorecard heatmap (interventions x criteria) beside the rank-probability bars."""
        import matplotlib.pyplot as plt

        order = list(self.table["intervention"])
        heat = (self.criteria.pivot(index="intervention", columns="criterion", values="value")
                .reindex(index=order, columns=list(CRITERIA)))
        n = len(order)
        fig, (ax_heat, ax_rank) = plt.subplots(1, 2, figsize=(13, 1.0 + 0.55 * n), width_ratios=(3, 2),
                                               constrained_layout=True)
        ax_heat.imshow(heat.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax_heat.set_xticks(range(len(CRITERIA)), [c.replace("_", " ") for c in CRITERIA], rotation=40, ha="right")
        ax_heat.set_yticks(range(n), order)
        for i in range(n):
            for k in range(len(CRITERIA)):
                v = heat.iat[i, k]
                ax_heat.text(k, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
        ax_heat.set_title("Criteria (0-1, higher is better)")
        probs = self.rank_probabilities.set_index("intervention").reindex(order)
        left = np.zeros(n)
        cmap = plt.get_cmap("RdYlGn_r", max(n, 2))
        for r, col in enumerate(probs.columns):
            ax_rank.barh(range(n), probs[col], left=left, color=cmap(r), label=f"rank {r + 1}")
            left += probs[col].to_numpy()
        ax_rank.set_yticks(range(n), order)
        ax_rank.invert_yaxis()
        ax_rank.set_xlim(0, 1)
        ax_rank.set_xlabel("probability")
        ax_rank.set_title("Rank probabilities (Monte Carlo)")
        ax_rank.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        top = self.table.iloc[0]
        fig._impactkit_alt_text = (
            f"Scale-readiness scorecard of {n} interventions: a heatmap of {len(CRITERIA)} criteria scored 0 to 1, "
            f"and bars of each intervention's probability of each rank. Ranked first: {top['intervention']} "
            f"(geometric score {top['score_geometric']:.2f}, probability of rank 1 {top['p_rank_1']:.2f}).")
        return fig

    def plot_tornado(self, ax=None):
        """Top-two score gap when each weight is halved / raised by half (tornado chart)."""
        import matplotlib.pyplot as plt

        t = self.tornado.iloc[::-1]
        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 0.4 * len(t) + 1.2), constrained_layout=True)
        else:
            fig = ax.figure
        low = t["top_gap_at_low"].astype(float).to_numpy()
        high = t["top_gap_at_high"].astype(float).to_numpy()
        y = np.arange(len(t))
        ax.barh(y, high - low, left=low, color=np.where(high >= low, "#2b8cbe", "#e34a33"))
        gap = t["top_gap"].astype(float)
        base = float(gap.iloc[0]) if len(t) and not gap.isna().all() else float("nan")
        ax.axvline(0.0, color="black", lw=0.8)
        if np.isfinite(base):
            ax.axvline(base, color="grey", lw=0.8, ls="--", label="at declared weights")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_yticks(y, [f"{c} (w={w:.2f})" for c, w in zip(t["criterion"], t["weight"])])
        ax.set_xlabel("score gap between rank 1 and rank 2 (weight x0.5 -> x1.5)")
        ax.set_title("Weight sensitivity (one at a time)")
        flips = self.tornado.dropna(subset=["flip_weight_below", "flip_weight_above"], how="all")
        fig._impactkit_alt_text = (
            "Tornado chart: for each criterion, the score gap between the first and second ranked intervention "
            f"when its weight is halved or raised by half. {len(flips)} of {len(self.tornado)} criteria can change the "
            f"ranking when their weight is moved within [0, 1]; gap at the declared weights {base:.3f}.")
        return fig
