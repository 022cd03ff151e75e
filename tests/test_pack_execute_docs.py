"""The fallback executor for ``{python}`` cells and the docs build (quartodoc + pandoc).

The executor is checked on a report whose cells print, return a DataFrame, return an
object with ``_repr_markdown_``, draw a matplotlib figure and share one namespace; the
expected outputs are the exact values the cells compute. The docs build runs quartodoc on
a one-module configuration in a temporary folder and renders it to HTML.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil

import pytest

from impactkit.errors import InputError
from impactkit.pack.execute import cell_options, execute_and_render, execute_text

REPORT = '''---
title: "My own report"
format:
  html:
    embed-resources: true
---

Intro text.

```{python}
#| echo: false
import pandas as pd
total = sum(range(10))
print("total is", total)
```

```{python}
frame = pd.DataFrame({"arm": ["control", "treated"], "units": [450, 1800]})
frame
```

```{python}
#| echo: false
class Shown:
    def _repr_markdown_(self):
        return f"**shown {total * 2}**"
Shown()
```

```{python}
#| echo: false
#| fig-cap: "A line"
#| fig-alt: "A straight line from 0 to 9"
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot(range(10))
fig
```

```{python}
#| eval: false
raise RuntimeError("never runs")
```
'''


def test_cell_options_are_parsed():
    options, code = cell_options("#| echo: false\n#| fig-cap: \"A b\"\nx = 1\n")
    assert options == {"echo": False, "fig-cap": "A b"} and code == "x = 1"


def test_cells_run_in_order_in_one_namespace(tmp_path):
    text = execute_text(REPORT, tmp_path, "report")
    assert "```\ntotal is 45\n```" in text
    assert "import pandas" not in text  # echo: false hides code
    assert "frame = pd.DataFrame" in text  # echo defaults to true
    assert re.search(r"\|\s*1\s*\|\s*treated\s*\|\s*1800\s*\|", text)  # DataFrame.to_markdown
    assert "**shown 90**" in text  # _repr_markdown_, namespace shared across cells (total = 45)
    assert '![A line](report_files/execute/cell-4-1.png){fig-alt="A straight line from 0 to 9"}' in text
    assert (tmp_path / "report_files" / "execute" / "cell-4-1.png").read_bytes().startswith(b"\x89PNG")
    assert 'raise RuntimeError("never runs")' in text and "{python}" not in text


def test_failing_cell_names_the_cell(tmp_path):
    with pytest.raises(InputError, match=r"cell 2: ZeroDivisionError"):
        execute_text("```{python}\nx = 1\n```\n\n```{python}\n1 / 0\n```\n", tmp_path)


def test_execute_and_render_html(tmp_path):
    qmd = tmp_path / "report.qmd"
    qmd.write_text(REPORT, encoding="utf-8")
    outputs = execute_and_render(qmd, "html")
    page = outputs["html"].read_text(encoding="utf-8")
    assert outputs["html"] == tmp_path / "report.html"
    assert "shown 90" in html_lib.unescape(page) and 'alt="A straight line from 0 to 9"' in page
    assert not list(tmp_path.glob(".report*"))  # the intermediate executed file is gone


def test_docs_build_reference_and_site(tmp_path):
    from impactkit.docs import build_reference, load_config, module_exists, render_site

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "_quarto.yml").write_text(
        "project:\n  type: website\nquartodoc:\n  package: impactkit\n  dir: reference\n  parser: google\n"
        "  sections:\n    - title: Formats\n      contents:\n        - pack.format\n        - no_such_module\n",
        encoding="utf-8")
    (docs / "index.qmd").write_text("---\ntitle: Home\n---\n\nSee [the reference](reference/index.qmd).\n",
                                    encoding="utf-8")
    assert module_exists("impactkit", "pack.format") and not module_exists("impactkit", "no_such_module")
    config = load_config(docs)
    assert config["quartodoc"]["sections"][0]["contents"] == ["pack.format"]
    pages = build_reference(config, docs)
    assert {p.name for p in pages} == {"index.qmd", "pack.format.qmd"}
    site = render_site(docs) if not shutil.which("quarto") else None
    if site is not None:
        page = (site / "reference" / "pack.format.html").read_text(encoding="utf-8")
        assert "percent_change" in page and "thousands separators" in page
        assert 'href="reference/index.html"' in (site / "index.html").read_text(encoding="utf-8")


def test_quarto_engine_keeps_figures_between_formats(tmp_path, monkeypatch):
    """Orchestration only: a stand-in ``quarto`` that, like Quarto with embed-resources,
    removes ``<stem>_files`` after rendering; the figures must survive both formats."""
    import os
    import stat

    from impactkit.pack.render import render

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "quarto"
    fake.write_text('#!/bin/sh\n# quarto render <file> --to <fmt>\nstem="${2%.qmd}"\n'
                    'test -f "$stem"_files/fig.png || exit 3\n'
                    'if [ "$4" = "html" ]; then echo html > "$stem.html"; else echo pdf > "$stem.pdf"; fi\n'
                    'rm -rf "$stem"_files\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    (work / "doc_files").mkdir(parents=True)
    (work / "doc_files" / "fig.png").write_bytes(b"\x89PNG")
    (work / "doc.qmd").write_text("---\ntitle: x\n---\n\n![a](doc_files/fig.png)\n", encoding="utf-8")
    outputs = render(work / "doc.qmd", "html,pdf")
    assert outputs == {"html": work / "doc.html", "pdf": work / "doc.pdf"}
    assert (work / "doc_files" / "fig.png").exists() and not list(work.glob(".doc_files*"))
