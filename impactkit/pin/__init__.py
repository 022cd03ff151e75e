"""Pinned analyses: ``pin`` writes ``analysis.lock.json``, ``rerun`` verifies it."""

from impactkit.pin.lock import LOCK_FILE, PinReport, RerunReport, pin, rerun

__all__ = ["LOCK_FILE", "PinReport", "RerunReport", "pin", "rerun"]

from impactkit._modules import make_callable as _make_callable

_make_callable(__name__, pin)
