"""The terminal: consoles that fit it, progress for slow steps, warnings once, ``--quiet``.

- :func:`make_console` is a rich console at the terminal's real width (``COLUMNS`` when
  set; rich's detection otherwise; 80 when not a terminal). Tables wrap their cells to fit:
  nothing forces a width wider than the terminal.
- :func:`progress` shows a spinner with the running step on stderr while a command works
  (only on a terminal, never with ``--quiet``); steps that finish in under two seconds
  simply flash by.
- :func:`install_warning_handler` shows each warning once per command, on one short line
  (``warning: ...``), or not at all with ``--quiet``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any, Callable

from rich.console import Console
from rich.text import Text

QUIET_ENV = "IMPACTKIT_QUIET"
MAX_WARNING = 160


def is_quiet() -> bool:
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def set_quiet(quiet: bool) -> None:
    if quiet:
        os.environ[QUIET_ENV] = "1"
    else:
        os.environ.pop(QUIET_ENV, None)


def terminal_width(default: int = 80) -> int:
    """``COLUMNS`` when it is a positive integer, else rich's detection (``default`` off a tty)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    return Console(file=sys.stdout).width or default


def make_console(stderr: bool = False, file: Any = None) -> Console:
    """A console at the terminal's width (no forced width), plain text, no highlighting."""
    return Console(file=file, stderr=stderr, highlight=False, width=terminal_width())


def one_line(message: str, limit: int = MAX_WARNING) -> str:
    """``message`` on one line, at most ``limit`` characters (cut at a word, with an ellipsis)."""
    text = " ".join(str(message).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "\u2026"


class WarningsOnce:
    """Prints each distinct warning message once, as ``warning: <one line>``."""

    def __init__(self, console: Console | None = None):
        self.console = console
        self.seen: set[str] = set()

    def show(self, message: str) -> None:
        text = one_line(message)
        if is_quiet() or text in self.seen:
            return
        self.seen.add(text)
        console = self.console or make_console(stderr=True)
        console.print(Text.assemble(("warning:", "yellow"), " ", text), soft_wrap=True)


_HANDLER: WarningsOnce | None = None


def install_warning_handler(console: Console | None = None) -> WarningsOnce:
    """Route Python warnings of this command through one :class:`WarningsOnce`."""
    global _HANDLER
    _HANDLER = WarningsOnce(console)

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        _HANDLER.show(str(message))

    warnings.showwarning = showwarning
    warnings.simplefilter("default")
    return _HANDLER


def show_warning(message: str) -> None:
    """Show ``message`` through the command's handler (installed on first use)."""
    (_HANDLER or install_warning_handler()).show(message)


@contextlib.contextmanager
def progress(description: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the running step; yields ``update(step_name)``.

    Silent with ``--quiet`` or when stderr is not a terminal (pipes, CI logs, tests).
    """
    err = Console(stderr=True, highlight=False)
    if is_quiet() or not err.is_terminal:
        yield lambda _step: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(step: str) -> None:
            bar.update(task, description=f"{description}: {step.replace('_', ' ')}")

        yield update
