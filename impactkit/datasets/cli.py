"""CLI body of ``impactkit simulate``."""

from __future__ import annotations

from pathlib import Path

from impactkit.datasets.peru_tap import PERU_TAP_SEED, write_peru_tap


def cli_simulate(out: Path, seed: int | None) -> int:
    path = write_peru_tap(out, PERU_TAP_SEED if seed is None else seed)
    print(f"wrote {path}")
    return 0
