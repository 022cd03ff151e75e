"""How a pack was made: input digests, run facts and package versions as pack tables.

The colophon of the technical report: the inputs with their SHA-256, the render date,
impactkit's version and source commit, the seed, and the versions of the packages the pack
names. Facts come from :mod:`impactkit.provenance`; nothing here is a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from impactkit import provenance
from impactkit.pack import tables
from impactkit.pack.escape import Markdown, md
from impactkit.pack.tables import provenance_inputs

PACKAGES = ("impactkit", "numpy", "pandas", "scipy", "statsmodels", "linearmodels", "great-expectations", "pyarrow",
            "matplotlib", "jinja2", "typst", "pypandoc-binary")


def package_versions(names: tuple[str, ...] = PACKAGES) -> list[tuple[str, str]]:
    """``[(package, version)]`` of the packages the pack names, at build time."""
    return provenance.package_versions(names)


def git_commit(repo: Path | None = None) -> str:
    """The commit of the impactkit source tree, ``(with uncommitted changes)`` when dirty, or ``unknown``."""
    where = repo or provenance.PACKAGE_DIR
    commit = provenance.git_commit(where)
    if not commit:
        return "unknown"
    return commit + (" (with uncommitted changes)" if provenance.git_dirty(where) else "")


SHORT_HASH = 12


def is_hex_digest(text: Any) -> bool:
    value = str(text or "").lower()
    return len(value) >= SHORT_HASH and all(c in "0123456789abcdef" for c in value)


def code_span(text: Any) -> Markdown:
    """Inline code for a value the pack controls the alphabet of (hex digests, versions)."""
    return Markdown("`" + str(text).replace("`", "'").replace("\n", " ") + "`")


def provenance_inputs_table(results: Mapping[str, Any], path_share: int = 36) -> Markdown | None:
    """Inputs and their full SHA-256 as a two-column table that fits an A4 page.

    The digest column is monospace (set small by ``pack-typst.typ``) and gets
    ``100 - path_share`` percent of the width: the dashes of a pipe table's rule set the
    relative column widths once a row is wider than the page, so a 64-digit digest stays on
    one line and a long path wraps at its slashes instead.
    """
    rows = provenance_inputs(results)
    if not rows:
        return None
    lines = ["| Input file | SHA-256 |", f"|:{'-' * path_share}|:{'-' * (100 - path_share)}|"]
    for path, digest in rows:
        cell = code_span(digest.lower()) if is_hex_digest(digest) else md(digest)
        lines.append(f"| {md(path)} | {cell} |")
    return Markdown("\n".join(lines))


def run_table(results: Mapping[str, Any], *, date: str, version: str, commit: str) -> Markdown:
    """When, with what and from which seed the pack was made: one key-value table."""
    data = results.get("data") or {}
    contract = data.get("contract") or {}
    seeds = results.get("seeds") or {}
    commit_hash, _, rest = commit.partition(" ")
    commit_cell: Any = (Markdown(code_span(commit_hash[:SHORT_HASH]) + (f" {md(rest)}" if rest else ""))
                        if is_hex_digest(commit_hash) else commit)
    rows: list[list[Any]] = [["Rendered on", date], ["impactkit version", version], ["Source commit", commit_cell]]
    if contract.get("id"):
        rows.append(["Data contract", f"{contract['id']}, version {contract.get('version') or '(unversioned)'}"])
    if seeds.get("entropy") is not None:
        rows.append(["Seed (entropy)", code_span(seeds["entropy"])])
    if seeds.get("purposes"):
        rows.append(["Random streams", ", ".join(map(str, seeds["purposes"]))])
    return tables.pipe_table(["Item", "Value"], rows, "ll")


def packages_table(versions: list[tuple[str, str]] | None = None, columns: int = 3) -> Markdown:
    """Package versions laid out in ``columns`` (package, version) pairs to save a page."""
    versions = versions if versions is not None else package_versions()
    per_column = math.ceil(len(versions) / columns) if versions else 0
    body = []
    for i in range(per_column):
        row: list[Any] = []
        for c in range(columns):
            k = c * per_column + i
            name, version = versions[k] if k < len(versions) else (Markdown(" "), Markdown(" "))
            row += [name, version]
        body.append(row)
    return tables.pipe_table(["Package", "Version"] * columns, body, "ll" * columns)

