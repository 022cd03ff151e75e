"""Privacy of every output: small-cell suppression, personal roles refused, one leak guard.

Every writer of impactkit passes through this module: ``validate --json``, ``estimate
--json``, ``score --json``, ``pack`` and ``pin`` (the lock). Three rules:

1. **Small cells.** A table cell or subgroup estimate resting on fewer than ``min_cell``
   units (default 10, ``analysis.min_cell`` in the results document) is not shown; the
   cell reads ``<10, suppressed``. A row the analysis already marked ``suppressed`` is
   shown the same way.
2. **No personal data.** No value of a column the data contract marks personal
   (``data.personal_columns``) may appear in any output byte. :func:`scan_for_forbidden`
   searches the bytes of every file (and the text of PDFs, via ``pdftotext`` when
   installed, and of Word files, unzipped) and :func:`guard_outputs` raises :class:`~impactkit.errors.CheckFailed`
   before anything is moved into place; :func:`guard_text` does the same for one output
   (a JSON document, a lock) before it is written. Personal values are read by
   :func:`personal_values` through :func:`impactkit.io.read_table`, the reader of the
   analysis itself: every suffix it reads, decoded with the contract's encoding.
3. **No personal column in a role that prints values.** A personal column cannot be the
   unit or time key whose values validation prints as examples, nor a subgroup, cluster,
   outcome or covariate whose values become labels: :func:`personal_roles` finds such
   uses so that the contract loader and the analysis refuse them at spec time (exit 2).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from impactkit.errors import CheckFailed

DEFAULT_MIN_CELL = 10
MIN_FORBIDDEN_LENGTH = 4


def suppressed_label(min_cell: int = DEFAULT_MIN_CELL) -> str:
    """The text shown instead of a suppressed cell: ``<10, suppressed``."""
    return f"<{int(min_cell)}, suppressed"


def is_small(n: Any, min_cell: int = DEFAULT_MIN_CELL) -> bool:
    """True when a count ``n`` is known and below ``min_cell``."""
    if n is None:
        return False
    try:
        return float(n) < float(min_cell)
    except (TypeError, ValueError):
        return False


def must_suppress(row: Mapping[str, Any], n_key: str = "n", min_cell: int = DEFAULT_MIN_CELL) -> bool:
    """A row is hidden if the analysis marked it ``suppressed`` or its count is small."""
    return bool(row.get("suppressed")) or is_small(row.get(n_key), min_cell)


def min_cell_of(results: Mapping[str, Any]) -> int:
    """``analysis.min_cell`` of a results document, default 10."""
    value = (results.get("analysis") or {}).get("min_cell")
    try:
        return int(value) if value is not None else DEFAULT_MIN_CELL
    except (TypeError, ValueError):
        return DEFAULT_MIN_CELL


def forbidden_strings(values: Iterable[Any], min_length: int = MIN_FORBIDDEN_LENGTH) -> list[str]:
    """Distinct string forms of personal values, long enough to search for reliably.

    Values shorter than ``min_length`` characters (e.g. a 2-letter initial) cannot be told
    apart from ordinary text and are skipped; identifiers and names are longer.
    """
    seen: set[str] = set()
    for value in values:
        if value is None:
            continue
        text = str(value).strip()
        if text.lower() in {"nan", "none", "<na>"} or len(text) < min_length:
            continue
        seen.add(text)
    return sorted(seen)


def personal_values(panel_path: Path, personal_columns: Iterable[str] | None = None, *,
                    contract: Any = None) -> list[str]:
    """The personal values of a data file, as :func:`forbidden_strings`.

    The file is read by :func:`impactkit.io.read_table` (with ``contract``: its encoding and
    column types), so every format the analysis reads is searched the same way. Columns:
    ``personal_columns``, else the contract's personal columns.
    """
    from impactkit.io import read_table

    columns = list(personal_columns) if personal_columns is not None else \
        list(contract.personal_columns if contract is not None else [])
    if not columns or not Path(panel_path).is_file():
        return []
    frame = read_table(panel_path, contract=contract, columns=columns)
    return frame_personal_values(frame, columns)


def frame_personal_values(frame: Any, personal_columns: Iterable[str]) -> list[str]:
    """:func:`forbidden_strings` of the personal columns of an in-memory frame."""
    values: list[Any] = []
    for col in personal_columns:
        if col in frame.columns:
            values.extend(frame[col].dropna().astype(str).unique().tolist())
    return forbidden_strings(values)


def personal_roles(roles: Mapping[str, Any], personal: Iterable[str]) -> list[tuple[str, str]]:
    """``(field, column)`` pairs where a role names a personal column.

    ``roles`` maps a field (``design.subgroup``) to a column name or a list of names;
    other values (numbers, labels that are not personal column names) are ignored.
    """
    personal = set(personal)
    hits = []
    for field, value in roles.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str) and item in personal:
                hits.append((field, item))
    return hits


def guard_text(text: str | bytes, forbidden: Iterable[str], what: str | Path) -> None:
    """Raise :class:`CheckFailed` if ``text`` (an output about to be written) holds a personal value.

    The message names the output and how many values, never the values.
    """
    blob = text.encode("utf-8") if isinstance(text, str) else text
    found: set[int] = set()
    for pattern, index in compile_forbidden(list(forbidden)):
        found.update(index[m.group(0)] for m in pattern.finditer(blob) if m.group(0) in index)
    if found:
        raise CheckFailed(f"privacy guard: {len(found)} personal-data value(s) would be written to {what}; "
                          "rule: no value of a personal column may appear in an output (nothing was written)")


def pdf_text(path: Path, *, last_page: int | None = None) -> str:
    """Text of a PDF (up to ``last_page``) via ``pdftotext`` (poppler) or ``pypdf``.

    With ``pdftotext`` the text comes twice: in layout order (``-layout``: table rows on one
    line) and in reading order (a table cell wrapped over two lines stays together), so a
    search finds a value whichever way the page broke it. ``pypdf`` (a test dependency) is
    the fallback; with neither, an :class:`ImportError` says so rather than returning an
    empty text that a privacy search would pass vacuously.
    """
    exe = shutil.which("pdftotext")
    if exe:
        pages = ["-l", str(last_page)] if last_page else []
        parts = []
        for flags in (["-layout"], []):
            done = subprocess.run([exe, *flags, *pages, str(path), "-"], capture_output=True, check=False)
            parts.append(done.stdout.decode("utf-8", errors="replace"))
        return "\n".join(parts)
    from pypdf import PdfReader

    pages = PdfReader(str(path)).pages
    return "\n".join(page.extract_text() or "" for page in pages[:last_page])


def trie_pattern(words: Iterable[bytes]) -> bytes:
    """A regular expression matching any of ``words``, shaped as a trie.

    One alternation of thousands of names would be tried name by name at every byte;
    a trie (``Ana|Ann`` -> ``An(?:a|n)``) lets the regex engine discard a position after a
    byte or two, so scanning every output for every personal value stays linear.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[None] = True

    def build(node: dict) -> bytes:
        branches = [re.escape(bytes([b])) + build(child) for b, child in sorted(
            ((k, v) for k, v in node.items() if k is not None))]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        if None in node:
            return b"(?:" + body + b")?"
        return body

    return build(trie)


def compile_forbidden(values: Iterable[str]) -> list[tuple[re.Pattern[bytes], dict[bytes, int]]]:
    """Two byte patterns: text values (substring) and all-digit values (identity and phone
    numbers), which must stand on their own, not inside a longer number, so that the digits
    of a full-precision float raise no false alarm. Each comes with ``{value: index}``."""
    text = {v.encode("utf-8"): i for i, v in enumerate(values) if v and not v.isdigit()}
    digits = {v.encode("utf-8"): i for i, v in enumerate(values) if v and v.isdigit()}
    compiled = []
    if text:
        compiled.append((re.compile(trie_pattern(text)), text))
    if digits:
        compiled.append((re.compile(rb"(?<![0-9])" + trie_pattern(digits) + rb"(?![0-9])"), digits))
    return compiled


def scan_for_forbidden(paths: Iterable[Path], forbidden: Iterable[str]) -> list[tuple[Path, int]]:
    """Files in which a forbidden string occurs: ``[(path, index of the string)]``.

    Every byte of every file is searched (UTF-8 encoding of each string; an all-digit
    value must stand on its own, not inside a longer number), and PDFs are searched again
    in their extracted text. Returned hits name the file and the index in ``forbidden``
    only, never the value itself. (Figures are raster images: their text comes only from
    the results document, which is searched as ``results.json``.)
    """
    needles = list(forbidden)
    patterns = compile_forbidden(needles)
    if not patterns:
        return []
    hits: list[tuple[Path, int]] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue
        blobs = [path.read_bytes()]
        if path.suffix.lower() == ".pdf":
            blobs.append(pdf_text(path).encode("utf-8"))
        elif path.suffix.lower() == ".docx":
            blobs.append(docx_text(path).encode("utf-8"))
        found: set[int] = set()
        for pattern, index in patterns:
            for blob in blobs:
                found.update(index[m.group(0)] for m in pattern.finditer(blob) if m.group(0) in index)
        hits.extend((path, i) for i in sorted(found))
    return hits


def docx_text(path: Path) -> str:
    """The text of a Word file: every ``w:t`` run of ``word/*.xml`` joined per paragraph.

    A ``.docx`` is a zip archive, so a byte scan of the file finds nothing; Word also splits
    a word across runs (``<w:t>12</w:t>...<w:t>34</w:t>``), so the runs are joined before
    searching. The XML parts are searched raw as well.
    """
    import zipfile
    from xml.etree import ElementTree

    ns = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    parts: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if not (name.startswith("word/") and name.endswith(".xml")):
                    continue
                raw = archive.read(name)
                parts.append(raw.decode("utf-8", errors="replace"))
                try:
                    root = ElementTree.fromstring(raw)
                except ElementTree.ParseError:
                    continue
                for para in root.iter(f"{ns}p"):
                    parts.append("".join(t.text or "" for t in para.iter(f"{ns}t")))
    except zipfile.BadZipFile:
        return ""
    return "\n".join(parts)


def all_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (sorted)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def guard_outputs(folder: Path, forbidden: Iterable[str]) -> None:
    """Raise :class:`CheckFailed` if any file under ``folder`` holds a forbidden string.

    The message names the files and how many personal values leaked, not the values.
    """
    hits = scan_for_forbidden(all_files(folder), list(forbidden))
    if hits:
        files = sorted({p.name for p, _ in hits})
        raise CheckFailed(
            f"privacy guard: {len({i for _, i in hits})} personal-data value(s) found in "
            f"{', '.join(files)}; rule: no value of a personal column may appear in the pack"
        )
