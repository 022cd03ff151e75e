"""Figures of the evidence pack, drawn from the results document only.

Each ``*_figure`` function takes the results dict and returns a :class:`PackFigure`
(a matplotlib ``Figure``, a caption and an alt text that states what the figure shows
in numbers) or ``None`` when the section is absent. :func:`save_figures` writes them as
PNG files (no time stamp or software metadata, so the bytes depend on the numbers only).
Figures use the object-oriented matplotlib API (no pyplot state), so they are safe to
build in parallel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from impactkit.pack import format as fmt
from impactkit.privacy import min_cell_of, must_suppress
from impactkit.pack.tables import estimator_label, is_difference_row

# One palette, checked numerically (tests/test_pack_brief.py): every colour that draws a
# mark has a WCAG contrast ratio of at least 3:1 against the white background, every text
# colour at least 4.5:1. BAND is a light fill and is always drawn with an INK outline.
BACKGROUND = "#ffffff"
INK = "#1f3b57"
ACCENT = "#b5472f"
MUTED = "#66788f"
BAND = "#d5dde8"
TEXT_COLOURS = ("#222222", "#333333", "#444444", INK)
GRAPHIC_COLOURS = (INK, ACCENT, MUTED)
FONT_FAMILY = "DejaVu Sans"  # the same family the brief and the report set their text in


@dataclass
class PackFigure:
    """A figure ready for the pack: ``name`` is the file stem."""

    name: str
    figure: Figure
    caption: str
    alt: str


@dataclass
class SavedFigure:
    name: str
    path: Path
    caption: str
    alt: str


def plain_label(text: Any) -> str:
    """Text from data made literal for matplotlib (``$`` would start mathtext)."""
    return str(text if text is not None else "").replace("\\", "/").replace("$", r"\$")


WIDTH = 6.4  # inches: every figure is drawn at this width and shown at 85% of the text width
TICK_SIZE = 8.5
LABEL_SIZE = 9
LEGEND_SIZE = 8
STYLE = {"font.family": FONT_FAMILY, "font.size": LABEL_SIZE, "axes.titlesize": LABEL_SIZE,
         "axes.labelsize": LABEL_SIZE, "axes.edgecolor": "#444444", "xtick.color": "#333333",
         "ytick.color": "#333333", "axes.labelcolor": "#222222"}


def _new_figure(width: float = WIDTH, height: float = 3.4) -> tuple[Figure, Any]:
    """A figure in the pack's one style (font, sizes, spines), independent of rcParams files."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.xaxis.label.set_size(LABEL_SIZE)
    ax.yaxis.label.set_size(LABEL_SIZE)
    return fig, ax


def words(identifier: Any) -> str:
    """``'financial_sustainability' -> 'Financial sustainability'`` for axis labels."""
    text = plain_label(identifier).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def outcome_label(results: Mapping[str, Any]) -> str:
    """The effect's axis label: ``'Effect on maize yield (log points)'``."""
    analysis = results.get("analysis") or {}
    label = str(analysis.get("outcome_label") or analysis.get("outcome") or "the outcome")
    scale = (results.get("headline") or {}).get("scale")
    if scale == "log" and "log" not in label.lower():
        label += " (log points)"
    elif scale == "share":
        label += " (share, 0-1)"
    if label[:1].isupper() and label[1:2].islower():
        label = label[:1].lower() + label[1:]
    return "Effect on " + label


def event_study_figure(results: Mapping[str, Any]) -> PackFigure | None:
    """Event-study estimates with pointwise 95% CIs (bars) and uniform bands (shaded)."""
    es = results.get("event_study") or {}
    rows = sorted(es.get("rows") or [], key=lambda r: r["event_time"])
    if not rows:
        return None
    t = np.array([r["event_time"] for r in rows], dtype=float)
    est = np.array([_num(r.get("estimate")) for r in rows])
    lo = np.array([_num(r.get("conf_low")) for r in rows])
    hi = np.array([_num(r.get("conf_high")) for r in rows])
    blo = np.array([_num(r.get("band_low")) for r in rows])
    bhi = np.array([_num(r.get("band_high")) for r in rows])
    fig, ax = _new_figure(WIDTH, 3.2)
    has_band = bool(np.isfinite(blo).any())
    if has_band:
        band = np.isfinite(blo) & np.isfinite(bhi)
        ax.bar(t[band], bhi[band] - blo[band], bottom=blo[band], width=0.32, color=BAND, edgecolor=INK,
               linewidth=0.6, label="uniform 95% band")
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(t[ok], est[ok], yerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="none",
                ecolor=INK, elinewidth=1.2, capsize=3, label="pointwise 95% CI")
    pre = t < 0
    ax.plot(t[pre], est[pre], "o", color=MUTED, label="before treatment")
    ax.plot(t[~pre], est[~pre], "o", color=ACCENT, label="after")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(-0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("Years since treatment began (event time)", fontsize=LABEL_SIZE)
    ax.set_ylabel(plain_label(outcome_label(results)), fontsize=LABEL_SIZE)
    ax.set_xticks(t)
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="upper left")
    pre_vals = est[pre & np.isfinite(est)]
    post_vals = est[~pre & np.isfinite(est)]
    pt = es.get("pretrend") or {}
    alt = (f"Event-study plot: {outcome_label(results)} by event time from {int(t.min())} to {int(t.max())}. "
           + (f"Before treatment the estimates lie between {fmt.number(pre_vals.min())} and "
              f"{fmt.number(pre_vals.max())}. " if pre_vals.size else "")
           + (f"After treatment they range from {fmt.number(post_vals.min())} to {fmt.number(post_vals.max())}. "
              if post_vals.size else "")
           + (f"Joint pre-trend test p-value {fmt.p_value(pt.get('p_value'))}." if pt else ""))
    caption = ("Event study: effect by years since treatment began. Bars are pointwise 95% confidence "
               "intervals" + ("; shaded boxes are the uniform 95% band, valid for all event times jointly." if has_band else "."))
    return PackFigure("event-study", fig, caption, alt)


def estimators_figure(results: Mapping[str, Any]) -> PackFigure | None:
    """Point estimates and 95% CIs of each estimator, side by side."""
    rows = [r for r in results.get("estimators") or [] if r.get("estimate") is not None]
    if not rows:
        return None
    labels = [plain_label(estimator_label(r)) for r in rows]
    est = np.array([_num(r["estimate"]) for r in rows])
    lo = np.array([_num(r.get("conf_low")) for r in rows])
    hi = np.array([_num(r.get("conf_high")) for r in rows])
    y = np.arange(len(rows))[::-1]
    fig, ax = _new_figure(WIDTH, 0.6 + 0.5 * len(rows))
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(est[ok], y[ok], xerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="none", ecolor=INK, capsize=3)
    ax.plot(est, y, "o", color=ACCENT)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=TICK_SIZE)
    ax.set_xlabel(plain_label(outcome_label(results)) + ", with 95% CI", fontsize=LABEL_SIZE)
    alt = "Estimates by estimator: " + "; ".join(
        f"{estimator_label(r)} {fmt.number(r['estimate'])} "
        f"{fmt.interval(r.get('conf_low'), r.get('conf_high'))}" for r in rows) + "."
    return PackFigure("estimators", fig, "Alternative estimators of the same effect, with 95% confidence intervals.", alt)


def heterogeneity_figure(results: Mapping[str, Any]) -> PackFigure | None:
    """Forest plot of subgroup estimates; suppressed (small) subgroups are left out."""
    het = results.get("heterogeneity") or {}
    min_cell = min_cell_of(results)
    rows = [r for r in het.get("rows") or [] if not must_suppress(r, "n", min_cell) and r.get("estimate") is not None
            and not is_difference_row(r)]
    if not rows:
        return None
    y = np.arange(len(rows))[::-1]
    est = np.array([_num(r["estimate"]) for r in rows])
    lo = np.array([_num(r.get("conf_low")) for r in rows])
    hi = np.array([_num(r.get("conf_high")) for r in rows])
    fig, ax = _new_figure(WIDTH, 0.8 + 0.5 * len(rows))
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(est[ok], y[ok], xerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="none", ecolor=INK, capsize=3)
    ax.plot(est, y, "s", color=ACCENT)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [f"{plain_label(r.get('subgroup'))} (n = {fmt.integer(r.get('n'))})" for r in rows],
                  fontsize=TICK_SIZE)
    ax.margins(y=0.35)
    ax.set_xlabel(plain_label(outcome_label(results)) + ", with 95% CI", fontsize=LABEL_SIZE)
    alt = "Subgroup estimates: " + "; ".join(
        f"{r.get('subgroup')} {fmt.number(r['estimate'])} {fmt.interval(r.get('conf_low'), r.get('conf_high'))}"
        for r in rows) + f". Interaction test p-value {fmt.p_value(het.get('interaction_p'))}."
    design = f" ({het['design']})" if het.get("design") else ""
    caption = (f"Effects by subgroup{design}, with 95% confidence intervals; "
               "subgroups under the minimum cell size are not shown.")
    return PackFigure("heterogeneity", fig, caption, alt)


def _names(results: Mapping[str, Any]) -> dict[str, str]:
    ranking = (results.get("scale") or {}).get("ranking") or []
    return {str(r.get("intervention")): str(r.get("name") or r.get("intervention")) for r in ranking}


# Ranks 1..7: all at least 3:1 against white (no pale tints); neighbours differ in hue as
# well as lightness and are separated by white edges.
RANK_COLOURS = ("#1f3b57", "#b5472f", "#2f6f4f", "#6a4c93", "#8a5a00", "#0f6e8c", "#66788f")


def rank_palette(n: int) -> list[Any]:
    """``n`` distinct colours from the pack's dark blue (rank 1) to a pale blue (last rank)."""
    if n <= len(RANK_COLOURS):
        return list(RANK_COLOURS[:n])
    from matplotlib.colors import LinearSegmentedColormap

    ramp = LinearSegmentedColormap.from_list("pack-ranks", list(RANK_COLOURS))
    return [ramp(x) for x in np.linspace(0.0, 1.0, n)]


def rank_probabilities_figure(results: Mapping[str, Any]) -> PackFigure | None:
    """Stacked bars: probability that each intervention takes rank 1, 2, ... (Monte Carlo)."""
    scale = results.get("scale") or {}
    rows = scale.get("rank_probabilities") or []
    if not rows:
        return None
    names = _names(results)
    order = [r.get("intervention") for r in sorted(scale.get("ranking") or [], key=lambda r: r.get("rank") or 0)]
    interventions = [i for i in order if any(r["intervention"] == i for r in rows)]
    interventions += sorted({r["intervention"] for r in rows} - set(interventions))
    ranks = sorted({int(r["rank"]) for r in rows})
    table = {(r["intervention"], int(r["rank"])): float(r["probability"] or 0.0) for r in rows}
    fig, ax = _new_figure(WIDTH, 0.75 + 0.28 * len(interventions))
    y = np.arange(len(interventions))[::-1]
    left = np.zeros(len(interventions))
    palette = rank_palette(len(ranks))
    for colour, k in zip(palette, ranks):
        width = np.array([table.get((i, k), 0.0) for i in interventions])
        ax.barh(y, width, left=left, color=colour, edgecolor="white", linewidth=0.6, label=f"rank {k}")
        left += width
    ax.set_yticks(y, [plain_label(names.get(i, i)) for i in interventions], fontsize=TICK_SIZE)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Probability of each rank (Monte Carlo)", fontsize=LABEL_SIZE)
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, ncols=min(len(ranks), 4), loc="lower center",
              bbox_to_anchor=(0.5, 1.0), handlelength=1.2, columnspacing=1.0)
    alt = "Rank probabilities: " + "; ".join(
        f"{names.get(i, i)} is ranked first with probability {fmt.share(table.get((i, 1), 0.0))}" for i in interventions) + "."
    return PackFigure("rank-probabilities", fig, "Probability that each intervention ranks first, second, ... for scale readiness.", alt)


def _first(row: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def tornado_figure(results: Mapping[str, Any]) -> PackFigure | None:
    """Tornado chart: the score when each input is set to its low and high value."""
    scale = results.get("scale") or {}
    rows = []
    for r in scale.get("tornado") or []:
        low = _first(r, "score_low", "low")
        high = _first(r, "score_high", "high")
        if low is None or high is None:
            continue
        rows.append((str(_first(r, "parameter", "input", "name") or "input"), float(low), float(high)))
    if not rows:
        return None
    flat = [name for name, lo, hi in rows if hi == lo]
    rows = [r for r in rows if r[2] != r[1]]
    if not rows:
        return None
    rows.sort(key=lambda r: abs(r[2] - r[1]))
    focus = scale.get("focus")
    base = next((r.get("score_geometric") for r in scale.get("ranking") or [] if r.get("intervention") == focus), None)
    fig, ax = _new_figure(WIDTH, 0.7 + 0.22 * len(rows))
    y = np.arange(len(rows))
    ref = float(base) if base is not None else float(np.mean([(lo + hi) / 2 for _, lo, hi in rows]))
    for yi, (_, lo, hi) in zip(y, rows):
        ax.barh(yi, lo - ref, left=ref, color=MUTED)
        ax.barh(yi, hi - ref, left=ref, color=INK)
    ax.axvline(ref, color="black", linewidth=0.8)
    ax.set_yticks(y, [words(name) for name, _, _ in rows], fontsize=TICK_SIZE)
    ax.set_xlabel("Scale-readiness score", fontsize=LABEL_SIZE)
    alt = "Tornado chart of the scale-readiness score: " + "; ".join(
        f"{words(name).lower()} moves the score from {fmt.number(lo)} to {fmt.number(hi)}" for name, lo, hi in reversed(rows)) + "."
    caption = ("Sensitivity of the scale-readiness score to each input (tornado chart): grey bars set the input "
               "to its low value, dark bars to its high value; the vertical line is the intervention's score.")
    if flat:
        caption += " Inputs that do not move the score: " + ", ".join(words(n).lower() for n in flat) + "."
        alt += " Inputs that do not move the score: " + ", ".join(words(n).lower() for n in flat) + "."
    return PackFigure("tornado", fig, caption, alt)


def effect_over_time_figure(results: Mapping[str, Any], w: Any) -> PackFigure | None:
    """The brief's chart: the effect by year since the service arrived, with its 95% interval.

    A log-point effect is shown as a percentage change, ``100 (exp(b) - 1)`` (also for the
    interval ends); ``w`` is the brief's :class:`~impactkit.pack.brief.Writer` (labels in
    its language, numbers in its locale).
    """
    from impactkit.pack.i18n import N_

    es = results.get("event_study") or {}
    rows = sorted((r for r in es.get("rows") or [] if r.get("estimate") is not None), key=lambda r: r["event_time"])
    if not rows:
        return None
    log_scale = (results.get("headline") or {}).get("scale") == "log"
    conv = (lambda v: 100.0 * np.expm1(v)) if log_scale else (lambda v: v)
    t = np.array([r["event_time"] for r in rows], dtype=float)
    est = conv(np.array([_num(r.get("estimate")) for r in rows]))
    lo = conv(np.array([_num(r.get("conf_low")) for r in rows]))
    hi = conv(np.array([_num(r.get("conf_high")) for r in rows]))
    fig, ax = _new_figure(WIDTH, 2.5)
    ok = np.isfinite(lo) & np.isfinite(hi)
    pre = t < 0
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.axvspan(t.min() - 0.5, -0.5, color="#f1f3f6", zorder=0)
    ax.errorbar(t[ok], est[ok], yerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="none", ecolor=INK, elinewidth=1.6,
                capsize=4)
    ax.plot(t[pre], est[pre], "o", color=MUTED, markersize=6, label=w.t(N_("before the service arrived")))
    ax.plot(t[~pre], est[~pre], "o", color=ACCENT, markersize=7, label=w.t(N_("after")))
    unit = w.t(N_("change in %")) if log_scale else w.t(N_("change"))
    ax.set_ylabel(unit, fontsize=LABEL_SIZE)
    ax.set_xlabel(w.t(N_("Years since the service arrived")), fontsize=LABEL_SIZE)
    ax.set_xticks(t, [w.local.integer(v) for v in t])
    ax.yaxis.set_major_formatter(lambda v, _pos: w.local.signed(v, 0) if v else "0")
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="upper left")
    post = ~pre & np.isfinite(est)
    alt = w.t(N_("Chart of the effect by year since the service arrived, from year %(first)s to year %(last)s. "
                 "Before arrival the effect is close to zero; after arrival it rises to %(top)s in year %(when)s."),
              first=w.local.integer(t.min()), last=w.local.integer(t.max()),
              top=w.local.signed_percent(est[post].max()) if log_scale and post.any() else
              w.local.signed(est[post].max() if post.any() else float("nan"), 2),
              when=w.local.integer(t[post][np.argmax(est[post])]) if post.any() else "?")
    return PackFigure("effect-over-time", fig, "", alt)


FIGURE_BUILDERS: tuple[Callable[[Mapping[str, Any]], PackFigure | None], ...] = (
    event_study_figure,
    estimators_figure,
    heterogeneity_figure,
    rank_probabilities_figure,
    tornado_figure,
)


def save_png(figure: Figure, path: Path, dpi: int = 150) -> Path:
    """Write a PNG without time stamp or software metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, format="png", metadata={"Software": None})
    return path


def save_figures(results: Mapping[str, Any], folder: Path) -> dict[str, SavedFigure]:
    """Draw every figure the results allow and save them as ``folder/<name>.png``."""
    saved: dict[str, SavedFigure] = {}
    Path(folder).mkdir(parents=True, exist_ok=True)
    for build in FIGURE_BUILDERS:
        made = build(results)
        if made is None:
            continue
        path = save_png(made.figure, Path(folder) / f"{made.name}.png")
        saved[made.name] = SavedFigure(made.name, path, made.caption, made.alt)
    return saved
