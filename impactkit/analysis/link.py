"""Evidence links: an intervention file that names an impactkit analysis gets its numbers.

An intervention's ``evidence.impactkit_estimate`` may name an analysis folder
(``analysis: analyses/<name>``). :func:`linked_scale_inputs` runs each linked analysis
and returns the ``estimates`` and programme ``costs`` that
:func:`impactkit.scale.score` takes, exactly as the analysis passes them itself, so that
``impactkit score PORTFOLIO`` and the analysis's evidence pack show the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from impactkit.errors import SpecError


def resolve_analysis_folder(link: str, intervention_file: Path) -> Path | None:
    """The analysis folder a link names: as given (from the working folder), else from the
    intervention file's folder or any folder above it."""
    candidates = [Path(link)] + [parent / link for parent in intervention_file.resolve().parents]
    for folder in candidates:
        if (folder / "analysis.toml").is_file():
            return folder
    return None


def linked_scale_inputs(portfolio, runner: Callable[..., dict[str, Any]] | None = None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(estimates, costs)`` for every intervention whose evidence links an analysis folder.

    ``portfolio``: a portfolio file or an already loaded ``LoadedPortfolio``. ``runner``: what runs
    a linked analysis (default the pandas engine; ``impactkit score`` passes
    :func:`impactkit.distributed.analysis.run_analysis_on`, the engine each ``analysis.toml`` declares).
    """
    from impactkit.analysis.run import evidence_facts, run_analysis, scale_accounts

    estimates: dict[str, Any] = {}
    costs: dict[str, Any] = {}
    for key, spec in linked_analyses(portfolio):
        results = (runner or run_analysis)(spec)
        estimates[key] = evidence_facts(spec, results)
        costs.update(scale_accounts(spec) or {})
    return estimates, costs


def linked_analyses(portfolio) -> list[tuple[str, Any]]:
    """``(estimate key, AnalysisSpec)`` of every analysis the portfolio's intervention files link,
    in portfolio order (a link naming no ``analysis.toml`` is a :class:`SpecError`)."""
    from impactkit.analysis.spec import load_analysis
    from impactkit.scale import load_portfolio

    found = []
    loaded = portfolio if hasattr(portfolio, "interventions") else load_portfolio(portfolio)
    for item in loaded.interventions:
        link = item.spec.evidence.impactkit_estimate
        if link is None or not link.analysis:
            continue
        folder = resolve_analysis_folder(link.analysis, item.path)
        if folder is None:
            raise SpecError(f"{item.path}: evidence.impactkit_estimate.analysis = '{link.analysis}': "
                            "no analysis.toml found there")
        found.append((link.key, load_analysis(folder)))
    return found


def linked_personal_values(portfolio) -> list[str]:
    """Personal values of every linked analysis's data (for :func:`impactkit.privacy.guard_text`)."""
    from impactkit.analysis.spec import load_analysis
    from impactkit.analysis.personal import analysis_personal_values
    from impactkit.scale import load_portfolio

    values: set[str] = set()
    loaded = portfolio if hasattr(portfolio, "interventions") else load_portfolio(portfolio)
    for item in loaded.interventions:
        link = item.spec.evidence.impactkit_estimate
        folder = resolve_analysis_folder(link.analysis, item.path) if link is not None and link.analysis else None
        if folder is not None:
            values.update(analysis_personal_values(load_analysis(folder)))
    return sorted(values)


def score(portfolio, *, estimates: dict[str, Any] | None = None, costs: dict[str, Any] | None = None,
          draws: int | None = None, seed: int | None = None, linked: bool = False):
    """``impactkit.score``: scale-readiness scoring, with the linked analyses run first when
    ``linked`` (their estimates and accounts; explicit ``estimates``/``costs`` take precedence).

    The composition lives here, in the analysis layer, so that :mod:`impactkit.scale` never
    imports :mod:`impactkit.analysis` (data flows analysis -> scale).
    """
    from impactkit.scale import load_portfolio
    from impactkit.scale import score as scale_score

    if not linked:
        return scale_score(portfolio, estimates=estimates, costs=costs, draws=draws, seed=seed)
    loaded = portfolio if hasattr(portfolio, "interventions") else load_portfolio(portfolio)
    linked_estimates, linked_costs = linked_scale_inputs(loaded)
    return scale_score(loaded, estimates={**linked_estimates, **(estimates or {})},
                       costs={**linked_costs, **(costs or {})}, draws=draws, seed=seed)
