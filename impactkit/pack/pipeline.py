"""Build, render, guard and publish an evidence pack, touching only the files it owns.

:func:`pack` works in a temporary folder beside the output folder; only when every
requested format rendered and the privacy guard found no personal value does it move the
files into place (``os.replace``, atomic per file on one file system). A failure leaves
the previous pack, if any, untouched and no half-written output.

The output folder may hold other files (a user's ``figures/notes.png``, a README): the
pack writes only the files it produces and records them in a manifest
(``.impactkit-pack.json``). On the next run, files of the previous manifest that are not
produced again (the PDF of an earlier ``--to html,pdf`` run, a figure no longer drawn) are
removed, so the folder is always one consistent pack; files it never wrote are never
deleted, and one it would overwrite is refused (exit 2). Every path stays inside the
folder. Build folders left by an interrupted run (``.evidence-pack-build-*``) are removed
on the next run unless their process is still alive.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from impactkit.atomic import dumps_json, write_text
from impactkit.errors import InputError
from impactkit.pack.build import FIGURE_DIR, build_qmd
from impactkit.pack.escape import neutralise_shortcodes
from impactkit.privacy import guard_outputs
from impactkit.pack.build import template_dir
from impactkit.pack.render import front_matter, parse_formats, render

STEM = "evidence-pack"
FILES_DIR = FIGURE_DIR.split("/")[0]
# what earlier impactkit versions published and this one no longer does: removed on publish
STALE = ("evidence-pack.typ", "pack-filter.lua", "evidence-pack_files")


MANIFEST = ".impactkit-pack.json"
BUILD_PREFIX = f".{STEM}-build-"
# names an earlier (manifest-less) impactkit pack wrote: treated as owned when no manifest exists
LEGACY_OWNED = (f"{STEM}.qmd", f"{STEM}.html", f"{STEM}.pdf", f"{STEM}.typ", "results.json", "pack.css",
                "pack-typst.typ", "pack-filter.lua")


def _inside(out: Path, rel: str) -> Path:
    """``out / rel``, refused unless it stays inside ``out`` (no ``..``, no absolute path, no symlink out)."""
    path = out / rel
    if Path(rel).is_absolute() or ".." in Path(rel).parts or \
            not path.resolve().is_relative_to(out.resolve()):
        raise InputError(f"{out}: refusing to write '{rel}' outside the output folder")
    return path


def read_manifest(out: Path) -> set[str] | None:
    """Files the previous pack in ``out`` wrote (relative paths), ``None`` without a manifest."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise InputError(f"{path}: not a pack manifest written by impactkit; remove it to continue") from None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise InputError(f"{path}: not a pack manifest written by impactkit; remove it to continue")
    return set(files)


def _write_manifest(out: Path, files: Iterable[str]) -> None:
    write_text(out / MANIFEST, dumps_json({"files": sorted(set(files)), "written_by": "impactkit pack"}))


def owned_files(out: Path) -> set[str]:
    """What ``out`` holds that an earlier pack wrote: its manifest, or the legacy names."""
    listed = read_manifest(out)
    if listed is not None:
        return listed
    if (out / f"{STEM}.qmd").is_file():
        return {name for name in LEGACY_OWNED if (out / name).is_file()}
    return set()


def clean_interrupted(out: Path) -> list[Path]:
    """Remove build folders an interrupted run left in ``out`` (their process no longer runs)."""
    removed = []
    for path in sorted(out.glob(f"{BUILD_PREFIX}*")):
        if not path.is_dir() or path.is_symlink():
            continue
        try:
            pid = int((path / ".pid").read_text(encoding="utf-8").strip()) if (path / ".pid").is_file() else 0
        except (OSError, ValueError):
            pid = 0
        if pid and _alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(work: Path, out: Path) -> list[str]:
    """Move every file of ``work`` into ``out``; remove what the previous pack owned and this one does not."""
    produced = sorted(p.relative_to(work).as_posix() for p in work.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(work).parts))
    owned = owned_files(out)
    for rel in produced:
        target = _inside(out, rel)
        if (target.exists() or target.is_symlink()) and rel not in owned:
            raise InputError(f"{target}: exists and was not written by impactkit pack; refusing to overwrite it "
                             "(move it away or choose another --out)")
        if target.is_dir():
            raise InputError(f"{target}: is a folder where the pack writes a file")
    _write_manifest(out, owned | set(produced))  # a crash from here on leaves every file accounted for
    for rel in produced:
        target = _inside(out, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / rel, target)
    for rel in sorted(owned - set(produced)):
        target = _inside(out, rel)
        if target.is_file() or target.is_symlink():
            target.unlink()
        parent = target.parent
        while parent != out and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    _write_manifest(out, produced)
    return produced


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
        qmd.write_text(neutralise_shortcodes(brief.qmd), encoding="utf-8")
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
    output byte (:func:`impactkit.privacy.guard_outputs` raises ``CheckFailed``).
    ``brief`` (:class:`impactkit.pack.brief.BriefSettings`) adds the policy brief in each
    of its languages, ``policy-brief-<lang>.{qmd,html,pdf,docx}``, with the technical
    report (``evidence-pack.*``) as its annex; the build warns when a brief has an
    untranslated string or the authored recommendation contradicts the results.
    """
    formats = parse_formats(to)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean_interrupted(out)
    owned_files(out)  # an unreadable manifest is refused before any work
    work = Path(tempfile.mkdtemp(prefix=BUILD_PREFIX, dir=out))
    (work / ".pid").write_text(str(os.getpid()), encoding="utf-8")
    try:
        from impactkit.pack.brief import Honesty, today

        when = date or today()
        honesty = brief.honesty if brief is not None else Honesty()
        qmd_text = neutralise_shortcodes(build_qmd(results, work, date=when, command=command, honesty=honesty))
        qmd = work / f"{STEM}.qmd"
        qmd.write_text(qmd_text, encoding="utf-8")
        (work / "results.json").write_text(dumps_json(results), encoding="utf-8")
        copy_referenced_files(qmd_text, work)
        figures_backup = work / ".figures-backup"  # a dot folder: never published
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
        legacy = read_manifest(out) is None and (out / f"{STEM}.qmd").is_file()
        publish(work, out)
        (out / FILES_DIR).mkdir(exist_ok=True)  # the figures folder exists even when nothing was drawn
        if legacy:  # a pack of an impactkit version without manifests: its leftovers are known by name
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
