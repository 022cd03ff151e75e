"""Upper bounds on the work a spec or a command line may ask for.

Draw counts and sizes come from untrusted files (``analysis.toml``, portfolios) and from
the command line. Without a ceiling, ``wild_bootstrap_draws = 10**9`` asks for tens of GiB
and ends in the OOM killer; with one, it is refused up front (exit 2) with the bound named.
The bounds are far above what any published analysis uses (9,999 wild-bootstrap draws,
999 multiplier draws, a few thousand Monte Carlo draws for rank probabilities) and keep
the largest arrays within a few hundred MiB. Documented in ``docs/limits.md``.
"""

from __future__ import annotations

MAX_BOOTSTRAP_DRAWS = 100_000        #: wild bootstrap ``B`` / ``wild_bootstrap_draws``
MAX_MULTIPLIER_DRAWS = 100_000       #: Callaway-Sant'Anna multiplier bootstrap ``multiplier_draws``
MAX_MULTIPLE_TESTING_DRAWS = 20_000  #: Romano-Wolf / Westfall-Young ``multiple_testing_draws``
MAX_PERMUTATIONS = 100_000           #: randomization inference ``n_permutations`` / ``randomization_draws``
MAX_SCALE_DRAWS = 200_000            #: scale-readiness Monte Carlo draws (``score --draws``, ``options.draws``)
