"""``impactkit pack``: analysis folder -> results -> evidence pack on disk."""

from __future__ import annotations

from pathlib import Path

from impactkit.errors import EXIT_OK, InputError


def cli_pack(analysis_dir: Path, *, to: str | None = None, out: Path | None = None) -> int:
    """Run the analysis, build and render its evidence pack, print the output paths.

    Default output folder: ``reports/<analysis name>/``. Personal values of the panel
    (``data.personal_columns``) are read only to make sure none reaches an output.
    """
    from impactkit.pack.pipeline import pack
    from impactkit.pack.privacy import personal_values
    from impactkit.pack.render import parse_formats

    formats = parse_formats(to) if to is not None else None
    try:
        from impactkit.analysis import run_analysis
    except ImportError as exc:
        raise InputError(f"impactkit.analysis is not available ({exc}); cannot run the analysis") from None
    analysis_dir = Path(analysis_dir)
    results = run_analysis(analysis_dir)
    analysis = results.get("analysis") or {}
    data = results.get("data") or {}
    if formats is None:  # [pack] formats of analysis.toml (results: analysis.pack.formats)
        formats = parse_formats(",".join((analysis.get("pack") or {}).get("formats") or ["html", "pdf"]))
    name = str(analysis.get("name") or analysis_dir.name)
    target = Path(out) if out is not None else Path("reports") / name
    forbidden = personal_values(analysis_dir / str(data.get("file") or ""), list(data.get("personal_columns") or [])) \
        if data.get("file") else []
    paths = pack(results, target, to=formats, forbidden=forbidden, command=f"impactkit pack {analysis_dir}")
    for kind in ("html", "pdf", "qmd", "results", "figures"):
        if kind in paths:
            print(paths[kind])
    return EXIT_OK
