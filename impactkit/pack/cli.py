"""``impactkit pack``: analysis folder -> results -> evidence pack on disk."""

from __future__ import annotations

import re
from pathlib import Path

from impactkit.errors import EXIT_OK, InputError


def honesty_of(spec: object) -> "object":
    """What the numbers rest on, read from the declared inputs (not from the numbers):

    * simulated data: the data contract's description says so (``limitations`` or text);
    * illustrative accounts: the costs file's ``source`` says so;
    * assumptions: cost inputs whose note in the costs file starts with "assumption".
    """
    import re
    import tomllib

    import yaml

    from impactkit.pack.brief import Honesty

    simulated = illustrative = False
    assumed: list[str] = []
    try:
        contract = yaml.safe_load(spec.path(spec.data.contract).read_text(encoding="utf-8")) or {}
        description = contract.get("description") if isinstance(contract, dict) else None
        simulated = bool(re.search(r"\bsimulated\b", str(description or ""), re.IGNORECASE))
    except (OSError, AttributeError, TypeError, yaml.YAMLError):
        pass
    costs = getattr(getattr(spec, "scale", None), "costs", None)
    if costs:
        try:
            accounts = tomllib.loads(spec.path(costs).read_text(encoding="utf-8"))
            illustrative = bool(re.search(r"\billustrative\b", str(accounts.get("source") or ""), re.IGNORECASE))
            notes = accounts.get("notes") or {}
            assumed = [k for k, v in notes.items() if str(v).strip().lower().startswith("assumption")]
        except (OSError, tomllib.TOMLDecodeError):
            pass
    return Honesty(simulated_data=simulated, illustrative_costs=illustrative, assumed=tuple(assumed))


def brief_settings(analysis_dir: Path) -> "object":
    """:class:`~impactkit.pack.brief.BriefSettings` from ``[pack]`` of ``analysis.toml``."""
    from impactkit.analysis.spec import load_analysis
    from impactkit.pack.brief import BriefSettings

    spec = load_analysis(analysis_dir)
    pack = spec.pack
    return BriefSettings(audience=pack.audience, languages=tuple(pack.languages), region=pack.region,
                         text={k: dict(v) for k, v in pack.text.items()}, honesty=honesty_of(spec))


def cli_pack(analysis_dir: Path, *, to: str | None = None, out: Path | None = None, engine: str | None = None,
             scheduler: str | None = None) -> int:
    """Run the analysis, build and render its evidence pack, print the output paths.

    Default output folder: ``reports/<analysis name>/``. Besides the technical report
    (``evidence-pack.*``) it writes the policy brief in each ``[pack] languages`` entry
    (``policy-brief-<lang>.*``); ``--to docx`` adds editable Word files. Personal values of the panel
    (``data.personal_columns``) are read only to make sure none reaches an output. The analysis runs on
    ``engine`` (else ``[engine] kind``): on Dask, steps without a distributed implementation are left
    out of the pack with their reason.
    """
    from impactkit.pack.pipeline import pack
    from impactkit.analysis.spec import load_analysis
    from impactkit.analysis.personal import analysis_personal_values
    from impactkit.pack.render import parse_formats

    formats = parse_formats(to) if to is not None else None
    from impactkit.distributed.analysis import run_analysis_on
    analysis_dir = Path(analysis_dir)
    spec = load_analysis(analysis_dir)
    name = str(spec.analysis.name or analysis_dir.name)
    if out is None and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name):
        raise InputError(f"{analysis_dir / 'analysis.toml'}: analysis.name = {name!r} cannot name the output folder "
                         "reports/<name> (letters, digits, '.', '_', '-' only; no '/', '..' or absolute path); "
                         "rename it or pass --out")
    target = Path(out) if out is not None else Path("reports") / name
    results = run_analysis_on(spec, engine=engine, scheduler=scheduler)
    if formats is None:  # [pack] formats of analysis.toml
        formats = parse_formats(",".join(spec.pack.formats or ["html", "pdf"]))
    forbidden = analysis_personal_values(spec)  # read as the analysis reads it
    paths = pack(results, target, to=formats, forbidden=forbidden, command=f"impactkit pack {analysis_dir}",
                 brief=brief_settings(analysis_dir))
    for kind in ("html", "pdf", "docx", "qmd", "results", "figures"):
        if kind in paths:
            print(paths[kind])
    for kind, path in paths.items():
        if kind.startswith("brief-") and not kind.endswith("-qmd"):
            print(path)
    return EXIT_OK
