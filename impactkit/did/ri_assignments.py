"""The re-assignments of a randomization test: levels, their labels, all or random arrangements.

Assignment (a 0/1 flag, or a cohort label) is re-randomised across clusters (or units), within
strata when given, which preserves the number of levels carrying each label (Imbens & Rubin
2015, *Causal Inference*, ch. 5; Young 2019, *QJE* 134(2)). Every engine draws its
re-assignments here (:func:`assignments_to_test`), so they all test the same ones;
:mod:`impactkit.did.ri` evaluates the statistic under them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impactkit.errors import EstimationError, InputError
from impactkit.seeds import rng

MAX_ENUMERATED_ASSIGNMENTS = 1_000_000


@dataclass(frozen=True)
class AssignmentLevels:
    """The randomisation units (clusters or units) and what was assigned to each.

    ``row_level``: level index of every row; ``label_codes``: code of the assigned label of
    every level; ``first_row``: one row per level (to copy its label); ``stratum``: stratum
    index of every level.
    """

    row_level: np.ndarray
    first_row: np.ndarray
    label_codes: np.ndarray
    stratum: np.ndarray

    @property
    def n_levels(self) -> int:
        return int(self.first_row.size)


def assignment_levels(frame: pd.DataFrame, level: str, assignment: str,
                      strata: str | None) -> AssignmentLevels:
    """Check that ``assignment`` (and ``strata``) are constant within ``level`` and index them.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data, one row per observation.
    level : str
        The column of the units assignment was made over (unit or cluster).
    assignment : str
        The assignment column (arm labels or cohorts).
    strata : str or None
        Column of the randomisation strata.

    Returns
    -------
    AssignmentLevels
        Level of each row, first row and label code of each level, stratum of each level.

    Raises
    ------
    InputError
        ``assignment`` or ``strata`` varies within a level.
    """
    row_level, _ = pd.factorize(frame[level], sort=True)
    first_row = np.unique(row_level, return_index=True)[1].astype(np.int64)  # first row of each level
    label_codes_rows, _ = pd.factorize(frame[assignment], sort=True, use_na_sentinel=False)
    for column, codes in ((assignment, label_codes_rows),
                          (strata, None if strata is None else pd.factorize(frame[strata], sort=True)[0])):
        if codes is None:
            continue
        varies = codes != codes[first_row][row_level]
        if varies.any():
            n_bad = np.unique(row_level[varies]).size
            raise InputError(f"{column}: varies within {n_bad} {level} group(s) (first at row "
                             f"{int(np.flatnonzero(varies)[0])}); it must be constant within each {level}")
    stratum = (np.zeros(first_row.size, dtype=np.int64) if strata is None
               else pd.factorize(frame[strata], sort=True)[0][first_row].astype(np.int64))
    return AssignmentLevels(row_level.astype(np.int64), first_row,
                            label_codes_rows[first_row].astype(np.int64), stratum)


def count_assignments(levels: AssignmentLevels) -> int:
    """Number of distinct label arrangements: product over strata of multinomial coefficients."""
    total = 1
    for s in np.unique(levels.stratum):
        counts = np.unique(levels.label_codes[levels.stratum == s], return_counts=True)[1]
        ways = math.factorial(int(counts.sum()))
        for c in counts:
            ways //= math.factorial(int(c))
        total *= ways
    return total


def _multiset_arrangements(codes: np.ndarray) -> Iterator[np.ndarray]:
    """Every distinct arrangement of the multiset ``codes`` over ``len(codes)`` positions."""
    labels, counts = np.unique(codes, return_counts=True)

    def place(free: tuple[int, ...], which: int, current: np.ndarray) -> Iterator[np.ndarray]:
        if which == labels.size:
            yield current.copy()
            return
        for chosen in itertools.combinations(free, int(counts[which])):
            current[list(chosen)] = labels[which]
            rest = tuple(p for p in free if p not in chosen)
            yield from place(rest, which + 1, current)

    yield from place(tuple(range(codes.size)), 0, np.empty(codes.size, dtype=np.int64))


def enumerate_assignments(levels: AssignmentLevels) -> np.ndarray:
    """All distinct assignments, shape ``(#A, n_levels)`` of label codes (strata respected)."""
    strata = [np.flatnonzero(levels.stratum == s) for s in np.unique(levels.stratum)]
    per_stratum = [list(_multiset_arrangements(levels.label_codes[idx])) for idx in strata]
    out = []
    for combo in itertools.product(*per_stratum):
        row = np.empty(levels.n_levels, dtype=np.int64)
        for idx, arrangement in zip(strata, combo):
            row[idx] = arrangement
        out.append(row)
    return np.array(out, dtype=np.int64)


def permute_assignments(levels: AssignmentLevels, n_permutations: int, seed: int | None) -> np.ndarray:
    """``P`` random re-randomisations (label codes per level), permuted within strata.

    Uniform keys in one fixed ``(P, n_levels)`` draw from ``rng(seed, "randomization-inference")``
    are argsorted within each stratum, so results never depend on threads or chunking.

    Parameters
    ----------
    levels : AssignmentLevels
        The levels and their observed labels.
    n_permutations : int
        Number of re-randomisations ``P``.
    seed : int or None
        Seed of :func:`impactkit.seeds.rng`.

    Returns
    -------
    numpy.ndarray
        ``(P, n_levels)`` label codes.
    """
    keys = rng(seed, "randomization-inference").random((n_permutations, levels.n_levels))
    out = np.empty((n_permutations, levels.n_levels), dtype=np.int64)
    for s in np.unique(levels.stratum):
        idx = np.flatnonzero(levels.stratum == s)
        order = np.argsort(keys[:, idx], axis=1, kind="stable")
        out[:, idx] = levels.label_codes[idx][order]
    return out


def assignments_to_test(levels: AssignmentLevels, n_permutations: int, seed: int | None,
                        exact: bool | str, *, assignment: str, level: str,
                        strata: str | None = None) -> tuple[np.ndarray, int, bool]:
    """The re-assignments a test evaluates: every distinct one when ``exact`` is True, or "auto"
    and there are at most ``n_permutations``; else ``n_permutations`` random ones
    (:func:`permute_assignments`). Shared by every engine, so they all test the same assignments.

    Parameters
    ----------
    levels : AssignmentLevels
        The levels and their observed labels.
    n_permutations : int
        Random re-assignments (or the cap for full enumeration).
    seed : int or None
        Seed of :func:`impactkit.seeds.rng`.
    exact : bool or "auto"
        Enumerate every distinct assignment.
    assignment, level : str
        The assignment column and the level it is constant within, for messages.
    strata : str, optional
        The strata column, for messages.

    Returns
    -------
    tuple
        (``(P, n_levels)`` label codes, number of distinct assignments, whether they are all of them).

    Raises
    ------
    EstimationError
        Every level carries the same label: nothing to re-randomise.
    InputError
        ``exact=True`` with more than :data:`MAX_ENUMERATED_ASSIGNMENTS` assignments.
    """
    n_assignments = count_assignments(levels)
    if n_assignments < 2:
        raise EstimationError(f"{assignment}: every {level} carries the same assignment "
                              + ("within each stratum " if strata else "") + "; nothing to re-randomise")
    use_exact = (exact is True) or (exact == "auto" and n_assignments <= n_permutations)
    if use_exact and n_assignments > MAX_ENUMERATED_ASSIGNMENTS:
        raise InputError(f"exact=True: {n_assignments} distinct assignments exceed the enumeration "
                         f"limit {MAX_ENUMERATED_ASSIGNMENTS}; use random permutations")
    arrangements = (enumerate_assignments(levels) if use_exact
                    else permute_assignments(levels, int(n_permutations), seed))
    return arrangements, n_assignments, use_exact


def reassigned_frame(frame: pd.DataFrame, levels: AssignmentLevels, assignment: str,
                     arrangement: np.ndarray, outcome: str | None = None,
                     outcome_values: np.ndarray | None = None) -> pd.DataFrame:
    """``frame`` with the assignment column set from ``arrangement`` (and optionally ``y`` replaced).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    levels : AssignmentLevels
        The levels and their observed labels.
    assignment : str
        The assignment column, rewritten.
    arrangement : numpy.ndarray
        Label code of each level under the new assignment.
    outcome : str, optional
        Outcome column to replace.
    outcome_values : numpy.ndarray, optional
        Its new values, one per row.

    Returns
    -------
    pandas.DataFrame
        A copy; ``frame`` is not changed.
    """
    # a level carrying label code c copies its label from any level originally labelled c
    source_level = np.empty(int(levels.label_codes.max()) + 1, dtype=np.int64)
    source_level[levels.label_codes] = np.arange(levels.n_levels)
    rows = levels.first_row[source_level[arrangement]][levels.row_level]
    columns: dict[str, Any] = {assignment: frame[assignment].array.take(rows)}
    if outcome is not None:
        columns[outcome] = outcome_values
    return frame.assign(**columns)
