"""Deterministic random streams.

Every random draw in impactkit goes through :func:`rng`, which builds a PCG64 generator
from a :class:`numpy.random.SeedSequence` whose entropy is the analysis seed and whose
spawn key names the purpose (``rng(seed, "wild-bootstrap")``). Draws therefore depend
only on the seed and the purpose string, never on thread count or call order elsewhere.
"""

from __future__ import annotations

import hashlib

import numpy as np

DEFAULT_SEED = 20_100_101


def purpose_key(purpose: str) -> int:
    """A stable 32-bit integer for a purpose string (SHA-256, not Python's salted hash)."""
    return int.from_bytes(hashlib.sha256(purpose.encode("utf-8")).digest()[:4], "little")


def rng(seed: int | None = None, *purposes: str) -> np.random.Generator:
    """A PCG64 generator for ``seed`` and the given purpose strings."""
    entropy = DEFAULT_SEED if seed is None else int(seed)
    if entropy < 0:
        from impactkit.errors import InputError

        raise InputError(f"seed must be a non-negative integer, got {seed}")
    seq = np.random.SeedSequence(entropy, spawn_key=tuple(purpose_key(p) for p in purposes))
    return np.random.Generator(np.random.PCG64(seq))
