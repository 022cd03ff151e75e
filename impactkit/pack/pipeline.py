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
from impactkit.pack.build import template_dir
from impactkit.pack.render import front_matter, parse_formats, render

STEM = "evidence-pack"
FILES_DIR = FIGURE_DIR.split("/")[0]
# what earlier impactkit versions published and this one no longer does: removed on publish
STALE = ("evidence-pack.typ", "pack-filter.lua", "evidence-pack_files")


def _publish_dir(source: Path, target: Path) -> None:
    backup = target.with_name(f".{target.name}.old")
    if backup.exists():
        shutil.rmtree(backup)
    if target.exists():
        os.replace(target, backup)
    os.replace(source, target)
    if backup.exists():
        shutil.rmtree(backup)


def remove_stale(out: Path, keep: set[str]) -> None:
    """Remove files an earlier impactkit version left in ``out`` (``STALE``), except ``keep``."""
    for name in STALE:
        path = out / name
        if name in keep:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def referenced_files(qmd_text: str) -> list[str]:
    """Files the ``.qmd`` front matter names: ``css`` (HTML) and ``include-in-header`` (Typst).

    These, the ``.qmd`` and its figures folder are all that a reader or a Quarto re-render
    needs; the pandoc-fallback Lua filter is read from the templates folder, not copied.
    """
    formats = front_matter(qmd_text).get("format") or {}
    names: list[str] = []
    for options in formats.values() if isinstance(formats, dict) else []:
        if not isinstance(options, dict):
            continue
        for key in ("css", "include-in-header"):
            value = options.get(key)
            for item in [value] if isinstance(value, str) else value or []:
                if isinstance(item, str) and item not in names:
                    names.append(item)
    return names


def copy_referenced_files(qmd_text: str, folder: Path, templates: Path | None = None) -> list[Path]:
    """Copy the template files the ``.qmd`` references next to it; returns their paths."""
    source = templates or template_dir()
    copied = []
    for name in referenced_files(qmd_text):
        origin = source / name
        if origin.is_file() and Path(name).name == name:
            shutil.copyfile(origin, folder / name)
            copied.append(folder / name)
    return copied


def build_briefs(results: Mapping[str, Any], work: Path, settings: Any, formats: list[str], *, date: str,
                 engine: str, keep_typst: bool) -> tuple[dict[str, Path], list[str]]:
    """Write and render the policy brief in each language of ``settings``; returns
    ``({kind: path}, warnings)`` (kinds ``brief-<lang>-<format>``)."""
    import warnings as _warnings

    from impactkit.pack.brief import brief_qmd, brief_stem, write_brief_figure
    view = results  # the brief reads percentage changes as the proportions of the results document
    made: dict[str, Path] = {}
    notes: list[str] = []
    for lang in settings.languages:
        figure = write_brief_figure(view, work, settings, lang)
        brief = brief_qmd(view, settings, lang, date=date, figure=figure[0] if figure else None,
                          figure_alt=figure[1] if figure else "", annex=f"{STEM}.html")
        notes += [f"policy brief ({lang}): {w}" for w in brief.warnings]
        if brief.untranslated:
            notes.append(f"policy brief ({lang}): {len(brief.untranslated)} untranslated string(s): "
                         + "; ".join(brief.untranslated[:5]))
        qmd = work / f"{brief_stem(lang)}.qmd"
        qmd.write_text(brief.qmd, encoding="utf-8")
        copy_referenced_files(brief.qmd, work)
        rendered = render(qmd, formats, engine=engine)
        if not keep_typst and "typ" in rendered:
            rendered.pop("typ").unlink(missing_ok=True)
        made[f"brief-{lang}-qmd"] = qmd
        for kind, path in rendered.items():
            made[f"brief-{lang}-{kind}"] = path
    for note in notes:
        _warnings.warn(note, UserWarning, stacklevel=3)
    return made, notes


def pack(results: Mapping[str, Any], out: Path, *, to: str | Iterable[str] = "html,pdf",
         forbidden: Iterable[str] = (), date: str | None = None, command: str | None = None,
         engine: str = "auto", keep_typst: bool = False, brief: Any = None) -> dict[str, Path]:
    """Write the evidence pack for ``results`` into ``out``; returns ``{kind: path}``.

    Outputs: ``evidence-pack.qmd``, ``results.json``, ``evidence-pack.html`` and/or
    ``evidence-pack.pdf`` (per ``to``), the figures under ``figures/``, the
    files the ``.qmd`` front matter names (``pack.css``, ``pack-typst.typ``) and nothing
    else: the intermediate ``evidence-pack.typ`` of the pandoc fallback is removed unless
    ``keep_typst``. ``forbidden`` are personal values that must not appear in any
    output byte (:func:`impactkit.pack.privacy.guard_outputs` raises ``CheckFailed``).
    ``brief`` (:class:`impactkit.pack.brief.BriefSettings`) adds the policy brief in each
    of its languages, ``policy-brief-<lang>.{qmd,html,pdf,docx}``, with the technical
    report (``evidence-pack.*``) as its annex; the build warns when a brief has an
    untranslated string or the authored recommendation contradicts the results.
    """
    formats = parse_formats(to)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{STEM}-build-", dir=out))
    try:
        from impactkit.pack.brief import Honesty, today

        when = date or today()
        honesty = brief.honesty if brief is not None else Honesty()
        qmd_text = build_qmd(results, work, date=when, command=command, honesty=honesty)
        qmd = work / f"{STEM}.qmd"
        qmd.write_text(qmd_text, encoding="utf-8")
        (work / "results.json").write_text(dumps_json(results), encoding="utf-8")
        copy_referenced_files(qmd_text, work)
        figures_backup = work.parent / f".{work.name}-figures"
        shutil.copytree(work / FILES_DIR, figures_backup)  # the figures survive whatever a renderer cleans
        try:
            rendered = render(qmd, formats, engine=engine)
            if not (work / FILES_DIR).exists():
                shutil.copytree(figures_backup, work / FILES_DIR)
        finally:
            shutil.rmtree(figures_backup, ignore_errors=True)
        if not keep_typst and "typ" in rendered:
            rendered.pop("typ").unlink(missing_ok=True)
        briefs: dict[str, Path] = {}
        if brief is not None:
            briefs, _notes = build_briefs(results, work, brief, formats, date=when, engine=engine,
                                          keep_typst=keep_typst)
            if not (work / FILES_DIR).exists():
                raise RuntimeError("figures folder vanished while rendering the briefs")
        guard_outputs(work, list(forbidden))
        published: dict[str, Path] = {}
        for path in sorted(work.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                os.replace(path, out / path.name)
        _publish_dir(work / FILES_DIR, out / FILES_DIR)
        remove_stale(out, keep={path.name for path in rendered.values()})
        for kind, path in briefs.items():
            published[kind] = out / path.name
        published["qmd"] = out / f"{STEM}.qmd"
        published["results"] = out / "results.json"
        for kind, path in rendered.items():
            published[kind] = out / path.name
        published["figures"] = out / FILES_DIR
        return published
    finally:
        shutil.rmtree(work, ignore_errors=True)
