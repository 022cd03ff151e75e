"""Simulated data sets with known truth (see :mod:`impactkit.datasets.peru_tap`)."""

from impactkit.datasets.designs import (
    DesignTruth,
    simulate_cluster_trial,
    simulate_did_2x2,
    simulate_encouragement,
)
from impactkit.datasets.peru_tap import (
    PERSONAL_COLUMNS,
    PERU_TAP_SEED,
    POVERTY_LINE_PEN,
    PeruTapTruth,
    simulate_peru_tap,
    write_peru_tap,
)

__all__ = ["DesignTruth", "simulate_cluster_trial", "simulate_did_2x2", "simulate_encouragement",
           "PERSONAL_COLUMNS", "PERU_TAP_SEED", "POVERTY_LINE_PEN", "PeruTapTruth",
           "simulate_peru_tap", "write_peru_tap"]
