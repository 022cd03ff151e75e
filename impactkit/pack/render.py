"""Render an evidence-pack ``.qmd`` to HTML and PDF.

With ``quarto`` on ``PATH`` the document is rendered by ``quarto render`` (its YAML front
matter carries the HTML and Typst options). Without it, the same toolchain Quarto uses
runs directly:

* HTML: pandoc (from ``pypandoc-binary``) -> standalone, self-contained HTML
  (``--embed-resources --standalone``, the pack's own CSS, no CDN: it renders offline);
* PDF: pandoc ``-t typst`` (A4, margins and font size from the front matter, the
  ``pack-typst.typ`` header) -> the ``typst`` Python package -> PDF with embedded fonts.

A small Lua filter maps the Quarto features the pack uses (``fig-alt``, callouts) and the
``{{< pagebreak >}}`` shortcode is translated. Rendering writes into the folder of the
``.qmd``; :func:`impactkit.pack.pack` calls it inside a temporary folder and moves the
outputs into place only when every format rendered.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from impactkit.errors import InputError

FORMATS = ("html", "pdf", "docx")
PAGEBREAK = "{{< pagebreak >}}"
SUPPORT_FILES = ("pack.css", "pack-typst.typ", "pack-filter.lua", "brief.css", "brief-typst.typ")


class RenderError(InputError):
    """A renderer (quarto, pandoc, typst) failed on the document (exit 2)."""


def parse_formats(to: str | Iterable[str]) -> list[str]:
    """``"html,pdf" -> ['html', 'pdf']``; unknown formats raise :class:`InputError`."""
    items = [t.strip().lower() for t in (to.split(",") if isinstance(to, str) else to) if t.strip()]
    bad = [t for t in items if t not in FORMATS]
    if bad or not items:
        raise InputError(f"--to: unknown format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(items))


def front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a ``.qmd`` (``{}`` if there is none)."""
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        raise InputError("qmd: YAML front matter is not closed by '---'")
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"qmd: YAML front matter does not parse: {str(exc).splitlines()[0]}") from None
    return meta if isinstance(meta, dict) else {}


def pandoc_path() -> str:
    import pypandoc

    return pypandoc.get_pandoc_path()


def quarto_path() -> str | None:
    return shutil.which("quarto")


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    done = subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        text = f"{done.stderr}\n{done.stdout}"
        if "No space left on device" in text or "resource exhausted" in text.lower():
            raise RenderError(f"{what} failed: disk full (no space left on device in {cwd})")
        message = (done.stderr or done.stdout).strip().splitlines()
        raise RenderError(f"{what} failed: {message[-1] if message else 'exit ' + str(done.returncode)}")


def copy_support_files(folder: Path, templates: Path | None = None) -> None:
    """Copy the CSS, Typst header and Lua filter next to the ``.qmd``."""
    from impactkit.pack.build import template_dir

    source = templates or template_dir()
    for name in SUPPORT_FILES:
        if (source / name).exists() and not (folder / name).exists():
            shutil.copyfile(source / name, folder / name)


def _lua_filter(folder: Path) -> str:
    """The pack's Lua filter: the copy beside the document, else the template's."""
    from impactkit.pack.build import template_dir

    local = folder / "pack-filter.lua"
    return local.name if local.exists() else str(template_dir() / "pack-filter.lua")


def _format_options(meta: dict[str, Any], fmt: str) -> dict[str, Any]:
    formats = meta.get("format") or {}
    options = formats.get(fmt) if isinstance(formats, dict) else None
    return options if isinstance(options, dict) else {}


def _body_for(text: str, target: str) -> str:
    from impactkit.pack.escape import unescape_shortcodes

    if target == "typst":
        return unescape_shortcodes(text.replace(PAGEBREAK, "```{=typst}\n#pagebreak()\n```"))
    if target == "docx":
        return unescape_shortcodes(text.replace(PAGEBREAK, '```{=openxml}\n<w:p><w:r><w:br w:type="page"/></w:r></w:p>\n```'))
    return unescape_shortcodes(text.replace(PAGEBREAK, ""))


def _run_pandoc(qmd: Path, target: str, writer: str, suffix: str,
                options: Callable[[dict[str, Any]], list[str]]) -> Path:
    """pandoc on the body of ``qmd`` for ``target`` ("html" / "typst") -> ``<stem><suffix>``.

    The body goes to a hidden ``.<stem>.<target>.md`` next to ``qmd`` (removed afterwards);
    ``options`` turns the front matter's options for ``target`` into pandoc arguments.
    """
    folder = qmd.parent
    text = qmd.read_text(encoding="utf-8")
    opts = _format_options(front_matter(text), target)
    source = folder / f".{qmd.stem}.{target}.md"
    source.write_text(_body_for(text, target), encoding="utf-8")
    out = folder / f"{qmd.stem}{suffix}"
    cmd = [pandoc_path(), source.name, "-f", "markdown", "-t", writer, "--standalone", "-o", out.name]
    cmd += options(opts) + ["--lua-filter", _lua_filter(folder)]
    try:
        _run(cmd, folder, f"pandoc ({ {'html': 'HTML', 'typst': 'Typst', 'docx': 'Word'}.get(target, target)})")
    finally:
        source.unlink(missing_ok=True)
    return out


def _listed(value: Any) -> list[Any]:
    """A front-matter option given as one item or a list, as a list."""
    return [value] if isinstance(value, str) else list(value or [])


def _html_options(opts: dict[str, Any]) -> list[str]:
    args = ["--embed-resources", "--resource-path", "."]
    for sheet in _listed(opts.get("css")):
        args += ["--css", str(sheet)]
    if opts.get("toc"):
        args += ["--toc", f"--toc-depth={int(opts.get('toc-depth', 3))}"]
    if opts.get("number-sections"):
        args += ["--number-sections"]
    return args


def _typst_options(opts: dict[str, Any]) -> list[str]:
    args = ["-V", f"papersize={opts.get('papersize', 'a4')}", "-V", f"fontsize={opts.get('fontsize', '10pt')}",
            "-V", "page-numbering=1"]
    margin = opts.get("margin") or {"x": "2cm", "y": "2cm"}
    for key, value in margin.items():
        args += ["-V", f"margin.{key}={value}"]
    if opts.get("number-sections"):
        args += ["-V", "section-numbering=1.1"]
    if opts.get("mainfont"):
        args += ["-V", f"mainfont={opts['mainfont']}"]
    for item in _listed(opts.get("include-in-header")):
        args += ["--include-in-header", str(item)]
    return args


def render_html_pandoc(qmd: Path) -> Path:
    """Standalone, self-contained HTML with pandoc (no network, no math CDN)."""
    return _run_pandoc(qmd, "html", "html5", ".html", _html_options)


def render_docx_pandoc(qmd: Path) -> Path:
    """An editable Word file with pandoc (figures embedded, alt text kept)."""
    return _run_pandoc(qmd, "docx", "docx", ".docx", lambda opts: ["--resource-path", "."])


def render_typst_source(qmd: Path) -> Path:
    """pandoc -> ``<stem>.typ`` with the Typst options of the front matter (A4 by default)."""
    return _run_pandoc(qmd, "typst", "typst", ".typ", _typst_options)


def font_paths() -> list[str]:
    """Folders of the fonts Typst may use: matplotlib's bundled DejaVu fonts, so the PDF
    sets its text in the same family as the figures on any machine."""
    import matplotlib

    return [str(Path(matplotlib.get_data_path()) / "fonts" / "ttf")]


def compile_typst(typ: Path) -> Path:
    """Compile a ``.typ`` file to PDF with the ``typst`` Python package (fonts embedded)."""
    import typst

    out = typ.with_suffix(".pdf")
    try:
        typst.compile(str(typ), output=str(out), root=str(typ.parent), font_paths=font_paths())
    except Exception as exc:  # typst raises its own error type with the compiler message
        first = str(exc).strip().splitlines()
        raise RenderError(f"typst failed on {typ.name}: {first[0] if first else type(exc).__name__}") from None
    return out


def render_quarto(qmd: Path, formats: list[str]) -> dict[str, Path]:
    """Render with ``quarto render`` (``html`` and ``typst``, which Quarto compiles to PDF)."""
    exe = quarto_path()
    if exe is None:
        raise RenderError("quarto is not on PATH")
    outputs: dict[str, Path] = {}
    files = qmd.with_name(f"{qmd.stem}_files")
    keep = qmd.with_name(f".{qmd.stem}_files.keep")
    if files.exists():
        shutil.copytree(files, keep, dirs_exist_ok=True)
    try:
        for fmt in formats:
            # Quarto may remove <stem>_files after embedding resources: restore the figures
            if keep.exists() and not files.exists():
                shutil.copytree(keep, files)
            target = {"html": "html", "pdf": "typst", "docx": "docx"}[fmt]
            _run([exe, "render", qmd.name, "--to", target], qmd.parent, f"quarto render --to {target}")
            outputs[fmt] = qmd.with_suffix({"html": ".html", "pdf": ".pdf", "docx": ".docx"}[fmt])
        if keep.exists() and not files.exists():
            shutil.copytree(keep, files)
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    return outputs


def render(qmd: Path, to: str | Iterable[str] = "html,pdf", *, engine: str = "auto") -> dict[str, Path]:
    """Render ``qmd`` into its own folder; returns ``{format: output path}``.

    ``engine`` is ``"auto"`` (quarto when on PATH, else pandoc + typst), ``"quarto"`` or
    ``"pandoc"``. For ``pdf`` the pandoc engine also leaves the intermediate ``.typ`` file.
    """
    qmd = Path(qmd)
    formats = parse_formats(to)
    if not qmd.is_file():
        raise InputError(f"{qmd}: no such .qmd file")
    chosen = engine if engine != "auto" else ("quarto" if quarto_path() else "pandoc")
    if chosen == "quarto":
        return render_quarto(qmd, formats)
    if chosen != "pandoc":
        raise InputError(f"render engine must be auto, quarto or pandoc, got {engine!r}")
    outputs: dict[str, Path] = {}
    if "html" in formats:
        outputs["html"] = render_html_pandoc(qmd)
    if "pdf" in formats:
        outputs["typ"] = render_typst_source(qmd)
        outputs["pdf"] = compile_typst(outputs["typ"])
    if "docx" in formats:
        outputs["docx"] = render_docx_pandoc(qmd)
    return outputs
