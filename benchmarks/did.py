"""Difference-in-differences speed against peers, side by side in one process.

Runs the three studies of the DiD issue and prints their ratios:

- Callaway-Sant'Anna (doubly robust, analytic SEs), 20,000 units x 8 periods, vs csdid and
  moderndid (``benchmarks/did_cs.py``);
- Callaway-Sant'Anna on repeated cross sections (``panel=False``), 20,000 rows x 8 periods, vs
  csdid and moderndid (``benchmarks/did_cs_rcs.py``);
- TWFE with clustered SEs on a 1,000,000-row balanced panel vs pyfixest and linearmodels
  (``benchmarks/did_twfe.py``);
- wild cluster bootstrap, 9,999 draws, 100,000 rows, 30 clusters vs wildboottest
  (``benchmarks/did_wild.py``).

Usage: ``.venv/bin/python benchmarks/did.py [cs] [rcs] [twfe] [wild]`` (all by default).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDIES = {"cs": "did_cs.py", "rcs": "did_cs_rcs.py", "twfe": "did_twfe.py", "wild": "did_wild.py"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / STUDIES[name])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    chosen = argv or list(STUDIES)
    for name in chosen:
        print(f"\n=== {name} ({STUDIES[name]}) ===", flush=True)
        module = _load(name)
        try:
            module.main([])  # defaults; each study also runs alone with its own options
        except TypeError:
            module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
