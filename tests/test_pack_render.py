"""End-to-end tests of the evidence pack: build + render (pandoc + typst, or quarto).

One module-scoped render of the full fixture pack (``tests/fixtures/results_peru_tap.json``,
with hostile names planted in intervention/subgroup/organisation fields) serves every
check; a second, small render uses a results document holding only the required
sections. Expected numbers are derived from the fixture with the pack's own formatters
(exact string match); the PDF is checked through its text (``pdftotext`` when installed,
else ``pypdf``) and its raw bytes (A4 MediaBox, embedded font programs).
"""

from __future__ import annotations

import copy
import html as html_lib
import json
import re
import shutil
from pathlib import Path

import pytest

from impactkit.errors import CheckFailed
from impactkit.pack import format as fmt
from impactkit.pack import pack
from impactkit.pack.build import package_versions
from impactkit.pack.pipeline import MANIFEST
from impactkit.privacy import pdf_text

FIXTURE = Path(__file__).parent / "fixtures" / "results_peru_tap.json"
HOSTILE = {
    "script": "<script>alert(1)</script>",
    "typst": "#set page(width: 1cm)",
    "cite": "@bogus",
    "math": "$x$",
}
A4_MEDIABOX = re.compile(rb"/MediaBox\s*\[\s*0\s+0\s+595\.2\d*\s+841\.8\d*\s*\]")



def hostile_results() -> dict:
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    ranking = results["scale"]["ranking"]
    ranking[1]["name"] = HOSTILE["script"]
    ranking[2]["name"] = HOSTILE["typst"]
    ranking[3]["name"] = HOSTILE["cite"]
    results["heterogeneity"]["rows"][1]["subgroup"] = f"women-headed {HOSTILE['math']}"
    results["analysis"]["organisation"] = "CARE Peru [link](http://evil.example) *x*"
    results["heterogeneity"]["rows"].append({"subgroup": "tiny district", "estimate": 9.876, "std_error": 1.0,
                                             "conf_low": 7.9, "conf_high": 11.8, "p_value": 0.01, "n": 7,
                                             "suppressed": False})
    return results


@pytest.fixture(scope="module")
def full_pack(tmp_path_factory):
    out = tmp_path_factory.mktemp("pack") / "reports" / "peru_tap"
    results = hostile_results()
    paths = pack(results, out, to="html,pdf", date="2026-11-29", command="impactkit pack analyses/peru_tap")
    return results, out, paths


def test_pack_writes_every_output(full_pack):
    results, out, paths = full_pack
    for name in ("evidence-pack.qmd", "evidence-pack.html", "evidence-pack.pdf", "results.json"):
        assert (out / name).stat().st_size > 0
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == [
        "estimators.png", "event-study.png", "heterogeneity.png", "rank-probabilities.png", "tornado.png"]
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != MANIFEST]  # no temporary leftovers
    # only what a reader or a Quarto re-render needs (and the manifest of what the pack owns)
    assert sorted(p.name for p in out.iterdir()) == [
        MANIFEST, "evidence-pack.html", "evidence-pack.pdf", "evidence-pack.qmd", "figures", "pack-typst.typ", "pack.css",
        "results.json"]
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == results  # numbers unchanged


def test_qmd_is_quarto_shaped(full_pack):
    """Front matter keys Quarto reads (html/typst format options), Quarto figure syntax,
    resolvable cross-references and no pandoc-only construct in the ``.qmd``."""
    import yaml

    _, out, _ = full_pack
    qmd = (out / "evidence-pack.qmd").read_text(encoding="utf-8")
    assert qmd.startswith("---\n")
    meta = yaml.safe_load(qmd[4:qmd.index("\n---\n", 4)])
    assert set(meta) >= {"title", "subtitle", "date", "lang", "format"}
    html, typ = meta["format"]["html"], meta["format"]["typst"]
    assert html["embed-resources"] is True and html["toc"] is True and isinstance(html["toc-depth"], int)
    assert html["css"] == "pack.css" and html["number-sections"] is True
    assert typ["papersize"] == "a4" and typ["fontsize"] == "10pt" and typ["number-sections"] is True
    assert set(typ["margin"]) == {"x", "y"} and all(re.fullmatch(r"\d+(\.\d+)?cm", v) for v in typ["margin"].values())
    assert typ["include-in-header"] == "pack-typst.typ"
    for name in (html["css"], typ["include-in-header"]):  # what the .qmd references ships beside it
        assert (out / name).is_file()
    assert qmd.count("{{< pagebreak >}}") == 2
    figures = [line for line in qmd.splitlines() if line.startswith("![")]
    for line in figures:
        match = re.fullmatch(r'!\[[^\]]+\]\((figures/[\w-]+\.png)\)\{fig-alt="[^"]{40,}" width="\d+%"\}',
                             line)
        assert match and (out / match.group(1)).is_file(), line
    for ref in re.findall(r"@((?:fig|tbl|sec)-[\w-]+)", qmd):  # a cross-reference needs its label
        assert "{#" + ref in qmd, ref
    for construct in ("{=typst}", "{=html}", "\\newpage", "<!-- ", "\\pagebreak"):
        assert construct not in qmd, construct
    headings = [line for line in qmd.splitlines() if line.startswith("# ")]
    assert [h.split(" {")[0] for h in headings] == ["# Executive summary", "# Data", "# Design checks", "# Impact",
                                                   "# Cost-effectiveness and scale readiness", "# Provenance"]


def test_html_is_offline_escaped_and_has_alt_text(full_pack):
    results, out, _ = full_pack
    page = (out / "evidence-pack.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()  # neither data nor a math/CDN loader
    assert not re.search(r"""(src|href)=["']https?://""", page)
    assert 'href="http://evil.example"' not in page
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
    for value in HOSTILE.values():
        assert value in text, value
    images = re.findall(r"<img\b[^>]*>", page)
    assert len(images) == 5
    for tag in images:
        alt = re.search(r'\balt="([^"]+)"', tag)
        assert alt and len(alt.group(1)) > 40
        assert 'src="data:image/png;base64,' in tag  # embedded, self-contained
    head = results["headline"]
    assert fmt.percent_change(100 * head["percent"]) in text  # results give proportions (2.0 = +200%)
    assert fmt.money(head["money_per_unit"], "PEN", 2008) in text
    for name, version in package_versions():
        assert f"{name}" in text and version in text


def test_small_cells_are_suppressed(full_pack):
    _, out, _ = full_pack
    for name in ("evidence-pack.qmd", "evidence-pack.html"):
        body = (out / name).read_text(encoding="utf-8")
        assert "9.876" not in body and "9\\.876" not in body and "11.8" not in body
    text = html_lib.unescape((out / "evidence-pack.html").read_text(encoding="utf-8"))
    assert text.count("<10, suppressed") >= 4  # Macusani (flagged) and tiny district (n = 7)


def test_pdf_first_page_states_effect_and_hostile_text_is_visible(full_pack):
    results, out, _ = full_pack
    pdf = out / "evidence-pack.pdf"
    head = results["headline"]
    first = pdf_text(pdf, last_page=1)
    flat = " ".join(first.split())
    assert fmt.percent_change(100 * head["percent"]) in flat  # proportions in the results document
    ci = f"{fmt.percent_change(100 * head['percent_low'])} to {fmt.percent_change(100 * head['percent_high'])}"
    assert ci in flat
    assert "Recommendation" in flat
    everything = "".join(pdf_text(pdf).split())  # a narrow table column may wrap a name: compare without spaces
    for value in HOSTILE.values():
        # a narrow column may wrap a long name after a slash, and pdftotext's layout mode then puts the
        # next column's cell between the two halves: allow that (a few characters) after each "/"
        pattern = ".{0,12}?".join(re.escape(p) for p in re.split(r"\s+", value))  # wraps at spaces
        pattern = pattern.replace("/", "/.{0,12}?")  # and after slashes
        assert re.search(pattern, everything), value


def test_pdf_is_a4_with_embedded_fonts(full_pack):
    _, out, _ = full_pack
    data = (out / "evidence-pack.pdf").read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[[^\]]*\]", data)
    assert boxes and all(A4_MEDIABOX.fullmatch(b) for b in boxes)  # '#set page(width: 1cm)' did not run
    assert re.search(rb"/FontFile[23]?\b", data)  # font programs embedded
    assert len(re.findall(rb"/Alt\b", data)) >= 5  # every figure's alt text in the tagged PDF
    assert not (out / "evidence-pack.typ").exists()  # the intermediate is not published


def test_typst_source_of_the_published_qmd_escapes_hostile_text(full_pack, tmp_path):
    """Re-run pandoc's Typst writer on the published .qmd (the intermediate is not kept)."""
    from impactkit.pack.render import render_typst_source

    _, out, _ = full_pack
    for name in ("evidence-pack.qmd", "pack-typst.typ"):
        shutil.copyfile(out / name, tmp_path / name)
    typ = render_typst_source(tmp_path / "evidence-pack.qmd").read_text(encoding="utf-8")
    assert "\\#set page(width: 1cm)" in typ and "\\@bogus" in typ and "\\$x\\$" in typ


def test_minimal_results_render_with_absent_sections(tmp_path):
    minimal = {"schema": "impactkit.results/2",
               "analysis": {"name": "bare", "title": "A bare analysis", "question": "Does it work?"},
               "data": {"file": "panel.csv", "sha256": "0" * 64, "n_rows": 100, "n_units": 50, "n_clusters": 5}}
    paths = pack(minimal, tmp_path / "bare", to="html,pdf", date="2026-11-29")
    text = html_lib.unescape(paths["html"].read_text(encoding="utf-8"))
    assert text.count("Not declared for this analysis") >= 10
    assert paths["pdf"].read_bytes().startswith(b"%PDF")


def test_privacy_guard_blocks_publication(tmp_path):
    """A forbidden string in the output stops the pack before anything is moved into place."""
    results = copy.deepcopy(json.loads(FIXTURE.read_text(encoding="utf-8")))
    results["analysis"]["recommendation"] = "Call CANARY-PHONE-987654 for details."
    out = tmp_path / "blocked"
    out.mkdir()
    (out / "evidence-pack.html").write_text("previous pack", encoding="utf-8")
    with pytest.raises(CheckFailed, match="privacy guard"):
        pack({"schema": results["schema"], "analysis": results["analysis"]}, out, to="html",
             forbidden=["CANARY-PHONE-987654"], date="2026-11-29")
    # nothing published: the previous pack is untouched and no temporary folder is left
    assert sorted(p.name for p in out.iterdir()) == ["evidence-pack.html"]
    assert (out / "evidence-pack.html").read_text(encoding="utf-8") == "previous pack"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")
def test_pdf_layout_headers_whole_and_appendix_on_one_last_page(full_pack):
    """Table headers are never hyphenated ('Esti-mate'); the provenance appendix (run table,
    inputs with full SHA-256, software, rerun command) fills the last page alone."""
    import subprocess

    results, out, _ = full_pack
    pdf = out / "evidence-pack.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")
    pages = pages[:-1] if not pages[-1].strip() else pages
    assert not re.search(r"\b(Esti|Obser|Std|Estima|Observa)[-\u2010]\s*\n", text)
    last = " ".join(pages[-1].split())
    assert "Provenance" in last and "Inputs" in last and "Software" in last and "Rerun" in last
    assert all("Provenance" not in page for page in pages[:-1])  # the appendix starts on the last page
    for digest in results["provenance"]["inputs"].values():
        assert digest in last.replace(" ", "")  # each full digest on one line of the appendix
    assert "< 0.001" in text  # p-values below 0.001 print as such, never as 0.000
    assert "0.000 " not in text


def test_republishing_removes_only_what_older_packs_left(tmp_path):
    """Files earlier versions published (Lua filter, intermediate .typ, <stem>_files) go;
    a file the user put in the folder stays."""
    out = tmp_path / "old-pack"
    (out / "evidence-pack_files" / "figures").mkdir(parents=True)
    for name in ("pack-filter.lua", "evidence-pack.typ", "evidence-pack.qmd", "notes.txt"):
        (out / name).write_text("old", encoding="utf-8")
    minimal = {"schema": "impactkit.results/2", "analysis": {"name": "bare", "title": "A bare analysis"}}
    pack(minimal, out, to="html", date="2026-11-29")
    assert sorted(p.name for p in out.iterdir()) == [".impactkit-pack.json", "evidence-pack.html", "evidence-pack.qmd",
                                                    "figures", "notes.txt", "pack-typst.typ", "pack.css",
                                                    "results.json"]
