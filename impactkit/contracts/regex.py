"""Regular expressions from contracts, run by RE2: time linear in the text, whatever the pattern.

A contract is untrusted input. Python's ``re`` backtracks, so a pattern such as ``(a+)+$``
over a long note can run for hours. Every contract pattern (``logicalTypeOptions.pattern``
and the panel extension's ``leak_patterns``) is therefore compiled with RE2 (``google-re2``),
which has no backtracking; GX's pattern rules run through pandas' Arrow-backed strings,
whose ``str.contains`` is Arrow's RE2 too, so both engines accept the same syntax.

RE2 refuses the constructs that need backtracking (look-arounds ``(?<!..)``, back
references ``\\1``): the contract loader reports them as a field error. A look-around
used as a word boundary is written with a class instead: ``(?<!\\d)\\d{8}(?!\\d)`` becomes
``(?:^|\\D)\\d{8}(?:\\D|$)``, which matches the same texts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN_LENGTH = 1_000


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # report through the contract error, not RE2's stderr log
    return options


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """Compile ``pattern`` with RE2; ``ValueError`` with the reason when RE2 cannot run it."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, options=_options())
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"pattern is not supported by the RE2 engine ({reason}); look-arounds and back "
                         "references are not allowed, e.g. write (?:^|\\D) instead of (?<!\\d)") from None
