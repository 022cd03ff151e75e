"""Scale-readiness scoring of interventions and portfolios.

``score(portfolio, estimates=..., draws=..., seed=...)`` reads a portfolio file and its
intervention files, applies non-compensatory gates (bottleneck readiness, evidence, cost data,
partner alignment, financial sustainability), ranks by a weighted geometric mean of eleven
criteria, and states the uncertainty by Monte Carlo (rank and gate probabilities) and one-at-a-
time weight changes. ``costs={id: accounts}`` (or ``load_accounts("costs.toml")``) lays an
analysis's programme accounts over an intervention's cost block. The model and its sources: ``docs/scale-model.md``.
"""

from __future__ import annotations

from impactkit.scale.accounts import CostAccounts, load_accounts
from impactkit.scale.results import ScoreResult
from impactkit.scale.scorecard import score
from impactkit.scale.spec import Intervention, LoadedPortfolio, Portfolio, load_intervention, load_portfolio

__all__ = ["score", "load_intervention", "load_portfolio", "ScoreResult", "Intervention", "Portfolio",
           "LoadedPortfolio", "load_accounts", "CostAccounts"]
