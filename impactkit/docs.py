"""``python -m impactkit.docs`` (``make docs``): build the API reference and the site.

1. Read ``docs/_quarto.yml``; drop quartodoc entries naming a module that does not exist
   in this checkout (so the reference builds while the package grows).
2. Run quartodoc (its Python API) to write ``docs/reference/*.qmd`` from the docstrings.
3. Render the site into ``docs/_site/``: ``quarto render docs`` when ``quarto`` is on
   ``PATH``, else pandoc (``pypandoc-binary``) turns each ``.qmd`` into standalone HTML with
   the pack's stylesheet and ``.qmd`` links rewritten to ``.html``. No network is used.

Exit code 0 on success, 2 when the docs folder or its configuration is unusable.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from impactkit.errors import EXIT_OK, ImpactkitError, InputError

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
LINK_FILTER = """
function Link(link)
  link.target = link.target:gsub('%.qmd$', '.html'):gsub('%.qmd#', '.html#')
  return link
end
"""


def module_exists(package: str, name: str, root: Path = REPO) -> bool:
    """True when ``<package>.<name>`` is a module or package file under ``root``."""
    parts = [package, *name.split(".")]
    base = root.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def entry_name(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return entry.get("name")
    return None


def load_config(docs: Path = DOCS, root: Path = REPO) -> dict[str, Any]:
    """``_quarto.yml`` with the quartodoc sections reduced to existing modules."""
    path = docs / "_quarto.yml"
    if not path.is_file():
        raise InputError(f"{path}: no such file (the docs site configuration)")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: YAML does not parse: {str(exc).splitlines()[0]}") from None
    qd = config.get("quartodoc")
    if not isinstance(qd, dict) or not qd.get("package"):
        raise InputError(f"{path}: section 'quartodoc' with a 'package' is required")
    kept = copy.deepcopy(config)
    sections = []
    for section in qd.get("sections") or []:
        contents = [e for e in section.get("contents") or []
                    if entry_name(e) and module_exists(qd["package"], entry_name(e), root)]
        if contents:
            sections.append({**section, "contents": contents})
    kept["quartodoc"]["sections"] = sections
    return kept


def build_reference(config: dict[str, Any], docs: Path = DOCS) -> list[Path]:
    """Run quartodoc in ``docs``; returns the ``.qmd`` pages it wrote."""
    from quartodoc import Builder, parsers

    # quartodoc 0.11 passes ``allow_section_blank_line`` to griffe's numpy parser, an option
    # griffe 2 removed (blank lines inside sections are allowed there anyway)
    parsers.DEFAULT_OPTIONS.get("numpy", {}).pop("allow_section_blank_line", None)

    previous = Path.cwd()
    os.chdir(docs)
    try:
        builder = Builder.from_quarto_config(config)
        builder.build()
    finally:
        os.chdir(previous)
    ref = docs / (config["quartodoc"].get("dir") or "reference")
    return sorted(ref.glob("*.qmd"))


def render_site(docs: Path = DOCS) -> Path:
    """Render every ``.qmd`` of the site into ``docs/_site`` (quarto, else pandoc)."""
    site = docs / "_site"
    quarto = shutil.which("quarto")
    if quarto:
        done = subprocess.run([quarto, "render", str(docs)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InputError(f"quarto render docs failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        return site
    import pypandoc

    pandoc = pypandoc.get_pandoc_path()
    css_source = REPO / "impactkit" / "pack" / "templates" / "pack.css"
    build = Path(tempfile.mkdtemp(prefix=".site-", dir=docs))
    try:
        lua = build / "links.lua"
        lua.write_text(LINK_FILTER, encoding="utf-8")
        pages = sorted(p for p in docs.rglob("*.qmd") if "_site" not in p.parts and not p.name.startswith("."))
        for page in pages:
            rel = page.relative_to(docs).with_suffix(".html")
            target = build / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            cmd = [pandoc, str(page), "-f", "markdown", "-t", "html5", "--standalone", "--toc", "-o", str(target),
                   "--lua-filter", str(lua), "--metadata", f"pagetitle={page.stem}"]
            if css_source.exists():
                cmd += ["--css", os.path.relpath(build / "pack.css", target.parent)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=str(page.parent))
            if done.returncode != 0:
                raise InputError(f"pandoc failed on {page.relative_to(docs)}: {done.stderr.strip().splitlines()[-1:]}")
        if css_source.exists():
            shutil.copyfile(css_source, build / "pack.css")
        lua.unlink()
        old = docs / "._site.old"
        if old.exists():
            shutil.rmtree(old)
        if site.exists():
            os.replace(site, old)
        os.replace(build, site)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return site


def main(argv: list[str] | None = None) -> int:
    """Build the reference and render the site; print the site folder."""
    docs = Path(argv[0]) if argv else DOCS
    try:
        config = load_config(docs)
        pages = build_reference(config, docs)
        site = render_site(docs)
    except ImpactkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{len(pages)} reference pages; site in {site}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
