"""Analyses: ``analysis.toml`` -> the results document every output shows.

- :func:`load_analysis` reads and validates ``analyses/<name>/analysis.toml``;
- :func:`run_analysis` runs the declared chain and returns the results dict
  (schema: ``docs/results-schema.md``);
- :func:`cli_estimate` is the body of ``impactkit estimate``.
"""

from impactkit.analysis.cli import cli_estimate
from impactkit.analysis.run import run_analysis
from impactkit.analysis.spec import AnalysisSpec, load_analysis

__all__ = ["AnalysisSpec", "cli_estimate", "load_analysis", "run_analysis"]
