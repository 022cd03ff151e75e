"""Errors and warnings shared by every impactkit module.

Each error carries the process exit code the CLI uses for it, so that library code
raises a meaningful exception and ``impactkit.cli`` maps it to the documented code:

====  ==============================================================
code  meaning
====  ==============================================================
0     success
1     the data or the results fail a check (``CheckFailed``)
2     unusable input: missing file, malformed contract or spec,
      missing key column, bad arguments (``InputError``)
3     an internal error (a bug in impactkit): one line; the traceback
      with ``IMPACTKIT_DEBUG=1``
====  ==============================================================

Messages are one line, name the file / column / rule concerned, and never include
values of columns that a data contract marks as personal.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class ImpactkitError(Exception):
    """Base class of every error impactkit raises on purpose."""

    exit_code: int = EXIT_BAD_INPUT


class InputError(ImpactkitError, ValueError):
    """Unusable input: unreadable file, malformed contract/spec, bad argument (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class ContractError(InputError):
    """A data contract file is malformed (exit 2)."""


class SpecError(InputError):
    """An analysis, intervention or portfolio file is malformed (exit 2)."""


class DataReadError(InputError):
    """A data file cannot be read as a table (exit 2)."""


class EstimationError(ImpactkitError, ValueError):
    """The data cannot support the requested estimate (e.g. no control units) (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class CheckFailed(ImpactkitError):
    """The data or results fail a check: validation rules, a rerun drift (exit 1)."""

    exit_code = EXIT_CHECK_FAILED


class ImpactkitWarning(UserWarning):
    """A documented, non-fatal concern about the data or the design (e.g. few clusters)."""
