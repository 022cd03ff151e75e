"""Escaping of text that comes from data or specs before it enters the evidence pack.

Everything the pack prints that an analyst or a data file wrote (titles, intervention
names, labels, covariate names, notes) passes through :func:`md` before it reaches the
``.qmd``. Pandoc Markdown lets a backslash escape any ASCII punctuation character, and
the escaped character is then plain text for every writer: the HTML writer emits
``&lt;script&gt;``, the Typst writer emits ``\\#set`` and ``\\$``, and ``\\@name`` is never
a citation (which would make Typst fail with "does not contain a bibliography").
"""

from __future__ import annotations

import re

# ASCII punctuation with a meaning somewhere in pandoc/Quarto Markdown, HTML or Typst.
_INLINE_SPECIALS = set("\\`*_[]{}<>#$@|~^&")
_LEADING_LIST = re.compile(r"^(\d+)([.)])")
_WHITESPACE = re.compile(r"\s+")


class Markdown(str):
    """A string already safe to place in the ``.qmd`` (built by the pack, not from data)."""


def md(text: object) -> Markdown:
    """Escape ``text`` for inline pandoc Markdown: it renders literally in HTML and Typst.

    Newlines and runs of whitespace collapse to one space (a data value never opens a
    block); a leading ``-``/``+``/``.`` or ``12.`` can no longer start a list.
    ``None`` becomes an empty string. A :class:`Markdown` value passes unchanged.
    """
    if isinstance(text, Markdown):
        return text
    if text is None:
        return Markdown("")
    raw = _WHITESPACE.sub(" ", str(text)).strip()
    out = []
    for char in raw:
        if char in _INLINE_SPECIALS:
            out.append("\\" + char)
        else:
            out.append(char)
    escaped = "".join(out)
    escaped = _LEADING_LIST.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    if escaped[:1] in {"-", "+", ".", ":", "=", "%", "/"}:
        escaped = "\\" + escaped
    return Markdown(escaped)


def md_cell(text: object) -> Markdown:
    """Escape text for a pipe-table cell (same as :func:`md`; ``|`` is escaped too)."""
    return md(text)


def attribute(text: object) -> str:
    """Text safe inside a double-quoted pandoc attribute value (``fig-alt="..."``).

    Double quotes become single quotes, backslashes and braces are dropped, whitespace
    collapses; HTML special characters are left for the writer to escape.
    """
    if text is None:
        return ""
    raw = _WHITESPACE.sub(" ", str(text)).strip()
    return raw.replace('"', "'").replace("\\", "").replace("{", "(").replace("}", ")")


def yaml_string(text: object) -> Markdown:
    """A YAML double-quoted scalar holding escaped Markdown (for ``title:`` etc.)."""
    import json

    return Markdown(json.dumps(str(md(text)), ensure_ascii=False))


SHORTCODES_ALLOWED = ("{{< pagebreak >}}",)


def neutralise_shortcodes(qmd_text: str, allowed: tuple[str, ...] = SHORTCODES_ALLOWED) -> str:
    """Escape every Quarto shortcode of the ``.qmd`` except the pack's own (``allowed``).

    Quarto expands ``{{< include /etc/passwd >}}`` anywhere in the document, code blocks
    included, so text from data or specs that reaches a code block (the analysis name and
    folder in the rerun command) could run one. :func:`md` already escapes braces in prose;
    this pass covers every other place: each ``{{<`` / ``>}}`` becomes Quarto's escaped form
    ``{{{<`` / ``>}}}``, which Quarto prints literally as ``{{<`` / ``>}}`` (the pandoc
    fallback undoes the escape, see :func:`unescape_shortcodes`).
    """
    marks = [f"\x00{i}\x00" for i in range(len(allowed))]
    text = qmd_text
    for code, mark in zip(allowed, marks):
        text = text.replace(code, mark)
    text = text.replace("{{<", "{{{<").replace(">}}", ">}}}")
    for code, mark in zip(allowed, marks):
        text = text.replace(mark, code)
    return text


def unescape_shortcodes(text: str) -> str:
    """What Quarto prints for escaped shortcodes (for renderers that do not know them)."""
    return text.replace("{{{<", "{{<").replace(">}}}", ">}}")
