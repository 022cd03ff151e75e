"""CLI body of ``impactkit simulate``."""

from __future__ import annotations

from pathlib import Path

from impactkit.datasets.peru_tap import PERU_TAP_SEED, simulate_peru_tap, write_peru_tap
from impactkit.errors import InputError


def cli_simulate(out: Path, seed: int | None) -> int:
    """Write the simulated panel: Parquet for ``.parquet``/``.pq``, CSV for ``.csv``; other suffixes refused."""
    seed = PERU_TAP_SEED if seed is None else seed
    suffix = Path(out).suffix.lower()
    if suffix in (".parquet", ".pq"):
        path = write_peru_tap(out, seed)
    elif suffix == ".csv":
        from impactkit.atomic import write_text

        path = write_text(out, simulate_peru_tap(seed).to_csv(index=False, lineterminator="\n"))
    else:
        raise InputError(f"{out}: unknown output format '{suffix}' (use .parquet, .pq or .csv)")
    print(f"wrote {path}")
    return 0
