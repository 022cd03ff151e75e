"""``impactkit pack``: analysis folder -> results -> evidence pack on disk."""

from __future__ import annotations

import re
from pathlib import Path

from impactkit.errors import EXIT_OK, InputError


def cli_pack(analysis_dir: Path, *, to: str = "html,pdf", out: Path | None = None) -> int:
    """Run the analysis, build and render its evidence pack, print the output paths.

    Default output folder: ``reports/<analysis name>/``. Personal values of the panel
    (``data.personal_columns``) are read only to make sure none reaches an output.
    """
    from impactkit.pack.pipeline import pack
    from impactkit.analysis.spec import load_analysis
    from impactkit.privacy import analysis_personal_values
    from impactkit.pack.render import parse_formats

    formats = parse_formats(to)
    try:
        from impactkit.analysis import run_analysis
    except ImportError as exc:
        raise InputError(f"impactkit.analysis is not available ({exc}); cannot run the analysis") from None
    analysis_dir = Path(analysis_dir)
    spec = load_analysis(analysis_dir)
    name = str(spec.analysis.name or analysis_dir.name)
    if out is None and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name):
        raise InputError(f"{analysis_dir / 'analysis.toml'}: analysis.name = {name!r} cannot name the output folder "
                         "reports/<name> (letters, digits, '.', '_', '-' only; no '/', '..' or absolute path); "
                         "rename it or pass --out")
    target = Path(out) if out is not None else Path("reports") / name
    results = run_analysis(spec)
    forbidden = analysis_personal_values(spec)  # read as the analysis reads it
    paths = pack(results, target, to=formats, forbidden=forbidden, command=f"impactkit pack {analysis_dir}")
    for kind in ("html", "pdf", "qmd", "results", "figures"):
        if kind in paths:
            print(paths[kind])
    return EXIT_OK
