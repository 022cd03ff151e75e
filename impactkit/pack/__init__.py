"""Evidence packs: results document -> ``.qmd`` -> HTML and PDF.

``pack(results, out)`` builds and renders in a temporary folder, checks that no personal
value leaked, then moves the outputs into place; ``build_qmd`` and ``render`` are the
two steps.
"""

from impactkit.pack.build import build_qmd
from impactkit.pack.pipeline import pack
from impactkit.pack.render import render

__all__ = ["build_qmd", "pack", "render"]

from impactkit._modules import make_callable as _make_callable

_make_callable(__name__, pack)
