"""Run an analysis in this (fresh) process and write its numbers: ``python -m impactkit.pin.worker DIR OUT``.

Used by ``impactkit rerun --twice``, which starts two of these with different thread counts so
that any number depending on scheduling (non-determinism) shows up as a difference between them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from impactkit.distributed.analysis import run_analysis_on as run_analysis
from impactkit.atomic import write_json
from impactkit.pin.numbers import flatten_numbers
from impactkit.provenance import blas_info


def main(argv: list[str]) -> int:
    folder, out = Path(argv[0]), Path(argv[1])
    numbers = flatten_numbers(run_analysis(folder))
    write_json(out, {"numbers": numbers, "blas": blas_info()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
