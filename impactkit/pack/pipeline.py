"""Build, render, guard and publish an evidence pack atomically.

:func:`pack` works in a temporary folder beside the output folder; only when every
requested format rendered and the privacy guard found no personal value does it move the
files into place (``os.replace``, atomic per file on one file system). A failure leaves
the previous pack, if any, untouched and no half-written output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from impactkit.atomic import dumps_json
from impactkit.pack.build import FIGURE_DIR, build_qmd
from impactkit.pack.privacy import guard_outputs
from impactkit.pack.render import copy_support_files, parse_formats, render

STEM = "evidence-pack"
FILES_DIR = FIGURE_DIR.split("/")[0]


def _publish_dir(source: Path, target: Path) -> None:
    backup = target.with_name(f".{target.name}.old")
    if backup.exists():
        shutil.rmtree(backup)
    if target.exists():
        os.replace(target, backup)
    os.replace(source, target)
    if backup.exists():
        shutil.rmtree(backup)


def pack(results: Mapping[str, Any], out: Path, *, to: str | Iterable[str] = "html,pdf",
         forbidden: Iterable[str] = (), date: str | None = None, command: str | None = None,
         engine: str = "auto", keep_typst: bool = True) -> dict[str, Path]:
    """Write the evidence pack for ``results`` into ``out``; returns ``{kind: path}``.

    Outputs: ``evidence-pack.qmd``, ``results.json``, ``evidence-pack.html`` and/or
    ``evidence-pack.pdf`` (per ``to``), the figures under ``evidence-pack_files/``, the
    stylesheets the ``.qmd`` names and, for PDF rendered without Quarto, the intermediate
    ``evidence-pack.typ``. ``forbidden`` are personal values that must not appear in any
    output byte (:func:`impactkit.pack.privacy.guard_outputs` raises ``CheckFailed``).
    """
    formats = parse_formats(to)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{STEM}-build-", dir=out))
    try:
        qmd_text = build_qmd(results, work, date=date, command=command)
        qmd = work / f"{STEM}.qmd"
        qmd.write_text(qmd_text, encoding="utf-8")
        (work / "results.json").write_text(dumps_json(results), encoding="utf-8")
        copy_support_files(work)
        figures_backup = work.parent / f".{work.name}-figures"
        shutil.copytree(work / FILES_DIR, figures_backup)  # quarto may clean <stem>_files after embedding
        try:
            rendered = render(qmd, formats, engine=engine)
            if not (work / FILES_DIR).exists():
                shutil.copytree(figures_backup, work / FILES_DIR)
        finally:
            shutil.rmtree(figures_backup, ignore_errors=True)
        if not keep_typst and "typ" in rendered:
            rendered.pop("typ").unlink(missing_ok=True)
        guard_outputs(work, list(forbidden))
        published: dict[str, Path] = {}
        for path in sorted(work.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                os.replace(path, out / path.name)
        _publish_dir(work / FILES_DIR, out / FILES_DIR)
        published["qmd"] = out / f"{STEM}.qmd"
        published["results"] = out / "results.json"
        for kind, path in rendered.items():
            published[kind] = out / path.name
        published["figures"] = out / FILES_DIR
        return published
    finally:
        shutil.rmtree(work, ignore_errors=True)
